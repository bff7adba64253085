"""The customer of the README's first call (and of ``./scripts/run``'s and the OpenAPI
example) is a typical member of a segment of the example model, not a borderline case: a new
user's first answer should show a confident assignment."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from app.assignment.schemas import EXAMPLE_FEATURES
from app.registry.store import ModelStore
from app.serving.model import build_serving_model
from app.training.job import TrainResult

ROOT = Path(__file__).resolve().parents[2]


def _first_features(text: str) -> dict[str, Any]:
    """The JSON body of the first ``/v1/assign`` curl call in ``text`` (its features)."""
    found = re.search(r"/v1/assign -H.*?-d '(\{.*?\})'", text, re.S)
    assert found is not None, "no /v1/assign call with a body"
    features: dict[str, Any] = json.loads(found.group(1))["features"]
    return features


def _numbers_as_floats(features: dict[str, Any]) -> dict[str, Any]:
    return {k: float(v) if isinstance(v, int | float) else v for k, v in features.items()}


def test_the_readme_customer_is_a_confident_member_of_a_segment(
    trained: tuple[ModelStore, TrainResult],
) -> None:
    readme = _first_features((ROOT / "README.md").read_text())
    assert _first_features((ROOT / "scripts" / "run").read_text().replace("\\$", "$")) == readme
    assert _numbers_as_floats(readme) == _numbers_as_floats(EXAMPLE_FEATURES)  # the OpenAPI's
    store, result = trained
    serving = build_serving_model(store, result.manifest.model_name, result.manifest.version)
    found = serving.assign_one(readme)
    assert found.confidence >= 0.5, (found.segment_id, found.confidence)
