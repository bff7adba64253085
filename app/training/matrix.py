"""Fit the saved preprocessor and build the training matrix without a Python step per row.

``build_preprocessor(config).fit_transform(frame)`` one-hot encodes a million categorical
values through scikit-learn's ``OneHotEncoder``, which maps each value through a Python dict
(and checks each for unknown categories): most of the preprocessing time of a large training.
``fit_matrix`` returns the same fitted ``ColumnTransformer`` (the one saved in the artefact
and read by the service) and the same matrix, built differently:

* numeric columns go through their sub-pipeline's steps as ``Pipeline.fit`` sends them, and
  the scaler's subtraction and division write its output straight into the matrix;
* each categorical column is factorised once into codes of its canonical categories; its
  sub-pipeline is fitted on those categories repeated by their counts (the encoder learns
  only the sorted categories, their counts and the row count, so the fit is the same), and
  its one-hot block is the encoding of each distinct category, indexed by the codes and
  gathered into the matrix some rows at a time (no block of every row made, then copied);
* the ``ColumnTransformer`` around them is set up on one row and given the fitted
  sub-pipelines and their output columns.

tests/training/test_matrix.py proves the pipeline equal (pickled bytes) to the slow path's
and the matrix equal to its ``transform``. Should a scikit-learn release change the
``ColumnTransformer``'s internals so the two differ, a check on the first rows catches it
and the job falls back to ``fit_transform``.
"""

from __future__ import annotations

import functools
import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from app.training.config import TrainConfig
from app.training.preprocess import CategoryCanonicalizer, build_preprocessor, category_codes

log = logging.getLogger(__name__)
CHECK_ROWS = 256  # rows re-transformed by the fitted pipeline to check the fast build
STAND_IN_ROWS = 100_000  # the largest stand-in column an encoder is fitted on


def fit_matrix(config: TrainConfig, frame: pd.DataFrame) -> tuple[ColumnTransformer, np.ndarray]:
    """The fitted preprocessor and ``frame``'s C-contiguous float64 matrix.

    Equal to ``build_preprocessor(config)`` fitted with ``fit_transform(frame)`` and its
    output; ``frame`` holds the config's feature columns.
    """
    preprocessor = build_preprocessor(config)
    if len(frame) <= CHECK_ROWS:  # nothing to save on a small frame
        return preprocessor, _slow(preprocessor, frame)
    # every sub-pipeline fitted first, then each writes its columns straight into the one
    # matrix: no block of every row is made and copied (a million rows: 184 MB of matrix)
    fitted: list[tuple[str, Any, list[str]]] = []
    writers: list[Any] = []
    widths: list[int] = []
    for name, steps, columns in preprocessor.transformers:
        if name == "num":
            pipeline, values = _fit_numeric(steps, frame[columns])
            writers.append(functools.partial(_scale_into, pipeline, values))
            widths.append(values.shape[1])
        else:
            pipeline, table, codes = _fit_categorical(steps, frame[columns[0]])
            writers.append(functools.partial(_gather_into, table, codes))
            widths.append(table.shape[1])
        fitted.append((name, pipeline, columns))
    with warnings.catch_warnings():  # the one-row sub-fits are replaced: their warnings too
        warnings.simplefilter("ignore")
        preprocessor.fit(frame.iloc[:1])  # the plumbing: input columns and names, output kind
    preprocessor.transformers_ = fitted
    preprocessor.output_indices_ = _output_indices(fitted, widths)
    matrix = np.empty((len(frame), sum(widths)), dtype=np.float64)
    for (name, _, _), write in zip(fitted, writers, strict=True):
        write(matrix[:, preprocessor.output_indices_[name]])
    head = np.asarray(preprocessor.transform(frame.iloc[:CHECK_ROWS]), dtype=np.float64)
    if not np.array_equal(head, matrix[:CHECK_ROWS], equal_nan=True):
        log.warning("the fast preprocessing differs from the pipeline's: using fit_transform")
        preprocessor = build_preprocessor(config)
        return preprocessor, _slow(preprocessor, frame)
    return preprocessor, matrix


