"""Tree segments: a shallow decision tree on one declared outcome, each leaf a rule segment.

``[model] algorithm = "tree"`` with ``target = "<outcome>"`` fits a ``PlateauTree`` (a
best-first regression tree whose cuts sit in the middle of their plateau of near-best gain,
which resamples move less than the best cut; see ``plateau_tree``) on the outcome (0/1 or
numeric), with at most ``min(k_max, 8)`` leaves, each holding at least ``min_share`` of the
customers: the classic CHAID-style marketing segmentation. The tree reads numeric features
on their original scale (missing values stay missing: the tree learns which way they go) and
each categorical feature as one 0/1 column per category of at least ``min_frequency`` (so a
split reads as the category). Each numeric threshold is moved, within the gap between the
training values it separates, to the shortest decimal there (``tenure_months < 12``, not
``< 11.5000003``): the leaves hold the same customers.

Each leaf becomes a ``RuleSegment`` whose condition is exactly the tree's path, so the service
assigns it through the same compiled rule path as configured rules, with no tree at serving
time. Exactly: the tree compares a value after rounding it to float32 (as scikit-learn's
does), so each bound is the float64 midpoint between float32 neighbours (``_left_bound``); a
test proves over many rows that the rules give ``tree.apply``'s leaf for every row. The
leaf's readable text shows the short decimal (it differs from the served bound only within
float32 rounding of it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    silhouette_score,
)

from app.errors import DataError
from app.registry.manifest import Quality, Selection, SelectionPoint
from app.training.config import MAX_LEAVES, CategoricalFeature, TrainConfig
from app.training.effects import outcome_effect
from app.training.plateau_tree import PlateauTree
from app.training.preprocess import MISSING_CATEGORY, canonical_column
from app.training.quality import QualityResult, _best_jaccard
from app.training.rules import (
    And,
    Compare,
    Condition,
    IsMissing,
    Not,
    Or,
    RuleSegment,
    name_text,
)
from app.training.selection import MIN_SEGMENT, MIN_STABILITY, segment_floor
from app.training.tree_choice import (
    PLATEAUS,
    TOLERANCE,
    TreeChoice,
    choose_shape,
    held_out_effects,
    new_tree,
)


class LeafRules(BaseEstimator):  # type: ignore[misc]
    """The pipeline's last step in a tree model: every customer matches a leaf rule first."""

    def fit(self, X: object, y: object = None) -> LeafRules:
        return self

    def predict(self, X: object) -> np.ndarray:
        raise ValueError("a tree model assigns every customer by its leaf rules")


@dataclass(frozen=True)
class TreeColumns:
    """How the tree reads a frame: numeric features as floats, categories as 0/1 columns."""

    numeric: tuple[str, ...]
    indicators: tuple[tuple[str, str], ...]  # (feature, canonical category)

    @property
    def names(self) -> list[str]:
        return [*self.numeric, *(f"{f} == {c!r}" for f, c in self.indicators)]

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        columns = [frame[n].to_numpy(dtype=np.float64, na_value=np.nan) for n in self.numeric]
        canonical: dict[str, np.ndarray] = {}
        for feature, category in self.indicators:
            if feature not in canonical:
                canonical[feature] = canonical_column(frame[feature]).to_numpy(dtype=object)
            columns.append((canonical[feature] == category).astype(np.float64))
        return np.column_stack(columns) if columns else np.empty((len(frame), 0))


@dataclass
class LeafTree:
    """A fitted tree, how it reads features, and its leaves' node ids in slot order."""

    estimator: PlateauTree
    columns: TreeColumns
    leaves: list[int]  # tree node id of each leaf slot
    target: str
    choice: TreeChoice | None = None  # how its shape was chosen (see ``tree_choice``)

    def apply(self, frame: pd.DataFrame) -> np.ndarray:
        """Each row's leaf slot (0-based, in ``leaves`` order), by the tree itself."""
        return self.slots(self.columns.matrix(frame))

    def slots(self, x: np.ndarray) -> np.ndarray:
        """``apply`` on the tree's own matrix (``columns.matrix``)."""
        nodes = self.estimator.apply(x)
        lookup = np.full(self.estimator.tree_.node_count, -1, dtype=np.int64)
        lookup[self.leaves] = np.arange(len(self.leaves))
        result: np.ndarray = lookup[nodes]
        return result


