"""The dispatcher: reads the change stream with a consumer group, fans each event out to
the queues of the subscriptions that want it, and delivers every queue in order.

One dispatcher works per deployment, whatever the number of worker processes or
``segments dispatch`` processes: each competes for a lease in Redis (``SET NX PX``, renewed
every third of its life) and only the holder works; the others stand by and take over
within ``lease_ms`` of the holder's death. The holder first claims the entries the group
had handed to any earlier consumer and not acknowledged (``XAUTOCLAIM``), so a crash loses
nothing. Why one worker and per-endpoint queues, and the order guarantees, are in
docs/webhooks.md.

Per endpoint there is one batch in flight: the queue's head. A batch leaves the queue only
when the receiver accepted it or it went to the dead letters, by a script that checks the
lease (a holder that lost it cannot pop what the next one is sending). So a crash re-sends
at most the batch in flight, and a customer's events reach the endpoint in stream order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.webhooks import metrics, scripts
from app.webhooks.config import WebhookConfig
from app.webhooks.delivery import Attempt, backoff_s, post_batch
from app.webhooks.keys import GROUP
from app.webhooks.sources import Names, Source
from app.webhooks.store import Subscription, SubscriptionStore

log = logging.getLogger(__name__)
READ_COUNT = 1_000  # stream entries per fan-out step
BLOCK_MS = 1_000  # under the client's socket timeout
RELEASE_S = 1.0  # how long an exit waits to hand the lease over
POLL_S = 1.0  # how often idle endpoints and changed subscriptions are looked at
GAUGE_S = 5.0
FANOUT_GATHER_S = 0.05  # after a short read, wait this long for more entries
SUBS_TTL_S = 0.5  # how long the fan-out trusts its list of subscriptions
STALE_TRIES = 5  # fan-out scripts refused as made for changed subscriptions, in a row


class LeaseLost(Exception):
    """Another dispatcher holds the lease now: stop working."""


class Dispatcher:
    def __init__(
        self,
        store: SubscriptionStore,
        config: WebhookConfig,
        names: Names = dict,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.store, self.config, self.names = store, config, names
        self.client: Redis = store.client
        self.keys = store.keys
        self.token = secrets.token_hex(12)  # also this dispatcher's consumer name
        self.http = http
        self._lease = self.client.register_script(scripts.LEASE)
        self._release = self.client.register_script(scripts.RELEASE)
        self._fanout = self.client.register_script(scripts.FANOUT)
        self._finish = self.client.register_script(scripts.FINISH)
        self._note = self.client.register_script(scripts.NOTE_FAILURE)
        self._wake: dict[str, asyncio.Event] = {}
        self._shown: set[str] = set()
        self.working = False
        self.stopping = False  # set by stop(): every loop ends at its next turn
        self._targets_cache: tuple[float, list[Subscription], list[Any], str] | None = None

    # -- the lease -----------------------------------------------------------------------
    async def run(self) -> None:
        """Stand by, work while holding the lease, forever (until cancelled)."""
        gauges = asyncio.create_task(self._refresh_gauges())
        try:
            while not self.stopping:
                try:
                    if not await self.client.exists(self.keys.subscriptions):
                        # no webhooks: write nothing (no lease, no consumer group)
                        await asyncio.sleep(POLL_S)
                    elif await self._lease(keys=[self.keys.lease], args=[self.token, self._ms]):
                        await self._work()
                    else:
                        await asyncio.sleep(self.config.lease_ms / 3000)
                except* LeaseLost:
                    log.warning("webhook dispatcher lost its lease; standing by")
                except* (RedisError, OSError) as group:
                    log.warning("webhook dispatcher: Redis failed (%s); retrying", group.exceptions)
                    await asyncio.sleep(1.0)
                except* Exception:  # a bug must not end delivery for the process's lifetime
                    log.exception("webhook dispatcher failed; starting again in 5 s")
                    await asyncio.sleep(5.0)
        finally:
            self.working = False
            gauges.cancel()
            await self._release_lease()

    async def _release_lease(self) -> None:
        """Hand the lease over at once (a standby need not wait for it to expire), within a
        second: a Redis that does not answer must not hold up the exit. Shielded, so that a
        second cancel does not cut the call off half-sent; its error, if any, is retrieved
        here (not logged as "never retrieved" when Redis went down with the process)."""
        release = asyncio.ensure_future(self._release(keys=[self.keys.lease], args=[self.token]))
        release.add_done_callback(_retrieve)
        with contextlib.suppress(RedisError, OSError, asyncio.CancelledError, TimeoutError):
            async with asyncio.timeout(RELEASE_S):
                await asyncio.shield(release)

    def stop(self) -> None:
        """Make every loop end at its next turn. A cancel alone is not enough on Python 3.11:
        one that lands while a child of the task group is inside a Redis call or a timeout can
        be lost, and the group then waits for a child that loops on (a hang seen in tests)."""
        self.stopping = True

    @property
    def _ms(self) -> int:
        return self.config.lease_ms

    async def _keep_lease(self) -> None:
        while not self.stopping:
            await asyncio.sleep(self.config.lease_ms / 3000)
            if not await self._lease(keys=[self.keys.lease], args=[self.token, self._ms]):
                raise LeaseLost

    async def _work(self) -> None:
        log.info("webhook dispatcher %s is the working one", self.token)
        self.working = True
        owned = self.http is None
        http = self.http or httpx.AsyncClient(
            follow_redirects=False, limits=httpx.Limits(max_connections=1_000)
        )
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._keep_lease())
                tasks.create_task(self._streams(tasks))
                tasks.create_task(self._endpoints(tasks, http))
        finally:
            self.working = False
            if owned:
                await http.aclose()

    # -- fan-out -------------------------------------------------------------------------
    async def _claim(self, stream: str) -> None:
        """Take over what the group handed to earlier consumers and never acknowledged."""
        cursor = "0-0"
        while True:
            # (not JUSTID: redis-py then drops the cursor from the reply)
            reply: Any = await self.client.xautoclaim(
                stream, GROUP, self.token, 0, cursor, count=READ_COUNT
            )
            cursor = reply[0]
            if cursor in ("0-0", b"0-0"):
                return

    async def _streams(self, tasks: asyncio.TaskGroup) -> None:
        """Start a fan-out for every stream of every source without one. A stream without
        the consumer group (a model served since the subscriptions were made) gets it from
        the oldest subscription's creation: nothing recorded after that is skipped."""
        started: set[str] = set()
        while not self.stopping:
            for source in self.store.sources():
                new = [s for s in source.streams if s not in started]
                if new:
                    subs = await self.store.all()
                    since = min((s.created_at for s in subs), default=None)
                    await self.store.ensure_groups(new, since)
                for stream in new:
                    started.add(stream)
                    tasks.create_task(self._fan_out(stream, source.model))
            await asyncio.sleep(POLL_S)

    async def _fan_out(self, stream: str, model: str) -> None:
        await self._claim(stream)
        start = "0"  # first what is pending for this consumer, then new entries
        while not self.stopping:
            read, last = await self._step(stream, start, model)
            if read == READ_COUNT or read < 0:
                continue  # a backlog (or subscriptions changing): on at once
            if start == "0":
                start = ">"
            elif read:
                # live traffic: let entries gather, so that one script serves many events
                await asyncio.sleep(FANOUT_GATHER_S)
            else:  # idle: sleep until an entry comes after the last one (not a poll)
                await self.client.xread({stream: last}, count=1, block=BLOCK_MS)

    async def _targets(self) -> tuple[list[Subscription], list[Any], str]:
        """The subscriptions, whether each is disabled, and their version, read at most every
        SUBS_TTL_S. The fan-out script refuses a stale version (a subscription made or changed
        since), and the list is read again at once: a subscription sees every entry recorded
        after its 201. (Events of one disabled meanwhile wait in its queue.)"""
        now = time.monotonic()
        if self._targets_cache is None or now - self._targets_cache[0] > SUBS_TTL_S:
            # the version first: a change between the two reads only makes it look stale
            version = await self.client.get(self.keys.subscriptions_version)
            subs = await self.store.all()
            async with self.client.pipeline(transaction=False) as pipe:
                for sub in subs:
                    pipe.hget(self.keys.status(sub.id), "disabled_at")
                disabled = await pipe.execute()
            self._targets_cache = (now, subs, disabled, str(version or "0"))
        return self._targets_cache[1], self._targets_cache[2], self._targets_cache[3]

    async def _step(self, stream: str, start: str, model: str) -> tuple[int, str]:
        """One fan-out script: up to READ_COUNT entries of ``model``'s ``stream`` read,
        queued and acknowledged in Redis (scripts.FANOUT). Returns how many, and the last
        entry id it saw; -1 when the subscriptions kept changing under it (nothing read)."""
        for _ in range(STALE_TRIES):
            subs, disabled, version = await self._targets()
            keys: list[str] = [stream, self.keys.subscriptions, self.keys.subscriptions_version]
            args: list[Any] = [GROUP, self.token, start, READ_COUNT, self.config.max_queue]
            args += [model, version]
            for sub, off in zip(subs, disabled, strict=True):
                if not sub.wants_model(model):
                    continue
                keys += [self.keys.dead(sub.id) if off else self.keys.queue(sub.id)]
                keys += [self.keys.status(sub.id)]
                wants = [int(t in sub.events) for t in ("segment.entered", "segment.exited")]
                segments = [] if sub.segments is None else sub.segments
                args += [sub.id, *wants, sub.created_at]
                args += [-1 if sub.segments is None else len(segments)]
                args += segments
            read, last = await self._fanout(keys=keys, args=args)
            if int(read) >= 0:
                break
            self._targets_cache = None  # the subscriptions changed: list them again
        else:
            return -1, ""  # changing all the time: the caller steps again
        if read:
            for sub in subs:
                if sub.id in self._wake:
                    self._wake[sub.id].set()
        return int(read), str(last)

    # -- delivery ------------------------------------------------------------------------
    async def _endpoints(self, tasks: asyncio.TaskGroup, http: httpx.AsyncClient) -> None:
        """Start a delivery loop for every active subscription without one."""
        running: dict[str, asyncio.Task[None]] = {}
        while not self.stopping:
            for sub in await self.store.all():
                task = running.get(sub.id)
                if sub.paused or (task is not None and not task.done()):
                    continue
                if await self.client.hexists(self.keys.status(sub.id), "disabled_at"):
                    continue
                self._wake.setdefault(sub.id, asyncio.Event())
                running[sub.id] = tasks.create_task(self._deliver(sub.id, http))
            await asyncio.sleep(POLL_S)

    async def _deliver(self, sub_id: str, http: httpx.AsyncClient) -> None:
        """Deliver one endpoint's queue, a batch at a time, until it is paused, disabled
        or deleted (the endpoint loop starts it again when it is active)."""
        wake, queue = self._wake[sub_id], self.keys.queue(sub_id)
        size = self.config.batch_size
        while not self.stopping:
            waiting = await self.client.llen(queue)
            if waiting == 0:
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_S):
                        await wake.wait()
                if await self._stopped(sub_id) is not None:
                    return
                continue
            if waiting < size:  # let a batch fill for up to batch_wait_ms
                await asyncio.sleep(self.config.batch_wait_ms / 1000)
            batch: list[Any] = await self.client.lrange(queue, 0, size - 1)
            if await self._send(sub_id, batch, http):
                return

    async def _stopped(self, sub_id: str) -> Subscription | None:
        """``None`` if the subscription is active, else what stops it (returned)."""
        sub = await self.store.get(sub_id)
        if sub is None:
            return Subscription("", "", [], None, "", True, 0, "")
        if sub.paused or await self.client.hexists(self.keys.status(sub_id), "disabled_at"):
            return sub
        return None

    async def _send(self, sub_id: str, batch: list[str], http: httpx.AsyncClient) -> bool:
        """Send ``batch`` until it is delivered or dead. True: stop this loop."""
        retry, first_failure = 0, None
        while not self.stopping:
            sub = await self.store.get(sub_id)
            if sub is None or sub.paused:
                return True
            attempt = await post_batch(http, sub, batch, self._names_of(), self.config)
            metrics.ATTEMPTS.labels(sub_id, "ok" if attempt.ok else "failed").inc()
            if attempt.ok:  # logged by the script that pops the batch: one round trip
                await self._end(sub_id, batch, "ok", "", attempt.log_line())
                metrics.DELIVERED.labels(sub_id).inc(len(batch))
                return False
            await self._note_failure(sub_id, attempt)
            now = time.monotonic()
            first_failure = first_failure or now
            if attempt.retryable and now - first_failure < self.config.retry_for_s:
                await asyncio.sleep(backoff_s(retry, self.config, attempt.retry_after_s))
                retry += 1
                continue
            st = await self.store.status(sub_id)
            since = st.failing_since or int(time.time() * 1000)
            failing_s = time.time() - since / 1000
            reason = attempt.error or f"HTTP {attempt.status}"
            disable = failing_s >= self.config.disable_after_s
            if disable:
                reason = f"failing for {failing_s:.0f} s (last: {reason})"
            await self._end(sub_id, batch, "disable" if disable else "dead", reason)
            metrics.DEAD.labels(sub_id).inc(len(batch))
            if disable:
                log.warning("webhook %s disabled: %s", sub_id, reason)
                return True
            return False
        return True  # stopping

    def _names_of(self) -> Callable[[str], Mapping[str, str]]:
        """Each source's segment names now, by model name; an event without one (queued
        before events were named) is the first source's (the default model's)."""
        sources: list[Source] = self.store.sources()
        by_model = {s.model: (s.names or self.names)() for s in sources}
        first = by_model[sources[0].model] if sources else {}
        return lambda model: by_model.get(model, first)

    async def _end(
        self, sub_id: str, batch: list[Any], outcome: str, reason: str, logged: bytes = b""
    ) -> None:
        keys = [self.keys.lease, self.keys.queue(sub_id), self.keys.status(sub_id)]
        keys += [self.keys.dead(sub_id), self.keys.log(sub_id), self.keys.subscriptions]
        now = int(time.time() * 1000)
        args: list[Any] = [self.token, len(batch), outcome, now, reason, logged]
        args += [self.config.log_size, sub_id, batch[0], self._ms]
        if await self._finish(keys=keys, args=args) == -1:
            raise LeaseLost

    async def _note_failure(self, sub_id: str, attempt: Attempt) -> None:
        """A failed attempt in the delivery log and the status."""
        now = int(time.time() * 1000)
        keys = [self.keys.subscriptions, self.keys.log(sub_id), self.keys.status(sub_id)]
        line, size = attempt.log_line(), self.config.log_size
        args: list[Any] = [sub_id, line, size, now, attempt.status or "", attempt.error or ""]
        await self._note(keys=keys, args=args)

    # -- gauges --------------------------------------------------------------------------
    async def _refresh_gauges(self) -> None:
        while not self.stopping:
            try:
                subs = await self.store.all()
                statuses = {s.id: await self.store.status(s.id) for s in subs}
                self._shown = metrics.publish(statuses, self._shown)
            except (RedisError, OSError):
                pass
            await asyncio.sleep(GAUGE_S)


@contextlib.asynccontextmanager
async def running(dispatcher: Dispatcher) -> AsyncIterator[Dispatcher]:
    """Run ``dispatcher`` in the background for the duration of the block."""
    task = asyncio.create_task(dispatcher.run(), name="webhook-dispatcher")
    try:
        yield dispatcher
    finally:
        dispatcher.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_dispatcher(dispatcher: Dispatcher) -> None:
    """Run until cancelled (``segments dispatch``)."""
    await dispatcher.run()


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark a background call's outcome as seen (its failure is expected and harmless)."""
    if not task.cancelled():
        task.exception()
