"""Effect sizes of an outcome across segments: how much the segments differ, not only whether.

With thousands of customers every p-value is 0.0000, so each outcome also gets an effect size
on a 0..1 scale: Cramér's V for a binary outcome (from the segments x outcome chi-square
table; sqrt(chi² / n) with two outcome values), epsilon² for a numeric one (Kruskal-Wallis H /
(n - 1), the rank analogue of eta²). The selection of segments uses the same measures.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import special, stats


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
    statistic, p_value = kruskal(values, codes, used)
    epsilon = statistic / (n - 1)
    return Effect(binary, statistic, p_value, min(max(epsilon, 0.0), 1.0))


def kruskal(values: np.ndarray, codes: np.ndarray, used: int) -> tuple[float, float]:
    """``scipy.stats.kruskal(*(values[codes == g] for g in range(used)))``'s H and p-value,
    to the bit (tests/training/test_effects.py), from one sort of ``values`` and one
    ``bincount`` of their ranks by group, not a mask of the rows per group and a stable
    sort of them all (0.35 s of a 1M-customer profile, for one numeric outcome).

    Every group holds a value (``codes``: 0 .. used - 1, each used). The ranks are averages
    over ties, multiples of 1/2 below the row count: their sums per group are exact floats
    in any order, so only the steps after them follow SciPy's own order of operations (the
    tie counts laid out as it lays them, the sum of squares over the groups in turn)."""
    total = len(values)
    order = np.argsort(values)  # any sort: tied values share one rank
    ordered = values[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    counts = np.diff(starts, append=total)
    mid_ranks = (starts + 1).astype(np.float64) + (counts.astype(np.float64) - 1) / 2
    sums = np.bincount(codes[order], weights=np.repeat(mid_ranks, counts), minlength=used)
    sizes = np.bincount(codes, minlength=used)
    ties = np.zeros(total)
    ties[starts] = counts
    correction = 1 - np.sum(ties**3 - ties) / (total**3 - total)
    square_sums = sum(sums[g] ** 2 / int(sizes[g]) for g in range(used))
    h = 12.0 / (total * (total + 1)) * square_sums - 3 * (total + 1)
    h /= correction
    return float(h), float(special.chdtrc(np.float64(used - 1), h))


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
