"""API schemas of the model registry endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.rescore.schemas import RescoreStatus


class VersionSummary(BaseModel):
    version: str = Field(examples=["20261123-072415-3fa9c1"])
    created_at: datetime
    algorithm: str
    k: int
    rows: int
    silhouette: float | None
    promoted: bool


class VersionList(BaseModel):
    model_name: str
    promoted: str | None
    serving: str | None = Field(description="the version this worker answers from")
    versions: list[VersionSummary]
    unreadable: dict[str, str] = Field(
        default_factory=dict,
        description="versions left out of the list because their manifest cannot be read, with why",
    )


class Promotion(BaseModel):
    model_name: str
    version: str
    previous: str | None
    rescore: RescoreStatus | None = Field(
        None, description="with ?rescore=true: the rescore started (or running) for it"
    )
    rescore_detail: str | None = Field(
        None,
        description="with ?rescore=true, why no rescore started (the promotion stands); "
        "without, how to move the customers already recorded",
    )
