"""The condition tree of a rule: immutable nodes, evaluated on one row or a whole frame.

Every node answers on one customer (``evaluate_row``, plain Python: the service) and on a
frame (``evaluate_frame``, vectorised: training and batches), with the same result for every
row. A missing value (None, NaN) fails every comparison, ``!=`` and ``not in`` included; only
``is missing`` matches it. ``not`` negates its operand's result, so ``not (x < 3)`` matches a
missing ``x``. ``to_text`` writes the canonical text ``parse_condition`` reads back.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeAlias

import numpy as np
import pandas as pd

from app.training.rules.values import Columns, as_number, canonical_category

FeatureKinds: TypeAlias = Mapping[str, Literal["numeric", "categorical"]]
Op: TypeAlias = Literal["<", "<=", ">", ">=", "==", "!="]
Row: TypeAlias = Mapping[str, object]

KEYWORDS = frozenset({"and", "or", "not", "in", "is", "missing", "true", "false"})
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def name_text(feature: str) -> str:
    """A feature's name as a condition writes it: bare where it is one plain word, else in
    backticks (a column named ``Anzahl Besuche``, ``Région`` or ``in``), as
    ``parse_condition`` reads it."""
    plain = _PLAIN_NAME.fullmatch(feature) is not None and feature not in KEYWORDS
    return feature if plain else f"`{feature}`"


OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed condition: an immutable tree of the node classes below."""

    level: ClassVar[int] = 4  # binding strength, for parentheses in ``to_text``

    def _row(self, row: Row) -> bool:
        raise NotImplementedError

    def _mask(self, columns: Columns) -> np.ndarray:
        raise NotImplementedError

    def _text(self) -> str:
        raise NotImplementedError

    def _wrap(self, child: Condition, *, same_level_ok: bool) -> str:
        bare = child.level > self.level or (same_level_ok and child.level == self.level)
        return child._text() if bare else f"({child._text()})"


@dataclass(frozen=True, slots=True)
class Compare(Condition):
    """``feature op value``: value is a float (numeric feature) or a canonical string."""

    feature: str
    op: Op
    value: float | str

    def _row(self, row: Row) -> bool:
        if isinstance(self.value, str):
            category = canonical_category(row.get(self.feature))
            return category is not None and bool(OPS[self.op](category, self.value))
        number = as_number(row.get(self.feature))
        return not math.isnan(number) and bool(OPS[self.op](number, self.value))

    def _mask(self, columns: Columns) -> np.ndarray:
        kind = "categorical" if isinstance(self.value, str) else "numeric"
        values, missing = columns.get(self.feature, kind)
        result: np.ndarray = OPS[self.op](values, self.value) & ~missing
        return result

    def _text(self) -> str:
        return f"{name_text(self.feature)} {self.op} {_literal_text(self.value)}"


@dataclass(frozen=True, slots=True)
class InList(Condition):
    """``feature [not] in [values]``: floats (numeric feature) or canonical strings."""

    feature: str
    values: tuple[float, ...] | tuple[str, ...]
    negated: bool = False

    def _row(self, row: Row) -> bool:
        raw = row.get(self.feature)
        value = canonical_category(raw) if isinstance(self.values[0], str) else as_number(raw)
        if value is None or value != value:  # missing: None or NaN
            return False
        return (value in self.values) != self.negated

    def _mask(self, columns: Columns) -> np.ndarray:
        if isinstance(self.values[0], str):
            values, missing = columns.get(self.feature, "categorical")
            hit = np.zeros(len(values), dtype=bool)
            for literal in self.values:  # not np.isin: it may sort None against str
                hit |= values == literal
        else:
            values, missing = columns.get(self.feature, "numeric")
            hit = np.isin(values, np.asarray(self.values, dtype=np.float64))
        result: np.ndarray = (hit != self.negated) & ~missing
        return result

    def _text(self) -> str:
        items = ", ".join(_literal_text(v) for v in self.values)
        return f"{name_text(self.feature)} {'not in' if self.negated else 'in'} [{items}]"


