"""The fitted preprocessing, compiled: the feature transform defined once, in two forms.

``CompiledPreprocess`` reads the fitted ``ColumnTransformer`` of a ``SegmentationModel``
(see ``app/training/preprocess.py``) into one encoder per block of output columns:
``NumericBlock`` (``NumericTransform`` bounds, log mask and fill values, then the
``StandardScaler`` mean and scale) and one ``OneHot`` per categorical feature (its
categories and infrequent group). Each encoder writes its block in two forms that sit side by
side:

- ``one``: one customer, into a list of Python floats. For one row numpy's per-call overhead
  (microseconds per ufunc, dozens of calls) is far larger than the arithmetic;
- ``many``: a batch, into a matrix, vectorised over rows.

The two forms perform the same floating-point operations in the same order, so they give the
same vector to the last bits (libm's ``log1p`` and numpy's may round apart); a test holds them
to each other on every training row and edge case, and both to ``Pipeline.transform``.

A new transform is a change to an encoder, or a new encoder registered in
``CompiledPreprocess.__init__``: the ``Encoder`` protocol makes it give both forms. A block
the compiler does not know raises ``UnsupportedPipeline``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from sklearn.preprocessing import StandardScaler

from app.columns import column_of
from app.training.preprocess import MISSING_CATEGORY, NumericTransform
from app.training.rules import canonical_category


class UnsupportedPipeline(Exception):
    """The fitted pipeline has a step the compiler does not know."""


class Encoder(Protocol):
    """One block of the preprocessed row: which features it reads and how, in both forms."""

    def owners(self) -> list[tuple[int, str]]:
        """``(output column, feature name)`` of each column the block writes."""

    def one(self, features: Mapping[str, Any], out: list[float]) -> None:
        """Write one customer's block into ``out`` (which starts as zeros)."""

    def many(self, rows: Sequence[Mapping[str, Any]], out: np.ndarray) -> None:
        """Write every row's block into ``out`` (which starts as zeros)."""


class NumericBlock:
    """``NumericTransform`` then ``StandardScaler``: clip, log1p, impute, standardise."""

    def __init__(self, transformer: Any, names: list[str], start: int) -> None:
        steps = getattr(transformer, "named_steps", {})
        transform, scale = steps.get("transform"), steps.get("scale")
        if not isinstance(transform, NumericTransform) or not isinstance(scale, StandardScaler):
            raise UnsupportedPipeline("numeric block is not NumericTransform -> StandardScaler")
        self.names, self.start, self.stop = names, start, start + len(names)
        self.lower = np.asarray(transform.lower_, dtype=np.float64)
        self.upper = np.asarray(transform.upper_, dtype=np.float64)
        self.log = np.asarray(transform.log_, dtype=bool)
        self.fill = np.asarray(transform.fill_, dtype=np.float64)
        self.mean = np.zeros(len(names)) if scale.mean_ is None else scale.mean_
        self.scale = np.ones(len(names)) if scale.scale_ is None else scale.scale_
        # the same parameters as Python floats, per feature, for ``one``
        self.params = list(
            zip(
                names,
                self.lower.tolist(),
                self.upper.tolist(),
                self.log.tolist(),
                self.fill.tolist(),
                np.asarray(self.mean, dtype=np.float64).tolist(),
                np.asarray(self.scale, dtype=np.float64).tolist(),
                strict=True,
            )
        )

    def owners(self) -> list[tuple[int, str]]:
        return [(self.start + j, name) for j, name in enumerate(self.names)]

    def one(self, features: Mapping[str, Any], out: list[float]) -> None:
        j = self.start
        for name, lower, upper, log, fill, mean, scale in self.params:
            x = _number(features.get(name))
            if x == x:  # not NaN: clip (like np.clip), then log1p of the non-negative part
                x = lower if x < lower else upper if x > upper else x
                if log:
                    x = math.log1p(x if x >= 0.0 else 0.0)
            if x != x:
                x = fill
            out[j] = (x - mean) / scale
            j += 1

    @np.errstate(over="ignore")
    def many(self, rows: Sequence[Mapping[str, Any]], out: np.ndarray) -> None:
        # numpy converts None to NaN and a number as float() does (what _number does)
        values = [column_of(rows, name) for name in self.names]
        raw = np.array(values, dtype=np.float64).reshape(len(self.names), len(rows)).T
        x = np.clip(raw, self.lower, self.upper)
        if self.log.any():
            x[:, self.log] = np.log1p(np.maximum(x[:, self.log], 0.0))
        missing = np.isnan(x)
        if missing.any():
            x = np.where(missing, self.fill, x)
        out[:, self.start : self.stop] = (x - self.mean) / self.scale


