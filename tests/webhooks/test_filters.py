"""A subscription's ``models`` and ``segments`` filters must name what the model store holds:
an unknown model or segment id is a 422 naming it and listing the known ones (bounded), on
``POST`` and on ``PATCH``; a segment id counts for the filtered models only, and an id of a
stored version that is not promoted counts too.

The store: ``customers`` (k=3 promoted and k=6 not, from the hot-swap fixture) and ``tiers``
(k=3, trained here): the k=6 version has ids that no other version has.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from threadpoolctl import threadpool_limits

from app.main import create_app
from app.registry.store import ModelStore
from app.training.job import train
from tests.conftest import example_config
from tests.versions import Versions
from tests.webhooks.test_api import create, headers, settings

URL = "http://127.0.0.1:9/hook"


@pytest.fixture(scope="module")
def two_models(
    versions: Versions, customers_csv: Path, tmp_path_factory: pytest.TempPathFactory
) -> ModelStore:
    store = ModelStore(tmp_path_factory.mktemp("filters") / "store")
    shutil.copytree(versions.store.root, store.root)
    config = example_config(
        "customers", customers_csv, stability_bootstraps=0, k_min=3, k_max=3, seed=3
    )
    config = config.model_copy(update={"model": config.model.model_copy(update={"name": "tiers"})})
    with threadpool_limits(1):
        train(config, store, promote=True)
    return store


@pytest.fixture
def client(two_models: ModelStore, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings(two_models.root, tmp_path))) as test_client:
        yield test_client


def ids(store: ModelStore, model: str, version: str | None = None) -> set[str]:
    """The segment ids of every stored version of ``model`` (or of ``version`` only)."""
    return {
        s.id for m in store.manifests(model) for s in m.segments if version in (None, m.version)
    }


def refused(answer: Any, field: str) -> dict[str, Any]:
    assert answer.status_code == 422, answer.text
    problem: dict[str, Any] = answer.json()
    assert answer.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in problem["errors"]] == [field]
    return problem


def test_unknown_models_and_segments_are_refused_naming_them_and_the_known_ones(
    client: TestClient, two_models: ModelStore
) -> None:
    problem = refused(create(client, {"url": URL, "models": ["tiers", "nope"]}), "models")
    message = problem["errors"][0]["message"]
    assert message == "unknown model(s) 'nope'; known: 'customers', 'tiers'"

    problem = refused(create(client, {"url": URL, "segments": ["seg-001", "seg-999"]}), "segments")
    every = sorted(ids(two_models, "customers") | ids(two_models, "tiers"))
    assert problem["errors"][0]["message"] == (
        "unknown segment id(s) 'seg-999': no stored version of any stored model has them; "
        "known: " + ", ".join(repr(s) for s in every)
    )
    assert client.get("/v1/webhooks", headers=headers("admin")).json() == {"webhooks": []}


def test_a_segment_counts_for_the_filtered_models_and_any_stored_version(
    client: TestClient, two_models: ModelStore
) -> None:
    promoted = two_models.promoted("customers")
    only_unpromoted = sorted(ids(two_models, "customers") - ids(two_models, "customers", promoted))
    only_customers = sorted(set(only_unpromoted) - ids(two_models, "tiers"))
    assert only_customers, "the k=6 version has ids of its own"
    segment = only_customers[0]
    # an id of a stored version that is not promoted (a rollback or promotion serves it)
    only = create(client, {"url": URL, "segments": [segment]})
    assert only.status_code == 201 and only.json()["models"] == ["customers"], only.text
    problem = refused(
        create(client, {"url": URL, "models": ["tiers"], "segments": [segment]}), "segments"
    )
    assert f"'{segment}'" in problem["detail"] and "model(s) 'tiers'" in problem["detail"]
    assert "known: " + ", ".join(map(repr, sorted(ids(two_models, "tiers")))) in problem["detail"]

    sub = create(client, {"url": URL, "models": ["customers"], "segments": [segment]}).json()
    path = f"/v1/webhooks/{sub['id']}"
    # a PATCH is checked as the filters will be: the kept segment against the new model
    refused(client.patch(path, json={"models": ["tiers"]}, headers=headers("admin")), "segments")
    refused(
        client.patch(path, json={"segments": ["seg-999"]}, headers=headers("admin")), "segments"
    )
    refused(client.patch(path, json={"models": ["nope"]}, headers=headers("admin")), "models")
    kept = client.get(path, headers=headers("admin")).json()
    assert (kept["models"], kept["segments"]) == (["customers"], [segment])
    both = {"models": ["tiers", "customers"], "segments": ["seg-001"]}
    patched = client.patch(path, json=both, headers=headers("admin"))
    assert patched.status_code == 200, patched.text
    assert (patched.json()["models"], patched.json()["segments"]) == (
        ["customers", "tiers"],
        ["seg-001"],
    )


def test_a_segment_id_of_several_models_needs_the_model_named(
    client: TestClient, two_models: ModelStore
) -> None:
    """Segment ids are a model's own: ``customers``' seg-001 and ``tiers``' seg-001 are two
    segments. A ``segments`` filter without ``models`` took every model's segment of that id,
    so a CRM subscribed to one segment (the README's example, in the README's own setup of two
    models) got the other model's customers entering theirs as well, under the same id; such a
    filter is refused, naming the models that have the id, and naming them subscribes."""
    shared = sorted(ids(two_models, "customers") & ids(two_models, "tiers"))
    assert shared, "both models have seg-001"
    problem = refused(create(client, {"url": URL, "segments": [shared[0]]}), "segments")
    assert problem["errors"][0]["message"] == (
        f"segment id(s) '{shared[0]}' of several models ('customers', 'tiers'), each model's "
        "own segment: name the model(s) in 'models'"
    )
    assert client.get("/v1/webhooks", headers=headers("admin")).json() == {"webhooks": []}
    for models in (["tiers"], ["customers", "tiers"]):
        body = {"url": URL, "models": models, "segments": [shared[0]]}
        assert create(client, body).status_code == 201

    sub = create(client, {"url": URL, "models": ["tiers"], "segments": [shared[0]]}).json()
    path = f"/v1/webhooks/{sub['id']}"
    refused(client.patch(path, json={"models": None}, headers=headers("admin")), "segments")


def test_a_segments_filter_keeps_the_model_of_its_ids(
    client: TestClient, two_models: ModelStore
) -> None:
    """Every model numbers its segments from seg-001: a ``segments`` filter without
    ``models`` kept every model, those served later included, so a subscription made while
    one model had the id got the next model's segment of that id as well, once it was
    trained. The filter keeps the models that have its ids when it is made or changed."""
    own = sorted(ids(two_models, "customers") - ids(two_models, "tiers"))[0]
    sub = create(client, {"url": URL, "segments": [own]}).json()
    assert sub["models"] == ["customers"], sub
    path = f"/v1/webhooks/{sub['id']}"
    both = {"models": ["customers", "tiers"], "segments": [own]}
    assert client.patch(path, json=both, headers=headers("admin")).json()["models"] == [
        "customers",
        "tiers",
    ]
    again = client.patch(path, json={"models": None}, headers=headers("admin")).json()
    assert again["models"] == ["customers"], again
    # no segments filter: every model's events, those served later included, as before
    every = client.patch(path, json={"segments": None, "models": None}, headers=headers("admin"))
    assert every.json()["models"] is None and every.json()["segments"] is None, every.text


@pytest.fixture(scope="module")
def three_models(
    two_models: ModelStore, customers_csv: Path, tmp_path_factory: pytest.TempPathFactory
) -> ModelStore:
    """``two_models`` and ``wide``: trained at k=10 (seg-001 to seg-010), retrained at k=3
    (new ids above seg-010, where no cluster matches), its first version then removed (an
    operator's cleanup): ``wide`` has ids no other model has, and lacks ids others have."""
    store = ModelStore(tmp_path_factory.mktemp("three") / "store")
    shutil.copytree(two_models.root, store.root)
    config = example_config("customers", customers_csv, stability_bootstraps=0, seed=3)
    config = config.model_copy(update={"model": config.model.model_copy(update={"name": "wide"})})
    with threadpool_limits(1):
        for k in (10, 3):
            clusters = config.model_copy(
                update={"model": config.model.model_copy(update={"k_min": k, "k_max": k})}
            )
            train(clusters, store, promote=True)
    shutil.rmtree(store.version_dir("wide", store.versions("wide")[0]))
    return store


def test_a_segments_filter_over_several_models_needs_them_named(
    three_models: ModelStore, tmp_path: Path
) -> None:
    """A ``segments`` filter without ``models`` whose ids are each one model's, but not the
    same model's (one of customers' only, one of wide's only), pinned both models, and then
    each pinned model's segment of every listed id matched: wide's segment of customers' id,
    once a retrain of wide gave it one, was delivered though the user meant customers'.
    Refused, naming the models; naming them subscribes (each then matches every listed id)."""
    of = {m: ids(three_models, m) for m in ("customers", "tiers", "wide")}
    customers_own = sorted(of["customers"] - of["tiers"] - of["wide"])
    wide_own = sorted(of["wide"] - of["customers"] - of["tiers"])
    assert customers_own and wide_own, of
    body = {"url": URL, "segments": [customers_own[0], wide_own[0]]}
    with TestClient(create_app(settings(three_models.root, tmp_path))) as client:
        problem = refused(create(client, body), "segments")
        assert problem["errors"][0]["message"] == (
            f"segment id(s) '{customers_own[0]}', '{wide_own[0]}' are of different models "
            "('customers', 'wide'), each model's own: name the model(s) in 'models'"
        )
        assert client.get("/v1/webhooks", headers=headers("admin")).json() == {"webhooks": []}
        named = create(client, {**body, "models": ["customers", "wide"]})
        assert named.status_code == 201, named.text
        one = create(client, {"url": URL, "segments": [wide_own[0]]}).json()
        assert one["models"] == ["wide"], one
        path = f"/v1/webhooks/{one['id']}"
        patch = {"segments": body["segments"]}
        refused(client.patch(path, json=patch, headers=headers("admin")), "segments")
        assert client.get(path, headers=headers("admin")).json()["segments"] == [wide_own[0]]


def test_clearing_the_segments_filter_unpins_the_models_it_pinned(
    client: TestClient, two_models: ModelStore
) -> None:
    """The models a ``segments`` filter pinned were the filter's, not the user's: clearing it
    (``segments: null``) kept them, so the subscription got one model's events though made
    without a model filter. Models the user named stay."""
    own = sorted(ids(two_models, "customers") - ids(two_models, "tiers"))[0]
    sub = create(client, {"url": URL, "segments": [own]}).json()
    assert sub["models"] == ["customers"], sub
    path = f"/v1/webhooks/{sub['id']}"
    cleared = client.patch(path, json={"segments": None}, headers=headers("admin"))
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["models"], cleared.json()["segments"]) == (None, None)
    assert client.get(path, headers=headers("admin")).json()["models"] is None
    # pinned again by a new filter, then changed to another of the same model: still pinned
    again = client.patch(path, json={"segments": [own]}, headers=headers("admin")).json()
    assert again["models"] == ["customers"], again
    assert (
        client.patch(path, json={"segments": None}, headers=headers("admin")).json()["models"]
        is None
    )

    named = create(client, {"url": URL, "models": ["customers"], "segments": [own]}).json()
    path = f"/v1/webhooks/{named['id']}"
    kept = client.patch(path, json={"segments": None}, headers=headers("admin")).json()
    assert (kept["models"], kept["segments"]) == (["customers"], None), kept


def test_the_answer_is_bounded_whatever_the_filter(client: TestClient) -> None:
    many = [f"seg-{'x' * 500}-{i}" for i in range(1000)]
    problem = refused(create(client, {"url": URL, "segments": many}), "segments")
    assert "and 990 more" in problem["detail"]
    assert len(problem["detail"]) < 2000 and len(problem["errors"][0]["message"]) < 1500
