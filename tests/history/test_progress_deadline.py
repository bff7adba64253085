"""A bulk exchange under a ``Progress`` deadline fails when Redis stops answering, not when
the whole exchange is slow: every write Redis takes and every reply moves the deadline on.

Redis is made slow for real: each call is a script that keeps the server busy for a while
(``TIME`` in a loop), on the history tests' own server.
"""

from __future__ import annotations

import time

import pytest

from app.history import Recorder, RedisUnavailable
from app.history.recorder import Progress, pack, send_packed

pytestmark = pytest.mark.anyio

BUSY = """
local t = redis.call('TIME')
local start = t[1] * 1e6 + t[2]
repeat
  t = redis.call('TIME')
until t[1] * 1e6 + t[2] - start >= tonumber(ARGV[1]) * 1e6
return ARGV[1]
"""


def busy_calls(seconds: float, count: int) -> list[tuple[bytes, int]]:
    """``count`` script calls, each keeping Redis busy for ``seconds``. Each is longer than
    Redis reads at once (16 KB), as a recording's calls are: Redis answers the commands it
    read together only once it has run them all, so small calls would be answered at once."""
    call = pack([[b"EVAL", BUSY.encode(), b"0", str(seconds).encode(), b"x" * 20_000]])
    return [(call, 1)] * count


async def test_an_exchange_that_keeps_answering_outlasts_its_deadline(recorder: Recorder) -> None:
    calls = busy_calls(0.25, 6)  # 1.5 s in all, never more than 0.25 s without a reply
    started = time.monotonic()
    progress = Progress(1.0)
    replies = await recorder._guard(send_packed(recorder.client, calls, progress), 1.0, progress)
    assert replies == ["0.25"] * 6
    assert time.monotonic() - started >= 1.5
    # the same exchange under a deadline for the whole of it fails
    with pytest.raises(RedisUnavailable):
        await recorder._guard(send_packed(recorder.client, calls), 1.0)


async def test_an_exchange_fails_when_redis_stops_answering(recorder: Recorder) -> None:
    started = time.monotonic()
    with pytest.raises(RedisUnavailable):
        progress = Progress(0.5)
        calls = busy_calls(0.1, 2) + busy_calls(1.5, 1) + busy_calls(0.1, 2)
        await recorder._guard(send_packed(recorder.client, calls, progress), 0.5, progress)
    # it failed once 0.5 s went by without a reply, not at the end of the calls (1.9 s)
    assert time.monotonic() - started < 1.5
    assert await recorder.client.ping()  # the server still works (the connection was dropped)
