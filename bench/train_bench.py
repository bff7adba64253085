"""Training benchmark: the whole job against a plain scikit-learn KMeans fit on the same data.

For each size the script generates the planted-segment customer table
(``app.datasets.make_customers``, not timed), writes it to a temporary folder, then runs two
fresh child processes, one after the other:

* **job**: ``segments train`` as a user runs it (``load_config(examples/customers.toml)`` with
  the data path overridden, ``train(...)`` into a temporary store, no promotion). Its time is the
  child's wall clock from spawn to exit (interpreter start, imports and the exit included; it
  exits as ``segments`` does, the garbage collector frozen); the per-step timings come from
  the version's manifest.
* **baseline**: load the same file with pandas, preprocess it with the job's own (unfitted)
  ``build_preprocessor(config)`` so the matrix is identical, then time only
  ``KMeans(n_clusters=<the job's k>, random_state=0).fit(X)`` (defaults: ``n_init="auto"``,
  Lloyd).

Both children run with every module's bytecode cached, as Python runs an installed project:
``app/`` is compiled into its ``__pycache__`` folders before the runs (as pip compiles what
it installs; ``PYTHONDONTWRITEBYTECODE``, a container or CI setting, would otherwise make
every job compile the project's modules again), and the libraries' own ``__pycache__`` are
read as they lie. (Until stop 42 the cache was a temporary ``PYTHONPYCACHEPREFIX``, which
also hides the libraries' caches: the first child, the job, compiled scikit-learn, SciPy,
pandas and matplotlib from source, about 2-4 s, and the baseline after it found them
compiled.)

Peak RSS is the child's own ``ru_maxrss``, read with ``os.wait4`` for that one process (not
``RUSAGE_CHILDREN``, which keeps the maximum over every child ever waited for).

Usage::

    .venv/bin/python bench/train_bench.py                      # 100k and 1M
    .venv/bin/python bench/train_bench.py --sizes 100000       # a quick run
    .venv/bin/python bench/train_bench.py --format parquet --out bench/results/train-pq.json

Targets (checked at 1M, reported at every size): job <= 3x the baseline fit, job <= 90 s,
job peak RSS < 3 GB.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "customers.toml"
SEED = 7
TARGET_RATIO = 3.0
TARGET_SECONDS = 90.0
TARGET_RSS_MB = 3 * 1024.0
TARGET_SIZE = 1_000_000


# --------------------------------------------------------------------------- child processes


def _config(data: Path) -> Any:
    from app.training.config import load_config

    config = load_config(CONFIG)
    return config.model_copy(update={"data": config.data.model_copy(update={"path": data})})


def child_job(data: Path, store_dir: Path, out: Path) -> None:
    """The whole training job, as ``segments train --config examples/customers.toml``."""
    from app.registry.store import ModelStore
    from app.training.job import train

    start, cpu = time.perf_counter(), time.process_time()
    result = train(
        _config(data),
        ModelStore(store_dir),
        promote=False,
        on_step=lambda step: print(f"    job: {step}", file=sys.stderr, flush=True),
    )
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    manifest = result.manifest
    out.write_text(
        json.dumps(
            {
                "train_seconds": seconds,
                "train_cpu_seconds": cpu,
                "timings": manifest.timings,
                "k": manifest.selection.chosen_k,
                "algorithm": manifest.algorithm,
                "rows": manifest.data.rows,
                "silhouette": manifest.quality.silhouette,
                "stability_ari": manifest.quality.stability_ari,
                "selection_curve": [
                    {"k": p.k, "silhouette": p.silhouette, "min_share": p.min_share}
                    for p in manifest.selection.curve
                ],
            }
        )
    )


def child_baseline(data: Path, k: int, out: Path) -> None:
    """Plain scikit-learn: read with pandas, preprocess, time only ``KMeans.fit``."""
    import numpy as np
    import pandas as pd
    from sklearn.cluster import KMeans

    from app.training.preprocess import build_preprocessor

    config = _config(data)
    start = time.perf_counter()
    frame = pd.read_parquet(data) if data.suffix == ".parquet" else pd.read_csv(data)
    load_seconds = time.perf_counter() - start
    start = time.perf_counter()
    features = frame[config.feature_names]
    X = np.ascontiguousarray(build_preprocessor(config).fit_transform(features), dtype=np.float64)
    preprocess_seconds = time.perf_counter() - start
    del frame, features
    start, cpu = time.perf_counter(), time.process_time()
    model = KMeans(n_clusters=k, random_state=0).fit(X)
    fit_seconds, fit_cpu = time.perf_counter() - start, time.process_time() - cpu
    out.write_text(
        json.dumps(
            {
                "fit_seconds": fit_seconds,
                "fit_cpu_seconds": fit_cpu,
                "load_seconds": load_seconds,
                "preprocess_seconds": preprocess_seconds,
                "n_iter": int(model.n_iter_),
                "shape": list(X.shape),
            }
        )
    )


# --------------------------------------------------------------------------- parent


def _bytecode_env() -> dict[str, str]:
    """The children's environment (this one's), with ``app/`` compiled into its
    ``__pycache__`` first: each child then reads every module's bytecode, as an installed
    project's process does."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.pop("PYTHONPYCACHEPREFIX", None)
    compile_app = [sys.executable, "-m", "compileall", "-q", str(ROOT / "app")]
    subprocess.run(compile_app, check=True, env=env, cwd=ROOT)
    return {k: v for k, v in os.environ.items() if k != "PYTHONPYCACHEPREFIX"}


