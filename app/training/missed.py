"""A note where one feature's values alone separate an outcome better than the segments.

The outcome-weighted space weighs each column by its correlation with the outcome, which sees
an effect in one direction only: a marketing table's lifetime value, highest for customers of
two policies and lower for one or three, left the default's segments at epsilon² 0.18 where a
tree on the outcome reached 0.66, and the summary said nothing. A feature of at most
``MAX_VALUES`` values, whose values as groups separate an outcome beyond chance, by at least
``MIN_EFFECT`` and ``RATIO`` times the segments' effect, is named with the tree that splits on
it. Checked for clustered segments only (a tree grown on the outcome already splits on it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.registry.manifest import OutcomeTest
from app.training.config import TrainConfig
from app.training.effects import outcome_effect

MAX_VALUES = 12  # a feature of more values is no set of groups a reader would compare
MIN_EFFECT = 0.05  # below it, neither the feature nor the segments separate much
SAMPLE = 50_000  # rows read: a larger table is checked on a seeded sample of this many
RATIO = 1.5  # as the selection's own note on a candidate that separated an outcome better


DETERMINED = 0.9  # an effect this large of one feature's values: the outcome written again


def checked_rows(config: TrainConfig, frame: pd.DataFrame, outcomes: list[str]) -> pd.DataFrame:
    """The rows both checks read: the features and outcomes of every row, or of a seeded
    sample of ``SAMPLE`` rows of a larger table (effect sizes settle long before; a 1M-row
    job paid 1.3 s reading every row, then 0.13 s per check drawing the sample), drawn once."""
    columns = list(dict.fromkeys([*config.feature_names, *(o for o in outcomes if o in frame)]))
    # the sample's rows drawn first, then its columns taken: the same rows (a draw depends
    # only on the row count) without a copy of the columns of every row (0.07 s at 1M)
    rows = frame.sample(SAMPLE, random_state=config.model.seed) if len(frame) > SAMPLE else frame
    return rows[columns]


def outcome_in_features(
    config: TrainConfig, frame: pd.DataFrame, tests: list[OutcomeTest]
) -> tuple[list[str], set[str]]:
    """A note per feature of few values that all but determines an outcome (its values as
    groups separate it at ``DETERMINED`` or more), and those features' names, read on
    ``frame``'s rows (``checked_rows``): the outcome
    written another way, or recorded with or after it (a hotel table's
    ``reservation_status``, Canceled / No-Show / Check-Out, declared as a feature beside
    ``is_canceled``, was advised as the split of a tree, and its one-hot columns took the
    outcome-weighted space, whose candidates all held a 1% No-Show segment)."""
    notes: list[str] = []
    found: set[str] = set()
    few = [f.name for f in config.features if 2 <= frame[f.name].nunique() <= MAX_VALUES]
    for test in tests:
        if test.name not in frame:
            continue
        y = frame[test.name].to_numpy(dtype=np.float64)
        present = ~np.isnan(y)
        for name in few:
            if name in found:
                continue
            values = frame[name].to_numpy()[present]
            codes, uniques = pd.factorize(values, use_na_sentinel=False)
            effect = outcome_effect(y[present], codes + 1, binary=test.kind == "binary")
            if effect.size is None or effect.size < DETERMINED:
                continue
            found.add(name)
            means = pd.Series(y[present]).groupby(codes).mean()
            texts = ["missing" if pd.isna(u) else repr(_text(u)) for u in uniques]
            shown = ", ".join(
                f"{texts[c]} {means[c]:.2g}" for c in sorted(means.index, key=texts.__getitem__)[:4]
            )
            measure = "Cramér's V" if test.kind == "binary" else "epsilon²"
            notes.append(
                f"{name}: its values all but determine the outcome {test.name} ({measure} "
                f"{effect.size:.2f}; {test.name}'s mean by its value: {shown}"
                f"{' …' if len(means) > 4 else ''}): it is the outcome written another way, "
                "or recorded with or after it (a booking's final status, a call's duration), "
                "which the service cannot know when it assigns a customer; segments on it say "
                "only what the outcome says: leave it out of [[features]]"
            )
    return notes, found


def _text(value: object) -> str:
    """A value as the file wrote it: ``1``, not ``1.0``, for a whole number."""
    if isinstance(value, float) and value.is_integer():
        return f"{value:.0f}"
    return str(value)


def missed_features(
    config: TrainConfig,
    frame: pd.DataFrame,
    tests: list[OutcomeTest],
    skip: set[str] | frozenset[str] = frozenset(),
) -> list[str]:
    """One note per outcome: the feature of few values that separates it best, where it
    does so beyond chance (Bonferroni over the features) and ``RATIO`` times the segments, on
    ``frame``'s rows (``checked_rows``);
    never one of ``skip`` (a feature that is the outcome written again: no tree to advise)."""
    notes: list[str] = []
    few = [
        f.name
        for f in config.features
        if f.name not in skip and 2 <= frame[f.name].nunique() <= MAX_VALUES
    ]
    for test in tests:
        if test.effect_size is None or test.name not in frame or not few:
            continue
        y = frame[test.name].to_numpy(dtype=np.float64)
        present = ~np.isnan(y)
        best: tuple[float, str, int] | None = None
        for name in few:
            codes, values = pd.factorize(frame[name].to_numpy()[present])
            effect = outcome_effect(y[present], codes + 1, binary=test.kind == "binary")
            if effect.size is None or effect.p_value is None or effect.p_value >= 0.05 / len(few):
                continue
            if best is None or effect.size > best[0]:
                best = (effect.size, name, len(values))
        if best is None or best[0] < max(MIN_EFFECT, RATIO * test.effect_size):
            continue
        size, name, count = best
        measure = "Cramér's V" if test.kind == "binary" else "epsilon²"
        notes.append(
            f"{name} alone (its {count} values as groups) separates {test.name} at {measure} "
            f"{size:.2f}, more than the segments' {test.effect_size:.2f}: they cut across it "
            "(its effect is not in one direction, or too narrow to shape them); a tree on the "
            f'outcome (algorithm = "tree", target = "{test.name}") splits on it '
            "(docs/training.md#tree-segments)"
        )
    return notes
