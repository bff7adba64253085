"""``segments customers rescore``: after a promotion (or a rollback) every customer the history
store knows is re-assigned with the served version and recorded, from the stored profile (a
table model) or the stored behaviour as of now (a log model), with a real trained model, a
real Redis and the real service reading what it recorded."""

from __future__ import annotations

import asyncio
import re
import shutil
import time
import tomllib
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli.main import app as cli
from app.drift.live import LIVE
from app.history.keys import Keys
from app.main import create_app
from app.recording import load_serving
from app.recording.rescore import Rescored, rescore
from app.registry.store import ModelStore
from app.training.config import parse_config
from app.training.job import TrainResult, train
from tests.conftest import EXAMPLES, example_config
from tests.events.conftest import delete_prefix
from tests.history.conftest import RedisProcess, make_config
from tests.history.test_outage import service_for
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


def _assert_in(api: TestClient, customers: list[str], segments: list[str]) -> None:
    """Each customer's current segment, as the API reads it, is the one beside it."""
    for customer_id, segment in zip(customers, segments, strict=True):
        assert api.get(f"/v1/customers/{customer_id}").json()["segment_id"] == segment


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
        # before: every customer still where the old version put them, and one in a segment
        # the new version lacks is told its name in the version that put them there
        assert api.get(f"/v1/customers/{recorded[0]}").json()["segment_id"] == old[0]
        left = next(i for i, s in enumerate(old) if s not in set(new))
        named = {s.id: s.name for s in copied.manifest(MODEL, versions.old).segments}
        state = api.get(f"/v1/customers/{recorded[left]}").json()
        assert state["segment_name"] == named[old[left]], state
        assert state["models"][0]["segment_name"] == named[old[left]], state
        [entry] = api.get(f"/v1/customers/{recorded[left]}/history").json()["migrations"]
        assert entry["to_segment_name"] == named[old[left]], entry

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
        # the segment left is named as the version that put them there named it
        assert history[0]["from_segment_name"] == named[history[0]["from_segment_id"]]

        # a second rescore moves nobody; by id, the service agrees with what was recorded
        assert f"0 changed, {len(recorded):,} unchanged" in _run("customers", "rescore")
        answer = api.post("/v1/assign", json={"customer_id": recorded[1]}).json()
        assert answer["segment_id"] == new[1] and answer["changed"] is False

    # a rollback, then a rescore: everyone is back where the old version puts them
    copied.promote(MODEL, versions.old)
    output = _run("customers", "rescore")
    assert f"{sum(moving.values()):,} changed" in output, output
    with _service(copied, service_redis, prefix, tmp_path) as api:
        _assert_in(api, recorded[:50], old[:50])


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
    # more than the 1,000 errors a batch's answer details: 1,240 of a new user's 2,240
    # customers were counted as "invalid (not detailed: past 1,000 errors)"
    frame = customers[0].head(1_200).drop(columns=["support_tickets"])
    source = tmp_path / "fewer.csv"
    frame.to_csv(source, index=False)
    _command_env(monkeypatch, copied, service_redis, prefix, tmp_path)
    _run("assign", "--input", str(source), "--record")
    copied.promote(MODEL, versions.new)  # it needs support_tickets
    result = CliRunner().invoke(cli, ["customers", "rescore"])
    assert result.exit_code == 3, result.output
    said = " ".join(result.output.split())
    assert "not assigned: 1,200" in said, said
    assert "features.support_tickets: missing feature" in said and ": 1,200 " in said, said
    assert "not detailed" not in said, said
    # what to do: the reason is the API's ("send it, or null"), which no rescore can
    assert (
        "a feature their stored profiles lack (a retrain added it): record the customers' "
        f"file again, `segments assign --input FILE --record --model {MODEL}`, which stores "
        "every feature the versions read, then rescore" in said
    ), said
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


