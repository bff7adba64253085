"""One customer id everywhere: training sees the ids exactly as the file writes them."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli.main import app
from app.registry.store import ModelStore
from app.training.config import load_config
from app.training.data import load_training_data
from tests.assignment.test_batch import ODD_IDS
from tests.training.test_bad_input import good_frame, write_config

runner = CliRunner()


def odd_id_table(n: int = 60) -> pd.DataFrame:
    """``good_frame`` whose first ids are the odd ones; row 6 has an empty id cell."""
    frame = good_frame(n)
    ids: list[str | None] = [*ODD_IDS, None, *frame["customer_id"][len(ODD_IDS) + 1 :]]
    frame["customer_id"] = pd.Series(ids, dtype=object)
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_training_keeps_ids_as_text_and_counts_rows_without_one(
    tmp_path: Path, suffix: str
) -> None:
    """``007`` and ``7`` were one duplicate id (both read as 7), ``NaN``/``NULL``/``N/A``
    rows were dropped as missing: now every id is the text written, the empty one is left
    out and counted, and the summary says so."""
    frame = odd_id_table()
    data = tmp_path / f"customers{suffix}"
    if suffix == ".csv":
        frame.to_csv(data, index=False)
    else:
        frame.to_parquet(data, index=False)
    config_path = write_config(tmp_path, data)
    loaded = load_training_data(load_config(config_path))
    expected = [i for i in frame["customer_id"] if i is not None]
    assert loaded.frame.index.tolist() == expected
    assert loaded.frame.index[: len(ODD_IDS)].tolist() == ODD_IDS
    assert (loaded.source_rows, loaded.dropped_rows) == (60, 1)

    store = tmp_path / "store"
    result = runner.invoke(app, ["train", "--config", str(config_path), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "1 of 60 input rows were left out (no customer id)" in " ".join(result.output.split())
    manifest = ModelStore(store).manifest("customers", result.output.strip().splitlines()[-1])
    assert (manifest.data.rows, manifest.data.dropped_rows) == (59, 1)


def test_transaction_logs_keep_customer_ids_as_text(tmp_path: Path) -> None:
    rows = []
    for n, customer in enumerate(["007", "7", "NaN", "Zoë-7", "00001", "1"]):
        for day in range(n + 1):
            rows.append((customer, f"2026-0{1 + day}-1{n} 10:00:00", 10.0 * (n + 1)))
    rows.append(("", "2026-03-01 10:00:00", 5.0))
    log = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    data = tmp_path / "log.csv"
    log.to_csv(data, index=False)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[data]\npath = "{data}"\nkind = "transactions"\n'
        '[data.transactions]\ncustomer = "customer_id"\ntimestamp = "timestamp"\n'
        'amount = "amount"\n'
        '[[features]]\nname = "frequency"\n[[features]]\nname = "monetary"\n'
        "[model]\nk_min = 2\nk_max = 3\n"
    )
    loaded = load_training_data(load_config(config))
    assert sorted(loaded.frame.index) == sorted(["007", "7", "NaN", "Zoë-7", "00001", "1"])
    assert loaded.dropped_rows == 1


def test_an_integer_parquet_id_column_is_read_as_its_decimal_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    frame = good_frame()
    frame["customer_id"] = np.arange(1000, 1060, dtype=np.int64)
    data = tmp_path / "customers.parquet"
    frame.to_parquet(data, index=False)
    with caplog.at_level(logging.WARNING):
        loaded = load_training_data(load_config(write_config(tmp_path, data)))
    assert loaded.frame.index.tolist() == [str(i) for i in range(1000, 1060)]
    assert "holds numbers; read as their decimal text" in caplog.text


def test_feature_columns_keep_pandas_missing_markers() -> None:
    """Only the id column is read literally: ``NA`` in a feature is still a missing value,
    with pandas' own list of markers (kept in step with the installed pandas)."""
    from pandas._libs.parsers import STR_NA_VALUES

    from app.training.data import CSV_NA_VALUES

    assert set(STR_NA_VALUES) == CSV_NA_VALUES


@pytest.mark.parametrize(
    "values",
    [
        pd.Series([*ODD_IDS, None, " ", "c9"], dtype=object),
        pd.Series(["007", "NaN", None, "x y"], dtype="string[pyarrow]"),
        pd.Series([17850.0, np.nan, 3.0]),
    ],
)
def test_the_id_index_is_the_text_ids_as_pandas_infers_them(values: pd.Series) -> None:
    from app.training.data import index_by_id, missing_ids, text_ids

    frame = pd.DataFrame({"customer_id": values, "x": np.arange(len(values), dtype=float)})
    indexed, dropped, _ = index_by_id(frame, "customer_id", "t.csv")
    ids = text_ids(values, "t.csv")
    kept = ids[~missing_ids(ids)]
    expected = pd.Index(kept.to_numpy(dtype=object), name="customer_id")  # the obvious way
    assert indexed.index.dtype == expected.dtype
    assert indexed.index.equals(expected) and indexed.index.tolist() == expected.tolist()
    assert dropped == len(values) - len(kept) > 0


def test_ids_written_as_floats_in_a_csv_are_warned_of_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Parquet file's float ids were warned of; a CSV's `1957.0` was read as written with no
    word (recorded, such ids are customers apart from `1957`). Warned once per file."""
    from app.training.data import text_ids

    floats = pd.Series(["1957.0", "17850.0", None], dtype=object, name="customerID")
    with caplog.at_level("WARNING", logger="app.training.data"):
        assert text_ids(floats, "floats.csv").tolist()[:2] == ["1957.0", "17850.0"]
        text_ids(floats, "floats.csv")  # the next chunk of the same file
        text_ids(pd.Series(["0001957", "1957.5"], name="customerID"), "plain.csv")
    warned = [r.getMessage() for r in caplog.records]
    assert warned == [
        "floats.csv: id column 'customerID' holds ids written as floats (1957.0): they are read "
        "as written, so 1957.0 and 1957 are two customers; write the ids as they are elsewhere"
    ]


def test_ids_written_as_floats_are_warned_of_beside_blank_id_cells(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A retail log's lines without a customer are blank cells among `17850.0` ids: the
    check read them as ids that are no float, and the warning never came (the UCI Online
    Retail log, and so examples/online_retail.toml, trained without it)."""
    from app.training.data import text_ids

    ids = pd.Series(["17850.0", "", " ", None, "13047.0"], dtype=object, name="CustomerID")
    with caplog.at_level("WARNING", logger="app.training.data"):
        read = text_ids(ids, "retail-blanks.csv")
    assert [r.getMessage() for r in caplog.records] == [
        "retail-blanks.csv: id column 'CustomerID' holds ids written as floats (17850.0): they "
        "are read as written, so 17850.0 and 17850 are two customers; write the ids as they are "
        "elsewhere"
    ]
    assert read.isna().tolist() == [False, True, True, True, False]