def tree_columns(config: TrainConfig, frame: pd.DataFrame) -> TreeColumns:
    numeric, indicators = [], []
    for f in config.features:
        if isinstance(f, CategoricalFeature):
            shares = canonical_column(frame[f.name]).value_counts(normalize=True)
            for category, share in shares.items():
                if category != MISSING_CATEGORY and share >= max(f.min_frequency, 1e-12):
                    indicators.append((f.name, str(category)))
        else:
            numeric.append(f.name)
    return TreeColumns(tuple(numeric), tuple(indicators))


def leaf_counts(rows: int, share: float, k_min: int, k_max: int) -> tuple[range, str | None]:
    """The leaf counts to choose among (``k_min`` .. ``min(k_max, 8)``, at least 2), capped
    by how many leaves of at least ``share`` of ``rows`` the rows hold, and a note saying so
    when they are: a 50-customer table's tree "chose 3 leaves", where leaves of 20 customers
    fit only 2 times, and grew 2."""
    counts = range(max(2, k_min), max(2, min(k_max, MAX_LEAVES)) + 1)
    least = max(1, math.ceil(share * rows))
    fit = rows // least
    if fit >= counts.stop - 1:
        return counts, None
    room = (
        f"{rows:,} customers hold at most {fit} leaves of at least {least:,} (min_share, or "
        f"{MIN_SEGMENT} customers where that is more)"
    )
    if fit >= counts.start:
        return range(counts.start, fit + 1), f"k_max = {k_max} lowered to {fit}: {room}"
    fit = max(fit, 2)  # (fewer than 2: no cut is made, which the caller refuses by name)
    return range(2, fit + 1), f"k_min = {k_min} and k_max = {k_max} lowered to {fit}: {room}"


def fit_tree(
    config: TrainConfig,
    frame: pd.DataFrame,
    target: pd.Series,
    *,
    seed: int,
    count: int | None = None,
    choice: TreeChoice | None = None,
) -> LeafTree:
    """Fit the tree on the rows with a target value; ``frame`` holds the features.

    The number of leaves (``k_min`` .. ``min(k_max, 8)``) and the plateau its cuts are
    centred in are chosen by stability under resampling, then by the effect size on held-out
    halves: see ``tree_choice``. The quality check reads the chosen shape's refits, so there
    are ``max(selection_bootstraps, stability_bootstraps)`` of them. ``count`` (with the
    ``choice`` already made on these rows): that count instead, at its plateau, as a
    selection among clusters and trees chose it.
    """
    present = target.notna().to_numpy()
    y = target.to_numpy(dtype=np.float64)[present]
    if len(y) == 0:  # (was "fewer than two distinct values", for a column left blank)
        raise DataError(
            f"the tree's target {target.name!r} is blank in every row: a tree learns from "
            "customers whose outcome is known"
        )
    if len(np.unique(y)) < 2:
        raise DataError(
            f"the tree's target {target.name!r} has one value ({y[0]:g}) in every row "
            f"that has one ({len(y):,} rows): a tree needs customers of both outcomes"
        )
    columns = tree_columns(config, frame)
    x = columns.matrix(frame)[present]
    binary = bool(np.isin(y, (0.0, 1.0)).all())
    spec = config.model
    bootstraps = max(spec.selection_bootstraps, spec.stability_bootstraps)
    # every leaf at least min_share and MIN_SEGMENT customers, as every cluster: a 200-row
    # mall table's tree grew leaves of 10 customers (5%), three of six unstable
    share = segment_floor(len(y), spec.min_share)
    counts, capped = leaf_counts(len(y), share, spec.k_min, spec.k_max)
    if choice is None:
        choice = choose_shape(x, y, binary, counts, min_share=share,
                              sample=spec.selection_sample, bootstraps=bootstraps,
                              seed=seed)  # fmt: skip
        if capped is not None:
            choice = replace(choice, note="; ".join(filter(None, (capped, choice.note))))
    if count is not None:
        choice = choice.at(count)
    estimator = new_tree(binary, choice.leaves, share, len(y), choice.plateau).fit(x, y)
    _snap_thresholds(estimator, x, len(columns.numeric))
    tree = estimator.tree_
    leaves = [n for n in range(tree.node_count) if tree.children_left[n] < 0]
    if len(leaves) < 2:  # no cut keeps both sides at the floor: one leaf, no rule to write
        raise DataError(
            f"the tree on {target.name!r} found no split that leaves each side at least "
            f"{math.ceil(share * len(y)):,} of the {len(y):,} customers (min_share = "
            f"{spec.min_share:g}, or {MIN_SEGMENT} customers where that is more; categories "
            f"rarer than min_frequency are never split on): no feature tells groups that "
            f"large apart by {target.name!r}. Lower min_share, declare other features, or "
            'segment by clusters (algorithm = "kmeans") or by a rule ([[rules]]) for a small '
            "group"
        )
    # highest outcome first: the slots read as a ranking
    leaves.sort(key=lambda n: -float(np.ravel(tree.value[n])[-1]))
    return LeafTree(estimator, columns, leaves, str(target.name), choice)


