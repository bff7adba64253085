"""The values the history feature passes around: records, outcomes, and what reads return.

SegmentsError
└── RedisUnavailable    Redis did not answer in time (or at all); nothing is known to be
                        written, and recording falls back to the spool
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias, overload

import numpy as np
from redis.exceptions import (
    BusyLoadingError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.errors import SegmentsError
from app.history.keys import FLOW_SEPARATOR

_RECORD_ID = re.compile(r"[0-9a-f]{32}")
_lock = threading.Lock()
_last = [0, 0]  # (ms, counter) of the last id made by this process
_MS_MASK = (1 << 48) - 1
_RAND_BITS, _VARIANT_BIT = (1 << 62) - 1, 1 << 63
_RAND_MASK, _VARIANT = np.uint64(_RAND_BITS), np.uint64(_VARIANT_BIT)
_COUNTERS = [f"{i:03x}" for i in range(0x1000)]


FeatureValue: TypeAlias = float | int | str | bool | None
"""A feature's value as the service saw it (validated: finite numbers, short strings)."""


class RedisUnavailable(SegmentsError):
    """Redis was unreachable, too slow or refused the write for a transient reason.

    Its text is for the operator (the service's log, the command line): the client library's
    own words, which may name Redis's host and port. ``reason`` is for an answer to an API
    client: what went wrong, without an address."""

    def __init__(self, message: str, reason: str | None = None, refused: bool = False) -> None:
        super().__init__(message)
        self.reason = message if reason is None else reason  # give one if the text may not do
        self.refused = refused  # Redis answered, refusing the write for now (-OOM, -READONLY)

    @classmethod
    def of(cls, exc: BaseException) -> RedisUnavailable:
        """From the client library's (or the socket's) exception."""
        message = f"Redis unavailable: {str(exc) or type(exc).__name__}"
        refused = isinstance(exc, ResponseError) and not isinstance(exc, NoScriptError)
        return cls(message, public_reason(exc), refused)


def public_reason(exc: BaseException) -> str:
    """What a client library's (or socket's) exception says went wrong, without an address."""
    if isinstance(exc, TimeoutError | RedisTimeoutError):
        return "Redis did not answer in time"
    if isinstance(exc, BusyLoadingError):
        return "Redis is loading its data"
    if isinstance(exc, OutOfMemoryError):
        return "Redis is out of memory (maxmemory reached): it refuses writes"
    if isinstance(exc, ReadOnlyError):
        return "Redis is read-only (a replica): it refuses writes"
    if isinstance(exc, RedisConnectionError | OSError):
        if "refused" in str(exc).lower():
            return "Redis refused the connection"
        return "the connection to Redis failed"
    return f"Redis is unavailable ({type(exc).__name__})"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_record_id(at_ms: int | None = None) -> str:
    """A UUIDv7 as 32 lowercase hex digits, strictly increasing within this process.

    Ids sort by time (then by a counter within one millisecond), which is how the recording
    script tells a replayed or stale record from a new one.

    >>> a, b = new_record_id(), new_record_id()
    >>> a < b and len(a) == 32
    True
    """
    with _lock:  # (one id per request: this is new_record_ids(1) without its batch set-up)
        ms = now_ms() if at_ms is None else at_ms
        if ms <= _last[0]:
            ms, counter = _last[0], _last[1] + 1
            if counter > 0xFFF:
                ms, counter = ms + 1, 0
        else:
            counter = int.from_bytes(os.urandom(2)) & 0x7FF  # room to count up within the ms
        _last[0], _last[1] = ms, counter
    rand = int.from_bytes(os.urandom(8)) & _RAND_BITS | _VARIANT_BIT
    return f"{(ms & _MS_MASK) << 80 | 0x7 << 76 | counter << 64 | rand:032x}"


