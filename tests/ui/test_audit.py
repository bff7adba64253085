"""Defects found by a hostile look at the dashboard, each pinned by a test that failed before
its fix: bad query parameters, unknown paths, Redis going down, a textarea's line breaks, the
profile table of a rules model, the report's headers; and user-controlled text kept inert."""

from __future__ import annotations

import logging
import re
import shutil
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from app.registry.store import ModelStore
from app.settings import Settings
from app.ui.render import templates
from tests.history.conftest import RedisProcess
from tests.serving.test_hot_swap import serving
from tests.ui.conftest import Service
from tests.ui.test_http import csrf_of, signed_in
from tests.versions import MODEL, Versions

EVIL = "<script>alert(1)</script>\"'</textarea></title><svg onload=alert(2)>"


def is_html(answer: httpx.Response) -> bool:
    return answer.headers["content-type"].startswith("text/html")


def test_a_bad_saved_flag_still_shows_the_segment_page(service: Service) -> None:
    segment = service.versions.segment[service.versions.old][0]
    with signed_in(service, "read") as reader:
        answer = reader.get(f"/ui/segments/{segment}", params={"saved": "maybe"})
        assert answer.status_code == 200, answer.text  # was a JSON 422
        assert is_html(answer)
        assert "Saved." not in answer.text
        assert "Saved." in reader.get(f"/ui/segments/{segment}?saved=true").text


def test_windows_out_of_range_or_reversed_get_a_bounded_error_page(service: Service) -> None:
    with signed_in(service, "read") as reader:
        # a day before 0001-01-01 is outside datetime's range: was a 500
        answer = reader.get("/ui/migrations", params={"until": "0001-01-01T00:00"})
        assert answer.status_code == 422
        assert is_html(answer)
        assert "until: too early" in answer.text
        # a window ending before it starts: was a page of 0 migrations saying nothing
        params = {"since": "2026-06-02T00:00", "until": "2026-06-01T00:00"}
        answer = reader.get("/ui/migrations", params=params)
        assert answer.status_code == 422
        assert is_html(answer)
        assert "until: must not be before since" in answer.text
        far = reader.get("/ui/migrations", params={"until": "9999-12-31T23:59"})
        assert far.status_code == 200
        # a datetime-local field has no zone: its label says the times are read as UTC
        assert '<label for="since">or from (UTC)</label>' in far.text


def test_unknown_dashboard_paths_get_an_html_404_and_the_api_keeps_its_own(
    service: Service,
) -> None:
    with signed_in(service, "read") as reader:
        for path in ("/ui/nope", "/ui/segments/a/b", "/ui/sign-out"):
            answer = reader.get(path)
            assert answer.status_code == 404, path  # /ui/sign-out (GET) was a JSON 405
            assert is_html(answer), path  # was problem+json
            assert "Back to the models" in answer.text
        escaped = reader.get("/ui/%3Cb%3Ex")
        assert "<b>x" not in escaped.text and "&lt;b&gt;x" in escaped.text
        # a trailing slash still leads to the page (the catch-all must not swallow it)
        slash = reader.get("/ui/customers/?customer_id=a")
        assert slash.status_code == 303
        assert slash.headers["location"] == "/ui/customers?customer_id=a"
        assert reader.get("/ui/segments/", follow_redirects=True).status_code == 200
        # the pages and static files still answer, and the API's 404 is still problem+json
        assert reader.get("/ui/static/ui.css").status_code == 200
        assert reader.get("/ui/segments").status_code == 200
        api = reader.get("/v1/nope")
        assert api.status_code == 404
        assert api.headers["content-type"].startswith("application/problem+json")


def test_line_breaks_typed_in_a_textarea_are_saved_as_spaces(service: Service) -> None:
    segment = service.versions.segment[service.versions.old][0]
    with signed_in(service, "admin") as admin, service.api("read") as api:
        token = csrf_of(admin.get(f"/ui/segments/{segment}").text)
        form = {"csrf": token, "description": "First line.\r\n\r\n  Second\tline.", "action": ""}
        answer = admin.post(f"/ui/segments/{segment}", data=form)
        assert answer.status_code == 303, answer.text  # was a 422: control characters
        shown = api.get(f"/v1/segments/{segment}").json()
        assert shown["description"] == "First line. Second line."


