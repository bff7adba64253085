"""Fixtures of the assignment tests: example customers with their features."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from app.main import create_app
from app.registry.store import ModelStore
from app.settings import Settings
from app.training.job import TrainResult

ROWS = 400  # example customers the property tests draw from


@contextmanager
def served_client(store: Path, prefix: str, redis_url: str) -> Iterator[TestClient]:
    """The service on a module's own model store, recording under ``prefix``; afterwards
    only the keys it recorded are deleted."""
    settings = Settings(model_store=store, model_name="customers", dev_mode=True, key_prefix=prefix)
    with TestClient(create_app(settings)) as test_client:
        yield test_client
    with redis.Redis.from_url(redis_url) as r:
        keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            r.delete(*keys)


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
