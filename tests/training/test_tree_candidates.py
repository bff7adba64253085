"""A tree among the selection's candidates (``algorithms = ["kmeans", "tree"]``): judged on its
held-out effect beside the clusters' in-sample one, admitted by the clusters' floors, and
served, when it wins, as ``algorithm = "tree"`` serves one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from app.errors import ConfigError
from app.registry.store import ModelStore
from app.serving.compiled import CompiledAssigner
from app.training.config import parse_config
from app.training.job import train
from app.training.model import SegmentationModel
from app.training.selection import MIN_STABILITY
from tests.training.test_tree import churn_table, probe_rows, tree_config


def compared_config(data: Path, **model: Any) -> Any:
    raw = tree_config(data).model_dump(mode="json")
    raw["model"] = {"algorithms": ["kmeans", "tree"], "stability_bootstraps": 2, **model}
    raw["outcomes"] = {"columns": ["churn"]}
    return parse_config(raw, base_dir=data.parent)


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, Any]:
    """Churn follows a contract and a tenure threshold, and the customers form no groups: the
    tree wins (the same data as tests/training/test_tree.py)."""
    folder = tmp_path_factory.mktemp("compared")
    frame = churn_table()
    frame.to_csv(folder / "churn.csv", index=False)
    result = train(compared_config(folder / "churn.csv"), ModelStore(folder / "store"))
    return folder, frame, result


def test_a_tree_that_separates_the_outcome_best_wins_and_is_served_by_its_rules(
    compared: Any,
) -> None:
    folder, frame, result = compared
    m = result.manifest
    sel = m.selection
    assert (m.algorithm, sel.chosen_algorithm, sel.method) == ("tree", "tree", "balanced")
    assert {p.algorithm for p in sel.curve} == {"kmeans", "kmeans outcome-weighted", "tree"}
    chosen = next(p for p in sel.curve if p.algorithm == "tree" and p.k == sel.chosen_k)
    assert chosen.admissible and chosen.stability is not None
    assert chosen.stability >= MIN_STABILITY
    best_cluster = max(
        (p for p in sel.curve if p.algorithm != "tree" and p.score is not None),
        key=lambda p: p.score or 0.0,
    )
    assert (chosen.score or 0.0) > (best_cluster.score or 0.0)
    # the reason says how each side was measured and names the best cluster candidate
    assert sel.reason is not None
    assert "the tree on 'churn': its effects on the half of the customers it was not grown on" in (
        sel.reason
    )
    assert f"best cluster candidate {best_cluster.algorithm} k={best_cluster.k}" in sel.reason
    # the outcome-weighted candidates' space is weighted by the outcomes: the reason does not
    # say the clusters never saw them
    assert "never see the outcomes" not in sel.reason
    assert "the outcome-weighted space's weights are read from the outcomes" in sel.reason
    assert "judged" not in sel.criterion and "'tree'" in sel.criterion
    # served by leaf rules, every customer as the tree itself puts it
    model = ModelStore(folder / "store").load("customers", m.version).estimator
    assert isinstance(model, SegmentationModel) and model.leaves == m.k == sel.chosen_k
    rows = probe_rows(frame, model)
    expected = model.n_configured_rules + model.tree.apply(rows)
    assert (model.predict_slots(rows) == expected).all()
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    assert CompiledAssigner(model).assign_slots(records)[0] == expected.tolist()
    # the manifest names the tree's target (the first declared outcome), as a tree's does
    assert m.config["model"]["target"] == "churn"
    page = (folder / "store" / "customers" / m.version / "report.html").read_text()
    assert "tree leaf whose rule it matches" in page
    assert "It won the selection (selection = 'balanced') on its effect on the half" in page


def test_the_winning_tree_is_the_tree_algorithm_tree_grows_of_that_many_leaves(
    tmp_path: Path,
) -> None:
    """With one leaf count allowed, the compared run's tree is ``algorithm = "tree"``'s:
    the same rules, the same leaves for every customer, the same quality figures."""
    frame = churn_table(2_500, seed=5)
    frame.to_csv(tmp_path / "churn.csv", index=False)
    alone = train(
        tree_config(tmp_path / "churn.csv", k_min=3, k_max=3), ModelStore(tmp_path / "a")
    ).manifest
    both = train(
        compared_config(tmp_path / "churn.csv", k_min=3, k_max=3), ModelStore(tmp_path / "b")
    ).manifest
    assert both.algorithm == "tree" == alone.algorithm
    assert [s.rule for s in both.segments] == [s.rule for s in alone.segments]
    assert [s.size for s in both.segments] == [s.size for s in alone.segments]
    assert both.quality == alone.quality


def groups_table(n: int = 3_000, seed: int = 7) -> pd.DataFrame:
    """Four separate groups of customers on four usage features; each of two outcomes
    follows a different pair of the groups. A tree on the first outcome cuts its pair apart
    and says little of the second; the clusters separate both."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 4, n)
    centres = np.array([[0, 0, 0, 0], [6, 0, 6, 0], [0, 6, 0, 6], [6, 6, 6, 6]], dtype=float)
    x = centres[group] + rng.normal(0, 1.0, (n, 4))
    first = rng.uniform(size=n) < np.where(group % 2 == 0, 0.15, 0.75)
    second = rng.uniform(size=n) < np.where(group < 2, 0.1, 0.8)
    frame = pd.DataFrame(x, columns=["visits", "minutes", "orders", "spend"])
    frame.insert(0, "customer_id", [f"c{i}" for i in range(n)])
    frame["upgraded"] = first.astype(int)
    frame["renewed"] = second.astype(int)
    return frame


