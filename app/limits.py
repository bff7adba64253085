"""Checks of a request body before any of it is read, as pure ASGI middleware: its size, and
that it is JSON the service can read.

Both assign endpoints are answered by ``AssignFastPath`` before FastAPI's router, so these
checks live in front of both; they cost one scan of the request headers.

- More than ``max_bytes`` (by Content-Length, or counted while it streams): 413.
- A body whose ``Content-Type`` is not JSON (``application/json`` or ``application/*+json``,
  with no charset but UTF-8): 415. A body with no Content-Type is read as JSON (curl's
  ``--data-binary`` and many clients send none).
- A ``Content-Encoding`` other than ``identity`` (the service decodes none): 415.
- A JSON body holding a NUL byte (UTF-16 or UTF-32 text: UTF-8 JSON never holds one, JSON
  escapes it in strings): 400, not UTF-8, as a body in Latin-1 is answered. Python's and
  Starlette's parsers guess those encodings from bytes and read them; the contract is
  UTF-8. A UTF-8 byte-order mark is UTF-8, skipped (RFC 8259 lets a reader ignore it).

Under ``form_paths`` (the dashboard's forms) an HTML form body
(``application/x-www-form-urlencoded``) is accepted too; its size is checked all the same.

The key is decided first: a problem found here is not answered at once but raised when the
request's body is read (every endpoint checks its key before it reads its body), or, for a
keyed route that reads none, right after its key check (``pending_body_problem``). A caller
without a valid key gets the 401 or 403 it would get with a good body, and learns nothing of
what the endpoint accepts; nor is a bad body counted against its key's rate limit before
the key is known.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.problems import Problem, malformed_json

PENDING = "segments.body_problem"  # the scope's key of a body problem not yet answered


def pending_body_problem(scope: Scope) -> None:
    """Raise the body problem ``BodyChecks`` found in this request, if any (after its key
    was checked: ``app.security.require``)."""
    problem: Problem | None = scope.get(PENDING)
    if problem is not None:
        raise problem


def unsupported(header: str, message: str) -> Problem:
    """415 naming the header that makes the body unreadable."""
    accept = {"content-type": "Accept", "content-encoding": "Accept-Encoding"}[header]
    value = {"content-type": "application/json", "content-encoding": "identity"}[header]
    return Problem(
        415,
        "Unsupported media type",
        f"{header}: {message}",
        type_="/problems/unsupported-media-type",
        errors=[{"field": header, "message": message}],
        headers={accept: value},
    )


def is_json(content_type: bytes) -> bool:
    """Whether a Content-Type names JSON in UTF-8 (``application/json; charset=utf-8``,
    ``application/problem+json``, ...)."""
    media, *params = content_type.decode("latin-1").lower().split(";")
    kind, _, subtype = media.strip().partition("/")
    if kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8"):
            return False
    return True


FORM = b"application/x-www-form-urlencoded"
JSON_TYPE = b"application/json"


def body_problem(
    headers: list[tuple[bytes, bytes]], max_bytes: int, form_ok: bool = False
) -> tuple[Problem | None, bool, bool]:
    """What is wrong with a request's body as its headers describe it (None: nothing),
    whether its size is unknown (to be counted as it streams), and whether it is a body
    sent without a Content-Type (read as JSON)."""
    length = content_type = encoding = None
    chunked = False
    for name, value in headers:  # the one scan of the headers
        if name == b"content-length":
            length = value
        elif name == b"content-type":
            content_type = value
        elif name == b"content-encoding":
            encoding = value
        elif name == b"transfer-encoding":
            chunked = True
    try:
        size = None if length is None else int(length)
    except ValueError:
        size = None  # not a length: count the body as it streams
    if size is not None and size > max_bytes:
        return too_large(max_bytes), False, False
    if not size and not chunked:  # no body (an HTTP/1.1 body has a length or is chunked)
        return None, size is None, False
    if encoding is not None and encoding.strip().lower() != b"identity":
        return (
            unsupported("content-encoding", "the service decodes no encoding; send identity"),
            False,
            False,
        )
    if (
        content_type is not None
        and content_type != b"application/json"
        and not is_json(content_type)
        and not (form_ok and content_type.split(b";")[0].strip().lower() == FORM)
    ):
        return unsupported("content-type", "must be application/json (UTF-8)"), False, False
    return None, size is None, content_type is None


def too_large(max_bytes: int) -> Problem:
    return Problem(
        413,
        "Body too large",
        f"request body is larger than {max_bytes} bytes",
        type_="/problems/body-too-large",
        errors=[
            {"field": "body", "message": f"larger than {max_bytes} bytes (SEGMENTS_MAX_BODY_BYTES)"}
        ],
    )


class BodyChecks:
    """Refuse a body over ``max_bytes`` (413), or that is not JSON the service reads (415)."""

    def __init__(self, app: ASGIApp, max_bytes: int, form_paths: tuple[str, ...] = ()) -> None:
        self.app, self.max_bytes, self.form_paths = app, max_bytes, form_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        form_ok = bool(self.form_paths) and path.startswith(self.form_paths)
        problem, unframed, untyped = body_problem(scope["headers"], self.max_bytes, form_ok)
        if problem is not None:  # answered once the key is decided (module docstring)
            await self.app({**scope, PENDING: problem}, _refusing(problem), send)
            return
        if untyped and not form_ok:  # read as JSON, by every route (the API's routes parse
            # a body by its type: without one, PATCH and POST of the admin routes were 422s)
            scope = {**scope, "headers": [*scope["headers"], (b"content-type", JSON_TYPE)]}
        if form_ok and not unframed:  # a form (under form_paths) framed by its length
            await self.app(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                if not form_ok and b"\0" in chunk:  # read as JSON wherever it is read
                    raise wide_text(received + chunk.index(b"\0"))
                received += len(chunk)
                if unframed and received > self.max_bytes:
                    # a Problem, rendered wherever the body was read (a routed endpoint's
                    # declared body included: FastAPI's parse made it "There was an error
                    # parsing the body", a 400 that did not say what was wrong)
                    raise too_large(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)


def wide_text(at: int) -> Problem:
    """400 for a JSON body with a NUL byte at ``at``: UTF-16 or UTF-32, not UTF-8."""
    return malformed_json(f"not UTF-8 (a NUL byte at byte {at}: UTF-16 or UTF-32?)")


def _refusing(problem: Problem) -> Receive:
    """A ``receive`` that raises ``problem`` where the body would be read, without asking
    the server for any of it: a client that waits for ``100 Continue`` (curl, for a body
    over 1 MB) is refused before it sends its body, as it was when the problem was answered
    at once."""

    async def refusing_receive() -> Message:
        raise problem

    return refusing_receive
