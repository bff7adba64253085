"""Fuzzing the HTTP API: nothing a client sends produces a 5xx, and every error is a problem.

Hypothesis drives the real app (TestClient, a model trained by the real job, the suite's
Redis under a key prefix of this module's own) with valid requests, which must get 200, and
with every kind of damage: random JSON in any position, missing and unknown keys, wrong
types, huge and non-finite numbers, control characters, lone surrogates and long strings,
JSON nested deeper than parsers go, non-object bodies, bytes that are not JSON, and time
windows at the ends of a datetime's range. A bounded schemathesis run then checks the
service against the committed ``openapi/openapi.json`` with a valid API key (auth stays on,
as in production), with every check schemathesis has (``st run -c all``), in positive and
negative modes: schema-valid requests are accepted, schema-violating ones refused, answers
conform; any finding fails the test.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, unquote, urlencode

import httpx
import pytest
import redis
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.core.parameters import ParameterLocation
from threadpoolctl import threadpool_limits

from app.assignment.validation import is_unicode
from app.main import create_app
from app.registry.overrides import name_key
from app.registry.store import ModelStore
from app.security import new_key
from app.settings import Settings
from app.training.job import train
from app.visible import is_blank
from tests.conftest import ROOT, example_config

COMMITTED_OPENAPI = ROOT / "openapi" / "openapi.json"
FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory: pytest.TempPathFactory, customers_csv: Any) -> ModelStore:
    store = ModelStore(tmp_path_factory.mktemp("fuzz-store"))
    config = example_config("customers", customers_csv, stability_bootstraps=0, k_min=3, k_max=4)
    with threadpool_limits(1):  # see test_compiled: BLAS threads thrash on a busy machine
        train(config, store, promote=True)
    return store


@pytest.fixture(scope="module")
def client(
    fuzz_store: ModelStore, service_redis: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    prefix = f"fuzz-{uuid.uuid4().hex[:8]}:"
    key, entry = new_key(["assign", "read", "admin"], label="fuzz")
    app_settings = Settings(
        model_store=fuzz_store.root,
        model_name="customers",
        api_keys=entry,
        access_log=False,
        redis_url=service_redis,
        key_prefix=prefix,
        data_dir=tmp_path_factory.mktemp("fuzz-data"),
    )
    # a 500 must come back as a response the test can inspect, not as an exception
    with TestClient(
        create_app(app_settings),
        raise_server_exceptions=False,
        headers={"Authorization": f"Bearer {key}"},
    ) as test_client:
        yield test_client
    with redis.Redis.from_url(service_redis) as r:
        keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            r.delete(*keys)


@pytest.fixture(scope="module")
def schema(fuzz_store: ModelStore) -> dict[str, Any]:
    """The serving model's features: kind and known categories of each, and segment ids."""
    manifest = fuzz_store.manifest("customers", fuzz_store.promoted("customers") or "")
    return {
        "kinds": {f.name: f.type for f in manifest.features},
        "categories": {f.name: f.categories for f in manifest.features if f.categories},
        "segments": [s.id for s in manifest.segments],
        "version": manifest.version,
    }


# -- strategies -----------------------------------------------------------------------------
# Every finite float, up to +-1.8e308: squaring one overflows, and must still not be a 500.
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
# Lone surrogates: JSON text can spell one ("\ud800", as ``encode`` does); UTF-8 cannot.
SURROGATES = st.characters(categories=["Cs"])


def texts(max_size: int) -> st.SearchStrategy[str]:
    """Any text; as often, text with lone surrogates among other characters."""
    return st.text(max_size=max_size) | st.text(st.characters() | SURROGATES, max_size=max_size)


@dataclass(frozen=True)
class Deep:
    """A value nested ``depth`` arrays or objects deep, which ``encode`` writes as such.

    The json module cannot (it recurses), and orjson refuses more than 1024 levels: around
    that limit and far beyond is where a parser gives up."""

    depth: int
    brackets: str

    def marker(self) -> str:
        return f"<deep {self.brackets} {self.depth}>"

    @staticmethod
    def expand(match: re.Match[bytes]) -> bytes:
        depth = int(match[2])
        if match[1] == b"[":
            return b"[" * depth + b"]" * depth
        return b'{"a":' * depth + b"1" + b"}" * depth


