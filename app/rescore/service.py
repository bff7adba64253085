"""The service's rescore: every stored customer re-assigned with the served version, in the
background (``POST /v1/rescore``, or ``?rescore=true`` on a promotion).

It runs ``app.recording.rescore`` (the code of ``segments customers rescore``) in a task of
the worker that was asked, and keeps its state in two Redis keys, so any worker answers
``GET /v1/rescore`` and no two workers run one for the same model at once:

- ``Keys.rescore_lease()``: the run id of the rescore running now. It is taken with
  ``SET NX`` and expires ``LEASE_MS`` after the last batch unless the run renews it, so a
  worker that dies mid-run frees it (the state then reads ``interrupted``).
- ``Keys.rescore()``: a hash of the last run's state and counts, written after every batch.

A promotion while a run goes (in any worker: the run looks at the store's pointer after each
batch and before it ends) makes the run start over with the new version: a run always ends
with every customer assigned by the version served when it ended. Re-assigning a customer a
first pass already moved is an unchanged record (its time only), so a second pass costs no
migration.

A pass begins only once every worker serves the version it assigns with (``settle_s``): each
worker looks at the store's pointer every ``reload_interval`` seconds, and one still serving
the version before would record, after the pass, customers the pass had already moved, who
then kept the old version's segment while the run said done.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.events.store import BehaviourStore
from app.history import HistoryService
from app.history.keys import Keys
from app.history.records import RedisUnavailable, now_ms
from app.problems import Problem, redis_unavailable
from app.recording.rescore import Rescored, rescore
from app.registry.store import ModelStore
from app.serving import ModelHolder, ServingModel

log = logging.getLogger(__name__)
T = TypeVar("T")

LEASE_MS = 60_000
"""How long a run's lease outlives its last batch (a batch takes a few ms on an idle machine;
a loaded one, or a slow Redis, may take seconds)."""
OUTAGE_WAIT_S = 30.0
"""How long a run waits for Redis to answer again (the service's records spooled meanwhile:
a loaded Redis missing the request deadline) before it stops as failed."""
BATCH = 200
"""Customers a batch: assigning one holds the event loop (about 35 us a customer, a batch
of 5,000 the CLI's 0.2 s), so the requests the worker serves meanwhile wait a few ms."""
BUSY_S = 0.0005  # a loop that takes this long to come back to the run has requests to serve
SHARE = 0.25
"""The share of a busy worker's time a run takes at most: after each batch it rests three
times as long as the batch took, so that the requests keep their latency (a run at full speed beside
wrk's load took the by-id assignment's p99 from 39 to 500 ms, bench/rescore_bench.py)."""
SETTLE_MARGIN_S = 0.5
"""Beyond twice the reload interval after the pointer moved: a worker's load of the version
(the artefact read, its hash checked, compiled) before it serves it."""
REASONS_KEPT = 10  # the commonest reasons a customer was not assigned, in the state
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
Fields = dict[Any, str | int]  # a hash's fields (redis-py's mapping: its key type is invariant)
_COUNTS = ("customers", "changed", "unchanged", "not_recorded", "gone", "not_assigned", "passes")


def settle_s(holder: ModelHolder) -> float:
    """``settle_wait`` of the holder's model."""
    return settle_wait(holder.store, holder.model_name, holder.reload_interval)


def settle_wait(store: ModelStore, model_name: str, reload_interval: float) -> float:
    """Seconds until every worker serves the version the store's pointer names: the pointer
    moved (its file's time), each worker's next look at it within ``reload_interval``, its
    load of the version (``SETTLE_MARGIN_S`` and another interval). 0 long after a promotion;
    never more than that whole wait (a pointer written by a clock ahead of this one)."""
    moved_ns = store.mtime_token(model_name)[0]
    if not moved_ns:
        return 0.0
    wait = 2 * reload_interval + SETTLE_MARGIN_S
    return min(wait, max(0.0, moved_ns / 1e9 + wait - time.time()))


class LeaseLost(Exception):
    """Another run holds the lease: this one stops (its lease expired while it was stalled)."""


class Superseded(Exception):
    """The served version changed: the run starts over with it."""


@dataclass(frozen=True)
class Where:
    """What a run needs of one model's state."""

    model_name: str
    holder: ModelHolder
    history: HistoryService
    behaviour: BehaviourStore | None
    max_id: int

    @property
    def keys(self) -> Keys:
        return self.history.recorder.keys

    @property
    def redis(self) -> Redis:
        client: Redis = self.history.recorder.client
        return client


class Rescores:
    """This worker's running rescores (one per model at most across the workers)."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self, where: Where) -> dict[str, Any]:
        """Start a run for ``where``'s model; its state as ``status`` reads it.

        Raises
        ------
        Problem
            409 when a run of the model is going (here or in another worker), 503 when Redis
            does not answer or no version is served.
        """
        serving = where.holder.current
        if serving is None:
            raise Problem(503, "No model", f"no version of {where.model_name!r} is served")
        run = uuid.uuid4().hex[:12]
        keys, redis = where.keys, where.redis
        timeout = where.history.config.timeout_s * 4
        try:
            async with asyncio.timeout(timeout):
                taken = await redis.set(keys.rescore_lease(), run, nx=True, px=LEASE_MS)
                if not taken:
                    raise _running(where.model_name, await self.status(where))
                now = now_ms()
                state: Fields = {
                    "run_id": run,
                    "state": "running",
                    "version": serving.version,
                    "started_at": now,
                    "updated_at": now,
                    "finished_at": "",
                    "error": "",
                    "reasons": "{}",
                    **dict.fromkeys(_COUNTS, 0),
                    "passes": 1,
                }
                async with redis.pipeline(transaction=True) as pipe:
                    pipe.delete(keys.rescore())
                    pipe.hset(keys.rescore(), mapping=state)
                    await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            raise _redis_down(exc) from exc
        task = asyncio.create_task(self._run(where, run), name=f"rescore {where.model_name}")
        self.tasks[where.model_name] = task
        task.add_done_callback(lambda ended: self._ended(where.model_name, ended))
        log.info("rescore %s of model %s started with %s", run, where.model_name, serving.version)
        return _shown(where.model_name, {k: str(v) for k, v in state.items()}, True)

    def _ended(self, model_name: str, task: asyncio.Task[None]) -> None:
        if self.tasks.get(model_name) is task:
            del self.tasks[model_name]

    async def status(self, where: Where) -> dict[str, Any] | None:
        """The model's last run, or None when none ran; a run whose lease is gone while its
        state says running was cut short (its worker stopped): ``interrupted``."""
        keys, redis = where.keys, where.redis
        try:
            async with asyncio.timeout(where.history.config.timeout_s * 4):
                async with redis.pipeline(transaction=False) as pipe:
                    pipe.hgetall(keys.rescore())
                    pipe.get(keys.rescore_lease())
                    raw, lease = await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            raise _redis_down(exc) from exc
        if not raw:
            return None
        state = {_text(k): _text(v) for k, v in raw.items()}
        held = lease is not None and _text(lease) == state.get("run_id")
        return _shown(where.model_name, state, held)

    async def close(self) -> None:
        """Stop this worker's runs (shutdown): each is recorded as interrupted."""
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, where: Where, run: str) -> None:
        keys, redis = where.keys, where.redis
        renew, release = redis.register_script(_RENEW), redis.register_script(_RELEASE)
        passes = 1
        done = Rescored()
        first = where.holder.current
        assert first is not None  # checked by start
        serving: ServingModel = first

        async def on_outage() -> None:
            await wait_for_redis(where)

        async def patiently(op: Callable[[], Awaitable[T]]) -> T:
            """``op``'s answer, tried again once Redis answers (``wait_for_redis``)."""
            while True:
                try:
                    async with asyncio.timeout(where.history.config.batch_timeout_s):
                        return await op()
                except (RedisError, OSError, TimeoutError):
                    await on_outage()

        async def superseded() -> bool:
            # the store, not this worker's last look at it: a promotion answered by another
            # worker (which handed it this run) shows here only at the next reload check, a
            # second away, when a small base's run has long ended with the version before
            await asyncio.to_thread(where.holder.refresh)
            current = where.holder.current
            return current is not None and current.version != serving.version

        async def settle() -> None:
            """Wait until every worker serves the version (``settle_s``), keeping the lease:
            a reload interval of a minute makes that wait two, the lease's life one."""
            end = time.monotonic() + await asyncio.to_thread(settle_s, where.holder)
            while (left := end - time.monotonic()) > 0:
                await asyncio.sleep(min(left, LEASE_MS / 3000))
                if not await patiently(
                    lambda: renew(keys=[keys.rescore_lease()], args=[run, LEASE_MS])
                ):
                    raise LeaseLost

        began = [time.monotonic()]

        async def on_batch(progress: Rescored) -> None:
            # while the worker has requests to answer (the loop took a while to come back),
            # leave them (1 - SHARE) of its time: rest as long as the batch took, times
            # (1 - SHARE) / SHARE; an idle worker goes on at once
            took = time.monotonic() - began[0]
            before = time.monotonic()
            await asyncio.sleep(0)
            if time.monotonic() - before > BUSY_S:
                await asyncio.sleep(took * (1 - SHARE) / SHARE)
            began[0] = time.monotonic()
            if not await patiently(
                lambda: renew(keys=[keys.rescore_lease()], args=[run, LEASE_MS])
            ):
                raise LeaseLost
            await patiently(lambda: redis.hset(keys.rescore(), mapping=_counts(progress, passes)))
            if await superseded():
                raise Superseded

        try:
            while True:
                try:
                    # every worker serves ``serving`` first: one that served the version
                    # before would record customers after the pass moved them
                    await settle()
                    done = await rescore(
                        serving,
                        where.history,
                        keys,
                        where.behaviour,
                        where.max_id,
                        BATCH,
                        on_batch,
                        on_outage,
                    )
                    if await superseded():
                        raise Superseded
                except Superseded:
                    current = where.holder.current
                    assert current is not None
                    log.info("rescore %s: %s is served now; starting over", run, current.version)
                    serving, passes = current, passes + 1
                    moved: Fields = {"version": serving.version, "passes": passes}
                    await patiently(functools.partial(redis.hset, keys.rescore(), mapping=moved))
                    continue
                break
            final: Fields = {
                **_counts(done, passes),
                "state": "done",
                "finished_at": now_ms(),
            }
            log.info("rescore %s of model %s done: %s", run, where.model_name, final)
        except LeaseLost:
            log.warning("rescore %s lost its lease (stalled past %d ms): stopped", run, LEASE_MS)
            return  # the state belongs to the run that holds the lease now
        except asyncio.CancelledError:  # shutdown: one try, briefly
            # the lease goes too, else the restarted service refuses a new run (409
            # 'running') until it expires, while GET /v1/rescore reads interrupted
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(where.history.config.timeout_s * 4):
                    await _finish(where, run, {"state": "interrupted", "finished_at": now_ms()})
                    await release(keys=[keys.rescore_lease()], args=[run])
            raise
        except (RedisUnavailable, RedisError, OSError, TimeoutError) as exc:
            log.warning("rescore %s of model %s failed: %s", run, where.model_name, exc)
            error = "Redis stopped answering; what was recorded stays: start it again"
            final = {"state": "failed", "finished_at": now_ms(), "error": error}
        except Exception:
            log.exception("rescore %s of model %s failed", run, where.model_name)
            error = "an internal error stopped it (the service's log has the details)"
            final = {"state": "failed", "finished_at": now_ms(), "error": error}
        with contextlib.suppress(RedisUnavailable):  # gone for good: the lease expires
            await patiently(lambda: _finish(where, run, final))
            await patiently(lambda: release(keys=[keys.rescore_lease()], args=[run]))


