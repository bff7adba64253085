"""Profiles, generated names, outcome tests and quality flags for each segment.

Numeric profiles are given in original units (mean, median) and as a standardised difference
``z``: the segment's mean minus the population's, divided by the population's standard
deviation, both measured after the feature's transform (so a log1p'd spend is compared on the
log scale, where one outlier cannot dominate). Categorical profiles give each category's share
in the segment beside its population share. Names come from the largest standardised
differences; they are a starting point that analysts edit (PATCH /v1/segments/{id}).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from app.registry.manifest import CategoryShare, NumericProfile, OutcomeTest, SegmentInfo
from app.training.config import CategoricalFeature, Feature, TrainConfig
from app.training.effects import outcome_effect
from app.training.preprocess import MISSING_CATEGORY, category_codes
from app.training.tree_names import LeafSplit, bounds_number, bounds_text
from app.words import (
    INFREQUENT_CATEGORY,
    NO_WORDS,
    YES_WORDS,
    label_of,
    percent,
    plain_number,
)

NAME_Z = 0.5  # a feature must differ this much to appear in a name
NAME_SIDE = 2 / 3  # and this share of the segment be on that side of the population median
# the words a transaction log's derived features bring to names (a feature's own win)
RFM_WORDS = {
    "recency_days": ("lapsed", "recent"),
    "frequency": ("frequent", "one-time"),  # "infrequent" where the median bought twice
    "monetary": ("high spend", "low spend"),
    "avg_order_value": ("large baskets", "small baskets"),
    "tenure_days": ("long-standing", "new"),
}
# the derived features' labels (descriptions, profile tables, the dashboard), in the words
# their names use: "spend", never "monetary" beside a "High spend" segment
# words for the ends of a feature any table may hold, by its label (a config's own win): a
# mall table's segments read "Very high age, low annual income" where a marketer says older
LABEL_WORDS = {"age": ("older", "younger")}
# a time since something (the docs' pandas lines write a date as days_since_<column>): a
# SaaS table's "Very high days since last login" is a last login long ago, its low end recent
# (any case; its upper-case words, NPS, stay upper case, as names keep MRR)
_SINCE = re.compile(
    r"^(?:days|weeks|months|years) since (?:the )?(?P<what>.+?)(?: date)?$", re.IGNORECASE
)


def _since_words(label: str) -> tuple[str | None, str | None]:
    """``days since last login``: ("last login long ago", "recent last login")."""
    since = _SINCE.match(label)
    if since is None:
        return None, None
    # lower case, but an upper-case word (NPS) as written
    what = " ".join(w if w.isupper() and len(w) > 1 else w.lower() for w in since["what"].split())
    if _PARTICIPLE.search(what):  # days_since_created: "Created recently", not "Recent created"
        return f"{what} long ago", f"{what} recently"
    return f"{what} long ago", f"recent {what}"


# a time since something done, not since a thing (a billing export's ``created``, a club's
# ``joined``, ``account_opened``): its last word a past participle, not a noun in -eed
_PARTICIPLE = re.compile(r"[a-z]{2,}(?<!e)ed$", re.IGNORECASE)


RFM_LABELS = {
    "recency_days": "days since last order",
    "frequency": "orders",
    "monetary": "spend",
    "avg_order_value": "average order value",
    "tenure_days": "days since first order",
}
ONE_TIME = "one-time"
NEW, NEW_DAYS = "new", 90  # "new" only where the median customer's first order is this recent
CATEGORY_Z = 0.8  # a category most of a segment holds, this far above its population share
YES = {"yes", "true", "y", *YES_WORDS}
NO = {"no", "false", "n", *NO_WORDS}
# a yes and a no of one language: a language column's ja (Japanese) and no (Norwegian) are
# no yes and no (its Japanese segment was named "Language", its Norwegian "No language")
YES_NO_PAIRS = (
    ({"yes", "true", "y"}, {"no", "false", "n"}),
    ({"ja"}, {"nein", "nee", "nej"}),
    ({"oui"}, {"non"}),
    ({"si", "sí"}, {"no"}),
    ({"sim"}, {"não", "nao"}),
)
DISTINCT_Z = 0.25  # a cluster whose every feature is within this of the population is flagged
TOP_CATEGORIES = 8


@dataclass(frozen=True)
class SlotInfo:
    """What the job knows of a slot before profiling."""

    id: str
    kind: str  # "cluster" | "rule"
    name: str | None = None
    rule: str | None = None
    description: str | None = None
    action: str | None = None
    stability: float | None = None
    split: LeafSplit | None = None  # a tree leaf's: what its name must say (tree_names)


def profile_segments(
    config: TrainConfig,
    frame: pd.DataFrame,
    transformed: pd.DataFrame,
    slots: np.ndarray,
    infos: list[SlotInfo],
    min_share: float,
    outcomes: list[str] | None = None,
    positive: dict[str, str] | None = None,
    infrequent: Mapping[str, Collection[str]] | None = None,
) -> tuple[list[SegmentInfo], list[OutcomeTest]]:
    """Profile every slot; ``transformed`` holds the numeric features after their transform.

    ``infrequent``: feature -> the categories the model's encoder groups as infrequent
    (rarer than its ``min_frequency``), profiled as one category, ``INFREQUENT_CATEGORY``:
    the model tells them from the others, never apart, and a profile that listed them one by
    one (``marital status = YOLO``, 2 customers) showed a marketer noise rows."""
    n = len(frame)
    numeric = list(transformed.columns)
    pop_mean = transformed.mean()
    pop_std = transformed.std(ddof=0).replace(0.0, 1.0)
    sides = {col: _sides(frame[col], slots, len(infos)) for col in numeric}
    labels = {f.name: feature_label(config, f) for f in config.features}
    described = labels  # descriptions keep a column's unit: "annual income (k$) above average"
    labels = name_labels(config, labels)
    words = _words(config, labels) | _flag_words(config, frame, labels)
    zeros = _all_but_zero(sides, [c for c in numeric if c not in words], len(infos))
    # a 0/1 feature's words and its share of all customers: described as a category is
    flag_shares = {
        name: (ends.high, _finite(frame[name].mean()))
        for name, ends in words.items()
        if ends.flag and name in frame.columns
    }
    # each row's category as its position in the population's shares, so a segment's
    # shares take one bincount rather than a value_counts of its rows per feature
    cat_codes: dict[str, np.ndarray] = {}
    pop_shares: dict[str, pd.Series] = {}
    for f in config.features:
        if isinstance(f, CategoricalFeature):
            rare = (infrequent or {}).get(f.name, ())
            cat_codes[f.name], pop_shares[f.name] = category_positions(frame[f.name], rare)
    outcomes = [o for o in (outcomes or []) if o in frame.columns]
    # the rows grouped by slot once (a stable sort keeps each slot's rows in frame order):
    # a slot's rows are then one slice, the same values in the same order as a boolean
    # mask of them selects, so every mean and median is the same to the bit
    by_slot = SlotRows(slots, len(infos))
    raw = by_slot.gather(frame[list(dict.fromkeys(numeric + outcomes))])
    grouped = by_slot.gather(transformed)
    grouped_codes = {name: codes[by_slot.order] for name, codes in cat_codes.items()}
    profiles = []
    for slot in range(len(infos)):
        rows = by_slot.rows(slot)
        size = rows.stop - rows.start
        num_profile: dict[str, NumericProfile] = {}
        if size:
            seg_raw = raw.iloc[rows]
            z = (grouped.iloc[rows].mean() - pop_mean) / pop_std
            for col in numeric:
                num_profile[col] = NumericProfile(
                    mean=_finite(seg_raw[col].mean()),
                    median=_finite(seg_raw[col].median()),
                    z=_finite(z[col]),
                    on_side=_on_side(sides[col], slot, _finite(z[col])),
                    at_median=_at_median(sides[col], slot),
                )
        cat_profile = {
            name: _category_shares(codes[rows], pop_shares[name])
            for name, codes in grouped_codes.items()
        }
        profiles.append((rows, size, num_profile, cat_profile))
    # a tree's leaves follow the configured rules, in the tree's leaf order
    first_leaf = next((i for i, info in enumerate(infos) if info.split is not None), 0)
    bounded = _bounded_features(infos, [p[2] for p in profiles], labels, words)
    furthest = _furthest([p[2] for p in profiles])
    segments: list[SegmentInfo] = []
    used_names: set[str] = set()
    used_leads: set[str] = set()
    for slot, info in enumerate(infos):
        rows, size, num_profile, cat_profile = profiles[slot]
        if info.name:
            name = info.name
        elif info.split is not None:
            # every other leaf, not only the sibling ones: "Very high spend" for 276-410
            # beside a "Spend 410-839" elsewhere in the tree told a reader the wrong order
            others = [
                profiles[j][2]
                for j in range(first_leaf, len(infos))
                if j != slot and infos[j].split is not None
            ]
            by_bounds = info.split.feature in bounded
            held = _held(frame.loc[slots == slot, info.split.feature], info.split)
            name = _leaf_name(info.split, num_profile, cat_profile, others, labels, words,
                              used_names, by_bounds, held)  # fmt: skip
        else:
            name = _generate_name(num_profile, cat_profile, labels, used_names, words,
                                  used_leads, furthest[slot], zeros[slot])  # fmt: skip
        used_names.add(name)
        used_leads.add(_lead_and_rest(name)[0].lower())
        share = size / n if n else 0.0
        flags = []
        # a configured rule's segment is as small as its rule makes it (whales): not flagged
        if share < min_share and not (info.kind == "rule" and info.split is None):
            flags.append("too_small")
        if info.kind == "cluster" and size and _indistinct(num_profile, cat_profile):
            flags.append("not_distinct")
        if info.stability is not None and info.stability < 0.6:
            flags.append("unstable")
        segments.append(
            SegmentInfo(
                id=info.id,
                name=name,
                kind="rule" if info.kind == "rule" else "cluster",
                rule=info.rule,
                description=info.description
                or _describe(share, num_profile, cat_profile, described, flag_shares),
                action=info.action,
                size=size,
                share=share,
                numeric=num_profile,
                categorical=cat_profile,
                outcomes={o: _mean_or_none(raw[o].iloc[rows]) if size else None for o in outcomes},
                stability=info.stability,
                flags=flags,
            )
        )
    tests = [_outcome_test(o, frame[o], slots, segments, (positive or {}).get(o)) for o in outcomes]
    return segments, tests


class SlotRows:
    """Rows grouped by slot: ``order`` lists the rows slot by slot, each slot's in frame
    order (a stable sort), and ``rows(slot)`` is that slot's slice of it. A slot's slice of
    ``gather(frame)`` holds what ``frame.loc[slots == slot]`` holds, in the same order,
    without a pass over every row per slot (tests/training/test_slot_rows.py)."""

    def __init__(self, slots: np.ndarray, count: int) -> None:
        # the slots (0 .. count - 1) as the smallest unsigned type: a stable sort of 8 or 16
        # bit integers is numpy's radix sort, 4x faster on a million rows than its merge sort
        # of int64; a stable order is one order, whatever sorts it
        self.order = np.argsort(slots.astype(np.min_scalar_type(count)), kind="stable")
        self.bounds = np.concatenate([[0], np.cumsum(np.bincount(slots, minlength=count))])

    def rows(self, slot: int) -> slice:
        return slice(int(self.bounds[slot]), int(self.bounds[slot + 1]))

    def gather(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.take(self.order)


def category_positions(
    column: pd.Series, infrequent: Collection[str] = ()
) -> tuple[np.ndarray, pd.Series]:
    """The population's category shares, ``canonical_column(column).value_counts(normalize=
    True)``, and each row's position in them, counted on integer codes of the categories;
    the ``infrequent`` ones (the encoder's) counted as one, ``INFREQUENT_CATEGORY``.

    ``value_counts`` ranks by count, ties as its hash table met them (in order of first
    appearance): the codes appear in the rows exactly where their categories do, so their
    ``value_counts`` is the same ranking, ties included (tests/training/test_matrix.py).
    """
    codes, categories = category_codes(column)
    if infrequent:
        rare = np.isin(categories.astype(str), list(infrequent))
        if rare.any():  # the frequent ones keep their order, the group's code comes last
            kept = np.flatnonzero(~rare)
            group = np.empty(len(categories), dtype=np.intp)
            group[kept] = np.arange(len(kept))
            group[rare] = len(kept)
            codes = group[codes]
            categories = np.append(categories[kept], np.array([INFREQUENT_CATEGORY], object))
    shares = pd.Series(codes).value_counts(normalize=True)
    ranked = shares.index.to_numpy()
    position = np.empty(len(categories), dtype=np.intp)
    position[ranked] = np.arange(len(ranked))
    shares.index = pd.Index(categories[ranked], dtype=object)
    return position[codes], shares


def _mean_or_none(values: pd.Series) -> float | None:
    """A segment's outcome mean; None where no member has a value (an unmatched join)."""
    mean = float(values.mean())
    return mean if np.isfinite(mean) else None


def _sides(column: pd.Series, slots: np.ndarray, count: int) -> np.ndarray | None:
    """Per slot, its customers with a value below, at and above the population's median, with
    a value at all, and at exactly 0 where no value is below 0 (rows 0-4, else 0; one
    bincount each, not a pass per segment): what ``_on_side`` and ``_all_but_zero`` read.
    None where the column has no value."""
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    present = ~np.isnan(values)
    if not present.any():
        return None
    kept = values[present] if not present.all() else values
    slot_of = slots[present] if not present.all() else slots
    side = np.sign(kept - np.median(kept)).astype(np.intp) + 1  # 0 below, 1 at, 2 above
    counts = np.bincount(slot_of * 3 + side, minlength=3 * count).reshape(count, 3).T
    zeros = np.zeros(count, dtype=counts.dtype)
    if kept.min() == 0:
        zeros = np.bincount(slot_of[kept == 0], minlength=count)[:count]
    return np.vstack([counts, counts.sum(axis=0), zeros])


def _on_side(sides: np.ndarray | None, slot: int, z: float) -> float | None:
    """The share of a slot's customers on the side of the population median that ``z`` points
    to, a customer at the median counting half."""
    if sides is None or not sides[3, slot]:
        return None
    beyond = sides[2, slot] if z >= 0 else sides[0, slot]
    return float((beyond + 0.5 * sides[1, slot]) / sides[3, slot])


def _at_median(sides: np.ndarray | None, slot: int) -> float | None:
    """The share of a slot's customers whose value is the population's median itself."""
    if sides is None or not sides[3, slot]:
        return None
    return float(sides[1, slot] / sides[3, slot])


def _side_text(p: NumericProfile) -> str:
    """Where the segment's customers are against the population median, as counted: those
    strictly on z's side, and those at the median where there are many (a count such as
    'lines', 1 for most customers)."""
    side = "above" if p.z > 0 else "below"
    if p.on_side is None:
        return ""
    at = p.at_median or 0.0
    text = f"; {p.on_side - at / 2:.0%} of the segment {side} the median of all"
    return text + (f", {at:.0%} at it" if at >= 0.05 else "")


def _named_side(p: NumericProfile) -> bool:
    """Most of the segment is where a name would put it (unknown: as z says)."""
    return p.on_side is None or p.on_side >= NAME_SIDE


def _flag(words: dict[str, Ends], name: str) -> bool:
    """A 0/1 feature: its segment mean is the share having it, which its name says (a
    median of 0 or 1 leaves no side of it)."""
    return name in words and words[name].flag


def _finite(value: object) -> float:
    number = float(value)  # type: ignore[arg-type]
    return number if np.isfinite(number) else 0.0


def _category_shares(codes: np.ndarray, population: pd.Series) -> dict[str, CategoryShare]:
    """Shares of the top population categories among ``codes`` (positions in ``population``)."""
    present = codes[codes >= 0]
    counts = np.bincount(present, minlength=len(population))
    result: dict[str, CategoryShare] = {}
    for i, category in enumerate(population.index[:TOP_CATEGORIES]):
        p_pop = float(population[category])
        p_seg = float(counts[i] / len(present)) if len(present) else 0.0
        spread = np.sqrt(max(p_pop * (1 - p_pop), 1e-9))
        result[str(category)] = CategoryShare(
            share=p_seg, population_share=p_pop, z=(p_seg - p_pop) / spread
        )
    return result


def _level(z: float) -> str:
    if z >= 1.0:
        return "very high"
    if z > 0:
        return "high"
    if z <= -1.0:
        return "very low"
    return "low"


class Ends(NamedTuple):
    """The words for a numeric feature's high and low ends in names; ``flag``: a 0/1 feature
    (``has_app``), whose ends are having it and not, said without a degree."""

    high: str
    low: str
    flag: bool = False


def _flag_words(
    config: TrainConfig, frame: pd.DataFrame, labels: dict[str, str]
) -> dict[str, Ends]:
    """The numeric features holding only 0 and 1 (or true/false) and no declared words:
    ``has app``/``no app``, ``active``/``not active`` (``is active``), ``newsletter``/``no
    newsletter`` (they were "very high has app")."""
    found = {}
    for f in config.features:
        if isinstance(f, CategoricalFeature) or f.high or f.low:
            continue
        values = frame[f.name].dropna()
        # another value among the first rows decides without looking up every row
        if not len(values) or not values.iloc[:1_000].isin([0, 1]).all():
            continue
        if not values.isin([0, 1]).all():
            continue
        label = labels[f.name]
        head, _, rest = label.partition(" ")
        if head.lower() == "has" and rest:
            found[f.name] = Ends(label, _no(rest), flag=True)  # has_no_kids: "kids"
        elif head.lower() == "is" and rest:
            found[f.name] = Ends(rest, _no(rest, "not"), flag=True)  # is_not_active: "active"
        else:
            found[f.name] = Ends(label, _no(label), flag=True)
    return found


# words ending in -ed that are things, not states: "no seed", not "not seed"
_ED_NOUNS = frozenset({"bed", "breed", "feed", "need", "red", "seed", "shed", "speed", "weed"})


def _no(label: str, word: str | None = None) -> str:
    """The absence of ``label``: ``no newsletter`` (``word``: ``not active``), and ``not``
    before a state, a label ending in a participle (``not previously insured``, ``not
    churned``: an insurance table's ``Previously_Insured`` read "No previously insured");
    a label that already denies (``no show``, ``not active``) loses its denial (``show``,
    ``active``), never ``no no show``; one that says where a customer is, ``not in guild``
    (a game's ``in_guild`` read "No in guild"), and ``without app`` for ``with app``."""
    head, _, rest = label.partition(" ")
    if head.lower() in ("no", "not") and rest:
        return rest
    if word is None and head.lower() == "with" and rest:
        return f"without {rest}"  # with_app: "without app"
    if word is None:
        last = label.split()[-1].lower() if label.split() else ""
        participle = last.endswith("ed") and last not in _ED_NOUNS
        # a place or a company is denied with "not": a game's in_guild was "no in guild"
        word = "not" if participle or (head.lower() in _PREPOSITIONS and rest) else "no"
    return f"{word} {label}"


def _zero(label: str) -> str:
    """None of ``label``: ``zero data mb``, and ``zero web purchases`` for ``number of web
    purchases`` (never "zero number of web purchases")."""
    return f"zero {_counted(label)}"


def _counted(label: str) -> str:
    """What ``label`` counts: ``web purchases`` for ``number of web purchases``, else it."""
    head = "number of "
    return (
        label[len(head) :] if label.lower().startswith(head) and len(label) > len(head) else label
    )


# first words of a label that say where or with whom a customer is (``in guild``, ``on
# waitlist``), denied with "not", never "no"
_PREPOSITIONS = frozenset({"in", "on", "at", "with", "within", "inside", "under", "over", "near"})


def feature_label(config: TrainConfig, feature: Feature) -> str:
    """A feature's label: its own, else a transaction log's derived feature's (``spend``),
    else its name in words."""
    if feature.label:
        return feature.label
    if config.data.kind == "transactions" and feature.name in RFM_LABELS:
        return RFM_LABELS[feature.name]
    return label_of(feature.name)


_UNIT = re.compile(r"\s*[(\[][^()\[\]]*[)\]]\s*$")


def name_labels(config: TrainConfig, labels: dict[str, str]) -> dict[str, str]:
    """The labels segment names use: a column's trailing unit or scale in brackets is left
    out where the label is the column's name (a mall table's ``Annual Income (k$)`` and
    ``Spending Score (1-100)`` named segments "Very low spending score (1-100), very high
    annual income (k$)"), unless two features would then read alike (``income (k$)``,
    ``income (€)``). A config's own ``label`` is kept as written."""
    bare = {
        f.name: _UNIT.sub("", labels[f.name]) if not f.label else labels[f.name]
        for f in config.features
    }
    counts = Counter(label.lower() for label in bare.values())
    return {
        name: label if label and counts[label.lower()] == 1 else labels[name]
        for name, label in bare.items()
    }


def _words(config: TrainConfig, labels: dict[str, str] | None = None) -> dict[str, Ends]:
    """Feature -> (word for high values, word for low values), where known (``labels``: the
    names' labels, else each column's name in words)."""
    words: dict[str, Ends] = {}
    for f in config.features:
        if isinstance(f, CategoricalFeature):
            continue
        high, low = (
            RFM_WORDS.get(f.name, (None, None))
            if config.data.kind == "transactions"
            else _label_words(f.label or (labels or {}).get(f.name) or label_of(f.name))
        )
        high, low = f.high or high, f.low or low
        if high and low:
            words[f.name] = Ends(high, low)
    return words


def _label_words(label: str) -> tuple[str | None, str | None]:
    if _BIRTH_YEAR.match(label):  # a later year of birth is a younger customer
        return "younger", "older"
    return LABEL_WORDS.get(label) or _since_words(label)


# a year of birth (a food retailer's Year_Birth named segments "High year birth", its
# youngest customers): its high end is younger, its low end older
_BIRTH_YEAR = re.compile(
    r"^(?:year (?:of )?birth|birth ?year|year born|yob|birth yr|yr (?:of )?birth)$", re.IGNORECASE
)


# single words ending in -er that are adjectives, not comparatives: "very clever"
_ER_ADJECTIVES = frozenset({"bitter", "clever", "eager", "proper", "sober", "super", "tender"})
# comparatives a config's words may be ("older", "younger"): "much older", never "very older"
_COMPARATIVES = frozenset(
    {
        "older",
        "younger",
        "newer",
        "bigger",
        "smaller",
        "larger",
        "richer",
        "poorer",
        "cheaper",
        "dearer",
        "longer",
        "shorter",
        "higher",
        "lower",
        "later",
        "sooner",
        "faster",
        "slower",
        "greater",
        "fewer",
        "warmer",
        "colder",
        "closer",
        "further",
        "farther",
        "stronger",
        "weaker",
        "better",
        "worse",
    }
)


def _degree(word: str) -> str | None:
    """The word that says a config's ``word`` to a degree: "very" (``very lapsed``), "much"
    before a comparative (a mall table's ``low = "younger"`` named a segment "Very
    younger"), none before a word for a kind of customer (``spender``, ``shopper``,
    ``families``: never "very spender")."""
    word = word.lower()
    if word in _COMPARATIVES or (len(word) > 4 and word.endswith("ier")):
        return "much"
    if len(word) > 4 and word.endswith("er") and word not in _ER_ADJECTIVES:
        return None
    # a plural noun, a kind of customer too (``high = "families"`` named a segment "Very
    # families"); not an adjective in -ous, -ss or -less (``generous``, ``careless``)
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ous", "ss", "less", "us")):
        return None
    return "very"


def _trait(
    name: str,
    p: NumericProfile,
    labels: dict[str, str],
    words: dict[str, Ends],
    very: bool = True,
) -> str:
    """A numeric trait in words: the feature's own words, else its level (``high income``);
    ``very`` for a difference of a standard deviation or more, unless ``very`` is False (the
    segment is not the one furthest out on the feature, ``_furthest``)."""
    z = p.z
    if name in words and words[name].flag:  # a share: most have it (or not), or more of them
        ends = words[name]
        if z > 0:
            return ends.high if p.mean >= 0.5 else f"more often {ends.high}"
        return ends.low if p.mean <= 0.5 else f"less often {ends.high}"
    if name in words:
        word = words[name].high if z > 0 else words[name].low
        if word == ONE_TIME and p.median > 1:  # below average, but most bought again
            word = "infrequent"
        elif word == ONE_TIME:
            return word  # a fact about the segment, not a degree ("very one-time")
        if word == NEW and name == "tenure_days" and p.median >= NEW_DAYS:
            return "newer"  # below average, but customers of months are not new ones
        degree = _degree(word) if very and abs(z) >= 1.0 and " " not in word else None
        return f"{degree} {word}" if degree else word
    level = _level(z)
    return f"{level if very else level.removeprefix('very ')} {labels[name]}"


def _yes_no(shares: Iterable[str]) -> bool:
    """Whether a feature's categories (those written in the data) answer yes or no: a yes
    word and a no word among them (``Yes``/``No``, with ``No internet service`` beside them
    too); only then is ``N`` a no (a ``region`` of ``N``, ``S``, ``E``, ``W`` named its north
    "No region"). Unknown categories (none given): as if they did."""
    written = {c.strip().lower() for c in shares if _nameable(c) and c != MISSING_CATEGORY}
    return not written or any(written & yes and written & no for yes, no in YES_NO_PAIRS)


# a category that is a number: a code (region 1..5, plan 10/20/30), said after its feature
# ("4 region" was a telecom table's segment name, a marketer's "region 4")
CODE = re.compile(r"[+-]?\d+(\.\d+)?")


def _category_trait(category: str, label: str, share: float, yes_no: bool = True) -> str:
    """A category named with its feature: ``Month-to-month contract``, ``Fiber optic
    internet``; a yes/no category (of a feature whose categories are all such, ``yes_no``)
    as the feature itself (``paperless billing``, ``no partner``); a numeric code after its
    feature (``region 4``); ``many ...`` when it is
    common in the segment without being most of it."""
    low = category.strip().lower()
    if category == MISSING_CATEGORY:  # blank or a missing marker in the file
        return f"{label} unknown" if share >= 0.5 else f"{label} often unknown"
    if yes_no and low in YES:
        text = label
    elif yes_no and low in NO:
        text = _no(label)
    elif label.lower() in low:  # "No internet service" already names its feature
        text = category
    elif CODE.fullmatch(category.strip()):  # a code after its feature: "region 4", "plan 20"
        text = f"{label} {category.strip()}"
    else:
        text = f"{category} {label}"
    return text if share >= 0.5 else f"many {text}"


def _not_category(category: str, label: str, yes_no: bool = False) -> str:
    """A category the segment lacks: ``not Month-to-month contract``; an unknown one, written
    ``unknown`` or missing, is the feature known (a bank table's segments were "No housing,
    not unknown contact")."""
    if category == MISSING_CATEGORY:
        return f"{label} known"
    if category.strip().lower() == "unknown":
        return f"known {label}"
    return f"not {_category_trait(category, label, 1.0, yes_no)}"


def _traits(
    numeric: dict[str, NumericProfile],
    categorical: dict[str, dict[str, CategoryShare]],
    labels: dict[str, str],
    words: dict[str, Ends],
    skip: str | None = None,
    furthest: set[str] | None = None,
    zero: set[str] | None = None,
) -> tuple[list[str], int]:
    """What sets a segment apart, strongest first, and how many are more than slight: numeric
    features by |z|, categories that define it by their own z (a segment that is all
    month-to-month can lead with it), categories it lacks, then slight numeric differences.
    Nothing about the feature ``skip`` (a leaf's name says it already). Given ``furthest``
    (the features on which this segment is the one furthest out, ``_furthest``), only those
    may be "very": "Very low satisfaction" sat beside a segment less satisfied still.
    ``zero``: features nearly all of the segment holds 0 of (``_all_but_zero``), said so
    (``zero data mb``, where "very low data mb" was said of customers using none)."""

    def said(name: str, p: NumericProfile) -> str:
        if zero and name in zero and p.z < 0:
            return _zero(labels[name])
        if zero and name in zero and p.z > 0:  # most of all at 0, nearly none of these
            return f"with {_counted(labels[name])}"
        return _trait(name, p, labels, words, very=furthest is None or name in furthest)

    numeric = {name: p for name, p in numeric.items() if name != skip}
    categorical = {name: shares for name, shares in categorical.items() if name != skip}
    # a difference of the mean that most of the segment shares (a few extreme customers move
    # a mean: "lapsed" was said of segments a third of whom had bought within weeks)
    ranked = [
        (abs(p.z), said(name, p)) for name, p in numeric.items()
        if abs(p.z) >= NAME_Z and (_named_side(p) or _flag(words, name))
    ]  # fmt: skip
    for feature, shares in categorical.items():
        best = [
            (share.z, cat, share)
            for cat, share in shares.items()
            if _nameable(cat) and _defines(share)
        ]
        if best:
            z, cat, share = max(best, key=lambda b: b[0])
            trait = _category_trait(cat, labels[feature], share.share, _yes_no(shares))
            ranked.append((z, trait))
    ranked.sort(key=lambda r: -r[0])
    # then the categories a segment lacks (``not Month-to-month contract``): a tree leaf of
    # ``contract != 'Month-to-month'`` is named by it when nothing else sets it apart
    absent = [
        (-share.z, _not_category(cat, labels[feature]))
        for feature, cat, share in _lacking(categorical)
    ]
    absent.sort(key=lambda r: -r[0])
    # last, smaller numeric differences: only reached when the traits above lead other names
    weaker = sorted(
        (
            (abs(p.z), said(name, p))
            for name, p in numeric.items()
            # (most of the segment on its side too: "Low in-app spend" named a segment 98%
            # of which sat at the population's median, 0, as everyone's nearly does)
            if DISTINCT_Z <= abs(p.z) < NAME_Z and (_named_side(p) or _flag(words, name))
        ),
        key=lambda r: -r[0],
    )
    # a trait that says another's whole phrase again is left out ("Very low purchases, very
    # low purchases TRX" of PURCHASES and PURCHASES_TRX): the stronger one says it
    texts: list[str] = []
    strong = 0
    for i, (_, text) in enumerate(ranked + absent + weaker):
        if not _repeats(text, texts):
            texts.append(text)
            strong += i < len(ranked) + len(absent)
    return _one_per_stem(texts, strong)


# a time window ending a trait: "sessions 30d", "orders last 12 months", "spend 90 days"
# (minutes and hours, "m" and "h", are no window a segment is read over, and "m" may be
# either minutes or months: left as written)
_WINDOW = re.compile(
    r"^(?P<stem>.*?\S) (?:(?P<over>last|past|in|over) )?(?P<n>\d+) ?"
    r"(?P<unit>d|days?|w|wks?|weeks?|mo|mos|mon|months?|y|yrs?|years?)$",
    re.IGNORECASE,
)
_UNIT_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}


