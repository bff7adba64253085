"""A log's lines repeated exactly (an export glitch, or the same item bought twice) are
counted each time and said so in the summary, manifest and report; ``[data]
drop_duplicates = true`` counts them once (an audit's log summed them without a word)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from app.cli.common import print_manifest_summary
from app.errors import ConfigError
from app.registry.store import ModelStore
from app.training.config import parse_config
from app.training.data import load_training_data
from app.training.job import train
from tests.training.test_log_dates import log_times, raw_config

NOTE = (
    "lines are exact duplicates of another line: counted each time; set `[data] "
    "drop_duplicates = true` to count them once"
)


def logs(tmp_path: Path) -> tuple[Path, Path, int]:
    """A log with some lines written twice (and one three times), the same log without the
    copies, and how many copies there are. A line that differs in a field the job does not
    read (``sku``) is no copy."""
    log = log_times()
    log["ts"] = [t.strftime("%Y-%m-%d %H:%M:%S%z") for t in log["when"]]
    log = log.drop(columns="when").assign(sku="DATA5GB")
    log = pd.concat([log, log.iloc[[40]].assign(sku="ROAM_EU")], ignore_index=True)
    once = tmp_path / "once.csv"
    log.to_csv(once, index=False)
    twice = tmp_path / "twice.csv"
    copies = log.iloc[[3, 10, 10, 25]]
    pd.concat([log, copies]).sort_values("ts", kind="stable").to_csv(twice, index=False)
    return once, twice, 4


def _config(path: Path, tmp_path: Path, **data: Any) -> Any:
    raw = raw_config(path)
    raw["data"].update(data)
    return parse_config(raw, base_dir=tmp_path)


def test_repeated_lines_are_counted_each_time_and_noted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    once, twice, copies = logs(tmp_path)
    store = ModelStore(tmp_path / "store")
    result = train(_config(twice, tmp_path), store)
    data = result.manifest.data
    assert data.notes[0] == f"{copies} {NOTE}"  # (then: 40 customers are few for 3 segments)
    assert data.dropped_rows == 0  # kept: counted each time
    print_manifest_summary(result.manifest, None)
    assert f"note: {copies} {NOTE}" in " ".join(capsys.readouterr().out.split())
    folder = store.version_dir(result.manifest.model_name, result.manifest.version)
    assert f"{copies} {NOTE}" in html.unescape((folder / "report.html").read_text())
    summed = load_training_data(_config(twice, tmp_path)).frame
    plain = load_training_data(_config(once, tmp_path)).frame
    assert (summed["monetary"] >= plain["monetary"]).all()
    assert (summed["monetary"] > plain["monetary"]).sum() == 3  # three customers repeated
    assert load_training_data(_config(once, tmp_path)).notes == []


def test_drop_duplicates_gives_the_features_of_the_log_without_copies(tmp_path: Path) -> None:
    once, twice, copies = logs(tmp_path)
    dropped = load_training_data(_config(twice, tmp_path, drop_duplicates=True))
    plain = load_training_data(_config(once, tmp_path))
    assert dropped.fingerprint == plain.fingerprint
    pd.testing.assert_frame_equal(dropped.frame, plain.frame)
    assert dropped.notes == []
    assert dropped.dropped_reasons == {
        "an exact duplicate of another line (drop_duplicates = true)": copies
    }
    assert dropped.source_rows == plain.source_rows + copies
    result = train(_config(twice, tmp_path, drop_duplicates=True), ModelStore(tmp_path / "s"))
    assert result.manifest.data.dropped_rows == copies
    assert result.manifest.config["data"]["drop_duplicates"] is True


def test_drop_duplicates_is_a_data_key_of_a_log_only(tmp_path: Path) -> None:
    raw = raw_config(tmp_path / "log.csv")
    raw["data"]["transactions"]["drop_duplicates"] = True
    with pytest.raises(ConfigError, match="'drop_duplicates' belongs in \\[data\\]"):
        parse_config(raw, base_dir=tmp_path)
    table = {
        "data": {"path": "t.csv", "drop_duplicates": True},
        "features": [{"name": "x"}],
    }
    with pytest.raises(ConfigError, match="drop_duplicates is only valid with kind"):
        parse_config(table, base_dir=tmp_path)
