"""Binning and the population stability index (PSI), shared by live and offline drift.

PSI = sum over bins of ``(a - e) * ln(a / e)``, with ``e`` the training share of a bin and
``a`` the observed one. A share of 0 (a bin nobody fell in) is replaced by ``EPSILON``
before the sum, so an empty bin adds a large but finite term instead of infinity.

>>> round(psi([0.5, 0.5], [0.5, 0.5]), 6)
0.0
>>> status(0.05, 0.1, 0.25), status(0.1, 0.1, 0.25), status(0.3, 0.1, 0.25)
('ok', 'watch', 'drift')
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from app.training.rules.values import canonical_category, category_factors

EPSILON = 1e-4
"""Share used in place of 0 for an empty bin (expected or observed)."""
OTHER = "other"
MISSING = "missing"
Status = Literal["ok", "watch", "drift", "no_data"]


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """PSI of two share vectors over the same bins (each summing to 1)."""
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, EPSILON), max(a, EPSILON)
        total += (a - e) * math.log(a / e)
    return total


def shares(counts: Sequence[float]) -> list[float]:
    n = float(sum(counts))
    return [c / n for c in counts] if n > 0 else [0.0] * len(counts)


def status(value: float | None, watch: float, drift: float) -> Status:
    """``ok`` below ``watch``, ``watch`` below ``drift``, else ``drift``."""
    if value is None:
        return "no_data"
    if value >= drift:
        return "drift"
    return "watch" if value >= watch else "ok"


def numeric_edges(values: np.ndarray, bins: int) -> list[float]:
    """Inner edges of ``bins`` quantile bins of the finite ``values`` (duplicates dropped)."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return []
    qs = np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])
    return _edges(qs)


def _edges(qs: np.ndarray) -> list[float]:
    """The distinct quantiles as edges; a zero always +0.0 (``+ 0.0``): of a column holding
    0.0 and -0.0 the partition picked either, and a bin read '<= -0'."""
    return [float(q) + 0.0 for q in np.unique(qs)]


def numeric_counts(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Counts per bin (``len(edges) + 1`` value bins, then the missing bin)."""
    values = np.asarray(values, dtype=np.float64)
    missing = ~np.isfinite(values)
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left")
    index[missing] = len(edges) + 1
    return np.bincount(index, minlength=len(edges) + 2)


def numeric_reference(values: np.ndarray, bins: int) -> tuple[list[float], np.ndarray]:
    """``numeric_edges(values, bins)`` and ``numeric_counts`` of ``values`` in them, without a
    sort: the quantiles are order statistics, which ``np.quantile`` selects by partitioning
    (the same values as from a sorted copy), and a value falls in the first bin whose upper
    edge it does not exceed, so the values up to each edge are one count of ``<= edge``
    (about 9 cheap passes: 0.027 s on a million values against 0.06 s for the sort).

    Proven equal to the two functions in tests/drift/test_column_counts.py.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]  # a copy: the quantiles may reorder it in place
    if len(finite) == 0:
        return [], np.array([0, len(values)], dtype=np.int64)
    probabilities = np.linspace(0, 1, bins + 1)[1:-1]
    qs = np.quantile(finite, probabilities, overwrite_input=True)
    edges = _edges(qs)
    up_to = [np.count_nonzero(finite <= edge) for edge in edges]
    counts = np.diff(np.concatenate([[0], up_to, [len(finite)]]))
    return edges, np.append(counts, len(values) - len(finite)).astype(np.int64)


def category_counts(values: Sequence[object], categories: Sequence[str]) -> np.ndarray:
    """Counts per known category, then ``other``, then missing."""
    position = {c: i for i, c in enumerate(categories)}
    counts = np.zeros(len(categories) + 2, dtype=np.int64)
    for value in values:
        counts[category_bin(value, position, len(categories))] += 1
    return counts


def column_category_counts(column: pd.Series, categories: Sequence[str]) -> np.ndarray:
    """``category_counts`` of a whole column, the same counts without a Python step per value.

    Each value is canonicalised once per distinct value (``category_factors``), the distinct
    values are binned as ``category_bin`` bins them, and the bins counted: a million-row column
    in milliseconds instead of seconds. Proven equal to ``category_counts`` in the tests.
    """
    return factor_category_counts(*category_factors(column), categories)


def factor_category_counts(
    codes: np.ndarray, uniques: np.ndarray, categories: Sequence[str]
) -> np.ndarray:
    """``column_category_counts`` from the column's ``category_factors``."""
    position = {c: i for i, c in enumerate(categories)}
    n = len(categories)
    bins = np.array([position.get(u, n) for u in uniques] + [n + 1], dtype=np.int64)
    return np.bincount(bins[codes], minlength=n + 2)  # code -1 picks the trailing missing bin


def category_bin(value: object, position: dict[str, int], n: int) -> int:
    """The bin of a categorical value, compared as the model compares it
    (``canonical_category``: 3 and 3.0 are ``"3"``, True is ``"true"``, NaN is missing)."""
    if isinstance(value, str):
        return position.get(value, n)
    category = canonical_category(value)
    return n + 1 if category is None else position.get(category, n)


def bin_labels(edges: Sequence[float] | None, categories: Sequence[str] | None) -> list[str]:
    """Human names of the bins, in order (for tables)."""
    if categories is not None:
        return [*categories, OTHER, MISSING]
    edges = list(edges or [])
    if not edges:
        return ["all", MISSING]
    labels = [f"<= {_edge(edges[0])}"]
    labels += [f"({_edge(lo)}, {_edge(hi)}]" for lo, hi in itertools.pairwise(edges)]
    return [*labels, f"> {_edge(edges[-1])}", MISSING]


def _edge(value: float) -> str:
    """A bin edge as people read it: ``24117.5``, not ``2.412e+04`` (which also rounds the
    edge, so a value shown beside the label seemed in the wrong bin); no thousands
    separator, whose comma would read as the interval's own."""
    if abs(value) < 1000:
        return f"{value + 0.0:.4g}"  # (+ 0.0: an edge of -0.0, of a manifest written before)
    text = f"{value:.1f}"
    return text.removesuffix(".0")
