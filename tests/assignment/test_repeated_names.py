"""A name repeated in one JSON object of a request is a 422 naming it, not the last one.

``{"customer_id": "a", "customer_id": "b"}`` was assigned (and recorded) as customer ``b``,
silently: the parsers keep the last value. The single and batch assignments now refuse such
an object naming the path (``features.spend``, ``items.1.customer_id``); a batch's item in
place, as any bad item. Proving a body repeats nothing is a count of its colons, so text
holding colons (``user:42``) or escapes must never be taken for a repeat (nor hide one).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.assignment.unique_names import RECHECK_BYTES, REPEATED, proven_unique, reparse, repeated
from app.registry.store import ModelStore
from app.training.job import TrainResult
from tests.assignment.conftest import served_client

PREFIX = "repeated-names:"


@pytest.fixture(scope="module")
def client(trained: tuple[ModelStore, TrainResult], service_redis: str) -> Iterator[TestClient]:
    with served_client(trained[0].root, PREFIX, service_redis) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def features(trained: tuple[ModelStore, TrainResult]) -> dict[str, Any]:
    _, result = trained
    return {f.name: (f.categories[0] if f.categories else 1.0) for f in result.manifest.features}


def _text(pairs: list[tuple[str, Any]]) -> str:
    """A JSON object written from ``pairs`` as they are (a name may come twice)."""
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in pairs) + "}"


def _item(customer: str, features: dict[str, Any], repeat: tuple[str, Any] | None = None) -> str:
    """An item's JSON; ``repeat``: a feature written once more, last."""
    written = [(k, json.dumps(v)) for k, v in features.items()]
    if repeat is not None:
        written.append((repeat[0], json.dumps(repeat[1])))
    return _text([("customer_id", json.dumps(customer)), ("features", _text(written))])


def test_a_repeated_name_is_a_422_naming_it(client: TestClient, features: dict[str, Any]) -> None:
    written = _text(
        [
            ("customer_id", '"rn-a"'),
            ("customer_id", '"rn-b"'),
            ("features", json.dumps(features)),
        ]
    )
    answer = client.post("/v1/assign", content=written)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"] == [{"field": "customer_id", "message": REPEATED}]
    assert client.get("/v1/customers/rn-b").status_code == 404  # nothing recorded

    spend = _item("rn-c", features, ("monetary", 5.0))
    answer = client.post("/v1/assign", content=spend)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"] == [{"field": "features.monetary", "message": REPEATED}]

    # beside another error: both named
    unknown = _item("rn-c", {**features, "shoe_size": 44}, ("monetary", 5.0))
    errors = client.post("/v1/assign", content=unknown).json()["errors"]
    assert {"field": "features.monetary", "message": REPEATED} in errors
    assert {"field": "features.shoe_size", "message": "unknown feature"} in errors


def test_a_body_read_with_bounds_names_a_repeat_too(
    client: TestClient, features: dict[str, Any]
) -> None:
    """A body with more strings than any valid item is read only as far as one could go
    (``bounded_json``): a repeat within that is named as well."""
    many = json.dumps({**features, "note": [""] * 10_000})  # 20,000 quotes: read bounded
    body = _text([("customer_id", '"rn-d"'), ("customer_id", '"rn-e"'), ("features", many)])
    answer = client.post("/v1/assign", content=body)
    assert answer.status_code == 422, answer.text
    assert {"field": "customer_id", "message": REPEATED} in answer.json()["errors"]


def test_colons_and_escapes_in_text_are_no_repeat(
    client: TestClient, features: dict[str, Any]
) -> None:
    for customer in ("user:42", "a::b:", "esc\\u003a1", 'quote\\":'):
        body = _item(customer, features).replace(json.dumps(customer), f'"{customer}"')
        answer = client.post("/v1/assign", content=body)
        assert answer.status_code == 200, (customer, answer.text)
    items = [{"customer_id": f"b:{i}", "features": features} for i in range(5)]
    batch = client.post("/v1/assign/batch", content=orjson.dumps({"items": items}))
    assert [r["status"] for r in batch.json()["results"]] == ["ok"] * 5


