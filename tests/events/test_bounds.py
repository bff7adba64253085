"""An event's amount and time are bounded: an amount (or a product of quantity and unit price)
at or beyond 2^63, or not finite, and a time before 1970-01-01 are rejected by name, and the
rest of the batch is applied (found by the audit: ``1e300 x 1e300`` stored an infinite net
amount for good, and a time in year 1 gave a tenure of 740,000 days).

Over HTTP, against the suite's real Redis and transactions models trained by the real job.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from app.registry.store import ModelStore
from app.training.config import parse_config
from app.training.job import TrainResult, train
from tests.conftest import EXAMPLES
from tests.events.conftest import clocked_client
from tests.events.test_api import NOW, event, post

BEYOND = "must be below 2^63 (about 9.2e18), as any number the service takes"


@pytest.fixture(scope="module")
def product_store(tmp_path_factory: pytest.TempPathFactory, transactions_csv: Path) -> ModelStore:
    """A model trained on the example log given as quantity x unit price."""
    folder = tmp_path_factory.mktemp("tx-product")
    log = pd.read_csv(transactions_csv)
    log = log.assign(quantity=1, unit_price=log.pop("amount"))
    log.to_csv(folder / "log.csv", index=False)
    raw = tomllib.loads((EXAMPLES / "transactions.toml").read_text())
    raw["data"]["path"] = str(folder / "log.csv")
    tx = raw["data"]["transactions"]
    del tx["amount"]
    tx.update(quantity="quantity", unit_price="unit_price")
    raw["model"]["selection_bootstraps"] = 0
    store = ModelStore(folder / "store")
    train(parse_config(raw, base_dir=EXAMPLES), store, promote=True)
    return store


def _client(store: ModelStore, tmp_path: Path, prefix: str) -> Iterator[TestClient]:
    yield from clocked_client(store.root, "transactions", tmp_path, prefix, NOW)


@pytest.fixture
def client(
    tx_trained: tuple[ModelStore, TrainResult], tmp_path: Path, prefix: str
) -> Iterator[TestClient]:
    yield from _client(tx_trained[0], tmp_path, prefix)


@pytest.fixture
def product_client(product_store: ModelStore, tmp_path: Path, prefix: str) -> Iterator[TestClient]:
    yield from _client(product_store, tmp_path, prefix)


def _errors(doc: dict[str, Any]) -> dict[int, list[tuple[str, str]]]:
    return {e["index"]: [(f["field"], f["message"]) for f in e["errors"]] for e in doc["errors"]}


def _sound(client: TestClient, customer: str) -> dict[str, Any]:
    """The customer's stored profile, checked finite, and an assignment by id that is sure
    of something (an infinite amount gave confidence 0.0)."""
    profile: dict[str, Any] = client.get(f"/v1/customers/{customer}").json()["profile"]
    assert all(isinstance(v, float) and math.isfinite(v) for v in profile.values()), profile
    answer = client.post("/v1/assign", json={"customer_id": customer})
    assert answer.status_code == 200 and answer.json()["confidence"] > 0, answer.text
    return profile


def test_amounts_beyond_the_bound_and_times_before_1970_are_rejected(client: TestClient) -> None:
    events = [
        event("00042", 5, 1e300),
        event("00042", 4, 2**63),  # the bound /v1/assign refuses a feature at
        event("00042", 4, 2**63 - 1),  # an integer whose float is 2^63, as a log's cell is
        event("00042", 3, 30.0, at="0001-01-01T00:00:00Z"),
        event("00042", 3, 30.0, at="1969-12-31T23:59:59.999999Z"),
        event("00042", 3, 2**63 - 1024, type="refund"),  # the largest float below: taken
        event("00042", 2, 12.5),
        event("00043", 2, 12.5, at="1970-01-01T00:00:00Z"),  # the first instant taken
    ]
    doc = post(client, *events)
    assert (doc["accepted"], doc["rejected"]) == (3, 5)
    before_1970 = "before 1970-01-01T00:00:00Z"
    assert _errors(doc) == {
        0: [("events.0.amount", BEYOND)],
        1: [("events.1.amount", BEYOND)],
        2: [("events.2.amount", BEYOND)],
        3: [("events.3.at", before_1970)],
        4: [("events.4.at", before_1970)],
    }
    assert _sound(client, "00042")["monetary"] == 12.5 - (2**63 - 1024)
    assert _sound(client, "00043")["tenure_days"] == pytest.approx(20_758)  # to 2026-11-01


def test_a_product_beyond_the_bound_is_rejected_naming_it(product_client: TestClient) -> None:
    events = [
        event("00042", 5, 0, quantity=1e300, unit_price=1e300),  # the audit's
        event("00042", 5, 0, quantity=4e9, unit_price=4e9),  # each within, 1.6e19 beyond
        event("00042", 5, 0, quantity=3e9, unit_price=3e9),  # 9e18: within
        event("00042", 4, 0, quantity=2, unit_price=6.25),
    ]
    for e in events:
        del e["amount"]
    doc = post(product_client, *events)
    assert (doc["accepted"], doc["rejected"]) == (2, 2)
    assert _errors(doc) == {
        0: [("events.0.quantity", BEYOND), ("events.0.unit_price", BEYOND)],
        1: [("events.1.quantity", f"quantity x unit_price is 1.6e+19: the amount {BEYOND}")],
    }
    assert _sound(product_client, "00042")["monetary"] == 9e18 + 12.5


def test_a_return_written_as_a_negative_quantity_is_told_to_be_a_refund(
    product_client: TestClient,
) -> None:
    """An audit's marketplace log wrote returns as negative quantities; sent so as an event,
    the answer spoke of a positive amount to a model that refuses an amount."""
    refund = event("00042", 3, 0, quantity=-1, unit_price=6.25)
    price = event("00042", 3, 0, quantity=1, unit_price=-6.25)
    for e in (refund, price):
        del e["amount"]
    doc = post(product_client, refund, price)
    assert _errors(doc) == {
        0: [
            (
                "events.0.quantity",
                "must not be negative (a refund is type 'refund' with a positive quantity)",
            )
        ],
        1: [("events.1.unit_price", "must not be negative")],
    }


NET_BEYOND = (
    "would take the customer's net amount to 2^63 (about 9.2e18) or beyond, the bound of any "
    "number the service takes: not applied"
)


def test_an_event_that_would_take_the_net_amount_beyond_the_bound_is_rejected(
    client: TestClient,
) -> None:
    """Each amount within the bound, their sum beyond it: the audit's customer summed to
    2.76e19, and /v1/assign by id then refused the profile. The event that would cross it is
    rejected by name (not applied, not guarded: once a refund brings the sum down, a re-send
    is taken)."""
    crossing = event("00042", 4, 5e18)
    events = [event("00042", 5, 5e18), crossing, event("00042", 3, 12.5), event("00043", 3, 1.0)]
    doc = post(client, *events)
    assert (doc["accepted"], doc["duplicate"], doc["rejected"]) == (3, 0, 1)
    assert _errors(doc) == {1: [("events.1.amount", NET_BEYOND)]}
    assert doc["errors"][0]["event_id"] == crossing["event_id"]
    assert _sound(client, "00042")["monetary"] == 5e18 + 12.5
    doc = post(client, event("00042", 2, 5e18, type="refund"), crossing)
    assert (doc["accepted"], doc["rejected"]) == (2, 0)
    assert _sound(client, "00042")["monetary"] == 5e18 + 12.5


def test_an_amount_sent_to_a_quantity_and_unit_price_model_says_what_to_send(
    product_client: TestClient,
) -> None:
    """A new user sent the README's event (an amount) to a model trained on quantity x unit
    price, and read 'amount: unknown field; quantity: missing; unit_price: missing'."""
    doc = post(product_client, event("00042", 5, 12.5))
    assert (doc["accepted"], doc["rejected"]) == (0, 1)
    errors = dict(_errors(doc)[0])
    assert errors["events.0.amount"] == (
        "this model was trained on quantity x unit_price: send quantity and unit_price instead "
        "of amount"
    )


def test_an_integer_of_thousands_of_digits_is_rejected_in_place(client: TestClient) -> None:
    """A hostile tester's amount written as 1 and 5,000 zeros (valid JSON) was a 400 "not
    valid JSON ... infinity" for the whole batch: Python converts integers of at most 4,300
    digits, and the lenient parse that names a bad value gave up. Now that event alone is
    rejected, naming its amount, and the rest is applied."""
    events = [event("00044", 5, 0.0, event_id="huge"), event("00044", 4, 12.5)]
    body = json.dumps({"events": events}).replace('"amount": 0.0', '"amount": 1' + "0" * 5000)
    answer = client.post("/v1/events", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert (doc["accepted"], doc["rejected"]) == (1, 1)
    assert _errors(doc) == {0: [("events.0.amount", BEYOND)]}


def test_an_integer_beyond_every_float_is_rejected_not_a_server_error(client: TestClient) -> None:
    """A hostile tester's amount of 1 and 400 zeros (an integer no float holds) was a 500:
    the finiteness check converted it to a float and overflowed."""
    events = [event("00045", 5, 0.0), event("00045", 4, 12.5)]
    body = json.dumps({"events": events}).replace('"amount": 0.0', '"amount": 1' + "0" * 400)
    answer = client.post("/v1/events", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert (doc["accepted"], doc["rejected"]) == (1, 1)
    assert _errors(doc) == {0: [("events.0.amount", BEYOND)]}