def _finished(api: TestClient, timeout: float = 60.0) -> dict[str, Any]:
    """``GET /v1/rescore`` until the run has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = api.get("/v1/rescore")
        assert answer.status_code in (200, 503), answer.text  # 503: Redis is stalled
        status = answer.json()
        if answer.status_code == 200 and status["state"] != "running":
            return status
        time.sleep(0.05)
    raise AssertionError(f"the rescore did not end in {timeout} s: {status}")


def test_the_service_rescores_in_the_background_when_a_promotion_asks(
    copied: ModelStore,
    versions: Versions,
    recorded: list[str],
    service_redis: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    old, new = versions.segment[versions.old], versions.segment[versions.new]
    changed = sum(a != b for a, b in zip(old, new, strict=True))
    with _service(copied, service_redis, prefix, tmp_path) as api:
        missing = api.get("/v1/rescore")
        assert missing.status_code == 404 and "POST /v1/rescore" in missing.json()["detail"]

        promoted = api.post(f"/v1/models/{versions.new}/promote?rescore=true")
        assert promoted.status_code == 200, promoted.text
        started = promoted.json()["rescore"]
        assert started["state"] == "running" and started["version"] == versions.new

        status = _finished(api)
        assert status["run_id"] == started["run_id"] and status["state"] == "done", status
        assert status["customers"] == len(recorded) and status["changed"] == changed, status
        assert status["unchanged"] == len(recorded) - changed and status["passes"] == 1
        assert status["finished_at"] >= status["started_at"]
        _assert_in(api, recorded, new)
        for segment in set(new):
            expected = {c for c, s in zip(recorded, new, strict=True) if s == segment}
            assert _members(api, segment) == expected, segment

        # started by hand: nothing moves the second time; the answer says where to follow it
        again = api.post("/v1/rescore")
        assert again.status_code == 202 and again.headers["location"] == "/v1/rescore"
        status = _finished(api)
        assert status["changed"] == 0 and status["unchanged"] == len(recorded), status


def test_a_service_rescore_is_not_counted_as_live_traffic_in_drift(
    copied: ModelStore,
    versions: Versions,
    recorded: list[str],
    service_redis: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    """Live drift measures what callers send (docs/drift.md): a rescore re-assigns the stored
    base, which is no traffic. Counted, it filled the new version's window with every stored
    customer right after a promotion (the dashboard ticks the rescore by default), so a live
    shift read `ok` for a day; and `segments customers rescore` counted nothing."""
    LIVE.reset()  # (another test's counts of these versions would be flushed here too)
    settings = settings_for(copied, service_redis, prefix, tmp_path, drift_flush_seconds=0.1)
    with TestClient(create_app(settings)) as api:
        promoted = api.post(f"/v1/models/{versions.new}/promote?rescore=true")
        assert promoted.status_code == 200, promoted.text
        assert _finished(api)["customers"] == len(recorded)
        for row in versions.rows[:3]:  # then live traffic: three assignments
            answer = api.post("/v1/assign", json={"customer_id": "live", "features": row})
            assert answer.status_code == 200, answer.text
        deadline = time.monotonic() + 20
        while (drift := api.get("/v1/drift").json())["observations"] < 3:
            assert time.monotonic() < deadline, drift
            time.sleep(0.05)
        assert drift["model_version"] == versions.new
        assert drift["observations"] == 3, drift["observations"]


def test_a_rescore_by_a_version_without_a_feature_keeps_it_for_a_rollback(
    copied: ModelStore,
    versions: Versions,
    recorded: list[str],
    customers_csv: Path,
    service_redis: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    """A retrain that drops a feature, promoted and rescored, then rolled back: the stored
    profiles still hold the feature, so the rollback's rescore and assignment by id work.
    The rescore stored each profile again as the dropped-feature version read it: the
    feature's values were deleted from every customer, and after the rollback each by-id
    request was a 422 and the rescore assigned nobody ('features.support_tickets: missing')."""
    raw = tomllib.loads((EXAMPLES / f"{MODEL}.toml").read_text())
    raw["data"]["path"] = str(customers_csv)
    raw["features"] = [f for f in raw["features"] if f["name"] != "support_tickets"]
    raw["model"] |= {"k_min": 4, "k_max": 4, "stability_bootstraps": 0}
    dropped = train(parse_config(raw, base_dir=EXAMPLES), copied, promote=True).manifest.version
    output = _run("customers", "rescore", "--batch-size", "100")
    assert f"{len(recorded):,} customers" in output and "not assigned" not in output, output
    with _service(copied, service_redis, prefix, tmp_path) as api:
        assert api.get("/v1/models").json()["promoted"] == dropped
        # and some features sent, merged over the profile: by id, and as a batch's item
        some = {"customer_id": recorded[1], "features": {"sessions_30d": 3}}
        assert api.post("/v1/assign", json=some).json()["features_from"] == "merged"
        item = {"customer_id": recorded[2], "features": {"sessions_30d": 4}}
        [result] = api.post("/v1/assign/batch", json={"items": [item]}).json()["results"]
        assert result["features_from"] == "merged", result
        for customer_id, sessions in zip(recorded[:3], [None, 3, 4], strict=True):
            profile = api.get(f"/v1/customers/{customer_id}").json()["profile"]
            assert "support_tickets" in profile, (customer_id, profile)
            assert sessions is None or profile["sessions_30d"] == sessions, profile
        # every feature sent replaces the profile; a later item merges over that, as the two
        # requests sent one after the other would
        every = dict(api.get(f"/v1/customers/{recorded[3]}").json()["profile"])
        del every["support_tickets"]
        items = [
            {"customer_id": recorded[3], "features": every},
            item | {"customer_id": recorded[3]},
        ]
        assert api.post("/v1/assign/batch", json={"items": items}).json()["failed"] == 0
        profile = api.get(f"/v1/customers/{recorded[3]}").json()["profile"]
        assert "support_tickets" not in profile and profile["sessions_30d"] == 4, profile
    copied.promote(MODEL, versions.old)  # the rollback
    rescored = CliRunner().invoke(cli, ["customers", "rescore"])  # exit 3: one not assigned,
    assert rescored.exit_code == 3, rescored.output  # the one whose profile was replaced
    assert "not assigned: 1 " in rescored.output and "support_tickets" in rescored.output
    with _service(copied, service_redis, prefix, tmp_path) as api:
        for customer_id in recorded[:3]:
            answer = api.post("/v1/assign", json={"customer_id": customer_id})
            assert answer.status_code == 200, answer.text
        lacking = api.post("/v1/assign", json={"customer_id": recorded[3]})
        assert lacking.status_code == 422 and "support_tickets" in lacking.text
        answer = api.post("/v1/assign", json={"customer_id": recorded[0]})
        assert answer.json()["segment_id"] == versions.segment[versions.old][0]
        _assert_in(api, recorded[4:50], versions.segment[versions.old][4:50])


def test_a_promotion_during_a_rescore_makes_it_start_over_with_the_new_version(
    copied: ModelStore,
    versions: Versions,
    recorded: list[str],
    service_redis: str,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("app.rescore.service.BATCH", 1)  # a long run: one customer a batch
    copied.promote(MODEL, versions.new)
    with _service(copied, service_redis, prefix, tmp_path) as api:
        first = api.post("/v1/rescore").json()
        assert first["version"] == versions.new
        # a second one is refused while it runs, naming it
        refused = api.post("/v1/rescore")
        assert refused.status_code == 409, refused.text
        assert first["run_id"] in refused.json()["detail"]
        # a rollback asking for a rescore gets the running one, which follows it
        answer = api.post(f"/v1/models/{versions.old}/promote?rescore=true").json()
        assert answer["rescore"]["run_id"] == first["run_id"]
        status = _finished(api)
        assert status["state"] == "done" and status["version"] == versions.old, status
        assert status["passes"] == 2 and status["customers"] == len(recorded), status
        old = versions.segment[versions.old]
        _assert_in(api, recorded, old)


def test_a_run_whose_worker_died_reads_interrupted_and_frees_the_model(
    copied: ModelStore,
    recorded: list[str],
    service_redis: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    """Another worker's run: its lease held (a 409), then expired with its state still
    ``running`` (the worker was killed): ``interrupted``, and a new run may start."""
    client = redis.Redis.from_url(service_redis)
    keys = Keys(prefix)
    with _service(copied, service_redis, prefix, tmp_path) as api:
        first = api.post("/v1/rescore").json()
        _finished(api)
        client.hset(keys.rescore(), mapping={"state": "running"})  # killed mid-run
        client.set(keys.rescore_lease(), "another", px=60_000)
        refused = api.post("/v1/rescore")
        assert refused.status_code == 409 and "GET /v1/rescore" in refused.json()["detail"]
        client.delete(keys.rescore_lease())  # its lease expired
        status = api.get("/v1/rescore").json()
        assert status["state"] == "interrupted" and status["run_id"] == first["run_id"]
        assert api.post("/v1/rescore").status_code == 202
        assert _finished(api)["state"] == "done"


def test_the_dashboard_promotes_and_rescores_when_ticked(
    copied: ModelStore,
    versions: Versions,
    recorded: list[str],
    service_redis: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    new = versions.segment[versions.new]
    with _service(copied, service_redis, prefix, tmp_path) as api:
        confirm = api.get(f"/ui/models/{versions.new}/promote")
        assert 'name="rescore" value="yes" checked' in confirm.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', confirm.text)
        assert csrf is not None
        form = {"csrf": csrf[1], "confirm": "yes", "target": versions.new, "rescore": "yes"}
        done = api.post(f"/ui/models/{versions.new}/promote", data=form, follow_redirects=False)
        assert done.status_code == 303, done.text
        assert _finished(api)["state"] == "done"
        page = api.get("/ui/").text
        assert "Last rescore" in page and f"done with {versions.new}" in page
        assert api.get(f"/v1/customers/{recorded[0]}").json()["segment_id"] == new[0]


def test_one_customer_rescored_reads_in_the_singular(
    copied: ModelStore,
    customers: tuple[pd.DataFrame, Any],
    service_redis: str,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = tmp_path / "one.csv"
    customers[0].head(1).to_csv(source, index=False)
    _command_env(monkeypatch, copied, service_redis, prefix, tmp_path)
    _run("assign", "--input", str(source), "--record")
    output = _run("customers", "rescore")
    assert "rescored 1 customer with" in output, output


def test_a_model_other_than_the_default_says_the_keys_it_rescores_under(
    recorded: list[str],
    copied: ModelStore,
    versions: Versions,
    customers: tuple[pd.DataFrame, Any],
    tmp_path: Path,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With another default model, ``--model customers`` records under
    '<prefix>m:customers:': the command says so (as ``assign --record`` does), not the bare
    prefix where that model has no keys."""
    monkeypatch.setenv("SEGMENTS_MODEL_NAME", "other")
    source = tmp_path / "customers.csv"  # the recorded fixture's file
    _run("assign", "--model", MODEL, "--input", str(source), "--record")
    copied.promote(MODEL, versions.new)
    output = _run("customers", "rescore", "--model", MODEL)
    assert f"keys under '{prefix}m:{MODEL}:'" in output, output
    assert f"keys under '{prefix}'" not in output, output
    assert f"model '{MODEL}' records under '{prefix}m:{MODEL}:'" in output, output
    assert f"rescored {len(recorded):,} customers" in output, output


