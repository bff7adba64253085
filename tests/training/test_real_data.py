"""The training job on two small real, messy public datasets (skipped where they are absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.registry.store import ModelStore
from app.training.config import parse_config
from app.training.data import load_training_data
from app.training.job import train
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.realdata


def shared_file(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real dataset {path} is not present (it lives outside the repository)")
    return path


def test_customer_personality_table(tmp_path: Path) -> None:
    """Missing incomes, nonsense categories, constant columns: trains, and the outcomes differ."""
    raw = {
        "data": {"path": str(shared_file("customer_personality.csv")), "id_column": "ID"},
        "outcomes": ["Response", "Complain", "AcceptedCmp1"],
        "features": [
            {"name": "Income", "transform": "log1p", "winsorize": [0.0, 0.99]},
            {"name": "Recency"},
            {"name": "MntWines", "transform": "log1p"},
            {"name": "MntMeatProducts", "transform": "log1p"},
            {"name": "MntGoldProds", "transform": "log1p"},
            {"name": "NumWebPurchases"},
            {"name": "NumStorePurchases"},
            {"name": "NumWebVisitsMonth"},
            {"name": "Kidhome", "type": "categorical"},
            {"name": "Marital_Status", "type": "categorical", "min_frequency": 0.02},
            {"name": "Education", "type": "categorical"},
        ],
        "model": {"name": "personality", "k_min": 3, "k_max": 6, "stability_bootstraps": 3},
    }
    store = ModelStore(tmp_path / "store")
    result = train(parse_config(raw, base_dir=tmp_path), store, promote=True)
    m = result.manifest
    assert m.data.rows == 2240
    income = next(f for f in m.features if f.name == "Income")
    assert income.stats is not None and 0.0 < income.stats.missing_share < 0.02
    marital = next(f for f in m.features if f.name == "Marital_Status")
    assert marital.infrequent is not None and {"Absurd", "YOLO"} <= set(marital.infrequent)
    response = next(t for t in m.outcomes if t.name == "Response")
    assert response.kind == "binary" and response.significant
    assert 3 <= m.k <= 6
    assert sum(s.size for s in m.segments) == 2240


def test_online_retail_transaction_log(tmp_path: Path) -> None:
    """Float ids, rows without a customer, cancellations with negative quantities."""
    raw = {
        "data": {
            "path": str(shared_file("online_retail_sample.csv")),
            "kind": "transactions",
            "transactions": {
                "customer": "CustomerID",
                "timestamp": "InvoiceDate",
                "quantity": "Quantity",
                "unit_price": "UnitPrice",
                "order": "InvoiceNo",
            },
        },
        "features": [
            {"name": "recency_days"},
            {"name": "frequency", "transform": "log1p"},
            {"name": "monetary", "transform": "log1p", "clip": [0, None]},
            {"name": "avg_order_value", "transform": "log1p", "clip": [0, None]},
        ],
        "model": {"name": "retail", "k_min": 3, "k_max": 6},
    }
    store = ModelStore(tmp_path / "store")
    result = train(parse_config(raw, base_dir=tmp_path), store, promote=True)
    m = result.manifest
    assert m.data.dropped_rows >= 2358  # rows without CustomerID
    assert m.data.source_rows == 8373
    assert 50 < m.data.rows < 1000
    assert m.data.reference_date == "2010-12-06"
    # ids are the text the file holds: this export wrote 17850 as 17850.0, and that is the id
    # (read as a number it once became 17850, and 00017850 would have too)
    frame = load_training_data(parse_config(raw, base_dir=tmp_path)).frame
    assert "17850.0" in frame.index
    assert "17850" not in frame.index
    # a customer whose only invoice was cancelled has negative net spend, clipped before log1p
    assert (frame["monetary"] < 0).any()
    assert sum(s.size for s in m.segments) == m.data.rows
