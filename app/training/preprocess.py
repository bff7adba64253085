"""The preprocessing half of the saved pipeline: transforms, imputation, scaling, one-hot.

Numeric features go through ``NumericTransform`` (clip, optional winsorising learned at fit,
log1p, imputation) and a ``StandardScaler``; each categorical feature goes through
``CategoryCanonicalizer`` (the same canonical strings the rules and the service use) and a
``OneHotEncoder`` that groups rare categories as infrequent and ignores unknown ones.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from app.training.config import CategoricalFeature, NumericFeature, TrainConfig
from app.training.rules import canonical_category
from app.training.rules.values import category_factors

MISSING_CATEGORY = "__missing__"


class NumericTransform(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Clip, winsorise, log1p and impute numeric columns, each with its own settings.

    Parameters
    ----------
    specs : tuple of dict
        One per column: ``clip`` (lower, upper or None), ``winsorize`` (quantiles or None),
        ``log1p`` (bool; negative values become 0 first), ``impute`` ("median", "mean", "zero").

    Attributes
    ----------
    lower_, upper_ : ndarray
        Bounds applied before the transform (-inf / inf where none).
    log_ : ndarray of bool
    fill_ : ndarray
        Values that replace missing ones, in transformed units.
    """

    def __init__(self, specs: tuple[dict[str, Any], ...] = ()) -> None:
        self.specs = specs

    def fit(self, X: Any, y: Any = None) -> Self:
        self._fit(_as_float(X))
        return self

    def fit_transform(self, X: Any, y: Any = None, **params: Any) -> np.ndarray:
        """``fit(X).transform(X)`` with one pass over ``X`` instead of two."""
        return self._fill_missing(self._fit(_as_float(X)))

    def _fit(self, values: np.ndarray) -> np.ndarray:
        """Learn from ``values``; return them transformed, missing values still NaN."""
        n = values.shape[1]
        self.lower_ = np.full(n, -np.inf)
        self.upper_ = np.full(n, np.inf)
        self.log_ = np.zeros(n, dtype=bool)
        for j, spec in enumerate(self.specs):
            lo, hi = spec.get("clip") or (None, None)
            quantiles = spec.get("winsorize")
            if quantiles is not None:
                q = np.nanquantile(values[:, j], quantiles)
                lo = q[0] if lo is None else max(lo, q[0])
                hi = q[1] if hi is None else min(hi, q[1])
            self.lower_[j] = -np.inf if lo is None else lo
            self.upper_[j] = np.inf if hi is None else hi
            self.log_[j] = bool(spec.get("log1p"))
        transformed = self._transform_values(values)
        self.fill_ = np.zeros(n)
        for j, spec in enumerate(self.specs):
            column = transformed[:, j]
            strategy = spec.get("impute", "median")
            if strategy == "zero" or np.isnan(column).all():
                continue
            self.fill_[j] = np.nanmedian(column) if strategy == "median" else np.nanmean(column)
        self.n_features_in_ = n
        return transformed

    def _transform_values(self, values: np.ndarray) -> np.ndarray:
        """Clip and log ``values`` in place (always a private copy, from ``_as_float``):
        at a million rows, each temporary copy of the matrix costs a noticeable share."""
        if np.isfinite(self.lower_).any() or np.isfinite(self.upper_).any():
            np.clip(values, self.lower_, self.upper_, out=values)
        for j in np.flatnonzero(self.log_):
            column = values[:, j]
            np.log1p(np.maximum(column, 0.0, out=column), out=column)
        return values

    def transform(self, X: Any) -> np.ndarray:
        return self._fill_missing(self._transform_values(_as_float(X)))

    def _fill_missing(self, out: np.ndarray) -> np.ndarray:
        missing = np.isnan(out)
        if missing.any():
            out[missing] = np.broadcast_to(self.fill_, out.shape)[missing]
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(input_features, dtype=object)


class CategoryCanonicalizer(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Map a categorical column to canonical strings, with missing as ``__missing__``."""

    def fit(self, X: Any, y: Any = None) -> Self:
        self.n_features_in_ = 1
        return self

    def transform(self, X: Any) -> np.ndarray:
        column = X.iloc[:, 0] if isinstance(X, pd.DataFrame) else pd.Series(np.asarray(X)[:, 0])
        # a fixed-width unicode array, not objects: OneHotEncoder then finds the categories
        # with np.unique instead of a Python loop over every value (4 s of 5 at 1M rows)
        values: np.ndarray = canonical_column(column).to_numpy(dtype=str).reshape(-1, 1)
        return values

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(input_features, dtype=object)


def canonical_column(column: pd.Series) -> pd.Series:
    """Vectorised ``canonical_category`` with missing values as ``MISSING_CATEGORY``."""
    if pd.api.types.is_string_dtype(column) and not pd.api.types.is_object_dtype(column):
        strings: pd.Series = column.astype(object).where(column.notna(), MISSING_CATEGORY)
        return strings
    if pd.api.types.is_object_dtype(column) and (
        pd.api.types.infer_dtype(column, skipna=True) != "string"
    ):  # mixed types: hashing would merge True, 1 and 1.0, so canonicalise each value alone
        values = pd.Series([canonical_category(v) for v in column], index=column.index)
        mixed: pd.Series = values.astype(object).where(values.notna(), MISSING_CATEGORY)
        return mixed
    uniques = pd.unique(column.dropna())
    mapping = {u: canonical_category(u) for u in uniques}
    result: pd.Series = column.map(mapping).astype(object).where(column.notna(), MISSING_CATEGORY)
    return result


def category_codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes of each row into its distinct canonical categories (``canonical_column``'s
    values, missing as ``__missing__``), and those categories as an object array."""
    codes, categories = category_factors(column)  # missing: -1
    if (codes < 0).any():  # missing is the last name (code -1 picks it), one with a literal one
        merged, categories = pd.factorize(np.append(categories, MISSING_CATEGORY))
        codes = merged[codes]
    return codes, np.asarray(categories, dtype=object)


def _as_float(X: Any) -> np.ndarray:
    if isinstance(X, pd.DataFrame):
        return X.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
    return np.array(X, dtype=np.float64, copy=True)


def numeric_spec(feature: NumericFeature) -> dict[str, Any]:
    return {
        "clip": feature.clip,
        "winsorize": feature.winsorize,
        "log1p": feature.transform == "log1p",
        "impute": feature.impute,
    }


def build_preprocessor(config: TrainConfig) -> ColumnTransformer:
    """An unfitted ColumnTransformer for the config's features, dense float64 output."""
    numeric = [f for f in config.features if isinstance(f, NumericFeature)]
    categorical = [f for f in config.features if isinstance(f, CategoricalFeature)]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        specs = tuple(numeric_spec(f) for f in numeric)
        steps = Pipeline([("transform", NumericTransform(specs)), ("scale", StandardScaler())])
        transformers.append(("num", steps, [f.name for f in numeric]))
    for feature in categorical:
        encoder = OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            min_frequency=feature.min_frequency or None,
            sparse_output=False,
            dtype=np.float64,
        )
        steps = Pipeline([("canonical", CategoryCanonicalizer()), ("onehot", encoder)])
        transformers.append((f"cat_{feature.name}", steps, [feature.name]))
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)
