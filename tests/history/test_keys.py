"""The key layout: one builder, the documented names, and one Cluster slot per record."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from app.history import Keys
from app.history.keys import decode_cursor, encode_cursor
from tests.history.conftest import RedisProcess


def test_the_documented_layout() -> None:
    keys = Keys("seg:", shards=1, flow_bucket_seconds=3600)
    at = 1_700_003_600_123  # 2023-11-14T23:13:20.123Z

    assert keys.customer("C42") == "seg:{0}:c:C42"
    assert keys.members(0, "seg-001") == "seg:{0}:m:seg-001"
    assert keys.block(0, "seg-001", 3) == "seg:{0}:m:seg-001>3"
    assert keys.registry(0) == "seg:{0}:reg"
    assert keys.forgotten(0) == "seg:{0}:forgotten"
    assert keys.flow(0, at) == "seg:{0}:flow:1700002800"
    assert keys.events(0) == "seg:{0}:events"
    assert keys.all_events() == ["seg:{0}:events"]


def test_everything_one_record_touches_is_in_one_cluster_slot() -> None:
    keys = Keys("seg:", shards=64)
    for i in range(500):
        customer = f"customer-{i}-{{odd}}"  # braces in an id must not move the hash tag
        shard = keys.shard_of(customer)  # the builders the recording script's calls use
        names = [keys.customer(customer), keys.events(shard), keys.registry(shard)]
        names += [keys.forgotten(shard), keys.flow(shard, 1_700_000_000_000 + i * 997)]
        names += [keys.members_prefix(shard) + segment for segment in ("seg-001", "seg-017")]
        names += [keys.block(shard, "seg-001", 7)]
        assert len({key_slot(name.encode()) for name in names}) == 1, names
        assert keys.customer(customer).startswith(keys.customer_head(shard))


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
        await client.set(keys.customer("C1"), "1")
        await client.set(unescaped_match + "other", "1")
        try:
            found = list({key async for key in client.scan_iter(match=keys.pattern())})
        finally:
            await client.delete(keys.customer("C1"), unescaped_match + "other")
    assert found == [keys.customer("C1")]


def test_member_cursors_round_trip_and_foreign_ones_are_refused() -> None:
    assert decode_cursor(encode_cursor([0, 130, 7]), 3) == [0, 130, 7]
    # every cursor of the published pattern is a place: a missing shard is 0, extras go
    assert decode_cursor(encode_cursor([1, 2]), 3) == [1, 2, 0]
    assert decode_cursor(encode_cursor([1, 2, 3]), 1) == [1]
    for foreign in ["garbage!", encode_cursor([-1]), "MTIz.Cg", "1..2", "", "1" * 19]:
        with pytest.raises(ValueError, match="invalid cursor"):
            decode_cursor(foreign, 1)
