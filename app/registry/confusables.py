"""Letters of other scripts that read as Latin ones: the part of Unicode's confusables
skeleton (UTS #39) that segment names need.

A segment renamed ``VІPs`` with a Cyrillic ``І`` shows exactly as another's ``VIPs``; NFKC
and case folding (``overrides.name_key``) keep them apart. No confusables library is a
dependency, and the full table (6,000 entries) maps Latin letters to one another too
(``rn`` to ``m``, ``l`` to ``1``), which would refuse names people tell apart. So this table
holds only the Cyrillic and Greek letters whose upper- or lower-case form is drawn as a Latin
letter, folded (as ``name_key`` folds case first): ``Н`` is ``H``, so ``н`` is ``h``; the
few small Greek letters drawn as another letter than their capital are read before folding
(``latin_looks``).
"""

from __future__ import annotations

_LATIN_LOOKS = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "ë", "һ": "h", "н": "h", "і": "i", "ї": "ï", "ј": "j",
    "к": "k", "ӏ": "l", "м": "m", "о": "o", "р": "p", "ԛ": "q", "ѕ": "s", "т": "t", "с": "c",
    "у": "y", "ү": "y", "ԝ": "w", "х": "x", "ԁ": "d", "ɡ": "g",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "h", "ι": "i", "κ": "k", "μ": "m", "ν": "n", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "y", "χ": "x", "ζ": "z",
}  # fmt: skip
_TABLE = str.maketrans(_LATIN_LOOKS)
# small letters drawn as another Latin letter than their capital (case folding makes ν, η, υ
# read as their capitals: n, h, y), and the lunate sigmas (NFKC makes them plain ones: ς, Σ)
_BEFORE_FOLDING = str.maketrans({"ν": "v", "η": "n", "υ": "u", "ϲ": "c", "Ϲ": "C", "ϳ": "j"})


def latin_looks(name: str) -> str:
    """``name`` with each Greek letter that looks like another Latin letter than its
    capital does (``ν`` is drawn as ``v``, ``Ν`` as ``N``) as that letter: to apply before
    NFKC and case folding, which would lose which one was written (``ηice`` read as
    ``hice``, beside ``nice``)."""
    return name if name.isascii() else name.translate(_BEFORE_FOLDING)


def latin_skeleton(folded: str) -> str:
    """``folded`` (NFKC, case-folded) with each Cyrillic or Greek look-alike of a Latin
    letter as that letter: ``vіps`` (Cyrillic ``і``) is ``vips``."""
    return folded if folded.isascii() else folded.translate(_TABLE)
