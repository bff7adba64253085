"""Live drift counts in Redis: one hash per model version and hour (docs/redis-keys.md).

``<prefix>drift:<model>:<version>:<hour start, epoch s>`` holds ``n`` (assignments), ``s:<id>``
(assignments into a segment) and ``f:<feature>:<bin>`` (values in a reference bin). Every
worker adds its counts with ``HINCRBY`` in one pipeline per flush; each key expires
``ttl_s`` after its last write.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence

from redis.asyncio import Redis

BUCKET_S = 3600
MAX_BUCKETS = 24 * 400
"""Most hours one read covers: a longer window is read from its latest part."""


def bucket_of(at_s: float) -> int:
    return int(at_s) // BUCKET_S * BUCKET_S


def drift_key(prefix: str, model: str, version: str, bucket: int) -> str:
    """The hash of one version's counts in the hour starting at ``bucket``.

    >>> drift_key("seg:", "customers", "20260101T000000Z-ab12", 1_767_225_600)
    'seg:drift:customers:20260101T000000Z-ab12:1767225600'
    """
    return f"{prefix}drift:{model}:{version}:{bucket}"


async def flush(
    client: Redis,
    prefix: str,
    drained: Sequence[tuple[str, str, dict[str, int]]],
    ttl_s: int,
    timeout_s: float,
    now_s: float | None = None,
) -> None:
    """Add drained counts to the current hour's hashes, in one pipeline."""
    if not drained:
        return
    bucket = bucket_of(time.time() if now_s is None else now_s)
    pipe = client.pipeline(transaction=False)
    for model, version, fields in drained:
        key = drift_key(prefix, model, version, bucket)
        for name, count in fields.items():
            pipe.hincrby(key, name, count)
        pipe.expire(key, ttl_s)
    async with asyncio.timeout(timeout_s):
        await pipe.execute()


def covered(since_s: float, until_s: float) -> tuple[int, int]:
    """The start of the first hour and the end of the last hour that a read of
    ``[since_s, until_s)`` sums (whole hours, at most the latest ``MAX_BUCKETS``)."""
    since_s = max(since_s, until_s - MAX_BUCKETS * BUCKET_S)
    return bucket_of(since_s), bucket_of(max(since_s, until_s - 1)) + BUCKET_S


async def read(
    client: Redis,
    prefix: str,
    model: str,
    version: str,
    since_s: float,
    until_s: float,
    timeout_s: float,
) -> Counter[str]:
    """The counts of the hours overlapping ``[since_s, until_s)``, summed (at most the
    latest ``MAX_BUCKETS`` hours)."""
    first, end = covered(since_s, until_s)
    buckets = range(first, end, BUCKET_S)
    pipe = client.pipeline(transaction=False)
    for bucket in buckets:
        pipe.hgetall(drift_key(prefix, model, version, bucket))
    async with asyncio.timeout(timeout_s):
        hashes = await pipe.execute()
    total: Counter[str] = Counter()
    for h in hashes:
        total.update({k: int(v) for k, v in h.items()})
    return total
