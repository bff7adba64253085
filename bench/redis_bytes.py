"""Redis bytes per customer of the history layout, measured on a fresh server.

Starts its own ``redis-server`` (from PATH, default configuration, no persistence) on a free
port, then for each case loads 100,000 customers through the real recording path
(``Recorder.record_many`` with ``RecordBatch``es of 10,000, as ``/v1/assign/batch`` does),
each with two history entries: a first assignment, then one migration to another segment.
Everything is at its default caps (history, stream). It prints ``used_memory`` after minus
before, per customer:

- without a profile;
- with the example model's 11-feature profile (``app.datasets.make_customers`` rows).

Run from the repository root::

    .venv/bin/python bench/redis_bytes.py [--customers 100000] [--repo PATH]

``--repo`` imports ``app`` from another checkout (e.g. a ``git worktree`` of an older
commit) to measure its layout with the same script; a layout without profiles is measured
without them only.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import math
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SEGMENTS = [f"seg-00{i}" for i in range(1, 6)]
NAMES = ["Loyal high spenders", "At risk", "Bargain hunters", "New and curious", "Dormant"]
VERSION = "20261202T064500Z-3f2a"
BATCH = 10_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def profiles(n: int) -> list[dict[str, Any]]:
    """``n`` rows of the example model's 11 features, as the API's validated rows hold them."""
    from app.datasets import make_customers

    frame, _ = make_customers(n, seed=11)
    features = frame.drop(columns=["customer_id", "ltv", "churned", "converted"])
    rows: list[dict[str, Any]] = features.to_dict("records")
    for row in rows:
        for name, value in row.items():
            if isinstance(value, float) and math.isnan(value):
                row[name] = None
            elif hasattr(value, "item"):  # numpy scalars: the API's rows hold Python values
                row[name] = value.item()
    return rows


async def load(url: str, n: int, rows: list[dict[str, Any]] | None) -> None:
    from app.history import HistoryConfig, Recorder
    from app.history.records import RecordBatch, now_ms

    config = HistoryConfig(redis_url=url, batch_timeout_ms=60_000)
    recorder = Recorder.connect(url, config)
    ids = [f"C{i:07d}" for i in range(n)]
    t0 = now_ms() - 3_600_000
    try:
        for step in range(2):  # a first assignment, then a migration to another segment
            for start in range(0, n, BATCH):
                chunk = ids[start : start + BATCH]
                picks = [(start + i + step) % len(SEGMENTS) for i in range(len(chunk))]
                segs, names = [SEGMENTS[k] for k in picks], [NAMES[k] for k in picks]
                kwargs: dict[str, Any] = {}
                if rows is not None:
                    kwargs["profiles"] = rows[start : start + BATCH]
                batch = RecordBatch(chunk, segs, names, VERSION, t0 + step * 60_000, **kwargs)
                outcomes = await recorder.record_many(batch)
                assert all(o.changed for o in outcomes), "every record must be a migration"
    finally:
        await recorder.aclose()


def measure(n: int, with_profile: bool) -> float:
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("needs redis-server on PATH")
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", folder]
        command += ["--save", "", "--appendonly", "no"]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client = redis.Redis(port=port)
            for _ in range(200):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            rows = profiles(n) if with_profile else None
            before = int(client.info("memory")["used_memory"])
            asyncio.run(load(f"redis://127.0.0.1:{port}/0", n, rows))
            after = int(client.info("memory")["used_memory"])
            client.close()
        finally:
            server.terminate()
            server.wait(10)
    return (after - before) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repo", type=Path, help="import app from this checkout instead")
    args = parser.parse_args()
    sys.path.insert(0, str((args.repo or Path(__file__).resolve().parents[1]).resolve()))
    from app.history.records import RecordBatch

    has_profiles = "profiles" in inspect.signature(RecordBatch.__init__).parameters
    print(f"{args.customers:,} customers, two history entries each, default caps")
    print(f"without a profile: {measure(args.customers, False):,.0f} bytes per customer")
    if has_profiles:
        with_profile = measure(args.customers, True)
        print(f"with an 11-feature profile: {with_profile:,.0f} bytes per customer")


if __name__ == "__main__":
    main()
