"""Offline batch tagging (``segments assign``): a customer file in, segment per customer out.

The input streams in chunks (``read_chunks``: CSV via pandas, Parquet via pyarrow record
batches), so a file of millions of customers runs in bounded memory. Ids are text exactly as
written (``007`` and ``7`` are two customers), as in the API. The output has one row per
tagged customer, ``<id column>, segment_id, segment_name``, as CSV or Parquet by the output's
suffix; segment names are the ones the service serves (manifest plus PATCHed edits). A row
without a customer id, with text that is not a number in a numeric feature, with more or
fewer fields than the header (CSV: ``app.training.shape``), or whose id a later row has (the
last row of an id is used), is not tagged: it goes to ``<output stem>.rejects.csv`` with its
row number and the reason (naming the column and the value, the line, or the later row), and
the rest of the file is tagged. A blank cell is a missing value, imputed as in training, as
are CSV's missing markers (in a Parquet file's text columns too) and the markers the training
config listed in ``missing_values``, and each feature's own (``[[features]] missing_values``:
``pdays = -1``). The output is never the input (``check_output``).
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from app.assignment.customer_ids import MAX_ID_LENGTH, id_problem
from app.assignment.number_limit import within_limit
from app.errors import DataError
from app.registry.manifest import Manifest
from app.registry.overrides import segment_names
from app.registry.store import LoadedModel
from app.training.csv_format import PLAIN_CSV, CsvFormat
from app.training.data import (
    HEADER_REPEATED,
    PARQUET_SUFFIXES,
    columns_hint,
    columns_of,
    csv_options,
    header_rows,
    index_as_columns,
    learnt_booleans,
    markers_as_missing,
    missing_ids,
    read_error,
    text_ids,
    typed_categories,
)
from app.training.markers import FeatureMarkers, mask_markers
from app.training.rules.values import canonical_category
from app.training.shape import Misshapen, misshapen_rows, scan_column
from app.training.values import dot_grouped, dots_beyond_doubt, for_people, parse_numbers
from app.visible import is_blank
from app.words import counted, echoed, spelled_alike

NO_ID = "no customer id (empty cell)"


class Rejected(NamedTuple):
    row: int  # 1-based position among the file's data rows (the header is not counted)
    reason: str
    customer_id: str = ""  # where known (a misshapen row's: its field at the id's position)


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
    junk_as_missing: Collection[str] = (),
    max_id: int = MAX_ID_LENGTH,
    feature_markers: Mapping[str, FeatureMarkers] | None = None,
    booleans: Collection[str] = (),
    dialect: CsvFormat = PLAIN_CSV,
    numbered: Collection[str] = (),
    read_along: Sequence[tuple[str, str]] = (),
) -> Iterator[Chunk]:
    """Stream a customer file (CSV or Parquet) as ``Chunk``s of about ``chunk_size`` rows.

    ``features`` are the model's ``(name, kind)`` pairs. The id column is read as text, never
    as numbers (an integer Parquet column becomes its decimal text, with a warning). A row
    with no id, with text that is not a number (or an infinite one) in a numeric feature,
    with more or fewer fields than the header (CSV), or with the id of an earlier row, is
    returned in ``Chunk.rejected`` with the reason; blank cells, ``missing_values`` and a
    feature's own ``feature_markers`` (``Manifest.feature_markers``) are missing values,
    and so is text in the columns of ``junk_as_missing`` (``errors =
    "missing"`` in the training config), but for a number written for people (``$12.50``,
    ``94%``: ``for_people``), which is rejected as training refuses it. A row whose id the
    service would refuse (longer than ``max_id``, blank, or with control characters) or with
    a number it would refuse (of magnitude ``NUMBER_LIMIT`` or more) is rejected too: every
    customer a run records can be assigned by id. A chunk covers consecutive rows of the file: its
    kept rows and its rejected ones together.

    ``read_along`` are ``(name, kind)`` columns the model does not read, taken into the
    chunk's features where the file has them (``app.recording.kept_columns``): a value of one
    never rejects a row; one that is not a number a numeric one takes is missing.
    """
    check_input(path, [id_column, *(name for name, _ in features)], dialect)
    numeric = [name for name, kind in features if kind == "numeric"]
    names = [name for name, _ in features]
    kinds = dict(features)
    along: list[tuple[str, str]] = []
    if read_along:
        present = set(columns_of(path, dialect))
        along = [
            (n, k) for n, k in read_along if n in present and n not in kinds and n != id_column
        ]
    misshapen, superseded = _scanned(path, id_column, dialect)
    skipped = iter(misshapen)
    pending = next(skipped, None)
    first_row = 1
    categories = [name for name, kind in [*features, *along] if kind == "categorical"]
    columns = [id_column, *names, *(name for name, _ in along)]
    frames = _frames(
        path,
        columns,
        id_column,
        chunk_size,
        missing_values,
        misshapen,
        categories,
        dialect,
        numbered,
    )
    frames = (learnt_booleans(frame, booleans) for frame in frames)  # (Manifest's)
    for frame in frames:
        # the rows' numbers in the file: the misshapen rows pandas skipped lie between them
        end, rejected = first_row + len(frame), []
        while pending is not None and pending.row < end:
            rejected.append(Rejected(pending.row, pending.reason, pending.customer_id))
            end, pending = end + 1, next(skipped, None)
        rows = np.setdiff1d(np.arange(first_row, end), [r.row for r in rejected])
        first_row = end
        ids = text_ids(frame[id_column], path.name)
        reasons = np.where(missing_ids(ids), NO_ID, "").astype(object)
        # the header again (exports appended): no customer, whichever features it names (a
        # model of categorical features only tagged a customer named after the id column)
        reasons[header_rows(frame.reset_index(drop=True), [id_column, *names])] = HEADER_REPEATED
        for at, problem in refused_ids(ids, max_id):
            refused = ids.iloc[at]
            shown = "" if len(refused) > max_id else f": {refused!r}"  # unless too long
            reasons[at] = f"customer id {problem}{shown}"
        values = frame[names].reset_index(drop=True)
        if feature_markers:  # pdays = -1: missing, never "not a number"
            mask_markers(values, feature_markers, kinds)
        for column in numeric:
            parsed = parse_numbers(values[column], missing_values)
            junk = parsed.junk
            if column in junk_as_missing and junk.any():  # but for numbers written for people
                junk = junk.copy()
                junk[junk] = for_people(values[column][junk])
            for i in np.flatnonzero(junk & (reasons == "")):
                reasons[i] = f"column {column!r} is not a number: {echoed(values[column].iloc[i])}"
            # 12.000 beside 1.234.567 in the chunk: twelve thousand, which reads as twelve
            for i in np.flatnonzero(dot_grouped(values[column]) & (reasons == "")):
                cell = str(values[column].iloc[i]).strip()
                example = dots_beyond_doubt(values[column])
                reasons[i] = (
                    f"column {column!r} is a number written with dots as thousands separators: "
                    f"{echoed(cell)} (as other rows write them, e.g. {echoed(example)}; it is "
                    f"{cell.replace('.', '')}, not {float(cell):g}): write plain numbers"
                )
            # infinity parses as a number, but no model can place it (training refuses it)
            number = np.asarray(parsed.values, dtype=float)
            infinite = np.isinf(number) & (reasons == "")
            for i in np.flatnonzero(infinite):
                reasons[i] = (
                    f"column {column!r} is not a finite number: {echoed(values[column].iloc[i])}"
                )
            # nor one the service refuses (a stored profile with it could not be assigned)
            beyond = ~within_limit(number) & ~np.isnan(number) & (reasons == "")
            for i in np.flatnonzero(beyond):
                reasons[i] = (
                    f"column {column!r} is out of range (magnitude 2^63 or more): "
                    f"{echoed(values[column].iloc[i])}"
                )
            values[column] = parsed.values
        for column, kind in along:  # never a reason to reject the row
            cells = frame[column].reset_index(drop=True)
            if kind == "numeric":
                parsed = parse_numbers(cells, missing_values)
                number = np.array(parsed.values, dtype=float)  # (a copy: written to)
                number[parsed.junk | ~within_limit(number)] = np.nan  # (inf is beyond it)
                values[column] = number
            else:
                values[column] = cells
        position: dict[int, int] | None = None
        for i in np.flatnonzero(reasons == ""):
            if int(rows[i]) in superseded:
                cid, later = superseded[int(rows[i])]
                if position is None:  # (only in a chunk that repeats an id)
                    position = {int(row): j for j, row in enumerate(rows)}
                j = position.get(later)
                if j is not None and reasons[j] != "":  # "that row is used" was untrue
                    reasons[i] = (
                        f"duplicate id {cid!r}: row {later} has it too, and is rejected: "
                        "this customer is not tagged (fix that row)"
                    )
                else:
                    reasons[i] = f"duplicate id {cid!r}: row {later} has it too (that row is used)"
        bad = reasons != ""
        known = ids.fillna("").to_numpy(dtype=object)
        rejected += [
            Rejected(int(rows[i]), str(reasons[i]), str(known[i])) for i in np.flatnonzero(bad)
        ]
        kept = values.loc[~bad].reset_index(drop=True) if bad.any() else values
        yield Chunk(ids[~bad].reset_index(drop=True), kept, sorted(rejected))
    tail = [Rejected(m.row, m.reason, m.customer_id) for m in misshapen if m.row >= first_row]
    if tail:  # misshapen rows after the last row pandas read (or every row misshapen)
        yield Chunk(pd.Series([], dtype="string"), pd.DataFrame(columns=names), tail)


class _Scan(NamedTuple):
    misshapen: list[Misshapen]
    superseded: dict[int, tuple[str, int]]


def _scan(path: Path, id_column: str, dialect: CsvFormat) -> _Scan:
    """The whole-file passes made before the first chunk: the misshapen rows (CSV) and the
    rows whose id a later row has."""
    misshapen: list[Misshapen] = []
    if path.suffix.lower() in PARQUET_SUFFIXES:
        all_ids = pq.read_table(path, columns=[id_column]).column(0)
    else:  # one pass finds both: rows of another field count, and the ids
        found, all_ids = scan_column(path, id_column, dialect)
        misshapen = misshapen_rows(path, any_found=found, id_column=id_column, dialect=dialect)
    return _Scan(misshapen, superseded_rows(path, id_column, misshapen, all_ids, dialect))


_prescans: dict[tuple[Path, str, CsvFormat], tuple[tuple[int, int], Future[_Scan]]] = {}


def prescan(path: Path, id_column: str, dialect: CsvFormat = PLAIN_CSV) -> None:
    """Start ``read_chunks``'s whole-file passes over ``path`` (pyarrow's reader, mostly
    outside the GIL) in a thread, for the next ``read_chunks`` of the same file, id column
    and dialect to take: a recording run starts them before it imports scikit-learn and
    loads the model (a second of one core), so its first chunk reaches Redis sooner.

    What the passes find is what ``read_chunks`` would find itself (an error too, raised
    where it would raise it); a file changed since (size or time) is scanned again."""
    try:
        stat = path.stat()
    except OSError:
        return  # read_chunks says what is wrong with it
    future: Future[_Scan] = Future()

    def work() -> None:
        try:
            future.set_result(_scan(path, id_column, dialect))
        except BaseException as exc:  # handed to read_chunks, which raises it
            future.set_exception(exc)

    _prescans[(path, id_column, dialect)] = ((stat.st_size, stat.st_mtime_ns), future)
    threading.Thread(target=work, name="prescan", daemon=True).start()


def _scanned(
    path: Path, id_column: str, dialect: CsvFormat
) -> tuple[list[Misshapen], dict[int, tuple[str, int]]]:
    """The misshapen and superseded rows of ``path``: a ``prescan``'s, or scanned now."""
    started = _prescans.pop((path, id_column, dialect), None)
    if started is not None:
        stamp, future = started
        stat = path.stat()
        if stamp == (stat.st_size, stat.st_mtime_ns):
            return future.result()
    return _scan(path, id_column, dialect)


