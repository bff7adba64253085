"""The training job runs with Python's cyclic garbage collector at young collections only
(its full passes over the objects scikit-learn, SciPy and matplotlib make cost the job a
noticeable share of its CPU: bench/README.md) and gives it back its own thresholds after,
also when a step fails."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.datasets import make_customers
from app.errors import DataError
from app.registry.store import ModelStore
from app.training.job import YOUNG_COLLECTION, train
from tests.conftest import example_config

OWN = (900, 11, 12)  # thresholds of the calling process, not the defaults


@pytest.fixture
def own_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(*OWN)
    yield
    gc.set_threshold(*before)


@pytest.mark.usefixtures("own_thresholds")
def test_every_step_runs_with_young_collections_only_and_the_thresholds_come_back(
    tmp_path: Path,
) -> None:
    data = tmp_path / "customers.csv"
    make_customers(600, 5)[0].to_csv(data, index=False)
    config = example_config("customers", data, k_min=3, k_max=4)
    seen: dict[str, tuple[int, ...]] = {}
    result = train(
        config,
        ModelStore(tmp_path / "store"),
        on_step=lambda step: seen.update({step: gc.get_threshold()}),
    )
    assert {"load data", "preprocess", "select k", "profile", "report"} <= set(seen)
    assert set(seen.values()) == {(YOUNG_COLLECTION, 20, 100)}, seen
    assert gc.get_threshold() == OWN
    assert gc.isenabled()
    assert result.manifest.k in (3, 4)


@pytest.mark.usefixtures("own_thresholds")
def test_a_failed_training_gives_the_thresholds_back(tmp_path: Path) -> None:
    data = tmp_path / "customers.csv"
    data.write_text("customer_id,recency_days\n")  # a header, no rows
    with pytest.raises(DataError):
        train(example_config("customers", data), ModelStore(tmp_path / "store"))
    assert gc.get_threshold() == OWN
