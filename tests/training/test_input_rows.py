"""Training and log tagging on input rows once read wrong, or fatal to a whole file.

A table row with another number of fields than the header was read shifted (or padded);
one unreadable timestamp or quantity aborted a whole transaction log with a raw pandas
warning; and ``segments assign`` on a log left out its rows without a customer id without
a word. Such rows are now left out, counted and named by reason, in both commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli.main import app
from tests.conftest import EXAMPLES, SHARED_DATA
from tests.training.test_bad_input import good_frame, write_config

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def test_training_leaves_out_misshapen_rows_and_counts_them(tmp_path: Path) -> None:
    frame = good_frame(60)
    lines = frame.to_csv(index=False).splitlines()
    # line 3: spend 1,200 unquoted (5 fields); line 6: a row cut short (2 fields)
    lines[2:2] = ["c-shifted,1,200,3,pro"]
    lines[5:5] = ["c-short,4"]
    data = tmp_path / "table.csv"
    data.write_text("\n".join(lines) + "\n")
    store = tmp_path / "store"
    code, output = _run(
        "train", "--config", str(write_config(tmp_path, data)), "--store", str(store)
    )
    assert code == 0, output
    assert (
        "2 of 62 input rows were left out (another number of fields than the header, "
        "e.g. line 3 has 5 fields, the header 4)"
    ) in output
    manifest = json.loads(next(store.glob("*/*/manifest.json")).read_text())
    assert manifest["data"]["rows"] == 60
    misshapen = "another number of fields than the header"  # the same key in every manifest
    assert manifest["data"]["dropped_reasons"] == {misshapen: 2}
    assert manifest["data"]["dropped_examples"] == {misshapen: "line 3 has 5 fields, the header 4"}


def test_a_row_quoted_whole_says_so_in_the_summary_and_manifest(tmp_path: Path) -> None:
    """The real retail sample's 119 lines quoted whole were left out with the summary saying
    only "e.g. line 111 has 1 field, the header 8"; the cause and its fix were in a log line."""
    frame = good_frame(60)
    lines = frame.to_csv(index=False).splitlines()
    lines[2:2] = ['"c-quoted,1,3,""pro"""']  # an export that quoted the whole row
    data = tmp_path / "table.csv"
    data.write_text("\n".join(lines) + "\n")
    store = tmp_path / "store"
    code, output = _run(
        "train", "--config", str(write_config(tmp_path, data)), "--store", str(store)
    )
    assert code == 0, output
    said = " ".join(output.split())
    example = (
        "line 3 has 1 field, the header 4 (the whole row quoted as one value: unquote such "
        "lines, docs/training.md#rows-quoted-whole)"
    )
    assert f"e.g. {example}" in said, said
    manifest = json.loads(next(store.glob("*/*/manifest.json")).read_text())
    assert manifest["data"]["dropped_examples"] == {
        "another number of fields than the header": example
    }


@pytest.fixture
def retail(tmp_path: Path) -> Path:
    """The real sample log with one unreadable time and one quantity that is a word, both on
    rows that have a customer id."""
    path = SHARED_DATA / "online_retail_sample.csv"
    if not path.exists():
        pytest.skip(f"real dataset {path} is not present (it lives outside the repository)")
    lines = path.read_bytes().split(b"\r\n")  # edited as text: the rest stays byte for byte
    for number, column, value in ((6, 4, b"not a date"), (10, 3, b"lots")):
        fields = lines[number].split(b",")
        assert len(fields) == 8 and fields[6]  # a plain line, with a customer id
        fields[column] = value
        lines[number] = b",".join(fields)
    changed = tmp_path / "retail.csv"
    changed.write_bytes(b"\r\n".join(lines))
    return changed


