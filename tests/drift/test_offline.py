"""PSI by hand, and offline drift of files against a real trained version."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from app.drift.offline import drift_of_file
from app.drift.psi import EPSILON, bin_labels, numeric_counts, psi
from tests.drift.conftest import THRESHOLDS, write


def test_psi_matches_a_hand_computation() -> None:
    expected = [0.25, 0.25, 0.5]
    actual = [0.1, 0.4, 0.5]
    # (0.1-0.25) ln(0.1/0.25) + (0.4-0.25) ln(0.4/0.25) + 0
    by_hand = 0.15 * math.log(2.5) + 0.15 * math.log(1.6)
    assert psi(expected, actual) == pytest.approx(by_hand, rel=1e-12)
    assert by_hand == pytest.approx(0.2079442, abs=1e-6)
    # an empty observed bin counts as EPSILON, not zero (finite)
    assert psi([0.5, 0.5], [1.0, 0.0]) == pytest.approx(
        0.5 * math.log(2) + (EPSILON - 0.5) * math.log(EPSILON / 0.5)
    )


def test_bins_are_right_closed_with_open_ends_and_a_missing_bin() -> None:
    counts = numeric_counts(np.array([-5.0, 1.0, 1.5, 2.0, 99.0, np.nan]), [1.0, 2.0])
    assert counts.tolist() == [2, 2, 1, 1]


def test_bin_labels_write_large_edges_in_plain_digits() -> None:
    """An income's deciles were labelled ``(2.412e+04, 3.201e+04]`` in /v1/drift and on the
    dashboard: rounded, so a customer's 24,118 seemed to fall in the wrong bin, and unreadable
    to the people who watch drift."""
    labels = bin_labels([24_117.5, 32_010.0, 1_250_000.25], None)
    assert labels == [
        "<= 24117.5",
        "(24117.5, 32010]",
        "(32010, 1250000.2]",
        "> 1250000.2",
        "missing",
    ]
    assert bin_labels([6.0, 173.5, 0.4821], None)[:2] == ["<= 6", "(6, 173.5]"]


def test_a_sample_of_the_training_data_does_not_drift(
    trained: Any, customers: Any, tmp_path: Path
) -> None:
    store, result = trained
    manifest = result.manifest
    assert manifest.drift_reference is not None
    sample = customers[0].sample(frac=0.5, random_state=1)
    path = write(sample, tmp_path / "sample.csv")
    report = drift_of_file(store, manifest.model_name, manifest.version, path, THRESHOLDS)
    assert report.has_reference
    assert all(f.psi is not None and f.psi < 0.1 for f in report.features), report.features
    assert report.status == "ok"
    assert report.observations == len(sample)


def test_one_shifted_feature_drifts_and_only_it(
    trained: Any, customers: Any, tmp_path: Path
) -> None:
    store, result = trained
    manifest = result.manifest
    shifted = customers[0].sample(frac=0.5, random_state=2).copy()
    shifted["sessions_30d"] = shifted["sessions_30d"] * 3 + 5
    path = write(shifted, tmp_path / "shifted.csv")
    report = drift_of_file(store, manifest.model_name, manifest.version, path, THRESHOLDS)
    by_name = {f.name: f for f in report.features}
    assert by_name["sessions_30d"].status == "drift"
    assert by_name["plan"].status == "ok" and by_name["tenure_days"].status == "ok"
    assert report.status == "drift"


def test_shifted_segment_shares_drift(trained: Any, customers: Any, tmp_path: Path) -> None:
    store, result = trained
    manifest = result.manifest
    frame = customers[0]
    model = store.load(manifest.model_name, manifest.version).estimator
    labels = model.predict(frame.set_index("customer_id"))
    biggest = max(manifest.segments, key=lambda s: s.share).id
    # nine in ten customers of the file come from one segment
    inside = frame[labels == biggest].sample(900, replace=True, random_state=3)
    outside = frame[labels != biggest].sample(100, random_state=3)
    mixed = pd.concat([inside.assign(customer_id=[f"x{i}" for i in range(900)]), outside])
    path = write(mixed, tmp_path / "mixed.csv")
    report = drift_of_file(store, manifest.model_name, manifest.version, path, THRESHOLDS)
    assert report.segment_status == "drift"
    seg = next(s for s in report.segments if s.id == biggest)
    assert seg.status == "drift" and seg.live_share == pytest.approx(0.9, abs=0.01)
