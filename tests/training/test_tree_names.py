"""A tree leaf's generated name says what tells it from its sibling leaves: the feature of the
last split on its path (the names read alike before, though the rules differ: two leaves
under ``MntWines >= 628`` split on income were named by meat and wine spend alone).

Over real trained trees (a generated churn table, and the shared customer-personality data
on two outcomes, one of which names two leaves by their bounds): names are unique ignoring
case and surrounding spaces, each mentions its deciding feature (found here from the fitted
tree itself), two sibling leaves lead with different words, and bounds in a name are the
rule's.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from app.registry.manifest import Manifest
from app.registry.store import ModelStore
from app.training.config import CategoricalFeature, TrainConfig, parse_config
from app.training.job import train
from app.training.profile import _trait
from app.training.tree import LeafTree
from tests.conftest import EXAMPLES
from tests.training.test_real_data import shared_file
from tests.training.test_tree import churn_table, tree_config


def _personality(target: str, folder: Path) -> TrainConfig:
    raw = tomllib.loads((EXAMPLES / "customer_personality.toml").read_text())
    raw["data"]["path"] = str(shared_file("customer_personality.csv"))
    raw["model"] = {**raw["model"], "algorithm": "tree", "target": target}
    raw["model"]["stability_bootstraps"] = 0
    return parse_config(raw, base_dir=folder)


def _churn(folder: Path) -> TrainConfig:
    churn_table(n=4_000, seed=5).to_csv(folder / "churn.csv", index=False)
    return tree_config(folder / "churn.csv", stability_bootstraps=0)


def _tree_on(
    frame: pd.DataFrame, outcome: str, features: list[dict[str, Any]], folder: Path, **model: Any
) -> tuple[Manifest, ModelStore]:
    """A tree on ``outcome`` trained from ``frame`` (written to a CSV in ``folder``)."""
    frame.to_csv(folder / "table.csv", index=False)
    raw = {
        "data": {"path": str(folder / "table.csv")},
        "outcomes": [outcome],
        "features": features,
        "model": {"algorithm": "tree", "target": outcome, **model},
    }
    store = ModelStore(folder / "s")
    return train(parse_config(raw, base_dir=folder), store).manifest, store


CASES = {
    "churn": _churn,
    "personality-response": lambda folder: _personality("Response", folder),
    "personality-cmp4": lambda folder: _personality("AcceptedCmp4", folder),
}


def _mentions(config: TrainConfig) -> dict[str, list[str]]:
    """Feature -> the words that mention it in a name: its label, and its high/low words."""
    found = {}
    for f in config.features:
        label = (f.label or f.name.replace("_", " ")).lower()
        words = [] if isinstance(f, CategoricalFeature) else [w for w in (f.high, f.low) if w]
        found[f.name] = [label, *(w.lower() for w in words)]
    return found


def _deciding(tree: LeafTree) -> tuple[list[str], list[int]]:
    """Per leaf (the tree's leaf order): the feature of its parent's split, and the parent."""
    t = tree.estimator.tree_
    parents = {}
    for node in range(t.node_count):
        if t.children_left[node] >= 0:
            parents[int(t.children_left[node])] = node
            parents[int(t.children_right[node])] = node
    numeric, features, nodes = tree.columns.numeric, [], []
    for leaf in tree.leaves:
        column = int(t.feature[parents[leaf]])
        feature = numeric[column] if column < len(numeric) else None
        if feature is None:
            feature = tree.columns.indicators[column - len(numeric)][0]
        features.append(feature)
        nodes.append(parents[leaf])
    return features, nodes


@pytest.mark.parametrize("case", list(CASES))
def test_every_leaf_is_named_by_what_tells_it_from_its_siblings(case: str, tmp_path: Path) -> None:
    config = CASES[case](tmp_path)
    store = ModelStore(tmp_path / "store")
    manifest = train(config, store).manifest
    model: Any = store.load(manifest.model_name, manifest.version).estimator
    tree = model.tree
    assert isinstance(tree, LeafTree) and not config.rules
    segments = manifest.segments  # no configured rules: one per leaf, in the tree's order
    names = [s.name for s in segments]
    assert len({n.strip().casefold() for n in names}) == len(names), names

    features, parents = _deciding(tree)
    mentions = _mentions(config)
    for seg, feature in zip(segments, features, strict=True):
        said = seg.name.lower()
        assert any(word in said for word in mentions[feature]), (seg.name, feature, seg.rule)
        lead = seg.name.split(",")[0]
        for number in re.findall(r"\d[\d,.]*", lead):  # bounds: the rule's own numbers
            assert number.replace(",", "") in (seg.rule or ""), (seg.name, seg.rule)
    # a lead that is a level ("very high wine spend") is no other leaf's level on that
    # feature: "Very high spend" for 276-410 sat beside a "Spend 410-839" (an audit's tree)
    labels = {f.name: f.label or f.name.replace("_", " ") for f in config.features}
    for seg, feature in zip(segments, features, strict=True):
        lead = seg.name.split(",")[0].lower()
        if feature not in seg.numeric:
            continue
        level = _trait(feature, seg.numeric[feature], labels, {}).lower()
        if lead != level:
            continue
        for other in segments:
            if other is not seg and feature in other.numeric:
                theirs = _trait(feature, other.numeric[feature], labels, {})
                assert theirs.lower() != level, (seg.name, other.name)
    leads = [n.split(",")[0].strip().casefold() for n in names]
    for i in range(len(segments)):
        for j in range(i + 1, len(segments)):
            if parents[i] == parents[j]:  # two leaves of one split
                assert leads[i] != leads[j], (names[i], names[j])
    if case == "personality-cmp4":  # two leaves alike in level: told apart by their bounds
        assert any("\u2013" in n or "\u2265" in n for n in names), names


def test_a_leaf_excluding_several_categories_names_them_all(tmp_path: Path) -> None:
    """Found by an audit: a leaf of `region not in ['Region-2', 'Region-0', 'Region-1']` was
    named "Not Region-1", so a reader would put Region-0's customers in it."""
    rng = np.random.default_rng(4)
    n = 4000
    region = rng.choice([f"Region-{i}" for i in range(8)], n)
    high = np.isin(region, ["Region-0", "Region-1", "Region-2"])
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "region": region,
            "spend": rng.gamma(2.0, 50.0, n).round(2),
            "churned": (rng.uniform(size=n) < np.where(high, 0.6, 0.05)).astype(int),
        }
    )
    features = [{"name": "region", "type": "categorical"}, {"name": "spend"}]
    m, _ = _tree_on(frame, "churned", features, tmp_path, stability_bootstraps=0)
    excluding = [s for s in m.segments if s.rule and "not in [" in s.rule]
    assert excluding, [(s.name, s.rule) for s in m.segments]
    for seg in excluding:
        listed = seg.rule.split("not in [")[1].split("]")[0]
        for category in [c.strip(" '") for c in listed.split(",")]:
            assert category in seg.name, (seg.name, seg.rule)


