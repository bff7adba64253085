"""``segments customers rescore``: every customer the history store knows, re-assigned with the
served version and recorded, without a file.

A promotion or a rollback changes what the service answers from then on, but every customer's
recorded segment stays what the version before gave them until something assigns them again
(a website asking by id, an event, the nightly file run): a marketing tool listing a
segment's members sees the old segmentation, and a segment the new version no longer has
keeps members nobody can list (its id is not served). The service holds each customer's
profile (the features last seen) and, for a model trained on a transaction log, their
behaviour aggregates: that is all it needs to move everyone at once.

The customers are found by scanning their keys (``SCAN`` over each shard's customer keys; a
customer forgotten or expired once listed is counted as gone), then assigned in batches exactly as
``POST /v1/assign/batch`` assigns items sent with only their ``customer_id``
(``answer_batch``): from the stored profile (for a log model, derived as of now from the
behaviour), each record checked against the profile it was made from, so a customer whose
profile changed meanwhile is read again rather than overwritten. Running it again changes
nothing but the customers' ``assigned_at``.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from redis.exceptions import RedisError

from app.assignment.profiles import UNKNOWN
from app.assignment.service import answer_batch
from app.events.service import derived_now
from app.events.store import BehaviourStore
from app.history import HistoryService
from app.history.keys import Keys
from app.history.records import RedisUnavailable
from app.seen_ids import SeenIds
from app.serving import ServingModel
from app.words import counted

SCAN_COUNT = 1_000  # keys Redis looks at per SCAN call (a hint: a call takes about a ms)
_ITEM = re.compile(r"^items\.\d+\.?")


@dataclass
class Rescored:
    """What a rescore did: customers assigned (changed or not), those gone once listed
    (forgotten, expired: nothing to move), and those not assigned, by reason (the batch
    answer's error, its item index left out)."""

    customers: int = 0
    changed: int = 0
    unchanged: int = 0
    not_recorded: int = 0
    gone: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    moves: Counter[tuple[str | None, str]] = field(default_factory=Counter)

    @property
    def not_assigned(self) -> int:
        return sum(self.refused.values())


async def customer_ids(
    history: HistoryService, keys: Keys, on_outage: Callable[[], Awaitable[None]] | None = None
) -> AsyncIterator[str]:
    """``customer_pages``, one id at a time."""
    async for page in customer_pages(history, keys, on_outage):
        for customer_id in page:
            yield customer_id


async def customer_pages(
    history: HistoryService, keys: Keys, on_outage: Callable[[], Awaitable[None]] | None = None
) -> AsyncIterator[list[str]]:
    """Every customer id with a customer hash, shard by shard, a ``SCAN`` call's page at a
    time (a customer whose key exists throughout is returned at least once; the caller drops
    repeats: ``SeenIds``). A failed ``SCAN`` call is made again after ``on_outage`` returns;
    without it, it raises.

    A cursor is a place in one server process's order of the keys: a restarted Redis (its
    hash seed drawn anew) would read it as a place in another order and skip thousands of
    customers, so each call asks the server's run id too, and a new one starts the shard over.
    """
    client = history.recorder.client
    for shard in range(keys.shards):
        head, pattern = keys.customer_head(shard), keys.customers_pattern(shard)
        cursor, server = 0, None
        while True:
            try:
                async with client.pipeline(transaction=False) as pipe:
                    pipe.info("server")
                    pipe.scan(cursor, match=pattern, count=SCAN_COUNT)
                    info, scanned = await pipe.execute(raise_on_error=False)
                if isinstance(scanned, Exception):
                    raise scanned
                cursor, found = scanned
            except (RedisError, OSError, TimeoutError) as exc:
                if on_outage is None:
                    message = (
                        f"Redis failed while listing the customers ({exc}): run it again once "
                        "it answers"
                    )
                    raise RedisUnavailable(message, "Redis unavailable") from exc
                await on_outage()
                continue
            if found:  # text: the client decodes replies (create_redis)
                yield [cast(str, key)[len(head) :] for key in found]
            # None where INFO is not allowed (an ACL without @dangerous): no check, as before
            now = info.get("run_id") if isinstance(info, dict) else None
            restarted = server is not None and now != server
            server = now
            if restarted:  # since the last call: the shard from its start again
                cursor = 0
            elif cursor == 0:
                break


async def rescore(
    serving: ServingModel,
    history: HistoryService,
    keys: Keys,
    behaviour: BehaviourStore | None,
    max_id: int,
    batch_size: int,
    on_batch: Callable[[Rescored], Awaitable[None]] | None = None,
    on_outage: Callable[[], Awaitable[None]] | None = None,
) -> Rescored:
    """Assign and record every stored customer with ``serving``, ``batch_size`` at a time;
    ``on_batch`` is awaited after each batch with the counts so far (an exception it raises
    stops the run there).

    A batch in which Redis stopped answering (some records spooled, some profiles not read)
    stops the run, unless ``on_outage`` is given: it is awaited and returns once Redis answers
    again (or raises), and the customers whose profile was not read are assigned again (the
    spooled records are the service's to replay).

    Raises
    ------
    RedisUnavailable
        Redis stopped answering: what was recorded stays (a rerun finishes the job).
    """
    done = Rescored()
    seen = SeenIds()
    pending: list[str] = []

    def now_us() -> int:
        return time.time_ns() // 1_000

    async def live(items: Any) -> Any:
        return await derived_now(behaviour, serving, items, now_us)

    async def flush(batch: list[str]) -> None:
        while batch:  # then the customers whose profile Redis did not give, once it answers
            items = [{"customer_id": customer_id} for customer_id in batch]
            # (the stored base, not traffic: live drift counts what callers send)
            answer = await answer_batch(
                serving, history, items, max_id, live=live, traffic=False, every_error=True
            )
            batch = _count(answer["results"], batch, done)
            if not batch and history.redis_up:
                break
            if on_outage is None:
                raise RedisUnavailable(
                    f"Redis stopped answering after "
                    f"{counted(done.customers, 'customer', verb='were')} rescored: run it "
                    "again to finish (a rescore is safe to repeat)",
                    "Redis unavailable",
                )
            await on_outage()
        if on_batch is not None:
            await on_batch(done)

    async for page in customer_pages(history, keys, on_outage):
        pending.extend(seen.first_seen(page))
        while len(pending) >= batch_size:
            await flush(pending[:batch_size])
            pending = pending[batch_size:]
    if pending:
        await flush(pending)
    return done


def _count(results: list[dict[str, Any]], batch: list[str], done: Rescored) -> list[str]:
    """Add a batch's results to ``done``; the customers whose profile could not be read
    (Redis), not counted."""
    unread = []
    for customer_id, result in zip(batch, results, strict=True):
        if result["status"] != "ok":
            errors = result["errors"]
            first = errors[0] if errors else {"field": "", "message": "not assigned"}
            if "Redis unavailable" in first["message"]:
                unread.append(customer_id)
                continue
            if first["field"].endswith("customer_id") and first["message"] == UNKNOWN:
                done.gone += 1  # forgotten (DELETE /v1/customers/{id}) or expired since listed
                continue
            where = _ITEM.sub("", first["field"])
            done.refused[f"{where}: {first['message']}" if where else first["message"]] += 1
            continue
        done.customers += 1
        if not result["recorded"]:
            done.not_recorded += 1
        elif result["changed"]:
            done.changed += 1
            done.moves[(result["previous_segment_id"], result["segment_id"])] += 1
        else:
            done.unchanged += 1
    return unread
