"""The plateau tree: its leaf rules, its stability under resampling, its leaf bounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from app.registry.store import ModelStore
from app.training.config import parse_config
from app.training.job import train
from app.training.plateau_tree import PlateauTree
from app.training.rules import first_match_frame
from app.training.tree import fit_tree, leaf_rules
from app.training.tree_choice import refit


def planted_table(n: int = 6_000, seed: int = 21) -> pd.DataFrame:
    """Churn jumps at 4 support calls and on a monthly plan, rises smoothly with price;
    age does nothing; 3% of prices are missing."""
    rng = np.random.default_rng(seed)
    calls = rng.poisson(2.0, n).astype(float)
    plan = rng.choice(["monthly", "yearly"], n, p=[0.6, 0.4])
    price = rng.normal(50, 15, n).round(2)
    logit = -2.4 + 1.8 * (calls >= 4) + 1.1 * (plan == "monthly") + 0.02 * (price - 50)
    price[rng.uniform(size=n) < 0.03] = np.nan
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "calls": calls,
            "plan": plan,
            "price": price,
            "age": rng.normal(45, 12, n).round(1),
            "churned": (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int),
        }
    )


def planted_config(data: Path, **model: Any) -> Any:
    raw = {
        "data": {"path": str(data)},
        "outcomes": ["churned"],
        "features": [
            {"name": "calls"},
            {"name": "plan", "type": "categorical"},
            {"name": "price"},
            {"name": "age"},
        ],
        "model": {"algorithm": "tree", "target": "churned", **model},
    }
    return parse_config(raw, base_dir=data.parent)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("planted")
    frame = planted_table()
    frame.to_csv(folder / "planted.csv", index=False)
    return folder / "planted.csv", frame


@pytest.mark.parametrize("plateau", [0.0, 0.3])
def test_the_leaf_rules_equal_the_trees_own_apply(planted: Any, plateau: float) -> None:
    data, frame = planted
    config = planted_config(data, k_max=8)
    tree = fit_tree(config, frame, frame["churned"], seed=3)
    tree.estimator = PlateauTree(8, 60, plateau).fit(tree.columns.matrix(frame), frame["churned"])
    t = tree.estimator.tree_
    tree.leaves = [n for n in range(t.node_count) if t.children_left[n] < 0]
    rows = frame.drop(columns=["customer_id", "churned"]).copy()
    rows.loc[::7, "price"] = np.nan  # missing values follow the branch learnt for them
    rows.loc[::11, "plan"] = "weekly"  # a category never seen is "not monthly"
    for node in range(t.node_count):  # and values on each cut, and either side of it
        if t.children_left[node] >= 0 and t.feature[node] < len(tree.columns.numeric):
            name = tree.columns.numeric[int(t.feature[node])]
            for shift, value in enumerate(np.nextafter(t.threshold[node], [-np.inf, 0, np.inf])):
                rows.loc[shift::13, name] = value
    matched = first_match_frame(leaf_rules(tree), rows)
    assert len(tree.leaves) == 8 and (matched >= 0).all()
    assert (matched == tree.apply(rows)).all()


def test_a_tree_of_fewer_leaves_is_the_first_splits_of_a_larger_one(planted: Any) -> None:
    """The selection reads every leaf count from one tree: that must be the tree a fit of
    that many leaves grows."""
    _, frame = planted
    x = frame[["calls", "price", "age"]].to_numpy()
    y = frame["churned"].to_numpy()
    largest = PlateauTree(8, 300, 0.3).fit(x, y)
    for leaves in range(2, 9):
        grown = PlateauTree(leaves, 300, 0.3).fit(x, y)
        smaller = largest.with_leaves(leaves)
        assert (grown.tree_.threshold == smaller.tree_.threshold).all()
        assert (grown.tree_.children_left == smaller.tree_.children_left).all()
        assert adjusted_rand_score(grown.apply(x), smaller.apply(x)) == 1.0


def test_leaves_hold_min_share_and_stay_within_the_bounds(planted: Any) -> None:
    data, frame = planted
    for share, k_max in ((0.05, 8), (0.15, 8), (0.05, 4)):
        config = planted_config(data, min_share=share, k_max=k_max)
        tree = fit_tree(config, frame, frame["churned"], seed=42)
        sizes = np.bincount(tree.apply(frame)) / len(frame)
        assert 3 <= len(tree.leaves) <= min(k_max, int(1 / share)), (share, k_max)
        assert len(sizes) == len(tree.leaves) and sizes.min() >= share, (share, sizes)


def test_a_planted_threshold_gives_a_tree_stable_under_resampling(planted: Any) -> None:
    data, _ = planted
    store = ModelStore(data.parent / "store")
    manifest = train(planted_config(data, stability_bootstraps=5), store).manifest
    stability = manifest.quality.stability_ari
    assert stability is not None and stability >= 0.9, stability
    chosen = {p.k: p for p in manifest.selection.curve}[manifest.k]
    assert chosen.admissible and chosen.stability is not None and chosen.stability >= 0.9
    assert manifest.selection.note is None
    rules = " ".join(s.rule or "" for s in manifest.segments)
    assert "calls < 4" in rules or "calls >= 4" in rules, rules  # the step, where it is
    assert "age" not in rules, rules  # never the noise


def test_a_wider_plateau_steadies_a_smooth_effect() -> None:
    """Churn that rises smoothly with price: CART's best cut moves with the sample, the
    middle of the plateau of near-best cuts much less."""
    rng = np.random.default_rng(4)
    n = 4_000
    price = rng.gamma(2.0, 2.0, (n, 1))
    churned = (rng.uniform(size=n) < 1 / (1 + np.exp(2.2 - 0.45 * price[:, 0]))).astype(float)
    counts = range(2, 4)
    greedy = refit(price, churned, True, counts, 0.05, 1, 5, 0.0).stability()
    centred = refit(price, churned, True, counts, 0.05, 1, 5, 0.3).stability()
    for leaves in counts:
        assert centred[leaves][1] > greedy[leaves][1] + 0.05, (leaves, greedy, centred)
        assert centred[leaves][0] >= 0.9, (leaves, centred)
