"""A batch's items completed from stored profiles are recorded checked, as a single request's
are (``assign_merged``): a forget or another write landing between the batch's read of the
profiles and its record is not undone; the items it made stale are redone in order.

Against the suite's real Redis and a model trained by the real job, over HTTP. The race is
made deterministic by running the forget (or the write) right after the batch's read.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.assignment.by_id import MERGE_TRIES
from app.history import Record
from app.history import recorder as recorder_module
from app.registry.store import ModelStore
from app.training.job import TrainResult
from tests.assignment.test_batch_order import (
    NEW,
    OLD,
    _answer,
    _full,
    _single,
    _stored,
    recording_client,
)

SAME = ("segment_id", "segment_name", "confidence", "features_from")


@pytest.fixture(scope="module")
def client(
    trained: tuple[ModelStore, TrainResult], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    yield from recording_client(trained, tmp_path_factory, "bchk")


def _new(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def _assign(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/assign", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _batch(client: TestClient, items: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post("/v1/assign/batch", json={"items": items})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _after_reads(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, then: Callable[[int], Awaitable[None]]
) -> list[int]:
    """Run ``then(n)`` right after the n-th read of stored profiles (before the record made
    from it); returns the list of reads made so far."""
    history = client.app.state.history
    real = history.profiles
    reads: list[int] = []

    async def read_then(*args: Any, **kwargs: Any) -> Any:
        found = await real(*args, **kwargs)
        reads.append(len(reads) + 1)
        await then(len(reads))
        return found

    monkeypatch.setattr(history, "profiles", read_then)
    return reads


def _writer(client: TestClient, customer: str, features: dict[str, Any]) -> Record:
    """The record another request would make storing ``features`` as the profile."""
    done = _assign(client, {"customer_id": _new("w"), "features": features})
    return Record.create(customer, done["segment_id"], done["model_version"], profile=features)


def _forget(client: TestClient, customer: str) -> Callable[[], Awaitable[Any]]:
    history = client.app.state.history

    async def forget() -> bool:
        found = await history.recorder.forget(customer)
        # records made in the forget's millisecond count as made before it (the tombstone
        # is by ms): the batch's own records come after, as requests sent after it would
        await asyncio.sleep(0.003)
        return bool(found)

    return forget


def _write(client: TestClient, customer: str, features: dict[str, Any]) -> Callable[[], Any]:
    """Another request's write of ``features`` (made now: it must run on the app's loop)."""
    history, record = client.app.state.history, _writer(client, customer, features)

    async def write() -> None:
        assert (await history.record(record)).recorded

    return write


@pytest.mark.parametrize("sent", [{"sessions_30d": 3}, {}], ids=["merged", "profile"])
def test_a_forget_between_a_batchs_read_and_record_is_not_undone(
    client: TestClient,
    example: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    sent: dict[str, Any],
) -> None:
    """Unchecked, the batch wrote the whole forgotten profile back. Checked, the item is
    redone: its customer is unknown now, the error a batch gives an unknown id, in place."""
    customer, other = _new("bforget"), _new("bother")
    _assign(client, {"customer_id": customer, "features": example[0]["features"]})
    unknown = _batch(client, [{"customer_id": _new("never"), "features": sent}])["results"][0]
    forgotten: list[bool] = []

    async def forget(n: int) -> None:
        if n == 1:
            forgotten.append(bool(await _forget(client, customer)()))

    _after_reads(client, monkeypatch, forget)
    answer = _batch(
        client,
        [
            {"customer_id": other, "features": example[1]["features"]},
            {"customer_id": customer, "features": sent},
        ],
    )
    monkeypatch.undo()

    assert forgotten == [True]
    assert (answer["assigned"], answer["failed"]) == (1, 1)
    first, second = answer["results"]
    assert first["status"] == "ok" and first["recorded"]
    assert second["status"] == "error" and second["customer_id"] == customer
    renamed = [
        {**e, "field": e["field"].replace("items.0.", "items.1.")} for e in unknown["errors"]
    ]
    assert second["errors"] == renamed
    assert client.get(f"/v1/customers/{customer}").status_code == 404
    assert client.get(f"/v1/customers/{other}").status_code == 200


def test_a_profile_written_between_a_batchs_read_and_record_is_merged_over(
    client: TestClient, example: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another request stored a new profile meanwhile: the item is merged over that one (what
    it would be had it come after), not over the profile read before."""
    customer = _new("bwrite")
    _assign(client, {"customer_id": customer, "features": example[0]["features"]})
    newer = example[2]["features"]
    write = _write(client, customer, newer)

    async def write_once(n: int) -> None:
        if n == 1:
            await write()

    reads = _after_reads(client, monkeypatch, write_once)
    result = _batch(client, [{"customer_id": customer, "features": {"sessions_30d": 31}}])
    monkeypatch.undo()

    assert reads == [1, 2]
    [done] = result["results"]
    whole = {**newer, "sessions_30d": 31}
    expected = _batch(client, [{"customer_id": _new("x"), "features": whole}])["results"][0]
    assert {k: done[k] for k in SAME} == {k: expected.get(k, "merged") for k in SAME}
    assert done["recorded"]
    assert client.get(f"/v1/customers/{customer}").json()["profile"] == whole