def test_a_batch_item_repeating_a_name_is_refused_in_place(
    client: TestClient, features: dict[str, Any]
) -> None:
    items = [
        _item("rn-f", features),
        _item("rn-g", features, ("monetary", 7.0)),
        _text([("customer_id", '"rn-h"'), ("customer_id", '"rn-i"')]),
        _item("rn-j:1", features),
    ]
    body = '{"items": [' + ", ".join(items) + "]}"
    answer = client.post("/v1/assign/batch", content=body)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["ok", "error", "error", "ok"]
    assert results[1]["errors"] == [{"field": "items.1.features.monetary", "message": REPEATED}]
    assert results[2]["errors"] == [{"field": "items.2.customer_id", "message": REPEATED}]

    twice = '{"items": [' + items[0] + '], "items": [' + items[3] + "]}"
    answer = client.post("/v1/assign/batch", content=twice)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"] == [{"field": "items", "message": REPEATED}]


def test_an_item_nested_deeply_carries_no_repeat_past_the_check(
    client: TestClient, features: dict[str, Any]
) -> None:
    """orjson reads 1,024 levels of nesting and the standard library's parser, which finds
    the repeats, some 900 in a request: a sibling item nested between the two took another
    item's repeated ``customer_id`` past the check (assigned and recorded as the last one).
    Such a body is refused whole, as one nested deeper than orjson reads is."""
    deep = "[" * 1_010 + "]" * 1_010
    nested = _text([("customer_id", '"rn-k"'), ("features", deep)])
    twice = _text(
        [("customer_id", '"rn-l"'), ("customer_id", '"rn-m"'), ("features", json.dumps(features))]
    )
    answer = client.post("/v1/assign/batch", content=f'{{"items": [{nested}, {twice}]}}')
    assert answer.status_code == 400, answer.text
    assert client.get("/v1/customers/rn-m").status_code == 404  # nothing recorded


def test_a_utf16_body_hides_no_repeat_behind_an_escaped_colon(
    client: TestClient, features: dict[str, Any]
) -> None:
    """The standard library read a UTF-16 body (orjson refuses it), where the count's search
    for an escaped colon (``\\u003a`` in UTF-8) found none: the id's escaped colon paid for
    the repeated feature's, so ``monetary`` was taken at its last value without a word. The
    contract is UTF-8: such a body is refused before it is parsed (a 400, not UTF-8), valid
    or not, and nothing is recorded."""
    escaped = '"rn-n\\u003a1"'  # the id rn-n:1, its colon escaped
    body = _item("rn-n", features, ("monetary", 1e6)).replace('"rn-n"', escaped)
    valid = _item("rn-n", features).replace('"rn-n"', escaped)
    for path, text, codec in [
        ("/v1/assign", body, "utf-16-le"),
        ("/v1/assign/batch", f'{{"items": [{body}]}}', "utf-16"),
        ("/v1/assign", valid, "utf-16-le"),
    ]:
        answer = client.post(path, content=text.encode(codec))
        assert answer.status_code == 400, answer.text
        assert answer.json()["errors"][0]["message"].startswith("not UTF-8 (a NUL byte")
    assert client.get("/v1/customers/rn-n:1").status_code == 404


NAMES = st.sampled_from(["a", "b", "a:b", ":", "é"])
TEXT = st.sampled_from(
    ['"x"', '"x:y"', '":"', '"\\u003a"', '"\\u003A:"', '"\\\\:"', '"\\u00e9:"', "1", "[]"]
)


@st.composite
def objects(draw: st.DrawFn, depth: int = 0) -> str:
    names = draw(st.lists(NAMES, max_size=4))
    values = [
        draw(objects(depth + 1)) if depth < 2 and draw(st.booleans()) else draw(TEXT) for _ in names
    ]
    return _text(list(zip(names, values, strict=True)))


