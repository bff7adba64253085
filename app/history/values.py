"""How a profile's feature values and schemas are written in Redis, and read back.

A value is stored as its JSON text (``184``, ``1.02``, ``0.30000000000000004``, ``3.0``,
``"Zürich"``, ``true``, ``null``): numbers in their shortest exact form, so floats, ints,
strings, booleans and unknowns all read back as what was stored. A record's values travel
to Redis as one argument, joined by ``VALUE_SEPARATOR``, which JSON text never contains raw
(a control character inside a string is escaped), and they are made with one ``orjson``
call per batch: formatting floats one by one in Python cost more than the rest of a
record's packing.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from app.history.records import FeatureValue

SCHEMA_SEPARATOR = "\x1f"
"""Between the feature names of a profile schema in the registry (no name contains it)."""
VALUE_SEPARATOR = "\x1f"
"""Between the values of one record's profile in the recording script's arguments."""


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
    rows = [get(p) for p in profiles] if n > 1 else [(get(p),) for p in profiles]
    try:
        text = orjson.dumps(rows).decode()
    except orjson.JSONEncodeError:
        return [_joined(row) for row in rows]
    parts = text[2:-2].split("],[") if rows else []
    if len(parts) != len(rows):  # a string value holds "],[": take the rows one by one
        return [_joined(row) for row in rows]
    return [
        part.replace(",", VALUE_SEPARATOR) if part.count(",") == n - 1 else _joined(row)
        for part, row in zip(parts, rows, strict=True)
    ]


def _joined(row: Sequence[FeatureValue]) -> str:
    return VALUE_SEPARATOR.join(map(encode_value, row))
