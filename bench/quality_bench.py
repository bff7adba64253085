"""Quality benchmark: do the job's segments separate an outcome better than the plain script?

On each dataset, in the same run, on the same features:

* **baseline**: the twenty lines of scikit-learn a data scientist writes first: standardise
  the numeric columns (median-imputed), one-hot the categorical ones, ``KMeans`` for k in
  3..8, keep the k with the best silhouette.
* **job (<method>)**: the training job (``app.training.job.train``) with the same features,
  the outcome declared, and ``[model] selection`` = ``silhouette`` (the earlier default),
  ``balanced`` (the default with outcomes) and ``outcome`` with the default algorithm
  (``kmeans``), and ``balanced`` with ``algorithms = ["kmeans", "gmm"]``.

The figure: Cramér's V between segment and the binary outcome over every customer, beside
k, the smallest segment's share and the bootstrap stability (mean adjusted Rand index of 5
refits on resamples, the job's own ``assess`` for both sides). Admissible: every segment >=
5% and stability >= 0.9. Target: V >= 1.2x the baseline's, with 3..8 segments.

Datasets: ``../shared/data/customer_personality.csv`` (outcome ``Response``, the last
campaign; skipped if the folder is absent), and a generated table of 8,000 customers whose
numeric features form four clear groups that do not matter, while the outcome depends on
two other features and a plan; and a generated churn table of 10,000 customers with no
cluster structure, where churn follows a contract type, tenure, a threshold on support
calls and a service, beside correlated (tenure, total charges) and unrelated features.

Usage::

    .venv/bin/python bench/quality_bench.py [--out bench/results/quality.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# one OpenMP thread for both sides: on a shared machine, scikit-learn's spinning threads made
# the same k-means fits 10x slower; the figures (not the times) are what this bench compares
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.registry.store import ModelStore  # noqa: E402
from app.training.config import parse_config  # noqa: E402
from app.training.effects import outcome_effect  # noqa: E402
from app.training.job import train  # noqa: E402
from app.training.model import make_clusterer  # noqa: E402
from app.training.plateau_tree import PlateauTree  # noqa: E402
from app.training.quality import assess  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
PERSONALITY_FEATURES: list[dict[str, Any]] = [
    {"name": "Income", "transform": "log1p", "winsorize": [0.0, 0.99]},
    {"name": "Recency"},
    {"name": "MntWines", "transform": "log1p"},
    {"name": "MntMeatProducts", "transform": "log1p"},
    {"name": "MntGoldProds", "transform": "log1p"},
    {"name": "NumWebPurchases"},
    {"name": "NumStorePurchases"},
    {"name": "NumWebVisitsMonth"},
    {"name": "Kidhome", "type": "categorical"},
    {"name": "Marital_Status", "type": "categorical", "min_frequency": 0.02},
    {"name": "Education", "type": "categorical"},
]
MIN_SHARE, MIN_STABILITY, TARGET = 0.05, 0.9, 1.2
VARIANTS: list[tuple[str, list[str] | None]] = [
    ("silhouette", None),  # the earlier default
    ("balanced", None),  # the default with outcomes
    ("outcome", None),
    ("balanced", ["kmeans", "gmm"]),
    ("balanced", ["kmeans", "tree"]),  # a tree on the outcome among the candidates
    ("tree", None),  # algorithm = "tree", target = the outcome
]


def generated_table(n: int = 8_000, seed: int = 5) -> pd.DataFrame:
    """Four well-separated groups on usage features that do not drive the outcome; the
    outcome (``converted``) rises with engagement and falls with price, more on one plan."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 4, n)
    centres = np.array([[0, 0], [4, 0], [0, 4], [4, 4]], dtype=float)
    usage = centres[group] + rng.normal(0, 0.7, (n, 2))
    engagement = rng.gamma(2.0, 2.0, n)
    price = rng.normal(50, 15, n)
    plan = rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2])
    logit = -2.2 + 0.45 * engagement - 0.04 * (price - 50) + 0.8 * (plan == "pro")
    converted = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "customer_id": [f"g{i:06d}" for i in range(n)],
            "usage_a": usage[:, 0],
            "usage_b": usage[:, 1],
            "engagement": engagement,
            "price": price,
            "plan": plan,
            "converted": converted,
        }
    )


