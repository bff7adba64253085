"""A real receiver (an HTTP server on a free port, in a thread of the test) and a dispatcher
on the suite's real Redis under a key prefix of the test's own (deleted at its end)."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from app.history import HistoryConfig, Record, Recorder, new_record_id
from app.webhooks import Dispatcher, SubscriptionStore, WebhookConfig
from tests.history.conftest import free_port, make_config, open_recorder

SEGMENTS = ["seg-001", "seg-002", "seg-003", "seg-004"]
NAMES = {s: f"Segment {s[-1]}" for s in SEGMENTS}


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int
    at: float

    def events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = orjson.loads(self.body)["data"]["events"]
        return events


@dataclass
class Receiver:
    """Answers 200, or (at the given rates, from a seeded generator) 500 or nothing until
    after the client's deadline; ``delay_s`` slows every answer."""

    port: int = field(default_factory=free_port)
    fail_rate: float = 0.0
    hang_rate: float = 0.0
    hang_s: float = 0.0
    delay_s: float = 0.0
    script: list[int] = field(default_factory=list)  # statuses to answer first, in order
    retry_after: str | None = None  # sent with a scripted 429
    received: list[Received] = field(default_factory=list)
    arrived: int = 0  # requests begun (``received`` has those answered)
    rng: random.Random = field(default_factory=lambda: random.Random(15))
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-body (a SIGKILL): not delivered
                    return
                with receiver.lock:
                    roll = receiver.rng.random()
                    receiver.arrived += 1
                status = 200
                with receiver.lock:
                    scripted = receiver.script.pop(0) if receiver.script else None
                if scripted is not None:
                    status = scripted
                elif self.path != "/hook":
                    status = 404
                elif roll < receiver.hang_rate:
                    time.sleep(receiver.hang_s)
                    status = 599  # the client gave up; what it would have been
                elif roll < receiver.hang_rate + receiver.fail_rate:
                    status = 500
                time.sleep(receiver.delay_s)
                with receiver.lock:
                    receiver.received.append(
                        Received(dict(self.headers.items()), body, status, time.monotonic())
                    )
                self.send_response(200 if status == 599 else status)
                if status == 429 and receiver.retry_after is not None:
                    self.send_header("retry-after", receiver.retry_after)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self.server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def accepted(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.status == 200]

    def delivered_ids(self) -> set[str]:
        return {e["id"] for r in self.accepted() for e in r.events()}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    yield started.start()
    started.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def config(service_redis: str, tmp_path: Path) -> HistoryConfig:
    return make_config(service_redis, tmp_path, stream_maxlen=100_000)


@pytest.fixture
async def recorder(config: HistoryConfig) -> AsyncIterator[Recorder]:
    async with open_recorder(config) as rec:
        yield rec  # deletes the prefix's keys (webhook keys too) at the end


def fast(**changes: Any) -> WebhookConfig:
    """Short batches, backoffs and deadlines; the test receiver is on 127.0.0.1 over http."""
    base: dict[str, Any] = {
        "batch_size": 20,
        "batch_wait_ms": 20,
        "timeout_s": 2.0,
        "retry_base_ms": 10,
        "retry_max_ms": 100,
        "lease_ms": 600,
        "allow_private": True,
        "allow_http_hosts": frozenset({"127.0.0.1"}),
    }
    return WebhookConfig(**{**base, **changes})


def store_of(recorder: Recorder) -> SubscriptionStore:
    return SubscriptionStore(recorder.client, recorder.keys.prefix, recorder.keys.all_events())


def dispatcher(recorder: Recorder, **changes: Any) -> Dispatcher:
    return Dispatcher(store_of(recorder), fast(**changes), names=lambda: NAMES)


def scripted_run(customers: int, steps: int, seed: int = 1) -> list[Record]:
    """Each customer walks ``steps`` segments (never the same twice in a row); the records of
    all customers interleave, in time order."""
    rng = random.Random(seed)
    t0 = int(time.time() * 1000) - 60_000
    walks = []
    for c in range(customers):
        path, last = [], None
        for _ in range(steps):
            last = rng.choice([s for s in SEGMENTS if s != last])
            path.append(last)
        walks.append((f"C{c:05d}", path))
    records = []
    for step in range(steps):
        for cid, path in walks:
            at = t0 + step * 10
            records.append(Record(cid, path[step], "v1", at, new_record_id(at)))
    return records


def expected_events(
    records: list[Record], before: list[Record] | None = None
) -> dict[str, list[tuple[str, str]]]:
    """Per customer, the (type, segment) of every event of ``records``, in order (``before``:
    records applied earlier, whose segments the first of these leave)."""
    out: dict[str, list[tuple[str, str]]] = {}
    current: dict[str, str] = {rec.customer_id: rec.segment_id for rec in before or []}
    for rec in records:
        events = out.setdefault(rec.customer_id, [])
        if rec.customer_id in current:
            events.append(("segment.exited", current[rec.customer_id]))
        events.append(("segment.entered", rec.segment_id))
        current[rec.customer_id] = rec.segment_id
    return out


def first_deliveries(receiver: Receiver) -> dict[str, list[tuple[str, str]]]:
    """Per customer, the (type, segment) of each event in the order first delivered."""
    seen: set[str] = set()
    out: dict[str, list[tuple[str, str]]] = {}
    for request in receiver.accepted():
        for event in request.events():
            if event["id"] not in seen:
                seen.add(event["id"])
                pair = (event["type"], event["segment"]["id"])
                out.setdefault(event["customer_id"], []).append(pair)
    return out


def verify_all(receiver: Receiver, secret: str) -> int:
    """Verify every request's signature with the standardwebhooks package; how many."""
    hook = Webhook(secret)
    with receiver.lock:
        requests = list(receiver.received)
    for request in requests:
        hook.verify(request.body, request.headers)
    return len(requests)


async def wait_for(check: Callable[[], Any], within_s: float = 60.0) -> None:
    """Poll ``check`` (sync or async) until true; fail after ``within_s`` (a generous bound
    against a hang, not a speed assertion)."""
    deadline = time.monotonic() + within_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"not reached within {within_s} s")
        await asyncio.sleep(0.05)
