"""The training job runs with one BLAS thread (its threads spun on shared cores: a small
training with Gaussian mixtures took minutes instead of seconds on a loaded machine), and
with one OpenMP thread too while it fits and scores samples (choosing k took 3.5-4 s instead
of 0.6 beside one other busy process)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_info

from app.registry.store import ModelStore
from app.training.job import train
from tests.conftest import example_config


def _blas_threads() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


def test_every_step_runs_with_one_blas_thread(customers_csv: Path, tmp_path: Path) -> None:
    small = tmp_path / "small.csv"
    pd.read_csv(customers_csv, dtype={"customer_id": str}).head(2000).to_csv(small, index=False)
    config = example_config(
        "customers", small, k_min=3, k_max=3, stability_bootstraps=0, algorithms=["gmm"]
    )
    seen: dict[str, set[int]] = {}
    train(
        config, ModelStore(tmp_path / "store"), on_step=lambda s: seen.update({s: _blas_threads()})
    )
    assert seen and all(threads == {1} for threads in seen.values()), seen
    assert "select k" in seen


def _openmp_threads() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"}


def test_the_steps_on_samples_run_with_one_openmp_thread(
    customers_csv: Path, tmp_path: Path
) -> None:
    small = tmp_path / "small.csv"
    pd.read_csv(customers_csv, dtype={"customer_id": str}).head(2000).to_csv(small, index=False)
    config = example_config("customers", small, k_min=3, k_max=4, stability_bootstraps=2)
    seen: dict[str, set[int]] = {}
    train(
        config,
        ModelStore(tmp_path / "store"),
        on_step=lambda s: seen.update({s: _openmp_threads()}),
    )
    assert seen["select k"] == seen["quality"] == {1}, seen
