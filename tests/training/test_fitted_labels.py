"""The full fit's labels are read from the fitted clusterer: they must be its ``predict``."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from app.training.model import make_clusterer
from app.training.steps import fit_in_place, fitted_labels


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


@pytest.mark.parametrize("algorithm", ["kmeans", "minibatch_kmeans", "gmm"])
def test_fit_in_place_is_the_fit_on_a_copy(algorithm: str) -> None:
    """The full fit without copying the matrix: the fitted clusterer is the one a fit on a
    copy gives, to the pickled byte (centres, labels, inertia, tolerance, parameters)."""
    rng = np.random.default_rng(5)
    centres = rng.normal(0, 3, (4, 7))
    matrix = np.vstack([c + rng.normal(0, 2.0, (3_000, 7)) for c in centres]) + 40.0
    on_copy = make_clusterer(algorithm, 4, 11, init=centres).fit(matrix.copy())
    in_place = fit_in_place(make_clusterer(algorithm, 4, 11, init=centres), matrix)
    assert pickle.dumps(in_place) == pickle.dumps(on_copy)
    if algorithm == "kmeans":
        assert in_place.copy_x is True  # the saved clusterer copies, as a default one does
