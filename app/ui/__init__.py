"""The dashboard at ``/ui/``: server-rendered pages over the same code as the API.

``pages`` looks (models and versions, segments, migrations, customers), ``actions`` changes
(sign in and out, promote, roll back, edit a segment), ``auth`` knows who is looking and
checks CSRF, ``charts`` lays out the SVG charts, ``render`` renders templates. Static assets
are vendored in ``static/`` (no CDN, no build step). See docs/dashboard.md.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from app.ui.actions import router as actions_router
from app.ui.auth import PageError
from app.ui.pages import router as pages_router
from app.ui.render import HERE, page_error, redirect

FORM_PATHS = ("/ui/",)  # where BodyChecks lets HTML form bodies through


def install_ui(app: FastAPI) -> None:
    """Add the dashboard's routes, its static files and its error page to ``app``."""
    app.include_router(pages_router)
    app.include_router(actions_router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    # last, so it only catches what no page matched: an HTML 404, not the API's problem+json
    app.add_api_route("/ui/{rest:path}", not_found, methods=["GET"], include_in_schema=False)
    app.add_api_route("/ui", front, methods=["GET"], include_in_schema=False)
    app.add_exception_handler(PageError, page_error)


async def front(request: Request) -> Response:
    """/ui -> /ui/ (the app does not redirect slashes itself: see ``create_app``); ``href``
    keeps the ``?model=``."""
    return redirect(request, "")


async def not_found(request: Request, rest: str) -> Response:
    if rest.endswith("/") and rest.strip("/"):  # /ui/segments/ -> /ui/segments, as before
        query = f"?{request.url.query}" if request.url.query else ""
        return redirect(request, rest.rstrip("/") + query)
    raise PageError(404, "Not found", f"there is no dashboard page at /ui/{rest}")


__all__ = ["FORM_PATHS", "install_ui"]
