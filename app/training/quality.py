"""Quality metrics of a fitted clustering, and bootstrap stability.

Silhouette, Davies-Bouldin and Calinski-Harabasz are computed on a random sample of the
clustered customers (they are O(n^2) or need it to stay fast at a million rows). Stability:
refit the clusterer on ``bootstraps`` resamples (with replacement) and compare each refit's
labels with the model's on a common evaluation sample: the adjusted Rand index overall, and
for each segment the best Jaccard overlap with a refit segment (Hennig's cluster-wise
stability; below 0.6 a segment is flagged unstable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    the labels, and its rows) and each bootstrap's resample; ``spare``: the row numbers of as
    many more resamples, not copied out (the selection's confirmation reads them only for a
    winner its first refits leave in doubt)."""

    rows: np.ndarray
    sample: np.ndarray
    boots: list[np.ndarray]
    spare: list[np.ndarray] = field(default_factory=list)


def quality_sample(
    matrix: np.ndarray,
    *,
    seed: int,
    sample_size: int,
    bootstraps: int,
    bootstrap_size: int,
    spare: int = 0,
) -> QualitySample:
    """The rows of ``matrix`` that ``assess`` reads, copied out: drawn before the fit, they
    let it fit on the matrix in place (no copy of every row) and measure afterwards."""
    rng = np.random.default_rng(seed + 1)
    n = matrix.shape[0]
    rows = rng.choice(n, min(n, sample_size), replace=False)
    # the resamples after the sample, from the same generator: as assess drew them in turn
    draws = [rng.choice(n, min(n, bootstrap_size), replace=True) for _ in range(bootstraps)]
    more = [rng.choice(n, min(n, bootstrap_size), replace=True) for _ in range(spare)]
    return QualitySample(rows, matrix[rows], [matrix[d] for d in draws], more)


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


def in_space(drawn: QualitySample, weights: np.ndarray | None) -> QualitySample:
    """``drawn`` in the outcome-weighted space (each column times its weight; the same values
    as drawn from the weighted matrix), or as it is."""
    if weights is None:
        return drawn
    boots = [b * weights for b in drawn.boots]
    return QualitySample(drawn.rows, drawn.sample * weights, boots, drawn.spare)


def bootstrap_refits(
    boots: list[np.ndarray], *, algorithm: str, k: int, seed: int, first: int = 0
) -> list[Any]:
    """The clusterer refitted on each resample (the ``first + b``-th its own seed), two at a
    time: the same fits as one after the other. They need no labels, so the selection fits
    them for its winner's confirmation and the quality check compares them afterwards."""
    fit_algorithm = "kmeans" if algorithm == "minibatch_kmeans" else algorithm

    def refit(b: int) -> Any:
        return make_clusterer(fit_algorithm, k, seed + 100 + first + b).fit(boots[b])

    return sample_map(refit, range(len(boots)))


def assess_sample(
    drawn: QualitySample,
    labels: np.ndarray,
    *,
    algorithm: str,
    k: int,
    seed: int,
    refits: list[Any] | None = None,
) -> QualityResult:
    """``assess`` on the rows ``quality_sample`` drew; ``labels`` of every row. ``refits``:
    ``bootstrap_refits`` of these rows fitted already (the selection's confirmation)."""
    rows, sample = drawn.rows, drawn.sample
    sample_labels = labels[rows]
    distinct = len(np.unique(sample_labels)) > 1
    if distinct and refits is None:
        refits = bootstrap_refits(drawn.boots, algorithm=algorithm, k=k, seed=seed)
    compared = []  # per bootstrap: its ARI and Jaccards
    for model in refits if distinct and refits is not None else []:
        other = model.predict(sample)
        ari = float(adjusted_rand_score(sample_labels, other))
        compared.append((ari, _best_jaccard(sample_labels, other, k)))
    silhouette = davies = calinski = None
    if distinct:
        silhouette = float(silhouette_score(sample, sample_labels, random_state=seed))
        davies = float(davies_bouldin_score(sample, sample_labels))
        calinski = float(calinski_harabasz_score(sample, sample_labels))
    aris = [ari for ari, _ in compared]
    jaccards = np.array([j for _, j in compared]).reshape(len(compared), k)
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
