"""Counts in words: ``1 row``, ``2 rows``, ``1,234 rows hold``, ``1 row holds``."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None, verb: str = "") -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1, with thousands separators; a ``verb``
    (in its plural form, ``hold``) follows, agreeing."""
    one = n == 1
    words = f"{n:,} {noun if one else plural or noun + 's'}"
    return f"{words} {SINGULAR.get(verb, verb + 's') if one else verb}" if verb else words


SINGULAR = {"have": "has", "are": "is", "were": "was"}
