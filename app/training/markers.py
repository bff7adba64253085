"""A feature's own missing markers (``[[features]] missing_values``): sentinel cells.

Real data writes "unknown" as a value of one column (``pdays = -1``: never contacted),
where the same value is real in another (``balance = -1``). A feature may list such markers;
in that feature only, a cell equal to one is missing, as a blank cell is. A numeric
feature's markers are compared as numbers too (``"-1"`` matches ``-1``, ``-1.0`` and the text
``" -1.0"``) and as trimmed text (``"unknown"``); a categorical one's as the category's text
(``canonical_category``: a file's ``-1`` and a request's ``-1`` are the category ``"-1"``).
Every reader of a model's features applies them: training, file tagging and recording,
drift, comparisons (``FeatureMarkers.mask``, a column) and the API (``FeatureMarkers.hit``,
one value), the markers kept in the version's manifest (``Manifest.feature_markers``).
The ``[data] missing_values`` that are numbers are every feature's own too (``markers_of``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from app.training.rules.values import BOOL_TEXT, canonical_category, category_factors
from app.training.values import text_number, written_for_people

_BOOL_NUMBERS = {text: float(flag) for text, flag in BOOL_TEXT.items()}


def _number(text: str) -> float | None:
    """``text`` (trimmed) as a finite number, as a file's cell is read (``text_number``: not
    ``1_000`` nor full-width digits, which Python's ``float`` reads), else None."""
    number = text_number(text)
    return number if number is not None and math.isfinite(number) else None


class FeatureMarkers(NamedTuple):
    """One feature's markers: ``texts`` as written (a numeric feature's trimmed), and a
    numeric feature's ``numbers`` (those of its markers that are numbers); ``junk``: a
    numeric feature with ``errors = "missing"``, whose text that is no number (nor one
    written for people, refused everywhere) is missing too (``junk_is_missing``)."""

    texts: frozenset[str]
    numbers: frozenset[float]
    junk: bool = False

    @classmethod
    def of(cls, markers: Iterable[str], numeric: bool, junk: bool = False) -> FeatureMarkers:
        if not numeric:
            return cls(frozenset(markers), frozenset())
        texts = frozenset(m.strip() for m in markers)
        numbers = frozenset(n for m in texts if (n := _number(m)) is not None)
        return cls(texts, numbers, junk)

    def junk_is_missing(self, text: str) -> bool:
        """Whether a request's ``text`` for this numeric feature, which reads as no number,
        is missing, as the file's cell is under ``errors = "missing"``: junk (``unknown``)
        is; a number written for people (``$1,200``) is refused, as the file refuses it."""
        return self.junk and not written_for_people(text.strip())

    def hit(self, value: Any, kind: str) -> bool:
        """Whether a request's ``value`` of a feature of ``kind`` (``ServingModel.
        feature_kinds``) is one of the markers, as the same cell of a file is read."""
        if value is None or not self.texts:  # (junk only: no marker to match)
            return False
        t = type(value)
        if kind == "numeric":
            if t is str:
                text = value.strip()
                if text in self.texts:
                    return True
                number = _BOOL_NUMBERS.get(text)
                return (number if number is not None else _number(text)) in self.numbers
            # (a JSON true is 1.0, as a file's TRUE cell is: True == 1.0 in a set)
            return (t is int or t is float or t is bool) and value in self.numbers
        if t is not str and t is not int and t is not float and t is not bool:
            return False  # (a list or an object: no category, the checks refuse it)
        if kind == "boolean" and t is str:
            value = BOOL_TEXT.get(value, value)  # as the file's typed cell
        return canonical_category(value) in self.texts

    def mask(self, column: pd.Series, kind: str) -> pd.Series:
        """A file's ``column`` (as its reader typed it) with the marker cells missing."""
        if not self.texts:  # (junk only: the readers' errors = "missing" reads that)
            return column
        if kind == "numeric":
            if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
                numbers = column.astype("float64")
                hit = numbers.isin(list(self.numbers)).to_numpy(dtype=bool)
                return numbers.mask(hit) if hit.any() else column
            text = column.astype("string").str.strip()
            found = text.isin(self.texts) | text.map(_BOOL_NUMBERS).isin(list(self.numbers))
            found |= pd.to_numeric(text, errors="coerce").isin(list(self.numbers))
            hit = found.to_numpy(dtype=bool, na_value=False)
        else:
            codes, categories = category_factors(column)
            marked = np.array([c in self.texts for c in categories], dtype=bool)
            hit = np.append(marked, False)[codes]  # code -1 (missing) picks the False
        if not hit.any():
            return column
        return column.astype(object).mask(hit) if column.dtype == bool else column.mask(hit)


def markers_of(
    features: Iterable[Mapping[str, Any]], shared: Iterable[str] = ()
) -> dict[str, FeatureMarkers]:
    """Feature -> its markers, of the config's ``[[features]]`` entries (as a manifest keeps
    them: a version trained before the option has none), and each numeric feature's
    ``errors = "missing"`` (``FeatureMarkers.junk``).

    ``shared``: the config's ``[data] missing_values``, markers of every column. Those that
    are numbers are each feature's too: the file readers match them as text (pandas also as
    ``999.0`` and a parsed 999, pyarrow and a Parquet column of numbers not at all), so a
    number equal to one (a cell ``999.0``, a request's 999 or "999.0", a categorical's 999)
    is missing wherever a feature is read, as the cell ``999`` is. Text markers (``?``) stay
    the readers' and ``ServingModel.missing_markers``' alone (no work per value here)."""
    numbers = [m for m in shared if _number(m) is not None]
    found = {}
    for f in features:
        numeric = f.get("type", "numeric") == "numeric"
        junk = numeric and f.get("errors") == "missing"
        own = [*(f.get("missing_values") or ()), *numbers]
        if own or junk:
            found[str(f["name"])] = FeatureMarkers.of(own, numeric, junk)
    return found


def mask_markers(
    frame: pd.DataFrame, markers: Mapping[str, FeatureMarkers], kinds: Mapping[str, str]
) -> pd.DataFrame:
    """``frame`` with each feature's marker cells missing (in place; columns it lacks are
    left to the caller's checks). ``kinds``: feature -> ``numeric`` or ``categorical``."""
    for name, marked in markers.items():
        if name in frame.columns and name in kinds:
            frame[name] = marked.mask(frame[name], kinds[name])
    return frame
