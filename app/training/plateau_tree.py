"""A decision tree whose cuts sit in the middle of their plateau of near-best gain.

A greedy tree (CART, scikit-learn's) cuts each feature where the fall in squared error is
largest. Where the outcome changes smoothly with a feature, that gain curve is flat around
its top and the top moves far with the sample: refits on resamples cut elsewhere and share
few leaves. Here each feature's cut is the middle, by rank, of the cuts whose gain is at
least ``1 - plateau`` of that feature's best: the edges of such a plateau are where a
sloping curve crosses a level, which a resample moves little, so their middle moves little
too. ``plateau = 0`` is the greedy cut. A vote over bootstrap resamples (the majority
feature, the median threshold) was measured and not kept: see ``bench/README.md``.

Which feature and which leaf are split is CART's choice, by the best cut's gain: the feature
whose best cut lowers the squared error most (the Gini impurity, for a 0/1 outcome, up to a
factor), the leaf whose best cut lowers it most split next (only where the cut falls moves:
ranking by the gain at the plateau's middle made features swap places more), up to
``max_leaves`` leaves of at least ``min_samples_leaf`` rows each; a missing value goes the
way that lowered the error more where the node saw missing values, else to the larger side.
Values are compared as scikit-learn compares them (``float32(x) <= threshold`` goes left),
and the fitted tree exposes the same ``tree_`` arrays, ``apply`` and ``decision_path``, so
``app.training.tree`` reads its leaves as rules exactly as it read a scikit-learn tree's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csr_matrix


@dataclass
class NodeArrays:
    """The fitted structure, laid out as scikit-learn's ``Tree`` (the parts read); a child's
    number is always above its parent's."""

    children_left: np.ndarray
    children_right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_go_to_left: np.ndarray
    value: np.ndarray  # (nodes, 1): the mean outcome of the node's training rows

    @property
    def node_count(self) -> int:
        return len(self.children_left)


@dataclass(frozen=True)
class _Split:
    feature: int
    threshold: float
    missing_left: bool
    gain: float  # fall in the sum of squared errors at the feature's best cut: ranks splits


@dataclass
class _Node:
    rows: np.ndarray
    value: float
    split: _Split | None
    children: tuple[int, int] | None = None


@dataclass
class PlateauTree:
    """A best-first tree of at most ``max_leaves`` leaves with plateau-centred cuts.

    Parameters
    ----------
    max_leaves : leaves to grow (fewer when no split is allowed).
    min_samples_leaf : the fewest training rows a leaf may hold.
    plateau : how far below a feature's best gain a cut may be and still count as on the
        plateau whose middle is the cut (0: the best cut, as CART).
    binary : the outcome is 0/1 (the leaves' values are rates), else numeric.
    """

    max_leaves: int
    min_samples_leaf: int
    plateau: float = 0.0
    binary: bool = True
    tree_: NodeArrays = field(init=False)
    split_order_: list[int] = field(init=False)  # node numbers in the order they were split

    def fit(self, x: np.ndarray, y: np.ndarray) -> PlateauTree:
        y = np.asarray(y, dtype=np.float64)
        x32 = x.astype(np.float32)
        nodes = [self._node(x32, y, np.arange(len(y)))]
        frontier: list[int] = [0]
        order: list[int] = []
        while len(frontier) < self.max_leaves:
            ready = [(split.gain, -n) for n in frontier if (split := nodes[n].split) is not None]
            if not ready:
                break
            best = -max(ready)[1]
            split, rows = nodes[best].split, nodes[best].rows
            assert split is not None
            left = _goes_left(x32[rows], split)
            pair = (len(nodes), len(nodes) + 1)
            nodes += [self._node(x32, y, rows[left]), self._node(x32, y, rows[~left])]
            nodes[best].children = pair
            frontier.remove(best)
            frontier += pair
            order.append(best)
        self.tree_, self.split_order_ = _arrays(nodes, order), order
        return self

    def with_leaves(self, leaves: int) -> PlateauTree:
        """This tree after its first ``leaves - 1`` splits: what ``fit`` grows with
        ``max_leaves = leaves`` (best first, so the same splits in the same order)."""
        t = self.tree_
        kept = set(self.split_order_[: max(leaves - 1, 0)])
        old: list[int] = []
        queue = [0]
        while queue:  # breadth first: children numbered above their parent
            node = queue.pop(0)
            old.append(node)
            if node in kept:
                queue += [int(t.children_left[node]), int(t.children_right[node])]
        new = {node: number for number, node in enumerate(old)}
        ids = np.array(old)
        split = np.isin(ids, list(kept))
        smaller = PlateauTree(leaves, self.min_samples_leaf, self.plateau, self.binary)

        def renumbered(children: np.ndarray) -> np.ndarray:
            return np.array([new[int(children[n])] if n in kept else -1 for n in old])

        smaller.tree_ = NodeArrays(
            renumbered(t.children_left),
            renumbered(t.children_right),
            np.where(split, t.feature[ids], -2),
            np.where(split, t.threshold[ids], -2.0),
            t.missing_go_to_left[ids].copy(),
            t.value[ids].copy(),
        )
        smaller.split_order_ = [new[n] for n in self.split_order_[: max(leaves - 1, 0)]]
        return smaller

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Each row's leaf number."""
        reach = self._reach(x)
        result = np.full(len(x), -1, dtype=np.int64)
        for leaf in np.flatnonzero(self.tree_.children_left < 0):
            result[reach[leaf]] = leaf
        return result

    def decision_path(self, x: np.ndarray) -> csr_matrix:
        """Rows x nodes, 1 where the row passes through the node (as scikit-learn's)."""
        return csr_matrix(np.column_stack(self._reach(x)).astype(np.int8))

    def _reach(self, x: np.ndarray) -> list[np.ndarray]:
        t = self.tree_
        x32 = x.astype(np.float32)
        reach = [np.zeros(len(x), dtype=bool) for _ in range(t.node_count)]
        reach[0][:] = True
        for node in range(t.node_count):
            if t.children_left[node] >= 0:
                split = _Split(int(t.feature[node]), float(t.threshold[node]),
                               bool(t.missing_go_to_left[node]), 0.0)  # fmt: skip
                left = _goes_left(x32, split)
                reach[int(t.children_left[node])] = reach[node] & left
                reach[int(t.children_right[node])] = reach[node] & ~left
        return reach

    def _node(self, x32: np.ndarray, y: np.ndarray, rows: np.ndarray) -> _Node:
        split = None
        if len(rows) >= 2 * self.min_samples_leaf and np.ptp(y[rows]) > 0:
            found = [
                _plateau_cut(x32[rows, f], y[rows], f, self.min_samples_leaf, self.plateau)
                for f in range(x32.shape[1])
            ]
            candidates = [(c.gain, -c.feature, c) for c in found if c is not None]
            split = max(candidates)[2] if candidates else None
        return _Node(rows, float(y[rows].mean()), split)


