"""Codes written as numbers that mean "never" or "unknown": the bank-marketing table's
``pdays = 999`` (never contacted, 96% of the calls), a survey's ``-1`` or ``9999``.

Undeclared, such a code is a number like any other: 999 days since the last contact, far
beyond every real one (0 to 27), so the feature splits the customers into those who hold it
and the rest, and every profile's mean of it is mostly the code. The job cannot know that
999 is no number of days, but it can see its shape: a value of all nines, or a negative one
in a column otherwise never negative, held by many customers and lying apart from every
other value. The note names it and the option that reads it as missing.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from app.training.config import NumericFeature, TrainConfig
from app.training.rules import name_text
from app.words import counted, percent

CODES = (-1.0, -9.0, -99.0, -999.0, -9999.0, 99.0, 999.0, 9999.0, 99999.0, 999999.0)
MIN_SHARE = 0.01  # of the customers with a value: a few stray 999s pull no segment
BEYOND = 2.0  # a code of nines at least this many times the largest other value
MIN_OTHERS = 3  # distinct other values: a 0/1/999 column may be codes throughout


def sentinel_codes(config: TrainConfig, frame: pd.DataFrame) -> list[str]:
    """A note per numeric feature holding a code of ``CODES`` apart from its other values
    (nines at least ``BEYOND`` times the largest other, a negative code below others that
    are never negative), on ``MIN_SHARE`` of its customers or more; a feature whose own
    ``missing_values`` or ``[data]``'s already read it is masked before this sees it."""
    notes = []
    for feature in config.features:
        if not isinstance(feature, NumericFeature):
            continue
        values = frame[feature.name].to_numpy(dtype=np.float64, na_value=np.nan)
        values = values[np.isfinite(values)]
        if len(values) == 0:
            continue
        # only the column's smallest value can be a negative code apart (any value below it
        # is another negative one) and only its largest a code of nines apart (it is over
        # twice every other): two candidates, not a pass over every row per code
        ends = {float(values.min()), float(values.max())}
        for code in (c for c in CODES if c in ends):
            held = values == code
            share = float(held.mean())
            if share < MIN_SHARE:
                continue
            others = values[~held]
            if len(np.unique(others)) < MIN_OTHERS:
                continue
            low, high = float(others.min()), float(others.max())
            apart = code > BEYOND * max(high, 0.0) if code > 0 else low >= 0
            if not apart:
                continue
            marker = json.dumps(f"{code:g}")
            rule = f"{name_text(feature.name)} is missing"
            notes.append(
                f"{feature.name}: {counted(int(held.sum()), 'customer')} ({percent(share)}) "
                f"{'holds' if held.sum() == 1 else 'hold'} {code:g}, apart from its other "
                f"values ({low:g} to {high:g}): if it is a "
                "code (never, unknown), it is segmented on as a number all the same; declare "
                f"missing_values = [{marker}] in its [[features]] entry, and give them a rule "
                f"if they are a segment of their own (when = {json.dumps(rule)})"
            )
            break
    return notes
