"""The saved artefact: ordered rule segments, then a fitted scikit-learn pipeline.

A customer is assigned to the first rule segment whose condition holds; every other customer
goes through the pipeline (preprocess -> clusterer). Each rule and each cluster is a *slot*;
``segment_ids[slot]`` is its stable id. The training job builds it from fitted parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.compose import ColumnTransformer
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline

from app.training.matrix import transform_matrix
from app.training.rules import RuleSegment, first_match_frame

ALGORITHMS = ("kmeans", "minibatch_kmeans", "gmm")


class ColumnWeights(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Multiply each preprocessed column by its weight: the outcome-weighted space the
    clusterer was fitted in (a pipeline step between ``preprocess`` and ``cluster``)."""

    def __init__(self, weights: np.ndarray | None = None) -> None:
        self.weights = weights

    def fit(self, X: Any, y: Any = None) -> ColumnWeights:
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return True  # the weights are given, not learnt

    def transform(self, X: Any) -> np.ndarray:
        weights = np.ones(1) if self.weights is None else np.asarray(self.weights)
        result: np.ndarray = np.asarray(X, dtype=np.float64) * weights
        return result


def make_clusterer(
    algorithm: str, k: int, seed: int, init: np.ndarray | None = None, n_init: int = 3
) -> Any:
    """An unfitted clusterer; ``init`` (k x d centres) warm-starts it, else ``n_init`` runs."""
    if algorithm == "kmeans":
        if init is not None:
            return KMeans(k, init=init, n_init=1, random_state=seed)
        return KMeans(k, n_init=n_init, random_state=seed)
    if algorithm == "minibatch_kmeans":
        if init is not None:
            return MiniBatchKMeans(k, init=init, n_init=1, random_state=seed, batch_size=4096)
        return MiniBatchKMeans(k, n_init=n_init, random_state=seed, batch_size=4096)
    if algorithm == "gmm":
        # a single k-means initialisation merges two planted segments ~5% of the time:
        # several inits unless warm-started from centres already chosen
        return GaussianMixture(
            k,
            covariance_type="full",
            means_init=init,
            random_state=seed,
            reg_covar=1e-4,
            n_init=1 if init is not None else n_init,
        )
    raise ValueError(f"unknown algorithm {algorithm!r}")


def warm_start(algorithm: str, k: int, seed: int, fitted: Any) -> Any:
    """An unfitted clusterer for every row that starts where ``fitted`` (the chosen
    candidate, fitted on the selection's sample) ended: k-means from its centres, a Gaussian
    mixture from its weights, means and precisions. From the means alone, the mixture's first
    step on every row re-estimated the covariances from scratch and could empty components:
    a churn table's 5-component mixture, stable on the sample, served 3 segments."""
    if algorithm == "gmm":
        return GaussianMixture(
            k,
            covariance_type="full",
            weights_init=fitted.weights_,
            means_init=fitted.means_,
            precisions_init=fitted.precisions_,
            random_state=seed,
            reg_covar=1e-4,
            n_init=1,
        )
    return make_clusterer(algorithm, k, seed, init=fitted.cluster_centers_)


@dataclass
class SegmentationModel:
    """Rules first, then the clustering pipeline; maps both to stable segment ids.

    Attributes
    ----------
    features : list of (name, kind)
        The feature schema a request must provide, in training order.
    rules : list of RuleSegment
        Evaluated in order before clustering.
    pipeline : Pipeline
        Fitted ``preprocess`` (ColumnTransformer) -> ``cluster`` steps.
    segment_ids : list of str
        Stable id per slot: one per rule, then one per cluster label.
    algorithm : str
    """

    features: list[tuple[str, str]]
    rules: list[RuleSegment]
    pipeline: Pipeline
    segment_ids: list[str] = field(default_factory=list)
    algorithm: str = "kmeans"
    # a tree model: the last ``leaves`` rules are the tree's leaves (every customer no
    # configured rule takes matches one); ``tree`` is the fitted tree they were read from
    leaves: int = 0
    tree: Any = None

    @property
    def feature_names(self) -> list[str]:
        return [name for name, _ in self.features]

    @property
    def n_rules(self) -> int:
        return len(self.rules)

    @property
    def n_configured_rules(self) -> int:
        """The rules from the config, before the tree's leaves."""
        return len(self.rules) - self.leaves

    @property
    def n_clusters(self) -> int:
        return len(self.segment_ids) - len(self.rules)

    def predict_slots(self, frame: pd.DataFrame) -> np.ndarray:
        """Slot per row: rule index where a rule matches, else n_rules + cluster label."""
        slots = first_match_frame(self.rules, frame) if self.rules else np.full(len(frame), -1)
        todo = slots < 0
        if todo.any():
            rows = frame if todo.all() else frame.loc[todo, self.feature_names]
            labels = self.pipeline.steps[-1][1].predict(self.transform(rows))
            slots[todo] = self.n_rules + np.asarray(labels, dtype=np.int64)
        return slots.astype(np.int64)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Segment id per row (object array of str)."""
        ids: np.ndarray = np.asarray(self.segment_ids, dtype=object)[self.predict_slots(frame)]
        return ids

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The matrix the clusterer sees: preprocessed (standardised, one-hot), and weighted
        when the outcome-weighted space was chosen (every pipeline step but the last), as
        ``pipeline[:-1].transform``; the preprocessing encodes each category once
        (``transform_matrix``)."""
        result: Any = frame[self.feature_names]
        for position, (_, step) in enumerate(self.pipeline.steps[:-1]):
            fast = position == 0 and isinstance(step, ColumnTransformer)
            result = transform_matrix(step, result) if fast else step.transform(result)
        matrix: np.ndarray = result
        return matrix
