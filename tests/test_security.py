"""API keys with scopes, over HTTP against the real app and a real trained model."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli.main import app as cli
from app.main import create_app
from app.redis_client import RateLimitWithoutRedis
from app.registry.store import ModelStore
from app.security import hash_key, new_key, parse_entries
from app.settings import Settings
from app.training.job import TrainResult
from tests.assignment.test_api import without_fast_path
from tests.conftest import ROOT

SCOPES = ("assign", "read", "admin")


def endpoints(version: str, segment: str) -> list[tuple[str, str, str, dict | None]]:
    """Every non-health operation of the contract: (method, path, scope, json body)."""
    doc = orjson.loads((ROOT / "openapi" / "openapi.json").read_bytes())
    found = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            scope = op.get("x-required-scope")
            if path in ("/healthz", "/readyz") or path == "/metrics":
                continue
            assert scope in SCOPES, f"{method} {path} declares no scope"
            concrete = path.replace("{version}", version).replace("{segment_id}", segment)
            concrete = concrete.replace("{customer_id}", "c1")
            body = {"name": "x"} if method == "patch" else None
            found.append((method, concrete, scope, body))
    return found


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    folder = tmp_path_factory.mktemp("keys")
    made = {scope: new_key([scope], label=f"{scope} key") for scope in SCOPES}
    path = folder / "keys"
    path.write_text("\n".join(line for _, line in made.values()) + "\n")
    return {scope: key for scope, (key, _) in made.items()}, path


@pytest.fixture(scope="module")
def client(
    trained: tuple[ModelStore, TrainResult], keys: tuple[dict[str, str], Path]
) -> Iterator[TestClient]:
    store, _ = trained
    settings = Settings(
        model_store=store.root, model_name="customers", api_keys_file=keys[1], reload_interval=0.1
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_every_endpoint_refuses_no_key_and_the_wrong_scope(
    client: TestClient, trained: tuple[ModelStore, TrainResult], keys: tuple[dict[str, str], Path]
) -> None:
    _, result = trained
    by_scope, _ = keys
    version, segment = result.manifest.version, result.manifest.segments[0].id
    checked = endpoints(version, segment)
    assert len(checked) >= 8
    for method, path, scope, body in checked:
        response = client.request(method, path, json=body)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
        for other in SCOPES:
            if other == scope:
                continue
            response = client.request(
                method, path, json=body, headers={"authorization": f"Bearer {by_scope[other]}"}
            )
            assert response.status_code == 403, (method, path, other, response.text)
            assert scope in response.json()["detail"]
        # a wrong key of the right shape is a 401, not a 403
        forged = by_scope[scope][:-4] + "AAAA"
        response = client.request(method, path, json=body, headers={"x-api-key": forged})
        assert response.status_code == 401


@pytest.mark.parametrize(
    ("root", "fast"),
    [("", True), ("/api", True), ("", False)],  # the fast path (also under a root_path); routes
)
@pytest.mark.parametrize("path", ["/v1/assign", "/v1/assign/batch"])
def test_the_key_is_checked_before_the_body_is_read(
    trained: tuple[ModelStore, TrainResult],
    keys: tuple[dict[str, str], Path],
    root: str,
    fast: bool,
    path: str,
) -> None:
    store, _ = trained
    settings = Settings(model_store=store.root, model_name="customers", api_keys_file=keys[1])
    received: list[str] = []

    def body() -> Iterator[bytes]:  # streamed: each chunk is read only when asked for
        received.append("chunk")
        yield b"not json at all"

    app = create_app(settings) if fast else without_fast_path(create_app(settings))
    with TestClient(app, root_path=root) as client:
        response = client.post(f"{root}{path}", content=body())
        assert response.status_code == 401, response.text
        assert received == []
        read = keys[0]["read"]
        response = client.post(f"{root}{path}", content=body(), headers={"x-api-key": read})
        assert response.status_code == 403
        assert received == []
        good = {"x-api-key": keys[0]["assign"]}
        response = client.post(f"{root}{path}", content=body(), headers=good)
        assert response.status_code == 400  # authorised, then the body is read: malformed
        assert received == ["chunk"]


@pytest.mark.parametrize("content", [b"{not json", b'{"name": "\xff"}'])
def test_every_endpoint_checks_the_key_before_saying_its_body_is_malformed(
    client: TestClient,
    trained: tuple[ModelStore, TrainResult],
    keys: tuple[dict[str, str], Path],
    content: bytes,
) -> None:
    """FastAPI parses a declared body (``PATCH /v1/segments/{id}``, ``POST /v1/webhooks``)
    before the route's key check: a body it could not parse (bad JSON, not UTF-8) answered
    400 to a caller with no key or another scope's. Found by the hostile audit."""
    _, result = trained
    by_scope, _ = keys
    version, segment = result.manifest.version, result.manifest.segments[0].id
    sent = {"content-type": "application/json"}
    with_body = [e for e in endpoints(version, segment) if e[0] in ("post", "put", "patch")]
    assert {("patch", f"/v1/segments/{segment}"), ("post", "/v1/webhooks")} <= {
        (method, path) for method, path, _, _ in with_body
    }
    for method, path, scope, _ in with_body:
        response = client.request(method, path, content=content, headers=sent)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        other = next(s for s in SCOPES if s != scope)
        wrong = {**sent, "x-api-key": by_scope[other]}
        response = client.request(method, path, content=content, headers=wrong)
        assert response.status_code == 403, (method, path, other, response.text)
    right = {**sent, "x-api-key": by_scope["admin"]}
    response = client.post("/v1/webhooks", content=content, headers=right)
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "/problems/malformed-json"


