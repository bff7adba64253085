"""Assignments made by ``POST /v1/events`` count in live drift, as ``/v1/assign``'s do: each
customer an accepted event re-assigned, once per request (found by the audit: an events-fed
model stayed ``no_data``).

Over HTTP, against the suite's real Redis and a transactions model trained by the real job.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.drift.live import LIVE
from app.registry.store import ModelStore
from app.training.job import TrainResult
from tests.events.conftest import clocked_client
from tests.events.test_api import NOW, event, post


@pytest.fixture
def client(
    tx_trained: tuple[ModelStore, TrainResult], tmp_path: Path, prefix: str
) -> Iterator[TestClient]:
    yield from clocked_client(
        tx_trained[0].root, "transactions", tmp_path, prefix, NOW, drift_flush_seconds=0.1
    )
    LIVE.reset()


def _drift(client: TestClient, observations: int) -> dict[str, Any]:
    """``GET /v1/drift`` once it counts ``observations`` (or after 20 s), then after one more
    flush (so that a count beyond it would show)."""
    deadline = time.monotonic() + 20
    while client.get("/v1/drift").json()["observations"] < observations:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    body: dict[str, Any] = client.get("/v1/drift").json()
    return body


def test_each_customer_an_events_request_reassigns_counts_once(client: TestClient) -> None:
    assert client.get("/v1/drift").json()["observations"] == 0
    events = [event(f"d{i % 3}", days_ago=10 + i, amount=20.0 + i) for i in range(7)]
    doc = post(client, *events)  # seven events, three customers
    assert doc["accepted"] == 7 and len(doc["customers"]) == 3
    drift = _drift(client, 3)
    assert drift["observations"] == 3
    expected = Counter(c["segment_id"] for c in doc["customers"])
    counted = {s["id"]: s["observations"] for s in drift["segments"] if s["observations"]}
    assert counted == dict(expected)
    assert all(f["observations"] == 3 for f in drift["features"])

    again = post(client, *events)  # every event a duplicate: re-assigned, once each
    assert again["duplicate"] == 7 and len(again["customers"]) == 3
    assert _drift(client, 6)["observations"] == 6
    one = post(client, event("d0", days_ago=1, amount=5.0))  # one customer, once more
    assert len(one["customers"]) == 1
    assert _drift(client, 7)["observations"] == 7
    by_id = client.post("/v1/assign", json={"customer_id": "d1"})  # as an assignment counts
    assert by_id.status_code == 200, by_id.text
    assert _drift(client, 8)["observations"] == 8
