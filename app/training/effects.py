"""Effect sizes of an outcome across segments: how much the segments differ, not only whether.

With thousands of customers every p-value is 0.0000, so each outcome also gets an effect size
on a 0..1 scale: Cramér's V for a binary outcome (from the segments x outcome chi-square
table; sqrt(chi² / n) with two outcome values), epsilon² for a numeric one (Kruskal-Wallis H /
(n - 1), the rank analogue of eta²). The selection of segments uses the same measures.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats


class Effect(NamedTuple):
    binary: bool
    statistic: float | None
    p_value: float | None
    size: float | None  # Cramér's V or epsilon²


def is_binary(values: np.ndarray) -> bool:
    return bool(np.isin(values, (0.0, 1.0)).all())


def outcome_effect(values: np.ndarray, groups: np.ndarray, binary: bool | None = None) -> Effect:
    """Test and effect size of ``values`` (no NaN) across ``groups`` (one label per value)."""
    binary = is_binary(values) if binary is None else binary
    codes, used = _group_codes(groups)
    n = len(values)
    if used < 2 or n < 3:
        return Effect(binary, None, None, None)
    if binary:  # the segments x outcome table: counts of each (code, value) pair
        pairs = np.bincount(codes * 2 + values.astype(int), minlength=2 * used)
        table = pairs.reshape(used, 2).astype(np.float64)
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2:
            return Effect(binary, None, None, None)
        chi = stats.chi2_contingency(table, correction=False)
        v = float(np.sqrt(chi.statistic / n))
        return Effect(binary, float(chi.statistic), float(chi.pvalue), min(v, 1.0))
    if np.all(values == values[0]):
        return Effect(binary, None, None, None)
    kw = stats.kruskal(*(values[codes == g] for g in range(used)))
    epsilon = float(kw.statistic) / (n - 1)
    return Effect(binary, float(kw.statistic), float(kw.pvalue), min(max(epsilon, 0.0), 1.0))


def _group_codes(groups: np.ndarray) -> tuple[np.ndarray, int]:
    """``np.unique(groups, return_inverse=True)``'s inverse and the number of groups.

    Segment slots and cluster labels are small non-negative integers: counted with
    ``bincount`` rather than sorted (a million rows per outcome in the profile).
    """
    if groups.dtype.kind in "iu" and len(groups) and 0 <= groups.min() <= groups.max() < 2**16:
        present = np.flatnonzero(np.bincount(groups))
        lookup = np.zeros(int(groups.max()) + 1, dtype=np.intp)
        lookup[present] = np.arange(len(present))
        return lookup[groups], len(present)
    used, codes = np.unique(groups, return_inverse=True)
    return codes.reshape(-1), len(used)
