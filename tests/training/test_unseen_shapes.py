"""The defaults on data shaped like a public card-usage table ("CC General"), with a config
written from the README alone: money columns with long tails and many zeros, one credit limit
missing, no transform written. The job must beat the plain script (median-impute,
standardise, KMeans with k by silhouette) on the outcome, with every segment at least 5%."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.impute import SimpleImputer
from sklearn.metrics import silhouette_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from app.registry.store import ModelStore
from app.training.config import parse_config
from app.training.effects import outcome_effect
from app.training.job import train

MONEY = ["BALANCE", "PURCHASES", "CASH_ADVANCE", "CREDIT_LIMIT"]


def card_usage(n: int = 3_000, seed: int = 11) -> pd.DataFrame:
    """Revolvers, transactors, cash users and the inactive; transactors pay in full."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(4, n, p=[0.35, 0.3, 0.15, 0.2])
    limit = np.round(np.exp(rng.normal(8.2, 0.8, n)), -2).clip(50, 30_000)
    balance = np.select(
        [kind == 1, kind == 3],
        [rng.exponential(300, n), rng.exponential(80, n)],
        limit * rng.beta(3, 2, n),
    )
    buys = rng.uniform(size=n)
    purchases = np.select(
        [kind == 1, kind == 0, kind == 3],
        [
            np.exp(rng.normal(7.2, 1.0, n)),
            np.exp(rng.normal(5.8, 1.2, n)) * (buys < 0.7),
            np.exp(rng.normal(3, 1, n)) * (buys < 0.3),
        ],
        0.0,
    )
    cash = np.where(
        kind == 2,
        np.exp(rng.normal(7.5, 1.0, n)),
        np.exp(rng.normal(5, 1.5, n)) * (rng.uniform(size=n) < 0.25),
    )
    full = np.where(kind == 1, rng.beta(2, 1, n), 0.0) * (rng.uniform(size=n) < 0.8)
    frame = pd.DataFrame(
        {
            "CUST_ID": [f"C{10001 + i}" for i in range(n)],
            "BALANCE": balance.round(6),
            "PURCHASES": purchases.round(2),
            "CASH_ADVANCE": cash.round(6),
            "CREDIT_LIMIT": limit,
            "PRC_FULL_PAYMENT": full.round(6),
            "TENURE": np.where(rng.uniform(size=n) < 0.85, 12, rng.integers(6, 12, n)),
        }
    )
    frame.loc[7, "CREDIT_LIMIT"] = np.nan
    return frame


def plain_script(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    x = make_pipeline(SimpleImputer(strategy="median"), StandardScaler()).fit_transform(
        frame[columns]
    )
    best: tuple[float, np.ndarray] | None = None
    for k in range(3, 9):
        labels = KMeans(k, n_init=10, random_state=0).fit_predict(x)
        score = float(silhouette_score(x, labels, sample_size=2_000, random_state=0))
        if best is None or score > best[0]:
            best = (score, labels)
    assert best is not None
    return best[1]


def test_a_card_usage_table_with_the_defaults_beats_the_plain_script(tmp_path: Path) -> None:
    frame = card_usage()
    path = tmp_path / "cc_general.csv"
    frame.to_csv(path, index=False)
    features = [*MONEY, "TENURE"]
    raw = {  # as a new user writes it from the README: no transform, no model options
        "outcomes": ["PRC_FULL_PAYMENT"],
        "data": {"path": str(path), "id_column": "CUST_ID"},
        "features": [{"name": name} for name in features],
        "model": {"name": "cc"},
    }
    store = ModelStore(tmp_path / "store")
    m = train(parse_config(raw, base_dir=tmp_path), store).manifest
    assert {f.name for f in m.features if f.transform == "log1p"} == set(MONEY)
    assert 3 <= m.k <= 8 and min(s.share for s in m.segments) >= 0.05
    labels = store.load("cc", m.version).estimator.predict(frame.set_index("CUST_ID")[features])
    outcome = frame["PRC_FULL_PAYMENT"].to_numpy()
    job = outcome_effect(outcome, pd.factorize(np.asarray(labels))[0]).size
    plain = outcome_effect(outcome, plain_script(frame, features)).size
    assert job is not None and plain is not None
    assert job >= 1.2 * plain, (job, plain)
