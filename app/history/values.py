"""How a profile's feature values and schemas are written in Redis, and read back."""

from __future__ import annotations

import re

from app.history.records import FeatureValue

SCHEMA_SEPARATOR = "\x1f"
"""Between the feature names of a profile schema in the registry (no name contains it)."""
_INTEGER = re.compile(r"-?[0-9]+")


def encode_value(value: FeatureValue) -> str:
    """A feature value as stored: its type told by its text, so that it reads back exactly.

    Numbers are their ``repr`` (an integral float keeps its ``.0``; an int stays an int),
    strings are prefixed by ``'``, booleans are ``!1``/``!0``, and unknown (None) is empty.

    >>> [encode_value(v) for v in (1.5, 3, "Zürich", True, None)]
    ['1.5', '3', "'Zürich", '!1', '']
    """
    kind = type(value)
    if kind is float or kind is int:
        return repr(value)
    if kind is str:
        return f"'{value}"
    if value is None:
        return ""
    if kind is bool:
        return "!1" if value else "!0"
    raise TypeError(f"cannot store a feature value of type {kind.__name__}")


def decode_value(text: str) -> FeatureValue:
    """The value ``encode_value`` stored as ``text``.

    >>> [decode_value(t) for t in ("1.5", "3", "'Zürich", "!1", "")]
    [1.5, 3, 'Zürich', True, None]
    """
    if not text:
        return None
    first = text[0]
    if first == "'":
        return text[1:]
    if first == "!":
        return text == "!1"
    if _INTEGER.fullmatch(text):
        return int(text)
    return float(text)
