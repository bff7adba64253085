"""What a training run keeps for drift and convergence: called once by the training job.

``add_training_drift`` puts into a new version's manifest the training distribution of every
feature (``DriftReference``: decile bins or category shares, and each segment's share) and
the pairs of segments that are indistinct (``ConvergencePair``), and flags those segments
``converging``.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from app.drift.psi import factor_category_counts, numeric_reference, shares
from app.registry.manifest import (
    ConvergencePair,
    DriftReference,
    FeatureReference,
    Manifest,
    SegmentInfo,
)
from app.training.config import NumericFeature, TrainConfig
from app.training.rules.values import category_factors

BINS = 10
MAX_CATEGORIES = 50  # rarer categories count as "other"
CLOSE_CENTRES = 0.25
"""Segments whose standardised profiles differ by less than this (RMS of the z differences
over every feature and category) are ``close_centres``; planted, actionable segments differ
by about 1."""
SAME_OUTCOMES_P = 0.05
CONVERGING = "converging"


def add_training_drift(
    manifest: Manifest,
    config: TrainConfig,
    frame: pd.DataFrame,
    slots: np.ndarray,
    slot_ids: Sequence[str],
    outcomes: Sequence[str],
    features: list[FeatureReference] | None = None,
) -> None:
    """Fill ``drift_reference`` and ``convergence`` of a manifest being written;
    ``features``: ``feature_references(config, frame)`` if computed already."""
    manifest.drift_reference = build_reference(config, frame, manifest.segments, features=features)
    # each row's id as a categorical over the slots' ids: a segment's ``labels == id`` then
    # compares the rows' slot numbers, not a million strings (nor makes them first)
    labels = pd.Categorical.from_codes(slots, categories=pd.Index(list(slot_ids)))
    outcome_frame = frame[list(outcomes)] if outcomes else None
    manifest.convergence = convergence(manifest.segments, labels, outcome_frame)
    converging = {sid for pair in manifest.convergence for sid in pair.segments}
    for seg in manifest.segments:
        if seg.id in converging and CONVERGING not in seg.flags:
            seg.flags.append(CONVERGING)


def build_reference(
    config: TrainConfig,
    frame: pd.DataFrame,
    segments: Sequence[SegmentInfo],
    bins: int = BINS,
    features: list[FeatureReference] | None = None,
) -> DriftReference:
    return DriftReference(
        bins=bins,
        rows=len(frame),
        features=feature_references(config, frame, bins) if features is None else features,
        segment_shares={s.id: s.share for s in segments},
    )


def feature_references(
    config: TrainConfig, frame: pd.DataFrame, bins: int = BINS
) -> list[FeatureReference]:
    """Every feature's training distribution: decile bins or category shares. Reads only
    the data, nothing a fit makes (the training job computes it beside the fit)."""
    features = []
    for f in config.features:
        column = frame[f.name]
        if isinstance(f, NumericFeature):
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
            edges, counts = numeric_reference(values, bins)
            features.append(
                FeatureReference(name=f.name, type="numeric", edges=edges, shares=_rounded(counts))
            )
        else:
            # the categories as the model compares them (0.0 in a column with gaps is "0"),
            # most frequent first, ties in order of first appearance (as value_counts ranks)
            codes, uniques = category_factors(column)
            present = np.bincount(codes[codes >= 0], minlength=len(uniques))
            ranked = pd.Series(present, index=uniques).sort_values(ascending=False, kind="stable")
            categories = [str(c) for c in ranked.index[:MAX_CATEGORIES]]
            counts = factor_category_counts(codes, uniques, categories)
            features.append(
                FeatureReference(
                    name=f.name, type="categorical", categories=categories, shares=_rounded(counts)
                )
            )
    return features


def _rounded(counts: np.ndarray) -> list[float]:
    return [round(s, 8) for s in shares(counts.tolist())]


def profile_vector(seg: SegmentInfo) -> dict[str, float]:
    """A segment's centre in the standardised space: its z per feature and per category."""
    vector = {f"n:{name}": p.z for name, p in seg.numeric.items()}
    for name, cats in seg.categorical.items():
        vector.update({f"c:{name}={cat}": c.z for cat, c in cats.items()})
    return vector


