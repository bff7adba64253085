"""Offline batch tagging (``segments assign``): a customer file in, segment per customer out.

The input streams in chunks (CSV via pandas, Parquet via pyarrow record batches), so a file of
millions of customers runs in bounded memory. The output has one row per input row:
``customer_id, segment_id, segment_name``, as CSV or Parquet by the output's suffix.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from app.errors import DataError
from app.registry.store import LoadedModel
from app.training.data import PARQUET_SUFFIXES, canonical_ids, columns_of, numeric_column


def _chunks(path: Path, columns: list[str], chunk_size: int) -> Iterator[pd.DataFrame]:
    if path.suffix.lower() in PARQUET_SUFFIXES:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size, columns=columns):
            yield batch.to_pandas()
    else:
        yield from pd.read_csv(path, usecols=columns, chunksize=chunk_size, low_memory=False)


def assign_file(
    loaded: LoadedModel, source: Path, target: Path, *, id_column: str, chunk_size: int = 100_000
) -> int:
    """Tag every row of ``source``; returns the number of rows written to ``target``."""
    model = loaded.estimator
    if not source.exists():
        raise DataError(f"input file not found: {source}")
    if source.stat().st_size == 0:
        raise DataError(f"input file {source} is empty")
    available = columns_of(source)
    columns = [id_column, *model.feature_names]
    missing = [c for c in columns if c not in available]
    if missing:
        raise DataError(f"{source.name}: missing column(s) {', '.join(map(repr, missing))}")
    names = {s.id: s.name for s in loaded.manifest.segments}
    numeric = [name for name, kind in model.features if kind == "numeric"]
    parquet_out = target.suffix.lower() in PARQUET_SUFFIXES
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    writer: pq.ParquetWriter | None = None
    rows = 0
    try:
        for chunk in _chunks(source, columns, chunk_size):
            for column in numeric:
                chunk[column] = numeric_column(chunk, column, source.name)
            ids = canonical_ids(chunk[id_column])
            segment_ids = model.predict(chunk)
            result = pd.DataFrame(
                {
                    "customer_id": ids.to_numpy(dtype=object),
                    "segment_id": segment_ids,
                    "segment_name": np.asarray([names[s] for s in segment_ids], dtype=object),
                }
            )
            if parquet_out:
                table = pa.Table.from_pandas(result, preserve_index=False)
                writer = writer or pq.ParquetWriter(partial, table.schema)
                writer.write_table(table)
            else:
                result.to_csv(partial, mode="a" if rows else "w", header=not rows, index=False)
            rows += len(result)
        if writer is not None:
            writer.close()
            writer = None
        if rows == 0:
            raise DataError(f"input file {source} has a header but no rows")
        partial.replace(target)
    finally:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
    return rows
