"""A feature's own missing markers (``[[features]] missing_values``) are missing everywhere.

A bank table writes ``pdays = -1`` for "never contacted" (most rows), while ``balance = -1``
is a real balance: ``[data] missing_values = ["-1"]`` blanked both, and without it the -1s
made never-contacted customers look the most recently contacted. With the marker on
``pdays`` only, training, ``segments assign`` and the API (single, both batch paths, by id
from a stored profile) read ``pdays`` -1 (as -1, -1.0 or "-1") as missing, and ``balance``
-1 as the number.
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
from app.main import create_app
from app.registry.store import ModelStore
from app.settings import Settings
from app.training.config import parse_config
from app.training.job import train
from tests.assignment.conftest import served_client

PREFIX = "feature-markers:"
N = 2400


def bank_frame(seed: int = 4) -> pd.DataFrame:
    """Never-contacted customers (``pdays`` -1, 80%) and two groups of contacted ones; 30
    real balances of -1; a contact channel written ``unknown`` where it is not known."""
    rng = np.random.default_rng(seed)
    group = rng.choice(3, N, p=[0.8, 0.1, 0.1])
    pdays = np.where(group == 1, rng.normal(90, 15, N), rng.normal(330, 15, N)).round()
    pdays[group == 0] = -1
    balance = np.where(group == 2, rng.normal(4000, 400, N), rng.normal(1200, 400, N)).round()
    balance[rng.choice(N, 30, replace=False)] = -1
    contact = rng.choice(["cellular", "telephone", "unknown"], N, p=[0.6, 0.2, 0.2])
    return pd.DataFrame(
        {
            "client_id": [f"B{i:05d}" for i in range(N)],
            "pdays": pdays.astype(int),
            "balance": balance.astype(int),
            "contact": contact,
        }
    )


def bank_config(data: Path, folder: Path) -> Any:
    raw = {
        "data": {"path": str(data), "id_column": "client_id"},
        "features": [
            {"name": "pdays", "missing_values": ["-1"]},
            {"name": "balance"},
            {"name": "contact", "type": "categorical", "missing_values": ["unknown"]},
        ],
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0, "seed": 3},
    }
    return parse_config(raw, base_dir=folder)


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelStore, pd.DataFrame, Path]:
    """The table, trained with the markers and promoted."""
    folder = tmp_path_factory.mktemp("feature-markers")
    frame = bank_frame()
    data = folder / "bank.csv"
    frame.to_csv(data, index=False)
    store = ModelStore(folder / "store")
    train(bank_config(data, folder), store, promote=True)
    return store, frame, data


@pytest.fixture(scope="module")
def client(bank: tuple[ModelStore, pd.DataFrame, Path], service_redis: str) -> Iterator[TestClient]:
    with served_client(bank[0].root, PREFIX, service_redis) as test_client:
        yield test_client


def _items(frame: pd.DataFrame, pdays: Any = None) -> list[dict[str, Any]]:
    """The rows as request items (JSON numbers as the file's: -1 an integer), with pdays -1
    written as ``pdays`` when given ("-1")."""
    return [
        {
            "customer_id": cid,
            "features": {
                "pdays": pdays if pdays is not None and days == -1 else int(days),
                "balance": int(balance),
                "contact": contact,
            },
        }
        for cid, days, balance, contact in frame.itertuples(index=False)
    ]


def _tagged(store: ModelStore, data: Path, out: Path) -> pd.Series:
    paths = ["--input", str(data), "--output", str(out), "--store", str(store.root)]
    result = CliRunner().invoke(app, ["assign", *paths, "--id-column", "client_id"])
    assert result.exit_code == 0, result.output
    assert not (out.parent / f"{out.stem}.rejects.csv").exists()  # a marker is no reject
    return pd.read_csv(out, dtype=str).set_index("client_id")["segment_id"]


def test_the_markers_are_missing_in_their_column_only(
    bank: tuple[ModelStore, pd.DataFrame, Path],
) -> None:
    store, frame, _ = bank
    manifest = store.load("customers", store.promoted("customers")).manifest
    cells = manifest.data.missing_cells
    assert cells.get("pdays") == int((frame["pdays"] == -1).sum()) > 1500
    assert cells.get("contact") == int((frame["contact"] == "unknown").sum())
    assert "balance" not in cells  # its 30 real -1s are balances
    assert int((frame["balance"] == -1).sum()) == 30


def test_a_file_and_the_api_assign_a_marker_alike(
    bank: tuple[ModelStore, pd.DataFrame, Path], client: TestClient, tmp_path: Path
) -> None:
    store, frame, data = bank
    expected = _tagged(store, data, tmp_path / "tagged.csv")
    serving = client.app.state.holder.current  # type: ignore[attr-defined]
    never = frame[frame["pdays"] == -1]
    # (read as the number -1, those customers would be placed elsewhere: this can tell)
    as_number = [
        serving.assign_one({"pdays": -1.0, "balance": float(b), "contact": None}).segment_id
        for b in never["balance"].iloc[:200]
    ]
    as_missing = [
        serving.assign_one({"pdays": None, "balance": float(b), "contact": None}).segment_id
        for b in never["balance"].iloc[:200]
    ]
    assert as_number != as_missing

    def check(results: list[dict[str, Any]]) -> None:
        got = {r["customer_id"]: r["segment_id"] for r in results if r["status"] == "ok"}
        differ = [c for c in frame["client_id"] if got[c] != expected[c]]
        assert not differ, f"{len(differ)} of {len(frame)} customers differ from the file"

    for pdays in (None, "-1", -1.0, " -1.0 "):  # JSON -1, then the text a file would hold
        items = _items(frame, pdays)
        fast = client.post("/v1/assign/batch?explain=true", json={"items": items})
        assert fast.status_code == 200, fast.text
        check(fast.json()["results"])
        unseen = [r["explanation"].get("unknown_categories") for r in fast.json()["results"]]
        assert not any(unseen), "a marker was called a category never seen in training"
        bad = {"customer_id": "bad", "features": {}}  # one bad item: item by item
        slow = client.post("/v1/assign/batch", json={"items": [*items, bad]})
        assert slow.status_code == 200, slow.text
        check(slow.json()["results"])

    # one at a time: -1, "-1" and -1.0
    for i, item in enumerate(_items(frame.iloc[:: N // 30])):
        if item["features"]["pdays"] == -1:
            item["features"]["pdays"] = [-1, "-1", -1.0][i % 3]
        one = client.post("/v1/assign", json=item)
        assert one.status_code == 200, one.text
        assert one.json()["segment_id"] == expected[item["customer_id"]]


def test_a_profile_stored_with_the_marker_is_assigned_by_id_as_the_file(
    bank: tuple[ModelStore, pd.DataFrame, Path], client: TestClient, tmp_path: Path
) -> None:
    """A profile stored with ``pdays`` -1 (recorded as sent, before the marker was read so):
    by id, and merged under a partial request, it is assigned as the file's row is."""
    from app.assignment.service import record_one, render

    store, frame, data = bank
    expected = _tagged(store, data, tmp_path / "tagged.csv")
    state = client.app.state  # type: ignore[attr-defined]
    serving, history = state.holder.current, state.history
    never = frame[(frame["pdays"] == -1) & (frame["contact"] != "unknown")].iloc[:20]
    assert client.portal is not None
    checked = 0
    for cid, _, balance, contact in never.itertuples(index=False):
        stored = {"pdays": -1, "balance": int(balance), "contact": contact}
        doc = render(serving, f"old-{cid}", serving.assign_one(stored), stored)
        client.portal.call(record_one, history, serving, doc, stored)
        by_id = client.post("/v1/assign", json={"customer_id": f"old-{cid}"})
        assert by_id.status_code == 200, by_id.text
        assert by_id.json()["features_from"] == "profile"
        assert by_id.json()["segment_id"] == expected[cid]
        checked += by_id.json()["segment_id"] != doc["segment_id"]
        partial = client.post(
            "/v1/assign",
            json={"customer_id": f"old-{cid}", "features": {"balance": int(balance)}},
        )
        assert partial.json()["segment_id"] == expected[cid]
        assert client.get(f"/v1/customers/old-{cid}").json()["profile"]["pdays"] is None
    assert checked, "the -1 read as a number gave the file's segment: this test cannot tell"


def test_an_older_version_without_markers_reads_minus_one_as_a_number(
    bank: tuple[ModelStore, pd.DataFrame, Path], client: TestClient, tmp_path: Path
) -> None:
    """The markers are the version's: one trained without them keeps -1 a number (and its
    manifest counts no missing cell), in a file as over HTTP."""
    _, frame, data = bank
    raw = bank_config(data, tmp_path).model_dump(mode="json")
    for feature in raw["features"]:
        feature.pop("missing_values")
    store = ModelStore(tmp_path / "store")
    train(parse_config(raw, base_dir=tmp_path), store, promote=True)
    manifest = store.load("customers", store.promoted("customers")).manifest
    assert manifest.data.missing_cells == {} and manifest.feature_markers == {}
    expected = _tagged(store, data, tmp_path / "tagged.csv")
    settings = Settings(  # (its keys under this module's prefix: removed with the rest)
        model_store=store.root, model_name="customers", dev_mode=True, key_prefix=f"{PREFIX}old:"
    )
    with TestClient(create_app(settings)) as old:
        got = old.post("/v1/assign/batch", json={"items": _items(frame)})
        assert got.status_code == 200, got.text
        segments = {r["customer_id"]: r["segment_id"] for r in got.json()["results"]}
        assert all(segments[c] == expected[c] for c in frame["client_id"])
        item = _items(frame, "-1")[int(np.argmax(frame["pdays"] < 0))]
        text = old.post("/v1/assign", json=item)
        assert text.status_code == 200, text.text  # "-1" is the number, as the file's cell
        assert text.json()["segment_id"] == expected[item["customer_id"]]
