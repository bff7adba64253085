"""A numeric feature's text is read over HTTP as the file readers read the same cell.

A tester sent ``"satisfaction": "NA"`` and ``"age": "39"``: both were a 422 ("must be a
number"), while the same cells of the CSV are a missing value (imputed) and the number 39.
Now a request's blank text, a missing marker (pandas' usual ones, ``[data] missing_values``)
or a plain number written as text is read as the file's cell, on every path (single, the
batch's both ways, merged over a stored profile); a number written for people (``$1,200``,
``45%``), which the file refuses too, stays a 422 that says what is accepted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli.main import app
from app.registry.store import ModelStore
from app.training.config import parse_config
from app.training.job import train
from tests.assignment.conftest import served_client

PREFIX = "numeric-text:"
N = 1200
# how a request writes a missing satisfaction: as the file's cells do, and more
MISSING_TEXT = ["NA", "?", "", "   ", "n/a", "NULL"]


@pytest.fixture(scope="module")
def survey(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelStore, pd.DataFrame, Path]:
    """Customers whose segments follow age and satisfaction; a fifth of satisfaction is
    missing, written ``NA`` or ``?`` (``[data] missing_values``) in the file; trained and
    promoted."""
    folder = tmp_path_factory.mktemp("numeric-text")
    rng = np.random.default_rng(8)
    group = rng.choice(3, N)
    age = np.round(np.array([25.0, 45.0, 65.0])[group] + rng.normal(0, 4, N))
    satisfaction = np.round(np.array([8.0, 3.0, 6.0])[group] + rng.normal(0, 0.8, N), 1)
    written = satisfaction.astype(str).astype(object)
    gaps = rng.random(N) < 0.2
    written[gaps] = np.where(rng.random(N) < 0.5, "NA", "?")[gaps]
    frame = pd.DataFrame(
        {
            "customer_id": [f"s{i}" for i in range(N)],
            "age": age.astype(int),
            "satisfaction": written,
        }
    )
    data = folder / "survey.csv"
    frame.to_csv(data, index=False)
    raw = {
        "data": {"path": str(data), "missing_values": ["?"]},
        "features": [{"name": "age"}, {"name": "satisfaction", "impute": "zero"}],
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0, "seed": 2},
    }
    store = ModelStore(folder / "store")
    result = train(parse_config(raw, base_dir=folder), store, promote=True)
    assert result.manifest.data.missing_cells["satisfaction"] == int(gaps.sum())
    return store, frame, data


@pytest.fixture(scope="module")
def client(
    survey: tuple[ModelStore, pd.DataFrame, Path], service_redis: str
) -> Iterator[TestClient]:
    with served_client(survey[0].root, PREFIX, service_redis) as test_client:
        yield test_client


def _tagged(store: ModelStore, data: Path, out: Path) -> pd.Series:
    paths = ["--input", str(data), "--output", str(out), "--store", str(store.root)]
    result = CliRunner().invoke(app, ["assign", *paths])
    assert result.exit_code == 0, result.output
    return pd.read_csv(out, dtype=str).set_index("customer_id")["segment_id"]


def _items(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as requests whose numbers are text (``"39"``, ``" 6.5 "``, ``"3.1e0"``), a
    missing satisfaction written each way a request may write it."""
    items = []
    for i, (cid, age, satisfaction) in enumerate(frame.itertuples(index=False)):
        if satisfaction in ("NA", "?"):
            said = MISSING_TEXT[i % len(MISSING_TEXT)]
        else:
            said = [satisfaction, f" {satisfaction} ", f"{float(satisfaction):e}"][i % 3]
        features = {"age": [str(age), f"{age}.0", f" {age}"][i % 3], "satisfaction": said}
        items.append({"customer_id": cid, "features": features})
    return items


