"""Tagging a log (``segments assign --input LOG``) reads its day/month dates as training
does: the order the whole column proves, else a refusal naming timestamp_format."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli.main import app as cli
from app.events.tagging import tag_log
from app.recording import load_serving
from app.registry.store import ModelStore
from app.training.job import TrainResult
from tests.training.test_log_dates import log_times


def _write(log: pd.DataFrame, path: Path, fmt: str) -> Path:
    """The log in the columns the example transactions model reads."""
    out = pd.DataFrame(
        {
            "customer_id": log["customer"],
            "order_id": log["order"],
            "timestamp": [t.strftime(fmt) for t in log["when"]],
            "amount": log["amount"],
        }
    )
    out.to_csv(path, index=False)
    return path


def test_tagging_reads_a_day_first_log_as_its_iso_copy(
    tx_trained: tuple[ModelStore, TrainResult], tmp_path: Path
) -> None:
    store, _ = tx_trained
    serving = load_serving(store, "transactions", None)
    log = log_times()
    slashes = tag_log(serving, _write(log, tmp_path / "d.csv", "%d/%m/%Y %H:%M %z"), None)
    iso = tag_log(serving, _write(log, tmp_path / "iso.csv", "%Y-%m-%d %H:%M:%S%z"), None)
    assert slashes.dropped == {} and slashes.reference == iso.reference
    assert slashes.ids == iso.ids and slashes.features == iso.features
    assert slashes.segment_ids == iso.segment_ids


@pytest.mark.parametrize("mixed", [False, True])
def test_tagging_refuses_a_log_whose_order_is_not_proven(
    tx_trained: tuple[ModelStore, TrainResult], tmp_path: Path, mixed: bool
) -> None:
    store, _ = tx_trained
    log = log_times(days_up_to=28 if mixed else 12)
    path = _write(log, tmp_path / "log.csv", "%d/%m/%Y %H:%M")
    if mixed:
        with path.open("a") as file:
            file.write("c001,o-us,03/15/2024 10:00,5.0\n")
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(
        cli,
        [
            "assign", "--store", str(store.root), "--model", "transactions",
            "--input", str(path), "--output", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code != 0
    shown = " ".join(result.output.split())
    assert "column 'timestamp'" in shown and "timestamp_format" in shown
    assert ("mixes day-first and month-first" in shown) == mixed
    assert not out.exists()
