"""How a CSV file writes its fields and numbers: ``[data] delimiter``, ``decimal`` and
``thousands`` of the training config.

A spreadsheet saved as CSV where the comma is the decimal mark separates its fields with
``;`` and writes ``1.234,56``. Declared in the config, training reads such a file as written,
and every later reader of the model's files (``segments assign``, ``--record``, drift, diff)
reads them the same way: the options are kept in the manifest's config. Undeclared, such a
file is refused with the options (or the pandas line) that read it (``separator_hint``).
"""

from __future__ import annotations

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

    @classmethod
    def of(cls, data: Any) -> CsvFormat:
        """The format a ``[data]`` table declares: a ``DataConfig`` or its dict (a manifest's
        config); the default for a config written before these options."""
        given = dict(data) if isinstance(data, Mapping) else vars(data)
        return cls(given.get("delimiter", ","), given.get("decimal", "."), given.get("thousands"))

    @property
    def plain(self) -> bool:
        """Commas between fields, numbers with a decimal point and no grouping."""
        return self == PLAIN_CSV

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


def _textual(column: pd.Series) -> bool:
    return column.dtype == object or isinstance(column.dtype, pd.StringDtype)