def churn_table(n: int = 10_000, seed: int = 11) -> pd.DataFrame:
    """A third structure, with no clusters at all: churn follows a contract type, short
    tenure, a threshold on support calls and a service; tenure and total charges are
    correlated (total = tenure x monthly), an unrelated feature adds noise, 1% of totals
    are missing."""
    rng = np.random.default_rng(seed)
    contract = rng.choice(["month", "one_year", "two_year"], n, p=[0.55, 0.25, 0.2])
    monthly_contract = contract == "month"
    tenure = np.where(monthly_contract, rng.exponential(14, n), rng.exponential(40, n))
    tenure = tenure.clip(0, 72)
    monthly = rng.normal(65, 25, n).clip(18, 120)
    total = tenure * monthly * rng.normal(1, 0.05, n)
    total[rng.uniform(size=n) < 0.01] = np.nan
    calls = rng.poisson(1.5, n)
    internet = rng.choice(["dsl", "fibre", "none"], n, p=[0.35, 0.45, 0.2])
    logit = -2.3 + 1.4 * monthly_contract - 0.035 * tenure + 1.2 * (calls >= 4)
    logit += 0.6 * (internet == "fibre")
    churned = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:06d}" for i in range(n)],
            "tenure": tenure,
            "monthly": monthly,
            "total": total,
            "calls": calls,
            "age": rng.normal(45, 14, n),
            "contract": contract,
            "internet": internet,
            "churned": churned,
        }
    )


CHURN_FEATURES: list[dict[str, Any]] = [
    {"name": "tenure"},
    {"name": "monthly"},
    {"name": "total", "transform": "log1p"},
    {"name": "calls"},
    {"name": "age"},
    {"name": "contract", "type": "categorical"},
    {"name": "internet", "type": "categorical"},
]
GENERATED_FEATURES: list[dict[str, Any]] = [
    {"name": "usage_a"},
    {"name": "usage_b"},
    {"name": "engagement", "transform": "log1p"},
    {"name": "price"},
    {"name": "plan", "type": "categorical"},
]


