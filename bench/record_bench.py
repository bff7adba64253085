"""Whole-base recording benchmark: ``segments assign --record`` against a plain script.

The script generates the seeded example customer table (``app.datasets.make_customers``,
1,000,000 rows by default, seed 7; not timed), trains the example config on a 20,000-row
sample of the same generator into a temporary store, then runs fresh child processes,
interleaved, each against a fresh ``redis-server`` on a free port without persistence:

* **record**: ``segments assign --input FILE --record`` as a user runs it, into an empty
  Redis: every customer is new, so every record is a migration (current state, history entry,
  membership, flow counter and stream event).
* **rescore**: the same command again on the same Redis (a new run): the nightly steady
  state, every customer unchanged (current state's time only).
* **baseline**: read the same file with pandas, ``Pipeline.predict`` (the version's
  scikit-learn pipeline), and write only the segment per customer with a redis-py pipeline of
  ``HSET``s (10,000 per round trip).

Times are the child's wall clock from spawn to exit (interpreter start and imports
included), so customers/s = rows / that time. On a shared machine the wall clock depends on
what else runs, so the CPU seconds of the child and of the Redis server are reported too.
Peak RSS is the child's own ``ru_maxrss`` (``os.wait4`` on that one process). With
``--repeats N`` the three alternate N times and the medians are reported.

Usage::

    .venv/bin/python bench/record_bench.py                      # 1M customers, once
    .venv/bin/python bench/record_bench.py --rows 200000 --repeats 3

Targets (at 1M): record at least as fast as the baseline, >= 50,000 customers/s, RSS < 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEED = 7
TARGET_RATE = 50_000
TARGET_RSS_MB = 1536.0

BASELINE = r"""
import sys
import pandas as pd
import redis
from pathlib import Path
from app.registry.store import ModelStore

