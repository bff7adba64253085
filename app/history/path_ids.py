"""Customer ids in the path (``/v1/customers/{customer_id}``, ``…/history``).

Ids are text as written, so one may hold ``/`` (``ACME/42``) or ``%``; a client sends them
escaped (``ACME%2F42``). The server decodes the path before routing, where ``a%2Fb`` and
``a/b`` are one path: ``/v1/customers/a%2Fb`` matched no route (a 404 "Not Found"; the
customer could be assigned but never read nor forgotten), and ``/v1/customers/x%2Fhistory``
answered customer ``x``'s history. ``CustomerPaths`` routes on the id segment as the client
escaped it: it rewrites that segment of the decoded path from the raw one, with ``%`` and
``/`` escaped again, and ``unescape_id`` (the path parameter's validator) turns it back into
the id. Every other character, and every other path, is left as the server decoded it.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send

PREFIX = "/v1/customers/"
_RAW_PREFIX = PREFIX.encode()
_ESCAPED = re.compile("%(25|2F)")


NOT_UTF8 = "%!not-utf-8"
"""The id segment of a path whose %-escapes are not UTF-8 (``%E9`` for a Latin-1 ``é``): a
segment ``escape_id`` never writes (its ``%`` is always ``%25`` or ``%2F``), which the
route's validator refuses by name. Decoded with replacement characters, as the server
decodes a path, ``Jos%E9`` was the customer ``Jos\ufffd``: another id, which a file's
mojibake can hold, read or forgotten in its place."""


def escape_id(customer_id: str) -> str:
    return customer_id.replace("%", "%25").replace("/", "%2F")


def unescape_id(segment: str) -> str:
    """The id of a path segment ``escape_id`` wrote."""
    return _ESCAPED.sub(lambda m: "%" if m[1] == "25" else "/", segment)


def customer_path(scope: Scope) -> str | None:
    """The request's path with the customer id segment escaped (``escape_id``); None for a
    path outside ``/v1/customers/``."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if not root or not path.startswith(root + "/"):
        root = ""
    if not path.startswith(root + PREFIX):
        return None
    raw: bytes = scope.get("raw_path") or b""
    for head in (_RAW_PREFIX, root.encode() + _RAW_PREFIX):  # (a proxy may strip the root)
        if raw.startswith(head) and raw.isascii():
            segment, slash, rest = raw[len(head) :].decode().partition("/")
            try:
                segment = escape_id(unquote(segment, errors="strict"))
            except UnicodeDecodeError:
                segment = NOT_UTF8
            rest = unquote(rest)
            break
    else:  # no raw path (so no telling an escaped slash from a slash): as decoded
        segment, slash, rest = path[len(root + PREFIX) :].partition("/")
        segment = escape_id(segment)
    return root + PREFIX + segment + slash + rest


class CustomerPaths:
    """Route ``/v1/customers/…`` on the id as the client escaped it (see the module doc).

    The scope is changed in place, as the router changes it, so that the route it matches is
    seen by the middleware around (the metrics' route label)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (path := customer_path(scope)) is not None:
            scope["path"] = path
        await self.app(scope, receive, send)