async def _finish(where: Where, run: str, fields: Fields) -> None:
    """Write a run's end, if the state is still this run's."""
    keys, redis = where.keys, where.redis
    if _text(await redis.hget(keys.rescore(), "run_id") or b"") == run:
        await redis.hset(keys.rescore(), mapping=fields)


async def wait_for_redis(where: Where) -> None:
    """Return once Redis answers and the service's spooled records are replayed (a loaded
    Redis missed a deadline), or raise ``RedisUnavailable`` after ``OUTAGE_WAIT_S``."""
    deadline = time.monotonic() + OUTAGE_WAIT_S
    while True:
        if where.history.redis_up:
            try:
                async with asyncio.timeout(where.history.config.timeout_s * 4):
                    await where.redis.ping()
                return
            except (RedisError, OSError, TimeoutError):
                pass
        if time.monotonic() >= deadline:
            raise RedisUnavailable(f"Redis did not answer for {OUTAGE_WAIT_S:g} s")
        await asyncio.sleep(0.25)


def _counts(done: Rescored, passes: int) -> Fields:
    reasons = Counter({k[:200]: v for k, v in done.refused.most_common(REASONS_KEPT)})
    return {
        "customers": done.customers,
        "changed": done.changed,
        "unchanged": done.unchanged,
        "not_recorded": done.not_recorded,
        "gone": done.gone,
        "not_assigned": done.not_assigned,
        "passes": passes,
        "reasons": json.dumps(dict(reasons)),
        "updated_at": now_ms(),
    }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _iso(ms: str) -> str | None:
    if not ms:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(ms) / 1000)) + (
        f".{int(ms) % 1000:03d}Z"
    )


