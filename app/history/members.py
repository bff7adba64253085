"""Reading a segment's membership: per shard, a head hash and blocks of 128 joins.

Every join of a segment in a shard gets the next join number ``n`` (the head's ``n``); the
member is the field ``n`` of block ``n // 128`` (``<joined_at ms>:<customer id>``), and
leaving deletes that field (an empty block disappears). Blocks of at most 128 small fields
stay in Redis's compact encoding: about 30 bytes a member instead of 120 in a sorted set.
Join numbers increase in the order the joins were recorded, so a walk from a position (the
last number seen) returns each member who stays exactly once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.history.keys import BLOCK_SIZE

if TYPE_CHECKING:
    from app.history.recorder import Recorder

BLOCKS_PER_ROUND = 8
"""Blocks read per shard in the first round trip beyond those a full page needs; each
further round reads twice as many (up to ``MAX_BLOCKS_PER_ROUND``), so that long gaps left
by customers who moved on cost a few round trips, not one per few blocks."""
MAX_BLOCKS_PER_ROUND = 1024

Entry = tuple[int, int, int, str]
"""(shard, join number, joined_at ms, customer id)"""


async def read_members(
    recorder: Recorder, segment_id: str, positions: list[int], want: int
) -> list[list[Entry]]:
    """Per shard, up to ``want`` members who joined after ``positions[shard]``, in order."""
    keys, shards = recorder.keys, len(positions)
    async with recorder.client.pipeline(transaction=False) as pipe:
        for shard in range(shards):
            pipe.hget(keys.members(shard, segment_id), "n")
        heads: list[str | None] = await recorder._guard(pipe.execute())
    last = [int(h or 0) for h in heads]
    pages: list[list[Entry]] = [[] for _ in range(shards)]
    next_block = [(p + 1) // BLOCK_SIZE for p in positions]
    per_round = -(-want // BLOCK_SIZE) + BLOCKS_PER_ROUND
    while True:
        todo = [
            s
            for s in range(shards)
            if len(pages[s]) < want and next_block[s] * BLOCK_SIZE <= last[s]
        ]
        if not todo:
            return pages
        asked: list[int] = []
        async with recorder.client.pipeline(transaction=False) as pipe:
            for shard in todo:
                end = min(next_block[shard] + per_round, last[shard] // BLOCK_SIZE + 1)
                for block in range(next_block[shard], end):
                    pipe.hgetall(keys.block(shard, segment_id, block))
                    asked.append(shard)
                next_block[shard] = end
            blocks: list[dict[str, str]] = await recorder._guard(pipe.execute())
        per_round = min(2 * per_round, MAX_BLOCKS_PER_ROUND)
        for shard, block_fields in zip(asked, blocks, strict=True):
            page = pages[shard]
            for number in sorted(map(int, block_fields)):
                if number > positions[shard] and len(page) < want:
                    joined, _, customer_id = block_fields[str(number)].partition(":")
                    page.append((shard, number, int(joined), customer_id))
