"""A bounded, durable, first-in-first-out spool of records that could not be written to Redis.

One SQLite database in WAL mode (``<spool_dir>/spool.sqlite3``) shared by every worker process
of a host: SQLite serialises the writers, and each append is one transaction that checks the
bound. A committed append survives a crash of the process; with ``fsync=True``
(``synchronous=FULL``) also a crash of the machine, at the cost of a disk flush per append.
Only one process replays at a time: the replayer holds an exclusive ``flock`` on
``<spool_dir>/replay.lock``, which the kernel releases if that process dies. (Replaying the same
records twice would still be harmless: the recording script ignores records already applied.)
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from types import TracebackType

import orjson

from app.history.records import Record

log = logging.getLogger(__name__)
DROP_LOG_INTERVAL_S = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY AUTOINCREMENT, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('depth', 0), ('dropped', 0);
"""


class Spool:
    """The outage spool (thread-safe; several processes may share one folder).

    Parameters
    ----------
    folder
        Where the database and the replay lock live; created if missing.
    max_records
        Most records held; appends beyond it are refused and counted as dropped.
    fsync
        Flush to disk on every commit (see the module docstring).

    Examples
    --------
    >>> import tempfile
    >>> from app.history.records import Record
    >>> records = [Record.create(c, "seg-001", "v1") for c in ("C1", "C2")]
    >>> with tempfile.TemporaryDirectory() as tmp, Spool(Path(tmp), max_records=1) as spool:
    ...     (spool.append(records), spool.depth(), spool.dropped())
    (1, 1, 1)
    """

    def __init__(self, folder: Path, max_records: int, fsync: bool = False) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.max_records = folder, max_records
        self._lock = threading.Lock()
        self._last_drop_log = 0.0
        self._db = sqlite3.connect(
            folder / "spool.sqlite3", timeout=30.0, isolation_level=None, check_same_thread=False
        )
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
            self._db.executescript(_SCHEMA)
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock up front, so the bound check and the insert
        # are one step even across processes.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0])

    def append(self, records: Sequence[Record]) -> int:
        """Add records at the tail, as far as the bound allows; returns how many were kept.

        The rest are dropped: counted in ``dropped()`` and logged (at most every 10 s).
        """
        if not records:
            return 0
        with self._lock, self._transaction() as db:
            room = max(0, self.max_records - self._counter("depth"))
            kept = records[:room]
            db.executemany(
                "INSERT INTO spool (record) VALUES (?)",
                [(orjson.dumps(asdict(r)),) for r in kept],
            )
            lost = len(records) - len(kept)
            db.execute(
                "UPDATE counters SET value = value + CASE name WHEN 'depth' THEN ? ELSE ? END",
                (len(kept), lost),
            )
        if lost:
            self._log_drop(lost)
        return len(kept)

    def _log_drop(self, lost: int) -> None:
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_INTERVAL_S:
            self._last_drop_log = now
            log.error(
                "history spool FULL (%d records in %s): Redis has been unavailable too long; "
                "dropped %d assignment record(s) now, %d in total — these migrations are LOST",
                self.max_records,
                self.folder,
                lost,
                self.dropped(),
            )

    def peek_batch(self, limit: int) -> list[tuple[int, Record]]:
        """The oldest ``limit`` records with their spool ids, without removing them."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, record FROM spool ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [(int(i), Record(**orjson.loads(blob))) for i, blob in rows]

    def ack(self, up_to_id: int) -> int:
        """Remove the records up to spool id ``up_to_id`` (a replayed batch); returns how many."""
        with self._lock, self._transaction() as db:
            removed = db.execute("DELETE FROM spool WHERE id <= ?", (up_to_id,)).rowcount
            db.execute("UPDATE counters SET value = value - ? WHERE name = 'depth'", (removed,))
        return int(removed)

    def discard(self, customer_id: str) -> int:
        """Remove every record of ``customer_id`` (a forgotten customer); returns how many."""
        with self._lock, self._transaction() as db:
            removed = db.execute(
                "DELETE FROM spool WHERE json_extract(CAST(record AS TEXT), '$.customer_id') = ?",
                (customer_id,),
            ).rowcount
            db.execute("UPDATE counters SET value = value - ? WHERE name = 'depth'", (removed,))
        return int(removed)

    def depth(self) -> int:
        """Records waiting to be replayed (all processes)."""
        with self._lock:
            return self._counter("depth")

    def dropped(self) -> int:
        """Records refused because the spool was full, since the spool was created."""
        with self._lock:
            return self._counter("dropped")

    @contextlib.contextmanager
    def replay_lease(self) -> Iterator[bool]:
        """Yields True if this process may replay now (no other process is replaying)."""
        fd = os.open(self.folder / "replay.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # closing releases the lock
