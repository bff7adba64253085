"""API schemas of segment definitions."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.visible import is_blank


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
    categorical: dict[str, dict[str, CategoryShareOut]] = Field(
        description="feature -> category -> shares, of the categories the model tells apart: "
        "those rarer than the feature's min_frequency, which the model reads as one, are one "
        "entry, __infrequent__ (a version trained before 2026-12-07 lists them one by one); "
        "missing cells are __missing__"
    )


class SegmentStatusOut(BaseModel):
    """How the segment is doing live, against training (``GET /v1/drift`` has the detail)."""

    trained_share: float = Field(description="share of the training customers")
    live_share: float | None = Field(
        description="share of live assignments in the drift window; null without counts"
    )
    live_observations: int = Field(description="live assignments into it in the window")
    psi: float | None = Field(description="PSI of membership, live against training")
    drift_status: Literal["ok", "watch", "drift", "no_data"]
    last_member_change: datetime | None = Field(
        description="newest recorded move of a customer into or out of it (recent events)"
    )
    flags: list[str] = Field(description="quality and convergence flags of the version")


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
    status: SegmentStatusOut | None = Field(
        None, description="trained vs live share, drift status, last member change"
    )


class SegmentList(BaseModel):
    model_name: str
    model_version: str
    segments: list[SegmentOut]


# Control characters (Unicode category Cc: ANSI escapes, BEL, newlines) and the bidirectional
# overrides and isolates, which make text display as something else. A name is copied into
# Redis, the event stream and the terminals and pages of whoever reads them.
PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$"  # (published as the pattern)
_PRINTABLE = re.compile(PRINTABLE.removesuffix("$"))  # (Python's $ allows a final newline)


def _printable(text: str) -> str:
    if not _PRINTABLE.fullmatch(text):
        raise ValueError("must not contain control characters or bidirectional overrides")
    return text


def _text(max_length: int, min_length: int | None = None) -> object:
    """A human field's type: printable, and at most ``max_length`` characters."""
    return Annotated[
        str,
        Field(
            min_length=min_length, max_length=max_length, json_schema_extra={"pattern": PRINTABLE}
        ),
        AfterValidator(_printable),
    ]


def _visible(text: str) -> str:
    if is_blank(text):
        raise ValueError("must contain a visible character (it is blank or invisible)")
    return text


SegmentName = Annotated[_text(120, min_length=1), AfterValidator(_visible)]  # type: ignore[valid-type]
SegmentDescription = _text(2000)
SegmentAction = _text(1000)


class SegmentPatch(BaseModel):
    """Human fields; a field set to null goes back to the generated value. At least one field
    (an empty patch is a 422: it would change nothing)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "VIPs", "action": "Invite to the loyalty tier"}],
            "minProperties": 1,
        },
    )
    name: SegmentName | None = None  # type: ignore[valid-type]
    description: SegmentDescription | None = None  # type: ignore[valid-type]
    action: SegmentAction | None = None  # type: ignore[valid-type]
