"""Several segmentations in one service (issue 17, item 1), through a real uvicorn server and
the suite's real Redis.

The store holds two models: ``customers`` (the default, two versions k=3 promoted and k=6,
from the hot-swap fixture) and ``tiers`` (k=4, trained here). Requests choose a model with
``?model=``; each model keeps its own history, membership and profiles.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import ValidationError
from threadpoolctl import threadpool_limits

from app.history.keys import Keys
from app.main import create_app
from app.models import state_for
from app.registry.store import ModelStore
from app.settings import Settings
from app.training.job import train
from tests.conftest import example_config
from tests.events import conftest as events_fixtures
from tests.serving.test_hot_swap import serving
from tests.serving.test_workers import served_versions
from tests.versions import Load, Versions

TIERS = "tiers"
tx_trained = events_fixtures.tx_trained  # a transactions model (the events tests' fixture)


@dataclass(frozen=True)
class Template:
    store: ModelStore  # customers (two versions) and tiers: each test works on a copy
    tiers: str  # the promoted version of tiers
    tiers_segments: frozenset[str]


@pytest.fixture(scope="module")
def template(
    versions: Versions, customers_csv: Path, tmp_path_factory: pytest.TempPathFactory
) -> Template:
    store = ModelStore(tmp_path_factory.mktemp("several") / "store")
    shutil.copytree(versions.store.root, store.root)
    config = example_config(
        "customers", customers_csv, stability_bootstraps=0, k_min=4, k_max=4, seed=3
    )
    config = config.model_copy(update={"model": config.model.model_copy(update={"name": TIERS})})
    with threadpool_limits(1):
        result = train(config, store, promote=True)
    manifest = result.manifest
    return Template(store, manifest.version, frozenset(s.id for s in manifest.segments))


@pytest.fixture
def store(template: Template, tmp_path: Path) -> ModelStore:
    copy = ModelStore(tmp_path / "store")
    shutil.copytree(template.store.root, copy.root)
    return copy


@pytest.fixture
def prefix(service_redis: str) -> Iterator[str]:
    prefix = f"several-{uuid.uuid4().hex[:8]}:"
    yield prefix
    with redis.Redis.from_url(service_redis) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)


def settings_for(
    store: ModelStore, redis_url: str, prefix: str, tmp: Path, **more: Any
) -> Settings:
    return Settings(
        model_store=store.root,
        model_name=more.pop("model_name", "customers"),
        reload_interval=0.1,
        dev_mode=True,
        access_log=False,
        redis_url=redis_url,
        key_prefix=prefix,
        data_dir=tmp / "data",
        **more,
    )


def test_two_models_side_by_side(
    template: Template,
    versions: Versions,
    store: ModelStore,
    service_redis: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    row = versions.rows[0]
    settings = settings_for(store, service_redis, prefix, tmp_path)
    with serving(settings) as url, httpx.Client(base_url=url, timeout=30) as api:
        # assign one customer in both models
        default = api.post("/v1/assign", json={"customer_id": "c1", "features": row})
        assert default.status_code == 200, default.text
        assert default.json()["model_version"] == versions.old
        tiers = api.post("/v1/assign?model=tiers", json={"customer_id": "c1", "features": row})
        assert tiers.status_code == 200, tiers.text
        tiers_doc = tiers.json()
        assert tiers_doc["model_version"] == template.tiers
        assert tiers_doc["segment_id"] in template.tiers_segments
        # a batch into tiers only
        batch = {"items": [{"customer_id": f"b{i}", "features": versions.rows[i]} for i in (1, 2)]}
        answer = api.post("/v1/assign/batch?model=tiers", json=batch)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == template.tiers
        # by id: the features come from the profile stored in that model
        by_id = api.post("/v1/assign?model=tiers", json={"customer_id": "c1"})
        assert by_id.status_code == 200, by_id.text
        assert by_id.json()["segment_id"] == tiers_doc["segment_id"]
        assert by_id.json()["features_from"] == "profile"
        assert api.post("/v1/assign?model=tiers", json={"customer_id": "nobody"}).status_code == 404

        # the customer's current segment in every model
        customer = api.get("/v1/customers/c1").json()
        assert customer["segment_id"] == default.json()["segment_id"]
        assert customer["model_version"] == versions.old
        by_model = {m["model"]: m for m in customer["models"]}
        assert set(by_model) == {"customers", TIERS}
        assert by_model["customers"]["segment_id"] == default.json()["segment_id"]
        assert by_model[TIERS]["segment_id"] == tiers_doc["segment_id"]
        assert by_model[TIERS]["model_version"] == template.tiers
        in_tiers = api.get("/v1/customers/c1?model=tiers").json()
        assert in_tiers["segment_id"] == tiers_doc["segment_id"]

        # histories, membership and customers kept apart
        history = api.get("/v1/customers/c1/history?model=tiers").json()["migrations"]
        assert [m["to_segment_id"] for m in history] == [tiers_doc["segment_id"]]
        history = api.get("/v1/customers/c1/history").json()["migrations"]
        assert [m["to_segment_id"] for m in history] == [default.json()["segment_id"]]
        assert api.get("/v1/customers/b1").status_code == 404  # never assigned by customers
        assert api.get("/v1/customers/b1?model=tiers").status_code == 200
        members = api.get(f"/v1/segments/{tiers_doc['segment_id']}/members?model=tiers").json()
        assert "c1" in {m["customer_id"] for m in members["members"]}
        matrix = api.get("/v1/migrations?model=tiers")
        assert matrix.status_code == 200, matrix.text
        assert sum(t["new"] for t in matrix.json()["totals"].values()) == 3

        # the model-specific reads answer for the model asked
        segments = api.get("/v1/segments?model=tiers").json()
        assert segments["model_name"] == TIERS
        assert {s["id"] for s in segments["segments"]} == template.tiers_segments
        assert api.get("/v1/segments").json()["model_name"] == "customers"
        assert api.get("/v1/models?model=tiers").json()["model_name"] == TIERS
        assert api.get("/v1/drift?model=tiers").status_code in (200, 404)
        # promotions name their model: a version of customers is not one of tiers
        wrong = api.post(f"/v1/models/{versions.new}/promote?model=tiers")
        assert wrong.status_code == 404, wrong.text
        again = api.post(f"/v1/models/{template.tiers}/promote?model=tiers")
        assert again.status_code == 200, again.text
        assert again.json()["model_name"] == TIERS
        assert api.get("/v1/models").json()["model_name"] == "customers"

        # forgetting: in the model named, or (no ?model=) in every model
        assert api.delete("/v1/customers/b1?model=tiers").status_code == 204
        assert api.get("/v1/customers/b1?model=tiers").status_code == 404
        assert api.delete("/v1/customers/b1").status_code == 404  # known in none now
        assert api.delete("/v1/customers/c1").status_code == 204
        assert api.get("/v1/customers/c1").status_code == 404
        assert api.get("/v1/customers/c1?model=tiers").status_code == 404

        assert api.post("/v1/assign", json={"customer_id": "rows-0", "features": row}).is_success

        # an unknown model: 404 naming it and the known ones, on the fast path too
        for response in (
            api.get("/v1/segments?model=nope"),
            api.post("/v1/assign?model=nope", json={"customer_id": "c1", "features": row}),
            api.post("/v1/events?model=nope", json={"events": []}),
        ):
            assert response.status_code == 404, response.text
            problem = response.json()
            assert problem["type"].endswith("/problems/unknown-model")
            assert "'nope'" in problem["detail"]
            assert "customers, tiers" in problem["detail"]
            assert "did you mean" not in problem["detail"]  # nothing near 'nope'
        misspelt = api.get("/v1/segments?model=teirs")  # a typo is named with its model
        assert misspelt.status_code == 404
        assert "no model 'teirs' is served here; did you mean 'tiers'?" in misspelt.text

    # the other model's keys are under their own prefix; the default's are where they were
    with redis.Redis.from_url(service_redis) as client:
        assert client.exists(f"{prefix}{{0}}:c:rows-0")
        assert client.exists(f"{prefix}m:tiers:{{0}}:c:b2")
        assert not client.exists(f"{prefix}{{0}}:c:b2")
        assert not client.exists(f"{prefix}m:tiers:{{0}}:c:c1")  # forgotten


def test_each_model_assigns_by_id_from_its_own_cached_profile(
    versions: Versions, store: ModelStore, service_redis: str, prefix: str, tmp_path: Path
) -> None:
    """One customer id, another profile in each model: each model's cache holds its own, and
    a by-id answer (read, then cached) is the model's answer to that model's features."""
    rows = {"customers": versions.rows[0], TIERS: versions.rows[1]}
    settings = settings_for(store, service_redis, prefix, tmp_path)
    with TestClient(create_app(settings)) as api:
        sent = {}
        for model, row in rows.items():
            body = {"customer_id": "c1", "features": row}
            sent[model] = api.post(f"/v1/assign?model={model}", json=body).json()
        for _ in range(2):  # a read, then the cache
            for model in rows:
                by_id = api.post(f"/v1/assign?model={model}", json={"customer_id": "c1"})
                assert by_id.status_code == 200, by_id.text
                assert by_id.json()["segment_id"] == sent[model]["segment_id"]
                assert by_id.json()["confidence"] == sent[model]["confidence"]
        for model, row in rows.items():
            cache = state_for(api.app.state, model).history.profile_cache
            assert cache.get("c1").features == row
            assert (cache.hits, cache.stale) == (2, 0)  # the second by-id and the get above


def test_a_model_added_while_serving_is_picked_up(
    template: Template, store: ModelStore, service_redis: str, prefix: str, tmp_path: Path
) -> None:
    aside = tmp_path / "aside"
    (store.root / TIERS).rename(aside)  # the service starts with customers only
    settings = settings_for(store, service_redis, prefix, tmp_path)
    with serving(settings) as url, httpx.Client(base_url=url, timeout=30) as api:
        assert api.get("/v1/segments?model=tiers").status_code == 404
        aside.rename(store.root / TIERS)  # one rename: the model appears whole
        deadline = time.monotonic() + 30
        while (found := api.get("/v1/segments?model=tiers")).status_code != 200:
            assert time.monotonic() < deadline, found.text
            time.sleep(0.05)
        assert found.json()["model_name"] == TIERS
        assign = api.post("/v1/assign?model=tiers", json={"customer_id": "c9"})
        assert assign.status_code == 404  # recorded in neither model yet: no profile


def test_served_models_can_be_restricted(
    store: ModelStore, service_redis: str, prefix: str, tmp_path: Path
) -> None:
    settings = settings_for(store, service_redis, prefix, tmp_path, models="customers")
    with serving(settings) as url, httpx.Client(base_url=url, timeout=30) as api:
        response = api.get("/v1/segments?model=tiers")
        assert response.status_code == 404
        assert "known models: customers" in response.json()["detail"]
        assert api.get("/v1/segments?model=customers").status_code == 200


def test_a_listed_model_not_served_is_warned_of_and_degrades_readiness(
    template: Template,
    store: ModelStore,
    service_redis: str,
    prefix: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found by an outside tester: ``SEGMENTS_MODELS`` naming a model not in the store (a
    typo, ``teirs`` for ``tiers``) was never served and nothing said so. The service starts
    (a listed model may be trained or promoted after it starts, and is then served without a
    restart), warns of each listed model it does not serve, and why (a did-you-mean from the
    store's models), and /readyz is ``degraded`` naming them until they are served."""
    pointer = store.root / TIERS / "promoted.json"
    aside = tmp_path / "promoted.json"
    pointer.rename(aside)  # tiers is trained, not promoted yet
    listed = f"customers,{TIERS},teirs"
    settings = settings_for(store, service_redis, prefix, tmp_path, models=listed)
    typo = "no model 'teirs' in the store (it holds customers, tiers); did you mean 'tiers'?"
    unpromoted = (
        "model tiers has no promoted version; promote one: segments models promote VERSION "
        "--model tiers"
    )
    with (
        caplog.at_level("WARNING", logger="app.models"),
        serving(settings) as url,
        httpx.Client(base_url=url, timeout=30) as api,
    ):
        warned = [r.getMessage() for r in caplog.records if r.name == "app.models"]
        for name, why in (("teirs", typo), (TIERS, unpromoted)):
            said = f"SEGMENTS_MODELS names model {name!r}, which is not served: {why}"
            assert any(m.startswith(said) for m in warned), warned
        ready = api.get("/readyz")
        assert ready.status_code == 200, ready.text  # the default model is served
        body = ready.json()
        assert body["status"] == "degraded" and body["checks"]["model"]["ok"] is True
        named = body["checks"]["named_models"]
        assert named == {"ok": False, "not_served": {"teirs": typo, TIERS: unpromoted}}
        aside.rename(pointer)  # promoted after the service started: served, no restart
        deadline = time.monotonic() + 30
        while (found := api.get("/v1/segments?model=tiers")).status_code != 200:
            assert time.monotonic() < deadline, found.text
            time.sleep(0.05)
        named = api.get("/readyz").json()["checks"]["named_models"]
        assert named == {"ok": False, "not_served": {"teirs": typo}}
    settings = settings_for(store, service_redis, prefix, tmp_path, models=f"customers,{TIERS}")
    with serving(settings) as url, httpx.Client(base_url=url, timeout=30) as api:
        ready = api.get("/readyz").json()
        assert ready["status"] == "ready", ready
        assert ready["checks"]["named_models"] == {"ok": True, "not_served": {}}
    with serving(settings_for(store, service_redis, prefix, tmp_path)) as url:
        assert "named_models" not in httpx.get(f"{url}/readyz").json()["checks"]  # none listed


