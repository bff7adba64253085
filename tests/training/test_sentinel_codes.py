"""A code written as a number that means "never" (the bank-marketing table's ``pdays = 999``)
is noted with the option that reads it as missing. Real files, real training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from app.cli.main import app
from app.registry.store import ModelStore
from app.training.config import parse_config
from app.training.sentinels import sentinel_codes

runner = CliRunner()


def calls(folder: Path, n: int = 800, seed: int = 5) -> Path:
    """Calls of a campaign: ``pdays`` is 999 for the nine in ten never contacted before, 0..26 for
    the others, who subscribe more often; ``previous.calls``, an R name, 0 for most."""
    rng = np.random.default_rng(seed)
    contacted = rng.uniform(size=n) < 0.1
    y = rng.uniform(size=n) < np.where(contacted, 0.5, 0.08)
    pd.DataFrame(
        {
            "customer_id": [f"B{i:05d}" for i in range(n)],
            "age": rng.integers(18, 90, n),
            "campaign": rng.geometric(0.4, n),
            "pdays": np.where(contacted, rng.integers(0, 27, n), 999),
            "previous.calls": np.where(contacted, rng.integers(1, 5, n), 0),
            "y": np.where(y, "yes", "no"),
        }
    ).to_csv(folder / "calls.csv", sep=";", index=False)
    return folder / "calls.toml"


def train_calls(config: Path, pdays: str) -> str:
    config.write_text(
        'outcomes = ["y"]\n[data]\npath = "calls.csv"\ndelimiter = ";"\n'
        '[[features]]\nname = "age"\n[[features]]\nname = "campaign"\n'
        f'[[features]]\nname = "pdays"\n{pdays}\n[[features]]\nname = "previous.calls"\n'
        '[model]\nname = "calls"\nk_min = 3\nk_max = 4\n'
    )
    store = config.parent / "store"
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_a_code_of_nines_for_never_is_noted_with_the_marker_to_declare(tmp_path: Path) -> None:
    """Undeclared, 999 days was a number like any other and the summary said nothing: the
    never-contacted customers' mean pdays was the code."""
    config = calls(tmp_path)
    output = train_calls(config, "")
    assert (
        "note: pdays: 708 customers (88%) hold 999, apart from its other values (0 to 26): if "
        "it is a code (never, unknown), it is segmented on as a number all the same; declare "
        'missing_values = ["999"] in its [[features]] entry, and give them a rule if they are a '
        'segment of their own (when = "pdays is missing")'
    ) in output, output
    manifest = ModelStore(tmp_path / "store").manifests("calls")[0]
    assert any(note.startswith("pdays: 708 customers") for note in manifest.data.notes)
    declared = train_calls(config, 'missing_values = ["999"]')
    assert "hold 999" not in declared
    assert "pdays: 708 missing values, imputed (median)" in declared


def test_values_at_a_code_within_their_range_are_no_code() -> None:
    """A spending score of 1 to 99, an age of 99 among ages to 98, a balance of -1 among
    other negatives, 999 beside a few codes only: no note; a -1 in a count is one."""
    rng = np.random.default_rng(0)
    n = 1000
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "score": rng.integers(1, 100, n),
            "age": np.r_[rng.integers(18, 99, n - 20), [99] * 20],
            "balance": np.r_[rng.integers(-500, 5000, n - 50), [-1] * 50],
            "flag": rng.choice([0, 1, 999], n),
            "visits": np.r_[rng.integers(0, 30, n - 100), [-1] * 100],
        }
    )
    config = parse_config(
        {
            "data": {"path": "x.csv"},
            "features": [{"name": c} for c in frame.columns[1:]],
        },
        base_dir=Path("."),
    )
    notes = sentinel_codes(config, frame)
    assert [note.split(":")[0] for note in notes] == ["visits"], notes
    assert notes[0].startswith("visits: 100 customers (10%) hold -1, apart from its other")


def test_one_customer_at_a_code_of_a_small_table_is_said_in_the_singular() -> None:
    # (a 60-customer table's one 999 read '1 customer (2%) hold 999')
    frame = pd.DataFrame(
        {"customer_id": [f"c{i}" for i in range(60)], "pdays": [*range(59), 999]}
    ).set_index("customer_id")
    config = parse_config(
        {"data": {"path": "x.csv"}, "features": [{"name": "pdays"}]}, base_dir=Path(".")
    )
    notes = sentinel_codes(config, frame)
    assert notes[0].startswith("pdays: 1 customer (2%) holds 999, apart from its other"), notes