def test_clusters_win_where_they_separate_every_outcome_and_the_tree_one(
    tmp_path: Path,
) -> None:
    groups_table().to_csv(tmp_path / "groups.csv", index=False)
    raw = {
        "data": {"path": "groups.csv"},
        "outcomes": ["upgraded", "renewed"],
        "features": [{"name": n} for n in ("visits", "minutes", "orders", "spend")],
        "model": {"algorithms": ["kmeans", "tree"], "k_min": 2, "k_max": 5},
    }
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    sel = m.selection
    assert m.algorithm == "kmeans" and sel.chosen_k == 4
    assert sel.chosen_algorithm is not None and sel.chosen_algorithm != "tree"
    trees = [p for p in sel.curve if p.algorithm == "tree"]
    assert trees and {p.k for p in trees} == set(range(2, 6))
    # measured, and beaten on the outcome the tree was not grown on
    chosen = next(p for p in sel.curve if (p.algorithm, p.k) == (sel.chosen_algorithm, 4))
    ranked = [p for p in trees if p.score is not None]
    assert ranked and max(p.score or 0.0 for p in ranked) < (chosen.score or 0.0)
    assert all(p.effects["renewed"] < chosen.effects["renewed"] for p in trees)
    assert sel.reason is not None and "the tree on 'upgraded'" in sel.reason
    assert "best tree" in sel.reason or "no tree admissible" in sel.reason
    assert "target" not in m.config["model"] or m.config["model"]["target"] is None


@pytest.mark.parametrize(
    "model",
    [
        pytest.param({"algorithm": "tree", "target": "churn"}, id="tree-alone"),
        pytest.param({"algorithms": ["kmeans", "tree"]}, id="tree-among-candidates"),
    ],
)
def test_a_tree_asked_for_more_leaves_than_it_grows_is_refused_by_name(
    tmp_path: Path, model: dict[str, Any]
) -> None:
    """A tree grows at most eight leaves: k_min = 9 beside one ended the training in
    "ValueError: max() arg is an empty sequence", after the data was read."""
    churn_table(500).to_csv(tmp_path / "churn.csv", index=False)
    raw = tree_config(tmp_path / "churn.csv").model_dump(mode="json")
    raw["model"] = {**model, "k_min": 9, "k_max": 12}
    with pytest.raises(ConfigError, match=r"a tree grows at most 8 leaves, and k_min = 9"):
        parse_config(raw, base_dir=tmp_path)
    raw["model"]["k_min"] = 8  # (k_max above eight: the tree's counts stop at eight)
    assert parse_config(raw, base_dir=tmp_path).model.k_max == 12


def test_without_the_selections_refits_a_tree_is_held_to_no_more_than_the_clusters(
    tmp_path: Path,
) -> None:
    """selection_bootstraps = 0 measures no cluster's stability (each is admitted by its
    smallest segment alone); the trees were still held to the ARI of one refit, "as many
    refits" as the clusters' being none: a tree of 6 leaves was refused at 0.57."""
    churn_table(3_000).to_csv(tmp_path / "churn.csv", index=False)
    config = compared_config(tmp_path / "churn.csv", selection_bootstraps=0)
    sel = train(config, ModelStore(tmp_path / "s")).manifest.selection
    trees = [p for p in sel.curve if p.algorithm == "tree"]
    assert len(trees) == 6 and all(p.stability is None for p in sel.curve)
    floor = 0.05  # min_share (3,000 customers: 20 of them is less)
    assert all(p.admissible == (p.min_share >= floor) for p in sel.curve)