def refused_ids(ids: pd.Series, max_id: int) -> Iterator[tuple[int, str]]:
    """The positions of the ids (text, NA where none) the service would refuse, each with
    the problem (``id_problem``'s words). Most files have none: a few whole-column checks
    find that (the ids' lengths, blanks, and the printability of their joined text) before
    any id is looked at alone."""
    present = ids.dropna()
    if present.empty:
        return
    lengths = present.str.len()
    if (
        lengths.max() <= max_id
        and lengths.min() > 0
        and not present.str.isspace().any()
        and (joined := "".join(present.tolist())).isprintable()
        and (joined.isascii() or not any(map(is_blank, present.tolist())))
    ):
        return
    for i, customer_id in enumerate(ids.to_numpy(dtype=object)):
        if isinstance(customer_id, str) and (problem := id_problem(customer_id, max_id)):
            yield i, problem


def superseded_rows(
    path: Path,
    id_column: str,
    misshapen: Sequence[Misshapen] = (),
    all_ids: pa.ChunkedArray | None = None,
    dialect: CsvFormat = PLAIN_CSV,
) -> dict[int, tuple[str, int]]:
    """Rows whose id a later row has: row -> (id, the id's last row), rows 1-based.

    Two rows of one customer would be tagged (and recorded) twice, counted as two customers,
    and recorded as a migration between them. The last row of an id is the one used, as the
    latest written; the earlier ones are rejected. Misshapen rows are no rows (their id
    cannot be trusted). ``all_ids``, the id column read by pyarrow (no Python strings for a
    million ids), says whether any id repeats; only a file that repeats one is read again,
    as the chunks are read, to number its rows.
    """
    if all_ids is not None and not _repeats(all_ids):
        return {}
    if path.suffix.lower() in PARQUET_SUFFIXES:
        column = pq.read_table(path, columns=[id_column]).column(0).to_pandas()
        rows = np.arange(1, len(column) + 1)
    else:
        skip = [m.record for m in misshapen] or None
        options = csv_options(id_column, [id_column], dialect=dialect)
        try:
            column = pd.read_csv(path, skiprows=skip, **options)[id_column]
        except UnicodeDecodeError as exc:
            raise read_error(path, exc, dialect) from None
        rows = np.arange(1, len(column) + len(misshapen) + 1)
        rows = np.setdiff1d(rows, [m.row for m in misshapen])[: len(column)]
    text = text_ids(column.rename(id_column), path.name)
    present = text.notna().to_numpy(dtype=bool)
    ids, rows = text.to_numpy(dtype=object)[present], rows[present]
    earlier = pd.Series(ids).duplicated(keep="last").to_numpy(dtype=bool)
    if not earlier.any():
        return {}
    last = dict(zip(ids[~earlier], rows[~earlier].tolist(), strict=True))
    return {
        row: (str(cid), last[cid])
        for cid, row in zip(ids[earlier], rows[earlier].tolist(), strict=True)
    }


