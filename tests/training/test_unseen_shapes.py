"""The defaults on data shaped like public tables, with a config written from the README
alone: a card-usage table ("CC General": money columns with long tails and many zeros, one
credit limit missing, no transform written) and a telecom churn table ("Telco customer
churn": churn driven mostly by categorical columns). The job must beat the plain script
(median-impute, standardise, one-hot, KMeans with k by silhouette) on the outcome, with every
segment at least 5%."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import silhouette_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

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


def telco_churn(n: int = 5_000, seed: int = 7) -> pd.DataFrame:
    """The public churn table's columns; churn follows the contract, the internet service, its
    security and support add-ons, the payment method, tenure and age, not gender or phone."""
    rng = np.random.default_rng(seed)

    def pick(levels: list[str], p: list[float]) -> np.ndarray:
        return rng.choice(levels, n, p=p)

    contract = pick(["Month-to-month", "One year", "Two year"], [0.55, 0.21, 0.24])
    usual = pd.Series(contract).map({"Month-to-month": 18, "One year": 42, "Two year": 57})
    tenure = np.clip(np.round(usual.to_numpy() + rng.normal(0, 18, n)), 0, 72).astype(int)
    internet = pick(["DSL", "Fiber optic", "No"], [0.34, 0.44, 0.22])
    security, support = (
        np.where(internet == "No", "No internet service", pick(["Yes", "No"], [0.35, 0.65]))
        for _ in range(2)
    )
    pay = pick(
        [
            "Electronic check",
            "Mailed check",
            "Bank transfer (automatic)",
            "Credit card (automatic)",
        ],
        [0.34, 0.23, 0.22, 0.21],
    )
    price = pd.Series(internet).map({"DSL": 55, "Fiber optic": 88, "No": 21}).to_numpy()
    monthly = price + 5 * (security == "Yes") + 5 * (support == "Yes") + rng.normal(0, 8, n)
    monthly = monthly.round(2).clip(18.25, 118.75)
    senior = (rng.uniform(size=n) < 0.16).astype(int)
    paperless = pick(["Yes", "No"], [0.59, 0.41])
    logit = (
        -1.9
        + 1.2 * (contract == "Month-to-month")
        - 0.9 * (contract == "Two year")
        + 0.9 * (internet == "Fiber optic")
        - 0.8 * (internet == "No")
        + 0.6 * (pay == "Electronic check")
        + 0.5 * (security == "No")
        + 0.5 * (support == "No")
        + 0.3 * senior
        + 0.3 * (paperless == "Yes")
        - 0.03 * tenure
    )
    churn = rng.uniform(size=n) < 1 / (1 + np.exp(-logit))
    phone = pick(["Yes", "No"], [0.9, 0.1])
    total = (tenure * monthly * rng.uniform(0.95, 1.05, n)).round(2)
    return pd.DataFrame(
        {
            "customerID": [f"{i:04d}-TELCO" for i in range(n)],
            "gender": pick(["Male", "Female"], [0.5, 0.5]),
            "SeniorCitizen": senior,
            "Partner": pick(["Yes", "No"], [0.48, 0.52]),
            "Dependents": pick(["Yes", "No"], [0.3, 0.7]),
            "tenure": tenure,
            "PhoneService": phone,
            "MultipleLines": np.where(
                phone == "No", "No phone service", pick(["Yes", "No"], [0.47, 0.53])
            ),
            "InternetService": internet,
            "OnlineSecurity": security,
            "TechSupport": support,
            "Contract": contract,
            "PaperlessBilling": paperless,
            "PaymentMethod": pay,
            "MonthlyCharges": monthly,
            "TotalCharges": np.where(tenure == 0, " ", total.astype(str)),  # as published
            "Churn": np.where(churn, "Yes", "No"),
        }
    )


def plain_fits(
    frame: pd.DataFrame, columns: list[str], categorical: tuple[str, ...] = ()
) -> dict[int, tuple[float, np.ndarray]]:
    """The plain script's KMeans for each k in 2..10: its silhouette and labels."""
    numeric = [c for c in columns if c not in categorical]
    x = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ("cat", OneHotEncoder(sparse_output=False), list(categorical)),
        ]
    ).fit_transform(frame[columns])
    fits = {}
    for k in range(2, 11):
        labels = KMeans(k, n_init=10, random_state=0).fit_predict(x)
        fits[k] = (float(silhouette_score(x, labels, sample_size=2_000, random_state=0)), labels)
    return fits


def by_silhouette(fits: dict[int, tuple[float, np.ndarray]], ks: range) -> np.ndarray:
    """The plain script's choice: the labels of the k in ``ks`` with the best silhouette."""
    return max((fits[k] for k in ks), key=lambda fit: fit[0])[1]


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
    plain = outcome_effect(outcome, by_silhouette(plain_fits(frame, features), range(3, 9))).size
    assert job is not None and plain is not None
    assert job >= 1.2 * plain, (job, plain)


TELCO_CATEGORICAL = (
    "gender",
    "Partner",
    "Dependents",
    "PhoneService",
    "MultipleLines",
    "InternetService",
    "OnlineSecurity",
    "TechSupport",
    "Contract",
    "PaperlessBilling",
    "PaymentMethod",
)


def test_a_churn_table_driven_by_categories_with_the_defaults_beats_the_plain_script(
    tmp_path: Path,
) -> None:
    """Every column of the table listed, its text columns as categorical: the plain script's
    one-hot columns of gender, partner and phone service split the customers as much as the
    contract does, while the job's outcome-weighted space weighs each column by its own
    association with churn (the job by silhouette alone reaches V 0.41, not 1.2x)."""
    frame = telco_churn()
    path = tmp_path / "telco.csv"
    frame.to_csv(path, index=False)
    numeric = ["SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges"]
    raw = {
        "outcomes": ["Churn"],
        "data": {"path": str(path), "id_column": "customerID"},
        "features": [{"name": name} for name in numeric]
        + [{"name": name, "type": "categorical"} for name in TELCO_CATEGORICAL],
        "model": {"name": "telco"},
    }
    store = ModelStore(tmp_path / "store")
    m = train(parse_config(raw, base_dir=tmp_path), store).manifest
    assert 3 <= m.k <= 8 and min(s.share for s in m.segments) >= 0.05
    assert m.quality.stability_ari is not None and m.quality.stability_ari >= 0.9
    features = [*numeric, *TELCO_CATEGORICAL]
    published = frame.assign(TotalCharges=pd.to_numeric(frame["TotalCharges"], errors="coerce"))
    customers = published.set_index("customerID")[features]
    labels = store.load("telco", m.version).estimator.predict(customers)
    churn = (frame["Churn"] == "Yes").to_numpy(dtype=float)
    job = outcome_effect(churn, pd.factorize(np.asarray(labels))[0]).size
    # the plain script's k by silhouette over 2..10 (issue 14's) picks 2 here (V 0.23); over
    # the job's 3..8 it picks 4 (V 0.39): the job must beat the better of the two
    fits = plain_fits(published, features, TELCO_CATEGORICAL)
    plain = max(
        outcome_effect(churn, by_silhouette(fits, ks)).size or 0.0
        for ks in (range(2, 11), range(3, 9))
    )
    assert job is not None
    assert job >= 1.2 * plain, (job, plain)