def leaf_rules(tree: LeafTree) -> list[RuleSegment]:
    """One rule per leaf, whose condition is the tree's path to it (exactly; see module)."""
    t = tree.estimator.tree_
    parent: dict[int, tuple[int, bool]] = {}
    for node in range(t.node_count):
        if t.children_left[node] >= 0:
            parent[t.children_left[node]] = (node, True)
            parent[t.children_right[node]] = (node, False)
    rules = []
    for number, leaf in enumerate(tree.leaves, start=1):
        path: list[tuple[int, bool]] = []
        node = leaf
        while node in parent:
            node, left = parent[node]
            path.append((node, left))
        path.reverse()
        parts = [_step(tree, node, left) for node, left in path]
        condition: Condition = And(tuple(parts)) if len(parts) > 1 else parts[0]
        text = _text(tree, path)
        rules.append(RuleSegment(f"leaf {number}", condition, text, None, None))
    return rules


def _step(tree: LeafTree, node: int, left: bool) -> Condition:
    t = tree.estimator.tree_
    column = int(t.feature[node])
    numeric = tree.columns.numeric
    if column >= len(numeric):  # a category's 0/1 column: left is "not that category"
        feature, category = tree.columns.indicators[column - len(numeric)]
        equal = Compare(feature, "==", category)
        return Not(equal) if left else equal
    feature = numeric[column]
    bound, inclusive = _left_bound(float(t.threshold[node]))
    compare = (
        Compare(feature, "<=" if inclusive else "<", bound)
        if left
        else Compare(feature, ">" if inclusive else ">=", bound)
    )
    if bool(t.missing_go_to_left[node]) == left:
        return Or((compare, IsMissing(feature, False)))
    return compare


def _round_down32(value: float) -> np.float32:
    low = np.float32(value)
    if float(low) > value:
        low = np.nextafter(low, np.float32(-np.inf))
    return low


def display_cut(threshold: float) -> float:
    """The c of ``x < c``, the left branch as people read it: the float32 just above the
    threshold (the snapped short decimal, where there was one)."""
    # + 0.0: a cut at 0 (between -1 and 0, a repayment status's) is the float32 just above
    # the one below 0, -0.0, which read "PAY_0 < -0" in the rule and the leaf's name
    return float(np.nextafter(_round_down32(threshold), np.float32(np.inf))) + 0.0


def _left_bound(threshold: float) -> tuple[float, bool]:
    """A float64 bound b such that ``float32(x) <= threshold`` iff ``x <= b`` (inclusive) or
    ``x < b`` (not): the midpoint between the float32 values around the threshold, a tie there
    rounding to the even one."""
    low = _round_down32(threshold)
    high = np.nextafter(low, np.float32(np.inf))
    middle = (float(low) + float(high)) / 2.0  # exact: a float32 has 24 bits, this needs 25
    even = int(np.array(low).view(np.uint32)) & 1 == 0
    return middle, even


def _snap_thresholds(estimator: object, x: np.ndarray, n_numeric: int) -> None:
    """Move each numeric threshold to the shortest decimal within the gap it splits."""
    t = estimator.tree_  # type: ignore[attr-defined]
    node_rows = estimator.decision_path(x).tocsc()  # type: ignore[attr-defined]
    x32 = x.astype(np.float32).astype(np.float64)
    for node in range(t.node_count):
        column = int(t.feature[node])
        if t.children_left[node] < 0 or column >= n_numeric:
            continue
        rows = node_rows.indices[node_rows.indptr[node] : node_rows.indptr[node + 1]]
        values = x32[rows, column]
        values = values[~np.isnan(values)]
        threshold = float(t.threshold[node])
        below, above = values[values <= threshold], values[values > threshold]
        if not len(below) or not len(above):
            continue
        cut = _short_cut(float(below.max()), float(above.min()))
        if cut is not None:  # left: float32(x) < cut, i.e. <= the float32 just below it
            t.threshold[node] = float(np.nextafter(np.float32(cut), np.float32(-np.inf)))


