"""Offline drift: a customer file (or transaction log) against a stored version.

The file is read as the version's own training config reads its data (for a transaction
log, the same RFM derivation as training, as of the day after its last event unless
``reference_date`` is given), assigned by the version's model, and binned against its
reference.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from app.drift.compare import report
from app.drift.psi import category_counts, numeric_counts
from app.drift.schemas import DriftReport, Thresholds
from app.registry.store import ModelStore
from app.training.config import OutcomesConfig, TrainConfig, parse_config
from app.training.data import load_training_data
from app.training.model import SegmentationModel


def config_for_file(
    config: dict[str, object], path: Path, reference_date: date | None = None
) -> TrainConfig:
    """A version's training config (``manifest.config``) reading ``path`` instead, without
    outcomes (a new file need not have them)."""
    cfg = parse_config(dict(config), base_dir=path.parent, source="the version's config")
    data = cfg.data.model_copy(update={"path": path.resolve()})
    if data.transactions is not None:
        tx = data.transactions.model_copy(update={"reference_date": reference_date})
        data = data.model_copy(update={"transactions": tx})
    return cfg.model_copy(update={"data": data, "outcomes": OutcomesConfig()})


def load_frame(
    config: dict[str, object], path: Path, reference_date: date | None = None
) -> pd.DataFrame:
    """The file's customers and features, as training would see them."""
    cfg = config_for_file(config, path, reference_date)
    # k_min only bounds the rows needed to train; a small file can still be compared
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"k_min": 2})})
    return load_training_data(cfg).frame


def drift_of_frame(
    store: ModelStore,
    model_name: str,
    version: str,
    frame: pd.DataFrame,
    thresholds: Thresholds,
    source: str,
) -> DriftReport:
    loaded = store.load(model_name, version)
    manifest, model = loaded.manifest, loaded.estimator
    assert isinstance(model, SegmentationModel)
    ref = manifest.drift_reference
    features: dict[str, list[int]] = {}
    segments: dict[str, int] = {}
    if ref is not None and len(frame):
        for f in ref.features:
            column = frame[f.name]
            if f.type == "numeric":
                values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
                counts = numeric_counts(values, f.edges or [])
            else:
                counts = category_counts(column.tolist(), f.categories or [])
            features[f.name] = [int(c) for c in counts]
        labels, counts = np.unique(model.predict(frame).astype(str), return_counts=True)
        segments = {str(k): int(v) for k, v in zip(labels, counts, strict=True)}
    return report(manifest, features, segments, thresholds, source)


def drift_of_file(
    store: ModelStore,
    model_name: str,
    version: str,
    path: Path,
    thresholds: Thresholds,
    reference_date: date | None = None,
) -> DriftReport:
    manifest = store.manifest(model_name, version)
    frame = load_frame(manifest.config, path, reference_date)
    return drift_of_frame(store, model_name, version, frame, thresholds, str(path))