def new_record_ids(n: int, at_ms: int | None = None) -> list[str]:
    """``n`` ids at once: what ``n`` calls of ``new_record_id`` give, in order, for a batch.

    Within one millisecond a 12-bit counter orders the ids (starting at a random value
    below 0x800); past 0xFFF the ids move on to the next millisecond, so they stay unique
    and increasing however many are asked for.

    >>> ids = new_record_ids(5000, at_ms=1_700_000_000_000)
    >>> ids == sorted(ids) and len(set(ids)) == 5000
    True
    """
    with _lock:
        ms = now_ms() if at_ms is None else at_ms
        if ms <= _last[0]:
            ms, first = _last[0], _last[1] + 1
        else:
            first = int.from_bytes(os.urandom(2)) & 0x7FF  # room to count up within the ms
        # the i-th id has count first + i: its millisecond is ms + count // 4096 (the counter
        # rolls over into the next millisecond), its counter count % 4096
        last = first + n - 1
        _last[0], _last[1] = ms + (last >> 12), last & 0xFFF
    heads = [f"{(ms + k) & _MS_MASK:012x}7" for k in range((last >> 12) + 1)]
    # the low 64 bits: the variant (0b10) and 62 random bits, as 16 hex digits each
    bits = np.frombuffer(os.urandom(8 * n), dtype=">u8") & _RAND_MASK | _VARIANT
    tails = bits.astype(">u8").tobytes().hex(" ", 8).split(" ")
    return [
        heads[count >> 12] + _COUNTERS[count & 0xFFF] + tail
        for count, tail in zip(range(first, last + 1), tails, strict=True)
    ]


_RUN_ID = re.compile(r"[0-9a-f]{20}")
_ROW_BITS, _RUN_RAND_BITS = 42, 32
_LOW_ROW_MASK = (1 << (62 - _RUN_RAND_BITS)) - 1


def new_run_id(at_ms: int | None = None) -> str:
    """The id of a recording run: its start time (48-bit epoch ms) and 32 random bits, in hex.

    >>> run = new_run_id(at_ms=1_700_000_000_000)
    >>> run[:12], len(run)
    ('018bcfe56800', 20)
    """
    ms = now_ms() if at_ms is None else at_ms
    return f"{ms & _MS_MASK:012x}{int.from_bytes(os.urandom(4)):08x}"


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is one ``new_run_id`` could make; ``ValueError`` otherwise."""
    if not _RUN_ID.fullmatch(run_id):
        raise ValueError(f"a run id is 20 lowercase hex digits (as printed by a run): {run_id!r}")
    return run_id


def run_started_ms(run_id: str) -> int:
    """The epoch ms a run id encodes (the time of every record of the run)."""
    return int(check_run_id(run_id)[:12], 16)


def run_record_ids(run_id: str, start_row: int, n: int) -> list[str]:
    """Record ids of rows ``start_row .. start_row + n - 1`` of run ``run_id``.

    UUIDv7 layout: the run's start time in the 48 time bits; in the 74 other bits, the row
    number (42 bits, high) then the run's 32 random bits, so the ids increase strictly with
    the row and are the same whenever the same run records the same row: a replayed or
    resumed run is counted once by the recording script.

    >>> run = "018bcfe56800" + "0000abcd"
    >>> ids = run_record_ids(run, 0, 3)
    >>> ids[0]
    '018bcfe568007000800000000000abcd'
    >>> ids == sorted(ids) and len(set(ids)) == 3 and run_record_ids(run, 1, 2) == ids[1:]
    True
    """
    ms = run_started_ms(run_id)
    if start_row < 0 or start_row + n > 1 << _ROW_BITS:
        raise ValueError(f"rows {start_row}..{start_row + n} are out of range for a run")
    rows = np.arange(start_row, start_row + n, dtype=np.uint64)
    low_bits = 62 - _RUN_RAND_BITS  # the row's bits in rand_b; those above go into rand_a
    words = np.empty((n, 2), dtype=">u8")
    words[:, 0] = np.uint64(ms << 16 | 0x7 << 12) | rows >> np.uint64(low_bits)
    tail = np.uint64(int(run_id[12:], 16) | _VARIANT_BIT)
    words[:, 1] = (rows & np.uint64(_LOW_ROW_MASK)) << np.uint64(_RUN_RAND_BITS) | tail
    text = words.tobytes().hex()  # 32 hex digits per row, in order
    return [text[i : i + 32] for i in range(0, 32 * n, 32)]


def _check_ids(customer_ids: Iterable[str], segment_ids: Iterable[str]) -> None:
    """What a record's customer and segment ids must be; ``ValueError`` otherwise."""
    if not all(customer_ids):
        raise ValueError("customer_id must not be empty")
    for segment in segment_ids:
        if not segment or FLOW_SEPARATOR in segment:
            raise ValueError(f"invalid segment id {segment!r}")


