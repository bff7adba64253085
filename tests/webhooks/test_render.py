"""The batch body: the fast ``render_batch`` against the obvious ``render_event``."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import orjson

from app.webhooks.delivery import _iso, render_batch, render_event


def test_the_time_is_isoformat_in_milliseconds() -> None:
    rng = random.Random(15)
    for ms in [0, 999, 1_000, 1_796_215_079_999, *(rng.randrange(2**42) for _ in range(5000))]:
        assert _iso(ms) == datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def test_render_batch_equals_rendering_each_event() -> None:
    rng = random.Random(7)
    names = {"seg-001": "Occasional buyers", "seg-002": 'Loyal "high" spenders é'}
    stored = []
    for i in range(300):
        origin = rng.choice([None, "seg-001", "seg-002", "seg-009"])  # 009: no name known
        target = rng.choice(["seg-001", "seg-002", "seg-003"])
        kind = rng.choice(["segment.entered", "segment.exited"])
        stored.append(
            {
                "id": f"evt_{i:04d}_{kind[8:]}",
                "type": kind,
                "segment": origin if kind == "segment.exited" else target,
                "customer_id": rng.choice(["C1", "00042", 'a"b\\c', "ü/∑"]),
                "from": origin,
                "to": target,
                "model": rng.choice(["customers", ""]),
                "model_version": "v1",
                "at": 1_796_215_079_000 + rng.randrange(5_000),
                "seq": i,
                "record_id": f"{i:04d}",
            }
        )
    texts = [orjson.dumps(e).decode() for e in stored]
    message_id, body = render_batch(texts, lambda model: names)
    assert message_id == "msg_evt_0000_" + stored[0]["type"][8:] + "_300"
    assert orjson.loads(body)["data"]["events"] == [render_event(e, names) for e in stored]
    assert render_batch([t.encode() for t in texts], lambda m: names)[0] == message_id  # bytes
