"""Reading cell values: numbers that may be blank or junk, and yes/no outcomes.

A blank or whitespace-only cell (``' '``) is a missing value, as an empty one is, and so is
any marker listed in ``[data] missing_values`` or pandas' (``' NA '``: trimmed). Other text
in a numeric column is an error that says how many rows hold it and which option turns it
into missing values (``errors = "missing"``), unless that option is set; a number written for
people (``$12.50``, ``1,234``, ``94%``, a debit as ``(12.50)``) is an error whatever the
option says. Training and ``segments assign`` read values through the same functions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import pandas as pd

from app.errors import DataError
from app.training.rules.values import BOOL_TEXT, CSV_NA_VALUES
from app.words import NO_WORDS, YES_WORDS, counted, echoed

# the spellings of a binary outcome, lower-cased and stripped, mixed freely in one column
# ("Yes" in one row, "Y" or "1" in the next): those counted as 1, and those counted as 0
BINARY_ONE = frozenset({"yes", "y", "true", "1", "1.0", *YES_WORDS})
BINARY_ZERO = frozenset({"no", "n", "false", "0", "0.0", *NO_WORDS})
NUMBER_SPELLINGS = {"1", "0", "1.0", "0.0"}  # a numeric reading takes these as they are
BOOL_NUMBERS = {text: float(flag) for text, flag in BOOL_TEXT.items()}  # TRUE: 1.0 ...
FIX_HINT = (
    'set errors = "missing" in its [[features]] entry to read such values as missing, or '
    "list the markers in [data] missing_values"
)

ALL_TEXT_HINT = (
    'no value in it is a number: if it names categories, declare it type = "categorical" in '
    "its [[features]] entry; if it holds dates, derive a number from them (days since, say) "
    "before training"
)

# where the pandas lines are that write a file's dates as days and its money as plain numbers
PREPARE_HINT = " (the pandas lines that do it: docs/training.md#preparing-a-file)"

# a number written with a currency sign or code, a percent sign or thousands separators
# (``$1,234.50``, ``94%``, ``EUR 12``): what an export writes for people, not for a reader
_SIGNS = "$€£¥₹"
# ISO 4217 codes an export writes beside amounts (any three capitals matched ERR404, SKU123)
_CODES = "USD|EUR|GBP|JPY|CHF|CAD|AUD|NZD|CNY|HKD|SGD|INR|SEK|NOK|DKK|PLN|CZK|HUF|BRL|MXN|ZAR"
# thousands grouped as other locales write them: by dots (1.234,56, 12.345.678; one group
# without a comma, 1.234, is a plain number to any reader), spaces (1 234,56, no-break ones
# too) or apostrophes (1'234.56)
_GROUPS = {".": "dots", " ": "spaces", "\u00a0": "spaces", "\u202f": "spaces", "'": "apostrophes"}
_GROUPED = (
    r"\d{1,3}(?:\.\d{3})+,\d+|\d{1,3}(?:\.\d{3}){2,}"
    r"|\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:[.,]\d+)?|\d{1,3}(?:'\d{3})+(?:\.\d+)?"
)
_COMMA_DECIMAL = r"\d+,(?:\d{1,2}|\d{4,})"  # 12,5 12,50 0,1234 (1,234: a thousand?)
_WITH_UNIT = re.compile(
    rf"^(?P<pre>[{_SIGNS}]|(?:{_CODES}) ?)?(?P<sign>[-+]?)(?P<pre2>[{_SIGNS}])?"
    rf"(?P<num>{_GROUPED}|\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|{_COMMA_DECIMAL}|\d+(?:\.\d+)?|\.\d+)"
    rf"(?P<post> ?%| ?[{_SIGNS}]| ?(?:{_CODES}))?$"
)
_LONGEST = 40  # longer text is not a number written for people (and is not matched at all)

_DECIMAL_COMMA = re.compile(rf"^[-+]?{_COMMA_DECIMAL}$")
# thousands grouped by dots beyond doubt: several groups (1.234.567) or a decimal comma after
# them (1.234,5); beside such a cell, one group of three digits (12.000) is twelve thousand,
# not twelve. Alone, 12.000 may be a price written to three decimals: read as written
_DOTS_BEYOND_DOUBT = re.compile(r"[-+]?\d{1,3}(?:\.\d{3})+,\d+|[-+]?\d{1,3}(?:\.\d{3}){2,}")
_ONE_DOT_GROUP = re.compile(r"[-+]?\d{1,3}\.\d{3}")


def dot_grouped(values: pd.Series) -> np.ndarray:
    """Where a cell is one group of three digits after a dot (``12.000``) in a column whose
    other cells group thousands by dots beyond doubt (``1.234.567``, ``1.234,5``): a number
    written for people (twelve thousand, which a reader takes as twelve), refused as the
    others are. A column typed as numbers by its reader holds no such doubt."""
    if dots_beyond_doubt(values) is None:
        return np.zeros(len(values), dtype=bool)
    text = values.astype("string").str.strip()
    return text.str.fullmatch(_ONE_DOT_GROUP).fillna(False).to_numpy(dtype=bool)


def dots_beyond_doubt(values: pd.Series) -> str | None:
    """The first cell of ``values`` that groups thousands by dots beyond doubt, if any."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return None
    text = values.astype("string").str.strip()
    found = text[text.str.fullmatch(_DOTS_BEYOND_DOUBT).fillna(False).astype(bool)]
    return None if found.empty else str(found.iloc[0])