@dataclass(frozen=True, slots=True)
class Record:
    """One assignment of one customer, as recorded (and spooled, and replayed).

    Parameters
    ----------
    customer_id, segment_id, model_version
        Who, into which segment, by which model version. Segment ids must not contain ``>``.
    assigned_at
        Epoch milliseconds of the assignment.
    record_id
        Time-ordered unique id (``new_record_id``); replaying a record with an id not newer
        than the customer's last applied one changes nothing.
    segment_name
        The segment's human name at the time, if known (not stored: names are resolved
        from the serving version when read).
    profile
        The features the assignment was made from, stored as the customer's profile
        (``None``: keep the stored profile as it is).
    expected_profile
        For an assignment by id made from a cached profile (with no ``profile``): that
        profile as stored (``Profile.stored``). The record is applied only if the customer's
        hash still holds exactly it; otherwise nothing changes and the outcome is ``stale``.
        Also a batch's item completed from the stored profile (with its ``profile``), or
        ``=``: what the customer's previous checked record in the same script call left
        (``record.lua``). Such a record is never spooled (it goes unchecked, or not at all).
    """

    customer_id: str
    segment_id: str
    model_version: str
    assigned_at: int
    record_id: str
    segment_name: str | None = None
    # never in its repr: a record is logged when Redis refuses it, and features are not logged
    profile: Mapping[str, FeatureValue] | None = field(default=None, repr=False)
    expected_profile: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _check_ids((self.customer_id,), (self.segment_id,))
        if not _RECORD_ID.fullmatch(self.record_id):
            raise ValueError(f"record_id must be 32 lowercase hex digits: {self.record_id!r}")

    @classmethod
    def create(
        cls,
        customer_id: str,
        segment_id: str,
        model_version: str,
        segment_name: str | None = None,
        assigned_at: int | None = None,
        profile: Mapping[str, FeatureValue] | None = None,
        expected_profile: str | None = None,
    ) -> Record:
        """A new record stamped now (or at ``assigned_at``) with a fresh record id."""
        at = now_ms() if assigned_at is None else assigned_at
        rid = new_record_id(at)
        return cls(
            customer_id, segment_id, model_version, at, rid, segment_name, profile, expected_profile
        )


