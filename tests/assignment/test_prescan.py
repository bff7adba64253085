"""``app.batch.prescan``: a recording run's whole-file passes started early give what
``read_chunks`` finds itself, and a run's first imports leave scikit-learn for later."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import batch
from app.batch import prescan, read_chunks
from app.errors import DataError
from app.training.csv_format import PLAIN_CSV

FEATURES = [("spend", "numeric"), ("plan", "categorical")]
ROOT = Path(__file__).resolve().parents[2]


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("customer_id,spend,plan\n" + "\n".join(lines) + "\n")


def _chunks(path: Path) -> list[tuple[list[str], list[list[object]], list[batch.Rejected]]]:
    return [
        (c.ids.tolist(), c.features.astype(object).values.tolist(), c.rejected)
        for c in read_chunks(path, "customer_id", FEATURES, 3)
    ]


def test_a_prescanned_file_reads_as_one_scanned_then(tmp_path: Path) -> None:
    source = tmp_path / "customers.csv"
    # a misshapen row, a repeated id (its earlier row rejected), a row without an id
    _write(source, ["a,1,x", "b,2", "c,3,y", "a,4,z", ",5,x", "d,6,y", "e,7,x"])
    alone = _chunks(source)
    prescan(source, "customer_id", PLAIN_CSV)
    assert (source, "customer_id", PLAIN_CSV) in batch._prescans
    assert _chunks(source) == alone
    assert not batch._prescans  # taken once
    reasons = [r.reason for _, _, rejected in alone for r in rejected]
    assert any("duplicate id 'a'" in r for r in reasons), reasons
    assert any("field" in r for r in reasons), reasons


def test_a_file_changed_after_its_prescan_is_scanned_again(tmp_path: Path) -> None:
    source = tmp_path / "customers.csv"
    _write(source, ["a,1,x", "b,2,y"])
    prescan(source, "customer_id", PLAIN_CSV)
    batch._prescans[(source, "customer_id", PLAIN_CSV)][1].result()  # its passes are done
    _write(source, ["a,1,x", "b,2,y", "a,3,z"])  # now with a repeated id
    rejected = [r for _, _, part in _chunks(source) for r in part]
    assert [(r.row, r.customer_id) for r in rejected] == [(1, "a")]


def test_a_prescan_of_another_id_column_is_not_taken(tmp_path: Path) -> None:
    source = tmp_path / "customers.csv"
    _write(source, ["a,1,x", "a,2,y"])
    prescan(source, "plan", PLAIN_CSV)  # no repeats in this column
    rejected = [r for _, _, part in _chunks(source) for r in part]
    assert [(r.row, r.customer_id) for r in rejected] == [(1, "a")]
    batch._prescans.clear()


def test_a_prescan_error_is_raised_where_read_chunks_raises_it(tmp_path: Path) -> None:
    source = tmp_path / "customers.csv"
    source.write_bytes(b"customer_id,spend,plan\na,1,x\n" + b"b,2,\xff\xfe\n" * 3)
    with pytest.raises(DataError) as alone:
        _chunks(source)
    prescan(source, "customer_id", PLAIN_CSV)
    with pytest.raises(DataError) as prescanned:
        _chunks(source)
    assert str(prescanned.value) == str(alone.value)
    assert "is not UTF-8 text" in str(alone.value)
    assert not batch._prescans


def test_the_settings_and_the_assign_command_import_no_scikit_learn() -> None:
    """What lets ``segments assign --record`` read its file while scikit-learn loads: the
    settings (which name the webhook config) used to import the webhook dispatcher and,
    through the model registry, scikit-learn."""
    code = (
        "import sys, app.cli.main, app.settings, app.batch, app.events.command; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[]"
