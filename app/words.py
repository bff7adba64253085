"""Counts in words: ``1 row``, ``2 rows``, ``1,234 rows hold``, ``1 row holds``."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence


def counted(n: int, noun: str, plural: str | None = None, verb: str = "") -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1, with thousands separators; a ``verb``
    (in its plural form, ``hold``) follows, agreeing."""
    one = n == 1
    words = f"{n:,} {noun if one else plural or noun + 's'}"
    return f"{words} {SINGULAR.get(verb, verb + 's') if one else verb}" if verb else words


SINGULAR = {"have": "has", "are": "is", "were": "was"}


def plain_number(value: float) -> str:
    """``value`` as a reader of a segment's description reads it: ``73,921``, not the
    ``7.392e+04`` that 4 significant digits give an income; below 1,000 four significant
    digits (``21.16``, ``0.4821``)."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def percent(share: float) -> str:
    """A share as a percentage a reader can trust: whole percents, but a share that is not 0
    (or 1) never reads as ``0%`` (or ``100%``): 0.2% of customers holding a rare value was
    written "0% of customers hold 2", and a min_share of 0.005 "every segment >= 0%"."""
    if 0 < share < 0.01:
        return f"{share * 100:.2g}%"
    if 0.99 < share < 1:
        text = f"{share:.1%}"
        return ">99.9%" if text == "100.0%" else text
    return f"{share:.0%}"


def loose_name(name: str) -> str:
    """A column's name without case, spaces or punctuation: ``Customer ID`` ~ ``customer_id``,
    ``Annual Income`` ~ ``annual_income``: how a name a user wrote is matched loosely."""
    return "".join(ch for ch in name.casefold() if ch.isalnum())


_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_R_DOTS = re.compile(r"(?<=[A-Za-z])\.+(?=[A-Za-z])")


def label_of(name: str) -> str:
    """A column's name as words for segment names, where the config gives no ``label``:
    ``TotalCharges`` and ``total_charges`` are ``total charges``, ``CASH_ADVANCE`` is ``cash
    advance``; an upper-case word of three letters or fewer stays one (``MRR growth``,
    ``PRC full payment``: most such words are acronyms), and so is R's ``nr.employed``; a
    column's abbreviations are
    spelled out (``NumWebPurchases``: ``number of web purchases``, ``avg_basket``: ``average
    basket``, ``MntWines``: ``spend on wines``)."""
    # R's names (``emp.var.rate``; read.csv writes ``Annual Income (k$)`` as
    # ``Annual.Income..k..``): dots between words are spaces, as underscores are
    spaced = _R_DOTS.sub(" ", name).rstrip(".") if _R_DOTS.search(name) else name
    words = _CAMEL.sub(" ", spaced.replace("_", " ")).split()
    if not words:
        return name
    said = [
        w if w.isupper() and len(w) <= 3 and w.lower() not in _SHORT_WORDS else w.lower()
        for w in words
    ]
    if len(said) < 2:  # a column called "num" or "avg" is not spelled out
        return " ".join(said)
    out: list[str] = []
    for i, word in enumerate(said):
        last = i == len(said) - 1
        if word in ("num", "nbr") and not last:  # NumWebPurchases: "number of web purchases"
            out.append("number" if said[i + 1] == "of" else "number of")
        elif word == "mnt" and i == 0:  # MntWines (amount spent): "spend on wines"
            out.append("spend on")
        elif word == "mon" and i and said[i - 1].isdigit():  # Contacts_Count_12_mon
            out.append("months")
        elif last and word in _PERIODS and _plural(said[i - 1]):
            out.append(f"per {word}")  # NumWebVisitsMonth: "web visits per month"
        else:
            out.append(_ABBREVIATIONS.get(word, word))
    return " ".join(out)


# abbreviations of column names spelled out in segment names, which a marketer reads
# ("Very high num gifts", "high avg basket", "total trans amt")
_ABBREVIATIONS = {
    "avg": "average",
    "amt": "amount",
    "qty": "quantity",
    "cnt": "count",
    "ct": "count",  # a card table's Total_Trans_Ct
    "pct": "percent",
    "bal": "balance",
    "chng": "change",
    "trans": "transaction",
    "txn": "transaction",
    "acct": "account",
    "idx": "index",  # the bank-marketing table's cons.price.idx
    "prods": "products",  # the customer-personality table's MntGoldProds
}

# a count's period, ending a name after a plural (NumWebVisitsMonth was named "number of web
# visits month")
_PERIODS = frozenset(["day", "week", "month", "quarter", "year"])


def _plural(word: str) -> bool:
    """Whether ``word`` reads as a plural noun (``visits``, not ``status`` or ``class``)."""
    return len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is"))


# short words an upper-case name holds that are words or abbreviations, not acronyms
# (``NUM_OF_PRODUCTS``: "num of products", ``AGE``: "age")
_SHORT_WORDS = frozenset(
    [
        "of",
        "per",
        "to",
        "in",
        "by",
        "on",
        "and",
        "or",
        "the",
        "for",
        "at",
        "no",
        "is",
        "has",
        "age",
        "num",
        "avg",
        "max",
        "min",
        "amt",
        "mnt",
        "nbr",
        "cnt",
        "pct",
        "day",
        "sum",
        "qty",
        "std",
        "all",
        "any",
        "web",
        "app",
        "new",
        "old",
        "tv",
    ]
)


# yes and no in the languages of the exports a user brings (a German shop's Wiederkauf of
# ja/nein was refused as "two other words"): read as Yes/No are, lower-cased and trimmed
YES_WORDS = frozenset({"ja", "oui", "si", "sí", "sim"})
NO_WORDS = frozenset({"nein", "nee", "nej", "non", "não", "nao"})


def spelled_alike(known: Iterable[str], value: str) -> list[str]:
    """The ``known`` categories ``value`` differs from only in case or surrounding spaces
    (``iOS``: ``ios``), sorted: a spelling to fix, where file tagging and the API name one."""
    key = value.strip().casefold()
    return sorted(k for k in known if k.strip().casefold() == key)


def did_you_mean(given: str, valid: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the ``valid`` key ``given`` most likely means
    (``nearest_key``), or ``""``: the hint an unknown name's message ends with."""
    near = nearest_key(given, valid)
    return f"; did you mean {near!r}?" if near else ""


