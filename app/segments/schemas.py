"""API schemas of segment definitions."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class NumericProfileOut(BaseModel):
    mean: float = Field(description="segment mean, original units")
    median: float
    z: float = Field(description="standardised difference from the whole population")


class CategoryShareOut(BaseModel):
    share: float
    population_share: float
    z: float


class Profile(BaseModel):
    numeric: dict[str, NumericProfileOut]
    categorical: dict[str, dict[str, CategoryShareOut]]


class SegmentOut(BaseModel):
    id: str = Field(examples=["seg-003"])
    name: str = Field(examples=["Very high spend, high frequency"])
    description: str
    action: str | None = Field(None, description="recommended action (edited by analysts)")
    kind: Literal["cluster", "rule"]
    rule: str | None = None
    size: int = Field(description="customers in the training data")
    share: float
    profile: Profile
    outcomes: dict[str, float | None]
    stability: float | None
    flags: list[str] = Field(description="criteria it fails: too_small, not_distinct, unstable")
    model_version: str


class SegmentList(BaseModel):
    model_name: str
    model_version: str
    segments: list[SegmentOut]


class SegmentPatch(BaseModel):
    """Human fields; a field set to null goes back to the generated value."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "VIPs", "action": "Invite to the loyalty tier"}]},
    )
    name: str | None = Field(None, min_length=1, max_length=120)
    description: str | None = Field(None, max_length=2000)
    action: str | None = Field(None, max_length=1000)
