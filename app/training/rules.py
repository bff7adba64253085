"""Rule segments: ordered, declarative conditions checked before clustering.

A condition is read by a small tokenizer and recursive-descent parser (never ``eval``) into
an immutable tree, checked against the declared features, then evaluated on a DataFrame
(``evaluate_frame``, vectorised: training and batches) or on one customer (``evaluate_row``,
plain Python: the service). Both give the same answer for every row.

Grammar (keywords are lower case and reserved; IDENT is ``[A-Za-z_][A-Za-z0-9_.]*``)::

    expr       := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | atom
    atom       := "(" expr ")" | comparison
    comparison := IDENT op literal
                | IDENT ["not"] "in" "[" literal ("," literal)* "]"
                | IDENT "is" ["not"] "missing"
    op         := "<" | "<=" | ">" | ">=" | "==" | "!="
    literal    := number | string | "true" | "false"

Numbers are ints or floats, optionally negative, with an optional exponent (``-1.5e2``).
Strings are single- or double-quoted; a backslash makes the next character literal.

Numeric features compare as float64. Categorical features compare as the canonical strings of
``canonical_category``, so ``store == 3`` matches 3, 3.0 and "3". A missing value (None, NaN)
fails every comparison, ``!=`` and ``not in`` included; only ``is missing`` matches it.
``not`` negates its operand's result, so ``not (x < 3)`` matches a missing ``x``.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NoReturn, TypeAlias, cast

import numpy as np
import pandas as pd

from app.errors import DataError, RuleSyntaxError
from app.training.config import RuleConfig

FeatureKinds: TypeAlias = Mapping[str, Literal["numeric", "categorical"]]
Op: TypeAlias = Literal["<", "<=", ">", ">=", "==", "!="]
Row: TypeAlias = Mapping[str, object]

MAX_LENGTH = 2_000
MAX_DEPTH = 50
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_KEYWORDS = frozenset({"and", "or", "not", "in", "is", "missing", "true", "false"})


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


def _number(value: object) -> float:
    return math.nan if value is None or value is pd.NA else float(cast(float, value))


def _category_values(column: pd.Series) -> np.ndarray:
    """``canonical_category`` of every value, as an object array with None where missing."""
    if isinstance(column.dtype, pd.StringDtype) or (
        column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) == "string"
    ):
        values = column.to_numpy(dtype=object, copy=True)
        values[column.isna().to_numpy(dtype=bool)] = None
        return values
    if column.dtype == object:  # mixed types: hashing them would merge 1, 1.0 and True
        values = column.to_numpy(dtype=object, copy=True)
        for i, value in enumerate(values):
            if type(value) is not str:
                values[i] = canonical_category(value)
        return values
    codes, uniques = pd.factorize(column)
    table = np.array([*(canonical_category(u) for u in uniques), None], dtype=object)
    result: np.ndarray = table[codes]  # code -1 (missing) picks the trailing None
    return result


class _Columns:
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
                values = _category_values(column)
                self.cache[name, kind] = (values, pd.isna(values))
        return self.cache[name, kind]


# -- the condition tree -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed condition: an immutable tree of the node classes below."""

    level: ClassVar[int] = 4  # binding strength, for parentheses in ``to_text``

    def _row(self, row: Row) -> bool:
        raise NotImplementedError

    def _mask(self, columns: _Columns) -> np.ndarray:
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
            return category is not None and bool(_OPS[self.op](category, self.value))
        number = _number(row.get(self.feature))
        return not math.isnan(number) and bool(_OPS[self.op](number, self.value))

    def _mask(self, columns: _Columns) -> np.ndarray:
        kind = "categorical" if isinstance(self.value, str) else "numeric"
        values, missing = columns.get(self.feature, kind)
        result: np.ndarray = _OPS[self.op](values, self.value) & ~missing
        return result

    def _text(self) -> str:
        return f"{self.feature} {self.op} {_literal_text(self.value)}"


