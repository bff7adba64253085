"""Outcome effects counted with bincount equal the obvious np.unique + np.add.at reading."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from app.training.effects import Effect, kruskal, outcome_effect


def _obvious(values: np.ndarray, groups: np.ndarray, binary: bool) -> Effect:
    used, codes = np.unique(groups, return_inverse=True)
    n = len(values)
    if len(used) < 2 or n < 3:
        return Effect(binary, None, None, None)
    if binary:
        table = np.zeros((len(used), 2))
        np.add.at(table, (codes, values.astype(int)), 1)
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2:
            return Effect(binary, None, None, None)
        chi = stats.chi2_contingency(table, correction=False)
        v = float(np.sqrt(chi.statistic / n))
        return Effect(binary, float(chi.statistic), float(chi.pvalue), min(v, 1.0))
    if np.all(values == values[0]):
        return Effect(binary, None, None, None)
    kw = stats.kruskal(*(values[codes == g] for g in range(len(used))))
    epsilon = float(kw.statistic) / (n - 1)
    return Effect(binary, float(kw.statistic), float(kw.pvalue), min(max(epsilon, 0.0), 1.0))


def _groups(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "slots with gaps": rng.choice(np.array([0, 2, 5, 9]), n),
        "int32 labels": rng.integers(0, 6, n).astype(np.int32),
        "negative labels": rng.choice(np.array([-1, 3, 4]), n),
        "large labels": rng.choice(np.array([3, 70_000]), n),
        "text labels": rng.choice(np.array(["s1", "s2", "s3"]), n),
        "one group": np.full(n, 4),
    }


@pytest.mark.parametrize("binary", [True, False])
def test_outcome_effect_is_the_obvious_reading(binary: bool) -> None:
    rng = np.random.default_rng(21)
    for n in (2, 50, 5_000):
        values = (rng.random(n) < 0.3).astype(np.float64) if binary else rng.lognormal(0, 1, n)
        for name, groups in _groups(rng, n).items():
            assert outcome_effect(values, groups, binary) == _obvious(values, groups, binary), name
    only_ones = np.ones(100)  # one outcome value: no test
    assert outcome_effect(only_ones, np.arange(100) % 3, True).size is None


def _tied(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "counts": rng.poisson(2, n).astype(np.float64),
        "money, mostly 0": np.where(rng.random(n) < 0.7, 0.0, np.round(rng.lognormal(3, 1, n))),
        "signed zeros": rng.choice(np.array([-0.0, 0.0, 1.5, -2.0]), n),
        "two values": rng.choice(np.array([3.0, 7.0]), n),
        "no ties": rng.normal(0, 1, n),
    }


@pytest.mark.parametrize("n", [3, 40, 20_000, 400_000])
def test_kruskal_from_one_sort_is_scipys_to_the_bit(n: int) -> None:
    """Ties of every size (a tie of 280,000 values: its count cubed is past 2**53, where the
    tie correction's sum is summed in SciPy's layout), signed zeros, a group of one row."""
    rng = np.random.default_rng(n)
    for name, values in _tied(rng, n).items():
        if np.all(values == values[0]):  # one value: outcome_effect tests nothing
            continue
        for used in (u for u in (2, 3, 7) if u <= n):
            codes = rng.integers(0, used, n)
            codes[:used] = np.arange(used)  # every group holds a row; the last, maybe one
            if n > used:
                codes[used:][codes[used:] == used - 1] = 0
            expected = stats.kruskal(*(values[codes == g] for g in range(used)))
            assert kruskal(values, codes, used) == (expected.statistic, expected.pvalue), name
