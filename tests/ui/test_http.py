"""The dashboard over plain HTTP: sign-in and its cookie, scopes, CSRF on every change."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

import app.ui
from app.main import create_app
from app.registry.store import ModelStore
from app.security import new_key
from app.settings import Settings
from app.ui.auth import KEY_COOKIE
from tests.serving.test_hot_swap import serving
from tests.ui.conftest import Service
from tests.versions import Versions

PAGES = ("/ui/", "/ui/segments", "/ui/migrations", "/ui/customers")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


@contextmanager
def signed_in(service: Service, role: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.url, timeout=120) as client:
        token = csrf_of(client.get("/ui/sign-in").text)
        answer = client.post("/ui/sign-in", data={"api_key": service.keys[role], "csrf": token})
        assert answer.status_code == 303, answer.text
        yield client


def test_pages_need_a_signed_in_reader(service: Service) -> None:
    with httpx.Client(base_url=service.url, timeout=120) as anonymous:
        for path in PAGES:
            answer = anonymous.get(path)
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/ui/sign-in?next=")
        # an API key in a header is not a dashboard session
        answer = anonymous.get("/ui/", headers={"X-API-Key": service.keys["read"]})
        assert answer.status_code == 303
    with signed_in(service, "read") as reader:
        for path in PAGES:
            answer = reader.get(path)
            assert answer.status_code == 200, (path, answer.text)
            assert "text/html" in answer.headers["content-type"]
            assert "script-src" not in answer.headers["content-security-policy"]
            assert "<script" not in answer.text


def test_the_session_cookie_is_httponly_and_samesite_strict(service: Service) -> None:
    with httpx.Client(base_url=service.url, timeout=120) as client:
        token = csrf_of(client.get("/ui/sign-in").text)
        answer = client.post("/ui/sign-in", data={"api_key": service.keys["read"], "csrf": token})
    cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith(KEY_COOKIE))
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert "path=/ui" in flags
    assert "secure" not in flags  # plain http here; over https the cookie is Secure


def test_sign_in_refuses_bad_keys_and_keys_without_read(service: Service) -> None:
    with httpx.Client(base_url=service.url, timeout=120) as client:
        token = csrf_of(client.get("/ui/sign-in").text)
        for key, says in (
            ("sk_00000000_nope", "not valid"),
            (service.keys["admin_only"], "lacks the &#39;read&#39; scope"),
            (service.keys["assign"], "lacks the &#39;read&#39; scope"),
        ):
            answer = client.post("/ui/sign-in", data={"api_key": key, "csrf": token})
            assert answer.status_code == 401
            assert says in answer.text
            assert KEY_COOKIE not in answer.headers.get("set-cookie", "")


def test_sign_in_needs_the_csrf_token(service: Service) -> None:
    with httpx.Client(base_url=service.url, timeout=120) as client:
        client.get("/ui/sign-in")
        answer = client.post("/ui/sign-in", data={"api_key": service.keys["read"]})
        assert answer.status_code == 403
        assert KEY_COOKIE not in answer.headers.get("set-cookie", "")


@pytest.mark.parametrize("token", [None, "", "0" * 64, "wrong"])
def test_every_change_refuses_a_missing_or_wrong_csrf_token(
    service: Service, token: str | None
) -> None:
    new, segment = service.versions.new, service.versions.segment[service.versions.old][0]
    changes = {
        f"/ui/models/{new}/promote": {"confirm": "yes"},
        "/ui/rollback": {"confirm": "yes"},
        f"/ui/segments/{segment}": {"name": "Renamed by a forged form"},
        "/ui/sign-out": {},
    }
    with signed_in(service, "admin") as admin, service.api("read") as api:
        for path, form in changes.items():
            data = form if token is None else {**form, "csrf": token}
            answer = admin.post(path, data=data)
            assert answer.status_code == 403, path
            assert "CSRF" in answer.text
        assert api.get("/v1/models").json()["promoted"] == service.versions.old
        assert api.get(f"/v1/segments/{segment}").json()["name"] != "Renamed by a forged form"
        assert admin.get("/ui/").status_code == 200  # still signed in


def test_a_reader_cannot_change_anything(service: Service) -> None:
    new, segment = service.versions.new, service.versions.segment[service.versions.old][0]
    with signed_in(service, "read") as reader, service.api("read") as api:
        token = csrf_of(reader.get("/ui/").text)
        assert reader.get(f"/ui/models/{new}/promote").status_code == 403
        answer = reader.post(f"/ui/models/{new}/promote", data={"confirm": "yes", "csrf": token})
        assert answer.status_code == 403
        assert "admin" in answer.text
        answer = reader.post(f"/ui/segments/{segment}", data={"name": "x", "csrf": token})
        assert answer.status_code == 403
        assert api.get("/v1/models").json()["promoted"] == service.versions.old
        page = reader.get(f"/ui/segments/{segment}").text
        assert 'name="name"' not in page  # no edit form for a reader


def test_a_promotion_needs_the_confirmation(service: Service) -> None:
    new = service.versions.new
    with signed_in(service, "admin") as admin, service.api("read") as api:
        confirm = admin.get(f"/ui/models/{new}/promote")
        assert confirm.status_code == 200
        # what moves the customers already recorded (the service only answers anew): a
        # rescore, ticked by default (unticked here: a promotion alone)
        assert 'name="rescore" value="yes" checked' in confirm.text
        token = csrf_of(confirm.text)
        assert admin.post(f"/ui/models/{new}/promote", data={"csrf": token}).status_code == 400
        assert api.get("/v1/models").json()["promoted"] == service.versions.old
        answer = admin.post(f"/ui/models/{new}/promote", data={"csrf": token, "confirm": "yes"})
        assert answer.status_code == 303
        assert api.get("/v1/models").json()["promoted"] == new
        # and back, through the rollback's confirmation
        confirm = admin.get("/ui/rollback")
        assert service.versions.old in confirm.text
        assert 'name="rescore" value="yes" checked' in confirm.text
        form = {"csrf": token, "confirm": "yes", "target": service.versions.old}
        assert admin.post("/ui/rollback", data=form).status_code == 303
        assert api.get("/v1/models").json()["promoted"] == service.versions.old
        # audit (2026-12-07, helper G): the history read "<version> promote at ..."
        page = admin.get("/ui/").text
        assert f"Rolled back to <code>{service.versions.old}</code> at " in page
        assert f"<code>{new}</code> promoted at " in page
        assert " promote at " not in page and " rollback at " not in page


def test_an_edit_shows_field_errors_and_changes_nothing(service: Service) -> None:
    segment = service.versions.segment[service.versions.old][0]
    with signed_in(service, "admin") as admin, service.api("read") as api:
        before = api.get(f"/v1/segments/{segment}").json()
        token = csrf_of(admin.get(f"/ui/segments/{segment}").text)
        answer = admin.post(f"/ui/segments/{segment}", data={"csrf": token, "name": "a\x1bb"})
        assert answer.status_code == 422
        assert "name:" in answer.text
        assert api.get(f"/v1/segments/{segment}").json() == before
        # percent-escapes that are not UTF-8 (a lone surrogate) were stored as U+FFFD
        raw = f"csrf={token}&name=%ED%A0%80x".encode()
        headers = {"content-type": "application/x-www-form-urlencoded"}
        answer = admin.post(f"/ui/segments/{segment}", content=raw, headers=headers)
        assert answer.status_code == 400 and "not UTF-8" in answer.text
        assert api.get(f"/v1/segments/{segment}").json() == before


def test_sign_out_ends_the_session(service: Service) -> None:
    with signed_in(service, "read") as reader:
        token = csrf_of(reader.get("/ui/").text)
        assert reader.post("/ui/sign-out", data={"csrf": token}).status_code == 303
        assert reader.get("/ui/").status_code == 303


def test_a_revoked_key_is_signed_out_at_once(service: Service) -> None:
    with signed_in(service, "read") as reader:
        assert reader.get("/ui/").status_code == 200
        key_id = service.keys["read"].split("_")[1]
        lines = service.keys_file.read_text().splitlines()
        service.keys_file.write_text("".join(f"{x}\n" for x in lines if not x.startswith(key_id)))
        deadline = time.monotonic() + 30  # the keys watcher re-reads the file every 0.1 s
        while reader.get("/ui/").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        answer = reader.get("/ui/")
        assert answer.status_code == 303
        assert "/ui/sign-in" in answer.headers["location"]


def test_form_bodies_are_refused_outside_the_dashboard(service: Service) -> None:
    segment = service.versions.segment[service.versions.old][0]
    with service.api("admin") as api:
        answer = api.patch(f"/v1/segments/{segment}", data={"name": "form"})
        assert answer.status_code == 415


def test_sign_in_sends_back_only_to_dashboard_pages(service: Service) -> None:
    with httpx.Client(base_url=service.url, timeout=120) as client:
        for target, lands in (
            ("/ui/segments", "/ui/segments"),
            ("https://evil.example/", "/ui/"),
            ("//evil.example/ui/", "/ui/"),
            ("/v1/segments", "/ui/"),
        ):
            token = csrf_of(client.get("/ui/sign-in").text)  # (a session has its own token)
            form = {"api_key": service.keys["read"], "csrf": token, "next": target}
            answer = client.post("/ui/sign-in", data=form)
            assert answer.status_code == 303
            assert answer.headers["location"] == lands, target


def test_the_pages_use_no_external_asset(service: Service) -> None:
    static = Path(app.ui.__file__).parent / "static"
    assert sum(p.stat().st_size for p in static.rglob("*") if p.is_file()) < 300_000
    segment = service.versions.segment[service.versions.old][0]
    with signed_in(service, "admin") as admin:
        for path in (
            *PAGES,
            f"/ui/segments/{segment}",
            f"/ui/models/{service.versions.new}/promote",
        ):
            html = admin.get(path).text
            assert not re.search(r'(src|href)="(https?:)?//', html), path
        assert admin.get("/ui/static/ui.css").headers["content-type"].startswith("text/css")


def test_bad_input_gets_a_bounded_error_page(service: Service) -> None:
    with signed_in(service, "read") as reader:
        answer = reader.get("/ui/migrations", params={"since": "yesterday"})
        assert answer.status_code == 422
        assert "since:" in answer.text
        answer = reader.get("/ui/customers", params={"customer_id": "x" * 2000})
        assert answer.status_code == 422
        assert reader.get("/ui/customers", params={"customer_id": "nobody"}).status_code == 404
        for unreadable in ("a\x00b", "a\nb", "a\u202eb"):  # as POST /v1/assign refuses them
            answer = reader.get("/ui/customers", params={"customer_id": unreadable})
            assert answer.status_code == 422, unreadable
            assert "customer_id: contains control characters" in answer.text
        assert reader.get("/ui/segments/seg-999").status_code == 404
        assert reader.get("/ui/models/20990101-000000-abcdef/report").status_code == 404
        assert reader.get("/ui/models/..%2F..%2Fetc/report").status_code == 404
        for answer in (
            reader.get("/ui/segments/seg-999"),
            reader.get("/ui/customers?customer_id=nobody"),
        ):
            assert "text/html" in answer.headers["content-type"]


def test_development_mode_needs_no_sign_in_but_still_checks_csrf(
    versions: Versions, service_redis: str, tmp_path: Path
) -> None:
    store = ModelStore(tmp_path / "store")
    shutil.copytree(versions.store.root, store.root)
    settings = Settings(
        model_store=store.root,
        model_name="customers",
        dev_mode=True,
        access_log=False,
        record_assignments=False,
        data_dir=tmp_path / "data",
    )
    with serving(settings) as url, httpx.Client(base_url=url, timeout=120) as client:
        page = client.get("/ui/segments")
        assert page.status_code == 200
        assert "live counts unavailable" in page.text  # recording is off
        assert client.get("/ui/sign-in").status_code == 303
        promote = f"/ui/models/{versions.new}/promote"
        assert client.post(promote, data={"confirm": "yes"}).status_code == 403
        token = csrf_of(client.get(promote).text)
        answer = client.post(promote, data={"confirm": "yes", "csrf": token})
        assert answer.status_code == 303
        assert store.promoted("customers") == versions.new


def test_a_key_that_loses_read_is_signed_out_and_can_sign_out(service: Service) -> None:
    with signed_in(service, "read") as reader:
        key_id = service.keys["read"].split("_")[1]
        lines = service.keys_file.read_text().splitlines()
        lines = [x.replace(":read:", ":assign:") if x.startswith(key_id) else x for x in lines]
        service.keys_file.write_text("".join(f"{x}\n" for x in lines))
        deadline = time.monotonic() + 30
        while reader.get("/ui/").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reader.get("/ui/").status_code == 303
        token = csrf_of(reader.get("/ui/sign-in").text)
        assert reader.post("/ui/sign-out", data={"csrf": token}).status_code == 303


def test_over_https_the_session_cookie_is_secure(
    versions: Versions, service_redis: str, tmp_path: Path
) -> None:
    key, line = new_key(["read"])
    settings = Settings(
        model_store=versions.store.root,
        model_name="customers",
        api_keys=line,
        access_log=False,
        record_assignments=False,
        data_dir=tmp_path / "data",
    )
    with TestClient(create_app(settings), base_url="https://dashboard.example") as client:
        token = csrf_of(client.get("/ui/sign-in").text)
        answer = client.post(
            "/ui/sign-in", data={"api_key": key, "csrf": token}, follow_redirects=False
        )
        assert answer.status_code == 303
        cookie = next(h for h in answer.headers.get_list("set-cookie") if KEY_COOKIE in h)
        assert "secure" in {part.strip().lower() for part in cookie.split(";")}
        assert client.get("/ui/segments").status_code == 200


def test_each_sign_in_gets_a_new_csrf_token(service: Service) -> None:
    new = service.versions.new
    with signed_in(service, "admin") as admin:
        first = csrf_of(admin.get("/ui/").text)
        assert csrf_of(admin.get("/ui/segments").text) == first  # one per session
        admin.post("/ui/sign-out", data={"csrf": first})
        token = csrf_of(admin.get("/ui/sign-in").text)
        admin.post("/ui/sign-in", data={"api_key": service.keys["admin"], "csrf": token})
        second = csrf_of(admin.get("/ui/").text)
        assert second != first
        answer = admin.post(f"/ui/models/{new}/promote", data={"csrf": first, "confirm": "yes"})
        assert answer.status_code == 403
    with signed_in(service, "admin") as elsewhere:  # the same key in another browser
        assert csrf_of(elsewhere.get("/ui/").text) not in (first, second)


def test_live_counts_on_the_segments_page_are_the_members_in_redis(service: Service) -> None:
    versions = service.versions
    segments = versions.segment[versions.old]
    with service.api("assign") as assigner:
        for row in range(12):
            body = {"customer_id": f"live-{row}", "features": versions.rows[row]}
            assert assigner.post("/v1/assign", json=body).status_code == 200
    expected = {seg: segments[:12].count(seg) for seg in set(segments)}
    with signed_in(service, "read") as reader, service.api("read") as api:
        html = reader.get("/ui/segments").text
        shown = dict(re.findall(r'data-segment="([^"]+)" data-live="(\d+)"', html))
        assert {k: int(v) for k, v in shown.items()} == expected
        for seg, count in expected.items():
            assert api.get(f"/v1/segments/{seg}/members").json()["total"] == count


def test_first_assignments_are_not_counted_as_segment_changes(service: Service) -> None:
    """The migrations page said "33000 migrations" of 33,000 new customers who never moved,
    and a customer page "Migrations 1" after a first assignment (a new-user audit)."""
    versions = service.versions
    segments = versions.segment[versions.old]
    first = 0
    other = next(i for i, seg in enumerate(segments) if seg != segments[first])
    with service.api("assign") as assigner:
        for customer, rows in (("ui-moved", (first, other)), ("ui-new", (first,))):
            for row in rows:
                body = {"customer_id": customer, "features": versions.rows[row]}
                assert assigner.post("/v1/assign", json=body).status_code == 200
    with signed_in(service, "read") as reader:
        for customer, changes in (("ui-moved", 1), ("ui-new", 0)):
            html = reader.get("/ui/customers", params={"customer_id": customer}).text
            assert f"<dd>{changes} since the first assignment</dd>" in html
        html = reader.get("/ui/migrations").text
        found = re.search(r"<strong>(\d+)</strong>\s*moved from one segment to another, and "
                          r"<strong>(\d+)</strong> new customers", html)  # fmt: skip
        assert found, html
        moved, new = map(int, found.groups())
        flows = re.findall(
            r"<tr><td>([^<]*)</td>\s*<td>[^<]*</td><td class=\"num\">(\d+)</td>", html
        )
        assert new == sum(int(c) for name, c in flows if name == "new customers") >= 2
        assert moved == sum(int(c) for name, c in flows if name != "new customers") >= 1


def test_a_profile_shows_numbers_as_people_read_them(service: Service) -> None:
    """The customer page showed ``recency_days 0.37694035886574073`` (a new-user audit)."""
    versions = service.versions
    features = dict(versions.rows[0])
    name = next(k for k, v in features.items() if isinstance(v, float))
    features[name] = 0.37694035886574073
    with service.api("assign") as assigner:
        body = {"customer_id": "ui-floats", "features": features}
        assert assigner.post("/v1/assign", json=body).status_code == 200
    with signed_in(service, "read") as reader:
        html = reader.get("/ui/customers", params={"customer_id": "ui-floats"}).text
    assert "<td>0.37694</td>" in html and "0.37694035886574073" not in html


def test_promoting_an_unknown_version_is_a_404_as_in_the_api(service: Service) -> None:
    """The dashboard answered 409 where the API answers 404 for the same unknown version."""
    unknown = "20200101-000000-000000"
    with signed_in(service, "admin") as admin, service.api("admin") as api:
        token = csrf_of(admin.get("/ui/").text)
        form = {"csrf": token, "confirm": "yes"}
        answer = admin.post(f"/ui/models/{unknown}/promote", data=form)
        assert answer.status_code == api.post(f"/v1/models/{unknown}/promote").status_code == 404
        assert api.get("/v1/models").json()["promoted"] == service.versions.old


def test_an_admin_starts_a_rescore_from_the_models_page(service: Service) -> None:
    """The models page's button runs POST /v1/rescore's code; a reader has no button and is
    refused; a second start while one runs is the API's 409, as a page."""
    with signed_in(service, "admin") as admin, service.api("read") as api:
        page = admin.get("/ui/")
        assert "Rescore the stored customers now" in page.text
        token = csrf_of(page.text)
        answer = admin.post("/ui/rescore", data={"csrf": token})
        assert answer.status_code == 303 and "done=rescoring" in answer.headers["location"]
        status = api.get("/v1/rescore").json()
        assert status["state"] in ("running", "done") and status["version"] == service.versions.old
        assert "Rescore started" in admin.get(answer.headers["location"]).text
        assert admin.post("/ui/rescore", data={"csrf": "forged"}).status_code == 403
    with signed_in(service, "read") as reader:
        page = reader.get("/ui/")
        assert "Rescore the stored customers now" not in page.text
        assert reader.post("/ui/rescore", data={"csrf": csrf_of(page.text)}).status_code == 403