def dot_group_hint(values: pd.Series, where: np.ndarray) -> str:
    """What ``dot_grouped`` found, to add to a refusal: how many such cells, and one."""
    cell = str(values[where].iloc[0]).strip()
    sign = "-" if cell.startswith("-") else ""
    plain = cell.lstrip("+-").replace(".", "")
    cells = counted(int(where.sum()), "cell", verb="are")
    return (
        f"; {cells} grouped so too, such as {cell!r} ({sign}{int(plain)}, which a reader "
        f"takes as {float(cell):g}): write those plainly as well"
    )


def unit_hint(values: Iterable[object]) -> str | None:
    """How to fix a column whose text is numbers written with a unit or separators (the
    first such value of ``values`` shown: ``'94%' is the number 94 written with '%'``), or
    None where no value is one. A reading would have to guess what a unit means (is ``94%``
    94 or 0.94? is ``1,234`` a thousand or one and a quarter?): the file says it plainly."""
    for value in values:
        hint = _written_for_people(str(value).strip())
        if hint is not None:
            return hint
    return None


def for_people(values: pd.Series) -> np.ndarray:
    """True where a value is a number written for people (``unit_hint`` has a hint for it:
    ``$174.23``, ``1,234.50``, ``11%``, ``12,5``): each distinct value checked once."""
    distinct = values.drop_duplicates()
    people = [_written_for_people(str(v).strip()) is not None for v in distinct]
    found = set(distinct[np.array(people, dtype=bool)]) if any(people) else set()
    return values.isin(found).to_numpy(dtype=bool)


def written_for_people(text: str) -> bool:
    """Whether one value (trimmed) is a number written for people (``$174.23``, ``11%``)."""
    return _written_for_people(text) is not None


def _written_for_people(text: str) -> str | None:
    """``unit_hint`` of one value (trimmed), or None where it is no number written so."""
    reading = _reading(text)
    return None if reading is None else reading[0]