def _repeats(ids: pa.ChunkedArray) -> bool:
    """Whether a non-blank id occurs twice."""
    ids = ids.drop_null()
    if pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type):
        ids = ids.filter(pc.not_equal(pc.utf8_trim_whitespace(ids), ""))
    return bool(pc.count_distinct(ids).as_py() != len(ids))


def check_input(path: Path, columns: list[str], dialect: CsvFormat = PLAIN_CSV) -> None:
    """The file exists, is not empty and has ``columns``; else a ``DataError`` naming them."""
    # the model is trained: its names are fixed, the file's are not
    rename = "rename them in the file (or, for the id, --id-column NAME)"
    if not path.exists():
        raise DataError(f"input file not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"input file {path} is empty")
    available = columns_of(path, dialect)
    missing = [c for c in columns if c not in available]
    if missing:
        shown = ", ".join(map(echoed, available[:20])) + (" …" if len(available) > 20 else "")
        hint = columns_hint(missing, available, rename, path)
        if not hint and missing[0] == columns[0]:
            hint = " (another id column: --id-column NAME)"
        # a feature derived in the file before training (days_since_<a date column>)
        derived = [
            (m, a)
            for m in missing
            for a in available
            if len(a) >= 3 and a != m and (m.endswith(a) or m.startswith(a))
        ]
        if not hint and derived:
            made, source = derived[0]
            hint = (
                f" ({made!r} was derived from {echoed(source)} before training: prepare this file "
                "the same way, docs/training.md#preparing-a-file)"
            )
        raise DataError(
            f"{path.name}: missing column(s) {', '.join(map(repr, missing))}; it has {shown}{hint}"
        )


def check_derived_input(
    path: Path, id_column: str, features: list[str], dialect: CsvFormat = PLAIN_CSV
) -> None:
    """``check_input`` for a version trained on a transaction log: a missing column (the user
    gave it the log itself) is an error that says what the file must hold instead."""
    try:
        check_input(path, [id_column, *features], dialect)
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
    path: Path,
    columns: list[str],
    id_column: str,
    size: int,
    missing_values: Sequence[str],
    misshapen: Sequence[Misshapen],
    categories: Sequence[str] = (),
    dialect: CsvFormat = PLAIN_CSV,
    numbered: Collection[str] = (),
) -> Iterator[pd.DataFrame]:
    """The file's rows ``size`` at a time, read as training reads them (a CSV's categorical
    ``categories`` as ``typed_categories`` types them: the text written, ``numbered`` as the
    version trained so read them)."""
    wanted = list(dict.fromkeys(columns))
    written = [c for c in categories if c not in numbered]  # their markers: the config's
    if path.suffix.lower() in PARQUET_SUFFIXES:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=size, columns=wanted):
            frame = index_as_columns(batch.to_pandas(), wanted)  # a frame's index by name
            yield markers_as_missing(frame, id_column, missing_values, written)
    else:
        options = csv_options(id_column, wanted, missing_values, categories, dialect, written)
        skip = [m.record for m in misshapen]
        try:
            for chunk in pd.read_csv(path, chunksize=size, skiprows=skip or None, **options):
                chunk = dialect.numbers(chunk, [id_column, *categories])
                yield typed_categories(chunk, categories, numbered)
        except UnicodeDecodeError as exc:  # a row far into the file, after chunks were used
            raise read_error(path, exc, dialect) from None