def test_a_profile_that_keeps_changing_is_read_merge_tries_times_then_recorded(
    client: TestClient, example: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each read is followed by another write: the item is redone after each of the first
    reads, and the last round records whatever profile is there now (checked only for the
    customer still having one), merged over the last profile read."""
    customer = _new("bchurn")
    _assign(client, {"customer_id": customer, "features": example[0]["features"]})
    writes = [_write(client, customer, example[10 + n]["features"]) for n in range(MERGE_TRIES)]

    async def write_each(n: int) -> None:
        await writes[n - 1]()

    reads = _after_reads(client, monkeypatch, write_each)
    [done] = _batch(client, [{"customer_id": customer, "features": {"plan": "pro"}}])["results"]
    monkeypatch.undo()

    assert reads == list(range(1, MERGE_TRIES + 1))
    assert done["status"] == "ok" and done["recorded"] and done["features_from"] == "merged"
    last_read = example[10 + MERGE_TRIES - 2]["features"]
    profile = client.get(f"/v1/customers/{customer}").json()["profile"]
    assert profile == {**last_read, "plan": "pro"}


@pytest.mark.parametrize("single", [False, True], ids=["batch", "single"])
def test_a_forget_after_the_profile_kept_changing_is_not_undone(
    client: TestClient,
    example: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    single: bool,
) -> None:
    """An audit's racing clients got three changed reads, then a record made unchecked, and
    a forget landing just before it was undone: the customer came back with the whole
    profile. After ``MERGE_TRIES`` changed reads the record still checks that the customer
    has a profile; the read after it finds the customer unknown."""
    customer = _new("bchurnforget")
    _assign(client, {"customer_id": customer, "features": example[0]["features"]})
    writes = [_write(client, customer, example[10 + n]["features"]) for n in range(MERGE_TRIES)]
    forget = _forget(client, customer)

    async def write_then_forget(n: int) -> None:
        if n < MERGE_TRIES:
            await writes[n - 1]()
        elif n == MERGE_TRIES:
            assert await forget()

    reads = _after_reads(client, monkeypatch, write_then_forget)
    item = {"customer_id": customer, "features": {"plan": "pro"}}
    if single:
        response = client.post("/v1/assign", json=item)
        monkeypatch.undo()
        assert response.status_code == 404, response.text
        assert response.json()["type"] == "/problems/unknown-customer"
    else:
        [done] = _batch(client, [item])["results"]
        monkeypatch.undo()
        assert done["status"] == "error" and done["customer_id"] == customer
    assert reads == list(range(1, MERGE_TRIES + 2))
    assert client.get(f"/v1/customers/{customer}").status_code == 404


CASES: dict[str, list[dict[str, Any]]] = {
    "id only after partial": [{"features": NEW}, {}],
    "three partials": [{"features": {"plan": "pro"}}, {"features": NEW}, {}],
    "whole after id only": [{}, {"features": "whole"}],
    "partial, whole, id only": [{"features": NEW}, {"features": "whole"}, {}],
    "id only after whole": [{"features": "whole"}, {}],
    "partial after whole": [{"features": "whole"}, {"features": {"sessions_30d": 31}}],
}


def _items(cid: str, case: list[dict[str, Any]], whole: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"customer_id": cid, **({"features": whole} if i.get("features") == "whole" else i)}
        for i in case
    ]


def _race_like_sequence(
    client: TestClient,
    example: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    event: str,
) -> dict[str, Any]:
    """Per case: what differs between a batch naming one customer several times, with
    ``event`` (a forget, another write) landing after its read, and the same requests sent one
    by one after that event (empty when nothing does)."""
    whole, newer = _full(example[5]["features"], **OLD), example[7]["features"]
    differ: dict[str, Any] = {}
    assert client.portal is not None
    for name, case in CASES.items():
        one_by_one, in_batch = _new("seq"), _new("bat")
        for cid in (one_by_one, in_batch):
            _assign(client, {"customer_id": cid, "features": whole})

        def happen(cid: str) -> Callable[[], Awaitable[Any]]:
            return _forget(client, cid) if event == "forget" else _write(client, cid, newer)

        assert client.portal.call(happen(one_by_one)) is not False
        expected = [_answer(_single(client, item)) for item in _items(one_by_one, case, whole)]
        event_now = happen(in_batch)

        async def race(n: int, event_now: Callable[[], Awaitable[Any]] = event_now) -> None:
            if n == 1:
                await event_now()

        with monkeypatch.context() as patch:
            _after_reads(client, patch, race)
            got = [_answer(r) for r in _batch(client, _items(in_batch, case, whole))["results"]]
        if got != expected or _stored(client, in_batch) != _stored(client, one_by_one):
            differ[name] = (got, expected, _stored(client, in_batch), _stored(client, one_by_one))
    return differ


@pytest.mark.parametrize("event", ["forget", "write"])
def test_a_customer_several_times_in_a_racing_batch_is_as_the_same_requests_in_sequence(
    client: TestClient,
    example: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    event: str,
) -> None:
    """A later item merged over an earlier one made from the read profile expects '=' (what
    that one left): when the earlier is stale, so is it, and both are redone in order; a
    whole item after it too, so that the redone item cannot land after it."""
    assert _race_like_sequence(client, example, monkeypatch, event) == {}


@pytest.mark.parametrize("event", ["forget", "write"])
def test_a_racing_batch_split_into_several_script_calls_is_still_as_in_sequence(
    client: TestClient,
    example: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    event: str,
) -> None:
    """Each record in a script call of its own: '=' finds no earlier record of its customer
    in its call, is stale, and is redone (over what the earlier one stored)."""
    monkeypatch.setattr(recorder_module, "RECORDS_PER_CALL", 1)
    assert _race_like_sequence(client, example, monkeypatch, event) == {}
