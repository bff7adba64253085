"""Micro-benchmark of the compiled assigner, in process: this code against a baseline.

One run trains the example model (``examples/customers.toml``, optionally with two rule
segments or another algorithm) on 20,000 example customers into a temporary store, compiles
it with this worktree's ``app/serving/compiled.py`` and with a baseline version of that file,
then times, on 10,000 other customers sent as a JSON client sends them (``None`` for a
missing value):

- ``assign_one``: each of the 10,000 customers one at a time (the ``POST /v1/assign`` path);
- ``assign_many``: the 10,000 as one batch (``/v1/assign/batch?explain=true``);
- ``assign_slots``: the same batch, slots and confidences only (``/v1/assign/batch``).

The two implementations run in the same process, interleaved (old, new, new, old, ...) for
``--rounds`` rounds, and the figure is the median per customer: the machine is shared, so a
burst of other load hits both sides alike. Both must give the same answers; the script
checks that before timing anything.

The baseline is loaded from a file, not installed: ``--baseline-rev REV`` reads
``app/serving/compiled.py`` (or the older ``app/assignment/compiled.py``) at a git revision
of this repository into a temporary folder, ``--baseline PATH`` takes a file or a checkout's
root. It imports its dependencies (``app.training``) from this worktree. Run from the
repository root::

    .venv/bin/python bench/assigner_bench.py --baseline-rev 791e61b [--rules] [--algorithm gmm]
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CANDIDATES = ("app/serving/compiled.py", "app/assignment/compiled.py")
RULES = [
    {"name": "Brand new", "when": "tenure_days < 30"},
    {"name": "Key accounts", "when": "plan == 'enterprise' and monetary > 2000"},
]
Row = dict[str, Any]


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def baseline_file(args: argparse.Namespace, workdir: Path) -> Path:
    if args.baseline:
        path = Path(args.baseline)
        if path.is_file():
            return path
        for candidate in CANDIDATES:
            if (path / candidate).is_file():
                return path / candidate
        raise SystemExit(f"error: no compiled.py under {path}")
    for candidate in CANDIDATES:
        shown = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{args.baseline_rev}:{candidate}"],
            capture_output=True,
            text=True,
        )
        if shown.returncode == 0:
            out = workdir / "baseline_compiled.py"
            out.write_text(shown.stdout)
            return out
    raise SystemExit(f"error: no compiled.py at revision {args.baseline_rev}")


def train_model(workdir: Path, algorithm: str, rules: bool) -> Any:
    from app.datasets import make_customers
    from app.registry.store import ModelStore
    from app.training.config import TrainConfig, load_config
    from app.training.job import train

    frame, _ = make_customers(n=20_000, seed=7)
    csv = workdir / "customers.csv"
    frame.to_csv(csv, index=False)
    config = load_config(ROOT / "examples" / "customers.toml")
    raw = config.model_dump()
    raw["data"]["path"] = csv
    raw["model"] |= {"algorithm": algorithm, "stability_bootstraps": 0}
    raw["rules"] = RULES if rules else []
    config = TrainConfig.model_validate(raw)
    store = ModelStore(workdir / "store")
    train(config, store, promote=True)
    return store.load(config.model.name).estimator


def client_rows(names: list[str], n: int, seed: int) -> list[Row]:
    from app.datasets import make_customers

    frame, _ = make_customers(n=n, seed=seed)
    rows = []
    for record in frame[names].to_dict("records"):
        row: Row = {}
        for name, value in record.items():
            if isinstance(value, float) and math.isnan(value):
                value = None
            elif hasattr(value, "item"):
                value = value.item()
            row[str(name)] = value
        rows.append(row)
    return rows


def timed(call: Callable[[Any], object], side: Any) -> float:
    start = time.perf_counter()
    call(side)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--baseline", help="a compiled.py, or a checkout's root")
    which.add_argument("--baseline-rev", help="a git revision of this repository")
    parser.add_argument("--algorithm", default="kmeans")
    parser.add_argument("--rules", action="store_true", help="add two rule segments")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    from app.serving.compiled import CompiledAssigner

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        baseline = load_module(baseline_file(args, workdir), "baseline_compiled")
        model = train_model(workdir, args.algorithm, args.rules)
        rows = client_rows(model.feature_names, args.rows, seed=99)
        sides = {"old": baseline.CompiledAssigner(model), "new": CompiledAssigner(model)}

        def key(a: Any) -> tuple[Any, ...]:
            return (a.slot, a.rule, a.runner_up, [f for f, _ in a.drivers])

        old, new = sides["old"], sides["new"]
        for name in ("assign_one", "assign_many"):
            if name == "assign_one":
                got = [[f(r) for r in rows] for f in (old.assign_one, new.assign_one)]
            else:
                got = [old.assign_many(rows), new.assign_many(rows)]
            differ = [i for i, (a, b) in enumerate(zip(*got, strict=True)) if key(a) != key(b)]
            assert not differ, f"{name}: {len(differ)} rows differ, e.g. {rows[differ[0]]}"
        assert old.assign_slots(rows)[0] == new.assign_slots(rows)[0]

        def one(side: Any) -> None:
            assign = side.assign_one
            for row in rows:
                assign(row)

        calls: dict[str, Callable[[Any], object]] = {
            "assign_one": one,
            "assign_many": lambda side: side.assign_many(rows),
            "assign_slots": lambda side: side.assign_slots(rows),
        }
        # as the service runs (app/main.py): what is loaded frozen, young collections rare
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        for side in sides.values():  # warm up
            for call in calls.values():
                call(side)
        times: dict[tuple[str, str], list[float]] = {}
        for round_ in range(args.rounds):
            order = ("old", "new") if round_ % 2 == 0 else ("new", "old")
            for name, call in calls.items():
                for side in order:
                    times.setdefault((name, side), []).append(timed(call, sides[side]))

    print(
        f"{args.algorithm}{' + 2 rules' if args.rules else ''}, {len(rows):,} customers, "
        f"median of {args.rounds} interleaved rounds, µs per customer"
    )
    print(f"{'':14} {'old':>8} {'new':>8} {'new/old':>8}   {'best old':>8} {'best new':>8}")
    for name in calls:
        old_us, new_us = (
            statistics.median(times[name, side]) / len(rows) * 1e6 for side in ("old", "new")
        )
        old_min, new_min = (min(times[name, side]) / len(rows) * 1e6 for side in ("old", "new"))
        print(
            f"{name:14} {old_us:8.2f} {new_us:8.2f} {new_us / old_us:8.2f}   "
            f"{old_min:8.2f} {new_min:8.2f}"
        )


if __name__ == "__main__":
    main()