def _serving_a_model_the_store_lacks(
    versions: Versions, tmp_path: Path, promoted: bool
) -> Settings:
    """Settings of a service whose default model, 'accounts', the store lacks: it holds
    'customers' (promoted, so served and offered in the header's chooser, or not)."""
    store = ModelStore(tmp_path / "store")
    shutil.copytree(versions.store.root, store.root)
    if not promoted:
        (store.root / "customers" / "promoted.json").unlink()
    return Settings(
        model_store=store.root,
        model_name="accounts",
        dev_mode=True,
        access_log=False,
        data_dir=tmp_path / "data",
        redis_url="redis://127.0.0.1:1/0",
    )


def test_the_models_page_of_a_model_the_store_lacks_names_the_ones_it_holds(
    versions: Versions, tmp_path: Path
) -> None:
    """A new user served a store of five models and no 'customers' (the default model): the
    dashboard's first page was an empty 'Model customers', no version, promoted none, and a
    button to rescore its customers. It says the model has no version and names the models
    the store holds, and offers no rescore."""
    settings = _serving_a_model_the_store_lacks(versions, tmp_path, promoted=True)
    with serving(settings) as url, httpx.Client(base_url=url, timeout=120) as client:
        page = client.get("/ui/")
        assert page.status_code == 200, page.text
        text = " ".join(page.text.split())
        assert 'id="model-choice"' in text
        assert (
            "No version of model accounts is in the store (it holds customers: choose one "
            "above, or serve one by default with <code>SEGMENTS_MODEL_NAME</code>)."
        ) in text, text
        assert "Rescore the stored customers now" not in text
        served = " ".join(client.get("/ui/?model=customers").text.split())
        assert "No version of model" not in served


def test_the_models_page_of_a_model_the_store_lacks_offers_no_chooser_it_lacks(
    versions: Versions, tmp_path: Path
) -> None:
    """The store's other model unpromoted: the service serves it not, so the dashboard's
    header offers no model to choose (its chooser lists the models served), and the page
    said "choose one above" all the same."""
    settings = _serving_a_model_the_store_lacks(versions, tmp_path, promoted=False)
    with serving(settings) as url, httpx.Client(base_url=url, timeout=120) as client:
        page = client.get("/ui/")
        assert page.status_code == 200, page.text
        text = " ".join(page.text.split())
        assert 'id="model-choice"' not in text
        assert (
            "No version of model accounts is in the store (it holds customers: serve one by "
            "default with <code>SEGMENTS_MODEL_NAME</code>)."
        ) in text, text
