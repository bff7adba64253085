"""A code category written as a number in the training file (an insurance table's
``Region_Code`` ``28.0``) and sent by a client as a JSON number (``28``, the category
``"28"``): the explanation names the category training knows, as it names ``services`` for
``Services``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from app.assignment.service import explanation
from app.registry.store import ModelStore
from app.serving.model import build_serving_model
from app.training.config import parse_config
from app.training.job import train


def test_a_code_sent_as_a_number_names_the_category_as_the_file_writes_it(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(3)
    n = 300
    group = rng.choice(3, n)
    frame = pd.DataFrame(
        {
            "id": [f"c{i}" for i in range(n)],
            "premium": np.array([100.0, 500.0, 2000.0])[group] + rng.normal(0, 10, n),
            "Region_Code": np.array(["28.0", "15.0", "8.0"])[group],
        }
    )
    frame.to_csv(data := tmp_path / "insurance.csv", index=False)
    raw = {
        "data": {"path": str(data), "id_column": "id"},
        "features": [{"name": "premium"}, {"name": "Region_Code", "type": "categorical"}],
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0},
    }
    store = ModelStore(tmp_path / "s")
    train(parse_config(raw, base_dir=tmp_path), store, promote=True)
    serving = build_serving_model(store, "customers", None).with_overrides({})

    def said(code: object) -> str:
        features = {"premium": 480.0, "Region_Code": code}
        found = explanation(serving, serving.assign_one(features), features)
        return str(found["text"])

    text = said(28)
    assert "Region_Code '28' (counted as none of its categories; '28.0' in training: a " in text
    assert "send it as the file writes it" in text, text
    assert "'15.0' in training" in said("15")
    assert "' in training" not in said("99")  # no category of that number: nothing to name
    assert "never seen" not in said("28.0")


def test_the_explanation_names_only_the_features_that_weigh(tmp_path: Path) -> None:
    """A bank model explained "vs 'Low duration' mostly on duration, balance" with balance's
    weight 0.0001 beside duration's 0.1774: the text names the drivers of at least 5% of the
    first's weight, the drivers list keeps every one."""
    import dataclasses

    rng = np.random.default_rng(4)
    n = 300
    group = rng.choice(3, n)
    frame = pd.DataFrame(
        {
            "id": [f"c{i}" for i in range(n)],
            "duration": np.array([50.0, 250.0, 800.0])[group] + rng.normal(0, 10, n),
            "balance": rng.normal(1000, 50, n),
        }
    )
    frame.to_csv(data := tmp_path / "bank.csv", index=False)
    raw = {
        "data": {"path": str(data), "id_column": "id"},
        "features": [{"name": "duration"}, {"name": "balance"}],
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0},
    }
    store = ModelStore(tmp_path / "s")
    train(parse_config(raw, base_dir=tmp_path), store, promote=True)
    serving = build_serving_model(store, "customers", None).with_overrides({})
    features = {"duration": 240.0, "balance": 1000.0}
    found = serving.assign_one(features)
    faint = dataclasses.replace(found, drivers=(("duration", 0.1774), ("balance", 0.0001)))
    said = explanation(serving, faint, features)
    assert said["text"].endswith(" mostly on duration"), said["text"]
    assert [d["feature"] for d in said["drivers"]] == ["duration", "balance"]
    both = dataclasses.replace(found, drivers=(("duration", 0.1774), ("balance", 0.02)))
    assert explanation(serving, both, features)["text"].endswith(" mostly on duration, balance")
