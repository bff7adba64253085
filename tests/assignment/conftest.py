"""Fixtures of the assignment tests: example customers with their features."""

from __future__ import annotations

from typing import Any

import pytest

from app.registry.store import ModelStore
from app.training.job import TrainResult

ROWS = 400  # example customers the property tests draw from


def _features(row: dict[str, Any], names: list[str]) -> dict[str, Any]:
    out = {}
    for name in names:
        value = row[name]
        if isinstance(value, float) and value != value:
            value = None
        elif hasattr(value, "item"):
            value = value.item()
        out[name] = value
    return out


@pytest.fixture(scope="module")
def example(customers: Any, trained: tuple[ModelStore, TrainResult]) -> list[dict[str, Any]]:
    names = [f.name for f in trained[1].manifest.features]
    rows = customers[0].head(ROWS).to_dict("records")
    return [
        {"customer_id": f"id-{r['customer_id']}", "features": _features(r, names)} for r in rows
    ]
