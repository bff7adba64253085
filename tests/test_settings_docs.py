"""The settings tables (README "Configuration", docs/webhooks.md "Settings") list every
``SEGMENTS_*`` variable the service reads, none it does not, each with its real default: a
user sets what the table says and gets what it says."""

from __future__ import annotations

import re
from typing import Any

from app.settings import Settings
from tests.conftest import ROOT


def _rows() -> dict[str, str]:
    """Variable -> its documented default, from every ``| `SEGMENTS_...` |`` table row."""
    rows: dict[str, str] = {}
    for doc in [ROOT / "README.md", ROOT / "docs" / "webhooks.md"]:
        for line in doc.read_text().splitlines():
            if not line.startswith("| `SEGMENTS_"):
                continue
            name_cell, default_cell = line.split("|")[1:3]
            names = re.findall(r"`(_?[A-Z][A-Z_]*)`", name_cell)
            # `SEGMENTS_WEBHOOK_RETRY_BASE_MS` / `_RETRY_MAX_MS`: the second shares the stem
            names = [
                names[0][: names[0].index(n.split("_")[1]) - 1] + n if n.startswith("_") else n
                for n in names
            ]
            defaults = [d.strip().strip("`") for d in default_cell.split(" / ")]
            if len(defaults) == 1:
                defaults *= len(names)
            rows.update(zip(names, defaults, strict=True))
    return rows


def _same(documented: str, default: Any) -> bool:
    if default is None or default == "":
        return documented in {"—", "(empty)", "(none)"}
    if isinstance(default, bool):
        return documented == str(default).lower()
    if isinstance(default, int | float):
        return float(documented) == float(default)
    return documented == str(default)


def test_every_setting_is_in_a_table_with_its_default() -> None:
    rows = _rows()
    variables = {}
    for field, info in Settings.model_fields.items():
        variables[f"SEGMENTS_{field.upper()}"] = info.default
    variables["REDIS_URL"] = variables["SEGMENTS_REDIS_URL"]  # its alias, in the same row
    assert sorted(set(variables) - set(rows)) == [], "settings no table lists"
    assert sorted(set(rows) - set(variables)) == [], "table rows no setting reads"
    wrong = {name: (rows[name], variables[name]) for name in rows}
    wrong = {name: pair for name, pair in wrong.items() if not _same(*pair)}
    assert wrong == {}, "(documented, real) defaults that differ"