def transform_matrix(preprocessor: ColumnTransformer, frame: pd.DataFrame) -> np.ndarray:
    """A fitted preprocessor's (a stored version's) ``transform(frame)`` as float64, with
    each categorical column encoded once per distinct category, not once per row.

    Every step of the preprocessor maps a row alone, so a categorical column's block is its
    sub-pipeline's output for each canonical category, indexed by the rows' codes (as
    ``fit_matrix`` builds it). The first rows are checked against ``transform`` itself; a
    difference (a preprocessor of another shape) falls back to ``transform``."""
    head = np.asarray(preprocessor.transform(frame.iloc[:CHECK_ROWS]), dtype=np.float64)
    if len(frame) <= CHECK_ROWS:
        return head
    matrix = np.empty((len(frame), head.shape[1]), dtype=np.float64)
    for name, pipeline, columns in preprocessor.transformers_:
        if isinstance(pipeline, str):  # "drop" (the remainder): no columns out
            if pipeline != "drop":
                return _transformed(preprocessor, frame)
            continue
        out = matrix[:, preprocessor.output_indices_[name]]
        if _one_categorical(pipeline, columns):
            codes, categories = category_codes(frame[columns[0]])
            _gather_into(_category_table(pipeline, columns[0], _text(categories)), codes, out)
        else:
            out[:] = np.asarray(pipeline.transform(frame[columns]), dtype=np.float64)
    if not np.array_equal(head, matrix[:CHECK_ROWS], equal_nan=True):
        log.warning("the fast preprocessing differs from the pipeline's: using transform")
        return _transformed(preprocessor, frame)
    return matrix


def _one_categorical(pipeline: Any, columns: Any) -> bool:
    return (
        isinstance(pipeline, Pipeline)
        and isinstance(pipeline.steps[0][1], CategoryCanonicalizer)
        and len(columns) == 1
    )


def _transformed(preprocessor: ColumnTransformer, frame: pd.DataFrame) -> np.ndarray:
    return np.ascontiguousarray(preprocessor.transform(frame), dtype=np.float64)


def _slow(preprocessor: ColumnTransformer, frame: pd.DataFrame) -> np.ndarray:
    return np.ascontiguousarray(preprocessor.fit_transform(frame), dtype=np.float64)


def _fit_numeric(steps: Any, columns: pd.DataFrame) -> tuple[Any, np.ndarray]:
    """The numeric sub-pipeline fitted on ``columns`` as ``Pipeline.fit`` fits it (each step
    but the last fitted and applied in turn, the last, the scaler, fitted on their output),
    and that output: what the scaler transforms (``_scale_into``)."""
    pipeline = clone(steps)
    values = columns
    for _, step in pipeline.steps[:-1]:
        values = step.fit_transform(values)
    pipeline.steps[-1][1].fit(values)
    return pipeline, np.asarray(values, dtype=np.float64)


def _scale_into(pipeline: Any, values: np.ndarray, out: np.ndarray) -> None:
    """``StandardScaler.transform(values)`` written into ``out`` (the matrix's columns): the
    same subtraction and division, without the copy of ``values`` it makes first."""
    scaler = pipeline.steps[-1][1]
    np.subtract(values, scaler.mean_, out=out)
    np.divide(out, scaler.scale_, out=out)


