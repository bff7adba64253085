"""Assignment by id of a log model's customers (features derived from their aggregates as of
now): req/s, p99 and server CPU per request (its embedded Redis included) under wrk.

    PYTHONPATH=ROOT .venv/bin/python ROOT/bench/tx_by_id_bench.py ROOT [ROUNDS] [SECONDS]

ROOT is the tree whose service is measured (a worktree of another commit to compare; run the
same script against both, interleaved). 1,000 customers with three orders each are posted as
events first; wrk then asks for them by id (bench/api_bench.py's server, wrk and CPU helpers).
Prints one JSON line: the rounds' figures and their medians.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import tomllib
from pathlib import Path

import httpx
import orjson

root = Path(sys.argv[1]).resolve()
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
duration = float(sys.argv[3]) if len(sys.argv) > 3 else 6.0
sys.path.insert(0, str(root / "bench"))
import api_bench as ab  # noqa: E402

from app.datasets import make_transactions  # noqa: E402
from app.registry.store import ModelStore  # noqa: E402
from app.security import new_key  # noqa: E402
from app.training.config import parse_config  # noqa: E402
from app.training.job import train  # noqa: E402

with tempfile.TemporaryDirectory(prefix="tx-by-id-") as tmp:
    work = Path(tmp)
    log, _ = make_transactions(n_customers=3_000, seed=11)
    csv = work / "transactions.csv"
    log.to_csv(csv, index=False)
    raw = tomllib.loads((root / "examples" / "transactions.toml").read_text())
    raw["data"]["path"] = str(csv)
    store = ModelStore(work / "store")
    result = train(parse_config(raw, base_dir=root / "examples"), store, promote=True)
    key, key_line = new_key(["assign"], "tx by-id bench")
    headers = {**ab.JSON, "authorization": f"Bearer {key}"}
    env = ab.service_env(store.root, result.manifest.model_name, key_line)
    env |= {"PYTHONPATH": str(root), "SEGMENTS_DATA_DIR": str(work / "service")}
    ids = [f"T{i:05d}" for i in range(1000)]
    bodies = work / "ids.ndjson"
    bodies.write_bytes(b"\n".join(orjson.dumps({"customer_id": c}) for c in ids) + b"\n")
    events = [
        {
            "event_id": f"e{c}-{k}",
            "customer_id": c,
            "type": "order",
            "amount": 10.0 + k,
            "at": f"2026-10-{10 + k:02d}T10:00:00Z",
            "order_id": f"o{c}-{k}",
        }
        for c in ids
        for k in range(3)
    ]
    target = ["--factory", "app.main:create_app"]
    probe = ("/v1/events", orjson.dumps({"events": events[:3]}))
    runs = []
    with ab.serve("service", target, env, work, probe, headers) as server:
        body = orjson.dumps({"events": events})
        posted = httpx.post(server.base + "/v1/events", content=body, headers=headers, timeout=60)
        assert posted.status_code == 200, posted.text
        one = orjson.dumps({"customer_id": ids[0]})
        doc = httpx.post(server.base + "/v1/assign", content=one, headers=headers).json()
        assert doc.get("features_as_of"), doc  # derived from the aggregates
        options = {"connections": 32, "threads": 2}
        ab.run_wrk(server, "warm-up", "/v1/assign", bodies, key, **options, duration=3)
        for _ in range(rounds):
            runs.append(
                ab.run_wrk(
                    server, "tx_by_id", "/v1/assign", bodies, key, **options, duration=duration
                )
            )
    print(
        json.dumps(
            {
                "root": str(root),
                "rps": [w.rps for w in runs],
                "cpu_us": [w.cpu_us for w in runs],
                "p99_ms": [w.p99_ms for w in runs],
                "errors": [w.errors for w in runs],
                "median_rps": statistics.median(w.rps for w in runs),
                "median_cpu_us": statistics.median(w.cpu_us for w in runs),
                "median_p99_ms": statistics.median(w.p99_ms for w in runs),
            }
        )
    )