class RecordBatch(Sequence[Record]):
    """Records of one batch, made together and kept as columns.

    What ``Record.create`` gives for each customer (one time stamp for all, ids made
    together), without an object per record: the recorder packs the columns directly. It is
    still a sequence of ``Record`` (made on access), for the spool when Redis is away.
    ``profiles`` is the column of the customers' features (rows of the batch), or None.
    ``expected`` is the column of the profiles the records are checked against
    (``Record.expected_profile``; None for an unchecked row), or None when no row is; ``=``
    stands for what the customer's previous checked row left (``record.lua``).

    >>> batch = RecordBatch(["C1", "C2"], ["seg-001", "seg-002"], ["Loyal", None], "v1")
    >>> [(r.customer_id, r.segment_id, r.segment_name) for r in batch]
    [('C1', 'seg-001', 'Loyal'), ('C2', 'seg-002', None)]
    """

    __slots__ = (
        "assigned_at",
        "customer_ids",
        "expected",
        "model_version",
        "profiles",
        "record_ids",
        "segment_ids",
        "segment_names",
    )

    def __init__(
        self,
        customer_ids: Sequence[str],
        segment_ids: Sequence[str],
        segment_names: Sequence[str | None],
        model_version: str,
        assigned_at: int | None = None,
        profiles: Sequence[Mapping[str, FeatureValue] | None] | None = None,
        record_ids: Sequence[str] | None = None,
        expected: Sequence[str | None] | None = None,
    ) -> None:
        if not len(customer_ids) == len(segment_ids) == len(segment_names):
            raise ValueError("customer ids, segment ids and names differ in length")
        if profiles is not None and len(profiles) != len(customer_ids):
            raise ValueError("customer ids and profiles differ in length")
        if expected is not None and len(expected) != len(customer_ids):
            raise ValueError("customer ids and expected profiles differ in length")
        self.expected = expected
        if record_ids is not None and len(record_ids) != len(customer_ids):
            raise ValueError("record ids and customer ids differ in length")
        self.profiles = profiles
        _check_ids(customer_ids, set(segment_ids))  # each distinct segment once
        self.customer_ids, self.segment_ids = customer_ids, segment_ids
        self.segment_names, self.model_version = segment_names, model_version
        self.assigned_at = now_ms() if assigned_at is None else assigned_at
        # given ids (a recording run's, derived from its rows) make a replay count once
        self.record_ids = (
            new_record_ids(len(customer_ids), self.assigned_at)
            if record_ids is None
            else record_ids
        )

    def __len__(self) -> int:
        return len(self.customer_ids)

    def part(self, start: int, stop: int) -> RecordBatch:
        """Rows ``start:stop`` as a batch of their own (same time, same record ids)."""
        return RecordBatch(
            self.customer_ids[start:stop],
            self.segment_ids[start:stop],
            self.segment_names[start:stop],
            self.model_version,
            self.assigned_at,
            None if self.profiles is None else self.profiles[start:stop],
            self.record_ids[start:stop],
            None if self.expected is None else self.expected[start:stop],
        )

    def unchecked(self) -> RecordBatch:
        """The same rows (same time, same record ids) with no row checked: what the spool
        keeps (nothing confirmed the profiles the checked rows were made from)."""
        if self.expected is None:
            return self
        return RecordBatch(
            self.customer_ids,
            self.segment_ids,
            self.segment_names,
            self.model_version,
            self.assigned_at,
            self.profiles,
            self.record_ids,
        )

    @overload
    def __getitem__(self, index: int) -> Record: ...
    @overload
    def __getitem__(self, index: slice) -> list[Record]: ...
    def __getitem__(self, index: int | slice) -> Record | list[Record]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return Record(
            self.customer_ids[index],
            self.segment_ids[index],
            self.model_version,
            self.assigned_at,
            self.record_ids[index],
            self.segment_names[index],
            None if self.profiles is None else self.profiles[index],
            None if self.expected is None else self.expected[index],
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What recording one record did.

    ``previous_segment`` is the segment before this record (equal to the new one when
    unchanged; ``None`` for a first assignment, and unknown — ``None`` — when not recorded).
    ``duplicate`` marks a record already applied or older than the last applied one: nothing
    changed. ``recorded`` is False when the record went to the spool (or was dropped), and
    ``error`` says why a record was rejected for good. ``stale`` marks a checked record
    (``Record.expected_profile``) whose profile had changed: nothing was applied.
    """

    previous_segment: str | None
    changed: bool
    recorded: bool
    duplicate: bool = False
    error: str | None = None
    stale: bool = False


NOT_RECORDED = Outcome(None, changed=False, recorded=False)
STALE = Outcome(None, changed=False, recorded=False, stale=True)


@dataclass(frozen=True, slots=True)
class CustomerState:
    """A customer's current segment: since when, last assigned when and by which version."""

    customer_id: str
    segment_id: str
    segment_name: str | None
    model_version: str
    assigned_at: int
    since: int
    migrations: int
    profile: Profile | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    """The features the service last saw for a customer, and when (epoch ms).

    ``stored`` is the profile as Redis holds it, ``p`` and the chunk fields joined by
    ``\\x1e`` (empty when not read from Redis): what a record made from this profile
    expects to find (``Record.expected_profile``)."""

    features: dict[str, FeatureValue]
    updated_at: int
    stored: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Migration:
    """One entry of a customer's history (``from_segment`` is None for the first one).

    Names are not stored: they are resolved by the reader (None when unknown to it)."""

    from_segment: str | None
    to_segment: str
    model_version: str
    at: int
    seq: int
    from_name: str | None = None
    to_name: str | None = None


@dataclass(frozen=True, slots=True)
class Member:
    customer_id: str
    joined_at: int


@dataclass(frozen=True, slots=True)
class MemberPage:
    """One page of a segment's members in join order; ``next_cursor`` None on the last."""

    members: list[Member]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Flow:
    from_segment: str | None  # None: customers assigned for the first time
    to_segment: str
    count: int


@dataclass(frozen=True, slots=True)
class SegmentFlowTotals:
    """Per segment over a window: arrivals from other segments, first assignments, leavers."""

    inflow: int = 0
    new: int = 0
    outflow: int = 0

    @property
    def net(self) -> int:
        return self.inflow + self.new - self.outflow


@dataclass(frozen=True, slots=True)
class FlowMatrix:
    """Migration counts over ``[since, until)`` epoch ms, widened to whole buckets."""

    since: int
    until: int
    flows: list[Flow]
    totals: dict[str, SegmentFlowTotals] = field(default_factory=dict)

    @classmethod
    def from_counts(
        cls, since: int, until: int, counts: dict[tuple[str | None, str], int]
    ) -> FlowMatrix:
        """The matrix of ``{(from, to): count}``, flows sorted by count, with totals."""
        inflow: dict[str, int] = {}
        new: dict[str, int] = {}
        outflow: dict[str, int] = {}
        for (source, target), n in counts.items():
            if source is None:
                new[target] = new.get(target, 0) + n
            else:
                inflow[target] = inflow.get(target, 0) + n
                outflow[source] = outflow.get(source, 0) + n
        totals = {
            seg: SegmentFlowTotals(inflow.get(seg, 0), new.get(seg, 0), outflow.get(seg, 0))
            for seg in sorted(inflow.keys() | new.keys() | outflow.keys())
        }
        flows = [Flow(s, t, n) for (s, t), n in counts.items()]
        flows.sort(key=lambda f: (-f.count, f.from_segment or "", f.to_segment))
        return cls(since, until, flows, totals)

    def matrix(self, new_label: str = "") -> dict[str, dict[str, int]]:
        """``{from: {to: count}}``; first assignments are under ``new_label``."""
        out: dict[str, dict[str, int]] = {}
        for flow in self.flows:
            row = out.setdefault(flow.from_segment or new_label, {})
            row[flow.to_segment] = row.get(flow.to_segment, 0) + flow.count
        return out


@dataclass(frozen=True, slots=True)
class SegmentEvent:
    """One segment-change event of the stream (schema in ``docs/redis-keys.md``)."""

    id: str
    stream: str
    customer_id: str
    from_segment: str | None
    from_name: str | None
    to_segment: str | None  # None: the customer was forgotten (their last entry)
    to_name: str | None
    model_version: str
    assigned_at: int
    record_id: str
    seq: int

    @classmethod
    def parse(cls, stream: str, entry_id: str, fields: dict[str, str]) -> SegmentEvent:
        """Build an event from a stream entry (``XRANGE``/``XREADGROUP`` with decoded strings)."""
        return cls(
            id=entry_id,
            stream=stream,
            customer_id=fields["customer_id"],
            from_segment=fields.get("from") or None,
            from_name=fields.get("from_name") or None,
            to_segment=fields["to"] or None,
            to_name=fields.get("to_name") or None,
            model_version=fields["model_version"],
            assigned_at=int(fields["assigned_at"]),
            record_id=fields["record_id"],
            seq=int(fields["seq"]),
        )