def test_an_unreadable_time_or_amount_leaves_out_its_row_in_train_and_assign(
    tmp_path: Path, retail: Path
) -> None:
    store = tmp_path / "store"
    config = EXAMPLES / "online_retail.toml"
    code, output = _run(
        "train", "--config", str(config), "--data", str(retail), "--store", str(store), "--promote"
    )
    assert code == 0, output
    assert "UserWarning" not in output and "error" not in output
    # the sample's 119 lines quoted whole (one field each) were once rows without an id
    reasons = (
        "no customer id: 2,239; time not readable, e.g. 'not a date': 1; "
        "amount not a number, e.g. 'lots': 1; another number of fields than the header, "
        "e.g. line 111 has 1 field, the header 8 (the whole row quoted as one value: unquote "
        "such lines, docs/training.md#rows-quoted-whole): 119"
    )
    assert reasons in output
    out = tmp_path / "tagged.csv"
    code, output = _run("assign", "-i", str(retail), "-o", str(out), "--store", str(store))
    assert code == 0, output
    assert "UserWarning" not in output
    assert f"2,360 of 8,373 rows of retail.csv were left out ({reasons})" in output
    assert len(pd.read_csv(out)) > 0


def test_a_timestamp_column_mostly_unreadable_asks_for_its_format(
    tmp_path: Path, retail: Path
) -> None:
    """Rows are left out when a few cannot be read; when most cannot, the format is wrong."""
    log = pd.read_csv(retail, dtype=str, keep_default_na=False)
    log["InvoiceDate"] = pd.to_datetime(log["InvoiceDate"], errors="coerce").dt.strftime(
        "%d.%m.%Y um %H:%M"
    )
    log.to_csv(retail, index=False)
    config = EXAMPLES / "online_retail.toml"
    code, output = _run(
        "train", "--config", str(config), "--data", str(retail), "--store", str(tmp_path / "s")
    )
    assert code == 1
    assert output.count("error:") == 1 and "UserWarning" not in output
    # every row but the 120 without a time (119 blank in the sample, one "not a date")
    assert "column 'InvoiceDate' is not a timestamp in 8,253 of 8,373 rows" in output
    assert "set timestamp_format" in output


def test_the_docs_lines_for_rows_quoted_whole_give_every_row_back(tmp_path: Path) -> None:
    """The hint said "unquote such lines" and no more; it now names the docs' lines, which,
    run as written, write each row quoted whole as the row it holds (a value with a comma
    and quotes inside too) and leave every other line as it was: the file trains whole."""
    import re
    import subprocess
    import sys

    from tests.conftest import ROOT

    frame = good_frame(60)
    lines = frame.to_csv(index=False).splitlines()
    lines[2:2] = ['"c-quoted,1,3,""pro"""', '"c-comma,2,4,""pro, annual"""']
    (tmp_path / "online_retail.csv").write_text("\n".join(lines) + "\n")
    docs = (ROOT / "docs" / "training.md").read_text()
    hint = "unquote such lines, docs/training.md#rows-quoted-whole"
    block = re.search(r"```python\n(.*?)```", docs[docs.index("### Rows quoted whole") :], re.S)
    assert block, "docs/training.md has no lines for rows quoted whole"
    done = subprocess.run(
        [sys.executable, "-c", block.group(1)], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    written = pd.read_csv(tmp_path / "online_retail_unquoted.csv", dtype=str)
    assert len(written) == 62 and written.iloc[2].tolist() == ["c-comma", "2", "4", "pro, annual"]
    pd.testing.assert_frame_equal(
        written.drop(index=[1, 2]).reset_index(drop=True), frame.astype(str)
    )
    store = tmp_path / "store"
    config = write_config(tmp_path, tmp_path / "online_retail.csv")
    code, output = _run("train", "--config", str(config), "--store", str(store))
    assert code == 0 and hint in output, output
    config = write_config(tmp_path, tmp_path / "online_retail_unquoted.csv")
    code, output = _run("train", "--config", str(config), "--store", str(store))
    assert code == 0 and "left out" not in output, output
