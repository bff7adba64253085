"""The RFM path: a transaction log in, a valid promoted model out."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from app.registry.store import ModelStore
from app.training.data import RFM_FEATURES, derive_rfm
from app.training.job import train
from tests.conftest import example_config


def test_rfm_features_by_hand() -> None:
    """A refund (negative amount) lowers the net amount only: a cancellation invoice of its
    own id is no order, and its date no purchase (it made returners "frequent" and
    "recent"); a customer with refunds only has no purchase and no features."""
    events = pd.DataFrame(
        {
            "customer": ["a", "a", "a", "a", "b", "c"],
            "when": pd.to_datetime(
                ["2026-01-01", "2026-01-01", "2026-01-11", "2026-01-21", "2026-01-30", "2026-01-15"]
            ),
            "amount": [10.0, 5.0, -3.0, -5.0, 100.0, -40.0],
            "order": ["o1", "o1", "o1", "C2", "o3", "C4"],
        }
    )
    rfm = derive_rfm(events, date(2026, 2, 1))
    assert list(rfm.columns) == list(RFM_FEATURES)
    assert rfm.index.to_list() == ["a", "b"]  # c returned only: nothing bought to segment
    a, b = rfm.loc["a"], rfm.loc["b"]
    assert a["recency_days"] == 31 and a["tenure_days"] == 31  # the refunds are no purchase
    assert a["frequency"] == 1  # o1 (with a refund line in it); C2 is no order
    assert a["monetary"] == 7.0  # net: 10 + 5 - 3 - 5
    assert a["avg_order_value"] == 7.0
    assert b["recency_days"] == 2 and b["frequency"] == 1 and b["monetary"] == 100.0


def test_a_transaction_log_trains_a_promoted_model(tmp_path: Path, transactions_csv: Path) -> None:
    store = ModelStore(tmp_path / "store")
    result = train(example_config("transactions", transactions_csv), store, promote=True)
    m = result.manifest
    assert store.promoted(m.model_name) == m.version
    assert m.data.kind == "transactions"
    assert m.data.reference_date is not None
    log = pd.read_csv(transactions_csv)
    assert m.data.rows == log["customer_id"].nunique()
    assert {f.name for f in m.features} <= set(RFM_FEATURES)
    assert 3 <= m.k <= 8
    assert m.quality.silhouette is not None and m.quality.silhouette > 0.2
    rule = [s for s in m.segments if s.kind == "rule"]
    assert rule and rule[0].numeric["tenure_days"].mean < 30
    loaded = store.load(m.model_name)
    assert loaded.manifest.version == m.version


def test_reference_date_drops_later_events(tmp_path: Path) -> None:
    log = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "c", "d", None],
            "order_id": ["1", "2", "3", "4", "5", "6"],
            "timestamp": [
                "2026-01-01",
                "2026-03-01",
                "2026-01-05",
                "2026-01-10",
                "2026-01-20",
                "2026-01-02",
            ],
            "amount": [10, 20, 30, 40, 50, 60],
        }
    )
    path = tmp_path / "log.csv"
    log.to_csv(path, index=False)
    from app.training.config import parse_config
    from app.training.data import load_training_data

    raw = {
        "data": {
            "path": str(path),
            "kind": "transactions",
            "transactions": {
                "customer": "customer_id",
                "timestamp": "timestamp",
                "amount": "amount",
                "order": "order_id",
                "reference_date": "2026-02-01",
            },
        },
        "features": [{"name": "monetary"}, {"name": "recency_days"}],
        "model": {"k_min": 2, "k_max": 3},
    }
    data = load_training_data(parse_config(raw, base_dir=tmp_path))
    assert data.frame.loc["a", "monetary"] == 10  # the March order is after the reference date
    assert data.dropped_rows == 2  # the later event and the one without a customer id
    assert data.source_rows == 6


@pytest.mark.parametrize("column", ["timestamp"])
def test_unparseable_timestamps_are_refused(tmp_path: Path, column: str) -> None:
    from app.errors import DataError
    from app.training.config import parse_config
    from app.training.data import load_training_data

    path = tmp_path / "log.csv"
    pd.DataFrame({"c": ["a"], column: ["yesterday-ish"], "amount": [1.0]}).to_csv(path, index=False)
    raw = {
        "data": {
            "path": str(path),
            "kind": "transactions",
            "transactions": {"customer": "c", "timestamp": column, "amount": "amount"},
        },
        "features": [{"name": "monetary"}],
    }
    with pytest.raises(DataError, match=f"column '{column}' is not a timestamp"):
        load_training_data(parse_config(raw, base_dir=tmp_path))


def test_a_log_of_a_few_days_is_noted_with_a_reference_date_months_later(
    tmp_path: Path,
) -> None:
    """A week of purchases read as of two months later: every customer's recency is 55 to
    62 days, and the segments' 'lapsed' and 'recent' still differ by days; the note measured
    the days from the first purchase to the reference date (67) and said nothing. It measures
    the purchases' own span."""
    from app.training.config import parse_config
    from app.training.data import load_training_data

    days = pd.date_range("2026-01-25", "2026-01-31", periods=8).strftime("%Y-%m-%d")
    log = pd.DataFrame(
        {"customer_id": list("abcdabcd"), "timestamp": list(days), "amount": [10.0] * 8}
    )
    path = tmp_path / "log.csv"
    log.to_csv(path, index=False)
    tx = {"customer": "customer_id", "timestamp": "timestamp", "amount": "amount"}
    raw = {
        "data": {
            "path": str(path),
            "kind": "transactions",
            "transactions": {**tx, "reference_date": "2026-04-01"},
        },
        "features": [{"name": "monetary"}, {"name": "recency_days"}],
        "model": {"k_min": 2, "k_max": 3},
    }
    notes = load_training_data(parse_config(raw, base_dir=tmp_path)).notes
    said = [n for n in notes if "span" in n]
    assert [n.split(":")[0] for n in said] == [
        "the log's purchases before the reference date span 7 days (2026-01-25 to 2026-01-31)"
    ], notes


