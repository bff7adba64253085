"""The seeded example data: deterministic, well-formed, and holding the structure it plants."""

from __future__ import annotations

import tomllib
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from app.datasets import (
    CHANNELS,
    COUNTRIES,
    GROUPS,
    PLANS,
    PLANTED_SEGMENTS,
    SEGMENTS,
    make_customers,
    make_transactions,
    write_example_data,
)
from app.training.data import load_training_data
from tests.conftest import EXAMPLES, example_config

NUMERIC = [
    "recency_days",
    "frequency",
    "monetary",
    "avg_order_value",
    "sessions_30d",
    "feature_usage",
    "support_tickets",
    "tenure_days",
]
COLUMNS = ["customer_id", *NUMERIC, "plan", "channel", "country", "ltv", "churned", "converted"]


@pytest.fixture(scope="module")
def small() -> tuple[pd.DataFrame, np.ndarray]:
    return make_customers(n=5_000, seed=7)


@pytest.fixture(scope="module")
def log() -> tuple[pd.DataFrame, np.ndarray]:
    return make_transactions(n_customers=2_000, seed=11)


def test_customers_are_deterministic_per_seed() -> None:
    a, labels_a = make_customers(n=1_000, seed=3)
    b, labels_b = make_customers(n=1_000, seed=3)
    pd.testing.assert_frame_equal(a, b)
    np.testing.assert_array_equal(labels_a, labels_b)
    c, labels_c = make_customers(n=1_000, seed=4)
    assert not a["monetary"].equals(c["monetary"])
    assert not np.array_equal(labels_a, labels_c)


