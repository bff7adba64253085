"""The profile cache of assignment by id: answers as without it, whoever changes a profile.

Against the suite's real Redis and a model trained by the real job, over HTTP; two app
instances on the same Redis stand for two workers (or hosts).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from app.history import Profile
from app.main import create_app
from app.registry.store import ModelStore
from app.serving import ServingModel
from app.settings import Settings
from app.training.job import TrainResult
from tests.assignment.test_by_id import (
    SAME,
    _assign,
    _dead_port,
    _delete_prefix,
    _settings,
)
from tests.versions import Versions


def _steady(store: ModelStore, data_dir: Path, **changes: Any) -> Settings:
    """The service's settings for a cache test: a recording deadline a loaded machine meets
    (the 100 ms default, missed under load, answers ``recorded: false``: most likely why
    these tests failed twice beside three other test suites, the cache working)."""
    return _settings(store, data_dir, redis_timeout_ms=2_000, **changes)


@pytest.fixture
def pair(
    trained: tuple[ModelStore, TrainResult], tmp_path: Path
) -> Iterator[tuple[TestClient, TestClient]]:
    """Two instances of the service on one Redis and one key prefix (two workers)."""
    first = _steady(trained[0], tmp_path / "a")
    second = first.model_copy(update={"data_dir": tmp_path / "b"})
    with ExitStack() as stack:
        a = stack.enter_context(TestClient(create_app(first)))
        b = stack.enter_context(TestClient(create_app(second)))
        yield a, b
        _delete_prefix(a, first.key_prefix)


def _cache(client: TestClient) -> Any:
    return client.app.state.history.profile_cache


def _metric(result: str) -> float:
    name = "segments_profile_cache_total"
    return REGISTRY.get_sample_value(name, {"result": result}) or 0.0


def _by_id(client: TestClient, customer_id: str) -> dict[str, Any]:
    return _assign(client, {"customer_id": customer_id})


def _apart(example: list[dict[str, Any]], client: TestClient) -> tuple[dict[str, Any], ...]:
    """Two example customers' features that the model puts in different segments."""
    first = example[0]
    segment = _assign(client, {**first, "customer_id": "probe"})["segment_id"]
    other = next(
        item
        for item in example[1:]
        if _assign(client, {**item, "customer_id": "probe"})["segment_id"] != segment
    )
    return first["features"], other["features"]


def test_a_profile_changed_by_another_instance_is_seen_by_the_next_assignment_by_id(
    pair: tuple[TestClient, TestClient], example: list[dict[str, Any]]
) -> None:
    a, b = pair
    old, new = _apart(example, a)
    _assign(a, {"customer_id": "C1", "features": old})
    first = _by_id(a, "C1")  # read, and cached by a
    assert _by_id(a, "C1")["segment_id"] == first["segment_id"]  # from the cache
    hits, stale = _cache(a).hits, _cache(a).stale
    counted = _metric("stale")

    changed = _assign(b, {"customer_id": "C1", "features": new})  # behind a's back
    after = _by_id(a, "C1")

    assert _cache(a).hits == hits + 1 and _cache(a).stale == stale + 1  # tried, refused
    assert _metric("stale") == counted + 1  # operators see it too
    assert changed["segment_id"] != first["segment_id"]
    assert {k: after[k] for k in SAME} == {k: changed[k] for k in SAME}
    assert after["recorded"] and after["changed"] is False  # b's record moved it already
    assert after["features_from"] == "profile"
    # a now holds the new profile: the next one is a hit that Redis accepts
    assert _by_id(a, "C1")["segment_id"] == changed["segment_id"]
    assert _cache(a).stale == stale + 1


def test_a_profile_changed_by_a_batch_of_another_instance_is_seen(
    pair: tuple[TestClient, TestClient], example: list[dict[str, Any]]
) -> None:
    a, b = pair
    old, new = _apart(example, a)
    _assign(a, {"customer_id": "C2", "features": old})
    before = _by_id(a, "C2")
    items = [{"customer_id": "C2", "features": new}, {"customer_id": "C3", "features": old}]
    batch = b.post("/v1/assign/batch", json={"items": items}).json()["results"]

    after = _by_id(a, "C2")

    assert after["segment_id"] == batch[0]["segment_id"] != before["segment_id"]


