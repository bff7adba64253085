"""A name repeated in one JSON object (``{"customer_id": "a", "customer_id": "b"}``) is an
error naming it, not the last one silently.

The parsers (orjson, msgspec) keep the last value of a repeated name and say nothing, so a
client whose serializer wrote a field twice had a customer assigned from a value it may not
have meant. Proving that a body repeats no name is cheap where it matters: every name of an
object is followed by one colon, so a body whose colons are no more than the names its parse
holds (plus the colons inside its strings, none of them escaped, the body UTF-8) repeats none
(``proven_unique``: a count in C, then the customer id's colons, ``user:42``). Only a body that
this cannot prove is parsed again, with the standard library's scanner and a hook that keeps
each object's repeated names (``repeated``): a real repeat, or an escaped or dropped colon.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from app.problems import Problem, invalid, malformed_json, shown

REPEATED = "repeated name: a JSON object's names must be unique (the last one would be used)"
RECHECK_BYTES = 1024 * 1024
"""The largest batch body parsed again to name a repeat: the standard library's parser (with
the hook) takes up to twenty times orjson's time, 1.9 s of the event loop for 4 MiB of small
objects that repeat names, about half a second at this size."""


def proven_unique(body: bytes, names: int, texts: Callable[[], Iterable[str]]) -> bool:
    """Whether ``body``, whose parse holds ``names`` names (in all its objects), repeats
    none, as far as counting proves it; ``texts``: strings of the parse (names and values),
    counted only as far as needed to account for the colons not after a name (each string
    of the parse is written in the body, with its colons unless one is escaped). False:
    ``repeated`` decides."""
    extra = body.count(b":") - names  # inside strings, or after a repeated name
    if not extra:
        return True
    if b"\\u003a" in body or b"\\u003A" in body:  # (an escaped colon: none in the body;
        return False  # other escapes, json.dumps' \u00e9, neither make nor hide one)
    if b"\0" in body:  # UTF-16 or -32 (json.loads reads them; UTF-8 JSON holds no NUL):
        return False  # its bytes are no characters, its escaped colons none of the above
    for text in texts():
        extra -= text.count(":")
        if extra <= 0:
            return not extra
    return False


class Repeated(dict[str, Any]):
    """An object whose ``names`` were repeated (its values the last of each, as parsed)."""

    names: list[str]


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) == len(pairs):
        return found
    counts = Counter(k for k, _ in pairs)
    marked = Repeated(found)
    marked.names = [k for k, n in counts.items() if n > 1]
    return marked


# an integer of more digits than Python converts (``sys.get_int_max_str_digits``, 4,300) made
# the lenient parse fail, and a body of valid JSON was answered "not valid JSON" without the
# field; any integer of 2^63 or more is refused by the value checks as out of range, so such a
# number is read as this one (small enough to print) and the check names its field
_HUGE = 10**400


def lenient_int(text: str) -> int:
    """An integer literal of a JSON body, as ``json.loads`` reads it, but for one of more
    digits than Python converts: ``±10**400``, which the value checks refuse by name."""
    if len(text) < 1000:
        return int(text)
    return -_HUGE if text.startswith("-") else _HUGE


def reparse(body: bytes) -> Any:
    """``body`` parsed with each object that repeats a name a ``Repeated`` (None where the
    standard library's parser refuses it or gives up on its nesting: no name to report)."""
    try:
        return json.loads(body, object_pairs_hook=_object, parse_int=lenient_int)
    except (ValueError, RecursionError):
        return None


def repeated(value: Any, prefix: str = "") -> list[str]:
    """The paths (``features.spend``, ``items.3.customer_id``) of the names repeated in
    ``value`` (a ``reparse``) and what it holds."""
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(value, prefix)]
    while stack:
        node, at = stack.pop()
        p = f"{at}." if at else ""
        if isinstance(node, dict):
            if isinstance(node, Repeated):
                found += [f"{p}{shown(name)}" for name in node.names]
            stack += [(v, f"{p}{k}") for k, v in node.items()]
        elif isinstance(node, list):
            stack += [(v, f"{p}{i}") for i, v in enumerate(node)]
    return sorted(found)


def checked_items(
    body: bytes, doc: Any, field: str, names: int, texts: Callable[[], Iterable[str]]
) -> Any:
    """``doc`` (``body`` parsed, its ``field`` a list of items) where ``body`` is proven to
    repeat no name (``names``, ``texts``: as ``proven_unique`` takes them, a lower bound of
    the names will do); else with each item that repeats a name (in its ``reparse``) a
    ``Repeated`` naming the paths in it, refused in place: the other items stay as parsed.
    A name of the body itself repeated is a 422; a body the standard library cannot read
    (nested too deeply) a 400, and one of more than ``RECHECK_BYTES`` that the count cannot
    clear a 413 (a client sends its batches so counted far below it)."""
    if proven_unique(body, names, texts):
        return doc
    if len(body) > RECHECK_BYTES:
        raise Problem(
            413,
            "Batch too large",
            f"{field}: a name may be repeated in this body, and only a body of at most "
            f"{RECHECK_BYTES:,} bytes is read again to find it ({len(body):,} bytes): send "
            "fewer items per request",
            type_="/problems/batch-too-large",
            errors=[{"field": field, "message": f"at most {RECHECK_BYTES:,} bytes to recheck"}],
        )
    again = reparse(body)
    if again is None:  # (orjson reads 1,024 levels of nesting, the standard library some
        # 900 in a request: an item nested between them must not carry the others' repeats
        # past the check. No valid body comes near, and one nested deeper is a 400 already)
        raise malformed_json("nested too deeply for its names to be checked")
    if isinstance(again, Repeated):
        raise invalid([{"field": shown(name), "message": REPEATED} for name in again.names])
    items = again.get(field) if isinstance(again, dict) else None
    if not isinstance(items, list) or len(items) != len(doc[field]):
        return doc  # (not read alike: as parsed, the checks word it)
    for i, item in enumerate(items):
        paths = repeated(item) if isinstance(item, dict) else []
        if paths:
            doc[field][i] = marked = Repeated(item)
            marked.names = paths
    return doc
