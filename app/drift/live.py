"""Live drift counting in the assignment path: in process, no Redis call per request.

The assignment path calls ``LIVE.observe_one`` / ``LIVE.observe_many`` (one line each);
each adds the request's feature values into per-bin counters of the serving version's
reference and one to the assigned segment's counter. The lifespan's flusher drains the
counters every few seconds into hourly Redis buckets (``app.drift.counts``), where the
workers' counts add up. Counting is off (a single attribute test per request) until the
lifespan turns it on, and for a version trained without a reference.

The counters are process-wide like the Prometheus ones, which this mirrors: the hot path
reaches them without the app's state.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from app.columns import column_of
from app.drift.psi import category_bin

if TYPE_CHECKING:
    from app.registry.manifest import DriftReference
    from app.serving import ServingModel


FEW_ROWS = 16
"""Below it, ``add_many`` bins row by row: numpy's fixed cost (about 20 µs a call) is more
than a few rows' bisects (1 µs each), and an events request often re-assigns one customer."""


class _Tracker:
    """Counters of one version: a list per feature (its bins), one per segment."""

    def __init__(self, reference: DriftReference, segment_ids: Sequence[str]) -> None:
        self.numeric: list[tuple[str, list[float], list[int]]] = []
        self.categorical: list[tuple[str, dict[str, int], int, list[int]]] = []
        for f in reference.features:
            if f.type == "numeric":
                edges = list(f.edges or [])
                self.numeric.append((f.name, edges, [0] * (len(edges) + 2)))
            else:
                cats = list(f.categories or [])
                position = {c: i for i, c in enumerate(cats)}
                self.categorical.append((f.name, position, len(cats), [0] * (len(cats) + 2)))
        self.segment_ids = list(segment_ids)
        self.segment_index = {s: i for i, s in enumerate(self.segment_ids)}
        self.segments = [0] * len(self.segment_ids)

    def add_one(self, row: Mapping[str, Any], segment_id: str) -> None:
        self._add_row(row)
        self.segments[self.segment_index[segment_id]] += 1

    def _add_row(self, row: Mapping[str, Any]) -> None:
        for name, edges, counts in self.numeric:
            value = row.get(name)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                counts[-1] += 1
            else:
                counts[bisect_left(edges, value)] += 1
        for name, position, n, counts in self.categorical:
            counts[category_bin(row.get(name), position, n)] += 1

    def add_many(self, rows: Sequence[Mapping[str, Any]], slots: Sequence[int]) -> None:
        n = len(rows)
        if n < FEW_ROWS:
            for row, slot in zip(rows, slots, strict=True):
                self._add_row(row)
                self.segments[slot] += 1
            return
        for name, edges, counts in self.numeric:
            values = np.fromiter(
                (np.nan if v is None else v for v in column_of(rows, name)), np.float64, n
            )
            index = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left")
            index[np.isnan(values)] = len(edges) + 1
            for i, c in enumerate(np.bincount(index, minlength=len(counts)).tolist()):
                counts[i] += c
        for name, position, size, counts in self.categorical:
            for value in column_of(rows, name):
                counts[category_bin(value, position, size)] += 1
        for slot, c in enumerate(np.bincount(np.asarray(slots), minlength=len(self.segments))):
            self.segments[slot] += int(c)

    def drain(self) -> dict[str, int]:
        """The counts so far as Redis hash fields (``f:<feature>:<bin>``, ``s:<segment>``,
        ``n``), zeroing them."""
        out: dict[str, int] = {}
        for name, _, counts in self.numeric:
            _take(out, f"f:{name}:", counts)
        for name, _, _, counts in self.categorical:
            _take(out, f"f:{name}:", counts)
        total = sum(self.segments)
        if total:
            out["n"] = total
        for i, c in enumerate(self.segments):
            if c:
                out[f"s:{self.segment_ids[i]}"] = c
                self.segments[i] = 0
        return out


def _take(out: dict[str, int], head: str, counts: list[int]) -> None:
    for i, c in enumerate(counts):
        if c:
            out[f"{head}{i}"] = c
            counts[i] = 0


@dataclass
class LiveCounts:
    """The process's counters, per (model name, version)."""

    enabled: bool = False
    pending: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    """Counts drained but not yet written (a failed flush puts them back here)."""
    _trackers: dict[tuple[str, str], _Tracker | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _tracker(self, serving: ServingModel) -> _Tracker | None:
        manifest = serving.manifest
        key = (manifest.model_name, manifest.version)
        try:
            return self._trackers[key]
        except KeyError:
            reference = manifest.drift_reference
            found = None if reference is None else _Tracker(reference, serving.model.segment_ids)
            self._trackers[key] = found
            return found

    def observe_one(self, serving: ServingModel, row: Mapping[str, Any], segment_id: str) -> None:
        """Count one assignment (``row``: its features)."""
        if self.enabled and (tracker := self._tracker(serving)) is not None:
            tracker.add_one(row, segment_id)

    def observe_many(
        self, serving: ServingModel, rows: Sequence[Mapping[str, Any]], slots: Sequence[int]
    ) -> None:
        """Count a batch's assignments (``slots``: the model's slot of each row)."""
        if self.enabled and rows and (tracker := self._tracker(serving)) is not None:
            tracker.add_many(rows, slots)

    def drain(self) -> list[tuple[str, str, dict[str, int]]]:
        """``(model name, version, fields)`` of every version with counts, zeroing them."""
        with self._lock:
            merged = self.pending
            self.pending = {}
            for key, tracker in list(self._trackers.items()):
                if tracker is not None and (fields := tracker.drain()):
                    merged.setdefault(key, Counter()).update(fields)
        return [(model, version, dict(c)) for (model, version), c in merged.items()]

    def reset(self) -> None:
        self._trackers.clear()
        self.pending.clear()


LIVE = LiveCounts()
