"""How rule conditions read feature values: canonical categories, numbers, frame columns.

Categorical features compare as the canonical strings of ``canonical_category``, so
``store == 3`` matches 3, 3.0 and "3"; numeric features compare as float64. ``Columns``
converts each column a condition reads once per frame, shared by every node of the tree.
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np
import pandas as pd

from app.errors import DataError

# pandas' default missing-value markers (``read_csv``'s ``na_values`` documentation): they
# apply to feature columns of files (never to the id column, where ``NaN`` or ``NULL`` is an
# id), and to the categories a request sends (``ServingModel.missing_markers``)
CSV_NA_VALUES = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN"}
    | {"<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)
# the cells pandas' readers take for booleans (``read_csv``'s and pyarrow's defaults: these
# spellings only, never ``Yes``, ``T`` or ``tRUE``): a categorical feature whose column holds
# only these learns the booleans True and False (``typed_categories``), and a numeric one
# reads each as 1 or 0 (``parse_numbers``, trimmed as its numbers are); a request's values
# are read the same way (``app.assignment.validation``)
BOOL_TEXT: dict[str, bool] = dict.fromkeys(["True", "TRUE", "true"], True) | dict.fromkeys(
    ["False", "FALSE", "false"], False
)


def canonical_category(value: object) -> str | None:
    """The string a categorical value is compared as, or None when it is missing.

    Parameters
    ----------
    value : object
        A raw value: str, bool, int, float (numpy scalars too), None or NaN.

    Returns
    -------
    str or None
        None for None/NaN/NA; ``"true"``/``"false"`` for booleans; ``"3"`` for 3 and 3.0;
        ``str(value)`` for other floats; a string unchanged.

    Examples
    --------
    >>> [canonical_category(v) for v in ("a", True, 3, 3.0, 2.5, float("nan"))]
    ['a', 'true', '3', '3', '2.5', None]
    """
    if isinstance(value, str):
        return value
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return None
        return str(int(number)) if number.is_integer() else str(number)
    missing = pd.isna(cast(Any, value))  # pd.NA, NaT, Decimal("NaN"): as pandas counts them
    return None if isinstance(missing, bool) and missing else str(value)


def as_number(value: object) -> float:
    return math.nan if value is None or value is pd.NA else float(cast(float, value))


def category_values(column: pd.Series) -> np.ndarray:
    """``canonical_category`` of every value, as an object array with None where missing."""
    if _mixed(column):  # hashing them would merge 1, 1.0 and True: one value at a time
        values = column.to_numpy(dtype=object, copy=True)
        for i, value in enumerate(values):
            if type(value) is not str:
                values[i] = canonical_category(value)
        return values
    codes, categories = category_factors(column)
    table = np.array([*categories, None], dtype=object)
    result: np.ndarray = table[codes]  # code -1 (missing) picks the trailing None
    return result


def category_factors(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(category_values(column))``: each row's code into the distinct canonical
    categories (-1 where missing), and those categories in order of first appearance.

    The column is factorised as it is (an Arrow string column without a Python object per
    row) and only its distinct values are canonicalised, then merged (3 and 3.0 are one
    "3"); a mixed object column is canonicalised value by value first, as hashing would
    merge 1, 1.0 and True. tests/training/test_category_factors.py proves it equal.
    """
    if _mixed(column):
        mixed_codes, uniques = pd.factorize(category_values(column))
        return mixed_codes, np.asarray(uniques, dtype=object)
    raw_codes, raw_uniques = pd.factorize(column)  # missing: -1
    names = np.array([canonical_category(u) for u in raw_uniques], dtype=object)
    merged, categories = pd.factorize(names)
    codes: np.ndarray = np.append(merged, -1)[raw_codes]  # code -1 stays -1
    return codes, np.asarray(categories, dtype=object)


def _mixed(column: pd.Series) -> bool:
    """An object column holding anything but text (and missing values)."""
    return column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) != "string"


class Columns:
    """A frame's columns as arrays, converted once per call and shared by every node."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame, self.cache = frame, dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]()

    def get(self, name: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """(values, missing) for ``kind`` numeric (float64) or categorical (canonical str)."""
        if (name, kind) not in self.cache:
            if name not in self.frame.columns:
                raise DataError(f"a rule condition uses column {name!r}, which the data lacks")
            column = self.frame[name]
            if kind == "numeric":
                values = column.to_numpy(dtype=np.float64, na_value=np.nan)
                self.cache[name, kind] = (values, np.isnan(values))
            else:
                values = category_values(column)
                self.cache[name, kind] = (values, pd.isna(values))
        return self.cache[name, kind]