def test_a_listed_model_whose_promoted_version_fails_to_load_degrades_readiness(
    store: ModelStore, service_redis: str, prefix: str, tmp_path: Path
) -> None:
    """Found in review: ``SEGMENTS_MODELS`` naming a model whose promoted version does not
    load (here its folder copied under another name: the manifests name the old one) said
    ``ready`` with ``named_models`` ok, though every request for it is a 503; it is not
    served, as an unpromoted one is not, and readiness is ``degraded`` naming it."""
    shutil.copytree(store.root / TIERS, store.root / "copy")
    settings = settings_for(store, service_redis, prefix, tmp_path, models="customers,copy")
    with serving(settings) as url, httpx.Client(base_url=url, timeout=30) as api:
        assert api.get("/v1/segments?model=copy").status_code == 503
        ready = api.get("/readyz")
        assert ready.status_code == 200, ready.text  # the default model is served
        body = ready.json()
        assert body["status"] == "degraded", body
        named = body["checks"]["named_models"]
        assert named["ok"] is False and list(named["not_served"]) == ["copy"], named
        assert "cannot be loaded" in named["not_served"]["copy"], named
        assert str(store.root) not in ready.text  # no key: the answer names no server path


@dataclass(frozen=True)
class Answer:
    status: int | None
    version: str | None
    error: str | None = None