def _short_cut(low: float, high: float) -> float | None:
    """The decimal c of fewest significant digits with low < float32(c) <= high, as a float32
    value: a round 800 in a gap from 741.98 to 831.5, not 742."""
    top = max(abs(low), abs(high))
    for digits in range(-math.ceil(math.log10(top)) if top >= 1 else 0, 7):
        scale = 10.0**digits
        step = math.floor(low * scale + 1.0)
        # low is a float32: 741.98 is 741.97998..., whose next hundredth is 741.98 itself
        for c in (step / scale, (step + 1) / scale):
            cut = float(np.float32(c))
            if low < cut <= high:
                return cut
    return None


def _number(value: float) -> str:
    """A cut as its shortest decimal that reads back as the same float32: the snapped decimal
    itself (``6g`` showed a cut at 123456.5 as 123456, on the other side of it)."""
    return str(np.format_float_positional(np.float32(value + 0.0), trim="-"))  # never -0


def _text(tree: LeafTree, path: list[tuple[int, bool]]) -> str:
    """The leaf's path for people: per feature its tightest bounds, its category or the
    categories it is not; ``or <feature> is missing`` where missing values take this path."""
    t = tree.estimator.tree_
    numeric = tree.columns.numeric
    lower: dict[str, float] = {}
    upper: dict[str, float] = {}
    missing: dict[str, bool] = {}
    equal: dict[str, str] = {}
    not_in: dict[str, list[str]] = {}
    order: list[str] = []
    for node, left in path:
        column = int(t.feature[node])
        if column >= len(numeric):
            feature, category = tree.columns.indicators[column - len(numeric)]
            if left:
                not_in.setdefault(feature, []).append(category)
            else:
                equal[feature] = category
        else:
            feature = numeric[column]
            cut = display_cut(float(t.threshold[node]))
            if left:
                upper[feature] = min(upper.get(feature, math.inf), cut)
            else:
                lower[feature] = max(lower.get(feature, -math.inf), cut)
            # shown wherever the served rule sends a missing value (a feature without missing
            # values in training sends them to its larger branch): the explanation of a
            # customer with a missing value then names a rule it satisfies
            admits = bool(t.missing_go_to_left[node]) == left
            missing[feature] = missing.get(feature, True) and admits
        if feature not in order:
            order.append(feature)
    parts = []
    for feature in order:
        name = name_text(feature)  # `Anzahl Besuche`: the text reads back as a [[rules]] one
        if feature in equal:
            parts.append(f"{name} == {_quote(equal[feature])}")
        elif feature in not_in:
            cats = not_in[feature]
            parts.append(
                f"{name} != {_quote(cats[0])}"
                if len(cats) == 1
                else f"{name} not in [{', '.join(_quote(c) for c in cats)}]"
            )
        else:
            bounds = []
            if feature in lower:
                bounds.append(f"{name} >= {_number(lower[feature])}")
            if feature in upper:
                bounds.append(f"{name} < {_number(upper[feature])}")
            text = " and ".join(bounds)
            if missing.get(feature):
                text = f"({text} or {name} is missing)"
            parts.append(text)
    return " and ".join(parts)


def _quote(category: str) -> str:
    return "'" + category.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class GrownTree:
    """What the job needs from a tree: its leaves as rules, each row's leaf, and the record."""

    tree: LeafTree
    rules: list[RuleSegment]
    labels: np.ndarray  # leaf slot of each row given
    selection: Selection
    quality: QualityResult


@dataclass(frozen=True)
class TreeCandidate:
    """One leaf count of the tree on the target, as a candidate beside clusters: the tree of
    that many leaves (at the plateau ``tree_choice`` gives the count) grown on every row."""

    leaves: int
    plateau: float
    labels: np.ndarray  # leaf (0..) of each row of the frame
    effects: dict[str, tuple[float, float | None]]  # held out: (effect size, larger p-value)
    stability: float | None  # lowest ARI of the first selection_bootstraps refits (none: None)