BAD_BODIES = {  # what is wrong with the body -> (headers, content, the answer with a good key)
    "type": ({"content-type": "text/plain"}, b"{}", 415),
    "encoding": ({"content-type": "application/json", "content-encoding": "gzip"}, b"{}", 415),
    "size": ({"content-type": "application/json"}, b"{" + b" " * 2048 + b"}", 413),
    "streamed size": ({"content-type": "application/json"}, None, 413),
}


@pytest.mark.parametrize("bad", list(BAD_BODIES))
def test_the_key_is_decided_before_the_body_s_type_encoding_or_size(
    trained: tuple[ModelStore, TrainResult], keys: tuple[dict[str, str], Path], bad: str
) -> None:
    """A caller with no key, or another scope's, got 415 or 413 for a body of the wrong type,
    encoding or size before its 401 or 403 (``BodyChecks`` answered in front of every key
    check): it learnt what each endpoint accepts without any key. The key is decided first,
    on every endpoint that takes a body, the fast path's included; and a body counted too
    large as it streams into a routed endpoint's parse is a 413, where it was a 400 saying
    only "There was an error parsing the body". A refused body changes nothing."""
    store, result = trained
    by_scope, path = keys
    settings = Settings(
        model_store=store.root, model_name="customers", api_keys_file=path, max_body_bytes=1024
    )
    headers, content, refused = BAD_BODIES[bad]
    version, segment = result.manifest.version, result.manifest.segments[0].id
    taking = [e for e in endpoints(version, segment) if e[0] in ("post", "put", "patch", "delete")]
    assert {"/v1/assign", "/v1/assign/batch", "/v1/events", "/v1/webhooks"} <= {
        e[1] for e in taking
    }
    with TestClient(create_app(settings)) as client:
        name = client.get(f"/v1/segments/{segment}", headers={"x-api-key": by_scope["read"]})
        for method, where, scope, _ in taking:
            other = next(s for s in SCOPES if s != scope)
            for key, expected in ((None, 401), (by_scope[other], 403), (by_scope[scope], refused)):
                sent = {**headers, **({"x-api-key": key} if key else {})}
                body = content if content is not None else (b" " * 512 for _ in range(4))
                answer = client.request(method, where, content=body, headers=sent)
                assert answer.status_code == expected, (bad, method, where, key, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
                if expected == refused:
                    field = "body" if refused == 413 else f"content-{bad}"
                    assert answer.json()["errors"][0]["field"] == field, answer.text
        same = client.get(f"/v1/segments/{segment}", headers={"x-api-key": by_scope["read"]})
        assert same.json() == name.json()  # the PATCHes changed nothing
        listed = client.get("/v1/webhooks", headers={"x-api-key": by_scope["admin"]}).json()
        assert listed["webhooks"] == []  # nor did the POSTs create a subscription
        # the dashboard's changes sign a visitor in before reading the form
        body = content if content is not None else b" " * 2048
        where = f"/ui/models/{version}/promote"
        answer = client.post(where, content=body, headers=headers, follow_redirects=False)
        assert answer.status_code == 303 and "/ui/sign-in" in answer.headers["location"]


@pytest.mark.parametrize("path", ["/v1/assign", "/v1/webhooks"])
def test_a_client_waiting_to_send_a_refused_body_is_answered_before_it_sends_it(
    trained: tuple[ModelStore, TrainResult], keys: tuple[dict[str, str], Path], path: str
) -> None:
    """A client that asks ``Expect: 100-continue`` (curl, for a body over 1 MB) is answered
    413 without being told to send its body: the refusal deferred until the key is decided
    first asked the server for the body, which told the client to go on and upload it."""
    import socket
    from urllib.parse import urlsplit

    from tests.serving.test_hot_swap import serving

    store, _ = trained
    by_scope, file = keys
    settings = Settings(
        model_store=store.root, model_name="customers", api_keys_file=file, max_body_bytes=1024
    )
    key = by_scope["assign" if path == "/v1/assign" else "admin"]
    with serving(settings) as url:
        where = urlsplit(url)
        with socket.create_connection((where.hostname, where.port), timeout=20) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n"
                "Content-Type: application/json\r\nContent-Length: 50000000\r\n"
                "Expect: 100-continue\r\n\r\n".encode()
            )
            head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 413 "), head[:200]
    assert b"body-too-large" in head or b"content-length" in head.lower()


