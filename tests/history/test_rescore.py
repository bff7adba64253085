"""``segments customers rescore``: after a promotion (or a rollback) every customer the history
store knows is re-assigned with the served version and recorded, from the stored profile (a
table model) or the stored behaviour as of now (a log model), with a real trained model, a
real Redis and the real service reading what it recorded."""

from __future__ import annotations

import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli.main import app as cli
from app.main import create_app
from app.registry.store import ModelStore
from app.training.job import TrainResult, train
from tests.conftest import example_config
from tests.events.conftest import delete_prefix
from tests.test_several_models import _command_env, settings_for
from tests.versions import MODEL, Versions


@pytest.fixture
def prefix(service_redis: str) -> Iterator[str]:
    name = f"rs{uuid.uuid4().hex[:8]}:"
    yield name
    delete_prefix(service_redis, name)


def _service(store: ModelStore, url: str, prefix: str, tmp: Path, model: str = MODEL) -> TestClient:
    return TestClient(create_app(settings_for(store, url, prefix, tmp, model_name=model)))


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _members(api: TestClient, segment: str) -> set[str]:
    found: set[str] = set()
    cursor = ""
    while True:
        page = api.get(f"/v1/segments/{segment}/members?limit=1000&cursor={cursor}").json()
        found.update(m["customer_id"] for m in page["members"])
        cursor = page.get("next_cursor") or ""
        if not cursor:
            return found


@pytest.fixture
def copied(versions: Versions, tmp_path: Path) -> ModelStore:
    """The two versions' store (k=3 promoted, k=6 not), a copy of this test's own."""
    shutil.copytree(versions.store.root, tmp_path / "store")
    return ModelStore(tmp_path / "store")


@pytest.fixture
def recorded(
    copied: ModelStore,
    versions: Versions,
    customers: tuple[pd.DataFrame, Any],
    service_redis: str,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> list[str]:
    """The versions' customers recorded by a file run with the promoted (old) version; their
    ids, in the order of ``versions.rows``."""
    frame = customers[0].head(len(versions.rows))
    source = tmp_path / "customers.csv"
    frame.to_csv(source, index=False)
    _command_env(monkeypatch, copied, service_redis, prefix, tmp_path)
    _run("assign", "--input", str(source), "--record")
    return [str(c) for c in frame["customer_id"]]


def test_after_a_promotion_every_customer_follows_the_served_version(
    copied: ModelStore,
    versions: Versions,
    recorded: list[str],
    service_redis: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    old, new = versions.segment[versions.old], versions.segment[versions.new]
    moving = Counter((a, b) for a, b in zip(old, new, strict=True) if a != b)
    promoted = _run("models", "promote", versions.new)
    assert f"`segments customers rescore --model {MODEL}` moves them all now" in promoted
    with _service(copied, service_redis, prefix, tmp_path) as api:
        # before: every customer still where the old version put them
        assert api.get(f"/v1/customers/{recorded[0]}").json()["segment_id"] == old[0]

        output = _run("customers", "rescore")
        changed = sum(moving.values())
        assert f"{changed:,} changed, {len(recorded) - changed:,} unchanged" in output, output
        (before, after), most = moving.most_common(1)[0]
        assert f"{before} -> {after}: {most:,}" in output, output

        # every customer is where the new version puts them, and each segment's members are
        # exactly its customers (none left in a segment of the old version only)
        for customer_id, before, segment in zip(recorded, old, new, strict=True):
            state = api.get(f"/v1/customers/{customer_id}").json()
            assert state["segment_id"] == segment, customer_id
            # the version that moved the customer into it (an unchanged one: the old one)
            assert state["model_version"] == (versions.new if before != segment else versions.old)
        for segment in set(new):
            expected = {c for c, s in zip(recorded, new, strict=True) if s == segment}
            assert _members(api, segment) == expected, segment
        gone = set(old) - set(new)
        for segment in gone:  # the old version's own segments kept no member
            assert api.get(f"/v1/segments/{segment}/members").status_code == 404
        # a customer who moved has the migration in their history, stamped by the new version
        mover = next(c for c, a, b in zip(recorded, old, new, strict=True) if a != b)
        history = api.get(f"/v1/customers/{mover}/history").json()["migrations"]
        assert history[0]["to_segment_id"] == new[recorded.index(mover)]
        assert history[0]["model_version"] == versions.new

        # a second rescore moves nobody; by id, the service agrees with what was recorded
        assert f"0 changed, {len(recorded):,} unchanged" in _run("customers", "rescore")
        answer = api.post("/v1/assign", json={"customer_id": recorded[1]}).json()
        assert answer["segment_id"] == new[1] and answer["changed"] is False

    # a rollback, then a rescore: everyone is back where the old version puts them
    copied.promote(MODEL, versions.old)
    output = _run("customers", "rescore")
    assert f"{sum(moving.values()):,} changed" in output, output
    with _service(copied, service_redis, prefix, tmp_path) as api:
        for customer_id, segment in list(zip(recorded, old, strict=True))[:50]:
            assert api.get(f"/v1/customers/{customer_id}").json()["segment_id"] == segment


def test_customers_whose_profile_lacks_a_feature_of_the_version_are_named_not_moved(
    copied: ModelStore,
    versions: Versions,
    customers: tuple[pd.DataFrame, Any],
    customers_csv: Path,
    service_redis: str,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A retrain added a feature the stored profiles do not hold: those customers keep their
    recorded segment, and the command counts them with the feature's name (exit 3: partial)."""
    config = example_config(MODEL, customers_csv, stability_bootstraps=0, k_min=3, k_max=3)
    config = config.model_copy(
        update={"features": [f for f in config.features if f.name != "support_tickets"]}
    )
    fewer: TrainResult = train(config, copied, promote=True)
    frame = customers[0].head(200).drop(columns=["support_tickets"])
    source = tmp_path / "fewer.csv"
    frame.to_csv(source, index=False)
    _command_env(monkeypatch, copied, service_redis, prefix, tmp_path)
    _run("assign", "--input", str(source), "--record")
    copied.promote(MODEL, versions.new)  # it needs support_tickets
    result = CliRunner().invoke(cli, ["customers", "rescore"])
    assert result.exit_code == 3, result.output
    assert "not assigned: 200" in result.output, result.output
    assert "features.support_tickets" in result.output, result.output
    with _service(copied, service_redis, prefix, tmp_path) as api:
        state = api.get(f"/v1/customers/{frame['customer_id'].iloc[0]}").json()
        assert state["model_version"] == fewer.manifest.version  # untouched


def test_redis_unreachable_is_one_error_line_saying_to_run_it_again(
    copied: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _command_env(monkeypatch, copied, f"redis://127.0.0.1:{port}/0", "x:", tmp_path)
    result = CliRunner().invoke(cli, ["customers", "rescore"])
    assert result.exit_code == 1, result.output
    assert "error: Redis failed while listing the customers" in result.output
    assert "run it again" in result.output and "Traceback" not in result.output
