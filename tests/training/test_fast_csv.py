"""The multi-threaded CSV reader gives the frame the usual reader gives, or steps aside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from app.training.data import csv_options, read_csv_fast

ROWS = [
    "id,spend,visits,plan,total,score,note",
    "007,12.5,3,basic,100.25, ,x",
    "7,0.1,4,pro,NA,2.75,",
    "0042,1e3,,plus,?,3,y",
    "a-1,-0.30000000000000004,5,,7.5,NaN,z",
    "b 2,3.14159265358979,6,basic, 12 ,4,w",
]


def usual(path: Path, columns: list[str], markers: tuple[str, ...]) -> pd.DataFrame:
    options = csv_options("id", columns, markers)
    return pd.read_csv(path, **options)


def test_the_fast_reader_gives_the_usual_frame(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("\n".join(ROWS) + "\n")
    every = ["id", "spend", "visits", "plan", "total", "score", "note"]
    for columns in (every, ["spend", "id", "plan", "total", "score"]):
        fast = read_csv_fast(path, columns, "id", ("?",))
        assert fast is not None
        expected = usual(path, columns, ("?",))
        # ids as written (leading zeros kept), blank text stays text for the numeric reader
        assert fast["id"].tolist() == ["007", "7", "0042", "a-1", "b 2"]
        pd.testing.assert_frame_equal(fast, expected, check_exact=True)
    assert np.isnan(fast.loc[2, "total"]) and fast.loc[0, "score"] == " "


def test_where_the_readers_could_differ_the_fast_one_steps_aside(tmp_path: Path) -> None:
    cases = {
        "an id written NaN": "id,x\n1,2\nNaN,3\n",
        "an empty id": "id,x\n1,2\n,3\n",
        "a boolean column": "id,x\n1,True\n2,False\n",
        "a date column": "id,x\n1,2026-01-02\n2,2026-01-03\n",
        "an all-empty column": "id,x\n1,\n2,\n",
        "a duplicated header": "id,x,x\n1,2,3\n",
        "a ragged row": "id,x\n1,2,3\n",
    }
    for what, text in cases.items():
        path = tmp_path / "c.csv"
        path.write_text(text)
        assert read_csv_fast(path, ["id", "x"], "id", ()) is None, what
