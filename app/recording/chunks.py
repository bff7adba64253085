"""A customer file in chunks for a recording run: row numbers, ids, feature rows, rejects.

The file is read by ``app.batch.read_chunks``, the reader of file tagging (ids as text, the
same checks, the same reason for a row without an id), so ``--record`` and ``--output`` see
exactly the customers file tagging sees. This module only adds what a run needs on top: each
kept row's position in the file (its record id derives from it) and the rows' features,
kept as columns (``ColumnRows``): what the compiled assigner takes and what is stored as the
profile. Row
numbers are 0-based positions among the data rows; a rejected row is reported 1-based (the
first data row is row 1), as file tagging reports it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.assignment.customer_ids import MAX_ID_LENGTH
from app.batch import UnseenCategories
from app.batch import read_chunks as read_file_chunks
from app.columns import ColumnRows
from app.training.csv_format import PLAIN_CSV, CsvFormat
from app.training.markers import FeatureMarkers


@dataclass
class Chunk:
    """``size`` consecutive data rows from ``start``; ``rows`` are those kept (ids present)."""

    start: int
    size: int
    rows: list[int]
    ids: list[str]
    features: ColumnRows
    rejects: list[tuple[int, str, str]] = field(default_factory=list)  # row, id, reason

    @property
    def end(self) -> int:
        return self.start + self.size


def read_chunks(
    source: Path,
    id_column: str,
    features: Sequence[tuple[str, str]],
    chunk_size: int,
    *,
    skip_until: int = 0,
    missing_values: Sequence[str] = (),
    junk_as_missing: Collection[str] = (),
    max_id: int = MAX_ID_LENGTH,
    unseen: UnseenCategories | None = None,
    feature_markers: Mapping[str, FeatureMarkers] | None = None,
    booleans: Collection[str] = (),
    dialect: CsvFormat = PLAIN_CSV,
    numbered: Collection[str] = (),
    read_along: Sequence[tuple[str, str]] = (),
) -> Iterator[Chunk]:
    """Chunks of ``source`` with the ``features`` (name, kind) of a model, in file order, read
    as file tagging reads them (``missing_values``, ``junk_as_missing``, ``feature_markers``:
    the manifest's); ``unseen`` counts the categories training never saw in the chunks built;
    ``read_along`` columns are read into the rows' features, never assigned from (see
    ``app.batch.read_chunks``).

    Chunks that end at or before row ``skip_until`` come back empty (``size`` only): a resumed
    run reads past what it has recorded without building rows for it.
    """
    start = 0
    parts = read_file_chunks(
        source,
        id_column,
        features,
        chunk_size,
        missing_values,
        junk_as_missing,
        max_id,
        feature_markers,
        booleans,
        dialect,
        numbered,
        read_along,
    )
    for part in parts:
        size = len(part.ids) + len(part.rejected)
        if start + size <= skip_until:
            yield Chunk(start, size, [], [], ColumnRows({}))
            start += size
            continue
        if unseen is not None:
            unseen.count_frame(part.features)
        kept = np.ones(size, dtype=bool)
        kept[[r.row - 1 - start for r in part.rejected]] = False
        yield Chunk(
            start,
            size,
            (start + np.flatnonzero(kept)).tolist(),
            part.ids.to_numpy(dtype=object).tolist(),
            ColumnRows.of_frame(part.features),
            [(r.row, r.customer_id, r.reason) for r in part.rejected],
        )
        start += size
