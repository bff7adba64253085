"""Two trained versions of one model that answer differently, for the hot-swap tests."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
from threadpoolctl import threadpool_limits

from app.registry.store import ModelStore
from app.training.job import train
from tests.conftest import example_config

MODEL = "customers"


def client_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as a JSON client sends them: None for NaN, JSON numbers and strings."""
    records = frame.to_dict(orient="records")
    return [
        {str(k): None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
        for r in orjson.loads(orjson.dumps(records))
    ]


@dataclass(frozen=True)
class Versions:
    store: ModelStore  # the template: each test works on its own copy
    old: str  # promoted
    new: str
    rows: list[dict[str, Any]]  # the customers the clients send
    segment: dict[str, list[str]]  # version -> expected segment id of each row
    names: dict[str, dict[str, str]]  # version -> segment id -> name, from its manifest


def train_two_versions(
    folder: Path, customers: pd.DataFrame, customers_csv: Path, sample: int
) -> Versions:
    """k=3 (promoted) and k=6 on the same data: many customers change segment between them."""
    store = ModelStore(folder)
    with threadpool_limits(1):  # see test_compiled: BLAS threads thrash on a busy machine
        old = train(
            example_config(MODEL, customers_csv, stability_bootstraps=0, k_min=3, k_max=3),
            store,
            promote=True,
        )
        new = train(
            example_config(MODEL, customers_csv, stability_bootstraps=0, k_min=6, k_max=6, seed=7),
            store,
            promote=False,
        )
    frame = customers.set_index("customer_id").head(sample)
    segment, names = {}, {}
    for manifest in (old.manifest, new.manifest):
        model = store.load(MODEL, manifest.version).estimator
        segment[manifest.version] = [str(s) for s in model.predict(frame)]
        names[manifest.version] = {s.id: s.name for s in manifest.segments}
    # the versions answer differently for many customers, so a mixed answer would show
    differ = sum(a != b for a, b in zip(*segment.values(), strict=True))
    assert differ > len(frame) // 10
    rows = client_rows(frame[store.load(MODEL).estimator.feature_names])
    return Versions(store, old.manifest.version, new.manifest.version, rows, segment, names)
