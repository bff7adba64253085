"""While the data file is read beside the import of the fitting steps, the job hands the GIL
between its threads every 0.2 ms (at Python's 5 ms the reading thread waited behind the
import at each of its pauses: bench/README.md); the caller's interval comes back after the
load step, also when the read fails."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import app.training.job as job
from app.datasets import make_customers
from app.errors import DataError
from app.registry.store import ModelStore
from app.training.job import OVERLAP_SWITCH, train
from tests.conftest import example_config

OWN = 0.003  # the calling process's interval, not the default


@pytest.fixture
def own_interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(OWN)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("own_interval")
def test_the_read_runs_with_short_switches_and_the_interval_comes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "customers.csv"
    make_customers(600, 5)[0].to_csv(data, index=False)
    config = example_config("customers", data, k_min=3, k_max=4)
    during: list[float] = []
    read = job.load_training_data

    def reading(*args: Any, **kwargs: Any) -> Any:
        during.append(sys.getswitchinterval())
        return read(*args, **kwargs)

    monkeypatch.setattr(job, "load_training_data", reading)
    steps: dict[str, float] = {}
    result = train(
        config,
        ModelStore(tmp_path / "store"),
        on_step=lambda step: steps.update({step: sys.getswitchinterval()}),
    )
    assert during == [pytest.approx(OVERLAP_SWITCH)]
    # every step after the load runs with the caller's interval
    assert {"preprocess", "select k", "profile", "report"} <= set(steps)
    assert all(v == pytest.approx(OWN) for s, v in steps.items() if s != "load data"), steps
    assert sys.getswitchinterval() == pytest.approx(OWN)
    assert result.manifest.k in (3, 4)


@pytest.mark.usefixtures("own_interval")
def test_a_failed_read_gives_the_interval_back(tmp_path: Path) -> None:
    data = tmp_path / "customers.csv"
    data.write_text("customer_id,recency_days\n")  # a header, no rows
    with pytest.raises(DataError):
        train(example_config("customers", data), ModelStore(tmp_path / "store"))
    assert sys.getswitchinterval() == pytest.approx(OWN)