def load(url: str, rows: list[dict[str, Any]], query: str) -> Load[Answer]:
    @contextmanager
    def session() -> Iterator[Callable[[int], Answer]]:
        with httpx.Client(base_url=url, timeout=30) as client:

            def ask(row: int) -> Answer:
                body = {"customer_id": f"load-{row}", "features": rows[row]}
                try:
                    response = client.post(f"/v1/assign{query}", json=body)
                    return Answer(response.status_code, response.json().get("model_version"))
                except Exception as exc:  # counted by the test
                    return Answer(None, None, repr(exc))

            yield ask

    return Load(session, len(rows), 4)


def test_promoting_one_model_under_load_leaves_the_other_serving(
    template: Template,
    versions: Versions,
    store: ModelStore,
    service_redis: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    settings = settings_for(store, service_redis, prefix, tmp_path)
    rows = versions.rows

    def count(answers: list[Answer], version: str) -> int:
        return sum(1 for a in answers if a.version == version)

    with (
        serving(settings) as url,
        load(url, rows, "") as customers,
        load(url, rows, "?model=tiers") as tiers,
    ):
        customers.wait_for(lambda answers: count(answers, versions.old) >= 100)
        tiers.wait_for(lambda answers: count(answers, template.tiers) >= 100)
        with httpx.Client(base_url=url, timeout=60) as admin:
            response = admin.post(f"/v1/models/{versions.new}/promote")
        assert response.status_code == 200, response.text
        customers.wait_for(lambda answers: count(answers, versions.new) >= 100)
        before = len(tiers.snapshot())
        tiers.wait_for(lambda answers: len(answers) >= before + 100)
    for name, answers in (("customers", customers.snapshot()), (TIERS, tiers.snapshot())):
        failed = [a for a in answers if a.status != 200]
        assert not failed, f"{name}: {len(failed)} of {len(answers)} failed, e.g. {failed[:3]}"
    assert {a.version for a in tiers.snapshot()} == {template.tiers}
    assert {a.version for a in customers.snapshot()} == {versions.old, versions.new}
    assert store.promoted(TIERS) == template.tiers
    assert os.path.isdir(store.root / TIERS)


def test_a_bad_model_list_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValidationError, match="models"):
        Settings(models="customers,../etc", dev_mode=True)
    assert Settings(models=" customers, tiers ", dev_mode=True).served_models() == (
        "customers",
        TIERS,
    )