@dataclass(frozen=True, slots=True)
class InList(Condition):
    """``feature [not] in [values]``: floats (numeric feature) or canonical strings."""

    feature: str
    values: tuple[float, ...] | tuple[str, ...]
    negated: bool = False

    def _row(self, row: Row) -> bool:
        raw = row.get(self.feature)
        value = canonical_category(raw) if isinstance(self.values[0], str) else _number(raw)
        if value is None or value != value:  # missing: None or NaN
            return False
        return (value in self.values) != self.negated

    def _mask(self, columns: _Columns) -> np.ndarray:
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
        return f"{self.feature} {'not in' if self.negated else 'in'} [{items}]"


@dataclass(frozen=True, slots=True)
class IsMissing(Condition):
    """``feature is [not] missing``."""

    feature: str
    negated: bool = False

    def _row(self, row: Row) -> bool:
        return (canonical_category(row.get(self.feature)) is None) != self.negated

    def _mask(self, columns: _Columns) -> np.ndarray:
        frame = columns.frame
        if self.feature not in frame.columns:
            columns.get(self.feature, "numeric")  # raises the DataError
        result: np.ndarray = frame[self.feature].isna().to_numpy(dtype=bool) != self.negated
        return result

    def _text(self) -> str:
        return f"{self.feature} is {'not missing' if self.negated else 'missing'}"


@dataclass(frozen=True, slots=True)
class Not(Condition):
    operand: Condition
    level: ClassVar[int] = 3

    def _row(self, row: Row) -> bool:
        return not self.operand._row(row)

    def _mask(self, columns: _Columns) -> np.ndarray:
        return ~self.operand._mask(columns)

    def _text(self) -> str:
        return "not " + self._wrap(self.operand, same_level_ok=True)


@dataclass(frozen=True, slots=True)
class And(Condition):
    parts: tuple[Condition, ...]
    level: ClassVar[int] = 2

    def _row(self, row: Row) -> bool:
        return all(part._row(row) for part in self.parts)

    def _mask(self, columns: _Columns) -> np.ndarray:
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

    def _mask(self, columns: _Columns) -> np.ndarray:
        result: np.ndarray = np.logical_or.reduce([p._mask(columns) for p in self.parts])
        return result

    def _text(self) -> str:
        return " or ".join(self._wrap(part, same_level_ok=False) for part in self.parts)


def _literal_text(value: float | str) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)


