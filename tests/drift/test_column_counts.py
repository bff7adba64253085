"""The whole-column category counter of the training reference counts as the per-value one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.drift.psi import category_counts, column_category_counts

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
