"""Human edits of segments survive a retrain: edit on the served version, retrain, promote.

A version is trained by the real job and served (real app, real API keys, recording off). An
analyst PATCHes one segment's name, description and action, and only the action of another.
Then the model is retrained by the real job on another sample of the customers with another
seed: the stable-id matching gives the retrained segments the same ids. Once the new version
is promoted (through the API, or by moving the store's pointer as the CLI does from another
process, which the service's watcher picks up), the edited fields must still be shown, now on
the new version's segments, by ``GET /v1/segments[/{id}]`` and in the names ``/v1/assign`` and
``/v1/assign/batch`` answer with; every field nobody edited must be the new version's
generated one. A restarted service shows the same.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from threadpoolctl import threadpool_limits

from app.datasets import PLANTED_SEGMENTS
from app.main import create_app
from app.registry.manifest import Manifest
from app.registry.store import ModelStore
from app.security import new_key
from app.settings import Settings
from app.training.config import TrainConfig
from app.training.job import train
from tests.conftest import example_config
from tests.versions import client_rows

MODEL = "customers"
EDIT = {
    "name": "VIP loyalists",
    "description": "Our best customers, as the CRM team sees them",
    "action": "Invite to the loyalty tier",
}
ACTION_ONLY = {"action": "Send the win-back series"}


def sample_config(frame: pd.DataFrame, seed: int, folder: Path) -> TrainConfig:
    """The example config on a 90% sample of the customers, with this seed for both."""
    path = folder / f"customers-{seed}.csv"
    frame.sample(frac=0.9, random_state=seed).to_csv(path, index=False)
    k = PLANTED_SEGMENTS
    return example_config("customers", path, seed=seed, k_min=k, k_max=k, stability_bootstraps=0)


@dataclass(frozen=True)
class First:
    store: ModelStore  # the template, with the first version promoted: tests work on a copy
    version: str
    data: Path  # folder of the training samples


@pytest.fixture(scope="module")
def first(
    tmp_path_factory: pytest.TempPathFactory, customers: tuple[pd.DataFrame, np.ndarray]
) -> First:
    folder = tmp_path_factory.mktemp("overrides")
    store = ModelStore(folder / "store")
    with threadpool_limits(1):
        result = train(sample_config(customers[0], 1, folder), store, promote=True)
    return First(store, result.manifest.version, folder)


@dataclass
class Service:
    client: TestClient
    store: ModelStore
    settings: Settings
    admin: dict[str, str]  # headers of an admin key
    reader: dict[str, str]  # headers of a read + assign key

    def get(self, path: str) -> dict[str, Any]:
        response = self.client.get(path, headers=self.reader)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def service(first: First, tmp_path: Path) -> Iterator[Service]:
    store = ModelStore(tmp_path / "store")
    shutil.copytree(first.store.root, store.root)
    admin_key, admin_line = new_key(["admin"])
    reader_key, reader_line = new_key(["read", "assign"])
    settings = Settings(
        model_store=store.root,
        model_name=MODEL,
        reload_interval=0.1,
        api_keys=f"{admin_line},{reader_line}",
        record_assignments=False,  # no Redis: this test is about segment definitions
        access_log=False,
    )
    with TestClient(create_app(settings)) as client:
        yield Service(
            client,
            store,
            settings,
            {"authorization": f"Bearer {admin_key}"},
            {"x-api-key": reader_key},
        )


def expected_fields(manifest: Manifest, edits: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Segment id -> (name, description, action): the manifest's, with the edits on top."""
    return {
        s.id: {
            "name": s.name,
            "description": s.description,
            "action": s.action,
            **edits.get(s.id, {}),
        }
        for s in manifest.segments
    }