def convergence(
    segments: Sequence[SegmentInfo],
    labels: np.ndarray | pd.Categorical[str] | None = None,
    outcomes: pd.DataFrame | None = None,
    close: float = CLOSE_CENTRES,
) -> list[ConvergencePair]:
    """Pairs of segments with close centres, or whose outcomes do not differ (every outcome's
    Welch t-test p >= 0.05 between their members; needs ``labels`` and ``outcomes``). Close
    centres with an outcome that differs are no pair: with many features the root mean square
    dilutes one clear difference, and an e-commerce table's "Lapsed" and "Very lapsed"
    segments, 0.94 sd apart on days since the last order and at 29% and 68% churn, were 0.22
    apart over 24 dimensions, flagged with the advice to merge them."""
    pairs: list[ConvergencePair] = []
    vectors = {s.id: profile_vector(s) for s in segments}
    # each segment's outcome values, picked once: not two passes over every row per pair
    values: dict[str, list[np.ndarray]] = {}
    if labels is not None and outcomes is not None:
        # an outcome one value for every customer tells no segment from another: it says
        # nothing of a pair either (a log ending before its future window, every
        # future_orders 0, flagged every pair "same_outcomes", merge them)
        varied = [c for c in outcomes.columns if _varies(outcomes[c])]
        if varied:
            values = _outcome_values(outcomes[varied], labels, list(vectors))
    for a, b in itertools.combinations(sorted(vectors), 2):
        va, vb = vectors[a], vectors[b]
        dims = sorted(set(va) | set(vb))
        diffs = [(va.get(d, 0.0) - vb.get(d, 0.0)) ** 2 for d in dims]
        distance = math.sqrt(sum(diffs) / len(diffs)) if diffs else 0.0
        reasons = ["close_centres"] if distance < close else []
        if values and _same_outcomes(values[a], values[b]):
            reasons.append("same_outcomes")
        elif values:  # an outcome differs: that tells them apart, whatever their centres
            reasons = []
        if reasons:
            pairs.append(
                ConvergencePair(segments=(a, b), distance=round(distance, 4), reasons=reasons)
            )
    return pairs


def convergence_advice(manifest: Manifest) -> str | None:
    """What can be done about a version's converging pairs, as it stands (None when there is
    none). Fewer segments merge a pair of fitted ones: a lower ``k_max`` where k is above
    ``k_min``; at ``k_min`` a lower ``k_max`` cannot help (an audit was told to lower it with k
    already at k_min), a lower ``k_min`` lets the selection consider fewer; at 2 nothing can.
    A configured rule segment is kept whatever k is: its rule decides it."""
    if not manifest.convergence:
        return None
    rules = {s.id for s in manifest.segments[: len(manifest.config.get("rules") or [])]}
    pairs = [p.segments for p in manifest.convergence]
    advice = []
    if any(not set(pair) & rules for pair in pairs):
        selection = manifest.selection
        k, k_min, k_max = selection.chosen_k, selection.k_min, selection.k_max
        what = "leaves" if manifest.algorithm == "tree" else "segments"
        if k > k_min:
            advice.append(
                f"fewer {what} may merge them: k = {k} was chosen among {k_min}..{k_max}, and "
                f"k_max = {k - 1} makes the selection choose fewer; or act on each pair as one"
            )
        elif k_min > 2:
            advice.append(
                f"k = {k} is already k_min, the fewest {what} the selection may choose (a lower "
                f"k_max cannot merge them): k_min = {k_min - 1} lets it consider fewer; or act "
                "on each pair as one"
            )
        else:
            advice.append(
                f"k = {k} is the fewest {what} a model fits: no setting merges them; act on "
                "each pair as one, or keep both where their profiles differ enough to matter"
            )
    ruled = sorted({sid for pair in pairs if set(pair) & rules for sid in pair if sid in rules})
    if ruled:
        one = len(ruled) == 1
        advice.append(
            f"{', '.join(ruled)}: {'a rule segment' if one else 'rule segments'}, kept whatever "
            f"k is; change {'its rule' if one else 'their rules'} if {'its' if one else 'their'} "
            "customers are like those of the segment beside it"
        )
    return "; ".join(advice)


def _varies(column: pd.Series) -> bool:
    values = column.to_numpy(dtype=np.float64)
    finite = values[np.isfinite(values)]
    return len(finite) > 0 and bool(np.ptp(finite) > 0)


def _outcome_values(
    outcomes: pd.DataFrame, labels: np.ndarray | pd.Categorical[str], segment_ids: list[str]
) -> dict[str, list[np.ndarray]]:
    """Per segment, per outcome column: its members' finite values."""
    columns = [outcomes[c].to_numpy(dtype=np.float64) for c in outcomes.columns]
    values = {}
    for sid in segment_ids:
        members = labels == sid
        picked = [v[members] for v in columns]
        values[sid] = [v[np.isfinite(v)] for v in picked]
    return values


def _same_outcomes(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    """Whether no outcome differs between two segments (``a``, ``b``: their finite values
    per outcome column)."""
    for xa, xb in zip(a, b, strict=True):
        if len(xa) < 2 or len(xb) < 2:
            return False  # too few to say they are the same
        if np.ptp(np.concatenate([xa, xb])) == 0:
            continue  # constant: no difference to find on this outcome
        with warnings.catch_warnings():
            # nearly identical values (a segment whose outcome is all but constant): scipy's
            # "precision loss" warning would reach a user's terminal; the p-value is still
            # what decides, and a non-finite one counts as a difference
            warnings.simplefilter("ignore", RuntimeWarning)
            p = stats.ttest_ind(xa, xb, equal_var=False).pvalue
        if not math.isfinite(p) or p < SAME_OUTCOMES_P:
            return False
    return True
