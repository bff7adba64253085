"""The customers' behaviour in Redis: running aggregates, applied and seeded by Lua scripts.

``BehaviourStore.apply`` sends a batch of events as one pipeline of ``apply.lua`` calls (one per
shard and ``EVENTS_PER_CALL`` events), so a batch of 10,000 events is one round trip; each call
is atomic and idempotent (an event id applied before changes nothing). ``seed`` writes the
aggregates a transaction log gives (``seed.lua``), ``read`` returns them. The key names come
from ``Keys.behaviour`` and are listed in docs/redis-keys.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, NamedTuple

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError, ResponseError

from app.assignment.validation import NUMBER_LIMIT
from app.history.keys import Keys
from app.history.recorder import send_packed
from app.history.records import RedisUnavailable

EVENTS_PER_CALL = 200  # a call holds the server a millisecond or two, as record.lua's
SEEDS_PER_CALL = 200
BATCH_DEADLINE_S = 10.0  # a batch of 10,000 events on a busy server: well over its work
APPLIED, DUPLICATE, LATE, BEYOND, CONFLICT = 1, 0, 2, 3, 4
_LIMIT_ARG = f"${len(str(NUMBER_LIMIT))}\r\n{NUMBER_LIMIT}\r\n"


class Event(NamedTuple):
    """A valid event: ``amount`` signed (a refund negative), ``order_key`` what it counts as.

    (Named tuples, as ``Aggregates``: a batch makes one per event, and a frozen dataclass
    cost four times as much to make.)"""

    customer_id: str
    event_id: str
    at_us: int
    amount: float
    order_key: str


class Aggregates(NamedTuple):
    """A customer's running aggregates (see ``app.events.derive``)."""

    first_us: int
    last_us: int
    orders: int
    monetary: float


@dataclass(frozen=True, slots=True)
class Seed:
    """A customer's aggregates from a log, with the order ids it counted; ``bought`` False for
    a customer whose lines are all refunds (its first and last are not sent: no purchase)."""

    customer_id: str
    aggregates: Aggregates
    order_keys: Sequence[str] = ()
    bought: bool = True


def _resp(values: list[str]) -> str:
    """RESP bulk strings of ``values`` (encoded by the caller: text is sent as UTF-8)."""
    return "".join(f"${len(v) if v.isascii() else len(v.encode())}\r\n{v}\r\n" for v in values)


def order_key(order_id: str | None, event_id: str) -> str:
    """What an event counts as: its order (``o<id>``: lines of one order count once), or, with
    no order id, an order of its own (``e<event id>``), as a log line without one does."""
    return f"e{event_id}" if order_id is None else f"o{order_id}"


def _script(name: str) -> str:
    return files("app.events").joinpath(name).read_text(encoding="utf-8")


def _aggregates(f: Any, l: Any, o: Any, m: Any) -> Aggregates | None:  # noqa: E741
    if f is None or f is False:
        return None
    return Aggregates(int(float(f)), int(float(l)), int(o), float(m))


