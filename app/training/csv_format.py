"""How a CSV file writes its text, fields and numbers: ``[data] encoding``, ``delimiter``,
``decimal`` and ``thousands`` of the training config.

A spreadsheet saved as CSV where the comma is the decimal mark separates its fields with
``;`` and writes ``1.234,56``. Declared in the config, training reads such a file as written,
and every later reader of the model's files (``segments assign``, ``--record``, drift, diff)
reads them the same way: the options are kept in the manifest's config. Undeclared, such a
file is refused with the options (or the pandas line) that read it (``separator_hint``).

A file saved on Windows (Excel's plain "CSV", the UCI Online Retail file) is cp1252 or
Latin-1 text, not UTF-8: ``encoding`` names its codec, and every reader decodes with it
(``codec``, ``pandas``, ``arrow``). UTF-8, the default, is read as before: pandas and pyarrow
get no encoding argument at all (their own UTF-8 readers, a byte-order mark skipped).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pandas as pd

# a cell pandas would read as a plain number (``parse_numbers``): with a declared format, one
# that the format does not read (``1.5`` where the comma is the decimal mark) is refused,
# never read as 1.5 (nor as 15, as pandas' own ``thousands`` reads it)
_PLAIN = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", re.ASCII)


@dataclass(frozen=True)
class CsvFormat:
    delimiter: str = ","
    decimal: str = "."
    thousands: str | None = None
    encoding: str = "utf-8"

    @classmethod
    def of(cls, data: Any) -> CsvFormat:
        """The format a ``[data]`` table declares: a ``DataConfig`` or its dict (a manifest's
        config); the default for a config written before these options (UTF-8 text)."""
        given = dict(data) if isinstance(data, Mapping) else vars(data)
        return cls(
            given.get("delimiter", ","),
            given.get("decimal", "."),
            given.get("thousands"),
            given.get("encoding") or "utf-8",
        )

    @property
    def plain(self) -> bool:
        """Commas between fields, numbers with a decimal point and no grouping (whatever the
        text's encoding: pyarrow's reader and pandas' typing read such a file)."""
        return (self.delimiter, self.decimal, self.thousands) == (",", ".", None)

    @cached_property
    def utf8(self) -> bool:
        """UTF-8 text, the default (``utf8``, ``UTF-8`` and ``utf-8-sig`` name it too)."""
        return codecs.lookup(self.encoding).name in ("utf-8", "utf-8-sig")

    @property
    def codec(self) -> str:
        """The codec a byte-level reader decodes with: UTF-8 with its byte-order mark
        skipped (Windows tools write one), or the declared one."""
        return "utf-8-sig" if self.utf8 else self.encoding

    @property
    def pandas(self) -> dict[str, Any]:
        """``read_csv``'s encoding argument: none for UTF-8 (pandas' own decoder, as before)."""
        return {} if self.utf8 else {"encoding": self.encoding}

    def arrow(self) -> Any:
        """pyarrow.csv's ``ReadOptions`` for this text: None (its UTF-8 default) for UTF-8;
        another encoding is decoded by Python's codec as pyarrow reads."""
        if self.utf8:
            return None
        from pyarrow import csv

        return csv.ReadOptions(encoding=self.encoding)

    @cached_property
    def _number(self) -> re.Pattern[str]:
        """A number as this format writes it: ``1.234,56``, ``-12,5``, ``12.000`` (12000 with
        ``thousands = "."``), ``1234``; groups of exactly three digits."""
        whole = r"[0-9]+"
        if self.thousands is not None:
            whole = rf"[0-9]{{1,3}}(?:{re.escape(self.thousands)}[0-9]{{3}})+|{whole}"
        point = re.escape(self.decimal)
        return re.compile(
            rf"[-+]?(?:(?:{whole})(?:{point}[0-9]*)?|{point}[0-9]+)(?:[eE][-+]?[0-9]+)?", re.ASCII
        )

    def numbers(self, frame: pd.DataFrame, skip: Collection[str] = ()) -> pd.DataFrame:
        """``frame`` read as text (``csv_options`` with this format) with its numbers read as
        this format writes them: a column of numbers (and missing cells) becomes numeric, as
        pandas types a plain file's; in a column holding other text too, each number becomes
        its plain text (``1234.56``), for ``parse_numbers`` to read as a plain file's. A cell
        pandas would read as another number (``1.5`` with ``decimal = ","``) says so instead,
        text that is not a number: refused as such (the columns ``skip``: as read)."""
        out = frame.copy()
        for name in frame.columns:
            if name in skip or not _textual(frame[name]):
                continue
            text = frame[name].astype("string").str.strip()
            given = text.notna()
            ours = given & text.str.fullmatch(self._number).fillna(False).astype(bool)
            if not ours.any():
                continue
            plain = text[ours]
            if self.thousands is not None:
                plain = plain.str.replace(self.thousands, "", regex=False)
            plain = plain.str.replace(self.decimal, ".", regex=False)
            if bool(ours[given].all()):
                out[name] = pd.to_numeric(plain.reindex(frame.index).astype(object))
                continue
            column = frame[name].astype(object).copy()
            column[ours] = plain.astype(object)
            other = given & ~ours & text.str.fullmatch(_PLAIN).fillna(False).astype(bool)
            other &= text.str.contains(r"[.,]", regex=True).fillna(False).astype(bool)
            column[other] = [f"{cell} ({self.unread})" for cell in text[other]]
            out[name] = column
        return out

    @property
    def unread(self) -> str:
        """Why a plain number of a file declared otherwise is no number."""
        declared = f"decimal = {json.dumps(self.decimal)}" + (
            f", thousands = {json.dumps(self.thousands)}" if self.thousands else ""
        )
        return f"not a number as [data] declares them: {declared}"


PLAIN_CSV = CsvFormat()


def encoding_problem(name: str) -> str | None:
    """Why ``name`` cannot be a CSV file's ``encoding``: no codec of that name, or one whose
    text is not ASCII bytes (UTF-16: every reader splits lines and fields on those bytes)."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        return (
            f"encoding = {json.dumps(name)} is no codec Python knows: a Windows or Excel "
            'export is "cp1252" (or "latin-1"), the default "utf-8"'
        )
    if info.name == "utf-8-sig":  # UTF-8, its byte-order mark skipped: the default's reading
        return None
    probe = ',;\t|."\r\n0aZ'
    try:
        ascii_safe = probe.encode(info.name) == probe.encode("ascii")
    except (UnicodeError, LookupError):
        ascii_safe = False
    if not ascii_safe or not getattr(info, "_is_text_encoding", True):
        return (
            f"encoding = {json.dumps(name)} is not read: a file's separators and digits "
            "would not be their ASCII bytes in it (UTF-16, or no text encoding at all); save "
            "the file as UTF-8 (Excel: 'CSV UTF-8')"
        )
    return None


def _textual(column: pd.Series) -> bool:
    return column.dtype == object or isinstance(column.dtype, pd.StringDtype)
