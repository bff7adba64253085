"""A ``[data] missing_values`` marker that is a number is missing as a number too, everywhere.

With ``missing_values = ["999"]`` a file's cell ``999`` (and ``999.0``, as pandas reads its
markers) was missing in training and ``segments assign``, while a request's 999 (or 999.0,
or the text ``"999.0"``) was the number 999, and a categorical feature's 999 a category
never seen: those customers got another segment over HTTP than in the file. The readers
disagreed among themselves too: pyarrow's (training's) read ``999.0`` as a number where
pandas' (``segments assign``) read it as missing, and a Parquet column of numbers kept 999.
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

PREFIX = "data-markers:"
N = 1800


def sentinel_frame(seed: int = 5) -> pd.DataFrame:
    """Customers whose spend was never measured (written 999, a third of them 999.0, as an
    export of floats writes it) and two groups of measured ones; a region written 999 where
    unknown."""
    rng = np.random.default_rng(seed)
    group = rng.choice(3, N, p=[0.4, 0.3, 0.3])
    spend = np.where(group == 1, rng.normal(40, 5, N), rng.normal(160, 5, N)).round(1)
    written = spend.astype(str).astype(object)
    never = np.flatnonzero(group == 0)
    written[never] = "999"
    written[never[::3]] = "999.0"
    region = rng.choice(["EU", "APAC"], N).astype(object)
    region[rng.choice(N, 200, replace=False)] = "999"
    return pd.DataFrame(
        {
            "customer_id": [f"s{i:05d}" for i in range(N)],
            "spend": written,
            "visits": rng.normal(10, 2, N).round(1),
            "region": region,
        }
    )


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelStore, pd.DataFrame, Path]:
    """The table, trained with ``[data] missing_values = ["999"]`` and promoted."""
    folder = tmp_path_factory.mktemp("data-markers")
    frame = sentinel_frame()
    data = folder / "sentinels.csv"
    frame.to_csv(data, index=False)
    raw = {
        "data": {"path": str(data), "missing_values": ["999"]},
        "features": [
            {"name": "spend"},
            {"name": "visits"},
            {"name": "region", "type": "categorical"},
        ],
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0, "seed": 3},
    }
    store = ModelStore(folder / "store")
    train(parse_config(raw, base_dir=folder), store, promote=True)
    return store, frame, data


@pytest.fixture(scope="module")
def client(
    sentinels: tuple[ModelStore, pd.DataFrame, Path], service_redis: str
) -> Iterator[TestClient]:
    with served_client(sentinels[0].root, PREFIX, service_redis) as test_client:
        yield test_client


def _tagged(store: ModelStore, data: Path, out: Path) -> pd.Series:
    paths = ["--input", str(data), "--output", str(out), "--store", str(store.root)]
    result = CliRunner().invoke(app, ["assign", *paths])
    assert result.exit_code == 0, result.output
    assert not (out.parent / f"{out.stem}.rejects.csv").exists()
    return pd.read_csv(out, dtype=str).set_index("customer_id")["segment_id"]


def _items(frame: pd.DataFrame, spend: Any, region: Any) -> list[dict[str, Any]]:
    """The rows as request items, a marker sent as ``spend`` / ``region`` and other values
    as the JSON numbers and text they are."""
    return [
        {
            "customer_id": cid,
            "features": {
                "spend": spend if s in ("999", "999.0") else float(s),
                "visits": visits,
                "region": region if r == "999" else r,
            },
        }
        for cid, s, visits, r in frame.itertuples(index=False)
    ]


def test_training_reads_every_spelling_of_the_marker_as_missing(
    sentinels: tuple[ModelStore, pd.DataFrame, Path],
) -> None:
    store, frame, _ = sentinels
    manifest = store.load("customers", store.promoted("customers")).manifest
    assert manifest.data.missing_cells["spend"] == int(frame["spend"].isin(["999", "999.0"]).sum())
    assert manifest.data.missing_cells["region"] == int((frame["region"] == "999").sum())
    spend = next(f for f in manifest.features if f.name == "spend")
    assert spend.categories is None  # (a numeric feature) and 999 is no category of region:
    region = next(f for f in manifest.features if f.name == "region")
    assert "999" not in (region.categories or [])


def test_a_request_and_the_file_read_the_marker_alike(
    sentinels: tuple[ModelStore, pd.DataFrame, Path], client: TestClient, tmp_path: Path
) -> None:
    store, frame, data = sentinels
    expected = _tagged(store, data, tmp_path / "tagged.csv")
    serving = client.app.state.holder.current  # type: ignore[attr-defined]
    # (read as the number 999, those customers would be placed elsewhere: this can tell)
    as_number = serving.assign_one({"spend": 999.0, "visits": 10.0, "region": "EU"}).segment_id
    as_missing = serving.assign_one({"spend": None, "visits": 10.0, "region": "EU"}).segment_id
    assert as_number != as_missing

    def check(results: list[dict[str, Any]]) -> None:
        got = {r["customer_id"]: r["segment_id"] for r in results if r["status"] == "ok"}
        differ = [c for c in frame["customer_id"] if got[c] != expected[c]]
        assert not differ, f"{len(differ)} of {len(frame)} customers differ from the file"
        unseen = [r.get("explanation", {}).get("unknown_categories") for r in results]
        assert not any(unseen), "a marker was called a category never seen in training"

    for spend, region in ((999, 999), (999.0, 999.0), ("999.0", "999"), (" 999 ", None)):
        items = _items(frame, spend, region)
        fast = client.post("/v1/assign/batch?explain=true", json={"items": items})
        assert fast.status_code == 200, fast.text
        check(fast.json()["results"])
        bad = {"customer_id": "bad", "features": {}}  # one bad item: item by item
        slow = client.post("/v1/assign/batch?explain=true", json={"items": [*items, bad]})
        assert slow.status_code == 200, slow.text
        check(slow.json()["results"][:-1])

    # one at a time (999, 999.0 or "999.0"; a region's 999), stored as missing
    markers = frame[frame["spend"].isin(["999", "999.0"])]
    for i, item in enumerate(_items(markers.iloc[:30], None, 999)):
        item["features"]["spend"] = [999, 999.0, "999.0"][i % 3]
        one = client.post("/v1/assign?explain=true", json=item)
        assert one.status_code == 200, one.text
        assert one.json()["segment_id"] == expected[item["customer_id"]]
        assert "unknown_categories" not in one.json()["explanation"]
        stored = client.get(f"/v1/customers/{item['customer_id']}").json()["profile"]
        assert stored["spend"] is None
        assert stored["region"] is None or item["features"]["region"] != 999


def test_a_parquet_column_of_numbers_reads_the_marker_as_the_csv_does(
    sentinels: tuple[ModelStore, pd.DataFrame, Path], tmp_path: Path
) -> None:
    store, frame, data = sentinels
    expected = _tagged(store, data, tmp_path / "tagged.csv")
    typed = frame.assign(spend=frame["spend"].astype(float))  # 999.0 a float, no text
    parquet = tmp_path / "sentinels.parquet"
    typed.to_parquet(parquet, index=False)
    got = _tagged(store, parquet, tmp_path / "from-parquet.csv")
    assert got.equals(expected)