store, name, source, url = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
model = ModelStore(store).load(name).estimator
frame = pd.read_csv(source)
labels = model.pipeline.predict(frame[model.feature_names])
segments = [model.segment_ids[model.n_rules + int(k)] for k in labels]
client = redis.Redis.from_url(url)
ids = frame["customer_id"].astype(str).tolist()
for start in range(0, len(ids), 10_000):
    pipe = client.pipeline(transaction=False)
    for cid, seg in zip(ids[start : start + 10_000], segments[start : start + 10_000]):
        pipe.hset(f"base:{cid}", "segment", seg)
    pipe.execute()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FreshRedis:
    """A redis-server without persistence on a free port, stopped (by pid) on exit."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        folder.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("redis-server") or "redis-server"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(folder)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        deadline = time.monotonic() + 20
        while True:
            try:
                with redis.Redis(port=self.port) as client:
                    client.ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def used_memory(self) -> int:
        import redis

        with redis.Redis(port=self.port) as client:
            return int(client.info("memory")["used_memory"])

    def cpu_seconds(self) -> float:
        """CPU time the server used so far (its work, whatever else the machine runs)."""
        import redis

        with redis.Redis(port=self.port) as client:
            cpu = client.info("cpu")
        return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])

    def command_usec(self) -> dict[str, tuple[int, int]]:
        """Per command (``evalsha``, ``hset``...): calls and server microseconds so far."""
        import redis

        with redis.Redis(port=self.port) as client:
            stats = client.info("commandstats")
        return {
            name.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"]))
            for name, v in stats.items()
        }

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def _top_commands(
    before: dict[str, tuple[int, int]], server: FreshRedis, rows: int
) -> dict[str, float]:
    """Where Redis spent its time since ``before`` (``INFO commandstats``): the commands
    that took over 1 % of it, as server microseconds per customer of the file."""
    after = server.command_usec()
    spent = {name: usec - before.get(name, (0, 0))[1] for name, (_, usec) in after.items()}
    total = sum(spent.values()) or 1
    return {
        name: round(usec / rows, 2)
        for name, usec in sorted(spent.items(), key=lambda item: -item[1])
        if usec > total / 100
    }


def _child(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run ``command``; its wall time and its own peak RSS (MB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed:\n{err.decode(errors='replace')[-3000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"seconds": seconds, "rss_mb": usage.ru_maxrss / 1024, "cpu_s": cpu}


def _prepare(folder: Path, rows: int) -> tuple[Path, Path, str]:
    from app.datasets import make_customers
    from app.registry.store import ModelStore
    from app.training.config import load_config
    from app.training.job import train

    source = folder / "customers.csv"
    make_customers(rows, SEED)[0].to_csv(source, index=False)
    sample = folder / "sample.csv"
    make_customers(20_000, SEED)[0].to_csv(sample, index=False)
    config = load_config(ROOT / "examples" / "customers.toml")
    config = config.model_copy(update={"data": config.data.model_copy(update={"path": sample})})
    store = ModelStore(folder / "models")
    result = train(config, store, promote=True)
    return source, store.root, result.manifest.model_name


def run(rows: int, repeats: int) -> dict[str, Any]:
    results: dict[str, list[dict[str, float]]] = {"record": [], "rescore": [], "baseline": []}
    with tempfile.TemporaryDirectory(prefix="record-bench-") as tmp:
        folder = Path(tmp)
        source, store, name = _prepare(folder, rows)
        segments = str(Path(sys.executable).with_name("segments"))
        for rep in range(repeats):
            server = FreshRedis(folder / f"redis-{rep}")
            try:
                env = {
                    **os.environ,
                    "SEGMENTS_REDIS_URL": server.url,
                    "SEGMENTS_DATA_DIR": str(folder / f"data-{rep}"),
                    "SEGMENTS_MODEL_STORE": str(store),
                    "SEGMENTS_MODEL_NAME": name,
                }
                command = [segments, "assign", "--input", str(source), "--record"]
                for kind in ("record", "rescore"):
                    before, commands = server.cpu_seconds(), server.command_usec()
                    result = _child(command, env)
                    result["redis_cpu_s"] = server.cpu_seconds() - before
                    result["redis_us_per_row"] = _top_commands(commands, server, rows)
                    result["redis_mb"] = server.used_memory() / 2**20
                    results[kind].append(result)
                    print(kind, rep, result, flush=True)
            finally:
                server.stop()
            server = FreshRedis(folder / f"base-{rep}")
            try:
                command = [sys.executable, "-c", BASELINE, str(store), name, str(source)]
                before, commands = server.cpu_seconds(), server.command_usec()
                result = _child([*command, server.url], dict(os.environ))
                result["redis_cpu_s"] = server.cpu_seconds() - before
                result["redis_us_per_row"] = _top_commands(commands, server, rows)
                result["redis_mb"] = server.used_memory() / 2**20
                results["baseline"].append(result)
                print("baseline", rep, result, flush=True)
            finally:
                server.stop()
    summary: dict[str, Any] = {"rows": rows, "repeats": repeats, "cpus": os.cpu_count()}
    for kind, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        summary[kind] = {
            "seconds": round(seconds, 2),
            "customers_per_s": round(rows / seconds),
            "rss_mb": round(statistics.median(r["rss_mb"] for r in runs)),
            "redis_mb": round(statistics.median(r["redis_mb"] for r in runs)),
            # contention-free figures: CPU seconds of the child and of Redis
            "cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 1),
            "redis_cpu_s": round(statistics.median(r["redis_cpu_s"] for r in runs), 1),
            "redis_us_per_row": runs[len(runs) // 2]["redis_us_per_row"],
        }
    base = summary["baseline"]["seconds"]
    for kind in ("record", "rescore"):
        summary[kind]["vs_baseline"] = round(base / summary[kind]["seconds"], 2)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, help="also write the summary here (JSON)")
    args = parser.parse_args()
    summary = run(args.rows, args.repeats)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    record = summary["record"]
    print(
        f"targets: >= baseline {record['vs_baseline'] >= 1.0}, "
        f">= {TARGET_RATE:,}/s {record['customers_per_s'] >= TARGET_RATE}, "
        f"RSS < {TARGET_RSS_MB:.0f} MB {record['rss_mb'] < TARGET_RSS_MB}"
    )


if __name__ == "__main__":
    main()
