"""``/v1/rescore``: every stored customer re-assigned with the served version, in the
background (scope ``admin`` to start, ``read`` to follow)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.datastructures import State

from app.deps import ModelStateDep, RecorderDep, require_history
from app.problems import Problem, problem_responses
from app.rescore.schemas import RescoreStatus
from app.rescore.service import Rescores, Where
from app.security import scoped

router = APIRouter(prefix="/v1/rescore", tags=["customers"])


def where(state: ModelStateDep, history: RecorderDep) -> Where:
    holder = state.holder
    return Where(holder.model_name, holder, history, state.behaviour, state.settings.max_id_length)


def rescores(state: ModelStateDep) -> Rescores:
    jobs: Rescores = state.rescores
    return jobs


@router.post(
    "",
    operation_id="start_rescore",
    status_code=202,
    response_model=RescoreStatus,
    responses=problem_responses(404, 409, 503),
    **scoped("admin"),
)
async def start_rescore(
    state: ModelStateDep, history: RecorderDep, request: Request, response: Response
) -> dict[str, object]:
    """Re-assign every customer the service has recorded with the served version, and record
    each (as ``POST /v1/assign`` by id does: from the stored profile, or for a model trained on
    a transaction log, from the stored behaviour as of now), in the background.

    Run it after a promotion or a rollback (or promote with ``?rescore=true``), so that
    members, histories and webhooks follow the served segmentation at once. One runs per
    model at a time (a 409 otherwise); ``GET /v1/rescore`` follows it.
    """
    started = await rescores(state).start(where(state, history))
    query = request.url.query
    response.headers["Location"] = request.url.path + (f"?{query}" if query else "")
    return started


@router.get(
    "",
    operation_id="get_rescore",
    response_model=RescoreStatus,
    responses=problem_responses(404, 503),
    **scoped("read"),
)
async def get_rescore(state: ModelStateDep, history: RecorderDep) -> dict[str, object]:
    """The model's rescore running now, or how the last one ended."""
    found = await rescores(state).status(where(state, history))
    if found is None:
        name = state.holder.model_name
        raise Problem(
            404,
            "No rescore",
            f"no rescore of model {name!r} has run: POST /v1/rescore starts one",
            type_="/problems/no-rescore",
        )
    return found


async def start_after_promotion(state: State) -> tuple[RescoreStatus | None, str | None]:
    """A promotion's ``?rescore=true``: the run started, or the one running (it starts over
    with the promoted version at its next batch); else None and why (the promotion stands)."""
    try:
        history = await require_history(state)
        jobs = rescores(state)
        try:
            return RescoreStatus(**await jobs.start(where(state, history))), None
        except Problem as problem:
            running = await jobs.status(where(state, history)) if problem.status == 409 else None
            if running is None:
                raise
            return RescoreStatus(**running), None
    except Problem as problem:
        return None, f"no rescore started: {problem.detail}"
