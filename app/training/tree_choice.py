"""How a tree model's shape is chosen: its number of leaves and how wide a plateau its cuts
are centred in (see ``plateau_tree``), by stability under resampling, then held-out effect.

Each candidate (leaf count, plateau) is grown on every row, as the served tree is, and
refitted on bootstrap resamples of the selection sample (at most ``sample`` rows, the size
clusters are refitted at in the quality check); its stability is the lowest ARI between the
tree and a refit on the sample's rows, the measure and floor (``MIN_STABILITY``) clusters
meet. The chosen candidate's refits are the quality check's (``TreeChoice.refits``), so an
admissible tree never reports a stability below the floor there. For each count, the stable
plateau with the best held-out effect, else the plateau most stable on average; then among
stable counts the fewest leaves within ``TOLERANCE`` of the best held-out effect, so a split
that only fits noise, or that a resample would move, is not made. One tree of the most
leaves per fit serves every count: a tree of fewer leaves is its first splits (best first:
``fit`` with fewer leaves stops there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from sklearn.metrics import adjusted_rand_score

from app.training.effects import outcome_effect
from app.training.plateau_tree import PlateauTree
from app.training.selection import MIN_STABILITY

TOLERANCE = 0.05  # held-out scores this close (relative) to the best: fewer leaves win
# 0: CART's best cut, kept for sharp thresholds it finds exactly; wider plateaus for effects
# that change smoothly, whose best cut resampling moves (see bench/README.md, 2026-12-02)
PLATEAUS = (0.0, 0.1, 0.3, 0.5)


@dataclass(frozen=True)
class TreeChoice:
    leaves: int
    plateau: float
    held_out: dict[int, float]  # leaf count -> held-out effect size (at its plateau)
    stability: dict[int, float]  # leaf count -> lowest ARI of the refits (at its plateau)
    plateaus: dict[int, float]  # leaf count -> the plateau chosen for it
    note: str | None  # why, when no count was stable enough
    compared: np.ndarray | None = None  # the rows the refits were compared on
    refits: tuple[np.ndarray, ...] = ()  # the chosen shape's refits: their leaf of each row
    # every count's refits at its plateau (as ``refits``), and its tree's leaf of each compared
    # row: what a selection that compares the counts with clusters reads (``at``)
    every_refit: dict[int, tuple[np.ndarray, ...]] | None = None
    every_tree: dict[int, np.ndarray] | None = None

    def at(self, leaves: int) -> TreeChoice:
        """This choice with ``leaves`` leaves (at that count's plateau) chosen instead: the
        tree a selection among clusters and trees chose."""
        if leaves == self.leaves:
            return self
        assert self.every_refit is not None
        refits = self.every_refit[leaves]
        return replace(self, leaves=leaves, plateau=self.plateaus[leaves], refits=refits)

    def lowest(self, leaves: int, refits: int) -> float:
        """The lowest ARI between the tree of ``leaves`` leaves and its first ``refits``
        refits (the number a cluster candidate is refitted: the same test)."""
        assert self.every_refit is not None
        assert self.every_tree is not None
        tree = self.every_tree[leaves]
        others = self.every_refit[leaves][:refits]
        return round(float(min(adjusted_rand_score(tree, o) for o in others)), 4)


@dataclass(frozen=True)
class Refits:
    """A candidate's tree and its refits on resamples, as leaves of the compared rows."""

    tree: dict[int, np.ndarray]  # leaf count -> the tree's leaf of each compared row
    refits: dict[int, list[np.ndarray]]  # leaf count -> each refit's leaf of each row

    def stability(self) -> dict[int, tuple[float, float]]:
        """Leaf count -> the lowest and the mean ARI between the tree and its refits."""
        measured = {}
        for count, leaves in self.tree.items():
            aris = [adjusted_rand_score(leaves, other) for other in self.refits[count]]
            measured[count] = (round(float(np.min(aris)), 4), round(float(np.mean(aris)), 4))
        return measured


def new_tree(binary: bool, leaves: int, min_share: float, rows: int, plateau: float) -> PlateauTree:
    return PlateauTree(
        max_leaves=leaves,
        min_samples_leaf=max(1, math.ceil(min_share * rows)),
        plateau=plateau,
        binary=binary,
    )


def choose_shape(
    x: np.ndarray,
    y: np.ndarray,
    binary: bool,
    counts: range,
    *,
    min_share: float,
    sample: int,
    bootstraps: int,
    seed: int,
) -> TreeChoice:
    """The leaf count and plateau for a tree on ``x`` and ``y`` (see module)."""
    rows = np.random.default_rng(seed + 5).choice(len(y), min(len(y), sample), replace=False)
    held = {  # leaf count -> the target's mean effect size on the held-out halves
        p: {
            count: effects[""][0]
            for count, effects in held_out_effects(
                x, y, binary, counts, min_share, seed, p, {"": (y, binary)}
            ).items()
        }
        for p in PLATEAUS
    }
    refitted = {
        p: refit(x, y, binary, counts, min_share, seed, bootstraps, p, rows) for p in PLATEAUS
    }
    measured = {p: refitted[p].stability() for p in PLATEAUS}
    plateaus = {}
    for c in counts:
        stable = [p for p in PLATEAUS if measured[p][c][0] >= MIN_STABILITY]
        plateaus[c] = (
            max(stable, key=lambda p: (held[p][c], -p))
            if stable
            else max(PLATEAUS, key=lambda p: (measured[p][c][1], -p))
        )
    stability = {c: measured[plateaus[c]][c][0] for c in counts}
    effect = {c: held[plateaus[c]][c] for c in counts}
    stable_counts = [c for c in counts if stability[c] >= MIN_STABILITY]
    note = None
    if stable_counts:
        best = max(effect[c] for c in stable_counts)
        leaves = min(c for c in stable_counts if effect[c] >= best * (1 - TOLERANCE))
    else:
        # ranked by the mean: one refit that splits on another feature first puts any
        # count's lowest near 0, and then the lowest no longer tells the counts apart
        mean = {c: measured[plateaus[c]][c][1] for c in counts}
        leaves = max(counts, key=lambda c: (mean[c], -c))
        note = (
            f"no leaf count in {counts.start}..{counts.stop - 1} reaches stability "
            f"{MIN_STABILITY} in every refit (refits on resamples split elsewhere); chose "
            f"{leaves} leaves, the most stable on average ({mean[leaves]:.2f})"
        )
    chosen = refitted[plateaus[leaves]].refits[leaves]
    every_refit = {c: tuple(refitted[plateaus[c]].refits[c]) for c in counts}
    every_tree = {c: refitted[plateaus[c]].tree[c] for c in counts}
    return TreeChoice(
        leaves,
        plateaus[leaves],
        effect,
        stability,
        plateaus,
        note,
        x[rows],
        tuple(chosen),
        every_refit,
        every_tree,
    )


def refit(
    x: np.ndarray,
    y: np.ndarray,
    binary: bool,
    counts: range,
    min_share: float,
    seed: int,
    n: int,
    plateau: float,
    rows: np.ndarray | None = None,
) -> Refits:
    """The tree of each count on every row, and its refits on ``n`` bootstrap resamples of
    ``rows`` (default: all), as leaves of those rows."""
    rows = np.arange(len(y)) if rows is None else rows
    largest = counts.stop - 1
    tree = new_tree(binary, largest, min_share, len(y), plateau).fit(x, y)
    rng = np.random.default_rng(seed + 7)
    grown = []
    for _ in range(max(n, 1)):
        boot = rows[rng.choice(len(rows), len(rows), replace=True)]
        grown.append(new_tree(binary, largest, min_share, len(boot), plateau).fit(x[boot], y[boot]))
    compare = x[rows]
    return Refits(
        {count: tree.with_leaves(count).apply(compare) for count in counts},
        {count: [r.with_leaves(count).apply(compare) for r in grown] for count in counts},
    )


def held_out_effects(
    x: np.ndarray,
    y: np.ndarray,
    binary: bool,
    counts: range,
    min_share: float,
    seed: int,
    plateau: float,
    outcomes: dict[str, tuple[np.ndarray, bool]],
) -> dict[int, dict[str, tuple[float, float | None]]]:
    """Leaf count -> per outcome (values aligned with ``y``, NaN where unknown): its mean
    effect size on the held-out halves of two folds (the trees grown on ``y`` on the other
    half), and the larger of the two halves' p-values (None where a half has no test)."""
    order = np.random.default_rng(seed).permutation(len(y))
    halves = (order[: len(y) // 2], order[len(y) // 2 :])
    found: dict[int, dict[str, list[tuple[float, float | None]]]] = {
        count: {name: [] for name in outcomes} for count in counts
    }
    for fit_rows, test_rows in (halves, halves[::-1]):
        grown = new_tree(binary, counts.stop - 1, min_share, len(fit_rows), plateau)
        grown.fit(x[fit_rows], y[fit_rows])
        for count in counts:
            groups = grown.with_leaves(count).apply(x[test_rows])
            for name, (values, kind) in outcomes.items():
                known = ~np.isnan(values[test_rows])
                test = outcome_effect(values[test_rows][known], groups[known], kind)
                found[count][name].append((test.size or 0.0, test.p_value))
    return {
        count: {
            name: (
                round(float(np.mean([size for size, _ in halves_found])), 4),
                None
                if any(p is None for _, p in halves_found)
                else max(p for _, p in halves_found if p is not None),
            )
            for name, halves_found in by_outcome.items()
        }
        for count, by_outcome in found.items()
    }
