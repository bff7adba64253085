"""Live drift for the service: flush the process's counters, read them back as a report.

``DriftService`` is made by the lifespan with the app's Redis client; its ``run_flusher``
task drains ``LIVE`` every ``flush_s`` seconds into the hourly hashes of
``app.drift.counts`` (and once more on shutdown), and refreshes the Prometheus gauges from
the default window every ``GAUGE_EVERY`` flushes. A failed flush puts its counts back, so a
Redis outage delays counts rather than losing them (they are a few hundred integers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import Counter
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from prometheus_client import Gauge
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.drift import counts
from app.drift.compare import from_fields, report
from app.drift.live import LIVE, LiveCounts
from app.drift.schemas import DriftReport, Thresholds
from app.errors import ConfigError
from app.serving import ModelHolder, ServingModel
from app.settings import Settings

log = logging.getLogger(__name__)
GAUGE_EVERY = 12  # flushes between gauge refreshes (a minute at the default 5 s)

FEATURE_PSI = Gauge(
    "segments_drift_feature_psi",
    "PSI of a feature's live distribution against training (default window)",
    ["model", "feature"],
    multiprocess_mode="mostrecent",
)
SEGMENT_PSI = Gauge(
    "segments_drift_segment_psi",
    "PSI of a segment's live share against its training share (default window)",
    ["model", "segment"],
    multiprocess_mode="mostrecent",
)
SEGMENT_LIVE_SHARE = Gauge(
    "segments_drift_segment_live_share",
    "A segment's share of live assignments (default window)",
    ["model", "segment"],
    multiprocess_mode="mostrecent",
)
OBSERVATIONS = Gauge(
    "segments_drift_observations",
    "Assignments behind the drift figures (default window)",
    ["model"],
    multiprocess_mode="mostrecent",
)


@dataclass
class DriftService:
    client: Redis
    prefix: str
    thresholds: Thresholds
    window: timedelta
    ttl_s: int
    timeout_s: float
    live: LiveCounts = field(default_factory=lambda: LIVE)

    async def flush(self) -> None:
        drained = self.live.drain()
        try:
            await counts.flush(self.client, self.prefix, drained, self.ttl_s, self.timeout_s)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("drift counts not flushed, kept for the next try: %s", exc)
            self._put_back(drained)

    def _put_back(self, drained: list[tuple[str, str, dict[str, int]]]) -> None:
        for model, version, fields in drained:
            pending = self.live.pending.setdefault((model, version), Counter())
            pending.update(fields)

    def window_of(
        self, since: datetime | None, until: datetime | None
    ) -> tuple[datetime, datetime]:
        until = until or datetime.now(UTC)
        return since or until - self.window, until

    async def live_report(
        self, serving: ServingModel, since: datetime | None = None, until: datetime | None = None
    ) -> DriftReport:
        """The serving version's drift over ``[since, until)`` (default: the last window)."""
        since, until = self.window_of(since, until)
        manifest = serving.manifest
        fields = await counts.read(
            self.client,
            self.prefix,
            manifest.model_name,
            manifest.version,
            since.timestamp(),
            until.timestamp(),
            self.timeout_s,
        )
        features, segments = from_fields(manifest, fields)
        # the counts are hourly: the report says which hours it covers, not the asked window
        start, end = counts.covered(since.timestamp(), until.timestamp())
        covered = (datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
        found = report(manifest, features, segments, self.thresholds, "live", *covered)
        set_gauges(found)
        return found

    async def run_flusher(
        self, interval_s: float, serving: Callable[[], ServingModel | None]
    ) -> None:
        """Flush every ``interval_s`` until cancelled, then flush once more; never dies.

        ``serving`` gives the serving version (None while there is none), for the gauges."""
        n = 0
        try:
            while True:
                await asyncio.sleep(interval_s)
                await self.flush()
                n += 1
                current = serving()
                if n % GAUGE_EVERY == 0 and current is not None:
                    try:
                        await self.live_report(current)
                    except Exception:
                        log.exception("refreshing the drift gauges failed")
        finally:
            await asyncio.shield(self.flush())


_SHOWN: dict[tuple[Gauge, str], set[str]] = {}
"""The labels each gauge shows per model, so that figures no longer measured are removed."""


def set_gauges(found: DriftReport) -> None:
    """Show a report's figures; a segment or feature without a figure in it (gone after a
    promotion, or no data in the window) is removed rather than left at an old value."""
    model = found.model_name
    features = {f.name: f.psi for f in found.features if f.psi is not None}
    measured = [s for s in found.segments if s.psi is not None and s.live_share is not None]
    _show(FEATURE_PSI, model, features)
    _show(SEGMENT_PSI, model, {s.id: s.psi for s in measured if s.psi is not None})
    _show(
        SEGMENT_LIVE_SHARE,
        model,
        {s.id: s.live_share for s in measured if s.live_share is not None},
    )
    OBSERVATIONS.labels(model).set(found.observations)


def _show(gauge: Gauge, model: str, values: dict[str, float]) -> None:
    shown = _SHOWN.setdefault((gauge, model), set())
    for gone in shown - set(values):
        # NaN first: with PROMETHEUS_MULTIPROC_DIR the value lives on in the worker's file,
        # which remove() does not reach; NaN there says "no figure" instead of an old one
        gauge.labels(model, gone).set(math.nan)
        with contextlib.suppress(KeyError):
            gauge.remove(model, gone)
    for label, value in values.items():
        gauge.labels(model, label).set(value)
    shown.clear()
    shown.update(values)


def thresholds_of(settings: Settings) -> Thresholds:
    """The configured thresholds; ``ConfigError`` (at start) if watch is not below drift."""
    if settings.drift_watch >= settings.drift_threshold:
        raise ConfigError(
            f"SEGMENTS_DRIFT_WATCH ({settings.drift_watch}) must be below "
            f"SEGMENTS_DRIFT_THRESHOLD ({settings.drift_threshold})"
        )
    return Thresholds(
        watch=settings.drift_watch,
        drift=settings.drift_threshold,
        min_observations=settings.drift_min_observations,
    )


def start_live_drift(
    settings: Settings, client: Redis | None, holder: ModelHolder, stack: AsyncExitStack
) -> DriftService | None:
    """Turn counting on and start the flusher (stopped, with a last flush, by ``stack``);
    None when counting is off or there is no Redis."""
    if not settings.drift_counting or client is None:
        LIVE.enabled = False
        return None
    service = DriftService(
        client,
        settings.key_prefix,
        thresholds_of(settings),
        timedelta(hours=settings.drift_window_hours),
        ttl_s=int(settings.drift_ttl_days * 86400),
        timeout_s=max(settings.redis_timeout_ms / 1000, 1.0),
    )
    task = asyncio.create_task(
        service.run_flusher(settings.drift_flush_seconds, lambda: holder.current)
    )

    async def stop() -> None:
        LIVE.enabled = False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    stack.push_async_callback(stop)
    LIVE.enabled = True
    return service
