"""Customers' current segments and histories, segment members, and the migration matrix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError

from app.assignment.customer_ids import CUSTOMER_ID_PATTERN, id_problem
from app.assignment.profiles import stored_twin
from app.deps import HolderDep, RecorderDep, iso_text
from app.history.keys import CURSOR_PATTERN
from app.history.path_ids import NOT_UTF8, unescape_id
from app.history.records import RedisUnavailable
from app.history.schemas import (
    CustomerModelOut,
    CustomerOut,
    FlowOut,
    HistoryOut,
    MemberOut,
    MemberPageOut,
    MigrationMatrix,
    MigrationOut,
    SegmentTotals,
)
from app.history.service import HistoryService
from app.models import Models
from app.problems import Problem, invalid, problem_responses, redis_unavailable
from app.security import scoped
from app.segments.endpoints import unknown_segment

router = APIRouter(prefix="/v1", tags=["history"])
ERRORS = problem_responses(404, 422, 503)
MAX_WINDOW_READS = 20_000  # flow hashes one /v1/migrations may read (buckets x shards)
MAX_PATH_ID = 1024  # the longest id looked up (SEGMENTS_MAX_ID_LENGTH can reach it)


def _acceptable_id(segment: str) -> str:
    """The id of the path's segment (``app.history.path_ids``). One the service would refuse
    to assign is refused here too, saying why (rather than a 404 "no assignment recorded"
    for an id no assignment could have)."""
    if segment == NOT_UTF8:
        raise PydanticCustomError(
            "customer_id",
            "not a customer id: its %-escapes are not UTF-8; escape the id's UTF-8 bytes "
            "(é as %C3%A9, not %E9)",
        )
    customer_id = unescape_id(segment)
    if problem := id_problem(customer_id, MAX_PATH_ID):
        raise PydanticCustomError("customer_id", "not a customer id: {why}", {"why": problem})
    return customer_id


CustomerId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=3 * MAX_PATH_ID,  # escaped ('%2F' for '/'); the id's own length checked after
        examples=["C000042"],
        json_schema_extra={"pattern": CUSTOMER_ID_PATTERN, "maxLength": MAX_PATH_ID},
    ),
    AfterValidator(_acceptable_id),
]


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _unknown_customer(customer_id: str, where: str = "") -> Problem:
    return Problem(
        404,
        "Unknown customer",
        f"no assignment recorded for {customer_id!r}{where}",
        type_="/problems/unknown-customer",
    )


def _known_elsewhere(models: list[CustomerModelOut]) -> str:
    """Where else (``?model=``) a customer unknown to this model is known, if anywhere."""
    elsewhere = ", ".join(f"?model={m.model}" for m in models)
    return f" in this model; known in {elsewhere}" if models else ""


def _unavailable(exc: RedisUnavailable) -> Problem:
    return redis_unavailable(f"the history store is not reachable right now: {exc.reason}")


@router.get(
    "/customers/{customer_id}",
    operation_id="get_customer",
    response_model=CustomerOut,
    responses=ERRORS,
    **scoped("read"),
)
async def get_customer(
    customer_id: CustomerId, history: RecorderDep, holder: HolderDep, request: Request
) -> CustomerOut:
    """The customer's current segment, when it was assigned, and by which version; and
    their current segment in every model served (``models``)."""
    try:
        state = await history.recorder.current(customer_id)
        models = await in_every_model(request, customer_id)
    except RedisUnavailable as exc:
        raise _unavailable(exc) from None
    if state is None:
        # (a CRM's 17850 where the log wrote 17850.0: POST /v1/assign named the stored id,
        # this page did not)
        twin = "" if models else await stored_twin(history, customer_id)
        raise _unknown_customer(customer_id, _known_elsewhere(models) + twin)
    # the name as it is now (edited, or renamed by a retrain), where the serving version
    # has the segment; else its name in the version that put the customer there
    profile = state.profile
    return CustomerOut(
        customer_id=state.customer_id,
        segment_id=state.segment_id,
        segment_name=holder.segment_name(state.segment_id, state.model_version),
        model_version=state.model_version,
        assigned_at=_time(state.assigned_at),
        since=_time(state.since),
        migrations=state.migrations,
        profile=None if profile is None else profile.features,
        profile_updated_at=None if profile is None else _time(profile.updated_at),
        models=models,
    )


async def in_every_model(request: Request, customer_id: str) -> list[CustomerModelOut]:
    """The customer's current segment in each model served with recording (app/models.py)."""
    models: Models | None = request.app.state.models
    if models is None:
        return []
    found = []
    for name in models.names:
        view = models.view(name)
        history: HistoryService | None = view.history
        if history is None:
            continue
        state = await history.recorder.current(customer_id)
        if state is not None:
            found.append(
                CustomerModelOut(
                    model=name,
                    segment_id=state.segment_id,
                    segment_name=view.holder.segment_name(state.segment_id, state.model_version),
                    model_version=state.model_version,
                    assigned_at=_time(state.assigned_at),
                    since=_time(state.since),
                )
            )
    return found