# -- tokenizer and parser -----------------------------------------------------------------------
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)(?![A-Za-z0-9_.])
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    | (?P<symbol><=|>=|==|!=|<|>|[()\[\],])
    )""",
    re.VERBOSE | re.DOTALL,
)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # number, string, word, symbol, end; or bad (text is the problem)
    text: str
    pos: int
    value: bool | int | float | str | None = None  # set for literals only


def _tokenize(text: str) -> list[_Token]:
    """Tokens up to the end, or up to a ``bad`` one: the parser reports it when it gets there."""
    tokens: list[_Token] = []
    pos, end = 0, len(text.rstrip())
    while pos < end:
        match = _TOKEN.match(text, pos)
        kind = match.lastgroup if match else None
        if match is None or kind is None:
            pos += len(text[pos:]) - len(text[pos:].lstrip())
            char = text[pos]
            problem = f"unexpected character {char!r}"
            if char in "'\"":
                problem = "unterminated string"
            elif re.match(r"-?\.?[0-9]", text[pos:]):
                problem = "malformed number"
            return [*tokens, _Token("bad", problem, pos)]
        raw, start = match.group(kind), match.start(kind)
        value: bool | int | float | str | None = raw == "true" if raw in ("true", "false") else None
        if kind == "string":
            value = _ESCAPE.sub(r"\1", raw[1:-1])
        elif kind == "number":
            try:
                value = int(raw) if raw.lstrip("-").isdigit() else float(raw)
                finite = math.isfinite(value)
            except OverflowError:
                finite = False
            if not finite:
                return [*tokens, _Token("bad", f"number {raw} is out of range", start)]
        tokens.append(_Token(kind, raw, start, value))
        pos = match.end()
    return [*tokens, _Token("end", "", end)]


class _Parser:
    def __init__(self, text: str, features: FeatureKinds) -> None:
        self.text, self.features, self.tokens = text, features, _tokenize(text)
        self.i, self.depth, self.prev = 0, 0, cast(_Token | None, None)

    def fail(self, problem: str, pos: int | None = None) -> NoReturn:
        where = "" if pos is None else f" at position {pos}"
        raise RuleSyntaxError(f"rule condition {self.text!r}: {problem}{where}")

    def peek(self) -> _Token:
        token = self.tokens[self.i]
        if token.kind == "bad":
            self.fail(token.text, token.pos)
        return token

    def take(self) -> _Token:
        self.prev = self.peek()
        self.i += 1
        return self.prev

    def accept(self, text: str) -> _Token | None:
        token = self.peek()
        ok = token.kind in ("word", "symbol") and token.text == text
        return self.take() if ok else None

    def expected(self, what: str) -> NoReturn:
        token = self.peek()
        after = f" after {self.prev.text!r}" if self.prev else ""
        found = "" if token.kind == "end" else f", found {token.text!r}"
        self.fail(f"expected {what}{after}{found}", token.pos)

    def nest(self, token: _Token, delta: int) -> None:
        self.depth += delta
        if self.depth > MAX_DEPTH:
            self.fail(f"nesting deeper than {MAX_DEPTH} levels", token.pos)

    def parse(self) -> Condition:
        if self.peek().kind == "end":
            self.fail("the condition is empty")
        condition = self.or_()
        token = self.peek()
        if token.kind == "symbol" and token.text == ")":
            self.fail("unbalanced parenthesis: ')' without a matching '('", token.pos)
        if token.kind != "end":
            self.fail(f"unexpected {token.text!r} after a complete condition", token.pos)
        return condition

    def or_(self) -> Condition:
        parts = [self.and_()]
        while self.accept("or"):
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_(self) -> Condition:
        parts = [self.not_()]
        while self.accept("and"):
            parts.append(self.not_())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def not_(self) -> Condition:
        if token := self.accept("not"):
            self.nest(token, 1)
            operand = self.not_()
            self.nest(token, -1)
            return Not(operand)
        if token := self.accept("("):
            self.nest(token, 1)
            condition = self.or_()
            if not self.accept(")"):
                if self.peek().kind == "end":
                    self.fail(
                        f"unbalanced parenthesis: the '(' at position {token.pos} is not closed"
                    )
                self.expected("'and', 'or' or ')'")
            self.nest(token, -1)
            return condition
        return self.comparison()

    def comparison(self) -> Condition:
        name = self.peek()
        if name.kind != "word" or name.text in _KEYWORDS:
            self.expected("a condition (a feature name, 'not' or '(')")
        feature, kind = self.take().text, self.features.get(name.text)
        if kind is None:
            declared = ", ".join(self.features) or "none"
            self.fail(f"unknown feature {feature!r} (declared: {declared})")
        if self.accept("is"):
            negated = self.accept("not") is not None
            if not self.accept("missing"):
                self.expected("'missing'")
            return IsMissing(feature, negated)
        negated = self.accept("not") is not None
        if self.accept("in"):
            return InList(feature, self.in_values(feature, kind), negated)
        if negated:
            self.expected("'in'")
        op = self.peek()
        if op.kind != "symbol" or op.text not in _OPS:
            self.expected("an operator (<, <=, >, >=, ==, !=, in, not in, is)")
        if kind == "categorical" and op.text not in ("==", "!="):
            self.fail(f"{op.text!r} needs a numeric feature; {feature!r} is categorical", op.pos)
        self.take()
        token = self.literal()
        value = self.number(feature, token) if kind == "numeric" else self.category(token)
        return Compare(feature, cast(Op, op.text), value)

    def in_values(self, feature: str, kind: str) -> tuple[float, ...] | tuple[str, ...]:
        if not self.accept("["):
            self.expected("'['")
        tokens = [self.literal()]
        while self.accept(","):
            tokens.append(self.literal())
        if not self.accept("]"):
            self.expected("',' or ']'")
        if kind == "numeric":
            return tuple(self.number(feature, token) for token in tokens)
        return tuple(self.category(token) for token in tokens)

    def literal(self) -> _Token:
        if self.peek().value is None:
            self.expected("a value")
        return self.take()

    def number(self, feature: str, token: _Token) -> float:
        if isinstance(token.value, bool) or not isinstance(token.value, int | float):
            self.fail(f"{feature!r} is numeric: expected a number, found {token.text}", token.pos)
        return float(token.value)

    def category(self, token: _Token) -> str:
        text = canonical_category(token.value)
        assert text is not None  # a literal is never missing
        return text


# -- public functions ---------------------------------------------------------------------------
def parse_condition(text: str, features: FeatureKinds) -> Condition:
    """Parse and type-check a rule condition.

    Parameters
    ----------
    text : str
        The condition, e.g. ``tenure_days < 30 and plan == "free"``.
    features : mapping of str to {"numeric", "categorical"}
        The declared features a condition may use, with their kinds.

    Returns
    -------
    Condition

    Raises
    ------
    RuleSyntaxError
        If the text does not parse, names an unknown feature, compares a feature with the wrong
        kind of value, is empty, is over 2,000 characters or nests deeper than 50 levels. The
        message names the problem and its position (a 0-based character offset).

    Examples
    --------
    >>> parse_condition("x < 3", {"x": "numeric"})
    Compare(feature='x', op='<', value=3.0)
    """
    if len(text) > MAX_LENGTH:
        raise RuleSyntaxError(
            f"rule condition is {len(text):,} characters long; the limit is {MAX_LENGTH:,}"
        )
    return _Parser(text, features).parse()


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
    return cond._mask(_Columns(frame))


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
    >>> to_text(parse_condition("(x<3.0) or not(c in ['a'])", {"x": "numeric", "c": "categorical"}))
    'x < 3 or not c in ["a"]'
    """
    return cond._text()


