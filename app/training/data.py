"""Reading training data: a customer table, or a transaction log turned into RFM features.

Both paths end in the same shape: one row per customer, indexed by a canonical string id,
holding the declared feature columns and the outcome columns. Every problem with the input
is a ``DataError`` that names the file, the column and what is wrong.
"""

from __future__ import annotations

import codecs
import csv as stdlib_csv
import hashlib
import json
import logging
import re
import time
import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from app.assignment.number_limit import within_limit
from app.errors import DataError
from app.events.derive import (
    AHEAD_US,
    EARLIEST_US,
    RFM_FEATURES,
    aggregate_customers,
    aggregate_log,
    features_frame,
    purchases,
    times_us,
    to_us,
)
from app.registry.manifest import dropped_summary
from app.training.config import DataConfig, Feature, TrainConfig, TransactionsConfig
from app.training.csv_format import PLAIN_CSV, CsvFormat
from app.training.markers import markers_of
from app.training.rules.values import BOOL_TEXT, CSV_NA_VALUES
from app.training.shape import Misshapen, misshapen_rows
from app.training.totals import TOTAL_ROW, total_rows
from app.training.values import (
    dot_group_hint,
    dot_grouped,
    for_people,
    numeric_column,
    parse_numbers,
    unit_hint,
)
from app.words import counted, echoed, loose_name, percent

logger = logging.getLogger(__name__)
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class TrainingData:
    """One row per customer: ``frame`` is indexed by canonical customer id."""

    frame: pd.DataFrame
    source_rows: int
    dropped_rows: int
    reference_date: date | None
    dropped_reasons: dict[str, int] = field(default_factory=dict)  # reason -> rows
    dropped_examples: dict[str, str] = field(default_factory=dict)  # reason -> an example
    missing_cells: dict[str, int] = field(default_factory=dict)  # feature -> missing cells
    text_as_missing: dict[str, int] = field(default_factory=dict)  # errors = "missing" cells
    outcomes: list[str] = field(default_factory=list)  # outcome columns of ``frame``
    positive: dict[str, str] = field(default_factory=dict)  # outcome -> value counted as 1
    notes: list[str] = field(default_factory=list)
    day_first: bool | None = None  # a log's numeric dates: the order the job read them in

    @property
    def fingerprint(self) -> str:
        return frame_fingerprint(self.frame)


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of the frame's ids, column names and values (order-sensitive).

    The row hashes are ``pd.util.hash_pandas_object(frame, index=True)``'s. Without object
    columns they are computed faster: a text column as a categorical (pandas hashes it by its
    values, each distinct value once, as its ``categorize`` does) and the ids, nearly all
    distinct, without ``categorize``'s factorising. An object column keeps ``categorize``,
    which hashes 1, 1.0 and True alike. tests/training/test_fingerprint.py proves it equal.
    """
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    if any(d == np.dtype(object) for d in [*frame.dtypes, frame.index.dtype]):
        hashed = pd.util.hash_pandas_object(frame, index=True)
    else:
        text = [c for c, dtype in frame.dtypes.items() if isinstance(dtype, pd.StringDtype)]
        as_categories = frame.astype(dict.fromkeys(text, "category"))
        hashed = pd.util.hash_pandas_object(as_categories, index=True, categorize=False)
    digest.update(np.ascontiguousarray(hashed.to_numpy()).tobytes())
    return digest.hexdigest()


def csv_options(
    id_column: str | None,
    columns: list[str] | None,
    missing_values: Sequence[str] = (),
    text_columns: Sequence[str] = (),
    dialect: CsvFormat = PLAIN_CSV,
    as_written: Collection[str] = (),
) -> dict[str, Any]:
    """``read_csv`` arguments that read ``id_column`` as the text written in the file (``007``
    stays ``007``, ``NaN`` stays ``NaN``, an empty cell is ``""``); ``text_columns`` as text
    too (an order id ``007`` stays ``007``, with the missing markers missing); other columns
    as usual, with ``missing_values`` read as missing too; text, fields and numbers as
    ``dialect`` (``[data] encoding``, ``delimiter``, ``decimal``, ``thousands``) writes them.
    The categorical columns ``as_written`` (``FeatureSchema.as_written``) take blank cells
    and ``missing_values`` only: pandas' ``NA`` there is a category (North America), as
    ``None`` is a plan."""
    markers = CSV_NA_VALUES | frozenset(missing_values)
    own = frozenset({"", *missing_values})
    texts = dict.fromkeys(text_columns, str)
    if not dialect.plain:  # every cell as text: ``CsvFormat.numbers`` reads the numbers
        written: dict[str, Any] = {"sep": dialect.delimiter, "dtype": str}
    else:
        written = {}
    written.update(dialect.pandas)
    if id_column is None:
        return {
            "usecols": columns,
            "low_memory": False,
            "na_values": list(missing_values),
            "dtype": texts or None,
            **written,
        }
    return {
        "usecols": columns,
        "dtype": {id_column: str, **texts},
        "keep_default_na": False,
        "na_values": {
            c: own if c in as_written else markers for c in (columns or []) if c != id_column
        },
        "low_memory": False,
        **written,
    }


def markers_as_missing(
    frame: pd.DataFrame,
    id_column: str | None,
    missing_values: Sequence[str],
    written: Collection[str] = (),
) -> pd.DataFrame:
    """A typed file's (Parquet's) text columns with the CSV reader's missing markers
    (``NA``, ``null``, ``missing_values`` …) as missing, as ``csv_options`` reads a CSV:
    the same values are missing whichever format holds them (``written``: categorical
    columns whose markers are ``missing_values`` only). The id column is left as is."""
    markers = list(CSV_NA_VALUES | frozenset(missing_values))
    own = list({"", *missing_values})
    for name in frame.columns:
        column = frame[name]
        typed = pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
        if name == id_column or typed:
            continue
        missing = column.isin(own if name in written else markers)
        if isinstance(column.dtype, pd.StringDtype):
            missing |= column.str.isspace().fillna(False).astype(bool)  # (as a blank cell)
        elif column.dtype == object:  # as text: pyarrow gives a boolean column with nulls
            # as an object column of True, False and None, which has no .str
            missing |= column.astype("string").str.isspace().fillna(False).astype(bool)
        if missing.any():
            frame[name] = column.mask(missing)
    return frame


# a number written with a leading zero: a code (ZIP 02134, account 007), never a quantity
_LEADING_ZERO = r"\s*[+-]?0\d"


def typed_categories(
    frame: pd.DataFrame, names: Sequence[str], numbered: Collection[str] = ()
) -> pd.DataFrame:
    """The categorical columns ``names`` of a CSV read as text: the text written (``999``,
    ``3.0``, ``007``), but a column of only ``True``/``False`` cells is booleans, as pandas'
    reader types it. A cell of only spaces is missing, as a blank one is.

    The columns ``numbered`` (``Manifest.numbered_categories``: a version trained before
    categories were read as written) are typed as pandas types a column, as that training
    read them: every cell a number, numbers (``3.0`` the category ``3``), unless one is
    written with a leading zero (ZIP ``02134``). That typing depended on the other cells
    read with a cell: a file tagged in chunks read ``3.0`` as ``3`` in one chunk and as
    ``3.0`` in another, and a request's ``"3.0"`` was never the file's."""
    for name in names:
        values = frame.get(name)
        if values is None or not (
            values.dtype == object or isinstance(values.dtype, pd.StringDtype)
        ):
            continue  # (typed already: a Parquet column, or one the reader typed)
        spaces = values.str.isspace().fillna(False).astype(bool)
        if spaces.any():
            values = frame[name] = values.mask(spaces)
        text = values.dropna()
        head = text.iloc[:100]  # a column of words is told by its first cells, not a million
        if head.empty:
            continue
        if head.isin(BOOL_TEXT.keys()).all() and text.isin(BOOL_TEXT.keys()).all():
            mapped = values.map(BOOL_TEXT)
            frame[name] = mapped.astype(bool) if len(text) == len(values) else mapped
            continue
        if name not in numbered:
            continue
        if pd.to_numeric(head, errors="coerce").isna().any() or text.str.match(_LEADING_ZERO).any():
            continue
        if pd.to_numeric(text, errors="coerce").notna().all():
            frame[name] = pd.to_numeric(values, errors="coerce")
    return frame


def learnt_booleans(frame: pd.DataFrame, names: Collection[str]) -> pd.DataFrame:
    """The columns ``names`` of a file being tagged or checked, whose version learnt the
    booleans true and false (``Manifest.boolean_features``): each ``TRUE``/``false`` … cell
    the boolean, whatever else its chunk holds. ``typed_categories`` types a column from all
    its cells, as training reads a whole file; a file read in chunks (or a Parquet column of
    text) is typed chunk by chunk: one ``yes`` among TRUE/FALSE left every ``TRUE`` of its
    chunk text, a category never seen, and moved five other customers of a hostile test."""
    for name in names:
        values = frame.get(name)
        if values is None or not (
            values.dtype == object or isinstance(values.dtype, pd.StringDtype)
        ):
            continue  # (booleans already)
        mapped = values.map(lambda v: BOOL_TEXT.get(v) if isinstance(v, str) else None)
        frame[name] = values.astype(object).where(mapped.isna(), mapped)
    return frame


_FLOAT_IDS_SAID: set[tuple[str, str]] = set()


def text_ids(values: pd.Series, source: str = "") -> pd.Series:
    """Customer ids as text, exactly as written: ``00001`` and ``1`` are two customers.

    CSV id columns are read as text already (``csv_options``). A typed column (Parquet) with
    integers becomes their decimal text, and integral floats (``17850.0``) lose the ``.0``;
    both are logged, since leading zeros an integer column lost cannot be recovered. An empty
    or blank id is missing (``<NA>``): ``missing_ids`` finds those.
    """
    if pd.api.types.is_bool_dtype(values) or not (
        pd.api.types.is_integer_dtype(values) or pd.api.types.is_float_dtype(values)
    ):
        text = values.astype("string")
        # an export that wrote integer ids as floats; blank cells (a retail log's lines
        # without a customer) are no id, and among them the warning was never given
        head = text.dropna()
        head = head[head.str.strip() != ""].iloc[:1000]
        said = (source, str(values.name))
        if said not in _FLOAT_IDS_SAID and len(head) and head.str.fullmatch(r"\d+\.0").all():
            _FLOAT_IDS_SAID.add(said)  # once per file, not once per chunk of it
            logger.warning(
                "%s: id column %r holds ids written as floats (%s): they are read as written, "
                "so %s and %s are two customers; write the ids as they are elsewhere",
                source,
                values.name,
                head.iloc[0],
                head.iloc[0],
                head.iloc[0][:-2],
            )
    else:
        logger.warning(
            "%s: id column %r holds numbers; read as their decimal text (ids are text: store "
            "them as strings to keep leading zeros)",
            source,
            values.name,
        )
        finite = values.dropna()
        if pd.api.types.is_float_dtype(values) and bool((finite == np.floor(finite)).all()):
            text = values.astype("Int64").astype("string")
        else:
            text = values.astype("string")
    return text.mask(text.str.strip() == "")


def order_ids(values: pd.Series) -> pd.Series:
    """A log's order ids as text: as written in a CSV (read as text), a typed column's
    (Parquet's) integers and integral floats as their decimal text (``5001``, never
    ``5001.0``); a blank cell is missing (a line of an order of its own)."""
    if pd.api.types.is_float_dtype(values) or pd.api.types.is_integer_dtype(values):
        finite = values.dropna()
        if bool(((finite == np.floor(finite)) & (finite.abs() < 2**53)).all()):
            values = values.astype("Int64")
    text = values.astype("string")
    return text.mask(text.str.strip() == "")


def missing_ids(ids: pd.Series) -> np.ndarray:
    """True where a row has no customer id (an empty or blank cell)."""
    return ids.isna().to_numpy(dtype=bool)


SUPERSEDED = 'an earlier row of an id a later row repeats (duplicate_ids = "last")'


def index_by_id(
    frame: pd.DataFrame, id_column: str, source: str, duplicates: str = "error"
) -> tuple[pd.DataFrame, int, int]:
    """``frame`` indexed by its ids as text (``customer_id``), without rows that have none;
    how many those were, and how many earlier rows of a repeated id were left out.

    A repeated id is a ``DataError`` counting them and naming rows (``duplicates="error"``),
    or its last row is kept (``"last"``, as ``segments assign`` keeps it)."""
    ids = text_ids(frame[id_column], source)
    keep = ~missing_ids(ids)
    frame = frame.loc[keep].drop(columns=[id_column])
    # through Python objects: a fresh, compact Arrow array (ids[keep] as it is keeps the CSV
    # reader's 69 chunks and ~85 MB more resident at 1M rows, for 0.1 s saved)
    frame.index = pd.Index(ids[keep].to_numpy(dtype=object), name="customer_id")
    if frame.index.is_unique:
        return frame, int((~keep).sum()), 0
    earlier = frame.index.duplicated(keep="last")
    if duplicates == "last":
        return frame.loc[~earlier], int((~keep).sum()), int(earlier.sum())
    repeated = frame.index.duplicated(keep=False)
    times = frame.index[repeated].value_counts(sort=False)
    shown = ", ".join(f"{echoed(cid)} ({n} rows)" for cid, n in times.iloc[:3].items())
    if times.index.to_series().str.match(SCIENTIFIC).all():
        # not duplicate_ids = "last": these are other customers, cut to the same digits
        raise DataError(
            f"{source}: id column {id_column!r} repeats {len(times):,} "
            f"{'id' if len(times) == 1 else 'ids'} ({int(repeated.sum()):,} rows), e.g. "
            f"{shown}, written in scientific notation, as a spreadsheet shows a long number: "
            "the digits it did not show are lost, and customers whose ids differ only in "
            'those are one (duplicate_ids = "last" would keep one of them); save the file '
            "with the id column formatted as text (or export it from the source system again)"
        )
    raise DataError(
        f"{source}: id column {id_column!r} repeats {len(times):,} "
        f"{'id' if len(times) == 1 else 'ids'} ({int(repeated.sum()):,} rows), e.g. {shown}; "
        "a customer table has one row per customer: remove "
        'the repeats, or set [data] duplicate_ids = "last" to use each id\'s last row (as '
        "segments assign does) and leave the earlier ones out"
    )


def read_table(
    path: Path,
    columns: list[str] | None = None,
    *,
    id_column: str | None = None,
    missing_values: Sequence[str] = (),
    fast_csv: bool = False,
    categories: Sequence[str] = (),
    dialect: CsvFormat = PLAIN_CSV,
    numbered: Collection[str] = (),
) -> pd.DataFrame:
    """Read a CSV or Parquet file, only ``columns`` if given; a missing column is an error.

    ``id_column``, if given, is read as text (see ``csv_options``; convert with ``text_ids``).
    ``fast_csv``: try pyarrow's multi-threaded reader first (``read_csv_fast``). A CSV row
    with more or fewer fields than the header is an error naming its line (``read_rows``
    leaves such rows out instead).
    """
    frame, misshapen = read_rows(
        path,
        columns,
        id_column=id_column,
        missing_values=missing_values,
        fast_csv=fast_csv,
        categories=categories,
        dialect=dialect,
        numbered=numbered,
    )
    if misshapen:
        raise DataError(f"{path.name}: {misshapen_summary(misshapen)}")
    return frame


def read_rows(
    path: Path,
    columns: list[str] | None = None,
    *,
    id_column: str | None = None,
    missing_values: Sequence[str] = (),
    fast_csv: bool = False,
    text_columns: Sequence[str] = (),
    categories: Sequence[str] = (),
    dialect: CsvFormat = PLAIN_CSV,
    numbered: Collection[str] = (),
) -> tuple[pd.DataFrame, list[Misshapen]]:
    """``read_table``, without the CSV rows whose field count differs from the header's
    (pandas would read them shifted or padded): the frame, and those rows. ``text_columns``
    are read as written, as the id column is (not with ``fast_csv``); the categorical
    ``categories`` of a CSV as ``typed_categories`` types them (``numbered``: as numbers,
    for a version trained so)."""
    check_data_file(path, columns, dialect)
    misshapen: list[Misshapen] = []
    written = [c for c in categories if c not in numbered]
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            frame = index_as_columns(pd.read_parquet(path, columns=columns), columns)
            frame = markers_as_missing(frame, id_column, missing_values, written)
        else:
            # pyarrow refuses a misshapen row: a file it reads has none
            texts = [*text_columns, *categories]
            fast = (
                read_csv_fast(
                    path, columns, id_column, missing_values, categories, written, dialect
                )
                if fast_csv and dialect.plain  # (pyarrow reads no decimal comma)
                else None
            )
            if fast is None:
                misshapen = misshapen_rows(path, dialect=dialect)
                skip = [m.record for m in misshapen] or None
                options = csv_options(id_column, columns, missing_values, texts, dialect, written)
                fast = pd.read_csv(path, skiprows=skip, **options)
                fast = dialect.numbers(fast, [c for c in [id_column, *texts] if c])
            frame = typed_categories(fast, categories, numbered)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise read_error(path, exc, dialect) from None
    if frame.empty and misshapen:
        raise DataError(f"{path.name}: every row is misshapen: {misshapen_summary(misshapen)}")
    if frame.empty:
        raise DataError(f"data file {path} has a header but no rows")
    return frame, misshapen


def index_as_columns(frame: pd.DataFrame, columns: Sequence[str] | None) -> pd.DataFrame:
    """``frame`` read from a Parquet file pandas wrote with its index, with the index as the
    columns its schema names (``__index_level_0__`` unnamed, else its name): asked for by
    name, pandas makes them the frame's index again, and the id column, named in the error
    as one the file has, was a KeyError."""
    if columns is None or all(c in frame.columns for c in columns):
        return frame
    names = [
        f"__index_level_{i}__" if name is None else str(name)
        for i, name in enumerate(frame.index.names)
    ]
    if not any(c in names for c in columns if c not in frame.columns):
        return frame
    frame = frame.copy()
    frame.index = frame.index.set_names(names)
    return frame.reset_index()


def misshapen_summary(misshapen: Sequence[Misshapen]) -> str:
    """``N rows have another field count than the header, e.g. line 3 has 16 fields …``."""
    shown = "; ".join(m.counts for m in misshapen[:3]) + ("; …" if len(misshapen) > 3 else "")
    rows = "1 row has" if len(misshapen) == 1 else f"{len(misshapen):,} rows have"
    causes = []
    quoted = sum(m.quoted for m in misshapen)
    if quoted:  # a tool quoted the whole line, doubling the quotes inside it
        whole = counted(quoted, "row is", "rows are")
        causes.append(f"{whole} quoted whole as one value: unquote such lines ({UNQUOTE_DOCS})")
    if quoted < len(misshapen):
        causes.append("an unquoted comma in a value, such as a thousands separator, splits it")
    return f"{rows} another number of fields than the header ({shown}; {'; '.join(causes)})"


def read_csv_fast(
    path: Path,
    columns: list[str] | None,
    id_column: str | None,
    missing_values: Sequence[str],
    texts: Sequence[str] = (),
    written: Collection[str] = (),
    dialect: CsvFormat = PLAIN_CSV,
) -> pd.DataFrame | None:
    """The frame ``pd.read_csv(path, **csv_options(...))`` gives, read by pyarrow's
    multi-threaded reader (3-4x faster on a million rows), or None where the two could differ,
    so the caller reads it the usual way: a duplicated header, an id cell pyarrow would read
    as missing (an empty cell, ``NaN`` or ``NULL`` is an id to pandas), a column pyarrow types
    other than integer, float or text (dates, booleans, all empty), or a file it refuses (the
    usual reader then gives its own error). Floats are parsed correctly rounded, where pandas'
    default parser may differ in the last bit. pyarrow's missing markers apply to every text
    column alike: with ``written`` columns (``csv_options``), text is read as written and each
    text column's markers applied after. ``dialect``: a plain one's text encoding."""
    import pyarrow as pa
    from pyarrow import csv

    try:
        with path.open(newline="", encoding=dialect.codec) as file:  # as written (pandas: x.1)
            header = next(stdlib_csv.reader(file), [])
    except (OSError, UnicodeDecodeError, stdlib_csv.Error):
        return None
    if id_column is None or columns is None or len(set(header)) != len(header):
        return None  # without columns, pandas applies no missing markers (``csv_options``)
    if "" in header:  # pandas names an unnamed column ``Unnamed: 0`` (a frame's index), as
        return None  # the errors and the config do (pyarrow read it as ``''``: a KeyError)
    wanted = set(columns)
    markers = sorted(CSV_NA_VALUES | frozenset(missing_values))
    try:
        table = csv.read_csv(
            path,
            read_options=dialect.arrow(),
            convert_options=csv.ConvertOptions(
                include_columns=[c for c in header if c in wanted],
                column_types={id_column: pa.string(), **dict.fromkeys(texts, pa.string())},
                null_values=markers,
                strings_can_be_null=not written,
            ),
        )
    except (pa.ArrowException, OSError, ValueError):
        return None
    allowed = (pa.types.is_int64, pa.types.is_float64, pa.types.is_string)
    if table.column(id_column).null_count or not all(
        any(check(field.type) for check in allowed) for field in table.schema
    ):
        return None
    frame: pd.DataFrame = table.to_pandas()
    own = list({"", *missing_values})
    for name in frame.columns:  # pandas marks missing text NaN, pyarrow None
        if name == id_column:
            continue
        column = frame[name]
        if written and (
            column.dtype == object or isinstance(column.dtype, pd.StringDtype)
        ):  # read as written: each column's markers after
            column = frame[name] = column.mask(column.isin(own if name in written else markers))
        if column.dtype == object:
            frame[name] = column.where(column.notna(), np.nan)
    return frame


def check_data_file(
    path: Path,
    columns: Sequence[str] | None = None,
    dialect: CsvFormat = PLAIN_CSV,
    id_column: str | None = None,
    table: str = "[data]",
) -> None:
    """The data file exists, is not empty and has ``columns``; else a ``DataError`` naming
    what is missing and the columns the file has (and, for a missing ``id_column``, the
    training table's, where it is set); ``table``: the config's table of the file's CSV
    options."""
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"data file {path} is empty")
    available = columns_of(path, dialect)  # a file of blank lines is empty too
    missing = [c for c in columns or () if c not in available]
    if missing:
        # a first line that holds any of the columns is the header: a title row holds none
        below = _header_below(path, missing, dialect) if len(missing) == len(columns or ()) else ""
        hint = below or columns_hint(missing, available, path=path, table=table, read_with=dialect)
        hint = (
            hint
            or _id_hint(id_column, missing, available, table)
            or _close_hint(missing, available)
        )
        raise DataError(
            f"{path.name}: missing column(s) {', '.join(map(echoed, missing))}; "
            f"the file has: {', '.join(map(echoed, available[:30]))}"
            f"{' …' if len(available) > 30 else ''}"
            f"{hint}"
        )


HEADER_SEARCH = 10  # lines below the first searched for the names a config gives


def _header_below(path: Path, missing: Sequence[str], dialect: CsvFormat) -> str:
    """Where the missing columns are named on a line below the first: a title row above
    the header (the UCI credit-card default sheet, saved as CSV, has a row of 'X1', 'X2'
    ... 'Y' above 'ID', 'LIMIT_BAL' ...: every column was "missing", and the error listed
    the placeholders), with the pandas line that deletes the lines above. Asked only where
    the first line holds none of the config's columns (a missing column's name found as a
    value below a real header is no header there)."""
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return ""
    import csv
    import itertools

    try:
        with path.open(encoding=dialect.codec, errors="replace", newline="") as handle:
            lines = list(itertools.islice(handle, HEADER_SEARCH + 1))[1:]
        top = list(csv.reader(lines, delimiter=dialect.delimiter))
    except (OSError, csv.Error, LookupError):
        return ""
    wanted = set(missing)
    for i, cells in enumerate(top):
        found = wanted & {c.strip() for c in cells}
        if len(found) >= max(1, (len(wanted) + 1) // 2):
            above = i + 1
            shown = "the line" if above == 1 else f"the {above} lines"
            sep = f", sep={dialect.delimiter!r}" if dialect.delimiter != "," else ""
            return (
                f" (the names are on line {above + 1} of the file, below a title or a "
                f"spreadsheet's row of placeholders: delete {shown} above them first, e.g. "
                f"pandas.read_csv(path, skiprows={above}, dtype=str, keep_default_na=False"
                f"{sep}).to_csv(path, index=False{sep}))"
            )
    return ""


def _close_hint(missing: Sequence[str], available: Sequence[str]) -> str:
    """The file's column a missing one is most likely a misspelling of (``outcomes =
    ["churn"]`` for a file's ``churned``), as config keys are suggested."""
    import difflib

    close = [
        (m, found[0])
        for m in missing
        if (found := difflib.get_close_matches(m, list(available), n=1, cutoff=0.75))
    ]
    if not close:
        return ""
    return " (" + "; ".join(f"did you mean {c!r} for {m!r}?" for m, c in close[:5]) + ")"


