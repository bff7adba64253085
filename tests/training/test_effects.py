"""Outcome effects counted with bincount equal the obvious np.unique + np.add.at reading."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from app.training.effects import Effect, outcome_effect


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
