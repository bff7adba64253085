"""Rendering a dashboard page: the Jinja2 templates, the security headers, the error page."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from app.models import MODEL_PARAMETER, one_model, state_for
from app.problems import Problem
from app.registry.manifest import SegmentInfo
from app.serving import ModelHolder
from app.ui.auth import PageError, Viewer, apply_cookies
from app.ui.charts import category_label, signed

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
# no script anywhere; styles only from the vendored file; nothing framed; forms post here
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
MAX_DETAIL = 300  # characters of an error page's message
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def model_state(request: Request) -> State:
    """The state of the model a page shows: ``?model=NAME``, else the service's default model
    (as the API's endpoints choose). An unknown name is a 404 page listing the known ones."""
    try:
        name = one_model(request.query_params.getlist(MODEL_PARAMETER))
        return state_for(request.app.state, name)
    except Problem as exc:
        raise PageError(exc.status, exc.title, exc.detail) from None


def holder_of(request: Request) -> ModelHolder:
    holder: ModelHolder = model_state(request).holder
    return holder


def model_names(request: Request) -> list[str]:
    """Every model the service serves (the default one alone before its lifespan ran)."""
    models = getattr(request.app.state, "models", None)
    names: list[str] = models.names if models is not None else []
    return names or [request.app.state.settings.model_name]


def chosen_model(request: Request) -> str | None:
    """The ``?model=`` a page was asked for, if it is a served model other than the default
    (links and forms keep it). A name no model has is not kept: the error page of
    ``?model=`` and 5,000 characters repeated them in each of its links, which led back to
    that error."""
    name = request.query_params.get(MODEL_PARAMETER)
    if not name or name == request.app.state.settings.model_name:
        return None
    return name if name in model_names(request) else None


def href(request: Request, path: str) -> str:
    """A dashboard link that keeps the page's model: ``href(request, "/segments")``."""
    url = base(request) + path
    name = chosen_model(request)
    if name is None:
        return url
    return url + ("&" if "?" in path else "?") + f"{MODEL_PARAMETER}={quote(name, safe='')}"


def base(request: Request) -> str:
    """Where the dashboard is mounted (behind a proxy's root_path too)."""
    return str(request.scope.get("root_path", "")).rstrip("/") + "/ui"


def page(
    request: Request, viewer: Viewer | None, name: str, status: int = 200, **context: Any
) -> Response:
    try:
        model = holder_of(request).model_name
    except PageError:  # the error page of an unknown model: name the default one
        model = request.app.state.settings.model_name
    context = {
        "viewer": viewer,
        "model": model,
        "models": model_names(request),
        "chosen": chosen_model(request),
        "ui": base(request),
        "href": lambda path: href(request, path),
        **context,
    }
    response = templates.TemplateResponse(
        request, name, context, status_code=status, headers=HEADERS
    )
    return apply_cookies(request, viewer, response)


def redirect(request: Request, path: str, viewer: Viewer | None = None) -> Response:
    """303 to ``path`` under the dashboard (``""`` is its front page)."""
    response = RedirectResponse(href(request, "/" + path.lstrip("/")), status_code=303)
    return apply_cookies(request, viewer, response)


async def page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    if exc.status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        sign_in = f"{base(request)}/sign-in?next={quote(target, safe='')}"
        return RedirectResponse(sign_in, status_code=303)
    # an error may quote what was sent (a segment id, a version): a long one is cut
    detail = exc.detail if len(exc.detail) <= MAX_DETAIL else exc.detail[:MAX_DETAIL] + "…"
    return page(request, None, "error.html", exc.status, title=exc.title, detail=detail)


def fmt(value: float | None, digits: int = 3) -> str:
    """A figure for a table: fixed digits, thousands separated, a dash for none."""
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}"
    # (-0.0002 read '-0.000': nought, signed)
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text


def figure(value: object) -> str:
    """A stored feature value as a person reads it: thousands separated, six significant
    digits (at least two decimals' worth kept), never in exponent form (``%.6g`` printed a
    spend of 1,234,567.50 as ``1.23457e+06``); text as it is."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = min(15, max(2, 5 - magnitude))
    text = f"{value:,.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text  # (-5.55e-17, a sum's rounding error: no sign)


def p_value(value: float | None) -> str:
    """A p-value to four places; one too small for them as ``< 0.0001`` (never ``0.0000``),
    with a no-break space: a narrow column set the ``<`` above the figure."""
    if value is None:
        return "—"
    return "<\u00a00.0001" if value < 0.00005 else f"{value:.4f}"


def outcome_value(value: float | None, kind: str | None) -> str:
    """A segment's outcome: a binary outcome's rate as a percentage (as the report prints
    it), a numeric outcome's mean as a figure."""
    if value is None:
        return "—"
    return pct(value) if kind == "binary" else fmt(value)


def pct(share: float) -> str:
    return f"{share * 100:.1f}%"


def numeric_in(segments: Sequence[SegmentInfo], feature: str) -> bool:
    """Whether any segment has a numeric profile of ``feature`` (a table row for it)."""
    return any(feature in s.numeric for s in segments)


def categories_in(segments: Sequence[SegmentInfo], feature: str) -> list[str]:
    """Every category of ``feature`` seen in any segment, not only in the first one (a rule
    segment such as ``plan == 'enterprise'`` holds one category only)."""
    return sorted({c for s in segments for c in s.categorical.get(feature, {})})


templates.env.globals.update(
    fmt=fmt,
    pct=pct,
    p_value=p_value,
    figure=figure,
    outcome_value=outcome_value,
    signed=signed,
    numeric_in=numeric_in,
    categories_in=categories_in,
    category_label=category_label,
)