def _id_hint(
    id_column: str | None,
    missing: Sequence[str],
    available: Sequence[str],
    table: str = "[data]",
) -> str:
    """Where the missing column is the file's id column: the key that names it (an
    ``[outcomes]`` table's ``id``, whose 'customer_id' a subscription log's outcomes keyed on
    ``subscriber`` did not have, was named by no word of the error), or the training table's
    (an audit's hotel table, ids in ``guest_id``, got "missing column(s) 'customer_id'" from
    a config without ``id_column``, which the error did not mention)."""
    if id_column is None or id_column not in missing or not available:
        return ""
    key = "id" if table == "[outcomes]" else "id_column"
    said = (
        f" ({id_column!r} is the id column: {table} {key} names the file's column of "
        "customer ids, 'customer_id' unless set"
    )
    # suggest only a column whose name says it holds ids: a bank table without one was told
    # "e.g. id_column = 'age'", its first column
    if likely := sorted((c for c in available if _id_words(c)), key=_id_words, reverse=True):
        return f"{said}, e.g. {key} = {likely[0]!r})"
    if available[0] == "Unnamed: 0":  # a header cell left empty: a frame's index, to_csv's
        return (
            f"{said}; the first column has no name in the header, as pandas' to_csv writes a "
            f"frame's index: if it holds the ids, {key} = 'Unnamed: 0' reads it)"
        )
    if "__index_level_0__" in available:  # to_parquet's: the index kept as a column
        return (
            f"{said}; the file keeps a frame's index, as pandas' to_parquet writes it: if it "
            f"holds the ids, {key} = '__index_level_0__' reads it)"
        )
    return (
        f"{said}; no column of this file is named like one: a file without ids needs a "
        "column of them written first, see docs/training.md#customer-ids)"
    )