def _window_unit(unit: str) -> str:
    """``d``, ``days``: ``day``; ``wk``: ``week``; ``mo``, ``mon``: ``month``; ``yr``: ``year``."""
    first = unit.lower()[0]
    return {"d": "day", "w": "week", "m": "month", "y": "year"}[first]


def _one_per_stem(texts: list[str], strong: int) -> tuple[list[str], int]:
    """Traits that differ only in their time window, at the same level, said once with every
    window: "very high sessions 7d" and "very high sessions 30d" (an app's ``sessions_7d``
    and ``sessions_30d``, one family) are "very high sessions (7 and 30 days)", in the first
    one's place; "(last 7 days and 12 months)" for two units. Two levels ("very high sessions
    30d, high sessions 7d") say different things and stay two; ``strong`` (how many of the
    first traits are more than slight) is counted again."""
    groups: dict[tuple[str, str], list[tuple[int, str]]] = {}
    place: dict[tuple[str, str], int] = {}
    for i, text in enumerate(texts):
        found = _WINDOW.match(text)
        if found is None:
            continue
        key = (found["stem"].lower(), (found["over"] or "").lower())
        groups.setdefault(key, []).append((int(found["n"]), _window_unit(found["unit"])))
        place.setdefault(key, i)
    kept: list[str] = []
    kept_strong = 0
    for i, text in enumerate(texts):
        found = _WINDOW.match(text)
        key = (found["stem"].lower(), (found["over"] or "").lower()) if found else ("", "")
        if found is None or len(groups[key]) < 2:
            kept.append(text)
        elif place[key] == i:
            windows = sorted(groups[key], key=lambda w: (_UNIT_DAYS[w[1]], w[0]))
            units = {unit for _, unit in windows}
            if len(units) == 1:
                said = _listed([str(n) for n, _ in windows]) + f" {next(iter(units))}s"
            else:
                said = _listed([f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in windows])
            over = f"{found['over']} " if found["over"] else ""
            kept.append(f"{found['stem']} ({over}{said})")
        else:
            continue  # said in its family's first trait
        kept_strong += i < strong
    return kept, kept_strong


