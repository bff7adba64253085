"""Offline batch tagging (`segments assign`): streams files, same answers as the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from app.batch import assign_file
from app.cli.main import app
from app.errors import DataError
from app.registry.store import ModelStore
from app.training.job import TrainResult

runner = CliRunner()


@pytest.mark.parametrize(("suffix_in", "suffix_out"), [(".csv", ".csv"), (".parquet", ".parquet")])
def test_batch_tagging_matches_the_model_chunk_by_chunk(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
    suffix_in: str,
    suffix_out: str,
) -> None:
    store, result = trained
    frame = customers[0]
    source, target = tmp_path / f"in{suffix_in}", tmp_path / f"out{suffix_out}"
    if suffix_in == ".csv":
        frame.to_csv(source, index=False)
    else:
        frame.to_parquet(source, index=False)
    loaded = store.load("customers")
    rows = assign_file(loaded, source, target, id_column="customer_id", chunk_size=777)
    assert rows == len(frame)
    tagged = pd.read_csv(target) if suffix_out == ".csv" else pd.read_parquet(target)
    assert list(tagged.columns) == ["customer_id", "segment_id", "segment_name"]
    assert tagged["customer_id"].astype(str).tolist() == frame["customer_id"].tolist()
    expected = loaded.estimator.predict(frame.set_index("customer_id"))
    assert (tagged["segment_id"].to_numpy() == expected).all()
    names = {s.id: s.name for s in result.manifest.segments}
    assert (tagged["segment_name"] == tagged["segment_id"].map(names)).all()
    assert not list(tmp_path.glob(".*partial"))


def test_cli_assign_and_a_missing_column(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
) -> None:
    store, _ = trained
    source = tmp_path / "in.csv"
    customers[0].head(100).to_csv(source, index=False)
    out = tmp_path / "out.csv"
    args = ["assign", "-i", str(source), "-o", str(out), "--store", str(store.root)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 100

    customers[0].head(100).drop(columns=["plan"]).to_csv(source, index=False)
    out.unlink()
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "missing column(s) 'plan'" in result.output
    assert not out.exists()


def test_text_in_a_numeric_column_fails_without_leaving_output(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
) -> None:
    store, _ = trained
    frame = customers[0].head(50).copy()
    frame["monetary"] = frame["monetary"].astype(object)
    frame.loc[40, "monetary"] = "n/a-ish"
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    frame.to_csv(source, index=False)
    with pytest.raises(DataError, match="'monetary' should be numeric"):
        assign_file(store.load("customers"), source, target, id_column="customer_id", chunk_size=20)
    assert not target.exists()
    assert not list(tmp_path.glob(".*partial"))
