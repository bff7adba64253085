"""THE builder of every Redis key the product uses; ``docs/redis-keys.md`` documents them.

All keys start with the configured prefix and a hash tag naming a shard, ``{<shard>}``. A
customer always lives in one shard (CRC-32 of the id modulo ``shards``), and everything one
recorded assignment touches (the customer's current segment and history, the membership sets,
the flow counters and the event stream of that shard) shares that tag, so the recording script
touches a single Cluster slot. Readers fan out over the shards.

>>> keys = Keys("seg:", shards=1, flow_bucket_seconds=3600)
>>> keys.current("C42")
'seg:{0}:c:C42:cur'
>>> keys.flow(0, 1_700_003_600_123)
'seg:{0}:flow:1700002800'
"""

from __future__ import annotations

import re
import zlib

from app.history.config import HistoryConfig

CURRENT, HISTORY = ":cur", ":hist"
"""Suffixes of a customer's current-segment hash and history list (after the id)."""
FLOW_SEPARATOR = ">"
"""Between the from and the to segment in a flow counter's field (``seg-001>seg-002``)."""


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

    def current(self, customer_id: str) -> str:
        """Hash: the customer's current segment (see the doc for its fields)."""
        return f"{self.customer_head(self.shard_of(customer_id))}{customer_id}{CURRENT}"

    def history(self, customer_id: str) -> str:
        """List: the customer's migrations as JSON, newest first."""
        return f"{self.customer_head(self.shard_of(customer_id))}{customer_id}{HISTORY}"

    def members_prefix(self, shard: int) -> str:
        """What the recording script prepends to a segment id to name a membership set."""
        return f"{self.tag(shard)}m:"

    def members(self, shard: int, segment_id: str) -> str:
        """Sorted set: the shard's customers currently in the segment, by join time."""
        return f"{self.members_prefix(shard)}{segment_id}"

    def bucket_start(self, at_ms: int) -> int:
        """Epoch second at which the flow bucket holding ``at_ms`` starts."""
        return (at_ms // 1000) // self.bucket_s * self.bucket_s

    def flow(self, shard: int, at_ms: int) -> str:
        """Hash: ``from>to`` → count of migrations in the bucket holding ``at_ms``."""
        return f"{self.tag(shard)}flow:{self.bucket_start(at_ms)}"

    def events(self, shard: int) -> str:
        """Stream: the shard's segment-change events."""
        return f"{self.tag(shard)}events"

    def rate(self, key_id: str, window: int) -> str:
        """Request counter of one API key in one fixed window (string, expires with it)."""
        return f"{self.prefix}rl:{{{key_id}}}:{window}"

    def all_events(self) -> list[str]:
        """Every event stream, one per shard (a consumer reads them all)."""
        return [self.events(shard) for shard in range(self.shards)]

    def pattern(self) -> str:
        """A ``SCAN MATCH`` pattern covering every key of this prefix (tests, tooling)."""
        escaped = "".join(f"\\{c}" if c in "*?[]\\" else c for c in self.prefix)
        return f"{escaped}*"


def member_entry(joined_at_ms: int, customer_id: str) -> str:
    """The membership set's member for a customer who joined a segment at ``joined_at_ms``.

    All scores are 0; the 13-digit zero-padded time makes lexicographic order the join order,
    so a cursor is simply the last member seen (exact under ties, unlike scores).
    """
    return f"{joined_at_ms:013d}:{customer_id}"


def parse_member_entry(member: str) -> tuple[int, str]:
    """``(joined_at_ms, customer_id)`` of a membership set member."""
    joined, _, customer_id = member.partition(":")
    return int(joined), customer_id


# A cursor is the hex of the last member seen (UTF-8): URL-safe, and every string of this
# pattern (published as the cursor's) is a position in the membership order, issued or not.
CURSOR_PATTERN = "^(3[0-9]){13}3a([0-9a-f]{2})*$"
_CURSOR = re.compile(CURSOR_PATTERN[1:-1])


def encode_cursor(member: str) -> str:
    return member.encode().hex()


def decode_cursor(cursor: str) -> str:
    """The membership entry a cursor points after; ``ValueError`` if it is not a cursor."""
    if _CURSOR.fullmatch(cursor) is None:
        raise ValueError(f"invalid cursor {cursor[:40]!r}: not one this service gave")
    return bytes.fromhex(cursor).decode(errors="replace")
