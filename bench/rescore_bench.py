"""Benchmark of the service's background rescore (``POST /v1/rescore``): how fast it moves the
stored customers, and what it costs the requests the worker serves meanwhile.

One run: train the example model (``examples/customers.toml``) on generated customers, start
the service (one uvicorn worker with the options of ``bench/api_bench.py``, its embedded
Redis, API key checked, recording on), store ``--customers`` customers' profiles through
``POST /v1/assign/batch``, then measure ``POST /v1/assign`` by id (1,000 stored customers,
wrk at 32 connections) in turns, ``--rounds`` times:

- **quiet**: nothing else running;
- **rescoring**: a rescore started just before wrk (it is restarted whenever it ended: the
  whole measurement runs beside one).

Reported: each turn's throughput, p50/p99 and server CPU per request (medians), and the
rescore's customers per second (``GET /v1/rescore``'s counts over its time) while it shared
the worker with wrk's load, and alone. Run from the repository root::

    .venv/bin/python bench/rescore_bench.py [--customers 200000] [--duration 6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from api_bench import (  # noqa: E402
    JSON,
    Server,
    WrkResult,
    combine,
    customer_pool,
    run_wrk,
    serve,
    service_env,
    train_model,
)

from app.security import new_key  # noqa: E402

MODEL_NAME = "customers"


def store_customers(server: Server, pool: list[dict[str, Any]], headers: dict[str, str]) -> None:
    with httpx.Client(base_url=server.base, timeout=300, headers=headers) as client:
        for start in range(0, len(pool), 10_000):
            items = pool[start : start + 10_000]
            answer = client.post("/v1/assign/batch", content=orjson.dumps({"items": items}))
            if answer.status_code != 200 or answer.json()["assigned"] != len(items):
                raise RuntimeError(f"storing failed: {answer.status_code} {answer.text[:300]}")


def rescore(client: httpx.Client) -> dict[str, Any]:
    answer = client.post("/v1/rescore")
    if answer.status_code != 202:
        raise RuntimeError(f"POST /v1/rescore: {answer.status_code} {answer.text[:300]}")
    status: dict[str, Any] = answer.json()
    return status


def wait_done(client: httpx.Client) -> dict[str, Any]:
    while True:
        status: dict[str, Any] = client.get("/v1/rescore").json()
        if status["state"] != "running":
            if status["state"] != "done":
                raise RuntimeError(f"the rescore ended {status['state']}: {status}")
            return status
        time.sleep(0.05)


def rate(status: dict[str, Any]) -> float:
    """Customers per second of a run, from its state (started to last report)."""
    began = datetime.fromisoformat(status["started_at"])
    until = datetime.fromisoformat(status["finished_at"] or status["updated_at"])
    seconds = (until - began).total_seconds()
    return status["customers"] / seconds if seconds > 0 else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--duration", type=float, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rescore-bench-") as tmp:
        workdir = Path(tmp)
        print("training the example model ...", flush=True)
        store, _, names = train_model(workdir, 20_000)
        pool = customer_pool(names, args.customers, seed=20261206)
        ids = workdir / "bodies-ids.ndjson"
        ids.write_bytes(
            b"\n".join(orjson.dumps({"customer_id": i["customer_id"]}) for i in pool[:1000]) + b"\n"
        )
        key, key_line = new_key(["assign", "read", "admin"], "rescore bench")
        headers = {**JSON, "authorization": f"Bearer {key}"}
        env = service_env(store, MODEL_NAME, key_line) | {
            "SEGMENTS_DATA_DIR": str(workdir / "service")
        }
        probe = ("/v1/assign", orjson.dumps(pool[0]))
        target = ["--factory", "app.main:create_app"]
        runs: dict[str, list[WrkResult]] = {}
        beside: list[float] = []
        alone: list[float] = []
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(serve("service", target, env, workdir, probe, headers))
            print(f"storing {args.customers:,} customers ...", flush=True)
            store_customers(server, pool, headers)
            client = stack.enter_context(
                httpx.Client(base_url=server.base, timeout=60, headers=headers)
            )
            options = {"connections": 32, "threads": 2}
            run_wrk(server, "warm-up", "/v1/assign", ids, key, **options, duration=3)
            for round_ in range(args.rounds):
                print(f"round {round_ + 1}/{args.rounds}", flush=True)
                runs.setdefault("quiet", []).append(
                    run_wrk(
                        server, "quiet", "/v1/assign", ids, key, **options, duration=args.duration
                    )
                )
                rescore(client)
                runs.setdefault("rescoring", []).append(
                    run_wrk(
                        server,
                        "rescoring",
                        "/v1/assign",
                        ids,
                        key,
                        **options,
                        duration=args.duration,
                    )
                )
                status = client.get("/v1/rescore").json()
                if status["state"] != "running":  # part of the turn ran without it
                    print("  (the rescore ended before wrk: use more --customers)", flush=True)
                beside.append(rate(status))  # its rate while it shared the worker
                wait_done(client)
                alone.append(rate(rescore_alone(client)))
    results = {name: combine(name, rs) for name, rs in runs.items()}
    print(f"\nPOST /v1/assign by id, 1,000 stored customers, wrk -c 32, {args.rounds} rounds:")
    print(f"{'':12} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11}")
    for name, r in results.items():
        print(f"{name:12} {r.rps:8,.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {r.cpu_us:11.0f}")
    quiet, busy = results["quiet"], results["rescoring"]
    print(
        f"during a rescore: {busy.rps / quiet.rps:.2f}x the quiet throughput, "
        f"p99 {busy.p99_ms:.1f} ms against {quiet.p99_ms:.1f} ms"
    )
    if beside:
        print(f"rescore beside that load: {statistics.median(beside):,.0f} customers/s")
    print(
        f"rescore alone: {statistics.median(alone):,.0f} customers/s "
        f"({args.customers:,} stored customers)"
    )
    return 0


def rescore_alone(client: httpx.Client) -> dict[str, Any]:
    rescore(client)
    return wait_done(client)


if __name__ == "__main__":
    raise SystemExit(main())