def test_an_endpoint_that_changes_something_refuses_a_parameter_it_does_not_read(
    client: TestClient,
    trained: tuple[ModelStore, TrainResult],
    keys: tuple[dict[str, str], Path],
    customers: tuple[Any, Any],
) -> None:
    """A query parameter an endpoint does not read was dropped unread: ``?rescor=true``
    promoted without the rescore asked for, ``?modle=NAME`` assigned and recorded in the
    default model, ``?since=`` on a rescore rescored every customer. An endpoint that changes
    something refuses one, naming what it reads and the one it may be meant for; nothing is
    changed. A reading endpoint still ignores one (a cache buster, say)."""
    from tests.assignment.test_api import features_of

    store, result = trained
    by_scope, _ = keys
    model = result.manifest.model_name
    admin, assign = {"x-api-key": by_scope["admin"]}, {"x-api-key": by_scope["assign"]}
    features = features_of(customers[0].drop(columns=["customer_id"]).iloc[0])
    names = {f.name for f in result.manifest.features}
    features = {k: v for k, v in features.items() if k in names}
    kept = f"q-{uuid.uuid4().hex[:8]}"
    assert client.post(
        "/v1/assign", json={"customer_id": kept, "features": features}, headers=assign
    ).is_success
    promoted = store.promoted(model)

    def refused(answer: Any, name: str, near: str | None, reads: str) -> None:
        assert answer.status_code == 422, answer.text
        hint = f"; did you mean {near!r}?" if near else ""
        assert answer.json()["errors"] == [
            {
                "field": name,
                "message": f"unknown query parameter{hint} (this endpoint reads {reads})",
            }
        ]

    version = result.manifest.version
    answer = client.post(f"/v1/models/{version}/promote?rescor=true", headers=admin)
    refused(answer, "rescor", "rescore", "?model=, ?rescore=")
    assert store.promoted(model) == promoted
    other = f"q-{uuid.uuid4().hex[:8]}"
    answer = client.post(
        "/v1/assign?modle=x", json={"customer_id": other, "features": features}, headers=assign
    )
    refused(answer, "modle", "model", "?explain=, ?model=")
    assert (
        client.get(f"/v1/customers/{other}", headers={"x-api-key": by_scope["read"]}).status_code
        == 404
    )
    answer = client.delete(f"/v1/customers/{kept}?modle=x", headers=admin)
    refused(answer, "modle", "model", "?model=")
    assert client.get(f"/v1/customers/{kept}", headers={"x-api-key": by_scope["read"]}).is_success
    answer = client.post("/v1/events?model=customers&x=1", json={"events": []}, headers=assign)
    refused(answer, "x", None, "?model=")
    # reading: ignored; an option of the other assign endpoint's: read (always explained)
    assert client.get("/v1/segments?_=123", headers={"x-api-key": by_scope["read"]}).is_success
    answer = client.post("/v1/assign?explain=true", json={"customer_id": kept}, headers=assign)
    assert answer.is_success, answer.text
    # the key first: a caller without one learns nothing of the parameters
    long_model = "m" * 300
    assert client.post(f"/v1/events?model={long_model}", json={"events": []}).status_code == 401
    assert client.post("/v1/assign?modle=x", json={"customer_id": kept}).status_code == 401


