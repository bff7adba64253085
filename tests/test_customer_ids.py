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


# ids of which no character shows: a zero-width space, a byte-order mark, a word joiner and a
# soft hyphen (format characters), a Hangul filler (a letter that shows nothing), a lone accent
INVISIBLE = ["\u200b", "\ufeff", "\u2060\u00ad", "\u3164", "\u0301", " \u200b "]


def test_an_id_that_shows_nothing_is_refused_by_the_api_and_the_file_readers(
    tmp_path: Path,
    trained: tuple[ModelStore, TrainResult],
    customers: tuple[pd.DataFrame, Any],
    prefix: str,
) -> None:
    """A hostile tester assigned and recorded a customer whose id was a zero-width space (or a
    Hangul filler): "not blank", the contract says, yet it showed as an empty id in the
    members list, the dashboard and every file. Refused now as a blank id, one item in place
    in a batch (whether the batch is read in one pass or item by item), a rejected row in a
    file; an id that shows something and holds such a character is still an id."""
    from app.assignment.customer_ids import BLANK_ID
    from app.batch import assign_file

    store, result = trained
    features = {
        f.name: (f.categories[0] if f.categories else 1.0) for f in result.manifest.features
    }
    settings = Settings(
        model_store=store.root, model_name="customers", dev_mode=True, key_prefix=prefix
    )
    with TestClient(create_app(settings)) as client:
        for odd in INVISIBLE:
            answer = client.post("/v1/assign", json={"customer_id": odd, "features": features})
            assert answer.status_code == 422, (odd, answer.text)
            assert answer.json()["errors"] == [{"field": "customer_id", "message": BLANK_ID}]
        items = [{"customer_id": c, "features": features} for c in ["ok-1", *INVISIBLE]]
        batch = client.post("/v1/assign/batch", json={"items": items})
        assert batch.status_code == 200, batch.text
        results = batch.json()["results"]
        assert results[0]["status"] == "ok"
        for n, got in enumerate(results[1:], start=1):
            assert got["status"] == "error", got
            assert got["errors"] == [{"field": f"items.{n}.customer_id", "message": BLANK_ID}]
        # printable ids only (a filler, a lone accent): the one-pass decoder's batch
        printable = [{"customer_id": c, "features": features} for c in ["ok-1", "\u3164", "\u0301"]]
        one_pass = client.post("/v1/assign/batch", json={"items": printable}).json()["results"]
        assert [r["status"] for r in one_pass] == ["ok", "error", "error"]
        assert one_pass[1]["errors"] == [{"field": "items.1.customer_id", "message": BLANK_ID}]
        segment = results[0]["segment_id"]
        members = client.get(f"/v1/segments/{segment}/members").json()
        assert [m["customer_id"] for m in members["members"]] == ["ok-1"]
        for shows in ("a\u200bb", "e\u0301", "\u3164x"):
            kept = client.post("/v1/assign", json={"customer_id": shows, "features": features})
            assert kept.status_code == 200, (shows, kept.text)
            assert kept.json()["customer_id"] == shows
    frame = customers[0].head(3 + len(INVISIBLE)).copy()
    frame["customer_id"] = ["r1", "r2", "r3", *INVISIBLE]
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    frame.to_csv(source, index=False)
    done = assign_file(store.load("customers"), source, target, id_column="customer_id")
    # (" \u200b " is read as blank text by the CSV reader's trimming or kept: refused either way)
    assert done.rows == 3
    assert done.rejected == len(INVISIBLE)
    assert set(done.kinds) <= {f"customer id {BLANK_ID}", "customer id blank"}
    assert pd.read_csv(target, dtype={"customer_id": str})["customer_id"].tolist() == [
        "r1",
        "r2",
        "r3",
    ]
