"""API (and ``--json``) schemas of a drift report."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

StatusOut = Literal["ok", "watch", "drift", "no_data"]


class BinOut(BaseModel):
    bin: str
    expected: float = Field(description="training share")
    actual: float = Field(description="observed share")


class FeatureDriftOut(BaseModel):
    name: str
    type: Literal["numeric", "categorical"]
    psi: float | None = Field(description="population stability index against training")
    status: StatusOut
    observations: int
    bins: list[BinOut]


class SegmentShiftOut(BaseModel):
    id: str
    trained_share: float
    live_share: float | None
    psi: float | None = Field(description="PSI of membership (in / not in the segment)")
    status: StatusOut
    observations: int = Field(description="assignments into the segment")


class Thresholds(BaseModel):
    watch: float
    drift: float
    min_observations: int


class DriftReport(BaseModel):
    model_name: str
    model_version: str
    source: str = Field(description="'live' or the file compared")
    since: datetime | None = None
    until: datetime | None = None
    has_reference: bool = Field(description="false: the version was trained without one")
    status: StatusOut = Field(description="the worst of the features and the segment shares")
    observations: int
    thresholds: Thresholds
    features: list[FeatureDriftOut]
    segment_psi: float | None = Field(description="PSI of the segment shares")
    segment_status: StatusOut
    segments: list[SegmentShiftOut]
    note: str | None = None