def _reading(text: str) -> tuple[str, tuple[str, ...]] | None:
    """The hint for one value (trimmed) written for people, and the plain number(s) it
    stands for, unsigned (``1,234``: ``1234`` or ``1.234``); None where it is no such."""
    if len(text) > _LONGEST:
        return None
    if len(text) > 2 and text[0] == "(" and text[-1] == ")":  # (1,234.50): a debit
        inner = text[1:-1].strip()
        if inner[:1] not in "-+" and (signed := _negated(inner)) is not None:
            unsigned, negative = signed
            return (
                f"{text!r} is a negative number written in parentheses, as accounts "
                f"write it: write plain numbers with a minus sign ({negative}) in the "
                "file, without units, currency signs or separators, so each is read as "
                "meant",
                unsigned,
            )
    credit = len(text) > 1 and text[-1] == "-" and text[0] not in "-+"  # 8.76-
    if credit and (signed := _negated(text[:-1].strip())) is not None:
        unsigned, negative = signed
        return (
            f"{text!r} is a negative number written with its minus sign after it, as "
            f"some accounting and till exports write it: write plain numbers with a "
            f"leading minus sign ({negative}) in the file, so each is read as meant",
            unsigned,
        )
    if _DECIMAL_COMMA.match(text):
        plain = text.replace(",", ".")
        return (
            f"{text!r} is written with a decimal comma: write plain numbers with a decimal "
            f"point ({plain}) in the file{_declare(decimal=',')}",
            (plain.lstrip("+-"),),
        )
    found = _WITH_UNIT.match(text)
    if found is None:
        return None
    unit = (found["pre"] or found["pre2"] or found["post"] or "").strip()
    digits = found["num"]
    numbers: tuple[str, ...]
    declared = ""
    if re.fullmatch(_GROUPED, digits):  # 1.234,56: read so, it would be 1.234 or junk
        mark = next(c for c in digits if not c.isdigit())
        numbers = (digits.replace(mark, "").replace(",", "."),)
        separators = [f"{_GROUPS[mark]} as thousands separators"]
        separators += ["a decimal comma"] if "," in digits else []
        # (a dot grouping needs the comma as the decimal mark; no-break spaces no option reads)
        comma = "," in digits or mark == "."
        declared = _declare("," if comma else None, mark) if mark in ". '" else ""
    elif "," not in digits:
        if not unit:
            return None  # a plain number: not this column's problem
        numbers, separators = (digits,), []
    elif re.fullmatch(_COMMA_DECIMAL, digits):  # 21,3 %: read so, it would be junk
        numbers, separators = (digits.replace(",", "."),), ["a decimal comma"]
    elif "." not in digits:  # 1,234: a thousand, or one and a quarter?
        numbers = (digits.replace(",", ""), digits.replace(",", "."))
        separators = ["a comma (a thousands separator, or a decimal comma)"]
    else:
        numbers, separators = (digits.replace(",", ""),), ["thousands separators"]
    number = found["sign"] + " or ".join(numbers)
    parts = [*([repr(unit)] if unit else []), *separators]
    written = " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 2 else parts)
    return (
        f"{text!r} is a number written with {written}: write plain numbers ({number}) in "
        "the file, without units, currency signs or separators, so each is read as meant"
        + ("" if unit else declared),
        numbers,
    )


def _declare(decimal: str | None = None, thousands: str | None = None) -> str:
    """How a CSV file that writes every number so is declared in the training config."""
    options = [f"decimal = {json.dumps(decimal)}"] if decimal else []
    options += (
        [f"thousands = {json.dumps(thousands)}"] if thousands and thousands != "\u202f" else []
    )
    return (
        "; or, where the whole file writes its numbers so, declare it in the training "
        f"config's [data] table: {', '.join(options)}"
    )


# a cell's trimmed text that ``pd.to_numeric`` (``parse_numbers``) reads as a number: a plain
# decimal with an optional exponent (``39``, ``-1.5``, ``.5``, ``1e3``), or an infinity (a
# number too, which the bound refuses); ASCII digits only (Python's float() also takes
# ``1_000`` and other scripts' digits, which a file reader does not)
_PLAIN_NUMBER = re.compile(
    r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?inf(?:inity)?",
    re.IGNORECASE | re.ASCII,
)


def text_number(text: str) -> float | None:
    """One cell's text as ``parse_numbers`` reads it as a number (trimmed: ``' 39 '`` is 39,
    ``'1e400'`` infinite), or None where it reads none: a number written for people
    (``$1,200``, ``45%``), a word. Missing markers and booleans are the caller's to read
    first. The API reads a request's text for a numeric feature with it."""
    trimmed = text.strip()
    return float(trimmed) if _PLAIN_NUMBER.fullmatch(trimmed) else None


class ParsedNumbers(NamedTuple):
    values: pd.Series  # float64, NaN where missing
    junk: np.ndarray  # bool per row: text that is not a number (not a missing marker)