def _plateau_cut(
    column: np.ndarray, y: np.ndarray, feature: int, min_leaf: int, plateau: float
) -> _Split | None:
    """The middle cut of the feature's plateau of near-best gain, missing values on the side
    that gains more (on the larger side if there are none)."""
    missing = np.isnan(column)
    order = np.argsort(column[~missing], kind="stable")
    values = column[~missing][order].astype(np.float64)
    known_y = y[~missing][order]
    n_missing, missing_sum = int(missing.sum()), float(y[missing].sum())
    n, total = len(y), float(y.sum())
    below = np.arange(1, len(values))  # known rows left of the cut after each value
    distinct = values[1:] > values[:-1]
    below_sum = np.cumsum(known_y)[:-1]
    best = None
    for missing_left in (True, False) if n_missing else (False,):
        left_n = below + (n_missing if missing_left else 0)
        left_sum = below_sum + (missing_sum if missing_left else 0.0)
        allowed = distinct & (left_n >= min_leaf) & (n - left_n >= min_leaf)
        if not allowed.any():
            continue
        right_n = np.where(allowed, n - left_n, 1)
        gain = left_sum**2 / left_n + (total - left_sum) ** 2 / right_n - total**2 / n
        gain = np.where(allowed, gain, -np.inf)
        top = float(gain.max())
        if top <= 1e-12 * max(abs(total), 1.0):
            continue
        on_plateau = np.flatnonzero(gain >= (1.0 - plateau) * top)
        at = int(on_plateau[len(on_plateau) // 2])
        goes_left = missing_left if n_missing else bool(left_n[at] >= n - left_n[at])
        # the float64 midpoint of two float32 values lies strictly between them
        threshold = (values[at] + values[at + 1]) / 2.0
        if best is None or top > best.gain:
            best = _Split(feature, float(threshold), goes_left, top)
    return best


def _goes_left(x32: np.ndarray, split: _Split) -> np.ndarray:
    column = x32[:, split.feature]
    with np.errstate(invalid="ignore"):
        left = column.astype(np.float64) <= split.threshold
    return np.where(np.isnan(column), split.missing_left, left)


def _arrays(nodes: list[_Node], order: list[int]) -> NodeArrays:
    count = len(nodes)
    left = np.full(count, -1, dtype=np.int64)
    right = np.full(count, -1, dtype=np.int64)
    feature = np.full(count, -2, dtype=np.int64)
    threshold = np.full(count, -2.0)
    missing_left = np.zeros(count, dtype=bool)
    for number in order:
        children, split = nodes[number].children, nodes[number].split
        assert children is not None
        assert split is not None
        left[number], right[number] = children
        feature[number], threshold[number] = split.feature, split.threshold
        missing_left[number] = split.missing_left
    value = np.array([[node.value] for node in nodes]).reshape(count, 1)
    return NodeArrays(left, right, feature, threshold, missing_left, value)