def tree_candidates(
    config: TrainConfig, frame: pd.DataFrame, tree: LeafTree, outcomes: pd.DataFrame
) -> list[TreeCandidate]:
    """Every leaf count of ``tree``'s choice (fitted by ``fit_tree`` on ``frame``) as a
    candidate: each outcome's effect on the half of the customers its tree was not grown on
    (the folds its shape was chosen on, ``tree_choice.held_out_effects``: a tree's effect on
    the customers it was grown on is inflated, its cuts placed where the outcome happens to
    differ), and its stability as a cluster candidate's: the lowest ARI of as many refits
    (``selection_bootstraps``)."""
    spec, choice = config.model, tree.choice
    assert choice is not None
    target = outcomes[tree.target]
    present = target.notna().to_numpy()
    y = target.to_numpy(dtype=np.float64)[present]
    x_all = tree.columns.matrix(frame)
    x = x_all[present]
    binary = tree.estimator.binary
    share = segment_floor(len(y), spec.min_share)
    counts = range(min(choice.held_out), max(choice.held_out) + 1)
    columns = {str(o): outcomes[o].to_numpy(dtype=np.float64)[present] for o in outcomes}
    others = {name: (values, is_binary_known(values)) for name, values in columns.items()}
    measured: dict[int, dict[str, tuple[float, float | None]]] = {}
    for plateau in set(choice.plateaus.values()):
        found = held_out_effects(x, y, binary, counts, share, spec.seed, plateau, others)
        measured.update({c: found[c] for c in counts if choice.plateaus[c] == plateau})
    grown: dict[float, PlateauTree] = {}
    candidates = []
    for count in counts:
        plateau = choice.plateaus[count]
        if plateau not in grown:
            grown[plateau] = new_tree(binary, counts.stop - 1, share, len(y), plateau)
            grown[plateau].fit(x, y)
        leaves = grown[plateau].with_leaves(count).apply(x_all)
        candidates.append(
            TreeCandidate(
                count,
                plateau,
                np.unique(leaves, return_inverse=True)[1].reshape(-1),
                measured[count],
                # (no refits, as a cluster's: selection_bootstraps = 0 measures none)
                choice.lowest(count, spec.selection_bootstraps)
                if spec.selection_bootstraps > 0
                else None,
            )
        )
    return candidates


def is_binary_known(values: np.ndarray) -> bool:
    """Whether the known (non-NaN) values are 0/1."""
    return bool(np.isin(values[~np.isnan(values)], (0.0, 1.0)).all())


def grow_tree(
    config: TrainConfig,
    frame: pd.DataFrame,
    target: pd.Series,
    matrix: np.ndarray,
    tree: LeafTree | None = None,
) -> GrownTree:
    """Fit, convert and assess the tree on ``frame`` (the customers no configured rule took);
    ``matrix`` is their preprocessed matrix (for the silhouette, as clusters get); ``tree``:
    the one fitted already (by a selection that chose it among clusters)."""
    spec = config.model
    tree = tree or fit_tree(config, frame, target, seed=spec.seed)
    rules = leaf_rules(tree)
    labels = tree.apply(frame)
    present = target.notna().to_numpy()
    values = target.to_numpy(dtype=np.float64)[present]
    rng = np.random.default_rng(spec.seed + 1)
    sample = rng.choice(len(frame), min(len(frame), spec.silhouette_sample), replace=False)
    x = tree.columns.matrix(frame)
    choice = tree.choice
    assert choice is not None
    grown: dict[float, PlateauTree] = {}  # each other candidate, fitted as the chosen one was
    for plateau in set(choice.plateaus.values()):
        most = max(c for c, p in choice.plateaus.items() if p == plateau)
        binary = tree.estimator.binary
        share = segment_floor(len(values), spec.min_share)
        grown[plateau] = new_tree(binary, most, share, len(values), plateau)
        grown[plateau].fit(x[present], values)
    curve = []
    for count, held in choice.held_out.items():
        found = labels
        if count != choice.leaves:
            other = grown[choice.plateaus[count]].with_leaves(count)
            found = np.unique(other.apply(x), return_inverse=True)[1]
        shares = np.bincount(found) / len(frame)
        curve.append(
            SelectionPoint(
                k=count,
                silhouette=round(_silhouette(matrix[sample], found[sample]), 4),
                min_share=round(float(shares.min()), 4),
                admissible=bool(shares.min() >= segment_floor(len(frame), spec.min_share))
                and choice.stability[count] >= MIN_STABILITY,
                algorithm="tree",
                stability=choice.stability[count],
                effects={tree.target: held},
                score=held,
            )
        )
    effect = outcome_effect(values, labels[present]).size
    selection = Selection(
        criterion=(
            f"decision tree on {tree.target!r}, each cut in the middle of its plateau of "
            f"near-best gain (plateau {', '.join(f'{p:g}' for p in PLATEAUS)}, the stable one "
            f"with the best held-out effect): among leaf counts whose bootstrap stability is "
            f"at least {MIN_STABILITY}, the fewest leaves whose effect size on held-out halves "
            f"is within {TOLERANCE:.0%} of the best (leaves of at least min_share)"
        ),
        method="tree",
        sample_size=int(present.sum()),
        k_min=spec.k_min,
        k_max=min(spec.k_max, MAX_LEAVES),
        min_share=spec.min_share,
        chosen_k=len(tree.leaves),
        chosen_algorithm="tree",
        curve=curve,
        note=choice.note,
        reason=(
            f"{choice.leaves} leaves, plateau {choice.plateau:g}: stability "
            f"{choice.stability[choice.leaves]:.2f}, held-out effect size "
            f"{choice.held_out[choice.leaves]:.3f}, "
            f"{'n/a' if effect is None else f'{effect:.3f}'} on all customers"
            + _fewer_grown(
                len(tree.leaves),
                choice.leaves,
                tree.target,
                np.bincount(labels[present]),
                max(1, math.ceil(segment_floor(len(values), spec.min_share) * len(values))),
            )
        ),
    )
    quality = tree_quality(config, tree, matrix, labels, sample)
    return GrownTree(tree, rules, labels, selection, quality)


