"""Defects found by the hostile audit of drift and refresh (docs/drift.md), each pinned."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prometheus_client import REGISTRY

from app.drift.refresh import RefreshExit, refresh
from app.registry.store import ModelStore
from app.training.config import parse_config
from app.training.job import train
from tests.conftest import EXAMPLES
from tests.drift.conftest import THRESHOLDS


def test_refresh_if_drifted_reads_a_log_as_of_the_configs_reference_date(
    transactions_csv: Path, tmp_path: Path
) -> None:
    """The drift check of ``--if-drifted`` derives the RFM features as of the config's
    ``reference_date``, as training does: the same log and config are drift-free (it once
    derived them as of the day after the log's last event, so recency and tenure "drifted")."""
    last = pd.to_datetime(pd.read_csv(transactions_csv)["timestamp"]).max()
    as_of = (last - pd.Timedelta(days=120)).date()
    raw = tomllib.loads((EXAMPLES / "transactions.toml").read_text())
    raw["data"]["path"] = str(transactions_csv)
    raw["data"]["transactions"]["reference_date"] = as_of.isoformat()
    raw["model"]["stability_bootstraps"] = 0
    config = parse_config(raw, base_dir=EXAMPLES)
    store = ModelStore(tmp_path / "store")
    train(config, store, promote=True)
    versions = store.versions("transactions")
    result = refresh(config, store, THRESHOLDS, if_drifted=True)
    assert result.drift is not None
    drifting = [f.name for f in result.drift.features if f.status != "ok"]
    assert drifting == [] and result.drift.segment_status == "ok"
    assert result.outcome == RefreshExit.DRIFT_FREE
    assert store.versions("transactions") == versions


def _report(segments: dict[str, float | None], feature_psi: float | None) -> Any:
    from app.drift.schemas import DriftReport, FeatureDriftOut, SegmentShiftOut

    def status(psi: float | None) -> Any:
        return "no_data" if psi is None else "ok"

    return DriftReport(
        model_name="audit-gauges",
        model_version="v",
        source="live",
        has_reference=True,
        status="ok",
        observations=0 if feature_psi is None else 500,
        thresholds=THRESHOLDS,
        features=[
            FeatureDriftOut(
                name="monetary",
                type="numeric",
                psi=feature_psi,
                status=status(feature_psi),
                observations=0,
                bins=[],
            )
        ],
        segment_psi=None,
        segment_status="ok",
        segments=[
            SegmentShiftOut(
                id=sid,
                trained_share=0.2,
                live_share=None if psi is None else 0.2,
                psi=psi,
                status=status(psi),
                observations=0,
            )
            for sid, psi in segments.items()
        ],
    )


def _gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"model": "audit-gauges", **labels})


def test_drift_gauges_drop_segments_and_figures_no_longer_measured() -> None:
    """After a promotion to a version with fewer segments, or a window with no data, the
    gauges no longer show the old figures (they once kept them forever)."""
    from app.drift.service import set_gauges

    set_gauges(_report({"seg-001": 0.01, "seg-009": 0.3}, 0.2))
    assert _gauge("segments_drift_segment_psi", segment="seg-009") == 0.3
    assert _gauge("segments_drift_feature_psi", feature="monetary") == 0.2
    set_gauges(_report({"seg-001": 0.02}, None))  # seg-009 gone, no data on monetary
    assert _gauge("segments_drift_segment_psi", segment="seg-001") == 0.02
    assert _gauge("segments_drift_segment_psi", segment="seg-009") is None
    assert _gauge("segments_drift_segment_live_share", segment="seg-009") is None
    assert _gauge("segments_drift_feature_psi", feature="monetary") is None
    assert _gauge("segments_drift_observations") == 0


def test_a_failed_manifest_rewrite_leaves_the_version_as_it_was(
    store_copy: ModelStore, trained: Any, monkeypatch: Any
) -> None:
    """A refresh decision that cannot be written (disk full, here a failing fsync) leaves
    the stored manifest intact and no temporary file in the version's folder (one was left
    behind before)."""
    import os

    from app.drift.refresh import write_manifest

    version = trained[1].manifest.version
    folder = store_copy.version_dir("customers", version)
    before = sorted(p.name for p in folder.iterdir())
    original = (folder / "manifest.json").read_bytes()
    manifest = store_copy.manifest("customers", version)

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        write_manifest(store_copy, manifest)
    monkeypatch.undo()
    assert sorted(p.name for p in folder.iterdir()) == before
    assert (folder / "manifest.json").read_bytes() == original
    store_copy.load("customers", version)


def test_refresh_with_a_feature_dropped_compares_each_version_on_its_own_features(
    store_copy: ModelStore, trained: Any, customers_csv: Path
) -> None:
    """A refresh whose config drops a feature the promoted version uses still compares the
    two (each reads the data with its own features) and records its decision; it once
    crashed with a KeyError after training, leaving a candidate with no decision."""
    before = trained[1].manifest.version
    raw = tomllib.loads((EXAMPLES / "customers.toml").read_text())
    raw["data"]["path"] = str(customers_csv)
    raw["features"] = [f for f in raw["features"] if f["name"] != "support_tickets"]
    raw["model"]["stability_bootstraps"] = 0
    config = parse_config(raw, base_dir=EXAMPLES)
    result = refresh(config, store_copy, THRESHOLDS)
    assert result.candidate is not None and result.decision is not None
    names = {c.name for c in result.decision.checks}
    assert {"kept_ids", "no_new_flags"} <= names
    assert any(n.startswith("outcome_effect:") for n in names)
    stored = store_copy.manifest("customers", result.candidate.version).refresh
    assert stored is not None and stored.compared_with == before
    assert result.outcome in (RefreshExit.PROMOTED, RefreshExit.KEPT)


