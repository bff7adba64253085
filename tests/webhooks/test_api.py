"""``/v1/webhooks`` over HTTP: subscriptions (admin only), bad input, status, replay, and an
assignment through the service reaching a real receiver."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.main import create_app
from app.registry.store import ModelStore
from app.security import new_key
from app.settings import Settings
from app.training.job import TrainResult
from tests.history.test_api import segment_features
from tests.webhooks.conftest import Receiver

KEYS = {scope: new_key([scope]) for scope in ("admin", "read", "assign")}


def headers(scope: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[scope][0]}"}


def settings(store: Path, tmp_path: Path, **changes: Any) -> Settings:
    base: dict[str, Any] = {
        "model_store": store,
        "api_keys": ",".join(line for _, line in KEYS.values()),
        "key_prefix": f"w{uuid.uuid4().hex[:8]}:",
        "data_dir": tmp_path,
        "webhook_allow_private": True,
        "webhook_allow_http_hosts": "127.0.0.1",
        "webhook_batch_wait_ms": 10,
    }
    return Settings(**{**base, **changes})


@pytest.fixture
def client(trained: tuple[ModelStore, TrainResult], tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings(trained[0].root, tmp_path))) as test_client:
        yield test_client


def create(client: TestClient, body: dict[str, Any]) -> Any:
    return client.post("/v1/webhooks", json=body, headers=headers("admin"))


def test_subscriptions_are_admin_only_and_the_secret_is_shown_once(client: TestClient) -> None:
    body = {"url": "http://127.0.0.1:9/hook", "segments": ["seg-001"], "description": "CRM"}
    for scope in ("read", "assign"):
        refused = client.post("/v1/webhooks", json=body, headers=headers(scope))
        assert refused.status_code == 403
        assert client.get("/v1/webhooks", headers=headers(scope)).status_code == 403
    created = create(client, body)
    assert created.status_code == 201, created.text
    sub = created.json()
    assert sub["secret"].startswith("whsec_")
    assert sub["events"] == ["segment.entered", "segment.exited"]
    assert sub["models"] == ["customers"]  # the model of its segment ids, not every model's
    assert sub["status"]["state"] == "active" and sub["status"]["backlog"] == 0
    one = client.get(f"/v1/webhooks/{sub['id']}", headers=headers("admin")).json()
    listed = client.get("/v1/webhooks", headers=headers("admin")).json()["webhooks"]
    assert one["secret"] is None and [w["id"] for w in listed] == [sub["id"]]
    assert listed[0]["secret"] is None

    patched = client.patch(
        f"/v1/webhooks/{sub['id']}",
        json={
            "paused": True,
            "segments": None,
            "events": ["segment.exited"],
            "models": ["customers"],
        },
        headers=headers("admin"),
    ).json()
    assert (patched["paused"], patched["segments"], patched["events"], patched["models"]) == (
        True,
        None,
        ["segment.exited"],
        ["customers"],
    )
    assert patched["status"]["state"] == "paused"
    for loose in ("no", "off", 0, "false"):  # the audit's: "yes" paused, 0 resumed
        refused = client.patch(
            f"/v1/webhooks/{sub['id']}", json={"paused": loose}, headers=headers("admin")
        )
        assert refused.status_code == 422, (loose, refused.text)
        assert [e["field"] for e in refused.json()["errors"]] == ["paused"]
    still = client.get(f"/v1/webhooks/{sub['id']}", headers=headers("admin")).json()
    assert still["paused"] is True  # nothing applied
    replay = client.post(f"/v1/webhooks/{sub['id']}/replay", headers=headers("admin"))
    assert replay.json() == {"replayed": 0, "re_enabled": False}
    attempts = client.get(f"/v1/webhooks/{sub['id']}/attempts", headers=headers("admin"))
    assert attempts.json() == {"attempts": []}
    assert client.delete(f"/v1/webhooks/{sub['id']}", headers=headers("admin")).status_code == 204
    gone = client.get(f"/v1/webhooks/{sub['id']}", headers=headers("admin"))
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "status", "field", "says"),
    [
        ({"url": "http://hooks.example.com/x"}, 403, "url", "https"),
        ({"url": "ftp://hooks.example.com/x"}, 422, "url", "not an http(s) URL"),
        ({"url": "https://user:pw@hooks.example.com/x"}, 422, "url", "without credentials"),
        ({"url": "https://127.0.0.1/x"}, 403, "url", "loopback"),
        ({"url": "https://10.1.2.3/x"}, 403, "url", "private"),
        ({"url": "https://169.254.169.254/latest"}, 403, "url", "link-local"),
        ({"url": "https://[::1]/x"}, 403, "url", "loopback"),
        ({"url": "https://[::ffff:10.0.0.1]/x"}, 403, "url", "private"),
        # not globally routable, or an IPv6 address carrying such an IPv4 one (an audit
        # reached the carrier-grade NAT range, where a cloud keeps its metadata service)
        ({"url": "https://100.100.100.200/latest/meta-data/"}, 403, "url", "private"),
        ({"url": "https://100.64.0.1/x"}, 403, "url", "private"),
        ({"url": "https://[::ffff:100.100.100.200]/x"}, 403, "url", "private"),
        ({"url": "https://[2002:7f00:1::]/x"}, 403, "url", "private"),
        ({"url": "https://[64:ff9b::a00:1]/x"}, 403, "url", "private"),
        ({"url": "https://a:99999/x"}, 403, "url", "not a URL"),
        ({"url": "https://a.example/x", "events": ["segment.moved"]}, 422, "events", ""),
        ({"url": "https://a.example/x", "events": []}, 422, "events", ""),
        ({"url": "https://a.example/x", "secret": "mine"}, 422, "secret", ""),
        ({"url": "https://a.example/x", "models": [""]}, 422, "models", ""),
        ({"url": "https://a.example/x", "models": ["m" * 101]}, 422, "models", ""),
        # an empty filter matches nothing: a subscription that never fires (found by the audit)
        ({"url": "https://a.example/x", "models": []}, 422, "models", ""),
        ({"url": "https://a.example/x", "segments": []}, 422, "segments", ""),
    ],
)
def test_bad_subscriptions_are_refused_naming_the_field(
    trained: tuple[ModelStore, TrainResult],
    tmp_path: Path,
    body: dict[str, Any],
    status: int,
    field: str,
    says: str,
) -> None:
    strict = settings(trained[0].root, tmp_path, webhook_allow_private=False)
    strict = strict.model_copy(update={"webhook_allow_http_hosts": ""})
    with TestClient(create_app(strict)) as client:
        answer = create(client, body)
        assert answer.status_code == status, answer.text
        problem = answer.json()
        assert field in problem["errors"][0]["field"]
        assert says in problem["detail"]
        assert client.get("/v1/webhooks", headers=headers("admin")).json() == {"webhooks": []}
        if status == 403:  # a PATCH to such a URL is refused the same way
            allowed = create(client, {"url": "https://93.184.215.14/x"}).json()["id"]
            patch = {"url": body["url"]}
            answer = client.patch(f"/v1/webhooks/{allowed}", json=patch, headers=headers("admin"))
            assert answer.status_code == 403 and says in answer.json()["detail"]


def test_a_patch_cannot_null_what_must_be_set(client: TestClient) -> None:
    sub = create(client, {"url": "http://127.0.0.1:9/hook"}).json()
    for name in ("url", "events", "paused", "description"):
        answer = client.patch(
            f"/v1/webhooks/{sub['id']}", json={name: None}, headers=headers("admin")
        )
        assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == name
    empty = client.patch(f"/v1/webhooks/{sub['id']}", json={}, headers=headers("admin"))
    assert empty.status_code == 422


def test_an_assignment_reaches_the_receiver_with_names(
    client: TestClient, trained: tuple[ModelStore, TrainResult], customers: Any
) -> None:
    receiver = Receiver().start()
    try:
        sub = create(client, {"url": receiver.url}).json()
        a, b = segment_features(trained, customers)[:2]
        for features in (a, b):
            answer = client.post(
                "/v1/assign",
                json={"customer_id": "c-42", "features": features},
                headers=headers("assign"),
            )
            assert answer.status_code == 200 and answer.json()["recorded"], answer.text
        deadline = time.monotonic() + 30
        while len(receiver.delivered_ids()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        events = [e for r in receiver.accepted() for e in r.events()]
        assert [e["type"] for e in events] == [
            "segment.entered",
            "segment.exited",
            "segment.entered",
        ]
        listed = client.get("/v1/segments", headers=headers("read")).json()["segments"]
        names = {s["id"]: s["name"] for s in listed}
        assert events[2]["to_segment"]["name"] == names[events[2]["to_segment"]["id"]]
        assert events[2]["from_segment"] == events[0]["to_segment"]
        served = client.app.state.settings.model_name  # type: ignore[attr-defined]
        assert {e["model"] for e in events} == {served}
        for request in receiver.accepted():
            Webhook(sub["secret"]).verify(request.body, request.headers)
        status = client.get(f"/v1/webhooks/{sub['id']}", headers=headers("admin")).json()
        assert status["status"]["delivered"] == 3 and status["status"]["last_success_at"]
        logged = client.get(f"/v1/webhooks/{sub['id']}/attempts", headers=headers("admin"))
        assert all(a["ok"] and a["status"] == 200 for a in logged.json()["attempts"])
        metrics = client.get("/metrics", headers=headers("read")).text
        assert f'segments_webhook_events_delivered_total{{subscription="{sub["id"]}"}}' in metrics
    finally:
        receiver.stop()


def test_a_secret_is_rotated_with_an_overlap_in_which_both_sign(
    client: TestClient, trained: tuple[ModelStore, TrainResult], customers: Any
) -> None:
    """A leaked or aging secret could only be replaced by deleting the subscription (its
    queue and dead letters with it) and subscribing again, missing the events in between.
    A rotation gives a new secret; the old one signs too for the overlap (two signatures in
    ``webhook-signature``, as Standard Webhooks provides), and ``keep_previous_s=0`` stops
    it at once."""
    receiver = Receiver().start()
    features = segment_features(trained, customers)

    def delivered_after(count: int, customer: str, n: int) -> Any:
        answer = client.post(
            "/v1/assign",
            json={"customer_id": customer, "features": features[n % len(features)]},
            headers=headers("assign"),
        )
        assert answer.status_code == 200 and answer.json()["recorded"], answer.text
        deadline = time.monotonic() + 30
        while len(receiver.accepted()) <= count and time.monotonic() < deadline:
            time.sleep(0.05)
        return receiver.accepted()[-1]

    def verifies(secret: str, request: Any) -> bool:
        try:
            Webhook(secret).verify(request.body, request.headers)
        except WebhookVerificationError:
            return False
        return True

    try:
        first = create(client, {"url": receiver.url}).json()
        path = f"/v1/webhooks/{first['id']}/rotate-secret"
        assert client.post(path, headers=headers("read")).status_code == 403
        assert (
            client.post("/v1/webhooks/wh_0/rotate-secret", headers=headers("admin")).status_code
            == 404
        )
        assert verifies(first["secret"], delivered_after(0, "r-1", 0))
        rotated = client.post(path, headers=headers("admin"))
        assert rotated.status_code == 200, rotated.text
        second = rotated.json()
        assert second["secret"].startswith("whsec_") and second["secret"] != first["secret"]
        assert second["previous_secret_expires_at"] is not None
        shown = client.get(f"/v1/webhooks/{first['id']}", headers=headers("admin")).json()
        assert shown["secret"] is None
        assert shown["previous_secret_expires_at"] == second["previous_secret_expires_at"]
        overlap = delivered_after(1, "r-2", 1)
        assert overlap.headers["webhook-signature"].count("v1,") == 2
        assert verifies(first["secret"], overlap) and verifies(second["secret"], overlap)
        third = client.post(path, params={"keep_previous_s": 0}, headers=headers("admin")).json()
        assert third["previous_secret_expires_at"] is None
        after = delivered_after(2, "r-3", 2)
        assert verifies(third["secret"], after)
        assert not verifies(second["secret"], after) and not verifies(first["secret"], after)
        too_long = client.post(
            path, params={"keep_previous_s": 8 * 86_400}, headers=headers("admin")
        )
        assert (
            too_long.status_code == 422
            and too_long.json()["errors"][0]["field"] == "keep_previous_s"
        )
    finally:
        receiver.stop()


def test_a_stored_subscription_is_read_across_releases() -> None:
    """The rotation added fields to the stored JSON: written always, a dispatcher of the
    release before (``Subscription(**json)``) failed on every subscription during an upgrade.
    They are written only while a rotation's overlap runs, and fields a later release adds
    are left out when read."""
    import orjson

    from app.webhooks.store import Subscription, new_secret

    sub = Subscription("wh_1", "https://x.example/", ["segment.entered"], None, "", False, 1, "s")
    plain = orjson.loads(sub.to_json())
    assert "previous_secret" not in plain and "previous_until" not in plain
    assert Subscription.from_json(orjson.dumps({**plain, "added_later": 1})) == sub
    rotating = Subscription(**{**plain, "previous_secret": new_secret(), "previous_until": 5})
    assert Subscription.from_json(rotating.to_json()) == rotating
