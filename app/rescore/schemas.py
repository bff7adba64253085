"""API schemas of the service's rescore."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class RescoreStatus(BaseModel):
    """A rescore of every stored customer: running, or how the last one ended."""

    model_name: str
    run_id: str
    state: Literal["running", "done", "failed", "interrupted"] = Field(
        description="interrupted: the worker running it stopped (restarted, killed) before "
        "it ended; start it again (a rescore is safe to repeat)"
    )
    version: str = Field(description="the version it assigns with")
    passes: int = Field(
        description="1, plus one for each promotion while it ran (it starts over with the "
        "newly served version)"
    )
    started_at: datetime
    updated_at: datetime = Field(description="when it last reported (after every batch)")
    finished_at: datetime | None
    customers: int = Field(description="assigned in this pass, changed or not")
    changed: int = Field(description="whose segment changed: one migration each")
    unchanged: int
    not_recorded: int = Field(
        description="assigned while Redis did not answer: spooled, and recorded when the "
        "service replays its spool (as recorded: false of POST /v1/assign)"
    )
    gone: int = Field(
        description="listed, then forgotten (DELETE /v1/customers/{id}) or expired before "
        "their turn: nothing to move"
    )
    not_assigned: int = Field(description="left as recorded: see not_assigned_reasons")
    not_assigned_reasons: dict[str, int] = Field(
        description="the commonest reasons a customer was not assigned (at most 10), counted"
    )
    error: str | None = Field(description="why it failed")
