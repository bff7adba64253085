"""Record assignments in Redis and read them back: current segment, history, members, flows.

One assignment is one ``EVALSHA`` of ``record.lua`` (compare-and-swap of the current segment
and, on a change, history, membership, flow counter and event, all atomic); a batch is one
pipeline of those calls, applied in order. Every call runs under a deadline from
``HistoryConfig``; failures that leave the outcome unknown raise ``RedisUnavailable``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    MasterDownError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)

from app.columns import ColumnRows, take
from app.history.config import HistoryConfig
from app.history.customers import Registry, parse_history, parse_profile, parse_state
from app.history.keys import FLOW_SEPARATOR, Keys, decode_cursor, encode_cursor
from app.history.members import read_members
from app.history.records import (
    NOT_RECORDED,
    STALE,
    CustomerState,
    FeatureValue,
    FlowMatrix,
    Member,
    MemberPage,
    Migration,
    Outcome,
    Profile,
    Record,
    RecordBatch,
    RedisUnavailable,
    SegmentEvent,
    now_ms,
)
from app.history.values import SCHEMA_SEPARATOR, encode_profiles

RECORDS_PER_CALL = 200
"""Most records per script call: Redis runs a call as one unit, holding other clients for
2 to 5 ms at this size; smaller calls cost more per record."""

WRITE_BYTES = 64 * 1024
"""A pipeline is written in pieces of about this size (one write for a small one)."""

# Refusals that say "not now" rather than "never": the record is spooled and retried.
_TRANSIENT = (
    "OOM", "BUSY", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "LOADING", "MISCONF",
    "NOREPLICAS",
)  # fmt: skip
# redis-py raises these codes as their own classes, with the code cut from the text
# ("command not allowed when used memory > 'maxmemory'" for -OOM): matched by class, or a
# record refused so while Redis was full was taken as refused for good, and lost
_TRANSIENT_CLASSES = (
    OutOfMemoryError, BusyLoadingError, ReadOnlyError, MasterDownError, TryAgainError,
    ClusterDownError,
)  # fmt: skip


@cache
def record_script() -> str:
    """The text of ``record.lua`` (shipped as package data)."""
    return resources.files("app.history").joinpath("record.lua").read_text(encoding="utf-8")


@cache
def forget_script() -> str:
    """The text of ``forget.lua``."""
    return resources.files("app.history").joinpath("forget.lua").read_text(encoding="utf-8")


def create_redis(url: str, config: HistoryConfig) -> Redis:
    """A client for ``url`` with the configured timeouts and no retries (the spool retries)."""
    client: Redis = Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=config.batch_timeout_s,
        socket_connect_timeout=config.timeout_s,
        retry=Retry(NoBackoff(), 0),
        client_name="segments-history",
    )
    return client


def _bulk(value: Any) -> bytes:
    data = value if isinstance(value, bytes) else str(value).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def pack(commands: Sequence[Sequence[Any]]) -> bytes:
    """RESP for many commands (arguments: bytes, str or int), as one buffer."""
    out = []
    for command in commands:
        out.append(b"*%d\r\n" % len(command))
        out.extend(map(_bulk, command))
    return b"".join(out)


def _transient(error: object) -> bool:
    """A refusal that says "not now" (its text starts with one of ``_TRANSIENT``, or redis-py
    raised it as the class of such a code)."""
    return isinstance(error, _TRANSIENT_CLASSES) or str(error).startswith(_TRANSIENT)


def _customer_ids(recs: Sequence[Record]) -> Sequence[str]:
    return recs.customer_ids if isinstance(recs, RecordBatch) else [r.customer_id for r in recs]


SAME_AS_BEFORE = "="  # (app.assignment.service: the expected profile of a chained record)


def _across_calls(
    recs: Sequence[Record], chunk: Sequence[int], ids: Sequence[str], checked: Sequence[str | None]
) -> list[str | None]:
    """``checked`` of the call carrying ``recs[chunk]``, where a record expecting '=' (what
    its customer's checked record before it in the call left) has none before it in this
    call: its customer's previous record went in an earlier call (a batch naming one
    customer more often than a call holds). Such a record expects '@' and that record's id,
    which record.lua applies only if the customer's last applied record is that one, where
    '=' alone was stale: a batch naming one customer 1,001 times with partial features
    failed the rest as 'kept changing' once its redo rounds ran out."""
    out = list(checked)
    every: Sequence[str] | None = None
    before: set[str] = set()
    for n, (i, customer_id) in enumerate(zip(chunk, ids, strict=True)):
        if checked[n] == SAME_AS_BEFORE and customer_id not in before:
            every = _customer_ids(recs) if every is None else every
            j = i - 1  # (the previous record of the customer: in the call before, mostly)
            while j >= 0 and every[j] != customer_id:
                j -= 1
            if j >= 0:
                out[n] = "@" + _record_id(recs, j)
        before.add(customer_id)
    return out


def _record_id(recs: Sequence[Record], i: int) -> str:
    return recs.record_ids[i] if isinstance(recs, RecordBatch) else recs[i].record_id


def _profile_args(
    profiles: Sequence[Mapping[str, FeatureValue] | None],
    checked: Sequence[str | None],
    schemas: dict[tuple[str, ...], int],
) -> list[str]:
    """Each record's profile arguments as RESP text (record.lua): its schema's index in the
    call's table (``0``: no profile), then its values as one argument. A checked record
    (``checked``: the profile it was made from, as stored; empty: none is) adds that profile
    after them, its index ``-(index + 1)``, or ``-1`` with no profile to store. Records that
    share a schema (a batch's rows) are encoded together."""
    out = [_NO_PROFILE] * len(profiles)
    groups: dict[tuple[str, ...], list[int]] = {}
    if isinstance(profiles, ColumnRows):  # one schema: its columns
        if profiles.columns and len(profiles):
            groups[tuple(profiles.columns)] = list(range(len(profiles)))
    else:
        for i, profile in enumerate(profiles):
            if profile:
                groups.setdefault(tuple(profile), []).append(i)
    for order, indices in groups.items():
        names = tuple(sorted(order))
        index = schemas.setdefault(names, len(schemas) + 1)
        rows = profiles if len(indices) == len(profiles) else [profiles[i] for i in indices]
        texts = encode_profiles(rows, names)  # type: ignore[arg-type]
        for i, text in zip(indices, texts, strict=True):
            signed = -index - 1 if checked and checked[i] is not None else index
            size = len(text) if text.isascii() else len(text.encode())
            out[i] = f"{_text_bulk(str(signed))}${size}\r\n{text}\r\n"
    for i, expected in enumerate(checked):
        if expected is not None:
            head = out[i] if profiles[i] else _CHECKED
            out[i] = head + _bulk(expected).decode()
    return out


def _with_profile(profiles: Sequence[Mapping[str, FeatureValue] | None]) -> int:
    """How many of ``profiles`` are a profile (not None, not empty)."""
    if isinstance(profiles, ColumnRows):
        return len(profiles) if profiles.columns else 0
    return sum(1 for p in profiles if p)


_NO_PROFILE = "$1\r\n0\r\n"
_CHECKED = "$2\r\n-1\r\n"
"""The schema index of a checked record with no profile to store (record.lua)."""


def _text_bulk(text: str) -> str:
    """A RESP bulk string as text, for ASCII ``text`` (so its length is its byte length)."""
    return f"${len(text)}\r\n{text}\r\n"


PROFILE_FIELDS = ("p", "u", "0", "1", "2", "3", "4", "5", "6", "7")
"""What assignment by id reads of a customer's hash: the profile's schema and time, and up
to eight chunks of its values (docs/redis-keys.md)."""
_CHUNKS = len(PROFILE_FIELDS) - 2
_HMGET = f"*{2 + len(PROFILE_FIELDS)}\r\n$5\r\nHMGET\r\n"
_PROFILE_READ = "".join(_text_bulk(field) for field in PROFILE_FIELDS)


class Progress:
    """A deadline that every write Redis takes and every reply it sends moves on: a bulk
    exchange under it fails when Redis stops making progress for ``seconds``, not when a
    loaded machine makes the whole exchange slow (``Recorder.record_many(..., progress=)``).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._deadline: asyncio.Timeout | None = None

    def watch(self, deadline: asyncio.Timeout) -> None:
        """Move ``deadline`` on from now on (the exchange's own)."""
        self._deadline = deadline

    def advance(self) -> None:
        if self._deadline is not None:
            self._deadline.reschedule(asyncio.get_running_loop().time() + self.seconds)


async def send_packed(
    client: Redis, commands: Iterable[tuple[bytes, int]], progress: Progress | None = None
) -> list[Any]:
    """Send packed commands as they come (each buffer with how many commands it holds),
    then read their replies (errors as values). The recorder's and the event store's one
    way to send Redis a bulk of commands; ``progress`` is advanced at each write and reply.

    What ``client.pipeline()`` does, without its per-argument encoding and per-reply
    bookkeeping, which cost more than Redis's own work for a recording. Commands are
    written as soon as ``WRITE_BYTES`` of them are packed, so Redis works on a large
    batch while the rest is packed, and a small one (a lane's few records and reads)
    is one write. Any failure part-way leaves the connection's state unknown, so it is
    dropped.
    """
    pool = client.connection_pool
    connection = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        sent, size, buffers = 0, 0, list[bytes]()
        for command, count in commands:
            buffers.append(command)
            sent, size = sent + count, size + len(command)
            if size >= WRITE_BYTES:
                await _write(connection, buffers)
                size, buffers = 0, []
                if progress is not None:
                    progress.advance()
        if buffers:
            await _write(connection, buffers)
        replies: list[Any] = []
        for _ in range(sent):
            try:
                replies.append(await connection.read_response(timeout=math.inf))
            except ResponseError as exc:
                replies.append(exc)
            if progress is not None:
                progress.advance()
    except BaseException:
        await connection.disconnect(nowait=True)
        raise
    finally:
        await pool.release(connection)
    return replies


async def _write(connection: Any, buffers: list[bytes]) -> None:
    """``connection.send_packed_command(buffers)`` without its ``asyncio.wait_for`` (a task
    per call on Python 3.11, a fifth of a lane's client CPU): every exchange is already under
    the deadline of ``Recorder._guard``. A connection not yet open is opened by the public
    call."""
    if connection.is_connected:
        await connection._send_packed_command(buffers)
    else:
        await connection.send_packed_command(buffers, check_health=False)


class Recorder:
    """Records assignments in Redis and serves the history reads.

    Parameters
    ----------
    client
        A ``redis.asyncio.Redis`` with ``decode_responses=True`` (see ``create_redis``).
    config
        Caps, retentions and deadlines.
    """

    def __init__(self, client: Redis, config: HistoryConfig) -> None:
        self.client, self.config = client, config
        self.keys = Keys.from_config(config)
        self._script = client.register_script(record_script())
        self._loaded = False  # is the script known to be in the server's cache?
        self._outcomes: dict[tuple[int, str | None, int], Outcome] = {}
        self._shards: dict[int, tuple[str, bytes, bytes]] = {}
        self._evalsha = _bulk(b"EVALSHA") + _bulk(self._script.sha)
        self._forget = client.register_script(forget_script())
        self._registries: dict[int, Registry] = {}

    @classmethod
    def connect(cls, url: str, config: HistoryConfig) -> Recorder:
        """A recorder with its own client (connects lazily); close it with ``aclose``."""
        return cls(create_redis(url, config), config)

    async def aclose(self) -> None:
        """Close the client and its connection pool."""
        await self.client.aclose()

    async def _guard(
        self, call: Awaitable[Any], timeout: float | None = None, progress: Progress | None = None
    ) -> Any:
        # Any: redis-py types replies as bytes | str whatever decode_responses says.
        try:
            async with asyncio.timeout(timeout or self.config.batch_timeout_s) as deadline:
                if progress is not None:
                    progress.watch(deadline)
                return await call
        except ResponseError as exc:
            if _transient(exc):
                raise RedisUnavailable.of(exc) from exc
            raise
        except (RedisError, OSError, TimeoutError) as exc:
            raise RedisUnavailable.of(exc) from exc

    async def ping(self) -> bool:
        """True when Redis answers within the single-call deadline."""
        try:
            return bool(await self._guard(self.client.ping(), self.config.timeout_s))
        except RedisUnavailable:
            return False

    def _calls(self, recs: Sequence[Record]) -> list[tuple[int, Sequence[int]]]:
        """How to record ``recs``: script calls, each a shard and the indices it carries.

        Records are grouped by shard (a call touches one hash tag), in order within a
        shard, so a customer's records apply in the order given; at most
        ``RECORDS_PER_CALL`` records per call.
        """
        if self.keys.shards == 1:
            n = len(recs)
            return [
                (0, range(s, min(s + RECORDS_PER_CALL, n))) for s in range(0, n, RECORDS_PER_CALL)
            ]
        shards: dict[int, list[int]] = {}
        shard_of = self.keys.shard_of
        for i, customer_id in enumerate(_customer_ids(recs)):
            shards.setdefault(shard_of(customer_id), []).append(i)
        return [
            (shard, indices[start : start + RECORDS_PER_CALL])
            for shard, indices in shards.items()
            for start in range(0, len(indices), RECORDS_PER_CALL)
        ]

    def _pack_call(self, shard: int, recs: Sequence[Record], chunk: Sequence[int]) -> bytes:
        """One ``EVALSHA`` of ``record.lua`` for ``recs[chunk]`` (all of ``shard``), as RESP.

        Built as text, one f-string per record, and encoded once: per-argument encoding
        (``pack``) of 20,000 arguments cost more than Redis's work for the same records. What
        records share (segment and version; flow bucket; a profile's feature names) goes
        once, as a table the records index into. A ``RecordBatch`` is read by column,
        without a Record each.
        """
        keys, config = self.keys, self.config
        profiles: Sequence[Mapping[str, FeatureValue] | None]
        if isinstance(recs, RecordBatch):
            ids, rids = take(recs.customer_ids, chunk), take(recs.record_ids, chunk)
            ats = [recs.assigned_at] * len(ids)
            whats = list(
                zip(take(recs.segment_ids, chunk), [recs.model_version] * len(ids), strict=True)
            )
            profiles = [None] * len(ids) if recs.profiles is None else take(recs.profiles, chunk)
            checked: Sequence[str | None] = (
                () if recs.expected is None else take(recs.expected, chunk)
            )
        else:
            part = [recs[i] for i in chunk]
            ids, rids = [r.customer_id for r in part], [r.record_id for r in part]
            ats = [r.assigned_at for r in part]
            whats = [(r.segment_id, r.model_version) for r in part]
            profiles = [r.profile for r in part]
            checked = [r.expected_profile for r in part]
        if SAME_AS_BEFORE in checked:
            checked = _across_calls(recs, chunk, ids, checked)
        # the shared tables: each distinct flow bucket, (segment, version) and feature names
        # once; a record refers to them by index (as RESP text, ready to join)
        bucket_of = {at: keys.bucket_start(at) for at in dict.fromkeys(ats)}
        buckets = list(dict.fromkeys(bucket_of.values()))
        flow_of = {b: _text_bulk(str(i)) for i, b in enumerate(buckets, 1)}
        when = {at: _text_bulk(str(at)) + flow_of[b] for at, b in bucket_of.items()}
        assignments = list(dict.fromkeys(whats))
        index_of = {what: _text_bulk(str(i)) for i, what in enumerate(assignments, 1)}
        schemas: dict[tuple[str, ...], int] = {}
        profile_text = _profile_args(profiles, checked, schemas)
        profile_values = _with_profile(profiles) + sum(e is not None for e in checked)
        # a key's or an id's length in bytes (the same as in characters for ASCII)
        if all(map(str.isascii, ids)):
            sizes = list(map(len, ids))
        else:
            sizes = [len(c.encode()) for c in ids]
        head, fixed_keys, constants = self._shard_parts(shard)
        size = len(head.encode())
        key_text = "".join(
            [f"${size + n}\r\n{head}{c}\r\n" for c, n in zip(ids, sizes, strict=True)]
        )
        arg_text = "".join(
            [
                f"$32\r\n{r}\r\n${n}\r\n{c}\r\n{w}{a}{v}"
                for r, c, n, w, a, v in zip(
                    rids,
                    ids,
                    sizes,
                    map(when.__getitem__, ats),
                    map(index_of.__getitem__, whats),
                    profile_text,
                    strict=True,
                )
            ]
        )
        flows = [keys.flow(shard, b * 1000) for b in buckets]
        expiries = [(b + keys.bucket_s) * 1000 + config.flow_ttl_ms for b in buckets]
        table = [
            len(flows),
            *expiries,
            len(assignments),
            *(value for what in assignments for value in what),
            len(schemas),
            *(item for names in schemas for item in (SCHEMA_SEPARATOR.join(names), len(names))),
        ]
        count = 6 + len(flows) + 3 + len(table) + 7 * len(ids) + profile_values
        return b"".join(
            [
                b"*%d\r\n" % count,
                self._evalsha,
                _bulk(3 + len(flows) + len(ids)),
                fixed_keys,
                *map(_bulk, flows),
                key_text.encode(),
                constants,
                *map(_bulk, table),
                arg_text.encode(),
            ]
        )

    def _shard_parts(self, shard: int) -> tuple[str, bytes, bytes]:
        """What every call for ``shard`` starts with: the customer key head, the stream,
        registry and forgotten keys (packed) and the first three arguments (packed), made
        once per shard."""
        parts = self._shards.get(shard)
        if parts is None:
            keys, config = self.keys, self.config
            fixed = [keys.events(shard), keys.registry(shard), keys.forgotten(shard)]
            constants = [keys.members_prefix(shard), config.history_cap, config.stream_maxlen]
            parts = (
                keys.customer_head(shard),
                b"".join(map(_bulk, fixed)),
                b"".join(map(_bulk, constants)),
            )
            self._shards[shard] = parts
        return parts

    async def record(self, rec: Record) -> Outcome:
        """Record one assignment in one round trip (a call of one record).

        Returns
        -------
        Outcome
            With ``recorded=True``; a permanent refusal gives ``recorded=False`` and ``error``.

        Raises
        ------
        RedisUnavailable
            Redis did not confirm in ``timeout_ms``; the record may or may not be applied
            (replaying it later is safe).
        """
        return (await self.record_many([rec], self.config.timeout_s))[0]

    async def record_many(
        self, recs: Sequence[Record], timeout: float | None = None, progress: Progress | None = None
    ) -> list[Outcome]:
        """Record many in one pipeline of script calls, in order (a customer's later record
        sees its earlier one).

        Raises
        ------
        RedisUnavailable
            Redis did not confirm the whole batch in ``timeout`` seconds (by default
            ``batch_timeout_ms``; with ``progress``, in its seconds since it last took a
            write or answered a call), or refused a record for a transient reason (out of
            memory, busy, read-only): the records may or may not be applied; replaying them
            is safe.
        """
        if not recs:
            return []
        return (await self.exchange(recs, (), timeout, progress))[0]

    async def exchange(
        self,
        recs: Sequence[Record],
        customer_ids: Sequence[str],
        timeout: float | None = None,
        progress: Progress | None = None,
    ) -> tuple[list[Outcome], list[Profile | ResponseError | None]]:
        """Record ``recs`` (as ``record_many``), then read the profiles of ``customer_ids``,
        in ONE pipeline: the coalescing lanes of ``HistoryService`` send the records and the
        by-id reads of concurrent requests together. A read sees every record before it.

        Returns the outcomes and, per id, its profile (None: unknown, or recorded without
        features) or the error Redis answered its read with (the other reads still count).
        """
        calls = self._calls(recs) if recs else []
        reads = self._pack_reads(customer_ids)
        replies = await self._guard(
            self._run_scripts(recs, calls, not self._loaded and bool(calls), reads, progress),
            timeout,
            progress,
        )
        outcomes: list[Outcome] = [NOT_RECORDED] * len(recs)
        for reply, (_, indices) in zip(replies, calls, strict=False):
            if isinstance(reply, ResponseError) and not _transient(reply):
                refused = Outcome(None, changed=False, recorded=False, error=str(reply))
                for i in indices:
                    outcomes[i] = refused
                continue
            if isinstance(reply, Exception):
                raise RedisUnavailable.of(reply) from reply
            for i, j in zip(indices, range(0, len(reply), 3), strict=True):
                outcomes[i] = self._outcome(reply[j], reply[j + 1], reply[j + 2])
        rows = replies[len(calls) :]
        return outcomes, await self._parse_profiles(customer_ids, rows, timeout)

    def _outcome(self, changed: int, previous: str | None, duplicate: int) -> Outcome:
        """The outcome of one record's reply (outcomes are immutable and few: shared)."""
        reply = (changed, previous, duplicate)
        outcome = self._outcomes.get(reply)
        if outcome is not None:
            return outcome
        if changed < 0:  # the script caught an error on this record; previous is its text
            error = str(previous)
            if _transient(error):
                message = f"Redis unavailable: {error}"
                raise RedisUnavailable(message, "Redis refused the write", refused=True)
            return Outcome(None, changed=False, recorded=False, error=error)
        if duplicate == 2:  # a checked record whose profile had changed: nothing applied
            outcome = STALE
        else:
            outcome = Outcome(previous or None, bool(changed), True, duplicate=bool(duplicate))
        if len(self._outcomes) < 10_000:  # segments x 3 in practice; bounded all the same
            self._outcomes[reply] = outcome
        return outcome

    async def _run_scripts(
        self,
        recs: Sequence[Record],
        calls: list[tuple[int, Sequence[int]]],
        load: bool,
        reads: tuple[bytes, int] = (b"", 0),
        progress: Progress | None = None,
    ) -> list[Any]:
        """Make the script ``calls`` for ``recs`` as one pipeline, then the packed ``reads``
        (RESP, how many commands), and return their replies.

        Loading the script in the same pipeline (a no-op when loaded) rules out NOSCRIPT
        without the extra SCRIPT EXISTS round trip redis-py's pipelined scripts make. It is
        sent with the first pipeline only, and again after a NOSCRIPT (a restarted or
        flushed server): the script is idempotent, so a rerun counts nothing twice.
        (A method, not a closure calling itself: that would be a reference cycle holding
        every pipeline's arguments until the cyclic GC ran, which showed as a p99 tail.)
        """
        commands: Iterable[tuple[bytes, int]] = (
            (self._pack_call(shard, recs, chunk), 1) for shard, chunk in calls
        )
        if load:
            script = pack([[b"SCRIPT", b"LOAD", self._script.script]])
            commands = itertools.chain([(script, 1)], commands)
        if reads[1]:
            commands = itertools.chain(commands, [reads])
        replies = await send_packed(self.client, commands, progress)
        if load:
            loaded = replies.pop(0)
            if isinstance(loaded, Exception):
                raise RedisUnavailable.of(loaded) from loaded
            self._loaded = True
        elif any(isinstance(r, NoScriptError) for r in replies):
            self._loaded = False
            return await self._run_scripts(recs, calls, True, reads, progress)
        return replies

    async def _customers(
        self, customer_ids: Sequence[str], timeout: float | None = None
    ) -> list[dict[str, str]]:
        """The hashes of customers (empty for unknown ones) in one round trip, with the
        registry entries they refer to cached."""
        async with self.client.pipeline(transaction=False) as pipe:
            for customer_id in customer_ids:
                pipe.hgetall(self.keys.customer(customer_id))
            hashes: list[dict[str, str]] = await self._guard(pipe.execute(), timeout)
        await self._know_registries(customer_ids, hashes, timeout)
        return hashes

    def _pack_reads(self, customer_ids: Sequence[str]) -> tuple[bytes, int]:
        """One ``HMGET`` of ``PROFILE_FIELDS`` per customer, as one RESP buffer (and its
        count): a by-id read costs a few string joins, not a redis-py command."""
        if not customer_ids:
            return b"", 0
        key = self.keys.customer
        keys = [key(c) for c in customer_ids]
        sizes = map(len, keys) if all(map(str.isascii, keys)) else (len(k.encode()) for k in keys)
        text = "".join(
            [f"{_HMGET}${n}\r\n{k}\r\n{_PROFILE_READ}" for k, n in zip(keys, sizes, strict=True)]
        )
        return text.encode(), len(keys)

    async def _parse_profiles(
        self, customer_ids: Sequence[str], rows: Sequence[Any], timeout: float | None
    ) -> list[Profile | ResponseError | None]:
        """The profiles in the ``HMGET`` replies ``rows`` (``_pack_reads``). A profile of more
        chunks than ``PROFILE_FIELDS`` holds (over 512 bytes) is read whole; the registry
        entries the profiles refer to are cached first."""
        found: list[dict[str, str] | ResponseError] = []
        for row in rows:
            if isinstance(row, ResponseError) and _transient(row):
                raise RedisUnavailable.of(row)
            if isinstance(row, ResponseError):
                found.append(row)
                continue
            found.append({k: v for k, v in zip(PROFILE_FIELDS, row, strict=True) if v is not None})
        for i, fields in enumerate(found):
            if isinstance(fields, dict) and int(fields.get("p", "0:0").partition(":")[2]) > _CHUNKS:
                found[i] = (await self._customers([customer_ids[i]], timeout))[0]
        hashes = [{} if isinstance(f, ResponseError) else f for f in found]
        await self._know_registries(customer_ids, hashes, timeout)
        shard_of = self.keys.shard_of
        out: list[Profile | ResponseError | None] = []
        for c, fields in zip(customer_ids, found, strict=True):
            if isinstance(fields, dict):
                out.append(parse_profile(fields, self._registry(shard_of(c))) if fields else None)
            else:
                out.append(fields)
        return out

    async def _know_registries(
        self,
        customer_ids: Sequence[str],
        hashes: Sequence[Mapping[str, str]],
        timeout: float | None,
    ) -> None:
        """Cache the registry entries (versions, profile schemas) the hashes refer to."""
        stale = {
            self.keys.shard_of(c)
            for c, fields in zip(customer_ids, hashes, strict=True)
            if fields and not self._registry(self.keys.shard_of(c)).knows(fields)
        }
        if stale:
            async with self.client.pipeline(transaction=False) as pipe:
                for shard in stale:
                    pipe.hgetall(self.keys.registry(shard))
                raw = await self._guard(pipe.execute(), timeout)
            for shard, registry in zip(stale, raw, strict=True):
                self._registry(shard).update(registry)

    def _registry(self, shard: int) -> Registry:
        registry = self._registries.get(shard)
        if registry is None:
            registry = self._registries[shard] = Registry()
        return registry

    async def current(self, customer_id: str) -> CustomerState | None:
        """The customer's current segment (with the profile), or None if never recorded."""
        fields = (await self._customers([customer_id]))[0]
        if "s" not in fields:
            return None
        return parse_state(customer_id, fields, self._registry(self.keys.shard_of(customer_id)))

    async def profiles(
        self, customer_ids: Sequence[str], timeout: float | None = None
    ) -> list[Profile | None]:
        """The customers' stored profiles (None: unknown customer or no profile), in one
        round trip under ``timeout``, by default the single-call deadline (one id) or the
        batch deadline."""
        if timeout is None and len(customer_ids) == 1:
            timeout = self.config.timeout_s
        _, found = await self.exchange((), customer_ids, timeout)
        for profile in found:
            if isinstance(profile, ResponseError):
                raise profile
        return found  # type: ignore[return-value]

    async def history(self, customer_id: str, limit: int = 100) -> list[Migration]:
        """The customer's latest ``limit`` migrations, newest first (within the history TTL)."""
        fields = (await self._customers([customer_id]))[0]
        registry = self._registry(self.keys.shard_of(customer_id))
        oldest = now_ms() - self.config.history_ttl_ms
        return parse_history(fields, registry, max(limit, 1), oldest)

    async def forget(self, customer_id: str, at_ms: int | None = None) -> bool:
        """Remove the customer's hash and membership; records of the customer made up to
        now (``at_ms``) are ignored from now on (``forget_ttl_ms``). False: was unknown."""
        keys, shard = self.keys, self.keys.shard_of(customer_id)
        at = now_ms() if at_ms is None else at_ms
        args: list[str | int] = [
            customer_id,
            keys.members_prefix(shard),
            at,
            at - self.config.forget_ttl_ms,
            self.config.stream_maxlen,
        ]
        found = await self._guard(
            self._forget(
                keys=[
                    keys.customer(customer_id),
                    keys.forgotten(shard),
                    keys.events(shard),
                    keys.registry(shard),
                    keys.behaviour(customer_id),
                ],
                args=args,
            )
        )
        return bool(found)

    async def members(
        self, segment_id: str, cursor: str | None = None, limit: int = 100
    ) -> MemberPage:
        """One page of the segment's current members, in join order.

        The cursor holds the last join number seen in each shard, so a walk returns every
        customer who stays in the segment exactly once; customers who join during the walk
        appear at its end.

        Raises
        ------
        ValueError
            ``cursor`` is not a cursor this method returned, or ``limit`` < 1.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        shards = self.keys.shards
        positions = [0] * shards if cursor is None else decode_cursor(cursor, shards)
        pages = await read_members(self, segment_id, positions, limit + 1)
        # each shard's page is in join order; interleave them by join time
        merged = list(heapq.merge(*pages, key=lambda e: (e[2], e[3])))
        for shard, n, _, _ in merged[:limit]:
            positions[shard] = max(positions[shard], n)
        members = [Member(c, t) for _, _, t, c in merged[:limit]]
        more = len(merged) > limit
        return MemberPage(members, encode_cursor(positions) if more else None)

    async def member_count(self, segment_id: str) -> int:
        """How many customers are currently in the segment."""
        async with self.client.pipeline(transaction=False) as pipe:
            for shard in range(self.keys.shards):
                pipe.hget(self.keys.members(shard, segment_id), "c")
            counts: list[str | None] = await self._guard(pipe.execute())
        return sum(int(c or 0) for c in counts)

    async def flows(self, since: int, until: int) -> FlowMatrix:
        """Migration counts between ``since`` and ``until`` (epoch ms), with totals per segment.

        The window is widened to whole buckets and clipped to the flow retention (a window
        wholly older than that is empty: it starts where it ends).
        """
        step = self.keys.bucket_s
        oldest = self.keys.bucket_start(now_ms() - self.config.flow_ttl_ms) - step
        last = self.keys.bucket_start(max(until - 1, since))
        first = min(max(self.keys.bucket_start(since), oldest), last + step)
        starts = list(range(first, last + 1, step))
        async with self.client.pipeline(transaction=False) as pipe:
            for shard in range(self.keys.shards):
                for start in starts:
                    pipe.hgetall(self.keys.flow(shard, start * 1000))
            buckets: list[dict[str, str]] = await self._guard(pipe.execute())
        counts: dict[tuple[str | None, str], int] = {}
        for bucket in buckets:
            for field, value in bucket.items():
                origin, _, target = field.rpartition(FLOW_SEPARATOR)
                pair = (origin or None, target)
                counts[pair] = counts.get(pair, 0) + int(value)
        return FlowMatrix.from_counts(first * 1000, (last + step) * 1000, counts)

    async def events(self, after: str | None = None, count: int = 100) -> list[SegmentEvent]:
        """Up to ``count`` segment-change events after stream id ``after``, oldest first.

        For browsing and tests; a downstream tool should use a consumer group (see the doc).
        """
        start = "-" if after is None else "(" + after
        streams = self.keys.all_events()
        async with self.client.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xrange(stream, start, "+", count)
            ranges: list[list[tuple[str, dict[str, str]]]] = await self._guard(pipe.execute())
        events = [
            SegmentEvent.parse(stream, entry_id, fields)
            for stream, entries in zip(streams, ranges, strict=True)
            for entry_id, fields in entries
        ]
        events.sort(key=lambda e: tuple(int(p) for p in e.id.split("-")))
        return events[:count]