def _id_words(name: str) -> int:
    """How much a column's name reads as a customer id's: 2 for an ``id`` word (``CustomerID``,
    ``guest_id``, ``ID``), 1 for a customer's noun alone or with a word for a number
    (``Member Number``, ``client``, ``customer_no``), else 0 (``paid``, ``valid``, ``age``,
    and a noun that qualifies something else: the hotel-bookings table's 0/1
    ``is_repeated_guest`` was offered as the id column, as a telco's ``account_length`` or a
    ``customer_age`` would be)."""
    words = {w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)}
    if words & {"id", "ids", "uuid", "guid"}:
        return 2
    nouns = words & {"customer", "client", "member", "account", "user", "guest", "subscriber"}
    numbers = {"number", "no", "nr", "num", "code", "key", "ref", "reference", "identifier"}
    return int(bool(nouns) and words - nouns <= numbers)


def columns_hint(
    missing: Sequence[str],
    available: Sequence[str],
    fix: str = "write them so in the config",
    path: Path | None = None,
    table: str = "[data]",
    read_with: CsvFormat = PLAIN_CSV,
) -> str:
    """Why columns may be missing: another separator (``separator_hint``), or names that
    differ only by spaces around them or by case (`` age`` for ``age``): name them."""
    first = missing[0] if missing else None
    if hint := separator_hint(available, first, path, table, read_with):
        return hint
    written = {loose_name(c): c for c in reversed(available)}
    near = [
        (m, written[loose_name(m)]) for m in missing if loose_name(m) and loose_name(m) in written
    ]
    if not near:
        return ""
    shown = ", ".join(f"{m!r} is written {c!r}" for m, c in near[:5])
    return f" ({shown} in the file: names are matched exactly; {fix})"


def separator_hint(
    available: Sequence[str],
    id_column: str | None = None,
    path: Path | None = None,
    table: str = "[data]",
    read_with: CsvFormat = PLAIN_CSV,
) -> str:
    """A CSV read as one column whose name holds another separator (``a;b;c``: a file saved
    with semicolons, as spreadsheets do where the comma is the decimal mark; or ``a,b,c``
    read with the ``;`` its table declares, or inherits from ``[data]``): say so, with
    a command that writes it as read: ``id_column`` (the callers' first wanted column) as
    text, as pandas would make ``007`` the number 7; and numbers such as ``1.234,5`` as
    1234.5 where the file's first lines write them so (``thousands='.'`` would make 1583.07
    the number 158307)."""
    if len(available) != 1:
        return ""
    others = [sep for sep in (";", "\t", "|", ",") if sep != read_with.delimiter]
    found = next((sep for sep in others if sep in available[0]), None)
    if found is None:
        return ""
    if read_with.delimiter != ",":  # a file the config reads with another separator
        shown = "tab" if found == "\t" else repr(found)
        mark = ', decimal = "."' if read_with.decimal == found else ""
        return (
            f" (one column: the file seems {shown}-separated, and {table} reads it with "
            f"{read_with.delimiter!r}: write delimiter = {json.dumps(found)}{mark} in the "
            f"training config's {table} table{_inherited(table)})"
        )
    shown = "tab" if found == "\t" else repr(found)
    ids = f", dtype={{{id_column!r}: str}}" if id_column in available[0].split(found) else ""
    commas = path is not None and _decimal_commas(path, found, read_with.codec)
    numbers = ", decimal=',', thousands='.'" if commas else ""
    options = f"delimiter = {json.dumps(found)}" + (
        ', decimal = ",", thousands = "."' if commas else ""
    )
    return (
        f" (one column: the file seems {shown}-separated, and CSV files are read with commas: "
        f"declare it in the training config's {table} table, {options}, or save it with "
        f"commas, e.g. pandas.read_csv(path, sep={found!r}{numbers}{ids})"
        ".to_csv(new_path, index=False))"
    )


def _inherited(table: str) -> str:
    return " (it reads [data]'s format unless it sets its own)" if table != "[data]" else ""


_COMMA_NUMBER = re.compile(r"-?[0-9.]*[0-9],[0-9]+")  # 12,5 1.234,56 (a field of its own)


def _decimal_commas(path: Path, separator: str, codec: str = "utf-8") -> bool:
    """Whether a field of the first lines after the header (64 KiB, decoded with ``codec``,
    any byte it does not read replaced) is a number written with a decimal comma."""
    try:
        with path.open("rb") as handle:
            start = handle.read(65_536)
    except OSError:
        return False
    lines = start.decode(codec, errors="replace").splitlines()[1:]
    if len(start) == 65_536:
        lines = lines[:-1]  # cut short
    fields = (f.strip().strip('"') for line in lines for f in line.split(separator))
    return any(_COMMA_NUMBER.fullmatch(field) for field in fields)


COMPRESSED = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz", ".zst": "zstd", ".zip": "zip"}
UNPACK = {
    ".gz": "gunzip -k {name}",
    ".bz2": "bunzip2 -k {name}",
    ".xz": "unxz -k {name}",
    ".zst": "unzstd {name}",
    ".zip": "unzip {name}",
}
SPREADSHEETS = (".xlsx", ".xlsm", ".xls", ".ods", ".numbers")
OTHER_FORMATS = frozenset(
    [
        ".json",
        ".jsonl",
        ".ndjson",
        ".feather",
        ".arrow",
        ".orc",
        ".avro",
        ".pkl",
        ".pickle",
        ".h5",
        ".hdf5",
        ".sav",
        ".dta",
        ".sas7bdat",
        ".xml",
        ".db",
    ]
)
# what a file's first bytes say it is, whatever its name
# (bzip2's whole header: "BZh", a block size digit, then a block's magic; text can start "BZh")
MAGIC = {b"\x1f\x8b": "gzip", b"\xfd7zXZ": "xz", b"PK\x03\x04": "zip", b"(\xb5/\xfd": "zstd"}


def format_problem(path: Path) -> str | None:
    """Why ``path`` is neither CSV nor Parquet (by its name, or a CSV by its first bytes),
    and what to do; None when it is one of them (a CSV may be named .csv, .txt or else)."""
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return None
    fix = "the data is read from CSV or Parquet files"
    if suffix in COMPRESSED:
        # (every reader of the file, --record's resumable runs by byte offset among them,
        # reads it as it lies on disk: the file is decompressed once, beside it)
        command = UNPACK[suffix].format(name=path.name)
        return f"is compressed ({COMPRESSED[suffix]}): {fix}; decompress it first ({command})"
    if suffix in SPREADSHEETS:
        return f"is a spreadsheet ({suffix}): {fix}; save the sheet as CSV"
    if suffix in OTHER_FORMATS:
        how = "pandas.read_json(path, lines=...).to_csv(new_path, index=False)"
        return f"is not CSV or Parquet ({suffix}): {fix}; convert it (JSON: {how})"
    try:
        with path.open("rb") as handle:
            start = handle.read(8)
            size = path.stat().st_size
            handle.seek(max(0, size - 8))
            tail = handle.read(8)
    except OSError:
        return None  # the read that follows says what is wrong
    # with a byte-order mark, or without one: ASCII text in UTF-16 has a NUL byte beside
    # every character (read as UTF-8, the NULs would end up inside every name and value)
    if start.startswith((b"\xff\xfe", b"\xfe\xff")) or _utf16_without_bom(start):
        return "is UTF-16 text: save it as UTF-8 (Excel: 'CSV UTF-8')"
    # Parquet opens and closes so, and its footer's length (just before the closing magic)
    # fits between: a CSV that merely starts and ends with PAR1 is still CSV
    footer = int.from_bytes(tail[:4], "little") if len(tail) == 8 else size
    if start.startswith(b"PAR1") and tail[-4:] == b"PAR1" and footer + 12 <= size:
        return f"is a Parquet file: name it .parquet ({fix}, told apart by the name)"
    kind = next((k for magic, k in MAGIC.items() if start.startswith(magic)), None)
    if start[:3] == b"BZh" and start[3:4].isdigit() and start[4:8] == b"1AY&":
        kind = "bzip2"
    if kind is not None:
        what = "a spreadsheet or a zip archive" if kind == "zip" else f"compressed ({kind})"
        return f"is {what}, not CSV text: {fix}; decompress or export it first"
    return None


def _utf16_without_bom(start: bytes) -> bool:
    """Do these first bytes read as ASCII text in UTF-16 (either byte order)? A NUL byte at
    every other position, and none between."""
    if len(start) < 4:
        return False
    even, odd = start[0::2], start[1::2]
    return (not even.strip(b"\x00") and b"\x00" not in odd) or (
        not odd.strip(b"\x00") and b"\x00" not in even
    )


def _first_line(path: Path, codec: str = "latin-1") -> str:
    """The file's first line (up to 64 KiB) decoded with ``codec`` (by default any bytes,
    read as Latin-1; a byte ``codec`` does not read replaced); empty if unreadable."""
    try:
        with path.open("rb") as handle:
            return handle.readline(65_536).decode(codec, errors="replace")
    except OSError:
        return ""


# bytes cp1252 leaves undefined: a file holding one is Latin-1 (which reads every byte)
_NOT_CP1252 = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")


def _windows_codec(path: Path) -> str:
    """``cp1252`` (Excel's plain "CSV" on Windows), or ``latin-1`` for a file holding a byte
    cp1252 does not read (a rare error path: the whole file, 1 MiB at a time)."""
    try:
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                if _NOT_CP1252.search(block):
                    return "latin-1"
    except OSError:
        pass
    return "cp1252"


def _not_text(path: Path, exc: UnicodeDecodeError, dialect: CsvFormat) -> DataError:
    byte = exc.object[exc.start : exc.start + 1].hex()
    if not dialect.utf8:  # declared, and still a byte it does not read
        other = "" if dialect.encoding.lower() in ("latin-1", "latin1") else "latin-1"
        also = f' (encoding = "{other}" reads every byte)' if other else ""
        return DataError(
            f"{path.name} is not {dialect.encoding} text as [data] encoding declares it (byte "
            f"0x{byte} is not {dialect.encoding}): declare the encoding the file was saved "
            f"in{also}, or save it as UTF-8 (Excel: 'CSV UTF-8')"
        )
    codec = _windows_codec(path)
    # Excel saves a semicolon CSV so where the comma is the decimal mark: read with
    # commas, pandas splits 1.583,07 into two fields and keeps a mangled frame
    header = _first_line(path, codec)
    found = next((sep for sep in (";", "\t", "|") if sep in header), None)
    found = None if "," in header else found
    options = [f"encoding = {json.dumps(codec)}"]
    seems = ""
    if found:
        shown = "tab" if found == "\t" else repr(found)
        seems = f" (it seems {shown}-separated)"
        wanted = CsvFormat(found)
        if _decimal_commas(path, found, codec):
            wanted = CsvFormat(found, ",", ".")
        # only what the config does not declare yet: an Excel export declared in full
        # was told to declare the options it had (only the encoding was wrong)
        options += [
            f"{key} = {json.dumps(value)}"
            for key in ("delimiter", "decimal", "thousands")
            if (value := getattr(wanted, key)) is not None
            and getattr(dialect, key) != value
            and not (key == "thousands" and dialect.thousands is not None)
        ]
    # the text re-encoded, every cell as written: a pandas line that parsed the cells
    # (as this error once gave) wrote ids 00123 as 123, and order ids too
    return DataError(
        f"{path.name} is not UTF-8 text (byte 0x{byte} is not UTF-8): a file saved on Windows "
        f"(Excel's plain 'CSV') is read as written with {', '.join(options)} in the training "
        f"config's [data] table{seems}; or save it as UTF-8 (Excel: 'CSV UTF-8'), e.g. every "
        f"cell as written: open(new_path, 'w', encoding='utf-8').write(open(path, "
        f"encoding={codec!r}).read())"
    )


def read_error(path: Path, exc: Exception, dialect: CsvFormat = PLAIN_CSV) -> DataError:
    """The error for a file a reader failed on; text that is not UTF-8 names the encoding to
    declare (or how to save it as UTF-8; and, for a file that seems another format than
    ``dialect``, the options to declare with it)."""
    if isinstance(exc, UnicodeDecodeError):
        return _not_text(path, exc, dialect)
    if unclosed := re.search(r"EOF inside string starting at row (\d+)", str(exc)):
        # pandas' words for a quote never closed, its row counted from 0 at the header
        return DataError(
            f"{path.name}: line {int(unclosed[1]) + 1:,} opens a quote that is never closed, "
            "which makes the rest of the file one value; check that line's quotes (a quote "
            'inside a value is written twice, "")'
        )
    return DataError(f"cannot read {path}: {exc}")


def columns_of(path: Path, dialect: CsvFormat = PLAIN_CSV) -> list[str]:
    """The file's column names; ``DataError`` for a file that is neither CSV nor Parquet."""
    if path.exists() and (problem := format_problem(path)) is not None:
        raise DataError(f"{path.name} {problem}")
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        if not dialect.utf8 and _utf8_text(path):
            raise DataError(
                f"{path.name} is UTF-8 text, not {dialect.encoding} as the config's encoding "
                f"declares (read so, 'Müller' would be 'MÃ¼ller', and a byte-order mark part "
                f"of the first column's name): save the file as {dialect.encoding}, or declare "
                'encoding = "utf-8" (a model version reads files as its training config did)'
            )
        return list(pd.read_csv(path, nrows=0, sep=dialect.delimiter, **dialect.pandas).columns)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {path} is empty") from None
    except (ValueError, OSError) as exc:
        raise read_error(path, exc, dialect) from None


def _utf8_text(path: Path) -> bool:
    """Whether the file's first 64 KiB are UTF-8 text beyond ASCII (a byte-order mark, or a
    character of two or more bytes): a cp1252 or Latin-1 file's accented letters are single
    bytes that UTF-8 does not read, so such a file is UTF-8, whatever was declared."""
    try:
        with path.open("rb") as handle:
            start = handle.read(65_536)
    except OSError:
        return False
    if start.startswith(codecs.BOM_UTF8):
        return True
    if start.isascii():
        return False
    try:
        start.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a character cut by the 64 KiB is still UTF-8
        return (
            len(start) == 65_536
            and exc.start >= len(start) - 3
            and exc.reason.startswith("unexpected end")
        )
    return True


