"""The app's one Redis resource: opened by the lifespan, handed to history and rate limits.

``open_redis(settings)`` yields one client (``decode_responses``, the configured deadlines, no
retries: the spool retries) for ``SEGMENTS_REDIS_URL``, or for an embedded server it starts
under the data directory when no URL is set, and closes both on exit; ``None`` when nothing
configured needs Redis. A feature never opens its own connection or borrows another
feature's: the lifespan hands it this client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.history import EmbeddedRedis, EmbeddedRedisError, create_redis
from app.settings import Settings

START_TIMEOUT_S = 2.0


class RateLimitWithoutRedis(RuntimeError):
    """A rate limit is configured, but no Redis can be had at start."""


def needs_redis(settings: Settings) -> bool:
    """Recording and rate limits keep their state in Redis; nothing else does."""
    return settings.record_assignments or settings.rate_limit_per_minute is not None


@contextlib.asynccontextmanager
async def open_redis(settings: Settings) -> AsyncIterator[Redis | None]:
    """The app's Redis client (and the embedded server when no URL is configured).

    A rate limit needs Redis to answer at start, so that a limit that cannot work is not
    silently off (afterwards it fails open while Redis is down). Recording alone starts
    without Redis: its records wait in the spool.

    Raises
    ------
    RateLimitWithoutRedis
        A rate limit is set and Redis does not answer, or cannot be started.
    EmbeddedRedisError
        Recording needs the embedded server and it cannot be started.
    """
    if not needs_redis(settings):
        yield None
        return
    config = settings.history_config()
    limited = settings.rate_limit_per_minute is not None
    async with contextlib.AsyncExitStack() as stack:
        try:
            url = config.redis_url
            if url is None:
                embedded = EmbeddedRedis(config.data_dir)
                url = await asyncio.to_thread(embedded.start)
                stack.push_async_callback(asyncio.to_thread, embedded.stop)
            client = create_redis(url, config)
            stack.push_async_callback(client.aclose)
            if limited:
                async with asyncio.timeout(START_TIMEOUT_S):
                    await client.ping()
        except (EmbeddedRedisError, RedisError, OSError, TimeoutError) as exc:
            if not limited:
                raise
            raise RateLimitWithoutRedis(
                "SEGMENTS_RATE_LIMIT_PER_MINUTE is set but no Redis can be had "
                f"({str(exc) or type(exc).__name__}): set SEGMENTS_REDIS_URL to a Redis that "
                "answers, install redis-server for the embedded one, or unset the limit"
            ) from None
        yield client
