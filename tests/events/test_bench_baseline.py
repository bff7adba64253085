"""The events benchmark's baseline answers what the real endpoint's schema requires.

The bench compares ``POST /v1/events`` with an idiomatic no-op that returns a constant through
the same ``response_model``; when the schema gains a field the constant must gain it too, or
every baseline request is a 500 and the bench measures nothing (it happened with
``late_events``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from fastapi.testclient import TestClient

BENCH = Path(__file__).resolve().parents[2] / "bench" / "events_bench.py"


def test_the_baseline_answers_a_valid_events_response() -> None:
    spec = importlib.util.spec_from_file_location("events_bench_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    saved = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    body = {
        "events": [
            {
                "event_id": "e-1",
                "customer_id": "C000001",
                "type": "order",
                "amount": 12.5,
                "at": "2026-12-01T10:00:00Z",
            }
        ]
    }
    with TestClient(module.create_baseline()) as client:
        answer = client.post("/idiomatic/events", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["late_events"] == []
    assert answer.json()["accepted"] == 1
