"""Seeded example data with planted structure: a customer table and a transaction log.

Nothing is downloaded. ``make_customers`` draws each customer from one of five planted
segments (``SEGMENTS``), each with its own behaviour (lognormal, gamma, beta and
negative-binomial draws with realistic spread), categorical mix and outcome rates. A few
customers are in transition, part-way towards another segment, so boundaries blur; and a
little mess is added: ~1% missing values in ``avg_order_value``, ``feature_usage`` and
``channel``, and 0.1% extreme ``monetary`` outliers. ``make_transactions`` builds a two-year
order log from four behaviour groups, vectorised with numpy. The same seed always gives the
same data, so tests can check that training finds what was planted.

>>> frame, planted = make_customers(n=1_000, seed=1)
>>> frame.shape, len(planted), int(planted.max()) + 1 == PLANTED_SEGMENTS
((1000, 15), 1000, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

PLANS = ("free", "pro", "team", "enterprise")
CHANNELS = ("organic", "paid", "referral", "partner")
COUNTRIES = ("US", "GB", "DE", "FR", "CA", "IN")


@dataclass(frozen=True)
class _Segment:
    """A planted customer segment. Lognormals are (median, sigma), gammas (mean, cv), betas
    (a, b), counts the mean of a negative binomial; category probabilities follow the order
    of ``PLANS``, ``CHANNELS`` and ``COUNTRIES``."""

    name: str
    share: float
    recency_days: tuple[float, float]  # lognormal
    frequency: tuple[float, float]  # gamma, orders per year
    avg_order_value: tuple[float, float]  # lognormal
    tenure_days: tuple[float, float]  # lognormal
    sessions_30d: float
    feature_usage: tuple[float, float]  # beta
    support_tickets: float
    plan: tuple[float, ...]
    channel: tuple[float, ...]
    country: tuple[float, ...]
    ltv_years: float  # expected remaining lifetime: ltv = annual value x this x noise
    churn_rate: float
    conversion_rate: float


# fmt: off
SEGMENTS = (
    _Segment("champions", 0.18,
             recency_days=(3, 0.5), frequency=(24, 0.25), avg_order_value=(250, 0.3),
             tenure_days=(600, 0.3), sessions_30d=50, feature_usage=(12, 3), support_tickets=1.0,
             plan=(0.02, 0.05, 0.88, 0.05), channel=(0.05, 0.02, 0.88, 0.05),
             country=(0.74, 0.08, 0.05, 0.03, 0.07, 0.03),
             ltv_years=4.0, churn_rate=0.03, conversion_rate=0.55),
    _Segment("loyal regulars", 0.24,
             recency_days=(9, 0.5), frequency=(30, 0.25), avg_order_value=(25, 0.3),
             tenure_days=(1600, 0.25), sessions_30d=6, feature_usage=(3, 7), support_tickets=0.8,
             plan=(0.05, 0.90, 0.04, 0.01), channel=(0.88, 0.04, 0.05, 0.03),
             country=(0.72, 0.12, 0.05, 0.04, 0.05, 0.02),
             ltv_years=3.0, churn_rate=0.08, conversion_rate=0.35),
    _Segment("at-risk high value", 0.14,
             recency_days=(130, 0.45), frequency=(6, 0.3), avg_order_value=(300, 0.3),
             tenure_days=(900, 0.3), sessions_30d=2, feature_usage=(2.5, 8), support_tickets=9,
             plan=(0.02, 0.08, 0.15, 0.75), channel=(0.10, 0.06, 0.09, 0.75),
             country=(0.66, 0.08, 0.14, 0.06, 0.04, 0.02),
             ltv_years=1.0, churn_rate=0.45, conversion_rate=0.12),
    _Segment("new customers", 0.19,
             recency_days=(5, 0.5), frequency=(4, 0.3), avg_order_value=(45, 0.35),
             tenure_days=(25, 0.6), sessions_30d=10, feature_usage=(2, 8), support_tickets=2.5,
             plan=(0.82, 0.14, 0.03, 0.01), channel=(0.10, 0.78, 0.08, 0.04),
             country=(0.64, 0.06, 0.06, 0.05, 0.05, 0.14),
             ltv_years=1.5, churn_rate=0.25, conversion_rate=0.20),
    _Segment("dormant bargain hunters", 0.25,
             recency_days=(350, 0.35), frequency=(1.2, 0.45), avg_order_value=(20, 0.35),
             tenure_days=(650, 0.35), sessions_30d=0.1, feature_usage=(1.2, 12),
             support_tickets=0.05,
             plan=(0.92, 0.06, 0.01, 0.01), channel=(0.10, 0.80, 0.05, 0.05),
             country=(0.74, 0.07, 0.06, 0.05, 0.05, 0.03),
             ltv_years=0.3, churn_rate=0.70, conversion_rate=0.03),
)
# fmt: on
PLANTED_SEGMENTS: int = len(SEGMENTS)
DRIFTING_SHARE = 0.04  # customers whose behaviour is part-way towards another segment


def _planted_labels(rng: np.random.Generator, n: int, shares: list[float]) -> np.ndarray:
    """``floor(share * n)`` rows per group (the largest takes the remainder), shuffled."""
    counts = np.floor(np.asarray(shares) * n).astype(np.int64)
    counts[np.argmax(shares)] += n - counts.sum()
    return rng.permutation(np.repeat(np.arange(len(shares)), counts))


def _lognormal(rng: np.random.Generator, params: np.ndarray) -> np.ndarray:
    """Per-row lognormal draws from a (rows, 2) array of (median, sigma)."""
    return rng.lognormal(np.log(params[:, 0]), params[:, 1])


def _neg_binomial(rng: np.random.Generator, mean: np.ndarray, shape: float) -> np.ndarray:
    """Over-dispersed counts: Poisson with a gamma-distributed rate (smaller shape: wider)."""
    return rng.poisson(rng.gamma(shape, mean / shape))


def _categorical(
    rng: np.random.Generator, labels: np.ndarray, field: str, values: tuple[str, ...]
) -> np.ndarray:
    """One category per row, from its segment's probabilities (inverse CDF, vectorised)."""
    cdf = np.cumsum([getattr(s, field) for s in SEGMENTS], axis=1)[labels]
    index = (rng.random(len(labels))[:, None] > cdf).sum(axis=1)
    drawn: np.ndarray = np.asarray(values, dtype=object)[np.minimum(index, len(values) - 1)]
    return drawn


