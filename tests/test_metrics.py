"""/metrics exposes the listed metrics with sane values after real traffic."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.registry.store import ModelStore
from app.security import new_key
from app.settings import Settings
from app.training.job import TrainResult


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(all_samples: dict, name: str, **labels: str) -> float:
    return sum(
        v
        for (n, lab), v in all_samples.items()
        if n == name and all(dict(lab).get(k) == want for k, want in labels.items())
    )


def test_metrics_after_traffic(trained: tuple[ModelStore, TrainResult], customers) -> None:
    store, result = trained
    frame = customers[0].set_index("customer_id").head(20)
    names = store.load("customers").estimator.feature_names
    settings = Settings(model_store=store.root, model_name="customers", dev_mode=True)
    with TestClient(create_app(settings)) as client:
        before = samples(client.get("/metrics").text)
        for cid, row in frame[names].iterrows():
            features = {k: (None if v != v else v) for k, v in row.to_dict().items()}
            response = client.post("/v1/assign", json={"customer_id": cid, "features": features})
            assert response.status_code == 200
            assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
        # a 422 whatever Redis holds: {"customer_id": "x"} alone is an assign-by-id, which
        # answers 404 (no stored profile) or 200 (one stored by an earlier test), never 422
        bad = client.post("/v1/assign", json={"customer_id": "x", "features": "not an object"})
        assert bad.status_code == 422, bad.text
        assert (
            client.get("/healthz", headers={"x-request-id": "trace-1"}).headers["x-request-id"]
            == "trace-1"
        )
        text = client.get("/metrics").text
    after = samples(text)
    route = "/v1/assign"
    assert (
        value(after, "segments_http_requests_total", route=route, status="200")
        - value(before, "segments_http_requests_total", route=route, status="200")
        == 20
    )
    assert (  # counted in this traffic, not left over from an earlier test in this process
        value(after, "segments_http_requests_total", route=route, status="422")
        - value(before, "segments_http_requests_total", route=route, status="422")
        == 1
    )
    count = value(after, "segments_http_request_duration_seconds_count", route=route)
    total = value(after, "segments_http_request_duration_seconds_sum", route=route)
    assert count >= 21
    assert 0 < total / count < 1.0  # mean latency: positive and under a second
    assigned = value(after, "segments_assignments_total") - value(
        before, "segments_assignments_total"
    )
    assert assigned == 20
    moved = {  # the registry is per process: look at what this traffic added
        dict(lab)["segment"]
        for (n, lab), v in after.items()
        if n == "segments_assignments_total" and v > before.get((n, lab), 0)
    }
    assert moved
    assert moved <= {s.id for s in result.manifest.segments}
    assert (
        value(after, "segments_model_info", model="customers", version=result.manifest.version) == 1
    )
    for listed in (
        "segments_redis_errors",
        "segments_redis_latency_seconds",
        "segments_spool_depth",
        "segments_spool_dropped_records",
        "segments_redis_up",
        "segments_migrations",
    ):
        assert listed in text


def test_metrics_can_require_a_key(trained: tuple[ModelStore, TrainResult], tmp_path: Path) -> None:
    store, _ = trained
    key, line = new_key(["read"])
    settings = Settings(
        model_store=store.root, model_name="customers", api_keys=line, metrics_require_key=True
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"x-api-key": key}).status_code == 200
        assert client.get("/healthz").status_code == 200


def test_a_keyed_metrics_counts_against_the_key_s_rate_limit(
    trained: tuple[ModelStore, TrainResult], tmp_path: Path
) -> None:
    """With SEGMENTS_METRICS_REQUIRE_KEY, /metrics is a keyed endpoint like any other: it
    checked the key but skipped its rate limit, so a key past its budget was refused its /v1
    calls and still scraped at will (and its scrapes were not counted). Open, it has no key."""
    import time

    store, _ = trained
    key, line = new_key(["read"])
    limited = Settings(
        model_store=store.root,
        model_name="customers",
        api_keys=line,
        metrics_require_key=True,
        rate_limit_per_minute=3,
        key_prefix=f"rl{tmp_path.name[-8:]}:",
        data_dir=tmp_path,
    )
    with TestClient(create_app(limited)) as client:
        while time.time() % 60 > 50:  # keep the requests inside one fixed window
            time.sleep(0.5)
        sent = {"x-api-key": key}
        assert client.get("/metrics", headers=sent).status_code == 200
        assert client.get("/metrics", headers=sent).status_code == 200
        assert client.get("/v1/models", headers=sent).status_code == 200  # one budget
        refused = client.get("/metrics", headers=sent)
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert 1 <= int(refused.headers["retry-after"]) <= 61
        assert client.get("/v1/models", headers=sent).status_code == 429
        assert client.get("/metrics").status_code == 401  # the key is still decided first
    opened = limited.model_copy(update={"metrics_require_key": False, "key_prefix": "o:"})
    with TestClient(create_app(opened)) as client:
        codes = {client.get("/metrics", headers={"x-api-key": key}).status_code for _ in range(5)}
        assert codes == {200}  # open: not counted, whatever key comes with it


def test_the_access_line_written_directly_is_the_one_logging_writes(
    trained: tuple[ModelStore, TrainResult],
) -> None:
    """One JSON access line per request, the same whether written directly or by logging."""
    import io
    import json
    import logging

    from app.observability import JsonFormatter, _direct_handler

    store, _ = trained
    settings = Settings(
        model_store=store.root, model_name="customers", dev_mode=True, record_assignments=False
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root, access = logging.getLogger(), logging.getLogger("segments.access")
    saved = root.handlers[:], root.level, access.level
    # as log_config() sets it up (pytest's own capture handlers would force the slow path)
    root.handlers, access.level = [handler], logging.NOTSET
    root.setLevel(logging.INFO)
    lines = []
    try:
        with TestClient(create_app(settings)) as client:
            for direct in (True, False):
                if not direct:  # any filter sends the line through logging itself
                    handler.addFilter(lambda record: True)
                assert (_direct_handler() is handler) is direct
                stream.seek(0)
                stream.truncate()
                response = client.get("/healthz", headers={"x-request-id": "trace-7"})
                assert response.status_code == 200
                logged = [json.loads(x) for x in stream.getvalue().splitlines()]
                lines.append([x for x in logged if x["logger"] == "segments.access"])
    finally:
        root.handlers, access.level = saved[0], saved[2]
        root.setLevel(saved[1])
    fast, slow = lines
    assert len(fast) == len(slow) == 1
    assert list(fast[0]) == list(slow[0]) == [
        "time", "level", "logger", "message", "request_id", "method", "route", "status", "ms"
    ]  # fmt: skip
    for line in (fast[0], slow[0]):
        assert line["ms"] >= 0 and abs(line["time"] - time.time()) < 60
    same = {k: v for k, v in fast[0].items() if k not in ("time", "ms")}
    assert same == {k: v for k, v in slow[0].items() if k not in ("time", "ms")}
    assert same == {
        "level": "info",
        "logger": "segments.access",
        "message": "request",
        "request_id": "trace-7",
        "method": "GET",
        "route": "/healthz",
        "status": 200,
    }


def test_the_direct_access_line_leaves_to_logging_what_it_cannot_do(monkeypatch) -> None:
    import io
    import json
    import logging

    from app.observability import JsonFormatter, write_access_line

    class FailingFlush(io.StringIO):
        def flush(self) -> None:
            raise OSError("disk full")

    fields = {"method": "GET", "route": "/healthz", "status": 200, "ms": 0.1}
    root, access = logging.getLogger(), logging.getLogger("segments.access")
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.INFO)
    monkeypatch.setattr(access, "level", logging.NOTSET)
    default = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = default(*args, **kwargs)
        record.trace_id = "t-1"  # as a tracing library's factory adds its ids
        return record

    for stream in (io.StringIO(), FailingFlush()):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JsonFormatter())
        reported: list[logging.LogRecord] = []
        monkeypatch.setattr(handler, "handleError", reported.append)
        root.handlers = [handler]
        logging.setLogRecordFactory(factory)
        try:
            write_access_line(fields)
        finally:
            logging.setLogRecordFactory(default)
        write_access_line(fields)  # the direct write again
        lines = [json.loads(x) for x in stream.getvalue().splitlines()]
        assert len(lines) == 2  # never written twice, even when the flush fails
        assert lines[0]["trace_id"] == "t-1"  # the factory's line went through logging
        assert "trace_id" not in lines[1]
        # a failed flush is reported by the handler (as StreamHandler.emit does), not raised
        assert len(reported) == (2 if isinstance(stream, FailingFlush) else 0)
