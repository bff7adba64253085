"""A spreadsheet's total row: the line under a customer table that sums its columns.

A table exported from Excel often ends with one (``Summe``, ``Total``, ``Grand Total`` in the
id column, the column sums beside it). Read as a customer, it is the biggest customer there is,
by far: a German shop's 4,000 customers trained into a segment of that one row, and the
selection, finding no candidate whose every segment held 5%, chose the one whose smallest
segment held 0.025%. Such a row is found by what it holds, not by its id's word (a total is
written in every language): in a numeric column of at least ``MIN_ADDENDS`` other positive
values and none negative, its value is the sum of every other row's, to a part in 100,000,
in two such columns, or in one of ``ONE_COLUMN_ADDENDS``. A customer may hold the sum of a
sparse count's few others (10 complaints beside ten customers of one each), not that of two
columns at once, nor of a hundred others.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from app.words import echoed

TOTAL_ROW = "a total row (the sum of the other rows)"
MIN_ADDENDS = 10  # other positive values: 3 customers of 1, 1 and 2 orders are no total
ONE_COLUMN_ADDENDS = 100  # a sum found in one column only
RELATIVE = 1e-5  # a sum of cells written rounded (1.970.893,42 of 4,000 amounts of cents)


def total_rows(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, str | None]:
    """True for each row of ``frame`` that holds, in two of ``columns`` (or one, of at least
    ``ONE_COLUMN_ADDENDS`` others), the sum of every other row's value (the others at least
    ``MIN_ADDENDS`` positive, none negative), and an example for the summary (``'Summe':
    Bestellungen 27,081, the sum of the others``). Text that is no number counts as missing
    here (its feature's own check refuses it)."""
    found: dict[int, list[str]] = {}
    addends: dict[int, int] = {}
    for name in columns:
        if name not in frame.columns:
            continue
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        given = np.isfinite(values)
        if not given.any():
            continue
        kept = values[given]
        # a total is at least half of the column's sum (itself and the others): only the
        # column's largest value can be one, so a column whose largest is not is passed
        # over after three reductions, not compared row by row (0.18 s a 1M-row table)
        low, high, whole = float(kept.min()), float(kept.max()), float(kept.sum())
        if low < 0 or abs(2 * high - whole) > RELATIVE * whole:
            continue
        others = int(np.count_nonzero(kept > 0)) - 1
        if others < MIN_ADDENDS:
            continue
        hit = given & (values > 0) & (np.abs(2 * values - whole) <= RELATIVE * whole)
        for at in np.flatnonzero(hit).tolist():
            found.setdefault(at, []).append(f"{name} {values[at]:,.10g}")
            addends[at] = max(addends.get(at, 0), others)
    found = {
        at: cells
        for at, cells in found.items()
        if len(cells) >= 2 or addends[at] >= ONE_COLUMN_ADDENDS
    }
    totals = np.zeros(len(frame), dtype=bool)
    totals[list(found)] = True
    if not found:
        return totals, None
    first, cells = next(iter(found.items()))
    example = f"{echoed(str(frame.index[first]))}: {', '.join(cells)}, the sum of the others"
    return totals, example
