"""`segments assign` on customer files that were once read wrong, or silently.

Each case is a file a user could hand over: a row with an unquoted thousands comma (read
shifted, recorded with the plan "900"), a short row (imputed without a word), an output path
that is the input (overwritten), a customer twice (tagged twice), and a Parquet file whose
numbers are stored as text with ``NA`` (refused, where the same CSV read it as missing).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli.main import app
from app.registry.store import ModelStore
from app.training.job import TrainResult

runner = CliRunner()
# 16 fields: "1,200" written as 1,200 without quotes splits monetary in two
SHIFTED = "C1,12,14,2,480,170,22,0.7,1,900,pro,organic,DE,0,0,0"
SHORT = "C9,1,2,3"


def _assign(store: ModelStore, source: Path, target: Path, *more: str) -> tuple[int, str]:
    args = ["assign", "-i", str(source), "-o", str(target), "--store", str(store.root), *more]
    result = runner.invoke(app, args)
    return result.exit_code, " ".join(result.output.split())


def _with_lines(frame: pd.DataFrame, path: Path, *lines: str, after: int = 1) -> None:
    """Write ``frame`` as CSV with ``lines`` inserted after its ``after``-th data row."""
    text = frame.to_csv(index=False).splitlines()
    path.write_text("\n".join([*text[: after + 1], *lines, *text[after + 1 :]]) + "\n")


def test_a_row_with_another_field_count_is_rejected_naming_its_line(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """Line 3 has 16 fields: once read shifted (C1 tagged with plan "900", channel "pro"),
    and a short row tagged from imputed medians; now both are rejected with their line."""
    store, _ = trained
    frame = customers[0].head(30)
    source, target = tmp_path / "shift.csv", tmp_path / "out.csv"
    _with_lines(frame, source, SHIFTED, after=1)  # line 3 (the header is line 1)
    with source.open("a") as handle:
        handle.write(SHORT + "\n")
    code, output = _assign(store, source, target, "--chunk-size", "7")
    assert code == 0, output
    assert "tagged 30 customers" in output and "rejected 2 rows" in output
    assert "rejected 2 rows: another number of fields than the header: 2 (row numbers" in output
    tagged = pd.read_csv(target, dtype=str)
    assert tagged["customer_id"].tolist() == frame["customer_id"].tolist()
    expected = store.load("customers").estimator.predict(frame.set_index("customer_id"))
    assert tagged["segment_id"].tolist() == list(expected)  # the rows after it are not shifted
    rejects = pd.read_csv(tmp_path / "out.rejects.csv")
    assert rejects.to_dict("records") == [
        {"row": 2, "reason": "line 3 has 16 fields, the header 15"},
        {"row": 32, "reason": "line 33 has 4 fields, the header 15"},
    ]


def test_rows_quoted_whole_are_named_so(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """The UCI retail log's copy has 119 lines quoted whole, their own quotes doubled
    (``"536381,82567,""AIRLINE LOUNGE,METAL SIGN"",2,..."``): each was "line 111 has 1 field"
    with the advice about unquoted commas, and the summary listed every line as its own kind."""
    store, _ = trained
    frame = customers[0].head(30)
    text = frame.to_csv(index=False).splitlines()
    quoted = ['"' + line.replace('"', '""') + '"' for line in (text[5], text[9])]
    source, target = tmp_path / "quoted.csv", tmp_path / "out.csv"
    source.write_text("\n".join([*text[:5], quoted[0], *text[6:9], quoted[1], *text[10:]]) + "\n")
    code, output = _assign(store, source, target)
    assert code == 0, output
    assert "rejected 2 rows" in output
    assert "another number of fields than the header: 2" in output  # one kind, counted
    rejects = pd.read_csv(tmp_path / "out.rejects.csv")
    assert rejects["reason"].tolist() == [
        "line 6 has 1 field, the header 15: the whole row is quoted as one value",
        "line 10 has 1 field, the header 15: the whole row is quoted as one value",
    ]
    from app.training.data import misshapen_summary
    from app.training.shape import misshapen_rows

    said = misshapen_summary(misshapen_rows(source))
    assert "2 rows are quoted whole as one value: unquote such lines" in said, said
    assert "unquoted comma" not in said, said


def test_a_file_of_only_a_shifted_row_is_refused_not_tagged_as_another_customer(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """pandas took the first column as the index: the row was tagged as customer ``12``."""
    store, _ = trained
    source, target = tmp_path / "shift.csv", tmp_path / "out.csv"
    source.write_text(",".join(customers[0].columns) + "\n" + SHIFTED + "\n")
    code, output = _assign(store, source, target)
    assert code == 1
    assert "every row was rejected, e.g. line 2 has 16 fields, the header 15" in output
    assert not target.exists()


def test_a_quoted_comma_and_a_quoted_line_break_are_no_misshapen_rows(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """The check counts fields as a CSV reader does: the line a row starts on, past a
    value that holds a line break."""
    store, _ = trained
    frame = customers[0].head(10).copy()
    frame["country"] = frame["country"].astype(object)
    frame.loc[2, "country"] = "Bonaire,\nSint Eustatius"
    source, target = tmp_path / "quoted.csv", tmp_path / "out.csv"
    _with_lines(frame, source, SHIFTED, after=5)  # after the 5th physical line of data
    code, output = _assign(store, source, target)
    assert code == 0, output
    rejects = pd.read_csv(tmp_path / "out.rejects.csv")
    # data row 5 starts on line 7: row 3's quoted value spans lines 4 and 5
    assert rejects.to_dict("records") == [
        {"row": 5, "reason": "line 7 has 16 fields, the header 15"}
    ]
    assert pd.read_csv(target, dtype=str)["customer_id"].tolist() == frame["customer_id"].tolist()


@pytest.mark.parametrize("how", ["same path", "another spelling", "a hard link"])
def test_the_output_may_not_be_the_input(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
    how: str,
) -> None:
    """x.csv once ended up holding the 3 tagged columns only."""
    store, _ = trained
    source = tmp_path / "x.csv"
    customers[0].head(20).to_csv(source, index=False)
    before = source.read_bytes()
    target = {
        "same path": source,
        "another spelling": tmp_path / "sub" / ".." / "x.csv",
        "a hard link": tmp_path / "link.csv",
    }[how]
    (tmp_path / "sub").mkdir()
    if how == "a hard link":
        os.link(source, target)
    code, output = _assign(store, source, target)
    assert code == 1
    assert "is the input file" in output and "write the output to another file" in output
    assert source.read_bytes() == before
    assert not list(tmp_path.glob("*rejects*")) and not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize("record", [False, True], ids=["tag", "record"])
def test_an_output_that_is_a_folder_is_refused_by_name_before_anything_is_done(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
    record: bool,
) -> None:
    """A hostile audit's `--output` naming an existing folder tagged the whole file, then
    ended in a traceback (IsADirectoryError on the final rename)."""
    store, _ = trained
    source = tmp_path / "x.csv"
    customers[0].head(20).to_csv(source, index=False)
    folder = tmp_path / "out"
    folder.mkdir()
    result = runner.invoke(
        app,
        ["assign", "-i", str(source), "-o", str(folder), "--store", str(store.root)]
        + (["--record"] if record else []),
    )
    output = " ".join(result.output.split())
    assert result.exit_code == 1, output
    assert isinstance(result.exception, SystemExit), result.exception
    assert f"error: --output {folder} is a folder" in output, output
    assert not list(folder.iterdir()) and not list(tmp_path.glob(".*partial"))


def test_a_repeated_id_is_tagged_once_from_its_last_row(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """Two rows of C000001 were tagged into two segments without a word."""
    store, _ = trained
    frame = customers[0].head(40).reset_index(drop=True)
    estimator = store.load("customers").estimator
    segments = estimator.predict(frame.set_index("customer_id"))
    other = int(np.flatnonzero(segments != segments[0])[0])
    again = frame.iloc[[other]].assign(customer_id=frame.loc[0, "customer_id"])
    source, target = tmp_path / "twice.csv", tmp_path / "out.parquet"
    pd.concat([frame, again]).to_csv(source, index=False)
    code, output = _assign(store, source, target, "--chunk-size", "16")
    assert code == 0, output
    assert "tagged 40 customers" in output and "rejected 1 row" in output
    assert "rejected 1 row: duplicate id (a later row is used): 1 (row numbers" in output
    tagged = pd.read_parquet(target)
    first = frame.loc[0, "customer_id"]
    assert tagged["customer_id"].tolist() == [*frame["customer_id"][1:], first]
    assert tagged.set_index("customer_id").loc[first, "segment_id"] == segments[other]
    rejects = pd.read_csv(tmp_path / "out.rejects.csv")
    assert rejects.to_dict("records") == [
        {"row": 1, "reason": f"duplicate id {first!r}: row 41 has it too (that row is used)"}
    ]
    # the later row rejected too (a bank file's '1,200'): it is not used, and the customer
    # is not tagged; the earlier row's reason said "(that row is used)"
    junk = again.assign(monetary="1,200")
    pd.concat([frame, junk]).to_csv(source, index=False)
    code, output = _assign(store, source, target, "--chunk-size", "100")
    assert code == 0, output
    assert "tagged 39 customers" in output and "rejected 2 rows" in output
    assert "duplicate id (its later row rejected too: not tagged): 1" in output
    rejects = pd.read_csv(tmp_path / "out.rejects.csv")
    assert rejects["reason"].tolist()[0] == (
        f"duplicate id {first!r}: row 41 has it too, and is rejected: this customer is not "
        "tagged (fix that row)"
    )
    assert first not in pd.read_parquet(target)["customer_id"].tolist()


def test_na_in_a_parquet_text_column_is_missing_as_in_a_csv(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """A Parquet file's numbers stored as text: ``NA`` was "not a number" there, and a
    missing value in the same file as CSV; both now tag it as missing (imputed)."""
    store, _ = trained
    frame = customers[0].head(12).copy()
    frame["monetary"] = frame["monetary"].map(repr).astype(object)
    frame.loc[[3, 7], "monetary"] = "NA"
    answers = []
    for suffix in (".parquet", ".csv"):
        source, target = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}.csv"
        if suffix == ".parquet":
            frame.to_parquet(source, index=False)
        else:
            frame.to_csv(source, index=False)
        code, output = _assign(store, source, target)
        assert code == 0, output
        assert "tagged 12 customers" in output and "rejected" not in output
        answers.append(pd.read_csv(target, dtype=str))
    pd.testing.assert_frame_equal(answers[0], answers[1])
    blank = frame.set_index("customer_id").replace({"NA": np.nan}).astype({"monetary": float})
    expected = store.load("customers").estimator.predict(blank)
    assert answers[0]["segment_id"].tolist() == list(expected)


def test_a_parquet_column_of_booleans_with_nulls_is_read_not_a_crash(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """pyarrow gives a boolean column with nulls as an object column of True, False and None,
    on which the check for cells of spaces (``.str``) raised: a traceback, no file tagged."""
    store, _ = trained
    frame = customers[0].head(12).copy()
    frame["channel"] = pd.Series([True, False, None] * 4, dtype=object)
    source, target = tmp_path / "flags.parquet", tmp_path / "out.csv"
    frame.to_parquet(source, index=False)
    code, output = _assign(store, source, target)
    assert code == 0, output
    assert "tagged 12 customers" in output and "rejected" not in output
    tagged = pd.read_csv(target, dtype=str)
    expected = store.load("customers").estimator.predict(frame.set_index("customer_id"))
    assert tagged["segment_id"].tolist() == list(expected)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_with_a_header_and_no_rows_is_tagged_as_no_customer(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, np.ndarray],
    suffix: str,
) -> None:
    """A nightly file with no customer that day failed the job (exit 1), as `--record` of
    the same file did not: it is tagged as none, into an output with the header only."""
    store, _ = trained
    source, target = tmp_path / "today.csv", tmp_path / f"out{suffix}"
    source.write_text(",".join(customers[0].columns) + "\n")
    code, output = _assign(store, source, target)
    assert code == 0, output
    assert "tagged 0 customers" in output and "(the input has no rows)" in output
    written = pd.read_csv(target) if suffix == ".csv" else pd.read_parquet(target)
    assert list(written.columns) == ["customer_id", "segment_id", "segment_name"]
    assert written.empty
