"""Promotion under load: a real uvicorn server, a stream of concurrent clients, no failed request.

Two versions of one model (k=3 and k=6, so every customer's answer tells which version gave
it) are trained into a store; the first is promoted. While a dozen client threads send
``POST /v1/assign`` without pause, the second version is promoted through the API, or by the
CLI in another process (the service's watcher must notice the moved pointer). Every answer is
checked against the model of the version it names, so a response that mixed two versions, or
a swap that dropped a request, fails the test.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn

from app.main import create_app
from app.registry.store import ModelStore
from app.settings import Settings
from tests.versions import Load, Versions

CLIENTS = 12
RELOAD_INTERVAL = 0.1


@pytest.fixture
def store(versions: Versions, tmp_path: Path) -> ModelStore:
    copy = ModelStore(tmp_path / "store")
    shutil.copytree(versions.store.root, copy.root)
    assert copy.promoted("customers") == versions.old
    return copy


@pytest.fixture
def settings(store: ModelStore, service_redis: str, tmp_path: Path) -> Iterator[Settings]:
    """The service on the suite's Redis, under a key prefix (and spool) of this test's own."""
    prefix = f"swap-{uuid.uuid4().hex[:8]}:"
    yield Settings(
        model_store=store.root,
        model_name="customers",
        reload_interval=RELOAD_INTERVAL,
        dev_mode=True,
        access_log=False,
        redis_url=service_redis,
        key_prefix=prefix,
        data_dir=tmp_path / "data",
    )
    with redis.Redis.from_url(service_redis) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The real app in a real uvicorn server on a free port; yields its base URL."""
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=0, log_level="warning", ws="none"
    )
    server = uvicorn.Server(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # bound before the server starts: no race for the port
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        assert not thread.is_alive(), "the server did not stop"


@dataclass(frozen=True)
class Answer:
    row: int
    started: float
    ended: float
    status: int | None  # None: the request raised
    body: dict[str, Any] = field(repr=False)
    error: str | None = None


def clients(url: str, rows: list[dict[str, Any]]) -> Load[Answer]:
    """``CLIENTS`` threads sending ``/v1/assign`` back to back, each with its own client."""

    @contextmanager
    def session() -> Iterator[Callable[[int], Answer]]:
        with httpx.Client(base_url=url, timeout=30) as client:

            def ask(row: int) -> Answer:
                body = {"customer_id": f"swap-{row}", "features": rows[row]}
                started = time.monotonic()
                try:
                    response = client.post("/v1/assign", json=body)
                    ended = time.monotonic()
                    return Answer(row, started, ended, response.status_code, response.json())
                except Exception as exc:  # counted and reported by the test, never lost
                    return Answer(row, started, time.monotonic(), None, {}, repr(exc))

            yield ask

    return Load(session, len(rows), CLIENTS)


def version_of(answer: Answer) -> str:
    return str(answer.body.get("model_version"))


def check_every_answer(answers: list[Answer], versions: Versions) -> None:
    """200, from one of the two versions, and wholly from the version it names."""
    failed = [a for a in answers if a.status != 200]
    assert not failed, f"{len(failed)} of {len(answers)} requests failed, e.g. {failed[:3]}"
    for a in answers:
        version = version_of(a)
        assert version in (versions.old, versions.new), a
        assert a.body["segment_id"] == versions.segment[version][a.row], a
        assert a.body["segment_name"] == versions.names[version][a.body["segment_id"]], a
        assert a.body["customer_id"] == f"swap-{a.row}"


def count(answers: list[Answer], version: str, after: float = 0.0) -> int:
    return sum(1 for a in answers if a.started > after and version_of(a) == version)


def test_promoting_through_the_api_under_load(
    versions: Versions, store: ModelStore, settings: Settings
) -> None:
    with serving(settings) as url, clients(url, versions.rows) as load:
        load.wait_for(lambda answers: count(answers, versions.old) >= 300)
        with httpx.Client(base_url=url, timeout=60) as admin:
            before = time.monotonic()
            response = admin.post(f"/v1/models/{versions.new}/promote")
            after = time.monotonic()
        assert response.status_code == 200, response.text
        assert response.json() == {
            "model_name": "customers",
            "version": versions.new,
            "previous": versions.old,
            "rescore": None,  # not asked for (?rescore=true): the next step is named
            "rescore_detail": "not asked: the customers already recorded keep their segment "
            "until something assigns them again; POST /v1/rescore (or ?rescore=true) moves "
            "them all now",
        }
        load.wait_for(lambda answers: count(answers, versions.new, after=after) >= 300)
    answers = load.snapshot()
    check_every_answer(answers, versions)
    assert store.promoted("customers") == versions.new
    # nothing is answered by the new version before the promotion began, nor by the old one
    # once it returned
    assert all(version_of(a) == versions.old for a in answers if a.ended < before)
    assert all(version_of(a) == versions.new for a in answers if a.started > after)
    # requests were in flight while the version was swapped
    around = [a for a in answers if a.started < after and a.ended > before]
    assert len(around) >= CLIENTS // 2, len(around)
    assert count(answers, versions.old) > 0 and count(answers, versions.new) > 0


def test_a_promotion_by_the_cli_reaches_the_running_service(
    versions: Versions, store: ModelStore, settings: Settings
) -> None:
    """Another process moves the pointer; the watcher swaps within its interval plus a load."""
    segments = Path(sys.executable).parent / "segments"
    command = [str(segments), "models", "promote", versions.new]
    command += ["--store", str(store.root), "--model", "customers"]
    with serving(settings) as url, clients(url, versions.rows) as load:
        load.wait_for(lambda answers: count(answers, versions.old) >= 300)
        before = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        after = time.monotonic()
        assert done.returncode == 0, done.stderr
        load.wait_for(lambda answers: count(answers, versions.new) > 0, timeout=30)
        first_new = min(a.ended for a in load.snapshot() if version_of(a) == versions.new)
        load.wait_for(lambda answers: count(answers, versions.new, after=first_new) >= 300)
    answers = load.snapshot()
    check_every_answer(answers, versions)
    assert first_new - after < 10 * RELOAD_INTERVAL + 5, "the watcher was slow to swap"
    assert all(version_of(a) == versions.old for a in answers if a.ended < before)
    # once one answer came from the new version, no later request went back to the old one
    assert all(version_of(a) == versions.new for a in answers if a.started > first_new)
    assert count(answers, versions.old, after=before) > 0  # served while the CLI ran


def test_refused_promotions_keep_the_old_version_serving(
    versions: Versions, store: ModelStore, settings: Settings
) -> None:
    artefact = store.version_dir("customers", versions.new) / "model.joblib"
    artefact.write_bytes(artefact.read_bytes() + b"tampered")
    with (
        serving(settings) as url,
        clients(url, versions.rows) as load,
        httpx.Client(base_url=url, timeout=60) as admin,
    ):
        unknown = admin.post("/v1/models/20990101-000000-abcdef/promote")
        tampered = admin.post(f"/v1/models/{versions.new}/promote")
        malformed = admin.post("/v1/models/latest/promote")
        for response, status in ((unknown, 404), (tampered, 409), (malformed, 404)):
            assert response.status_code in (status, 422 if response is malformed else status)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["status"] == response.status_code
        assert "hash" in tampered.json()["detail"]
        assert store.promoted("customers") == versions.old
        # the pointer moved by hand to the tampered version: the watcher refuses to load it
        store.promote("customers", versions.new)
        moved = time.monotonic()
        load.wait_for(lambda answers: count(answers, versions.old, after=moved + 1.0) >= 200)
        # (the overall status also depends on Redis, which this test does not control)
        model = admin.get("/readyz").json()["checks"]["model"]
        assert model["version"] == versions.old
        assert "hash" in model["error"]
        listing = admin.get("/v1/models").json()
        assert (listing["promoted"], listing["serving"]) == (versions.new, versions.old)
        refused = load.snapshot()
        # the artefact repaired in place, the pointer untouched: the next check loads it
        artefact.write_bytes(artefact.read_bytes().removesuffix(b"tampered"))
        repaired = time.monotonic()
        load.wait_for(lambda answers: count(answers, versions.new, after=repaired) >= 50)
        assert admin.get("/readyz").json()["checks"]["model"]["error"] is None
    check_every_answer(refused, versions)
    assert {version_of(a) for a in refused} == {versions.old}
    assert len(refused) >= 200
    check_every_answer(load.snapshot(), versions)


def test_a_failed_load_is_tried_again_later_and_backs_off(
    versions: Versions, store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.serving.model

    holder = app.serving.model.ModelHolder(store, "customers", reload_interval=1.0)
    assert holder.refresh(force=True) and holder.current is not None
    artefact = store.version_dir("customers", versions.new) / "model.joblib"
    good = artefact.read_bytes()
    artefact.write_bytes(good + b"tampered")
    store.promote("customers", versions.new)
    loads = []
    build = app.serving.model.build_serving_model
    monkeypatch.setattr(
        app.serving.model, "build_serving_model", lambda *a: loads.append(a) or build(*a)
    )
    now = [1000.0]
    monkeypatch.setattr(app.serving.model.time, "monotonic", lambda: now[0])

    def check(at: float) -> bool:
        now[0] = 1000.0 + at
        return holder.refresh()

    assert check(0) is False and "hash" in str(holder.last_error) and len(loads) == 1
    assert check(0.5) is False and len(loads) == 1  # not before 1 s
    assert check(1.5) is False and len(loads) == 2  # tried again: 2 s to the next try
    assert check(3.0) is False and len(loads) == 2
    assert check(3.6) is False and len(loads) == 3
    assert holder.current.version == versions.old  # served all along
    artefact.write_bytes(good)  # repaired in place, the pointer untouched
    assert check(7.0) is False and len(loads) == 3  # next try at 3.6 + 4
    assert check(7.7) is True and len(loads) == 4
    assert (holder.current.version, holder.last_error) == (versions.new, None)


def test_a_model_deleted_while_served_is_said_once_and_still_served(
    store: ModelStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The model's folder removed (or renamed) under a running service: it went on serving
    the version it had loaded without a word anywhere, and at the next restart the model
    was simply gone. It still serves (no request fails) and warns once, naming the version."""
    import app.serving.model

    holder = app.serving.model.ModelHolder(store, "customers", reload_interval=0.1)
    assert holder.refresh(force=True) and holder.current is not None
    served = holder.current.version
    shutil.rmtree(store.root / "customers")
    with caplog.at_level(logging.WARNING, logger="app.serving.model"):
        for _ in range(3):
            assert holder.refresh() is False
    said = [r.getMessage() for r in caplog.records if r.name == "app.serving.model"]
    assert len(said) == 1, said
    assert f"still serving {served} until this process restarts" in said[0]
    assert "no model 'customers' in the store" in said[0]
    assert holder.current is not None and holder.current.version == served


def test_rollback_loads_its_target_once_and_refuses_a_stale_target(
    versions: Versions, store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ModelHolder.rollback`` serves the version before the promoted one, loaded once (as a
    promotion is); a target that is no longer the rollback target moves nothing."""
    import app.serving.model
    from app.errors import StoreError

    holder = app.serving.model.ModelHolder(store, "customers", reload_interval=1.0)
    holder.promote(versions.new)
    loads = []
    build = app.serving.model.build_serving_model
    monkeypatch.setattr(
        app.serving.model, "build_serving_model", lambda *a: loads.append(a) or build(*a)
    )
    with pytest.raises(StoreError, match="no longer"):
        holder.rollback(versions.new)  # the rollback target is the old version
    assert store.promoted("customers") == versions.new and holder.current is not None
    assert holder.current.version == versions.new
    loads.clear()
    served = holder.rollback(versions.old)
    assert served.version == versions.old == store.promoted("customers")
    assert holder.current is served and len(loads) == 1
    assert holder.refresh() is False  # already current: nothing to load again


def test_a_promotion_names_the_version_it_replaced_under_the_pointers_lock(
    versions: Versions, store: ModelStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found in review: the answer's ``previous`` was read before the promotion took the
    pointer's lock, so two promotions at once named a version the pointer did not move from.
    Here another worker (a second store on the same folder) promotes the new version while
    this request loads it: the pointer then never moves from the old version by this request,
    and the answer says the new one was serving (as for a promotion of the serving version)."""
    import app.serving.model as serving_model

    real = serving_model.build_serving_model
    other = ModelStore(store.root)

    moved: list[bool] = []

    def meanwhile(*args: Any, **kwargs: Any) -> Any:
        built = real(*args, **kwargs)
        if built.version == versions.new and not moved:  # the request's load, once
            moved.append(other.promote("customers", versions.new))  # (the other worker's)
        return built

    monkeypatch.setattr(serving_model, "build_serving_model", meanwhile)
    with serving(settings) as url, httpx.Client(base_url=url, timeout=60) as admin:
        response = admin.post(f"/v1/models/{versions.new}/promote")
    assert response.status_code == 200, response.text
    assert moved == [True]
    assert response.json()["previous"] == versions.new  # was: versions.old, read before
    assert [e["version"] for e in store.promotion_history("customers")][-2:] == [
        versions.old,
        versions.new,
    ]  # one move, the other worker's
