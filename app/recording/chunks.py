"""A customer file read in chunks for a recording run: ids, feature rows and rejected rows.

Reads through ``app.batch`` (the same streaming as file tagging), then sets aside the rows a
record cannot be made of (a missing id) with their reason, so one bad row does not stop a
nightly run. Row numbers are 0-based positions among the data rows; a rejected row is
reported 1-based (the first data row is row 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.batch import _chunks
from app.training.data import canonical_ids, numeric_column


@dataclass
class Chunk:
    """``size`` consecutive data rows from ``start``; ``rows`` are those kept (ids present)."""

    start: int
    size: int
    rows: list[int]
    ids: list[str]
    features: list[dict[str, Any]]
    rejects: list[tuple[int, str, str]] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.start + self.size


def _records(frame: pd.DataFrame, names: list[str]) -> list[dict[str, Any]]:
    """The rows as dicts of ``names`` (a third of the time of ``to_dict("records")``)."""
    columns = [frame[name].tolist() for name in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def read_chunks(
    source: Path,
    id_column: str,
    features: list[tuple[str, str]],
    chunk_size: int,
    *,
    skip_until: int = 0,
) -> Iterator[Chunk]:
    """Chunks of ``source`` with the ``features`` (name, kind) of a model, in file order.

    Chunks that end at or before row ``skip_until`` come back empty (``size`` only): a resumed
    run reads past what it has recorded without building rows for it.
    """
    names = [name for name, _ in features]
    numeric = [name for name, kind in features if kind == "numeric"]
    start = 0
    for frame in _chunks(source, [id_column, *names], chunk_size):
        size = len(frame)
        if start + size <= skip_until:
            yield Chunk(start, size, [], [], [])
            start += size
            continue
        for column in numeric:
            frame[column] = numeric_column(frame, column, source.name)
        ids = canonical_ids(frame[id_column])
        missing = ids.isna().to_numpy() | (ids.fillna("") == "").to_numpy()
        rejects = [(start + int(i) + 1, "", "missing customer id") for i in np.flatnonzero(missing)]
        if rejects:
            frame, ids = frame[~missing], ids[~missing]
        rows = (start + np.flatnonzero(~missing)).tolist()
        yield Chunk(
            start,
            size,
            rows,
            ids.to_numpy(dtype=object).tolist(),
            _records(frame, names),
            rejects,
        )
        start += size