def load_training_data(config: TrainConfig, day_first: bool | None = None) -> TrainingData:
    """Load and validate the data a config describes (``day_first``: how a log that proves no
    day/month order is read, the order a version's training log proved)."""
    from app.training.outcomes import add_outcomes

    data = config.data
    if data.kind == "transactions":
        assert data.transactions is not None
        loaded = _load_transactions(data, data.transactions, config, day_first)
    else:
        local = config.outcomes.columns if config.outcomes.path is None else []
        categories = [f.name for f in config.features if f.type == "categorical"]
        loaded = _load_table(data, config.feature_names + local, categories)
    frame = loaded.frame
    for column in config.feature_names:
        if column not in frame.columns and data.kind == "transactions":
            # a log's own column ("Country") was told it is "not a column" of the log
            per_line = column in columns_of(data.path, CsvFormat.of(data))
            raise DataError(
                f"feature {column!r} is not one a transaction log derives (its features are "
                f"{', '.join(RFM_FEATURES)})"
                + (
                    f"; {column!r} is a column of {data.path.name}, written per line, not per "
                    "customer: to segment on it too, write a customer table (one row per "
                    "customer, with it and the numbers derived from the log) and train on that"
                    if per_line
                    else ""
                )
            )
        if column not in frame.columns:
            raise DataError(f"feature {column!r} is not a column of {data.path.name}")
    _check_features(config, loaded)
    add_outcomes(config, loaded)
    k_min = config.model.k_min
    if len(frame) < min_rows_for(k_min):
        raise DataError(
            f"{data.path.name} has {len(frame)} customers, too few for the {k_min} segments "
            f"requested (model.k_min = {k_min}): at least {min_rows_for(k_min)} are needed"
        )
    return loaded


def min_rows_for(k: int) -> int:
    """Customers needed to choose among ``k`` segments: the silhouette that ranks the
    candidates is defined only for 2 <= k <= customers - 1."""
    return max(k, 2) + 1


def _load_table(
    data: DataConfig, columns: list[str], categories: Sequence[str] = ()
) -> TrainingData:
    wanted = list(dict.fromkeys([data.id_column, *columns]))
    check_data_file(data.path, wanted, CsvFormat.of(data), id_column=data.id_column)
    currency = currency_column(data.path, wanted, CsvFormat.of(data))
    frame, misshapen = read_rows(
        data.path,
        [*wanted, currency] if currency else wanted,
        id_column=data.id_column,
        missing_values=data.missing_values,
        fast_csv=True,
        categories=categories,
        dialect=CsvFormat.of(data),
    )
    header = header_rows(frame, wanted)  # the header again (exports appended): no row
    if header.any():
        frame = frame[~header].reset_index(drop=True)
    # the ids' spellings, from the reader's own column (pyarrow's buffers, no Python strings)
    notes = [*spaced_ids(frame[data.id_column], data.id_column)]
    notes += zero_ids(frame[data.id_column], data.id_column)
    notes += scientific_ids(frame[data.id_column], data.id_column)
    # rows of nothing but empty fields (a spreadsheet's blank lines, ``;;;;``): not customers
    # without an id, which the summary counts (said once: the summary, not a log line too)
    empty = empty_rows(frame, data.id_column)
    if empty.any():
        frame = frame.loc[~empty]
    frame, dropped, superseded = index_by_id(
        frame, data.id_column, data.path.name, data.duplicate_ids
    )
    reasons = {"no customer id": dropped} if dropped else {}
    if empty.any():
        reasons[EMPTY_ROW] = int(empty.sum())
        dropped += int(empty.sum())
    if header.any():
        reasons[HEADER_REPEATED] = int(header.sum())
        dropped += int(header.sum())
    if superseded:
        reasons[SUPERSEDED] = superseded
        dropped += superseded
    more, examples = misshapen_reasons(data.path.name, misshapen)
    # a spreadsheet's total row under the customers: the biggest "customer" there is
    totals, example = total_rows(frame, [c for c in columns if c not in categories])
    if example is not None:
        frame = frame.loc[~totals]
        reasons[TOTAL_ROW] = int(totals.sum())
        dropped += int(totals.sum())
        examples = {TOTAL_ROW: example, **examples}
    if currency is not None:  # read for its note only: not a column of the training frame
        held = frame.pop(currency)
        numeric = [c for c in columns if c in frame.columns and c not in categories]
        if numeric and (note := currencies_note(held, currency, table=True)):
            notes.append(note)
    return TrainingData(
        frame,
        source_rows=len(frame) + dropped + len(misshapen),
        dropped_rows=dropped + len(misshapen),
        reference_date=None,
        dropped_reasons=reasons | more,
        dropped_examples=examples,
        notes=notes,
    )


def empty_rows(frame: pd.DataFrame, id_column: str) -> np.ndarray:
    """Where every field read is empty: missing, the id (read as written) blank: a
    spreadsheet's blank lines, written as delimiters only."""
    empty = frame.drop(columns=[id_column]).isna().all(axis=1).to_numpy(dtype=bool, copy=True)
    if empty.any():
        ids = frame.loc[empty, id_column].astype("string").str.strip()
        empty[empty] = ids.fillna("").eq("").to_numpy(dtype=bool)
    return empty