def test_refresh_on_a_file_the_promoted_version_cannot_read_trains_nothing(
    store_copy: ModelStore, customers: Any, tmp_path: Path
) -> None:
    """A file without a column the promoted version needs is one clear error before any
    training: no candidate is left in the store without a decision."""
    from app.errors import DataError

    data = tmp_path / "less.csv"
    customers[0].drop(columns=["support_tickets"]).to_csv(data, index=False)
    raw = tomllib.loads((EXAMPLES / "customers.toml").read_text())
    raw["data"]["path"] = str(data)
    raw["features"] = [f for f in raw["features"] if f["name"] != "support_tickets"]
    config = parse_config(raw, base_dir=EXAMPLES)
    versions = store_copy.versions("customers")
    with pytest.raises(DataError, match="support_tickets"):
        refresh(config, store_copy, THRESHOLDS)
    assert store_copy.versions("customers") == versions


def test_a_customer_table_is_read_in_bounded_parts_with_the_same_report(
    trained: Any, customers_csv: Path
) -> None:
    """A CSV table is counted part by part (memory bounded by the part, not the file: a
    500,000-row file once took the whole file in memory), with the same figures as whole."""
    from app.drift.offline import (
        config_for_file,
        drift_of_frame,
        drift_of_frames,
        load_frame,
        table_chunks,
    )

    store, result = trained
    version = result.manifest.version
    config = result.manifest.config
    parts = list(table_chunks(config_for_file(config, customers_csv), customers_csv, rows=3000))
    assert len(parts) > 1 and max(len(p) for p in parts) <= 3000
    whole = drift_of_frame(
        store, "customers", version, load_frame(config, customers_csv), THRESHOLDS, "x"
    )
    chunked = drift_of_frames(store, "customers", version, parts, THRESHOLDS, "x")
    assert chunked == whole
    assert whole.observations == sum(len(p) for p in parts)


def test_a_feature_missing_in_every_row_is_a_drift_not_an_error(
    trained: Any, customers: Any, tmp_path: Path
) -> None:
    """An upstream export that lost a column's values is the clearest drift there is: the
    report says so (exit 3) instead of refusing the file as training would."""
    from app.drift.offline import drift_of_file

    store, result = trained
    frame = customers[0].sample(2000, random_state=3)
    frame["monetary"] = None
    path = tmp_path / "blank.csv"
    frame.to_csv(path, index=False)
    found = drift_of_file(store, "customers", result.manifest.version, path, THRESHOLDS)
    by_name = {f.name: f for f in found.features}
    assert by_name["monetary"].status == "drift"
    assert by_name["monetary"].bins[-1].bin == "missing"
    assert by_name["monetary"].bins[-1].actual == 1.0
    assert by_name["frequency"].status == "ok"
    assert found.status == "drift"


def test_a_live_report_states_the_whole_hours_it_counts(trained: Any, service_redis: str) -> None:
    """Counts are kept per hour, so a window from 10:30 to 11:15 sums the hours 10:00-12:00:
    the report's since/until say so (they once echoed the asked window)."""
    import uuid

    import redis
    from fastapi.testclient import TestClient

    from app.drift.live import LIVE
    from app.main import create_app
    from tests.drift.test_live import _settings

    store, _ = trained
    prefix = f"drift-audit-{uuid.uuid4().hex[:8]}:"
    try:
        with TestClient(create_app(_settings(store, prefix))) as client:
            body = client.get(
                "/v1/drift?since=2026-03-01T10:30:00Z&until=2026-03-01T11:15:00Z"
            ).json()
            assert body["since"].startswith("2026-03-01T10:00:00")
            assert body["until"].startswith("2026-03-01T12:00:00")
            exact = client.get(
                "/v1/drift?since=2026-03-01T10:00:00Z&until=2026-03-01T11:00:00Z"
            ).json()
            assert exact["since"].startswith("2026-03-01T10:00:00")
            assert exact["until"].startswith("2026-03-01T11:00:00")
    finally:
        keys = list(redis.Redis.from_url(service_redis).scan_iter(match=f"{prefix}*"))
        if keys:
            redis.Redis.from_url(service_redis).delete(*keys)
        LIVE.reset()


def test_categories_are_binned_as_the_model_compares_them(trained: Any) -> None:
    """A categorical value counts in the bin of the category the model reads it as: 3, 3.0
    and "3" alike, True as "true" (3.0 once went to "other", a false drift), and a column
    read as floats because of a gap keeps "0"/"1" as its reference categories, not "0.0"."""
    from app.drift.psi import category_counts
    from app.drift.reference import build_reference

    counts = category_counts([3, 3.0, "3", True, None, float("nan"), "x"], ["3", "true"])
    assert counts.tolist() == [3, 1, 1, 2]
    manifest = trained[1].manifest
    config = parse_config(dict(manifest.config), base_dir=EXAMPLES)
    frame = pd.DataFrame({f.name: [1.0] * 4 for f in config.features})
    frame["plan"] = [0.0, 1.0, None, 1.0]
    reference = build_reference(config, frame, manifest.segments)
    plan = next(f for f in reference.features if f.name == "plan")
    assert plan.categories == ["1", "0"]
    assert plan.shares == [0.5, 0.25, 0.0, 0.25]
