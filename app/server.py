"""How ``segments serve`` runs uvicorn, with bounds on what slow clients can hold.

uvicorn (0.54, read in its source) gives three of the bounds:

* ``limit_concurrency``: once that many connections (or running requests) are open in a
  worker, a request that arrives is answered ``503 Service Unavailable`` at once and its
  connection closed (``SEGMENTS_MAX_CONNECTIONS``, per worker process);
* ``timeout_keep_alive``: a connection idle after a response is closed after this many
  seconds (``SEGMENTS_KEEP_ALIVE_TIMEOUT``);
* ``h11_max_incomplete_event_size`` / httptools' own limits bound a header block's size.

It has no deadline for a request still arriving: its keep-alive timer starts only after a
response, so a connection that sends half a header (or half a body), or nothing, is held
forever. ``RequestDeadlineProtocol`` adds one: a request must arrive whole (headers and body)
within ``SEGMENTS_REQUEST_TIMEOUT`` seconds of its connection opening, or of its first byte on
a kept-alive connection; otherwise the connection is closed. What is left to a reverse proxy
(per-read header and body timeouts, minimum transfer rates, connections per client address) is
in docs/service.md ("Slow clients").
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.settings import Settings

log = logging.getLogger(__name__)


class RequestDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request does not arrive
    whole within ``request_timeout`` seconds.

    A request on a kept-alive connection costs one clock read, not a timer: a connection has
    at most one timer, which on firing checks the request then arriving (if any) and is set
    again for what is left of its time (a timer set and cancelled per request measured
    ~1.5 us with uvloop).
    """

    def __init__(self, *args: Any, request_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_timeout = request_timeout
        self._began: float | None = None  # when the request still arriving began
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._began = self.loop.time()  # the first request's time runs from the connection
        self._timer = self.loop.call_later(self.request_timeout, self._check)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._began is None:  # a later request on a kept-alive connection
            self._began = self.loop.time()
            if self._timer is None:
                self._timer = self.loop.call_later(self.request_timeout, self._check)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._began = None  # received whole: the keep-alive timer takes over after the answer

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def _check(self) -> None:
        self._timer = None
        if self._began is None or self.transport.is_closing():
            return
        left = self._began + self.request_timeout - self.loop.time()
        if left > 0:
            self._timer = self.loop.call_later(left, self._check)
            return
        log.info(
            "closed a connection whose request did not arrive within %s s "
            "(SEGMENTS_REQUEST_TIMEOUT)",
            self.request_timeout,
        )
        self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn options that bound connections, from the settings."""
    protocol = functools.partial(RequestDeadlineProtocol, request_timeout=settings.request_timeout)
    return {
        # a partial, not a class: uvicorn only calls it (and pickles it for worker processes)
        "http": cast(type[asyncio.Protocol], protocol),
        "limit_concurrency": settings.max_connections,
        "timeout_keep_alive": settings.keep_alive_timeout,
        "timeout_worker_healthcheck": settings.worker_healthcheck_timeout,
    }
