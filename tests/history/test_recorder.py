"""Recording semantics against a real Redis: CAS, history, membership, flows, events, replay."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from app.history import CustomerState, Member, Outcome, Record, Recorder, SegmentEvent
from app.history.records import now_ms
from tests.history.conftest import RedisProcess, make_config, open_recorder

pytestmark = pytest.mark.anyio
HOUR = 3_600_000
T0 = (now_ms() // HOUR - 3) * HOUR  # start of the hour three hours ago


def rec(
    customer: str, segment: str, at: int, version: str = "v1", name: str | None = None
) -> Record:
    return Record.create(customer, segment, version, segment_name=name, assigned_at=at)


async def snapshot(recorder: Recorder) -> dict[str, object]:
    """Every key of the test's prefix with its type and contents (a customer hash without
    the time and record id of its last assignment)."""
    client: Any = recorder.client  # replies are str (decode_responses); redis-py types say not
    out: dict[str, object] = {}
    async for key in client.scan_iter(match=recorder.keys.pattern()):
        kind = await client.type(key)
        if kind == "list":
            out[key] = await client.lrange(key, 0, -1)
        elif kind == "zset":
            out[key] = await client.zrange(key, 0, -1)
        elif kind == "hash":
            fields = await client.hgetall(key)
            if key.startswith(recorder.keys.customer_head(0)):
                del fields["a"], fields["r"]
            out[key] = fields
        elif kind == "stream":
            out[key] = [entry_id for entry_id, _ in await client.xrange(key)]
    return out


async def test_first_assignment_is_recorded_everywhere(recorder: Recorder) -> None:
    outcome = await recorder.record(rec("C1", "seg-001", T0, name="Loyal"))

    assert outcome == Outcome(None, changed=True, recorded=True)
    # names are not stored: readers resolve them from the serving version (test_api)
    assert await recorder.current("C1") == CustomerState(
        "C1", "seg-001", None, "v1", assigned_at=T0, since=T0, migrations=1
    )
    [entry] = await recorder.history("C1")
    assert (entry.from_segment, entry.to_segment) == (None, "seg-001")
    assert (entry.model_version, entry.at, entry.seq) == ("v1", T0, 1)
    assert (await recorder.members("seg-001")).members == [Member("C1", T0)]
    flows = await recorder.flows(T0, T0 + HOUR)
    assert flows.matrix() == {"": {"seg-001": 1}}
    [event] = await recorder.events()
    assert (event.customer_id, event.from_segment, event.to_segment) == ("C1", None, "seg-001")


async def test_a_change_moves_membership_and_counts_the_flow(recorder: Recorder) -> None:
    await recorder.record(rec("C1", "seg-001", T0, name="Loyal"))
    outcome = await recorder.record(rec("C1", "seg-002", T0 + 1000, "v2", name="At risk"))

    assert outcome == Outcome("seg-001", changed=True, recorded=True)
    state = await recorder.current("C1")
    assert state is not None
    assert (state.segment_id, state.model_version, state.since, state.migrations) == (
        "seg-002",
        "v2",
        T0 + 1000,
        2,
    )
    newest, oldest = await recorder.history("C1")
    assert (newest.from_segment, newest.to_segment, newest.model_version) == (
        "seg-001",
        "seg-002",
        "v2",
    )
    assert oldest.to_segment == "seg-001"
    assert (await recorder.members("seg-001")).members == []
    assert (await recorder.members("seg-002")).members == [Member("C1", T0 + 1000)]
    assert await recorder.member_count("seg-002") == 1
    flows = await recorder.flows(T0, T0 + HOUR)
    assert flows.matrix() == {"": {"seg-001": 1}, "seg-001": {"seg-002": 1}}
    events = await recorder.events()
    assert [(e.from_segment, e.to_segment) for e in events] == [
        (None, "seg-001"),
        ("seg-001", "seg-002"),
    ]


async def test_an_unchanged_assignment_only_refreshes_the_timestamp(recorder: Recorder) -> None:
    await recorder.record(rec("C1", "seg-001", T0))
    before = await snapshot(recorder)

    outcome = await recorder.record(rec("C1", "seg-001", T0 + 5000, "v2", name="Renamed"))

    assert outcome == Outcome("seg-001", changed=False, recorded=True)
    assert await snapshot(recorder) == before  # history, members, flows, events untouched
    state = await recorder.current("C1")
    assert state is not None
    # nothing but the time: the version and name stay those that moved the customer in
    assert (state.assigned_at, state.since, state.model_version, state.migrations) == (
        T0 + 5000,
        T0,
        "v1",
        1,
    )
    assert state.segment_name is None


async def test_a_batch_applies_one_customers_records_in_order(recorder: Recorder) -> None:
    batch = [
        rec("C1", "A", T0),
        rec("C2", "A", T0),
        rec("C1", "B", T0 + 1),
        rec("C1", "B", T0 + 2),
        rec("C2", "A", T0 + 3),
        rec("C1", "A", T0 + 4),
    ]
    outcomes = await recorder.record_many(batch)

    assert [(o.previous_segment, o.changed) for o in outcomes] == [
        (None, True),
        (None, True),
        ("A", True),
        ("B", False),
        ("A", False),
        ("B", True),
    ]
    assert all(o.recorded and not o.duplicate for o in outcomes)
    history = await recorder.history("C1")
    assert [(m.from_segment, m.to_segment) for m in history] == [
        ("B", "A"),
        ("A", "B"),
        (None, "A"),
    ]
    page = await recorder.members("A")
    assert page.members == [Member("C2", T0), Member("C1", T0 + 4)]
    assert await recorder.record_many([]) == []


async def test_replaying_records_counts_each_migration_once(recorder: Recorder) -> None:
    first = rec("C1", "A", T0)
    stale = rec("C1", "C", T0 + 5)  # made before `second` (elsewhere), arriving after it
    second = rec("C1", "B", T0 + 10)
    await recorder.record_many([first, second])
    before = await snapshot(recorder)

    replayed = await recorder.record_many([first, second, stale])
    again = await recorder.record(second)

    assert all(o.duplicate and o.recorded and not o.changed for o in [*replayed, again])
    assert [o.previous_segment for o in replayed] == ["B", "B", "B"]
    assert await snapshot(recorder) == before
    flows = await recorder.flows(T0, T0 + HOUR)
    assert flows.matrix() == {"": {"A": 1}, "A": {"B": 1}}
    state = await recorder.current("C1")
    assert state is not None and state.segment_id == "B"


async def test_history_is_capped_and_every_key_has_its_retention(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    config = make_config(
        redis_server.url,
        tmp_path,
        history_cap=3,
        history_ttl_days=2,
        flow_ttl_days=1,
        stream_maxlen=10,
    )
    async with open_recorder(config) as recorder:
        await recorder.record_many([rec("C1", f"S{i % 2}", T0 + i) for i in range(6)])
        await recorder.record_many([rec(f"X{i}", "S0", T0 + i) for i in range(300)])
        day = 86_400_000
        await recorder.record_many([rec("old", "S0", T0 - 3 * day), rec("old", "S1", T0)])
        client, keys = recorder.client, recorder.keys

        assert [m.seq for m in await recorder.history("C1", limit=10)] == [6, 5, 4]
        fields = await client.hkeys(keys.customer("C1"))
        assert sorted(f for f in fields if f.startswith("h")) == ["h4", "h5", "h6"]
        # an entry older than the history TTL is no longer shown
        assert [(m.from_segment, m.seq) for m in await recorder.history("old")] == [("S0", 2)]
        flow_expires = (keys.bucket_start(T0) * 1000 + HOUR) + day
        assert abs(await client.pttl(keys.flow(0, T0)) - (flow_expires - now_ms())) < 5_000
        assert await client.ttl(keys.customer("C1")) == -1  # the current segment stays
        assert await client.ttl(keys.members(0, "S0")) == -1
        assert await client.ttl(keys.block(0, "S0", 0)) == -1
        # MAXLEN ~ trims whole macro nodes (100 entries by default), never below the cap.
        assert 10 <= await client.xlen(keys.events(0)) <= 110


@pytest.mark.parametrize("shards", [1, 4])
async def test_a_cursor_walk_returns_every_member_exactly_once(
    redis_server: RedisProcess, tmp_path: Path, shards: int
) -> None:
    config = make_config(redis_server.url, tmp_path, shards=shards)
    async with open_recorder(config) as recorder:
        # 150 customers share one timestamp (a batch), 50 more join later
        await recorder.record_many([rec(f"C{i:03d}", "A", T0) for i in range(150)])
        await recorder.record_many([rec(f"C{i:03d}", "A", T0 + i) for i in range(150, 200)])
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            page = await recorder.members("A", cursor, limit=7)
            seen += [m.customer_id for m in page.members]
            pages += 1
            if pages == 3:  # concurrent changes: one not yet seen leaves, a newcomer joins
                await recorder.record_many([rec("C199", "B", T0 + 500), rec("N1", "A", T0 + 600)])
            if page.next_cursor is None:
                break
            cursor = page.next_cursor

        assert len(seen) == len(set(seen)) == 200
        assert seen[:150] == sorted(seen[:150])
        assert "C199" not in seen and seen[-1] == "N1"
        assert pages == -(-200 // 7)
        assert await recorder.member_count("A") == 200


async def test_a_foreign_cursor_is_refused(recorder: Recorder) -> None:
    with pytest.raises(ValueError, match="invalid cursor"):
        await recorder.members("A", "not-a-cursor!")


async def test_the_flow_matrix_covers_the_window_with_totals(recorder: Recorder) -> None:
    journeys = {"C1": ["A", "B", "C"], "C2": ["A", "B"], "C3": ["B", "A"], "C4": ["C"]}
    records = [
        rec(c, seg, T0 + step * HOUR + 1)
        for c, path in journeys.items()
        for step, seg in enumerate(path)
    ]  # step 0 in hour 0, step 1 in hour 1, step 2 in hour 2
    await recorder.record_many(records)

    first_two_hours = await recorder.flows(T0, T0 + 2 * HOUR)

    assert (first_two_hours.since, first_two_hours.until) == (T0, T0 + 2 * HOUR)
    assert first_two_hours.matrix("new") == {
        "new": {"A": 2, "B": 1, "C": 1},
        "A": {"B": 2},
        "B": {"A": 1},
    }
    totals = first_two_hours.totals
    assert (totals["A"].new, totals["A"].inflow, totals["A"].outflow, totals["A"].net) == (
        2,
        1,
        2,
        1,
    )
    assert (totals["B"].new, totals["B"].inflow, totals["B"].outflow) == (1, 2, 1)
    assert first_two_hours.flows[0].count == 2  # largest flows first
    last_hour = await recorder.flows(T0 + 2 * HOUR + 10, T0 + 2 * HOUR + 20)
    assert last_hour.matrix() == {"B": {"C": 1}}
    assert (last_hour.since, last_hour.until) == (T0 + 2 * HOUR, T0 + 3 * HOUR)


async def test_stream_entries_follow_the_documented_schema(recorder: Recorder) -> None:
    first = rec("C1", "seg-001", T0, name="Loyal")
    second = rec("C1", "seg-002", T0 + 7, "v2", name="At risk")
    await recorder.record_many([first, second])

    client: Any = recorder.client
    [(entry_id, fields)] = await client.xrange(recorder.keys.events(0), count=1)
    [_, (last_id, last_fields)] = await client.xrange(recorder.keys.events(0))

    assert fields == {
        "customer_id": "C1",
        "from": "",
        "to": "seg-001",
        "model_version": "v1",
        "assigned_at": str(T0),
        "record_id": first.record_id,
        "seq": "1",
    }
    event = SegmentEvent.parse(recorder.keys.events(0), last_id, last_fields)
    assert (event.from_segment, event.to_segment, event.model_version) == (
        "seg-001",
        "seg-002",
        "v2",
    )
    assert (event.assigned_at, event.record_id, event.seq) == (T0 + 7, second.record_id, 2)
    assert [e.id for e in await recorder.events(after=entry_id)] == [last_id]


async def test_a_permanent_refusal_is_reported_not_raised(recorder: Recorder) -> None:
    await recorder.client.set(recorder.keys.customer("C1"), "not a hash")

    outcome = await recorder.record(rec("C1", "A", T0))
    [batch_outcome] = await recorder.record_many([rec("C1", "A", T0 + 1)])

    for o in (outcome, batch_outcome):
        assert not o.recorded and o.error is not None and "WRONGTYPE" in o.error
    # in the middle of a script call, the refusal is that record's alone
    before, bad, after = await recorder.record_many(
        [rec("C0", "A", T0), rec("C1", "A", T0 + 2), rec("C2", "A", T0)]
    )
    assert before.recorded and before.changed and after.recorded and after.changed
    assert not bad.recorded and bad.error is not None and "WRONGTYPE" in bad.error


def test_config_refuses_nonsense(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="history_cap"):
        make_config(None, tmp_path, history_cap=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key_prefix"):
        replace(make_config("redis://x", tmp_path), key_prefix="a{b}:")


@pytest.mark.parametrize("differ_at", [0, 11, 12, 23, 24, 31])
async def test_record_ids_order_by_every_digit(recorder: Recorder, differ_at: int) -> None:
    """The script compares ids in 12-digit chunks: ids differing at any one digit order right."""
    base = "01a2087ecb1476fd8653e60d22e229e1"
    low, high = (base[:differ_at] + d + base[differ_at + 1 :] for d in "9a")
    older = Record("C1", "A", "v1", T0, low)
    newer = Record("C1", "B", "v1", T0, high)
    assert (await recorder.record(older)).changed
    assert (await recorder.record(newer)).changed
    stale = await recorder.record(replace(older, segment_id="C"))
    assert stale.duplicate and not stale.changed and stale.previous_segment == "B"


async def test_a_walk_skips_the_blocks_emptied_by_customers_who_left(
    recorder: Recorder,
) -> None:
    await recorder.record_many([rec(f"C{i:04d}", "A", T0 + i) for i in range(1500)])
    stay = [f"C{i:04d}" for i in range(0, 1500, 300)]  # one in every other block or so
    await recorder.record_many(
        [rec(f"C{i:04d}", "B", T0 + 5000) for i in range(1500) if f"C{i:04d}" not in stay]
    )
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await recorder.members("A", cursor, limit=4)
        seen += [m.customer_id for m in page.members]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert seen == stay
    assert await recorder.member_count("A") == len(stay)
    blocks = {  # (a set: SCAN may return a key twice)
        k async for k in recorder.client.scan_iter(match=recorder.keys.block(0, "A", 0)[:-1] + "*")
    }
    assert len(blocks) == len(stay)  # of 12: the emptied blocks are gone
