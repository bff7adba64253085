"""Assignment by id (issue 12, item 3): features left out come from the stored profile.

Against the suite's real Redis and a model trained by the real job, over HTTP.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.history import Record
from app.main import create_app
from app.registry.store import ModelStore
from app.settings import Settings
from app.training.job import TrainResult
from tests.assignment.conftest import ROWS


def _settings(store: ModelStore, tmp_path: Path, **changes: Any) -> Settings:
    return Settings(
        model_store=store.root,
        dev_mode=True,
        key_prefix=f"byid{uuid.uuid4().hex[:8]}:",
        data_dir=tmp_path,
        **changes,
    )


@pytest.fixture(scope="module")
def client(
    trained: tuple[ModelStore, TrainResult],
    tmp_path_factory: pytest.TempPathFactory,
    example: list[dict[str, Any]],
) -> Iterator[TestClient]:
    """A service whose Redis holds the profiles of the example customers (one batch), with a
    recording deadline a loaded machine meets: the 100 ms default, missed beside other test
    suites, spooled a record and the merge test read the profile before it (CI, 2026-12-06:
    hypothesis then reported the replay as a flaky strategy)."""
    settings = _settings(trained[0], tmp_path_factory.mktemp("byid"), redis_timeout_ms=2_000)
    with TestClient(create_app(settings)) as test_client:
        stored = test_client.post("/v1/assign/batch", json={"items": example})
        assert stored.status_code == 200 and stored.json()["assigned"] == ROWS, stored.text
        yield test_client
        _delete_prefix(test_client, settings.key_prefix)


def _delete_prefix(client: TestClient, prefix: str) -> None:
    import asyncio

    from redis.asyncio import Redis

    async def delete() -> None:
        async with Redis.from_url(client.app.state.settings.redis_url) as redis:
            keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
            for start in range(0, len(keys), 500):
                await redis.delete(*keys[start : start + 500])

    asyncio.run(delete())


def _assign(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/assign", json=body)
    assert response.status_code == 200, response.text
    return response.json()


SAME = ("segment_id", "segment_name", "confidence", "model_version", "explanation")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_assignment_by_id_equals_assignment_with_the_same_features_sent(
    client: TestClient, example: list[dict[str, Any]], data: st.DataObject
) -> None:
    """By id with a cold profile cache (a read, then the record), with a warm one (the
    cached profile, checked by Redis at record time) and with every feature sent: the same."""
    item = data.draw(st.sampled_from(example))
    cache = client.app.state.history.profile_cache
    cache.drop(item["customer_id"])
    hits, stale = cache.hits, cache.stale
    cold = _assign(client, {"customer_id": item["customer_id"]})
    warm = _assign(client, {"customer_id": item["customer_id"]})
    assert cache.hits == hits + 1  # the second one was answered from the cache
    sent = _assign(client, item)
    for by_id in (cold, warm):
        assert {k: by_id[k] for k in SAME} == {k: sent[k] for k in SAME}
        assert by_id["features_from"] == "profile"
        assert by_id["recorded"] and by_id["changed"] is False  # the same segment as stored
    assert sent["features_from"] == "request"
    assert cache.stale == stale


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_features_sent_are_merged_over_the_stored_profile(
    client: TestClient, example: list[dict[str, Any]], data: st.DataObject
) -> None:
    """Sending some features is assigning the profile with those replaced, and stores that."""
    stored, other = data.draw(st.sampled_from(example)), data.draw(st.sampled_from(example))
    names = sorted(stored["features"])
    sent_names = data.draw(st.sets(st.sampled_from(names), min_size=1, max_size=len(names) - 1))
    sent = {n: other["features"][n] for n in sent_names}
    customer = f"merge-{uuid.uuid4().hex[:8]}"
    _assign(client, {"customer_id": customer, "features": stored["features"]})

    merged = _assign(client, {"customer_id": customer, "features": sent})

    whole = {**stored["features"], **sent}
    expected = _assign(client, {"customer_id": f"x-{customer}", "features": whole})
    assert {k: merged[k] for k in SAME} == {k: expected[k] for k in SAME}
    assert merged["features_from"] == "merged"
    profile = client.get(f"/v1/customers/{customer}").json()["profile"]
    assert profile == whole  # the merged features are the new profile


def test_an_unknown_customer_without_features_is_a_404_naming_it(client: TestClient) -> None:
    response = client.post("/v1/assign", json={"customer_id": "nobody-007"})
    assert response.status_code == 404
    problem = response.json()
    assert problem["type"] == "/problems/unknown-customer"
    assert "nobody-007" in problem["detail"]
    assert (
        "or store the customers first (segments assign --input FILE --record" in problem["detail"]
    )
    assert problem["errors"][0]["field"] == "customer_id"


def test_an_unknown_customer_with_some_features_is_a_404_naming_the_missing_ones(
    client: TestClient, example: list[dict[str, Any]]
) -> None:
    some = dict(list(example[0]["features"].items())[:4])
    response = client.post("/v1/assign", json={"customer_id": "nobody-8", "features": some})
    assert response.status_code == 404  # nothing to complete them from
    fields = [e["field"] for e in response.json()["errors"]]
    missing = [f"features.{n}" for n in example[0]["features"] if n not in some]
    assert fields == ["customer_id", *missing]
    # a caller with no value for them is told to send null (as the 422 of a bad value says),
    # and doing so assigns the customer, the nulls imputed
    problem = response.json()
    assert "null" in problem["detail"], problem["detail"]
    assert all("null" in e["message"] for e in problem["errors"]), problem["errors"]
    nulls = {**some, **dict.fromkeys(example[0]["features"].keys() - some.keys())}
    sent = client.post("/v1/assign", json={"customer_id": "nobody-8", "features": nulls})
    assert sent.status_code == 200, sent.text
    assert sent.json()["features_from"] == "request"


def test_a_batchs_unknown_customer_is_told_to_send_null_too(
    client: TestClient, example: list[dict[str, Any]]
) -> None:
    some = dict(list(example[0]["features"].items())[:4])
    items = [{"customer_id": "nobody-9", "features": some}, example[1]]
    response = client.post("/v1/assign/batch", json={"items": items})
    assert response.status_code == 200, response.text
    errors = response.json()["results"][0]["errors"]
    assert errors[0]["field"] == "items.0.customer_id"
    assert all("null" in e["message"] for e in errors), errors


def test_a_profile_lacking_a_feature_the_serving_version_needs_is_a_422_naming_it(
    client: TestClient, example: list[dict[str, Any]]
) -> None:
    """What a retrain that added a feature leaves: a profile stored without it."""
    history = client.app.state.history
    old = {k: v for k, v in example[1]["features"].items() if k not in ("plan", "country")}
    record = Record.create("older-profile", "seg-001", "v-before", profile=old)
    assert client.portal is not None  # the app's event loop, where its Redis client lives
    assert client.portal.call(history.record, record).recorded

    response = client.post("/v1/assign", json={"customer_id": "older-profile"})

    assert response.status_code == 422, response.text
    fields = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert set(fields) == {"features.plan", "features.country"}
    assert "stored profile" in fields["features.plan"]
    # sending the missing ones completes it
    fixed = {"plan": example[1]["features"]["plan"], "country": example[1]["features"]["country"]}
    done = _assign(client, {"customer_id": "older-profile", "features": fixed})
    assert done["features_from"] == "merged"


def test_a_batch_may_leave_features_out_item_by_item(
    client: TestClient, example: list[dict[str, Any]]
) -> None:
    known, full = example[2], example[3]
    items = [
        {"customer_id": known["customer_id"]},
        {"customer_id": "nobody-in-batch"},
        full,
        {"customer_id": known["customer_id"], "features": {"plan": "basic"}},
        {"customer_id": "x", "features": {"nonsense": 1}},
    ]
    response = client.post("/v1/assign/batch", json={"items": items})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["ok", "error", "ok", "ok", "error"]
    assert results[0]["features_from"] == "profile"
    assert results[0]["segment_id"] == _assign(client, known)["segment_id"]
    assert results[1]["errors"][0]["field"] == "items.1.customer_id"
    assert results[2].get("features_from") is None  # every feature sent: the usual answer
    assert results[3]["features_from"] == "merged"
    assert response.json()["assigned"] == 3


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_without_redis_an_id_only_assignment_is_a_quick_503(
    trained: tuple[ModelStore, TrainResult], tmp_path: Path, example: list[dict[str, Any]]
) -> None:
    settings = _settings(trained[0], tmp_path, redis_url=f"redis://127.0.0.1:{_dead_port()}/0")
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/assign", json={"customer_id": example[0]["customer_id"]})
        assert response.status_code == 503, response.text
        assert response.json()["type"] == "/problems/profiles-unavailable"
        # with every feature sent, it is answered from the model as always (not recorded)
        answered = _assign(client, example[0])
        assert answered["recorded"] is False


def test_with_recording_off_every_feature_must_be_sent(
    trained: tuple[ModelStore, TrainResult], tmp_path: Path, example: list[dict[str, Any]]
) -> None:
    settings = _settings(trained[0], tmp_path, record_assignments=False)
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/assign", json={"customer_id": example[0]["customer_id"]})
        assert response.status_code == 422
        assert response.json()["errors"] == [{"field": "features", "message": "field required"}]
        some = dict(list(example[0]["features"].items())[1:])
        partial = {"customer_id": example[0]["customer_id"], "features": some}
        response = client.post("/v1/assign", json=partial)
        assert response.status_code == 422
        missing = next(iter(example[0]["features"]))
        assert response.json()["errors"][0]["field"] == f"features.{missing}"


@pytest.mark.parametrize("sent", [{"sessions_30d": 3}, {}], ids=["merged", "profile"])
def test_a_forget_between_the_read_and_the_record_is_not_undone(
    client: TestClient,
    example: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    sent: dict[str, Any],
) -> None:
    """A request that read the profile just before a forget: its record is checked against
    the profile it read, finds it gone, and reads again: the customer is unknown (404), and
    stays forgotten. Unchecked, the merged record wrote the whole forgotten profile back (an
    outside try, 5 of 5 runs, with concurrent requests and a DELETE)."""
    customer = f"forget-race-{uuid.uuid4().hex[:8]}"
    _assign(client, {"customer_id": customer, "features": example[0]["features"]})
    history = client.app.state.history
    history.profile_cache.drop(customer)
    real = history.profiles
    forgotten: list[bool] = []

    async def read_then_forget(*args: Any, **kwargs: Any) -> Any:
        found = await real(*args, **kwargs)
        if not forgotten:  # the forget lands after this read, before the record
            forgotten.append(await history.recorder.forget(customer))
        return found

    monkeypatch.setattr(history, "profiles", read_then_forget)
    answer = client.post("/v1/assign", json={"customer_id": customer, "features": sent})
    monkeypatch.undo()
    assert forgotten == [True]
    assert answer.status_code == 404, answer.text
    assert client.get(f"/v1/customers/{customer}").status_code == 404


def test_an_unknown_id_stored_as_a_float_is_named(
    client: TestClient, example: list[dict[str, Any]]
) -> None:
    """Found by a new-user audit: a German order log wrote ids as floats (`12364.0`), so the
    CRM's `12364` was a 404 with no word of why; the problem names the stored id (and the
    converse), and an id with no such twin reads as before."""
    features = example[0]["features"]
    _assign(client, {"customer_id": "4711.0", "features": features})
    _assign(client, {"customer_id": "815", "features": features})
    for asked, stored in (("4711", "4711.0"), ("815.0", "815")):
        response = client.post("/v1/assign", json={"customer_id": asked})
        assert response.status_code == 404
        detail = response.json()["detail"]
        assert f"; customer '{stored}' has one: ids are text, exactly as" in detail, detail
        # the customer's page and history say it too (a new user's GET of the retail log's
        # 17850, recorded as 17850.0, was a bare "no assignment recorded for '17850'")
        for path in (f"/v1/customers/{asked}", f"/v1/customers/{asked}/history"):
            response = client.get(path)
            assert response.status_code == 404, response.text
            detail = response.json()["detail"]
            assert detail.startswith(f"no assignment recorded for '{asked}'; customer "), detail
            assert f"; customer '{stored}' has one: ids are text, exactly as" in detail, detail
    response = client.post("/v1/assign", json={"customer_id": "4712"})
    assert response.status_code == 404 and "has one" not in response.json()["detail"]
    response = client.get("/v1/customers/4712")
    assert response.json()["detail"] == "no assignment recorded for '4712'", response.text


def test_an_unknown_id_stored_with_its_leading_zeros_is_named(
    client: TestClient, example: list[dict[str, Any]]
) -> None:
    """A telecom table's ids are zero-padded (``0176093``); a website or a spreadsheet that
    dropped the zeros asked for ``176093`` and got a 404 with no word of why. The problem
    names the stored id (and the converse); ids are still never matched across spellings."""
    features = example[0]["features"]
    _assign(client, {"customer_id": "0176093", "features": features})
    _assign(client, {"customer_id": "31337", "features": features})
    for asked, stored in (("176093", "0176093"), ("00031337", "31337")):
        response = client.post("/v1/assign", json={"customer_id": asked})
        assert response.status_code == 404, response.text
        detail = response.json()["detail"]
        assert (
            f"; customer '{stored}' has one: ids are text, exactly as the file wrote them "
            "(leading zeros count: 0176093 and 176093 are two customers)"
        ) in detail, detail
    response = client.post("/v1/assign", json={"customer_id": "176094"})
    assert response.status_code == 404 and "has one" not in response.json()["detail"]