DEEP_MARKER = re.compile(rb'"<deep ([\[{]) (\d+)>"')
DEEP = st.builds(
    Deep,
    depth=st.sampled_from([1023, 1024, 1025, 5_000]) | st.integers(500, 3_000),
    brackets=st.sampled_from("[{"),
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | FLOATS
    | texts(max_size=20)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(texts(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
VALID_IDS = st.text(min_size=1, max_size=128).filter(
    lambda s: bool(s.strip()) and s.isprintable() and not is_blank(s)
)
BAD_IDS = st.one_of(
    st.just(""),
    st.just("   "),
    st.text(min_size=129, max_size=400),
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc"]), min_size=1, max_size=5),
    st.builds(lambda s: f"ok{s}ok", st.sampled_from(["\x00", "\n", "\x1b", "\u2028", "\x7f"])),
    st.sampled_from(["\u200b", "\ufeff\u2060", "\u3164", "\u0301", " \u00ad "]),  # show nothing
    st.text(SURROGATES, min_size=1, max_size=3),
    st.builds(lambda s: f"ok{s}ok", SURROGATES),
    JSON_VALUES.filter(lambda v: not isinstance(v, str)),
)


# A numeric feature is valid strictly within +-2**63 (integer or not); squaring one still
# overflows a float32 and must not be a 500.
NUMBERS = st.floats(-(2.0**63), 2.0**63, exclude_min=True, exclude_max=True)


def feature_value(kind: str, categories: list[str] | None) -> st.SearchStrategy[Any]:
    if kind == "numeric":
        return st.none() | st.integers(-(2**53), 2**53) | NUMBERS
    known = st.sampled_from(categories) if categories else st.nothing()
    return st.none() | known | st.text(max_size=40) | st.booleans() | st.integers() | FLOATS


def valid_item(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    features = {
        name: feature_value(kind, schema["categories"].get(name))
        for name, kind in schema["kinds"].items()
    }
    return st.fixed_dictionaries(
        {"customer_id": VALID_IDS, "features": st.fixed_dictionaries(features)}
    )


@st.composite
def damaged_item(draw: st.DrawFn, schema: dict[str, Any]) -> Any:
    """A valid item with one or more kinds of damage (it may, rarely, stay valid)."""
    item: dict[str, Any] = draw(valid_item(schema))
    names = sorted(schema["kinds"])
    for _ in range(draw(st.integers(1, 3))):
        damage = draw(st.integers(0, 10))
        features = item.get("features")
        if damage == 0:
            item.pop(draw(st.sampled_from(["customer_id", "features"])), None)
        elif damage == 1:
            item[draw(texts(max_size=15))] = draw(JSON_VALUES)
        elif damage == 2:
            item["customer_id"] = draw(BAD_IDS)
        elif damage == 3:
            item["features"] = draw(JSON_VALUES)
        elif isinstance(features, dict) and damage == 4:
            features.pop(draw(st.sampled_from(names)), None)
        elif isinstance(features, dict) and damage == 5:
            features[draw(texts(max_size=30))] = draw(JSON_VALUES)
        elif isinstance(features, dict) and damage == 6:  # wrong types, nested garbage
            features[draw(st.sampled_from(names))] = draw(JSON_VALUES)
        elif isinstance(features, dict) and damage == 7:  # huge and long values
            big = st.sampled_from([2**63 + 1, -(2**64), 10**30, "x" * 257, "y" * 10_000])
            features[draw(st.sampled_from(names))] = draw(big)
        elif damage == 8:
            return draw(JSON_VALUES)
        elif damage == 9:  # nested deeper than parsers go: the item, or a value in it
            deep = draw(DEEP)
            where = draw(st.sampled_from(["item", "customer_id", "features", *names]))
            if where == "item":
                return deep
            (features if where in names and isinstance(features, dict) else item)[where] = deep
        elif isinstance(features, dict):  # unicode, control characters, surrogates: categories
            features[draw(st.sampled_from(names))] = draw(texts(max_size=30))
    return item


def encode(body: Any, non_finite: bool = False) -> bytes:
    """UTF-8 JSON (big integers too); with ``non_finite``, NaN/Infinity tokens are allowed.

    Text with a lone surrogate, which UTF-8 cannot hold, is written with JSON's escapes, and
    a ``Deep`` value as its nested arrays or objects."""
    try:
        text = json.dumps(body, allow_nan=non_finite, ensure_ascii=False, default=Deep.marker)
        content = text.encode()
    except UnicodeEncodeError:
        content = json.dumps(body, allow_nan=non_finite, default=Deep.marker).encode()
    return DEEP_MARKER.sub(Deep.expand, content)


NOT_JSON = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"",
            b"{",
            b"nul",
            b"\xff\xfe\x00",
            b'{"customer_id": "a", "features": {"monetary": NaN}}',
            b'{"customer_id": "a", "features": {"monetary": -Infinity}}',
            b'{"customer_id": "a", "features": {"monetary": 1e400}}',
            b'{"customer_id": "a" "features": {}}',
            b'{"customer_id": "a", "features": {}}garbage',
            b'{"items": [' + b'{"customer_id": "a", "features": {}},' * 50 + b"]}",
            b"\xef\xbb\xbf{}",
            b'{"customer_id": "\xed\xa0\x80", "features": {}}',  # a surrogate's bytes (not UTF-8)
            b'{"items": [{"customer_id": "\\udfff", "features": {}}]}',
        ]
    ),
    st.text(max_size=100).map(str.encode),
    DEEP.map(encode),
)


def check_response(response: httpx.Response, valid: bool) -> Any:
    """No 5xx; a 4xx is a problem document; a 422 names each bad field; valid gives 200."""
    status = response.status_code
    assert status < 500, (status, response.text[:1000])
    if valid:
        assert status == 200, response.text[:1000]
    if 400 <= status < 500:
        assert response.headers["content-type"] == "application/problem+json", response.headers
        problem = response.json()
        assert problem["status"] == status
        assert isinstance(problem["title"], str) and problem["title"]
        assert isinstance(problem["detail"], str) and problem["detail"]
        if status == 422:
            assert problem["errors"], problem
            assert all(isinstance(e["field"], str) for e in problem["errors"]), problem
    return response.json() if status == 200 else None


def check_assignment(doc: dict[str, Any], schema: dict[str, Any]) -> None:
    assert doc["segment_id"] in schema["segments"]
    assert isinstance(doc["confidence"], float | int) and 0.0 <= doc["confidence"] <= 1.0


# -- the properties -------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/assign", "/v1/assign/batch"])
def test_valid_requests_are_answered(client: TestClient, schema: dict[str, Any], path: str) -> None:
    @FUZZ
    @given(items=st.lists(valid_item(schema), min_size=1, max_size=5))
    def run(items: list[dict[str, Any]]) -> None:
        body = items[0] if path == "/v1/assign" else {"items": items}
        doc = check_response(client.post(path, content=encode(body), headers=JSON), valid=True)
        if path == "/v1/assign":
            check_assignment(doc, schema)
            assert doc["customer_id"] == items[0]["customer_id"]
            return
        assert (doc["assigned"], doc["failed"]) == (len(items), 0)
        for result, item in zip(doc["results"], items, strict=True):
            assert result["status"] == "ok" and result["customer_id"] == item["customer_id"]
            check_assignment(result, schema)

    run()


def test_damaged_single_requests_never_fail_the_server(
    client: TestClient, schema: dict[str, Any]
) -> None:
    @FUZZ
    @given(
        body=damaged_item(schema),
        non_finite=st.sampled_from([None, math.nan, math.inf, -math.inf]),
        at=st.sampled_from(["monetary", "recency_days"]),
    )
    def run(body: Any, non_finite: float | None, at: str) -> None:
        features = body.get("features") if isinstance(body, dict) else None
        if non_finite is not None and isinstance(features, dict):
            features[at] = non_finite
        content = encode(body, non_finite=non_finite is not None)
        response = client.post("/v1/assign", content=content, headers=JSON)
        doc = check_response(response, valid=False)
        if doc is not None:
            check_assignment(doc, schema)

    run()


def test_damaged_batches_never_fail_the_server(client: TestClient, schema: dict[str, Any]) -> None:
    @FUZZ
    @given(
        items=st.lists(damaged_item(schema) | valid_item(schema), min_size=1, max_size=6),
        envelope=st.integers(0, 5),
        extra=JSON_VALUES,
    )
    def run(items: list[Any], envelope: int, extra: Any) -> None:
        body: Any = {"items": items}
        if envelope == 1:
            body["extra"] = extra
        elif envelope == 2:
            body = {"items": extra}
        elif envelope == 3:
            body = items
        elif envelope == 4:
            body = {"items": []}
        response = client.post("/v1/assign/batch", content=encode(body), headers=JSON)
        doc = check_response(response, valid=False)
        if doc is None:
            return
        sent = body["items"] if isinstance(body, dict) else None
        assert isinstance(sent, list) and sent, body  # only a non-empty list of items is answered
        assert len(doc["results"]) == len(sent) == doc["assigned"] + doc["failed"]
        for i, result in enumerate(doc["results"]):
            assert result["index"] == i
            if result["status"] == "ok":
                check_assignment(result, schema)
            else:  # reported in place, naming the item's fields
                assert result["errors"]
                assert all(e["field"].startswith(f"items.{i}") for e in result["errors"])

    run()


@pytest.mark.parametrize("path", ["/v1/assign", "/v1/assign/batch", "/v1/segments/seg-001"])
def test_bodies_that_are_not_json_objects(client: TestClient, path: str) -> None:
    @FUZZ
    @given(body=NOT_JSON | JSON_VALUES.filter(lambda v: not isinstance(v, dict)).map(encode))
    def run(body: bytes) -> None:
        method = "PATCH" if path.startswith("/v1/segments") else "POST"
        response = client.request(method, path, content=body, headers=JSON)
        check_response(response, valid=False)
        assert response.status_code != 200 or body.strip().startswith(b"{")

    run()


def test_segment_edits(client: TestClient, schema: dict[str, Any]) -> None:
    fields = st.fixed_dictionaries(
        {},
        optional={
            "name": st.none() | st.text(min_size=1, max_size=120) | st.text(SURROGATES, min_size=1),
            "description": st.none() | texts(max_size=300),
            "action": st.none() | texts(max_size=300),
        },
    )

    @settings(FUZZ, max_examples=150)
    @given(
        segment=st.sampled_from(schema["segments"]) | st.text(max_size=80),
        patch=fields | JSON_VALUES,
        extra=st.none() | texts(max_size=10),
    )
    def run(segment: str, patch: Any, extra: str | None) -> None:
        if extra is not None and isinstance(patch, dict):
            patch = {**patch, extra: "x"}
        name = patch.get("name") if isinstance(patch, dict) else None
        # a name another segment already has (as a reader sees it) is a 409, a blank one a 422
        segments = client.get("/v1/segments").json()["segments"]
        others = [s["name"] for s in segments if s["id"] != segment]
        taken = isinstance(name, str) and name_key(name) in map(name_key, others)
        response = client.patch(
            f"/v1/segments/{quote(segment, safe='')}", content=encode(patch), headers=JSON
        )
        doc = check_response(response, valid=False)
        valid = (
            segment in schema["segments"]
            and isinstance(patch, dict)
            and patch
            and set(patch) <= {"name", "description", "action"}
            and all(v is None or (isinstance(v, str) and readable(v)) for v in patch.values())
            and patch.get("name", "n") != ""
            and not (isinstance(name, str) and is_blank(name))
            and all(len(patch.get(k) or "") <= n for k, n in LONGEST.items())
        )
        if valid and taken:
            assert response.status_code == 409, response.text
            assert response.json()["type"] == "/problems/name-taken"
        elif valid:
            assert doc is not None, response.text
            assert doc["id"] == segment
            if isinstance(patch.get("name"), str):
                assert doc["name"] == patch["name"]

    run()


LONGEST = {"name": 120, "description": 2000, "action": 1000}
HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def readable(text: str) -> bool:
    """Segment text the service stores: valid Unicode, no control characters or overrides."""
    return is_unicode(text) and HIDDEN.search(text) is None


GET_PATHS = [
    "/v1/segments/{}",
    "/v1/segments/{}/members",
    "/v1/customers/{}",
    "/v1/customers/{}/history",
    "/v1/models/{}",
]


def test_path_and_query_parameters(client: TestClient, schema: dict[str, Any]) -> None:
    @settings(FUZZ, max_examples=300)
    @given(
        template=st.sampled_from(GET_PATHS),
        value=texts(max_size=200) | st.sampled_from([*schema["segments"], schema["version"]]),
        query=st.dictionaries(
            st.sampled_from(["limit", "cursor", "since", "until", "x"]),
            texts(max_size=30) | st.integers().map(str),
            max_size=3,
        ),
    )
    def run(template: str, value: str, query: dict[str, str]) -> None:
        # a lone surrogate goes as its bytes (%ED%A0%80), which are not UTF-8
        path = template.format(quote(value, safe="", errors="surrogatepass"))
        params = urlencode(query, quote_via=quote, errors="surrogatepass")
        response = client.get(f"{path}?{params}" if params else path)
        check_response(response, valid=False)
        # the segment's page: a path of "." or "/" is the list, after httpx or a redirect
        segment = template == "/v1/segments/{}" and response.url.raw_path == path.encode()
        if segment and response.status_code == 200 and value and not query:
            assert response.json()["id"] == value

    run()
    migrations = client.get("/v1/migrations", params={"since": "yesterday", "until": "-1"})
    check_response(migrations, valid=False)


# Any datetime, naive (UTC) or at any offset; as often within two days of the ends of
# datetime's range (years 1 and 9999), where an offset or a bucket's end leaves it.
OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
NEAR = st.timedeltas(timedelta(0), timedelta(days=2))
TIMES = st.builds(
    lambda time, tz: time.replace(tzinfo=tz),
    st.datetimes() | NEAR.map(lambda d: datetime.min + d) | NEAR.map(lambda d: datetime.max - d),
    st.none() | OFFSETS,
)


def test_migration_windows(client: TestClient) -> None:
    @settings(FUZZ, max_examples=150)
    @given(
        since=st.none() | TIMES,
        length=st.none() | st.timedeltas(timedelta(days=-1), timedelta(days=400)),
        until=st.none() | TIMES | st.text(max_size=30),
    )
    def run(since: datetime | None, length: timedelta | None, until: Any) -> None:
        if since is not None and length is not None:  # mostly a window of up to a year
            with contextlib.suppress(OverflowError):
                until = since + length
        sent = {"since": since, "until": until}
        params = {k: v if isinstance(v, str) else v.isoformat() for k, v in sent.items() if v}
        response = client.get("/v1/migrations", params=params)
        doc = check_response(response, valid=False)
        if doc is not None:
            assert datetime.fromisoformat(doc["until"]) and datetime.fromisoformat(doc["since"])

    run()


# -- the published contract -----------------------------------------------------------------
schemathesis.checks.load_all_checks()
CONTRACT_CHECKS = schemathesis.checks.CHECKS.get_all()  # all of them, as `st run -c all`


def send(client: TestClient, case: Case) -> httpx.Response:
    """Send a schemathesis case through the TestClient (whose lifespan this module owns)."""
    sent = case.as_transport_kwargs(base_url="http://testserver")
    # the client's valid key, whatever credentials the case generated
    headers = {
        name: value
        for name, value in (sent.get("headers") or {}).items()
        if name.lower() not in ("authorization", "x-api-key")
    }
    request: dict[str, Any] = {
        "method": sent["method"],
        "url": sent["url"],
        "headers": headers,
        "params": sent.get("params"),
    }
    if "json" in sent:
        request["content"] = encode(sent["json"])
    elif sent.get("data") is not None:
        data = sent["data"]
        request["content"] = data if isinstance(data, bytes) else str(data).encode()
    return client.request(**request)


def probes_to(app: Any) -> Any:
    """``app`` for the requests some checks send themselves (``ignored_auth`` sends each
    operation without its key and with a wrong one), without a second run of its lifespan:
    the module's client owns that."""

    async def forward(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})

    return forward


