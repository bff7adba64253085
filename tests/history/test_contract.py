"""What the contract says about migration windows and member cursors, the service does
(issue 11, item 8): every schema-valid window and cursor is answered, and anything else is
refused by the schema as by the service."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.history.keys import CURSOR_PATTERN
from app.main import create_app
from app.registry.store import ModelStore
from app.settings import Settings
from app.training.job import TrainResult
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def client(
    trained: tuple[ModelStore, TrainResult], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    store, _ = trained
    settings = Settings(
        model_store=store.root,
        dev_mode=True,
        access_log=False,
        key_prefix=f"contract{uuid.uuid4().hex[:8]}:",
        data_dir=tmp_path_factory.mktemp("contract-data"),
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_a_window_of_one_instant_is_the_bucket_holding_it(client: TestClient) -> None:
    at = f"{datetime.now(UTC) - timedelta(hours=2):%Y-%m-%dT%H:%M:%SZ}"  # (within retention)
    response = client.get("/v1/migrations", params={"since": at, "until": at})
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["since"] <= at < doc["until"]


def test_a_window_longer_than_a_year_is_shortened_to_its_latest_part(client: TestClient) -> None:
    until = datetime.now(UTC)
    params = {"since": f"{until - timedelta(days=3 * 365):%Y-%m-%d}", "until": until.isoformat()}
    response = client.get("/v1/migrations", params=params)
    assert response.status_code == 200, response.text  # (was a 422)
    since = datetime.fromisoformat(response.json()["since"])
    assert until - since <= timedelta(days=367)  # (and within the flow retention)


def test_cursors_are_what_the_contract_publishes(
    client: TestClient, trained: tuple[ModelStore, TrainResult]
) -> None:
    contract = (ROOT / "openapi" / "openapi.json").read_text()
    assert CURSOR_PATTERN.replace("\\", "\\\\") in contract
    features = {f.name: None for f in trained[1].manifest.features}
    first = client.post("/v1/assign", json={"customer_id": "c/1&x=2", "features": features})
    segment = first.json()["segment_id"]
    for i in range(3):
        client.post("/v1/assign", json={"customer_id": f"c{i}", "features": features})
    page: dict[str, Any] = client.get(f"/v1/segments/{segment}/members?limit=1").json()
    cursor = page["next_cursor"]
    assert cursor is not None and re.fullmatch(CURSOR_PATTERN, cursor)
    after = client.get(f"/v1/segments/{segment}/members?cursor={cursor}&limit=10").json()
    assert page["members"][0] not in after["members"]
    # any cursor of the pattern is a place in the order, issued or not; others are a 422
    for made_up in ["999999999999999999", "0", "3.7.12"]:  # a missing shard is 0, extras go
        made = client.get(f"/v1/segments/{segment}/members", params={"cursor": made_up})
        assert made.status_code == 200, made_up
    # an empty cursor is the first page (a client that fills ?cursor= from a null next_cursor)
    empty = client.get(f"/v1/segments/{segment}/members", params={"cursor": "", "limit": 1})
    assert empty.status_code == 200 and empty.json() == page
    for bad in ["garbage", " ", "1" * 19, "-1", "1.", ".1", "1e3"]:
        refused = client.get(f"/v1/segments/{segment}/members", params={"cursor": bad})
        assert refused.status_code == 422, bad
        assert refused.json()["errors"][0] == {
            "field": "cursor",
            "message": "not a cursor: send a page's next_cursor as it was given",
        }  # not the regular expression (an audit found it quoted)


@pytest.mark.parametrize("value", ["80136", "1e3", "-1", "yesterday"])
def test_a_time_is_iso_8601_text_not_a_unix_time(client: TestClient, value: str) -> None:
    """The contract's date-time is text; pydantic alone would read 80136 as a Unix time
    (found by schemathesis' negative mode)."""
    response = client.get("/v1/migrations", params={"until": value})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "until"
