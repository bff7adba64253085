"""What recording's status says across a Redis outage: one story, never "Redis unreachable"
while records are said to go straight to it.

``/readyz`` shows ``reachable`` (a ping just now) beside ``mode`` (``direct``: records go
straight to Redis; ``spooling``). A ping that fails switches the process to the spool, as a
failed record does, so an unreachable Redis is never reported in ``direct`` mode; and the
connections opened before an outage are dropped once Redis is back, so the first ping after
the spool drains does not fail on one of them.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from app.history import Record, open_history
from tests.history.conftest import RedisProcess, delete_prefix, make_config

pytestmark = pytest.mark.anyio


async def test_status_is_consistent_before_during_and_after_an_outage(
    start_redis: Callable[..., RedisProcess], tmp_path: Path
) -> None:
    server = start_redis(tmp_path / "redis").start()
    config = make_config(server.url, tmp_path, timeout_ms=200)
    async with open_history(config, replay=False) as service:
        # several pooled connections, as a serving process holds
        first = [Record.create(f"C{i}", "S1", "v1") for i in range(20)]
        outcomes = await asyncio.gather(*(service.record(r) for r in first))
        assert all(o.recorded for o in outcomes)
        up = await service.status()
        assert (up.reachable, up.redis_up) == (True, True)

        server.stop(signal.SIGKILL)
        down = await service.status()  # no record has failed yet: the ping finds out
        assert (down.reachable, down.redis_up) == (False, False)
        spooled = await service.record(Record.create("C1", "S2", "v1"))
        assert not spooled.recorded

        await asyncio.to_thread(server.start)  # same port
        for _ in range(3):  # each time Redis is back and the spool drained
            assert await service.replay_pending() >= 0
            back = await service.status()
            assert (back.reachable, back.redis_up, back.spool_depth) == (True, True, 0)
        assert back.replayed == 1
        await delete_prefix(service.recorder)