def nearest_key(given: str, valid: Iterable[str], synonyms: dict[str, str] | None = None) -> str:
    """The ``valid`` key a misspelt or foreign one (``given``) most likely means, or ``""``.

    In order: the same apart from case, spaces and punctuation (``ID-Column``:
    ``id_column``); another tool's word for it (``synonyms``, by loose name: ``condition``
    for ``when``); a close spelling (``tranform``: ``transform``); then the one valid key
    whose words all stand in ``given`` or hold all of its words (``window_days``: ``days``,
    ``reference``: ``reference_date``). Keys longer than any key could be are not compared
    (an error path stays cheap whatever a config or a request holds)."""
    keys = list(valid)
    if not keys or len(given) > 200:
        return ""
    by_loose = {loose_name(k): k for k in keys}
    loose = loose_name(given)
    if not loose:
        return ""
    if loose in by_loose:
        return by_loose[loose]
    words_for = {loose_name(k): v for k, v in (synonyms or {}).items()}
    said = (
        [loose]
        if loose in words_for
        # (or that word misspelt: conditon)
        else (difflib.get_close_matches(loose, list(words_for), n=1, cutoff=0.8))
    )
    if said and words_for[said[0]] in keys:
        return words_for[said[0]]
    close = difflib.get_close_matches(given.casefold(), keys, n=1, cutoff=0.75)
    if close:
        return close[0]
    words = set(_words(given))
    sharing = [k for k in keys if (kw := set(_words(k))) and (kw <= words or words <= kw)]
    if len(sharing) == 1:
        return sharing[0]
    close = difflib.get_close_matches(given.casefold(), keys, n=1, cutoff=0.6)
    return close[0] if close else ""


def _words(name: str) -> list[str]:
    """A key's words: ``window_days``, ``windowDays`` and ``window-days`` are window, days."""
    return [w.casefold() for w in re.split(r"[^0-9A-Za-z]+", _CAMEL.sub(" ", name)) if w]


ECHO_CHARACTERS = 80  # the most of a file's value or name an error message repeats


def echoed(value: object, limit: int = ECHO_CHARACTERS) -> str:
    """``value`` quoted as an error repeats it (its ``repr``), clipped to ``limit``
    characters with how long it was: a 1 MB cell was repeated whole in the job's error."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(value) if isinstance(value, str) else repr(text)
    return f"{text[:limit]!r}… ({len(text):,} characters)"


MAX_MESSAGE = 4_000  # the most of one error message a command prints


def bounded_message(text: str, limit: int = MAX_MESSAGE) -> str:
    """An error message of at most about ``limit`` characters: its start and its end (where
    the advice is), the middle said as left out. Every value a message repeats is clipped
    where it is written (``echoed``); this bounds what a message lists of them."""
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 3 // 4], text[-(limit // 4) :]
    return f"{head} … ({len(text) - len(head) - len(tail):,} characters left out) … {tail}"


# a categorical profile's one row for the categories the model's encoder groups as
# infrequent (rarer than the feature's min_frequency): it tells them from the frequent ones,
# never apart, and a profile does not either
INFREQUENT_CATEGORY = "__infrequent__"
RARE_NAMED = 3  # the most of a group's categories its row names


def rare_group(infrequent: Sequence[str]) -> str:
    """The row of a feature's grouped rare categories, in a reader's words: ``other (3 rare:
    Absurd, Alone, YOLO)``; ``other (40 rare: a, b, c, …)``; ``other`` where none is known (a
    version trained before its encoder's infrequent ones were kept)."""
    if not infrequent:
        return "other"
    named = [c.strip("_") if c.startswith("__") and c.endswith("__") else c for c in infrequent]
    more = ", …" if len(named) > RARE_NAMED else ""
    return f"other ({len(named):,} rare: {', '.join(named[:RARE_NAMED])}{more})"
