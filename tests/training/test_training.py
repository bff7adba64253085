"""The training job on the planted-segment example data: it must find what was planted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from app.datasets import PLANTED_SEGMENTS
from app.registry.store import ModelStore
from app.training.config import RuleConfig
from app.training.job import TrainResult
from app.training.steps import library_versions
from tests.conftest import example_config


def test_automatic_k_finds_the_planted_segments(
    trained: tuple[ModelStore, TrainResult], customers: tuple[pd.DataFrame, np.ndarray]
) -> None:
    store, result = trained
    manifest = result.manifest
    assert manifest.k == PLANTED_SEGMENTS
    # the declared space's candidates (outcome-weighted ones are scored in their own space)
    curve = {
        p.k: p.silhouette
        for p in manifest.selection.curve
        if not (p.algorithm or "").endswith("outcome-weighted")
    }
    assert sorted(curve) == list(range(3, 9))
    assert max(curve, key=lambda k: curve[k]) == PLANTED_SEGMENTS

    frame, planted = customers
    model = store.load(manifest.model_name).estimator
    assigned = model.predict(frame.set_index("customer_id"))
    assert adjusted_rand_score(planted, assigned) >= 0.9


def test_manifest_records_what_the_spec_lists(trained: tuple[ModelStore, TrainResult]) -> None:
    store, result = trained
    m = result.manifest
    on_disk = orjson.loads(
        (store.version_dir(m.model_name, m.version) / "manifest.json").read_bytes()
    )
    assert on_disk["version"] == m.version
    assert on_disk["libraries"]["scikit-learn"] == library_versions()["scikit-learn"]
    assert m.data.rows == 6_000
    assert len(m.data.fingerprint) == 64
    assert {f.name for f in m.features} >= {"monetary", "plan"}
    q = m.quality
    assert q.silhouette is not None and 0.2 < q.silhouette <= 1
    assert q.davies_bouldin is not None and q.davies_bouldin > 0
    assert q.calinski_harabasz is not None and q.calinski_harabasz > 0
    assert q.stability_ari is not None and q.stability_ari > 0.9
    assert sum(s.size for s in m.segments) == m.data.rows
    assert abs(sum(s.share for s in m.segments) - 1) < 1e-9
    ids = [s.id for s in m.segments]
    assert len(set(ids)) == len(ids) and all(i.startswith("seg-") for i in ids)
    names = [s.name for s in m.segments]
    assert len(set(names)) == len(names)
    for seg in m.segments:
        assert seg.numeric["monetary"].mean > 0
        assert set(seg.categorical["plan"]) <= {"free", "pro", "team", "enterprise", "__missing__"}
        assert set(seg.outcomes) == {"ltv", "churned", "converted"}
    # the planted segments differ on their outcomes, and the test says so
    assert {t.name for t in m.outcomes} == {"ltv", "churned", "converted"}
    assert all(t.significant and t.p_value is not None and t.p_value < 1e-6 for t in m.outcomes)
    assert {t.test for t in m.outcomes} == {"Kruskal-Wallis", "chi-square"}
    assert set(m.timings) >= {"load data", "select k", "fit", "profile", "report", "write"}


def test_version_folder_holds_artefact_manifest_and_report(
    trained: tuple[ModelStore, TrainResult],
) -> None:
    store, result = trained
    folder = store.version_dir(result.manifest.model_name, result.manifest.version)
    assert sorted(p.name for p in folder.iterdir()) == [
        "manifest.json",
        "model.joblib",
        "report.html",
    ]
    html = (folder / "report.html").read_text()
    for seg in result.manifest.segments:
        assert seg.id in html
    assert store.promoted(result.manifest.model_name) == result.manifest.version


@pytest.mark.parametrize("algorithm", ["gmm", "minibatch_kmeans"])
def test_other_algorithms_recover_the_planted_segments(
    algorithm: str, customers_csv: Path, customers: tuple[pd.DataFrame, np.ndarray], train_into
) -> None:
    result = train_into(
        example_config("customers", customers_csv, algorithm=algorithm, stability_bootstraps=2)
    )
    assert result.manifest.algorithm == algorithm
    assert result.manifest.k == PLANTED_SEGMENTS
    frame, planted = customers
    model = train_into.store.load("customers").estimator
    assert adjusted_rand_score(planted, model.predict(frame.set_index("customer_id"))) >= 0.85


def test_rule_segments_come_first_and_are_profiled(customers_csv: Path, train_into) -> None:
    config = example_config("customers", customers_csv, stability_bootstraps=0)
    rules = [
        {"name": "Brand new", "when": "tenure_days < 30", "action": "Send the onboarding series"},
        {"name": "Enterprise", "when": "plan == 'enterprise' and monetary > 2000"},
    ]
    config = config.model_validate({**config.model_dump(), "rules": rules})
    result = train_into(config)
    segs = result.manifest.segments
    assert [s.kind for s in segs[:2]] == ["rule", "rule"]
    assert [s.name for s in segs[:2]] == ["Brand new", "Enterprise"]
    assert segs[0].rule == "tenure_days < 30" and segs[0].action == "Send the onboarding series"
    frame = pd.read_csv(customers_csv)
    expected_new = int((frame["tenure_days"] < 30).sum())
    assert segs[0].size == expected_new
    model = train_into.store.load("customers").estimator
    ids = model.predict(frame.set_index("customer_id"))
    assert (ids[(frame["tenure_days"] < 30).to_numpy()] == segs[0].id).all()
    # a customer of an enterprise plan with high spend but older tenure lands in rule 2
    both = (
        (frame["plan"] == "enterprise") & (frame["monetary"] > 2000) & (frame["tenure_days"] >= 30)
    )
    assert (ids[both.to_numpy()] == segs[1].id).all()


def test_segments_that_fail_a_criterion_are_flagged_not_hidden(
    customers_csv: Path, train_into
) -> None:
    # a min share no k can satisfy: segments are kept and flagged, and the manifest says why
    config = example_config(
        "customers", customers_csv, min_share=0.3, k_min=4, k_max=5, stability_bootstraps=0
    )
    config = config.model_copy(
        update={"rules": [RuleConfig(name="Key accounts", when="plan == 'enterprise'")]}
    )
    result = train_into(config)
    m = result.manifest
    assert m.selection.note is not None and "30%" in m.selection.note
    assert not any(p.admissible for p in m.selection.curve)
    small = [s for s in m.segments if s.share < 0.3 and s.kind == "cluster"]
    assert small and all("too_small" in s.flags for s in small)
    # a configured rule's segment is as small as its rule makes it: not flagged (a tester's
    # deliberate 0.9% "Whales" rule carried the flag everywhere)
    rules = [s for s in m.segments if s.kind == "rule"]
    assert rules and min(s.share for s in rules) < 0.3
    assert not any("too_small" in s.flags for s in rules)
    assert sum(s.size for s in m.segments) == m.data.rows
