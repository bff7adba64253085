"""A file's TRUE/FALSE cells are read over HTTP as the file readers read them.

Training and ``segments assign`` read a categorical column of ``TRUE``/``FALSE`` as booleans
(the categories learnt are true and false) and a numeric one as 1 and 0, while the API took
the file's text ``"TRUE"`` for a category it had never seen (2 of 300 customers of a SaaS
table got another segment over HTTP than in the file's tagging) and refused it, or a JSON
true, for a numeric feature (422 "must be a number").
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
from app.training.values import parse_numbers
from tests.assignment.conftest import served_client

PREFIX = "boolean-values:"
SPELLINGS = {True: ["TRUE", "True", "true"], False: ["FALSE", "False", "false"]}


@pytest.fixture(scope="module")
def accounts(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelStore, pd.DataFrame, Path]:
    """Accounts whose segments follow a TRUE/FALSE categorical column (``sso``) and a
    TRUE/FALSE numeric one (``auto_renew``), written as a spreadsheet writes them, trained
    and promoted."""
    folder = tmp_path_factory.mktemp("booleans")
    rng = np.random.default_rng(5)
    n = 1200
    group = rng.choice(3, n)
    sso = np.where(group == 0, True, rng.random(n) < 0.15)
    renew = np.where(group == 1, rng.random(n) < 0.9, rng.random(n) < 0.2)
    frame = pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(n)],
            "mrr": np.round(rng.normal(100 + 60 * group, 25, n), 2),
            "sso": np.where(sso, "TRUE", "FALSE"),
            "auto_renew": np.where(renew, "TRUE", "FALSE"),
        }
    )
    data = folder / "accounts.csv"
    frame.to_csv(data, index=False)
    raw = {
        "data": {"path": str(data), "id_column": "account_id"},
        "features": [
            {"name": "mrr"},
            {"name": "sso", "type": "categorical"},
            {"name": "auto_renew"},
        ],
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0},
    }
    store = ModelStore(folder / "store")
    result = train(parse_config(raw, base_dir=folder), store, promote=True)
    sso_feature = next(f for f in result.manifest.features if f.name == "sso")
    assert sorted(sso_feature.categories or []) == ["false", "true"]  # learnt as booleans
    return store, frame, data


@pytest.fixture(scope="module")
def client(
    accounts: tuple[ModelStore, pd.DataFrame, Path], service_redis: str
) -> Iterator[TestClient]:
    with served_client(accounts[0].root, PREFIX, service_redis) as test_client:
        yield test_client


def _items(frame: pd.DataFrame, write: Any) -> list[dict[str, Any]]:
    """Each row as a request, its TRUE/FALSE cells written by ``write(cell, row number)``."""
    return [
        {
            "customer_id": cid,
            "features": {"mrr": mrr, "sso": write(sso, i), "auto_renew": write(renew, i)},
        }
        for i, (cid, mrr, sso, renew) in enumerate(frame.itertuples(index=False))
    ]


def _as_written(cell: str, _: int) -> str:
    return cell  # the file's literal text: "TRUE"


def _as_json(cell: str, _: int) -> bool:
    return cell == "TRUE"


def _any_spelling(cell: str, i: int) -> str:
    return SPELLINGS[cell == "TRUE"][i % 3]  # TRUE, True, true (as pandas reads each)


def test_a_files_booleans_are_assigned_over_http_as_in_the_file(
    accounts: tuple[ModelStore, pd.DataFrame, Path], client: TestClient, tmp_path: Path
) -> None:
    store, frame, data = accounts
    out = tmp_path / "tagged.csv"
    tagged = CliRunner().invoke(
        app, ["assign", "--input", str(data), "--output", str(out), "--store", str(store.root)]
    )
    assert tagged.exit_code == 0, tagged.output
    expected = pd.read_csv(out, dtype=str).set_index("account_id")["segment_id"]
    assert len(expected) == len(frame) and expected.nunique() == 3
    # the booleans decide segments: read as a category never seen, some customers move
    unseen = _items(frame, lambda cell, _: float(cell == "TRUE"))
    for item in unseen:
        item["features"]["sso"] = "never seen"
    moved = client.post("/v1/assign/batch", json={"items": unseen}).json()["results"]
    assert sum(r["segment_id"] != expected[r["customer_id"]] for r in moved) > 10

    for write in (_as_written, _as_json, _any_spelling):
        items = _items(frame, write)
        # a valid batch (the one-pass decoder) and one with a bad item (item by item)
        fast = client.post("/v1/assign/batch?explain=true", json={"items": items})
        assert fast.status_code == 200, fast.text
        bad = {"customer_id": "bad", "features": {}}
        slow = client.post("/v1/assign/batch", json={"items": [*items, bad]})
        assert slow.status_code == 200, slow.text
        for body in (fast.json(), slow.json()):
            ok = [r for r in body["results"] if r["status"] == "ok"]
            assert len(ok) == len(frame), write.__name__
            differ = [r["customer_id"] for r in ok if r["segment_id"] != expected[r["customer_id"]]]
            assert not differ, f"{write.__name__}: {len(differ)} of {len(frame)} differ"
        unseen = [r["explanation"].get("unknown_categories") for r in fast.json()["results"]]
        assert not any(unseen), f"{write.__name__}: a boolean was called an unseen category"

        # one at a time, then by id from the stored profile, then merged over it
        for item in items[:: len(items) // 30]:
            cid = item["customer_id"]
            one = client.post("/v1/assign", json=item)
            assert one.status_code == 200, one.text
            assert one.json()["segment_id"] == expected[cid], (write.__name__, item)
            again = client.post("/v1/assign", json={"customer_id": cid})
            assert again.status_code == 200, again.text
            assert again.json()["segment_id"] == expected[cid], (write.__name__, item)
            sent = {"sso": item["features"]["sso"]}
            merged = client.post("/v1/assign", json={"customer_id": cid, "features": sent})
            assert merged.status_code == 200, merged.text
            assert merged.json()["features_from"] == "merged"
            assert merged.json()["segment_id"] == expected[cid], (write.__name__, item)


def test_other_text_is_still_refused_as_a_number(client: TestClient) -> None:
    """Only the spellings a file reader takes for booleans are 1 or 0: ``yes`` is not."""
    for value in ("yes", "T", "Y"):
        features = {"mrr": 100.0, "sso": True, "auto_renew": value}
        response = client.post("/v1/assign", json={"customer_id": "x1", "features": features})
        assert response.status_code == 422, (value, response.text)
        assert response.json()["errors"][0]["field"] == "features.auto_renew"


def test_a_numeric_columns_booleans_are_1_and_0_whatever_else_it_holds() -> None:
    """pandas reads a column of only TRUE/FALSE as booleans, but one with a blank cell, or
    a 1 beside them, as text: training refused it ("holds text") and ``segments assign``
    rejected every such row of a chunk. Each cell reads alike in any column."""
    for cells, want in [
        ([True, None, False], [1.0, None, 0.0]),  # a reader's booleans beside a blank
        (["TRUE", "1", "0", "false"], [1.0, 1.0, 0.0, 0.0]),
        ([" True", "FALSE ", "2.5"], [1.0, 0.0, 2.5]),
    ]:
        parsed = parse_numbers(pd.Series(cells, dtype=object))
        got = [None if np.isnan(v) else v for v in parsed.values]
        assert got == want and not parsed.junk.any(), cells
    parsed = parse_numbers(pd.Series(["yes", "T", "TRUE"], dtype=object))
    assert parsed.junk.tolist() == [True, True, False]


def _tag(store: ModelStore, data: Path, out: Path, *extra: str) -> pd.Series:
    args = ["assign", "--input", str(data), "--output", str(out), "--store", str(store.root)]
    tagged = CliRunner().invoke(app, [*args, *extra])
    assert tagged.exit_code == 0, tagged.output
    return pd.read_csv(out, dtype=str).set_index("account_id")["segment_id"]


@pytest.mark.parametrize("odd", ["yes", " TRUE", "1"])
def test_a_stray_cell_does_not_retype_the_booleans_of_its_chunk(
    accounts: tuple[ModelStore, pd.DataFrame, Path], tmp_path: Path, odd: str
) -> None:
    """One cell that is not a boolean left every TRUE/FALSE of its chunk text (a category
    never seen) in ``segments assign``, ``--record`` and drift, while training and the API
    read them as booleans: five other customers moved, and drift said 17.7 (a hostile
    test). Only the odd row may differ, whatever the chunk size."""
    from app.drift.offline import drift_of_file
    from app.drift.schemas import Thresholds

    store, frame, data = accounts
    clean = _tag(store, data, tmp_path / "clean.csv")
    odd_frame = frame.copy()
    odd_frame.loc[5, "sso"] = odd
    odd_data = tmp_path / "odd.csv"
    odd_frame.to_csv(odd_data, index=False)
    for size in ("100000", "100"):
        tagged = _tag(store, odd_data, tmp_path / f"odd-{size}.csv", "--chunk-size", size)
        moved = set(tagged.index[tagged != clean])
        assert moved <= {odd_frame.loc[5, "account_id"]}, (size, sorted(moved))
    version = store.promoted("customers")
    assert version is not None
    report = drift_of_file(
        store,
        "customers",
        version,
        odd_data,
        Thresholds(watch=0.1, drift=0.25, min_observations=10),
    )
    psi = next(f.psi for f in report.features if f.name == "sso")
    assert psi is not None and psi < 0.05, psi


def test_a_parquet_column_of_boolean_text_is_read_as_the_csv(
    accounts: tuple[ModelStore, pd.DataFrame, Path], tmp_path: Path
) -> None:
    """A Parquet file holding TRUE/FALSE as text tagged every row as a category never seen
    (the CSV reader types the column; the Parquet one took it as written)."""
    store, _, data = accounts
    clean = _tag(store, data, tmp_path / "clean.csv")
    text = tmp_path / "text.parquet"
    pd.read_csv(data, dtype=str, keep_default_na=False).to_parquet(text)
    tagged = _tag(store, text, tmp_path / "from-parquet.csv")
    assert tagged.equals(clean)