@dataclass(frozen=True, slots=True)
class IsMissing(Condition):
    """``feature is [not] missing``."""

    feature: str
    negated: bool = False

    def _row(self, row: Row) -> bool:
        return (canonical_category(row.get(self.feature)) is None) != self.negated

    def _mask(self, columns: Columns) -> np.ndarray:
        frame = columns.frame
        if self.feature not in frame.columns:
            columns.get(self.feature, "numeric")  # raises the DataError
        result: np.ndarray = frame[self.feature].isna().to_numpy(dtype=bool) != self.negated
        return result

    def _text(self) -> str:
        return f"{name_text(self.feature)} is {'not missing' if self.negated else 'missing'}"


@dataclass(frozen=True, slots=True)
class Not(Condition):
    operand: Condition
    level: ClassVar[int] = 3

    def _row(self, row: Row) -> bool:
        return not self.operand._row(row)

    def _mask(self, columns: Columns) -> np.ndarray:
        return ~self.operand._mask(columns)

    def _text(self) -> str:
        return "not " + self._wrap(self.operand, same_level_ok=True)


@dataclass(frozen=True, slots=True)
class And(Condition):
    parts: tuple[Condition, ...]
    level: ClassVar[int] = 2

    def _row(self, row: Row) -> bool:
        return all(part._row(row) for part in self.parts)

    def _mask(self, columns: Columns) -> np.ndarray:
        result: np.ndarray = np.logical_and.reduce([p._mask(columns) for p in self.parts])
        return result

    def _text(self) -> str:  # a nested And keeps its parentheses, so the tree round-trips
        return " and ".join(self._wrap(part, same_level_ok=False) for part in self.parts)


@dataclass(frozen=True, slots=True)
class Or(Condition):
    parts: tuple[Condition, ...]
    level: ClassVar[int] = 1

    def _row(self, row: Row) -> bool:
        return any(part._row(row) for part in self.parts)

    def _mask(self, columns: Columns) -> np.ndarray:
        result: np.ndarray = np.logical_or.reduce([p._mask(columns) for p in self.parts])
        return result

    def _text(self) -> str:
        return " or ".join(self._wrap(part, same_level_ok=False) for part in self.parts)


def _literal_text(value: float | str) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)


def referenced_features(cond: Condition) -> set[str]:
    """The names of the features a condition reads.

    Parameters
    ----------
    cond : Condition

    Returns
    -------
    set of str
    """
    if isinstance(cond, Compare | InList | IsMissing):
        return {cond.feature}
    if isinstance(cond, Not):
        return referenced_features(cond.operand)
    if isinstance(cond, And | Or):
        return set().union(*(referenced_features(part) for part in cond.parts))
    raise TypeError(f"not a condition node: {cond!r}")


def evaluate_frame(cond: Condition, frame: pd.DataFrame) -> np.ndarray:
    """Evaluate a condition on every row of a frame, vectorised.

    Parameters
    ----------
    cond : Condition
    frame : pandas.DataFrame
        Holds a column for every feature the condition reads.

    Returns
    -------
    numpy.ndarray
        Boolean, one value per row, equal to ``evaluate_row`` on each row.

    Raises
    ------
    DataError
        If the frame lacks a column the condition reads.
    """
    return cond._mask(Columns(frame))


def evaluate_row(cond: Condition, row: Mapping[str, object]) -> bool:
    """Evaluate a condition on one customer, in plain Python (no pandas).

    Parameters
    ----------
    cond : Condition
    row : mapping of str to object
        Feature values; an absent key counts as missing.

    Returns
    -------
    bool
    """
    return cond._row(row)


def to_text(cond: Condition) -> str:
    """The canonical text of a condition; ``parse_condition`` gives back an equal tree.

    Parameters
    ----------
    cond : Condition

    Returns
    -------
    str
        Double-quoted strings, minimal parentheses, integral numbers without ``.0``.

    Examples
    --------
    >>> from app.training.rules import parse_condition
    >>> to_text(parse_condition("(x<3.0) or not(c in ['a'])", {"x": "numeric", "c": "categorical"}))
    'x < 3 or not c in ["a"]'
    """
    return cond._text()