def test_a_split_on_a_flag_names_having_it_and_not(tmp_path: Path) -> None:
    """A leaf split on a 0/1 column is "auto renew" or "no auto renew", never
    "auto renew < 1" (an audit's subscription table)."""
    rng = np.random.default_rng(4)
    n = 4_000
    renews = (rng.random(n) < 0.6).astype(int)
    tenure = rng.integers(0, 72, n).astype(float)
    logit = -1.5 + 3.0 * (tenure < 12) - 1.5 * renews  # tenure splits first, then renewal
    churned = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(
        {"customer_id": [f"c{i}" for i in range(n)], "auto_renew": renews, "tenure": tenure}
    )
    features = [{"name": "auto_renew"}, {"name": "tenure"}]
    manifest, store = _tree_on(
        frame.assign(churned=churned), "churned", features, tmp_path, stability_bootstraps=0
    )
    features, _ = _deciding(store.load(manifest.model_name, manifest.version).estimator.tree)
    segments = manifest.segments
    flagged = [s.name.split(",")[0] for s, f in zip(segments, features, strict=True)]
    flagged = [lead for lead, f in zip(flagged, features, strict=True) if f == "auto_renew"]
    assert len(flagged) >= 2, [s.name for s in segments]
    assert set(flagged) <= {"Auto renew", "No auto renew"}, flagged