@settings(max_examples=500, deadline=None)
@given(body=objects())
@example(body='{"a": "x:y", "a": 1}')  # a repeat beside a colon in text
@example(body='{"a": "\\u003a", "b": 1}')  # an escaped colon: no repeat
@example(body='{"a": "\\u003a", "b": 1, "b": 2}')  # a repeat beside an escaped colon
def test_the_count_never_proves_a_body_that_repeats_a_name(body: str) -> None:
    """The cheap proof against the obvious way (``object_pairs_hook``): what it proves
    repeats nothing, and ``repeated`` names exactly the objects that repeat a name."""
    found: list[list[str]] = []
    names, texts = 0, []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal names
        written = [k for k, _ in pairs]
        found.append(sorted({k for k in written if written.count(k) > 1}))
        kept = dict(pairs)
        names += len(kept)
        texts.extend([*kept, *(v for v in kept.values() if isinstance(v, str))])
        return kept

    json.loads(body, object_pairs_hook=hook)
    repeats = any(found)
    for encoding in ("utf-8", "utf-16-le"):  # (json.loads reads both; the count, bytes)
        if proven_unique(body.encode(encoding), names, lambda: texts):
            assert not repeats, (encoding, body)
    assert bool(repeated(reparse(body.encode()))) == repeats, body


def test_escaped_text_keeps_a_batch_on_the_one_pass_decoder() -> None:
    """``json.dumps`` escapes non-ASCII text (``\\u00eb``): such a batch, colons in its ids
    too, is proven free of repeats by the count and decoded in one pass, not parsed twice."""
    from app.assignment.validation import decode_valid_batch

    kinds = {"spend": "numeric", "city": "categorical"}
    items = [
        {"customer_id": f"zoë:{i}", "features": {"spend": 1.0, "city": "Köln"}} for i in range(3)
    ]
    body = json.dumps({"items": items}).encode()
    assert b"\\u00eb" in body
    decoded = decode_valid_batch(body, kinds, 128, 10)
    assert decoded is not None and decoded[0] == [f"zoë:{i}" for i in range(3)]
    twice = body.replace(b'"spend": 1.0', b'"spend": 1.0, "spend": 2.0', 1)
    assert decode_valid_batch(twice, kinds, 128, 10) is None  # the item-by-item way names it


