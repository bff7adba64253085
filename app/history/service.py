"""Recording that never fails the request: Redis while it answers, the spool while it does not.

``HistoryService`` writes straight to Redis. The first call that fails (unreachable, slower
than ``timeout_ms``) switches this process to the spool, so later requests do not wait on a
dead server. The replayer pings Redis every ``replay_interval_ms`` (sooner just after the
switch: a stall is often short); once it answers, it drains the spool in order through
``Recorder.record_many`` and switches back to direct writes when the spool is empty.
Records are written in the order they were made, and the recording script ignores a record
already applied, so a replay after a partial write counts each migration once.

``open_history`` opens all of it (and an embedded Redis server when no URL is configured)
for an app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from redis.asyncio import Redis

from app.history.config import HistoryConfig
from app.history.embedded import EmbeddedRedis
from app.history.profile_cache import ProfileCache
from app.history.recorder import Recorder, create_redis
from app.history.records import (
    NOT_RECORDED,
    Outcome,
    Profile,
    Record,
    RecordBatch,
    RedisUnavailable,
)
from app.history.spool import Spool
from app.observability import MIGRATIONS, PROFILE_CACHE, child

log = logging.getLogger(__name__)
_CACHE_HIT, _CACHE_MISS, _CACHE_STALE = (
    child(PROFILE_CACHE, result) for result in ("hit", "miss", "stale")
)


@dataclass(frozen=True, slots=True)
class HistoryStatus:
    """For readiness and metrics: is Redis in use, and what the spool holds and lost.

    ``redis_up``: records go straight to Redis (not to the spool); ``reachable``: Redis
    answered a ping just now (it can be reachable while the spool still drains);
    ``refusal``: while spooling, why Redis refused the last write though it answered (out of
    memory, read-only), or None (it did not answer, or has not refused since)."""

    redis_up: bool
    spool_depth: int
    spool_dropped: int
    spooled: int
    replayed: int
    rejected: int
    reachable: bool
    refusal: str | None = None


LANES = 1
"""Coalescing queues, each with one pipeline in flight. Two (so that the client's work on one
overlaps Redis's work on the other) made pipelines half as large, and each pipeline costs the
worker and Redis a write, a read and a script call's set-up: one lane spends 10-15 % less
server CPU per recorded request (bench/README.md, "What a by-id request costs")."""

FIRST_RETRY_MS = 20
"""The replayer's first ping after this process switched to the spool (``run_replayer``)."""

SPOOLED_IDS_KEPT = 100_000
"""Most customer ids a process remembers having spooled (so that their profile reads, whose
Redis copy is behind the spool, are refused); beyond it every read is refused while spooling."""


@dataclass(slots=True)
class _Lane:
    """The records and the profile reads waiting for a pipeline, and the task that sends
    them."""

    queue: list[tuple[Record, asyncio.Future[Outcome]]] = field(default_factory=list)
    reads: list[tuple[str, asyncio.Future[Profile | None]]] = field(default_factory=list)
    flusher: asyncio.Task[None] | None = None


class HistoryService:
    """Records assignments through Redis, falling back to the durable spool.

    Parameters
    ----------
    recorder
        The Redis side; reads (``current``, ``history``, ``members``, ``flows``, ``events``)
        go to it directly.
    spool
        Where records wait while Redis is unavailable.
    """

    def __init__(self, recorder: Recorder, spool: Spool) -> None:
        self.recorder, self.spool, self.config = recorder, spool, recorder.config
        # Start on the spool if it holds records, so new ones queue behind them, in order.
        self._direct = spool.depth() == 0
        self._gate = asyncio.Lock()
        self._lanes = [_Lane() for _ in range(LANES)]
        self.spooled = self.replayed = self.rejected = 0
        # customers this process spooled records of since it went to the spool (None: not
        # known, as when it started on a non-empty spool): their stored profile is stale
        self._spooled_ids: set[str] | None = set() if self._direct else None
        self._lone_reads: set[asyncio.Task[None]] = set()
        self.profile_cache = ProfileCache(self.config.profile_cache_size)
        self._went_down = asyncio.Event()  # wakes the replayer (``run_replayer``)
        self._refusal: str | None = None  # why Redis, answering, refused the last write

    @property
    def redis_up(self) -> bool:
        """True while records go straight to Redis."""
        return self._direct

    async def record(self, rec: Record) -> Outcome:
        """Record one assignment; never raises for Redis trouble (``recorded`` says).

        Concurrent calls are coalesced: while one pipeline is in flight, the records that
        arrive queue up and go together in the next one. An idle service sends each record at
        once; a busy one makes one round trip for many requests instead of one each. There
        are ``LANES`` such queues, each with its own pipeline in flight; a customer always
        goes to the same lane, so its records apply in arrival order.
        """
        if rec.profile is not None:  # it stores another profile: the cached one is stale
            self.profile_cache.drop(rec.customer_id)
        if self._direct:
            try:
                return await self._coalesced(rec)
            except RedisUnavailable as exc:
                self._down(exc)
        return (await self._to_spool([rec]))[0]

    async def record_checked(self, rec: Record) -> Outcome:
        """Record an assignment by id made from the cached profile ``rec.expected_profile``:
        applied only if Redis still holds that profile, else ``stale`` (nothing applied, the
        entry dropped: assign from a fresh read). Through the coalescing lane, as ``record``.

        Raises
        ------
        RedisUnavailable
            Redis did not answer in time, or this process spools: the record is not spooled,
            since nothing confirmed the cached profile (the caller reads it afresh).
        """
        if not self._direct:
            raise RedisUnavailable("Redis unavailable: recording spools")
        try:
            outcome = await self._coalesced(rec)
        except RedisUnavailable as exc:
            self._down(exc)
            raise
        if outcome.stale:
            self.profile_cache.drop_stale(rec.customer_id)
            _CACHE_STALE.inc()
        return outcome

    def cached_profile(self, customer_id: str) -> Profile | None:
        """The customer's cached profile, or None (not cached, or this process spools: then
        only Redis can answer, as before the cache)."""
        if not self._direct or not self.profile_cache.size:
            return None
        found = self.profile_cache.get(customer_id)
        (_CACHE_MISS if found is None else _CACHE_HIT).inc()
        return found

    async def _coalesced(self, rec: Record) -> Outcome:
        waiter: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        lane = self._lanes[hash(rec.customer_id) % len(self._lanes)]
        lane.queue.append((rec, waiter))
        if lane.flusher is None:
            lane.flusher = asyncio.create_task(self._flush_lane(lane))
        return await waiter

    async def _read_coalesced(self, customer_id: str) -> Profile | None:
        waiter: asyncio.Future[Profile | None] = asyncio.get_running_loop().create_future()
        lane = self._lanes[hash(customer_id) % len(self._lanes)]
        lane.reads.append((customer_id, waiter))
        if lane.flusher is None:
            lane.flusher = asyncio.create_task(self._flush_lane(lane))
        return await waiter

    async def _flush_lane(self, lane: _Lane) -> None:
        """Send the lane's records and reads, one pipeline at a time (records first, so a
        read sees every record queued before it), until the lane is empty."""
        batch: list[tuple[Record, asyncio.Future[Outcome]]] = []
        reads: list[tuple[str, asyncio.Future[Profile | None]]] = []
        size, config = self.config.replay_batch, self.config
        try:
            while lane.queue or lane.reads:
                batch, lane.queue = lane.queue[:size], lane.queue[size:]
                reads, lane.reads = lane.reads[:size], lane.reads[size:]
                recs = [rec for rec, _ in batch]
                try:
                    # the recording's deadline, or the reads' own when there is no record
                    timeout = config.timeout_s if recs else config.read_timeout_s
                    outcomes, profiles = await self.recorder.exchange(
                        recs, [customer_id for customer_id, _ in reads], timeout
                    )
                    self._checked(recs, outcomes)
                except Exception as exc:  # each waiter decides (RedisUnavailable: the spool)
                    # the queued records and reads would wait on the same failure: they go too
                    failed, lane.queue = batch + lane.queue, []
                    unread, lane.reads = reads + lane.reads, []
                    batch, reads = [], []  # answered here, not by the finally below
                    _fail([w for _, w in failed], exc)
                    if recs and isinstance(exc, RedisUnavailable):
                        self._read_alone(unread, {rec.customer_id for rec, _ in failed}, exc)
                    else:
                        _fail([w for _, w in unread], exc)
                    return
                for (_, waiter), outcome in zip(batch, outcomes, strict=True):
                    if not waiter.done():
                        waiter.set_result(outcome)
                for (_, reader), profile in zip(reads, profiles, strict=True):
                    if reader.done():
                        continue
                    if isinstance(profile, Exception):
                        reader.set_exception(profile)
                    else:
                        reader.set_result(profile)
        finally:
            lane.flusher = None
            # cancelled (the service is stopping): nobody may wait forever; records spool
            stopped = _stopped()
            _fail([w for _, w in batch + lane.queue] + [w for _, w in reads + lane.reads], stopped)
            lane.queue, lane.reads = [], []

    def _read_alone(
        self,
        reads: list[tuple[str, asyncio.Future[Profile | None]]],
        unsure: set[str],
        exc: RedisUnavailable,
    ) -> None:
        """Retry the reads of a lane pipeline that failed (a stall over the recording's
        deadline, most often) on their own, under the read deadline. A customer whose record
        was in that pipeline is not read: the record may be going to the spool, and its
        profile in Redis would be stale."""
        stale = [(c, w) for c, w in reads if c in unsure]
        _fail([w for _, w in stale], exc)
        retry = [(c, w) for c, w in reads if c not in unsure]
        if retry:
            task = asyncio.create_task(self._lone_read(retry))
            self._lone_reads.add(task)
            task.add_done_callback(self._lone_reads.discard)

    async def _lone_read(self, reads: list[tuple[str, asyncio.Future[Profile | None]]]) -> None:
        try:
            profiles = await self.recorder.profiles(
                [c for c, _ in reads], self.config.read_timeout_s
            )
        except Exception as exc:  # the waiters answer it (RedisUnavailable: a 503)
            _fail([w for _, w in reads], exc)
            return
        except BaseException:  # cancelled: nobody may wait forever
            _fail([w for _, w in reads], _stopped())
            raise
        for (_, waiter), profile in zip(reads, profiles, strict=True):
            if not waiter.done():
                waiter.set_result(profile)

    async def record_many(self, recs: Sequence[Record]) -> list[Outcome]:
        """Record a batch in one pipeline, or spool it whole (replay skips what was applied).

        Checked records (``expected_profile``; a batch's ``expected`` column) are stale where
        Redis found their profile changed; a batch that goes to the spool goes unchecked, as
        a single assignment does (``record``): the spool never keeps an expectation."""
        if len(self.profile_cache):  # the customers whose profile it stores are not cached
            if isinstance(recs, RecordBatch):
                if recs.profiles is not None:
                    self.profile_cache.drop_many(recs.customer_ids)
            else:
                self.profile_cache.drop_many([r.customer_id for r in recs if r.profile])
        if self._direct:
            try:
                return self._checked(recs, await self.recorder.record_many(recs))
            except RedisUnavailable as exc:
                self._down(exc)
        return await self._to_spool(_unchecked(recs))

    def _down(self, exc: RedisUnavailable) -> None:
        if self._direct:
            log.warning("%s; spooling assignment records until it is back", exc)
            self._went_down.set()
        self._direct = False
        self._refusal = exc.reason if exc.refused else None

    def _checked(self, recs: Sequence[Record], outcomes: list[Outcome]) -> list[Outcome]:
        if len(outcomes) != len(recs):
            raise ValueError(f"{len(outcomes)} outcomes for {len(recs)} records")
        for i, outcome in enumerate(outcomes):
            if outcome.error is not None:  # (recs[i] only here: a RecordBatch makes it)
                self.rejected += 1
                log.error("Redis refused record %s: %s", recs[i], outcome.error)
        return outcomes

    async def _to_spool(self, recs: Sequence[Record]) -> list[Outcome]:
        async with self._gate:
            if not self._direct:
                self._note_spooled(recs)  # before: a read must not slip in meanwhile
                self.spooled += await asyncio.to_thread(self.spool.append, recs)
                return [NOT_RECORDED] * len(recs)
        # The replayer emptied the spool and switched back while we waited: write directly.
        return await self.record_many(recs)

    def _note_spooled(self, recs: Sequence[Record]) -> None:
        ids = self._spooled_ids
        if ids is not None:
            ids.update(rec.customer_id for rec in recs)
            if len(ids) > SPOOLED_IDS_KEPT:
                self._spooled_ids = None

    async def replay_pending(self) -> int:
        """Drain the spool into Redis if it answers; returns how many records were replayed."""
        if not await self.recorder.ping():
            return 0
        if not self._direct:
            # Redis is back: connections pooled before the outage may be dead, and the first
            # call on one fails (no retries); drop the idle ones so that no call finds one
            await self.recorder.client.connection_pool.disconnect(inuse_connections=False)
        replayed = 0
        with self.spool.replay_lease() as mine:
            if not mine:
                return 0  # another process is draining the shared spool
            while True:
                batch = await asyncio.to_thread(self.spool.peek_batch, self.config.replay_batch)
                if not batch:
                    async with self._gate:  # no append of this process can slip in now
                        if not await asyncio.to_thread(self.spool.peek_batch, 1):
                            if not self._direct:
                                log.warning("Redis is back and the spool is drained")
                            self._direct, self._spooled_ids = True, set()
                            self._refusal = None
                            break
                    continue
                records = [rec for _, rec in batch]
                try:
                    outcomes = self._checked(records, await self.recorder.record_many(records))
                except RedisUnavailable as exc:
                    self._down(exc)
                    break
                _count_migrations(records, outcomes, self.config.model)
                await asyncio.to_thread(self.spool.ack, batch[-1][0])
                replayed += len(batch)
        self.replayed += replayed
        return replayed

    async def profiles(
        self, customer_ids: Sequence[str], keep: bool = False
    ) -> list[Profile | None]:
        """The customers' stored profiles (None: unknown, or recorded without features);
        with ``keep``, one customer's profile goes to the profile cache (an assignment by id).

        One pipelined round trip. One id (an assignment by id) goes through its coalescing
        lane, as a record does: the reads and records of concurrent requests share round
        trips. A read has its own deadline (``read_timeout_ms``), not the recording's: when
        its lane's pipeline fails (a stall longer than ``timeout_ms`` sends the records to
        the spool), it is retried alone; while this process spools, the lanes carry reads
        only, refused for a customer this process spooled a record of (whose profile in
        Redis is then stale).

        Raises
        ------
        RedisUnavailable
            Redis did not answer in time (or is not reachable), or a customer's latest
            record is in this process's spool.
        """
        if not self._direct:
            spooled = self._spooled_ids
            if spooled is None or any(c in spooled for c in customer_ids):
                raise RedisUnavailable("Redis unavailable: the customer's record is spooled")
        if len(customer_ids) == 1:
            profile = await self._read_coalesced(customer_ids[0])
            if keep and profile is not None and self._direct:
                self.profile_cache.put(customer_ids[0], profile)
            return [profile]
        return await self.recorder.profiles(customer_ids)

    async def forget(self, customer_id: str) -> bool:
        """Remove the customer's profile, current state, history and membership.

        The customer's records still in this host's spool are deleted first; in Redis a
        tombstone makes the recording script ignore the customer's records made up to now
        for ``forget_ttl_days`` (those in other hosts' spools). Flow counters (aggregates)
        stay; stream entries age out with the stream's cap. False when the customer was
        unknown to Redis and to this host's spool.

        Raises
        ------
        RedisUnavailable
            Redis did not answer in time: nothing is known to be forgotten.
        """
        self.profile_cache.drop(customer_id)
        spooled = await asyncio.to_thread(self.spool.discard, customer_id)
        # a customer whose only records were spooled here was known too (the 204 of forget)
        return await self.recorder.forget(customer_id) or spooled > 0

    async def run_replayer(self) -> None:
        """Replay forever (a background task of the app's lifespan): every
        ``replay_interval_ms``, and soon after this process switched to the spool, at
        ``FIRST_RETRY_MS`` then twice as long each time up to the interval. A stall past the
        deadline (a busy machine, a slow command) is often over within milliseconds, and
        until the replay every customer recorded meanwhile is spooled, their assignment by
        id a 503: on two cores at a load of 6-8, half a second of those after each stall."""
        interval = self.config.replay_interval_ms / 1000
        wait = interval
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._went_down.wait(), wait)
            if self._went_down.is_set():
                self._went_down.clear()
                wait = min(FIRST_RETRY_MS / 1000, interval)
            try:
                if not self._direct or await asyncio.to_thread(self.spool.depth) > 0:
                    await self.replay_pending()
            except Exception:  # never let the replayer die
                log.exception("history replayer failed")
            wait = interval if self._direct else min(wait * 2, interval)

    async def status(self) -> HistoryStatus:
        """The state now, with a ping of Redis (bounded by the single-call deadline).

        A failed ping switches to the spool, as a failed record does: an unreachable Redis is
        never reported beside ``redis_up`` (and an idle process notices an outage before its
        next record waits on it). ``redis_up`` is read after the ping, so a switch back made
        by the replayer meanwhile is seen."""
        reachable = await self.recorder.ping()
        if not reachable and self._direct:
            self._down(RedisUnavailable("Redis unavailable: it did not answer a ping"))
        depth, dropped = await asyncio.to_thread(lambda: (self.spool.depth(), self.spool.dropped()))
        return HistoryStatus(
            self._direct,
            depth,
            dropped,
            self.spooled,
            self.replayed,
            self.rejected,
            reachable,
            None if self._direct else self._refusal,
        )


