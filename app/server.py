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
in the README.
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
    whole within ``request_timeout`` seconds."""

    def __init__(self, *args: Any, request_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_timeout = request_timeout
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # the first request must come, whole, in time

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # a later request on a kept-alive connection
            self._arm()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()  # received whole: the keep-alive timer takes over after the answer

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
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
    }