def test_events_and_their_aggregates_are_kept_per_model(
    versions: Versions,
    tx_trained: tuple[ModelStore, Any],
    store: ModelStore,
    service_redis: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    """A transactions model served beside the default (a table model): events name it."""
    shutil.copytree(tx_trained[0].root / "transactions", store.root / "transactions")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    events = [
        {
            "event_id": f"e{n}",
            "customer_id": "c1",
            "type": "order",
            "amount": 20.0 + n,
            "at": (now - timedelta(days=10 * n + 1)).isoformat().replace("+00:00", "Z"),
        }
        for n in range(3)
    ]
    settings = settings_for(store, service_redis, prefix, tmp_path)
    with TestClient(create_app(settings)) as api:
        api.app.state.clock = now.timestamp  # type: ignore[attr-defined]
        response = api.post("/v1/events?model=transactions", json={"events": events})
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == 3
        moved = response.json()["customers"]
        assert [c["customer_id"] for c in moved] == ["c1"]
        # by id, from the live aggregates of that model
        by_id = api.post("/v1/assign?model=transactions", json={"customer_id": "c1"})
        assert by_id.status_code == 200, by_id.text
        assert by_id.json()["segment_id"] == moved[0]["segment_id"]
        # derived as of now every time: never from the profile cache
        assert len(state_for(api.app.state, "transactions").history.profile_cache) == 0
        assert api.get("/v1/customers/c1?model=transactions").status_code == 200
        assert api.get("/v1/customers/c1").status_code == 404  # not in the default model
        # the default model (a table model) takes no events; it stored nothing of these
        refused = api.post("/v1/events", json={"events": events})
        assert refused.status_code == 409, refused.text
        # and the answer names the model that does (a user forgot ?model=, found by the audit)
        assert (
            "send them to a model trained on a log: ?model=transactions"
            in (refused.json()["detail"])
        )
    with redis.Redis.from_url(service_redis) as client:
        assert client.exists(Keys(f"{prefix}m:transactions:").behaviour("c1"))
        assert not client.exists(Keys(prefix).behaviour("c1"))


def test_segments_serve_with_several_model_options(
    template: Template, store: ModelStore, tmp_path: Path
) -> None:
    """``segments serve --model tiers --model customers``: the first is the default."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEGMENTS_", "PROMETHEUS_"))}
    env.update(
        SEGMENTS_MODEL_STORE=str(store.root),
        SEGMENTS_DEV_MODE="true",
        SEGMENTS_RECORD_ASSIGNMENTS="false",
        SEGMENTS_DATA_DIR=str(tmp_path / "data"),
    )
    segments = Path(sys.executable).parent / "segments"
    command = [str(segments), "serve", "--port", str(port), "--log-level", "warning"]
    command += ["--model", TIERS, "--model", "customers"]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=out)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        assert httpx.get(f"{url}/v1/segments").json()["model_name"] == TIERS
        other = httpx.get(f"{url}/v1/segments?model=customers")
        assert other.status_code == 200 and other.json()["model_name"] == "customers"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_the_dashboard_shows_the_model_asked_for(
    template: Template,
    versions: Versions,
    store: ModelStore,
    service_redis: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    """``/ui/...?model=`` pages show that model (its segments, its customers), their links and
    forms keep the choice, a chooser lists every model, an unknown one is a 404 page."""
    row = versions.rows[0]
    settings = settings_for(store, service_redis, prefix, tmp_path)
    with serving(settings) as url, httpx.Client(base_url=url, timeout=30) as api:
        tiers = api.post("/v1/assign?model=tiers", json={"customer_id": "c9", "features": row})
        assert tiers.status_code == 200, tiers.text
        page = api.get("/ui/segments?model=tiers")
        assert page.status_code == 200, page.text
        shown = set(re.findall(r'data-segment="([^"]+)"', page.text))
        assert shown == set(template.tiers_segments)
        assert 'href="/ui/migrations?model=tiers"' in page.text
        assert '<option value="customers">' in page.text
        assert '<option value="tiers" selected>' in page.text
        default = api.get("/ui/segments")
        default_shown = set(re.findall(r'data-segment="([^"]+)"', default.text))
        assert default_shown and default_shown != shown
        assert 'href="/ui/migrations"' in default.text
        customer = api.get("/ui/customers", params={"customer_id": "c9", "model": "tiers"})
        assert customer.status_code == 200, customer.text
        assert tiers.json()["segment_id"] in customer.text
        assert '<input type="hidden" name="model" value="tiers">' in customer.text
        # unknown in the default model: the page names (and links) the model that knows
        # them, as GET /v1/customers/{id} does
        elsewhere = api.get("/ui/customers", params={"customer_id": "c9"})
        assert elsewhere.status_code == 404, elsewhere.text
        assert "known in model" in elsewhere.text, elsewhere.text
        assert 'href="/ui/customers?customer_id=c9&amp;model=tiers"' in elsewhere.text
        nowhere = api.get("/ui/customers", params={"customer_id": "nobody"})
        assert nowhere.status_code == 404 and "known in" not in nowhere.text
        unknown = api.get("/ui/segments?model=nope")
        assert unknown.status_code == 404
        assert unknown.headers["content-type"].startswith("text/html")
        assert "nope" in unknown.text and "tiers" in unknown.text


def _few_customers(customers_csv: Path, tmp_path: Path, rows: int) -> Path:
    """The first ``rows`` customers of the example table, as a file of their own."""
    source = tmp_path / "few.csv"
    lines = customers_csv.read_text().splitlines(keepends=True)[: rows + 1]
    source.write_text("".join(lines))
    return source


def _command_env(
    monkeypatch: pytest.MonkeyPatch,
    store: ModelStore,
    redis_url: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    """A ``segments`` command's settings: the service's store, Redis, prefix and data dir,
    with the default model ``customers``."""
    for name, value in {
        "SEGMENTS_MODEL_STORE": str(store.root),
        "SEGMENTS_MODEL_NAME": "customers",
        "SEGMENTS_REDIS_URL": redis_url,
        "SEGMENTS_KEY_PREFIX": prefix,
        "SEGMENTS_DATA_DIR": str(tmp_path / "data"),
    }.items():
        monkeypatch.setenv(name, value)


def test_the_command_line_records_and_forgets_in_the_model_it_names(
    store: ModelStore,
    template: Template,
    customers_csv: Path,
    service_redis: str,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`segments assign --record --model tiers` records under tiers' keys, where the service
    reads them (it wrote into the default model's keys: another model's segments there);
    `segments customers forget` forgets in every model, or in the one `--model` names."""
    from typer.testing import CliRunner

    from app.cli.main import app as cli

    source = _few_customers(customers_csv, tmp_path, 20)
    first = source.read_text().splitlines()[1].split(",")[0]
    _command_env(monkeypatch, store, service_redis, prefix, tmp_path)
    runner = CliRunner()
    recorded = runner.invoke(cli, ["assign", "--input", str(source), "--record", "--model", TIERS])
    assert recorded.exit_code == 0, recorded.output
    with redis.Redis.from_url(service_redis) as client:
        assert client.exists(Keys(f"{prefix}m:{TIERS}:").customer(first))
        assert not client.exists(Keys(prefix).customer(first))
    settings = settings_for(store, service_redis, prefix, tmp_path)
    with TestClient(create_app(settings)) as api:
        by_id = api.post(f"/v1/assign?model={TIERS}", json={"customer_id": first})
        assert by_id.status_code == 200, by_id.text
        assert by_id.json()["segment_id"] in template.tiers_segments
        unknown = api.get(f"/v1/customers/{first}")  # not in the default model
        assert unknown.status_code == 404
        assert f"known in ?model={TIERS}" in unknown.json()["detail"]  # where it is
        history = api.get(f"/v1/customers/{first}/history")  # (an audit's: a plain 404)
        assert history.status_code == 404
        assert f"known in ?model={TIERS}" in history.json()["detail"]
        # known in both models: forgetting in tiers only leaves the default's
        features = api.get(f"/v1/customers/{first}?model={TIERS}").json()["profile"]
        stored = api.post("/v1/assign", json={"customer_id": first, "features": features})
        assert stored.status_code == 200, stored.text
        only = runner.invoke(cli, ["customers", "forget", first, "--model", TIERS])
        assert only.exit_code == 0, only.output
        assert api.get(f"/v1/customers/{first}?model={TIERS}").status_code == 404
        assert api.get(f"/v1/customers/{first}").status_code == 200
        recorded = runner.invoke(
            cli, ["assign", "--input", str(source), "--record", "--model", TIERS]
        )
        assert recorded.exit_code == 0, recorded.output
        everywhere = runner.invoke(cli, ["customers", "forget", first])
        assert everywhere.exit_code == 0, everywhere.output
        assert api.get(f"/v1/customers/{first}?model={TIERS}").status_code == 404
        assert api.get(f"/v1/customers/{first}").status_code == 404


def test_without_the_default_model_an_answer_names_the_models_served(
    store: ModelStore, template: Template, service_redis: str, prefix: str, tmp_path: Path
) -> None:
    """A new user who trained only ``--model tiers``: the default model (``customers``) is
    not in the store, and an answer for it says which models are served and how to ask."""
    shutil.rmtree(store.root / "customers")
    settings = settings_for(store, service_redis, prefix, tmp_path)
    with serving(settings) as url, httpx.Client(base_url=url, timeout=30) as api:
        answer = api.get("/v1/segments")
        assert answer.status_code == 503, answer.text
        detail = answer.json()["detail"]
        assert "no model 'customers' in the store" in detail
        assert "the default model is 'customers' (SEGMENTS_MODEL_NAME)" in detail
        assert "models served here: tiers: ask with ?model=tiers" in detail
        assert "or serve it by default with SEGMENTS_MODEL_NAME=tiers, for the segments" in detail
        # where its records are, and that they move with the setting
        assert f"under '{prefix}m:tiers:', are not seen under the default model's" in detail
        assert api.get("/v1/segments?model=tiers").status_code == 200
        # the readiness probe a new user looks at first says the same (it said only
        # "no model 'customers' in the store"), and is ready (degraded): tiers is served,
        # a 503 took the service out of a load balancer while it answered ?model=tiers
        ready = api.get("/readyz")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["status"] == "degraded"
        assert body["checks"]["model"]["ok"] is False
        assert body["checks"]["model"]["hint"] == detail
        assert body["checks"]["models"] == {TIERS: template.tiers}
        assert api.get("/readyz?model=tiers").status_code == 200
    # a promoted version of the default that fails to load is no absence: not ready
    (store.root / "customers").mkdir()
    (store.root / "customers" / "promoted.json").write_text(f'{{"version": "{template.tiers}"}}')
    with serving(settings) as url, httpx.Client(base_url=url, timeout=30) as api:
        ready = api.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["models"] == {
            TIERS: template.tiers
        }
    shutil.rmtree(store.root / TIERS)
    shutil.rmtree(store.root / "customers")
    with serving(settings) as url, httpx.Client(base_url=url, timeout=30) as api:
        ready = api.get("/readyz")  # nothing served at all
        assert ready.status_code == 503 and ready.json()["status"] == "not ready"


def test_a_served_model_whose_version_fails_to_load_is_not_called_the_default(
    store: ModelStore, template: Template, service_redis: str, prefix: str, tmp_path: Path
) -> None:
    """A model served besides the default whose promoted version no longer loads (here its
    folder copied under another name: the manifests name the old one) answered "the default
    model is 'copy' (SEGMENTS_MODEL_NAME)" and told to set SEGMENTS_MODEL_NAME to the model
    that already was the default."""
    shutil.copytree(store.root / TIERS, store.root / "copy")
    settings = settings_for(store, service_redis, prefix, tmp_path)
    with serving(settings) as url, httpx.Client(base_url=url, timeout=30) as api:
        answer = api.get("/v1/segments?model=copy")
        assert answer.status_code == 503, answer.text
        detail = answer.json()["detail"]
        assert "the promoted version cannot be loaded" in detail
        assert "SEGMENTS_MODEL_NAME" not in detail and "default" not in detail
        assert "model 'copy' is served as ?model=copy: promote a version of it" in detail
        assert "segments models list --model copy" in detail
        assert api.get("/v1/segments").status_code == 200  # the default is unaffected


def test_a_model_recorded_as_another_default_is_named_by_the_command_and_the_service(
    store: ModelStore,
    customers_csv: Path,
    service_redis: str,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The default model (``SEGMENTS_MODEL_NAME``) records under the bare prefix, any other
    under ``m:<name>:``: `segments assign --record --model tiers` run with the default
    ``customers`` says where tiers' records go and what a service with another default does;
    a service started with ``SEGMENTS_MODEL_NAME=tiers`` then warns that it does not see
    them."""
    from typer.testing import CliRunner

    from app.cli.main import app as cli

    source = _few_customers(customers_csv, tmp_path, 5)
    _command_env(monkeypatch, store, service_redis, prefix, tmp_path)
    recorded = CliRunner().invoke(
        cli, ["assign", "--input", str(source), "--record", "--model", TIERS]
    )
    assert recorded.exit_code == 0, recorded.output
    said = " ".join(recorded.output.split())
    assert f"model 'tiers' records under '{prefix}m:tiers:' because SEGMENTS_MODEL_NAME" in said
    assert "SEGMENTS_MODEL_NAME=tiers would look for it under" in said
    settings = settings_for(store, service_redis, prefix, tmp_path, model_name=TIERS)
    with caplog.at_level("WARNING", logger="app.models"), TestClient(create_app(settings)):
        pass
    warned = [r.getMessage() for r in caplog.records if r.name == "app.models"]
    assert any(f"model tiers has records under '{prefix}m:tiers:'" in m for m in warned), warned
    caplog.clear()
    with (
        caplog.at_level("WARNING", logger="app.models"),
        TestClient(create_app(settings_for(store, service_redis, prefix, tmp_path))),
    ):
        pass  # the default customers: nothing recorded under m:customers:
    assert not [r for r in caplog.records if r.name == "app.models"]


def test_a_model_named_twice_in_a_query_is_refused(
    store: ModelStore, service_redis: str, prefix: str, tmp_path: Path
) -> None:
    """The contract fuzzer sent `?model=true&model=...&model=`: the last one was served (the
    default model, 200). Which model was meant cannot be told: a 422 naming the parameter, on
    the routed endpoints and the assignment fast path alike."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    settings = settings_for(store, service_redis, prefix, tmp_path)
    with TestClient(create_app(settings)) as client:
        for method, path, body in (
            ("GET", "/v1/models", None),
            ("GET", "/v1/segments", None),
            ("POST", "/v1/assign", {"customer_id": "C1"}),
        ):
            answer = client.request(method, f"{path}?model={TIERS}&model=", json=body)
            assert answer.status_code == 422, (path, answer.text)
            assert answer.json()["errors"] == [
                {"field": "model", "message": "given 2 times: name one model"}
            ]
        assert client.get(f"/v1/models?model={TIERS}").status_code == 200


def test_a_model_name_too_long_is_one_error(
    store: ModelStore, service_redis: str, prefix: str, tmp_path: Path
) -> None:
    """A hostile audit's `?model=` of 201 characters got the same error twice (`model: String
    should have at most 200 characters; model: ...`) where two dependencies of the route read
    the parameter: the errors list each bad field once."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    settings = settings_for(store, service_redis, prefix, tmp_path)
    with TestClient(create_app(settings)) as client:
        for path in ("/v1/segments", "/v1/segments/seg-001", "/v1/customers/C1", "/v1/rescore"):
            answer = client.get(f"{path}?model={'m' * 201}")
            assert answer.status_code == 422, (path, answer.text)
            assert answer.json()["errors"] == [
                {"field": "model", "message": "String should have at most 200 characters"}
            ], path
            assert answer.json()["detail"].count("model:") == 1
        # the assignment fast path reads ?model= itself: the same 422, not a 404 unknown model
        for path, body in (
            ("/v1/assign", {"customer_id": "C1"}),
            ("/v1/assign/batch", {"items": [{"customer_id": "C1"}]}),
        ):
            answer = client.post(f"{path}?model={'m' * 201}", json=body)
            assert answer.status_code == 422, (path, answer.text)
            assert answer.json()["errors"] == [
                {"field": "model", "message": "String should have at most 200 characters"}
            ], path
        assert client.post(f"/v1/assign?model={'m' * 200}", json={}).status_code == 404


def test_options_sent_in_the_body_of_an_endpoint_that_reads_none_are_refused(
    versions: Versions, store: ModelStore, service_redis: str, prefix: str, tmp_path: Path
) -> None:
    """A hostile audit's `POST /v1/models/{v}/promote` with the body `{"rescore": true}`
    promoted without a rescore (the option is `?rescore=true`; the body was dropped unread),
    and `POST /v1/rescore` with `{"model": ...}` started one in the default model. An endpoint
    that reads no body refuses one that says something, naming the query parameters it
    reads; an empty body, `{}` or `null` still changes nothing."""
    settings = settings_for(store, service_redis, prefix, tmp_path)
    with TestClient(create_app(settings)) as client:
        promote = f"/v1/models/{versions.new}/promote"
        for path, body in (
            (promote, {"rescore": True}),
            ("/v1/rescore", {"model": TIERS}),
            ("/v1/webhooks/wh_0123456789abcdef/replay", {"since": "2026-01-01"}),
            (promote, [1]),
        ):
            answer = client.post(path, json=body)
            assert answer.status_code == 422, (path, answer.text)
            (error,) = answer.json()["errors"]
            assert error["field"] == "body", error
            assert error["message"].startswith("this endpoint reads no body"), error
        assert "?rescore=" in client.post(promote, json={"rescore": True}).text
        assert store.promoted("customers") == versions.old
        assert client.get("/v1/rescore").status_code == 404  # none was started
        for body in (b"", b"{}", b" null "):
            answer = client.post(
                promote, content=body, headers={"content-type": "application/json"}
            )
            assert answer.status_code == 200, (body, answer.text)
        assert store.promoted("customers") == versions.new
        # nor does a forget read one: `{"model": ...}` forgot the customer in every model
        for model in ("", f"?model={TIERS}"):
            body = {"customer_id": "c1", "features": versions.rows[0]}
            assert client.post(f"/v1/assign{model}", json=body).status_code == 200
        answer = client.request("DELETE", "/v1/customers/c1", json={"model": TIERS})
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["message"] == (
            "this endpoint reads no body: its options are query parameters (?model=)"
        )
        assert len(client.get("/v1/customers/c1").json()["models"]) == 2


def test_forgetting_with_an_empty_model_forgets_in_the_default_model_only(
    versions: Versions, store: ModelStore, service_redis: str, prefix: str, tmp_path: Path
) -> None:
    """A hostile tester's `DELETE /v1/customers/c1?model=` forgot the customer in every model,
    while `GET /v1/customers/c1?model=` (and every endpoint) reads an empty model as the
    default one: a client that sends the default model's name as empty lost the others'
    data. Only a DELETE without `model` forgets everywhere."""
    row = versions.rows[0]
    settings = settings_for(store, service_redis, prefix, tmp_path)
    with TestClient(create_app(settings)) as api:
        for query in ("", "?model=tiers"):
            assigned = api.post(f"/v1/assign{query}", json={"customer_id": "c1", "features": row})
            assert assigned.status_code == 200, assigned.text
        assert api.get("/v1/customers/c1?model=").json()["model_version"] == versions.old
        assert api.delete("/v1/customers/c1?model=").status_code == 204
        assert api.get("/v1/customers/c1").status_code == 404
        kept = api.get("/v1/customers/c1?model=tiers")
        assert kept.status_code == 200, kept.text
        assert api.delete("/v1/customers/c1").status_code == 204  # every model
        assert api.get("/v1/customers/c1?model=tiers").status_code == 404


def test_events_naming_two_models_are_refused_and_applied_to_neither(
    tx_trained: tuple[ModelStore, Any],
    store: ModelStore,
    service_redis: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    """A hostile tester's `POST /v1/events?model=customers&model=transactions` was applied to
    the transactions model (FastAPI's last value, 200) where every other endpoint refuses a
    model named twice: the events are refused, and no customer's aggregates are written."""
    shutil.copytree(tx_trained[0].root / "transactions", store.root / "transactions")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    event = {
        "event_id": "e1",
        "customer_id": "c1",
        "type": "order",
        "amount": 20.0,
        "at": (now - timedelta(days=1)).isoformat().replace("+00:00", "Z"),
    }
    settings = settings_for(store, service_redis, prefix, tmp_path)
    with TestClient(create_app(settings)) as api:
        api.app.state.clock = now.timestamp  # type: ignore[attr-defined]
        for query in ("model=customers&model=transactions", "model=transactions&model="):
            answer = api.post(f"/v1/events?{query}", json={"events": [event]})
            assert answer.status_code == 422, (query, answer.text)
            assert answer.json()["errors"] == [
                {"field": "model", "message": "given 2 times: name one model"}
            ]
        assert api.get("/v1/customers/c1?model=transactions").status_code == 404
        once = api.post("/v1/events?model=transactions", json={"events": [event]})
        assert once.status_code == 200, once.text
        assert once.json()["accepted"] == 1
    with redis.Redis.from_url(service_redis) as client:
        assert not client.exists(Keys(prefix).behaviour("c1"))


def test_a_query_parameter_given_twice_is_refused(
    store: ModelStore, service_redis: str, prefix: str, tmp_path: Path
) -> None:
    """A hostile tester's `?limit=5&limit=500` took the last value silently where a repeated
    `model` is a 422: every parameter of the history, drift and webhook routes is now so, and
    the assignment's `explain`."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    settings = settings_for(store, service_redis, prefix, tmp_path)
    since = "2026-01-01T00:00:00Z"
    with TestClient(create_app(settings)) as client:
        for path, twice in (
            ("/v1/customers/C1/history", "limit=5&limit=500"),
            ("/v1/migrations", f"since={since}&since={since}&until={since}&until={since}"),
            ("/v1/drift", f"since={since}&since={since}"),
            ("/v1/webhooks/w1/attempts", "limit=1&limit=2"),
        ):
            answer = client.get(f"{path}?{twice}")
            assert answer.status_code == 422, (path, answer.text)
            fields = [e["field"] for e in answer.json()["errors"]]
            assert fields == sorted({p.split("=")[0] for p in twice.split("&")}), (path, fields)
            assert all(
                e["message"] == "given 2 times: give it once" for e in answer.json()["errors"]
            )
        once = client.get("/v1/customers/C1/history?limit=5")
        assert once.status_code != 422, once.text
        unread = client.get("/v1/migrations?x=1&x=2")  # a parameter no route reads: ignored
        assert unread.status_code == 200, unread.text
        # the assignment routes' own flag (read from the raw query) likewise
        items = {"items": [{"customer_id": "C1", "features": {}}]}
        flag = client.post("/v1/assign/batch?explain=true&explain=false", json=items)
        assert flag.status_code == 422, flag.text
        assert flag.json()["errors"] == [
            {"field": "explain", "message": "given 2 times: give it once"}
        ]


def test_model_info_is_one_for_the_version_each_model_serves(
    template: Template,
    versions: Versions,
    store: ModelStore,
    service_redis: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    """Each model's served version is 1 in ``segments_model_info``: loading or promoting
    one model never sets another model's served version to 0."""
    settings = settings_for(store, service_redis, prefix, tmp_path)
    with serving(settings) as url, httpx.Client(base_url=url, timeout=30) as api:
        served = served_versions(api.get("/metrics").text, "model")
        assert served.get("customers") == {versions.old}, served
        assert served.get("tiers") == {template.tiers}, served
        promoted = api.post(f"/v1/models/{versions.new}/promote")
        assert promoted.status_code == 200, promoted.text
        served = served_versions(api.get("/metrics").text, "model")
        assert served.get("customers") == {versions.new}, served
        assert served.get("tiers") == {template.tiers}, served


def test_assignment_and_migration_counters_are_per_model(
    template: Template,
    versions: Versions,
    store: ModelStore,
    service_redis: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    """Segment ids are a model's own (both models here have a `seg-001`, unrelated), yet
    `segments_assignments_total` and `segments_migrations_total` were labelled by segment
    only: the two models' customers were added up under one label. They carry `model`."""
    from tests.test_metrics import samples

    def counted(text: str, name: str) -> dict[str, float]:
        found: dict[str, float] = {}
        for (metric, labels), v in samples(text).items():
            if metric == name:
                model = dict(labels).get("model", "")
                found[model] = found.get(model, 0.0) + v
        return found

    rows = versions.rows[:6]
    settings = settings_for(store, service_redis, prefix, tmp_path)
    with serving(settings) as url, httpx.Client(base_url=url, timeout=30) as api:
        before = api.get("/metrics").text
        batch = {"items": [{"customer_id": f"p{i}", "features": r} for i, r in enumerate(rows)]}
        assert api.post("/v1/assign/batch?model=tiers", json=batch).status_code == 200
        for i, row in enumerate(rows[:2]):
            answer = api.post("/v1/assign", json={"customer_id": f"p{i}", "features": row})
            assert answer.status_code == 200, answer.text
        after = api.get("/metrics").text
    name = "segments_assignments_total"
    grown = {
        model: n - counted(before, name).get(model, 0.0)
        for model, n in counted(after, name).items()
    }
    assert {m: n for m, n in grown.items() if n} == {TIERS: 6, "customers": 2}
    moved = "segments_migrations_total"
    grown = {m: n - counted(before, moved).get(m, 0.0) for m, n in counted(after, moved).items()}
    assert {m: n for m, n in grown.items() if n} == {TIERS: 6, "customers": 2}  # first ones


def test_features_of_another_served_model_are_named_with_it(
    versions: Versions,
    tx_trained: tuple[ModelStore, Any],
    store: ModelStore,
    service_redis: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    """A new user trained their own model beside ./scripts/run's and sent its features
    without ``?model=``: the 422 said "unknown feature" for each, and nothing of the model
    that has them. It now names it; features no served model has are answered as before."""
    shutil.copytree(tx_trained[0].root / "transactions", store.root / "transactions")
    row = versions.rows[0]  # the customers model's features: plan, channel ... too
    settings = settings_for(store, service_redis, prefix, tmp_path)
    with TestClient(create_app(settings)) as api:
        answer = api.post(
            "/v1/assign?model=transactions", json={"customer_id": "c1", "features": row}
        )
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert detail.endswith(
            "; they are features of model 'customers', not of 'transactions', which answered: "
            "send them with ?model=customers"
        ), detail
        one = {"customer_id": "c1", "features": {"plan": "pro"}}
        detail = api.post("/v1/assign?model=transactions", json=one).json()["detail"]
        assert detail.endswith(
            "; it is a feature of model 'customers', not of 'transactions', which answered: "
            "send it with ?model=customers"
        ), detail
        nowhere = {"customer_id": "c1", "features": {**row, "shoe_size": 42}}
        detail = api.post("/v1/assign", json=nowhere).json()["detail"]
        assert detail == "features.shoe_size: unknown feature", detail


def test_a_batch_of_another_served_models_features_names_it_once(
    versions: Versions,
    tx_trained: tuple[ModelStore, Any],
    store: ModelStore,
    service_redis: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    """The single assign named the model whose features a request's unknown ones are; the
    batch answered each item "unknown feature" and nothing of it. It says so once, beside
    the results (however many items), and nothing where no served model has them all."""
    shutil.copytree(tx_trained[0].root / "transactions", store.root / "transactions")
    row = versions.rows[0]  # the customers model's features
    settings = settings_for(store, service_redis, prefix, tmp_path)
    items = [{"customer_id": f"c{i}", "features": row} for i in range(3)]
    with TestClient(create_app(settings)) as api:
        answer = api.post("/v1/assign/batch?model=transactions", json={"items": items})
        assert answer.status_code == 200, answer.text
        doc = answer.json()
        assert doc["failed"] == 3, doc
        assert doc["hint"] == (
            "the items' unknown features are features of model 'customers', not of "
            "'transactions', which answered: send them with ?model=customers"
        ), doc.get("hint")
        nowhere = [{"customer_id": "c1", "features": {**row, "shoe_size": 42}}]
        doc = api.post("/v1/assign/batch?model=transactions", json={"items": nowhere}).json()
        assert "hint" not in doc, doc
        fine = [{"customer_id": "c1", "features": row}]
        doc = api.post("/v1/assign/batch", json={"items": fine}).json()
        assert doc["failed"] == 0 and "hint" not in doc, doc
