"""The tagged file a recording run also writes when asked (``--output``), as file tagging does:
``<id column>, segment_id, segment_name`` (the input's id column name), every column text.

Written to a hidden partial file beside the target and renamed into place once whole, so a
killed run leaves no half file under the target's name (a resumed run writes it again).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from app.training.data import PARQUET_SUFFIXES


class OutputWriter:
    def __init__(self, target: Path, id_column: str) -> None:
        self.target, self.id_column = target, id_column
        self.partial = target.with_name(f".{target.name}.partial")
        self.parquet = target.suffix.lower() in PARQUET_SUFFIXES
        self._writer: pq.ParquetWriter | None = None
        self._rows = 0
        target.parent.mkdir(parents=True, exist_ok=True)

    def write(
        self, ids: Sequence[str], segment_ids: Sequence[str], names: Sequence[str | None]
    ) -> None:
        frame = pd.DataFrame(
            {self.id_column: ids, "segment_id": segment_ids, "segment_name": names}, dtype=object
        )
        if self.parquet:
            schema = pa.schema([(c, pa.string()) for c in frame.columns])
            table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
            self._writer = self._writer or pq.ParquetWriter(self.partial, table.schema)
            self._writer.write_table(table)
        else:
            frame.to_csv(
                self.partial, mode="a" if self._rows else "w", header=not self._rows, index=False
            )
        self._rows += len(frame)

    def close(self) -> None:
        """Finish the file and move it into place."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._rows or self.partial.exists():
            self.partial.replace(self.target)

    def discard(self) -> None:
        """Drop what was written if the file was not finished."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.partial.unlink(missing_ok=True)
