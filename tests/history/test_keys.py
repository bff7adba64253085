"""The key layout: one builder, the documented names, and one Cluster slot per record."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from app.history import Keys
from app.history.keys import decode_cursor, encode_cursor, member_entry, parse_member_entry
from tests.history.conftest import RedisProcess


def test_the_documented_layout() -> None:
    keys = Keys("seg:", shards=1, flow_bucket_seconds=3600)
    at = 1_700_003_600_123  # 2023-11-14T23:13:20.123Z

    assert keys.current("C42") == "seg:{0}:c:C42:cur"
    assert keys.history("C42") == "seg:{0}:c:C42:hist"
    assert keys.members(0, "seg-001") == "seg:{0}:m:seg-001"
    assert keys.flow(0, at) == "seg:{0}:flow:1700002800"
    assert keys.events(0) == "seg:{0}:events"
    assert keys.all_events() == ["seg:{0}:events"]


def test_everything_one_record_touches_is_in_one_cluster_slot() -> None:
    keys = Keys("seg:", shards=64)
    for i in range(500):
        customer = f"customer-{i}-{{odd}}"  # braces in an id must not move the hash tag
        shard = keys.shard_of(customer)  # the builders the recording script's calls use
        names = [keys.current(customer), keys.history(customer), keys.events(shard)]
        names += [keys.flow(shard, 1_700_000_000_000 + i * 997)]
        names += [keys.members_prefix(shard) + segment for segment in ("seg-001", "seg-017")]
        assert len({key_slot(name.encode()) for name in names}) == 1, names
        assert keys.current(customer).startswith(keys.customer_head(shard))


def test_customers_spread_over_the_shards() -> None:
    keys = Keys("seg:", shards=16)
    per_shard = Counter(keys.shard_of(f"C{i}") for i in range(16_000))
    assert len(per_shard) == 16
    assert min(per_shard.values()) > 800  # about 1,000 each
    slots = {key_slot(keys.events(shard).encode()) for shard in range(16)}
    assert len(slots) == 16


def test_prefixes_with_hash_tag_braces_are_refused() -> None:
    with pytest.raises(ValueError, match="must not contain"):
        Keys("seg{x}:")


@pytest.mark.anyio
async def test_the_scan_pattern_matches_only_the_prefix(redis_server: RedisProcess) -> None:
    keys = Keys(f"t[{uuid.uuid4().hex}]*:")
    unescaped_match = keys.prefix.replace("[", "").replace("]", "").replace("*", "X")
    async with Redis.from_url(redis_server.url, decode_responses=True) as client:
        await client.set(keys.current("C1"), "1")
        await client.set(unescaped_match + "other", "1")
        try:
            found = [key async for key in client.scan_iter(match=keys.pattern())]
        finally:
            await client.delete(keys.current("C1"), unescaped_match + "other")
    assert found == [keys.current("C1")]


def test_membership_entries_sort_by_join_time_and_cursors_round_trip() -> None:
    entries = [member_entry(at, c) for at, c in [(5, "b"), (40, "a"), (5, "a"), (1_000, "0")]]
    assert [parse_member_entry(e) for e in sorted(entries)] == [
        (5, "a"),
        (5, "b"),
        (40, "a"),
        (1_000, "0"),
    ]
    entry = member_entry(1_700_000_000_000, "Jürgen:42")
    assert parse_member_entry(entry) == (1_700_000_000_000, "Jürgen:42")
    assert decode_cursor(encode_cursor(entry)) == entry