def _listed(items: list[str]) -> str:
    """``1, 7 and 30``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


_OUTSIDE_BRACKETS = re.compile(r",(?![^()]*\))")


def _lead_and_rest(name: str) -> tuple[str, str]:
    """A name's leading phrase and the rest (after its first comma that is not inside
    brackets: "Very high sessions (1, 7 and 30 days), low spend" leads with the sessions)."""
    head, *tail = _OUTSIDE_BRACKETS.split(name, maxsplit=1)
    return head, tail[0] if tail else ""


def _repeats(text: str, said: Iterable[str]) -> bool:
    """``text`` says a phrase of ``said`` again, in whole words and any case: ``very low
    purchases TRX`` after ``very low purchases``, or the converse (``infrequent`` does not
    repeat ``frequent``)."""
    mine = f" {text.lower()} "
    return any(f" {s.lower()} " in mine or mine in f" {s.lower()} " for s in said)


def _furthest(numeric: Sequence[dict[str, NumericProfile]]) -> list[set[str]]:
    """Per segment, the numeric features on which it is the one furthest from the population
    in its direction (the highest z above it, or the lowest below): only there may its name
    say "very". Ties go to each segment tied."""
    found: list[set[str]] = [set() for _ in numeric]
    for feature in {f for profile in numeric for f in profile}:
        zs = [(i, p[feature].z) for i, p in enumerate(numeric) if feature in p]
        top, bottom = max(z for _, z in zs), min(z for _, z in zs)
        for i, z in zs:
            if (z > 0 and z == top) or (z < 0 and z == bottom):
                found[i].add(feature)
    return found


ZERO_SEGMENT = 0.9  # of a segment's customers with a value: 0 for a name to say "zero ..."
ZERO_POPULATION = 0.75  # at most this share of all customers at 0: else zero says little
ANY_POPULATION = 0.75  # at least this share of all at 0: a segment above 0 is "with ..."


def _all_but_zero(
    sides: dict[str, np.ndarray | None], columns: Sequence[str], count: int
) -> list[set[str]]:
    """Per slot, the features (of ``columns``, never negative, with some customers at 0 and
    at most ``ZERO_POPULATION`` of them) on which at least ``ZERO_SEGMENT`` of the slot's
    customers with a value hold exactly 0 (``_sides``' rows 3 and 4): a telecom table's
    segment of customers using no data at all (35% of all) was "Very low data mb"; and
    those (with at least ``ANY_POPULATION`` of all customers at 0) on which at most
    ``1 - ZERO_SEGMENT`` of the slot's do: "with ..." (the name reads which by the sign of
    the slot's z)."""
    found: list[set[str]] = [set() for _ in range(count)]
    for column in columns:
        if (counts := sides[column]) is None:
            continue
        held, zeros = counts[3], counts[4]
        if not zeros.any():
            continue
        if zeros.sum() >= ANY_POPULATION * held.sum():  # most customers at 0: "with ..."
            # nearly all of the slot above 0: a hotel table's 7% of bookings with children
            # (93% of all have none) was "Very high children"; it is "With children"
            some = (held > 0) & (zeros <= (1 - ZERO_SEGMENT) * held)
            for slot in np.flatnonzero(some):
                found[slot].add(column)
        if zeros.sum() > ZERO_POPULATION * held.sum():
            continue
        for slot in np.flatnonzero((held > 0) & (zeros >= ZERO_SEGMENT * np.maximum(held, 1))):
            found[slot].add(column)
    return found


def _bounded_features(
    infos: Sequence[SlotInfo],
    numeric: Sequence[dict[str, NumericProfile]],
    labels: dict[str, str],
    words: dict[str, Ends],
) -> set[str]:
    """The numeric features whose deciding leaves are all named by their bounds: those where
    some leaf deciding on the feature shares its level with another leaf of the tree. Each
    leaf alone took its level when it was unique: "High call duration" (224-415 s) beside
    "Call duration 415-600" and "Call duration >= 600" (both "very high"), read as the top."""
    leaves = [i for i, info in enumerate(infos) if info.split is not None]
    bounded = set()
    for i in leaves:
        split = infos[i].split
        assert split is not None
        feature = split.feature
        if split.category is not None or feature not in numeric[i] or _is_flag(split, words):
            continue
        level = _trait(feature, numeric[i][feature], labels, words)
        others = (numeric[j][feature] for j in leaves if j != i and feature in numeric[j])
        if any(_trait(feature, p, labels, words) == level for p in others):
            bounded.add(feature)
    return bounded


def _is_flag(split: LeafSplit, words: dict[str, Ends]) -> bool:
    """A split of a 0/1 feature (``auto_renew``) between its 0s and its 1s."""
    ends = words.get(split.feature)
    bound = split.lower if split.upper is None else split.upper if split.lower is None else None
    return ends is not None and ends.flag and bound is not None and 0 < bound <= 1


def _deciding_trait(
    split: LeafSplit,
    numeric: dict[str, NumericProfile],
    siblings: list[dict[str, NumericProfile]],
    labels: dict[str, str],
    words: dict[str, Ends],
    by_bounds: bool = False,
    only: float | None = None,
    yes_no: bool = True,
) -> str:
    """What tells a leaf from its sibling leaves (``tree_names``): the category it is or is
    not; for a 0/1 feature, having it or not (``auto renew``, ``no auto renew``, never
    ``auto renew < 1``); for a numeric feature, its level (``high income``) if no other leaf
    of the tree (``siblings``: all of them) has that level and no leaf deciding on the same
    feature is named by its bounds (``by_bounds``), else its bounds (``income 37,718-40,801``);
    a leaf bounded on both sides that holds one whole number (``only``) is named by it
    (``satisfaction 3``, not ``low satisfaction``: the level of a middle band says little),
    and one bounded above that holds only 0 is ``zero ...`` (not ``... < 1``)."""
    label = labels[split.feature]
    if _is_flag(split, words):
        return words[split.feature].high if split.lower is not None else words[split.feature].low
    if split.category is not None:
        low = split.category.strip().lower()
        if not split.is_category and yes_no and low in YES | NO:  # "not no partner": "partner"
            return label if low in NO else _no(label)
        if len(split.excluded) > 1:  # every category its path excludes, not the last only
            shown = ", ".join(split.excluded[:3]) + (", …" if len(split.excluded) > 3 else "")
            return f"{label} not {shown}"
        if not split.is_category:
            return _not_category(split.category, label, yes_no)
        return _category_trait(split.category, label, 1.0, yes_no)
    if only is not None:
        return (
            _zero(label) if only == 0 and split.lower is None else f"{label} {bounds_number(only)}"
        )
    own = numeric.get(split.feature)
    if own is not None and not by_bounds:
        level = _trait(split.feature, own, labels, words)
        others = [s[split.feature] for s in siblings if split.feature in s]
        if all(_trait(split.feature, p, labels, words) != level for p in others):
            return level
    return bounds_text(label, split)


UNKNOWN_NAMED = 0.05  # a leaf's missing values of its deciding feature, named from this share


class Held(NamedTuple):
    """What a leaf holds of its deciding numeric feature: its one whole value when it is
    bounded on both sides and holds no other (else None), and its share of missing values
    when its deciding split takes them (else 0)."""

    only: float | None
    unknown: float


def _held(values: pd.Series, split: LeafSplit) -> Held:
    if split.category is not None or not len(values):
        return Held(None, 0.0)
    known = pd.to_numeric(values, errors="coerce").dropna().unique()
    only = None
    # (or bounded above only, holding only 0: "num catalog purchases < 1" was a leaf of
    # customers who never bought from the catalog)
    ends = split.lower is not None or (len(known) == 1 and float(known[0]) == 0)
    if ends and split.upper is not None and len(known) == 1:
        only = float(known[0]) if float(known[0]).is_integer() else None
    return Held(only, float(values.isna().mean()) if split.missing else 0.0)


def _leaf_name(
    split: LeafSplit,
    numeric: dict[str, NumericProfile],
    categorical: dict[str, dict[str, CategoryShare]],
    siblings: list[dict[str, NumericProfile]],
    labels: dict[str, str],
    words: dict[str, Ends],
    used: set[str],
    by_bounds: bool = False,
    held: Held | None = None,
) -> str:
    """A tree leaf's name: what tells it from its sibling leaves first, then its strongest
    trait on another feature (more only to be unique); unique ignoring case. A leaf whose
    path excludes a feature's categories and holds one category of it (90% of the leaf or
    more) is named by it (``Enterprise plan``, not ``Plan not basic, free, pro``; ``Region
    unknown`` for the customers without one, not ``Region not APAC, EU``); one whose
    deciding split takes a numeric feature's missing values, when they are at least
    ``UNKNOWN_NAMED`` of it, says so (``High satisfaction or unknown``: the survey's
    non-respondents are not satisfied)."""
    held = held or Held(None, 0.0)
    shares = categorical.get(split.feature, {})
    yes_no = _yes_no(shares)
    # the one category a "not" leaf holds, by its name: a plan's leaf of ``plan not in
    # ['free', 'basic', 'pro']`` was "Plan not basic, free, pro" for its enterprise customers
    top = max(shares.items(), key=lambda kv: kv[1].share, default=None)
    # (a category a name may say: the rare ones' group, ``__infrequent__``, is none)
    if (
        split.category is not None
        and not split.is_category
        and top
        and top[1].share >= 0.9
        and _nameable(top[0])
    ):
        lead = _category_trait(top[0], labels[split.feature], top[1].share, yes_no)
    else:
        lead = _deciding_trait(
            split, numeric, siblings, labels, words, by_bounds, held.only, yes_no
        )
        if held.unknown >= UNKNOWN_NAMED:
            lead = f"{lead} or unknown"
    traits, strong = _traits(numeric, categorical, labels, words, skip=split.feature)
    traits = [t for t in traits if not _repeats(t, [lead])]
    taken = {u.lower() for u in used}
    name = lead
    for count in range(1 if strong else 0, len(traits) + 1):
        name = ", ".join([lead, *traits[:count]])
        name = name[0].upper() + name[1:]
        if name.lower() not in taken:
            return name
    suffix, base = 2, name
    while name.lower() in taken:
        head, tail = _lead_and_rest(base)
        name = f"{head} #{suffix}" + (f",{tail}" if tail else "")
        suffix += 1
    return name


FAINT_Z = 0.05  # a difference too small to name a segment by, enough to tell two apart


def _faint(numeric: dict[str, NumericProfile], labels: dict[str, str]) -> list[str]:
    """Numeric differences below ``DISTINCT_Z``, largest first, worded as slight."""
    faint = sorted(
        ((p.z, name) for name, p in numeric.items() if FAINT_Z <= abs(p.z) < DISTINCT_Z),
        key=lambda r: -abs(r[0]),
    )
    return [f"slightly {'higher' if z > 0 else 'lower'} {labels[name]}" for z, name in faint]


def _tie_breakers(
    numeric: dict[str, NumericProfile], labels: dict[str, str], words: dict[str, Ends]
) -> list[str]:
    """Mean differences no trait says (slight ones, or ones most of the segment does not
    share), largest first, worded as comparisons of the mean (``higher feature 06 events``,
    ``slightly lower seats``): the last thing that tells apart two segments whose traits are
    the same, before a bare ``#2`` (an audit's SaaS segments "Low seats, low MRR" and "Low
    MRR #2, low seats" differed on a usage count at +0.4 sd against -0.3 sd)."""
    unsaid = sorted(
        (
            (p.z, name)
            for name, p in numeric.items()
            if abs(p.z) >= FAINT_Z
            and not (abs(p.z) >= DISTINCT_Z and (_named_side(p) or _flag(words, name)))
        ),
        key=lambda r: -abs(r[0]),
    )
    return [
        f"{'slightly ' if abs(z) < DISTINCT_Z else ''}{'higher' if z > 0 else 'lower'} "
        f"{labels[name]}"
        for z, name in unsaid
    ]


def _nameable(category: str) -> bool:
    """A category a name may say: any written in the data, and the missing one (``region
    unknown``: a segment of the customers without a region); not other internal ones."""
    return category == MISSING_CATEGORY or not category.startswith("__")


def _defines(share: CategoryShare) -> bool:
    """Most of the segment holds the category, well above its population share; or it is
    far more common there than elsewhere."""
    if share.share >= 0.5 and share.z >= CATEGORY_Z:
        return True
    return share.z >= 1.5 and share.share >= 0.3


def _lacking(
    categorical: dict[str, dict[str, CategoryShare]],
) -> list[tuple[str, str, CategoryShare]]:
    """The common categories a segment all but lacks (at most 5% of it, at least 20% of all),
    of the features with no category that defines it: ``(feature, category, share)``."""
    return [
        (feature, cat, share)
        for feature, shares in categorical.items()
        if not any(map(_defines, shares.values()))
        for cat, share in shares.items()
        if not cat.startswith("__")
        and not (_yes_no(shares) and cat.strip().lower() in YES | NO)
        and share.share <= 0.05
        and share.population_share >= 0.2
    ]


def _trait_set(name: str) -> frozenset[str]:
    """The traits a name says, in any order."""
    return frozenset(re.split(r"(?:, | and )(?![^()]*\))", name.lower()))


def _generate_name(
    numeric: dict[str, NumericProfile],
    categorical: dict[str, dict[str, CategoryShare]],
    labels: dict[str, str],
    used: set[str],
    words: dict[str, Ends] | None = None,
    leads: set[str] | None = None,
    furthest: set[str] | None = None,
    zero: set[str] | None = None,
) -> str:
    """Two or more traits, the strongest first; no two segments share a name or a leading
    phrase (``leads``: the first traits already taken, updated here); ``zero``: the features
    (``_all_but_zero``) said as ``zero ...``."""
    leads = set() if leads is None else leads
    traits, strong = _traits(
        numeric, categorical, labels, words or {}, furthest=furthest, zero=zero
    )
    traits = traits or ["typical customers"]
    found = next((t for t in traits if t.lower() not in leads), None)
    if found is not None:
        parts = [found]
    else:  # every trait leads another segment already: lead with two of them (the second
        # may be a faint difference: "Two year contract and slightly lower tenure" tells two
        # two-year segments apart where "#2" would not)
        faint = [t for t in _faint(numeric, labels) if not _repeats(t, traits)]
        parts = [*traits, *faint][:2]
    lead = " and ".join(parts)
    rest = [t for t in traits if t not in parts]
    # a second trait when it is more than slight; more (or slight ones) only to be unique
    first = 1 if strong - (lead in traits[:strong]) > 0 and rest else 0
    name = lead
    # the same traits in another order ("High MRR, engaged" beside "Engaged, high MRR") tell
    # a reader nothing either
    said = {_trait_set(u) for u in used}

    def taken(name: str) -> bool:
        lead = _lead_and_rest(name)[0].lower()
        return name in used or lead in leads or _trait_set(name) in said

    # traits first; comparisons of the mean only where the traits cannot tell it apart
    rest += [t for t in _tie_breakers(numeric, labels, words or {}) if t not in parts]
    for count in range(first, max(len(rest), first) + 1):
        name = ", ".join([lead, *rest[:count]])
        name = name[0].upper() + name[1:]
        if not taken(name):
            break
    suffix = 2
    base = name
    while taken(name):
        head, tail = _lead_and_rest(base)
        name = f"{head} #{suffix}" + (f",{tail}" if tail else "")
        suffix += 1
    leads.add(_lead_and_rest(name)[0].lower())
    return name


def _describe(
    share: float,
    numeric: dict[str, NumericProfile],
    categorical: dict[str, dict[str, CategoryShare]],
    labels: dict[str, str],
    flags: dict[str, tuple[str, float]] | None = None,
) -> str:
    """``18.0% of customers: 96% Two year contract (23% of all); tenure above average ...``:
    the categories that define the segment (or that it all but lacks: ``0% Month-to-month
    contract (55% of all)``), then its three strongest numeric differences; a 0/1 feature's
    (``flags``: its words and its share of all) as a category's, ``100% in guild (31% of
    all)``, never "in guild above average (mean 1, +1.2 sd ...)"."""
    flags = flags or {}
    defining = sorted(
        (
            (share_.z, f"{share_.share:.0%} "
             f"{_category_trait(cat, labels[feature], 1.0, _yes_no(shares))} "
             f"({share_.population_share:.0%} of all)")
            for feature, shares in categorical.items()
            for cat, share_ in shares.items()
            if _nameable(cat) and _defines(share_)
        ),
        key=lambda r: -r[0],
    )  # fmt: skip
    lacking = sorted(
        (
            (-share_.z, f"{percent(share_.share)} "
             f"{_category_trait(cat, labels[feature], 1.0, False)} "
             f"({share_.population_share:.0%} of all)")
            for feature, cat, share_ in _lacking(categorical)
        ),
        key=lambda r: -r[0],
    )  # fmt: skip
    defining = (defining + lacking)[:3] if defining else lacking
    ranked = sorted(numeric.items(), key=lambda kv: -abs(kv[1].z))[:3]
    differences = [
        f"{percent(p.mean)} {flags[name][0]} ({percent(flags[name][1])} of all)"
        if name in flags
        else f"{labels[name]} {'above' if p.z > 0 else 'below'} average "
        f"(mean {plain_number(p.mean)}, {p.z:+.1f} sd{_side_text(p)})"
        for name, p in ranked
        if abs(p.z) >= DISTINCT_Z
    ]
    bits = [text for _, text in defining[:3]] + differences
    detail = "; ".join(bits) if bits else "close to the population average on every feature"
    if defining and not differences and numeric:  # (a table of categories only has none)
        detail += "; close to the population average on every numeric feature"
    return f"{share:.1%} of customers: {detail}."


def _indistinct(
    numeric: dict[str, NumericProfile], categorical: dict[str, dict[str, CategoryShare]]
) -> bool:
    num_max = max((abs(p.z) for p in numeric.values()), default=0.0)
    cat_max = max((abs(s.z) for shares in categorical.values() for s in shares.values()), default=0)
    return num_max < DISTINCT_Z and cat_max < 2 * DISTINCT_Z


def _outcome_test(
    name: str,
    values: pd.Series,
    slots: np.ndarray,
    segments: list[SegmentInfo],
    positive: str | None,
) -> OutcomeTest:
    present = values.notna().to_numpy()
    vals, groups = values.to_numpy(dtype=np.float64)[present], slots[present]
    effect = outcome_effect(vals, groups)
    means = [m for s in segments if s.size and (m := s.outcomes.get(name)) is not None]
    return OutcomeTest(
        name=name,
        kind="binary" if effect.binary else "numeric",
        test="chi-square" if effect.binary else "Kruskal-Wallis",
        statistic=effect.statistic,
        p_value=effect.p_value,
        significant=effect.p_value is not None and effect.p_value < 0.05,
        overall_mean=float(vals.mean()) if len(vals) else None,
        positive=(positive or "1") if effect.binary else None,
        effect_size=effect.size,
        effect_measure="Cramér's V" if effect.binary else "epsilon²",
        segment_min=min(means) if means else None,
        segment_max=max(means) if means else None,
        missing=int((~present).sum()),
    )