def test_a_request_refused_for_its_parameters_counts_once_against_the_rate_limit(
    trained: tuple[ModelStore, TrainResult], tmp_path: Path
) -> None:
    """The key is checked once per request: a parameter refused after the key check was
    checked (and counted) again by the handler of the refusal."""
    store, result = trained
    limited, line = new_key(["read"])
    settings = Settings(
        model_store=store.root,
        api_keys=line,
        rate_limit_per_minute=3,
        key_prefix=f"rl{tmp_path.name[-8:]}:",
        data_dir=tmp_path,
    )
    segment = result.manifest.segments[0].id
    with TestClient(create_app(settings)) as client:
        while time.time() % 60 > 50:  # keep the requests inside one fixed window
            time.sleep(0.5)
        sent = {"x-api-key": limited}
        codes = [
            client.get(f"/v1/segments/{segment}/members?limit=abc", headers=sent).status_code
            for _ in range(3)
        ]
        assert codes == [422, 422, 422]
        assert client.get("/v1/models", headers=sent).status_code == 429


def test_the_right_scope_gets_through_by_either_header(
    client: TestClient, keys: tuple[dict[str, str], Path]
) -> None:
    by_scope, _ = keys
    assert client.get("/v1/segments", headers={"x-api-key": by_scope["read"]}).status_code == 200
    response = client.get("/v1/models", headers={"authorization": f"bearer {by_scope['read']}"})
    assert response.status_code == 200
    response = client.post(
        "/v1/assign", json={"customer_id": "c"}, headers={"x-api-key": by_scope["assign"]}
    )
    assert response.status_code == 404  # authorised, then looked up: no stored profile
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_blanks_around_a_key_are_ignored_in_either_header(
    client: TestClient, keys: tuple[dict[str, str], Path]
) -> None:
    read = keys[0]["read"]
    for header in (
        {"x-api-key": f"{read}  "},
        {"x-api-key": f" {read}"},
        {"authorization": f"Bearer {read}  "},
    ):
        assert client.get("/v1/segments", headers=header).status_code == 200, header
    # a blank inside the key is part of what is compared
    response = client.get("/v1/segments", headers={"x-api-key": f"{read[:10]} {read[10:]}"})
    assert response.status_code == 401


