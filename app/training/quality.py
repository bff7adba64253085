"""Quality metrics of a fitted clustering, and bootstrap stability.

Silhouette, Davies-Bouldin and Calinski-Harabasz are computed on a random sample of the
clustered customers (they are O(n^2) or need it to stay fast at a million rows). Stability:
refit the clusterer on ``bootstraps`` resamples (with replacement) and compare each refit's
labels with the model's on a common evaluation sample: the adjusted Rand index overall, and
for each segment the best Jaccard overlap with a refit segment (Hennig's cluster-wise
stability; below 0.6 a segment is flagged unstable).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)

from app.registry.manifest import Quality
from app.training.model import make_clusterer
from app.training.parallel import sample_map

UNSTABLE_JACCARD = 0.6


@dataclass(frozen=True)
class QualityResult:
    quality: Quality
    segment_stability: np.ndarray | None  # per cluster label, mean best Jaccard


@dataclass(frozen=True)
class QualitySample:
    """The rows the quality measures read: the evaluation sample (its row numbers, to pick
    the labels, and its rows) and each bootstrap's resample."""

    rows: np.ndarray
    sample: np.ndarray
    boots: list[np.ndarray]


def quality_sample(
    matrix: np.ndarray, *, seed: int, sample_size: int, bootstraps: int, bootstrap_size: int
) -> QualitySample:
    """The rows of ``matrix`` that ``assess`` reads, copied out: drawn before the fit, they
    let it fit on the matrix in place (no copy of every row) and measure afterwards."""
    rng = np.random.default_rng(seed + 1)
    n = matrix.shape[0]
    rows = rng.choice(n, min(n, sample_size), replace=False)
    # the resamples after the sample, from the same generator: as assess drew them in turn
    draws = [rng.choice(n, min(n, bootstrap_size), replace=True) for _ in range(bootstraps)]
    return QualitySample(rows, matrix[rows], [matrix[d] for d in draws])


def assess(
    matrix: np.ndarray,
    labels: np.ndarray,
    *,
    algorithm: str,
    k: int,
    seed: int,
    sample_size: int,
    bootstraps: int,
    bootstrap_size: int,
) -> QualityResult:
    drawn = quality_sample(
        matrix,
        seed=seed,
        sample_size=sample_size,
        bootstraps=bootstraps,
        bootstrap_size=bootstrap_size,
    )
    return assess_sample(drawn, labels, algorithm=algorithm, k=k, seed=seed)


def assess_sample(
    drawn: QualitySample, labels: np.ndarray, *, algorithm: str, k: int, seed: int
) -> QualityResult:
    """``assess`` on the rows ``quality_sample`` drew; ``labels`` of every row."""
    rows, sample = drawn.rows, drawn.sample
    sample_labels = labels[rows]
    distinct = len(np.unique(sample_labels)) > 1
    fit_algorithm = "kmeans" if algorithm == "minibatch_kmeans" else algorithm

    def refit(b: int) -> tuple[float, np.ndarray]:  # one bootstrap: its ARI and Jaccards
        other = make_clusterer(fit_algorithm, k, seed + 100 + b).fit(drawn.boots[b]).predict(sample)
        return float(adjusted_rand_score(sample_labels, other)), _best_jaccard(
            sample_labels, other, k
        )

    # the refits two at a time (each its own seed and resample: the same fits as in turn)
    refits = sample_map(refit, range(len(drawn.boots)) if distinct else [])
    silhouette = davies = calinski = None
    if distinct:
        silhouette = float(silhouette_score(sample, sample_labels, random_state=seed))
        davies = float(davies_bouldin_score(sample, sample_labels))
        calinski = float(calinski_harabasz_score(sample, sample_labels))
    aris = [ari for ari, _ in refits]
    jaccards = np.array([jaccard for _, jaccard in refits]).reshape(len(refits), k)
    quality = Quality(
        silhouette=silhouette,
        davies_bouldin=davies,
        calinski_harabasz=calinski,
        stability_ari=float(np.mean(aris)) if aris else None,
        bootstraps=len(aris),
        sample_size=len(rows),
    )
    stability = jaccards.mean(axis=0) if aris else None
    return QualityResult(quality=quality, segment_stability=stability)


def _best_jaccard(labels: np.ndarray, other: np.ndarray, k: int) -> np.ndarray:
    k_other = int(other.max()) + 1
    joint = np.zeros((k, k_other))
    np.add.at(joint, (labels, other), 1)
    sizes = joint.sum(axis=1, keepdims=True)
    other_sizes = joint.sum(axis=0, keepdims=True)
    union = sizes + other_sizes - joint
    with np.errstate(invalid="ignore", divide="ignore"):
        jaccard = np.where(union > 0, joint / union, 0.0)
    best: np.ndarray = jaccard.max(axis=1)
    return best
