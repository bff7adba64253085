"""The compiled assigner: the fitted pipeline turned into plain arrays at load time.

``Pipeline.predict`` on a one-row DataFrame spends milliseconds in pandas and scikit-learn's
per-call validation for microseconds of arithmetic. At load time ``CompiledAssigner`` reads
the fitted steps (the preprocessing, compiled in ``app/serving/preprocess.py``; k-means
centres or Gaussian mixture parameters) and assigns from them directly, by two paths of the
same four stages (rules, preprocessing, ranking, drivers), each stage written once per path
and the two forms of a stage side by side:

- the scalar path, ``assign_one``: one customer, in plain Python where numpy's per-call
  overhead would cost more than the arithmetic (a mixture's scores are matrix products:
  those go through the vectorised ranking, on one row);
- the vectorised path, ``assign_many`` (with runner-up and drivers) and ``assign_slots``
  (slot and confidence only), which share one core, ``_rank_rows``.

The pipeline stays the reference: tests prove both paths give its segment for every training
row and for edge cases, and give each other the same answers, confidences and drivers.
``CompiledAssigner`` raises ``UnsupportedPipeline`` for anything it does not know; the caller
then falls back to the pipeline and says so in the logs.

Confidence: for a Gaussian mixture, the posterior probability of the chosen component. For
k-means, the distance margin ``1 - d1 / d2`` (d1, d2: distances to the nearest and the second
nearest centre): 0 on the boundary between two segments, approaching 1 at a centre. A rule
match has confidence 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.mixture import GaussianMixture

from app.columns import ColumnRows, column_of, take
from app.serving.preprocess import CompiledPreprocess, UnsupportedPipeline
from app.training.model import SegmentationModel
from app.training.rules import first_match_row, referenced_features
from app.training.tree import LeafRules

__all__ = ["TOP_DRIVERS", "Assignment", "CompiledAssigner", "UnsupportedPipeline"]
TOP_DRIVERS = 3
SCORE_ROWS = 4096  # rows scored at once (``CompiledAssigner._scores``)
Drivers = tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class Assignment:
    slot: int
    segment_id: str
    confidence: float
    rule: int | None  # index of the matching rule, if any
    runner_up: str | None  # second-closest cluster segment
    drivers: Drivers  # features separating it from the runner-up


@dataclass(frozen=True, slots=True)
class _Ranked:
    """The vectorised core's answer for a batch: rule slots, and the clustered rows ranked."""

    rules: list[int]  # per row: the matching rule's slot, -1 for none (empty: no rules)
    todo: Sequence[int]  # the rows no rule matched, in order
    z: np.ndarray  # their preprocessed rows
    best: np.ndarray  # their nearest cluster, runner-up and confidence
    second: np.ndarray
    confidence: np.ndarray


