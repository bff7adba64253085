"""Cost of live drift counting on ``POST /v1/assign``: the service with counting on and off,
in the same run, interleaved.

Train the example model into a temporary store, start two uvicorn processes of the service
as shipped (one worker each, recording into their own embedded Redis, API keys checked),
one with ``SEGMENTS_DRIFT_COUNTING=true`` (the default) and one with ``false``, and drive
each with wrk (the bodies of ``bench/api_bench.py``: a pool of distinct customers) in
alternating order for ``--rounds`` rounds. Prints requests/s, p99 and server CPU per request
(robust to other load on a shared machine) per round and the medians, the ratio on/off of
each (target: counting costs at most 10% of throughput), and checks that the counting
server's ``GET /v1/drift`` saw the requests. Run from the repository root::

    .venv/bin/python bench/drift_bench.py [--duration 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_bench import (
    JSON,
    MODEL_NAME,
    ROOT,
    WrkResult,
    customer_pool,
    run_wrk,
    serve,
    train_model,
)

TARGET = 0.90  # counting on keeps >= 90% of the throughput with it off


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-rows", type=int, default=20_000)
    parser.add_argument("--pool", type=int, default=1000)
    args = parser.parse_args()
    from app.security import new_key

    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="drift-bench-") as tmp:
        workdir = Path(tmp)
        store, _version, names = train_model(workdir, args.train_rows)
        pool = customer_pool(names, args.pool, seed=20250101)
        bodies = workdir / "bodies.ndjson"
        bodies.write_bytes(b"\n".join(orjson.dumps(i) for i in pool) + b"\n")
        key, key_line = new_key(["assign", "read"], "drift bench")
        headers = {**JSON, "authorization": f"Bearer {key}"}
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SEGMENTS_") and k != "REDIS_URL"
        }
        env |= {
            "SEGMENTS_MODEL_STORE": str(store),
            "SEGMENTS_MODEL_NAME": MODEL_NAME,
            "SEGMENTS_API_KEYS": key_line,
            "SEGMENTS_DRIFT_FLUSH_SECONDS": "1",
            "PYTHONPATH": str(ROOT),
        }
        target = ["--factory", "app.main:create_app"]
        probe = ("/v1/assign", orjson.dumps(pool[0]))
        runs: dict[str, list[WrkResult]] = {"on": [], "off": []}
        with contextlib.ExitStack() as stack:
            servers = {
                mode: stack.enter_context(
                    serve(
                        f"drift-{mode}",
                        target,
                        env
                        | {
                            "SEGMENTS_DRIFT_COUNTING": str(mode == "on").lower(),
                            "SEGMENTS_DATA_DIR": str(workdir / mode),
                        },
                        workdir,
                        probe,
                        headers,
                    )
                )
                for mode in ("on", "off")
            }
            options = {"connections": args.connections, "threads": args.threads}
            for mode, server in servers.items():
                run_wrk(server, mode, "/v1/assign", bodies, key, **options, duration=args.warmup)
            for r in range(args.rounds):
                order = ("on", "off") if r % 2 == 0 else ("off", "on")
                for mode in order:
                    found = run_wrk(
                        servers[mode], mode, "/v1/assign", bodies, key,
                        **options, duration=args.duration,
                    )  # fmt: skip
                    runs[mode].append(found)
                    print(
                        f"round {r + 1} {mode:>3}: {found.rps:>8,.0f} req/s  p99 "
                        f"{found.p99_ms:6.2f} ms  server CPU {found.cpu_us:6.0f} us/req",
                        flush=True,
                    )
            time.sleep(2.5)  # a flush or two
            drift = httpx.get(servers["on"].base + "/v1/drift", headers=headers).json()
            sent = sum(x.requests for x in runs["on"])
        med = {
            m: {
                "rps": statistics.median(x.rps for x in rs),
                "p99": statistics.median(x.p99_ms for x in rs),
                "cpu": statistics.median(x.cpu_us for x in rs),
            }
            for m, rs in runs.items()
        }
        ratio = med["on"]["rps"] / med["off"]["rps"]
        # each round's on and off ran back to back: their ratio cancels slow load changes
        paired = statistics.median(
            a.rps / b.rps for a, b in zip(runs["on"], runs["off"], strict=True)
        )
        cpu_ratio = med["on"]["cpu"] / med["off"]["cpu"]
        print(f"\nmedians of {args.rounds} interleaved rounds of {args.duration:g} s:")
        for m in ("off", "on"):
            print(
                f"  counting {m:>3}: {med[m]['rps']:>8,.0f} req/s  p99 {med[m]['p99']:6.2f} ms  "
                f"CPU {med[m]['cpu']:6.0f} us/req"
            )
        verdict = "PASS" if ratio >= TARGET else "FAIL"
        print(f"throughput on/off: {ratio:.3f} ({verdict}: target >= {TARGET})")
        print(f"median of the rounds' paired on/off throughput ratios: {paired:.3f}")
        print(f"server CPU per request on/off: {cpu_ratio:.3f}")
        print(
            f"/v1/drift on the counting server: {drift.get('observations')} observations "
            f"(measured rounds sent {sent:,}; warm-up and probe add some), status "
            f"{drift.get('status')}"
        )
        per_call = counting_cost_us(store, pool)
        share = per_call / med["on"]["cpu"]
        print(
            f"in-process counting alone: {per_call:.2f} us per assignment "
            f"({share:.2%} of the server CPU per request), {args.pool:,} bodies x 20"
        )
        return 0 if ratio >= TARGET else 1


def counting_cost_us(store: Path, pool: list[dict[str, object]]) -> float:
    """CPU of ``LIVE.observe_one`` per call, on the pool's features (the hot-path hook alone,
    free of the HTTP noise of a shared machine)."""
    from app.drift.live import LiveCounts
    from app.registry.store import ModelStore
    from app.serving.model import build_serving_model

    serving = build_serving_model(ModelStore(store), MODEL_NAME, None)
    serving = serving.with_overrides({})
    live = LiveCounts(enabled=True)
    rows = [(item["features"], serving.assign_one(item["features"]).segment_id) for item in pool]  # type: ignore[arg-type]
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(20):
            for features, segment in rows:
                live.observe_one(serving, features, segment)  # type: ignore[arg-type]
        best = min(best, (time.process_time() - start) / (20 * len(rows)) * 1e6)
    return best


if __name__ == "__main__":
    raise SystemExit(main())