def _fewer_grown(grown: int, chosen: int, target: str, sizes: np.ndarray, least: int) -> str:
    """Why the tree has fewer leaves than the count chosen: no cut of a leaf lowers its
    error, every leaf being of one value of the target (a hotel table's tree on
    ``is_canceled`` beside ``reservation_status``, the outcome written again, grew 2 leaves
    where 3 were asked, and the job ended on a KeyError); or every leaf (``sizes``) is too
    small to cut into two of ``least`` customers (a 50-customer table's tree: 2 leaves of
    27 and 23, said to hold one value of its target each, which neither did)."""
    if grown >= chosen:
        return ""
    if (sizes[sizes > 0] < 2 * least).all():
        return (
            f"; {grown} grown: no leaf holds the {2 * least:,} customers that two leaves of "
            f"at least {least:,} need (min_share, or {MIN_SEGMENT} customers where that is "
            "more)"
        )
    return (
        f"; {grown} grown: no cut improves a leaf further, each holding one value of "
        f"{target!r} or no feature telling its customers apart"
    )


def _silhouette(sample: np.ndarray, labels: np.ndarray) -> float:
    if len(np.unique(labels)) < 2:
        return -1.0
    return float(silhouette_score(sample, labels, random_state=0))


def tree_quality(
    config: TrainConfig, tree: LeafTree, matrix: np.ndarray, labels: np.ndarray, sample: np.ndarray
) -> QualityResult:
    """Silhouette and friends of the leaves in the preprocessed space (as for clusters), and
    stability: the selection's refits of the chosen shape (the first ``stability_bootstraps``)
    against the tree, on the rows the selection compared them on. The selection measured the
    tree the job serves (every row, the chosen leaves and plateau), so a tree it found stable
    (lowest ARI >= ``MIN_STABILITY``) reports at least that mean here."""
    spec = config.model
    k = len(tree.leaves)
    sub, sub_labels = matrix[sample], labels[sample]
    distinct = len(np.unique(sub_labels)) > 1
    choice = tree.choice
    aris, jaccards = [], []
    if choice is not None and choice.compared is not None:
        served = tree.slots(choice.compared)
        for refit in choice.refits[: spec.stability_bootstraps]:
            other = np.unique(refit, return_inverse=True)[1]
            aris.append(float(adjusted_rand_score(served, other)))
            jaccards.append(_best_jaccard(served, other, k))
    quality = Quality(
        silhouette=float(silhouette_score(sub, sub_labels, random_state=spec.seed))
        if distinct
        else None,
        davies_bouldin=float(davies_bouldin_score(sub, sub_labels)) if distinct else None,
        calinski_harabasz=float(calinski_harabasz_score(sub, sub_labels)) if distinct else None,
        stability_ari=float(np.mean(aris)) if aris else None,
        bootstraps=len(aris),
        sample_size=len(sample),
    )
    return QualityResult(quality, np.mean(jaccards, axis=0) if jaccards else None)