def header_rows(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Where a row holds the header again, each of ``columns`` its own name: two
    exports appended into one file. Such a row is no data: a log counted it as a line whose
    time is not readable, and a table's numeric column as text, whose suggested fix
    (``errors = "missing"``) made it a customer named after the id column."""
    rows = np.zeros(len(frame), dtype=bool)
    for column in columns:  # a column typed as numbers holds no name: no such row (at once)
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            return rows
    rows[:] = True
    for column in columns:
        values = frame[column]  # (the first field of a second file may keep its BOM)
        same = (values == column) | (values == "\ufeff" + column)
        rows &= same.fillna(False).to_numpy(dtype=bool)
        if not rows.any():
            break
    return rows


def misshapen_reasons(
    source: str, misshapen: Sequence[Misshapen]
) -> tuple[dict[str, int], dict[str, str]]:
    """The dropped-rows reason of the misshapen rows (logged with their lines), and its
    example (the first such line)."""
    if not misshapen:
        return {}, {}
    logger.warning("%s: left out: %s", source, misshapen_summary(misshapen))
    first = misshapen[0]
    # the cause of a row quoted whole in the example too: the summary, manifest and report
    # keep it, where the log line above is gone once read (a retail log lost 119 sales lines,
    # the summary saying only "line 111 has 1 field, the header 8")
    why = (
        f" (the whole row quoted as one value: unquote such lines, {UNQUOTE_DOCS})"
        if first.quoted
        else ""
    )
    return {MISSHAPEN: len(misshapen)}, {MISSHAPEN: first.counts + why}


MISSHAPEN = "another number of fields than the header"
# the lines that do it (the hint said "unquote such lines" and no more)
UNQUOTE_DOCS = "docs/training.md#rows-quoted-whole"
HEADER_REPEATED = "the header line repeated (files appended)"
EMPTY_ROW = "an empty row (every field blank)"
TIME_NOT_READABLE = "time not readable"
NOT_A_NUMBER = "amount not a number"
BEYOND_LIMIT = "amount not finite or beyond 2^63"
NET_BEYOND_LIMIT = "a customer's net amount before the reference date beyond 2^63"
DUPLICATE = "an exact duplicate of another line (drop_duplicates = true)"
EXCLUDED = "no sale (exclude_column)"
NO_TRANSACTION = "no transaction with a customer id, a time and an amount"


class Events(NamedTuple):
    """A transaction log's usable rows (customer, when, amount[, order]) and its reference."""

    all: pd.DataFrame  # every row with a customer id, a time and an amount
    reference: date
    dropped: dict[str, int]  # reason -> rows without a customer id, time or amount
    examples: dict[str, str]  # reason -> an example of what it left out
    notes: tuple[str, ...] = ()  # what was kept but a reader should know (repeated lines)
    day_first: bool | None = None  # numeric day/month dates: read day first (None: not such)


def read_events(
    data: DataConfig, tx: TransactionsConfig, day_first: bool | None = None
) -> tuple[Events, int]:
    """The log's usable events, the reference date, and the number of rows in the file.

    An amount, quantity or unit price must be a number the service takes (``within_limit``,
    as ``POST /v1/events`` bounds an event's), and so must each customer's net amount before
    the reference (the ``monetary`` feature): a customer beyond it is left out, every line."""
    cols = [tx.customer, tx.timestamp, tx.amount, tx.quantity, tx.unit_price, tx.order]
    cols += [tx.refund_column, tx.exclude_column]
    dialect = CsvFormat.of(data)
    currency = currency_column(data.path, cols, dialect)
    # read for their notes only: a column named like a line's type or status that the
    # config does not declare may say which lines are refunds or no sale at all
    kinds = kind_columns(data.path, [*cols, currency], dialect)
    # without `order`, a column named like an order id says whether lines are orders
    orders = [] if tx.order else order_columns(data.path, [*cols, currency, *kinds], dialect)
    log, misshapen = read_rows(
        data.path,
        list(dict.fromkeys(c for c in [*cols, currency, *kinds, *orders] if c)),
        id_column=tx.customer,
        missing_values=data.missing_values,
        text_columns=[
            c for c in (tx.order, tx.refund_column, tx.exclude_column, *kinds, *orders) if c
        ],
        dialect=dialect,
    )
    # the header again within the file (exports appended): no line at all, left out first
    header = header_rows(log, [c for c in cols if c])
    if header.any():
        log = log[~header].reset_index(drop=True)
    headers = int(header.sum())
    source = data.path.name
    ids = text_ids(log[tx.customer], source)
    if data.missing_values:  # a log's guest lines: "NULL" listed is no customer, as blank is
        ids = ids.mask(ids.str.strip().isin([v.strip() for v in data.missing_values]))
    when, bad_time, order = timestamps(log[tx.timestamp], tx.timestamp_format, source, day_first)
    # the amount, or quantity x unit price; text that is not a number leaves its row out
    parts = [parse_numbers(log[c], data.missing_values) for c in (tx.amount,) if c] or [
        parse_numbers(log[c], data.missing_values) for c in (tx.quantity, tx.unit_price) if c
    ]
    amount = parts[0].values if len(parts) == 1 else parts[0].values * parts[1].values
    column_notes: list[str] = []
    if tx.refund_column:  # a refund counts negative, whatever the sign written
        refunds = marked_lines(log[tx.refund_column], tx.refund_values)
        amount = amount.where(~refunds, -amount.abs())
        if not refunds.any():
            column_notes.append(unmarked_note(log[tx.refund_column], tx, "refund"))
    marked = np.zeros(len(log), dtype=bool)
    if tx.exclude_column:  # no sale at all: cancelled, failed
        marked = marked_lines(log[tx.exclude_column], tx.exclude_values).to_numpy()
        if not marked.any():
            column_notes.append(unmarked_note(log[tx.exclude_column], tx, "exclude"))
    bad_amount = np.logical_or.reduce([part.junk for part in parts])
    numbers = [part.values.to_numpy(dtype=np.float64) for part in parts]
    given = np.logical_and.reduce([~np.isnan(v) for v in numbers])
    within = np.logical_and.reduce([within_limit(v) for v in [*numbers, amount.to_numpy()]])
    amount_columns = [c for c in (tx.amount, tx.quantity, tx.unit_price) if c]
    no_id = missing_ids(ids)
    unreadable_time = bad_time & ~no_id
    no_time = when.isna().to_numpy() & ~no_id & ~unreadable_time
    not_a_number = bad_amount & ~no_id & ~no_time & ~unreadable_time
    beyond = given & ~within & ~no_id & ~no_time & ~unreadable_time & ~not_a_number
    no_amount = (
        amount.isna().to_numpy() & ~no_id & ~no_time & ~unreadable_time & ~not_a_number & ~beyond
    )
    keep = ~(no_id | no_time | unreadable_time | not_a_number | beyond | no_amount)
    excluded = keep & marked
    keep &= ~excluded
    if not_a_number.any():  # '$12.50', '1,234': every such line would be left out
        for column, part in zip(amount_columns, parts, strict=True):
            written = log[column][part.junk & not_a_number]
            # the numbers written for people, counted apart from junk ('abc': a line left
            # out and counted, as any unreadable one), which a tester found in the count
            people = written[for_people(written)]
            hint = unit_hint(people.drop_duplicates().iloc[:50]) if len(people) else None
            if hint is not None:
                grouped = dot_grouped(log[column])  # 12.000 beside 1.234.567
                hint += dot_group_hint(log[column], grouped) if grouped.any() else ""
                # refunds written so (8.76-, (8.76)) left out would over-count spend instead
                text = people.astype(str).str.strip()
                credits = bool((text.str.endswith("-") | text.str.startswith("(")).all())
                effect = "over-count" if credits else "under-count"
                raise DataError(
                    f"{source}: column {column!r} holds numbers written for people in "
                    f"{len(people):,} of {len(log):,} rows, e.g. {people.iloc[0]!r}; {hint} "
                    f"(leaving those lines out would {effect} their customers' spend)"
                )
    # a line repeated exactly (every field, not only those read): counted each time, as the
    # same item bought twice would be, or once with drop_duplicates (an export's glitch)
    repeated = repeated_lines(data.path, misshapen, len(header), dialect)[~header]
    duplicate = repeated & keep if data.drop_duplicates else np.zeros(len(log), dtype=bool)
    keep &= ~duplicate
    # the bounds POST /v1/events holds an event's time to (app.events.derive)
    at = times_us(when)
    early = keep & (at < EARLIEST_US)
    ahead = keep & (at > int(time.time() * 1_000_000) + AHEAD_US)
    keep &= ~(early | ahead)
    net_beyond = np.zeros(len(log), dtype=bool)
    if keep.any():
        ref = tx.reference_date or (when[keep].max().date() + timedelta(days=1))
        net = pd.Series(np.where(keep & (when < pd.Timestamp(ref)).to_numpy(), amount, 0.0))
        totals = net.groupby(ids.to_numpy(dtype=object, na_value="")).transform("sum")
        net_beyond = keep & ~within_limit(totals.to_numpy())
        keep &= ~net_beyond
    junk_text = log[amount_columns]
    found = {
        "no customer id": no_id,
        "no readable time": no_time,
        TIME_NOT_READABLE: unreadable_time,
        "no amount": no_amount,
        EXCLUDED: excluded,
        DUPLICATE: duplicate,
        NOT_A_NUMBER: not_a_number,
        BEYOND_LIMIT: beyond,
        NET_BEYOND_LIMIT: net_beyond,
        "time before 1970-01-01": early,
        "time more than a day ahead of the clock": ahead,
    }
    reasons = {reason: int(rows.sum()) for reason, rows in found.items() if rows.any()}
    if headers:
        reasons[HEADER_REPEATED] = headers
    shows: dict[str, tuple[pd.Series | pd.DataFrame, Callable[[Any], bool]]] = {
        TIME_NOT_READABLE: (log[tx.timestamp], lambda _: True),
        EXCLUDED: (log[tx.exclude_column or tx.customer], lambda _: True),
        NOT_A_NUMBER: (junk_text, _junk),
        BEYOND_LIMIT: (junk_text, lambda v: not within_limit(_number(v))),
        NET_BEYOND_LIMIT: (ids, lambda _: True),
    }
    examples = {
        reason: _example(values, found[reason], test)
        for reason, (values, test) in shows.items()
        if reason in reasons
    }
    more, example = misshapen_reasons(source, misshapen)
    if not keep.any():
        why = dropped_summary(reasons | more, examples | example, counts=True)
        # every line with an id, a time and an amount was excluded: that is the news
        lead = "no sale left" if EXCLUDED in reasons else NO_TRANSACTION
        raise DataError(
            f"{source}: {lead}: every one of "
            f"the {len(log) + len(misshapen) + headers:,} rows was left out ({why}); the columns "
            "read are "
            f"{', '.join(repr(c) for c in cols if c)} ([data.transactions])"
        )
    events = pd.DataFrame(
        {"customer": ids[keep].to_numpy(), "when": when[keep].to_numpy(), "amount": amount[keep]}
    )
    if tx.order:
        # as written (``007`` is not ``7``, ``5001`` not ``5001.0``): an event's order id is
        # its text, and the same order must count once in the log and in the events
        events["order"] = order_ids(log[tx.order])[keep].to_numpy()
    repeats = int((repeated & keep).sum())
    notes: tuple[str, ...] = (repeated_note(repeats),) if repeats else ()
    notes += tuple(column_notes)
    if currency is not None and (note := currencies_note(log[currency][keep], currency)):
        notes += (note,)
    notes += undeclared_marks(log, tx, kinds, keep, amount.to_numpy())
    distinct: dict[str, DistinctWords] = {}  # a type column's values, folded once for both
    notes += free_marks(log, tx, kinds, keep, amount.to_numpy(), ids, distinct)
    notes += browsing_marks(log, tx, kinds, keep, amount.to_numpy(), ids, distinct)
    notes += excluded_customers(ids, excluded, keep, tx)
    notes += undeclared_orders(log, orders, keep & purchases(amount.to_numpy()))
    lines = ids[keep].value_counts()  # each id once, with its lines: the checks read few
    notes += placeholder_ids(lines, tx.customer)
    if tx.reference_date is not None:
        notes += offset_crossings(log[tx.timestamp], when, keep, tx.reference_date)
    notes += spaced_ids(lines.index, tx.customer) + zero_ids(lines.index, tx.customer)
    notes += short_log(events["when"], events["amount"].to_numpy(), ref)
    if tx.order:  # a purchase line without an order id is an order of its own: say how many
        lone = int((events["order"].isna().to_numpy() & purchases(amount[keep].to_numpy())).sum())
        if lone:
            notes += (
                f"{counted(lone, 'purchase line', verb='have')} no order id in column "
                f"{tx.order!r}: each counts "
                "as an order of its own (frequency, avg_order_value); fill the column where "
                "those lines belong to larger orders",
            )
    return (
        Events(events, ref, reasons | more, examples | example, notes, order),
        len(log) + len(misshapen) + headers,
    )


CURRENCY_NAMES = frozenset({"currency", "currency_code", "currencycode", "ccy", "curr"})


# words in the name of a column that may say what a line is (Stripe's ``type``, Olist's
# ``order_status``, Shopify's ``financial_status``, Square's ``Event Type``)
KIND_NAME_PARTS = frozenset(
    {"type", "status", "kind", "state", "event", "action", "refund", "refunded", "return"}
    | {"returned", "returns", "refunds", "cancelled", "canceled"}
)


def kind_columns(
    path: Path, read: Sequence[str | None], dialect: CsvFormat = PLAIN_CSV
) -> list[str]:
    """The log's columns named like a line's type or status that the config does not read:
    ``undeclared_marks`` looks in them for refunds and lines that are no sale."""
    return [
        c
        for c in columns_of(path, dialect)
        if c not in read and not KIND_NAME_PARTS.isdisjoint(name_words(c))
    ]


ORDER_WORDS = frozenset({"order", "invoice", "receipt", "basket", "transaction", "txn"})
NOT_ORDER_WORDS = frozenset({"date", "time", "status", "type", "line", "item", "amount"})


def order_columns(
    path: Path, read: Sequence[str | None], dialect: CsvFormat = PLAIN_CSV
) -> list[str]:
    """The log's columns named like an order id (``order_id``, ``InvoiceNo``, ``Invoice``)
    that the config does not read: ``undeclared_orders`` compares their orders with lines."""
    return [
        c
        for c in columns_of(path, dialect)
        if c not in read
        and not ORDER_WORDS.isdisjoint(words := name_words(c))
        and NOT_ORDER_WORDS.isdisjoint(words)
    ][:1]


def undeclared_orders(
    log: pd.DataFrame, orders: Sequence[str], bought: np.ndarray
) -> tuple[str, ...]:
    """The note on a log read without ``order`` whose column named like an order id groups
    its purchase lines into fewer orders: frequency counts lines, so a basket of four items
    was four orders, and avg_order_value a line's amount, without a word."""
    for column in orders:
        held = log[column][bought].astype("string").str.strip()
        held = held[held.notna() & (held != "")]
        distinct = int(held.nunique())
        if len(held) and distinct < len(held) * 0.95:
            return (
                f"frequency counts purchase lines ({len(held):,}), not orders: column "
                f"{column!r} groups them into {distinct:,}; if it is the order id, set "
                f"[data.transactions] order = {json.dumps(column)} (frequency and "
                "avg_order_value then count distinct orders)",
            )
    return ()


def name_words(name: str) -> set[str]:
    """The words of a column's name, any case: ``Event Type``, ``order_status`` and
    ``TransactionType`` hold ``type`` or ``status``; ``transaction_id`` holds no ``action``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return {word.casefold() for word in re.split(r"[^0-9A-Za-z]+", spaced) if word}


def undeclared_marks(
    log: pd.DataFrame,
    tx: TransactionsConfig,
    kinds: Sequence[str],
    keep: np.ndarray,
    amount: np.ndarray,
) -> tuple[str, ...]:
    """Notes on lines a column marks as refunds (``type = return``, amount written positive)
    or as no sale (``status = cancelled``) while the config names no such column: they were
    counted as purchases, the returns as recent orders and spend, without a word (a new
    user's shop export). Only lines that count: kept, and for refunds of positive amount (a
    negative one is a refund already)."""
    notes: list[str] = []
    bought = keep & (amount > 0)
    checks = [
        ("refund", tx.refund_column, tx.refund_values, tx.exclude_column, "refunds"),
        ("exclude", tx.exclude_column, tx.exclude_values, tx.refund_column, "no sale at all"),
    ]
    for option, declared, values, other, what in checks:
        if declared is not None:
            continue
        for column in [*kinds, *([other] if other else [])]:
            marked = marked_lines(log[column], values).to_numpy() & bought
            if not marked.any():
                continue
            said = log[column][marked].astype("string").str.strip().value_counts()
            shown = ", ".join(repr(v) for v in said.index[:3])
            # an order's status ("refunded") marks the sale itself, later refunded: counted
            # negative, it would take its amount off twice; such a sale is no sale at all
            status = option == "refund" and all(v.casefold().endswith("ed") for v in said.index)
            listed = json.dumps(sorted({v.casefold() for v in said.index}))
            sales = (
                f"; if they are sales later refunded, exclude_column = {json.dumps(column)} "
                f"with exclude_values = {listed}"
                if status
                else ""
            )
            notes.append(
                f"column {column!r} says {shown} on {counted(int(marked.sum()), 'line')} "
                f"of positive amount, counted as purchases: if those lines are {what}, set "
                f"[data.transactions] {option}_column = {json.dumps(column)}{sales}"
            )
            break
    return tuple(notes)


EVENT_TABLE = (
    "where they are customers to segment too (an app's users who never paid), count each "
    "one's events per customer into a table first (docs/training.md#an-event-log-of-activity-"
    "beside-purchases)"
)


def only_holding(ids: pd.Series, lines: np.ndarray, keep: np.ndarray) -> list[Any]:
    """The customers of ``lines`` who hold no other kept line (each once, as written, in
    the order of their first such line). By codes of one factorisation of the ids: pandas'
    ``isin`` of a few thousand holders in 3.5M lines' ids took 30 s of CPU (0.2 s so)."""
    rows = lines | keep
    codes, uniques = pd.factorize(ids[rows])  # a missing id: -1, no customer
    held = codes[lines[rows]]
    other = codes[(keep & ~lines)[rows]]
    elsewhere = np.bincount(other[other >= 0], minlength=len(uniques)) > 0
    held = held[held >= 0]
    first = pd.unique(held[~elsewhere[held]])
    found: list[Any] = np.asarray(uniques, dtype=object)[first].tolist()
    return found


EXCLUDED_SHARE = 0.05  # of the log's customers, left with no line, from which it is noted


def excluded_customers(
    ids: pd.Series, excluded: np.ndarray, keep: np.ndarray, tx: TransactionsConfig
) -> tuple[str, ...]:
    """The note on customers every line of whom ``exclude_column`` leaves out: they bought
    nothing, so they are in no segment and ``segments assign`` tags none of them (an app's
    event log, its ``app_open`` lines excluded as no sale, lost the 46% of its users who
    never paid, with only a count of lines to say so)."""
    if not excluded.any():
        return ()
    only = only_holding(ids, excluded, keep)
    every = int(ids[keep | excluded].nunique(dropna=False))
    if len(only) < EXCLUDED_SHARE * every:  # a few whose one order was cancelled: expected
        return ()
    return (
        f"{counted(len(only), 'customer')} ({len(only) / every:.0%} of the log's, e.g. "
        f"{echoed(str(only[0]))}) {'has' if len(only) == 1 else 'have'} only lines that "
        f"exclude_column {tx.exclude_column!r} leaves out: with no sale, they are in no segment "
        f"and `segments assign` tags none of them; {EVENT_TABLE}",
    )


DistinctWords = tuple[np.ndarray, pd.Series, np.ndarray]


def _distinct_words(
    log: pd.DataFrame, column: str, distinct: dict[str, DistinctWords] | None
) -> DistinctWords:
    """A log column's line codes (-1: missing), its distinct values trimmed and case-folded,
    and those as words ("" for a missing one); each distinct value folded once, not every
    line (0.3 s a column of a 1M-line log), and kept in ``distinct`` for the next note."""
    if distinct is not None and column in distinct:
        return distinct[column]
    codes, uniques = pd.factorize(log[column])
    folded = pd.Series(uniques, dtype=object).astype("string").str.strip().str.casefold()
    found = codes, folded, folded.fillna("").to_numpy(dtype=object)
    if distinct is not None:
        distinct[column] = found
    return found


def free_marks(
    log: pd.DataFrame,
    tx: TransactionsConfig,
    kinds: Sequence[str],
    keep: np.ndarray,
    amount: np.ndarray,
    ids: pd.Series | None = None,
    distinct: dict[str, DistinctWords] | None = None,
) -> tuple[str, ...]:
    """The note on lines of amount 0 that a column marks apart from the sales (a
    subscription's ``skip``, ``pause`` and ``resume``): a line of amount 0 is a purchase,
    so a box skipped every month read as bought every month (recency, frequency, tenure)
    without a word, where the config can leave such lines out (``exclude_column``). With
    the customers' ``ids``, it counts those who hold only such lines: excluded, they would
    be in no segment (an app's users who never paid)."""
    free = keep & (amount == 0) & ~np.signbit(amount)
    if not free.any():
        return ()
    sold = keep & (amount > 0)
    for column in dict.fromkeys(c for c in (*kinds, tx.exclude_column, tx.refund_column) if c):
        codes, _, words = _distinct_words(log, column, distinct)
        on_sale = set(words[np.bincount(codes[sold & (codes >= 0)], minlength=len(words)) > 0])
        # per value, whether only lines of amount 0 hold it; the last, False, a missing one's
        own = np.array([w != "" and w not in on_sale for w in words] + [False], dtype=bool)
        apart = free & own[codes]
        if not apart.any():
            continue
        said = pd.Series(words[codes[apart]]).value_counts()
        shown = ", ".join(repr(v) for v in said.index[:3])
        if tx.exclude_column not in (None, column):
            how = _one_exclude_column(tx)
        else:
            declared = list(tx.exclude_values) if tx.exclude_column == column else []
            values = [*declared, *sorted(v for v in said.index if v not in declared)]
            how = (
                f"set [data.transactions] exclude_column = {json.dumps(column)} with "
                f"exclude_values = {json.dumps(values)}"
            )
        how += _left_with_none(ids, apart, keep)
        return (
            f"column {column!r} says {shown} on {counted(int(apart.sum()), 'line')} of amount "
            "0 (values no line of positive amount holds), counted as purchases (each one an "
            "order for frequency, a last purchase for recency_days): if those lines are no "
            f"sale (a skipped or paused delivery), {how}",
        )
    return ()


# a line's type that says it is a sale (folded, spaces and dashes as "_")
SALE_WORDS = frozenset(
    {"purchase", "purchased", "sale", "sold", "buy", "bought", "paid", "order", "ordered",
     "order_completed", "order_placed", "completed_order", "checkout_completed", "transaction"}
)  # fmt: skip
# words of a line's type that say a customer browsed (a product viewed, put in a cart)
BROWSE_WORDS = frozenset(
    {"view", "viewed", "views", "cart", "wishlist", "click", "clicked", "search", "session",
     "open", "visit", "impression", "browse", "pageview"}
)  # fmt: skip


# words of a line's type that name a way an order is bought: "click & collect" (an order
# picked up in store) was read as a browsing click, and the note said to leave it out
SALE_PARTS = frozenset(
    {"order", "purchase", "sale", "collect", "pickup", "delivery", "paid", "bought", "sold"}
)


MAX_LISTED = 12  # a type column's values the browsing note writes as exclude_values


def _one_exclude_column(tx: TransactionsConfig) -> str:
    """What a note's lines should do where another column is the exclude_column already."""
    return f"leave them out of the file (exclude_column reads one column, {tx.exclude_column!r})"


def _left_with_none(ids: pd.Series | None, lines: np.ndarray, keep: np.ndarray) -> str:
    """A note's clause on the customers who hold only ``lines`` (of the kept ones): left
    out, they would be in no segment; empty without ``ids`` or where there are none."""
    if ids is None or not (only := only_holding(ids, lines, keep)):
        return ""
    every = int(ids[keep].nunique(dropna=False))
    return (
        f"; {counted(len(only), 'customer')} ({len(only) / every:.0%}) "
        f"{'holds' if len(only) == 1 else 'hold'} only such lines and would then be in "
        f"no segment: {EVENT_TABLE}"
    )


def _type_words(value: str) -> list[str]:
    return [w for w in re.split(r"[\s_&+/-]+", value) if w]


def _a_sale(value: str) -> bool:
    """Whether a line's type (folded) says a sale: a sale's word, or one that holds a word
    of an order's way of being bought (``click & collect``, ``home delivery``)."""
    return re.sub(r"[\s-]+", "_", value) in SALE_WORDS or not SALE_PARTS.isdisjoint(
        _type_words(value)
    )


def browsing_marks(
    log: pd.DataFrame, tx: TransactionsConfig, kinds: Sequence[str], keep: np.ndarray,
    amount: np.ndarray, ids: pd.Series | None = None,
    distinct: dict[str, DistinctWords] | None = None,
) -> tuple[str, ...]:  # fmt: skip
    """The note on lines of positive amount that a type column says are not sales, beside
    the lines it says are: a store's event log (REES46's ``event_type``: ``view``,
    ``cart``, ``purchase``) writes the product's price on every view, and read with
    ``amount = "price"`` each view counted as a purchase of that price, without a word."""
    sold = keep & (amount > 0)
    if not sold.any():
        return ()
    for column in dict.fromkeys(c for c in (*kinds, tx.exclude_column) if c):
        codes, folded, words = _distinct_words(log, column, distinct)
        lines = np.bincount(codes[sold & (codes >= 0)], minlength=len(words))
        said = {str(w): int(n) for w, n in zip(words, lines, strict=True) if n and w}
        sale = [w for w in said if _a_sale(w)]
        marked = {v.strip().casefold() for v in (*tx.refund_values, *tx.exclude_values)}
        others = sorted(
            (w for w in said if w not in sale and w not in marked), key=lambda w: -said[w]
        )
        browsed = any(BROWSE_WORDS & set(_type_words(w)) for w in others)
        if not sale or not browsed:  # (a status's 'shipped' beside 'ordered' is a sale's)
            continue
        count = sum(said[w] for w in others)
        # each clipped, a few named (a type naming its page: 200 values, a 23 KB note)
        shown = ", ".join(echoed(w) for w in others[:3]) + (
            f", ... ({len(others):,} values)" if len(others) > 3 else ""
        )
        if tx.exclude_column not in (None, column):
            how = _one_exclude_column(tx)
        else:
            declared = list(tx.exclude_values) if tx.exclude_column == column else []
            listed = [*declared, *sorted(others)]
            values = (
                f"exclude_values = {json.dumps(listed)}"
                if len(listed) <= MAX_LISTED and sum(map(len, listed)) <= 400
                else f"exclude_values listing its {len(others):,} values that are no sale "
                "(or leave those lines out of the file)"
            )
            how = f"set [data.transactions] exclude_column = {json.dumps(column)} with {values}"
        lines_of = folded.isin(others).fillna(False).to_numpy(dtype=bool)
        how += _left_with_none(ids, lines_of[codes] & (codes >= 0) & keep, keep)
        bought = ", ".join(echoed(w) for w in sale[:2])
        return (
            f"column {column!r} says {shown} on {counted(count, 'line')} of positive amount, "
            f"beside {bought} on {counted(sum(said[w] for w in sale), 'line')}: each such "
            "line counts as a purchase of its amount (an order for frequency, spend for "
            f"monetary, a last purchase for recency_days); if only {bought} lines are sales "
            f"(the others a product viewed or put in a cart at its price), {how}",
        )
    return ()


# ids that exports write for lines without a customer (a database's NULL, a till's guest 0)
PLACEHOLDER_IDS = frozenset(v.casefold() for v in CSV_NA_VALUES if v) | {
    "-",
    "0",
    "none",
    "unknown",
    "guest",
    "anonymous",
}


def arrow_text(ids: pd.Series | pd.Index) -> Any:
    """``ids`` as a pyarrow array of text: the very buffers of a pyarrow-backed column (the
    CSV reader's), else converted (0.17 s for a million Python strings)."""
    import pyarrow as pa

    values = ids.array
    if hasattr(values, "__arrow_array__"):
        arrow = pa.array(values)
    else:
        arrow = pa.array(ids.to_numpy(dtype=object), from_pandas=True)
    if not (pa.types.is_string(arrow.type) or pa.types.is_large_string(arrow.type)):
        arrow = arrow.cast(pa.large_string())  # (a typed column: its numbers as text)
    return arrow


def spaced_ids(ids: pd.Series | pd.Index, column: str) -> tuple[str, ...]:
    """The note on ids written both with and without surrounding spaces (``'00105   '``, a
    database's padded CHAR column, beside ``'00105'``, two exports appended), or e-mail
    addresses in two cases (``Ann@Shop.com``, ``ann@shop.com``: a shop export keys its
    customers by the address typed at each order): ids are text as written, so each such
    customer was two, without a word (a log's 376 customers were 579)."""
    import pyarrow.compute as pc

    # pyarrow's trim: 0.01 s at a million ids, where pandas' str.strip took 0.35 s
    arrow = arrow_text(ids)
    spaced = pc.any(pc.not_equal(pc.utf8_trim_whitespace(arrow), arrow)).as_py()
    emails = pc.any(pc.match_substring(arrow, "@")).as_py()
    if not spaced and not emails:
        return ()
    text = pc.unique(arrow.drop_null())
    key = pc.utf8_trim_whitespace(text)
    if emails:
        key = pc.utf8_lower(key)
    shared = _shared_keys(key)
    if len(shared) == 0:
        return ()
    spellings = sorted(text.filter(pc.equal(key, shared[0])).to_pylist())[:2]
    group = pc.is_in(key, value_set=shared)
    trimmed = pc.utf8_trim_whitespace(text)
    by_space = pc.any(pc.and_(group, pc.not_equal(trimmed, text))).as_py()
    lowered = pc.utf8_lower(trimmed)
    by_case = pc.any(pc.and_(group, pc.not_equal(lowered, trimmed))).as_py()
    how = " or ".join(
        [*(["with and without surrounding spaces"] if by_space else [])]
        + (["in upper and lower case"] if by_case else [])
    )
    fix = ".str.strip()" + (".str.lower()" if by_case else "")
    return (
        f"{counted(len(shared), 'id')} of column {column!r} {'is' if len(shared) == 1 else 'are'} "
        f"written both {how} (e.g. {' and '.join(map(echoed, spellings))}): ids are text as "
        "written, so each is two customers; write each id one way in the file "
        f"(frame[{column!r}] = frame[{column!r}]{fix}, read with dtype=str)",
    )


def _shared_keys(key: Any) -> Any:
    """The keys (one per distinct id) that two or more distinct ids share, in order: the
    first is the note's example."""
    import pyarrow.compute as pc

    counts = pc.value_counts(key)
    shared = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
    return pc.take(shared, pc.sort_indices(shared))


def zero_ids(ids: pd.Series | pd.Index, column: str) -> tuple[str, ...]:
    """The note on numeric ids written both with and without their leading zeros or a
    trailing ``.0`` (``'00105'``, ``'105'``, ``'105.0'``: an export that went through a
    spreadsheet, or through pandas with a blank id, appended to one that did not): ids are
    text as written, so each such customer was two, without a word."""
    import pyarrow.compute as pc

    arrow = arrow_text(ids)
    zeros = pc.any(pc.starts_with(arrow, "0")).as_py()
    if not zeros and not pc.any(pc.ends_with(arrow, ".0")).as_py():
        return ()  # (6 ms at a million ids; the rest only where a spelling may differ)
    lengths = pc.min_max(pc.utf8_length(arrow))
    if lengths["min"] == lengths["max"] and not pc.any(pc.ends_with(arrow, ".0")).as_py():
        return ()  # ids of one width (00001 to 99999): none is another's spelling
    # in pyarrow throughout: pandas' regexes took 1.7 s over a million zero-padded ids
    text = pc.unique(arrow.drop_null())
    digits = text.filter(pc.match_substring_regex(text, r"^\s*\d+(\.0+)?\s*$"))
    trimmed = pc.replace_substring_regex(pc.utf8_trim_whitespace(digits), r"\.0+$", "")
    number = pc.utf8_ltrim(trimmed, characters="0")
    shared = _shared_keys(number)
    if len(shared) == 0:
        return ()
    first = sorted(digits.filter(pc.equal(number, shared[0])).to_pylist())[:3]
    shown = " and ".join(map(echoed, first))
    return (
        f"{counted(len(shared), 'id')} of column {column!r} {'is' if len(shared) == 1 else 'are'} "
        f"written both with and without leading zeros or a trailing .0 (e.g. {shown}): ids "
        "are text as written, so each is two customers; write each id one way in the file "
        "(a spreadsheet drops leading zeros unless the column is imported as text)",
    )


# a number as a spreadsheet shows one too long for its cell: 4.51182E+11 (Excel's General
# format keeps 6 significant digits of a 12-digit account number, and saves them so in CSV)
SCIENTIFIC = r"^\s*\d\.\d+[eE]\+\d+\s*$"  # (a hex id, 1E5 or 3E10, has no point or +)


def scientific_ids(ids: pd.Series | pd.Index, column: str) -> tuple[str, ...]:
    """The note on ids written in scientific notation (``4.51182E+11``): a spreadsheet showed
    long account numbers so and saved them as shown, their last digits lost, so they match
    no other system's ids, and customers whose numbers differ only there share one id (the
    repeat error then said to keep each id's last row, which merged them without a word)."""
    import pyarrow.compute as pc

    arrow = arrow_text(ids)
    written = pc.match_substring_regex(arrow, SCIENTIFIC)
    many = pc.sum(written).as_py() or 0
    if not many:
        return ()
    example = arrow.filter(written)[0].as_py()
    return (
        f"{counted(many, 'id')} of column {column!r} {'is' if many == 1 else 'are'} written in "
        f"scientific notation (e.g. {echoed(example)}), as a spreadsheet shows a long number: "
        "the digits it did not show are lost, so such ids match no other system's, and "
        "customers whose ids differ only in those digits are one; save the file with the id "
        "column formatted as text (or export it from the source system again)",
    )


_OFFSET = r"([+-])(\d\d):?(\d\d)$"  # a time's offset as written (+01:00, -0500)


def offset_crossings(
    written: pd.Series, when: pd.Series, keep: np.ndarray, reference: date
) -> tuple[str, ...]:
    """The note on lines whose time, written with an offset, is on one side of the reference
    date as written and on the other in UTC, which the features use: a New York shop's
    order of 30 September at 21:00 -04:00 is 1 October in UTC, left out of the features by a
    reference_date of 1 October without a word. Only lines within a day of it are read."""
    if pd.api.types.is_datetime64_any_dtype(written):
        return ()  # (a typed column: no offset as written)
    start = pd.Timestamp(reference)
    near = keep & ((when - start).abs() < pd.Timedelta(hours=15)).to_numpy(dtype=bool)
    if not near.any():
        return ()
    text = written[near].astype("string").str.strip()
    parts = text.str.extract(_OFFSET)
    minutes = pd.to_numeric(parts[1]) * 60 + pd.to_numeric(parts[2])
    offset = pd.to_timedelta(minutes.where(parts[0] != "-", -minutes), unit="min")
    utc = when[near]
    crossed = (((utc < start) != (utc + offset < start)) & offset.notna()).to_numpy(dtype=bool)
    if not crossed.any():
        return ()
    out = int((crossed & (utc >= start).to_numpy()).sum())
    into = int(crossed.sum()) - out
    example, at = text[crossed].iloc[0], utc[crossed].iloc[0]
    verb = {1: "is"}
    sides = [
        f"{counted(n, 'line')} written {when_written} {verb.get(n, 'are')} {what}"
        for n, when_written, what in (
            (out, "before it", "left out of the features"),
            (into, "on or after it", "in the features"),
        )
        if n
    ]
    return (
        f"{counted(int(crossed.sum()), 'line')} written with an offset "
        f"{'is' if crossed.sum() == 1 else 'are'} on the other side of reference_date "
        f"{reference.isoformat()} in UTC (e.g. {example!r} is {at:%Y-%m-%d %H:%M} UTC): times "
        f"are read in UTC and the reference date starts at 00:00 UTC, so {' and '.join(sides)}; "
        "where that matters, write the times in UTC or move the reference date",
    )


def placeholder_ids(lines: pd.Series, column: str) -> tuple[str, ...]:
    """The note on a log's lines whose customer id is a placeholder (``NULL``, ``0``,
    ``guest``; ``lines``: each id's count of lines): ids are text as written, so they are
    one customer of every anonymous line, the most frequent of the log, without a word (a
    new user's export wrote ``NULL``)."""
    held = lines[lines.index.str.strip().str.casefold().isin(PLACEHOLDER_IDS)]
    if held.empty:
        return ()
    shown = ", ".join(repr(v) for v in held.index[:3])
    listed = ", ".join(json.dumps(v) for v in held.index[:3])
    return (
        f"column {column!r} holds the id {shown} on {counted(int(held.sum()), 'line')}, "
        f"read as {'a customer' if len(held) == 1 else 'customers'} (ids are text as written): "
        f"if it marks lines without a customer, set [data] missing_values = [{listed}] to "
        "leave them out, counted as no customer id",
    )


def marked_lines(values: pd.Series, wanted: Sequence[str]) -> pd.Series:
    """Where ``values`` holds one of ``wanted`` (trimmed, any case)."""
    text = values.astype("string").str.strip().str.casefold()
    return text.isin({v.strip().casefold() for v in wanted}).fillna(False).astype(bool)


def unmarked_note(values: pd.Series, tx: TransactionsConfig, option: str) -> str:
    """The note when no line holds one of ``{option}_values``: a misspelt value would count
    every refund as a purchase, or leave in every cancelled line."""
    column, wanted = getattr(tx, f"{option}_column"), getattr(tx, f"{option}_values")
    held = ", ".join(repr(v) for v in values.astype("string").str.strip().value_counts().index[:5])
    outcome = "counts as a purchase" if option == "refund" else "is kept"
    return (
        f"no line of column {column!r} says {option} ({option}_values: "
        f"{', '.join(map(repr, wanted))}; it holds {held or 'nothing'}): every line {outcome}"
    )


def currency_column(
    path: Path, read: Sequence[str | None], dialect: CsvFormat = PLAIN_CSV
) -> str | None:
    """A column of the log (or table) named like a currency (``Currency``, ``currency_code``)
    that the config does not read otherwise: its amounts may be in several currencies."""
    names = [c for c in columns_of(path, dialect) if c.strip().lower() in CURRENCY_NAMES]
    return next((c for c in names if c not in read), None)


def currencies_note(values: pd.Series, column: str, table: bool = False) -> str | None:
    """The note on a log whose used lines are in several currencies: every amount is added
    as written (monetary, avg_order_value), whatever its currency; in a ``table``, its money
    features are compared as written (an audit's hotel bookings priced in EUR, USD and
    GBP were segmented on their prices as one currency, without a word)."""
    text = values.astype("string").str.strip()
    shares = text[text.notna() & (text != "")].value_counts(normalize=True)
    if len(shares) < 2:
        return None
    shown = ", ".join(f"{code} {percent(share)}" for code, share in shares.iloc[:4].items())
    more = f" and {len(shares) - 4:,} more" if len(shares) > 4 else ""
    if table:
        return (
            f"column {column!r} holds {len(shares):,} currencies ({shown}{more}): a money "
            "feature (a price, a spend) is compared as written, whatever its currency (100 is "
            "100 in each); convert such amounts to one currency first, or keep one currency's "
            "customers"
        )
    return (
        f"column {column!r} holds {len(shares):,} currencies ({shown}{more}): amounts are "
        "added as written, whatever their currency (monetary, avg_order_value); convert them "
        "to one currency first (docs/training.md#a-transaction-log-one-row-per-order-line has "
        "the pandas lines), or keep one currency's lines"
    )


SHORT_LOG_DAYS = 28  # a log's purchases over fewer days than this: the summary notes it


def short_log(when: pd.Series, amount: np.ndarray, ref: date) -> tuple[str, ...]:
    """A note where a log's purchases before the reference date span fewer than
    ``SHORT_LOG_DAYS``: the UCI retail sample's five days named a segment whose customers had
    last ordered 4 days before "Lapsed", beside "Very recent" ones of 2 days, and a marketer
    reads such names as months."""
    before = purchases(amount) & (when < pd.Timestamp(ref)).to_numpy()
    if not before.any():
        return ()
    # the purchases' own days, first to last: counted to the reference date, a week read as
    # of two months later (recency 55 to 62 days, still days apart) was no short log
    first = pd.Timestamp(when[before].min()).date()
    last = pd.Timestamp(when[before].max()).date()
    days = (last - first).days + 1
    if days >= SHORT_LOG_DAYS:
        return ()
    return (
        f"the log's purchases before the reference date span {counted(days, 'day')} ({first} "
        f"to {last}): recency, frequency and tenure compare customers "
        "within them, so 'lapsed' and 'recent' (and a segment so named) differ by days, "
        "not months; a log of several months tells customers' habits apart",
    )


def repeated_note(lines: int) -> str:
    """The note on a log's lines repeated exactly, counted each time."""
    are = "line is an exact duplicate" if lines == 1 else "lines are exact duplicates"
    return (
        f"{lines:,} {are} of another line: counted each time; set `[data] drop_duplicates = "
        "true` to count them once"
    )


def repeated_lines(
    path: Path, misshapen: Sequence[Misshapen], rows: int, dialect: CsvFormat = PLAIN_CSV
) -> np.ndarray:
    """Where a row of the file (as ``read_rows`` reads it: without the misshapen rows) is an
    exact copy of an earlier one, every field compared as written (a CSV's as text)."""
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            frame = pd.read_parquet(path)
        else:
            skip = [m.record for m in misshapen] or None
            frame = pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                skiprows=skip,
                low_memory=False,
                sep=dialect.delimiter,
                **dialect.pandas,
            )
        try:
            repeated = frame.duplicated(keep="first").to_numpy(dtype=bool)
        except TypeError:  # a Parquet column of lists or maps: compared as their text
            repeated = frame.astype(str).duplicated(keep="first").to_numpy(dtype=bool)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise read_error(path, exc, dialect) from None
    if len(repeated) != rows:  # never: the same reader read the same rows
        raise DataError(f"{path.name}: read {len(repeated):,} rows, then {rows:,}")
    return repeated


