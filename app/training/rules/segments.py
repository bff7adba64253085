"""Rule segments: named conditions in priority order; a customer takes the first that matches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from app.errors import RuleSyntaxError
from app.training.config import RuleConfig
from app.training.rules.conditions import Condition, FeatureKinds
from app.training.rules.parser import parse_condition
from app.training.rules.values import Columns


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
    columns = Columns(frame)
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