def infrequent_categories(encoder: Any) -> Any:
    """A fitted one-hot encoder's infrequent categories of its one column, None for none: an
    encoder fitted without grouping (``min_frequency = 0``) has no such attribute, and
    reading it was an AttributeError that ended the training job."""
    if encoder.min_frequency is None and encoder.max_categories is None:
        return None
    return encoder.infrequent_categories_[0]


class OneHot:
    """One categorical feature's one-hot block, unknown and rare values in its infrequent
    column (if it has one; else in none)."""

    def __init__(self, transformer: Any, name: str, start: int) -> None:
        encoder = getattr(transformer, "named_steps", {}).get("onehot")
        if encoder is None or encoder.drop_idx_ is not None:
            raise UnsupportedPipeline(f"categorical block for {name!r} is not a plain one-hot")
        categories = [str(c) for c in encoder.categories_[0]]
        infrequent = infrequent_categories(encoder)
        rare = {str(c) for c in infrequent} if infrequent is not None else set()
        frequent = [c for c in categories if c not in rare]
        self.name, self.start = name, start
        self.stop = start + len(frequent) + (1 if rare else 0)
        self.fallback = start + len(frequent) if rare else -1  # -1: no column
        self.columns = {c: start + i for i, c in enumerate(frequent)}
        self.columns |= dict.fromkeys(rare, self.fallback)

    def owners(self) -> list[tuple[int, str]]:
        return [(column, self.name) for column in range(self.start, self.stop)]

    def column(self, value: Any) -> int:
        """The output column of one raw value, -1 for none."""
        category = canonical_category(value)
        return self.columns.get(MISSING_CATEGORY if category is None else category, self.fallback)

    def one(self, features: Mapping[str, Any], out: list[float]) -> None:
        column = self.column(features.get(self.name))
        if column >= 0:
            out[column] = 1.0

    def many(self, rows: Sequence[Mapping[str, Any]], out: np.ndarray) -> None:
        values = column_of(rows, self.name)
        if set(map(type, values)) == {str}:
            # a string is its own canonical category: look every one up directly
            codes = list(map(self.columns.get, values, itertools.repeat(self.fallback)))
        else:
            codes = list(map(self.column, values))
        columns = np.array(codes, dtype=np.int64)
        hit = columns >= 0
        out[np.flatnonzero(hit), columns[hit]] = 1.0


class CompiledPreprocess:
    """The fitted ``ColumnTransformer`` as encoders; ``one`` and ``many`` give its output."""

    def __init__(self, prep: Any) -> None:
        self.encoders: list[Encoder] = []
        for name, transformer, columns in prep.transformers_:
            if name == "remainder":
                continue
            block = prep.output_indices_[name]
            if name == "num":
                self.encoders.append(NumericBlock(transformer, list(columns), block.start))
            elif name.startswith("cat_"):
                self.encoders.append(OneHot(transformer, columns[0], block.start))
            else:
                raise UnsupportedPipeline(f"unknown preprocessing block {name!r}")
        owners = sorted(pair for encoder in self.encoders for pair in encoder.owners())
        if [column for column, _ in owners] != list(range(len(owners))):
            raise UnsupportedPipeline("the blocks do not cover the output columns exactly")
        self.width = len(owners)
        self.feature_names = list(dict.fromkeys(name for _, name in owners))
        index = {name: i for i, name in enumerate(self.feature_names)}
        self.owner = [index[name] for _, name in owners]  # feature index of each column
        self._writers = [encoder.one for encoder in self.encoders]  # bound once: per request

    def one(self, features: Mapping[str, Any]) -> list[float]:
        """One customer's preprocessed row, as Python floats."""
        out = [0.0] * self.width
        for write in self._writers:
            write(features, out)
        return out

    def many(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The preprocessed matrix of many customers."""
        out = np.zeros((len(rows), self.width))
        for encoder in self.encoders:
            encoder.many(rows, out)
        return out


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    return float(value)