def timestamps(
    values: pd.Series, fmt: str | None, source: str, day_first: bool | None = None
) -> tuple[pd.Series, np.ndarray, bool | None]:
    """The column as timestamps, and where a non-blank cell is not one (those are NaT).

    Times with an offset (``Z``, ``+02:00``) are converted to UTC and times without one are
    UTC, as the events path reads them; the result is naive UTC. Without a format, numeric
    dates with the year last (``15/03/2024 14:22``) are read in the order of day and month
    the whole column proves (``day_month_order``: an error where it proves none, or both);
    where the column proves no order, in ``day_first``'s when given (the order the model's
    training log proved: a day's log of the 1st to the 12th proves none); other times by the
    format pandas guesses from the first value; where that fails, the
    most common guess of the first hundred or ISO 8601 of any shape (naive and offset times
    mixed), whichever reads more. A column mostly unreadable is an error that says to set
    ``timestamp_format``: the format, not the rows, is then what is wrong. Also returns the
    day/month order read (None: no such dates, or a format given)."""
    given = fmt
    if fmt is None:
        _refuse_epoch_numbers(values, source)
    order = day_month_order(values, source, day_first) if fmt is None else None
    read_day_first = None if order is None else order.dayfirst
    if order is not None:
        fmt = order.format or "mixed"  # "mixed": each value parsed on its own, in that order
    dayfirst = order is not None and order.dayfirst and fmt == "mixed"
    with warnings.catch_warnings():  # pandas warns of its guessing: the counts say it better
        warnings.simplefilter("ignore", UserWarning)
        try:
            when = pd.to_datetime(values, format=fmt, utc=True, dayfirst=dayfirst)
            return when.dt.tz_localize(None), np.zeros(len(values), dtype=bool), read_day_first
        except (ValueError, TypeError, OverflowError):
            if fmt is None:
                known = values.dropna().astype(str)
                guesses = [guess_datetime_format(v) for v in known.head(100)]
                fmt = max(set(guesses) - {None}, key=guesses.count, default=None)
            when = pd.to_datetime(values, format=fmt, errors="coerce", utc=True, dayfirst=dayfirst)
            if given is None:  # ISO 8601 times of several shapes (naive and with an offset)
                iso = pd.to_datetime(values, format="ISO8601", errors="coerce", utc=True)
                if iso.isna().sum() < when.isna().sum():
                    when = iso
    when = when.dt.tz_localize(None)
    text = values.astype("string").str.strip()
    bad = (when.isna() & text.notna() & (text != "")).to_numpy(dtype=bool)
    if bad.sum() > (~when.isna()).sum():
        example = values[bad].iloc[0]
        raise DataError(
            f"{source}: column {values.name!r} is not a timestamp in {int(bad.sum()):,} of "
            f"{len(values):,} rows, e.g. {example!r}: "
            + (
                zone_name_hint(str(example))
                or 'set timestamp_format in [data.transactions] (e.g. "%d/%m/%Y %H:%M")'
            )
        )
    return when, bad, read_day_first


