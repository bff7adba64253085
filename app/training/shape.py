"""CSV rows whose field count differs from the header's.

pandas reads such a row without a word: with ``usecols`` a long row's extra field shifts
nothing it reports, a short row is padded with missing values, and a file whose every row has
one field more than the header has its first column taken as the index (the ids shift into
the next column). A thousands separator left unquoted (``1,200``) is the usual cause. So
every CSV reader of customer rows asks ``misshapen_rows`` first and leaves those rows out,
with a reason that names the line and the counts (``line 3 has 16 fields, the header 15``).

The check costs one pass of pyarrow's multi-threaded reader (``scan_column``, which also
hands back one column: file tagging checks its ids for repeats in the same pass); only a
file that has such rows is read again, by the ``csv`` module, to find them exactly as
pandas counts its rows.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa

from app.errors import DataError
from app.training.csv_format import PLAIN_CSV, CsvFormat


class Misshapen(NamedTuple):
    record: int  # the row's index for pandas' ``skiprows`` (the header is 0; blank lines count)
    row: int  # 1-based among the data rows (blank lines are not rows), as rejects report rows
    line: int  # 1-based physical line the row starts on
    fields: int
    expected: int
    customer_id: str = ""  # the row's field at the id column's position, if it has one
    quoted: bool = False  # one field that is a whole row of the header's count, quoted

    @property
    def counts(self) -> str:
        """``line 3 has 16 fields, the header 15``."""
        fields = f"{self.fields} field{'' if self.fields == 1 else 's'}"
        return f"line {self.line} has {fields}, the header {self.expected}"

    @property
    def reason(self) -> str:
        """The counts, and for a row quoted whole, that it is."""
        return (
            f"{self.counts}: the whole row is quoted as one value" if self.quoted else self.counts
        )


def misshapen_rows(
    path: Path,
    *,
    any_found: bool | None = None,
    id_column: str | None = None,
    dialect: CsvFormat = PLAIN_CSV,
) -> list[Misshapen]:
    """The rows of the CSV file ``path`` with more or fewer fields than its header
    (``any_found``: what ``scan_column`` said, when the caller scanned already), each with
    its field at the position of the header's ``id_column``, when given and the row has one."""
    if any_found is None:
        any_found, _ = scan_column(path, dialect=dialect)
    if not any_found:
        return []
    found: list[Misshapen] = []
    with path.open(newline="", encoding=dialect.codec, errors="replace") as handle:
        reader = csv.reader(handle, delimiter=dialect.delimiter)
        header = next(reader, [])
        expected = len(header)
        at = header.index(id_column) if id_column in header else expected
        row = 0
        line = reader.line_num + 1
        try:
            for record, fields in enumerate(reader, start=1):
                if fields:  # an empty list is a blank line: pandas skips it, it is no row
                    row += 1
                    if len(fields) != expected:
                        cid = fields[at] if at < len(fields) else ""
                        quoted = (
                            len(fields) == 1
                            and expected > 1
                            and _is_row(fields[0], expected, dialect.delimiter)
                        )
                        found.append(
                            Misshapen(record, row, line, len(fields), expected, cid, quoted)
                        )
                line = reader.line_num + 1
        except csv.Error as exc:
            # (the _csv.Error traceback of training and file tagging alike)
            if "field larger" not in str(exc):
                raise DataError(f"{path.name}: line {line:,} is not CSV: {exc}") from None
            raise DataError(
                f"{path.name}: line {line:,} starts a field longer than "
                f"{csv.field_size_limit():,} characters: a quote opened there and never closed "
                "makes the rest of the file one value; check that line's quotes (a quote "
                'inside a value is written twice, "")'
            ) from None
    return found


def _is_row(text: str, expected: int, delimiter: str = ",") -> bool:
    """Does ``text`` read as one CSV row of ``expected`` fields (a row some tool quoted
    whole, its own quotes doubled: ``"536381,82567,""LOUNGE, METAL SIGN"",2,..."``)?"""
    if delimiter not in text or "\n" in text:
        return False
    return len(next(csv.reader([text], delimiter=delimiter), [])) == expected


def scan_column(
    path: Path, column: str | None = None, dialect: CsvFormat = PLAIN_CSV
) -> tuple[bool, pa.ChunkedArray | None]:
    """One pass of pyarrow's reader over the CSV file: whether a row has another number of
    fields than the header, and ``column`` (default: the first) as text, without such rows.
    ``(True, None)`` when pyarrow cannot read the file: the exact reader then decides."""
    from pyarrow import csv as arrow_csv

    seen = False

    def note(_row: object) -> str:
        nonlocal seen
        seen = True
        return "skip"

    try:
        if column is None:
            with path.open("rb") as handle:
                first = handle.readline().decode(dialect.codec, errors="replace")
            column = next(csv.reader([first], delimiter=dialect.delimiter), [""])[0]
        table = arrow_csv.read_csv(
            path,
            read_options=dialect.arrow(),
            parse_options=arrow_csv.ParseOptions(
                delimiter=dialect.delimiter, newlines_in_values=True, invalid_row_handler=note
            ),
            convert_options=arrow_csv.ConvertOptions(
                include_columns=[column],
                column_types={column: pa.string()},
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, OSError, ValueError, StopIteration):
        return True, None
    return seen, table.column(0)
