"""What a customer id may be, in a module of its own: the request validation and the file
readers (``segments assign``, ``--record``) apply the same rule without the file readers
importing FastAPI through ``validation``."""

from __future__ import annotations

import re

from app.visible import is_blank

MAX_ID_LENGTH = 128  # the default of SEGMENTS_MAX_ID_LENGTH

# A customer id is text a person could read back: not blank, and none of the control
# characters (Unicode Cc), line or paragraph separators, or bidirectional overrides and
# isolates that would make a log line or a terminal show something else. Published as the
# id's pattern; ``str.isprintable`` accepts most ids first, at less cost. Nor may an id show
# nothing at all: zero-width spaces, fillers or a lone accent (``app.visible.is_blank``, the
# rule of segment names) read as an empty id in every list, page and file; a pattern cannot
# say so without listing Unicode's invisible characters.
_NOT_IN_ID = "\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069"
_BLANK = " \\u00a0\\u1680\\u2000-\\u200a\\u202f\\u205f\\u3000"
CUSTOMER_ID_PATTERN = f"^[^{_NOT_IN_ID}]*[^{_NOT_IN_ID}{_BLANK}][^{_NOT_IN_ID}]*$"
_CUSTOMER_ID = re.compile(CUSTOMER_ID_PATTERN[1:-1])


def readable_id(text: str) -> bool:
    """Whether ``text`` is an acceptable customer id (its length aside)."""
    if text.isprintable():
        return not text.isspace() and bool(text) and (text.isascii() or not is_blank(text))
    return is_unicode(text) and _CUSTOMER_ID.fullmatch(text) is not None and not is_blank(text)


BLANK_ID = "blank: no character of it shows (only spaces, zero-width or filler characters)"


def id_refusal(text: str) -> str:
    """Why ``readable_id`` refused ``text`` (non-empty, not all whitespace), as the API words
    it."""
    if not is_unicode(text):
        return "must be valid Unicode (no lone surrogates)"
    return BLANK_ID if is_blank(text) else "contains control characters"


def is_unicode(text: str) -> bool:
    """Whether ``text`` is valid Unicode, which a lone surrogate is not.

    JSON's escapes can spell one (``"\\ud800"``): orjson and msgspec refuse it, but the lenient
    parse of ``parse_json`` lets it through, and no answer could hold it."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def id_problem(text: str, max_id: int) -> str | None:
    """Why the service would refuse ``text`` as a customer id (as ``/v1/assign`` words it), or
    None; a file's id column is text without lone surrogates, so that check is left out."""
    if len(text) > max_id:
        return f"longer than {max_id} characters"
    if readable_id(text):
        return None
    if not text.strip():
        return "blank"
    if is_blank(text):
        return BLANK_ID
    return "contains control characters, line separators or bidirectional overrides"