@dataclass(frozen=True)
class BatchResult:
    rows: int  # customers tagged and written
    rejected: int  # rows left out (see ``rejects``)
    rejects: Path | None  # the reasons file, when a row was rejected
    kinds: dict[str, int] = field(default_factory=dict)  # rejected rows by ``reason_kind``
    unseen: list[str] = field(default_factory=list)  # ``UnseenCategories.lines``


class UnseenCategories:
    """The values of a model's categorical features that its training never saw, counted
    over a file's tagged rows (the API names such a value in ``unknown_categories``).

    Such a row is tagged (the model reads the value as one of its infrequent categories
    where it has them, else as none of its categories); a file's summary says how many rows
    held one, the commonest, and the known category one differs from only in case or
    spacing (``month-to-month`` for ``Month-to-month``: 447 of 800 rows were tagged "not
    month-to-month" without a word)."""

    def __init__(self, manifest: Manifest) -> None:
        self.known: dict[str, frozenset[str]] = {}
        self.infrequent: set[str] = set()
        for f in manifest.features:
            if f.type == "categorical" and f.categories is not None:
                self.known[f.name] = frozenset([*f.categories, *(f.infrequent or [])])
                if f.infrequent:
                    self.infrequent.add(f.name)
        self.found: dict[str, Counter[str]] = {name: Counter() for name in self.known}

    def count(self, name: str, values: Iterable[Any]) -> None:
        """Count the unseen values of feature ``name`` among ``values`` (one per row)."""
        known, found = self.known[name], self.found[name]
        if isinstance(values, pd.Series) and (
            not pd.api.types.is_object_dtype(values)
            or pd.api.types.infer_dtype(values, skipna=True) == "string"
        ):  # one type: its distinct values are its distinct categories
            counts: Any = values.value_counts()
        else:  # mixed (True, 1, "x"): hashing would merge True and 1, as the model does not
            counts = Counter(map(canonical_category, values))
        for value, n in counts.items():
            text = value if isinstance(value, str) else canonical_category(value)
            if n and text is not None and text not in known:  # (a Parquet dictionary's
                found[text] += int(n)  # categories that no row holds are counted 0)

    def count_frame(self, frame: pd.DataFrame) -> None:
        for name in self.known:
            self.count(name, frame[name])

    def lines(self) -> list[str]:
        """A line per feature with unseen values, for the terminal."""
        out = []
        for name, found in self.found.items():
            if not found:
                continue
            common = found.most_common(3)
            shown = ", ".join(f"{value!r} ({counted(n, 'row')})" for value, n in common)
            more = f" and {len(found) - 3:,} more" if len(found) > 3 else ""
            read = (
                "read as its infrequent categories"
                if name in self.infrequent
                else "read as none of its categories"
            )
            alike = [
                f"{value!r} is {' or '.join(map(repr, near))} in training"
                for value, _ in common
                if (near := spelled_alike(self.known[name], value))
            ]
            fix = (
                f" ({'; '.join(alike)}: fix the spelling in the file)"
                if alike
                else " (retrain with them if they are real categories)"
            )
            out.append(
                f"column {name!r}: {counted(sum(found.values()), 'row', verb='hold')} categories "
                "training never "
                f"saw, {read}{fix}: {shown}{more}"
            )
        return out