def test_two_different_keys_in_one_request_are_refused(
    client: TestClient, keys: tuple[dict[str, str], Path]
) -> None:
    """A valid key does not carry a bogus or revoked one beside it, whichever header is read
    first; the same key in both headers is one key."""
    by_scope, _ = keys
    read = by_scope["read"]
    forged = read[:-4] + "AAAA"
    for headers in (
        [("authorization", f"Bearer {read}"), ("x-api-key", forged)],
        [("x-api-key", forged), ("authorization", f"Bearer {read}")],
        [("authorization", f"Bearer {read}"), ("x-api-key", by_scope["admin"])],
        [("x-api-key", read), ("x-api-key", forged)],
        [("authorization", f"Bearer {read}"), ("authorization", f"Bearer {forged}")],
        [("authorization", f"Bearer\t{forged}"), ("x-api-key", read)],
    ):
        for path in ("/v1/segments", "/v1/assign"):
            response = client.request(
                "GET" if path == "/v1/segments" else "POST",
                path,
                headers=headers,
                content=b'{"customer_id": "c"}',
            )
            assert response.status_code == 401, (headers, path, response.text)
            assert "two different API keys" in response.json()["detail"]
    for headers in (
        [("authorization", f"Bearer {read}"), ("x-api-key", f" {read} ")],
        [("authorization", "Basic dXNlcjpwYXNz"), ("x-api-key", read)],
        [("authorization", "Bearer "), ("x-api-key", read)],
    ):
        assert client.get("/v1/segments", headers=headers).status_code == 200, headers


def test_a_revoked_key_stops_working_after_reload(
    trained: tuple[ModelStore, TrainResult], tmp_path: Path
) -> None:
    store, _ = trained
    keep, keep_line = new_key(["read"])
    revoke, revoke_line = new_key(["read"])
    path = tmp_path / "keys"
    path.write_text(f"{keep_line}\n{revoke_line}\n")
    settings = Settings(
        model_store=store.root, model_name="customers", api_keys_file=path, reload_interval=0.05
    )
    with TestClient(create_app(settings)) as test_client:
        assert test_client.get("/v1/segments", headers={"x-api-key": revoke}).status_code == 200
        path.write_text(f"{keep_line}\n# revoked: {revoke_line.split(':')[0]}\n")
        test_client.app.state.keys.reload()  # what the watcher does every reload_interval
        assert test_client.get("/v1/segments", headers={"x-api-key": revoke}).status_code == 401
        assert test_client.get("/v1/segments", headers={"x-api-key": keep}).status_code == 200