def test_a_batch_too_large_to_recheck_is_refused_whole_before_any_recheck(
    client: TestClient, features: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hostile tester's 16 MB body of small nested objects kept the event loop 3.6 s in the
    standard library's parser (7.2 s with repeats; orjson reads it in 0.3 s), and 329,000
    items took 5.2 s before the 413 for their number. A batch over the item limit is refused
    first, and a body over ``RECHECK_BYTES`` the count cannot clear is refused whole, never
    parsed again."""
    import app.assignment.unique_names as unique_names

    def never(body: bytes) -> Any:
        raise AssertionError("parsed again")

    monkeypatch.setattr(unique_names, "reparse", never)
    name = next(iter(features))
    one = _item("rn-many", features, repeat=(name, features[name]))
    many = client.post(
        "/v1/assign/batch",
        content="{" + f'"items": [{", ".join([one] * 10_001)}]' + "}",
        headers={"content-type": "application/json"},
    )
    assert many.status_code == 413 and "more than the limit of 10,000" in many.text
    padded = {**features, "note": "x" * 400}  # an unknown feature: refused in place anyway
    items = [_item(f"rn-{i}", padded) for i in range(9_999)]
    items.append(_item("rn-last", features, repeat=(name, features[name])))
    body = "{" + f'"items": [{", ".join(items)}]' + "}"
    assert len(body) > unique_names.RECHECK_BYTES
    big = client.post(
        "/v1/assign/batch", content=body, headers={"content-type": "application/json"}
    )
    assert big.status_code == 413, big.text[:300]
    assert f"only a body of at most {unique_names.RECHECK_BYTES:,} bytes" in big.text


def test_a_routed_body_repeating_a_name_is_refused_and_changes_nothing(
    client: TestClient,
) -> None:
    """A hostile tester's `PATCH /v1/segments/{id}` with `{"name": "a", "name": "b"}` renamed
    the segment "b", and `POST /v1/webhooks` with two `url`s subscribed the last one: FastAPI's
    parse takes the last value silently, where the assignment endpoints refuse a repeat. Now
    every routed body is checked so: a 422 naming it, and nothing changed."""
    segments = client.get("/v1/segments").json()["segments"]
    segment, before = segments[0]["id"], segments[0]["name"]
    headers = {"content-type": "application/json"}
    for path, method, body in (
        (f"/v1/segments/{segment}", "PATCH", '{"name": "a", "name": "b"}'),
        (f"/v1/segments/{segment}", "PATCH", '{"action": "x", "name": "a", "action": "y"}'),
        ("/v1/webhooks", "POST", '{"url": "https://a.example", "url": "https://b.example"}'),
        ("/v1/webhooks/wh_0123456789abcdef", "PATCH", '{"paused": true, "paused": false}'),
    ):
        answer = client.request(method, path, content=body, headers=headers)
        assert answer.status_code == 422, (path, body, answer.text)
        name = "action" if '"action": "y"' in body else json.loads(body).popitem()[0]
        assert answer.json()["errors"] == [{"field": name, "message": REPEATED}], answer.text
    assert client.get(f"/v1/segments/{segment}").json()["name"] == before
    assert client.get("/v1/webhooks").json()["webhooks"] == []
    # a body that repeats nothing is the route's to check, as before (the shared store is
    # not edited here: its own check refuses this one)
    blank = client.patch(f"/v1/segments/{segment}", json={"name": "", "action": "x"})
    assert blank.status_code == 422, blank.text
    assert [e["field"] for e in blank.json()["errors"]] == ["name"]


def test_a_routed_body_past_the_recheck_bound_is_refused_not_read_last_wins(
    client: TestClient,
) -> None:
    """The check of a routed body for repeated names stopped at 1 MiB, so a repeat padded
    past it with blanks was taken last-wins: a segment edit set the second action and a
    subscription the second URL, 200 and 201 (hostile audit). No valid body of these
    endpoints comes near that size (their fields are bounded far below it): such a body is a
    413, before the route reads it (which also spared FastAPI's validation of a 16 MB body of
    a million names, seconds of CPU), and nothing changes."""
    segment = client.get("/v1/segments").json()["segments"][0]["id"]
    before = client.get(f"/v1/segments/{segment}").json()["action"]
    pad = " " * (RECHECK_BYTES + 1)
    for method, path, body in (
        ("PATCH", f"/v1/segments/{segment}", '{"action": "a",' + pad + '"action": "b"}'),
        ("POST", "/v1/webhooks", '{"url": "https://a.example",' + pad + '"url": "https://b.x"}'),
    ):
        answer = client.request(
            method, path, content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 413, answer.text
        assert answer.json()["type"] == "/problems/body-too-large", answer.text
    assert client.get(f"/v1/segments/{segment}").json()["action"] == before
    assert client.get("/v1/webhooks").json()["webhooks"] == []


def test_a_routed_body_with_an_integer_of_thousands_of_digits_says_so(client: TestClient) -> None:
    """A hostile tester's segment edit `{"name": 1000...0}` (5,000 zeros, valid JSON) was a 400
    "There was an error parsing the body" (Python converts integers of at most 4,300 digits):
    now a 422 saying what the body holds."""
    segment = client.get("/v1/segments").json()["segments"][0]["id"]
    body = '{"name": 1' + "0" * 5000 + "}"
    for method, path in (("PATCH", f"/v1/segments/{segment}"), ("POST", "/v1/webhooks")):
        answer = client.request(
            method, path, content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"] == [
            {"field": "body", "message": "holds an integer of more than 4,300 digits"}
        ]