def _fit_categorical(steps: Any, column: pd.Series) -> tuple[Any, np.ndarray, np.ndarray]:
    """One categorical sub-pipeline fitted on ``column``, its output for each distinct
    canonical category, and each row's code into them (``_gather_into`` makes the rows)."""
    codes, categories = category_codes(column)
    counts = np.bincount(codes, minlength=len(categories))
    text = _text(categories)
    name = str(column.name)
    pipeline = clone(steps)
    canonicalizer, encoder = (step for _, step in pipeline.steps)
    canonicalizer.fit(column.iloc[:1].to_frame(name))
    # straight to the encoder, as Pipeline.fit hands it the canonicalizer's output (a
    # DataFrame of it would first be copied into Arrow): a stand-in column that fits the same
    # encoder, or the canonical text of every row where none does
    stand_in = stand_in_counts(counts, encoder.min_frequency)
    encoder.fit(np.repeat(text, counts if stand_in is None else stand_in).reshape(-1, 1))
    return pipeline, _category_table(pipeline, name, text), codes


def _text(categories: np.ndarray) -> np.ndarray:
    """Canonical categories as CategoryCanonicalizer hands them to the encoder: fixed-width
    text."""
    text: np.ndarray = np.asarray(categories, dtype=object).astype(str)
    return text


def _category_table(pipeline: Any, name: str, text: np.ndarray) -> np.ndarray:
    """A fitted categorical sub-pipeline's output for each distinct category (``text``)."""
    return np.asarray(pipeline.transform(pd.DataFrame({name: text})), dtype=np.float64)


GATHER_ROWS = 65_536  # rows gathered at a time: a small block, reused from the heap


def _gather_into(table: np.ndarray, codes: np.ndarray, out: np.ndarray) -> None:
    """``out[:] = table[codes]`` (every row's block: its category's row of the table), a
    slice of rows at a time, so no block of every row is made (a million rows of a
    7-category column: 56 MB, fresh memory each time) before it is copied into ``out``."""
    for start in range(0, len(codes), GATHER_ROWS):
        out[start : start + GATHER_ROWS] = table[codes[start : start + GATHER_ROWS]]


def stand_in_counts(counts: np.ndarray, min_frequency: float | None) -> np.ndarray | None:
    """Counts per category of a small column on which ``OneHotEncoder`` fits as on ``counts``.

    The encoder learns from its column only the sorted distinct values (their text width is
    the array's, kept by ``np.repeat``) and, with ``min_frequency``, which of them are
    infrequent (``count < rows * min_frequency``): sorting a million repeated strings
    (``np.unique``) is most of its fit. The stand-in holds every category once, or a
    frequent category ``a`` times and an infrequent one once, with ``a`` chosen so the same
    ones come out infrequent, checked with the encoder's own comparison. None where no
    small stand-in does (then the encoder is fitted on every row)."""
    if counts.size == 0 or (counts <= 0).any():
        return None
    if min_frequency is None:
        return np.ones_like(counts)
    infrequent = counts < int(counts.sum()) * min_frequency
    n_frequent = int((~infrequent).sum())
    n_infrequent = counts.size - n_frequent
    if n_infrequent == 0:
        return np.ones_like(counts) if counts.size * min_frequency <= 1 else None
    # frequent ones: a >= (a F + I) f; infrequent ones: 1 < (a F + I) f
    share = 1.0 - n_frequent * min_frequency
    lowest = 1
    if n_frequent:
        if share <= 0:
            return None
        lowest = max(
            int(np.ceil(n_infrequent * min_frequency / share)),
            int(np.floor((1.0 / min_frequency - n_infrequent) / n_frequent)) + 1,
            1,
        )
    for a in range(lowest, lowest + 3):
        stand_in = np.where(infrequent, 1, a)
        if a * n_frequent + n_infrequent > STAND_IN_ROWS:
            return None
        if np.array_equal(stand_in < int(stand_in.sum()) * min_frequency, infrequent):
            return stand_in
    return None


def _output_indices(
    fitted: list[tuple[str, Any, list[str]]], widths: list[int]
) -> dict[str, slice]:
    """``ColumnTransformer.output_indices_``: each transformer's columns of the output."""
    indices: dict[str, slice] = {}
    start = 0
    for (name, _, _), width in zip(fitted, widths, strict=True):
        indices[name] = slice(start, start + width)
        start += width
    indices["remainder"] = slice(0, 0)
    return indices
