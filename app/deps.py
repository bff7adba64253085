"""Dependencies shared by the routers, as ``Annotated`` aliases.

They are ``async`` on purpose: FastAPI runs a sync dependency in its thread pool, and these
only read ``app.state``.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Query, Request
from starlette.datastructures import State

from app.history import HistoryService
from app.models import MAX_MODEL_NAME, one_model, state_for
from app.problems import Problem
from app.serving import ModelHolder, ServingModel

ModelQuery = Annotated[
    str | None,
    Query(
        description="the model (segmentation) to use; default: the service's "
        "SEGMENTS_MODEL_NAME. An unknown model is a 404 listing the known ones",
        max_length=MAX_MODEL_NAME,
    ),
]


async def model_state(request: Request, model: ModelQuery = None) -> State:
    """The app's state as the requested model (``?model=``) sees it (``app.models``)."""
    return state_for(request.app.state, one_model(request.query_params.getlist("model")))


ModelStateDep = Annotated[State, Depends(model_state)]


async def get_holder(state: ModelStateDep) -> ModelHolder:
    holder: ModelHolder = state.holder
    return holder


def get_serving(request: Request) -> ServingModel:
    """The default model's version this request is answered from: read once, used to the end."""
    return current_serving(request.app.state)


def current_serving(state: State) -> ServingModel:
    """``get_serving`` from the app's state (for code that has no ``Request``)."""
    current: ServingModel | None = state.holder.current
    if current is None:
        raise Problem(
            503,
            "No model",
            no_model_detail(state),
            type_="/problems/no-model",
            headers={"Retry-After": "5"},
        )
    return current


def model_error_in_words(error: str | None) -> str | None:
    """The model holder's error without server paths, for the unauthenticated probe."""
    if error is None or error.startswith("no model ") or error.endswith("no promoted version"):
        return error  # no such model, or none of its versions promoted: names no path
    if "hash mismatch" in error:
        what = "the artefact's hash does not match its manifest: it is refused"
    elif "scikit-learn" in error:
        what = "the artefact was saved with another scikit-learn version"
    else:
        what = "the promoted version cannot be loaded"
    return f"{what} (details in the log, or in /readyz with a 'read' key)"


def served_others(state: State) -> dict[str, str]:
    """The loaded version of each model served besides the default (``?model=NAME``)."""
    models = getattr(state, "models", None)
    if models is None:
        return {}
    found = {}
    for name in models.names:
        if name != state.holder.model_name and (current := models.holder(name).current):
            found[name] = current.version
    return found


def unpromoted(holder: ModelHolder) -> bool:
    """Nothing of ``holder``'s model is loaded because no version of it is promoted (never
    trained or promoted here), rather than a promoted version failing to load."""
    if holder.current is not None:
        return False
    try:
        return holder.store.promoted(holder.model_name) is None
    except Exception:  # a damaged pointer: a failure to load, not an absence
        return False


def no_model_detail(state: State) -> str:
    """Why the model of ``state`` answers nothing, and what to do: a model of the store
    trained with ``--model NAME`` is served as ``?model=NAME`` (the default model,
    ``SEGMENTS_MODEL_NAME``, may not be in the store at all)."""
    holder = state.holder
    what = model_error_in_words(holder.last_error) or (
        f"no version of model {holder.model_name!r} is loaded (none promoted yet)"
    )
    name = holder.model_name
    if name != state.settings.model_name:  # asked with ?model=NAME: not the default's case
        return (
            f"{what}; model {name!r} is served as ?model={name}: promote a version of it "
            f"that loads (segments models list --model {name}, then segments models "
            f"promote VERSION --model {name})"
        )
    others = list(served_others(state))
    default = f"the default model is {holder.model_name!r} (SEGMENTS_MODEL_NAME)"
    if others:
        served, first = ", ".join(others), others[0]
        prefix = state.settings.key_prefix
        return (
            f"{what}; {default}; models served here: {served}: ask with ?model={first}, "
            f"or serve it by default with SEGMENTS_MODEL_NAME={first}, for the segments "
            f"commands too (records of {first} made before then, under '{prefix}m:{first}:', "
            f"are not seen under the default model's '{prefix}')"
        )
    return f"{what}; {default}: train and promote it (segments train --model NAME --promote)"


async def serving_dep(state: ModelStateDep) -> ServingModel:
    return current_serving(state)


async def require_history(state: ModelStateDep) -> HistoryService:
    history: HistoryService | None = state.history
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


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_text(value: object) -> object:
    """Only ISO 8601 text is a time in a query (pydantic would also read ``80136`` or ``0.0``
    as a Unix time, which the contract's date-time does not allow): a ``BeforeValidator``."""
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("must be an ISO 8601 date-time, such as 2026-01-31T00:00:00Z")
    return value
