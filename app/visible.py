"""What a reader can see of a text: the rule that a segment name and a customer id must show
a character (a name or id of zero-width spaces, fillers or a lone accent reads as nothing),
and that names are compared by. No dependencies, so the file readers can use it too."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator


def is_blank(name: str) -> bool:
    """Nothing in ``name`` shows: whitespace, invisible characters, joiners, and combining
    marks with no letter to mark, as written and in NFKC form (which spells a spacing
    accent, ``´``, as a space and a combining mark: it shows as written)."""
    return not any(_shows(name)) and not any(_shows(unicodedata.normalize("NFKC", name)))


def _shows(text: str) -> Iterator[bool]:
    return (
        not c.isspace() and c not in JOINERS and not invisible(c) and not _combining(c)
        for c in text
    )


JOINERS = frozenset("\u200c\u200d")
# letters and marks that show nothing: Hangul fillers, the blank Braille pattern, the combining
# grapheme joiner, Khmer inherent vowels, Mongolian free variation selectors, and variation
# selectors (their emoji shows without them)
_BLANK_LOOKING = frozenset(
    "\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5\u180b\u180c\u180d\u180f"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
)


def invisible(char: str) -> bool:
    return char in _BLANK_LOOKING or unicodedata.category(char) == "Cf"


def _combining(char: str) -> bool:
    return unicodedata.category(char) in ("Mn", "Me")