def _unchecked(recs: Sequence[Record]) -> Sequence[Record]:
    """``recs`` with no record checked (for the spool)."""
    if isinstance(recs, RecordBatch):
        return recs.unchecked()
    if any(r.expected_profile is not None for r in recs):
        return [replace(r, expected_profile=None) for r in recs]
    return recs


def _stopped() -> RedisUnavailable:
    return RedisUnavailable("recording stopped: spooling")


def _fail(waiters: Iterable[asyncio.Future[Any]], exc: BaseException) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_exception(exc)


def _count_migrations(records: Sequence[Record], outcomes: Sequence[Outcome], model: str) -> None:
    """Count the migrations a replay wrote (a live assignment counts its own)."""
    for rec, outcome in zip(records, outcomes, strict=True):
        if outcome.changed:
            child(MIGRATIONS, model, outcome.previous_segment or "", rec.segment_id).inc()


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def open_client(config: HistoryConfig, stack: contextlib.AsyncExitStack) -> Redis:
    """A client of ``config.redis_url``, or of an embedded server started for it when there is
    none; both are closed (and the server stopped) by ``stack``."""
    url = config.redis_url
    if url is None:
        embedded = EmbeddedRedis(config.data_dir)
        url = await asyncio.to_thread(embedded.start)
        stack.push_async_callback(asyncio.to_thread, embedded.stop)
    client = create_redis(url, config)
    stack.push_async_callback(client.aclose)
    return client


@contextlib.asynccontextmanager
async def open_history(
    config: HistoryConfig, replay: bool = True, client: Redis | None = None
) -> AsyncIterator[HistoryService]:
    """Open the spool, the replayer and, unless given ``client``, Redis (embedded if
    ``config.redis_url`` is None).

    The app passes the client it opened for all its features (``app.redis_client``), which
    stays open when this exits; without one, the client (and embedded server) opened here is
    closed. Everything opened is closed on exit, in reverse order. With several worker
    processes, start the embedded server once in the parent (``EmbeddedRedis``) and give the
    workers its URL instead: each worker calling this with no URL would try to start its own.
    """
    async with contextlib.AsyncExitStack() as stack:
        if client is None:
            client = await open_client(config, stack)
        spool = await asyncio.to_thread(
            Spool, config.spool_dir, config.spool_max_records, config.spool_fsync
        )
        stack.callback(spool.close)
        service = HistoryService(Recorder(client, config), spool)
        if replay:
            task = asyncio.create_task(service.run_replayer(), name="history-replayer")
            stack.push_async_callback(_cancel, task)
        yield service
