"""Drift status on the segments page, once the service has a drift monitor.

The dashboard does not depend on one. The drift service (``app.drift``, being built beside
this) sits on ``app.state.drift`` and answers ``await live_report(serving)`` with a report whose
``segments`` have ``id``, ``status`` (ok / watch / drift / no_data) and ``psi``. When there is
no such object, or it fails, the page shows no drift column.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.datastructures import State

from app.serving import ServingModel

log = logging.getLogger(__name__)


async def drift_status(state: State, serving: ServingModel) -> dict[str, str] | None:
    """Segment id -> a short drift status (``"watch (PSI 0.14)"``, or why there is none:
    ``"too few live assignments (37 of 100)"``); None: not available."""
    monitor = getattr(state, "drift", None)
    live_report = getattr(monitor, "live_report", None)
    if live_report is None:
        return None
    try:
        found: Any = await live_report(serving)
        unjudged = _unjudged(found.observations, found.thresholds.min_observations)
        shown = {}
        for seg in found.segments:
            status = str(getattr(seg.status, "value", seg.status))
            psi = seg.psi
            if status == "no_data":  # a PSI of a few assignments is noise, 1.96 or 0.01
                shown[str(seg.id)] = unjudged
            else:
                shown[str(seg.id)] = status if psi is None else f"{status} (PSI {psi:.2f})"
        return shown
    except Exception:  # drift is extra: never break the page over it
        log.exception("reading the drift status failed")
        return None


def _unjudged(observations: int, least: int) -> str:
    """What status ``no_data`` means: fewer live assignments in the window than
    ``SEGMENTS_DRIFT_MIN_OBSERVATIONS``, so shares (and their PSI) are not judged yet."""
    if observations == 0:
        return "no live assignments yet"
    return f"too few live assignments to judge ({observations:,} of {least:,})"
