"""An event's ``type`` is read as the training log's ``refund_column`` is.

A model trained with ``refund_column = "type"`` reads a line saying ``return`` (or any of
``refund_values``, default refund/refunded/return/returned, trimmed, any case) as a refund,
while ``POST /v1/events`` refused ``"type": "return"`` ("must be 'order' or 'refund'"). Now
those words are a refund over HTTP too, with the model's own ``refund_values``; ``order`` is an
order in any case; other words (the log reads them as purchases) are refused, naming the
words taken: an applied event cannot be taken back, and a misspelt refund would count as an
order for good.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.datasets import make_transactions
from app.registry.store import ModelStore
from app.training.config import parse_config
from app.training.job import train
from tests.conftest import EXAMPLES
from tests.events.conftest import clocked_client
from tests.events.test_api import NOW, event


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    """Two models of one log whose refunds are positive amounts marked in a ``type`` column:
    ``log`` (marked ``Return``, the default refund_values) and ``storno`` (marked ``Storno``,
    refund_values = ["storno"])."""
    folder = tmp_path_factory.mktemp("event-types")
    log, _ = make_transactions(n_customers=400, seed=3)
    refund = log["amount"].to_numpy() < 0
    assert refund.any()
    log["amount"] = log["amount"].abs()
    store = ModelStore(folder / "store")
    for name, word, values in [("log", "Return", None), ("storno", "Storno", ["storno"])]:
        log["type"] = np.where(refund, word, "sale")
        data = folder / f"{name}.csv"
        log.to_csv(data, index=False)
        raw = tomllib.loads((EXAMPLES / "transactions.toml").read_text())
        raw["data"]["path"] = str(data)
        raw["data"]["transactions"]["refund_column"] = "type"
        if values:
            raw["data"]["transactions"]["refund_values"] = values
            # a subscription's skipped deliveries, no sale: left out (none in this log)
            raw["data"]["transactions"]["exclude_column"] = "type"
            raw["data"]["transactions"]["exclude_values"] = ["skip", "pause"]
        raw["model"] |= {"name": name, "selection_bootstraps": 0}
        config = parse_config(raw, base_dir=folder)
        result = train(config, store, promote=True)
        assert result.manifest.model_name == name
    return store


@pytest.fixture
def client(store: ModelStore, tmp_path: Path, prefix: str) -> Iterator[TestClient]:
    yield from clocked_client(store.root, "log", tmp_path, prefix, NOW)


def _history(customer: str, refund_type: str) -> list[dict[str, Any]]:
    """Three orders, the last one refunded, the refund's type written ``refund_type``."""
    return [
        event(customer, 90, 50.0, order_id=f"{customer}-1"),
        event(customer, 40, 80.0, order_id=f"{customer}-2"),
        event(customer, 10, 30.0, order_id=f"{customer}-3", type=" ORDER "),
        event(customer, 5, 30.0, order_id=f"{customer}-3", type=refund_type),
    ]


def _profile(client: TestClient, customer: str) -> dict[str, Any]:
    found = client.get(f"/v1/customers/{customer}?model=log")
    assert found.status_code == 200, found.text
    return dict(found.json()["profile"])


def test_the_logs_refund_words_are_refunds_in_any_case(client: TestClient) -> None:
    answer = client.post("/v1/events", json={"events": _history("plain", "refund")})
    assert answer.json()["rejected"] == 0, answer.text
    want = _profile(client, "plain")
    assert want["monetary"] == pytest.approx(130.0) and want["frequency"] == 3
    for i, word in enumerate(["return", "Return", " RETURNED ", "refunded", "Refund"]):
        customer = f"c{i}"
        answer = client.post("/v1/events", json={"events": _history(customer, word)})
        assert answer.status_code == 200, answer.text
        assert (answer.json()["accepted"], answer.json()["rejected"]) == (4, 0), word
        assert _profile(client, customer) == want, word


def test_other_words_are_refused_naming_the_words_taken(client: TestClient) -> None:
    for word in ("sale", "purchase", "refnd", "Storno", ""):
        answer = client.post("/v1/events", json={"events": [event("w", 1, 5.0, type=word)]})
        assert answer.status_code == 200, answer.text
        doc = answer.json()
        assert doc["rejected"] == 1, word
        error = doc["errors"][0]["errors"][0]
        assert error["field"] == "events.0.type"
        assert "'order' or 'refund'" in error["message"] and "'return'" in error["message"]


def test_a_models_own_refund_values_are_its_refunds(client: TestClient) -> None:
    events = [
        event("s1", 20, 40.0, order_id="s1-1"),
        event("s1", 2, 15.0, order_id="s1-1", type="STORNO"),
    ]
    answer = client.post("/v1/events?model=storno", json={"events": events})
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 2
    profile = client.get("/v1/customers/s1?model=storno").json()["profile"]
    assert profile["monetary"] == pytest.approx(25.0)
    refused = client.post(
        "/v1/events?model=storno", json={"events": [event("s1", 1, 5.0, type="return")]}
    )
    error = refused.json()["errors"][0]["errors"][0]
    assert "'storno'" in error["message"] and "'return'" not in error["message"], error


def test_a_word_of_the_logs_lines_of_no_sale_says_such_an_event_is_not_sent(
    client: TestClient,
) -> None:
    """A subscription model trained with its skip lines left out (exclude_values): an event
    of type 'skip' was told only "must be 'order' or 'refund'", as if to send it as one of
    them, where training left such lines out; a model without exclude_values says the
    general words."""
    refused = client.post(
        "/v1/events?model=storno", json={"events": [event("s2", 1, 0.0, type=" Skip ")]}
    )
    assert refused.status_code == 200, refused.text
    assert refused.json()["rejected"] == 1
    error = refused.json()["errors"][0]["errors"][0]
    assert error == {
        "field": "events.0.type",
        "message": "'Skip' is no sale for this model (its training log's lines of it were left "
        "out: exclude_values), so such an event is not sent; an event must be 'order' or "
        "'refund' (any case; 'storno' are refunds too, as in the training log)",
    }, error
    plain = client.post("/v1/events", json={"events": [event("s2", 1, 0.0, type="skip")]})
    message = plain.json()["errors"][0]["errors"][0]["message"]
    assert message.startswith("must be 'order' or 'refund'"), message
