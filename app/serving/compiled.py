"""The compiled assigner: the fitted pipeline turned into plain arrays at load time.

``Pipeline.predict`` on a one-row DataFrame spends milliseconds in pandas and scikit-learn's
per-call validation for microseconds of arithmetic. At load time ``CompiledAssigner`` reads the
fitted steps (NumericTransform bounds, log mask and fill values; StandardScaler mean and
scale; each OneHotEncoder's categories and infrequent group; k-means centres or Gaussian
mixture parameters) and assigns from them directly: ``assign_one`` for a request and
``assign_many`` for a batch. The pipeline stays the reference: tests prove both give the same
segment for every training row and for edge cases. ``CompiledAssigner`` raises
``UnsupportedPipeline`` for anything it does not know; the caller then falls back to the
pipeline and says so in the logs.

Confidence: for a Gaussian mixture, the posterior probability of the chosen component. For
k-means, the distance margin ``1 - d1 / d2`` (d1, d2: distances to the nearest and the second
nearest centre): 0 on the boundary between two segments, approaching 1 at a centre. A rule
match has confidence 1.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

from app.training.model import SegmentationModel
from app.training.preprocess import MISSING_CATEGORY, NumericTransform
from app.training.rules import canonical_category, first_match_row

TOP_DRIVERS = 3


class UnsupportedPipeline(Exception):
    """The fitted pipeline has a step the compiler does not know."""


@dataclass(frozen=True, slots=True)
class Assignment:
    slot: int
    segment_id: str
    confidence: float
    rule: int | None  # index of the matching rule, if any
    runner_up: str | None  # second-closest cluster segment
    drivers: tuple[tuple[str, float], ...]  # features separating it from the runner-up


@dataclass(frozen=True)
class _Categorical:
    name: str
    columns: dict[str, int]  # canonical category -> output column
    fallback: int | None  # the infrequent column, for unknown and rare categories


class CompiledAssigner:
    """Assign customers from plain arrays; equivalent to ``SegmentationModel.predict``."""

    def __init__(self, model: SegmentationModel) -> None:
        steps = model.pipeline.named_steps
        prep, clusterer = steps["preprocess"], steps["cluster"]
        self.model = model
        self.rules = model.rules
        self.segment_ids = list(model.segment_ids)
        self.n_rules = model.n_rules
        self.numeric: list[str] = []
        self.categorical: list[_Categorical] = []
        width = 0
        for name, transformer, columns in prep.transformers_:
            if name == "remainder":
                continue
            block = prep.output_indices_[name]
            width = max(width, block.stop)
            if name == "num":
                self._compile_numeric(transformer, list(columns), block.start)
            elif name.startswith("cat_"):
                self._compile_categorical(transformer, columns[0], block.start)
            else:
                raise UnsupportedPipeline(f"unknown preprocessing block {name!r}")
        self.width = width
        names = self.numeric + [c.name for c in self.categorical]
        self.feature_of_column = [""] * width
        for j, feature in enumerate(self.numeric):
            self.feature_of_column[self.num_start + j] = feature
        for cat in self.categorical:
            for column in {*cat.columns.values(), *([cat.fallback] if cat.fallback else [])}:
                self.feature_of_column[column] = cat.name
        self.feature_index = {n: i for i, n in enumerate(names)}
        # feature index of each output column, to sum a one-hot block into its feature
        self.owner = np.array([self.feature_index[f] for f in self.feature_of_column])
        self.feature_names = names
        self._compile_clusterer(clusterer)
        self._compile_scalar()

    def _compile_numeric(self, transformer: Any, columns: list[str], start: int) -> None:
        steps = getattr(transformer, "named_steps", {})
        transform, scale = steps.get("transform"), steps.get("scale")
        if not isinstance(transform, NumericTransform) or not isinstance(scale, StandardScaler):
            raise UnsupportedPipeline("numeric block is not NumericTransform -> StandardScaler")
        self.numeric = columns
        self.num_start = start
        self.lower = np.asarray(transform.lower_, dtype=np.float64)
        self.upper = np.asarray(transform.upper_, dtype=np.float64)
        self.log = np.asarray(transform.log_, dtype=bool)
        self.fill = np.asarray(transform.fill_, dtype=np.float64)
        self.mean = np.zeros(len(columns)) if scale.mean_ is None else scale.mean_
        self.scale = np.ones(len(columns)) if scale.scale_ is None else scale.scale_

    def _compile_categorical(self, transformer: Any, column: str, start: int) -> None:
        encoder = getattr(transformer, "named_steps", {}).get("onehot")
        if encoder is None or encoder.drop_idx_ is not None:
            raise UnsupportedPipeline(f"categorical block for {column!r} is not a plain one-hot")
        categories = [str(c) for c in encoder.categories_[0]]
        infrequent = encoder.infrequent_categories_[0]
        rare = {str(c) for c in infrequent} if infrequent is not None else set()
        frequent = [c for c in categories if c not in rare]
        columns = {c: start + i for i, c in enumerate(frequent)}
        fallback = start + len(frequent) if rare else None
        for c in rare:
            columns[c] = fallback  # type: ignore[assignment]
        self.categorical.append(_Categorical(column, columns, fallback))

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
        else:
            raise UnsupportedPipeline(f"clusterer {type(clusterer).__name__} is not supported")
        if self.centres.shape[1] != self.width:
            raise UnsupportedPipeline("clusterer width does not match the preprocessing output")

    def _compile_scalar(self) -> None:
        """Python-float copies of the arrays, for one customer at a time.

        For one row numpy's per-call overhead (a few microseconds per ufunc, dozens of calls)
        is far larger than the arithmetic, so ``assign_one`` on k-means works on plain lists
        with the same operations in the same order (``vector_list`` is bitwise the same
        vector as ``vector``). Batches keep the vectorised path.
        """
        self.numeric_params: list[tuple[str, float, float, bool, float, float, float]] = []
        if self.numeric:
            self.numeric_params = [
                (name, float(lo), float(hi), bool(lg), float(fill), float(mean), float(scale))
                for name, lo, hi, lg, fill, mean, scale in zip(
                    self.numeric,
                    self.lower,
                    self.upper,
                    self.log,
                    self.fill,
                    self.mean,
                    self.scale,
                    strict=True,
                )
            ]
        # only used when there are numeric features
        self.numeric_getter = operator.itemgetter(*(self.numeric or [""]))
        self.centre_rows: list[list[float]] = self.centres.tolist()
        self.owner_list: list[int] = self.owner.tolist()

    # -- vectors ----------------------------------------------------------------------------
    def vector_list(self, features: Mapping[str, Any]) -> list[float]:
        """``vector`` as a list of floats, computed without numpy (for one customer)."""
        out = [0.0] * self.width
        if self.numeric_params:
            j = self.num_start
            for name, lower, upper, log, fill, mean, scale in self.numeric_params:
                x = _number(features.get(name))
                if x == x:  # not NaN: clip (like np.clip), then log1p of the non-negative part
                    x = lower if x < lower else upper if x > upper else x
                    if log:
                        x = math.log1p(x if x >= 0.0 else 0.0)
                if x != x:
                    x = fill
                out[j] = (x - mean) / scale
                j += 1
        for cat in self.categorical:
            column = _column(cat, canonical_category(features.get(cat.name)))
            if column >= 0:
                out[column] = 1.0
        return out

    def vector(self, features: Mapping[str, Any]) -> np.ndarray:
        """The preprocessed row (what ``pipeline['preprocess'].transform`` gives)."""
        out = np.zeros(self.width)
        if self.numeric:
            raw = np.array([_number(features.get(name)) for name in self.numeric], dtype=np.float64)
            out[self.num_start : self.num_start + len(raw)] = self._numeric(raw)
        for cat in self.categorical:
            column = _column(cat, canonical_category(features.get(cat.name)))
            if column >= 0:
                out[column] = 1.0
        return out

    def matrix(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The preprocessed matrix of many rows, vectorised per feature."""
        out = np.zeros((len(rows), self.width))
        if self.numeric:
            # numpy converts None to NaN and a number as float() does (what _number does)
            try:
                values: list[Any] = list(map(self.numeric_getter, rows))
                if len(self.numeric) > 1:  # one flat list: numpy reads it faster than tuples
                    values = list(itertools.chain.from_iterable(values))
            except KeyError:
                values = [[r.get(name) for name in self.numeric] for r in rows]
            raw = np.array(values, dtype=np.float64).reshape(len(rows), len(self.numeric))
            out[:, self.num_start : self.num_start + len(self.numeric)] = self._numeric(raw)
        index = np.arange(len(rows))
        for cat in self.categorical:
            columns, default = cat.columns, -1 if cat.fallback is None else cat.fallback
            try:
                raw_values = list(map(operator.itemgetter(cat.name), rows))
            except KeyError:
                raw_values = [r.get(cat.name) for r in rows]
            if set(map(type, raw_values)) == {str}:
                # a string is its own canonical category: look every one up directly
                codes = list(map(columns.get, raw_values, itertools.repeat(default)))
            else:
                codes = [
                    columns.get(v, default)
                    if type(v) is str
                    else _column(cat, canonical_category(v))
                    for v in raw_values
                ]
            cols = np.array(codes, dtype=np.int64)
            hit = cols >= 0
            out[index[hit], cols[hit]] = 1.0
        return out

    @np.errstate(over="ignore")
    def _numeric(self, raw: np.ndarray) -> np.ndarray:
        x = np.clip(raw, self.lower, self.upper)
        if self.log.any():
            x[..., self.log] = np.log1p(np.maximum(x[..., self.log], 0.0))
        missing = np.isnan(x)
        if missing.any():
            x = np.where(missing, self.fill, x)
        result: np.ndarray = (x - self.mean) / self.scale
        return result

    # -- assignment -------------------------------------------------------------------------
    @np.errstate(over="ignore", invalid="ignore")  # a huge (finite) input overflows to inf
    def _scores(self, z: np.ndarray) -> np.ndarray:
        """Per-cluster score, higher is better: -squared distance, or log posterior (+const)."""
        if self.kind == "kmeans":
            diff = z[..., None, :] - self.centres
            scores: np.ndarray = -np.einsum("...kd,...kd->...k", diff, diff)
            return scores
        y = np.einsum("...d,kde->...ke", z, self.prec_chol) - self.mu_prec
        result: np.ndarray = self.log_const - 0.5 * np.einsum("...ke,...ke->...k", y, y)
        return result

    def assign_one(self, features: Mapping[str, Any]) -> Assignment:
        rule = first_match_row(self.rules, features) if self.rules else -1
        if rule >= 0:
            return Assignment(rule, self.segment_ids[rule], 1.0, rule, None, ())
        if self.kind == "kmeans":
            return self._assign_one_kmeans(features)
        z = self.vector(features)
        scores = self._scores(z)
        return self._finish(z, scores)

    def _assign_one_kmeans(self, features: Mapping[str, Any]) -> Assignment:
        """``_finish(vector, _scores(vector))`` for k-means, in plain Python (see above)."""
        z = self.vector_list(features)
        centres = self.centre_rows
        distances = [math.dist(z, c) for c in centres]
        best = second = -1
        for k, d in enumerate(distances):  # the two nearest, first index on ties
            if best < 0 or d < distances[best]:
                best, second = k, best
            elif second < 0 or d < distances[second]:
                second = k
        if second < 0:
            second = best
        d1, d2 = distances[best], distances[second]
        confidence = _margin(d1, d2)
        drivers: tuple[tuple[str, float], ...] = ()
        if second != best:
            names = self.feature_names
            per_feature = [0.0] * len(names)
            for zj, b, s, owner in zip(
                z, centres[best], centres[second], self.owner_list, strict=True
            ):
                far, near = zj - s, zj - b
                per_feature[owner] += far * far - near * near
            top = sorted(range(len(names)), key=lambda i: -per_feature[i])[:TOP_DRIVERS]
            drivers = tuple(
                (names[i], round(per_feature[i], 4)) for i in top if _positive(per_feature[i])
            )
        slot = self.n_rules + best
        runner_up = self.segment_ids[self.n_rules + second] if second != best else None
        return Assignment(
            slot,
            self.segment_ids[slot],
            min(max(confidence, 0.0), 1.0),
            None,
            runner_up,
            drivers,
        )

    def assign_many(self, rows: Sequence[Mapping[str, Any]]) -> list[Assignment]:
        """Assign many rows at once, with runner-up and drivers (as ``assign_one`` does)."""
        rules = [first_match_row(self.rules, r) if self.rules else -1 for r in rows]
        todo = [i for i, r in enumerate(rules) if r < 0]
        results: list[Assignment | None] = [
            Assignment(r, self.segment_ids[r], 1.0, r, None, ()) if r >= 0 else None for r in rules
        ]
        if todo:
            z = self.matrix([rows[i] for i in todo])
            finished = self._finish_many(z, self._scores(z))
            for i, assignment in zip(todo, finished, strict=True):
                results[i] = assignment
        return [r for r in results if r is not None]

    def assign_slots(self, rows: Sequence[Mapping[str, Any]]) -> tuple[list[int], list[float]]:
        """The slot (index into ``segment_ids``) and confidence of each row, and nothing else.

        What ``assign_many`` gives as ``slot`` and ``confidence``, without building an
        ``Assignment`` per row (a lean batch answer needs no runner-up or drivers).
        """
        rules = [first_match_row(self.rules, r) for r in rows] if self.rules else []
        todo = [i for i, r in enumerate(rules) if r < 0] if rules else range(len(rows))
        if not todo:
            return rules, [1.0] * len(rules)
        z = self.matrix(rows if not rules else [rows[i] for i in todo])
        best, _, confidence = self._ranked(self._scores(z))
        found = (best + self.n_rules).tolist()
        sure = confidence.tolist()
        if len(todo) == len(rows):
            return found, sure
        slots, confidences = rules, [1.0] * len(rows)
        for i, slot, c in zip(todo, found, sure, strict=True):
            slots[i], confidences[i] = slot, c
        return slots, confidences

    @np.errstate(over="ignore", invalid="ignore")
    def _ranked(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    def _finish_many(self, z: np.ndarray, scores: np.ndarray) -> list[Assignment]:
        """``_finish`` of every row at once: the same operations, vectorised over rows."""
        best, second, confidence = self._ranked(scores)
        n = len(best)
        names, ids, n_rules = self.feature_names, self.segment_ids, self.n_rules
        # drivers: per-feature gain of the best centre over the runner-up, summed column by
        # column in order (as bincount does for one row)
        gain = (z - self.centres[second]) ** 2 - (z - self.centres[best]) ** 2
        per_feature = np.zeros((n, len(self.feature_names)))
        for column, feature in enumerate(self.owner_list):
            per_feature[:, feature] += gain[:, column]
        top = np.argsort(-per_feature, axis=1, kind="stable")[:, :TOP_DRIVERS]
        top_gain = np.take_along_axis(per_feature, top, axis=1)
        out = []
        for b, s, c, features, gains in zip(
            best.tolist(),
            second.tolist(),
            confidence.tolist(),
            top.tolist(),
            top_gain.tolist(),
            strict=True,
        ):
            if s == b:
                out.append(Assignment(n_rules + b, ids[n_rules + b], c, None, None, ()))
                continue
            drivers = tuple(
                (names[f], round(g, 4))
                for f, g in zip(features, gains, strict=True)
                if _positive(g)
            )
            out.append(
                Assignment(n_rules + b, ids[n_rules + b], c, None, ids[n_rules + s], drivers)
            )
        return out

    @np.errstate(over="ignore", invalid="ignore")
    def _finish(self, z: np.ndarray, scores: np.ndarray) -> Assignment:
        order = np.argsort(-scores, kind="stable")
        best = int(order[0])
        second = int(order[1]) if len(order) > 1 else best
        if self.kind == "kmeans":
            d1 = math.sqrt(max(-scores[best], 0.0))
            d2 = math.sqrt(max(-scores[second], 0.0))
            confidence = _margin(d1, d2)
        else:
            shifted = np.exp(scores - scores[best])
            confidence = float(1.0 / shifted.sum())
            if not math.isfinite(confidence):
                confidence = 0.0
        drivers: tuple[tuple[str, float], ...] = ()
        if second != best:
            gain = (z - self.centres[second]) ** 2 - (z - self.centres[best]) ** 2
            per_feature = np.bincount(self.owner, weights=gain, minlength=len(self.feature_names))
            top = np.argsort(-per_feature)[:TOP_DRIVERS]
            drivers = tuple(
                (self.feature_names[i], round(float(per_feature[i]), 4))
                for i in top
                if _positive(float(per_feature[i]))
            )
        slot = self.n_rules + best
        runner_up = self.segment_ids[self.n_rules + second] if second != best else None
        return Assignment(
            slot,
            self.segment_ids[slot],
            float(min(max(confidence, 0.0), 1.0)),
            None,
            runner_up,
            drivers,
        )


def _margin(d1: float, d2: float) -> float:
    """The k-means confidence ``1 - d1 / d2``; 0 when the distances overflowed (inf / inf)."""
    if d2 <= 0:
        return 1.0
    margin = 1.0 - d1 / d2
    return margin if margin == margin else 0.0


def _positive(gain: float) -> bool:
    """A driver worth reporting: a finite, positive gain (JSON has no infinity)."""
    return 0.0 < gain < math.inf


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    return float(value)


def _column(cat: _Categorical, value: str | None) -> int:
    column = cat.columns.get(MISSING_CATEGORY if value is None else value, cat.fallback)
    return -1 if column is None else column
