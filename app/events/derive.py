"""THE derivation of RFM features from a customer's behaviour (training, file tagging, events).

A customer's behaviour is summed up by four running aggregates, which an event updates in
any order and which a transaction log's rows give at once:

- ``first_us`` / ``last_us``: the earliest and latest purchase (epoch microseconds, UTC);
- ``orders``: distinct orders bought (an order id counted once however many lines it has; a
  line without an order id, or any line of a log without an order column, is an order of its
  own);
- ``monetary``: the net amount (a refund counts negative).

A purchase is a line (an event) of amount zero or more. A refund or cancellation (a negative
amount, ``-0.0`` included: ``C`` invoices, returns, a cancelled free item, a refund of 0) only
lowers the net amount: it is no order (a cancellation
invoice of its own id counted as one made a returner "frequent") and no purchase time (a
return a month after the order made its buyer "recent"). A customer with refunds only has no
purchase to derive recency from: no features (training leaves them out, file tagging lists
them for review, ``POST /v1/events`` applies their events and re-assigns them at their first
purchase).

``rfm_features`` turns them into the features as of an instant, on scalars (an event's
customer) or on arrays (a whole log): the training job (``app.training.data.derive_rfm``),
``segments assign --input`` on a log and ``POST /v1/events`` all call it.

>>> day = 86_400_000_000
>>> f = rfm_features(first_us=0, last_us=10 * day, orders=4, monetary=100.0, as_of_us=12 * day)
>>> {k: float(v) for k, v in f.items()}  # doctest: +NORMALIZE_WHITESPACE
{'recency_days': 2.0, 'frequency': 4.0, 'monetary': 100.0, 'avg_order_value': 25.0,
 'tenure_days': 12.0}
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from app.columns import ColumnRows

RFM_FEATURES = ("recency_days", "frequency", "monetary", "avg_order_value", "tenure_days")
US_PER_DAY = 86_400_000_000
EARLIEST_US = 0
"""1970-01-01T00:00:00Z: the earliest time of a behaviour event or a log line. Before it, a
time is a placeholder or an error (year 1 gave a tenure of 740,000 days); ``POST /v1/events``
rejects it and the training job and ``segments assign --input`` leave the line out."""
AHEAD_US = US_PER_DAY
"""How far ahead of the clock a log line may be (its naive local time read as UTC may be
hours ahead); a line beyond it is left out (a line in year 3000 made everyone lapsed)."""


def rfm_features(
    first_us: Any, last_us: Any, orders: Any, monetary: Any, as_of_us: Any
) -> dict[str, Any]:
    """The five RFM features as of ``as_of_us`` from the aggregates (scalars or arrays).

    recency_days: days since the last purchase; frequency: orders; monetary: net amount;
    avg_order_value: monetary / frequency (a customer with no counted order divides by 1);
    tenure_days: days since the first purchase.
    """
    frequency = orders * 1.0
    return {
        "recency_days": (as_of_us - last_us) / US_PER_DAY,
        "frequency": frequency,
        "monetary": monetary * 1.0,
        "avg_order_value": monetary / _at_least_one(frequency),
        "tenure_days": (as_of_us - first_us) / US_PER_DAY,
    }


def _at_least_one(x: Any) -> Any:
    # np.maximum costs a microsecond on a scalar: an event's customer is one
    return np.maximum(x, 1.0) if isinstance(x, np.ndarray | pd.Series) else max(x, 1.0)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def to_us(when: datetime | date) -> int:
    """Epoch microseconds of a time (a naive one is UTC, as a log's times are read) or of
    the start of a day."""
    if not isinstance(when, datetime):
        when = datetime(when.year, when.month, when.day)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    since = when - _EPOCH
    # the whole microseconds of ``since // _ONE_US``, summed: a third of its cost (an event's)
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds


def times_us(when: pd.Series) -> np.ndarray:
    """Epoch microseconds of a log's timestamp column (naive times are UTC)."""
    values = pd.to_datetime(when)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values.to_numpy(dtype="datetime64[us]").astype(np.int64)


class LogAggregates(NamedTuple):
    """A log's customers in one pass: those with a purchase, and those whose lines are all
    refunds (no purchase time: no features)."""

    bought: pd.DataFrame  # ``aggregate_log``'s frame
    refunders: pd.DataFrame  # their number of ``lines`` and ``monetary`` (net amount)


def aggregate_log(events: pd.DataFrame) -> pd.DataFrame:
    """Each customer's aggregates from log rows (customer, when, amount[, order]), indexed by
    customer id as text, sorted: ``first_us``, ``last_us``, ``orders``, ``monetary``.

    Only customers with a purchase (``purchases``) are in it: those whose lines are all
    refunds have no purchase time (``aggregate_customers`` gives them too)."""
    return aggregate_customers(events).bought


def aggregate_customers(events: pd.DataFrame) -> LogAggregates:
    """``aggregate_log``'s frame and the customers with refunds only, indexed by customer id
    as text, sorted, from one grouping of the log's lines."""
    amount = events["amount"].to_numpy(dtype=np.float64)
    bought = purchases(amount)
    frame = pd.DataFrame(
        {
            "customer": events["customer"].to_numpy(dtype=object),
            "at": times_us(events["when"]),
            "amount": amount,
        }
    )
    every = frame.groupby("customer", sort=True)["amount"].agg(["sum", "size"])
    bought_rows = frame.loc[bought]
    grouped = bought_rows.groupby("customer", sort=True)
    if "order" in events:  # distinct order ids bought, plus each purchase without one
        order = events["order"].astype("string").to_numpy(dtype=object)[bought]
        counted = pd.DataFrame(
            {"customer": bought_rows["customer"], "order": order, "lone": pd.isna(order)}
        ).groupby("customer", sort=True)
        orders = counted["order"].nunique() + counted["lone"].sum()
    else:
        orders = grouped.size()
    out = pd.DataFrame(
        {
            "first_us": grouped["at"].min(),
            "last_us": grouped["at"].max(),
            "orders": orders.astype(np.int64),
            "monetary": every["sum"].reindex(orders.index).astype(np.float64),
        }
    )
    out.index = pd.Index(out.index.astype(str), name="customer_id")
    rest = every.loc[~every.index.isin(orders.index)]
    refunders = pd.DataFrame(
        {"lines": rest["size"].to_numpy(), "monetary": rest["sum"].to_numpy(dtype=np.float64)},
        index=pd.Index(rest.index.astype(str), name="customer_id"),
    )
    return LogAggregates(out, refunders)


def purchases(amount: np.ndarray) -> np.ndarray:
    """Where a line is a purchase: an amount of zero or more, not ``-0.0`` (a refund of 0, a
    cancelled free item: ``-1 x 0.0``), as ``apply.lua`` and ``seed.lua`` read an amount's
    sign from its text."""
    return np.asarray(~np.signbit(amount), dtype=bool)


def features_frame(aggregates: pd.DataFrame, as_of_us: int) -> pd.DataFrame:
    """``rfm_features`` of every customer of ``aggregate_log``'s frame, as of one instant."""
    found = rfm_features(
        aggregates["first_us"].to_numpy(dtype=np.int64),
        aggregates["last_us"].to_numpy(dtype=np.int64),
        aggregates["orders"].to_numpy(dtype=np.int64),
        aggregates["monetary"].to_numpy(dtype=np.float64),
        np.int64(as_of_us),
    )
    return pd.DataFrame(found, index=aggregates.index, columns=list(RFM_FEATURES))


def feature_rows(aggs: Sequence[Any], as_of_us: int, kinds: dict[str, str]) -> ColumnRows:
    """The features ``kinds`` names of many customers (``Aggregates``), derived as of
    ``as_of_us`` at once (one array operation per feature), kept as columns: a row is a dict
    when asked for, and the assigner, the live counts and the recorder read the columns (a
    dict per customer cost more than deriving its features)."""
    names = list(kinds)
    if not aggs:
        return ColumnRows({name: [] for name in names})
    first, last, orders, monetary = zip(*aggs, strict=True)  # (the aggregates' four columns)
    found = rfm_features(
        np.array(first, dtype=np.int64),
        np.array(last, dtype=np.int64),
        np.array(orders, dtype=np.int64),
        np.array(monetary, dtype=np.float64),
        np.int64(as_of_us),
    )
    return ColumnRows({name: np.asarray(found[name], dtype=np.float64).tolist() for name in names})