class CompiledAssigner:
    """Assign customers from plain arrays; equivalent to ``SegmentationModel.predict``."""

    def __init__(self, model: SegmentationModel) -> None:
        steps = model.pipeline.named_steps
        self.model = model
        self.rules = model.rules
        # the features the rules read (``_rule_slots``), in a fixed order
        self.rule_features = sorted(
            set().union(*(referenced_features(rule.condition) for rule in self.rules))
        )
        self.segment_ids = list(model.segment_ids)
        self.n_rules = model.n_rules
        self.preprocess = CompiledPreprocess(steps["preprocess"])
        self.feature_names = self.preprocess.feature_names
        self.owner = self.preprocess.owner
        self._compile_clusterer(steps["cluster"])
        # an outcome-weighted model clusters the preprocessed row times a weight per column
        weight = steps.get("weight")
        self.weights: np.ndarray | None = None
        self.weight_list: list[float] = []
        if weight is not None:
            self.weights = np.asarray(weight.weights, dtype=np.float64)
            self.weight_list = self.weights.tolist()
        self.centre_rows: list[list[float]] = self.centres.tolist()
        self.by_rule = [
            Assignment(r, self.segment_ids[r], 1.0, r, None, ()) for r in range(self.n_rules)
        ]

    def _compile_clusterer(self, clusterer: Any) -> None:
        if isinstance(clusterer, KMeans | MiniBatchKMeans):
            self.kind = "kmeans"
            self.centres = np.ascontiguousarray(clusterer.cluster_centers_, dtype=np.float64)
        elif isinstance(clusterer, GaussianMixture) and clusterer.covariance_type == "full":
            self.kind = "gmm"
            self.centres = np.ascontiguousarray(clusterer.means_, dtype=np.float64)
            self.prec_chol = np.asarray(clusterer.precisions_cholesky_, dtype=np.float64)
            d = self.centres.shape[1]
            log_det = np.log(np.diagonal(self.prec_chol, axis1=1, axis2=2)).sum(axis=1)
            self.log_const = np.log(clusterer.weights_) + log_det - 0.5 * d * math.log(2 * math.pi)
            # y = x @ P_k - mu_k @ P_k: precompute mu_k @ P_k
            self.mu_prec = np.einsum("kd,kde->ke", self.centres, self.prec_chol)
        elif isinstance(clusterer, LeafRules):  # a tree: every customer matches a leaf rule
            self.kind = "leaves"
            self.centres = np.zeros((0, self.preprocess.width))
        else:
            raise UnsupportedPipeline(f"clusterer {type(clusterer).__name__} is not supported")
        if self.centres.shape[1] != self.preprocess.width:
            raise UnsupportedPipeline("clusterer width does not match the preprocessing output")

    # -- the rows the clusterer sees (``pipeline[:-1].transform``: preprocessed, weighted) --
    def vector(self, features: Mapping[str, Any]) -> np.ndarray:
        """One customer's row, by the scalar path (weighted, as the clusterer sees it)."""
        row = np.array(self.preprocess.one(features))
        return row if self.weights is None else row * self.weights

    def matrix(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Many customers' rows, by the vectorised path (weighted, as the clusterer sees it)."""
        z = self.preprocess.many(rows)
        return z if self.weights is None else z * self.weights

    # -- the scalar path: one customer ------------------------------------------------------
    def assign_one(self, features: Mapping[str, Any]) -> Assignment:
        if self.rules:
            rule = first_match_row(self.rules, features)
            if rule >= 0:
                return self.by_rule[rule]
        z = self.preprocess.one(features)
        if self.weights is not None:
            z = [v * w for v, w in zip(z, self.weight_list, strict=True)]
        best, second, confidence = self._rank_one(z)
        return self._assignment(best, second, confidence, self._drivers_one(z, best, second))

    def _rank_one(self, z: list[float]) -> tuple[int, int, float]:
        """The nearest cluster, the runner-up and the confidence (``_rank`` of one row)."""
        if self.kind == "leaves":
            raise ValueError("a customer matched none of the tree's leaves")
        if self.kind != "kmeans":  # a mixture's scores are matrix products: numpy's work
            best, second, confidence = self._rank(self._scores(np.array([z])))
            return int(best[0]), int(second[0]), float(confidence[0])
        distances = [math.dist(z, c) for c in self.centre_rows]
        b = s = -1
        for k, d in enumerate(distances):  # the two nearest, first index on ties
            if b < 0 or d < distances[b]:
                b, s = k, b
            elif s < 0 or d < distances[s]:
                s = k
        if s < 0:
            s = b
        return b, s, min(max(_margin(distances[b], distances[s]), 0.0), 1.0)

    def _drivers_one(self, z: list[float], best: int, second: int) -> Drivers:
        """``_drivers_many`` of one row, in plain Python: the same sums in the same order."""
        if second == best:
            return ()
        names = self.feature_names
        per_feature = [0.0] * len(names)
        near_centre, far_centre = self.centre_rows[best], self.centre_rows[second]
        for zj, b, s, owner in zip(z, near_centre, far_centre, self.owner, strict=True):
            far, near = zj - s, zj - b
            per_feature[owner] += far * far - near * near
        top = sorted(range(len(names)), key=lambda i: -per_feature[i])[:TOP_DRIVERS]
        return tuple((names[i], w) for i in top if _positive(w := round(per_feature[i], 4)))

    def _assignment(self, best: int, second: int, sure: float, drivers: Drivers) -> Assignment:
        slot = self.n_rules + best
        runner_up = self.segment_ids[self.n_rules + second] if second != best else None
        return Assignment(slot, self.segment_ids[slot], sure, None, runner_up, drivers)

    # -- the vectorised path: many customers ------------------------------------------------
    def assign_many(self, rows: Sequence[Mapping[str, Any]]) -> list[Assignment]:
        """Assign many rows at once, with runner-up and drivers (as ``assign_one`` does)."""
        ranked = self._rank_rows(rows)
        best, second = ranked.best.tolist(), ranked.second.tolist()
        drivers = self._drivers_many(ranked.z, ranked.best, ranked.second)
        found = map(self._assignment, best, second, ranked.confidence.tolist(), drivers)
        if len(ranked.todo) == len(rows):
            return list(found)
        return [self.by_rule[r] if r >= 0 else next(found) for r in ranked.rules]

    def assign_slots(self, rows: Sequence[Mapping[str, Any]]) -> tuple[list[int], list[float]]:
        """The slot (index into ``segment_ids``) and confidence of each row, and nothing else.

        What ``assign_many`` gives as ``slot`` and ``confidence``, without building an
        ``Assignment`` per row (a lean batch answer needs no runner-up or drivers).
        """
        ranked = self._rank_rows(rows)
        found = (ranked.best + self.n_rules).tolist()
        sure = ranked.confidence.tolist()
        if len(ranked.todo) == len(rows):
            return found, sure
        slots, confidences = ranked.rules, [1.0] * len(rows)
        for i, slot, c in zip(ranked.todo, found, sure, strict=True):
            slots[i], confidences[i] = slot, c
        return slots, confidences

    def _rank_rows(self, rows: Sequence[Mapping[str, Any]]) -> _Ranked:
        """The vectorised core: rules first, then the other rows preprocessed and ranked."""
        rules = self._rule_slots(rows) if self.rules else []
        todo: Sequence[int] = range(len(rows))
        if rules:
            todo = [i for i, r in enumerate(rules) if r < 0]
        clustered = rows if len(todo) == len(rows) else take(rows, todo)
        if self.kind == "leaves":  # a tree's leaves cover every customer: nothing to rank
            if todo:
                raise ValueError("a customer matched none of the tree's leaves")
            none = np.zeros(0, dtype=np.int64)
            return _Ranked(rules, todo, np.zeros((0, self.preprocess.width)), none, none, none)
        z = self.preprocess.many(clustered)
        if self.weights is not None:
            z = z * self.weights
        best, second, confidence = self._rank(self._scores(z))
        return _Ranked(rules, todo, z, best, second, confidence)

    def _rule_slots(self, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """The first rule each row matches (-1: none), row by row. Rows kept as columns are
        read as rows of the rules' own features (a rule reads a row's features by ``get``: a
        missing column is None there as here), not as a dict of every feature each."""
        if isinstance(rows, ColumnRows):
            names = self.rule_features
            columns = [column_of(rows, name) for name in names]
            values = zip(*columns, strict=True) if names else [()] * len(rows)
            rows = [dict(zip(names, row, strict=True)) for row in values]
        return [first_match_row(self.rules, r) for r in rows]

    def _scores(self, z: np.ndarray) -> np.ndarray:
        """Per-cluster score, higher is better: -squared distance, or log posterior (+const),
        ``SCORE_ROWS`` rows at a time: the same arithmetic per row, but its rows x clusters x
        features temporaries stay a few MB (a 100,000-row chunk's were 80 MB, fresh pages
        the kernel faulted in on each of a run's first chunks: 0.25 s before its first
        records could be sent)."""
        if len(z) <= SCORE_ROWS:
            return self._scores_of(z)
        parts = [self._scores_of(z[i : i + SCORE_ROWS]) for i in range(0, len(z), SCORE_ROWS)]
        return np.concatenate(parts)

    @np.errstate(over="ignore", invalid="ignore")  # a huge (finite) input overflows to inf
    def _scores_of(self, z: np.ndarray) -> np.ndarray:
        if self.kind == "kmeans":
            diff = z[:, None, :] - self.centres
            scores: np.ndarray = -np.einsum("nkd,nkd->nk", diff, diff)
            return scores
        y = np.einsum("nd,kde->nke", z, self.prec_chol) - self.mu_prec
        result: np.ndarray = self.log_const - 0.5 * np.einsum("nke,nke->nk", y, y)
        return result

    @np.errstate(over="ignore", invalid="ignore")
    def _rank(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row: the best and the runner-up cluster, and the confidence (see the module)."""
        n, k = scores.shape
        index = np.arange(n)
        order = np.argsort(-scores, axis=1, kind="stable")
        best = order[:, 0]
        second = order[:, 1] if k > 1 else best
        if self.kind == "kmeans":
            d1 = np.sqrt(np.maximum(-scores[index, best], 0.0))
            d2 = np.sqrt(np.maximum(-scores[index, second], 0.0))
            confidence = np.where(d2 > 0, 1.0 - d1 / np.where(d2 > 0, d2, 1.0), 1.0)
        else:
            shifted = np.exp(scores - scores[index, best][:, None])
            confidence = 1.0 / shifted.sum(axis=1)
        # an overflowing customer (every distance infinite) sits on no boundary we can measure
        confidence = np.where(np.isfinite(confidence), confidence, 0.0)
        confidence = np.minimum(np.maximum(confidence, 0.0), 1.0)
        return best, second, confidence

    @np.errstate(over="ignore", invalid="ignore")
    def _drivers_many(self, z: np.ndarray, best: np.ndarray, second: np.ndarray) -> list[Drivers]:
        """Per row, the features that most separate its best centre from the runner-up: the
        gain in squared distance, summed over each feature's columns in column order."""
        gain = (z - self.centres[second]) ** 2 - (z - self.centres[best]) ** 2
        per_feature = np.zeros((len(z), len(self.feature_names)))
        for column, feature in enumerate(self.owner):
            per_feature[:, feature] += gain[:, column]
        top = np.argsort(-per_feature, axis=1, kind="stable")[:, :TOP_DRIVERS]
        top_gain = np.take_along_axis(per_feature, top, axis=1)
        names = self.feature_names
        return [
            ()
            if b == s
            else tuple(
                (names[f], w) for f, g in zip(fs, gs, strict=True) if _positive(w := round(g, 4))
            )
            for b, s, fs, gs in zip(
                best.tolist(), second.tolist(), top.tolist(), top_gain.tolist(), strict=True
            )
        ]


def _margin(d1: float, d2: float) -> float:
    """The k-means confidence ``1 - d1 / d2``; 0 when the distances overflowed (inf / inf)."""
    if d2 <= 0:
        return 1.0
    margin = 1.0 - d1 / d2
    return margin if margin == margin else 0.0


def _positive(gain: float) -> bool:
    """A driver worth reporting: a finite gain, positive as shown (rounded: a feature the
    model weighs at zero once showed as a driver of weight 0.0; JSON has no infinity)."""
    return 0.0 < gain < math.inf
