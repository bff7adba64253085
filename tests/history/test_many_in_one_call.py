"""Many records in one script call leave Redis exactly as one call per record would.

``record_many`` sends a batch as few calls of ``record.lua`` (one per shard and up to
``RECORDS_PER_CALL`` records); the obvious way is one call per record. Both are run on the same
records under two key prefixes, and every key is compared.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest

from app.columns import ColumnRows
from app.history import HistoryConfig, Outcome, Record, Recorder
from app.history.recorder import RECORDS_PER_CALL
from app.history.records import RecordBatch, now_ms
from tests.history.conftest import open_recorder

pytestmark = pytest.mark.anyio
HOUR = 3_600_000


def journey(seed: int) -> list[Record]:
    """Customers moving between segments: duplicates within the batch, unchanged records,
    non-ASCII ids, names and none, two model versions, across a flow-bucket boundary, with
    profiles of two schemas (a retrain added a feature) and none."""
    rng = random.Random(seed)
    boundary = (now_ms() // HOUR - 2) * HOUR
    customers = [f"C{i:03d}" for i in range(150)] + ["Jürgen:1", "顧客-7", "a b"]
    segments = [("seg-001", "Loyal"), ("seg-002", None), ("seg-003", "At risk"), ("r-1", "VIP")]
    profiles: list[dict[str, Any] | None] = [
        None,
        {"spend": 12.5, "plan": "pro", "tickets": 3},
        {"spend": 0.1 + 0.2, "plan": "Grüne ✓", "tickets": None, "added": True},
    ]
    records = []
    for step in range(3 * RECORDS_PER_CALL + 17):
        segment, name = rng.choice(segments)
        at = boundary - 500 + step * 2  # the first records in one bucket, the rest in the next
        version = "v1" if step < RECORDS_PER_CALL else "v2"
        records.append(
            Record.create(
                rng.choice(customers),
                segment,
                version,
                segment_name=name,
                assigned_at=at,
                profile=rng.choice(profiles),
            )
        )
    return records


async def dump(recorder: Recorder) -> dict[str, Any]:
    """Every key of the recorder's prefix (prefix removed) and its contents; stream entries
    without their ids (those are the server's clock)."""
    client: Any = recorder.client
    out: dict[str, Any] = {}
    async for key in client.scan_iter(match=recorder.keys.pattern(), count=1000):
        name = key.removeprefix(recorder.keys.prefix)
        kind = await client.type(key)
        if kind == "hash":
            out[name] = await client.hgetall(key)
        elif kind == "list":
            out[name] = await client.lrange(key, 0, -1)
        elif kind == "zset":
            out[name] = await client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            out[name] = [fields for _, fields in await client.xrange(key)]
        else:
            raise AssertionError(f"unexpected {kind} at {key}")
        if kind in ("hash", "list"):
            ttl = await client.pttl(key)
            out[name + " expires"] = ttl > 0
    return out


@pytest.mark.parametrize("shards", [1, 4])
async def test_a_batch_in_few_calls_equals_one_call_per_record(
    config: HistoryConfig, shards: int
) -> None:
    records = journey(seed=shards)
    # the same records, replayed under another prefix
    one_by_one = replace(config, key_prefix=config.key_prefix + "one:", shards=shards)
    batched = replace(config, key_prefix=config.key_prefix + "many:", shards=shards)
    async with open_recorder(one_by_one) as single, open_recorder(batched) as many:
        want = [await single.record(r) for r in records]
        got = await many.record_many(records)
        assert got == want
        assert sum(o.changed for o in got) > 100 and sum(not o.changed for o in got) > 100
        expected, actual = await dump(single), await dump(many)
        assert actual.keys() == expected.keys()
        for key in expected:
            assert actual[key] == expected[key], key
        # the membership blocks hold "<joined_at>:<customer>" under join numbers
        for key, entries in actual.items():
            if ":m:" in key and ">" in key and not key.endswith(" expires"):
                for number, entry in entries.items():
                    joined, _, customer = entry.partition(":")
                    assert int(number) > 0 and int(joined) > 0 and customer
        assert sum(":flow:" in key for key in actual) >= 2  # both buckets


async def test_a_record_batch_is_recorded_as_its_records(config: HistoryConfig) -> None:
    ids = [f"B{i}" for i in range(450)] + ["B3", "Jürgen"]
    segments = [("seg-001", "Loyal"), ("seg-002", None)]
    picked = [segments[i % 2] for i in range(len(ids))]
    rows = [{"spend": float(i), "plan": "Zürich" if i % 3 else "x"} for i in range(len(ids))]
    batch = RecordBatch(ids, [s for s, _ in picked], [n for _, n in picked], "v7", profiles=rows)
    records = list(batch)  # what the spool would store
    assert [r.customer_id for r in records] == ids
    assert [r.record_id for r in records] == sorted(r.record_id for r in records)
    assert len({r.record_id for r in records}) == len(ids)
    assert {(r.model_version, r.assigned_at) for r in records} == {("v7", batch.assigned_at)}
    assert batch[-1] == records[-1] and batch[2:4] == records[2:4]
    columns = replace(config, key_prefix=config.key_prefix + "columns:")
    objects = replace(config, key_prefix=config.key_prefix + "objects:")
    async with open_recorder(columns) as by_column, open_recorder(objects) as by_record:
        got = await by_column.record_many(batch)
        assert got == await by_record.record_many(records)
        assert got[-2] == Outcome("seg-002", changed=True, recorded=True)  # B3's second record
        assert await dump(by_column) == await dump(by_record)


@pytest.mark.parametrize("shards", [1, 4])
async def test_profiles_kept_as_columns_are_recorded_as_the_same_rows(
    config: HistoryConfig, shards: int
) -> None:
    """A recording run keeps a file's features as columns (``ColumnRows``), never a dict
    per row: Redis ends up exactly as with the rows as dicts, in one shard or several
    (where a call takes the rows of its shard, not a slice)."""
    n = RECORDS_PER_CALL + 57
    ids = [f"K{i}" for i in range(n)] + ["K3", "Jürgen"]
    columns: dict[str, list[Any]] = {
        "spend": [float(i) if i % 7 else None for i in range(n + 2)],
        "visits": [i if i % 5 else float("nan") for i in range(n + 2)],
        "plan": ["Zürich, CH" if i % 3 else 'say "],["' for i in range(n + 2)],
        "paid": [i % 2 == 0 for i in range(n + 2)],
    }
    kept = ColumnRows(columns)
    rows = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    assert list(kept) == rows and kept[5] == rows[5]
    segments = [("seg-001", "Loyal"), ("seg-002", None), ("seg-003", "New")]
    picked = [segments[i % 3] for i in range(len(ids))]
    made = {"as columns": kept, "as dicts": rows}
    outcomes, dumps = [], []
    for how, profiles in made.items():
        prefixed = replace(config, key_prefix=f"{config.key_prefix}{how}:", shards=shards)
        batch = RecordBatch(
            ids,
            [s for s, _ in picked],
            [name for _, name in picked],
            "v7",
            assigned_at=1_700_000_000_000,
            profiles=profiles,
            record_ids=[f"{i:032x}" for i in range(1, len(ids) + 1)],
        )
        async with open_recorder(prefixed) as recorder:
            outcomes.append(await recorder.record_many(batch))
            dumps.append(await dump(recorder))
    assert outcomes[0] == outcomes[1]
    assert dumps[0] == dumps[1]
    assert sum(key.endswith(":K3") or key.endswith("}K3") for key in dumps[0]) == 1


@pytest.mark.parametrize(
    ("ids", "segments", "names", "problem"),
    [
        (["a", ""], ["s", "s"], [None, None], "customer_id"),
        (["a", "b"], ["s", "x>y"], [None, None], "segment id"),
        (["a", "b"], ["s"], [None, None], "differ in length"),
    ],
)
def test_a_record_batch_refuses_what_a_record_refuses(
    ids: list[str], segments: list[str], names: list[str | None], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        RecordBatch(ids, segments, names, "v1")


async def _hmget_calls(recorder: Recorder) -> int:
    stats: dict[str, Any] = await recorder.client.info("commandstats")
    return int(stats.get("cmdstat_hmget", {}).get("calls", 0))


@pytest.mark.parametrize("known", [False, True])
async def test_new_customers_met_again_in_the_call_are_read_again(
    config: HistoryConfig, known: bool
) -> None:
    """A call that meets a new customer asks once whether any of its later customers has a
    hash; when none has (a first load), record.lua reads none of them, but a customer whose
    earlier record in the same call wrote one is read as usual. With a known customer among
    them (``known``), every customer is read. Either way Redis ends up exactly as with one
    call per record."""
    segments = ["seg-001", "seg-002"]
    ids = [f"N{i}" for i in range(150)]
    again = [("N5", "seg-001"), ("N7", "seg-002"), ("N5", "seg-002"), ("N149", "seg-002")]
    at = 1_700_000_000_000
    earlier = [Record.create("E1", "seg-001", "v1", assigned_at=at - 1)] if known else []
    records = [
        Record.create(c, segments[i % 2], "v1", assigned_at=at, profile={"spend": float(i)})
        for i, c in enumerate(ids)
    ]
    records += [Record.create(c, s, "v1", assigned_at=at) for c, s in again]
    if known:
        records.insert(100, Record.create("E1", "seg-002", "v1", assigned_at=at))
    assert len(records) <= RECORDS_PER_CALL  # one call
    one_by_one = replace(config, key_prefix=config.key_prefix + "one:")
    batched = replace(config, key_prefix=config.key_prefix + "many:")
    async with open_recorder(one_by_one) as single, open_recorder(batched) as many:
        want = [await single.record(r) for r in earlier + records]
        await many.record_many(earlier)
        before = await _hmget_calls(many)
        got = await many.record_many(records)
        reads = await _hmget_calls(many) - before
        assert got == want[len(earlier) :]
        assert got[-4:] == [
            Outcome("seg-002", changed=True, recorded=True),  # N5 moves on
            Outcome("seg-002", changed=False, recorded=True),  # N7 stays
            Outcome("seg-001", changed=True, recorded=True),  # N5 moves back
            Outcome("seg-002", changed=False, recorded=True),  # N149 stays
        ]
        if known:
            assert reads >= len(records)  # every customer's state, then the movers' more
        else:
            assert reads <= 10  # the first record, and the ones met again
        expected, actual = await dump(single), await dump(many)
        assert actual == expected