@pytest.mark.parametrize(("first", "noted"), [("2026-01-25", True), ("2025-11-01", False)])
def test_a_log_of_a_few_days_is_noted(tmp_path: Path, first: str, noted: bool) -> None:
    """The UCI retail sample's five days named a segment whose customers had last ordered 4
    days before "Lapsed", with no word that the log was five days long: a log whose purchases
    span fewer than four weeks before the reference date is noted, a longer one is not."""
    from app.training.config import parse_config
    from app.training.data import load_training_data

    days = pd.date_range(first, "2026-01-31", periods=8).strftime("%Y-%m-%d")
    log = pd.DataFrame(
        {
            "customer_id": list("abcdabcd"),
            "timestamp": list(days),
            "amount": [10, 20, 30, 40, 50, 60, -5, 70],
        }
    )
    path = tmp_path / "log.csv"
    log.to_csv(path, index=False)
    raw = {
        "data": {
            "path": str(path),
            "kind": "transactions",
            "transactions": {
                "customer": "customer_id",
                "timestamp": "timestamp",
                "amount": "amount",
                "reference_date": "2026-02-01",
            },
        },
        "features": [{"name": "monetary"}, {"name": "recency_days"}],
        "model": {"k_min": 2, "k_max": 3},
    }
    notes = load_training_data(parse_config(raw, base_dir=tmp_path)).notes
    said = [n for n in notes if "span" in n]
    assert said == (
        [
            "the log's purchases before the reference date span 7 days (2026-01-25 to "
            "2026-01-31): recency, frequency and tenure compare customers within them, so "
            "'lapsed' and 'recent' (and a segment so named) differ by days, not months; a log "
            "of several months tells customers' habits apart"
        ]
        if noted
        else []
    ), notes
