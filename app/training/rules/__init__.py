"""Rule segments: ordered, declarative conditions checked before clustering.

A condition is read by a small tokenizer and recursive-descent parser (never ``eval``) into
an immutable tree, checked against the declared features, then evaluated on a DataFrame
(``evaluate_frame``, vectorised: training and batches) or on one customer (``evaluate_row``,
plain Python: the service). Both give the same answer for every row.

Grammar (keywords are lower case and reserved; IDENT is ``[A-Za-z_][A-Za-z0-9_.]*``, or any
other name in backticks: ```Anzahl Besuche```, ```Région```, ```in```)::

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

from app.training.rules.conditions import (
    And,
    Compare,
    Condition,
    FeatureKinds,
    InList,
    IsMissing,
    Not,
    Op,
    Or,
    Row,
    evaluate_frame,
    evaluate_row,
    name_text,
    referenced_features,
    to_text,
)
from app.training.rules.parser import MAX_DEPTH, MAX_LENGTH, parse_condition
from app.training.rules.segments import (
    RuleSegment,
    compile_rules,
    first_match_frame,
    first_match_row,
)
from app.training.rules.values import canonical_category

# the names artefacts were pickled with (``app.training.rules.Compare``, ...) stay importable
__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "And",
    "Compare",
    "Condition",
    "FeatureKinds",
    "InList",
    "IsMissing",
    "Not",
    "Op",
    "Or",
    "Row",
    "RuleSegment",
    "canonical_category",
    "compile_rules",
    "evaluate_frame",
    "evaluate_row",
    "first_match_frame",
    "first_match_row",
    "name_text",
    "parse_condition",
    "referenced_features",
    "to_text",
]
