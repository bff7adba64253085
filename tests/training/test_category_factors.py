"""The one categorical fast path (``category_factors``) against the obvious per-value one.

``category_factors`` factorises a column as it is and canonicalises only its distinct values;
``category_values`` (the rules' reading), ``category_codes`` (the preprocessing's) and the
drift reference all go through it, so it must equal ``pd.factorize`` of ``canonical_category``
applied to every value, on every kind of column the data can hold.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.training.preprocess import MISSING_CATEGORY, category_codes
from app.training.rules.values import canonical_category, category_factors, category_values

ROWS = 3_000


def _columns() -> dict[str, pd.Series]:
    rng = np.random.default_rng(11)

    def pick(values: list[object], dtype: str | None = None) -> pd.Series:
        return pd.Series(rng.choice(np.array(values, dtype=object), ROWS), dtype=dtype)

    return {
        "arrow text with gaps": pick(["b", "a", None, "c", "B", ""], "string[pyarrow]"),
        "str dtype": pick(["x", "y", None, "z"], "str"),
        "object text with None and NaN": pick(["b", "a", None, np.nan, "3"]),
        "a literal __missing__": pick(["a", MISSING_CATEGORY, None], "string[pyarrow]"),
        # mixed objects: 3, 3.0 and "3" are one category, True is "true", None/NaN missing
        "mixed objects": pick([3, 3.0, "3", True, False, None, np.nan, "web", 2.5, 7]),
        "integers": pd.Series(rng.integers(-3, 4, ROWS)),
        "nullable integers": pick([3, None, 1, 0], "Int64"),
        "booleans": pd.Series(rng.random(ROWS) < 0.3),
        "nullable booleans": pick([True, False, None], "boolean"),
        "floats as categories": pick([1.0, 2.0, 2.5, -0.0, 0.0, np.nan, 1e20], "float64"),
        "all missing floats": pd.Series(np.full(ROWS, np.nan)),
        "pandas categorical": pick(["lo", "hi", None], "category"),
        "empty": pd.Series([], dtype=object),
    }


def _obvious(column: pd.Series) -> list[str | None]:
    return [canonical_category(v) for v in column.tolist()]


@pytest.mark.parametrize("name", sorted(_columns()))
def test_factors_are_the_factorized_canonical_values(name: str) -> None:
    column = _columns()[name]
    expected_codes, expected = pd.factorize(np.array(_obvious(column), dtype=object))
    codes, categories = category_factors(column)
    assert categories.tolist() == list(expected), name  # same order: first appearance
    assert codes.tolist() == expected_codes.tolist(), name


@pytest.mark.parametrize("name", sorted(_columns()))
def test_values_and_codes_read_the_factors_as_the_obvious_path(name: str) -> None:
    column = _columns()[name]
    obvious = _obvious(column)
    assert category_values(column).tolist() == obvious, name
    codes, categories = category_codes(column)
    texts = [MISSING_CATEGORY if v is None else v for v in obvious]
    assert categories[codes].tolist() == texts, name
    assert len(set(categories.tolist())) == len(categories), name  # each category once
