"""The in-process counters: the batch path, the single path and the offline binning agree;
workers' flushes add up in Redis; a failed flush keeps its counts."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import redis
from redis.asyncio import Redis

from app.drift import counts
from app.drift.compare import from_fields
from app.drift.live import LiveCounts
from app.drift.psi import category_counts, numeric_counts
from app.drift.service import DriftService
from app.serving.model import build_serving_model
from tests.assignment.test_api import features_of
from tests.drift.conftest import THRESHOLDS
from tests.drift.test_live import FEATURES


def _serving_and_rows(trained: Any, customers: Any) -> tuple[Any, list[dict[str, Any]]]:
    store, result = trained
    serving = build_serving_model(store, "customers", result.manifest.version).with_overrides({})
    frame = customers[0].sample(700, random_state=12).set_index("customer_id")[FEATURES]
    frame.iloc[:20, 0] = np.nan  # some missing values: their own bin
    return serving, [features_of(row) for _, row in frame.iterrows()]


def test_single_batch_and_offline_binning_agree(trained: Any, customers: Any) -> None:
    serving, rows = _serving_and_rows(trained, customers)
    one, many = LiveCounts(enabled=True), LiveCounts(enabled=True)
    slots, _ = serving.assign_slots(rows)
    for row, slot in zip(rows, slots, strict=True):
        one.observe_one(serving, row, serving.model.segment_ids[slot])
    # a few rows at a time (binned row by row) and many (by numpy)
    for start, stop in ((0, 1), (1, 4), (4, 19), (19, 300), (300, len(rows))):
        many.observe_many(serving, rows[start:stop], slots[start:stop])
    [(_, _, single)] = one.drain()
    [(_, _, batch)] = many.drain()
    assert single == batch
    manifest = serving.manifest
    features, segments = from_fields(manifest, single)
    frame = pd.DataFrame(rows)
    for f in manifest.drift_reference.features:
        if f.type == "numeric":
            values = frame[f.name].to_numpy(dtype=np.float64)
            expected = numeric_counts(values, f.edges or [])
        else:
            expected = category_counts(frame[f.name].tolist(), f.categories or [])
        assert features[f.name] == expected.tolist(), f.name
    assert sum(segments.values()) == len(rows) == single["n"]
    assert one.drain() == []  # drained means zeroed


def test_counting_is_off_until_enabled(trained: Any, customers: Any) -> None:
    serving, rows = _serving_and_rows(trained, customers)
    live = LiveCounts()
    live.observe_one(serving, rows[0], serving.model.segment_ids[0])
    assert live.drain() == []


def test_workers_add_up_and_a_failed_flush_keeps_its_counts(
    trained: Any, customers: Any, service_redis: str
) -> None:
    serving, rows = _serving_and_rows(trained, customers)
    prefix = f"drift-{uuid.uuid4().hex[:8]}:"
    manifest = serving.manifest
    slots, _ = serving.assign_slots(rows)

    async def scenario() -> tuple[int, int]:
        workers = [LiveCounts(enabled=True), LiveCounts(enabled=True)]
        workers[0].observe_many(serving, rows[:400], slots[:400])
        workers[1].observe_many(serving, rows[400:], slots[400:])
        down = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
        failing = DriftService(down, prefix, THRESHOLDS, timedelta(hours=1), 60, 0.5, workers[1])
        await failing.flush()  # Redis is not there: the counts go back
        await down.aclose()
        client = Redis.from_url(service_redis, decode_responses=True)
        try:
            for live in workers:
                ok = DriftService(client, prefix, THRESHOLDS, timedelta(hours=1), 60, 2.0, live)
                await ok.flush()
            found = await ok.live_report(serving)
            now = time.time()
            total = await counts.read(
                client, prefix, manifest.model_name, manifest.version, now - 7200, now + 1, 2.0
            )
        finally:
            await client.aclose()
        return found.observations, int(total["n"])

    try:
        observations, n = asyncio.run(scenario())
    finally:
        raw = redis.Redis.from_url(service_redis)
        keys = list(raw.scan_iter(match=f"{prefix}*"))
        if keys:
            raw.delete(*keys)
    assert observations == n == len(rows)
