"""The service over HTTP (ASGI transport), on a model trained by the real training job."""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from starlette.types import Receive, Scope, Send

from app.assignment.endpoints import AssignFastPath
from app.assignment.schemas import EXAMPLE_MODEL_KINDS
from app.assignment.validation import NOT_NUMERIC
from app.main import create_app
from app.registry.store import ModelStore
from app.settings import Settings
from app.training.job import TrainResult, train
from tests.conftest import ROOT, example_config


def features_of(row: pd.Series) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, float) and math.isnan(value):
            out[str(key)] = None
        elif isinstance(value, np.generic):
            out[str(key)] = value.item()
        else:
            out[str(key)] = value
    return out


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, customers_csv: Path
) -> tuple[ModelStore, TrainResult]:
    store = ModelStore(tmp_path_factory.mktemp("api-store"))
    result = train(
        example_config("customers", customers_csv, stability_bootstraps=0), store, promote=True
    )
    return store, result


@pytest.fixture(scope="module")
def client(served: tuple[ModelStore, TrainResult]) -> Iterator[TestClient]:
    store, _ = served
    settings = Settings(
        model_store=store.root,
        model_name="customers",
        reload_interval=0.2,
        dev_mode=True,
        key_prefix="api:",
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def sample(
    customers: tuple[pd.DataFrame, np.ndarray], served: tuple[ModelStore, TrainResult]
) -> pd.DataFrame:
    store, _ = served
    names = store.load("customers").estimator.feature_names
    return customers[0].set_index("customer_id")[names].head(200)


def test_assign_answers_with_the_models_segment(
    client: TestClient, sample: pd.DataFrame, served: tuple[ModelStore, TrainResult]
) -> None:
    store, result = served
    expected = store.load("customers").estimator.predict(sample)
    names = {s.id: s.name for s in result.manifest.segments}
    for (customer_id, row), want in zip(sample.head(50).iterrows(), expected[:50], strict=True):
        response = client.post(
            "/v1/assign", json={"customer_id": customer_id, "features": features_of(row)}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["segment_id"] == want
        assert body["segment_name"] == names[want]
        assert body["model_version"] == result.manifest.version
        assert 0.0 <= body["confidence"] <= 1.0
        assert body["explanation"]["kind"] == "cluster"
        assert body["explanation"]["runner_up_id"] in names
        assert body["explanation"]["drivers"], body
        # the text says the features' labels (an audit found column names), drivers the names
        labels = {f.name: f.label for f in result.manifest.features}
        # (naming those of at least 5% of the first's weight: not a weight of 0.0001)
        drivers = body["explanation"]["drivers"]
        said = ", ".join(
            labels[d["feature"]]
            for i, d in enumerate(drivers)
            if i == 0 or d["weight"] >= 0.05 * drivers[0]["weight"]
        )
        assert body["explanation"]["text"].endswith(f" mostly on {said}"), body["explanation"]
        assert body["customer_id"] == customer_id
        assert body["recorded"] is True
        assert body["changed"] is True  # a first assignment is a change from nothing
        assert body["previous_segment_id"] is None


def test_a_category_training_never_saw_is_named_in_the_explanation(
    client: TestClient, sample: pd.DataFrame, served: tuple[ModelStore, TrainResult]
) -> None:
    """An audit sent "city": "Atlantis" and got an assignment with no word that the city
    counted for nothing."""
    store, _ = served
    row = features_of(sample.iloc[0])
    model = store.load("customers").estimator
    categorical = [name for name, kind in model.features if kind == "categorical"]
    assert categorical
    known = client.post("/v1/assign", json={"customer_id": "u-known", "features": row}).json()
    assert "unknown_categories" not in known["explanation"]
    odd = {**row, categorical[0]: "Atlantis"}
    answer = client.post("/v1/assign", json={"customer_id": "u-odd", "features": odd}).json()
    assert answer["explanation"]["unknown_categories"] == {categorical[0]: "Atlantis"}
    assert (
        f"never seen in training: {categorical[0]} 'Atlantis' (counted "
        in (answer["explanation"]["text"])
    )
    assert answer["segment_id"] == model.predict(pd.DataFrame([odd]))[0]
    assert "fix the spelling" not in answer["explanation"]["text"]
    # a known category in another case is named, as segments assign names it for a file
    cased = {**row, categorical[0]: f" {str(row[categorical[0]]).upper()} "}
    assert cased[categorical[0]].strip() != row[categorical[0]]
    sent = {"customer_id": "u-cased", "features": cased}
    text = client.post("/v1/assign", json=sent).json()["explanation"]["text"]
    assert f"'{row[categorical[0]]}' in training: fix the spelling" in text, text
    batch = client.post(
        "/v1/assign/batch?explain=true",
        json={"items": [{"customer_id": "u-odd", "features": odd}]},
    ).json()
    assert batch["results"][0]["explanation"]["unknown_categories"] == {categorical[0]: "Atlantis"}
    # echoed short and readable: a direction override or a control character as its escape
    sneaky = {**row, categorical[0]: "evil\u202egpj.exe\x07" + "x" * 200}
    answer = client.post("/v1/assign", json={"customer_id": "u-odd", "features": sneaky}).json()
    echoed = answer["explanation"]["unknown_categories"][categorical[0]]
    assert echoed.startswith("evil\\u202egpj.exe\\u0007xx") and len(echoed) == 64
    assert "\u202e" not in answer["explanation"]["text"]


def test_batch_matches_single_and_reports_bad_items_in_place(
    client: TestClient, sample: pd.DataFrame, served: tuple[ModelStore, TrainResult]
) -> None:
    store, _ = served
    items = [{"customer_id": cid, "features": features_of(row)} for cid, row in sample.iterrows()]
    items[3] = {"customer_id": "bad-1", "features": {**items[3]["features"], "monetary": "lots"}}
    items[7] = {"customer_id": "bad-2", "features": {"plan": "pro"}}
    response = client.post("/v1/assign/batch", json={"items": items})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["failed"] == 2
    assert body["assigned"] == len(items) - 2
    results = body["results"]
    assert [r["index"] for r in results] == list(range(len(items)))
    assert results[3]["status"] == "error"
    assert results[3]["customer_id"] == "bad-1"
    assert results[3]["errors"] == [
        {
            "field": "items.3.features.monetary",
            "message": NOT_NUMERIC,
        }
    ]
    assert results[7]["status"] == "error"
    assert {e["field"] for e in results[7]["errors"]} >= {
        "items.7.features.monetary",
        "items.7.features.recency_days",
    }
    expected = store.load("customers").estimator.predict(sample)
    for i, r in enumerate(results):
        if i not in (3, 7):
            assert r["status"] == "ok"
            assert r["segment_id"] == expected[i]


def test_a_valid_batch_the_one_pass_decoder_declines_is_answered_item_by_item(
    client: TestClient, sample: pd.DataFrame
) -> None:
    items = [{"customer_id": cid, "features": features_of(row)} for cid, row in sample.iterrows()]
    # valid, but outside the one-pass types: a number past 2**62 (within 2**63), an integer
    # category past 64 bits (orjson reads that as a float: the item-by-item way decides)
    items[0]["features"]["monetary"] = 5e18
    items[1]["features"]["plan"] = 2**70
    response = client.post("/v1/assign/batch", json={"items": items[:10]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["failed"] == 0 and body["assigned"] == 10
    for item, result in zip(items[:10], body["results"], strict=True):
        single = client.post("/v1/assign", json=item).json()
        assert result["status"] == "ok"
        assert result["segment_id"] == single["segment_id"], item


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (lambda b: b["features"].update(shoe_size=42), "features.shoe_size", "unknown feature"),
        # the feature it may be meant for (a mall model's 'Annual Income (k$)' was sent as
        # 'Annual Income' and answered "unknown feature" only)
        (
            lambda b: b["features"].update(tenure=30),
            "features.tenure",
            "unknown feature; did you mean 'tenure_days'?",
        ),
        (
            lambda b: b["features"].update({"Sessions 30d": 3}),
            "features.Sessions 30d",
            "unknown feature; did you mean 'sessions_30d'?",
        ),
        (
            lambda b: b["features"].update(monetray=3),
            "features.monetray",
            "unknown feature; did you mean 'monetary'?",
        ),
        (lambda b: b["features"].update(monetary="12 €"), "features.monetary", "must be a number"),
        (lambda b: b["features"].update(monetary="yes"), "features.monetary", "must be a number"),
        (lambda b: b["features"].update(monetary=float("inf")), "features.monetary", "finite"),
        (lambda b: b["features"].update(monetary=float("nan")), "features.monetary", "finite"),
        (lambda b: b["features"].update(plan=["pro"]), "features.plan", "must be a string"),
        (lambda b: b.update(customer_id="x" * 129), "customer_id", "longer than 128"),
        (lambda b: b.update(customer_id=""), "customer_id", "non-empty"),
        (
            lambda b: b.update(customer_id=12),
            "customer_id",
            'must be a string: customer ids are text, exactly as the file writes them ("12", '
            'with any leading zeros it has, "0012" and "12" being two customers)',
        ),
        (lambda b: b.update(customer_id=True), "customer_id", "non-empty string"),
        (lambda b: b.update(customer_id=10**30), "customer_id", "customer ids are text"),
        (lambda b: b.pop("customer_id"), "customer_id", "field required"),
        (lambda b: b.update(features=None), "features", "must be an object"),
        (lambda b: b.update(extra=1), "extra", "unknown field"),
    ],
)
def test_bad_requests_get_a_problem_naming_the_field(
    client: TestClient, sample: pd.DataFrame, mutate: Any, field: str, message: str
) -> None:
    # (no case is assigned, so this customer has no stored profile to complete features)
    body = {"customer_id": "never-assigned", "features": features_of(sample.iloc[0])}
    mutate(body)
    import json

    response = client.post(
        "/v1/assign", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert any(e["field"] == field and message in e["message"] for e in problem["errors"]), problem
    assert field in problem["detail"]


def test_malformed_and_oversized_bodies(client: TestClient) -> None:
    response = client.post(
        "/v1/assign", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["type"] == "/problems/malformed-json"
    response = client.post("/v1/assign", content=b'{"customer_id": "a", "features": {"x": 1}')
    assert response.status_code == 400
    big = b"[" + b"1," * (9 * 1024 * 1024) + b"1]"
    response = client.post("/v1/assign/batch", content=big)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "body"
    # streamed, with no Content-Length: counted as it arrives
    chunks = (b"1," * (1024 * 1024) for _ in range(9))
    response = client.post("/v1/assign/batch", content=chunks)
    assert response.status_code == 413
    assert response.json()["type"] == "/problems/body-too-large"
    assert response.json()["errors"][0]["field"] == "body"
    items = [{"customer_id": "a", "features": {}}] * 10_001
    response = client.post("/v1/assign/batch", json={"items": items})
    assert response.status_code == 413
    assert response.json()["errors"][0]["field"] == "items"


def test_unknown_routes_and_methods_are_problems(client: TestClient) -> None:
    response = client.get("/v1/nothing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    response = client.get("/v1/assign")
    assert response.status_code == 405


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/segments/seg-000", "GET, PATCH"),
        ("POST", "/v1/customers/c1", "GET, DELETE"),
        ("PUT", "/v1/webhooks", "GET, POST"),
        ("GET", "/v1/assign", "POST"),
        ("DELETE", "/v1/segments", "GET"),
    ],
)
def test_a_method_a_path_does_not_take_names_every_one_it_does(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    """A 405 said only "Method Not Allowed", and its Allow header named the first matching
    route's methods: GET alone for /v1/segments/{id}, whose PATCH is another route. A
    refused PUT changes nothing."""
    before = client.get("/v1/segments/seg-000").json()
    response = client.request(method, path, json={"name": "Renamed"})
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allowed
    shown = allowed.replace(", ", " or ")
    assert response.json()["detail"] == f"{method} is not allowed on this path: it takes {shown}"
    assert client.get("/v1/segments/seg-000").json() == before


def test_a_trailing_slash_is_a_404_naming_the_path_never_a_redirect_to_the_host_sent(
    client: TestClient,
) -> None:
    """Starlette's slash redirect was an absolute URL built from the Host header: a client
    (or a cache in front) could be sent to any host."""
    for method, path in (("GET", "/v1/segments/"), ("GET", "/healthz/"), ("POST", "/v1/assign/")):
        response = client.request(
            method, path, headers={"host": "evil.example"}, follow_redirects=False
        )
        assert response.status_code == 404, (path, response.text)
        assert "location" not in response.headers
        assert response.json()["detail"] == (
            f"no such path; without the trailing slash it is {path[:-1]!r}"
        )
    assert client.get("/v1/nothing/").json()["detail"] == "Not Found"
    # every trailing slash goes; an escaped one is part of a customer id, never dropped
    detail = client.get("/v1/segments//").json()["detail"]
    assert detail == "no such path; without the trailing slash it is '/v1/segments'"
    assert client.get("/v1/customers/abc%2F").json()["detail"] == (
        "no assignment recorded for 'abc/'"
    )
    # the dashboard's front page is still reached without its slash, by a relative redirect
    response = client.get("/ui", headers={"host": "evil.example"}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/ui/")


def test_probes_may_ask_with_head(client: TestClient) -> None:
    for path in ("/healthz", "/readyz"):
        response = client.head(path)
        assert response.status_code == 200, path
        assert response.content == b""
        assert response.headers["content-type"] == "application/json"


def test_segments_listing_and_one_definition(
    client: TestClient, served: tuple[ModelStore, TrainResult]
) -> None:
    _, result = served
    listing = client.get("/v1/segments").json()
    assert listing["model_version"] == result.manifest.version
    assert [s["id"] for s in listing["segments"]] == [s.id for s in result.manifest.segments]
    first = listing["segments"][0]
    assert set(first) >= {
        "id",
        "name",
        "description",
        "action",
        "size",
        "share",
        "profile",
        "flags",
    }
    assert "monetary" in first["profile"]["numeric"]
    one = client.get(f"/v1/segments/{first['id']}").json()
    assert one == first
    missing = client.get("/v1/segments/seg-999")
    assert missing.status_code == 404
    assert "seg-999" in missing.json()["detail"]


def test_patch_persists_across_restart(
    served: tuple[ModelStore, TrainResult], client: TestClient
) -> None:
    store, result = served
    seg = result.manifest.segments[1].id
    response = client.patch(
        f"/v1/segments/{seg}", json={"name": "VIPs", "action": "Invite to the tier"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "VIPs"
    assert client.get(f"/v1/segments/{seg}").json()["action"] == "Invite to the tier"
    settings = Settings(model_store=store.root, model_name="customers", dev_mode=True)
    with TestClient(create_app(settings)) as fresh:
        assert fresh.get(f"/v1/segments/{seg}").json()["name"] == "VIPs"
    assert client.patch(f"/v1/segments/{seg}", json={"colour": "red"}).status_code == 422
    assert client.patch(f"/v1/segments/{seg}", json={}).status_code == 422
    malformed = client.patch(
        f"/v1/segments/{seg}", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.json()["type"] == "/problems/malformed-json"
    assert malformed.json()["errors"][0]["field"] == "body"
    # the parser's words and where, not only "JSON decode error"
    assert malformed.json()["errors"][0]["message"] == (
        "Expecting property name enclosed in double quotes at character 1"
    )
    unterminated = client.patch(
        f"/v1/segments/{seg}", content=b'{"name": "ab', headers={"content-type": "application/json"}
    )
    assert unterminated.json()["errors"][0]["message"] == (
        "Unterminated string starting at character 9"
    )
    # an audit's: a body nested too deeply, or not UTF-8, said "There was an error parsing
    # the body" (about:blank, no errors list)
    for body, says in ((b"[" * 100_000, "nested too deeply"), (b'{"name": "\xff"}', "not UTF-8")):
        odd = client.patch(
            f"/v1/segments/{seg}", content=body, headers={"content-type": "application/json"}
        )
        assert odd.status_code == 400 and odd.json()["type"] == "/problems/malformed-json"
        assert odd.json()["errors"][0]["message"].startswith(says), odd.text
    # null restores the generated name
    restored = client.patch(f"/v1/segments/{seg}", json={"name": None, "action": None}).json()
    assert restored["name"] == result.manifest.segments[1].name


def test_models_listing_manifest_and_health(
    client: TestClient, served: tuple[ModelStore, TrainResult]
) -> None:
    _, result = served
    listing = client.get("/v1/models").json()
    assert listing["promoted"] == result.manifest.version
    assert listing["serving"] == result.manifest.version
    manifest = client.get(f"/v1/models/{result.manifest.version}").json()
    assert manifest["artefact"]["sha256"] == result.manifest.artefact.sha256
    assert manifest == result.manifest.model_dump(mode="json")  # the file, whole
    assert client.get("/v1/models/20990101-000000-abcdef").status_code == 404
    assert client.get("/v1/models/..%2Fsecrets").status_code in (404, 422)
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["model"]["compiled"] is True


def test_not_ready_without_a_promoted_model(tmp_path: Path) -> None:
    settings = Settings(model_store=tmp_path, model_name="customers", dev_mode=True)
    with TestClient(create_app(settings)) as empty:
        assert empty.get("/readyz").status_code == 503
        response = empty.post("/v1/assign", json={"customer_id": "a", "features": {}})
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"


def test_batch_explanations_on_request(client: TestClient, sample: pd.DataFrame) -> None:
    items = [{"customer_id": cid, "features": features_of(row)} for cid, row in sample.iterrows()]
    lean = client.post("/v1/assign/batch", json={"items": items}).json()
    full = client.post("/v1/assign/batch?explain=true", json={"items": items}).json()
    assert all("explanation" not in r for r in lean["results"])
    for a, b in zip(lean["results"], full["results"], strict=True):
        assert b["explanation"]["kind"] in ("rule", "cluster")
        assert {k: v for k, v in b.items() if k != "explanation"} == a | {
            "previous_segment_id": b["previous_segment_id"],
            "changed": b["changed"],
        }
    single = client.post("/v1/assign", json=items[0]).json()
    assert full["results"][0]["explanation"] == single["explanation"]
    bad = client.post("/v1/assign/batch?explain=maybe", json={"items": items[:1]})
    assert bad.status_code == 422
    assert bad.json()["errors"] == [
        {"field": "explain", "message": "must be a boolean (true or false)"}
    ]


def test_the_fast_path_answers_as_the_routed_endpoint(
    served: tuple[ModelStore, TrainResult], sample: pd.DataFrame
) -> None:
    """POSTs to /v1/assign skip FastAPI's router; an app without the fast path answers them
    through it (here under a root_path, which the router strips).

    Both must give byte-identical answers, problems and metrics labels.
    """
    store, _ = served
    settings = Settings(
        model_store=store.root, model_name="customers", dev_mode=True, record_assignments=False
    )
    items = [{"customer_id": cid, "features": features_of(row)} for cid, row in sample.iterrows()]
    bodies: list[tuple[str, Any]] = [
        ("/v1/assign", items[0]),
        ("/v1/assign", items[5]),
        ("/v1/assign", {"customer_id": "x"}),
        ("/v1/assign", {**items[1], "extra": 1}),
        ("/v1/assign/batch", {"items": items[:20]}),
        ("/v1/assign/batch?explain=1", {"items": [*items[:3], {"customer_id": "bad"}]}),
        ("/v1/assign/batch", {"items": []}),
    ]
    app, routed_app = create_app(settings), without_fast_path(create_app(settings))
    with TestClient(app) as fast, TestClient(routed_app, root_path="/api") as routed:
        for path, body in bodies:
            a = fast.post(path, json=body)
            b = routed.post(f"/api{path}", json=body)
            assert (a.status_code, a.headers["content-type"]) == (
                b.status_code,
                b.headers["content-type"],
            ), path
            a_doc, b_doc = a.json(), b.json()
            if "instance" in b_doc:  # a problem names the path it was asked on
                b_doc["instance"] = b_doc["instance"].removeprefix("/api")
            assert a_doc == b_doc, path
        garbage = fast.post(
            "/v1/assign", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert garbage.status_code == 400
        assert garbage.headers["content-type"] == "application/problem+json"
        assert fast.get("/v1/assign").status_code == 405  # other methods go to the router
        metrics = fast.get("/metrics").text
    assert 'route="/v1/assign",status="200"' in metrics
    assert 'route="/v1/assign/batch",status="200"' in metrics


# -- issue 11: segment text, and the contract's examples and empty patch ----------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "VIP \x1b[31mred\x1b[0m"),
        ("name", "ring\x07"),
        ("description", "two\nlines"),
        ("action", "call \u202egnp.exe"),
        ("action", "isolated \u2066x\u2069"),
        ("description", "next line \x85"),
        ("name", "n" * 121),
        ("description", "d" * 2001),
        ("action", "a" * 1001),
    ],
)
def test_segment_text_with_control_characters_or_too_long_is_refused(
    served: tuple[ModelStore, TrainResult], client: TestClient, field: str, value: str
) -> None:
    _, result = served
    seg = result.manifest.segments[2].id
    before = client.get(f"/v1/segments/{seg}").json()
    response = client.patch(f"/v1/segments/{seg}", json={field: value})
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert client.get(f"/v1/segments/{seg}").json() == before  # nothing stored


def test_readable_segment_text_is_stored(
    served: tuple[ModelStore, TrainResult], client: TestClient
) -> None:
    _, result = served
    seg = result.manifest.segments[2].id
    edit = {"name": "Clients fidèles — 忠実 ✓", "description": "tabs\tno", "action": "a" * 1000}
    assert client.patch(f"/v1/segments/{seg}", json={"name": edit["name"]}).status_code == 200
    assert client.patch(f"/v1/segments/{seg}", json={"action": edit["action"]}).status_code == 200
    assert client.get(f"/v1/segments/{seg}").json()["name"] == edit["name"]
    refused = client.patch(f"/v1/segments/{seg}", json={"description": edit["description"]})
    assert refused.status_code == 422  # a tab is a control character too
    client.patch(f"/v1/segments/{seg}", json={"name": None, "action": None})


def test_the_contract_says_an_empty_patch_is_refused(
    served: tuple[ModelStore, TrainResult], client: TestClient
) -> None:
    contract = json.loads((ROOT / "openapi" / "openapi.json").read_text())
    assert contract["components"]["schemas"]["SegmentPatch"]["minProperties"] == 1
    seg = served[1].manifest.segments[0].id
    response = client.patch(f"/v1/segments/{seg}", json={})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"


def test_the_published_examples_are_valid_for_the_example_model(client: TestClient) -> None:
    contract = json.loads((ROOT / "openapi" / "openapi.json").read_text())
    schemas = contract["components"]["schemas"]
    [example] = schemas["AssignRequest"]["examples"]
    response = client.post("/v1/assign", json=example)
    assert response.status_code == 200, response.text
    batch = client.post("/v1/assign/batch", json={"items": [example]})
    assert batch.json()["assigned"] == 1
    assert schemas["BatchRequest"]["properties"]["items"]["minItems"] == 1
    # the features the contract lists are the example model's, of the same kinds
    config = tomllib.loads((ROOT / "examples" / "customers.toml").read_text())
    kinds = {f["name"]: f.get("type", "numeric") for f in config["features"]}
    assert kinds == EXAMPLE_MODEL_KINDS
    assert set(example["features"]) == set(kinds)


def without_fast_path(app: FastAPI) -> FastAPI:
    """The app with its routes only: what answers the assign endpoints without the fast path."""
    app.user_middleware = [m for m in app.user_middleware if m.cls is not AssignFastPath]
    return app


def requests_total(route: str, status: int) -> float:
    labels = {"method": "POST", "route": route, "status": str(status)}
    return REGISTRY.get_sample_value("segments_http_requests_total", labels) or 0.0


def test_the_fast_path_serves_under_a_root_path(
    served: tuple[ModelStore, TrainResult], sample: pd.DataFrame
) -> None:
    """Behind a proxy that mounts the service under a prefix, the fast path still answers
    (the router never runs), exactly as without the prefix, and labels the metrics alike."""
    store, _ = served
    settings = Settings(
        model_store=store.root, model_name="customers", dev_mode=True, record_assignments=False
    )
    items = [{"customer_id": cid, "features": features_of(row)} for cid, row in sample.iterrows()]
    bodies: list[tuple[str, Any]] = [
        ("/v1/assign", items[0]),
        ("/v1/assign", {"customer_id": "x"}),
        ("/v1/assign/batch?explain=true", {"items": items[:5]}),
        ("/v1/assign/batch?explain=maybe", {"items": items[:5]}),
    ]
    app = create_app(settings)
    routed: list[str] = []  # the paths FastAPI's router matched to an endpoint

    async def watched(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)
        if scope["type"] == "http" and "endpoint" in scope:  # the router's mark on the scope
            routed.append(scope["path"])

    before = requests_total("/v1/assign", 200), requests_total("/v1/assign/batch", 422)
    with TestClient(app) as plain, TestClient(watched, root_path="/api") as prefixed:
        for path, body in bodies:
            a, b = plain.post(path, json=body), prefixed.post(f"/api{path}", json=body)
            assert (b.status_code, b.headers["content-type"]) == (
                a.status_code,
                a.headers["content-type"],
            ), path
            a_doc, b_doc = a.json(), b.json()
            if "instance" in b_doc:  # a problem names the path it was asked on, as routed
                assert b_doc["instance"] == f"/api{path.partition('?')[0]}"
                b_doc["instance"] = b_doc["instance"].removeprefix("/api")
            assert a_doc == b_doc, path
        assert routed == []
        assert prefixed.get("/api/v1/assign").status_code == 405  # the rest: the router's
        assert routed == ["/api/v1/assign"]
    after = requests_total("/v1/assign", 200), requests_total("/v1/assign/batch", 422)
    assert (after[0] - before[0], after[1] - before[1]) == (2, 2)


def test_an_unknown_field_names_the_field_it_may_be_meant_for(
    client: TestClient, sample: pd.DataFrame, served: tuple[ModelStore, TrainResult]
) -> None:
    """Every answer that says "unknown field" names the field a misspelling is meant for, as
    an unknown feature and a config key do (the routed bodies said pydantic's "Extra inputs
    are not permitted"); an option sent in a batch's body says it is a query parameter. A
    refused edit changes nothing."""
    _, result = served
    segment = result.manifest.segments[0].id
    features = features_of(sample.iloc[0])

    def errors(answer: Any) -> list[Any]:
        assert answer.status_code == 422, answer.text
        return [(e["field"], e["message"]) for e in answer.json()["errors"]]

    one = client.post("/v1/assign", json={"customerid": "u1", "feature": features})
    assert errors(one)[:2] == [
        ("customerid", "unknown field; did you mean 'customer_id'?"),
        ("feature", "unknown field; did you mean 'features'?"),
    ]
    batch = client.post("/v1/assign/batch", json={"item": [{"customer_id": "u1"}]})
    assert ("item", "unknown field; did you mean 'items'?") in errors(batch)
    item = {"customer_id": "u1", "Features": features}
    batch = client.post("/v1/assign/batch", json={"items": [item], "explain": True})
    assert errors(batch) == [
        ("explain", "unknown field: explain is a query parameter (?explain=...)")
    ]
    one = client.post("/v1/assign", json={"customer_id": "u1", "model": "customers"})
    assert errors(one) == [("model", "unknown field: model is a query parameter (?model=...)")]
    batch = client.post("/v1/assign/batch", json={"items": [item]})
    assert batch.json()["results"][0]["errors"][0] == {
        "field": "items.0.Features",
        "message": "unknown field; did you mean 'features'?",
    }
    before = client.get(f"/v1/segments/{segment}").json()
    edit = client.patch(f"/v1/segments/{segment}", json={"nmae": "Renamed"})
    assert errors(edit) == [("nmae", "unknown field; did you mean 'name'?")]
    assert client.get(f"/v1/segments/{segment}").json() == before
    hook = client.post("/v1/webhooks", json={"url": "https://example.com/h", "segmnets": []})
    assert errors(hook) == [("segmnets", "unknown field; did you mean 'segments'?")]
    assert client.get("/v1/webhooks").json()["webhooks"] == []
    wild = client.patch(f"/v1/segments/{segment}", json={"x" * 5000: 1})
    assert errors(wild)[0][1] == "unknown field"  # (a name no field is near: compared cheaply)