# a time zone written by its name at the end of a time (01:27:56 CET, 9:05 PM PST)
_ZONE_NAME = re.compile(r"\d\s*(?:[AP]M\s+)?([A-Z]{3,5})\s*$")


def zone_name_hint(example: str) -> str | None:
    """What to do with times that end in a zone's name (``CET``, ``PST``): no format reads
    them (strptime's ``%Z`` takes UTC and GMT only, and ``CST`` is three zones), and the
    error asked for a ``timestamp_format`` that could not help."""
    found = _ZONE_NAME.search(example)
    if found is None or found.group(1) in {"UTC", "GMT"}:
        return None
    return (
        f"times with a time zone written by its name ({found.group(1)}) are not read by any "
        "timestamp_format (a name may mean several zones): write each with its offset "
        f"instead ({example[: found.start(1)].rstrip()} +01:00 for CET, -08:00 for PST) or "
        "in UTC, in the file"
    )


PLAIN_NUMBER = r"^\s*\d+(\.\d+)?\s*$"
# a spreadsheet's serial dates: days since 1899-12-30 (Excel, LibreOffice), 1955 to 2119;
# a time of day is the fraction, which days since a prior order never write
SERIAL_DAYS = (20_000.0, 80_000.0)
SERIAL_ORIGIN = "1899-12-30"
EPOCH_UNITS = ((1e11, "s"), (1e14, "ms"), (1e17, "us"))  # below each bound, that unit
NO_EPOCH = 1e8  # seconds after 1970 that are March 1973: smaller numbers are no epoch times
UNIT_WORDS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}


