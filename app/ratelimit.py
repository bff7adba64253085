"""Requests per minute per API key, counted in the app's Redis so every worker shares one
budget per key."""

from __future__ import annotations

import asyncio
import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.history import Keys
from app.problems import Problem

log = logging.getLogger(__name__)


class RateLimiter:
    """Fixed one-minute windows, one counter per key and window (``Keys.rate``).

    Fails open: when Redis cannot answer within ``timeout_s``, the request goes through (and
    is logged), because refusing all traffic for a rate limiter's sake would be worse than a
    burst.
    """

    def __init__(self, client: Redis, keys: Keys, limit: int, timeout_s: float) -> None:
        self.client, self.keys, self.limit, self.timeout_s = client, keys, limit, timeout_s

    async def check(self, key_id: str) -> None:
        """Count one request of ``key_id``; raises a 429 ``Problem`` past the limit."""
        now = time.time()
        window = int(now // 60)
        key = self.keys.rate(key_id, window)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, 120)
                count, _ = await asyncio.wait_for(pipe.execute(), self.timeout_s)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("rate limit not checked (Redis: %s); letting the request through", exc)
            return
        if int(count) > self.limit:
            retry = max(1, int((window + 1) * 60 - now) + 1)
            raise Problem(
                429,
                "Too many requests",
                f"this key is limited to {self.limit} requests a minute; retry in {retry} s",
                type_="/problems/rate-limited",
                headers={"Retry-After": str(retry)},
            )
