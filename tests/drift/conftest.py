"""Drift fixtures: the suite's trained model, and files derived from its training data."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from app.drift.schemas import Thresholds
from app.registry.store import ModelStore

THRESHOLDS = Thresholds(watch=0.1, drift=0.25, min_observations=100)


def write(frame: Any, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def store_copy(trained: Any, tmp_path: Path) -> ModelStore:
    """A copy of the suite's trained store, for a test that writes into it."""
    store, _ = trained
    copy = ModelStore(tmp_path / "store")
    shutil.copytree(store.root, copy.root)
    return copy
