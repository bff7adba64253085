"""The quality measures read rows drawn before the fit (``quality_sample``): the same rows,
so the same figures, as reading them from the matrix afterwards."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, silhouette_score

from app.training.model import make_clusterer
from app.training.quality import assess_sample, quality_sample


def _obvious(
    matrix: np.ndarray, labels: np.ndarray, k: int, seed: int
) -> tuple[float, list[float]]:
    """The silhouette and bootstrap ARIs, every row read from ``matrix`` as it is needed."""
    rng = np.random.default_rng(seed + 1)
    n = len(matrix)
    rows = rng.choice(n, min(n, 1_500), replace=False)
    sample, sample_labels = matrix[rows], labels[rows]
    silhouette = float(silhouette_score(sample, sample_labels, random_state=seed))
    aris = []
    for b in range(3):
        boot = matrix[rng.choice(n, min(n, 4_000), replace=True)]
        refit = make_clusterer("kmeans", k, seed + 100 + b).fit(boot)
        aris.append(float(adjusted_rand_score(sample_labels, refit.predict(sample))))
    return silhouette, aris


@pytest.mark.parametrize("rows", [1_000, 9_000])  # fewer rows than the sample, and more
def test_drawn_rows_give_the_same_quality(rows: int) -> None:
    rng = np.random.default_rng(rows)
    centres = rng.normal(0, 4, (4, 5))
    matrix = centres[rng.integers(0, 4, rows)] + rng.normal(0, 1.5, (rows, 5))
    clusterer = make_clusterer("kmeans", 4, 3).fit(matrix)
    drawn = quality_sample(matrix, seed=9, sample_size=1_500, bootstraps=3, bootstrap_size=4_000)
    matrix_before = matrix.copy()
    matrix += 1e-3  # the matrix after an in-place fit: no longer read
    result = assess_sample(drawn, clusterer.labels_, algorithm="kmeans", k=4, seed=9)
    silhouette, aris = _obvious(matrix_before, clusterer.labels_, 4, 9)
    assert result.quality.silhouette == silhouette
    assert result.quality.stability_ari == float(np.mean(aris))
    assert result.quality.bootstraps == 3
    assert result.quality.sample_size == min(rows, 1_500)