def _ids(n: int) -> np.ndarray:
    """``C000001`` ... zero-padded, so string order is numeric order."""
    width = max(6, len(str(n)))
    return np.array([f"C{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def make_customers(n: int = 20_000, seed: int = 7) -> tuple[pd.DataFrame, np.ndarray]:
    """A customer table with ``PLANTED_SEGMENTS`` planted segments.

    Returns the frame (one row per customer: ``customer_id``, eight numeric behaviour
    columns, ``plan``/``channel``/``country``, and the outcomes ``ltv``, ``churned``,
    ``converted``) and each row's planted segment (index into ``SEGMENTS``), kept aside.
    """
    rng = np.random.default_rng(seed)
    labels = _planted_labels(rng, n, [s.share for s in SEGMENTS])
    # customers in transition: their behaviour parameters are interpolated (geometrically)
    # part of the way towards another segment's, which puts customers between segments
    toward = (labels + rng.integers(1, PLANTED_SEGMENTS, n)) % PLANTED_SEGMENTS
    drift = np.where(rng.random(n) < DRIFTING_SHARE, rng.uniform(0.0, 0.7, n), 0.0)

    def param(field: str, *, drifting: bool = True) -> np.ndarray:
        table = np.log(np.asarray([getattr(s, field) for s in SEGMENTS], dtype=np.float64))
        w = (drift if drifting else np.zeros(n)).reshape((n,) + (1,) * (table.ndim - 1))
        values: np.ndarray = np.exp((1 - w) * table[labels] + w * table[toward])
        return values

    tenure = np.maximum(1, np.round(_lognormal(rng, param("tenure_days")))).astype(np.int64)
    recency = np.round(_lognormal(rng, param("recency_days"))).astype(np.int64)
    freq_mean, freq_cv = param("frequency").T
    frequency = rng.gamma(1 / freq_cv**2, freq_mean * freq_cv**2)
    order_value = _lognormal(rng, param("avg_order_value"))
    # lifetime spend: the orders placed so far times the order value, with basket noise
    orders = np.maximum(1, rng.poisson(frequency * np.maximum(tenure, 30) / 365))
    monetary = orders * order_value * rng.lognormal(0.0, 0.15, n)
    usage_a, usage_b = param("feature_usage").T
    frame = pd.DataFrame(
        {
            "customer_id": _ids(n),
            "recency_days": np.minimum(recency, tenure),
            "frequency": np.round(frequency, 2),
            "monetary": np.round(monetary, 2),
            "avg_order_value": np.round(monetary / orders, 2),
            "sessions_30d": _neg_binomial(rng, param("sessions_30d"), shape=6.0),
            "feature_usage": np.round(rng.beta(usage_a, usage_b), 3),
            "support_tickets": _neg_binomial(rng, param("support_tickets"), shape=50.0),
            "tenure_days": tenure,
            "plan": _categorical(rng, labels, "plan", PLANS),
            "channel": _categorical(rng, labels, "channel", CHANNELS),
            "country": _categorical(rng, labels, "country", COUNTRIES),
        }
    )
    # outcomes follow the planted segment, plus noise
    lifetime = param("ltv_years", drifting=False) * rng.lognormal(0.0, 0.4, n)
    frame["ltv"] = np.round(frequency * order_value * lifetime, 2)
    frame["churned"] = (rng.random(n) < param("churn_rate", drifting=False)).astype(np.int64)
    frame["converted"] = (rng.random(n) < param("conversion_rate", drifting=False)).astype(np.int64)
    _add_mess(rng, frame)
    return frame, labels.astype(np.int64)


def _add_mess(rng: np.random.Generator, frame: pd.DataFrame) -> None:
    """~1% missing in two numeric columns and one categorical; 0.1% huge spend outliers."""
    n = len(frame)
    for column in ("avg_order_value", "feature_usage", "channel"):
        frame.loc[rng.random(n) < 0.01, column] = np.nan
    outliers = rng.choice(n, max(1, n // 1000), replace=False)
    monetary = frame["monetary"].to_numpy(copy=True)
    monetary[outliers] = np.round(monetary[outliers] * rng.uniform(30, 200, len(outliers)), 2)
    frame["monetary"] = monetary


@dataclass(frozen=True)
class _Group:
    """A planted purchasing behaviour; times are in days before the end of the log."""

    name: str
    share: float
    orders_per_year: float  # mean of the customer's gamma-distributed rate
    order_value: float  # median of the customer's typical order value
    first_purchase: tuple[float, float]  # uniform between (latest, earliest)
    stopped: tuple[float, float]  # when the customer stopped buying, uniform


HISTORY_DAYS = 730  # the log covers two years ending on ``end``
REFUND_SHARE = 0.02
GROUPS = (
    _Group("frequent high spenders", 0.20, 36.0, 120.0, (180, HISTORY_DAYS), (0, 3)),
    _Group("occasional", 0.40, 6.0, 40.0, (90, HISTORY_DAYS), (0, 20)),
    _Group("lapsed", 0.25, 6.0, 70.0, (400, HISTORY_DAYS), (200, 400)),
    _Group("new", 0.15, 12.0, 50.0, (0, 45), (0, 0)),
)


def make_transactions(
    n_customers: int = 5_000, seed: int = 11, end: date = date(2026, 10, 31)
) -> tuple[pd.DataFrame, np.ndarray]:
    """A two-year transaction log ending on ``end`` (inclusive), with planted behaviour groups.

    Columns: ``customer_id``, ``order_id`` (int), ``timestamp`` (datetime64), ``amount``.
    About 2% of rows are refunds: a later row of an earlier order with a negative amount.
    Every customer has at least one purchase. Returns the log, sorted by time, and each
    customer's planted group (index into ``GROUPS``), aligned with the sorted unique ids.
    """
    rng = np.random.default_rng(seed)
    labels = _planted_labels(rng, n_customers, [g.share for g in GROUPS])

    def param(field: str) -> np.ndarray:
        table = np.asarray([getattr(g, field) for g in GROUPS], dtype=np.float64)
        return np.take(table, labels, axis=0)

    # per customer, in days since the start of the log (everything is before HISTORY_DAYS)
    latest, earliest = param("first_purchase").T
    first = HISTORY_DAYS - rng.uniform(latest, earliest)
    stop = np.maximum(first, HISTORY_DAYS - rng.uniform(*param("stopped").T))
    rate = rng.gamma(6.0, param("orders_per_year") / 6.0)
    value = rng.lognormal(np.log(param("order_value")), 0.3)

    # one row per order: each customer's first order, then Poisson-many more up to ``stop``
    owner = np.repeat(np.arange(n_customers), 1 + rng.poisson(rate * (stop - first) / 365))
    is_first = np.r_[True, owner[1:] != owner[:-1]]
    day = np.where(is_first, first[owner], rng.uniform(first[owner], stop[owner]))
    amount = np.round(value[owner] * rng.lognormal(0.0, 0.5, len(owner)), 2)
    order_id = np.empty(len(owner), dtype=np.int64)
    order_id[np.argsort(day, kind="stable")] = 100_001 + np.arange(len(owner))

    refunded = np.flatnonzero(rng.random(len(owner)) < REFUND_SHARE / (1 - REFUND_SHARE))
    whole = rng.random(len(refunded)) < 0.6  # most refunds are of the whole order
    fraction = np.where(whole, 1.0, rng.uniform(0.1, 0.9, len(refunded)))
    refund = -np.round(amount[refunded] * fraction, 2)
    later = day[refunded] + rng.uniform(0.5, 21.0, len(refunded))
    refund_day = np.minimum(later, HISTORY_DAYS - 1e-4)

    start = pd.Timestamp(end) + pd.Timedelta(days=1 - HISTORY_DAYS)
    seconds = np.floor(np.r_[day, refund_day] * 86_400).astype(np.int64)
    orders = np.r_[order_id, order_id[refunded]]
    rows = np.lexsort((orders, seconds))  # by time, then order
    log = pd.DataFrame(
        {
            "customer_id": _ids(n_customers)[np.r_[owner, owner[refunded]][rows]],
            "order_id": orders[rows],
            "timestamp": start + pd.to_timedelta(seconds[rows], unit="s"),
            "amount": np.r_[amount, refund][rows],
        }
    )
    return log, labels.astype(np.int64)


def write_example_data(folder: Path, n_customers: int = 20_000, seed: int = 7) -> dict[str, Path]:
    """Write ``customers.csv`` and ``transactions.csv`` into ``folder`` (created if needed).

    The log has a quarter as many customers and seed ``seed + 4``, so the defaults match
    ``make_transactions()``'s (5,000 customers, seed 11).
    """
    folder.mkdir(parents=True, exist_ok=True)
    customers, _ = make_customers(n_customers, seed)
    log, _ = make_transactions(max(100, n_customers // 4), seed + 4)
    paths = {"customers": folder / "customers.csv", "transactions": folder / "transactions.csv"}
    customers.to_csv(paths["customers"], index=False)
    log.to_csv(paths["transactions"], index=False)
    return paths
