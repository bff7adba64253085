"""Fixtures of the events tests: a behaviour store on the suite's Redis under a key prefix of
its own (deleted afterwards), and a transactions model trained by the real job."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from redis.asyncio import Redis

from app.history.keys import Keys
from app.main import create_app
from app.registry.store import ModelStore
from app.settings import Settings
from app.training.job import TrainResult, train
from tests.conftest import example_config


def clocked_client(
    store: Path, model_name: str, data_dir: Path, prefix: str, now: datetime, **settings: Any
) -> Iterator[TestClient]:
    """The service on ``store`` recording under ``prefix``, its clock stopped at ``now``
    (events' times and recency are read against it)."""
    config = Settings(
        model_store=store,
        model_name=model_name,
        dev_mode=True,
        key_prefix=prefix,
        data_dir=data_dir,
        **settings,
    )
    with TestClient(create_app(config)) as test_client:
        test_client.app.state.clock = now.timestamp  # type: ignore[attr-defined]
        yield test_client


def delete_prefix(url: str, prefix: str) -> None:
    async def delete() -> None:
        async with Redis.from_url(url) as redis:
            keys = Keys(prefix)
            async for key in redis.scan_iter(match=keys.pattern(), count=1000):
                await redis.delete(key)

    asyncio.run(delete())


@pytest.fixture
def prefix(service_redis: str) -> Iterator[str]:
    """A key prefix of this test's own, deleted afterwards."""
    name = f"ev{uuid.uuid4().hex[:8]}:"
    yield name
    delete_prefix(service_redis, name)


@pytest.fixture(scope="session")
def tx_trained(
    tmp_path_factory: pytest.TempPathFactory, transactions_csv: Path
) -> tuple[ModelStore, TrainResult]:
    """A promoted model trained on the example transaction log (shared, do not mutate)."""
    store = ModelStore(tmp_path_factory.mktemp("tx-store"))
    config = example_config("transactions", transactions_csv, selection_bootstraps=0)
    return store, train(config, store, promote=True)
