"""One-time rewrite of the first key layout (``:cur`` hash, ``:hist`` JSON list, membership
sorted sets) into the compact one (docs/redis-keys.md, "Migrating from the first layout").

Run it with the service stopped (``segments history migrate-keys``): it is not atomic across
customers, but a run cut short (Redis failing or restarting, the command killed) loses
nothing: run it again and it finishes. Each segment's old sorted set is first renamed
aside (``<p>{<s>}:mig:<seg>``, one atomic ``RENAME``), since the new membership head takes
its name, and deleted only after every customer of the shard is rewritten, so a second run
still knows every member and join number. Every history entry, version and record id is
kept (names were never needed: readers resolve them). Flow counters have not changed. Old
stream entries keep their old fields until the stream's cap ages them out. Running it again
after a whole run finds no old keys and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from app.history.keys import BLOCK_SIZE
from app.history.recorder import Recorder

OLD_CURRENT, OLD_HISTORY = ":cur", ":hist"
ASIDE = "mig:"  # an old membership set renamed aside until its shard is rewritten


@dataclass(frozen=True, slots=True)
class MigrationReport:
    customers: int
    members: int
    segments: int


def _base36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, d = divmod(value, 36)
        out = digits[d] + out
        if value == 0:
            return out


async def _version_index(client: Any, registry: str, version: str, cache: dict[str, str]) -> str:
    if version not in cache:
        index = await client.hget(registry, f"v>{version}")
        if index is None:
            index = str(await client.hincrby(registry, "v#", 1))
            await client.hset(registry, mapping={f"v>{version}": index, f"v<{index}": version})
        cache[version] = index
    return cache[version]


async def migrate_keys(recorder: Recorder) -> MigrationReport:
    """Rewrite every customer of the old layout under the recorder's prefix."""
    client: Any = recorder.client
    keys = recorder.keys
    customers = members = segments = 0
    for shard in range(keys.shards):
        registry, versions = keys.registry(shard), dict[str, str]()
        # membership first: the old sorted set has the name of the new head hash, so it is
        # renamed aside and kept until the shard's customers are rewritten (their join
        # numbers come from it, on a second run after a failure too)
        joins: dict[str, tuple[str, int]] = {}  # customer -> (segment, join number)
        pattern = keys.pattern().removesuffix("*")
        aside = f"{keys.tag(shard)}{ASIDE}"
        async for name in client.scan_iter(match=f"{pattern}{{{shard}}}:m:*", count=1000):
            if await client.type(name) == "zset":
                segment = name.removeprefix(keys.members_prefix(shard))
                await client.rename(name, f"{aside}{segment}")
        match = f"{pattern}{{{shard}}}:{ASIDE}*"
        # (once each: SCAN may return a key twice, as while Redis resizes its key table)
        kept = list(
            dict.fromkeys([name async for name in client.scan_iter(match=match, count=1000)])
        )
        for name in kept:
            segment = name.removeprefix(aside)
            entries: list[str] = await client.zrange(name, 0, -1)
            segments += 1
            for number, entry in enumerate(entries, 1):
                joined, _, customer = entry.partition(":")
                block = keys.block(shard, segment, number // BLOCK_SIZE)
                await client.hset(block, str(number), f"{int(joined)}:{customer}")
                joins[customer] = (segment, number)
                members += 1
            await client.hset(
                keys.members(shard, segment), mapping={"n": len(entries), "c": len(entries)}
            )
        head = keys.customer_head(shard)
        async for name in client.scan_iter(match=f"{pattern}{{{shard}}}:c:*:cur", count=1000):
            customer = name.removeprefix(head).removesuffix(OLD_CURRENT)
            old = await client.hgetall(name)
            raw: list[str] = await client.lrange(f"{head}{customer}{OLD_HISTORY}", 0, -1)
            history = [orjson.loads(item) for item in raw]
            if "segment" not in old:
                continue
            version = await _version_index(client, registry, old["version"], versions)
            fields = {"s": old["segment"], "v": version, "a": old["assigned_at"]}
            fields |= {"q": old["seq"], "r": old["rid"]}
            if customer in joins and joins[customer][0] == old["segment"]:
                fields["n"] = str(joins[customer][1])
            for entry in history:
                index = await _version_index(client, registry, entry["version"], versions)
                fields[f"h{entry['seq']}"] = f"{_base36(entry['at'])}|{index}|{entry['from'] or ''}"
            latest = f"h{old['seq']}"
            if latest not in fields:  # the history expired: the state still knows its start
                fields[latest] = f"{_base36(int(old['since']))}|{version}|"
            await client.hset(keys.customer(customer), mapping=fields)
            await client.delete(name, f"{head}{customer}{OLD_HISTORY}")
            customers += 1
        if kept:
            await client.delete(*kept)
    return MigrationReport(customers, members, segments)