def baseline(
    frame: pd.DataFrame, features: list[dict[str, Any]], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Scale, one-hot, KMeans, k by silhouette over 3..8: the plain script."""
    numeric = [f["name"] for f in features if f.get("type", "numeric") == "numeric"]
    categorical = [f["name"] for f in features if f.get("type") == "categorical"]
    prep = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        ]
    )
    x = prep.fit_transform(frame[numeric + categorical].astype(dict.fromkeys(categorical, str)))
    best: tuple[float, np.ndarray] | None = None
    for k in range(3, 9):
        labels = KMeans(k, n_init=10, random_state=seed).fit_predict(x)
        sil = float(silhouette_score(x, labels, sample_size=min(5000, len(x)), random_state=0))
        if best is None or sil > best[0]:
            best = (sil, labels)
    assert best is not None
    labels = best[1]
    return np.asarray(labels), np.asarray(x)


def independent(model: Any, frame: pd.DataFrame, y: np.ndarray, refits: int = 20) -> str:
    """The served segmentation's stability measured apart from the job: ``refits`` refits of
    its shape on bootstrap resamples drawn at another seed than the job's, each against the
    served labels: the lowest and the mean ARI. A tree (leaves, plateau, smallest leaf) is
    regrown on the customers with an outcome and compared on them; clusters (the algorithm
    and k, in the space served, 3 initialisations as the job's refits) on at most 20,000
    customers, compared on those. Choosing among more candidates on the same refits flatters
    the winner's own figure; these refits never took part in the choice. (``y``: the
    outcome when the frame lacks the tree's target column.)"""
    rng = np.random.default_rng(2026)
    aris = []
    tree = model.tree
    if tree is not None:
        if tree.target in frame:  # its own target (the first outcome, not always y)
            y = frame[tree.target].to_numpy(dtype=np.float64)
        present = ~np.isnan(y)
        x = tree.columns.matrix(frame)[present]
        served = tree.estimator.apply(x)
        shape = tree.estimator
        for _ in range(refits):
            boot = rng.choice(len(x), len(x), replace=True)
            other = PlateauTree(
                shape.max_leaves, shape.min_samples_leaf, shape.plateau, shape.binary
            )
            other.fit(x[boot], y[present][boot])
            aris.append(adjusted_rand_score(served, other.apply(x)))
    else:
        rows = rng.choice(len(frame), min(len(frame), 20_000), replace=False)
        x = model.transform(frame.iloc[rows])
        clusterer = model.pipeline.steps[-1][1]
        served = clusterer.predict(x)
        algorithm = "gmm" if hasattr(clusterer, "means_") else "kmeans"
        k = len(np.unique(served))
        for i in range(refits):
            boot = rng.choice(len(x), len(x), replace=True)
            other = make_clusterer(algorithm, k, 2026 + i, n_init=3).fit(x[boot])
            aris.append(adjusted_rand_score(served, other.predict(x)))
    return f"{min(aris):.2f} / {np.mean(aris):.2f}"


def figures(
    name: str, labels: np.ndarray, outcome: np.ndarray, stability: float | None, secs: float
) -> dict[str, Any]:
    shares = np.bincount(labels) / len(labels)
    effect = outcome_effect(outcome.astype(float), labels, binary=True)
    return {
        "method": name,
        "k": len(np.unique(labels)),
        "min_share": round(float(shares[shares > 0].min()), 4),
        "stability": None if stability is None else round(stability, 3),
        "cramers_v": round(float(effect.size or 0.0), 4),
        "seconds": round(secs, 2),
    }


def run_dataset(
    label: str, frame: pd.DataFrame, id_column: str, outcome: str, features: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    rows = []
    target = frame[outcome].to_numpy()
    start = time.perf_counter()
    labels, x = baseline(frame, features, seed=42)
    k = len(np.unique(labels))
    base = assess(x, labels, algorithm="kmeans", k=k, seed=42, sample_size=5000, bootstraps=5,
                  bootstrap_size=20_000).quality.stability_ari  # fmt: skip
    secs = time.perf_counter() - start
    rows.append(figures("baseline (KMeans by silhouette)", labels, target, base, secs))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.csv"
        frame.to_csv(data, index=False)
        for method, algorithms in VARIANTS:
            model: dict[str, Any] = {"name": "bench", "k_min": 3, "k_max": 8}
            model.update(seed=42, stability_bootstraps=5)
            if method == "tree":
                model.update(algorithm="tree", target=outcome)
            else:
                model["selection"] = method
            if algorithms:
                model["algorithms"] = algorithms
            raw = {
                "data": {"path": str(data), "id_column": id_column},
                "outcomes": [outcome],
                "features": features,
                "model": model,
            }
            start = time.perf_counter()
            result = train(parse_config(raw, base_dir=Path(tmp)), ModelStore(Path(tmp) / "s"))
            secs = time.perf_counter() - start
            m = result.manifest
            store = ModelStore(Path(tmp) / "s")
            estimator = store.load("bench", m.version).estimator
            ids = estimator.predict(frame.set_index(id_column))
            codes = pd.factorize(ids)[0]
            algos = "+".join(algorithms or ["kmeans"])
            name = f"job {method} [{algos}] -> {m.algorithm}"
            y = frame[outcome].to_numpy(dtype=np.float64)
            name += f" (refit {independent(estimator, frame, y)})"
            rows.append(figures(name, codes, target, m.quality.stability_ari, secs))
    for row in rows:
        row["admissible"] = (
            row["min_share"] >= MIN_SHARE
            and (row["stability"] or 0.0) >= MIN_STABILITY
            and 3 <= row["k"] <= 8
        )
        row["vs_baseline"] = round(row["cramers_v"] / max(rows[0]["cramers_v"], 1e-9), 2)
    print(f"\n## {label}\n", flush=True)
    print("| method | k | smallest | stability | Cramér's V | x baseline | admissible |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        print(
            f"| {r['method']} | {r['k']} | {r['min_share']:.1%} | {r['stability']} | "
            f"{r['cramers_v']:.3f} | {r['vs_baseline']:.2f}x | {'yes' if r['admissible'] else 'no'} |",  # noqa: E501
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "quality.json")
    parser.add_argument("--only", choices=["personality", "generated", "churn"], default=None)
    parser.add_argument(
        "--methods",
        default=None,
        help="comma-separated subset: silhouette,balanced,outcome,tree (balanced:kmeans+tree: "
        "that variant alone)",
    )
    args = parser.parse_args()
    if args.methods:
        wanted = set(args.methods.split(","))  # a method, or method:algo+algo
        VARIANTS[:] = [
            v for v in VARIANTS if v[0] in wanted or f"{v[0]}:{'+'.join(v[1] or [])}" in wanted
        ]
    results: dict[str, Any] = {}
    personality = SHARED / "customer_personality.csv"
    if args.only in ("generated", "churn"):
        pass
    elif personality.exists():
        frame = pd.read_csv(personality)
        results["customer_personality"] = run_dataset(
            "customer_personality.csv (outcome: Response)",
            frame,
            "ID",
            "Response",
            PERSONALITY_FEATURES,
        )
    else:
        print(f"skipped: {personality} is absent")
    if args.only in (None, "generated"):
        results["generated"] = run_dataset(
            "generated (outcome: converted)", generated_table(), "customer_id", "converted",
            GENERATED_FEATURES,
        )  # fmt: skip
    if args.only in (None, "churn"):
        results["churn"] = run_dataset(
            "generated churn table, no clusters (outcome: churned)", churn_table(),
            "customer_id", "churned", CHURN_FEATURES,
        )  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
