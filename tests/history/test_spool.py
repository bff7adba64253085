"""The outage spool: FIFO, bounded with a dropped count, durable, shared by processes."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from app.history import Record, Spool


def records(n: int, start: int = 0) -> list[Record]:
    return [Record.create(f"C{i}", f"seg-{i % 3}", "v1", "name") for i in range(start, start + n)]


def test_records_come_back_in_order_until_acked(tmp_path: Path) -> None:
    made = records(10)
    with Spool(tmp_path, max_records=100) as spool:
        assert spool.append(made[:4]) == 4
        assert spool.append(made[4:]) == 6

        first = spool.peek_batch(3)
        assert [r for _, r in first] == made[:3]
        assert spool.peek_batch(3) == first  # peeking does not consume
        assert spool.ack(first[-1][0]) == 3
        assert [r for _, r in spool.peek_batch(100)] == made[3:]
        assert spool.depth() == 7


def test_a_full_spool_refuses_counts_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Spool(tmp_path, max_records=3) as spool, caplog.at_level(logging.ERROR):
        assert spool.append(records(2)) == 2
        assert spool.append(records(3, start=2)) == 1  # room for one
        assert spool.append(records(1, start=5)) == 0

        assert (spool.depth(), spool.dropped()) == (3, 3)
        assert [r.customer_id for _, r in spool.peek_batch(10)] == ["C0", "C1", "C2"]
        assert "spool FULL" in caplog.text and "LOST" in caplog.text
        spool.ack(spool.peek_batch(1)[0][0])
        assert spool.append(records(1, start=9)) == 1  # room again after a replay


def test_records_and_the_dropped_count_survive_a_reopen(tmp_path: Path) -> None:
    made = records(5)
    with Spool(tmp_path, max_records=4) as spool:
        spool.append(made)
    with Spool(tmp_path, max_records=4) as reopened:
        assert [r for _, r in reopened.peek_batch(10)] == made[:4]
        assert (reopened.depth(), reopened.dropped()) == (4, 1)


def test_processes_share_one_spool_and_its_bound(tmp_path: Path) -> None:
    with Spool(tmp_path, max_records=1000) as one, Spool(tmp_path, max_records=1000) as two:
        threads = [
            threading.Thread(target=spool.append, args=(records(100, start=k * 100),))
            for k, spool in enumerate([one, two, one, two, one, two])
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert one.depth() == two.depth() == 600
        ids = [spool_id for spool_id, _ in two.peek_batch(1000)]
        assert ids == sorted(ids) and len(set(ids)) == 600
        customers = [r.customer_id for _, r in one.peek_batch(1000)]
        assert sorted(customers) == sorted(f"C{i}" for i in range(600))


def test_only_one_process_replays_at_a_time(tmp_path: Path) -> None:
    with Spool(tmp_path, max_records=10) as one, Spool(tmp_path, max_records=10) as two:
        with one.replay_lease() as first, two.replay_lease() as second:
            assert (first, second) == (True, False)
        with two.replay_lease() as after_release:
            assert after_release
