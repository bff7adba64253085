"""A feature's own missing markers are read alike by every reader of training data.

The marker ``"-1"`` of a numeric feature matches -1, -1.0 and the text `` -1.0 `` in a CSV
(pyarrow's fast reader and pandas' alike) and in a Parquet file, in that column only; a
categorical feature's is compared as its category's text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.training.config import parse_config
from app.training.data import load_training_data
from tests.assignment.test_feature_markers import bank_config, bank_frame


def _written(frame: pd.DataFrame, how: str, folder: Path) -> Path:
    if how == "parquet":
        path = folder / "bank.parquet"
        frame.to_parquet(path, index=False)
        return path
    path = folder / "bank.csv"
    if how == "csv text":  # -1 written three ways, and one row with text (pandas' reader)
        frame = frame.astype({"pdays": object})
        never = np.flatnonzero(frame["pdays"] == -1)
        frame.loc[never[::3], "pdays"] = "-1.0"
        frame.loc[never[1::3], "pdays"] = " -1 "
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("how", ["csv", "csv text", "parquet"])
def test_every_reader_reads_a_feature_marker_as_missing(how: str, tmp_path: Path) -> None:
    frame = bank_frame()
    data = _written(frame, how, tmp_path)
    loaded = load_training_data(bank_config(data, tmp_path))
    never = (frame["pdays"] == -1).to_numpy()
    assert loaded.missing_cells == {
        "pdays": int(never.sum()),
        "contact": int((frame["contact"] == "unknown").sum()),
    }
    read = loaded.frame.loc[frame["client_id"]]
    assert read["pdays"].isna().to_numpy().tolist() == never.tolist()
    assert (read["balance"].to_numpy() == frame["balance"].to_numpy()).all()  # -1 kept
    assert read["contact"].isna().sum() == (frame["contact"] == "unknown").sum()


def test_a_categorical_marker_compares_the_category_text(tmp_path: Path) -> None:
    """A categorical column of numbers (a code) with the marker "0": 0 is missing, 10 and
    "00" are categories (a column with a leading zero stays text)."""
    frame = pd.DataFrame(
        {
            "client_id": [f"c{i}" for i in range(60)],
            "spend": np.arange(60.0),
            "code": ["0", "10", "3", "00"] * 15,
        }
    )
    data = tmp_path / "codes.csv"
    frame.to_csv(data, index=False)
    raw = {
        "data": {"path": str(data), "id_column": "client_id"},
        "features": [
            {"name": "spend"},
            {"name": "code", "type": "categorical", "missing_values": ["0"]},
        ],
        "model": {"k_min": 3, "k_max": 3},
    }
    loaded = load_training_data(parse_config(raw, base_dir=tmp_path))
    assert loaded.missing_cells == {"code": 15}
    assert set(loaded.frame["code"].dropna()) == {"10", "3", "00"}