def reason_kind(reason: str) -> str:
    """What a rejected row's reason counts as in a summary: the reason without the row's own
    value, line or later row (``column 'x' is not a number``, ``duplicate id``)."""
    if reason == NO_ID:
        return "no customer id"
    if reason.startswith("duplicate id ") and ", and is rejected: " in reason:
        return "duplicate id (its later row rejected too: not tagged)"
    if reason.startswith("duplicate id "):
        return "duplicate id (a later row is used)"
    if reason.startswith(("column ", "customer id ")):
        return reason.split(": ", 1)[0]
    if reason.startswith("line ") and " field" in reason:
        return "another number of fields than the header"
    return reason


def kinds_in_words(kinds: dict[str, int]) -> str:
    """``{"no customer id": 2, ...}`` as ``no customer id: 2; ...``, the most frequent first."""
    ranked = sorted(kinds.items(), key=lambda item: -item[1])
    return "; ".join(f"{kind}: {count:,}" for kind, count in ranked)


def rejects_path(target: Path) -> Path:
    return target.with_name(f"{target.stem}.rejects.csv")


def check_output(source: Path, target: Path | None) -> None:
    """``DataError`` when writing ``target`` (or the reports beside it) would overwrite the
    input ``source``: the same path once resolved, or the same file under another name; or
    when ``target`` is a folder (the whole file was tagged, then the final rename failed)."""
    if target is None:
        return
    if target.is_dir():
        raise DataError(
            f"--output {target} is a folder: name the file to write, such as "
            f"{target / 'tagged.csv'}"
        )
    beside = [rejects_path(target), target.with_name(f"{target.stem}.review.csv")]
    for written in (target, *beside):
        same = written.resolve() == source.resolve()
        if not same and written.exists() and source.exists():
            same = os.path.samefile(written, source)
        if same:
            what = "--output" if written == target else f"the report {written.name} of --output"
            raise DataError(
                f"{what} is the input file {source}: writing it would overwrite the "
                "customers being read; write the output to another file"
            )