def window_in_order(case: Case) -> bool:
    """Whether a ``GET /v1/drift`` case's window starts before it ends, as the endpoint
    requires (a 422 names ``since`` otherwise): ``until`` defaults to now, and both ends are
    moved into 1970-01-02..9000-01-01 first. Unparseable times are left to the check."""

    def utc(text: Any) -> datetime | None:
        if not isinstance(text, str):
            return None
        value = datetime.fromisoformat(text)
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return min(max(value, datetime(1970, 1, 2, tzinfo=UTC)), WINDOW_LATEST)

    query = case.query or {}
    try:
        since, until = utc(query.get("since")), utc(query.get("until"))
    except ValueError:
        return True
    return since is None or since < (until or datetime.now(UTC))


WINDOW_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def name_shows(case: Case) -> bool:
    """Whether a segment edit's name (if it sets one) shows a character, as the endpoint
    requires (a 422 otherwise): zero-width joiners alone pass the published pattern, and a
    pattern for "some character that shows" would have to list Unicode's invisible ones."""
    body = case.body if isinstance(case.body, dict) else {}
    name = body.get("name")
    return not (isinstance(name, str) and is_blank(name))


def id_shows(case: Case) -> bool:
    """Whether an assignment's customer id (or a customer path's) shows a character, as
    ``/v1/assign`` and ``/v1/customers/{customer_id}`` require (a 422 otherwise): the
    published pattern cannot list Unicode's invisible characters, so a drawn id of a filler
    or a lone accent matches it (as ``name_shows`` for names)."""
    body = case.body if isinstance(case.body, dict) else {}
    in_path = (case.path_parameters or {}).get("customer_id")
    # a path parameter is held escaped, as sent ('%CC%81' for a lone accent)
    customer_id = body.get("customer_id", unquote(in_path) if isinstance(in_path, str) else in_path)
    return not (isinstance(customer_id, str) and is_blank(customer_id))