def test_a_plain_assignment_with_other_features_in_the_same_instance_is_seen(
    pair: tuple[TestClient, TestClient], example: list[dict[str, Any]]
) -> None:
    a, _ = pair
    old, new = _apart(example, a)
    _assign(a, {"customer_id": "C5", "features": old})
    _by_id(a, "C5")
    assert "C5" in _cache(a)._entries
    changed = _assign(a, {"customer_id": "C5", "features": new})
    assert "C5" not in _cache(a)._entries  # it stored another profile: dropped at once
    assert _by_id(a, "C5")["segment_id"] == changed["segment_id"]


def test_a_customer_forgotten_through_another_instance_is_unknown_to_the_next_by_id(
    pair: tuple[TestClient, TestClient], example: list[dict[str, Any]]
) -> None:
    a, b = pair
    _assign(a, {"customer_id": "C4", "features": example[0]["features"]})
    _by_id(a, "C4")
    _by_id(a, "C4")  # from the cache
    assert b.delete("/v1/customers/C4").status_code == 204

    response = a.post("/v1/assign", json={"customer_id": "C4"})

    assert response.status_code == 404, response.text
    assert response.json()["type"] == "/problems/unknown-customer"
    assert "C4" not in _cache(a)._entries
    assert a.get("/v1/customers/C4").status_code == 404  # the check did not revive it
    # forgetting through the instance itself drops its entry too
    _assign(a, {"customer_id": "C4", "features": example[0]["features"]})
    _by_id(a, "C4")
    assert a.delete("/v1/customers/C4").status_code == 204
    assert "C4" not in _cache(a)._entries


def test_concurrent_requests_for_one_hot_customer_do_not_conflict(
    pair: tuple[TestClient, TestClient], example: list[dict[str, Any]]
) -> None:
    a, _ = pair
    _assign(a, {"customer_id": "hot", "features": example[0]["features"]})
    expected = _by_id(a, "hot")
    hits, stale = _cache(a).hits, _cache(a).stale

    async def together() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=a.app)  # the running app, in its own loop
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            calls = [client.post("/v1/assign", json={"customer_id": "hot"}) for _ in range(32)]
            return await asyncio.gather(*calls)

    assert a.portal is not None
    responses = a.portal.call(together)

    assert [r.status_code for r in responses] == [200] * 32
    answers = [r.json() for r in responses]
    assert all(r["recorded"] and r["segment_id"] == expected["segment_id"] for r in answers)
    assert _cache(a).hits == hits + 32 and _cache(a).stale == stale


def test_the_cache_holds_at_most_its_size_least_recently_used_out_first(
    trained: tuple[ModelStore, TrainResult], tmp_path: Path, example: list[dict[str, Any]]
) -> None:
    settings = _steady(trained[0], tmp_path, profile_cache_size=5)
    with TestClient(create_app(settings)) as client:
        items = [{**item, "customer_id": f"B{i}"} for i, item in enumerate(example[:20])]
        stored = client.post("/v1/assign/batch", json={"items": items}).json()["results"]
        for item, result in zip(items, stored, strict=True):
            by_id = _by_id(client, item["customer_id"])
            assert by_id["segment_id"] == result["segment_id"]
            assert len(_cache(client)) <= 5
        _by_id(client, "B15")  # used again: the most recent
        _by_id(client, "B0")  # read again, cached: B16 (least recently used) goes
        assert list(_cache(client)._entries) == ["B17", "B18", "B19", "B15", "B0"]
        _delete_prefix(client, settings.key_prefix)


def test_with_the_cache_off_assignment_by_id_reads_every_time(
    trained: tuple[ModelStore, TrainResult], tmp_path: Path, example: list[dict[str, Any]]
) -> None:
    settings = _steady(trained[0], tmp_path, profile_cache_size=0)
    with TestClient(create_app(settings)) as client:
        sent = _assign(client, {**example[0], "customer_id": "off"})
        for _ in range(3):
            by_id = _by_id(client, "off")
            assert {k: by_id[k] for k in SAME} == {k: sent[k] for k in SAME}
            assert by_id["recorded"] and by_id["features_from"] == "profile"
        assert len(_cache(client)) == 0 and _cache(client).hits == 0
        _delete_prefix(client, settings.key_prefix)


