"""Record ids: UUIDv7 as 32 hex digits, strictly increasing in a process, one or many at once."""

from __future__ import annotations

import re

import pytest

from app.history import records
from app.history.records import new_record_id, new_record_ids, now_ms

UUID7 = re.compile(r"[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}")


def fields(record_id: str) -> tuple[int, int]:
    """(milliseconds, counter) of an id."""
    value = int(record_id, 16)
    return value >> 80, (value >> 64) & 0xFFF


def test_one_and_many_ids_share_one_format_and_one_order() -> None:
    ids = [new_record_id(), *new_record_ids(3), new_record_id(), *new_record_ids(1)]
    ids += [new_record_id() for _ in range(50)] + new_record_ids(50)
    assert all(UUID7.fullmatch(i) for i in ids), ids
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_a_batch_larger_than_the_counter_moves_on_to_the_next_millisecond(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ids a minute ahead move the process's id sequence a minute ahead: every id made after
    # (by any later test) would carry that time, and a recording run's records of the next
    # minute, stamped with the run's start, would be older than them (counted stale). The
    # sequence is this test's own copy, thrown away afterwards.
    monkeypatch.setattr(records, "_last", list(records._last))
    at = now_ms() + 60_000  # ahead of every id made so far: the batch starts at `at`
    ids = new_record_ids(10_000, at)
    assert ids == sorted(ids) and len(set(ids)) == 10_000
    assert all(UUID7.fullmatch(i) for i in ids[:100] + ids[-100:])
    stamps = [fields(i) for i in ids]
    assert stamps[0][0] == at and stamps[0][1] < 0x800
    assert stamps[-1][0] > at + 1  # 10,000 ids need at least three milliseconds of counter
    assert new_record_id() > ids[-1]  # and the next single id still comes after