def test_numbers_and_markers_written_as_text_are_assigned_as_the_files_cells(
    survey: tuple[ModelStore, pd.DataFrame, Path], client: TestClient, tmp_path: Path
) -> None:
    store, frame, data = survey
    expected = _tagged(store, data, tmp_path / "tagged.csv")
    assert expected.nunique() == 3
    serving = client.app.state.holder.current  # type: ignore[attr-defined]
    # (a missing satisfaction is imputed as zero: read as a number, those customers would
    # be placed elsewhere, so this can tell)
    assert serving.assign_one({"age": 25, "satisfaction": None}).segment_id != (
        serving.assign_one({"age": 25, "satisfaction": 8.0}).segment_id
    )

    def check(results: list[dict[str, Any]]) -> None:
        got = {r["customer_id"]: r["segment_id"] for r in results if r["status"] == "ok"}
        assert len(got) == N, [r for r in results if r["status"] != "ok"][:3]
        differ = [c for c in frame["customer_id"] if got[c] != expected[c]]
        assert not differ, f"{len(differ)} of {N} customers differ from the file"

    items = _items(frame)
    fast = client.post("/v1/assign/batch", json={"items": items})  # the decoder declines
    assert fast.status_code == 200, fast.text
    check(fast.json()["results"])
    bad = {"customer_id": "bad", "features": {}}  # one bad item: item by item
    slow = client.post("/v1/assign/batch", json={"items": [*items, bad]})
    assert slow.status_code == 200, slow.text
    check(slow.json()["results"])

    for item in items[:: N // 40]:  # one at a time, then merged over the profile it stored
        cid = item["customer_id"]
        one = client.post("/v1/assign", json=item)
        assert one.status_code == 200, (item, one.text)
        assert one.json()["segment_id"] == expected[cid], item
        sent = {"satisfaction": item["features"]["satisfaction"]}
        merged = client.post("/v1/assign", json={"customer_id": cid, "features": sent})
        assert merged.status_code == 200, merged.text
        assert merged.json()["features_from"] == "merged"
        assert merged.json()["segment_id"] == expected[cid], item


def test_a_padded_marker_is_missing_in_the_file_as_over_http(
    survey: tuple[ModelStore, pd.DataFrame, Path], client: TestClient, tmp_path: Path
) -> None:
    """`` NA `` (pandas' marker with spaces around it, as a fixed-width export pads it) in a
    numeric column: the API read it as missing, trimmed as a number (`` 39 ``) or a listed
    marker (`` ? ``) is, while training stopped (the column "holds text") and ``segments
    assign`` rejected the row. Now the file reads it as missing too, so both agree."""
    store, frame, data = survey
    padded = frame.copy()
    gaps = padded["satisfaction"].isin(["NA", "?"]).to_numpy()
    spellings = np.array([" NA ", "n/a  ", "  NULL", " ? "], dtype=object)
    padded.loc[gaps, "satisfaction"] = spellings[np.arange(gaps.sum()) % len(spellings)]
    source = tmp_path / "padded.csv"
    padded.to_csv(source, index=False)
    raw = {
        "data": {"path": str(source), "missing_values": ["?"]},
        "features": [{"name": "age"}, {"name": "satisfaction", "impute": "zero"}],
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0, "seed": 2},
    }
    retrained = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "store"))
    assert retrained.manifest.data.missing_cells["satisfaction"] == int(gaps.sum())
    assert "satisfaction" not in retrained.manifest.data.text_as_missing
    expected = _tagged(store, data, tmp_path / "tagged.csv")
    tagged = _tagged(store, source, tmp_path / "padded-tagged.csv")  # no row rejected
    assert tagged.sort_index().equals(expected.sort_index())
    items = [
        {"customer_id": cid, "features": {"age": int(age), "satisfaction": said}}
        for cid, age, said in padded[gaps].itertuples(index=False)
    ]
    answer = client.post("/v1/assign/batch", json={"items": items})
    assert answer.status_code == 200, answer.text
    got = {r["customer_id"]: r["segment_id"] for r in answer.json()["results"]}
    assert got == {cid: expected[cid] for cid in got} and len(got) == int(gaps.sum())


def test_text_the_file_refuses_is_a_422_saying_what_is_accepted(client: TestClient) -> None:
    """A number written for people, a word: the file's reader refuses such a cell (training
    stops, ``segments assign`` rejects the row); a number past a JSON one's bounds too."""
    for value, says in [
        ("$1,200", "plain number"),
        ("45%", "plain number"),
        ("1,234.50", "plain number"),
        ("lots", "plain number"),
        ("1e400", "finite"),
        ("9223372036854775808", "out of range"),
    ]:
        features = {"age": value, "satisfaction": 5}
        response = client.post("/v1/assign", json={"customer_id": "x1", "features": features})
        assert response.status_code == 422, (value, response.text)
        error = response.json()["errors"][0]
        assert error["field"] == "features.age"
        assert says in error["message"], (value, error)
        batch = client.post(
            "/v1/assign/batch", json={"items": [{"customer_id": "x1", "features": features}]}
        )
        assert batch.json()["results"][0]["errors"] == [{**error, "field": "items.0.features.age"}]


def test_junk_of_an_errors_missing_feature_is_missing_as_the_files_cell() -> None:
    """``errors = "missing"``: the file reads a junk cell (``unknown``) as missing, and the
    API answered 422 for the same text (a hostile test); a number written for people stays
    refused by both, and a feature without the option still refuses junk."""
    from app.assignment.validation import ItemInvalid, parse_item
    from app.errors import DataError
    from app.training.markers import markers_of
    from app.training.values import numeric_column

    markers = markers_of([{"name": "spend", "errors": "missing"}, {"name": "age"}])
    kinds = {"spend": "numeric", "age": "numeric"}

    def sent(spend: str, age: object = 30) -> dict[str, Any]:
        item = {"customer_id": "c", "features": {"spend": spend, "age": age}}
        return parse_item(item, kinds, 64, feature_markers=markers)[1]

    for text in ["unknown", "abc", "n.a.", "-", "12", " 7.5 "]:
        cells = pd.DataFrame({"spend": [text, "1"]})
        values, _ = numeric_column(cells, "spend", "f.csv", junk_is_missing=True)
        read = values.iloc[0]
        got = sent(text)["spend"]
        assert (got is None and pd.isna(read)) or got == read, (text, got, read)
    # other locales' 1.234,56 or 21,3 % too (as missing, the biggest accounts became the median)
    people = ["$1,200", "45%", "1.234,56", "12.345.678", "1.234,5 €", "1 234,56", "1'234.5"]
    people += ["21,3 %", "12,50 €"]
    people += ["(1,234.50)", "($75)", "(12.5)"]  # debits as accounts write them
    for text in people:
        with pytest.raises(DataError):
            numeric_column(pd.DataFrame({"spend": [text]}), "spend", "f", junk_is_missing=True)
        with pytest.raises(ItemInvalid):
            sent(text)
    with pytest.raises(ItemInvalid):
        sent("12", age="unknown")


def test_a_sentinel_is_matched_as_the_file_reads_the_number() -> None:
    """``pdays = -1`` is missing as -1, "-1.0" or " -1 ", but a full-width "-１" is text no
    file reader takes for a number (Python's ``float`` does): not the sentinel."""
    from app.training.markers import markers_of

    pdays = markers_of([{"name": "pdays", "missing_values": ["-1"]}])["pdays"]
    assert all(pdays.hit(v, "numeric") for v in (-1, -1.0, "-1.0", " -1 ", "-1e0"))
    assert not any(pdays.hit(v, "numeric") for v in ("-\uff11", "1", -2, "-1_0"))