def parse_numbers(values: pd.Series, missing_values: Iterable[str] = ()) -> ParsedNumbers:
    """Numbers of a column; blank cells and ``missing_values`` are missing, junk is flagged.

    A boolean (``TRUE``, ``false`` … ``BOOL_TEXT``, or a reader's True) is 1 or 0 in any
    column: pandas reads a column of only those as booleans, so one blank cell or a ``1``
    beside them must not turn every such cell into text that is not a number. A cell is
    trimmed, as its number is (`` 39 ``): `` NA `` is pandas' marker (which the readers match
    untrimmed only) as `` ? `` is a listed one, missing as the API reads it."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return ParsedNumbers(values.astype("float64"), np.zeros(len(values), dtype=bool))
    text = values.astype("string").str.strip()
    markers = {m.strip() for m in (*CSV_NA_VALUES, *missing_values)}
    blank = text.isna() | (text == "") | text.isin(markers)
    numbers = pd.to_numeric(text.mask(blank), errors="coerce").astype("float64")
    unread = numbers.isna() & ~blank
    if unread.any():  # (a reader's True and False are the text "True" and "False" here)
        flags = text[unread].map(BOOL_NUMBERS).astype("float64")
        numbers[flags.index] = flags
        unread &= numbers.isna()
    return ParsedNumbers(numbers, unread.to_numpy(dtype=bool))


def numeric_column(
    frame: pd.DataFrame,
    column: str,
    source: str,
    *,
    missing_values: Iterable[str] = (),
    junk_is_missing: bool = False,
    hint: str = FIX_HINT,
) -> tuple[pd.Series, int]:
    """The column as float64 and how many junk values became missing (``junk_is_missing``);
    junk otherwise is a ``DataError`` naming the column, the row count and the fix. A number
    written for people (``$174.23``, ``1,234.50``, ``11%``: ``for_people``) is no junk to
    read as missing: it is that error whatever ``junk_is_missing`` says, and whatever its
    count (read as missing, the biggest accounts would become the median)."""
    parsed = parse_numbers(frame[column], missing_values)
    grouped = dot_grouped(frame[column])  # 12.000 beside 1.234.567: twelve thousand
    count = int(parsed.junk.sum())
    junk = frame[column][parsed.junk]
    if count and junk_is_missing:
        people = for_people(junk)
        if people.any():
            junk, count = junk[people], int(people.sum())  # the rows that are no junk
        elif not parsed.values.isna().all():
            return parsed.values, count
    if count:
        example = junk.iloc[0]
        units = unit_hint(junk.drop_duplicates().iloc[:50])
        if units is not None:  # '94%', '$1,234.50': no category, no date, no junk to drop
            hint = units + PREPARE_HINT
        elif parsed.values.isna().all() and hint == FIX_HINT:  # a feature with no number:
            hint = ALL_TEXT_HINT + PREPARE_HINT  # reading its text as missing is no fix
        if grouped.any():
            hint += dot_group_hint(frame[column], grouped)
        raise DataError(
            f"{source}: column {column!r} should be numeric but holds text, e.g. {echoed(example)} "
            f"({count:,} of {len(frame):,} rows); {hint}"
        )
    return parsed.values, count


def outcome_column(
    values: pd.Series,
    name: str,
    source: str,
    missing_values: Iterable[str] = (),
    positive: str | None = None,
) -> tuple[pd.Series, str | None]:
    """An outcome as numbers, and the value counted as 1 when it was written as words.

    ``Yes``/``No``, ``true``/``false``, ``Y``/``N`` and a few languages' yes and no
    (``YES_WORDS``: ``ja``/``nein``; any case, mixed in one column, with 1/0 too; a bool
    column) are a binary outcome; so is any two-valued column whose value counted
    as 1 the config names (``[outcomes] positive``); anything else must be numeric. The value
    counted as 1 is the commonest spelling of a yes in the column.
    """
    if positive is not None:
        return _declared_binary(values, name, source, missing_values, positive)
    if pd.api.types.is_bool_dtype(values):
        return values.astype("float64"), "True"
    if not pd.api.types.is_numeric_dtype(values):
        text = values.astype("string").str.strip()
        blank = text.isna() | (text == "") | text.isin({m.strip() for m in missing_values})
        lowered = text[~blank].str.lower()
        seen = set(lowered.unique())
        if seen and seen <= BINARY_ONE | BINARY_ZERO and not seen <= NUMBER_SPELLINGS:
            is_one = lowered.isin(BINARY_ONE)
            numbers = pd.Series(np.nan, index=values.index, dtype="float64")
            numbers[lowered.index] = is_one.astype("float64").to_numpy()
            spellings = text[~blank][is_one]
            positive = str(spellings.mode().iloc[0]) if len(spellings) else "yes"
            return numbers, positive
        _near_binary(lowered, text[~blank], name, source)
        _two_words(text[~blank], name, source)
        _classes(text[~blank], name, source, values[~blank])
    numbers, _ = numeric_column(
        values.to_frame(name),
        name,
        source,
        missing_values=missing_values,
        hint="an outcome is a number, or Yes/No, true/false, Y/N (ja/nein, oui/non, sí/no ...)",
    )
    return numbers, None


def _declared_binary(
    values: pd.Series, name: str, source: str, missing_values: Iterable[str], positive: str
) -> tuple[pd.Series, str]:
    """The outcome as 1 where it holds ``positive`` (compared as text, trimmed, any case) and
    0 where it holds the one other value; blank and ``missing_values`` cells stay missing.
    A numeric column compares numbers (``positive = "1"`` matches ``1.0``)."""
    raw = values  # as the file holds it, for the pandas line of an error
    number = pd.to_numeric(pd.Series([positive.strip()]), errors="coerce").iloc[0]
    if pd.api.types.is_numeric_dtype(values) and not pd.isna(number):
        # as objects: a nullable column (Int64, boolean) takes no text in its own dtype
        hit = (values == number).fillna(False).to_numpy(dtype=bool)
        values = values.astype(object).where(~hit, positive.strip())
    text = values.astype("string").str.strip()
    blank = text.isna() | (text == "") | text.isin({m.strip() for m in missing_values})
    given = text[~blank]
    lowered = given.str.lower()
    wanted = positive.strip().lower()
    counts = given.value_counts()
    shown = ", ".join(repr(v) for v in counts.index[:5])
    if not (lowered == wanted).any():
        raise DataError(
            f"{source}: outcome {name!r}: positive = {positive!r} is not a value of the column "
            f"(it holds {shown or 'nothing but blanks'})"
        )
    others = lowered[lowered != wanted].unique()
    if len(others) > 1:
        spelt = str(given[lowered == wanted].mode().iloc[0])
        raise DataError(
            f"{source}: outcome {name!r} holds {lowered.nunique():,} values ({shown}), not "
            f"two: list the ones that are neither in [data] missing_values"
            + (
                f"; or, for {positive.strip()!r} against all the others, "
                + _one_column(name, spelt, _read_as(raw, name, spelt, fold=True))
                if len(others) < MAX_CLASSES
                else ""
            )
        )
    numbers = pd.Series(np.nan, index=values.index, dtype="float64")
    numbers[given.index] = (lowered == wanted).astype("float64").to_numpy()
    return numbers, str(given[lowered == wanted].mode().iloc[0])


MAX_CLASSES = 20  # values of a text outcome read as classes, for the error's advice


def _one_column(name: str, value: str, compared: str | None = None) -> str:
    """The pandas line that writes a 0/1 column for one class of an outcome; ``compared``:
    what ``frame[name]`` is compared to where not the text ``value`` as written (a number,
    or the column trimmed and folded)."""
    column = f"{name}_{value}"
    comparison = compared or f"frame[{name!r}] == {value!r}"
    return (
        f"write a 0/1 column for it into the file first (frame[{column!r}] = "
        f"({comparison}).astype(int)) and declare {column!r} as the outcome"
    )


def _read_as(raw: pd.Series, name: str, value: str, fold: bool) -> str | None:
    """How the pandas line compares ``frame[name]`` to a class ``value`` (trimmed, and
    with ``fold`` in any case, as the outcome is read): a number column to the number (its
    text compared to '5' was all 0), a column whose class is spelt padded or in another case
    trimmed and folded too; None where ``== value`` finds every row of the class."""
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        number = float(value)
        return f"frame[{name!r}] == {int(number) if number.is_integer() else number!r}"
    written = raw.dropna().astype(str)
    keys = written.str.strip()
    keys = keys.str.casefold() if fold else keys
    key = value.strip().casefold() if fold else value.strip()
    if bool((written[keys == key] == value).all()):
        return None
    folded = ".str.casefold()" if fold else ""
    return f"frame[{name!r}].astype(str).str.strip(){folded} == {key!r}"


def _classes(text: pd.Series, name: str, source: str, raw: pd.Series) -> None:
    """An outcome of a few classes written as words (a customer-segmentation table's
    ``Segmentation`` of ``A`` to ``D``): it "should be numeric but holds text", which named
    no way on. An outcome is a number or two values: a class against the others is a 0/1
    column, one per class that matters."""
    counts = text.value_counts()
    values = counts.index.to_series().astype(str)
    numbers = pd.to_numeric(values, errors="coerce")
    if not 3 <= len(counts) <= MAX_CLASSES or numbers.notna().any():
        return
    # money written for people ('$1,200') or dates are their own errors' to explain
    if for_people(values).any() or values.str.contains(r"\d+[-/.]\d+[-/.]\d+").any():
        return
    shown = ", ".join(repr(v) for v in sorted(counts.index)[:8])
    first = str(counts.index[0])
    raise DataError(
        f"{source}: outcome {name!r} holds {len(counts)} classes ({shown}), where an outcome "
        "is a number or two values (Yes/No, true/false, Y/N ...): to judge the segments by one "
        f"class against the others, {_one_column(name, first, _read_as(raw, name, first, False))}"
        " (one such "
        "column per class that matters; a value that means unknown goes in [data] "
        "missing_values)"
    )


def _two_words(text: pd.Series, name: str, source: str) -> None:
    """An outcome written as two words that are not a yes/no pair (``Churned``/``Stayed``):
    say how to name the one counted as 1 (as a number it would "hold text" in every row)."""
    lowered = text.str.lower()
    counts = lowered.value_counts()
    numbers = pd.to_numeric(counts.index.to_series(), errors="coerce")
    if len(counts) != 2 or numbers.notna().any():
        return
    first, second = (str(text[lowered == word].mode().iloc[0]) for word in counts.index)
    key = json.dumps(name)
    raise DataError(
        f"{source}: outcome {name!r} holds two values, {first!r} and {second!r}: say which one "
        f"counts as 1, in an [outcomes] table beside its columns = [...]: positive = {{{key} = "
        f"{json.dumps(first)}}} or positive = {{{key} = {json.dumps(second)}}}"
    )


def _near_binary(lowered: pd.Series, text: pd.Series, name: str, source: str) -> None:
    """An outcome written mostly as one yes/no pair, with a few other values: say that, and
    how to leave those rows out (as a number it would "hold text" in nearly every row)."""
    if lowered.empty:
        return
    is_binary = lowered.isin(BINARY_ONE | BINARY_ZERO)
    words = lowered[is_binary & ~lowered.isin(NUMBER_SPELLINGS)]
    binary = int(is_binary.sum())
    if binary < len(lowered) / 2 or words.empty:
        return  # not a yes/no column: the numeric reading says what is wrong
    other = text[~is_binary.to_numpy()]
    shown = ", ".join(repr(v) for v in other.value_counts().index[:5])
    raise DataError(
        f"{source}: outcome {name!r} is a yes/no outcome in {binary:,} rows, but "
        f"{counted(len(other), 'row', verb='hold')} other values ({shown}); list them in [data] "
        "missing_values to leave those customers out of the outcome's test"
    )


def _negated(inner: str) -> tuple[tuple[str, ...], str] | None:
    """The number(s) ``inner`` (a sign written around it: ``(inner)``, ``inner-``) stands
    for, unsigned, and the same with a leading minus (``-1234 or -1.234``); None where it is
    no number."""
    found = _reading(inner)
    if found is None and not _PLAIN_NUMBER.fullmatch(inner):
        return None
    unsigned = (inner,) if found is None else found[1]
    return unsigned, " or ".join(f"-{n}" for n in unsigned)