def test_keys_never_appear_in_logs_or_responses(
    client: TestClient, keys: tuple[dict[str, str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    by_scope, path = keys
    caplog.set_level(logging.DEBUG)
    bodies = []
    for key in by_scope.values():
        for header in ({"x-api-key": key}, {"authorization": f"Bearer {key}"}):
            for method, target in (
                ("get", "/v1/segments"),
                ("get", "/v1/models"),
                ("post", "/v1/assign"),
            ):
                response = client.request(method, target, headers=header, json={})
                bodies.append(response.text + str(response.headers))
    text = "\n".join(bodies) + caplog.text
    for key in by_scope.values():
        assert key not in text
        assert key.split("_", 2)[2] not in text  # the secret (token_urlsafe may hold "_")
    assert "sk_" not in path.read_text()  # only hashes are stored


def test_no_keys_and_no_dev_mode_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SEGMENTS_API_KEYS", "SEGMENTS_API_KEYS_FILE", "SEGMENTS_DEV_MODE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="no API keys configured"):
        create_app(Settings(model_store=tmp_path))
    result = CliRunner().invoke(cli, ["serve", "--store", str(tmp_path)])
    assert result.exit_code == 2
    assert "no API keys configured" in result.output


def test_development_mode_beside_configured_keys_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SEGMENTS_DEV_MODE=true turned authentication off even with keys configured: a
    deployment that set its keys and kept the development flag of a local try (an .env that
    docker-compose passes through) answered every request without a key, its only sign a
    line in the log (hostile audit). The two together are refused at start, naming both."""
    for name in ("SEGMENTS_API_KEYS", "SEGMENTS_API_KEYS_FILE", "SEGMENTS_DEV_MODE"):
        monkeypatch.delenv(name, raising=False)
    _, entry = new_key(["read"])
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(entry + "\n")
    for keys in ({"api_keys": entry}, {"api_keys_file": keys_file}):
        with pytest.raises(ValueError, match="SEGMENTS_DEV_MODE=true turns authentication off"):
            create_app(Settings(model_store=tmp_path, dev_mode=True, **keys))
    monkeypatch.setenv("SEGMENTS_DEV_MODE", "true")
    monkeypatch.setenv("SEGMENTS_API_KEYS_FILE", str(keys_file))
    result = CliRunner().invoke(cli, ["serve", "--store", str(tmp_path)])
    assert result.exit_code == 2
    shown = " ".join(result.output.split())
    assert "SEGMENTS_DEV_MODE=true turns authentication off" in shown, result.output
    # blank keys are no keys: development mode runs (test_keys_that_hold_no_entry_...)


@pytest.mark.parametrize("blank", ["", " "])
def test_an_empty_keys_file_variable_is_no_keys_file(
    tmp_path: Path, blank: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SEGMENTS_API_KEYS_FILE=`` (a compose file's ``${SEGMENTS_API_KEYS_FILE:-}``, an .env
    line left empty) was the path '.', a keys file configured: development mode beside it
    refused to start, saying keys were configured, while an empty SEGMENTS_API_KEYS is no
    keys; without development mode the service started reading its keys from a folder."""
    for name in ("SEGMENTS_API_KEYS", "SEGMENTS_API_KEYS_FILE", "SEGMENTS_DEV_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SEGMENTS_API_KEYS_FILE", blank)
    assert Settings(model_store=tmp_path).api_keys_file is None
    Settings(model_store=tmp_path, dev_mode=True).check_serving()  # runs
    with pytest.raises(ValueError, match="no API keys configured"):
        Settings(model_store=tmp_path).check_serving()


@pytest.mark.parametrize("blank", [" ", ",", " , ,", "# no key yet"])
def test_keys_that_hold_no_entry_are_no_keys_and_refuse_to_start(
    trained: tuple[ModelStore, TrainResult],
    blank: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by an outside tester: ``SEGMENTS_API_KEYS=" "`` (or ``","``) started the
    service with no key at all, every request a 401, where the docs say that without keys it
    refuses to start."""
    store, result = trained
    for name in ("SEGMENTS_API_KEYS", "SEGMENTS_API_KEYS_FILE", "SEGMENTS_DEV_MODE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="no API keys configured") as refused:
        create_app(Settings(model_store=store.root, api_keys=blank))
    assert f"SEGMENTS_API_KEYS={blank!r} holds no key entry" in str(refused.value)
    monkeypatch.setenv("SEGMENTS_API_KEYS", blank)
    served = CliRunner().invoke(cli, ["serve", "--store", str(store.root)])
    assert served.exit_code == 2
    shown = " ".join(served.output.split())
    assert "no API keys configured: SEGMENTS_API_KEYS=" in shown and "holds no key" in shown
    # development mode still runs without keys, and answers
    quiet: dict[str, Any] = {"record_assignments": False, "data_dir": tmp_path}
    settings = Settings(model_store=store.root, api_keys=blank, dev_mode=True, **quiet)
    with TestClient(create_app(settings)) as client:
        answer = client.get("/v1/segments")
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == result.manifest.version
    # a blank entry beside a real key is nothing but that key
    key, line = new_key(["read"])
    settings = Settings(model_store=store.root, api_keys=f" ,{line}, ", **quiet)
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/segments", headers={"X-API-Key": key}).status_code == 200


def test_keys_create_prints_the_key_once_and_stores_a_hash(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    result = CliRunner().invoke(cli, ["keys", "create", "-s", "assign,read", "--append", str(path)])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("sk_")
    entry = path.read_text().strip()
    assert key not in entry
    key_id, digest, scopes = entry.split(":")
    assert key.split("_")[1] == key_id
    assert scopes == "assign+read"
    assert len(digest) == 64
    assert oct(path.stat().st_mode)[-3:] == "600"
    bad = CliRunner().invoke(cli, ["keys", "create", "-s", "root"])
    assert bad.exit_code == 2
    assert "unknown scope" in bad.output


@pytest.mark.parametrize("label", ["ops, on-call", "two\nlines", "a # note", "tab\there"])
def test_keys_create_refuses_a_label_no_keys_line_can_hold(tmp_path: Path, label: str) -> None:
    """Found by an audit: a comma or a line break in the label printed (and appended) a line
    the service refuses at start: `SEGMENTS_API_KEYS line 1: expected <id>:<sha256-hex>`."""
    path = tmp_path / "keys"
    result = CliRunner().invoke(cli, ["keys", "create", "-s", "read", "--label", label])
    assert result.exit_code == 2 and "the label" in result.output, result.output
    appended = ["keys", "create", "-s", "read", "--label", label, "--append", str(path)]
    assert CliRunner().invoke(cli, appended).exit_code == 2
    assert not path.exists()  # nothing half-written
    fine = CliRunner().invoke(cli, ["keys", "create", "-s", "read", "--label", "ops: on-call"])
    assert fine.exit_code == 0
    line = fine.output.split("SEGMENTS_API_KEYS='")[1].split("'")[0]
    assert [e.label for e in parse_entries(line, "SEGMENTS_API_KEYS").values()] == ["ops: on-call"]


def test_keys_create_appends_a_whole_line_to_a_file_without_a_last_line_break(
    tmp_path: Path,
) -> None:
    """Found by an audit: appended to a keys file whose last line had no line break, the new
    entry became the previous line's label: the new key was refused and nothing said so."""
    path = tmp_path / "keys"
    _, old = new_key(["admin"], label="old")
    path.write_text(old)  # no line break at the end
    result = CliRunner().invoke(cli, ["keys", "create", "-s", "read", "--append", str(path)])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[-1]
    entries = parse_entries(path.read_text(), str(path))
    assert len(entries) == 2 and [e.label for e in entries.values()] == ["old", ""]
    assert path.read_text().endswith("\n")
    assert any(hash_key(key) == e.digest.hex() for e in entries.values())


def test_rate_limit_per_key_is_shared_and_says_when_to_retry(
    trained: tuple[ModelStore, TrainResult], tmp_path: Path
) -> None:
    store, _ = trained
    limited, limited_line = new_key(["read"])
    other, other_line = new_key(["read"])
    settings = Settings(
        model_store=store.root,
        api_keys=f"{limited_line},{other_line}",
        rate_limit_per_minute=5,
        key_prefix=f"rl{tmp_path.name[-8:]}:",
        data_dir=tmp_path,
    )
    # two app instances stand for two workers sharing one Redis
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
        while time.time() % 60 > 50:  # keep the requests inside one fixed window
            time.sleep(0.5)
        codes = [
            (one if i % 2 else two).get("/v1/models", headers={"x-api-key": limited}).status_code
            for i in range(5)
        ]
        assert codes[:5] == [200] * 5
        refused = one.get("/v1/models", headers={"x-api-key": limited})
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 61
        assert refused.headers["content-type"] == "application/problem+json"
        assert one.get("/v1/models", headers={"x-api-key": other}).status_code == 200


def test_the_rate_limit_works_with_recording_off(
    trained: tuple[ModelStore, TrainResult], tmp_path: Path
) -> None:
    store, _ = trained
    limited, line = new_key(["read"])
    settings = Settings(
        model_store=store.root,
        api_keys=line,
        rate_limit_per_minute=3,
        record_assignments=False,  # the limiter opens the app's Redis for itself
        key_prefix=f"rl{tmp_path.name[-8:]}:",
        data_dir=tmp_path,
    )
    with TestClient(create_app(settings)) as client:
        while time.time() % 60 > 50:  # keep the requests inside one fixed window
            time.sleep(0.5)
        codes = [client.get("/v1/models", headers={"x-api-key": limited}).status_code]
        codes += [client.get("/v1/models", headers={"x-api-key": limited}).status_code]
        codes += [client.get("/v1/models", headers={"x-api-key": limited}).status_code]
        assert codes == [200, 200, 200]
        assert client.get("/v1/models", headers={"x-api-key": limited}).status_code == 429
        assert client.app.state.history is None  # type: ignore[attr-defined]


def test_history_and_the_rate_limit_share_the_apps_one_redis_client(
    trained: tuple[ModelStore, TrainResult], tmp_path: Path
) -> None:
    store, _ = trained
    _, line = new_key(["read"])
    settings = Settings(
        model_store=store.root, api_keys=line, rate_limit_per_minute=3, data_dir=tmp_path
    )
    with TestClient(create_app(settings)) as client:
        state = client.app.state  # type: ignore[attr-defined]
        assert state.rate_limiter.client is state.history.recorder.client


@pytest.mark.parametrize("record", [True, False])
def test_a_rate_limit_without_redis_fails_at_start(
    trained: tuple[ModelStore, TrainResult], tmp_path: Path, record: bool
) -> None:
    from tests.history.conftest import free_port

    store, _ = trained
    _, line = new_key(["read"])
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings = Settings(
        model_store=store.root,
        api_keys=line,
        rate_limit_per_minute=3,
        record_assignments=record,
        redis_url=nowhere,
        data_dir=tmp_path,
    )
    refused = pytest.raises(RateLimitWithoutRedis, match="SEGMENTS_RATE_LIMIT_PER_MINUTE is set")
    with refused, TestClient(create_app(settings)):
        pass
    # without the limit, the same Redis being down is no reason not to start (spooling)
    settings = settings.model_copy(update={"rate_limit_per_minute": None})
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200


def test_redis_down_answers_never_name_its_address(
    trained: tuple[ModelStore, TrainResult], tmp_path: Path
) -> None:
    """Found by an audit: a 503 said "Error 111 connecting to 127.0.0.1:6392. Connection
    refused." to any key holder (history reads, members, forget, drift, the dashboard). The
    answers say what went wrong, never where Redis is; the service's log keeps the address."""
    from tests.history.conftest import free_port

    store, _ = trained
    port = free_port()
    settings = Settings(
        model_store=store.root,
        dev_mode=True,
        redis_url=f"redis://127.0.0.1:{port}/0",  # nothing listens there
        data_dir=tmp_path,
    )
    with TestClient(create_app(settings)) as client:
        segment = client.get("/v1/segments").json()["segments"][0]["id"]
        answers = [
            client.get("/v1/customers/C1"),
            client.get("/v1/customers/C1/history"),
            client.get(f"/v1/segments/{segment}/members"),
            client.delete("/v1/customers/C1"),
            client.get("/v1/drift"),
            client.get("/ui/customers", params={"customer_id": "C1"}),
        ]
    for answer in answers:
        assert answer.status_code == 503, (answer.request.url, answer.text)
        assert str(port) not in answer.text and "127.0.0.1" not in answer.text, answer.text
        if answer.headers["content-type"].startswith("application/problem+json"):
            detail = answer.json()["detail"]
            assert detail.endswith(
                ("Redis refused the connection", "the connection to Redis failed")
            ), detail
