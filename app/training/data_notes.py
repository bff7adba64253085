"""What the loaded data says before anything is fitted: each ``transform = "auto"`` resolved,
and the notes the summary and the report show (skewed features, rare flags, negatives under
log1p, near-duplicate categories, uninformative features).

Only numpy and pandas: the job runs these while scikit-learn is not imported yet.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import pandas as pd

from app.training.config import NumericFeature, TrainConfig
from app.training.rules import canonical_category, name_text
from app.training.sentinels import sentinel_codes
from app.words import counted, percent


def data_notes(config: TrainConfig, frame: pd.DataFrame) -> tuple[TrainConfig, list[str]]:
    """``config`` with its transforms resolved on ``frame`` (``resolve_transforms``), and
    every note on the data, in the order the summary lists them."""
    config, notes = resolve_transforms(config, frame)
    # each categorical feature's distinct present values, found once for the three notes
    # that read them (a hash pass over every row each time)
    distinct = {
        f.name: frame[f.name].dropna().unique() for f in config.features if f.type == "categorical"
    }
    notes.extend(negatives_under_log(config, frame))
    notes.extend(near_duplicate_categories(config, frame, distinct))
    notes.extend(grouped_categories(config, frame))
    notes.extend(ordered_answers(config, frame, distinct))
    notes.extend(numeric_bands(config, frame, distinct))
    notes.extend(skewed_without_transform(config, frame))
    notes.extend(uninformative_features(config, frame))
    notes.extend(id_like_numbers(config, frame))
    notes.extend(coded_categories(config, frame))
    notes.extend(sentinel_codes(config, frame))
    return config, notes


def negatives_under_log(config: TrainConfig, frame: pd.DataFrame) -> list[str]:
    """A note per ``log1p`` feature holding negative values (after its ``clip``): the
    transform counts them as 0, so a customer at -250 looks like one at 0."""
    notes = []
    for feature in config.features:
        if not isinstance(feature, NumericFeature) or feature.transform != "log1p":
            continue
        values = frame[feature.name].to_numpy(dtype=np.float64, na_value=np.nan)
        lower = feature.clip[0] if feature.clip else None
        if lower is not None:
            values = np.maximum(values, lower)
        # below a rounding error of the column's scale: a customer who returned everything
        # has a net of -5.3e-15, not a negative amount
        scale = float(np.nanmax(np.abs(values), initial=0.0))
        negative = values < -1e-9 * max(scale, 1.0)
        if negative.any():
            many = int(negative.sum())
            notes.append(
                f"{feature.name}: {counted(many, 'negative value')} (the lowest "
                f"{float(np.nanmin(values)):g}) {'counts' if many == 1 else 'count'} as 0 under "
                'transform = "log1p"; to keep them apart, write transform = "none"'
            )
    return notes


SKEWED = 2.0  # a skewness above which a feature's largest values pull the clusters
HEAD_ROWS = 1_000  # rows looked at first where the first of them can already decide
NEGATIVE_SHARE = 0.01  # a skewed feature may have this share of negatives and still be logged
SKEW_SAMPLE = 100_000  # values a feature's skewness is measured on


def heavy_skew(values: pd.Series) -> str | None:
    """How a numeric feature's present values are heavily right-skewed (``skewness 6.5, 40%
    zeros``), or None: fewer than three distinct values (a flag: ``rare_flag``), skewness at
    most ``SKEWED``, or more than ``NEGATIVE_SHARE`` of them negative (a net spend's few
    refunders count as 0 under log1p, noted; a balance that is often negative is no tail to
    log: ``negative_tail``).
    The skewness is of the values within their 1st and 99th percentiles: a tail, not a few
    outliers (a marketing table's Income, skewness 6.8 from one 666,666 among incomes up to
    160,000, is symmetric within them, 0.0, and its segments lost their stability logged).
    Measured on a seeded sample of ``SKEW_SAMPLE`` values: the same answer, a tenth of the
    time of a million (0.08 s a feature)."""
    shape = _shape(values)
    if shape is None or shape[1] > NEGATIVE_SHARE or not shape[0] > SKEWED:
        return None
    skew, _, zeros = shape
    return f"skewness {skew:.1f}" + (f", {zeros:.0%} zeros" if zeros >= 0.05 else "")


def negative_tail(values: pd.Series) -> str | None:
    """How a feature ``heavy_skew`` leaves unlogged for its negatives is as heavily skewed
    either way (``skewness 3.1, 5% negative``), or None. Left as it is, its tail sets the
    segments as a spend column's does (a net spend with 5% refunders made a 0.1% segment of
    its two biggest spenders, and the summary said nothing)."""
    shape = _shape(values)
    if shape is None or shape[1] <= NEGATIVE_SHARE or not abs(shape[0]) > SKEWED:
        return None
    return f"skewness {shape[0]:.1f}, {percent(shape[1])} negative"


def _shape(values: pd.Series) -> tuple[float, float, float] | None:
    """The skewness within the 1st and 99th percentiles, and the shares of negatives and of
    zeros, of a seeded sample of ``values`` (None: fewer than three distinct values)."""
    if len(values) > SKEW_SAMPLE:
        rows = np.random.default_rng(0).choice(len(values), SKEW_SAMPLE, replace=False)
        values = values.iloc[np.sort(rows)]
    if len(values) < 3 or values.nunique() < 3:
        return None
    low, high = values.quantile([0.01, 0.99])
    skew = float(cast(float, values.clip(low, high).skew()))
    return skew, float((values < 0).mean()), float((values == 0).mean())


def resolve_transforms(config: TrainConfig, frame: pd.DataFrame) -> tuple[TrainConfig, list[str]]:
    """The config with each ``transform = "auto"`` (the default) resolved on the training
    data: ``log1p`` for a heavily skewed feature without ``clip`` or ``winsorize`` (money,
    counts: untransformed, their few largest values set the segments: a card table's
    purchases and cash advances made one 80% segment of "typical customers"), else
    ``none``; and a note naming the features it logged. The version keeps the resolved
    transform (its config, schema and pipeline), so serving and retrains of it read the
    same."""
    features, logged = [], []
    for feature in config.features:
        if isinstance(feature, NumericFeature) and feature.transform == "auto":
            trimmed = feature.winsorize is not None or feature.clip is not None
            skew = None if trimmed else heavy_skew(frame[feature.name].dropna())
            feature = feature.model_copy(update={"transform": "log1p" if skew else "none"})
            if skew:
                logged.append(f"{feature.name} ({skew})")
        features.append(feature)
    config = config.model_copy(update={"features": features})  # "none" recorded too
    if not logged:
        return config, []
    shown = ", ".join(logged[:LISTED])
    if len(logged) > LISTED:  # a wide table's 38 such features took 13 lines of the summary
        shown += (
            f", and {len(logged) - LISTED} more (each feature's transform is in the "
            "manifest's features and the report's profile)"
        )
    note = (
        f'log1p-transformed as heavily skewed (transform = "auto", the default; write '
        f'transform = "none" to keep a feature as it is): {shown}'
    )
    return config, [note]


LISTED = 8  # features a note names before it counts the others


def skewed_without_transform(config: TrainConfig, frame: pd.DataFrame) -> list[str]:
    """A note per untransformed, untrimmed numeric feature that is heavily skewed (money,
    counts; or a net amount with many negatives, ``negative_tail``): its few largest values
    set the clusters (an audit's spend column made a 0.8% segment of big spenders and left
    the rest to age); and
    per rare two-valued flag (``rare_flag``), which no transform changes."""
    notes = []
    for feature in config.features:
        if not isinstance(feature, NumericFeature):
            continue
        values = frame[feature.name].dropna()
        # three values among the first rows already rule a flag out, without hashing them all
        if values.iloc[:HEAD_ROWS].nunique() <= 2 and values.nunique() == 2:
            notes.extend(rare_flag(feature.name, values))
            continue
        if feature.transform != "none":
            continue
        if feature.winsorize is not None or feature.clip is not None:
            continue
        if skew := heavy_skew(values):
            notes.append(
                f"{feature.name}: heavily skewed ({skew}): its largest values pull the "
                'segments; consider transform = "log1p"'
            )
        elif tail := negative_tail(values):
            end = "most negative" if tail.startswith("skewness -") else "largest"
            notes.append(
                f"{feature.name}: heavily skewed ({tail}): its {end} values pull the "
                "segments, and log1p would count its negatives as 0; consider winsorize = "
                "[0.01, 0.99], or a rule for the tail"
            )
    return notes


def rare_flag(name: str, values: pd.Series) -> list[str]:
    """A note for a two-valued feature whose rarer value few customers hold (as skewed as
    a spend column, beyond ``SKEWED`` either way): standardised, they lie far from everyone
    else and can make a segment of their own (an audit's hotel guests: 3% repeated guests
    were a segment, noted only as skewed, with log1p advised, which maps 0/1 to 0/0.69 and
    standardises to the same values)."""
    counts = values.value_counts()
    share = float(counts.iloc[-1] / len(values))
    if abs(float(cast(float, values.skew()))) <= SKEWED:
        return []
    rare, usual = float(counts.index[-1]), float(counts.index[0])
    return [
        f"{name}: {percent(share)} of customers hold {rare:g} (the others {usual:g}): "
        f"standardised, they lie {np.sqrt((1 - share) / share):.1f} sd from the rest and can "
        "make a segment of their own, which no transform changes; leave the feature out, or "
        f'give them a rule (when = "{name_text(name)} == {rare:g}")'
    ]


MOSTLY_MISSING = 0.5  # a feature missing in more than this share of the customers


def uninformative_features(config: TrainConfig, frame: pd.DataFrame) -> list[str]:
    """A note per feature holding a single value (once its missing values are set aside):
    it adds nothing (the docs said so, the job said nothing: an audit's ``region``, always
    "global"); and one per feature missing in most rows, where the value filled in (or, for
    a categorical feature, the missing category) stands for most customers (an audit's
    ``nps_score``, 90% missing, was noted only as "5,409 missing values, imputed")."""
    notes = []
    for feature in config.features:
        column = frame[feature.name]
        present = column.dropna()
        missing = len(column) - len(present)
        share = missing / len(column) if len(column) else 0.0
        value = _single_value(feature, present)
        if value is not None:
            if missing and _missing_stands_apart(feature, value):
                notes.append(
                    f"{feature.name}: one value ({value}) besides {missing:,} missing "
                    f"({percent(share)}): it tells only the customers with a value from those "
                    "without; drop it unless that is meant"
                )
            else:
                notes.append(
                    f"{feature.name}: one value ({value}) for every customer"
                    + (f" with one ({missing:,} missing, imputed as the same)" if missing else "")
                    + ": it adds nothing to the segments; drop it"
                )
        elif share > MOSTLY_MISSING:
            filled = (
                "the missing category"
                if feature.type == "categorical"
                else f"the imputed value ({feature.impute})"
            )
            impute = "" if feature.type == "categorical" else "another impute, "
            notes.append(
                f"{feature.name}: {share:.0%} of the customers have no value ({missing:,} of "
                f"{len(column):,}): {filled} stands for most of them and dominates the feature; "
                f"consider dropping it, {impute}or a rule segment for them (when = "
                f"'{feature.name} is missing')"
            )
    return notes


def _single_value(feature: object, present: pd.Series) -> str | None:
    """The one value of a feature's present values, as the summary shows it (``5``,
    ``'global'``), or None when it has none or several (compared as vectors: no hashing of a
    million values)."""
    if present.empty:
        return None
    if isinstance(feature, NumericFeature):
        values = present.to_numpy(dtype=np.float64)
        return f"{values[0]:g}" if values.min() == values.max() else None
    first = present.iloc[0]
    if not (present == first).all():
        return None
    return repr(canonical_category(first))


def _missing_stands_apart(feature: object, value: str) -> bool:
    """Whether a feature's missing values differ from its single value once filled in: a
    categorical feature's missing values are a category of their own; a numeric feature's
    median or mean is that value, zero is another unless the value is 0."""
    if not isinstance(feature, NumericFeature):
        return True
    return feature.impute == "zero" and float(value) != 0.0


ID_LIKE_FROM = 50  # customers: below this, distinct whole numbers are no sign of an id


def id_like_numbers(config: TrainConfig, frame: pd.DataFrame) -> list[str]:
    """A note per numeric feature holding a different whole number for every customer, in a
    run about as long as the customers (``1..n``): a running number or an id, declared as a
    feature by mistake (a new user's bank table's ``id`` was segmented on without a word,
    where a categorical ``policy_number`` got the varied-categories note). The first 1,000
    values decide most columns (a repeat among them), without sorting a million."""
    notes = []
    for feature in config.features:
        if not isinstance(feature, NumericFeature):
            continue
        column = frame[feature.name]
        if len(column) < ID_LIKE_FROM or not _distinct_whole(_finite(column.iloc[:1000])):
            continue
        values = _finite(column)
        if len(values) < ID_LIKE_FROM:
            continue
        low, high = float(values.min()), float(values.max())
        if high - low + 1 > 2 * len(values) or not _distinct_whole(values):
            continue
        notes.append(
            f"{feature.name}: a different whole number for every customer ({low:,.0f} to "
            f"{high:,.0f}), as a running number or an id holds: segments would split customers "
            "by it; leave it out unless it measures something ([data] id_column names the ids)"
        )
    return notes


def _finite(column: pd.Series) -> np.ndarray:
    values: np.ndarray = column.dropna().to_numpy(dtype=np.float64, na_value=np.nan)
    finite: np.ndarray = values[np.isfinite(values)]
    return finite


def _distinct_whole(values: np.ndarray) -> bool:
    return bool((values == np.floor(values)).all()) and len(np.unique(values)) == len(values)


VARIED_CATEGORIES = 50  # more distinct values than this (and over 5% of the customers)


def _distinct(frame: pd.DataFrame, name: str, distinct: Mapping[str, Any] | None) -> Any:
    """A column's distinct present values in order of appearance (``dropna().unique()``),
    from ``distinct`` where ``data_notes`` found them already."""
    if distinct is not None and name in distinct:
        return distinct[name]
    return frame[name].dropna().unique()


def near_duplicate_categories(
    config: TrainConfig, frame: pd.DataFrame, distinct: Mapping[str, Any] | None = None
) -> list[str]:
    """A note per categorical feature whose categories differ only in case or spacing
    (``'pro'``, ``' Pro '``, ``'PRO'``): kept apart, they split one group into several, in
    the profiles, the names and the rules that test one spelling. And one per categorical
    feature of very many values (a date or an amount declared categorical: an audit's
    ``Dt_Customer``, 663 values among 2,240 customers, trained without a word)."""
    notes = []
    for feature in config.features:
        if feature.type != "categorical":
            continue
        present = int(frame[feature.name].notna().sum())
        spellings = pd.Series(_distinct(frame, feature.name, distinct)).astype(str)
        if len(spellings) > VARIED_CATEGORIES and len(spellings) > 0.05 * present:
            notes.append(
                f"{feature.name}: {len(spellings):,} categories among {present:,} "
                "customers; a categorical column this varied is usually a date, an id, an "
                "amount or a fine code (a zip code, a city) (its rare values are grouped as "
                "infrequent): derive a number or a coarser code from it, or leave it out"
            )
        keys = spellings.str.strip().str.casefold().str.split().str.join(" ")
        groups = spellings.groupby(keys.to_numpy()).agg(list)
        merged = groups[groups.map(len) > 1]
        if len(merged):
            example = ", ".join(map(repr, merged.iloc[0][:4]))
            notes.append(
                f"{feature.name}: {len(spellings):,} categories are {len(groups):,} when case "
                f"and spacing are ignored (e.g. {example}); they are kept apart: clean the "
                "column if they name one thing"
            )
    return notes


GROUPED_SHARE = 0.05  # customers in a feature's infrequent group from which the note is given


def grouped_categories(config: TrainConfig, frame: pd.DataFrame) -> list[str]:
    """A note per categorical feature whose categories under its ``min_frequency`` (grouped as
    one, infrequent, by the encoder) hold at least ``GROUPED_SHARE`` of the customers: a
    city of 300 values among 6,000 customers kept 16 and put 46% of the customers in one
    group, which the summary never said (nor does the note on a column of very many values,
    which it may be given beside: how many customers the grouping holds)."""
    notes = []
    for feature in config.features:
        if feature.type != "categorical" or not feature.min_frequency:
            continue
        values = frame[feature.name]
        counts = values.dropna().value_counts()
        rare = counts[counts < feature.min_frequency * len(values)]
        share = rare.sum() / len(values) if len(values) else 0.0
        if len(rare) < 2 or share < GROUPED_SHARE:
            continue
        # none common (3,000 zip codes): "tell apart only its 0 commoner ones" said nothing
        # of a feature that is then one value for every customer
        kept = (
            f"segments, names and rules tell apart only its {len(counts) - len(rare):,} "
            "commoner ones"
            if len(rare) < len(counts)
            else "with no commoner one, it is one category for every customer with a value, "
            "and adds nothing to the segments"
        )
        notes.append(
            f"{feature.name}: {len(rare):,} of its {len(counts):,} categories are each held by "
            f"fewer than min_frequency = {feature.min_frequency:g} of the customers and are "
            f"grouped as one, infrequent ({percent(share)} of the customers): {kept}; a lower "
            "min_frequency keeps more, or write a coarser column into the file (a region for "
            "a city, a zip code's first digits)"
        )
    return notes


# answer scales whose order is their meaning, lowest first: a survey's Likert items
SCALES = (
    ("strongly disagree", "disagree", "somewhat disagree", "neither agree nor disagree",
     "neutral", "somewhat agree", "agree", "strongly agree"),
    ("very dissatisfied", "dissatisfied", "somewhat dissatisfied",
     "neither satisfied nor dissatisfied", "neutral", "somewhat satisfied", "satisfied",
     "very satisfied"),
    ("never", "rarely", "sometimes", "often", "very often", "always"),
    ("very unlikely", "unlikely", "somewhat unlikely", "neutral", "somewhat likely", "likely",
     "very likely"),
    # levels: a customer-segmentation table's Spending_Score of Low, Average and High
    ("very low", "low", "below average", "average", "medium", "moderate", "above average",
     "high", "very high"),
)  # fmt: skip


def ordered_answers(
    config: TrainConfig, frame: pd.DataFrame, distinct: Mapping[str, Any] | None = None
) -> list[str]:
    """One note for the categorical features whose categories are answers on one ordered
    scale (``Strongly disagree`` ... ``Strongly agree``): as categories their order is not
    used, an ``Agree`` as far from ``Strongly agree`` as from ``Strongly disagree``. A survey
    of four such items separated its NPS at epsilon² 0.68 as categories, 0.78 written 1-5."""
    found: list[tuple[str, list[str], list[str]]] = []
    for feature in config.features:
        if feature.type != "categorical":
            continue
        written = [str(v) for v in _distinct(frame, feature.name, distinct)]
        for scale in SCALES:
            on = [w for w in written if _answer(w) in scale]
            # a real survey's "Don't know" or "N/A" beside the scale hid the whole note
            off = [w for w in written if _answer(w) not in scale]
            if len({_answer(w) for w in on}) < 3 or len(off) > MAX_OFF_SCALE:
                continue
            if off and frame[feature.name].isin(off).mean() > OFF_SCALE_SHARE:
                continue
            order = sorted(on, key=lambda w: scale.index(_answer(w)))
            found.append((feature.name, order, off))
            break
    if not found:
        return []
    names = ", ".join(name for name, _, _ in found)
    _, order, off = found[0]
    blank = f", {', '.join(repr(w) for w in off)} left blank" if off else ""
    return [
        f"{names}: answers on an ordered scale "
        f"({order[0]!r} ... {order[-1]!r}), segmented on as categories, whose order is not "
        f"used; written as numbers (1 for {order[0]!r} to {len(order)} for {order[-1]!r}{blank}) "
        "they are a scale the segments follow (docs/training.md#preparing-a-file)"
    ]


MAX_OFF_SCALE = 2  # answers beside the scale: "Don't know", "Prefer not to say"
OFF_SCALE_SHARE = 0.25  # of the customers, at most, for the column to be the scale's


def _answer(written: str) -> str:
    return " ".join(written.split()).casefold()


# a band of numbers: a range (40K - 60K, 18-24, 25 to 34) or a bound (Less than $40K, 65+)
BAND = re.compile(
    r"\d[\d,.]*\s*[kKmM]?\s*(-|–|to)\s*\D{0,2}\d|\d\s*[kKmM]?\s*\+|"
    r"(less|more|fewer|under|over|below|above|up to|<|>)\D{0,8}\d",
    re.IGNORECASE,
)
FIRST_NUMBER = re.compile(r"\d[\d,]*(\.\d+)?")


def _band_start(band: str) -> float:
    """Where a band starts, to order the bands: its first number, a bound below first."""
    match = FIRST_NUMBER.search(band)
    value = float(match.group(0).replace(",", "")) if match else 0.0
    return -1.0 if re.search(r"less|fewer|under|below|<", band, re.IGNORECASE) else value


def numeric_bands(
    config: TrainConfig, frame: pd.DataFrame, distinct: Mapping[str, Any] | None = None
) -> list[str]:
    """One note for the categorical features whose categories are bands of numbers
    (``Less than $40K``, ``$40K - $60K`` ... ``$120K +``; ``18-24`` ... ``65+``), at most
    one other (``Unknown``): as categories their order is not used, as for survey answers."""
    found: list[tuple[str, list[str], list[str]]] = []
    for feature in config.features:
        if feature.type != "categorical":
            continue
        written = [str(v) for v in _distinct(frame, feature.name, distinct)]
        if not 3 <= len(written) <= 20:
            continue
        bands = [w for w in written if BAND.search(w)]
        others = [w for w in written if not FIRST_NUMBER.search(w)]
        if len(bands) < 3 or len(bands) + len(others) < len(written) or len(others) > 1:
            continue
        numbered = [w for w in written if w not in others]
        found.append((feature.name, sorted(numbered, key=_band_start), others))
    if not found:
        return []
    names = ", ".join(name for name, _, _ in found)
    _, order, others = found[0]
    other = f", {others[0]!r} left blank," if others else ""
    return [
        f"{names}: bands of numbers ({order[0]!r} ... {order[-1]!r}), segmented on as "
        f"categories, whose order is not used; written as numbers (each band's middle, say){other} "
        "they are a scale the segments follow (docs/training.md#preparing-a-file)"
    ]


# words of a column's name that say its numbers are codes of categories, not amounts
CODE_WORDS = frozenset(
    {"region", "code", "codes", "type", "category", "class", "channel", "zone", "area",
     "state", "branch", "store", "department", "district", "county", "city", "country",
     "province", "territory", "sector", "industry", "segment", "cluster",
     # a person's kind, coded (the UCI credit-card default table's MARRIAGE 0..3)
     "marriage", "marital", "occupation", "profession", "job", "gender", "sex", "race",
     "ethnicity", "religion", "nationality", "language", "platform", "device", "browser"}
)  # fmt: skip
MAX_CODES = 20  # more distinct whole numbers than this read as a measure, whatever the name
# a name's last word that names a code of the word before it (store_id, Region_No;
# Favorita's store_nbr, a warehouse's region_cd)
ID_WORDS = frozenset({"id", "no", "nr", "nbr", "num", "number", "idx", "key", "cd"})


PREPOSITIONS = frozenset({"in", "at", "on", "per", "of", "with", "since", "by", "for", "from"})


def _named_as_code(name: str) -> bool:
    """Whether the name's head word, its last (``Region_Code``, ``StoreType``, ``channel``;
    ``store_id`` by the word before ``id``), is a code's: a count or an amount of a code
    word's thing (``NumStorePurchases``, ``store_visits``, ``category_spend``) is none."""
    words = [w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", name)]
    # a measure of a code word's thing: the head is before the preposition (years_in_job,
    # months_on_platform, visits_per_device: tenures and counts, not codes)
    if cut := next((i for i, w in enumerate(words) if i and w in PREPOSITIONS), None):
        words = words[:cut]
    if len(words) > 1 and words[-1] in ID_WORDS:
        words.pop()
    return bool(words) and words[-1] in CODE_WORDS


def coded_categories(config: TrainConfig, frame: pd.DataFrame) -> list[str]:
    """A note per numeric feature named as a code (``region``, ``plan_code``,
    ``Region_Code``) holding few whole numbers: segmented on as a number, region 5 sits
    beside 4 and far from 1, which codes do not mean (a telecom table's ``region`` 1..5,
    declared without ``type``, was a scale its segments cut, and no name said a region)."""
    notes = []
    for feature in config.features:
        if not isinstance(feature, NumericFeature):
            continue
        if not _named_as_code(feature.name):
            continue
        values = _finite(frame[feature.name].iloc[:SKEW_SAMPLE])
        if len(values) == 0 or not bool((values == np.floor(values)).all()):
            continue
        codes = np.unique(values)
        if not 3 <= len(codes) <= MAX_CODES:
            continue
        notes.append(
            f"{feature.name}: {len(codes)} whole numbers ({codes[0]:g} to {codes[-1]:g}), named "
            "as a code, segmented on as a number (so that "
            f"{codes[-1]:g} lies beside {codes[-2]:g} and far from {codes[0]:g}): if they "
            'name categories (regions, plans), declare type = "categorical" in its '
            "[[features]] entry"
        )
    return notes
