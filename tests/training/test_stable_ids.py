"""Stable segment ids: a retrain keeps the ids of segments that hold the same customers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.registry.store import ModelStore
from app.training.job import train
from tests.conftest import example_config


def _sample(frame: pd.DataFrame, fraction: float, seed: int, folder: Path) -> Path:
    path = folder / f"sample-{seed}.csv"
    frame.sample(frac=fraction, random_state=seed).to_csv(path, index=False)
    return path


def test_retrain_on_another_sample_keeps_ids(
    tmp_path: Path, customers: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, _ = customers
    store = ModelStore(tmp_path / "store")
    first = train(
        example_config("customers", _sample(frame, 0.9, 1, tmp_path), seed=1), store, promote=True
    )
    second = train(
        example_config("customers", _sample(frame, 0.9, 2, tmp_path), seed=2), store, promote=True
    )
    everyone = frame.set_index("customer_id")
    before = store.load("customers", first.manifest.version).estimator.predict(everyone)
    after = store.load("customers", second.manifest.version).estimator.predict(everyone)
    kept = float(np.mean(before == after))
    assert kept >= 0.9, f"only {kept:.1%} of customers kept their segment id"
    matching = second.manifest.id_matching
    assert matching.previous_version == first.manifest.version
    assert set(matching.reused) == {s.id for s in first.manifest.segments}
    assert matching.new == []
    assert min(matching.reused.values()) >= 0.8


def test_before_any_promote_a_retrain_keeps_the_latest_versions_ids(
    tmp_path: Path, customers: tuple[pd.DataFrame, np.ndarray]
) -> None:
    """Found by an audit: with no version promoted, a retrain on the same data renumbered every
    segment (seg-001..003 became seg-004..006), though docs/webhooks.md has a user train,
    subscribe to segments, then train again before promoting."""
    frame, _ = customers
    store = ModelStore(tmp_path / "store")
    data = _sample(frame, 1.0, 1, tmp_path)
    first = train(example_config("customers", data), store)
    second = train(example_config("customers", data), store)
    assert store.promoted("customers") is None
    assert second.manifest.id_matching.previous_version == first.manifest.version
    assert sorted(s.id for s in second.manifest.segments) == sorted(
        s.id for s in first.manifest.segments
    )


def test_new_segments_get_new_ids_never_reused(
    tmp_path: Path, customers: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, _ = customers
    data = _sample(frame, 1.0, 3, tmp_path)
    store = ModelStore(tmp_path / "store")

    def fit(k: int) -> list[str]:
        config = example_config("customers", data, k_min=k, k_max=k, stability_bootstraps=0)
        return [s.id for s in train(config, store, promote=True).manifest.segments]

    five = fit(5)
    assert sorted(five) == [f"seg-{i:03d}" for i in range(1, 6)]
    six = fit(6)  # one planted segment is split: at most two ids are new
    assert len(set(six) & set(five)) >= 4
    new_in_six = sorted(set(six) - set(five))
    assert new_in_six and all(int(i[4:]) > 5 for i in new_in_six)
    three = fit(3)  # merges: the merged segments keep at most one old id each
    assert len(set(three)) == 3
    six_again = fit(6)
    # ids that vanished in the k=3 version are never handed out again to a new group
    retired = (set(five) | set(six)) - set(three)
    fresh = set(six_again) - set(three)
    assert not (fresh & retired)
    assert all(int(i[4:]) > max(int(j[4:]) for j in set(five) | set(six)) for i in fresh)


def test_rule_segments_keep_their_id_by_name(
    tmp_path: Path, customers: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, _ = customers
    data = _sample(frame, 1.0, 4, tmp_path)
    store = ModelStore(tmp_path / "store")
    base = example_config("customers", data, stability_bootstraps=0)
    rules = [{"name": "Brand new", "when": "tenure_days < 30"}]
    config = base.model_validate({**base.model_dump(), "rules": rules})
    first = train(config, store, promote=True).manifest.segments[0]
    rules[0]["when"] = "tenure_days < 45"
    config = base.model_validate({**base.model_dump(), "rules": rules})
    second = train(config, store, promote=True).manifest.segments[0]
    assert first.kind == second.kind == "rule"
    assert first.id == second.id
    assert second.size > first.size


def test_a_retrain_that_drops_a_feature_keeps_the_ids_of_the_same_segments(
    tmp_path: Path, customers: tuple[pd.DataFrame, np.ndarray]
) -> None:
    """Found retraining month after month: a config that dropped one feature (support
    tickets) renumbered all five segments (seg-001..005 became seg-006..010), though each held
    the same customers, so the rescore after its promotion recorded every customer's move from
    'Very lapsed' to 'Very lapsed' as a migration, with its webhooks. The previous version
    reads the dropped feature as missing (imputed) to match the segments."""
    frame, _ = customers
    data = _sample(frame, 1.0, 5, tmp_path)
    store = ModelStore(tmp_path / "store")
    first = train(example_config("customers", data, stability_bootstraps=0), store, promote=True)
    config = example_config("customers", data, stability_bootstraps=0)
    dropped = [f for f in config.model_dump()["features"] if f["name"] != "support_tickets"]
    config = config.model_validate({**config.model_dump(), "features": dropped})
    second = train(config, store, promote=True)
    matching = second.manifest.id_matching
    assert matching.new == [], matching
    assert sorted(matching.reused) == sorted(s.id for s in first.manifest.segments)
    everyone = frame.set_index("customer_id")
    before = store.load("customers", first.manifest.version).estimator.predict(everyone)
    after = store.load("customers", second.manifest.version).estimator.predict(everyone)
    kept = float(np.mean(before == after))
    assert kept >= 0.9, f"only {kept:.1%} of customers kept their segment id"


def test_a_version_whose_manifest_is_damaged_stops_a_retrain_before_it_fits(
    tmp_path: Path, customers: tuple[pd.DataFrame, np.ndarray]
) -> None:
    """Found with a damaged store: a truncated manifest made every retrain fit for its whole
    run, then end with the bare JSON error (its segment ids unknown, no new id can be
    numbered safely). It stops before the data is read, saying what to do."""
    from app.errors import StoreError

    frame, _ = customers
    data = _sample(frame, 1.0, 6, tmp_path)
    store = ModelStore(tmp_path / "store")
    config = example_config("customers", data, stability_bootstraps=0)
    first = train(config, store, promote=True).manifest.version
    manifest = store.version_dir("customers", first) / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:1000])
    steps: list[str] = []
    with pytest.raises(StoreError, match=r"not valid.*restore .*manifest\.json"):
        train(config, store, on_step=steps.append)
    assert steps == []  # refused before the first step (loading the data)
    assert store.versions("customers") == [first]


def test_a_version_of_other_features_in_the_same_model_is_noted(
    tmp_path: Path, customers_csv: Path
) -> None:
    """A new user's config without ``[model] name`` trained their own table into
    ``customers``, the example model ./scripts/run serves, without a word: a version that
    reads none of the features of the model's version before it is noted (naming the way
    out); a retrain on the same features is not."""
    from app.training.config import parse_config

    store = ModelStore(tmp_path / "store")
    first = train(example_config("customers", customers_csv, stability_bootstraps=0), store)
    again = train(example_config("customers", customers_csv, stability_bootstraps=0), store)
    assert not [n for n in again.manifest.data.notes if "other features" in n]
    table = tmp_path / "own.csv"
    rng = np.random.default_rng(2)
    pd.DataFrame(
        {
            "customer_id": [f"k{i}" for i in range(300)],
            "income": rng.normal(50_000, 9_000, 300).round(),
            "kids": rng.integers(0, 3, 300),
        }
    ).to_csv(table, index=False)
    raw = {
        "data": {"path": str(table)},
        "features": [{"name": "income"}, {"name": "kids"}],
        "model": {"stability_bootstraps": 0},
    }
    own = train(parse_config(raw, base_dir=tmp_path), store).manifest
    assert own.model_name == "customers"
    [note] = [n for n in own.data.notes if "other features" in n]
    assert note.startswith(
        f"model 'customers' held version {again.manifest.version}, trained on other features "
        "(recency_days, frequency, monetary, avg_order_value, sessions_30d, ...), of which "
        "this version reads none: promoted, it would answer"
    ), note
    assert note.endswith('give it its own name ([model] name = "...", or --model NAME)')
    assert first.manifest.version != again.manifest.version