def test_the_profile_table_lists_categories_of_every_segment(versions: Versions) -> None:
    manifest = versions.store.manifest("customers", versions.old)
    first, *rest = manifest.segments
    feature = next(f for f in first.categorical if len(first.categorical[f]) > 1)
    kept = next(iter(first.categorical[feature]))
    # a rule segment such as "plan == 'enterprise'" holds one category of its feature
    narrow = first.model_copy(
        update={"categorical": {feature: {kept: first.categorical[feature][kept]}}}
    )
    segments = [narrow, *rest]
    labels = {f.name: f.label for f in manifest.features}
    module = templates.get_template("charts.html").make_module({})
    html = str(module.profile_table(segments, labels, "caption"))  # type: ignore[attr-defined]
    label = labels[feature]
    for category in {c for s in rest for c in s.categorical.get(feature, {})}:
        assert f"{label} = {category}</th>" in html, category  # were left out


def test_the_report_cannot_be_framed_or_cached(service: Service) -> None:
    version = service.versions.old
    with signed_in(service, "read") as reader:
        answer = reader.get(f"/ui/models/{version}/report")
        assert answer.status_code == 200
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["cache-control"] == "no-store"


def test_with_redis_down_the_pages_render_and_say_what_is_missing(
    versions: Versions, tmp_path: Path
) -> None:
    store = ModelStore(tmp_path / "store")
    shutil.copytree(versions.store.root, store.root)
    redis_server = RedisProcess(tmp_path / "redis", args=["--save", "", "--appendonly", "no"])
    redis_server.start()
    settings = Settings(
        model_store=store.root,
        model_name="customers",
        dev_mode=True,
        access_log=False,
        redis_url=redis_server.url,
        key_prefix="ui-down:",
        data_dir=tmp_path / "data",
    )
    try:
        with serving(settings) as url, httpx.Client(base_url=url, timeout=120) as client:
            body = {"customer_id": "down-1", "features": versions.rows[0]}
            assert client.post("/v1/assign", json=body).status_code == 200
            assert "down-1" in client.get("/ui/customers?customer_id=down-1").text
            redis_server.stop()
            answer = client.get("/ui/migrations")
            assert answer.status_code == 503
            assert is_html(answer)
            assert 'name="since"' in answer.text  # the page and its form, not an error page
            assert "Migrations cannot be shown now" in answer.text
            answer = client.get("/ui/customers?customer_id=down-1")
            assert answer.status_code == 503
            assert 'id="customer_id"' in answer.text and 'value="down-1"' in answer.text
            assert "cannot be shown now" in answer.text
            segments = client.get("/ui/segments")
            assert segments.status_code == 200
            assert "live counts unavailable" in segments.text
            assert client.get("/ui/").status_code == 200
    finally:
        redis_server.stop()


def test_user_controlled_text_is_inert_on_every_page(service: Service) -> None:
    versions = service.versions
    segment = versions.segment[versions.old][0]
    with service.api("admin") as api:
        patch = {"name": EVIL, "description": EVIL, "action": EVIL}
        assert api.patch(f"/v1/segments/{segment}", json=patch).status_code == 200
        features = {**versions.rows[0]}
        text = next(k for k, v in features.items() if isinstance(v, str))
        features[text] = EVIL  # an unknown category: stored in the profile as sent
    with service.api("assign") as assigner:
        body = {"customer_id": EVIL, "features": features}
        assert assigner.post("/v1/assign", json=body).status_code == 200
    with signed_in(service, "admin") as admin:
        for path in (
            "/ui/",
            "/ui/segments",
            f"/ui/segments/{segment}",
            "/ui/migrations?window=1h",
            "/ui/customers?customer_id=" + quote(EVIL, safe=""),
        ):
            html = admin.get(path).text
            assert "<script" not in html, path
            assert "<svg onload" not in html, path
            assert not re.search(r"</textarea></title>", html), path
            assert path == "/ui/" or "&lt;script&gt;" in html, path  # shown, as text
            assert service.keys["admin"] not in html, path


def test_sign_in_never_sends_out_of_the_dashboard_through_dot_segments(
    service: Service,
) -> None:
    with httpx.Client(base_url=service.url, timeout=120) as client:
        for target, lands in (
            ("/ui/..//evil.example", "/ui/"),  # a browser resolves it to //evil.example
            ("/ui/.%2e/%2e%2e//evil.example", "/ui/"),  # %2e is a dot to a browser
            ("/ui/..\\evil.example", "/ui/"),
            ("/ui/\\\\evil.example", "/ui/"),
            ("/ui/migrations?window=7d", "/ui/migrations?window=7d"),
            ("/ui/customers?customer_id=a%2Fb", "/ui/customers?customer_id=a%2Fb"),
        ):
            token = csrf_of(client.get("/ui/sign-in").text)
            form = {"api_key": service.keys["read"], "csrf": token, "next": target}
            answer = client.post("/ui/sign-in", data=form)
            assert answer.status_code == 303
            assert answer.headers["location"] == lands, target


