"""Convergence flags: segments with close centres or outcomes that do not differ."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from app.drift.reference import convergence
from app.registry.manifest import NumericProfile, SegmentInfo


def _segment(sid: str, *z: float) -> SegmentInfo:
    numeric = {f"f{i}": NumericProfile(mean=0.0, median=0.0, z=v) for i, v in enumerate(z)}
    return SegmentInfo(
        id=sid, name=sid, kind="cluster", description="", size=100, share=0.25, numeric=numeric
    )


def test_close_centres_are_flagged_and_distinct_ones_not() -> None:
    segments = [_segment("a", 1.0, -1.0), _segment("b", 1.1, -0.9), _segment("c", -1.0, 1.0)]
    pairs = convergence(segments)
    assert [(p.segments, p.reasons) for p in pairs] == [(("a", "b"), ["close_centres"])]
    assert pairs[0].distance < 0.25


def test_segments_whose_outcomes_do_not_differ_are_flagged() -> None:
    rng = np.random.default_rng(0)
    labels = np.array(["a"] * 500 + ["b"] * 500 + ["c"] * 500, dtype=object)
    ltv = np.concatenate(
        [rng.normal(100, 10, 500), rng.normal(100, 10, 500), rng.normal(300, 10, 500)]
    )
    outcomes = pd.DataFrame({"ltv": ltv})
    segments = [_segment("a", 1.0), _segment("b", -1.0), _segment("c", 0.0)]
    pairs = convergence(segments, labels, outcomes)
    assert [(p.segments, p.reasons) for p in pairs] == [(("a", "b"), ["same_outcomes"])]


def test_a_trained_version_keeps_its_reference_and_no_false_flags(trained: Any) -> None:
    _, result = trained
    manifest = result.manifest
    ref = manifest.drift_reference
    assert ref is not None
    assert ref.segment_shares == {s.id: s.share for s in manifest.segments}
    for f in ref.features:
        assert abs(sum(f.shares) - 1) < 1e-6
        if f.type == "numeric":
            assert f.edges == sorted(f.edges or []) and len(f.shares) == len(f.edges or []) + 2
    assert manifest.convergence == []  # the planted segments are distinct
    assert not any("converging" in s.flags for s in manifest.segments)
