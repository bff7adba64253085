"""Reading a rule condition: a small tokenizer and a recursive-descent parser, never ``eval``.

The grammar is in the package's docstring (``app.training.rules``). The parser type-checks
as it goes (a feature must be declared; a categorical feature takes only ``==``, ``!=`` and
``in``) and reports the first problem with its 0-based position.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import NoReturn, cast

from app.errors import RuleSyntaxError
from app.training.rules.conditions import (
    KEYWORDS,
    OPS,
    And,
    Compare,
    Condition,
    FeatureKinds,
    InList,
    IsMissing,
    Not,
    Op,
    Or,
    name_text,
)
from app.training.rules.values import canonical_category

MAX_LENGTH = 2_000
MAX_DEPTH = 50

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)(?![A-Za-z0-9_.])
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    | (?P<name>`[^`]+`)
    | (?P<symbol><=|>=|==|!=|<|>|[()\[\],])
    )""",
    re.VERBOSE | re.DOTALL,
)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # number, string, word, name (`in backticks`: text without them), symbol, end;
    # or bad (text is the problem)
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
            if char == "=":  # "plan = 'pro'": the comparison is written ==
                problem += " (compare with ==)"
            if char in "'\"":
                problem = "unterminated string"
            elif char == "`":
                problem = "a name in backticks is not closed (or is empty)"
            elif re.match(r"-?\.?[0-9]", text[pos:]):
                problem = "malformed number"
            return [*tokens, _Token("bad", problem, pos)]
        raw, start = match.group(kind), match.start(kind)
        value: bool | int | float | str | None = raw == "true" if raw in ("true", "false") else None
        if kind == "name":
            raw = raw[1:-1]
        elif kind == "string":
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
        if what == "a value" and token.kind == "word" and token.text not in KEYWORDS:
            # country == BR: text is quoted
            found += f" (quote text: '{token.text}')"
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
        if name.kind != "name" and (name.kind != "word" or name.text in KEYWORDS):
            self.expected("a condition (a feature name, 'not' or '(')")
        feature, kind = self.take().text, self.features.get(name.text)
        if kind is None:
            declared = ", ".join(self.features) or "none"
            # Anzahl Besuche < 2: the name was read up to its space (Région: to its é)
            meant = [
                f for f in self.features if name_text(f) != f and self.text.startswith(f, name.pos)
            ]
            quote = f"; write {name_text(max(meant, key=len))}, in backticks" if meant else ""
            self.fail(f"unknown feature {feature!r} (declared: {declared}){quote}")
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
        if op.kind != "symbol" or op.text not in OPS:
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
