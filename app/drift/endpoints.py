"""``GET /v1/drift``: the serving version's live drift over a time window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BeforeValidator
from redis.exceptions import RedisError

from app.deps import ServingDep, iso_text
from app.drift.schemas import DriftReport
from app.drift.service import DriftService
from app.history.records import public_reason
from app.problems import Problem, invalid, problem_responses, redis_unavailable
from app.security import scoped

router = APIRouter(prefix="/v1", tags=["drift"])
SINCE = "window start (ISO 8601; naive is UTC); default: the configured window before until"
UNTIL = "window end (ISO 8601; naive is UTC); default: now"


def drift_service(request: Request) -> DriftService:
    found: DriftService | None = getattr(request.app.state, "drift", None)
    if found is None:
        raise Problem(
            404,
            "Drift counting is off",
            "this service does not count live drift (SEGMENTS_DRIFT_COUNTING=false, or no "
            "Redis); `segments drift --data FILE` compares a file offline",
            type_="/problems/drift-off",
        )
    return found


_EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)  # no count is older; far from datetime's ends
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _utc(value: datetime | None) -> datetime | None:
    """``value`` as UTC (naive: UTC), moved into the range a window may cover."""
    if value is None:
        return None
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return min(max(aware, _EARLIEST), _LATEST)


def window(
    service: DriftService, since: datetime | None, until: datetime | None
) -> tuple[datetime, datetime]:
    start, end = service.window_of(_utc(since), _utc(until))
    if start >= end:  # both ends named, with the values compared (until may be the default)
        first, last = (t.isoformat().replace("+00:00", "Z") for t in (start, end))
        errors = [{"field": "since", "message": f"must be before until ({last})"}]
        if until is not None:
            errors.append({"field": "until", "message": f"must be after since ({first})"})
        raise invalid(errors)
    # counts older than their retention are gone: a longer window reads only what is kept
    return max(start, end - timedelta(seconds=service.ttl_s)), end


@router.get(
    "/drift",
    **scoped("read"),
    operation_id="get_drift",
    response_model=DriftReport,
    responses=problem_responses(404, 422, 503),
)
async def get_drift(
    request: Request,
    serving: ServingDep,
    since: Annotated[datetime | None, BeforeValidator(iso_text), Query(description=SINCE)] = None,
    until: Annotated[datetime | None, BeforeValidator(iso_text), Query(description=UNTIL)] = None,
) -> DriftReport:
    """PSI per feature and the segment-share shift of live assignments against the serving
    version's training data, each with a status (ok / watch / drift) and its observations."""
    service = drift_service(request)
    start, end = window(service, since, until)
    try:
        return await service.live_report(serving, start, end)
    except (RedisError, OSError, TimeoutError) as exc:
        reason = public_reason(exc)  # never the server's address
        raise redis_unavailable(f"the drift counts are not reachable right now: {reason}") from None