@dataclass(frozen=True)
class RuleSegment:
    """A named rule segment: its parsed condition and the text it was written as."""

    name: str
    condition: Condition
    text: str
    description: str | None
    action: str | None


def compile_rules(rules: Sequence[RuleConfig], features: FeatureKinds) -> list[RuleSegment]:
    """Parse every configured rule, keeping their order.

    Parameters
    ----------
    rules : sequence of RuleConfig
        The ``[[rules]]`` of the training config.
    features : mapping of str to {"numeric", "categorical"}

    Returns
    -------
    list of RuleSegment

    Raises
    ------
    RuleSyntaxError
        For the first invalid rule; the message starts with the rule's name.
    """
    compiled = []
    for rule in rules:
        try:
            condition = parse_condition(rule.when, features)
        except RuleSyntaxError as exc:
            raise RuleSyntaxError(f"rule {rule.name!r}: {exc}") from None
        text = rule.when.strip()
        compiled.append(RuleSegment(rule.name, condition, text, rule.description, rule.action))
    return compiled


def first_match_frame(rules: Sequence[RuleSegment], frame: pd.DataFrame) -> np.ndarray:
    """The index of the first matching rule for every row, -1 where none matches.

    Parameters
    ----------
    rules : sequence of RuleSegment
        In priority order.
    frame : pandas.DataFrame

    Returns
    -------
    numpy.ndarray
        int64, one value per row; equal to ``first_match_row`` on each row.
    """
    slots = np.full(len(frame), -1, dtype=np.int64)
    columns = _Columns(frame)
    for index, rule in enumerate(rules):
        slots[(slots < 0) & rule.condition._mask(columns)] = index
    return slots


def first_match_row(rules: Sequence[RuleSegment], row: Mapping[str, object]) -> int:
    """The index of the first rule matching one customer, -1 if none does.

    Parameters
    ----------
    rules : sequence of RuleSegment
        In priority order.
    row : mapping of str to object

    Returns
    -------
    int
    """
    for index, rule in enumerate(rules):
        if rule.condition._row(row):
            return index
    return -1
