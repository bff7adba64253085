"""Request body size limit as pure ASGI middleware (before any body is buffered)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.problems import Problem, problem_response


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuse bodies over ``max_bytes`` with 413: by Content-Length, or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def _problem(self) -> Problem:
        return Problem(
            413,
            "Body too large",
            f"request body is larger than {self.max_bytes} bytes",
            type_="/problems/body-too-large",
            errors=[
                {
                    "field": "body",
                    "message": f"larger than {self.max_bytes} bytes (SEGMENTS_MAX_BODY_BYTES)",
                }
            ],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_large = int(value) > self.max_bytes
                except ValueError:
                    break  # not a length: count the body as it streams
                if too_large:
                    await problem_response(self._problem(), scope.get("path"))(scope, receive, send)
                    return
                # the server frames the body by this length: it cannot grow past it
                await self.app(scope, receive, send)
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await problem_response(self._problem(), scope.get("path"))(scope, receive, send)
