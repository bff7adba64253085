"""Several served models: a subscription receives every model's changes (each event names
its model, with that model's segment names), or only those of the models it filters on; a
model served after the subscriptions were made is delivered from their creation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.history import HistoryConfig, Recorder
from app.models import model_config
from app.webhooks import Dispatcher, SubscriptionStore
from app.webhooks.dispatcher import running
from app.webhooks.sources import Source
from tests.history.conftest import open_recorder
from tests.webhooks.conftest import (
    NAMES,
    Receiver,
    expected_events,
    fast,
    first_deliveries,
    scripted_run,
    verify_all,
    wait_for,
)

pytestmark = pytest.mark.anyio
CHURN_NAMES = {s: f"Churn risk {s[-1]}" for s in NAMES}


@pytest.fixture
async def churn(config: HistoryConfig) -> AsyncIterator[Recorder]:
    """The recording of a second model, under its own keys (as the service keeps them)."""
    async with open_recorder(model_config(config, "churn")) as rec:
        yield rec


def firsts(events: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """Per customer, the (type, segment) of each event in the order first delivered."""
    seen: set[str] = set()
    out: dict[str, list[tuple[str, str]]] = {}
    for event in events:
        if event["id"] not in seen:
            seen.add(event["id"])
            out.setdefault(event["customer_id"], []).append((event["type"], event["segment"]["id"]))
    return out


async def test_every_models_changes_reach_a_subscription_and_the_filter_holds(
    recorder: Recorder, churn: Recorder, receiver: Receiver
) -> None:
    sources = [Source("customers", tuple(recorder.keys.all_events()), lambda: NAMES)]
    store = SubscriptionStore(recorder.client, recorder.keys.prefix, lambda: list(sources))
    types = ["segment.entered", "segment.exited"]
    everything = await store.create(receiver.url, types, None, "every model")
    only = Receiver().start()
    try:
        churn_only = await store.create(only.url, types, None, "churn only", models=["churn"])
        assert churn_only.models == ["churn"] and everything.models is None
        ours, theirs = scripted_run(40, 3, seed=3), scripted_run(30, 4, seed=4)
        async with running(Dispatcher(store, fast())):
            await recorder.record_many(ours)
            # "churn" is served only now (after the subscriptions, after its first changes):
            # its changes since the subscriptions were made are delivered too
            await churn.record_many(theirs)
            sources.append(Source("churn", tuple(churn.keys.all_events()), lambda: CHURN_NAMES))
            mine, other = expected_events(ours), expected_events(theirs)
            total = sum(map(len, mine.values())) + sum(map(len, other.values()))
            await wait_for(lambda: len(receiver.delivered_ids()) >= total)
            wanted = sum(map(len, other.values()))
            await wait_for(lambda: len(only.delivered_ids()) >= wanted)
        by_model: dict[str, list[dict[str, Any]]] = {}
        for request in receiver.accepted():
            for event in request.events():
                by_model.setdefault(event["model"], []).append(event)
        assert set(by_model) == {"customers", "churn"}
        for model, names in (("customers", NAMES), ("churn", CHURN_NAMES)):
            for event in by_model[model]:
                assert event["to_segment"]["name"] == names[event["to_segment"]["id"]]
        # the same customer ids in both models: per model, each one's events in order
        assert firsts(by_model["customers"]) == mine
        assert firsts(by_model["churn"]) == other
        assert {e["model"] for r in only.accepted() for e in r.events()} == {"churn"}
        assert first_deliveries(only) == other
        assert verify_all(receiver, everything.secret) == len(receiver.received)
        assert verify_all(only, churn_only.secret) == len(only.received)
    finally:
        only.stop()
