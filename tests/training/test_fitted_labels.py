"""The full fit's labels are read from the fitted clusterer: they must be its ``predict``."""

from __future__ import annotations

import numpy as np
import pytest

from app.training.job import fitted_labels
from app.training.model import make_clusterer


@pytest.mark.parametrize("algorithm", ["kmeans", "minibatch_kmeans", "gmm"])
def test_fitted_labels_are_the_predictions(algorithm: str) -> None:
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 3, (5, 6))
    # overlapping blobs, so that many points sit near a boundary between two centres
    matrix = np.vstack([c + rng.normal(0, 2.5, (4_000, 6)) for c in centres])
    for k, init in ((5, centres), (3, None), (8, None)):
        clusterer = make_clusterer(algorithm, k, 7, init=init).fit(matrix)
        labels = fitted_labels(clusterer, matrix)
        assert labels.dtype == np.int64
        np.testing.assert_array_equal(labels, clusterer.predict(matrix))