def test_with_redis_down_a_cached_profile_does_not_answer(
    trained: tuple[ModelStore, TrainResult], tmp_path: Path, example: list[dict[str, Any]]
) -> None:
    """Nothing can confirm the cached profile: a 503 as without a cache, nothing spooled."""
    dead = f"redis://127.0.0.1:{_dead_port()}/0"
    with TestClient(create_app(_settings(trained[0], tmp_path, redis_url=dead))) as client:
        history = client.app.state.history
        profile = Profile(example[0]["features"], 0, stored="1:1\x1e1")
        for _ in range(2):  # on the first failure, then while the process spools
            history.profile_cache.put("cached", profile)
            response = client.post("/v1/assign", json={"customer_id": "cached"})
            assert response.status_code == 503, response.text
            assert response.json()["type"] == "/problems/profiles-unavailable"
        assert history.spool.depth() == 0 and not history.redis_up


def test_a_customer_asked_for_again_is_assigned_once_per_profile_and_version(
    trained: tuple[ModelStore, TrainResult],
    tmp_path: Path,
    example: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cache keeps the features and assignment made from a profile: the same answer
    without assigning again, a new name as soon as it is edited, and every answer recorded."""
    store = ModelStore(tmp_path / "store")  # a copy: the edit is kept in the store
    shutil.copytree(trained[0].root, store.root)
    settings = _steady(store, tmp_path / "data")
    with TestClient(create_app(settings)) as a:
        _asked_again(a, example, monkeypatch)
        _delete_prefix(a, settings.key_prefix)


def _asked_again(
    a: TestClient, example: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = _assign(a, {**example[0], "customer_id": "again"})
    first = _by_id(a, "again")  # read and cached
    assigned: list[str] = []
    real = ServingModel.assign_one

    def counted(self: ServingModel, features: Any) -> Any:
        assigned.append(self.version)
        return real(self, features)

    monkeypatch.setattr(ServingModel, "assign_one", counted)
    answers = [_by_id(a, "again") for _ in range(3)]

    assert assigned == [first["model_version"]]  # made once from the cached profile
    for answer in (first, *answers):
        assert {k: answer[k] for k in SAME} == {k: sent[k] for k in SAME}
        assert answer["recorded"] and answer["changed"] is False

    segment = first["segment_id"]
    assert a.patch(f"/v1/segments/{segment}", json={"name": "Renamed"}).status_code == 200
    renamed = _by_id(a, "again")
    assert renamed["segment_name"] == "Renamed" and renamed["segment_id"] == segment
    assert len(assigned) == 1  # a name is the serving version's, not the assignment's


def test_after_a_promote_a_cached_customer_is_assigned_by_the_new_version(
    versions: Versions, tmp_path: Path
) -> None:
    store = ModelStore(tmp_path / "store")
    shutil.copytree(versions.store.root, store.root)
    settings = _steady(store, tmp_path / "data")
    rows = versions.rows[:40]
    with TestClient(create_app(settings)) as client:
        items = [{"customer_id": f"P{i}", "features": row} for i, row in enumerate(rows)]
        stored = client.post("/v1/assign/batch", json={"items": items})
        assert stored.status_code == 200 and stored.json()["assigned"] == len(rows)
        for version in (versions.old, versions.new):
            if version == versions.new:
                promoted = client.post(f"/v1/models/{version}/promote")
                assert promoted.status_code == 200, promoted.text
            for _ in range(2):  # read and made, then made again only if the version changed
                answers = [_by_id(client, item["customer_id"]) for item in items]
                assert [a["model_version"] for a in answers] == [version] * len(rows)
                assert [a["segment_id"] for a in answers] == versions.segment[version][:40]
                names = versions.names[version]
                assert all(a["segment_name"] == names[a["segment_id"]] for a in answers)
        _delete_prefix(client, settings.key_prefix)
