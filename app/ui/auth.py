"""Who is looking at the dashboard, and the CSRF check of every change.

Signing in posts an API key; it is kept in an ``HttpOnly``, ``SameSite=Strict`` cookie
(``Secure`` over https) scoped to ``/ui`` and checked on every request by the app's
``KeyRing``, so a revoked key stops working at once. ``read`` is needed to look and ``admin``
to change, as in the API.

CSRF: every form that changes something carries ``csrf``, an HMAC of the session: a random
``HttpOnly`` session cookie of the browser's (renewed at sign-in and sign-out), keyed with the
signed-in API key (before sign-in and in development mode, the session cookie alone). Another
site can neither read the cookies nor compute the token, and a form posted without the right
token is refused with 403. The token is the same in every worker and across restarts, because
it is derived from what the browser holds, not from server state; each sign-in gets a new one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from app.problems import Problem
from app.security import SCOPES, Scope

KEY_COOKIE = "segments_ui_key"
BROWSER_COOKIE = "segments_ui_browser"
COOKIE_PATH = "/ui"
MAX_FIELDS = 20
# the query parameters the pages read: one given twice is a 422 page naming it, as in the API
# (``?model=a&model=b`` showed, and a confirmation promoted in, the last one silently)
PAGE_PARAMETERS = frozenset({"model", "since", "until", "window", "customer_id", "saved"})
_CSRF_MESSAGE = b"segments-ui-csrf-v1"


class PageError(Exception):
    """A page that cannot be shown: rendered as an HTML error page with ``status``
    (401 sends the browser to the sign-in page)."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


@dataclass
class Viewer:
    """The person behind a request: what they may do and the token their forms carry."""

    scopes: frozenset[str]
    csrf: str
    signed_in: bool
    dev_mode: bool
    label: str = ""
    set_cookies: dict[str, str] = field(default_factory=dict)

    def can(self, scope: Scope) -> bool:
        return scope in self.scopes


def csrf_token(session: str, key: str = "") -> str:
    """The token of a session (and of the key signed in on it)."""
    message = _CSRF_MESSAGE + b":" + session.encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def new_session() -> str:
    return secrets.token_urlsafe(32)


def cookie_options(request: Request) -> dict[str, Any]:
    return {
        "httponly": True,
        "samesite": "strict",
        "secure": request.url.scheme == "https",
        "path": COOKIE_PATH,
    }


def _session(request: Request, viewer_cookies: dict[str, str]) -> str:
    session = request.cookies.get(BROWSER_COOKIE)
    if not session or len(session) > 100:
        session = new_session()
        viewer_cookies[BROWSER_COOKIE] = session
    return session


async def identify(request: Request) -> Viewer:
    """The viewer of any page, signed in or not (the sign-in page uses this)."""
    keys = request.app.state.keys
    cookies: dict[str, str] = {}
    session = _session(request, cookies)
    if not keys.enabled:  # development mode: no sign-in, every scope
        return Viewer(frozenset(SCOPES), csrf_token(session), False, True, "development", cookies)
    key = request.cookies.get(KEY_COOKIE)
    entry = None
    if key:
        try:
            entry = keys.check(key, "read")
        except Problem:  # unknown, revoked, or no longer holding 'read': signed out
            key = None
    if key and entry is not None:
        limiter = request.app.state.rate_limiter
        if limiter is not None:
            try:
                await limiter.check(entry.key_id)
            except Problem as exc:
                raise PageError(exc.status, "Too many requests", str(exc.detail)) from None
        label = entry.label or entry.key_id
        return Viewer(entry.scopes, csrf_token(session, key), True, False, label, cookies)
    return Viewer(frozenset(), csrf_token(session), False, False, "", cookies)


async def looking(request: Request) -> Viewer:
    """A viewer allowed to look (``read``); otherwise off to the sign-in page."""
    viewer = await identify(request)
    if not viewer.can("read"):
        raise PageError(401, "Sign in", "sign in with an API key to see the dashboard")
    once_each(request)
    return viewer


def once_each(request: Request) -> None:
    """A 422 page naming each parameter a page reads that the query gives more than once."""
    params = request.query_params
    if len(params.multi_items()) == len(params):
        return
    repeated = [
        f"{name}: given {len(params.getlist(name))} times: give it once"
        for name in sorted(PAGE_PARAMETERS & params.keys())
        if len(params.getlist(name)) > 1
    ]
    if repeated:
        raise PageError(422, "Invalid request", "; ".join(repeated))


def require_admin(viewer: Viewer) -> None:
    if not viewer.can("admin"):
        raise PageError(403, "Forbidden", "this change needs a key with the 'admin' scope")


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a posted HTML form (the body's size is bounded by ``BodyChecks``, which
    refuses it as it is read: the viewer was identified first)."""
    try:
        body = await request.body()
    except Problem as exc:  # too large, or encoded: a page saying so, as the others are
        raise PageError(exc.status, exc.title, exc.detail) from None
    if not body:
        return {}  # no fields (so no CSRF token: refused as that)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise PageError(415, "Unsupported form", "post the form as a browser does")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=MAX_FIELDS,
            errors="strict",  # (not U+FFFD stored in a segment's name: the API refuses it)
        )
    except UnicodeDecodeError:
        raise PageError(400, "Bad form", "the form is not UTF-8 text") from None
    except ValueError:
        raise PageError(400, "Bad form", f"more than {MAX_FIELDS} fields") from None
    return dict(pairs)


def check_csrf(viewer: Viewer, form: dict[str, str]) -> None:
    """Refuse (403) a change whose form lacks this session's token."""
    sent = form.get("csrf", "")
    if not sent or not hmac.compare_digest(sent.encode(), viewer.csrf.encode()):
        raise PageError(
            403, "Forbidden", "the form's CSRF token is missing or wrong; reload the page"
        )


def apply_cookies(request: Request, viewer: Viewer | None, response: Response) -> Response:
    if viewer is not None:
        for name, value in viewer.set_cookies.items():
            response.set_cookie(name, value, **cookie_options(request))
    return response
