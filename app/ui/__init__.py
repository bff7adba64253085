"""The dashboard at ``/ui/``: server-rendered pages over the same code as the API.

``pages`` looks (models and versions, segments, migrations, customers), ``actions`` changes
(sign in and out, promote, roll back, edit a segment), ``auth`` knows who is looking and
checks CSRF, ``charts`` lays out the SVG charts, ``render`` renders templates. Static assets
are vendored in ``static/`` (no CDN, no build step). See docs/dashboard.md.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from app.ui.actions import router as actions_router
from app.ui.auth import PageError
from app.ui.pages import router as pages_router
from app.ui.render import HERE, page_error

FORM_PATHS = ("/ui/",)  # where BodyChecks lets HTML form bodies through


def install_ui(app: FastAPI) -> None:
    """Add the dashboard's routes, its static files and its error page to ``app``."""
    app.include_router(pages_router)
    app.include_router(actions_router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    app.add_exception_handler(PageError, page_error)


__all__ = ["FORM_PATHS", "install_ui"]
