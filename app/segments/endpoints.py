"""Segment definitions of the serving version, and human edits of them."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Path

from app.deps import HolderDep, ModelStateDep, ServingDep
from app.errors import NameTaken
from app.problems import Problem, clipped, invalid, problem_responses
from app.registry.manifest import SegmentInfo
from app.security import scoped
from app.segments.schemas import (
    Profile,
    SegmentList,
    SegmentOut,
    SegmentPatch,
    SegmentStatusOut,
)
from app.segments.status import segment_statuses
from app.serving import ServingModel

router = APIRouter(prefix="/v1/segments", tags=["segments"])
SegmentId = Path(max_length=64, description="stable segment id", examples=["seg-003"])


def segment_out(
    serving: ServingModel, seg: SegmentInfo, status: SegmentStatusOut | None = None
) -> SegmentOut:
    return SegmentOut(
        id=seg.id,
        name=seg.name,
        description=seg.description,
        action=seg.action,
        kind=seg.kind,
        rule=seg.rule,
        size=seg.size,
        share=seg.share,
        profile=Profile.model_validate(
            {"numeric": seg.numeric, "categorical": seg.categorical}, from_attributes=True
        ),
        outcomes=seg.outcomes,
        stability=seg.stability,
        flags=seg.flags,
        model_version=serving.version,
        status=status,
    )


def unknown_segment(serving: ServingModel, segment_id: str) -> Problem:
    known = ", ".join(serving.segments)
    return Problem(
        404,
        "Unknown segment",
        f"segment {segment_id!r} is not in version {serving.version} (known: {known})",
        type_="/problems/unknown-segment",
    )


def _find(serving: ServingModel, segment_id: str) -> SegmentInfo:
    seg = serving.segments.get(segment_id)
    if seg is None:
        raise unknown_segment(serving, segment_id)
    return seg


@router.get(
    "",
    **scoped("read"),
    operation_id="list_segments",
    response_model=SegmentList,
    responses=problem_responses(404, 503),
)
async def list_segments(state: ModelStateDep, serving: ServingDep) -> SegmentList:
    statuses = await segment_statuses(state, serving)
    return SegmentList(
        model_name=serving.manifest.model_name,
        model_version=serving.version,
        segments=[segment_out(serving, s, statuses[s.id]) for s in serving.segments.values()],
    )


@router.get(
    "/{segment_id}",
    **scoped("read"),
    operation_id="get_segment",
    response_model=SegmentOut,
    responses=problem_responses(404, 422, 503),
)
async def get_segment(
    state: ModelStateDep, serving: ServingDep, segment_id: str = SegmentId
) -> SegmentOut:
    seg = _find(serving, segment_id)
    statuses = await segment_statuses(state, serving)
    return segment_out(serving, seg, statuses[seg.id])


@router.patch(
    "/{segment_id}",
    **scoped("admin"),
    operation_id="update_segment",
    response_model=SegmentOut,
    responses=problem_responses(404, 409, 415, 422, 503),
)
async def update_segment(
    patch: SegmentPatch, serving: ServingDep, holder: HolderDep, segment_id: str = SegmentId
) -> SegmentOut:
    """Edit a segment's name, description or action; kept across restarts and retrains.
    A name another segment of the serving version has, as a reader sees it (ignoring case,
    spacing, invisible characters, full-width forms and Cyrillic or Greek letters drawn as
    Latin ones), is a 409 naming that segment; a
    blank or invisible name is a 422."""
    _find(serving, segment_id)
    fields = {k: getattr(patch, k) for k in patch.model_fields_set}
    if not fields:
        raise invalid(
            [{"field": "body", "message": "give at least one of name, description, action"}]
        )
    try:
        await asyncio.to_thread(holder.overrides.update, segment_id, fields, serving.manifest)
    except NameTaken as exc:
        raise Problem(
            409,
            "Name taken",
            str(exc),
            type_="/problems/name-taken",
            errors=[{"field": "name", "message": clipped(str(exc), 200)}],
        ) from None
    await asyncio.to_thread(holder.refresh)
    current = holder.current or serving
    return segment_out(current, _find(current, segment_id))
