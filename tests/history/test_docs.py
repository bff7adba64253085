"""The example consumer in docs/redis-keys.md works as written, against real events."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import redis

from app.history import Record, Recorder
from app.history.records import now_ms
from tests.history.conftest import RedisProcess

DOC = Path(__file__).resolve().parents[2] / "docs" / "redis-keys.md"


def example() -> dict[str, Any]:
    text = DOC.read_text()
    block = re.search(r"<!-- consumer-example.*?-->\n```python\n(.*?)```", text, re.S)
    assert block is not None, "the consumer example is missing from the doc"
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(block.group(1), str(DOC), "exec"), namespace)
    return namespace


@pytest.mark.anyio
async def test_the_documented_consumer_reads_each_event_and_survives_a_crash(
    recorder: Recorder, redis_server: RedisProcess
) -> None:
    code = example()
    at = now_ms()
    await recorder.record_many(
        [Record.create("C1", "A", "v1", "Alpha", at), Record.create("C1", "B", "v1", "Beta", at)]
    )
    streams, seen = recorder.keys.all_events(), list[dict[str, str]]()

    def crash(event: dict[str, str]) -> None:
        raise RuntimeError("consumer crashed before XACK")

    with redis.Redis.from_url(redis_server.url, decode_responses=True) as r:
        code["create_group"](r, streams, "crm")
        code["create_group"](r, streams, "crm")  # idempotent
        with pytest.raises(RuntimeError):
            code["consume"](r, streams, "crm", "w1", crash, block_ms=50, forever=False)
        # a restarted consumer handles the entries it had not acknowledged
        code["consume"](r, streams, "crm", "w1", seen.append, block_ms=50, forever=False)
        pending = r.xpending(streams[0], "crm")["pending"]

    assert [(e["from"], e["to"], e["model_version"]) for e in seen] == [
        ("", "A", "v1"),
        ("A", "B", "v1"),
    ]
    assert pending == 0
