"""How a profile's feature values and schemas are written in Redis, and read back.

A value is stored as its JSON text (``184``, ``1.02``, ``0.30000000000000004``, ``3.0``,
``"Zürich"``, ``true``, ``null``): numbers in their shortest exact form, so floats, ints,
strings, booleans and unknowns all read back as what was stored. The values are joined by
``VALUE_SEPARATOR`` into chunks of at most 64 bytes (a hash field each: few fields to write,
each small enough for Redis's compact encoding), and a record's chunks travel to Redis as
one argument, joined by ``CHUNK_SEPARATOR``; JSON text contains neither raw (a control
character inside a string is escaped). They are made with one ``orjson`` call per batch:
formatting floats one by one in Python cost more than the rest of a record's packing.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from app.columns import ColumnRows
from app.history.records import FeatureValue

SCHEMA_SEPARATOR = "\x1f"
"""Between the feature names of a profile schema in the registry (no name contains it)."""
VALUE_SEPARATOR = "\x1f"
"""Between the values of a profile chunk."""
CHUNK_SEPARATOR = "\x1e"
"""Between the chunks of one record's profile in the recording script's arguments."""
CHUNK_BYTES = 64
"""Most bytes per chunk: Redis keeps a hash compact while each value fits
``hash-max-listpack-value`` (64 by default)."""


def encode_value(value: FeatureValue) -> str:
    """A feature value as stored: its JSON text.

    >>> [encode_value(v) for v in (1.5, 3, 3.0, "Zürich", True, None)]
    ['1.5', '3', '3.0', '"Zürich"', 'true', 'null']
    """
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # an int beyond 64 bits: its repr is its JSON text
        if type(value) is int:
            return repr(value)
        raise


def decode_value(text: str) -> FeatureValue:
    """The value ``encode_value`` stored as ``text``.

    >>> [decode_value(t) for t in ("1.5", "3", "3.0", '"Zürich"', "true", "null")]
    [1.5, 3, 3.0, 'Zürich', True, None]
    """
    value: FeatureValue = orjson.loads(text)
    return value


def encode_profiles(
    profiles: Sequence[Mapping[str, FeatureValue]], names: tuple[str, ...]
) -> list[str]:
    """Each profile's values in ``names`` order, as one ``VALUE_SEPARATOR``-joined text."""
    n = len(names)
    get: Any = operator.itemgetter(*names)
    if isinstance(profiles, ColumnRows):
        rows = profiles.values(names)
    else:
        rows = [get(p) for p in profiles] if n > 1 else [(get(p),) for p in profiles]
    try:
        text = orjson.dumps(rows).decode()
    except orjson.JSONEncodeError:
        return [_joined(row) for row in rows]
    if not rows:
        return []
    body = text[2:-2]
    if body.count(",") == len(rows) * n - 1:  # no value holds a comma (numbers: the usual)
        joined = body.replace(",", VALUE_SEPARATOR).split(f"]{VALUE_SEPARATOR}[")
        if len(joined) == len(rows):  # (one replace and one split for the batch)
            return list(map(_chunked, joined))
    parts = body.split("],[")
    if len(parts) != len(rows):  # a string value holds "],[": take the rows one by one
        return [_joined(row) for row in rows]
    return [
        _chunked(part.replace(",", VALUE_SEPARATOR)) if part.count(",") == n - 1 else _joined(row)
        for part, row in zip(parts, rows, strict=True)
    ]


def _joined(row: Sequence[FeatureValue]) -> str:
    return _chunked(VALUE_SEPARATOR.join(map(encode_value, row)))


def _chunked(joined: str) -> str:
    """``joined`` values cut into chunks of at most ``CHUNK_BYTES`` (a longer value alone).

    >>> _chunked("1.5\x1f2") == "1.5\x1f2"
    True
    >>> [len(c) for c in _chunked("\x1f".join(["123456789"] * 10)).split(CHUNK_SEPARATOR)]
    [59, 39]
    """
    if len(joined) <= CHUNK_BYTES and (joined.isascii() or len(joined.encode()) <= CHUNK_BYTES):
        return joined
    if not joined.isascii():
        return _chunked_by_value(joined)
    # ASCII: a character is a byte, so a chunk ends at the last separator within its 64
    # bytes (the greedy cut of ``_chunked_by_value``, found by the string's own search)
    chunks: list[str] = []
    start, end = 0, len(joined)
    while end - start > CHUNK_BYTES:
        cut = joined.rfind(VALUE_SEPARATOR, start, start + CHUNK_BYTES + 1)
        if cut < 0:  # a value longer than a chunk: alone
            cut = joined.find(VALUE_SEPARATOR, start)
            if cut < 0:
                break
        chunks.append(joined[start:cut])
        start = cut + 1
    chunks.append(joined[start:])
    return CHUNK_SEPARATOR.join(chunks)


def _chunked_by_value(joined: str) -> str:
    """``_chunked`` value by value, counting each one's UTF-8 bytes."""
    chunks: list[str] = []
    current: list[str] = []
    size = -1
    for value in joined.split(VALUE_SEPARATOR):
        length = len(value.encode()) + 1
        if current and size + length > CHUNK_BYTES:
            chunks.append(VALUE_SEPARATOR.join(current))
            current, size = [], -1
        current.append(value)
        size += length
    chunks.append(VALUE_SEPARATOR.join(current))
    return CHUNK_SEPARATOR.join(chunks)


def split_chunks(chunks: Sequence[str]) -> list[str]:
    """The values texts of a stored profile's chunks, in order."""
    return VALUE_SEPARATOR.join(chunks).split(VALUE_SEPARATOR)
