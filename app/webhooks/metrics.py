"""Prometheus metrics of webhook delivery, per subscription (``subscription`` label).

Counters are counted by the dispatcher doing the work; the gauges are read from Redis by every
dispatcher (working or standing by), so any worker's ``/metrics`` shows the same values.
"""

from __future__ import annotations

from typing import Literal

from prometheus_client import Counter, Gauge

from app.webhooks.store import DeliveryStatus

ATTEMPTS = Counter(
    "segments_webhook_attempts_total", "Webhook POSTs by outcome", ["subscription", "outcome"]
)
DELIVERED = Counter("segments_webhook_events_delivered_total", "Events delivered", ["subscription"])
DEAD = Counter("segments_webhook_events_dead_total", "Events dead-lettered", ["subscription"])
_LIVE: Literal["livemax"] = "livemax"
BACKLOG = Gauge(
    "segments_webhook_backlog", "Events waiting", ["subscription"], multiprocess_mode=_LIVE
)
DEAD_LETTERS = Gauge(
    "segments_webhook_dead_letters",
    "Events in the dead-letter list",
    ["subscription"],
    multiprocess_mode=_LIVE,
)
FAILURES = Gauge(
    "segments_webhook_consecutive_failures",
    "Failed attempts since the last success",
    ["subscription"],
    multiprocess_mode=_LIVE,
)
DISABLED = Gauge(
    "segments_webhook_disabled", "1 if disabled", ["subscription"], multiprocess_mode=_LIVE
)
LAST_SUCCESS = Gauge(
    "segments_webhook_last_success_timestamp_seconds",
    "Time of the last delivered batch",
    ["subscription"],
    multiprocess_mode=_LIVE,
)
_GAUGES = (BACKLOG, DEAD_LETTERS, FAILURES, DISABLED, LAST_SUCCESS)


def publish(statuses: dict[str, DeliveryStatus], shown: set[str]) -> set[str]:
    """Set the gauges of ``statuses``; drop those of subscriptions gone since ``shown``."""
    for sub_id, st in statuses.items():
        BACKLOG.labels(sub_id).set(st.backlog)
        DEAD_LETTERS.labels(sub_id).set(st.dead_letters)
        FAILURES.labels(sub_id).set(st.consecutive_failures)
        DISABLED.labels(sub_id).set(1 if st.disabled_at else 0)
        LAST_SUCCESS.labels(sub_id).set((st.last_success_at or 0) / 1000)
    for gone in shown - statuses.keys():
        for gauge in _GAUGES:
            gauge.remove(gone)
    return set(statuses)
