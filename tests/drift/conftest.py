"""Drift fixtures: the suite's trained model, and files derived from its training data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.drift.schemas import Thresholds

THRESHOLDS = Thresholds(watch=0.1, drift=0.25, min_observations=100)


def write(frame: Any, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path
