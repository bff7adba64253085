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
from app.registry.overrides import segment_names
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
    done = assign_file(loaded, source, target, id_column="customer_id", chunk_size=777)
    assert (done.rows, done.rejected, done.rejects) == (len(frame), 0, None)
    tagged = pd.read_csv(target) if suffix_out == ".csv" else pd.read_parquet(target)
    assert list(tagged.columns) == ["customer_id", "segment_id", "segment_name"]
    assert tagged["customer_id"].astype(str).tolist() == frame["customer_id"].tolist()
    expected = loaded.estimator.predict(frame.set_index("customer_id"))
    assert (tagged["segment_id"].to_numpy() == expected).all()
    # the names the service serves (other tests of the session may have PATCHed some)
    names = segment_names(result.manifest, store.root / "customers")
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
    # a column's name of 100,000 characters is repeated clipped (it was whole)
    customers[0].head(100).rename(columns={"plan": "plan" * 25_000}).to_csv(source, index=False)
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "missing column(s) 'plan'" in said and len(said) < 2_000, said[:3_000]
    assert f"{'plan' * 20!r}… (100,000 characters)" in said


def test_text_in_a_numeric_column_rejects_that_row_by_name(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """One junk value once refused the whole file: now that row goes to the rejects file,
    naming the column and the value, and a blank cell is a missing value, imputed."""
    store, _ = trained
    frame = customers[0].head(50).copy()
    frame["monetary"] = frame["monetary"].astype(object)
    frame.loc[40, "monetary"] = "n/a-ish"
    frame.loc[12, "monetary"] = "  "
    frame.loc[30, "monetary"] = "inf"  # a number, but no model places it (it crashed)
    frame.loc[45, "monetary"] = "x" * 100_000  # repeated clipped (it was whole)
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    frame.to_csv(source, index=False)
    loaded = store.load("customers")
    done = assign_file(loaded, source, target, id_column="customer_id", chunk_size=20)
    assert (done.rows, done.rejected) == (47, 3)
    assert done.kinds == {
        "column 'monetary' is not a finite number": 1,
        "column 'monetary' is not a number": 2,
    }
    rejects = pd.read_csv(tmp_path / "out.rejects.csv")
    assert rejects.to_dict("records") == [
        {"row": 31, "reason": "column 'monetary' is not a finite number: 'inf'"},
        {"row": 41, "reason": "column 'monetary' is not a number: 'n/a-ish'"},
        {
            "row": 46,
            "reason": f"column 'monetary' is not a number: {'x' * 80!r}… (100,000 characters)",
        },
    ]
    tagged = pd.read_csv(target)
    assert "C000041" not in set(tagged["customer_id"]) and len(tagged) == 47
    blank = frame.loc[[12]].set_index("customer_id")
    blank["monetary"] = np.nan
    expected = loaded.estimator.predict(blank)[0]
    assert tagged.loc[
        tagged["customer_id"] == frame.loc[12, "customer_id"], "segment_id"
    ].item() == (expected)
    assert not list(tmp_path.glob(".*partial"))


# ids that a number parser, or pandas' missing-value markers, would change or lose
ODD_IDS = ["00001", "1", "007", "7", "1e5", "NaN", "nan", "NULL", "N/A", "None", "-", "Zoë-7"]
ODD_IDS += [" 42", "0x1F", "1.0", "+44"]


def odd_id_frame(customers: tuple[pd.DataFrame, np.ndarray]) -> pd.DataFrame:
    """Customers with the odd ids, and one row (the 5th) whose id cell is really empty."""
    frame = customers[0].head(len(ODD_IDS) + 1).copy()
    ids: list[str | None] = list(ODD_IDS)
    ids.insert(4, None)
    frame["customer_id"] = pd.Series(ids, dtype=object)
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_ids_come_out_exactly_as_they_went_in(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
    suffix: str,
) -> None:
    """``00001`` stays ``00001`` (once ``1``), ``007`` and ``7`` are two rows (once both
    ``7``), ``NaN``/``NULL``/``N/A`` are ids (once missing), and the empty id is rejected
    with its row number instead of failing the file; the id column keeps its name."""
    store, _ = trained
    frame = odd_id_frame(customers).rename(columns={"customer_id": "Kunden-Nr"})
    source, target = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    if suffix == ".csv":
        frame.to_csv(source, index=False)
    else:
        frame.to_parquet(source, index=False)
    args = ["assign", "-i", str(source), "-o", str(target), "--store", str(store.root)]
    result = runner.invoke(app, [*args, "--id-column", "Kunden-Nr", "--chunk-size", "5"])
    assert result.exit_code == 0, result.output
    if suffix == ".csv":
        tagged = pd.read_csv(target, dtype=str, keep_default_na=False)
    else:
        tagged = pd.read_parquet(target)
    assert list(tagged.columns) == ["Kunden-Nr", "segment_id", "segment_name"]
    assert tagged["Kunden-Nr"].tolist() == ODD_IDS
    kept = frame[frame["Kunden-Nr"].notna()].drop(columns=["Kunden-Nr"])
    expected = store.load("customers").estimator.predict(kept.reset_index(drop=True))
    assert tagged["segment_id"].tolist() == list(expected)
    rejects = pd.read_csv(tmp_path / "out.rejects.csv")
    assert rejects.to_dict("records") == [{"row": 5, "reason": "no customer id (empty cell)"}]
    assert "rejected 1 row: no customer id: 1 (row numbers" in " ".join(result.output.split())


def test_an_integer_parquet_id_column_becomes_its_decimal_text(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, _ = trained
    frame = customers[0].head(30).copy()
    frame["customer_id"] = np.arange(100, 130, dtype=np.int64)
    source, target = tmp_path / "in.parquet", tmp_path / "out.parquet"
    frame.to_parquet(source, index=False)
    done = assign_file(store.load("customers"), source, target, id_column="customer_id")
    assert done.rows == 30
    tagged = pd.read_parquet(target)
    assert tagged["customer_id"].tolist() == [str(i) for i in range(100, 130)]
    assert "id column 'customer_id' holds numbers; read as their decimal text" in caplog.text


def test_a_file_with_no_id_at_all_is_refused(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
) -> None:
    store, _ = trained
    frame = customers[0].head(5).copy()
    frame["customer_id"] = ""
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    frame.to_csv(source, index=False)
    with pytest.raises(DataError, match="no row of .* has a customer id in column 'customer_id'"):
        assign_file(store.load("customers"), source, target, id_column="customer_id")
    assert not target.exists()
    assert not list(tmp_path.glob("*rejects*"))


def test_assign_uses_the_names_the_service_serves(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """A PATCHed name is what the service answers; the file run must answer it too."""
    import shutil

    from app.registry.overrides import SegmentOverrides
    from app.serving.model import ModelHolder

    shared, _ = trained
    store = ModelStore(tmp_path / "store")
    shutil.copytree(shared.root, store.root)
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    customers[0].head(300).to_csv(source, index=False)
    loaded = store.load("customers")
    first = loaded.estimator.predict(customers[0].head(300))[0]
    SegmentOverrides(store.root / "customers").update(first, {"name": "Renamed by marketing"})

    args = ["assign", "-i", str(source), "-o", str(target), "--store", str(store.root)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    tagged = pd.read_csv(target, dtype=str)
    served = tagged.loc[tagged["segment_id"] == first, "segment_name"].unique().tolist()
    assert served == ["Renamed by marketing"]

    holder = ModelHolder(store, "customers", reload_interval=60.0)
    holder.refresh(force=True)
    assert holder.current is not None
    online = {seg_id: seg.name for seg_id, seg in holder.current.segments.items()}
    offline = dict(zip(tagged["segment_id"], tagged["segment_name"], strict=True))
    assert all(online[seg_id] == name for seg_id, name in offline.items())


def test_a_transaction_log_given_to_a_log_trained_version_says_what_to_give(
    tmp_path: Path, transactions_csv: Path
) -> None:
    """A new user passes the log the model was trained on: the error says why it cannot work."""
    from app.training.job import train
    from tests.conftest import example_config

    store = ModelStore(tmp_path / "store")
    train(example_config("transactions", transactions_csv), store, promote=True)
    loaded = store.load("transactions")
    target = tmp_path / "out.csv"
    with pytest.raises(DataError, match="trained on a transaction log") as error:
        assign_file(loaded, transactions_csv, target, id_column="customer_id")
    assert "recency_days" in str(error.value) and "segments assign --input LOG" in str(error.value)
    assert not target.exists()


def test_as_of_for_a_model_trained_on_a_table_is_refused(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """An audit's ``--as-of 2026-01-01`` on a table model tagged the file and said nothing:
    the date meant nothing to it. Now an error that says so, and nothing is written."""
    store, _ = trained
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    customers[0].head(10).to_csv(source, index=False)
    args = ["assign", "-i", str(source), "-o", str(out), "--store", str(store.root)]
    result = runner.invoke(app, [*args, "--model", "customers", "--as-of", "2026-01-01"])
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "--as-of is a transaction log's reference date; customers was trained on a table" in said
    assert not out.exists()


def test_tagging_rejects_the_ids_and_numbers_the_service_refuses(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """File tagging reads as recording does: an id the API refuses, or a number beyond its
    bound, is a rejected row by name (the id's length and readability follow
    SEGMENTS_MAX_ID_LENGTH's ``max_id``)."""
    store, _ = trained
    frame = customers[0].head(6).copy()
    frame.loc[0, "customer_id"] = "A\u2028B"
    frame.loc[1, "customer_id"] = "x" * 11
    frame.loc[2, "monetary"] = -1e19
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    frame.to_csv(source, index=False)
    done = assign_file(store.load("customers"), source, target, id_column="customer_id", max_id=10)
    assert (done.rows, done.rejected) == (3, 3)
    assert done.kinds == {
        "customer id contains control characters, line separators or bidirectional overrides": 1,
        "customer id longer than 10 characters": 1,
        "column 'monetary' is out of range (magnitude 2^63 or more)": 1,
    }
    tagged = pd.read_csv(target, dtype={"customer_id": str})
    assert tagged["customer_id"].tolist() == frame["customer_id"].iloc[3:].tolist()


def test_categories_training_never_saw_are_counted_and_a_case_variant_is_named(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """An audit's file spelled a category in lower case (`month-to-month`): 447 of 800 rows
    were tagged as none of its categories, silently, while the API names such a value in
    `unknown_categories`. The summary counts them per column and names the known spelling."""
    store, result = trained
    frame = customers[0].head(300).copy()
    known = sorted(next(f for f in result.manifest.features if f.name == "plan").categories or [])
    frame["plan"] = frame["plan"].astype(object)
    frame.loc[frame.index[:120], "plan"] = known[0].upper()  # a case variant, 120 rows
    frame.loc[frame.index[120:125], "plan"] = "platinum"  # never seen, 5 rows
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    frame.to_csv(source, index=False)
    done = assign_file(store.load("customers"), source, out, id_column="customer_id")
    assert done.rows == 300
    assert len(done.unseen) == 1
    line = done.unseen[0]
    assert line.startswith("column 'plan': 125 rows hold categories training never saw")
    assert f"{known[0].upper()!r} is {known[0]!r} in training: fix the spelling" in line
    assert f"{known[0].upper()!r} (120 rows), 'platinum' (5 rows)" in line
    shown = runner.invoke(
        app, ["assign", "-i", str(source), "-o", str(out), "--store", str(store.root)]
    )
    assert shown.exit_code == 0, shown.output
    assert "column 'plan': 125 rows hold categories" in " ".join(shown.output.split())
    # a file of known categories says nothing of them
    customers[0].head(50).to_csv(source, index=False)
    assert assign_file(store.load("customers"), source, out, id_column="customer_id").unseen == []


def test_a_value_near_several_known_spellings_names_them_all_in_one_order() -> None:
    """Training held 'Month-to-month' and 'month-to-month': the hint named one or the other
    from run to run (a set's order); it names both, sorted."""
    from collections import Counter

    from app.batch import UnseenCategories

    unseen = UnseenCategories.__new__(UnseenCategories)
    unseen.known = {"contract": frozenset({"month-to-month", "Month-to-month", "Two year"})}
    unseen.infrequent, unseen.found = set(), {"contract": Counter()}
    unseen.count("contract", ["month-to-month "] * 3 + ["Two year"])
    assert unseen.lines() == [
        "column 'contract': 3 rows hold categories training never saw, read as none of its "
        "categories ('month-to-month ' is 'Month-to-month' or 'month-to-month' in training: "
        "fix the spelling in the file): 'month-to-month ' (3 rows)"
    ]


def test_unseen_categories_count_rows_not_a_columns_dictionary_nor_merged_types() -> None:
    """Found by a review: a Parquet dictionary column's category that no row holds was noted
    with 0 rows; a mixed column's 1 was counted as true (hashing merges them, the model does
    not)."""
    from collections import Counter

    from app.batch import UnseenCategories

    unseen = UnseenCategories.__new__(UnseenCategories)
    unseen.known = {"plan": frozenset({"free", "pro"}), "flag": frozenset({"true", "false"})}
    unseen.infrequent, unseen.found = set(), {"plan": Counter(), "flag": Counter()}
    typed = pd.Series(pd.Categorical(["free", "pro"], categories=["free", "pro", "zzz-never"]))
    unseen.count("plan", typed)
    unseen.count("flag", pd.Series([True, 1, 1, "x"], dtype=object))
    assert unseen.found == {"plan": Counter(), "flag": Counter({"1": 2, "x": 1})}


def test_a_feature_derived_before_training_is_named_with_its_source_column(
    tmp_path: Path,
) -> None:
    """A customer-value table trained on ``days_since_Effective To Date``, derived from the
    date as docs/training.md shows, then tagged from the raw export: the error listed the
    file's columns and said nothing of the preparation the file still needed."""
    from app.batch import check_input

    source = tmp_path / "raw.csv"
    pd.DataFrame({"Customer": ["BU79786"], "Effective To Date": ["2/24/11"]}).to_csv(
        source, index=False
    )
    with pytest.raises(DataError) as caught:
        check_input(source, ["Customer", "days_since_Effective To Date"])
    assert str(caught.value).endswith(
        "'Customer', 'Effective To Date' ('days_since_Effective To Date' was derived from "
        "'Effective To Date' before training: prepare this file the same way, "
        "docs/training.md#preparing-a-file)"
    )