def test_error_pages_quote_what_was_sent_only_so_far(service: Service) -> None:
    with signed_in(service, "read") as reader:
        for path in ("/ui/segments/" + "x" * 5000, "/ui/models/" + "y" * 5000 + "/promote"):
            answer = reader.get(path)
            assert answer.status_code in (403, 404), path
            assert is_html(answer)
        answer = reader.get("/ui/segments/" + "x" * 5000)
        assert answer.status_code == 404
        assert "x" * 300 not in answer.text  # was the whole id, echoed
        assert len(answer.text) < 4000


def test_an_error_page_of_a_model_no_one_serves_links_to_the_served_one(service: Service) -> None:
    """The error page of ``?model=`` and 5,000 characters repeated them whole in each of its
    links (9 KB of them), and every link led back to that error; so did an unknown model's
    404 page. The links keep only a model that is served."""
    with signed_in(service, "read") as reader:
        for model, status in (("q" * 5000, 422), ("nope", 404)):
            for page in ("/ui/", "/ui/segments"):
                answer = reader.get(page, params={"model": model})
                assert answer.status_code == status, (page, answer.text[:300])
                assert is_html(answer)
                assert f"model={model[:100]}" not in answer.text, page
                assert len(answer.text) < 4000
        assert reader.get("/ui/segments", params={"model": "customers"}).status_code == 200


