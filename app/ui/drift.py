"""Drift status on the segment page, once the service has a drift monitor.

The dashboard does not depend on one: it shows drift only when the app's state holds a
``drift`` object with an async ``segment_status(serving)`` returning, per segment id, a short
status (``"ok"``, ``"drifting"`` ...). Without it, or if it fails, the page says nothing.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from starlette.datastructures import State

from app.serving import ServingModel

log = logging.getLogger(__name__)


async def drift_status(state: State, serving: ServingModel) -> dict[str, str] | None:
    monitor = getattr(state, "drift", None)
    method = getattr(monitor, "segment_status", None)
    if method is None:
        return None
    try:
        found: Any = method(serving)
        if inspect.isawaitable(found):
            found = await found
        return {str(k): str(v) for k, v in dict(found).items()}
    except Exception:  # drift is extra: never break the page over it
        log.exception("reading the drift status failed")
        return None
