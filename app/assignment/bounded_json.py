"""Read one assignment item's JSON only as far as a valid item could go.

``parse_single`` uses it for a body that cannot be a valid item (more strings than any valid
item has): parsing such a body whole, as orjson would, costs memory in proportion to it (a
13 MB object of a million unknown feature names took 225 MB), and listing every name made a
57 MB answer. Here the item object is read key by key with the standard library's C
scanner, and reading stops after ``2 + MAX_ERRORS`` keys in the item and ``max_features``
in its ``features``: the work and the memory are bounded by those counts, not by the body.
Values are parsed as ``parse_json`` parses them (NaN and 1e400 included, for the checks to
name), and a body that is not JSON as far as it is read is a 400, as it is there; a name
repeated in an object is an error (``unique_names``), as it is there.
"""

from __future__ import annotations

import json
import re
from typing import Any

from app.assignment.unique_names import REPEATED
from app.problems import MAX_ERRORS, malformed_json, shown

_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]  # (C, undeclared in stubs)


def _skip(text: str, at: int) -> int:
    """The index of the first character at or after ``at`` that is not JSON whitespace."""
    return _SPACE.match(text, at).end()  # type: ignore[union-attr]  # (always matches)


class _Cut(Exception):
    """Reading stopped at the bound."""


def read_item(body: bytes, max_features: int) -> tuple[dict[str, Any], list[dict[str, str]]] | None:
    """The item object as far as it was read, and the error saying what was not read; None
    if the body is not an object (to be parsed as usual)."""
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise malformed_json(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    at = _skip(text, 0)
    if not text.startswith("{", at):
        return None
    cut: list[dict[str, str]] = []
    try:
        item, at = _object(text, at, 2 + MAX_ERRORS, "body", cut, max_features)
        if not cut and _skip(text, at) != len(text):
            raise ValueError(f"unexpected content after the object at char {at}")
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise malformed_json(exc) from None
    except RecursionError:  # (its own words are Python's: "maximum recursion depth ...")
        raise malformed_json("depth limit exceeded") from None
    return item, cut


def _object(
    text: str, at: int, limit: int, field: str, cut: list[dict[str, str]], features: int = 0
) -> tuple[dict[str, Any], int]:
    """The object at ``text[at]`` (a ``{``), at most ``limit`` keys of it; at more, an error
    in ``cut`` and the object so far (the end is then where reading stopped)."""
    found: dict[str, Any] = {}
    read = 0  # names read (a repeated name counts each time)
    at = _skip(text, at + 1)
    if text.startswith("}", at):
        return found, at + 1
    while True:
        if read >= limit:
            cut.append({"field": field, "message": f"more than {limit} names; not read further"})
            return found, at
        if not text.startswith('"', at):
            raise ValueError(f"expected a name in double quotes at char {at}")
        key, at = _scanstring(text, at + 1, True)
        read += 1
        if key in found:  # (the rest is read as far as the bound: the body is refused)
            where = shown(key) if field == "body" else f"{field}.{shown(key)}"
            cut.append({"field": where, "message": REPEATED})
        at = _skip(text, at)
        if not text.startswith(":", at):
            raise ValueError(f"expected ':' at char {at}")
        at = _skip(text, at + 1)
        if features and key == "features" and text.startswith("{", at):
            found[key], at = _object(text, at, features, "features", cut)
            if cut:
                return found, at
        else:
            found[key], at = _DECODER.raw_decode(text, at)
        at = _skip(text, at)
        if text.startswith("}", at):
            return found, at + 1
        if not text.startswith(",", at):
            raise ValueError(f"expected ',' or '}}' at char {at}")
        at = _skip(text, at + 1)
