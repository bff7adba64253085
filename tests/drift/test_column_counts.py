"""The whole-column category counter of the training reference counts as the per-value one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.drift.psi import (
    bin_labels,
    category_counts,
    column_category_counts,
    numeric_counts,
    numeric_edges,
    numeric_reference,
)

CATEGORIES = ["3", "true", "x", "b"]
COLUMNS = {
    # mixed objects: 3, 3.0 and "3" are one category, True is "true", None and NaN missing
    "mixed": pd.Series([3, 3.0, "3", True, None, float("nan"), "x", "y", 2.5], dtype=object),
    "text": pd.Series(["a", "b", None, "b", "x", "3", "", "B"], dtype=object),
    "arrow text": pd.Series(["a", "b", None, "b", "x", "3"], dtype="string[pyarrow]"),
    "floats with gaps": pd.Series([3.0, np.nan, 1.0, 3.0, 2.5]),
    "integers": pd.Series([3, 1, 3, 3, 7]),
    "booleans": pd.Series([True, False, True]),
    "pandas nullable": pd.Series([3, None, 3], dtype="Int64"),
    "empty": pd.Series([], dtype=object),
}


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_column_counts_equal_the_per_value_counts(name: str) -> None:
    column = COLUMNS[name]
    expected = category_counts(column.tolist(), CATEGORIES)
    assert column_category_counts(column, CATEGORIES).tolist() == expected.tolist()


def test_column_counts_on_a_large_random_column() -> None:
    rng = np.random.default_rng(5)
    values = rng.choice(np.array(["x", "b", "rare", "3", None], dtype=object), 50_000)
    column = pd.Series(values, dtype="string[pyarrow]")
    expected = category_counts(column.tolist(), CATEGORIES)
    counted = column_category_counts(column, CATEGORIES)
    assert counted.tolist() == expected.tolist()
    assert counted[-1] == column.isna().sum() > 0  # the missing bin is really filled


def test_numeric_reference_is_the_edges_and_their_counts() -> None:
    rng = np.random.default_rng(8)
    skewed = rng.lognormal(0, 2, 20_000)
    skewed[rng.random(20_000) < 0.1] = np.nan
    columns = {
        "skewed with gaps": skewed,
        "ties on the edges": rng.integers(0, 4, 10_000).astype(np.float64),  # duplicate edges
        "infinities": np.array([1.0, np.inf, -np.inf, 2.0, np.nan, 3.0, 2.0, 2.0]),
        "one value": np.full(50, 7.0),
        "signed zeros": np.array([0.0, -0.0, 1.0, -0.0, 0.0, 2.0, -1.0]),
        "a large column": np.round(rng.gamma(2.0, 50.0, 300_000)),  # beyond a small sort's
        "all missing": np.full(5, np.nan),
        "empty": np.array([]),
    }
    for name, values in columns.items():
        for bins in (10, 3):
            kept = values.copy()
            edges, counts = numeric_reference(values, bins)
            assert np.array_equal(values, kept, equal_nan=True), name  # partitions a copy
            assert edges == numeric_edges(values, bins), name
            expected = numeric_counts(values, edges)
            assert counts.tolist() == expected.tolist(), name
            assert counts.dtype == expected.dtype, name


def test_a_zero_edge_is_never_negative_zero() -> None:
    """A column holding 0.0 and -0.0 (``np.round(-0.4)``) put its edge at whichever zero the
    quantile's partition or sort happened to pick: the drift table's bins read '<= -0' and
    '> -0', and the same data wrote another manifest from one numpy to the next."""
    values = np.array([-1.0, 2.0, 1.0, 2.0, 0.0, 1.0, -1.0, -0.0, 0.0, -0.0, 1.0, 2.0, -0.0, 0.0])
    values = np.concatenate([values, [1.0, 2.0, 0.0, 1.0, 0.0, -0.0, -1.0, -0.0, 0.0, 1.0, 1.0]])
    values = np.concatenate([values, [-0.0, 2.0, -1.0, 2.0, -0.0, -1.0, 0.0, 1.0, 2.0]])
    rng = np.random.default_rng(3)
    columns = [values, *(rng.choice(values, 40) for _ in range(200))]
    for column in columns:
        for bins in (2, 3, 10):
            for edges in (numeric_reference(column, bins)[0], numeric_edges(column, bins)):
                assert not any(e == 0 and np.signbit(e) for e in edges), (column, bins, edges)
    assert bin_labels(numeric_reference(values, 2)[0], None)[:2] == ["<= 0", "> 0"]
    # a manifest written before holds -0.0: its table reads 0 too
    assert bin_labels([-0.0, 1.0], None)[:3] == ["<= 0", "(0, 1]", "> 1"]
