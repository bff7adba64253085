"""API schemas of the history endpoints (separate from the recorder's internal types)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class CustomerModelOut(BaseModel):
    model: str = Field(description="the model (segmentation)", examples=["customers"])
    segment_id: str = Field(examples=["seg-003"])
    segment_name: str | None = Field(description="the segment's name now, as in segment_name")
    model_version: str = Field(description="the version that moved the customer into it")
    assigned_at: datetime
    since: datetime


class CustomerOut(BaseModel):
    customer_id: str
    segment_id: str = Field(examples=["seg-003"])
    segment_name: str | None = Field(
        description="the segment's name now (as edited); for a segment the serving version "
        "does not have (after a promotion, before `segments customers rescore`), its name in "
        "model_version"
    )
    model_version: str = Field(
        description="the version that moved the customer into this segment (a later unchanged "
        "assignment changes only assigned_at)"
    )
    assigned_at: datetime = Field(description="the last assignment, changed or not")
    since: datetime = Field(description="when the customer entered this segment")
    migrations: int = Field(
        description="history entries recorded for this customer: its first assignment and each "
        "segment change since (so its segment changes are this less one)"
    )
    profile: dict[str, float | int | str | bool | None] | None = Field(
        description="the features the service last saw for this customer (null: none stored)",
        examples=[{"recency_days": 12.0, "plan": "pro"}],
    )
    profile_updated_at: datetime | None = Field(description="when the profile was last stored")
    models: list[CustomerModelOut] = Field(
        default_factory=list,
        description="the customer's current segment in every model served that has one "
        "(the fields above are the requested model's, ?model=, default the service's)",
    )


class MigrationOut(BaseModel):
    from_segment_id: str | None = Field(description="null for the first assignment")
    from_segment_name: str | None = Field(
        description="as the serving version names it now; for a segment it lacks, as the "
        "version that put the customer there did"
    )
    to_segment_id: str
    to_segment_name: str | None = Field(
        description="as the serving version names it now; for a segment it lacks, as "
        "model_version did"
    )
    model_version: str
    at: datetime


class HistoryOut(BaseModel):
    customer_id: str
    migrations: list[MigrationOut] = Field(description="newest first")


class MemberOut(BaseModel):
    customer_id: str
    joined_at: datetime


class MemberPageOut(BaseModel):
    segment_id: str
    total: int = Field(description="members right now")
    members: list[MemberOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null: last")


class FlowOut(BaseModel):
    from_segment_id: str | None = Field(description="null: customers assigned for the first time")
    to_segment_id: str
    count: int


class SegmentTotals(BaseModel):
    inflow: int = Field(description="arrivals from other segments")
    new: int = Field(description="first assignments")
    outflow: int = Field(description="departures to other segments")
    net: int


class MigrationMatrix(BaseModel):
    since: datetime
    until: datetime
    bucket_seconds: int = Field(description="the window is widened to whole buckets")
    flows: list[FlowOut]
    matrix: dict[str, dict[str, int]] = Field(description="from -> to -> count; 'new' = first")
    totals: dict[str, SegmentTotals]