def _shown(model_name: str, state: dict[str, str], held: bool) -> dict[str, Any]:
    """A run's state as the API shows it (``RescoreStatus``)."""
    status = state.get("state", "running")
    if status == "running" and not held:
        status = "interrupted"
    return {
        "model_name": model_name,
        "run_id": state.get("run_id", ""),
        "state": status,
        "version": state.get("version", ""),
        "passes": int(state.get("passes") or 1),
        "started_at": _iso(state.get("started_at", "")),
        "updated_at": _iso(state.get("updated_at", "")),
        "finished_at": _iso(state.get("finished_at", "")),
        **{k: int(state.get(k) or 0) for k in _COUNTS if k != "passes"},
        "not_assigned_reasons": json.loads(state.get("reasons") or "{}"),
        "error": state.get("error") or None,
    }


def _running(model_name: str, status: dict[str, Any] | None) -> Problem:
    what = ""
    if status is not None:
        what = (
            f" (run {status['run_id']}, started at {status['started_at']}, "
            f"{status['customers']:,} customers so far)"
        )
    return Problem(
        409,
        "Rescore running",
        f"a rescore of model {model_name!r} is running{what}: GET /v1/rescore follows it",
        type_="/problems/rescore-running",
    )


def _redis_down(exc: BaseException) -> Problem:
    log.warning("rescore: Redis did not answer: %s", exc)
    return redis_unavailable("Redis did not answer: a rescore needs it (the customers are there)")
