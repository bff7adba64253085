"""What tells a tree leaf from its sibling leaves, for its generated name.

A leaf's profile alone can name two leaves alike although their rules differ: the leaves on
either side of a ``income >= 75028`` split may both stand out most by their wine spend. So a
leaf's name leads with the last split on its path (``LeafSplit``), the one its sibling leaves
(those under the split's other branch) fall on the other side of: the category it is or is
not, or, for a numeric feature, its level against the population (``high income``) where
that differs from every sibling's, else the leaf's bounds on it (``income 37,718-40,801``).
``app.training.profile`` words it with the feature's label and words.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from app.training.tree import LeafTree, _number, display_cut


@dataclass(frozen=True)
class LeafSplit:
    """The last split on a leaf's path.

    ``category``: the split is on that category of ``feature`` (``is_category``: the leaf
    holds it, else not); otherwise ``lower`` / ``upper`` are the leaf's bounds on the numeric
    ``feature`` along its whole path (``lower <= x < upper``, None: open). ``siblings``: the
    positions (in the tree's leaf order) of the leaves under the split's other branch.
    """

    feature: str
    siblings: tuple[int, ...]
    category: str | None = None
    is_category: bool = False
    lower: float | None = None
    upper: float | None = None
    # a leaf that is not ``category``: every category of ``feature`` its path excludes (a
    # leaf of ``region not in [R0, R1, R2]`` was named "Not R1")
    excluded: tuple[str, ...] = ()
    # a numeric feature's missing values take this leaf's path (its rule says "or missing")
    missing: bool = False


def leaf_splits(tree: LeafTree) -> list[LeafSplit]:
    """The deciding split of each leaf, in the tree's leaf order."""
    t = tree.estimator.tree_
    parent: dict[int, tuple[int, bool]] = {}
    for node in range(t.node_count):
        if t.children_left[node] >= 0:
            parent[int(t.children_left[node])] = (node, True)
            parent[int(t.children_right[node])] = (node, False)
    position = {node: i for i, node in enumerate(tree.leaves)}
    numeric = tree.columns.numeric
    splits = []
    for leaf in tree.leaves:
        node, left = parent[leaf]
        other = int(t.children_right[node] if left else t.children_left[node])
        siblings = tuple(sorted(position[n] for n in _leaves_under(t, other)))
        column = int(t.feature[node])
        if column >= len(numeric):  # a category's 0/1 column: left is "not that category"
            feature, category = tree.columns.indicators[column - len(numeric)]
            excluded: list[str] = []
            for up, went_left in _path(parent, leaf) if left else ():  # a "not" leaf's
                up_column = int(t.feature[up])
                if went_left and up_column >= len(numeric):
                    up_feature, up_category = tree.columns.indicators[up_column - len(numeric)]
                    if up_feature == feature:
                        excluded.append(up_category)
            splits.append(
                LeafSplit(
                    feature,
                    siblings,
                    category,
                    is_category=not left,
                    excluded=tuple(sorted(excluded)),
                )
            )
            continue
        feature = numeric[column]
        lower, upper = -math.inf, math.inf
        missing = True
        for up, went_left in _path(parent, leaf):
            if int(t.feature[up]) == column:
                cut = display_cut(float(t.threshold[up]))
                lower, upper = (lower, min(upper, cut)) if went_left else (max(lower, cut), upper)
                missing = missing and bool(t.missing_go_to_left[up]) == went_left
        splits.append(
            LeafSplit(
                feature,
                siblings,
                lower=None if lower == -math.inf else lower,
                upper=None if upper == math.inf else upper,
                missing=missing,
            )
        )
    return splits


def _path(parent: dict[int, tuple[int, bool]], leaf: int) -> Iterator[tuple[int, bool]]:
    """The splits above ``leaf``, nearest first: each node and whether the path went left."""
    step = leaf
    while step in parent:
        up, went_left = parent[step]
        yield up, went_left
        step = up


def _leaves_under(t: object, node: int) -> list[int]:
    left, right = t.children_left, t.children_right  # type: ignore[attr-defined]
    stack, found = [node], []
    while stack:
        current = stack.pop()
        if left[current] < 0:
            found.append(current)
        else:
            stack += [int(left[current]), int(right[current])]
    return found


def bounds_text(label: str, split: LeafSplit) -> str:
    """``income >= 75,028``, ``income < 12``, ``income 37,718-40,801``."""
    if split.lower is not None and split.upper is not None:
        return f"{label} {bounds_number(split.lower)}\u2013{bounds_number(split.upper)}"
    if split.lower is not None:
        return f"{label} \u2265 {bounds_number(split.lower)}"
    return f"{label} < {bounds_number(split.upper if split.upper is not None else math.nan)}"


def bounds_number(value: float) -> str:
    """A cut as the rule shows it (``tree._number``), with thousands separated."""
    text = _number(value)
    whole, dot, fraction = text.partition(".")
    return f"{int(whole):,}{dot}{fraction}" if abs(value) >= 10_000 else text
