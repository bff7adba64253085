"""Dependencies shared by the routers, as ``Annotated`` aliases.

They are ``async`` on purpose: FastAPI runs a sync dependency in its thread pool, and these
only read ``app.state``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import State

from app.history import HistoryService
from app.problems import Problem
from app.serving import ModelHolder, ServingModel


async def get_holder(request: Request) -> ModelHolder:
    holder: ModelHolder = request.app.state.holder
    return holder


def get_serving(request: Request) -> ServingModel:
    """The version this request is answered from: read once, used to the end."""
    return current_serving(request.app.state)


def current_serving(state: State) -> ServingModel:
    """``get_serving`` from the app's state (for code that has no ``Request``)."""
    current: ServingModel | None = state.holder.current
    if current is None:
        raise Problem(
            503,
            "No model",
            "no promoted model version is loaded yet; train and promote one",
            type_="/problems/no-model",
            headers={"Retry-After": "5"},
        )
    return current


async def serving_dep(request: Request) -> ServingModel:
    return get_serving(request)


async def require_history(request: Request) -> HistoryService:
    history: HistoryService | None = request.app.state.history
    if history is None:
        raise Problem(
            404,
            "Recording is off",
            "this service does not record assignments (SEGMENTS_RECORD_ASSIGNMENTS=false)",
            type_="/problems/recording-off",
        )
    return history


HolderDep = Annotated[ModelHolder, Depends(get_holder)]
ServingDep = Annotated[ServingModel, Depends(serving_dep)]
RecorderDep = Annotated[HistoryService, Depends(require_history)]