def check_served(
    service: Service,
    manifest: Manifest,
    edits: dict[str, dict[str, str]],
    frame: pd.DataFrame,
) -> None:
    """Definitions and assignment answers of ``manifest``'s version show exactly ``edits``."""
    version = manifest.version
    want = expected_fields(manifest, edits)
    sizes = {s.id: s.size for s in manifest.segments}
    listing = service.get("/v1/segments")
    assert listing["model_version"] == version
    assert {s["id"] for s in listing["segments"]} == set(want)
    for seg in listing["segments"]:
        one = service.get(f"/v1/segments/{seg['id']}")
        assert one == seg
        assert one["model_version"] == version
        assert one["size"] == sizes[seg["id"]]  # the segment of this version, not a copy
        assert {k: one[k] for k in ("name", "description", "action")} == want[seg["id"]]

    # the names the assignment endpoints answer with (single: the fast path)
    model = service.store.load(MODEL, version).estimator
    customers = frame.set_index("customer_id")[model.feature_names].head(300)
    segment_ids = [str(s) for s in model.predict(customers)]
    assert set(edits) <= set(segment_ids), "the sample misses an edited segment"
    assert set(segment_ids) - set(edits), "the sample misses an unedited segment"
    rows = client_rows(customers)
    items = [
        {"customer_id": str(cid), "features": row}
        for cid, row in zip(customers.index, rows, strict=True)
    ]
    for item, segment_id in zip(items, segment_ids, strict=True):
        response = service.client.post("/v1/assign", json=item, headers=service.reader)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model_version"] == version
        assert body["segment_id"] == segment_id
        assert body["segment_name"] == want[segment_id]["name"]
        assert body["explanation"]["text"].startswith(f"closest to '{want[segment_id]['name']}'")
    response = service.client.post(
        "/v1/assign/batch", json={"items": items}, headers=service.reader
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["segment_id"] for r in results] == segment_ids
    assert [r["segment_name"] for r in results] == [want[s]["name"] for s in segment_ids]


@pytest.mark.parametrize("promotion", ["api", "pointer"])
def test_edits_survive_a_retrain_and_its_promotion(
    first: First,
    service: Service,
    customers: tuple[pd.DataFrame, np.ndarray],
    promotion: str,
    tmp_path: Path,
) -> None:
    frame = customers[0]
    old = service.store.manifest(MODEL, first.version)
    by_size = sorted(old.segments, key=lambda s: s.size, reverse=True)
    edited, action_only = by_size[0].id, by_size[1].id
    edits = {edited: EDIT, action_only: ACTION_ONLY}

    # the analyst edits the served version (an admin key is needed)
    forbidden = service.client.patch(f"/v1/segments/{edited}", json=EDIT, headers=service.reader)
    assert forbidden.status_code == 403
    for segment_id, fields in edits.items():
        response = service.client.patch(
            f"/v1/segments/{segment_id}", json=fields, headers=service.admin
        )
        assert response.status_code == 200, response.text
        assert {k: response.json()[k] for k in fields} == fields
    check_served(service, old, edits, frame)

    # retrain (the real job) on another sample with another seed; it keeps every id
    with threadpool_limits(1):
        result = train(sample_config(frame, 2, tmp_path), service.store, promote=False)
    new = result.manifest
    assert new.version != old.version
    assert new.id_matching.previous_version == old.version
    assert {s.id for s in new.segments} == {s.id for s in old.segments}
    assert new.id_matching.new == []
    # the retrain generated its own texts: the edits are not in the new manifest
    assert all(s.name != EDIT["name"] and s.action is None for s in new.segments)
    assert service.get(f"/v1/segments/{edited}")["model_version"] == old.version

    if promotion == "api":
        response = service.client.post(f"/v1/models/{new.version}/promote", headers=service.admin)
        assert response.status_code == 200, response.text
        assert response.json()["version"] == new.version
    else:  # another process moved the pointer (what `segments models promote` does)
        service.store.promote(MODEL, new.version)
        deadline = time.monotonic() + 30
        while service.get(f"/v1/segments/{edited}")["model_version"] != new.version:
            assert time.monotonic() < deadline, "the service did not pick up the promotion"
            time.sleep(0.05)
    check_served(service, new, edits, frame)

    # and a service started afresh on the store shows the same
    with TestClient(create_app(service.settings)) as restarted:
        service.client = restarted
        check_served(service, new, edits, frame)
