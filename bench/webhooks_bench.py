"""Benchmark of webhook delivery (issue 15): throughput from a backlog, and what an active
subscription costs ``POST /v1/assign``.

1. **Backlog.** A scratch ``redis-server`` (own port, no persistence); a subscription to a
   local receiver (uvicorn, one worker, answering 204); 100,000 first assignments recorded
   (100,000 ``segment.entered`` events waiting in the stream); then ``segments dispatch`` is
   started and timed until the subscription's ``delivered`` reaches 100,000. Reported: events
   per second over the delivery (first to last delivered batch) and from the process start,
   and the dispatcher's CPU per 1,000 events. Target: >= 5,000 events/s.
2. **Cost on /v1/assign.** The service as ``segments serve`` runs it (one uvicorn worker, the
   dispatcher inside it), driven by wrk (``bench/loadgen.lua``) with distinct customers, so
   rounds without a subscription and with one (delivering to the receiver) alternate, each
   on a fresh server and key prefix; medians are compared. Two scenarios: distinct customers,
   so that every request is a migration and produces an event (the worst case), and 1,000
   returning customers assigned once before wrk (the usual personalisation traffic: the
   same customers again, few migrations). Target: <= 10% fewer requests per second.
   ``--separate`` adds rounds with the dispatcher as a ``segments dispatch`` process beside
   a ``serve`` that runs none (its CPU per request reported apart).

The machine's cores are shared by wrk, the servers, the receiver and Redis; on a busy
machine use ``--rounds 3`` or more and read the ratios. Run from the repository root::

    .venv/bin/python bench/webhooks_bench.py [--events 100000] [--rounds 3] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_bench import (  # bench/ is not a package: found through sys.path
    JSON,
    customer_pool,
    free_port,
    run_wrk,
    serve,
    train_model,
    tree_cpu_seconds,
)

ROOT = Path(__file__).resolve().parent.parent
SEGMENTS = Path(sys.executable).parent / "segments"


async def receiver(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The local receiver: reads the body, answers 204 (no verification: the dispatcher's
    side is measured)."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def start_receiver(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "webhooks_bench:receiver",
        "--app-dir",
        str(ROOT / "bench"),
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
    ]
    log = (workdir / "receiver.log").open("wb")
    proc = subprocess.Popen(command, stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.post(f"http://127.0.0.1:{port}/", content=b"{}", timeout=1)
            return proc, f"http://127.0.0.1:{port}/hook"
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise RuntimeError("receiver did not start") from None
            time.sleep(0.1)


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    for _ in range(100):
        try:
            redis.Redis(port=port).ping()
            return proc, f"redis://127.0.0.1:{port}/0"
        except redis.RedisError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def webhook_env(redis_url: str, prefix: str) -> dict[str, str]:
    return {
        **os.environ,
        "SEGMENTS_REDIS_URL": redis_url,
        "SEGMENTS_KEY_PREFIX": prefix,
        "SEGMENTS_WEBHOOK_ALLOW_PRIVATE": "true",
        "SEGMENTS_WEBHOOK_ALLOW_HTTP_HOSTS": "127.0.0.1",
        "SEGMENTS_STREAM_MAXLEN": "1000000",
    }


async def fill_backlog(redis_url: str, prefix: str, url: str, events: int) -> str:
    from app.history import HistoryConfig, Record, Recorder, new_record_id
    from app.webhooks import SubscriptionStore

    config = HistoryConfig(
        redis_url=redis_url,
        key_prefix=prefix,
        stream_maxlen=events * 2,
        timeout_ms=10_000,
        batch_timeout_ms=30_000,
    )
    recorder = Recorder.connect(redis_url, config)
    store = SubscriptionStore(recorder.client, prefix, recorder.keys.all_events())
    sub = await store.create(url, ["segment.entered", "segment.exited"], None, "bench")
    now = int(time.time() * 1000)
    for start in range(0, events, 10_000):
        recs = [
            Record(f"K{i:07d}", f"seg-00{i % 4 + 1}", "v1", now, new_record_id(now))
            for i in range(start, min(events, start + 10_000))
        ]
        await recorder.record_many(recs, timeout=60)
    await recorder.aclose()
    return sub.id


def backlog_round(redis_url: str, url: str, events: int, workdir: Path) -> dict[str, float]:
    import redis

    prefix = f"whb{uuid.uuid4().hex[:6]}:"
    sub_id = asyncio.run(fill_backlog(redis_url, prefix, url, events))
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    status_key = f"{prefix}{{wh}}:st:{sub_id}"
    env = {**webhook_env(redis_url, prefix), "SEGMENTS_MODEL_STORE": str(workdir / "none")}
    log = (workdir / "dispatch.log").open("ab")
    started = time.perf_counter()
    proc = subprocess.Popen([str(SEGMENTS), "dispatch"], env=env, stdout=log, stderr=log)
    first = None
    try:
        while True:
            delivered = int(client.hget(status_key, "delivered") or 0)
            if delivered and first is None:
                first = (time.perf_counter(), delivered)
            if delivered >= events:
                break
            if proc.poll() is not None:
                raise RuntimeError("segments dispatch exited")
            time.sleep(0.01)
        done = time.perf_counter()
        cpu = tree_cpu_seconds(proc.pid)
    finally:
        stop(proc)
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
    assert first is not None
    window = done - first[0]
    return {
        "events_per_s": round((events - first[1]) / window) if window > 0 else float("inf"),
        "events_per_s_from_start": round(events / (done - started)),
        "dispatcher_cpu_s_per_1000": round(cpu / events * 1000, 4),
        "seconds": round(done - started, 2),
    }


def assign_round(
    args: argparse.Namespace,
    store: Path,
    bodies: Path,
    key_lines: str,
    keys: dict[str, str],
    redis_url: str,
    receiver_url: str | None,
    probe: bytes,
    workdir: Path,
    warm: list[dict[str, Any]] | None = None,
    separate: bool = False,
) -> dict[str, float]:
    """One server, one wrk run; ``warm``: customers assigned (and their events delivered)
    before wrk, so that wrk's requests for them change nothing; ``separate``: the dispatcher
    is a ``segments dispatch`` process, not inside the worker."""
    prefix = f"wha{uuid.uuid4().hex[:6]}:"
    env = {
        **webhook_env(redis_url, prefix),
        "SEGMENTS_MODEL_STORE": str(store),
        "SEGMENTS_API_KEYS": key_lines,
        "SEGMENTS_ACCESS_LOG": "false",
        "SEGMENTS_WEBHOOK_DISPATCHER": "false" if separate else "true",
    }
    headers = {**JSON, "authorization": f"Bearer {keys['assign']}"}
    target = ["--factory", "app.main:create_app"]
    dispatch = None
    if separate:
        log = (workdir / "dispatch.log").open("ab")
        dispatch = subprocess.Popen([str(SEGMENTS), "dispatch"], env=env, stdout=log, stderr=log)
    try:
        with serve("service", target, env, workdir, ("/v1/assign", probe), headers) as server:
            if receiver_url is not None:
                admin = {**JSON, "authorization": f"Bearer {keys['admin']}"}
                r = httpx.post(
                    server.base + "/v1/webhooks", json={"url": receiver_url}, headers=admin
                )
                r.raise_for_status()
            time.sleep(2.0)  # the dispatcher looks for subscriptions every second
            if warm:
                r = httpx.post(
                    server.base + "/v1/assign/batch",
                    json={"items": warm},
                    headers=headers,
                    timeout=60,
                )
                r.raise_for_status()
                time.sleep(2.0)  # their events delivered
            dispatch_cpu = tree_cpu_seconds(dispatch.pid) if dispatch is not None else 0.0
            result = run_wrk(
                server,
                "assign",
                "/v1/assign",
                bodies,
                keys["assign"],
                duration=args.duration,
                connections=args.connections,
                threads=2,
            )
            if dispatch is not None:
                dispatch_cpu = tree_cpu_seconds(dispatch.pid) - dispatch_cpu
                stop(dispatch)
            backlog = None
            if receiver_url is not None:
                admin = {"authorization": f"Bearer {keys['admin']}"}
                hooks = httpx.get(server.base + "/v1/webhooks", headers=admin).json()["webhooks"]
                backlog = hooks[0]["status"]["backlog"]
    finally:
        if dispatch is not None:
            stop(dispatch)

    import redis

    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)
    return {
        "rps": result.rps,
        "p99_ms": result.p99_ms,
        "cpu_us": result.cpu_us,
        "dispatch_cpu_us": round(dispatch_cpu / max(result.requests, 1) * 1e6, 1),
        "backlog_at_end": backlog if backlog is not None else -1,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--pool", type=int, default=60_000, help="distinct customers for wrk")
    parser.add_argument("--skip-assign", action="store_true")
    parser.add_argument("--skip-backlog", action="store_true")
    parser.add_argument(
        "--separate", action="store_true", help="also rounds with segments dispatch apart"
    )
    parser.add_argument(
        "--only-migrations", action="store_true", help="skip the returning-customers scenario"
    )
    parser.add_argument(
        "--repeat-pool", type=int, default=1000, help="returning customers (second scenario)"
    )
    args = parser.parse_args()
    from app.security import new_key

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory(prefix="webhooks-bench-") as tmp:
        workdir = Path(tmp)
        redis_proc, redis_url = start_redis(workdir)
        recv_proc, receiver_url = start_receiver(workdir)
        try:
            rounds = []
            for i in range(0 if args.skip_backlog else args.rounds):
                rounds.append(backlog_round(redis_url, receiver_url, args.events, workdir))
                print(f"backlog round {i + 1}: {rounds[-1]}", flush=True)
            rate = statistics.median(r["events_per_s"] for r in rounds) if rounds else 0
            print(
                f"BACKLOG {args.events:,} events: median {rate:,.0f} events/s "
                f"(target >= 5,000: {'met' if rate >= 5000 else 'NOT met'})",
                flush=True,
            )
            if args.skip_assign:
                return 0
            store, _, names = train_model(workdir, 20_000)
            pool = customer_pool(names, args.pool, seed=20261202)
            bodies = workdir / "bodies.ndjson"
            bodies.write_bytes(b"\n".join(orjson.dumps(i) for i in pool[1:]) + b"\n")
            made = {s: new_key([s], "webhooks bench") for s in ("assign", "admin")}
            keys = {s: k for s, (k, _) in made.items()}
            lines = ",".join(line for _, line in made.values())
            probe = orjson.dumps(pool[0])
            repeat = workdir / "repeat.ndjson"
            warm = pool[1 : 1 + args.repeat_pool]
            repeat.write_bytes(b"\n".join(orjson.dumps(i) for i in warm) + b"\n")
            scenarios: dict[str, tuple[Path, list[dict[str, Any]] | None]] = {
                "every request a migration": (bodies, None),
                f"{args.repeat_pool:,} returning customers (no migration)": (repeat, warm),
            }
            if args.only_migrations:
                del scenarios[f"{args.repeat_pool:,} returning customers (no migration)"]
            variants: list[tuple[str, str | None, bool]] = [
                ("without", None, False),
                ("with", receiver_url, False),
            ]
            if args.separate:  # the dispatcher as segments dispatch, the API without it
                variants.append(("with, dispatch apart", receiver_url, True))
            for scenario, (files, warmed) in scenarios.items():
                results: dict[str, list[dict[str, float]]] = {v[0]: [] for v in variants}
                for i in range(args.rounds):
                    for label, url, apart in variants:
                        got = assign_round(
                            args,
                            store,
                            files,
                            lines,
                            keys,
                            redis_url,
                            url,
                            probe,
                            workdir,
                            warmed,
                            apart,
                        )
                        results[label].append(got)
                        print(
                            f"assign ({scenario}) round {i + 1} {label} a subscription: {got}",
                            flush=True,
                        )
                base = statistics.median(r["rps"] for r in results["without"])
                hooked = statistics.median(r["rps"] for r in results["with"])
                cost = 1 - hooked / base
                cpu = [statistics.median(r["cpu_us"] for r in results[k]) for k in results]
                print(
                    f"ASSIGN ({scenario}) /v1/assign median {base:,.0f} req/s without, "
                    f"{hooked:,.0f} with an active subscription: {cost:.1%} fewer (target "
                    f"<= 10%: {'met' if cost <= 0.10 else 'NOT met'}); server CPU per "
                    f"request {cpu[0]:.0f} us -> {cpu[1]:.0f} us",
                    flush=True,
                )
                for label in results.keys() - {"without", "with"}:
                    apart = statistics.median(r["rps"] for r in results[label])
                    cpu_apart = statistics.median(r["cpu_us"] for r in results[label])
                    extra = statistics.median(r["dispatch_cpu_us"] for r in results[label])
                    print(
                        f"ASSIGN ({scenario}) {label}: {apart:,.0f} req/s, "
                        f"{1 - apart / base:.1%} fewer than without; server CPU per request "
                        f"{cpu_apart:.0f} us, the dispatch process {extra:.0f} us per request",
                        flush=True,
                    )
        finally:
            stop(recv_proc)
            stop(redis_proc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