def test_leaves_deciding_on_one_feature_are_all_named_alike(tmp_path: Path) -> None:
    """Where one leaf deciding on a feature is named by its bounds (its level is another
    leaf's), every leaf deciding on that feature is: "High call duration" (224-415) sat
    beside "Call duration 415-600" and "Call duration >= 600" (an audit's bank table)."""
    rng = np.random.default_rng(8)
    n = 6_000
    duration = rng.lognormal(5.3, 0.8, n)
    logit = -4.0 + 0.006 * duration
    bought = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "duration": duration})
    features = [{"name": "duration", "label": "call duration"}]
    m, _ = _tree_on(
        frame.assign(bought=bought), "bought", features, tmp_path, stability_bootstraps=0
    )
    names = [s.name for s in m.segments]
    assert len(names) >= 3, names
    by_bounds = [bool(re.search(r"\d", n.split(",")[0])) for n in names]
    assert all(by_bounds) or not any(by_bounds), names


def test_a_leaf_holding_the_unknowns_or_one_value_says_so(tmp_path: Path) -> None:
    """Found by a tester on a survey: the leaf of ``(satisfaction >= 4 or satisfaction is
    missing)`` was "High satisfaction" though 13% of it had not answered, and renew at the
    population's rate; the leaf of ``satisfaction >= 3 and < 4`` (exactly 3) was "Low
    satisfaction". A money cut between 741.98 and 741.99 read "741.985"."""
    rng = np.random.default_rng(2)
    n = 6_000
    satisfaction = rng.integers(1, 6, n).astype(float)
    rate = np.select([satisfaction <= 2, satisfaction == 3], [0.2, 0.55], 0.8)
    silent = rng.uniform(size=n) < 0.15
    rate = np.where(silent, 0.72, rate)
    satisfaction[silent] = np.nan
    frame = pd.DataFrame(
        {
            "customer_id": [f"s{i}" for i in range(n)],
            "satisfaction": satisfaction,
            "premium": rng.gamma(4, 200, n).round(2),
            "renewed": (rng.uniform(size=n) < rate).astype(int),
        }
    )
    features = [{"name": "satisfaction"}, {"name": "premium"}]
    m, _ = _tree_on(frame, "renewed", features, tmp_path, k_max=3)
    names = {s.rule: s.name for s in m.segments}
    assert names == {
        "(satisfaction >= 4 or satisfaction is missing)": "Satisfaction \u2265 4 or unknown",
        "satisfaction >= 3 and satisfaction < 4": "Satisfaction 3",  # was "Satisfaction 3-4"
        "satisfaction < 3": "Satisfaction < 3",
    }, names


def test_a_leaf_of_customers_at_zero_is_named_zero(tmp_path: Path) -> None:
    """A tree on the personality table's campaign response named a leaf "Num catalog
    purchases < 1": the customers who never bought from the catalog, whose count is 0. A
    leaf bounded above that holds only 0 is "Zero ...", as a cluster of them is; the other
    leaves deciding on the count keep their bounds."""
    rng = np.random.default_rng(6)
    n = 4_000
    catalog = np.where(rng.random(n) < 0.3, 0, rng.poisson(4, n) + 1).astype(float)
    tenure = rng.integers(0, 72, n).astype(float)
    logit = -2.0 + 2.0 * (catalog > 0) + 1.0 * (catalog > 6) - 1.0 * (tenure < 12)
    bought = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame(
        {"customer_id": [f"c{i}" for i in range(n)], "catalog_orders": catalog, "tenure": tenure}
    )
    features = [{"name": "catalog_orders"}, {"name": "tenure"}]
    m, _ = _tree_on(
        frame.assign(bought=bought), "bought", features, tmp_path, stability_bootstraps=0
    )
    names = {s.rule: s.name for s in m.segments}
    zero = [name for rule, name in names.items() if rule and rule.startswith("catalog_orders < 1")]
    assert zero and all(name.startswith("Zero catalog orders") for name in zero), names
    assert not any("< 1" in name for name in names.values()), names
