"""Live drift over HTTP: a scripted stream of assignments, counted in process, flushed to a
real Redis, read back by ``GET /v1/drift`` and ``GET /v1/segments``."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis
from fastapi.testclient import TestClient

from app.drift.live import LIVE
from app.main import create_app
from app.registry.store import ModelStore
from app.settings import Settings
from tests.assignment.test_api import features_of


def _settings(store: ModelStore, prefix: str) -> Settings:
    return Settings(
        model_store=store.root,
        model_name="customers",
        dev_mode=True,
        key_prefix=prefix,
        drift_flush_seconds=0.1,
        drift_min_observations=50,
    )


@pytest.fixture
def prefix(service_redis: str) -> Iterator[str]:
    name = f"drift-{uuid.uuid4().hex[:8]}:"
    yield name
    client = redis.Redis.from_url(service_redis)
    keys = list(client.scan_iter(match=f"{name}*"))
    if keys:
        client.delete(*keys)
    LIVE.reset()


FEATURES = [
    "recency_days", "frequency", "monetary", "avg_order_value", "sessions_30d",
    "feature_usage", "support_tickets", "tenure_days", "plan", "channel", "country",
]  # fmt: skip


def _rows(customers: Any, n: int, seed: int) -> pd.DataFrame:
    return customers[0].sample(n, random_state=seed).set_index("customer_id")[FEATURES]


def _wait_for(client: TestClient, observations: int) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        body = client.get("/v1/drift").json()
        if body["observations"] >= observations or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def test_live_drift_after_a_scripted_stream(
    trained: Any, customers: Any, prefix: str, service_redis: str
) -> None:
    store, result = trained
    with TestClient(create_app(_settings(store, prefix))) as client:
        assert client.get("/v1/drift").json()["status"] == "no_data"
        calm = _rows(customers, 650, seed=5)  # single assignments, then one batch
        for cid, row in calm.head(50).iterrows():
            answer = client.post(
                "/v1/assign", json={"customer_id": f"a{cid}", "features": features_of(row)}
            )
            assert answer.status_code == 200
        items = [
            {"customer_id": f"a{cid}", "features": features_of(row)}
            for cid, row in calm.iloc[50:].iterrows()
        ]
        assert client.post("/v1/assign/batch", json={"items": items}).status_code == 200
        body = _wait_for(client, 650)
        assert body["observations"] == 650
        assert body["status"] == "ok", [(f["name"], f["psi"]) for f in body["features"]]
        assert all(f["observations"] == 650 for f in body["features"])
        # then a batch whose activity is shifted far above anything in training
        shifted = _rows(customers, 600, seed=6)
        shifted["sessions_30d"] = shifted["sessions_30d"] * 3 + 40
        items = [
            {"customer_id": f"b{cid}", "features": features_of(row)}
            for cid, row in shifted.iterrows()
        ]
        assert client.post("/v1/assign/batch", json={"items": items}).status_code == 200
        body = _wait_for(client, 1250)
        assert body["observations"] == 1250
        by_name = {f["name"]: f for f in body["features"]}
        assert by_name["sessions_30d"]["status"] == "drift"
        assert by_name["plan"]["status"] == "ok"
        assert body["status"] == "drift"
        assert sum(s["observations"] for s in body["segments"]) == 1250
        # the segments show the live share and status beside the trained share
        listed = client.get("/v1/segments").json()["segments"]
        for seg in listed:
            status = seg["status"]
            assert status["trained_share"] == seg["share"]
            assert status["live_share"] is not None
            assert status["drift_status"] in ("ok", "watch", "drift")
        one = client.get(f"/v1/segments/{listed[0]['id']}").json()
        assert one["status"]["last_member_change"] is not None
        metrics = client.get("/metrics").text
        assert 'segments_drift_feature_psi{feature="sessions_30d"' in metrics
    # the counts are in hourly hashes under the prefix, and expire
    raw = redis.Redis.from_url(service_redis, decode_responses=True)
    keys = list(raw.scan_iter(match=f"{prefix}drift:customers:{result.manifest.version}:*"))
    assert keys and all(0 < raw.ttl(k) <= 30 * 86400 for k in keys)
    assert sum(int(raw.hget(k, "n") or 0) for k in keys) == 1250


def test_a_version_without_a_reference_says_so(trained: Any, prefix: str, tmp_path: Path) -> None:
    store, result = trained
    copy = ModelStore(tmp_path / "store")
    shutil.copytree(store.root, copy.root)
    path = copy.version_dir("customers", result.manifest.version) / "manifest.json"
    raw = json.loads(path.read_text())
    del raw["drift_reference"]
    path.write_text(json.dumps(raw))
    with TestClient(create_app(_settings(copy, prefix))) as client:
        body = client.get("/v1/drift").json()
        assert body["has_reference"] is False
        assert "no reference" in body["note"]
        listed = client.get("/v1/segments").json()["segments"]
        assert all(s["status"]["drift_status"] == "no_data" for s in listed)


def test_a_bad_window_is_a_422_naming_the_field(trained: Any, prefix: str) -> None:
    store, _ = trained
    with TestClient(create_app(_settings(store, prefix))) as client:
        answer = client.get("/v1/drift?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z")
        assert answer.status_code == 422
        # both ends named, with the values compared (as /v1/migrations and the dashboard)
        assert answer.json()["errors"] == [
            {"field": "since", "message": "must be before until (2026-01-01T00:00:00Z)"},
            {"field": "until", "message": "must be after since (2026-01-02T00:00:00Z)"},
        ]
        ahead = client.get("/v1/drift?since=9000-01-01T00:00:00Z")  # until: now, the default
        assert [e["field"] for e in ahead.json()["errors"]] == ["since"]
        assert "must be before until (20" in ahead.json()["errors"][0]["message"]
        assert client.get("/v1/drift?since=yesterday").status_code == 422
        # a number is not a time here (pydantic alone would read it as a Unix time), as for
        # /v1/migrations: the contract says date-time (a fuzzing run found it accepted)
        for number in ("0.0", "80136"):
            found = client.get(f"/v1/drift?until={number}")
            assert found.status_code == 422, found.text
            assert found.json()["errors"][0]["field"] == "until"
        # the ends of datetime's range are a window like any other, not a 500
        far = client.get("/v1/drift?since=0001-01-01T00:00:00Z&until=9999-12-31T23:59:59Z")
        assert far.status_code == 200 and far.json()["observations"] == 0


def test_the_dashboard_says_too_few_assignments_not_a_psi(
    trained: Any, customers: Any, prefix: str
) -> None:
    """Below SEGMENTS_DRIFT_MIN_OBSERVATIONS a segment's drift is "no_data": the dashboard
    showed "no_data (PSI 1.96)", a PSI of a handful of assignments beside a status saying
    there is none."""
    store, _ = trained
    with TestClient(create_app(_settings(store, prefix))) as client:
        page = client.get("/ui/segments").text
        assert "no live assignments yet" in page and "no_data" not in page
        items = [
            {"customer_id": f"c{cid}", "features": features_of(row)}
            for cid, row in _rows(customers, 20, seed=7).iterrows()
        ]
        assert client.post("/v1/assign/batch", json={"items": items}).status_code == 200
        assert _wait_for(client, 20)["observations"] == 20
        page = client.get("/ui/segments").text
        assert "too few live assignments to judge (20 of 50)" in page
        assert "PSI" not in page.split("<table")[1].split("</table>")[0]