@router.delete(
    "/customers/{customer_id}",
    operation_id="forget_customer",
    status_code=204,
    response_class=Response,
    responses=problem_responses(404, 503),
    **scoped("admin"),
)
async def forget_customer(
    customer_id: CustomerId, history: RecorderDep, request: Request
) -> Response:
    """Forget the customer: profile, current segment, history and membership; in every
    model served, or only in the one ``?model=`` names (404: known in none of them).

    Their records still waiting in the outage spool are not replayed. Flow counts
    (aggregates) stay; their events age out of the stream with its cap."""
    histories = [history]
    models: Models | None = request.app.state.models
    # only without ``?model``: an empty ``?model=`` is the default model, as on every
    # endpoint (GET of this path shows that model's customer), not every model
    if models is not None and "model" not in request.query_params:
        histories = [h for h in (models.view(n).history for n in models.names) if h is not None]
    try:
        known = False
        for each in histories:
            known = await each.forget(customer_id) or known
    except RedisUnavailable as exc:
        raise _unavailable(exc) from None
    if not known:
        raise _unknown_customer(customer_id)
    return Response(status_code=204)


@router.get(
    "/customers/{customer_id}/history",
    operation_id="get_customer_history",
    response_model=HistoryOut,
    responses=ERRORS,
    **scoped("read"),
)
async def get_customer_history(
    customer_id: CustomerId,
    history: RecorderDep,
    holder: HolderDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> HistoryOut:
    """The customer's segment migrations, newest first (the first assignment included)."""
    try:
        migrations = await history.recorder.history(customer_id, limit)
        # (a known customer's history may have expired: unknown only without a state)
        if not migrations and await history.recorder.current(customer_id) is None:
            models = await in_every_model(request, customer_id)
            twin = "" if models else await stored_twin(history, customer_id)
            raise _unknown_customer(customer_id, _known_elsewhere(models) + twin)
    except RedisUnavailable as exc:
        raise _unavailable(exc) from None
    # names as they are now where the serving version has the segment; else as the version
    # that put the customer there (the migration's own, or for the segment left, the one
    # before it: newest first, the next entry)
    entered = [m.model_version for m in [*migrations[1:], *migrations[-1:]]]
    return HistoryOut(
        customer_id=customer_id,
        migrations=[
            MigrationOut(
                from_segment_id=m.from_segment,
                from_segment_name=m.from_segment and holder.segment_name(m.from_segment, before),
                to_segment_id=m.to_segment,
                to_segment_name=holder.segment_name(m.to_segment, m.model_version),
                model_version=m.model_version,
                at=_time(m.at),
            )
            for m, before in zip(migrations, entered, strict=True)
        ],
    )


@router.get(
    "/segments/{segment_id}/members",
    operation_id="list_segment_members",
    response_model=MemberPageOut,
    responses=ERRORS,
    **scoped("read"),
)
async def list_segment_members(
    segment_id: Annotated[str, Path(max_length=64, examples=["seg-003"])],
    history: RecorderDep,
    holder: HolderDep,
    cursor: Annotated[
        str | None,
        Query(
            pattern=f"^$|{CURSOR_PATTERN}",
            max_length=19 * 256,  # a position per shard (at most 256)
            description="a page's next_cursor, for the page after it; omitted or empty: the "
            "first page",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MemberPageOut:
    """Customers currently in the segment, in the order they joined, cursor-paged.

    404 for a segment the serving version does not have and nobody is in (a segment of an
    earlier version keeps its members until they are assigned again)."""
    try:
        page = await history.recorder.members(segment_id, cursor or None, limit)
        total = await history.recorder.member_count(segment_id)
    except RedisUnavailable as exc:
        raise _unavailable(exc) from None
    except ValueError as exc:
        raise invalid([{"field": "cursor", "message": str(exc)}]) from None
    serving = holder.current
    if total == 0 and serving is not None and segment_id not in serving.segments:
        raise unknown_segment(serving, segment_id)  # (and nobody is in it)
    return MemberPageOut(
        segment_id=segment_id,
        total=total,
        next_cursor=page.next_cursor,
        members=[
            MemberOut(customer_id=m.customer_id, joined_at=_time(m.joined_at)) for m in page.members
        ],
    )


SINCE = (
    "default: 24 hours before until. The window is widened to whole flow buckets; one longer "
    "than 366 days (or than the reads one answer may make: 20,000 buckets x shards) is "
    "shortened to its latest part, and the answer's since says where it starts. An until "
    "before since is a 422 naming both; a since after now (no until) is an empty window; "
    "since == until is the bucket holding that instant. "
    "An end before 1970-01-01T00:00:00Z or after 9999-01-01T00:00:00Z is read as that bound."
)
UNTIL = "default: now (see since)"


@router.get(
    "/migrations",
    operation_id="get_migrations",
    response_model=MigrationMatrix,
    responses=ERRORS,
    **scoped("read"),
)
async def get_migrations(
    history: RecorderDep,
    since: Annotated[datetime | None, BeforeValidator(iso_text), Query(description=SINCE)] = None,
    until: Annotated[datetime | None, BeforeValidator(iso_text), Query(description=UNTIL)] = None,
) -> MigrationMatrix:
    """The flow matrix (from -> to counts) over a time window, with totals per segment."""
    # no flow is recorded outside [_EARLIEST, _LATEST]: a window reaching beyond is read
    # within (the same answer), and its ends stay far from datetime's range
    since, until = _within(since), _within(until)
    if since is not None and until is not None and since > until:  # swapped, or a typo
        raise _inverted(since, until)
    end = until or datetime.now(UTC)
    start = since or end - timedelta(days=1)
    if start > end:  # since after now, no until: nothing recorded yet (a poller's next window)
        return MigrationMatrix(
            since=start,
            until=end,
            bucket_seconds=history.config.flow_bucket_seconds,
            flows=[],
            matrix={},
            totals={},
        )
    # one read per bucket and shard: a year of hourly buckets on one shard is ~8,800 reads;
    # minute buckets or many shards would make it hundreds of thousands, so a longer window
    # is shortened to its latest part (the answer's since says where it starts)
    bucket, shards = history.config.flow_bucket_seconds, history.config.shards
    longest = min(timedelta(days=366), timedelta(seconds=bucket * (MAX_WINDOW_READS // shards)))
    start = max(start, end - longest)
    try:
        flows = await history.recorder.flows(
            int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        )
    except RedisUnavailable as exc:
        raise _unavailable(exc) from None
    return MigrationMatrix(
        since=_time(flows.since),
        until=_time(flows.until),
        bucket_seconds=history.config.flow_bucket_seconds,
        flows=[
            FlowOut(from_segment_id=f.from_segment, to_segment_id=f.to_segment, count=f.count)
            for f in flows.flows
        ],
        matrix=flows.matrix(new_label="new"),
        totals={
            seg: SegmentTotals(inflow=t.inflow, new=t.new, outflow=t.outflow, net=t.net)
            for seg, t in flows.totals.items()
        },
    )


# The ends of a window that can hold flows. The answer's window is widened to whole flow
# buckets and a datetime ends with 9999: the latest leaves a year for that. The earliest is
# the epoch of the recorded times (no flow is older), and no offset takes it below year 1.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def _inverted(since: datetime, until: datetime) -> Problem:
    """A window given as ending before it starts: both ends named, as the dashboard does (an
    empty 200 read as "no migrations" when the parameters were only swapped)."""
    start, end = (t.isoformat().replace("+00:00", "Z") for t in (since, until))
    return invalid(
        [
            {"field": "since", "message": f"after until ({end}): give since <= until"},
            {"field": "until", "message": f"before since ({start})"},
        ]
    )


def _within(value: datetime | None) -> datetime | None:
    """``value`` (naive: UTC) moved into the range a window may cover."""
    if value is None:
        return None
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return min(max(aware, _EARLIEST), _LATEST)