def sends_damage(case: Case) -> bool:
    """Whether a negative case's damage reaches the service. ``send`` replaces the generated
    credentials with the valid key (a wrong ``Authorization`` is never sent: the header is the
    only negative part, then), and a query value that is an empty list or object is no
    parameter at all (``?model=`` drawn as ``[]`` sends nothing, and the request is rightly
    answered 200): such cases are false findings of ``negative_data_rejection``."""
    negative = {
        where
        for where, info in case.meta.components.items()
        if info.mode is GenerationMode.NEGATIVE
    }
    unsendable = any(value in ([], {}) for value in (case.query or {}).values())
    return bool(negative - {ParameterLocation.HEADER}) and not unsendable


# schemathesis' own pytest integration (``from_fixture``) fails on pytest 9, and loading the
# schema at import would break collection of this whole module if the file were missing.
@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: str(m.value))
def test_responses_conform_to_the_committed_contract(
    client: TestClient, mode: GenerationMode
) -> None:
    assert COMMITTED_OPENAPI.exists(), "openapi/openapi.json is missing; see test_openapi.py"
    contract = schemathesis.openapi.from_path(COMMITTED_OPENAPI)
    contract.app = probes_to(client.app)
    # a batch of more than 10,000 items is refused as too large, as documented (413)
    rejection = contract.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    key = {"Authorization": client.headers["authorization"]}  # explicit, as `st run -H`
    operations = [result.ok() for result in contract.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:
        inputs = len(operation.path_parameters) + len(operation.query) + len(operation.body)
        if mode is GenerationMode.NEGATIVE and not inputs:
            continue  # nothing to send wrong (the test always sends a valid key)

        strategy = operation.as_strategy(mode)
        if mode is GenerationMode.POSITIVE and operation.path == "/v1/drift":
            strategy = strategy.filter(window_in_order)  # a rule the schema cannot state
        if mode is GenerationMode.POSITIVE and operation.method.upper() == "PATCH":
            strategy = strategy.filter(name_shows)  # another
        if mode is GenerationMode.POSITIVE and (
            operation.path == "/v1/assign" or "{customer_id}" in operation.path
        ):
            strategy = strategy.filter(id_shows)  # and another
        if mode is GenerationMode.NEGATIVE:
            strategy = strategy.filter(sends_damage)

        @settings(FUZZ, max_examples=20)
        @given(case=strategy)
        def run(case: Case) -> None:
            note(f"{case.method} {case.formatted_path}")
            case.validate_response(send(client, case), checks=CONTRACT_CHECKS, headers=key)

        run()
