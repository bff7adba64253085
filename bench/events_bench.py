"""Benchmark of ``POST /v1/events`` (issue 13): batches, and single events beside a no-op.

One run: train the example transactions model (``examples/transactions.toml``) on a generated
log into a temporary store, start the service (one uvicorn worker, its embedded Redis, API
key checked, recording on) and an idiomatic no-op server (``create_baseline`` below: FastAPI
validating the same events body with pydantic and returning a constant answer through a
``response_model``), with the uvicorn options of ``bench/api_bench.py``. Then:

- batches of 1,000 and of 10,000 events from a Python client (httpx + orjson), every event
  new (accepted), spread over the log's customers: each batch is applied in Redis, every
  customer it touches re-derived, re-assigned and recorded. Events per second end to end
  (client encode + request + server + client decode), median of ``--repeats`` batches;
- single events (one per request, each new) at 32 connections with wrk, to the service and to
  the no-op, interleaved ``--rounds`` times: throughput, p50/p99 and server CPU per request.

The machine is shared (wrk, the servers and Redis on the same cores): the ratios against the
no-op, measured in the same run, are what to read. Run from the repository root::

    .venv/bin/python bench/events_bench.py [--duration 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

from api_bench import (  # noqa: E402
    JSON,
    Server,
    WrkResult,
    combine,
    run_wrk,
    serve,
    service_env,
    tree_cpu_seconds,
)

from app.events.schemas import EventsRequest, EventsResponse  # noqa: E402

TARGET_EVENTS_PER_S = 30_000.0
NOW = datetime.now(UTC)


def create_baseline() -> Any:
    """The idiomatic no-op: pydantic validates ``EventsRequest``, a constant is returned."""
    from fastapi import FastAPI

    constant = {
        "model_version": "20260101-000000-000000",
        "accepted": 1,
        "duplicate": 0,
        "late": 0,
        "rejected": 0,
        "customers": [
            {
                "customer_id": "C000042",
                "segment_id": "seg-002",
                "segment_name": "Loyal big spenders",
                "confidence": 0.43,
                "features_as_of": "2026-12-01T10:05:00.000000Z",
                "previous_segment_id": "seg-002",
                "changed": False,
                "recorded": True,
            }
        ],
        "errors": [],
        "late_events": [],
    }
    app = FastAPI(title="events baseline")

    @app.post("/idiomatic/events", response_model=EventsResponse)
    async def idiomatic(body: EventsRequest) -> dict[str, Any]:
        return constant

    return app


def train(workdir: Path, customers: int) -> tuple[Path, list[str]]:
    from app.datasets import make_transactions
    from app.registry.store import ModelStore
    from app.training.config import load_config
    from app.training.job import train as train_job

    log, _ = make_transactions(n_customers=customers, seed=11)
    csv = workdir / "transactions.csv"
    log.to_csv(csv, index=False)
    config = load_config(ROOT / "examples" / "transactions.toml")
    config = config.model_copy(update={"data": config.data.model_copy(update={"path": csv})})
    store = ModelStore(workdir / "store")
    train_job(config, store, promote=True)
    return store.root, sorted(log["customer_id"].astype(str).unique())


class Events:
    """New events for random customers (ids never repeat within a run)."""

    def __init__(self, customers: list[str], seed: int) -> None:
        self.customers, self.rng, self.n = customers, random.Random(seed), 0

    def make(self, count: int, tag: str) -> list[dict[str, Any]]:
        out = []
        for _ in range(count):
            self.n += 1
            refund = self.rng.random() < 0.05
            out.append(
                {
                    "event_id": f"{tag}-{self.n}",
                    "customer_id": self.rng.choice(self.customers),
                    "type": "refund" if refund else "order",
                    "amount": round(self.rng.uniform(5, 200), 2),
                    "at": (NOW - timedelta(seconds=self.rng.uniform(0, 86_400))).isoformat(),
                    "order_id": f"{tag}-o{self.n}",
                }
            )
        return out


def own_cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process alone (the service without its embedded Redis)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def post_batch(
    client: httpx.Client, server: Server, events: Events, size: int, headers: dict[str, str]
) -> tuple[float, float, dict[str, Any]]:
    """One batch of ``size`` new events: seconds end to end, server CPU seconds (the service
    and its embedded Redis), the answer."""
    content = orjson.dumps({"events": events.make(size, f"b{size}")})
    pid = server.process.pid
    cpu0, own0, t0 = tree_cpu_seconds(pid), own_cpu_seconds(pid), time.perf_counter()
    response = client.post(f"{server.base}/v1/events", content=content, headers=headers)
    elapsed = time.perf_counter() - t0
    used, own = tree_cpu_seconds(pid) - cpu0, own_cpu_seconds(pid) - own0
    doc = orjson.loads(response.content)
    if response.status_code != 200 or doc["accepted"] != size:
        raise RuntimeError(f"batch failed: {response.status_code} {response.text[:400]}")
    return elapsed, used, own, doc


def bench_batches(
    servers: list[Server], events: Events, size: int, repeats: int, headers: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """``repeats`` batches to each server, interleaved (a batch to each in turn), after two
    warm-up batches each: medians per server."""
    times: dict[str, list[float]] = {s.name: [] for s in servers}
    cpu: dict[str, list[float]] = {s.name: [] for s in servers}
    python: dict[str, list[float]] = {s.name: [] for s in servers}  # the service's own CPU
    last: dict[str, dict[str, Any]] = {}
    with httpx.Client(timeout=120) as client:
        for i in range(2 + repeats):
            for server in servers if i % 2 == 0 else servers[::-1]:
                elapsed, used, own, doc = post_batch(client, server, events, size, headers)
                if i >= 2:
                    times[server.name].append(elapsed)
                    cpu[server.name].append(used)
                    python[server.name].append(own)
                    last[server.name] = doc
    out = {}
    for server in servers:
        median = statistics.median(times[server.name])
        doc = last[server.name]
        out[server.name] = {
            "batch": size,
            "median_ms": round(median * 1000, 1),
            "events_per_s": round(size / median),
            # the service and its embedded Redis: CPU seconds per event, and what that allows
            "server_cpu_us_per_event": round(statistics.median(cpu[server.name]) / size * 1e6, 1),
            # the same over all the batches: /proc counts CPU in 10 ms ticks, coarse for one
            # batch of 1,000 (5 or 6 ticks), so the median above moves in steps of 10 us
            "cpu_us_per_event_all": round(sum(cpu[server.name]) / (size * repeats) * 1e6, 1),
            "of_which_python": round(sum(python[server.name]) / (size * repeats) * 1e6, 1),
            "events_per_cpu_s": round(size / statistics.median(cpu[server.name])),
            "customers_reassigned": len(doc["customers"]),
            "recorded": sum(1 for c in doc["customers"] if c["recorded"]),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000, help="customers of the log")
    parser.add_argument("--repeats", type=int, default=10, help="measured batches per size")
    parser.add_argument("--duration", type=float, default=8, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved wrk rounds")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--pool", type=int, default=60_000, help="distinct single events of each wrk run"
    )
    parser.add_argument(
        "--against",
        type=Path,
        help="another checkout of the repository (e.g. main's): its service is run beside "
        "this one on the same store, interleaved, and the ratios printed",
    )
    args = parser.parse_args()
    from app.security import new_key

    with tempfile.TemporaryDirectory(prefix="events-bench-") as tmp:
        workdir = Path(tmp)
        print(f"training the transactions model on {args.customers:,} customers ...", flush=True)
        store, customers = train(workdir, args.customers)
        key, key_line = new_key(["assign"], "events bench")
        headers = {**JSON, "authorization": f"Bearer {key}"}
        env = service_env(store, "transactions", key_line)
        env["SEGMENTS_DATA_DIR"] = str(workdir / "service")
        events = Events(customers, seed=1)
        probe = orjson.dumps({"events": events.make(1, "probe")})

        def singles() -> Path:
            """A fresh pool of single events (new ids) for one wrk run: wrk starts every run
            at the same place in its pool, so a pool shared by runs made every run after the
            first re-send the same events (duplicates)."""
            made = workdir / f"singles-{events.n}.ndjson"
            pool = events.make(args.pool, "s")
            made.write_bytes(b"\n".join(orjson.dumps({"events": [e]}) for e in pool) + b"\n")
            return made

        with contextlib.ExitStack() as stack:
            service = stack.enter_context(
                serve(
                    "service",
                    ["--factory", "app.main:create_app"],
                    env,
                    workdir,
                    ("/v1/events", probe),
                    headers,
                )
            )
            baseline = stack.enter_context(
                serve(
                    "baseline",
                    ["--factory", "--app-dir", str(BENCH), "events_bench:create_baseline"],
                    env,
                    workdir,
                    ("/idiomatic/events", probe),
                    headers,
                )
            )
            services = [service]
            if args.against is not None:
                other_env = {**env, "PYTHONPATH": str(args.against.resolve())}
                other_env["SEGMENTS_DATA_DIR"] = str(workdir / "against")
                services.append(
                    stack.enter_context(
                        serve(
                            "against",
                            ["--factory", "app.main:create_app"],
                            other_env,
                            workdir,
                            ("/v1/events", probe),
                            headers,
                        )
                    )
                )
            print("batches (end to end, httpx client):", flush=True)
            for size in (1_000, 10_000):
                by_server = bench_batches(services, events, size, args.repeats, headers)
                for name, found in by_server.items():
                    ok = "ok" if found["events_per_s"] >= TARGET_EVENTS_PER_S else "BELOW TARGET"
                    print(f"  {name:8s} {found}  target >= 30,000/s: {ok}", flush=True)
                if args.against is not None:
                    this, other = by_server["service"], by_server["against"]
                    rate = this["events_per_s"] / other["events_per_s"]
                    cost = this["cpu_us_per_event_all"] / other["cpu_us_per_event_all"]
                    print(f"  service / against: {rate:.2f}x events/s, {cost:.2f}x CPU per event")
            options = {
                "duration": args.duration,
                "connections": args.connections,
                "threads": args.threads,
            }
            targets = [
                ("/v1/events", "events", service),
                ("/idiomatic/events", "idiomatic", baseline),
            ]
            if args.against is not None:
                targets.append(("/v1/events", "against", services[1]))
            runs: dict[str, list[WrkResult]] = {name: [] for _, name, _ in targets}
            for path, name, server in targets:  # warm-up
                run_wrk(server, name, path, singles(), key, **{**options, "duration": 2})
            for _ in range(args.rounds):
                for path, name, server in targets:
                    runs[name].append(run_wrk(server, name, path, singles(), key, **options))
            print(f"single events, {args.connections} connections, wrk (medians):")
            found = {name: combine(name, rs) for name, rs in runs.items()}
            for name, r in found.items():
                print(
                    f"  {name:10s} {r.rps:9,.0f} req/s  p50 {r.p50_ms:6.2f} ms  p99 "
                    f"{r.p99_ms:6.2f} ms  server CPU {r.cpu_us:6.0f} us/req  errors {r.errors}"
                )
            ratio = found["events"].rps / max(found["idiomatic"].rps, 1.0)
            print(f"  /v1/events / idiomatic no-op: {ratio:.2f}x throughput")
            if args.against is not None:
                other = found["against"]
                noop = max(found["idiomatic"].rps, 1.0)
                print(
                    f"  against / idiomatic no-op: {other.rps / noop:.2f}x throughput; "
                    f"/v1/events / against: {found['events'].rps / max(other.rps, 1.0):.2f}x"
                )
            log = service.log.read_text(errors="replace")
            if "spooling" in log:
                print(
                    "  note: Redis answered slower than the recorder's deadline at times and "
                    "the service spooled records meanwhile (see the service log): the "
                    "machine is too busy for absolute figures"
                )
            # the no-op answers a constant: repeats matter only to the services' runs
            sent = max(r.requests for name, rs in runs.items() if name != "idiomatic" for r in rs)
            if sent > args.pool:
                print(
                    f"  note: a run sent {sent:,} requests > {args.pool:,} pooled events: its "
                    "repeats were duplicates; raise --pool"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
