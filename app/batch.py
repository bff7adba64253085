"""Offline batch tagging (``segments assign``): a customer file in, segment per customer out.

The input streams in chunks (``read_chunks``: CSV via pandas, Parquet via pyarrow record
batches), so a file of millions of customers runs in bounded memory. Ids are text exactly as
written (``007`` and ``7`` are two customers), as in the API. The output has one row per
tagged customer, ``<id column>, segment_id, segment_name``, as CSV or Parquet by the output's
suffix; segment names are the ones the service serves (manifest plus PATCHed edits). A row
without a customer id, or with text that is not a number in a numeric feature, is not tagged:
it goes to ``<output stem>.rejects.csv`` with its row number and the reason (naming the
column and the value), and the rest of the file is tagged. A blank cell is a missing value,
imputed as in training, as are the markers the training config listed in ``missing_values``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from app.errors import DataError
from app.registry.overrides import segment_names
from app.registry.store import LoadedModel
from app.training.data import (
    PARQUET_SUFFIXES,
    columns_of,
    csv_options,
    missing_ids,
    text_ids,
)
from app.training.values import parse_numbers

NO_ID = "no customer id (empty cell)"


class Rejected(NamedTuple):
    row: int  # 1-based position among the file's data rows (the header is not counted)
    reason: str


class Chunk(NamedTuple):
    """One chunk of a customer file: the rows that have an id, and those that do not."""

    ids: pd.Series  # text ids of the kept rows, as written in the file
    features: pd.DataFrame  # the model's feature columns of those rows; numeric as float64
    rejected: list[Rejected]


def read_chunks(
    path: Path,
    id_column: str,
    features: Sequence[tuple[str, str]],
    chunk_size: int,
    missing_values: Sequence[str] = (),
) -> Iterator[Chunk]:
    """Stream a customer file (CSV or Parquet) as ``Chunk``s of at most ``chunk_size`` rows.

    ``features`` are the model's ``(name, kind)`` pairs. The id column is read as text, never
    as numbers (an integer Parquet column becomes its decimal text, with a warning). A row
    with no id, or with text that is not a number (or an infinite one) in a numeric feature,
    is returned in ``Chunk.rejected`` with the reason; blank cells and ``missing_values`` are
    missing values.
    """
    check_input(path, [id_column, *(name for name, _ in features)])
    numeric = [name for name, kind in features if kind == "numeric"]
    names = [name for name, _ in features]
    first_row = 1
    for frame in _frames(path, [id_column, *names], id_column, chunk_size, missing_values):
        ids = text_ids(frame[id_column], path.name)
        reasons = np.where(missing_ids(ids), NO_ID, "").astype(object)
        values = frame[names].reset_index(drop=True)
        for column in numeric:
            parsed = parse_numbers(values[column], missing_values)
            for i in np.flatnonzero(parsed.junk & (reasons == "")):
                reasons[i] = f"column {column!r} is not a number: {values[column].iloc[i]!r}"
            # infinity parses as a number, but no model can place it (training refuses it)
            infinite = np.isinf(np.asarray(parsed.values, dtype=float)) & (reasons == "")
            for i in np.flatnonzero(infinite):
                reasons[i] = (
                    f"column {column!r} is not a finite number: {str(values[column].iloc[i])!r}"
                )
            values[column] = parsed.values
        bad = reasons != ""
        rejected = [Rejected(first_row + int(i), str(reasons[i])) for i in np.flatnonzero(bad)]
        first_row += len(frame)
        kept = values.loc[~bad].reset_index(drop=True) if bad.any() else values
        yield Chunk(ids[~bad].reset_index(drop=True), kept, rejected)


def check_input(path: Path, columns: list[str]) -> None:
    """The file exists, is not empty and has ``columns``; else a ``DataError`` naming them."""
    if not path.exists():
        raise DataError(f"input file not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"input file {path} is empty")
    available = columns_of(path)
    missing = [c for c in columns if c not in available]
    if missing:
        shown = ", ".join(map(repr, available[:20])) + (" …" if len(available) > 20 else "")
        raise DataError(
            f"{path.name}: missing column(s) {', '.join(map(repr, missing))}; it has {shown}"
            + (" (another id column: --id-column NAME)" if missing[0] == columns[0] else "")
        )


def check_derived_input(path: Path, id_column: str, features: list[str]) -> None:
    """``check_input`` for a version trained on a transaction log: a missing column (the user
    gave it the log itself) is an error that says what the file must hold instead."""
    try:
        check_input(path, [id_column, *features])
    except DataError as error:
        if "missing column" not in str(error):
            raise
        raise DataError(
            f"{error}. This version was trained on a transaction log: this reads one row per "
            f"customer with the derived features ({', '.join(features)}); to tag or record "
            "from the log itself, run `segments assign --input LOG` (it derives them as "
            "training does)"
        ) from None


def _frames(
    path: Path, columns: list[str], id_column: str, size: int, missing_values: Sequence[str]
) -> Iterator[pd.DataFrame]:
    wanted = list(dict.fromkeys(columns))
    if path.suffix.lower() in PARQUET_SUFFIXES:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=size, columns=wanted):
            yield batch.to_pandas()
    else:
        options = csv_options(id_column, wanted, missing_values)
        yield from pd.read_csv(path, chunksize=size, **options)


@dataclass(frozen=True)
class BatchResult:
    rows: int  # customers tagged and written
    rejected: int  # rows left out (see ``rejects``)
    rejects: Path | None  # the reasons file, when a row was rejected


def rejects_path(target: Path) -> Path:
    return target.with_name(f"{target.stem}.rejects.csv")


def assign_file(
    loaded: LoadedModel, source: Path, target: Path, *, id_column: str, chunk_size: int = 100_000
) -> BatchResult:
    """Tag every row of ``source`` that has a customer id; write ``target`` (and the rejects)."""
    model = loaded.estimator
    # the model's folder holds the PATCHed names the service applies: use the same ones
    names = segment_names(loaded.manifest, loaded.path.parent)
    # the markers the training config read as missing are missing here too
    missing_values = loaded.manifest.missing_values
    if loaded.manifest.data.kind == "transactions":
        check_derived_input(source, id_column, [name for name, _ in model.features])
    chunks = read_chunks(source, id_column, model.features, chunk_size, missing_values)
    parquet_out = target.suffix.lower() in PARQUET_SUFFIXES
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    rejects_file = rejects_path(target)
    rejects_partial = rejects_file.with_name(f".{rejects_file.name}.partial")
    writer: pq.ParquetWriter | None = None
    rows = rejected = 0
    first_reason = ""
    try:
        for chunk in chunks:
            if chunk.rejected:
                pd.DataFrame(chunk.rejected, columns=["row", "reason"]).to_csv(
                    rejects_partial, mode="a" if rejected else "w", header=not rejected, index=False
                )
                first_reason = first_reason or chunk.rejected[0].reason
                rejected += len(chunk.rejected)
            if chunk.ids.empty:
                continue
            segment_ids = model.predict(chunk.features)
            result = pd.DataFrame(
                {
                    id_column: chunk.ids.to_numpy(dtype=object),
                    "segment_id": segment_ids,
                    "segment_name": np.asarray([names[s] for s in segment_ids], dtype=object),
                }
            )
            if parquet_out:
                schema = pa.schema([(c, pa.string()) for c in result.columns])
                table = pa.Table.from_pandas(result, schema=schema, preserve_index=False)
                writer = writer or pq.ParquetWriter(partial, table.schema)
                writer.write_table(table)
            else:
                result.to_csv(partial, mode="a" if rows else "w", header=not rows, index=False)
            rows += len(result)
        if writer is not None:
            writer.close()
            writer = None
        if rows == 0 and rejected == 0:
            raise DataError(f"input file {source} has a header but no rows")
        if rows == 0 and first_reason == NO_ID:
            raise DataError(f"no row of {source} has a customer id in column {id_column!r}")
        if rows == 0:
            raise DataError(
                f"no row of {source} could be tagged: every row was rejected, e.g. {first_reason}"
            )
        partial.replace(target)
        if rejected:
            rejects_partial.replace(rejects_file)
        else:  # a reasons file left by an earlier run would describe another input
            rejects_file.unlink(missing_ok=True)
    finally:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
        rejects_partial.unlink(missing_ok=True)
    return BatchResult(rows, rejected, rejects_file if rejected else None)
