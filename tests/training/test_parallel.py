"""The fits on samples run two at a time (``app.training.parallel.sample_map``): the same
results, in the same order, as one after the other, each in a thread with one OpenMP thread
(a new thread starts with one per core, which spin where the cores are shared)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_info

from app.training import parallel
from app.training.parallel import sample_map
from app.training.selection import SelectionResult, select_k


def test_results_come_back_in_the_items_order() -> None:
    def slow_first(i: int) -> tuple[int, str]:
        time.sleep(0.02 if i % 2 == 0 else 0.0)  # the later items finish first
        return i * i, threading.current_thread().name

    results = sample_map(slow_first, range(8))
    assert [r for r, _ in results] == [i * i for i in range(8)]
    assert {name for _, name in results} <= {f"train-sample_{n}" for n in range(2)}
    assert sample_map(slow_first, []) == []


def test_an_error_in_one_item_is_raised() -> None:
    def fails_on_three(i: int) -> int:
        if i == 3:
            raise ValueError("item 3")
        return i

    with pytest.raises(ValueError, match="item 3"):
        sample_map(fails_on_three, range(6))


def test_each_thread_runs_one_openmp_thread() -> None:
    def openmp(_: int) -> set[int]:
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"}

    import sklearn.cluster  # noqa: F401  (loads OpenMP)

    # each thread finds OpenMP (an empty set, none found, proved nothing) at one thread
    assert all(threads == {1} for threads in sample_map(openmp, range(4)))


@pytest.mark.parametrize("algorithms", [None, ["kmeans", "gmm"]])
def test_the_selection_is_the_same_one_after_the_other(
    monkeypatch: pytest.MonkeyPatch, algorithms: list[str] | None
) -> None:
    rng = np.random.default_rng(5)
    centres = rng.normal(0, 3, (5, 6))
    groups = rng.integers(0, 5, 4_000)
    matrix = centres[groups] + rng.normal(0, 1.0, (4_000, 6))
    outcomes = pd.DataFrame(
        {"bought": (rng.random(4_000) < np.where(groups < 2, 0.4, 0.1)).astype(float)}
    )

    def choose() -> SelectionResult:
        return select_k(
            matrix,
            algorithm="kmeans",
            algorithms=algorithms,
            k_min=2,
            k_max=6,
            min_share=0.05,
            clustered_fraction=1.0,
            sample_size=3_000,
            silhouette_size=1_000,
            seed=3,
            method="balanced",
            outcomes=outcomes,
            bootstraps=3,
        )

    together = choose()
    monkeypatch.setattr(parallel, "SAMPLE_THREADS", 1)
    in_turn = choose()
    assert together.selection == in_turn.selection
    assert len(together.selection.curve) == (10 if algorithms else 5) * 2  # both spaces
    assert together.algorithm == in_turn.algorithm
    if together.weights is None:
        assert in_turn.weights is None
    else:
        assert np.array_equal(together.weights, in_turn.weights)
    for name in ("cluster_centers_", "means_"):
        if hasattr(in_turn.start, name):
            assert np.array_equal(getattr(together.start, name), getattr(in_turn.start, name))