def test_a_redis_stall_during_a_service_rescore_delays_it_and_loses_nothing(
    copied: ModelStore,
    versions: Versions,
    recorded: list[str],
    service_redis: str,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis stops answering for 3 s mid-run (as a loaded one misses the request deadline):
    the records spool, the run waits for the service to replay them, assigns again the
    customers it could not read, and ends done with everyone where the new version puts them."""
    monkeypatch.setattr("app.rescore.service.BATCH", 1)
    copied.promote(MODEL, versions.new)
    client = redis.Redis.from_url(service_redis)
    with _service(copied, service_redis, prefix, tmp_path) as api:
        assert api.post("/v1/rescore").json()["state"] == "running"
        client.execute_command("CLIENT", "PAUSE", 3000, "ALL")  # > the 2 s batch deadline
        status = _finished(api)
        assert status["state"] == "done", status
        assert status["customers"] == len(recorded) and status["not_assigned"] == 0, status
        new = versions.segment[versions.new]
        _assert_in(api, recorded, new)


def test_a_run_cut_short_by_a_shutdown_leaves_the_model_free_to_start_again(
    copied: ModelStore,
    versions: Versions,
    recorded: list[str],
    service_redis: str,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The service stops (a deploy, a restart) mid-run: the run reads interrupted, and the
    restarted service starts another at once rather than a 409 'running' for a minute."""
    monkeypatch.setattr("app.rescore.service.BATCH", 1)  # a long run: one customer a batch

    async def slowly(*args: Any) -> Rescored:  # and 50 ms a batch: it outlasts the shutdown
        *given, on_batch, on_outage = args

        async def rested(progress: Rescored) -> None:
            await asyncio.sleep(0.05)
            await on_batch(progress)

        return await rescore(*given, rested, on_outage)

    monkeypatch.setattr("app.rescore.service.rescore", slowly)
    with _service(copied, service_redis, prefix, tmp_path) as api:
        first = api.post("/v1/rescore").json()
        assert first["state"] == "running"
    monkeypatch.setattr("app.rescore.service.rescore", rescore)
    with _service(copied, service_redis, prefix, tmp_path) as api:
        status = api.get("/v1/rescore").json()
        assert status["state"] == "interrupted" and status["run_id"] == first["run_id"], status
        assert status["customers"] < len(recorded), status  # cut short indeed
        again = api.post("/v1/rescore")
        assert again.status_code == 202, again.text
        assert _finished(api)["state"] == "done"


def test_a_promotion_in_another_worker_makes_the_run_start_over_with_it(
    copied: ModelStore,
    versions: Versions,
    recorded: list[str],
    service_redis: str,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two workers: the run goes in one, a rollback asking for a rescore lands in the other,
    which answers with the running run. The run ends with the version served then, though its
    own worker would look at the store only at its next reload check."""
    monkeypatch.setattr("app.rescore.service.BATCH", 1)
    # (these workers never look at the store by themselves: no pass waits two intervals for
    # them to, test_a_rescore_is_done_only_once_every_worker_serves_its_version does)
    monkeypatch.setattr("app.rescore.service.settle_s", lambda holder: 0.0)
    copied.promote(MODEL, versions.new)

    def worker(name: str) -> TestClient:
        settings = settings_for(copied, service_redis, prefix, tmp_path / name)
        return TestClient(create_app(settings.model_copy(update={"reload_interval": 60.0})))

    with worker("a") as a, worker("b") as b:
        first = a.post("/v1/rescore").json()
        answer = b.post(f"/v1/models/{versions.old}/promote?rescore=true").json()
        assert answer["rescore"]["run_id"] == first["run_id"], answer
        status = _finished(b)
        assert status["state"] == "done" and status["version"] == versions.old, status
        assert status["passes"] == 2 and status["customers"] == len(recorded), status
        old = versions.segment[versions.old]
        _assert_in(b, recorded, old)


def test_a_rescore_is_done_only_once_every_worker_serves_its_version(
    copied: ModelStore,
    versions: Versions,
    recorded: list[str],
    service_redis: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    """Two workers looking at the store every 3 s: a promotion with a rescore in one is done
    only once the other serves the new version too. The run ended in a few ms, while the
    other worker went on serving the old version until its next check: an assignment by id
    it answered then, after the run said done, moved the customer back to the old version's
    segment, where they stayed until assigned again."""
    old, new = versions.segment[versions.old], versions.segment[versions.new]
    customer, was, becomes = next(
        (c, a, b) for c, a, b in zip(recorded, old, new, strict=True) if a != b
    )

    def worker(name: str) -> TestClient:
        settings = settings_for(copied, service_redis, prefix, tmp_path / name)
        return TestClient(create_app(settings.model_copy(update={"reload_interval": 3.0})))

    with worker("a") as a, worker("b") as b:
        assert b.post("/v1/assign", json={"customer_id": customer}).json()["segment_id"] == was
        promoted = a.post(f"/v1/models/{versions.new}/promote?rescore=true")
        assert promoted.status_code == 200, promoted.text
        status = _finished(a)
        assert status["state"] == "done" and status["version"] == versions.new, status

        answer = b.post("/v1/assign", json={"customer_id": customer}).json()
        assert (answer["model_version"], answer["segment_id"]) == (versions.new, becomes)
        assert answer["changed"] is False, answer  # the run had moved them
        assert b.get(f"/v1/customers/{customer}").json()["segment_id"] == becomes


def test_the_command_waits_for_the_workers_to_serve_the_promoted_version(
    copied: ModelStore,
    versions: Versions,
    recorded: list[str],
    service_redis: str,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``segments customers rescore`` right after a promotion (a script's next line), beside
    a service whose worker looks at the store every 3 s: the command waits until that worker
    serves the promoted version, so an assignment the worker answers after the command is
    the new version's, not the old one putting the customer back in the old segment."""
    old, new = versions.segment[versions.old], versions.segment[versions.new]
    customer, was, becomes = next(
        (c, a, b) for c, a, b in zip(recorded, old, new, strict=True) if a != b
    )
    monkeypatch.setenv("SEGMENTS_RELOAD_INTERVAL", "3")
    settings = settings_for(copied, service_redis, prefix, tmp_path / "b")
    worker = TestClient(create_app(settings.model_copy(update={"reload_interval": 3.0})))
    with worker as b:
        assert b.post("/v1/assign", json={"customer_id": customer}).json()["segment_id"] == was
        copied.promote(MODEL, versions.new)
        out = _run("customers", "rescore")
        assert f"for the service's workers to serve {versions.new}" in out, out
        answer = b.post("/v1/assign", json={"customer_id": customer}).json()
        assert (answer["model_version"], answer["segment_id"]) == (versions.new, becomes)
        assert b.get(f"/v1/customers/{customer}").json()["segment_id"] == becomes


def test_a_run_waiting_for_the_workers_keeps_its_lease(
    copied: ModelStore,
    versions: Versions,
    recorded: list[str],
    service_redis: str,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The wait for every worker to serve the version (two reload intervals: up to two
    minutes) outlasts the lease of a run (a minute), which the wait renews: another start
    meanwhile is a 409, not a second run beside the first, and the run ends done."""
    monkeypatch.setattr("app.rescore.service.LEASE_MS", 300)
    monkeypatch.setattr("app.rescore.service.settle_s", lambda holder: 1.5)
    with _service(copied, service_redis, prefix, tmp_path) as api:
        started = api.post(f"/v1/models/{versions.new}/promote?rescore=true").json()["rescore"]
        time.sleep(0.9)  # three lease lives into the wait
        again = api.post("/v1/rescore")
        assert again.status_code == 409, again.text
        status = _finished(api)
        assert status["run_id"] == started["run_id"] and status["state"] == "done", status
        assert status["customers"] == len(recorded), status


def test_the_dashboard_says_when_the_ticked_rescore_could_not_start(
    copied: ModelStore, versions: Versions, tmp_path: Path
) -> None:
    """Redis does not answer: the promotion and the rollback stand, and the models page says
    the customers were not moved (it said only 'Promoted', the box's rescore never started)."""
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with _service(copied, f"redis://127.0.0.1:{port}/0", "x:", tmp_path) as api:
        confirm = api.get(f"/ui/models/{versions.new}/promote")
        assert 'name="rescore" value="yes" checked' in confirm.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', confirm.text)
        assert csrf is not None
        form = {"csrf": csrf[1], "confirm": "yes", "target": versions.new, "rescore": "yes"}
        done = api.post(f"/ui/models/{versions.new}/promote", data=form)
        assert done.status_code == 200 and f"now serving {versions.new}" in done.text
        assert "No rescore could start" in done.text, done.text
        form = {**form, "target": versions.old}
        back = api.post("/ui/rollback", data=form)
        assert back.status_code == 200 and f"now serving {versions.old}" in back.text
        assert "No rescore could start" in back.text
        unticked = {k: v for k, v in form.items() if k != "rescore"}
        again = api.post(f"/ui/models/{versions.new}/promote", data=unticked)
        assert again.status_code == 200 and "No rescore could start" not in again.text


def test_customers_forgotten_during_a_rescore_are_gone_not_refused(
    copied: ModelStore,
    customers: tuple[pd.DataFrame, Any],
    start_redis: Callable[..., RedisProcess],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Customers erased (DELETE /v1/customers/{id}) after the listing found them were 'not
    assigned: unknown customer: no stored profile; send every feature', and made
    ``segments customers rescore`` exit 3 (partial), as if the run had failed them."""
    server = start_redis(tmp_path / "redis").start()  # its own: one SCAN call lists them all
    source = tmp_path / "customers.csv"
    customers[0].head(300).to_csv(source, index=False)
    _command_env(monkeypatch, copied, server.url, "gone:", tmp_path)
    _run("assign", "--input", str(source), "--record")
    ids = [str(c) for c in customers[0].head(300)["customer_id"]]

    async def run() -> Rescored:
        async with service_for(make_config(server.url, tmp_path, key_prefix="gone:")) as history:
            forgotten: list[str] = []

            async def forget_half(done: Rescored) -> None:  # after the first customer
                for customer_id in ids[::2] if not forgotten else ():
                    assert await history.forget(customer_id)
                    forgotten.append(customer_id)

            serving = load_serving(copied, MODEL, None)
            keys = history.recorder.keys
            return await rescore(serving, history, keys, None, 256, 1, forget_half)

    done = asyncio.run(run())
    assert done.not_assigned == 0, done.refused
    assert done.customers + done.gone == len(ids) and done.gone >= len(ids) // 2 - 1, done


def test_seen_ids_drop_exactly_the_repeats_in_8_bytes_an_id() -> None:
    """``SeenIds`` against the obvious set of strings, on pages with repeats within and
    across them (as SCAN returns a key again while Redis rehashes)."""
    import random

    from app.seen_ids import SeenIds

    rng = random.Random(7)
    pool = [f"C{n:06d}" for n in range(50_000)] + ["", "Zoë", "0042", "42", "a" * 300]
    seen, reference = SeenIds(), set[str]()
    for _ in range(400):
        page = [rng.choice(pool) for _ in range(rng.randint(0, 300))]
        expected = []
        for customer_id in page:
            if customer_id not in reference:
                reference.add(customer_id)
                expected.append(customer_id)
        assert seen.first_seen(page) == expected
    assert sum(level.nbytes for level in seen.levels) == 8 * len(reference)


def test_a_batch_by_id_while_redis_cannot_answer_refuses_its_items(
    copied: ModelStore, recorded: list[str], service_redis: str, prefix: str, tmp_path: Path
) -> None:
    """The stored profiles cannot be read (Redis paused past the deadline): each item by id
    is refused as such, the batch answered; keeping the profiles read (none then) raised
    instead, and a service rescore caught in such a stall failed (CI, 2026-12-06)."""
    client = redis.Redis.from_url(service_redis)
    with _service(copied, service_redis, prefix, tmp_path) as api:
        client.execute_command("CLIENT", "PAUSE", 3000, "ALL")
        answer = api.post("/v1/assign/batch", json={"items": [{"customer_id": recorded[0]}]})
        assert answer.status_code == 200, answer.text
        (item,) = answer.json()["results"]
        assert item["status"] == "error" and item["customer_id"] == recorded[0], item
        assert "cannot be read now (Redis unavailable)" in item["errors"][0]["message"], item


def test_a_file_run_by_a_version_without_a_feature_keeps_it_for_a_rollback(
    copied: ModelStore,
    versions: Versions,
    recorded: list[str],
    customers: tuple[pd.DataFrame, Any],
    customers_csv: Path,
    service_redis: str,
    prefix: str,
    tmp_path: Path,
) -> None:
    """The nightly file run by a retrain that dropped a feature, then a rollback: the file
    still holds the column, and the profiles keep it. Found retraining month after month: the
    run stored each profile as the dropped-feature version reads it, so after the rollback
    every customer it recorded was a 422 by id ('features.support_tickets: missing feature')
    and the rescore assigned none of them, though the file had given every value."""
    raw = tomllib.loads((EXAMPLES / f"{MODEL}.toml").read_text())
    raw["data"]["path"] = str(customers_csv)
    raw["features"] = [f for f in raw["features"] if f["name"] != "support_tickets"]
    raw["model"] |= {"k_min": 4, "k_max": 4, "stability_bootstraps": 0}
    train(parse_config(raw, base_dir=EXAMPLES), copied, promote=True)
    frame = customers[0].head(len(recorded)).astype({"support_tickets": object})
    frame.loc[frame.index[0], "support_tickets"] = "many"  # not a number: missing, kept
    source = tmp_path / "month2.csv"
    frame.to_csv(source, index=False)
    output = _run("assign", "--input", str(source), "--record")
    assert "rejected rows 0" in output, output
    with _service(copied, service_redis, prefix, tmp_path) as api:
        for i, customer_id in enumerate(recorded[:3]):
            profile = api.get(f"/v1/customers/{customer_id}").json()["profile"]
            expected = None if i == 0 else float(frame["support_tickets"].iloc[i])
            assert profile.get("support_tickets", "absent") == expected, profile
    copied.promote(MODEL, versions.old)  # the rollback
    output = _run("customers", "rescore")  # (exit 0: every customer assigned)
    assert f"{len(recorded):,} customers" in output and "not assigned" not in output, output
    with _service(copied, service_redis, prefix, tmp_path) as api:
        for customer_id in recorded[:3]:
            answer = api.post("/v1/assign", json={"customer_id": customer_id})
            assert answer.status_code == 200, answer.text


def test_a_rescore_by_a_version_not_served_says_so(
    copied: ModelStore, versions: Versions, recorded: list[str]
) -> None:
    """`--version` of a version the service does not serve moved customers into its segments
    without a word (found in a month's rescore: 1,292 customers listed under none of the
    served version's segments, then moved back, with webhooks, by the next request). The
    summary says so, as a file run's does."""
    moved = _run("customers", "rescore", "--version", versions.new)
    assert f"{versions.old} is the promoted version now, not {versions.new}" in moved, moved
    assert "segments customers rescore --model customers" in moved
    back = _run("customers", "rescore")
    assert "is the promoted version now" not in back, back
