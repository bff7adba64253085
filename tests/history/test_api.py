"""Migration history over HTTP: recording, customers, members, the flow matrix, outages."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.registry.store import ModelStore
from app.settings import Settings
from app.training.job import TrainResult
from tests.history.conftest import RedisProcess


def segment_features(trained: tuple[ModelStore, TrainResult], customers: Any) -> list[dict]:
    """One real customer's features per segment, so tests can move a customer between them."""
    store, _ = trained
    model = store.load("customers").estimator
    frame = customers[0].set_index("customer_id")[model.feature_names]
    ids = model.predict(frame)
    picks = []
    for segment in dict.fromkeys(ids):
        row = frame[ids == segment].iloc[0]
        picks.append({k: (None if v != v else v) for k, v in row.to_dict().items()})
    return picks


@pytest.fixture
def client(trained: tuple[ModelStore, TrainResult], tmp_path: Path) -> Iterator[TestClient]:
    store, _ = trained
    settings = Settings(
        model_store=store.root,
        dev_mode=True,
        key_prefix=f"h{uuid.uuid4().hex[:8]}:",
        data_dir=tmp_path,
        history_cap=3,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def assign(client: TestClient, customer: str, features: dict) -> dict:
    response = client.post("/v1/assign", json={"customer_id": customer, "features": features})
    assert response.status_code == 200, response.text
    return response.json()


def test_first_change_and_unchanged_assignments(client: TestClient, trained, customers) -> None:
    a, b = segment_features(trained, customers)[:2]
    first = assign(client, "c1", a)
    assert (first["recorded"], first["changed"], first["previous_segment_id"]) == (True, True, None)
    same = assign(client, "c1", a)
    assert (same["changed"], same["previous_segment_id"]) == (False, first["segment_id"])
    moved = assign(client, "c1", b)
    assert moved["changed"] is True
    assert moved["previous_segment_id"] == first["segment_id"]
    current = client.get("/v1/customers/c1").json()
    assert current["segment_id"] == moved["segment_id"]
    assert current["migrations"] == 2
    assert current["segment_name"] == moved["segment_name"]
    renamed = client.patch(f"/v1/segments/{moved['segment_id']}", json={"name": "Renamed"})
    assert renamed.status_code == 200, renamed.text
    deadline = time.monotonic() + 10  # the edit is served from the next overrides check
    while client.get("/v1/customers/c1").json()["segment_name"] != "Renamed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    history = client.get("/v1/customers/c1/history").json()["migrations"]
    assert [(m["from_segment_id"], m["to_segment_id"]) for m in history] == [
        (first["segment_id"], moved["segment_id"]),
        (None, first["segment_id"]),
    ]
    assert client.get("/v1/customers/nobody").status_code == 404
    unknown = client.get("/v1/customers/nobody/history")
    assert (unknown.status_code, unknown.json()["type"]) == (404, "/problems/unknown-customer")


def test_an_id_no_assignment_could_have_is_refused_by_name(client: TestClient) -> None:
    """A path id the service would refuse to assign (control characters, invisible only) is
    a 422 saying why, on every customer path, not a 404 "no assignment recorded"."""
    for path in ("/v1/customers/a%00b", "/v1/customers/%E2%80%8B", "/v1/customers/x%1Fy/history"):
        for method in ("GET", "DELETE") if not path.endswith("history") else ("GET",):
            answer = client.request(method, path)
            assert answer.status_code == 422, (method, path, answer.text)
            (error,) = answer.json()["errors"]
            assert error["field"] == "customer_id"
            assert error["message"].startswith("not a customer id: "), error


def test_a_path_id_that_is_not_utf8_is_refused_and_forgets_no_one(
    client: TestClient, trained, customers
) -> None:
    """``Jos%E9`` (a Latin-1 é) was decoded with replacement characters, as the server
    decodes a path, into the customer ``Jos\ufffd``: another id, which a file's mojibake
    can hold, read and forgotten in its place. It is a 422 saying how to escape the id."""
    a = segment_features(trained, customers)[0]
    kept = assign(client, "Jos\ufffd", a)
    for path in ("/v1/customers/Jos%E9", "/v1/customers/Jos%E9/history", "/v1/customers/%ED%A0%80"):
        for method in ("GET", "DELETE") if not path.endswith("history") else ("GET",):
            answer = client.request(method, path)
            assert answer.status_code == 422, (method, path, answer.text)
            (error,) = answer.json()["errors"]
            assert error["field"] == "customer_id"
            assert "not UTF-8" in error["message"] and "%C3%A9" in error["message"], error
    current = client.get("/v1/customers/" + quote("Jos\ufffd", safe=""))
    assert current.status_code == 200, current.text
    assert current.json()["segment_id"] == kept["segment_id"]  # not forgotten
    assert client.get("/v1/customers/Jos%C3%A9").status_code == 404  # (another customer)


def test_an_id_with_a_slash_is_read_and_forgotten_by_its_escaped_path(
    client: TestClient, trained, customers
) -> None:
    """Ids are text as written, so one may hold '/' (or '%'): sent escaped ('%2F'), the path
    names that customer, never another path ('x/history' is not customer x's history), and
    such a customer can be read, listed and forgotten like any other."""
    a, b = segment_features(trained, customers)[:2]
    x = assign(client, "x", a)  # the customer a mis-read path would answer for
    for customer in ("a/b", "x/history", "/lead", "trail/", "a%2Fb", "100%", "/"):
        moved = assign(client, customer, b)
        path = "/v1/customers/" + quote(customer, safe="")
        current = client.get(path)
        assert current.status_code == 200, (customer, current.text)
        assert (current.json()["customer_id"], current.json()["segment_id"]) == (
            customer,
            moved["segment_id"],
        )
        history = client.get(path + "/history")
        assert history.status_code == 200, (customer, history.text)
        assert history.json()["customer_id"] == customer
        assert len(history.json()["migrations"]) == 1
        forgotten = client.delete(path)
        assert forgotten.status_code == 204, (customer, forgotten.text)
        assert client.get(path).status_code == 404
    current = client.get("/v1/customers/x").json()  # untouched by all of the above
    assert (current["segment_id"], current["migrations"]) == (x["segment_id"], 1)
    assert client.get("/v1/customers/x/history").json()["customer_id"] == "x"


def test_any_id_the_service_assigns_is_read_back_by_its_escaped_path(
    client: TestClient, trained, customers
) -> None:
    """Every id ``/v1/assign`` takes (slashes, percent signs, dots, any script) is the one its
    path, escaped as a client escapes it, reads back (dots as ``%2E``: a client resolves
    ``.`` and ``..`` segments away)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from app.assignment.customer_ids import readable_id

    features = segment_features(trained, customers)[0]
    alphabet = st.sampled_from("/%.25Fa ~?#+") | st.characters(codec="utf-8")
    ids = st.text(alphabet, min_size=1, max_size=40).filter(readable_id)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(customer=ids)
    def run(customer: str) -> None:
        assign(client, customer, features)
        path = "/v1/customers/" + quote(customer, safe="").replace(".", "%2E")
        for suffix in ("", "/history"):
            answer = client.get(path + suffix)
            assert answer.status_code == 200, (customer, suffix, answer.text)
            assert answer.json()["customer_id"] == customer

    run()


def test_history_is_capped(client: TestClient, trained, customers) -> None:
    a, b = segment_features(trained, customers)[:2]
    for i in range(6):
        assign(client, "capped", a if i % 2 == 0 else b)
    history = client.get("/v1/customers/capped/history").json()["migrations"]
    assert len(history) == 3  # history_cap
    assert client.get("/v1/customers/capped").json()["migrations"] == 6


def test_batch_with_duplicates_applies_in_order(client: TestClient, trained, customers) -> None:
    a, b, c = segment_features(trained, customers)[:3]
    items = [{"customer_id": "dup", "features": f} for f in (a, b, b, c)]
    results = client.post("/v1/assign/batch", json={"items": items}).json()["results"]
    assert [r["changed"] for r in results] == [True, True, False, True]
    assert results[1]["previous_segment_id"] == results[0]["segment_id"]
    assert results[3]["previous_segment_id"] == results[2]["segment_id"]
    history = client.get("/v1/customers/dup/history").json()["migrations"]
    assert len(history) == 3


def test_members_are_cursor_paged_and_the_flow_matrix_adds_up(
    client: TestClient, trained, customers
) -> None:
    a, b = segment_features(trained, customers)[:2]
    items = [{"customer_id": f"m{i:03d}", "features": a} for i in range(25)]
    segment = client.post("/v1/assign/batch", json={"items": items}).json()["results"][0][
        "segment_id"
    ]
    for i in range(5):  # five of them move on
        assign(client, f"m{i:03d}", b)
    seen, cursor = [], None
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/v1/segments/{segment}/members", params=params).json()
        assert page["total"] == 20
        seen += [m["customer_id"] for m in page["members"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == [f"m{i:03d}" for i in range(5, 25)]
    bad = client.get(f"/v1/segments/{segment}/members", params={"cursor": "garbage"})
    assert bad.status_code == 422
    unknown = client.get("/v1/segments/seg-999/members")
    assert (unknown.status_code, unknown.json()["type"]) == (404, "/problems/unknown-segment")
    known = {s["id"] for s in client.get("/v1/segments").json()["segments"]}
    empty = sorted(known - {segment, assign(client, "probe", b)["segment_id"]})[0]
    assert client.get(f"/v1/segments/{empty}/members").json() == {
        "segment_id": empty,
        "total": 0,
        "next_cursor": None,
        "members": [],
    }  # a segment of the serving version that nobody is in: found, and empty
    flows = client.get("/v1/migrations").json()
    target = assign(client, "m000", b)["segment_id"]
    assert flows["matrix"]["new"][segment] == 25
    assert flows["matrix"][segment][target] == 5
    assert flows["totals"][segment] == {"inflow": 0, "new": 25, "outflow": 5, "net": 20}
    window = client.get(
        "/v1/migrations", params={"since": "2000-01-01T00:00:00Z", "until": "2000-01-02T00:00:00Z"}
    )
    assert window.json()["flows"] == []
    # older than the flow retention: empty, and it says so (it does not start after it ends)
    assert window.json()["since"] == window.json()["until"] == "2000-01-02T00:00:00Z"
    future = client.get("/v1/migrations", params={"since": "2030-01-01T00:00:00Z"})  # until now
    assert (future.status_code, future.json()["flows"]) == (200, [])  # ends before it starts


def on_redis(store: ModelStore, server: RedisProcess, tmp_path: Path) -> Settings:
    """A service recording into the test's own Redis server, with a short deadline."""
    return Settings(
        model_store=store.root,
        dev_mode=True,
        redis_url=server.url,
        data_dir=tmp_path / "data",
        redis_timeout_ms=200,
    )


def test_a_window_that_ends_before_it_starts_is_refused_naming_both_ends(
    client: TestClient,
) -> None:
    """`?since=` and `?until=` swapped answered an empty 200, read as "nobody moved" (the
    dashboard's page already refused it); both ends are named. A since after now with no
    until is a poller's next window, still an empty 200."""
    swapped = client.get(
        "/v1/migrations",
        params={"since": "2026-12-06T00:00:00Z", "until": "2026-12-01T00:00:00+00:00"},
    )
    assert swapped.status_code == 422, swapped.text
    assert swapped.json()["errors"] == [
        {"field": "since", "message": "after until (2026-12-01T00:00:00Z): give since <= until"},
        {"field": "until", "message": "before since (2026-12-06T00:00:00Z)"},
    ]
    same = {"since": "2026-12-06T00:00:00Z", "until": "2026-12-06T00:00:00Z"}
    assert client.get("/v1/migrations", params=same).status_code == 200  # one bucket
    ahead = client.get("/v1/migrations", params={"since": "2030-01-01T00:00:00Z"})
    assert (ahead.status_code, ahead.json()["flows"]) == (200, [])
    # a time that is not ISO 8601 says so, without pydantic's "Value error, " in front
    assert client.get("/v1/migrations", params={"since": "80136"}).json()["errors"] == [
        {"field": "since", "message": "must be an ISO 8601 date-time, such as 2026-01-31T00:00:00Z"}
    ]


def test_redis_killed_mid_run_loses_no_migration(
    trained: tuple[ModelStore, TrainResult], customers, tmp_path: Path
) -> None:
    """SIGKILL Redis while assigning: no failed call, and every migration exactly once, in order."""
    store, _ = trained
    segs = segment_features(trained, customers)[:3]
    redis_dir = tmp_path / "redis"
    server = RedisProcess(
        redis_dir, args=["--appendonly", "yes", "--appendfsync", "always"]
    ).start()
    settings = on_redis(store, server, tmp_path)
    expected: list[tuple[str | None, str]] = []
    previous = None
    try:
        with TestClient(create_app(settings)) as client:
            for step in range(60):
                if step == 20:
                    server.stop(signal.SIGKILL)
                if step == 40:
                    server = RedisProcess(
                        redis_dir,
                        port=server.port,
                        args=["--appendonly", "yes", "--appendfsync", "always"],
                    ).start()
                body = assign(client, "fault", segs[step % 3] if step % 4 else segs[(step + 1) % 3])
                if step == 25:
                    assert body["recorded"] is False  # answered from the model, spooled
                    ready = client.get("/readyz")  # degraded, still serving: 200
                    assert ready.status_code == 200
                    redis = ready.json()["checks"]["redis"]
                    assert ready.json()["status"] == "degraded"
                    assert (redis["ok"], redis["reachable"], redis["mode"]) == (
                        False,
                        False,
                        "spooling",
                    )
                    assert redis["spool_depth"] >= 5
                    metrics = client.get("/metrics").text
                    assert "segments_redis_up 0.0" in metrics
                    assert "segments_spool_depth 0.0" not in metrics
                if body["segment_id"] != previous:
                    expected.append((previous, body["segment_id"]))
                    previous = body["segment_id"]
            deadline = time.monotonic() + 20
            while (
                client.get("/readyz").json()["checks"]["redis"]["spool_depth"]
                and time.monotonic() < deadline
            ):
                time.sleep(0.1)
            ready = client.get("/readyz")
            assert (ready.status_code, ready.json()["status"]) == (200, "ready")
            assert "segments_redis_up 1.0" in client.get("/metrics").text
            history = client.get("/v1/customers/fault/history", params={"limit": 1000}).json()
            got = [
                (m["from_segment_id"], m["to_segment_id"]) for m in reversed(history["migrations"])
            ]
            assert got == expected
            assert client.get("/v1/customers/fault").json()["migrations"] == len(expected)
    finally:
        server.stop()


def test_embedded_redis_starts_in_an_empty_data_dir_and_persists_across_restarts(
    trained: tuple[ModelStore, TrainResult], customers, tmp_path: Path
) -> None:
    store, _ = trained
    features = segment_features(trained, customers)[0]
    data_dir = tmp_path / "fresh"
    assert not data_dir.exists()
    settings = Settings(model_store=store.root, dev_mode=True, redis_url=None, data_dir=data_dir)
    with TestClient(create_app(settings)) as client:
        first = assign(client, "persisted", features)
        assert first["recorded"] is True
    assert (data_dir / "redis").is_dir()
    with TestClient(create_app(settings)) as client:  # a new embedded server, same data
        current = client.get("/v1/customers/persisted")
        assert current.status_code == 200, current.text
        assert current.json()["segment_id"] == first["segment_id"]
        again = assign(client, "persisted", features)
        assert (again["changed"], again["previous_segment_id"]) == (False, first["segment_id"])


def test_readiness_pings_redis_before_any_assignment_and_stays_serving(
    trained: tuple[ModelStore, TrainResult], customers, tmp_path: Path, monkeypatch
) -> None:
    """An idle service whose Redis is gone says so (degraded, 200), and still assigns."""
    from prometheus_client import REGISTRY

    import app.main

    monkeypatch.setattr(app.main, "GAUGE_INTERVAL_S", 0.05)
    store, _ = trained
    server = RedisProcess(tmp_path / "redis").start()
    settings = on_redis(store, server, tmp_path)
    try:
        with TestClient(create_app(settings)) as client:
            assert client.get("/readyz").json()["status"] == "ready"
            assert REGISTRY.get_sample_value("segments_redis_up") == 1
            server.stop(signal.SIGKILL)  # nothing was recorded yet: only a ping can tell
            deadline = time.monotonic() + 10  # each worker refreshes its gauges by itself
            while REGISTRY.get_sample_value("segments_redis_up") != 0:
                assert time.monotonic() < deadline, "the gauge was not refreshed"
                time.sleep(0.05)
            ready = client.get("/readyz")
            assert (ready.status_code, ready.json()["status"]) == (200, "degraded")
            redis = ready.json()["checks"]["redis"]
            # the failed ping moved recording to the spool: never "unreachable" beside "direct"
            assert (redis["ok"], redis["reachable"], redis["mode"]) == (False, False, "spooling")
            assert "Redis unreachable" in redis["note"]
            assert "segments_redis_up 0.0" in client.get("/metrics").text
            body = assign(client, "idle", segment_features(trained, customers)[0])
            assert body["recorded"] is False
        strict = settings.model_copy(update={"readyz_requires_redis": True})
        with TestClient(create_app(strict)) as client:  # for who wants readiness to need Redis
            ready = client.get("/readyz")
            assert (ready.status_code, ready.json()["status"]) == (503, "not ready")
            assert ready.json()["checks"]["model"]["ok"] is True
    finally:
        server.stop()


def test_an_assignment_older_than_the_recorded_one_says_it_was_not_recorded(
    client: TestClient, trained, customers
) -> None:
    """Another process recorded a newer assignment first: this answer claims no change."""
    from app.history.records import Record, now_ms

    a, b = segment_features(trained, customers)[:2]
    newer = assign(client, "raced", b)  # learn b's segment id, then record it "later"
    history = client.app.state.history  # type: ignore[attr-defined]
    # a record made by another process whose clock is a minute ahead (Record.create here
    # would move this process's own id sequence past it: ids strictly increase in-process)
    at = now_ms() + 60_000
    rid = f"{at << 80 | 0x7 << 76 | 1 << 63:032x}"  # a UUIDv7 of that time, as the ids are
    later = Record("raced", newer["segment_id"], "other", at, rid, None)
    assert client.portal.call(history.record, later).changed is False
    from prometheus_client import REGISTRY

    superseded = REGISTRY.get_sample_value("segments_records_superseded_total") or 0
    stale = assign(client, "raced", a)  # made now: older than the record above
    assert REGISTRY.get_sample_value("segments_records_superseded_total") == superseded + 1
    assert stale["segment_id"] != newer["segment_id"]
    assert (stale["recorded"], stale["changed"], stale["previous_segment_id"]) == (
        False,
        None,
        None,
    )
    current = client.get("/v1/customers/raced").json()
    assert (current["segment_id"], current["migrations"]) == (newer["segment_id"], 1)


def test_the_migration_window_is_bounded_by_days_and_by_buckets(
    trained: tuple[ModelStore, TrainResult], tmp_path: Path
) -> None:
    store, _ = trained
    for bucket, shards, longest in (
        (3600, 1, 366.0),
        (60, 1, 20_000 * 60 / 86400),
        (3600, 64, 20_000 // 64 * 3600 / 86400),
    ):
        settings = Settings(
            model_store=store.root,
            dev_mode=True,
            key_prefix=f"h{uuid.uuid4().hex[:8]}:",
            data_dir=tmp_path / f"{bucket}-{shards}",
            flow_bucket_seconds=bucket,
            redis_shards=shards,
        )
        with TestClient(create_app(settings)) as client:
            until = "2026-06-01T00:00:00Z"
            ok = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1780272000 - longest * 86400))
            too_long = time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(1780272000 - longest * 86400 - 3600)
            )
            answer = client.get("/v1/migrations", params={"since": ok, "until": until})
            assert answer.status_code == 200, answer.text
            # a longer one is shortened to its latest part: the reads stay bounded
            longer = client.get("/v1/migrations", params={"since": too_long, "until": until})
            assert longer.status_code == 200, longer.text
            read = datetime.fromisoformat(longer.json()["until"]) - datetime.fromisoformat(
                longer.json()["since"]
            )
            assert read <= timedelta(days=longest, seconds=bucket)


def test_a_customer_shows_its_profile_and_can_be_forgotten(
    client: TestClient, trained, customers
) -> None:
    a, b = segment_features(trained, customers)[:2]
    assign(client, "Zoë-7", a)
    assert client.get("/v1/customers/Zoë-7").json()["profile"] == a  # a single assignment's
    items = [{"customer_id": "Zoë-7", "features": b}, {"customer_id": "stays", "features": a}]
    assert client.post("/v1/assign/batch", json={"items": items}).status_code == 200

    shown = client.get("/v1/customers/Zoë-7").json()

    assert shown["profile"] == b  # what the service saw last, from the batch
    assert shown["profile_updated_at"] == shown["assigned_at"]
    forgotten = client.delete("/v1/customers/Zoë-7")
    assert (forgotten.status_code, forgotten.content) == (204, b"")
    assert client.get("/v1/customers/Zoë-7").status_code == 404
    again = client.delete("/v1/customers/Zoë-7")
    assert (again.status_code, again.json()["type"]) == (404, "/problems/unknown-customer")
    assert "Zoë-7" in again.json()["detail"]
    assert client.get("/v1/customers/stays").json()["profile"] == a
