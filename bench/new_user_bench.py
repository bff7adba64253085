"""New-user benchmark: four generated datasets shaped like public ones, each trained through
the config a new user wrote from the README and docs/ alone, against the plain script.

Datasets (seeded; shapes of public data the project had not seen):

* **bank**: the UCI bank-marketing table (12,000 calls): ``;``-separated and quoted, no id
  column (one written as docs/training.md shows), ``unknown`` categories, negative
  balances, ``pdays = -1`` for never contacted, subscription ``y`` yes/no, driven most by an
  earlier campaign's success that 3% of the customers had;
* **mall**: the 200-row mall-customers table, ``Annual Income (k$)`` and ``Spending Score
  (1-100)``, with the score as the (numeric) outcome of age, income and gender;
* **insurance**: the 1,338-row medical insurance table, skewed ``charges`` (the outcome)
  driven by smoking and, for smokers, a BMI above 30;
* **log**: a German shop's order log (85,300 lines): ``;`` between fields, decimal commas,
  ``dd.mm.yyyy`` times, returns as negative quantities on ``C`` invoices, ids written as
  floats (``12364.0``), 800 lines without a customer; outcome ``repurchased`` within 90
  days of the reference date (``[outcomes.future]``).

For each: the **baseline** (``quality_bench.baseline``: median-impute and standardise the
numbers, one-hot the categories, ``KMeans`` for k in 3..8, the best silhouette), on the
features as the job reads them (missing markers applied; a log's derived RFM features);
the **job** with the config as written (its default selection, ``balanced``), a tree on the
outcome, and, where the summary's note suggested a change, the config so changed. Figure:
the outcome's effect size over every customer (Cramér's V, or epsilon² for a numeric
outcome), k, the smallest segment's share and the stability (the job's own ``assess`` for
the baseline; the manifest's for the job).

Usage::

    .venv/bin/python bench/new_user_bench.py [--only bank,mall,insurance,log]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as quality_bench: the figures, not the times

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from quality_bench import baseline  # noqa: E402

from app.registry.store import ModelStore  # noqa: E402
from app.training.config import load_config  # noqa: E402
from app.training.data import load_training_data  # noqa: E402
from app.training.effects import outcome_effect  # noqa: E402
from app.training.job import train  # noqa: E402
from app.training.quality import assess  # noqa: E402


def bank(folder: Path, n: int = 12_000, seed: int = 1) -> None:
    r = np.random.default_rng(seed)
    jobs = [
        "blue-collar",
        "management",
        "technician",
        "admin.",
        "services",
        "retired",
        "self-employed",
        "entrepreneur",
        "unemployed",
        "housemaid",
        "student",
        "unknown",
    ]
    job_p = [0.215, 0.209, 0.168, 0.114, 0.092, 0.05, 0.035, 0.033, 0.029, 0.027, 0.021, 0.007]
    age = r.normal(41, 10.5, n).clip(18, 95).round().astype(int)
    job = r.choice(jobs, n, p=job_p)
    balance = np.round(r.lognormal(6.5, 1.6, n) - 300).astype(int)
    balance = np.where(r.uniform(size=n) < 0.08, -r.integers(1, 2000, n), balance)
    housing = r.choice(["yes", "no"], n, p=[0.56, 0.44])
    loan = r.choice(["no", "yes"], n, p=[0.84, 0.16])
    contact = r.choice(["cellular", "unknown", "telephone"], n, p=[0.65, 0.29, 0.06])
    campaign = r.geometric(0.38, n).clip(1, 63)
    contacted = r.uniform(size=n) < 0.18
    before = r.choice(["failure", "other", "success"], n, p=[0.6, 0.2, 0.2])
    poutcome = np.where(contacted, before, "unknown")
    logit = (-3.0 + 0.9 * (housing == "no") - 0.6 * (loan == "yes") + 2.2 * (poutcome == "success")
             + 0.8 * (contact == "cellular") + 0.6 * ((age < 25) | (age > 60))
             + 0.5 * (job == "student") + 0.4 * (job == "retired") - 0.12 * (campaign - 1)
             + 0.00006 * balance.clip(-2000, 10000))  # fmt: skip
    frame = pd.DataFrame(
        {"age": age, "job": job,
         "marital": r.choice(["married", "single", "divorced"], n, p=[0.6, 0.28, 0.12]),
         "education": r.choice(["secondary", "tertiary", "primary", "unknown"], n,
                               p=[0.51, 0.29, 0.15, 0.05]),
         "default": r.choice(["no", "yes"], n, p=[0.982, 0.018]), "balance": balance,
         "housing": housing, "loan": loan, "contact": contact, "day": r.integers(1, 32, n),
         "duration": np.round(r.lognormal(5.2, 0.8, n)).astype(int), "campaign": campaign,
         "pdays": np.where(contacted, r.integers(1, 400, n), -1),
         "previous": np.where(contacted, r.geometric(0.4, n), 0), "poutcome": poutcome,
         "y": np.where(r.uniform(size=n) < 1 / (1 + np.exp(-logit)), "yes", "no")}
    )  # fmt: skip
    # the file has no id column: one written as docs/training.md shows
    frame.insert(0, "customer_id", [f"B{i:05d}" for i in range(len(frame))])
    frame.to_csv(folder / "bank.csv", sep=";", index=False, quoting=csv.QUOTE_NONNUMERIC)


def mall(folder: Path, seed: int = 2) -> None:
    r = np.random.default_rng(seed)
    groups = [(22, 25, 26, 79), (23, 45, 26, 20), (81, 43, 55, 50), (39, 33, 87, 82),
              (35, 41, 88, 17)]  # fmt: skip
    x = np.vstack([r.normal((a, i, s), 9, (m, 3)) for m, a, i, s in groups])
    x = np.c_[x[:, 0].clip(18, 70), x[:, 1].clip(15, 137), x[:, 2].clip(1, 99)].round()
    r.shuffle(x)
    pd.DataFrame(
        {"CustomerID": np.arange(1, 201),
         "Gender": r.choice(["Female", "Male"], 200, p=[0.56, 0.44]),
         "Age": x[:, 0].astype(int), "Annual Income (k$)": x[:, 1].astype(int),
         "Spending Score (1-100)": x[:, 2].astype(int)}
    ).to_csv(folder / "Mall_Customers.csv", index=False)  # fmt: skip


def insurance(folder: Path, n: int = 1_338, seed: int = 3) -> None:
    r = np.random.default_rng(seed)
    age = r.integers(18, 65, n)
    bmi = r.normal(30.7, 6.1, n).clip(16, 53).round(3)
    children = r.choice([0, 1, 2, 3, 4, 5], n, p=[0.43, 0.24, 0.18, 0.12, 0.02, 0.01])
    smoker = r.choice(["yes", "no"], n, p=[0.2, 0.8])
    charges = 250 * age + 400 * children + r.gamma(1.5, 3000, n) + 2000
    charges += np.where(smoker == "yes", 13000 + np.where(bmi > 30, 20000, 0), 0)
    pd.DataFrame(
        {"customer_id": [f"P{i:05d}" for i in range(n)], "age": age,
         "sex": r.choice(["female", "male"], n), "bmi": bmi, "children": children,
         "smoker": smoker,
         "region": r.choice(["southwest", "southeast", "northwest", "northeast"], n),
         "charges": charges.round(5)}
    ).to_csv(folder / "insurance.csv", index=False)  # fmt: skip


def order_log(folder: Path, customers: int = 2_500, seed: int = 4) -> None:
    r = np.random.default_rng(seed)
    start, invoice, rows = pd.Timestamp("2023-01-01"), 500_000, []
    ids = r.choice(np.arange(12346, 18300), customers, replace=False)
    kinds = r.choice(["loyal", "occasional", "bulk", "lapsed"], customers, p=[0.25, 0.45, 0.1, 0.2])
    rates = {"loyal": 1.5, "occasional": 0.3, "bulk": 0.5, "lapsed": 0.8}  # orders a month
    for cid, kind in zip(ids, kinds, strict=True):
        t = first = r.uniform(0, 400)
        end = min(700, first + r.uniform(30, 200) if kind == "lapsed" else 700)
        while t < end:
            invoice += 1
            for _ in range(r.integers(1, 6)):
                quantity = int(r.integers(1, 13)) * (10 if kind == "bulk" else 1)
                price = round(float(r.lognormal(1.2, 0.7)), 2)
                item, day = f"SKU{r.integers(10000, 99999)}", start + pd.Timedelta(days=t)
                rows.append((f"{invoice}", item, quantity, day, price, f"{cid}.0"))
            if r.uniform() < 0.06:  # a return: a C invoice of negative quantity
                _, item, quantity, day, price, _ = rows[-1]
                later = day + pd.Timedelta(days=3)
                rows.append((f"C{invoice}", item, -quantity, later, price, f"{cid}.0"))
            t += r.exponential(30 / rates[kind])
    for _ in range(800):  # lines without a customer
        invoice += 1
        day = start + pd.Timedelta(days=float(r.uniform(0, 700)))
        rows.append((f"{invoice}", "SKU11111", int(r.integers(1, 5)), day, 2.5, ""))
    columns = ["Rechnung", "Artikel", "Menge", "Rechnungsdatum", "Einzelpreis", "KundenNr"]
    frame = pd.DataFrame(rows, columns=columns).sort_values("Rechnungsdatum", kind="stable")
    frame["Rechnungsdatum"] = frame["Rechnungsdatum"].dt.strftime("%d.%m.%Y %H:%M")
    frame["Einzelpreis"] = frame["Einzelpreis"].map(lambda v: f"{v:.2f}".replace(".", ","))
    frame.to_csv(folder / "umsaetze.csv", sep=";", index=False)


# the configs as the new user wrote them (the features' blocks in short form)
BANK = """outcomes = ["y"]
[data]
path = "bank.csv"
delimiter = ";"
FEATURES
[[features]]
name = "pdays"
missing_values = ["-1"]
[model]
name = "bank"
MODEL"""
BANK_FEATURES = (
    ["age", "balance", "campaign", "previous"],
    ["job", "marital", "education", "housing", "loan", "contact", "poutcome"],
)
MALL = """outcomes = ["Spending Score (1-100)"]
[data]
path = "Mall_Customers.csv"
id_column = "CustomerID"
FEATURES
[model]
name = "mall"
MODEL"""
MALL_FEATURES = (["Age", "Annual Income (k$)"], ["Gender"])
INSURANCE = """outcomes = ["charges"]
[data]
path = "insurance.csv"
FEATURES
[model]
name = "insurance"
MODEL"""
INSURANCE_FEATURES = (["age", "bmi", "children"], ["sex", "smoker", "region"])
LOG = """[data]
path = "umsaetze.csv"
kind = "transactions"
delimiter = ";"
decimal = ","
[data.transactions]
customer = "KundenNr"
timestamp = "Rechnungsdatum"
quantity = "Menge"
unit_price = "Einzelpreis"
order = "Rechnung"
reference_date = 2024-09-01
[outcomes.future]
days = 90
FEATURES
[model]
name = "log"
MODEL"""
LOG_FEATURES = (["recency_days", "frequency", "monetary"], [])

DATASETS = {
    # name: (writer, config, features, outcome, variants: label -> [model] lines)
    "bank": (bank, BANK, BANK_FEATURES, "y", {
        "job balanced (default)": "",
        "job, min_share = 0.03 (as the note says)": "min_share = 0.03",
        "job tree": 'algorithm = "tree"\ntarget = "y"',
    }),
    "mall": (mall, MALL, MALL_FEATURES, "Spending Score (1-100)", {
        "job balanced (default)": "",
        "job tree": 'algorithm = "tree"\ntarget = "Spending Score (1-100)"',
    }),
    "insurance": (insurance, INSURANCE, INSURANCE_FEATURES, "charges", {
        "job balanced (default)": "",
        "job tree": 'algorithm = "tree"\ntarget = "charges"',
    }),
    "log": (order_log, LOG, LOG_FEATURES, "repurchased", {
        "job balanced (default)": "",
        "job tree": 'algorithm = "tree"\ntarget = "repurchased"',
    }),
}  # fmt: skip


def config_text(template: str, features: tuple[list[str], list[str]], model: str) -> str:
    numeric, categorical = features
    blocks = [f'[[features]]\nname = "{name}"' for name in numeric]
    blocks += [f'[[features]]\nname = "{name}"\ntype = "categorical"' for name in categorical]
    return template.replace("FEATURES", "\n".join(blocks)).replace("MODEL", model)


def row(method: str, labels: np.ndarray, y: np.ndarray, stability: float | None) -> dict:
    present = ~np.isnan(y)
    binary = bool(np.isin(y[present], (0.0, 1.0)).all())
    effect = outcome_effect(y[present], labels[present], binary=binary)
    shares = np.bincount(labels) / len(labels)
    return {
        "method": method, "k": int((shares > 0).sum()), "smallest": float(shares[shares > 0].min()),
        "stability": stability, "effect": float(effect.size or 0.0),
        "measure": "Cramér's V" if binary else "epsilon²",
    }  # fmt: skip


def run(name: str, folder: Path) -> list[dict]:
    writer, template, features, outcome, variants = DATASETS[name]
    writer(folder)
    rows: list[dict] = []
    for label, model in variants.items():
        path = folder / f"{name}.toml"
        path.write_text(config_text(template, features, model))
        config = load_config(path)
        if not rows:  # the plain script, on the features as the job reads them
            loaded = load_training_data(config).frame
            y = loaded[outcome].to_numpy(dtype=np.float64)
            specs = [{"name": c} for c in features[0]]
            specs += [{"name": c, "type": "categorical"} for c in features[1]]
            labels, x = baseline(loaded, specs, seed=42)
            k = len(np.unique(labels))
            refits = assess(x, labels, algorithm="kmeans", k=k, seed=42, sample_size=5000,
                            bootstraps=5, bootstrap_size=20_000)  # fmt: skip
            stability = refits.quality.stability_ari
            rows.append(row("baseline (KMeans by silhouette)", labels, y, stability))
        store = ModelStore(folder / "store")
        start = time.process_time()
        manifest = train(config, store).manifest
        cpu = time.process_time() - start
        ids = store.load(config.model.name, manifest.version).estimator.predict(loaded)
        result = row(label, pd.factorize(ids)[0], y, manifest.quality.stability_ari)
        result["cpu_s"] = round(cpu, 1)
        result["note"] = manifest.selection.note or ""
        rows.append(result)
    print(f"\n## {name} (outcome: {outcome})\n", flush=True)
    print("| method | k | smallest | stability | effect | x baseline |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        stability = "—" if r["stability"] is None else f"{r['stability']:.2f}"
        times = r["effect"] / max(rows[0]["effect"], 1e-9)
        print(
            f"| {r['method']} | {r['k']} | {r['smallest']:.1%} | {stability} | "
            f"{r['measure']} {r['effect']:.3f} | {times:.2f}x |",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(DATASETS))
    args = parser.parse_args()
    for name in args.only.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            run(name, Path(tmp))


if __name__ == "__main__":
    main()
