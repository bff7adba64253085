"""`segments assign` reads the id column the version was trained with (it assumed
`customer_id`, and a new user's file failed with "missing column(s) 'customer_id'")."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli.main import app
from app.errors import DataError
from app.registry.store import ModelStore
from app.training.config import parse_config
from app.training.job import TrainResult, train
from tests.conftest import EXAMPLES


def _store(store: ModelStore, model: str) -> list[str]:
    return ["--store", str(store.root), "--model", model]


def test_the_trained_id_column_is_the_default_and_a_missing_one_is_named(
    customers_csv: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(customers_csv, dtype={"customer_id": str}).head(3000)
    frame = frame.rename(columns={"customer_id": "CUST_ID"})
    source = tmp_path / "cards.csv"
    frame.to_csv(source, index=False)
    raw = tomllib.loads((EXAMPLES / "customers.toml").read_text())
    raw["data"] |= {"path": str(source), "id_column": "CUST_ID"}
    raw["model"] |= {"k_min": 3, "k_max": 3, "stability_bootstraps": 0}
    store = ModelStore(tmp_path / "store")
    result = train(parse_config(raw, base_dir=EXAMPLES), store, promote=True)
    model = result.manifest.model_name

    out = tmp_path / "tagged.csv"
    done = CliRunner().invoke(
        app,
        ["assign", "--input", str(source), "--output", str(out), *_store(store, model)],
    )
    assert done.exit_code == 0, done.output
    tagged = pd.read_csv(out, dtype=str)
    assert list(tagged.columns) == ["CUST_ID", "segment_id", "segment_name"]
    assert tagged["CUST_ID"].tolist() == frame["CUST_ID"].tolist()

    other = tmp_path / "other.csv"
    frame.rename(columns={"CUST_ID": "id"}).to_csv(other, index=False)
    refused = CliRunner().invoke(
        app,
        ["assign", "--input", str(other), "--output", str(out), *_store(store, model)],
    )
    text = " ".join(refused.output.split())
    assert refused.exit_code == 1
    assert "missing column(s) 'CUST_ID'" in text and "'id'" in text and "--id-column" in text

    # a file saved with semicolons reads as one column: both commands say so, and how to fix it
    # with a command that keeps the ids as written (007) and reads numbers as the file writes
    # them: 1.234,56 as 1234.56 where it has decimal commas, and 1583.07 as itself where not
    # (thousands='.' would make it 158307)
    for decimal, numbers in [(",", ", decimal=',', thousands='.'"), (".", "")]:
        semicolons = tmp_path / "semicolons.csv"
        frame.to_csv(semicolons, index=False, sep=";", decimal=decimal)
        refused = CliRunner().invoke(
            app,
            ["assign", "--input", str(semicolons), "--output", str(out), *_store(store, model)],
        )
        text = " ".join(refused.output.split())
        assert refused.exit_code == 1
        assert "the file seems ';'-separated" in text
        assert f"pandas.read_csv(path, sep=';'{numbers}, dtype={{'CUST_ID': str}})" in text
        assert "--id-column" not in text  # not another id column: another separator
    raw["data"]["path"] = str(semicolons)
    with pytest.raises(DataError, match="the file seems ';'-separated"):
        train(parse_config(raw, base_dir=EXAMPLES), store)


@pytest.mark.parametrize("mode", [["-o", "out.csv"], ["--record"]])
def test_an_id_column_that_is_a_feature_is_refused(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
    mode: list[str],
) -> None:
    """`--id-column plan` tagged one "customer" per plan and rejected the other rows as
    duplicate ids, exit 0 (with --record, the plans were recorded as customers)."""
    store, result = trained
    source = tmp_path / "in.csv"
    customers[0].head(200).to_csv(source, index=False)
    mode = [str(tmp_path / m) if m.endswith(".csv") else m for m in mode]
    args = ["assign", "-i", str(source), *mode, "--store", str(store.root), "--id-column", "plan"]
    outcome = CliRunner().invoke(app, args)
    assert outcome.exit_code == 1, outcome.output
    text = " ".join(outcome.output.split())
    assert (
        f"error: --id-column 'plan' is a feature of customers {result.manifest.version}, not "
        "the customer ids: name the file's id column (the version was trained with "
        "'customer_id', the default)"
    ) in text
    assert list(tmp_path.iterdir()) == [source]