class BehaviourStore:
    """Applies, seeds and reads the behaviour aggregates of customers.

    Parameters
    ----------
    client
        The app's Redis client (``decode_responses=True``).
    keys
        The key builder (prefix and shards of the recording).
    timeout_s
        Deadline of one batch.
    """

    def __init__(self, client: Redis, keys: Keys, timeout_s: float) -> None:
        self.client, self.keys, self.timeout_s = client, keys, timeout_s
        self._apply = client.register_script(_script("apply.lua"))
        self._seed = client.register_script(_script("seed.lua"))
        self._waiting: list[tuple[str, asyncio.Future[Aggregates | None]]] = []
        self._reader: asyncio.Task[None] | None = None  # sends the waiting reads (read_one)

    async def _run(self, script: Any, calls: list[tuple[int, str]]) -> list[Any]:
        """Run ``script`` once per call (its argument count and its arguments as RESP, from
        ``numkeys`` on) in one pipeline, loading it again where the server lost it (a restart
        or a flush); ``RedisUnavailable`` on any failure."""
        try:
            async with asyncio.timeout(self.timeout_s):
                replies = await self._pipeline(script.sha, calls)
                missing = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
                if missing:
                    await self.client.script_load(script.script)
                    again = await self._pipeline(script.sha, [calls[i] for i in missing])
                    for i, reply in zip(missing, again, strict=True):
                        replies[i] = reply
        except (RedisError, OSError, TimeoutError) as exc:
            raise RedisUnavailable.of(exc) from exc
        for reply in replies:
            if isinstance(reply, ResponseError):
                raise RedisUnavailable(
                    f"Redis refused the behaviour script: {reply}", "Redis refused the write"
                )
        return replies

    async def _pipeline(self, sha: str, calls: list[tuple[int, str]]) -> list[Any]:
        """Send the calls as one packed buffer and read their replies (errors as values).

        Packed here, not by redis-py's pipeline: its per-argument encoding cost more than
        Redis's own work on a batch of events (sent as the recorder sends its records)."""
        head = f"$7\r\nEVALSHA\r\n$40\r\n{sha}\r\n"
        buffer = "".join(f"*{count + 2}\r\n{head}{args}" for count, args in calls).encode()
        return await send_packed(self.client, [(buffer, len(calls))])

    @staticmethod
    def _call(keys: list[str], args: list[str]) -> tuple[int, str]:
        return 1 + len(keys) + len(args), _resp([str(len(keys)), *keys, *args])

    def _apply_call(
        self, events: Sequence[Event], shard: int, chunk: Sequence[int], mode: str
    ) -> tuple[tuple[int, str], list[str], list[int]]:
        """One ``apply.lua`` call for ``events[chunk]`` (all of ``shard``): the call, its
        customers, and the event indices in the order sent (each customer's events together,
        in order).

        Packed as text, a customer's key and an event's four arguments each one f-string
        (``_resp`` per argument was a third of a batch's Python time), lengths counted in
        characters: a call whose text is not all ASCII is packed again from ``_apply_args``
        by ``_resp`` (bytes counted), the obvious way (a test proves the two equal)."""
        by_customer: dict[str, list[int]] = {}
        for i in chunk:
            found = by_customer.get(events[i][0])
            if found is None:
                by_customer[events[i][0]] = [i]
            else:
                found.append(i)
        head = self.keys.behaviour_head(shard)
        size = len(head)
        count = str(len(by_customer))
        parts = [f"${len(count)}\r\n{count}\r\n"]
        parts += [f"${size + len(c)}\r\n{head}{c}\r\n" for c in by_customer]
        parts.append(f"${len(mode)}\r\n{mode}\r\n{_LIMIT_ARG}")
        sent: list[int] = []
        for indices in by_customer.values():
            n = str(len(indices))
            parts.append(f"${len(n)}\r\n{n}\r\n")
            for i in indices:
                _, event_id, at_us, amount, key = events[i]
                at, value = str(at_us), repr(amount)
                parts.append(
                    f"${len(event_id)}\r\n{event_id}\r\n${len(at)}\r\n{at}\r\n"
                    f"${len(value)}\r\n{value}\r\n${len(key)}\r\n{key}\r\n"
                )
            sent += indices
        text = "".join(parts)
        if not text.isascii():
            text = _resp(self._apply_args(events, by_customer, mode))
        customers = list(by_customer)
        return (3 + 2 * len(customers) + 4 * len(chunk), text), customers, sent

    def _apply_args(
        self, events: Sequence[Event], by_customer: dict[str, list[int]], mode: str
    ) -> list[str]:
        """An ``apply.lua`` call's arguments from ``numkeys`` on, one by one: what
        ``_apply_call`` packs (``by_customer``: each customer's event indices, in order)."""
        keys = [self.keys.behaviour(customer_id) for customer_id in by_customer]
        args = [str(len(keys)), *keys, mode, str(NUMBER_LIMIT)]
        for indices in by_customer.values():
            args.append(str(len(indices)))
            for i in indices:
                e = events[i]
                args += (e.event_id, str(e.at_us), repr(e.amount), e.order_key)
        return args

    def _by_shard(self, customer_ids: Sequence[str]) -> dict[int, list[int]]:
        if self.keys.shards == 1:  # (the usual case: no hash of each id)
            return {0: list(range(len(customer_ids)))} if customer_ids else {}
        shards: dict[int, list[int]] = {}
        for i, customer_id in enumerate(customer_ids):
            shards.setdefault(self.keys.shard_of(customer_id), []).append(i)
        return shards

    async def apply(
        self, events: Sequence[Event], counting: bool
    ) -> tuple[list[int], dict[str, Aggregates]]:
        """Apply ``events`` (in order): each one's status (``APPLIED``, ``DUPLICATE``, ``LATE``,
        ``BEYOND``: it would take the customer's net amount to ``NUMBER_LIMIT`` or beyond,
        ``CONFLICT``: its id was applied with another time, amount or order) and the
        aggregates after the batch of every customer they name.

        ``counting``: an order key counts once (the log has an order column)."""
        calls: list[tuple[int, str]] = []
        plan: list[tuple[list[int], list[str]]] = []  # per call: event indices, customers
        mode = "1" if counting else "0"
        for shard, indices in self._by_shard([e.customer_id for e in events]).items():
            for start in range(0, len(indices), EVENTS_PER_CALL):
                chunk = indices[start : start + EVENTS_PER_CALL]
                call, customers, sent = self._apply_call(events, shard, chunk, mode)
                calls.append(call)
                plan.append((sent, customers))
        statuses = [DUPLICATE] * len(events)
        found: dict[str, Aggregates] = {}
        for reply, (chunk, customers) in zip(
            await self._run(self._apply, calls), plan, strict=True
        ):
            for i, status in zip(chunk, reply, strict=False):
                statuses[i] = status
            tail = reply[len(chunk) :]
            # first, last and orders come as integers, the amount as text (exact)
            for customer_id, f, last, o, m in zip(
                customers, tail[::4], tail[1::4], tail[2::4], tail[3::4], strict=True
            ):
                if f is not None:
                    found[customer_id] = Aggregates(f, last, o, float(m))
        return statuses, found

    async def seed(
        self, seeds: Sequence[Seed], reference_us: int, counting: bool
    ) -> list[Aggregates | None]:
        """Replace the aggregates of ``seeds``' customers by a log's as of ``reference_us``
        (posted events at or after it are applied again on top): per seed, in order, the
        aggregates with the posted events kept, or None where none was kept."""
        calls: list[tuple[int, str]] = []
        plan: list[list[int]] = []
        head = ["1" if counting else "0", str(reference_us), str(NUMBER_LIMIT)]
        for indices in self._by_shard([s.customer_id for s in seeds]).values():
            for start in range(0, len(indices), SEEDS_PER_CALL):
                keys: list[str] = []
                args: list[str] = list(head)
                chunk = indices[start : start + SEEDS_PER_CALL]
                for i in chunk:
                    s, a = seeds[i], seeds[i].aggregates
                    keys.append(self.keys.behaviour(s.customer_id))
                    times = (str(a.first_us), str(a.last_us)) if s.bought else ("", "")
                    args += (*times, str(a.orders), repr(a.monetary))
                    args += (str(len(s.order_keys)), *s.order_keys)
                calls.append(self._call(keys, args))
                plan.append(chunk)
        found: list[Aggregates | None] = [None] * len(seeds)
        for reply, chunk in zip(await self._run(self._seed, calls), plan, strict=True):
            for n, i in enumerate(chunk):
                kept, f, last, o, m = reply[5 * n : 5 * n + 5]
                if int(kept):
                    found[i] = _aggregates(f, last, o, m)
        return found

    async def read_one(self, customer_id: str) -> Aggregates | None:
        """``read`` of one customer (an assignment by id), coalesced: the reads that arrive
        while one is in flight go together in the next (one round trip for many concurrent
        requests, as the recording lane sends their records). A read is sent after it is
        asked for, so it sees every write Redis acknowledged before."""
        waiter: asyncio.Future[Aggregates | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((customer_id, waiter))
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_waiting())
        return await waiter

    async def _read_waiting(self) -> None:
        batch: list[tuple[str, asyncio.Future[Aggregates | None]]] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    found = await self.read([customer_id for customer_id, _ in batch])
                except Exception as exc:  # (RedisUnavailable: each request falls back)
                    for _, waiter in batch:
                        if not waiter.done():
                            waiter.set_exception(exc)
                    batch = []
                    continue
                for (_, waiter), agg in zip(batch, found, strict=True):
                    if not waiter.done():
                        waiter.set_result(agg)
                batch = []
        finally:
            self._reader = None
            for _, waiter in batch + self._waiting:  # cancelled: nobody may wait forever
                if not waiter.done():
                    waiter.set_exception(RedisUnavailable("Redis unavailable: stopping"))
            self._waiting = []

    async def read(self, customer_ids: Sequence[str]) -> list[Aggregates | None]:
        """The stored aggregates of each customer (None: no event, no seeding).

        Sent packed, as the scripts' calls are: an events batch reads back every customer it
        recorded (``app.events.service._settle``), and redis-py's pipeline doubled the Python
        time of a batch of 1,000 events doing so."""
        if not customer_ids:
            return []
        tail = "$1\r\nf\r\n$1\r\nl\r\n$1\r\no\r\n$1\r\nm\r\n"
        buffer = "".join(
            f"*6\r\n$5\r\nHMGET\r\n{_resp([self.keys.behaviour(c)])}{tail}" for c in customer_ids
        ).encode()
        try:
            async with asyncio.timeout(self.timeout_s):
                replies = await send_packed(self.client, [(buffer, len(customer_ids))])
        except (RedisError, OSError, TimeoutError) as exc:
            raise RedisUnavailable.of(exc) from exc
        for reply in replies:
            if isinstance(reply, BaseException):
                raise RedisUnavailable.of(reply)
        return [_aggregates(*reply) for reply in replies]
