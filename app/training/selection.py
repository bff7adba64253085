"""Choosing the number of segments.

Criterion (documented in the README and recorded in every manifest): for each k in
[k_min, k_max], fit the clusterer on a random sample of the customers (``selection_sample``
rows) and compute the silhouette of the sample's labels on a sub-sample
(``silhouette_sample`` rows). A k is *admissible* when its smallest segment holds at least
``min_share`` of all customers (rule segments count in the denominator). The chosen k is the
admissible one with the highest silhouette; if none is admissible, the one whose smallest
segment is largest, with a note in the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import silhouette_score

from app.errors import DataError
from app.registry.manifest import Selection, SelectionPoint
from app.training.model import make_clusterer


@dataclass(frozen=True)
class SelectionResult:
    selection: Selection
    centres: np.ndarray  # the chosen k's centres, fitted on the sample (warm start)


def select_k(
    matrix: np.ndarray,
    *,
    algorithm: str,
    k_min: int,
    k_max: int,
    min_share: float,
    clustered_fraction: float,
    sample_size: int,
    silhouette_size: int,
    seed: int,
) -> SelectionResult:
    """Pick k by silhouette on a sample, subject to a minimum segment share."""
    rng = np.random.default_rng(seed)
    n = matrix.shape[0]
    sample = matrix[rng.choice(n, sample_size, replace=False)] if n > sample_size else matrix
    k_max = min(k_max, len(sample) - 1)
    if k_min > k_max:  # the job refuses such data first; never lower k_min silently
        raise DataError(
            f"{len(sample)} customers cannot be split into k_min = {k_min} segments and scored"
        )
    sil_rows = rng.choice(len(sample), min(silhouette_size, len(sample)), replace=False)
    curve: list[SelectionPoint] = []
    centres: dict[int, np.ndarray] = {}
    fit_algorithm = "kmeans" if algorithm == "minibatch_kmeans" else algorithm
    for k in range(k_min, k_max + 1):
        model = make_clusterer(fit_algorithm, k, seed).fit(sample)
        labels = model.predict(sample)
        counts = np.bincount(labels, minlength=k)
        share = float(counts.min() / len(sample) * clustered_fraction)
        sub = labels[sil_rows]
        sil = (
            float(silhouette_score(sample[sil_rows], sub, random_state=seed))
            if len(np.unique(sub)) > 1
            else -1.0
        )
        curve.append(
            SelectionPoint(k=k, silhouette=sil, min_share=share, admissible=share >= min_share)
        )
        centres[k] = model.cluster_centers_ if hasattr(model, "cluster_centers_") else model.means_
    admissible = [p for p in curve if p.admissible]
    note = None
    if admissible:
        chosen = max(admissible, key=lambda p: (p.silhouette, -p.k))
    else:
        chosen = max(curve, key=lambda p: (p.min_share, -p.k))
        note = (
            f"no k in {k_min}..{k_max} gives every segment {min_share:.0%} of customers; "
            f"chose k={chosen.k}, whose smallest segment is largest"
        )
    selection = Selection(
        criterion="silhouette on a sample, subject to a minimum segment share",
        sample_size=len(sample),
        k_min=k_min,
        k_max=k_max,
        min_share=min_share,
        chosen_k=chosen.k,
        curve=curve,
        note=note,
    )
    return SelectionResult(selection=selection, centres=centres[chosen.k])