def _run_child(args: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run this script as a child; wall seconds, CPU seconds and peak RSS (MB) of that process."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, *args], cwd=ROOT, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child {args[0]} failed with exit code {proc.returncode}")
    # ru_maxrss is in KiB on Linux, bytes on macOS
    rss_mb = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return {
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": rss_mb,
        "load_before": load,
    }


def _write_data(n: int, folder: Path, fmt: str) -> Path:
    from app.datasets import make_customers

    frame, _ = make_customers(n, SEED)
    path = folder / f"customers.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def bench_size(n: int, fmt: str, repeat: int) -> dict[str, Any]:
    """Job and baseline ``repeat`` times each, interleaved; medians plus every run."""
    jobs: list[dict[str, Any]] = []
    bases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:
        folder = Path(tmp)
        print(f"size {n:,}: generating data ({fmt})", file=sys.stderr, flush=True)
        start = time.perf_counter()
        data = _write_data(n, folder, fmt)
        generate_seconds = time.perf_counter() - start
        file_mb = data.stat().st_size / 1e6
        env = _bytecode_env()
        for run in range(repeat):
            print(f"size {n:,} run {run + 1}/{repeat}: job", file=sys.stderr, flush=True)
            out = folder / "job.json"
            store = folder / f"store-{run}"
            proc = _run_child(["job", str(data), str(store), str(out)], env)
            jobs.append({**proc, **json.loads(out.read_text())})
            k = jobs[0]["k"]
            print(f"size {n:,} run {run + 1}/{repeat}: baseline k={k}", file=sys.stderr, flush=True)
            out = folder / "baseline.json"
            proc = _run_child(["baseline", str(data), str(k), str(out)], env)
            bases.append({**proc, **json.loads(out.read_text())})

    def med(runs: list[dict[str, Any]], key: str) -> float:
        return round(_median([float(r[key]) for r in runs]), 3)

    first = jobs[0]
    job_seconds, base_fit = med(jobs, "seconds"), med(bases, "fit_seconds")
    job_rss = max(r["peak_rss_mb"] for r in jobs)
    ratio = job_seconds / base_fit
    checks = {
        "ratio": ratio <= TARGET_RATIO,
        "seconds": job_seconds <= TARGET_SECONDS,
        "rss": job_rss < TARGET_RSS_MB,
    }
    timings = {
        step: round(_median([r["timings"][step] for r in jobs]), 3) for step in first["timings"]
    }
    return {
        "size": n,
        "format": fmt,
        "file_mb": round(file_mb, 1),
        "generate_seconds": round(generate_seconds, 2),
        "repeat": repeat,
        "job": {
            "process_seconds": job_seconds,
            "process_cpu_seconds": med(jobs, "cpu_seconds"),
            "train_seconds": med(jobs, "train_seconds"),
            "train_cpu_seconds": med(jobs, "train_cpu_seconds"),
            "peak_rss_mb": round(job_rss, 1),
            "k": first["k"],
            "algorithm": first["algorithm"],
            "rows": first["rows"],
            "silhouette": first["silhouette"],
            "stability_ari": first["stability_ari"],
            "timings": timings,
            "selection_curve": first["selection_curve"],
        },
        "baseline": {
            "fit_seconds": base_fit,
            "fit_cpu_seconds": med(bases, "fit_cpu_seconds"),
            "load_seconds": med(bases, "load_seconds"),
            "preprocess_seconds": med(bases, "preprocess_seconds"),
            "n_iter": bases[0]["n_iter"],
            "shape": bases[0]["shape"],
            "peak_rss_mb": round(max(r["peak_rss_mb"] for r in bases), 1),
        },
        "ratio": round(ratio, 2),
        "cpu_ratio": round(med(jobs, "cpu_seconds") / med(bases, "fit_cpu_seconds"), 2),
        "checks": checks,
        "targets_apply": n >= TARGET_SIZE,
        "runs": {"job": jobs, "baseline": bases},
    }