def assign_file(
    loaded: LoadedModel,
    source: Path,
    target: Path,
    *,
    id_column: str,
    chunk_size: int = 100_000,
    max_id: int = MAX_ID_LENGTH,
) -> BatchResult:
    """Tag every row of ``source`` that has a customer id; write ``target`` (and the rejects)."""
    check_output(source, target)
    model = loaded.estimator
    # the model's folder holds the PATCHed names the service applies: use the same ones
    names = segment_names(loaded.manifest, loaded.path.parent)
    # the markers the training config read as missing are missing here too
    missing_values = loaded.manifest.missing_values
    dialect = loaded.manifest.csv_format  # the file is read as training read its own
    if loaded.manifest.data.kind == "transactions":
        check_derived_input(source, id_column, [name for name, _ in model.features], dialect)
    chunks = read_chunks(
        source,
        id_column,
        model.features,
        chunk_size,
        missing_values,
        loaded.manifest.junk_as_missing,
        max_id,
        loaded.manifest.feature_markers,
        loaded.manifest.boolean_features,
        dialect,
        loaded.manifest.numbered_categories,
    )
    parquet_out = target.suffix.lower() in PARQUET_SUFFIXES
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    rejects_file = rejects_path(target)
    rejects_partial = rejects_file.with_name(f".{rejects_file.name}.partial")
    writer: pq.ParquetWriter | None = None
    rows = rejected = 0
    first_reason = ""
    kinds: Counter[str] = Counter()
    unseen = UnseenCategories(loaded.manifest)
    try:
        for chunk in chunks:
            if chunk.rejected:
                pd.DataFrame(chunk.rejected).loc[:, ["row", "reason"]].to_csv(
                    rejects_partial, mode="a" if rejected else "w", header=not rejected, index=False
                )
                first_reason = first_reason or chunk.rejected[0].reason
                rejected += len(chunk.rejected)
                kinds.update(reason_kind(r.reason) for r in chunk.rejected)
            if chunk.ids.empty:
                continue
            unseen.count_frame(chunk.features)
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
        if rows == 0 and rejected == 0:  # a nightly file with no customer today: no failure
            empty = pd.DataFrame({id_column: [], "segment_id": [], "segment_name": []}, dtype=str)
            if parquet_out:
                empty.to_parquet(partial, index=False)
            else:
                empty.to_csv(partial, index=False)
            partial.replace(target)
            rejects_file.unlink(missing_ok=True)
            return BatchResult(0, 0, None, {}, [])
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
    return BatchResult(
        rows, rejected, rejects_file if rejected else None, dict(kinds), unseen.lines()
    )
