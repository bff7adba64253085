"""The dashboard's changes: sign in and out, promote, roll back, edit a segment.

Every change is a POSTed form checked for its CSRF token; promotion, rollback and edits need
the ``admin`` scope and go through the same code as the API (``promote_model``,
``update_segment``), so what the dashboard changes is what the API shows. Promote and roll back
are two steps: a confirmation page (GET) whose form makes the change.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import unquote

from fastapi import APIRouter
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from app.errors import SegmentsError, StoreError
from app.problems import Problem, as_problem
from app.registry.endpoints import promote_model
from app.registry.manifest import Manifest
from app.registry.overrides import EDITABLE
from app.rescore.endpoints import rescores, start_after_promotion, where
from app.segments.endpoints import update_segment
from app.segments.schemas import SegmentPatch
from app.ui.auth import (
    BROWSER_COOKIE,
    KEY_COOKIE,
    PageError,
    Viewer,
    check_csrf,
    cookie_options,
    identify,
    looking,
    new_session,
    read_form,
    require_admin,
)
from app.ui.charts import rare_of
from app.ui.pages import api, labels_of, served_segment, serving_of
from app.ui.render import holder_of, model_state, page, redirect

router = APIRouter(prefix="/ui", include_in_schema=False)
# the API's texts are one line (no control characters); a textarea sends line breaks as \r\n
_LINE_BREAKS = re.compile(r"\s*[\t\r\n]\s*")


def _one_line(text: str) -> str:
    """A form field as the API takes it: line breaks and tabs become one space."""
    return _LINE_BREAKS.sub(" ", text).strip()


def _next(target: str | None) -> str:
    """Where to go after signing in: a dashboard page, never another site nor, through dot
    segments (``/ui/..//evil``, ``/ui/%2e%2e/``) or backslashes, another path of this one."""
    if not target or not target.startswith("/ui/"):
        return ""
    rest = target.removeprefix("/ui/")
    path = unquote(rest.split("?", 1)[0].split("#", 1)[0])
    if "\\" in path or any(part in (".", "..") for part in path.split("/")):
        return ""
    return rest.lstrip("/")


@router.get("/sign-in")
async def sign_in_page(request: Request, next: str = "") -> Response:
    viewer = await identify(request)
    if viewer.dev_mode:
        return redirect(request, "", viewer)
    return page(request, viewer, "sign_in.html", next=_next(next), error=None)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    viewer = await identify(request)
    form = await read_form(request)
    check_csrf(viewer, form)
    key = form.get("api_key", "").strip()
    keys = request.app.state.keys
    error = None
    try:
        keys.check(key, "read")
    except Problem as exc:
        error = exc.detail if exc.status == 403 else "that API key is not valid"
    if error is not None:
        return page(request, viewer, "sign_in.html", 401, next=_next(form.get("next")), error=error)
    response = redirect(request, _next(form.get("next")))
    response.set_cookie(KEY_COOKIE, key, **cookie_options(request))
    response.set_cookie(BROWSER_COOKIE, new_session(), **cookie_options(request))  # new token
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    viewer = await identify(request)
    check_csrf(viewer, await read_form(request))
    response = redirect(request, "sign-in")
    response.delete_cookie(KEY_COOKIE, **cookie_options(request))
    response.set_cookie(BROWSER_COOKIE, new_session(), **cookie_options(request))
    return response


@router.get("/models/{version}/promote")
async def confirm_promote(request: Request, version: str) -> Response:
    viewer = await looking(request)
    require_admin(viewer)
    holder = holder_of(request)
    try:
        manifest = await asyncio.to_thread(holder.store.manifest, holder.model_name, version)
    except SegmentsError as exc:
        raise PageError(404, "Unknown version", str(exc)) from None
    return await _confirmation(request, viewer, "promote", manifest)


async def _confirmation(
    request: Request, viewer: Viewer, action: str, target: Manifest
) -> Response:
    """The confirmation page of a promotion or a rollback to ``target``."""
    holder = holder_of(request)
    current = await asyncio.to_thread(holder.store.promoted, holder.model_name)
    recording = model_state(request).history is not None  # the rescore box
    return page(
        request,
        viewer,
        "confirm.html",
        action=action,
        target=target,
        current=current,
        recording=recording,
    )


async def admin_change(request: Request) -> tuple[Viewer, dict[str, str]]:
    """The viewer and form of a change: signed in, its CSRF token checked, admin scope."""
    viewer = await looking(request)
    form = await read_form(request)
    check_csrf(viewer, form)
    require_admin(viewer)
    return viewer, form


async def confirmed(request: Request, what: str) -> dict[str, str]:
    """The form of an admin change made from its confirmation page (``what``: its name)."""
    _, form = await admin_change(request)
    if form.get("confirm") != "yes":
        raise PageError(400, "Not confirmed", f"confirm the {what} on its confirmation page")
    return form


@router.post("/models/{version}/promote")
async def promote(request: Request, version: str) -> Response:
    form = await confirmed(request, "promotion")
    rescore = form.get("rescore") == "yes"
    try:
        done = await api(promote_model(model_state(request), holder_of(request), version, rescore))
    except SegmentsError as exc:  # the API's status (an unknown version: 404, as there)
        problem = as_problem(exc)
        status = problem.status if problem is not None else 409
        raise PageError(status, "Promotion refused", str(exc)) from None
    return redirect(request, "?done=promoted" + _unmoved(rescore and done.rescore is None))


@router.get("/rollback")
async def confirm_rollback(request: Request) -> Response:
    viewer = await looking(request)
    require_admin(viewer)
    holder = holder_of(request)
    try:
        target = await asyncio.to_thread(holder.store.rollback_target, holder.model_name)
        manifest = await asyncio.to_thread(holder.store.manifest, holder.model_name, target)
    except StoreError as exc:
        raise PageError(409, "Nothing to roll back to", str(exc)) from None
    return await _confirmation(request, viewer, "rollback", manifest)


@router.post("/rollback")
async def rollback(request: Request) -> Response:
    form = await confirmed(request, "rollback")
    holder = holder_of(request)
    store, name = holder.store, holder.model_name
    try:
        target = store.rollback_target(name)
        if form.get("target") != target:  # the history moved since the page was shown
            raise PageError(409, "Changed meanwhile", "the rollback target changed; try again")
        await asyncio.to_thread(holder.rollback, target)
    except SegmentsError as exc:
        raise PageError(409, "Rollback refused", str(exc)) from None
    started = None
    if asked := form.get("rescore") == "yes":
        started, _ = await start_after_promotion(model_state(request))  # the page shows it
    return redirect(request, "?done=rolled-back" + _unmoved(asked and started is None))


def _unmoved(failed: bool) -> str:
    """The models page's query when the box was ticked and no rescore could start (Redis
    did not answer): the page says the customers were not moved, rather than nothing."""
    return "&rescore=not-started" if failed else ""


@router.post("/rescore")
async def rescore(request: Request) -> Response:
    """Start a rescore of the page's model (the same code as ``POST /v1/rescore``)."""
    await admin_change(request)
    state = model_state(request)
    if state.history is None:
        raise PageError(404, "Recording is off", "this service records no customers to rescore")
    try:
        await rescores(state).start(where(state, state.history))
    except Problem as exc:  # running already (409), Redis down (503)
        raise PageError(exc.status, exc.title, exc.detail) from None
    return redirect(request, "?done=rescoring")


@router.post("/segments/{segment_id}")
async def edit_segment(request: Request, segment_id: str) -> Response:
    viewer, form = await admin_change(request)
    serving = serving_of(request)
    seg = served_segment(serving, segment_id)
    # only what changed; a cleared field goes back to the generated value (null in the API)
    fields: dict[str, str | None] = {}
    for name in EDITABLE:
        if name in form and _one_line(form[name]) != (getattr(seg, name) or ""):
            fields[name] = _one_line(form[name]) or None
    if not fields:
        return redirect(request, f"segments/{segment_id}")
    try:
        patch = SegmentPatch.model_validate(fields)
    except ValidationError as exc:
        errors = {str(e["loc"][0]): e["msg"] for e in exc.errors()}
        return page(
            request,
            viewer,
            "segment.html",
            422,
            serving=serving,
            seg=seg,
            live=None,
            labels=labels_of(serving),
            rare=rare_of(serving.manifest.features),
            heat=None,
            outcomes={o.name: o for o in serving.manifest.outcomes},
            saved=False,
            errors=errors,
            form=form,
        )
    await api(update_segment(patch, serving, holder_of(request), segment_id))
    return redirect(request, f"segments/{segment_id}?saved=true")