def _machine() -> dict[str, Any]:
    import numpy
    import pandas
    import sklearn

    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return {
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_gb": round(mem_gb, 1),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "scikit-learn": sklearn.__version__,
        "platform": platform.platform(),
    }


def _print_table(results: list[dict[str, Any]]) -> None:
    header = (
        f"{'size':>10} {'job s':>7} {'base fit s':>10} {'ratio':>6} {'cpu ratio':>9} "
        f"{'job RSS MB':>10} {'base RSS MB':>11} {'k':>2} {'load':>5}  verdict"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        job, base, checks = r["job"], r["baseline"], r["checks"]
        failed = [name for name, ok in checks.items() if not ok]
        verdict = "PASS" if not failed else "FAIL (" + ", ".join(failed) + ")"
        if not r["targets_apply"]:
            verdict = f"({verdict.lower()}; targets are for 1M)"
        load = max(run["load_before"] for run in r["runs"]["job"] + r["runs"]["baseline"])
        print(
            f"{r['size']:>10,} {job['process_seconds']:>7.1f} {base['fit_seconds']:>10.2f} "
            f"{r['ratio']:>6.2f} {r['cpu_ratio']:>9.2f} {job['peak_rss_mb']:>10.0f} "
            f"{base['peak_rss_mb']:>11.0f} {job['k']:>2} {load:>5.1f}  {verdict}"
        )
    print()
    for r in results:
        job = r["job"]
        steps = ", ".join(f"{name} {s:.2f}" for name, s in job["timings"].items())
        untimed = job["train_seconds"] - sum(job["timings"].values())
        startup = job["process_seconds"] - job["train_seconds"]
        print(
            f"{r['size']:>10,} steps (s): {steps}; untimed (manifest file, fsync, publish) "
            f"{untimed:.2f}; interpreter start + imports {startup:.2f}"
        )
    print(
        f"\ntargets at {TARGET_SIZE:,}: job <= {TARGET_RATIO:g}x baseline fit, "
        f"<= {TARGET_SECONDS:g} s, peak RSS < {TARGET_RSS_MB:,.0f} MB. Seconds are wall-clock "
        "medians; 'cpu ratio' is job CPU (user+sys) / baseline fit CPU, less sensitive to other "
        "load on the machine; 'load' is the highest 1-min load average seen before a run."
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "job":
        child_job(Path(argv[1]), Path(argv[2]), Path(argv[3]))
        gc.freeze()  # on the way out, as `segments` does (app.cli.main.main)
        return 0
    if argv and argv[0] == "baseline":
        child_baseline(Path(argv[1]), int(argv[2]), Path(argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train.json")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each child per size (medians reported)"
    )
    args = parser.parse_args(argv)

    results = [bench_size(n, args.format, max(1, args.repeat)) for n in args.sizes]
    _print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": _machine(),
        "targets": {
            "size": TARGET_SIZE,
            "ratio": TARGET_RATIO,
            "seconds": TARGET_SECONDS,
            "peak_rss_mb": TARGET_RSS_MB,
        },
        "results": results,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    gated = [r for r in results if r["targets_apply"]]
    return 0 if all(all(r["checks"].values()) for r in gated) else 1


if __name__ == "__main__":
    sys.exit(main())
