"""A drift report: observed bin and segment counts against a version's reference."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from app.drift.psi import Status, bin_labels, psi, shares, status
from app.drift.schemas import (
    BinOut,
    DriftReport,
    FeatureDriftOut,
    SegmentShiftOut,
    Thresholds,
)
from app.registry.manifest import Manifest

_RANK: dict[Status, int] = {"no_data": 0, "ok": 1, "watch": 2, "drift": 3}
NO_REFERENCE = (
    "no reference: this version was trained before drift references were kept; "
    "retrain it to measure drift"
)


def worst(statuses: Sequence[Status]) -> Status:
    return max(statuses, key=_RANK.__getitem__, default="no_data")


def report(
    manifest: Manifest,
    feature_counts: Mapping[str, Sequence[int]],
    segment_counts: Mapping[str, int],
    thresholds: Thresholds,
    source: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> DriftReport:
    """Compare counts (per feature: one per reference bin; per segment id) with training."""
    ref = manifest.drift_reference
    base = {
        "model_name": manifest.model_name,
        "model_version": manifest.version,
        "source": source,
        "since": since,
        "until": until,
        "thresholds": thresholds,
    }
    if ref is None:
        return DriftReport(
            **base,
            has_reference=False,
            status="no_data",
            observations=sum(segment_counts.values()),
            features=[],
            segment_psi=None,
            segment_status="no_data",
            segments=[],
            note=NO_REFERENCE,
        )
    watch, drift, least = thresholds.watch, thresholds.drift, thresholds.min_observations

    def judged(value: float | None, n: int) -> Status:
        return "no_data" if n < max(least, 1) else status(value, watch, drift)

    features = []
    for f in ref.features:
        counts = list(feature_counts.get(f.name, [0] * len(f.shares)))
        n = sum(counts)
        actual = shares(counts)
        value = round(psi(f.shares, actual), 6) if n else None
        labels = bin_labels(f.edges, f.categories if f.type == "categorical" else None)
        bins = [
            BinOut(bin=label, expected=e, actual=round(a, 6))
            for label, e, a in zip(labels, f.shares, actual, strict=True)
        ]
        features.append(
            FeatureDriftOut(
                name=f.name,
                type=f.type,
                psi=value,
                status=judged(value, n),
                observations=n,
                bins=bins,
            )
        )
    ids = list(ref.segment_shares)
    total = sum(segment_counts.get(s, 0) for s in ids)
    expected = [ref.segment_shares[s] for s in ids]
    observed = shares([segment_counts.get(s, 0) for s in ids])
    segment_psi = round(psi(expected, observed), 6) if total else None
    segments = []
    for sid, e, a in zip(ids, expected, observed, strict=True):
        one = round(psi([e, 1 - e], [a, 1 - a]), 6) if total else None
        segments.append(
            SegmentShiftOut(
                id=sid,
                trained_share=e,
                live_share=round(a, 6) if total else None,
                psi=one,
                status=judged(one, total),
                observations=segment_counts.get(sid, 0),
            )
        )
    segment_status = judged(segment_psi, total)
    return DriftReport(
        **base,
        has_reference=True,
        status=worst([*(f.status for f in features), segment_status]),
        observations=total,
        features=features,
        segment_psi=segment_psi,
        segment_status=segment_status,
        segments=segments,
    )


def from_fields(
    manifest: Manifest, fields: Mapping[str, int]
) -> tuple[dict[str, list[int]], dict[str, int]]:
    """Feature and segment counts from the Redis hash fields of ``app.drift.counts``."""
    ref = manifest.drift_reference
    features: dict[str, list[int]] = {}
    for f in ref.features if ref else []:
        features[f.name] = [int(fields.get(f"f:{f.name}:{i}", 0)) for i in range(len(f.shares))]
    segments = {k[2:]: int(v) for k, v in fields.items() if k.startswith("s:")}
    return features, segments
