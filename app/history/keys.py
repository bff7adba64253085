"""THE builder of every Redis key the product uses; ``docs/redis-keys.md`` documents them.

All keys start with the configured prefix and a hash tag naming a shard, ``{<shard>}``. A
customer always lives in one shard (CRC-32 of the id modulo ``shards``), and everything one
recorded assignment touches (the customer's current segment and history, the membership sets,
the flow counters and the event stream of that shard) shares that tag, so the recording script
touches a single Cluster slot. Readers fan out over the shards.

>>> keys = Keys("seg:", shards=1, flow_bucket_seconds=3600)
>>> keys.customer("C42")
'seg:{0}:c:C42'
>>> keys.block(0, "seg-003", 1)
'seg:{0}:m:seg-003>1'
>>> keys.flow(0, 1_700_003_600_123)
'seg:{0}:flow:1700002800'
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

from app.history.config import HistoryConfig

FLOW_SEPARATOR = ">"
"""Between the from and the to segment in a flow counter's field (``seg-001>seg-002``); no
segment id contains it, so it also ends a segment id in a membership block's name."""
BLOCK_SIZE = 128
"""Members per membership block: a hash stays in Redis's compact listpack encoding up to
``hash-max-listpack-entries`` (128 by default) fields."""


class Keys:
    """Builds key names from a prefix, a shard count and the flow bucket width.

    Parameters
    ----------
    prefix
        Prefix of every key, e.g. ``seg:``.
    shards
        Number of hash-tag shards (1 on a single node).
    flow_bucket_seconds
        Width of a flow-counter bucket.
    """

    def __init__(self, prefix: str = "seg:", shards: int = 1, flow_bucket_seconds: int = 3600):
        if "{" in prefix or "}" in prefix:
            raise ValueError("a key prefix must not contain '{' or '}'")
        self.prefix, self.shards, self.bucket_s = prefix, shards, flow_bucket_seconds

    @classmethod
    def from_config(cls, config: HistoryConfig) -> Keys:
        return cls(config.key_prefix, config.shards, config.flow_bucket_seconds)

    def shard_of(self, customer_id: str) -> int:
        """The shard of a customer: stable across processes, versions and platforms."""
        if self.shards == 1:
            return 0
        return zlib.crc32(customer_id.encode()) % self.shards

    def tag(self, shard: int) -> str:
        return f"{self.prefix}{{{shard}}}:"

    def customer_head(self, shard: int) -> str:
        """What a customer's keys in ``shard`` start with; the id and a suffix follow."""
        return f"{self.tag(shard)}c:"

    def customer(self, customer_id: str) -> str:
        """Hash: the customer's current state, history and profile (fields in the doc)."""
        return f"{self.customer_head(self.shard_of(customer_id))}{customer_id}"

    def behaviour(self, customer_id: str) -> str:
        """Hash: the customer's behaviour aggregates, with the ids of the events applied and
        the orders counted (``POST /v1/events``, docs/events.md)."""
        return f"{self.behaviour_head(self.shard_of(customer_id))}{customer_id}"

    def behaviour_head(self, shard: int) -> str:
        """What a customer's behaviour key in ``shard`` starts with; the id follows."""
        return f"{self.tag(shard)}x:"

    def registry(self, shard: int) -> str:
        """Hash: the shard's model versions and profile schemas, each by a small index."""
        return f"{self.tag(shard)}reg"

    def forgotten(self, shard: int) -> str:
        """Sorted set: digests of the shard's forgotten customers, scored by when (ms)."""
        return f"{self.tag(shard)}forgotten"

    def members_prefix(self, shard: int) -> str:
        """What the recording script prepends to a segment id to name its membership keys."""
        return f"{self.tag(shard)}m:"

    def members(self, shard: int, segment_id: str) -> str:
        """Hash: the segment's membership head in the shard (``n`` last join number, ``c``
        members now)."""
        return f"{self.members_prefix(shard)}{segment_id}"

    def block(self, shard: int, segment_id: str, block: int) -> str:
        """Hash: join number -> ``<joined_at ms>:<customer id>`` for the joins numbered
        ``block * BLOCK_SIZE`` to ``block * BLOCK_SIZE + BLOCK_SIZE - 1``."""
        return f"{self.members_prefix(shard)}{segment_id}{FLOW_SEPARATOR}{block}"

    def bucket_start(self, at_ms: int) -> int:
        """Epoch second at which the flow bucket holding ``at_ms`` starts."""
        return (at_ms // 1000) // self.bucket_s * self.bucket_s

    def flow(self, shard: int, at_ms: int) -> str:
        """Hash: ``from>to`` → count of migrations in the bucket holding ``at_ms``."""
        return f"{self.tag(shard)}flow:{self.bucket_start(at_ms)}"

    def events(self, shard: int) -> str:
        """Stream: the shard's segment-change events."""
        return f"{self.tag(shard)}events"

    def rescore(self) -> str:
        """Hash: the model's last service-side rescore (``POST /v1/rescore``): its state and
        counts."""
        return f"{self.tag(0)}rescore"

    def rescore_lease(self) -> str:
        """String: the run id of the rescore running now, in whichever worker; it expires
        unless that worker renews it (a worker that died frees it)."""
        return f"{self.tag(0)}rescore:lease"

    def rate(self, key_id: str, window: int) -> str:
        """Request counter of one API key in one fixed window (string, expires with it)."""
        return f"{self.prefix}rl:{{{key_id}}}:{window}"

    def all_events(self) -> list[str]:
        """Every event stream, one per shard (a consumer reads them all)."""
        return [self.events(shard) for shard in range(self.shards)]

    def pattern(self) -> str:
        """A ``SCAN MATCH`` pattern covering every key of this prefix (tests, tooling)."""
        return f"{_glob_escaped(self.prefix)}*"

    def customers_pattern(self, shard: int) -> str:
        """A ``SCAN MATCH`` pattern covering the customer keys of ``shard``."""
        return f"{_glob_escaped(self.customer_head(shard))}*"


def _glob_escaped(text: str) -> str:
    """``text`` matched literally by a ``SCAN MATCH`` pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


# A cursor is the last join number seen in each shard, in decimal, joined by dots: URL-safe,
# and every string of this pattern (published as the cursor's) is a position in the join
# order, issued or not (a missing shard's position is 0, an extra one is ignored).
CURSOR_PATTERN = r"^[0-9]{1,18}(\.[0-9]{1,18}){0,255}$"  # up to 256 shards
_CURSOR = re.compile(CURSOR_PATTERN[1:-1])


def encode_cursor(positions: Sequence[int]) -> str:
    """A members cursor: the last join number seen in each shard."""
    return ".".join(map(str, positions))


def decode_cursor(cursor: str, shards: int) -> list[int]:
    """The positions a cursor holds, one per shard; ``ValueError`` if it is not a cursor."""
    if _CURSOR.fullmatch(cursor) is None:
        raise ValueError(f"invalid cursor {cursor[:40]!r}: not one this service gave")
    positions = [int(p) for p in cursor.split(".")][:shards]
    return positions + [0] * (shards - len(positions))
