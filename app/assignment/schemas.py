"""API schemas of assignment (separate from the internal ``Assignment`` type)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.problems import FieldError

FeatureValue = float | int | str | bool | None
EXAMPLE_FEATURES: dict[str, JsonValue] = {
    "recency_days": 12,
    "frequency": 14.5,
    "monetary": 2480.0,
    "plan": "pro",
    "channel": "organic",
}


class AssignRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"customer_id": "C000123", "features": EXAMPLE_FEATURES}]},
    )
    customer_id: str = Field(min_length=1, max_length=128, description="your customer id")
    features: dict[str, FeatureValue] = Field(
        description="every feature of the serving model, by name; null means unknown"
    )


class Driver(BaseModel):
    feature: str
    weight: float = Field(description="how much this feature favours the segment (squared sd)")


class Explanation(BaseModel):
    kind: Literal["rule", "cluster"]
    text: str = Field(examples=["closest to 'High spend'; vs 'Dormant' mostly on spend, recency"])
    rule: str | None = Field(None, description="the matching rule's condition")
    runner_up_id: str | None = Field(None, description="the second-closest segment")
    drivers: list[Driver] = Field(default_factory=list)


class AssignResponse(BaseModel):
    customer_id: str
    segment_id: str = Field(examples=["seg-003"])
    segment_name: str = Field(examples=["Very high spend, high frequency"])
    model_version: str = Field(examples=["20261123-072415-3fa9c1"])
    confidence: float = Field(ge=0, le=1, description="posterior (mixture) or distance margin")
    explanation: Explanation
    previous_segment_id: str | None = Field(None, description="segment before this assignment")
    changed: bool | None = Field(None, description="whether the segment changed")
    recorded: bool = Field(
        False,
        description="whether the assignment was recorded in Redis (false: Redis unreachable, "
        "the record is spooled and written later; or a newer assignment of this customer was "
        "already recorded; previous_segment_id and changed are then null)",
    )


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[AssignRequest] = Field(max_length=10_000)


class BatchItem(BaseModel):
    index: int
    status: Literal["ok", "error"]
    customer_id: str | None = None
    segment_id: str | None = None
    segment_name: str | None = None
    confidence: float | None = None
    explanation: Explanation | None = None
    previous_segment_id: str | None = None
    changed: bool | None = None
    recorded: bool = False
    errors: list[FieldError] | None = None


class BatchResponse(BaseModel):
    model_version: str
    assigned: int
    failed: int
    results: list[BatchItem]