def test_the_api_key_is_never_in_a_page_a_url_or_a_log(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = service.keys["admin"]
    wrong = key[:-4] + "AAAA"  # shaped like a key, refused
    segment = service.versions.segment[service.versions.old][0]
    with httpx.Client(base_url=service.url, timeout=120) as client:
        seen: list[str] = []
        client.event_hooks["response"] = [lambda r: seen.append(str(r.url))]
        token = csrf_of(client.get("/ui/sign-in?next=/ui/segments").text)
        refused = client.post("/ui/sign-in", data={"api_key": wrong, "csrf": token})
        assert refused.status_code == 401 and wrong not in refused.text
        form = {"api_key": key, "csrf": token, "next": "/ui/segments"}
        answer = client.post("/ui/sign-in", data=form, follow_redirects=True)
        assert answer.status_code == 200
        pages = [
            *("/ui/", "/ui/segments", f"/ui/segments/{segment}", "/ui/migrations"),
            *("/ui/customers?customer_id=nobody", f"/ui/models/{service.versions.new}/promote"),
            "/ui/nope",
        ]
        # the key's secret (after "sk_<id>_"; it may hold "_" itself: the text after the last
        # one was once the single letter "w", found in every page)
        secret = key.split("_", 2)[2]
        for path in pages:
            html = client.get(path).text
            assert key not in html and secret not in html and secret[-16:] not in html, path
        client.post("/ui/sign-out", data={"csrf": csrf_of(client.get("/ui/").text)})
    assert not [url for url in seen if key in url or wrong in url]
    # the service's log lines (the test's own client logs its requests' headers at DEBUG)
    served = [
        r.getMessage() + str(r.__dict__)
        for r in caplog.records
        if not r.name.startswith(("httpx", "httpcore"))
    ]
    assert served, "no log line of the service was captured"
    assert not [line for line in served if key in line or wrong in line]


def test_the_migrations_summary_writes_counts_with_thousands_separators(
    service: Service,
) -> None:
    """The whole base recorded at once: the summary said "2241 new customers" beside the
    "2,241" tracked customers of the segments page; both write counts the same way."""
    row = service.versions.rows[0]
    items = [{"customer_id": f"k{i}", "features": row} for i in range(1_234)]
    with service.api("assign") as api:
        answer = api.post("/v1/assign/batch", json={"items": items})
        assert answer.status_code == 200 and answer.json()["assigned"] == 1_234, answer.text
    with signed_in(service, "read") as reader:
        page = reader.get("/ui/migrations").text
    assert "<strong>1,234</strong> new customers" in page, page


def test_a_page_parameter_given_twice_is_an_error_page_naming_it(service: Service) -> None:
    """A hostile tester's `/ui/segments?model=rfm&model=customers` showed the last model
    silently, where the API answers a 422 naming `model` (and a promotion's confirmation page
    then promoted in that model): every parameter a page reads is so now."""
    new = service.versions.new
    with signed_in(service, "admin") as admin:
        for path in (
            "/ui/segments?model=customers&model=customers",
            f"/ui/models/{new}/promote?model=customers&model=other",
            "/ui/migrations?since=2026-06-01T00:00&since=2026-06-02T00:00",
            "/ui/customers?customer_id=a&customer_id=b",
        ):
            answer = admin.get(path)
            assert answer.status_code == 422, (path, answer.text)
            assert is_html(answer), path
            name = path.split("?")[1].split("=")[0]
            assert f"{name}: given 2 times" in answer.text, (path, answer.text)
        # once each, or a parameter no page reads given twice: the page as before
        assert admin.get("/ui/segments?model=customers").status_code == 200
        assert admin.get("/ui/segments?x=1&x=2").status_code == 200
        assert admin.get("/ui/migrations?since=2026-06-01T00:00").status_code == 200


def test_a_promoted_version_that_fails_to_load_is_not_called_absent(service: Service) -> None:
    """A model whose promoted version the service refuses (here its folder copied under
    another name: the manifests name the old one; a tampered artefact is refused alike)
    had segment pages saying "no promoted model version is loaded yet", as if none had been
    promoted; they say that it cannot be loaded, as the API does."""
    shutil.copytree(service.store.root / "customers", service.store.root / "copy")
    with signed_in(service, "read") as reader:
        for _ in range(600):  # picked up within the reload interval (0.1 s)
            if 'value="copy"' in reader.get("/ui/").text:
                break
            time.sleep(0.05)
        answer = reader.get("/ui/segments", params={"model": "copy"})
        assert answer.status_code == 503 and is_html(answer)
        assert "the promoted version cannot be loaded" in answer.text
        assert "no promoted model version is loaded yet" not in answer.text


def test_binary_outcomes_read_as_rates_beside_everyone(service: Service) -> None:
    """Audit (2026-12-07, helper G; screenshots k8-segments-1280, tree-segment-390): the
    dashboard printed a binary outcome's rate as a bare fraction (``churned: 0.641``) where
    the report prints 64%, and a segment's page gave its outcome means without the overall
    mean to read them against."""
    manifest = service.store.manifest(MODEL, service.versions.old)
    churned = next(o for o in manifest.outcomes if o.name == "churned")
    seg = manifest.segments[0]
    rate = f"{seg.outcomes['churned'] * 100:.1f}%"
    with signed_in(service, "read") as reader:
        page = reader.get("/ui/segments").text
        row = re.search(r"<th scope=\"row\">churned</th>(.*?)</tr>", page, re.S)
        assert row is not None and rate in row.group(1), row
        page = reader.get(f"/ui/segments/{seg.id}").text
        overall = f"{churned.overall_mean * 100:.1f}%"
        assert f"<li>churned: {rate} (all customers: {overall})</li>" in page


def test_no_rescore_button_while_no_version_is_served(
    versions: Versions, service_redis: str, tmp_path: Path
) -> None:
    """Audit (2026-12-07, helper G; screenshots np-models-1280, np-rescore): with no version
    promoted the models page still offered "Rescore the stored customers now ... with the
    served version", and pressing it led to an error page "no version of 'customers' is
    served"."""
    store = ModelStore(tmp_path / "store")
    shutil.copytree(versions.store.root, store.root)
    (store.root / MODEL / "promoted.json").unlink()
    settings = Settings(
        model_store=store.root,
        model_name=MODEL,
        dev_mode=True,
        access_log=False,
        redis_url=service_redis,
        key_prefix="ui-unpromoted:",
        data_dir=tmp_path / "data",
    )
    with serving(settings) as url, httpx.Client(base_url=url, timeout=120) as client:
        page = client.get("/ui/")
        assert page.status_code == 200
        assert "Promote…" in page.text  # an admin's page: the versions can be promoted
        assert "Rescore the stored customers now" not in page.text


def test_a_customers_profile_prints_figures_as_a_marketer_reads_them(service: Service) -> None:
    """Audit (2026-12-07, helper G): the customer page printed each stored value with %.6g:
    a spend of 1,234,567.50 as ``1.23457e+06``, an income of 58138 without a thousands
    separator, and a share of 0.00001 as ``1e-05``."""
    features = {**service.versions.rows[0], "monetary": 1234567.5, "tenure_days": 58138.0}
    features["feature_usage"] = 0.00001
    with service.api("assign") as assigner:
        body = {"customer_id": "big-spender", "features": features}
        assert assigner.post("/v1/assign", json=body).status_code == 200
    with signed_in(service, "read") as reader:
        page = reader.get("/ui/customers", params={"customer_id": "big-spender"}).text
    cells = dict(re.findall(r'<th scope="row">(\w+)</th><td>([^<]*)</td>', page))
    assert cells["monetary"] == "1,234,567.5"
    assert cells["tenure_days"] == "58,138"
    assert cells["feature_usage"] == "0.00001"
    assert not any("e+" in v or "e-" in v for v in cells.values()), cells
