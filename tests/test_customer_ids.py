"""One customer id everywhere (issue 12, item 2): ids are text from the file to Redis.

Ids that a number parser would change (leading zeros, ``1e5``), that a CSV reader takes for
missing (``NaN``, ``NULL``, ``N/A``) and non-ASCII ones go through ``segments assign
--record`` (file tagging and whole-base recording at once), then the API (assignment by id
from the stored profile), the customer's state and history, and the segment members: they
come back exactly as written, and ``007`` and ``7`` stay two customers. Training with such
ids is covered by ``tests/training/test_customer_ids.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from redis.asyncio import Redis
from typer.testing import CliRunner

from app.cli.main import app as cli
from app.main import create_app
from app.registry.store import ModelStore
from app.settings import Settings
from app.training.job import TrainResult

IDS = ["00001", "1", "007", "7", "1e5", "NaN", "nan", "NULL", "N/A", "None", "-", "Zoë-7", "+44"]


@pytest.fixture
def prefix(service_redis: str) -> Iterator[str]:
    """A key prefix of this test's own, deleted afterwards."""
    name = f"ids{uuid.uuid4().hex[:8]}:"
    yield name

    async def delete() -> None:
        async with Redis.from_url(service_redis) as redis:
            keys = [key async for key in redis.scan_iter(match=f"{name}*", count=1000)]
            if keys:
                await redis.delete(*keys)

    asyncio.run(delete())


def test_ids_round_trip_through_recording_the_api_and_history(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, Any],
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, _ = trained
    frame = customers[0].head(len(IDS)).copy()
    frame["customer_id"] = IDS
    source, tagged = tmp_path / "customers.csv", tmp_path / "tagged.csv"
    frame.to_csv(source, index=False)
    monkeypatch.setenv("SEGMENTS_KEY_PREFIX", prefix)

    run = CliRunner().invoke(
        cli,
        [
            *("assign", "--input", str(source), "--output", str(tagged), "--record"),
            *("--store", str(store.root), "--model", "customers"),
        ],
    )

    assert run.exit_code == 0, run.output
    out = pd.read_csv(tagged, dtype=str, keep_default_na=False)
    assert out["customer_id"].tolist() == IDS  # as written, row for row
    segment_of = dict(zip(out["customer_id"], out["segment_id"], strict=True))
    settings = Settings(model_store=store.root, dev_mode=True, key_prefix=prefix)
    with TestClient(create_app(settings)) as client:
        members: set[str] = set()
        for segment in set(segment_of.values()):
            page = client.get(f"/v1/segments/{segment}/members", params={"limit": 1000}).json()
            members |= {m["customer_id"] for m in page["members"]}
            assert {m["customer_id"] for m in page["members"]} == {
                cid for cid, seg in segment_of.items() if seg == segment
            }
        assert members == set(IDS)  # thirteen customers: 007 and 7 are two
        for cid in IDS:
            by_id = client.post("/v1/assign", json={"customer_id": cid})
            assert by_id.status_code == 200, (cid, by_id.text)
            answer = by_id.json()
            assert (answer["customer_id"], answer["features_from"]) == (cid, "profile")
            assert answer["segment_id"] == segment_of[cid]
            if "/" in cid:  # a path segment cannot hold it (see the README)
                continue
            state = client.get(f"/v1/customers/{cid}").json()
            assert (state["customer_id"], state["segment_id"]) == (cid, segment_of[cid])
            history = client.get(f"/v1/customers/{cid}/history").json()
            assert history["customer_id"] == cid
            assert [m["to_segment_id"] for m in history["migrations"]] == [segment_of[cid]]