def test_customer_table_shape_columns_and_types(small: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, planted = small
    assert list(frame.columns) == COLUMNS
    assert len(frame) == len(planted) == 5_000
    ids = frame["customer_id"]
    assert ids.is_unique and ids.str.fullmatch(r"C\d{6}").all()
    for column in [*NUMERIC, "ltv"]:
        assert pd.api.types.is_numeric_dtype(frame[column]), column
    for column in ("recency_days", "sessions_30d", "support_tickets", "tenure_days"):
        assert pd.api.types.is_integer_dtype(frame[column]), column
    values = frame[NUMERIC].dropna()
    assert (values >= 0).all().all()
    assert frame["feature_usage"].dropna().between(0, 1).all()
    assert (frame["recency_days"] <= frame["tenure_days"]).all()
    assert set(frame["plan"]) == set(PLANS)
    assert set(frame["channel"].dropna()) == set(CHANNELS)
    assert set(frame["country"]) == set(COUNTRIES)
    assert set(frame["churned"]) == set(frame["converted"]) == {0, 1}


def test_customer_table_has_a_little_realistic_mess(small: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, _ = small
    missing = frame.isna().mean()
    assert set(missing[missing > 0].index) == {"avg_order_value", "feature_usage", "channel"}
    assert missing[missing > 0].between(0.005, 0.02).all()
    spend = frame["monetary"]
    extreme = spend > 20 * spend.quantile(0.99)
    assert 1 <= extreme.sum() <= 0.002 * len(frame)


def test_planted_labels_are_aligned_with_the_rows(small: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, planted = small
    assert planted.dtype == np.int64
    shares = np.bincount(planted, minlength=PLANTED_SEGMENTS) / len(planted)
    assert shares.min() >= 0.08 and len(set(shares.round(2))) > 1
    names = [s.name for s in SEGMENTS]
    medians = frame[NUMERIC].groupby(planted).median()
    medians.index = pd.Index(names)
    assert medians["recency_days"].idxmax() == "dormant bargain hunters"
    assert medians["tenure_days"].idxmin() == "new customers"
    assert medians["tenure_days"].idxmax() == "loyal regulars"
    assert medians["feature_usage"].idxmax() == "champions"
    assert medians["support_tickets"].idxmax() == "at-risk high value"
    # outcomes follow the segments
    churn = frame["churned"].groupby(planted).mean()
    assert churn[names.index("dormant bargain hunters")] > 0.5 > churn[names.index("champions")]


def _example_pipeline_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The training pipeline's shape, built from examples/customers.toml with plain sklearn."""
    features = tomllib.loads((EXAMPLES / "customers.toml").read_text())["features"]
    logged = [f["name"] for f in features if f.get("transform") == "log1p"]
    plain = [f["name"] for f in features if f.get("type", "numeric") == "numeric"]
    plain = [name for name in plain if name not in logged]
    categorical = [f["name"] for f in features if f.get("type") == "categorical"]
    scaled = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    encoder = OneHotEncoder(
        handle_unknown="infrequent_if_exist", min_frequency=0.01, sparse_output=False
    )
    matrix = ColumnTransformer(
        [
            ("log", make_pipeline(FunctionTransformer(np.log1p), scaled), logged),
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), plain),
            (
                "cat",
                make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"), encoder),
                categorical,
            ),
        ]
    ).fit_transform(frame)
    return np.asarray(matrix)


def test_kmeans_recovers_the_planted_segments_and_silhouette_picks_their_number(
    small: tuple[pd.DataFrame, np.ndarray],
) -> None:
    frame, planted = small
    matrix = _example_pipeline_matrix(frame)
    silhouettes: dict[int, float] = {}
    for k in range(3, 9):
        labels = KMeans(k, n_init=3, random_state=0).fit_predict(matrix)
        if k == PLANTED_SEGMENTS:
            assert adjusted_rand_score(planted, labels) >= 0.9
            assert np.bincount(labels).min() >= 0.05 * len(labels)
        silhouettes[k] = float(silhouette_score(matrix, labels, sample_size=2_500, random_state=0))
    assert max(silhouettes, key=silhouettes.__getitem__) == PLANTED_SEGMENTS


def test_transactions_are_deterministic_per_seed() -> None:
    a, groups_a = make_transactions(n_customers=300, seed=5)
    b, groups_b = make_transactions(n_customers=300, seed=5)
    pd.testing.assert_frame_equal(a, b)
    np.testing.assert_array_equal(groups_a, groups_b)
    c, _ = make_transactions(n_customers=300, seed=6)
    assert len(a) != len(c) or not a["amount"].equals(c["amount"])


def test_transaction_log_shape_and_types(log: tuple[pd.DataFrame, np.ndarray]) -> None:
    events, groups = log
    assert list(events.columns) == ["customer_id", "order_id", "timestamp", "amount"]
    assert pd.api.types.is_datetime64_any_dtype(events["timestamp"])
    assert pd.api.types.is_integer_dtype(events["order_id"])
    assert pd.api.types.is_float_dtype(events["amount"])
    assert events["timestamp"].is_monotonic_increasing
    assert not events.isna().any().any()
    # every customer bought at least once; labels follow the sorted unique ids
    ids = np.sort(events["customer_id"].unique())
    assert len(ids) == len(groups) == 2_000
    assert list(ids[:2]) == ["C000001", "C000002"]
    assert set(np.unique(groups)) == set(range(len(GROUPS)))


def test_timestamps_cover_two_years_ending_on_the_end_date() -> None:
    end = date(2025, 6, 30)
    events, _ = make_transactions(n_customers=500, seed=2, end=end)
    first, last = events["timestamp"].min(), events["timestamp"].max()
    assert first >= pd.Timestamp(end - timedelta(days=729))
    assert last < pd.Timestamp(end + timedelta(days=1))
    assert last.date() == end  # frequent buyers are active until the end
    assert first < pd.Timestamp(end - timedelta(days=700))


def test_refunds_are_negative_rows_of_an_earlier_order(
    log: tuple[pd.DataFrame, np.ndarray],
) -> None:
    events, _ = log
    refunds = events[events["amount"] < 0]
    purchases = events[events["amount"] > 0]
    assert 0.01 < len(refunds) / len(events) < 0.03
    assert purchases["order_id"].is_unique
    original = purchases.set_index("order_id").loc[refunds["order_id"]]
    assert (original["customer_id"].to_numpy() == refunds["customer_id"].to_numpy()).all()
    assert (original["timestamp"].to_numpy() <= refunds["timestamp"].to_numpy()).all()
    assert (-refunds["amount"].to_numpy() <= original["amount"].to_numpy() + 1e-9).all()


def test_planted_groups_show_in_the_rfm_features(log: tuple[pd.DataFrame, np.ndarray]) -> None:
    events, groups = log
    end = events["timestamp"].max().normalize() + pd.Timedelta(days=1)
    per_customer = events.groupby("customer_id")
    recency = (end - per_customer["timestamp"].max()).dt.days.groupby(groups).median()
    tenure = (end - per_customer["timestamp"].min()).dt.days.groupby(groups).median()
    orders = per_customer["order_id"].nunique().groupby(groups).median()
    names = [g.name for g in GROUPS]
    assert names[int(recency.idxmax())] == "lapsed"
    assert names[int(tenure.idxmin())] == "new"
    assert names[int(orders.idxmax())] == "frequent high spenders"


def test_written_example_data_loads_with_the_example_configs(tmp_path: Path) -> None:
    paths = write_example_data(tmp_path / "data", n_customers=1_000, seed=7)
    assert set(paths) == {"customers", "transactions"}
    assert paths["customers"] == tmp_path / "data" / "customers.csv"
    customers = load_training_data(example_config("customers", paths["customers"]))
    assert len(customers.frame) == 1_000
    assert customers.frame.index[0] == "C000001"
    transactions = load_training_data(example_config("transactions", paths["transactions"]))
    assert len(transactions.frame) == 250
    assert transactions.reference_date == date(2026, 11, 1)
    assert (transactions.frame["tenure_days"] < 30).any()  # the example rule has customers