def _refuse_epoch_numbers(values: pd.Series, source: str) -> None:
    """A timestamp column of plain numbers (Unix epoch times, ``1728802302``): pandas read
    them as nanoseconds since 1970, and an audit's order log trained with every customer's
    last order 19,967 days ago. Refused, with the line that writes them as times (the unit
    guessed from their size). Dates written ``20240315`` (eight digits) are read as dates.
    Numbers below 1e8 (a log of order numbers and days since the prior order) are no
    epoch times: refused as no times, pointing to the customer table such a log makes."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return
    # (a column of numbers, as a file's typed reader or Parquet gives, by its text too)
    text = values.dropna().astype(str).str.strip()
    text = text[text != ""]
    if text.empty or not text.str.match(PLAIN_NUMBER).all():
        return
    if text.str.fullmatch(r"\d{8}").all():  # 20240315: a date, which pandas reads so
        return
    numbers = pd.to_numeric(text, errors="coerce").dropna()
    example = str(text.iloc[0])
    size = float(numbers.abs().median())
    name = str(values.name)
    low, high = float(numbers.min()), float(numbers.max())
    if (
        SERIAL_DAYS[0] <= low
        and high <= SERIAL_DAYS[1]
        and text.str.contains(".", regex=False).any()
    ):
        # a spreadsheet's serial dates (40544.0194 is 2011-01-01 00:27): they were told to
        # be order numbers or days since the prior order, and to make a customer table
        first = pd.Timestamp(SERIAL_ORIGIN) + pd.Timedelta(days=float(numbers.iloc[0]))
        raise DataError(
            f"{source}: column {name!r} holds numbers, not times (e.g. {example!r}); if they "
            f"are a spreadsheet's serial dates (days since {SERIAL_ORIGIN}: {example} is "
            f"{first:%Y-%m-%d %H:%M}), write them as times in the file first, e.g. "
            f"log[{name!r}] = pandas.to_datetime(log[{name!r}].astype(float), unit='D', "
            f"origin={SERIAL_ORIGIN!r}), or format the column as a date before saving the CSV"
        )
    if size < NO_EPOCH:  # order numbers, days since the prior order: no times at all
        raise DataError(
            f"{source}: column {name!r} holds numbers, not times (e.g. {example!r}, up to "
            f"{float(numbers.max()):g}: too small for Unix epoch times); a log needs each "
            "line's date: one with order numbers or days since the prior order instead is "
            "made a customer table first (docs/training.md#an-order-log-without-dates)"
        )
    unit = next((u for bound, u in EPOCH_UNITS if size < bound), "ns")
    raise DataError(
        f"{source}: column {name!r} holds numbers, not times (e.g. {example!r}); if they are "
        f"Unix epoch times (in {UNIT_WORDS[unit]}, by their size), write them as times in the "
        "file first, "
        f"e.g. log[{name!r}] = pandas.to_datetime(log[{name!r}], unit={unit!r}, utc=True)"
    )


# A date written day and month as two numbers before the year (15/03/2024, 3.15.24,
# 15-03-2024 14:22): which is the day cannot be read off one value
DAY_MONTH = r"^\s*(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?!\d)"


class DayMonth(NamedTuple):
    """How a column of numeric day/month dates is read: ``dayfirst``, and the format of its
    values (None where pandas cannot guess one: each value is then parsed on its own)."""

    dayfirst: bool
    format: str | None


def day_month_order(
    values: pd.Series, source: str, fallback: bool | None = None
) -> DayMonth | None:
    """The order of day and month in a column of numeric dates with the year last, decided
    from the whole column: a first field above 12 (where no second field is) proves day
    first, a second field above 12 (where no first field is) month first. None where the
    column is not such dates (ISO 8601, year first, …: mostly other values).

    ``DataError`` naming the column, an example and both formats where neither order is
    proven (every field 12 or less: pandas would read month first; with ``fallback``, that
    order instead: the one the model's training log proved) or where both are (the column
    mixes the two orders): ``timestamp_format`` must then say which."""
    text = values.dropna().astype(str)
    if not any(re.match(DAY_MONTH, value) for value in text.head(100)):
        return None
    # each distinct date part once (a log has few days and many times): ten characters
    # hold the longest ("15/03/2024")
    counts = text.str.slice(0, 10).value_counts(sort=False)
    found = [(prefix, re.match(DAY_MONTH, prefix)) for prefix in counts.index]
    dates = [(prefix, int(m.group(1)), int(m.group(3))) for prefix, m in found if m]
    if int(counts.loc[[prefix for prefix, _, _ in dates]].sum()) * 2 <= len(text):
        return None
    first = np.array([f for _, f, _ in dates])
    second = np.array([s for _, _, s in dates])
    day_first = (first > 12) & (first <= 31) & (second <= 12)
    month_first = (second > 12) & (second <= 31) & (first <= 12)
    prefixes = [prefix for prefix, _, _ in dates]

    def shown(where: np.ndarray) -> str:  # the first value of the column with such a date
        chosen = {prefixes[i] for i in np.flatnonzero(where)}
        return str(text[text.str.slice(0, 10).isin(chosen)].iloc[0])

    name = values.name
    if day_first.any() and month_first.any():
        a, b = shown(day_first), shown(month_first)
        if not _readable(a):  # not a time either way: the format is what is wrong
            return None
        raise DataError(
            f"{source}: column {name!r} mixes day-first and month-first dates ({a!r} is day "
            f"first, {b!r} month first): set timestamp_format in [data.transactions] to the "
            f"one the log is written in, {_both_formats(a)}"
        )
    if day_first.any() or month_first.any():
        proof = shown(day_first if day_first.any() else month_first)
        return DayMonth(bool(day_first.any()), _format_of(proof, bool(day_first.any())))
    if bool((first == second).all()):  # day and month alike in every value: either order
        return DayMonth(True, _format_of(shown(first == second), True))
    example = shown(first != second)
    if not _readable(example):  # not a time either way: the format is what is wrong
        return None
    if fallback is not None:  # no proof here: the order the model's training log proved
        return DayMonth(fallback, _format_of(example, fallback))
    raise DataError(
        f"{source}: column {name!r} has dates such as {example!r} that read as day/month or "
        "month/day alike (no day above 12 proves the order, and pandas would take month "
        f"first): set timestamp_format in [data.transactions], {_both_formats(example)}"
    )


def _readable(value: str) -> bool:
    """Whether pandas reads ``value`` as a time, day first (either order, where it is
    ambiguous): a value it cannot read is left to the unreadable column's error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            pd.to_datetime(value, format=_format_of(value, True), dayfirst=True, utc=True)
        except (ValueError, TypeError, OverflowError):
            return False
    return True


def _format_of(value: str, dayfirst: bool) -> str | None:
    """``value``'s format (``%d/%m/%Y %H:%M %z``) with the day and month in that order, or
    None where pandas cannot guess it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        guess = guess_datetime_format(value, dayfirst=dayfirst)
    if guess is None:
        return None
    wanted, other = ("%d", "%m") if dayfirst else ("%m", "%d")
    for sep in "/.-":
        swapped = f"{other}{sep}{wanted}"
        if guess.startswith(swapped):
            guess = f"{wanted}{sep}{other}" + guess[len(swapped) :]
    return guess


def _both_formats(value: str) -> str:
    """``"%d/%m/%Y %H:%M %z" (day first) or "%m/%d/%Y %H:%M %z" (month first)``: the two
    formats ``value`` could be in (their date part where pandas guesses neither)."""
    match = re.match(DAY_MONTH, value)
    assert match is not None
    sep, year = match.group(2), "%Y" if len(match.group(4)) == 4 else "%y"
    day = _format_of(value, True) or f"%d{sep}%m{sep}{year}…"
    month = _format_of(value, False) or f"%m{sep}%d{sep}{year}…"
    return f'"{day}" (day first) or "{month}" (month first)'


def _number(value: Any) -> float:
    return float(parse_numbers(pd.Series([value], dtype=object)).values.iloc[0])


def _junk(value: Any) -> bool:
    return bool(parse_numbers(pd.Series([value], dtype=object)).junk[0])


def _example(
    values: pd.Series | pd.DataFrame, where: np.ndarray, shows: Callable[[Any], bool]
) -> str:
    """The first row's value where ``where`` is true (of several columns, the first that
    ``shows`` the reason: the one that is not a number, or out of bounds), as ``repr``."""
    first = values[where].iloc[0]
    if isinstance(first, pd.Series):  # columns of an amount: show the one at fault
        first = next((v for v in first if shows(v)), " x ".join(map(str, first)))
    return repr(first)


def _load_transactions(
    data: DataConfig, tx: TransactionsConfig, config: TrainConfig, day_first: bool | None
) -> TrainingData:
    events, source_rows = read_events(data, tx, day_first)
    ref = events.reference
    before = (events.all["when"] < pd.Timestamp(ref)).to_numpy()
    if not before.any():
        raise DataError(
            f"{data.path.name}: no transaction before the reference date {ref.isoformat()} "
            "(reference_date is exclusive: only events strictly before it are used)"
        )
    reasons = dict(events.dropped)
    later = int((~before).sum())
    if later:
        use = ", used for the future outcomes" if config.outcomes.future else ""
        reasons[f"on or after the reference date (exclusive{use})"] = later
    found = aggregate_customers(events.all.loc[before])
    frame, refunds = features_frame(found.bought, to_us(ref)), found.refunders
    if frame.empty:
        raise DataError(
            f"{data.path.name}: every customer's lines before the reference date "
            f"{ref.isoformat()} are refunds (negative amounts): no purchase to segment on; "
            "check the sign of the amount column"
        )
    examples = dict(events.examples)
    if len(refunds):
        # the same text in every manifest (dropped_reasons are summed across manifests): the
        # customers are counted in its example ("(1 customers: ...)" was in the reason)
        reasons[REFUNDS_ONLY] = int(refunds["lines"].sum())
        examples[REFUNDS_ONLY] = (
            f"{str(refunds.index[0])!r} ({counted(len(refunds), 'customer')} in all)"
        )
    loaded = TrainingData(
        frame,
        source_rows=source_rows,
        dropped_rows=sum(reasons.values()),
        reference_date=ref,
        dropped_reasons=reasons,
        dropped_examples=examples,
        notes=list(events.notes),
        day_first=events.day_first,
    )
    loaded.notes.extend(per_order_ids(frame, events.all.loc[~before], tx.customer))
    if config.outcomes.future is not None:
        from app.training.outcomes import add_future_outcomes

        add_future_outcomes(loaded, events.all.loc[~before], config.outcomes.future.days, data)
    return loaded


PER_ORDER_MIN = 100  # customers: fewer may all have bought once by chance


def per_order_ids(frame: pd.DataFrame, later: pd.DataFrame, column: str) -> tuple[str, ...]:
    """The note on a customer column that holds a new id with each order: Olist's orders
    table writes such a ``customer_id`` (its customers table maps it to the person's
    ``customer_unique_id``), and read as the customer every one bought exactly once, no one
    came back, and frequency, tenure and the future outcomes said nothing, while the
    summary advised dropping ``frequency`` as a constant (a new user's pass)."""
    if len(frame) < PER_ORDER_MIN or not bool((frame["frequency"] == 1).all()):
        return ()
    returning = later["customer"].astype(str)
    # a lookup of each distinct id in the customers' (unique) index: pandas' isin of 300,000
    # lines' ids in a million customers' took 5 s of CPU
    known = frame.index.astype(str)
    known = known if known.is_unique else known.drop_duplicates()  # (get_indexer needs it)
    if len(returning) and bool((known.get_indexer(pd.Index(returning.unique())) >= 0).any()):
        return ()  # some customer bought again after the reference date: ids are people's
    after = (
        f" (and none of them is among the {counted(returning.nunique(), 'customer')} who "
        "bought on or after the reference date)"
        if len(returning)
        else ""
    )
    return (
        f"every one of the {len(frame):,} customers bought exactly one order before the "
        f"reference date{after}: is {column!r} a new id with each order rather than a "
        "person's? (Olist's orders table writes its customer_id so; its customers table "
        "gives each one's customer_unique_id): read the column that names the person as "
        "[data.transactions] customer, or frequency, tenure and the future outcomes tell "
        "nothing",
    )


def derive_rfm(events: pd.DataFrame, reference: date) -> pd.DataFrame:
    """RFM features per customer as of ``reference`` (events: customer, when, amount[, order]).

    The one derivation (``app.events.derive``) that file tagging and ``POST /v1/events`` use
    too: recency_days: days since the last purchase (a line of amount zero or more);
    frequency: orders bought (distinct ``order`` values of purchases when given, a purchase
    without one counting as an order of its own; else purchases); monetary: net total amount
    (refunds count negative); avg_order_value: monetary / frequency; tenure_days: days since
    the first purchase. Customers with refunds only are not in it (``aggregate_customers``).
    """
    return features_frame(aggregate_log(events), to_us(reference))


REFUNDS_ONLY = (
    "refunds of customers with no purchase before the reference date (no purchase to derive "
    "recency from)"
)
PROBLEMS_SHOWN = 10  # columns whose problem one error lists; the rest are counted


def _check_features(config: TrainConfig, loaded: TrainingData) -> None:
    """Read every feature column, numeric ones as numbers; the problems of every column end
    in one error, one line each (a raw file with three columns written for people took three
    runs, one error each)."""
    source = config.data.path.name
    problems = []
    for feature in config.features:
        try:
            _check_feature(config, loaded, feature)
        except DataError as exc:
            problems.append(str(exc))
    if len(problems) == 1:
        raise DataError(problems[0])
    if problems:
        shown = problems[:PROBLEMS_SHOWN]
        more = len(problems) - len(shown)
        raise DataError(
            f"{source}: {len(problems)} feature columns cannot be used as they are:\n  "
            + "\n  ".join(shown)
            + (f"\n  and {more:,} more" if more else "")
        )


def _all_missing(source: str, name: str) -> str:
    """The error of a feature with no value in any row, and what to do (an audit's wide
    table had an export's empty column; the error named it but not the fix)."""
    return (
        f"{source}: feature {name!r} is missing in every row (each cell blank or a missing "
        "marker): it can tell no customers apart; remove its [[features]] entry, or fix the "
        "export that left it empty"
    )


def _check_feature(config: TrainConfig, loaded: TrainingData, feature: Feature) -> None:
    frame, source = loaded.frame, config.data.path.name
    # its own markers (pdays = -1), and [data]'s that are numbers (999.0 as 999): missing,
    # as blanks are
    markers = markers_of([feature.model_dump()], config.data.missing_values).get(feature.name)
    if markers is not None:
        frame[feature.name] = markers.mask(frame[feature.name], feature.type)
    column = frame[feature.name]
    if column.isna().all():
        raise DataError(_all_missing(source, feature.name))
    if feature.type == "numeric":
        values, junk = numeric_column(
            frame,
            feature.name,
            source,
            missing_values=config.data.missing_values,
            junk_is_missing=feature.errors == "missing",
        )
        if values.isna().all():
            raise DataError(_all_missing(source, feature.name))
        if not np.isfinite(values.dropna().to_numpy()).all():
            raise DataError(f"{source}: feature {feature.name!r} holds infinite values")
        frame[feature.name] = values
        if junk:
            loaded.text_as_missing[feature.name] = junk
    missing = int(frame[feature.name].isna().sum())
    if missing:
        loaded.missing_cells[feature.name] = missing
