"""The two comparison endpoints for ``bench/api_bench.py``, as a FastAPI app factory.

- ``POST /idiomatic``: what FastAPI itself costs. The body is validated by a pydantic model
  (the same shape and limits as ``/v1/assign``) and a constant document shaped like a real
  ``/v1/assign`` answer is returned through a ``response_model``, so the framework validates
  and serialises it the way an idiomatic endpoint would. No model is touched.
- ``POST /naive``: what a user would write instead of the compiled assigner: the same
  pydantic body, ``pd.DataFrame([features])`` and ``Pipeline.predict`` of the promoted model.

Both are ``async def`` (no thread-pool hop), which is the cheaper choice for the baselines.
Run it like the service, one worker::

    SEGMENTS_MODEL_STORE=models uvicorn --factory --app-dir bench baseline_app:create_app

It reads ``SEGMENTS_MODEL_STORE`` and ``SEGMENTS_MODEL_NAME`` (default ``customers``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from app.assignment.schemas import AssignResponse
from app.registry.store import ModelStore

FeatureValue = float | int | str | bool | None

# a realistic /v1/assign answer, returned as is by /idiomatic
CONSTANT: dict[str, Any] = {
    "customer_id": "C000042",
    "segment_id": "seg-002",
    "segment_name": "High spend, high frequency",
    "model_version": "20250101-000000-000000",
    "confidence": 0.4321,
    "explanation": {
        "kind": "cluster",
        "text": "closest to 'High spend, high frequency'; vs 'Dormant' mostly on spend, recency",
        "rule": None,
        "runner_up_id": "seg-004",
        "drivers": [
            {"feature": "monetary", "weight": 3.21},
            {"feature": "recency_days", "weight": 1.5},
            {"feature": "plan", "weight": 0.42},
        ],
    },
    "previous_segment_id": None,
    "changed": None,
    "recorded": False,
    "features_from": "request",
}


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: str = Field(min_length=1, max_length=128)
    features: dict[str, FeatureValue]


class NaiveAnswer(BaseModel):
    customer_id: str
    segment_id: str


def create_app() -> FastAPI:
    store = ModelStore(Path(os.environ.get("SEGMENTS_MODEL_STORE", "models")))
    model = store.load(os.environ.get("SEGMENTS_MODEL_NAME", "customers")).estimator
    pipeline, columns = model.pipeline, model.feature_names
    segment_ids, n_rules = list(model.segment_ids), model.n_rules

    app = FastAPI(title="baselines")

    @app.post("/idiomatic", response_model=AssignResponse)
    async def idiomatic(body: Body) -> dict[str, Any]:
        return CONSTANT

    @app.post("/naive", response_model=NaiveAnswer)
    async def naive(body: Body) -> dict[str, Any]:
        frame = pd.DataFrame([body.features], columns=columns)
        label = int(pipeline.predict(frame)[0])
        return {"customer_id": body.customer_id, "segment_id": segment_ids[n_rules + label]}

    return app
