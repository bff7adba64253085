"""Per-segment status beside each definition: trained vs live share, drift, last change.

Live figures come from the drift counts of the default window (``app.drift``) and the last
member change from the newest segment-change events (the latest ``EVENTS_SCANNED`` per
shard); either is left empty when its source is off or unreachable, never an error.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import cast

from redis.exceptions import RedisError
from starlette.datastructures import State

from app.drift.schemas import DriftReport
from app.drift.service import DriftService
from app.history import HistoryService, Keys
from app.segments.schemas import SegmentStatusOut
from app.serving import ServingModel

log = logging.getLogger(__name__)
EVENTS_SCANNED = 1000
_TIMEOUT_S = 1.0


async def segment_statuses(state: State, serving: ServingModel) -> dict[str, SegmentStatusOut]:
    drift: DriftService | None = getattr(state, "drift", None)
    history: HistoryService | None = getattr(state, "history", None)
    found: DriftReport | None = None
    if drift is not None:
        try:
            found = await drift.live_report(serving)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("segment status without live drift: %s", exc)
    changes = await last_changes(history) if history is not None else {}
    shifts = {s.id: s for s in found.segments} if found else {}
    out = {}
    for sid, seg in serving.segments.items():
        shift = shifts.get(sid)
        out[sid] = SegmentStatusOut(
            trained_share=seg.share,
            live_share=shift.live_share if shift else None,
            live_observations=shift.observations if shift else 0,
            psi=shift.psi if shift else None,
            drift_status=shift.status if shift else "no_data",
            last_member_change=changes.get(sid),
            flags=seg.flags,
        )
    return out


async def last_changes(history: HistoryService) -> dict[str, datetime]:
    """Segment id -> time of the newest event that moved a customer into or out of it."""
    client = history.recorder.client
    keys = Keys.from_config(history.config)
    newest: dict[str, int] = {}
    try:
        async with asyncio.timeout(_TIMEOUT_S):
            for stream in keys.all_events():
                entries = await client.xrevrange(stream, count=EVENTS_SCANNED)
                for _, fields in cast("list[tuple[str, dict[str, str]]]", entries):
                    at = int(fields.get("assigned_at", 0))
                    for sid in (str(fields.get("from", "")), str(fields.get("to", ""))):
                        if sid and at > newest.get(sid, 0):
                            newest[sid] = at
    except (RedisError, OSError, TimeoutError, ValueError) as exc:
        log.warning("segment status without member changes: %s", exc)
    return {sid: datetime.fromtimestamp(ms / 1000, UTC) for sid, ms in newest.items()}
