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

Later shapes (each writer's docstring says what it holds): card attrition, online shoppers,
customer value, Instacart-like orders, hotel bookings, telecom, a wide table, dates as days
since; then an app's users with a revenue outcome that is 0 for nine in ten (``apps``), 150
business accounts (``accounts``), a grocer's loyalty-card log with ``[outcomes.future]``
(``loyalty``), a subscription product's usage counts and churn, where a few of ten features
matter (``saas``), and a retail order log whose campaign response is a table of its own joined
on the customer id (``retail``); then a wholesaler's order-line log in five currencies with
returns on RMA orders (``wholesale``), a mobile game's players with 200 countries and a
True/False churn (``game``), and a charity's donor file with rare genders, a quarter of ages
missing and a 0/1 response (``donors``); then a German shop's customer table saved by Excel
(cp1252, ``;``, decimal commas, CRLF, blank rows and a ``Summe`` row under the customers,
``ja``/``nein``: ``kunden``), the UCI bank-additional table (``pdays = 999`` for never,
R's dotted names ``emp.var.rate``: ``bank_additional``) and a billing system's export (MRR
``$1,234.50``, a credit balance ``($19.14)``, ``15%``, a ``created`` date, prepared by the
docs' pandas lines: ``billing``), and a survey's Likert items beside ``Don't know``, written
as numbers as the note says, with the NPS question as the outcome (``survey``); then a B2B
CRM's accounts as Parquet (integer ids, 3,000 zip codes, bool and nullable boolean columns,
``Annual Revenue ($)``: ``b2b``), an app's event log of epoch seconds with ``app_open`` lines
of amount 0 beside purchases, made a table of counts per user as docs/training.md shows
(``events``), the UCI credit-card default table (``ID``, codes 1..6 with undocumented ones,
``PAY_0`` beside ``PAY_2``, negative bills, ``default.payment.next.month``: ``credit``) and
an Olist-like marketplace log of payments (an order's voucher and card lines, ISO times with
``-03:00``, ``canceled``/``unavailable`` statuses, 95% one-time buyers, reviews joined:
``olist``).

For each: the **baseline** (``quality_bench.baseline``: median-impute and standardise the
numbers, one-hot the categories, ``KMeans`` for k in 3..8, the best silhouette), on the
features as the job reads them (missing markers applied; a log's derived RFM features);
the **job** with the config as written (its default selection, ``balanced``), a tree on the
outcome, and, where the summary's note suggested a change, the config so changed; and a
**reference**: a regression tree fitted to the outcome itself on the baseline's matrix (leaves
of at least 5%, the best of 3..8 leaves, in-sample), what the features can tell of the
outcome in a few segments, so that "of the headroom" says how much of the gap between the
plain script and it a method closes (a plain script near the reference leaves any method
little to gain). Figure:
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
from sklearn.tree import DecisionTreeRegressor

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from quality_bench import baseline, independent  # noqa: E402

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


def churners(folder: Path, n: int = 10_127, seed: int = 5) -> None:
    r = np.random.default_rng(seed)
    age = r.normal(46, 8, n).clip(26, 73).round().astype(int)
    gender = r.choice(["F", "M"], n, p=[0.53, 0.47])
    bands = ["Less than $40K", "$40K - $60K", "$60K - $80K", "$80K - $120K", "$120K +", "Unknown"]
    band_m = r.choice(bands, n, p=[0.2, 0.15, 0.12, 0.13, 0.07, 0.33])
    band_f = r.choice(["Less than $40K", "$40K - $60K", "Unknown"], n, p=[0.6, 0.2, 0.2])
    income = np.where(gender == "M", band_m, band_f)
    level = pd.Series(income).map(dict(zip(bands, [0, 1, 2, 3, 4, 1], strict=True))).to_numpy()
    card = r.choice(["Blue", "Silver", "Gold", "Platinum"], n, p=[0.932, 0.055, 0.011, 0.002])
    limit = (r.lognormal(8.3 + 0.35 * level, 0.7, n) + 1438).clip(1438, 34516).round(1)
    revolving = np.where(r.uniform(size=n) < 0.24, 0, r.integers(400, 2518, n))
    relationship = r.integers(1, 7, n)
    inactive = r.choice([0, 1, 2, 3, 4, 5, 6], n, p=[0.003, 0.22, 0.32, 0.38, 0.043, 0.018, 0.016])
    contacts = r.choice([0, 1, 2, 3, 4, 5, 6], n, p=[0.04, 0.15, 0.32, 0.33, 0.14, 0.017, 0.003])
    months = (age - 26 + r.normal(14, 5, n)).clip(13, 56).round().astype(int)
    count = r.normal(65, 22, n).clip(10, 139).round()
    logit = (
        -1.2
        - 0.06 * (count - 65)
        - 0.0012 * revolving
        + 0.45 * (contacts - 2.5)
        + 0.35 * (inactive - 2.3)
        - 0.25 * (relationship - 3.8)
    )
    attrited = r.uniform(size=n) < 1 / (1 + np.exp(-logit))
    count = np.where(attrited, count * 0.7, count).round().astype(int)
    amount = (count * r.normal(60, 12, n) + np.where(count > 80, count * 50, 0)).clip(510).round()
    pd.DataFrame(
        {
            "CLIENTNUM": r.choice(np.arange(708_082_083, 828_343_083), n, replace=False),
            "Attrition_Flag": np.where(attrited, "Attrited Customer", "Existing Customer"),
            "Customer_Age": age,
            "Gender": gender,
            "Dependent_count": r.choice(
                [0, 1, 2, 3, 4, 5], n, p=[0.09, 0.18, 0.26, 0.27, 0.15, 0.05]
            ),
            "Education_Level": r.choice(
                [
                    "Graduate",
                    "High School",
                    "Unknown",
                    "Uneducated",
                    "College",
                    "Post-Graduate",
                    "Doctorate",
                ],
                n,
                p=[0.31, 0.2, 0.15, 0.15, 0.1, 0.05, 0.04],
            ),
            "Marital_Status": r.choice(
                ["Married", "Single", "Unknown", "Divorced"], n, p=[0.46, 0.39, 0.07, 0.08]
            ),
            "Income_Category": income,
            "Card_Category": card,
            "Months_on_book": months,
            "Total_Relationship_Count": relationship,
            "Months_Inactive_12_mon": inactive,
            "Contacts_Count_12_mon": contacts,
            "Credit_Limit": limit,
            "Total_Revolving_Bal": revolving,
            "Avg_Open_To_Buy": (limit - revolving).round(1),
            "Total_Amt_Chng_Q4_Q1": r.normal(0.76, 0.22, n).clip(0, 3.4).round(3),
            "Total_Trans_Amt": amount.astype(int),
            "Total_Trans_Ct": count,
            "Total_Ct_Chng_Q4_Q1": (r.normal(0.71, 0.24, n) - 0.15 * attrited)
            .clip(0, 3.7)
            .round(3),
            "Avg_Utilization_Ratio": (revolving / limit).round(3),
        }
    ).to_csv(folder / "BankChurners.csv", index=False)


def shoppers(folder: Path, n: int = 12_330, seed: int = 6) -> None:
    r = np.random.default_rng(seed)
    months = ["Feb", "Mar", "May", "June", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    month = r.choice(
        months, n, p=[0.015, 0.155, 0.273, 0.023, 0.035, 0.035, 0.036, 0.045, 0.243, 0.14]
    )
    visitor = r.choice(["Returning_Visitor", "New_Visitor", "Other"], n, p=[0.855, 0.138, 0.007])
    engaged = r.uniform(size=n) < 0.25
    product = (r.negative_binomial(1.2, 0.04, n) + 1 + engaged * 20).astype(int)
    admin = r.negative_binomial(0.7, 0.23, n) + engaged * 2
    info = np.where(r.uniform(size=n) < 0.79, 0, r.integers(1, 6, n))
    bounce = np.where(r.uniform(size=n) < 0.45, 0, r.exponential(0.02, n)).clip(0, 0.2)
    exits = (bounce + r.exponential(0.025, n)).clip(0, 0.2)
    page = np.where(r.uniform(size=n) < 0.78 - 0.2 * engaged, 0, r.lognormal(3, 1, n))
    logit = (
        -2.9
        + 0.06 * np.sqrt(page) * 10
        + 0.6 * (month == "Nov")
        + 0.3 * (visitor == "New_Visitor")
        - 10 * exits
    )
    revenue = r.uniform(size=n) < 1 / (1 + np.exp(-logit))
    pd.DataFrame(
        {
            "Administrative": admin,
            "Administrative_Duration": (admin * r.exponential(35, n)).round(6),
            "Informational": info,
            "Informational_Duration": (info * r.exponential(40, n)).round(6),
            "ProductRelated": product,
            "ProductRelated_Duration": (product * r.lognormal(3.3, 0.6, n)).round(6),
            "BounceRates": bounce.round(8),
            "ExitRates": exits.round(8),
            "PageValues": page.round(6),
            "SpecialDay": np.where(month == "May", r.choice([0, 0.2, 0.4, 0.6, 0.8, 1.0], n), 0.0),
            "Month": month,
            "OperatingSystems": r.choice([1, 2, 3, 4, 8], n, p=[0.21, 0.53, 0.21, 0.04, 0.01]),
            "Browser": r.choice([1, 2, 4, 5, 6, 10], n, p=[0.2, 0.65, 0.06, 0.04, 0.02, 0.03]),
            "Region": r.choice(range(1, 10), n),
            "TrafficType": r.choice([1, 2, 3, 4, 13, 10, 6], n),
            "VisitorType": visitor,
            "Weekend": np.where(r.uniform(size=n) < 0.23, "TRUE", "FALSE"),
            "Revenue": np.where(revenue, "TRUE", "FALSE"),
        }
    ).to_csv(folder / "online_shoppers_intention.csv", index=False)


def clv(folder: Path, n: int = 9_134, seed: int = 7) -> None:
    r = np.random.default_rng(seed)
    coverage = r.choice(["Basic", "Extended", "Premium"], n, p=[0.61, 0.3, 0.09])
    vehicle = r.choice(
        ["Four-Door Car", "Two-Door Car", "SUV", "Sports Car", "Luxury SUV", "Luxury Car"],
        n,
        p=[0.51, 0.21, 0.2, 0.05, 0.02, 0.01],
    )
    base = (
        pd.Series(vehicle)
        .map(
            {
                "Four-Door Car": 68,
                "Two-Door Car": 68,
                "SUV": 110,
                "Sports Car": 112,
                "Luxury SUV": 210,
                "Luxury Car": 210,
            }
        )
        .to_numpy()
    )
    premium = (
        (
            base
            * pd.Series(coverage).map({"Basic": 1, "Extended": 1.25, "Premium": 1.5}).to_numpy()
            + r.exponential(6, n)
        )
        .round()
        .astype(int)
    )
    policies = r.choice(
        range(1, 10), n, p=[0.36, 0.25, 0.13, 0.045, 0.045, 0.04, 0.045, 0.04, 0.045]
    )
    factor = np.where(policies == 1, 31, np.where(policies == 2, 100, 40))
    value = premium * factor * r.lognormal(0, 0.25, n) + r.gamma(1, 600, n)
    employment = r.choice(
        ["Employed", "Unemployed", "Medical Leave", "Disabled", "Retired"],
        n,
        p=[0.62, 0.25, 0.05, 0.04, 0.04],
    )
    income = np.where(employment == "Unemployed", 0, r.integers(10_000, 100_000, n))
    ptype = r.choice(["Personal Auto", "Corporate Auto", "Special Auto"], n, p=[0.74, 0.22, 0.04])
    level = r.choice(["L1", "L2", "L3"], n, p=[0.3, 0.4, 0.3])
    policy = np.char.add(
        np.where(
            ptype == "Personal Auto",
            "Personal ",
            np.where(ptype == "Corporate Auto", "Corporate ", "Special "),
        ),
        level,
    )
    day = pd.Timestamp("2011-01-01") + pd.to_timedelta(r.integers(0, 59, n), unit="D")
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    pd.DataFrame(
        {
            "Customer": [
                f"{a}{b}{d:05d}"
                for a, b, d in zip(
                    r.choice(letters, n),
                    r.choice(letters, n),
                    r.choice(100_000, n, replace=False),
                    strict=True,
                )
            ],
            "State": r.choice(
                ["California", "Oregon", "Arizona", "Nevada", "Washington"],
                n,
                p=[0.34, 0.28, 0.19, 0.1, 0.09],
            ),
            "Customer Lifetime Value": value.round(6),
            "Response": r.choice(["No", "Yes"], n, p=[0.86, 0.14]),
            "Coverage": coverage,
            "Education": r.choice(
                ["Bachelor", "College", "High School or Below", "Master", "Doctor"],
                n,
                p=[0.3, 0.29, 0.29, 0.08, 0.04],
            ),
            "Effective To Date": [f"{d.month}/{d.day}/{d.year % 100}" for d in day],
            "EmploymentStatus": employment,
            "Gender": r.choice(["F", "M"], n),
            "Income": income,
            "Location Code": r.choice(["Suburban", "Rural", "Urban"], n, p=[0.63, 0.19, 0.18]),
            "Marital Status": r.choice(["Married", "Single", "Divorced"], n, p=[0.58, 0.27, 0.15]),
            "Monthly Premium Auto": premium,
            "Months Since Last Claim": r.integers(0, 36, n),
            "Months Since Policy Inception": r.integers(0, 100, n),
            "Number of Open Complaints": r.choice(
                range(6), n, p=[0.79, 0.11, 0.04, 0.03, 0.02, 0.01]
            ),
            "Number of Policies": policies,
            "Policy Type": ptype,
            "Policy": policy,
            "Renew Offer Type": r.choice(
                ["Offer1", "Offer2", "Offer3", "Offer4"], n, p=[0.41, 0.32, 0.16, 0.11]
            ),
            "Sales Channel": r.choice(
                ["Agent", "Branch", "Call Center", "Web"], n, p=[0.38, 0.28, 0.19, 0.15]
            ),
            "Total Claim Amount": (premium * r.uniform(1, 7, n)).round(6),
            "Vehicle Class": vehicle,
            "Vehicle Size": r.choice(["Medsize", "Small", "Large"], n, p=[0.7, 0.19, 0.11]),
        }
    ).to_csv(folder / "marketing_customer_value.csv", index=False)


def instacart(folder: Path, users: int = 4_000, seed: int = 8) -> None:
    """orders.csv as Instacart ships it: no dates, an order number and the days since the
    prior one (and a basket size, counted from its order lines)."""
    r = np.random.default_rng(seed)
    rows, order_id = [], 2_539_329
    for user in range(1, users + 1):
        gap = r.choice([4.0, 8.0, 15.0, 28.0], p=[0.2, 0.3, 0.3, 0.2])
        basket = r.lognormal(2.1, 0.5)
        orders = int(r.integers(4, 60 if gap < 10 else 20))
        for number in range(1, orders + 1):
            order_id += 1
            since = "" if number == 1 else float(min(30, round(r.exponential(gap))))
            rows.append(
                (
                    order_id,
                    user,
                    "prior" if number < orders else "train",
                    number,
                    int(r.integers(0, 7)),
                    int(r.integers(6, 23)),
                    since,
                    max(1, int(r.poisson(basket))),
                )
            )
    pd.DataFrame(
        rows,
        columns=[
            "order_id",
            "user_id",
            "eval_set",
            "order_number",
            "order_dow",
            "order_hour_of_day",
            "days_since_prior_order",
            "basket_size",
        ],
    ).to_csv(folder / "orders.csv", index=False)


def shoppers_with_ids(folder: Path) -> None:
    """The shoppers' table has no id column: one written as docs/training.md shows."""
    shoppers(folder)
    frame = pd.read_csv(folder / "online_shoppers_intention.csv")
    frame.insert(0, "customer_id", [f"S{i:05d}" for i in range(len(frame))])
    frame.to_csv(folder / "shoppers.csv", index=False)


def clv_prepared(folder: Path) -> None:
    """``Effective To Date`` (m/d/yy) as days before the export, as docs/training.md shows."""
    clv(folder)
    frame = pd.read_csv(folder / "marketing_customer_value.csv", dtype=str,
                        keep_default_na=False)  # fmt: skip
    as_of = pd.Timestamp("2011-03-01")
    days = (as_of - pd.to_datetime(frame.pop("Effective To Date"), format="%m/%d/%y")).dt.days
    frame["days_since_effective"] = days
    frame.to_csv(folder / "clv_prepared.csv", index=False)


def instacart_customers(folder: Path) -> None:
    """The log without dates made a customer table as docs/training.md shows."""
    instacart(folder)
    log = pd.read_csv(folder / "orders.csv").sort_values(["user_id", "order_number"])
    last = log.groupby("user_id").tail(1).set_index("user_id")
    past = log[~log["order_id"].isin(last["order_id"])]
    table = past.groupby("user_id").agg(
        orders=("order_number", "max"),
        mean_days_between=("days_since_prior_order", "mean"),
        basket_size=("basket_size", "mean"),
    )
    table["back_within_7_days"] = (last["days_since_prior_order"] <= 7).map(
        {True: "yes", False: "no"}
    )
    table.rename_axis("customer_id").reset_index().to_csv(folder / "order_customers.csv",
                                                          index=False)  # fmt: skip


def hotel(folder: Path, n: int = 20_000, seed: int = 11) -> None:
    """The hotel-bookings table: no id column (one written as docs/training.md shows, cells
    kept as written), arrival dates as text, ADR with outliers (5,400, 0, -6.38), ~150
    countries with many rare ones and ``NULL``, ``children`` with ``NA``, ``meal`` with
    ``Undefined``; outcome ``is_canceled`` driven by lead time, a non-refundable deposit,
    special requests and parking."""
    r = np.random.default_rng(seed)
    hotel = r.choice(["Resort Hotel", "City Hotel"], n, p=[0.34, 0.66])
    lead = np.round(r.gamma(0.9, 115, n)).astype(int)
    codes = ["PRT", "GBR", "FRA", "ESP", "DEU", "ITA", "IRL", "BEL", "BRA", "NLD", "USA", "CHE",
             "CN", "AUT", "SWE"] + [f"C{i:03d}" for i in range(135)]  # fmt: skip
    w = 1 / np.arange(1, len(codes) + 1) ** 1.3
    country = np.where(r.uniform(size=n) < 0.004, "NULL", r.choice(codes, n, p=w / w.sum()))
    segment = r.choice(["Online TA", "Offline TA/TO", "Groups", "Direct", "Corporate",
                        "Complementary", "Aviation"], n,
                       p=[0.47, 0.2, 0.17, 0.1, 0.045, 0.01, 0.005])  # fmt: skip
    deposit = r.choice(["No Deposit", "Non Refund", "Refundable"], n, p=[0.87, 0.12, 0.01])
    children = r.choice(["0", "1", "2"], n, p=[0.93, 0.04, 0.03]).astype(object)
    children[r.uniform(size=n) < 0.004] = "NA"
    repeated = (r.uniform(size=n) < 0.03).astype(int)
    prev_cancel = np.where(r.uniform(size=n) < 0.05, r.integers(1, 5, n), 0)
    requests = r.poisson(0.57, n).clip(0, 5)
    parking = (r.uniform(size=n) < 0.06).astype(int)
    adr = np.round(r.lognormal(4.5, 0.4, n) + 10 * (hotel == "City Hotel"), 2)
    adr[r.integers(0, n, 3)] = [5400.0, 0.0, -6.38]
    adr[r.uniform(size=n) < 0.015] = 0.0
    arrival = pd.Timestamp("2015-07-01") + pd.to_timedelta(r.integers(0, 790, n), unit="D")
    logit = (-1.2 + 0.004 * lead + 2.8 * (deposit == "Non Refund") - 0.9 * requests
             - 1.5 * parking + 0.5 * (segment == "Groups") + 0.4 * (hotel == "City Hotel")
             + 0.9 * (prev_cancel > 0) - 1.0 * repeated + 0.5 * (country == "PRT"))  # fmt: skip
    frame = pd.DataFrame(
        {"hotel": hotel, "is_canceled": (r.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int),
         "lead_time": lead, "arrival_date_year": arrival.year,
         "arrival_date_month": arrival.strftime("%B"), "arrival_date_day_of_month": arrival.day,
         "stays_in_weekend_nights": r.poisson(0.9, n), "stays_in_week_nights": r.poisson(2.5, n),
         "adults": r.choice([1, 2, 3], n, p=[0.19, 0.75, 0.06]), "children": children,
         "meal": r.choice(["BB", "HB", "SC", "Undefined", "FB"], n,
                          p=[0.77, 0.12, 0.09, 0.01, 0.01]),
         "country": country, "market_segment": segment, "is_repeated_guest": repeated,
         "previous_cancellations": prev_cancel, "deposit_type": deposit, "adr": adr,
         "required_car_parking_spaces": parking, "total_of_special_requests": requests}
    )  # fmt: skip
    frame.to_csv(folder / "hotel_bookings.csv", index=False)
    # no id column: one written as docs/training.md shows, every cell kept as written
    frame = pd.read_csv(folder / "hotel_bookings.csv", dtype=str, keep_default_na=False)
    frame.insert(0, "customer_id", [f"H{i:05d}" for i in range(len(frame))])
    frame.to_csv(folder / "hotel.csv", index=False)


def telecom(folder: Path, n: int = 8_000, seed: int = 12) -> None:
    """A telecom usage table: ids in ``subscriber_no`` (zero-padded), integer-coded
    ``region`` (1..5) and ``plan_code`` (10/20/30), a data column 20% zeros; ``churn`` 0/1
    driven by care calls, dropped calls (most in region 4), tenure and the cheapest plan."""
    r = np.random.default_rng(seed)
    region, plan = r.integers(1, 6, n), r.choice([10, 20, 30], n, p=[0.5, 0.35, 0.15])
    tenure, care = r.integers(1, 72, n), r.poisson(0.8, n)
    dropped = r.poisson(1 + 2 * (region == 4), n)
    logit = -2 + 0.45 * care + 0.25 * dropped - 0.03 * tenure + 0.6 * (plan == 10)
    pd.DataFrame(
        {"subscriber_no": [f"{i:07d}" for i in r.choice(10**7, n, replace=False)],
         "region": region, "plan_code": plan, "tenure_months": tenure,
         "minutes": np.round(r.gamma(2, 150, n) * (1 + 0.3 * (plan == 30)), 1),
         "data_mb": np.round(np.where(r.uniform(size=n) < 0.2, 0, r.lognormal(7, 1.2, n))),
         "sms": r.poisson(40, n), "dropped_calls": dropped, "care_calls": care,
         "churn": (r.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)}
    ).to_csv(folder / "telecom.csv", index=False)  # fmt: skip


WIDE_COLUMNS = 64


def wide(folder: Path, n: int = 6_000, seed: int = 13) -> None:
    """A wide table: 64 spend columns (30% zeros each) from four latent tastes; ``responded``
    Yes/No driven by two of the tastes, which no single column carries."""
    r = np.random.default_rng(seed)
    latent = r.normal(size=(n, 4))
    x = np.exp(latent @ r.normal(size=(4, WIDE_COLUMNS)) * 0.4
               + r.normal(size=(n, WIDE_COLUMNS)) * 0.5)  # fmt: skip
    x[r.uniform(size=x.shape) < 0.3] = 0
    frame = pd.DataFrame(np.round(x * 20, 2), columns=WIDE_FEATURES[0])
    frame.insert(0, "cust", [f"W{i}" for i in range(n)])
    logit = -1.5 + 1.2 * latent[:, 0] - 0.8 * latent[:, 2]
    frame["responded"] = np.where(r.uniform(size=n) < 1 / (1 + np.exp(-logit)), "Yes", "No")
    frame.to_csv(folder / "wide.csv", index=False)


def dated(folder: Path, n: int = 5_000, seed: int = 14) -> None:
    """A table with dates the user wants as days since: ``signup_date`` day first
    (28/08/2020), ``last_purchase`` ISO; derived as docs/training.md#preparing-a-file shows;
    ``active_next_quarter`` TRUE/FALSE driven by recency and orders."""
    r = np.random.default_rng(seed)
    export = pd.Timestamp("2024-06-01")
    signup = pd.Timestamp("2020-01-01") + pd.to_timedelta(r.integers(0, 1600, n), unit="D")
    span = (export - signup).days.to_numpy()
    last = signup + pd.to_timedelta((r.uniform(size=n) * span).astype(int), unit="D")
    orders = r.poisson(5, n) + 1
    logit = -0.5 - 0.004 * (export - last).days.to_numpy() + 0.1 * orders
    pd.DataFrame(
        {"Customer Id": [f"D-{i:05d}" for i in range(n)],
         "signup_date": signup.strftime("%d/%m/%Y"), "last_purchase": last.strftime("%Y-%m-%d"),
         "orders": orders, "spend": np.round(orders * r.lognormal(3.5, 0.6, n), 2),
         "tier": r.choice(["Gold", "Silver", "Bronze"], n, p=[0.1, 0.3, 0.6]),
         "active_next_quarter": np.where(r.uniform(size=n) < 1 / (1 + np.exp(-logit)),
                                         "TRUE", "FALSE")}
    ).to_csv(folder / "dated.csv", index=False)  # fmt: skip
    # the dates as days before the export, as docs/training.md#preparing-a-file shows
    frame = pd.read_csv(folder / "dated.csv", dtype=str, keep_default_na=False)
    for column, form in (("signup_date", "%d/%m/%Y"), ("last_purchase", "%Y-%m-%d")):
        days = (export - pd.to_datetime(frame.pop(column), format=form)).dt.days
        frame[f"days_since_{column}"] = days
    frame.to_csv(folder / "dated_prepared.csv", index=False)


def apps(folder: Path, n: int = 10_000, seed: int = 21) -> None:
    """A mobile app's users (``user_id``), 30 days after install: sessions, minutes, level,
    platform, country, channel, push opt-in (``yes``/``no``); ``revenue_30d`` 0 for 87% of
    them (non-payers), heavy-tailed among payers, who play more, level up and are on iOS."""
    r = np.random.default_rng(seed)
    engaged = r.normal(size=n)
    platform = r.choice(["iOS", "Android"], n, p=[0.4, 0.6])
    sessions = r.poisson(np.exp(2.2 + 0.6 * engaged))
    level = np.maximum(1, np.round(3 + 4 * np.exp(0.4 * engaged) + r.normal(0, 2, n))).astype(int)
    logit = -2.9 + 0.9 * engaged + 0.7 * (platform == "iOS")
    payer = r.uniform(size=n) < 1 / (1 + np.exp(-logit))
    revenue = np.where(payer, np.round(r.lognormal(2.0 + 0.4 * engaged, 1.1), 2), 0.0)
    pd.DataFrame(
        {"user_id": [f"u{i:06d}" for i in r.choice(10**6, n, replace=False)],
         "platform": platform,
         "country": r.choice(["US", "DE", "BR", "IN", "JP", "other"], n,
                             p=[0.3, 0.1, 0.15, 0.2, 0.05, 0.2]),
         "channel": r.choice(["organic", "paid_social", "search", "referral"], n),
         "sessions_30d": sessions,
         "minutes_per_session": np.round(r.gamma(2, 4, n) * np.exp(0.2 * engaged), 1),
         "level": level, "push_enabled": r.choice(["yes", "no"], n, p=[0.55, 0.45]),
         "days_active_30d": np.minimum(30, r.poisson(np.exp(1.8 + 0.5 * engaged))),
         "revenue_30d": revenue}
    ).to_csv(folder / "app_users.csv", index=False)  # fmt: skip


def accounts(folder: Path, n: int = 150, seed: int = 22) -> None:
    """150 business accounts (``Account``): seats, monthly fee, tickets, NPS, industry,
    region; ``Renewed`` Y/N driven by NPS and open tickets."""
    r = np.random.default_rng(seed)
    seats = np.round(r.lognormal(3, 0.8, n)).astype(int) + 1
    nps = np.clip(np.round(r.normal(7, 2, n)), 0, 10).astype(int)
    tickets = r.poisson(3, n)
    logit = 0.5 + 0.5 * (nps - 7) - 0.35 * (tickets - 3)
    pd.DataFrame(
        {"Account": [f"ACC-{i:04d}" for i in range(1, n + 1)],
         "Industry": r.choice(["Retail", "Finance", "Health", "Tech"], n),
         "Region": r.choice(["EMEA", "AMER", "APAC"], n, p=[0.4, 0.4, 0.2]),
         "Seats": seats, "Monthly Fee": np.round(seats * r.choice([12, 25, 40], n), 2),
         "Open Tickets": tickets, "NPS": nps,
         "Months as Customer": r.integers(1, 60, n),
         "Renewed": np.where(r.uniform(size=n) < 1 / (1 + np.exp(-logit)), "Y", "N")}
    ).to_csv(folder / "accounts.csv", index=False)  # fmt: skip


def loyalty(folder: Path, cards: int = 3_000, seed: int = 23) -> None:
    """A grocer's loyalty-card log (one line per basket): ``card_no`` (``LC`` and digits),
    ``store``, ``visit_date`` (ISO), ``basket_total`` (an amount, refunds negative); weekly
    families, small top-up shoppers, occasional ones, and shoppers who drift away."""
    r = np.random.default_rng(seed)
    start, rows = pd.Timestamp("2023-01-02"), []
    kinds = r.choice(["family", "top_up", "occasional", "drifting"], cards,
                     p=[0.25, 0.25, 0.3, 0.2])  # fmt: skip
    gaps = {"family": 7, "top_up": 4, "occasional": 30, "drifting": 10}
    baskets = {"family": 4.3, "top_up": 2.7, "occasional": 3.5, "drifting": 3.6}
    for card, kind in enumerate(kinds):
        t = r.uniform(0, 120)
        end = r.uniform(200, 560) if kind == "drifting" else 640
        store = r.choice(["North", "Centre", "Harbour", "Mall"])
        while t < end:
            amount = round(float(r.lognormal(baskets[kind], 0.5)), 2)
            day = start + pd.Timedelta(days=float(t))
            rows.append((f"LC{100000 + card}", store, day.strftime("%Y-%m-%d"), amount))
            if r.uniform() < 0.02:
                rows.append((f"LC{100000 + card}", store, day.strftime("%Y-%m-%d"), -amount))
            t += r.exponential(gaps[kind])
    frame = pd.DataFrame(rows, columns=["card_no", "store", "visit_date", "basket_total"])
    frame.sort_values("visit_date", kind="stable").to_csv(folder / "loyalty.csv", index=False)


def saas(folder: Path, n: int = 6_000, seed: int = 24) -> None:
    """A subscription product's accounts (``account_id``): plan, billing, seats, usage counts
    (logins, reports, integrations, API calls), tickets, months active, country; ``churned``
    Yes/No driven by few logins, monthly billing, no integration and tickets: the rest is
    noise (the plan and seats set the price, no churn of their own)."""
    r = np.random.default_rng(seed)
    plan = r.choice(["Basic", "Pro", "Team"], n, p=[0.5, 0.35, 0.15])
    seats = np.where(plan == "Team", r.integers(5, 60, n), r.integers(1, 6, n))
    logins = r.poisson(np.exp(r.normal(2.5, 0.9, n)))
    integrations = r.poisson(0.8, n)
    billing = r.choice(["monthly", "annual"], n, p=[0.6, 0.4])
    tickets = r.poisson(1.2, n)
    logit = (-1.2 - 0.6 * np.log1p(logins) + 1.6 * (billing == "monthly")
             - 0.9 * (integrations > 0) + 0.3 * tickets)  # fmt: skip
    pd.DataFrame(
        {"account_id": np.arange(100_001, 100_001 + n), "plan": plan, "billing": billing,
         "seats": seats, "logins_30d": logins, "reports_30d": r.poisson(np.exp(r.normal(1, 1, n))),
         "integrations": integrations, "api_calls_30d": np.round(r.lognormal(5, 2, n)),
         "support_tickets_90d": tickets, "months_active": r.integers(1, 48, n),
         "country": r.choice(["US", "UK", "DE", "FR", "CA", "AU"], n),
         "churned": np.where(r.uniform(size=n) < 1 / (1 + np.exp(-logit)), "Yes", "No")}
    ).to_csv(folder / "accounts_usage.csv", index=False)  # fmt: skip


def retail(folder: Path, customers: int = 3_000, seed: int = 25) -> None:
    """A retail order log (``order_id``, ``customer``, ``ordered_at`` ISO with a time,
    ``total``) and a campaign's results in a table of their own (``customer``,
    ``responded`` true/false; 10% of the customers were not mailed: not in it), response
    driven by how recently and how often a customer bought, not by basket size."""
    r = np.random.default_rng(seed)
    start, rows, results, order = pd.Timestamp("2022-03-01"), [], [], 7_000_000
    for c in range(customers):
        cid = f"R{c:05d}"
        rate = r.lognormal(-3.2, 0.8)  # orders a day
        basket = r.lognormal(3.8, 0.6)
        first = r.uniform(0, 500)
        last_active = first + r.exponential(400)
        t, count, last = first, 0, first
        while t < min(last_active, 730):
            order += 1
            when = (start + pd.Timedelta(days=float(t))).isoformat(" ", "minutes")
            rows.append((order, cid, when, round(float(r.lognormal(np.log(basket), 0.4)), 2)))
            count, last = count + 1, t
            t += r.exponential(1 / rate)
        if r.uniform() < 0.9:
            logit = -1.0 - 0.006 * (730 - last) + 0.08 * min(count, 30)
            results.append((cid, "true" if r.uniform() < 1 / (1 + np.exp(-logit)) else "false"))
    pd.DataFrame(rows, columns=["order_id", "customer", "ordered_at", "total"]).sort_values(
        "ordered_at").to_csv(folder / "orders.csv", index=False)  # fmt: skip
    pd.DataFrame(results, columns=["customer", "responded"]).to_csv(
        folder / "campaign.csv", index=False)  # fmt: skip


def wholesale(folder: Path, accounts: int = 1_200, seed: int = 31) -> None:
    """A B2B wholesaler's order-line log: account codes, ISO dates, SKUs, quantities (returns
    negative on RMA orders), unit prices in the account's own currency (EUR, GBP, USD, SEK, CHF
    in one column); distributors weekly and big, shops monthly, seasonal buyers, lapsing ones."""
    r = np.random.default_rng(seed)
    start, rows, order = pd.Timestamp("2023-01-02"), [], 40_000
    country = r.choice(
        ["DE", "FR", "NL", "UK", "US", "SE", "CH"],
        accounts,
        p=[0.3, 0.15, 0.1, 0.15, 0.15, 0.1, 0.05],
    )
    ccy = (
        pd.Series(country)
        .map(
            {
                "DE": "EUR",
                "FR": "EUR",
                "NL": "EUR",
                "UK": "GBP",
                "US": "USD",
                "SE": "SEK",
                "CH": "CHF",
            }
        )
        .to_numpy()
    )
    rate = {"EUR": 1.0, "GBP": 0.86, "USD": 1.08, "SEK": 11.4, "CHF": 0.95}
    kind = r.choice(
        ["distributor", "shop", "seasonal", "lapsing"], accounts, p=[0.15, 0.5, 0.15, 0.2]
    )
    gap = {"distributor": 8, "shop": 30, "seasonal": 20, "lapsing": 25}
    size = {"distributor": 40, "shop": 6, "seasonal": 12, "lapsing": 8}
    for a in range(accounts):
        code, k = f"ACC-{10000 + a}", kind[a]
        t = r.uniform(0, 200)
        end = r.uniform(250, 500) if k == "lapsing" else 640
        while t < end:
            day = start + pd.Timedelta(days=float(t))
            if k == "seasonal" and day.month not in (3, 4, 5, 9, 10, 11):
                t += r.exponential(gap[k])
                continue
            order += 1
            lines = []
            for _ in range(r.integers(1, 8)):
                sku = f"SKU-{r.integers(1000, 1300)}"
                price = round(float(r.lognormal(2.5, 0.6)) * rate[ccy[a]], 2)
                qty = int(r.poisson(size[k]) + 1)
                lines.append(
                    (f"SO{order}", code, day.strftime("%Y-%m-%d"), sku, qty, price, ccy[a])
                )
            rows += lines
            if r.uniform() < 0.08:  # a return of one line, on an RMA order
                _, _, _, sku, qty, price, c = lines[0]
                back = (day + pd.Timedelta(days=int(r.integers(5, 30)))).strftime("%Y-%m-%d")
                rows.append(
                    (f"RMA{order}", code, back, sku, -int(r.integers(1, qty + 1)), price, c)
                )
            t += r.exponential(gap[k])
    frame = pd.DataFrame(
        rows, columns=["order_no", "account", "order_date", "sku", "qty", "unit_price", "currency"]
    )
    frame.sort_values("order_date", kind="stable").to_csv(
        folder / "wholesale_lines.csv", index=False
    )


def game(folder: Path, n: int = 15_000, seed: int = 32) -> None:
    """A mobile game's players: country (200 codes, long tail), platform, device tier, level,
    sessions, minutes, purchases and spend (0 for most), friends, guild (True/False), ads
    watched, days since install; churned_30d (True/False) driven by few recent sessions, no
    guild, no friends, a low level for the days played."""
    r = np.random.default_rng(seed)
    codes = [a + b for a in "ABCDEFGHIJKLMNOPRSTUVYZ" for b in "ABCDEFGHIKLMNORSTUVZ"][:200]
    weights = 1 / np.arange(1, 201) ** 1.1
    country = r.choice(codes, n, p=weights / weights.sum())
    engaged = r.normal(size=n)
    platform = r.choice(["ios", "android"], n, p=[0.35, 0.65])
    days = r.integers(1, 720, n)
    sessions_7d = r.poisson(np.exp(1.2 + 0.8 * engaged))
    sessions_30d = sessions_7d + r.poisson(np.exp(2.2 + 0.6 * engaged))
    level = np.clip(
        np.round(np.sqrt(days) * np.exp(0.35 * engaged) * 2 + r.normal(0, 3, n)), 1, 150
    ).astype(int)
    friends = r.poisson(np.exp(0.6 + 0.5 * engaged))
    guild = r.uniform(size=n) < 1 / (1 + np.exp(-(-0.5 + 0.8 * engaged)))
    payer = r.uniform(size=n) < 1 / (
        1 + np.exp(-(-2.6 + 0.8 * engaged + 0.6 * (platform == "ios")))
    )
    purchases = np.where(payer, r.poisson(2, n) + 1, 0)
    spend = np.where(payer, np.round(purchases * r.lognormal(1.8, 0.9, n), 2), 0.0)
    logit = (
        -0.4
        - 0.35 * sessions_7d**0.5 * 1.5
        - 0.9 * guild
        - 0.25 * np.minimum(friends, 6)
        + 0.5 * (days < 30)
    )
    churned = r.uniform(size=n) < 1 / (1 + np.exp(-logit))
    pd.DataFrame(
        {
            "player_id": [f"p_{v:08x}" for v in r.choice(2**32, n, replace=False)],
            "country": country,
            "platform": platform,
            "device_tier": r.choice(["low", "mid", "high"], n, p=[0.3, 0.5, 0.2]),
            "days_since_install": days,
            "level": level,
            "sessions_7d": sessions_7d,
            "sessions_30d": sessions_30d,
            "avg_session_min": np.round(r.gamma(2, 5, n) * np.exp(0.2 * engaged), 1),
            "purchases_30d": purchases,
            "spend_30d_usd": spend,
            "friends": friends,
            "in_guild": guild,
            "ads_watched_30d": r.poisson(np.exp(1.5 - 0.3 * payer), n),
            "churned_30d": churned,
        }
    ).to_csv(folder / "players.csv", index=False)


def donors(folder: Path, n: int = 12_000, seed: int = 33) -> None:
    """A charity's donor file (KDD-cup-98-like): numeric donor ids, age (a quarter missing),
    gender with rare levels (U, J, C), home owner H or blank, income band 1..7 (missing),
    an urbanicity code (U1..R3), promotions received, gift counts and amounts (skewed),
    months since first and last gift; responded (5%, 0/1) and gift_amount (0 for the others)."""
    r = np.random.default_rng(seed)
    loyal = r.normal(size=n)
    gifts = r.poisson(np.exp(1.4 + 0.6 * loyal)) + 1
    avg = np.round(r.lognormal(2.4 + 0.2 * loyal, 0.6, n), 2)
    last = np.round(avg * r.lognormal(0, 0.3, n), 0)
    since_last = np.clip(np.round(r.gamma(3, 5, n) * np.exp(-0.3 * loyal)), 1, 60).astype(int)
    since_first = since_last + r.integers(6, 180, n)
    logit = -3.3 + 0.35 * np.log1p(gifts) * 2 - 0.05 * (since_last - 14) + 0.3 * loyal
    responded = r.uniform(size=n) < 1 / (1 + np.exp(-logit))
    amount = np.where(responded, np.round(last * r.lognormal(0, 0.4, n)), 0)
    age = np.round(r.normal(61, 16, n)).clip(18, 98)
    age = np.where(r.uniform(size=n) < 0.25, np.nan, age)
    income = r.integers(1, 8, n).astype(float)
    income = np.where(r.uniform(size=n) < 0.22, np.nan, income)
    pd.DataFrame(
        {
            "donor_id": r.choice(np.arange(10_000, 200_000), n, replace=False),
            "age": age,
            "gender": r.choice(["F", "M", "U", "J", "C"], n, p=[0.55, 0.4, 0.035, 0.012, 0.003]),
            "homeowner": r.choice(["H", ""], n, p=[0.55, 0.45]),
            "income_band": income,
            "urbanicity": r.choice(
                ["U1", "U2", "S1", "S2", "C1", "C2", "T1", "T2", "R1", "R3", " "], n
            ),
            "promos_received": r.poisson(60, n),
            "num_gifts": gifts,
            "total_given": np.round(gifts * avg, 2),
            "last_gift": last,
            "max_gift": np.round(np.maximum(last, avg * r.lognormal(0.5, 0.4, n)), 0),
            "months_since_last_gift": since_last,
            "months_since_first_gift": since_first,
            "responded": responded.astype(int),
            "gift_amount": amount,
        }
    ).to_csv(folder / "donors.csv", index=False)


def kunden(folder: Path, n: int = 4000, seed: int = 41) -> None:
    """A retailer's customer table saved by Excel 'CSV (semicolon)' on a German Windows:
    cp1252 (Müller, Łódź not representable -> names of Western Europe), ';', decimal commas,
    thousands dots, CRLF, a 'Summe' row at the bottom, trailing ';;;;' rows."""
    r = np.random.default_rng(seed)
    kind = r.choice([0, 1, 2, 3], n, p=[0.4, 0.3, 0.2, 0.1])
    orders = r.poisson(np.array([2, 6, 15, 1])[kind]) + 1
    spend = np.round(orders * r.lognormal(np.array([3.5, 4.0, 4.3, 5.5])[kind], 0.5), 2)
    returns = np.round(r.beta(2, 12, n) * np.array([1, 1, 0.5, 3])[kind], 3)
    days = np.round(r.gamma(2, np.array([120, 40, 10, 200])[kind])).astype(int)
    newsletter = r.choice(["ja", "nein"], n, p=[0.45, 0.55])
    region = r.choice(["Nord", "Süd", "Ost", "West", "Österreich", "Schweiz"], n)
    logit = -1.0 + 0.15 * orders - 0.01 * days + 0.6 * (newsletter == "ja") - 3 * returns
    again = np.where(r.uniform(size=n) < 1 / (1 + np.exp(-logit)), "ja", "nein")
    first = r.choice(["Jürgen", "Müller", "José", "François", "Søren", "Anna", "Zoë", "Björn"], n)
    frame = pd.DataFrame(
        {
            "Kundennummer": [f"K{i:06d}" for i in range(n)],
            "Name": first,
            "Region": region,
            "Bestellungen": orders,
            "Umsatz (€)": spend,
            "Retourenquote": returns,
            "Tage seit letztem Kauf": days,
            "Newsletter": newsletter,
            "Wiederkauf": again,
        }
    )

    def de(v):
        s = f"{v:,.2f}"
        return s.replace(",", "X").replace(".", ",").replace("X", ".")

    frame["Umsatz (€)"] = frame["Umsatz (€)"].map(de)
    frame["Retourenquote"] = frame["Retourenquote"].map(lambda v: f"{v}".replace(".", ","))
    total = dict.fromkeys(frame.columns, "")
    total.update(
        {
            "Kundennummer": "Summe",
            "Bestellungen": str(int(orders.sum())),
            "Umsatz (€)": de(spend.sum()),
        }
    )
    frame = pd.concat(
        [
            frame.astype(str),
            pd.DataFrame([dict.fromkeys(frame.columns, "")] * 2),
            pd.DataFrame([total]),
            pd.DataFrame([dict.fromkeys(frame.columns, "")] * 3),
        ]
    )
    text = frame.to_csv(sep=";", index=False, lineterminator="\r\n")
    (folder / "kunden.csv").write_bytes(text.encode("cp1252"))


def bank_additional(folder: Path, n: int = 10_000, seed: int = 42) -> None:
    """UCI bank-additional-full: ';', quoted, dotted column names (emp.var.rate, euribor3m,
    nr.employed, cons.conf.idx), pdays = 999 for never contacted (96%), poutcome
    'nonexistent', 'unknown' categories, y yes/no driven by poutcome success and the
    macro climate (euribor low), no id column (written as the docs show)."""
    r = np.random.default_rng(seed)
    age = r.normal(40, 10, n).clip(17, 98).round().astype(int)
    job = r.choice(
        [
            "admin.",
            "blue-collar",
            "technician",
            "services",
            "management",
            "retired",
            "entrepreneur",
            "self-employed",
            "housemaid",
            "unemployed",
            "student",
            "unknown",
        ],
        n,
        p=np.array([0.25, 0.22, 0.16, 0.1, 0.07, 0.04, 0.035, 0.035, 0.026, 0.025, 0.021, 0.008])
        / 0.99,
    )
    contacted = r.uniform(size=n) < 0.04
    pdays = np.where(contacted, r.integers(0, 27, n), 999)
    previous = np.where(contacted, r.integers(1, 7, n), np.where(r.uniform(size=n) < 0.1, 1, 0))
    poutcome = np.where(
        contacted,
        r.choice(["success", "failure"], n, p=[0.65, 0.35]),
        np.where(previous > 0, "failure", "nonexistent"),
    )
    # macro climate: a few periods, each row in one
    periods = np.array(
        [
            [1.1, 93.99, -36.4, 4.857, 5191.0],
            [1.4, 93.918, -42.7, 4.962, 5228.1],
            [-1.8, 92.893, -46.2, 1.299, 5099.1],
            [-2.9, 92.201, -31.4, 0.869, 5076.2],
            [-3.4, 92.649, -30.1, 0.715, 5017.5],
            [-0.1, 93.2, -42.0, 4.191, 5195.8],
        ]
    )
    which = r.choice(6, n, p=[0.3, 0.2, 0.25, 0.1, 0.05, 0.1])
    macro = periods[which]
    contact = r.choice(["cellular", "telephone"], n, p=[0.63, 0.37])
    campaign = r.geometric(0.4, n).clip(1, 56)
    logit = (
        -3.2
        + 2.3 * (poutcome == "success")
        - 0.5 * (macro[:, 3] - 3)
        + 0.5 * (contact == "cellular")
        + 0.4 * ((age > 60) | (age < 25))
        - 0.1 * (campaign - 1)
    )
    y = np.where(r.uniform(size=n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    frame = pd.DataFrame(
        {
            "age": age,
            "job": job,
            "marital": r.choice(
                ["married", "single", "divorced", "unknown"], n, p=[0.6, 0.28, 0.11, 0.01]
            ),
            "education": r.choice(
                [
                    "university.degree",
                    "high.school",
                    "basic.9y",
                    "professional.course",
                    "basic.4y",
                    "basic.6y",
                    "unknown",
                    "illiterate",
                ],
                n,
                p=np.array([0.3, 0.23, 0.15, 0.13, 0.1, 0.05, 0.039, 0.001]) / 1.0,
            ),
            "default": r.choice(["no", "unknown", "yes"], n, p=[0.79, 0.2099, 0.0001]),
            "housing": r.choice(["yes", "no", "unknown"], n, p=[0.52, 0.45, 0.03]),
            "loan": r.choice(["no", "yes", "unknown"], n, p=[0.82, 0.15, 0.03]),
            "contact": contact,
            "month": r.choice(["may", "jul", "aug", "jun", "nov", "apr"], n),
            "day_of_week": r.choice(["mon", "tue", "wed", "thu", "fri"], n),
            "duration": np.round(r.lognormal(5.3, 0.8, n)).astype(int),
            "campaign": campaign,
            "pdays": pdays,
            "previous": previous,
            "poutcome": poutcome,
            "emp.var.rate": macro[:, 0],
            "cons.price.idx": macro[:, 1],
            "cons.conf.idx": macro[:, 2],
            "euribor3m": macro[:, 3],
            "nr.employed": macro[:, 4],
            "y": y,
        }
    )
    frame.insert(0, "customer_id", [f"B{i:05d}" for i in range(n)])
    frame.to_csv(folder / "bank-additional.csv", sep=";", index=False, quoting=csv.QUOTE_NONNUMERIC)


def billing(folder: Path, n: int = 5000, seed: int = 43) -> None:
    """A billing system's customer export (Stripe-like): ids 'cus_' + mixed-case letters,
    created (ISO datetime UTC), canceled_at blank for the active, plan, MRR as '$1,234.50',
    account balance in accounting style ('(12.00)' a credit, '$0.00'), discount '15%',
    seats, logins_30d; outcome churned_90d yes/no."""
    r = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
    ids = ["cus_" + "".join(r.choice(letters, 14)) for _ in range(n)]
    plan = r.choice(["Starter", "Team", "Business"], n, p=[0.5, 0.35, 0.15])
    seats = np.where(
        plan == "Starter",
        r.integers(1, 4, n),
        np.where(plan == "Team", r.integers(3, 25, n), r.integers(20, 400, n)),
    )
    price = np.select([plan == "Starter", plan == "Team"], [19.0, 12.0], 9.5)
    discount = r.choice([0, 10, 15, 20, 50], n, p=[0.6, 0.15, 0.1, 0.1, 0.05])
    mrr = np.round(seats * price * (1 - discount / 100), 2)
    engaged = r.normal(size=n)
    logins = r.poisson(np.exp(2.5 + 0.8 * engaged))
    balance = np.where(
        r.uniform(size=n) < 0.25,
        -np.round(r.gamma(2, 30, n), 2),
        np.where(r.uniform(size=n) < 0.1, np.round(r.gamma(2, 50, n), 2), 0.0),
    )
    asof = pd.Timestamp("2024-06-30", tz="UTC")
    tenure_days = r.integers(10, 1500, n)
    created = (
        asof
        - pd.to_timedelta(tenure_days, unit="D")
        - pd.to_timedelta(r.integers(0, 86400, n), unit="s")
    )
    logit = (
        -1.2
        - 0.9 * engaged
        - 0.0015 * tenure_days
        + 0.8 * (balance > 0)
        + 0.02 * discount
        - 0.5 * (plan == "Business")
    )
    churned = r.uniform(size=n) < 1 / (1 + np.exp(-logit))

    def money(v):
        s = f"${abs(v):,.2f}"
        return f"({s})" if v < 0 else s

    pd.DataFrame(
        {
            "id": ids,
            "created": created.strftime("%Y-%m-%d %H:%M:%S"),
            "plan": plan,
            "MRR": [money(v) for v in mrr],
            "balance": [money(v) for v in balance],
            "discount": [f"{d}%" for d in discount],
            "seats": seats,
            "logins_30d": logins,
            "churned_90d": np.where(churned, "yes", "no"),
        }
    ).to_csv(folder / "customers_export.csv", index=False)


def billing_prepared(folder: Path) -> None:
    """The export prepared by docs/training.md's pandas lines: days since ``created``, MRR and
    balance as plain numbers (a credit in parentheses negative), the discount's % left out."""
    billing(folder)
    frame = pd.read_csv(folder / "customers_export.csv", dtype=str, keep_default_na=False)
    as_of = pd.Timestamp("2024-06-30")
    frame["days_since_created"] = (as_of - pd.to_datetime(frame.pop("created"))).dt.days
    for name in ["MRR", "balance"]:
        money = frame[name].str.strip()
        negative = money.str.contains(r"^-|^\(.*\)$|-$", regex=True)
        money = money.str.replace(r"[A-Za-z]+\.", "", regex=True)
        money = money.str.replace(r"[^\d.]", "", regex=True)
        frame[name] = money.where(~negative, "-" + money)
    frame["discount"] = frame["discount"].str.rstrip("%")
    frame.to_csv(folder / "customers_prepared.csv", index=False)


def survey(folder: Path, n: int = 3000, seed: int = 44) -> None:
    """A customer survey's export: ``Respondent ID``, an age band, four five-point Likert
    items (4% ``Don't know``, 3% blank) and the NPS question, ``How likely are you to
    recommend us? (0-10)``, the outcome; satisfaction drives items and score alike."""
    r = np.random.default_rng(seed)
    happy = r.normal(size=n)
    items = {}
    for name, w in [("easy_to_use", 0.9), ("good_value", 0.7), ("support_helpful", 0.5),
                    ("would_buy_again", 1.0)]:  # fmt: skip
        level = np.clip(np.round(2 + 1.2 * (w * happy + r.normal(0, 0.6, n))), 0, 4).astype(int)
        answers = np.array(LIKERT, dtype=object)[level]
        answers[r.uniform(size=n) < 0.04] = "Don't know"
        answers[r.uniform(size=n) < 0.03] = ""
        items[name] = answers
    nps = np.clip(np.round(7 + 2.2 * happy + r.normal(0, 1, n)), 0, 10).astype(int)
    pd.DataFrame(
        {"Respondent ID": [f"R-{i:05d}" for i in range(n)],
         "Age group": r.choice(["18-24", "25-34", "35-44", "45-54", "55-64", "65+"], n),
         **items, "How likely are you to recommend us? (0-10)": nps}
    ).to_csv(folder / "survey.csv", index=False)  # fmt: skip


LIKERT = ["Strongly disagree", "Disagree", "Neither agree nor disagree", "Agree", "Strongly agree"]


def survey_prepared(folder: Path) -> None:
    """The answers written as numbers, as the note and docs/training.md say (Don't know
    left blank: missing, imputed)."""
    survey(folder)
    frame = pd.read_csv(folder / "survey.csv", dtype=str, keep_default_na=False)
    scale = {answer: i + 1 for i, answer in enumerate(LIKERT)}
    for name in ["easy_to_use", "good_value", "support_helpful", "would_buy_again"]:
        frame[name] = frame[name].map(scale)
    frame.to_csv(folder / "survey_prepared.csv", index=False)


def b2b(folder: Path, n: int = 6_000, seed: int = 51) -> None:
    """A B2B CRM's accounts saved as Parquet by pandas: ``Customer ID`` an integer column (the
    CRM's zero-padded numbers, zeros lost), ``Zip Code`` (3,000 codes, strings with leading
    zeros), ``Industry``, boolean columns (``Is Enterprise`` bool, ``Has Support Plan``
    nullable boolean with gaps), ``Annual Revenue ($)`` and ``Employees`` (skewed),
    ``Seat Utilization (%)`` 0-100, ``Signup Date`` a datetime; ``Churned`` a bool outcome
    driven by low utilisation, no support plan and small revenue."""
    r = np.random.default_rng(seed)
    size = r.normal(size=n)
    employees = np.round(np.exp(3 + 1.3 * size + r.normal(0, 0.4, n))).astype(int) + 1
    revenue = np.round(employees * r.lognormal(11, 0.5, n), -2)
    enterprise = employees > 500
    support = pd.array(r.uniform(size=n) < 0.35 + 0.3 * enterprise, dtype="boolean")
    support[r.uniform(size=n) < 0.08] = pd.NA
    utilisation = np.round(np.clip(r.beta(4, 2.5, n) * 100 + 8 * size, 0, 100), 1)
    zips = np.array([f"{z:05d}" for z in r.choice(99_999, 3_000, replace=False)])
    logit = (
        -0.6 - 0.045 * (utilisation - 60) - 0.9 * support.fillna(False).to_numpy(bool) - 0.35 * size
    )
    frame = pd.DataFrame(
        {
            "Customer ID": r.choice(np.arange(1, 10**6), n, replace=False),
            "Company": [f"Company {i} Inc" for i in r.choice(10**6, n, replace=False)],
            "Zip Code": zips[r.integers(0, len(zips), n)],
            "Industry": r.choice(
                ["Manufacturing", "Retail", "Software", "Healthcare", "Finance", "Logistics"], n
            ),
            "Is Enterprise": enterprise,
            "Has Support Plan": support,
            "Annual Revenue ($)": revenue,
            "Employees": employees,
            "Seat Utilization (%)": utilisation,
            "Signup Date": pd.Timestamp("2024-06-30")
            - pd.to_timedelta(r.integers(30, 2000, n), unit="D"),
            "Churned": r.uniform(size=n) < 1 / (1 + np.exp(-logit)),
        }
    )
    frame.to_parquet(folder / "accounts.parquet", index=False)


def app_events(folder: Path, users: int = 3_000, seed: int = 52) -> None:
    """A mobile app's event log (Firebase/Amplitude-like export): ``user_id`` numeric,
    ``event_time`` Unix epoch seconds, ``event_name`` (app_open, level_complete, ad_view,
    purchase), ``revenue_usd`` 0 on every event but purchases; whales, casual payers and
    non-payers (only zero lines), some churning."""
    r = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01").timestamp()
    rows = []
    for u in range(users):
        engaged = r.normal()
        rate = np.exp(-0.9 + 0.8 * engaged)  # events a day
        pay = 1 / (1 + np.exp(-(-1.5 + 1.2 * engaged)))
        t = r.uniform(0, 120) * 86400
        end = (r.uniform(30, 240) if r.uniform() < 0.4 else 240) * 86400
        while t < end:
            u_id = 500_000 + u
            if r.uniform() < 0.1 * pay:
                rows.append(
                    (
                        u_id,
                        int(start + t),
                        "purchase",
                        round(
                            float(
                                r.choice(
                                    [0.99, 4.99, 9.99, 19.99, 49.99], p=[0.4, 0.3, 0.15, 0.1, 0.05]
                                )
                            ),
                            2,
                        ),
                    )
                )
            else:
                rows.append(
                    (
                        u_id,
                        int(start + t),
                        r.choice(["app_open", "level_complete", "ad_view"], p=[0.5, 0.3, 0.2]),
                        0.0,
                    )
                )
            t += r.exponential(86400 / rate)
    frame = pd.DataFrame(rows, columns=["user_id", "event_time", "event_name", "revenue_usd"])
    frame.sort_values("event_time", kind="stable").to_csv(folder / "events.csv", index=False)


def credit_default(folder: Path, n: int = 12_000, seed: int = 53) -> None:
    """UCI 'default of credit card clients' (Taiwan), as Kaggle's UCI_Credit_Card.csv: ``ID``
    1..n, ``LIMIT_BAL`` written as floats (``20000.0``), SEX/EDUCATION/MARRIAGE codes (with
    undocumented 0, 5, 6), AGE, repayment status PAY_0, PAY_2..PAY_6 (-2..8; no PAY_1),
    BILL_AMT1..6 (some negative: credits), PAY_AMT1..6 (skewed, many zeros);
    ``default.payment.next.month`` 0/1 (22%), driven by the latest repayment delays."""
    r = np.random.default_rng(seed)
    risk = r.normal(size=n)
    limit = np.round(r.lognormal(11.8, 0.8, n).clip(10_000, 1_000_000), -4)
    pay = np.clip(np.round(r.normal(-0.3 + 0.9 * risk[:, None], 1.0, (n, 6))), -2, 8).astype(int)
    bill = np.round(limit[:, None] * r.beta(2, 3, (n, 6)) * (0.6 + 0.3 * (risk[:, None] > 0)))
    bill = np.where(r.uniform(size=(n, 6)) < 0.03, -r.integers(1, 5000, (n, 6)), bill)
    bill = np.where(r.uniform(size=(n, 6)) < 0.08, 0, bill)
    paid = np.where(
        r.uniform(size=(n, 6)) < 0.2 + 0.15 * (risk[:, None] > 1),
        0,
        np.round(r.lognormal(7.5, 1.3, (n, 6))),
    )
    logit = -1.6 + 0.8 * pay[:, 0] + 0.2 * pay[:, 1] - 0.3 * np.log(limit / 1e5)
    frame = pd.DataFrame(
        {
            "ID": np.arange(1, n + 1),
            "LIMIT_BAL": limit.astype(float),
            "SEX": r.choice([1, 2], n, p=[0.4, 0.6]),
            "EDUCATION": r.choice(
                [0, 1, 2, 3, 4, 5, 6], n, p=[0.001, 0.35, 0.47, 0.16, 0.004, 0.01, 0.005]
            ),
            "MARRIAGE": r.choice([0, 1, 2, 3], n, p=[0.002, 0.455, 0.532, 0.011]),
            "AGE": np.clip(np.round(r.normal(35, 9, n)), 21, 79).astype(int),
        }
    )
    for i, j in enumerate([0, 2, 3, 4, 5, 6]):
        frame[f"PAY_{j}"] = pay[:, i]
    for i in range(6):
        frame[f"BILL_AMT{i + 1}"] = bill[:, i].astype(float)
    for i in range(6):
        frame[f"PAY_AMT{i + 1}"] = paid[:, i].astype(float)
    frame["default.payment.next.month"] = (r.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame.to_csv(folder / "UCI_Credit_Card.csv", index=False)


def olist(folder: Path, customers: int = 6_000, seed: int = 54) -> None:
    """An Olist-like marketplace export joined by the user (orders x payments): one line per
    payment of an order (vouchers split an order over lines; ``payment_installments`` 1-10),
    ``order_id`` and ``customer_unique_id`` 32 hex digits, ``order_status`` (delivered,
    shipped, canceled, unavailable, invoiced), ``order_purchase_timestamp`` ISO with the
    store's offset (``2017-10-02T10:56:33-03:00``); 95% of customers buy once; a review
    table (``review_score`` 1-5 per customer) joined on the customer."""
    r = np.random.default_rng(seed)
    start = pd.Timestamp("2017-01-01")
    rows, reviews = [], []
    for _customer in range(customers):
        cid = "".join(r.choice(list("0123456789abcdef"), 32))
        orders = 1 + (r.poisson(1.5) if r.uniform() < 0.06 else 0)
        t = r.uniform(0, 560)
        late = r.uniform() < 0.15
        for _ in range(orders):
            oid = "".join(r.choice(list("0123456789abcdef"), 32))
            value = round(float(r.lognormal(4.7, 0.8)), 2)
            status = r.choice(
                ["delivered", "shipped", "canceled", "unavailable", "invoiced"],
                p=[0.95, 0.015, 0.012, 0.012, 0.011],
            )
            when = (start + pd.Timedelta(days=float(t))).strftime("%Y-%m-%dT%H:%M:%S-03:00")
            if r.uniform() < 0.05:  # a voucher pays part
                part = round(value * r.uniform(0.1, 0.5), 2)
                rows.append((oid, cid, status, when, 1, "voucher", 1, part))
                rows.append(
                    (
                        oid,
                        cid,
                        status,
                        when,
                        2,
                        "credit_card",
                        int(r.integers(1, 11)),
                        round(value - part, 2),
                    )
                )
            else:
                kind = r.choice(["credit_card", "boleto", "debit_card"], p=[0.75, 0.2, 0.05])
                rows.append(
                    (
                        oid,
                        cid,
                        status,
                        when,
                        1,
                        kind,
                        int(r.integers(1, 11)) if kind == "credit_card" else 1,
                        value,
                    )
                )
            t += r.exponential(60)
        score = int(np.clip(np.round(r.normal(2.2 if late else 4.4, 1.0)), 1, 5))
        reviews.append((cid, score))
    cols = [
        "order_id",
        "customer_unique_id",
        "order_status",
        "order_purchase_timestamp",
        "payment_sequential",
        "payment_type",
        "payment_installments",
        "payment_value",
    ]
    pd.DataFrame(rows, columns=cols).sort_values("order_purchase_timestamp").to_csv(
        folder / "olist_orders_payments.csv", index=False
    )
    pd.DataFrame(reviews, columns=["customer_unique_id", "review_score"]).to_csv(
        folder / "olist_reviews.csv", index=False
    )


def app_users(folder: Path) -> None:
    """The event log made a table of counts per user by docs/training.md's pandas lines (an
    event log of activity beside purchases): read as a log, the users who never paid would
    be in no segment."""
    app_events(folder)
    log = pd.read_csv(folder / "events.csv", dtype={"user_id": str})
    log["event_time"] = pd.to_datetime(log["event_time"], unit="s", utc=True)
    cut = pd.Timestamp("2024-07-01", tz="UTC")  # features before it, the outcome after it
    past, later = log[log["event_time"] < cut], log[log["event_time"] >= cut]
    table = past.pivot_table(
        index="user_id", columns="event_name", values="event_time", aggfunc="count", fill_value=0
    ).add_suffix("_events")
    table["revenue"] = past.groupby("user_id")["revenue_usd"].sum()
    table["days_since_last_event"] = (cut - past.groupby("user_id")["event_time"].max()).dt.days
    table["active_after"] = table.index.isin(later["user_id"]).astype(int)
    table.rename_axis("user_id").reset_index().to_csv(folder / "users.csv", index=False)


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

CHURNERS = """[data]
path = "BankChurners.csv"
id_column = "CLIENTNUM"
FEATURES
[outcomes]
columns = ["Attrition_Flag"]
positive = {"Attrition_Flag" = "Attrited Customer"}
[model]
name = "churners"
MODEL"""
CHURNERS_FEATURES = (
    ["Customer_Age", "Months_on_book", "Total_Relationship_Count", "Months_Inactive_12_mon",
     "Contacts_Count_12_mon", "Credit_Limit", "Total_Revolving_Bal", "Total_Trans_Amt",
     "Total_Trans_Ct", "Avg_Utilization_Ratio"],
    ["Gender", "Income_Category", "Card_Category"],
)  # fmt: skip
SHOPPERS = """outcomes = ["Revenue"]
[data]
path = "shoppers.csv"
FEATURES
[model]
name = "shoppers"
MODEL"""
SHOPPERS_FEATURES = (
    ["Administrative", "Administrative_Duration", "Informational", "Informational_Duration",
     "ProductRelated", "ProductRelated_Duration", "BounceRates", "ExitRates", "PageValues",
     "SpecialDay"],
    ["Month", "VisitorType", "Weekend"],
)  # fmt: skip
CLV = """outcomes = ["Customer Lifetime Value"]
[data]
path = "clv_prepared.csv"
id_column = "Customer"
FEATURES
[model]
name = "clv"
MODEL"""
CLV_FEATURES = (
    ["Income", "Monthly Premium Auto", "Months Since Last Claim", "Months Since Policy Inception",
     "Number of Open Complaints", "Number of Policies", "Total Claim Amount",
     "days_since_effective"],
    ["State", "Coverage", "Education", "EmploymentStatus", "Gender", "Location Code",
     "Marital Status", "Policy Type", "Renew Offer Type", "Sales Channel", "Vehicle Class",
     "Vehicle Size"],
)  # fmt: skip
ORDERS = """outcomes = ["back_within_7_days"]
[data]
path = "order_customers.csv"
FEATURES
[model]
name = "orders"
MODEL"""
ORDERS_FEATURES = (["orders", "mean_days_between", "basket_size"], [])


HOTEL = """outcomes = ["is_canceled"]
[data]
path = "hotel.csv"
FEATURES
[model]
name = "hotel"
MODEL"""
HOTEL_FEATURES = (
    ["lead_time", "adr", "stays_in_week_nights", "stays_in_weekend_nights", "children",
     "total_of_special_requests"],
    ["meal", "country", "market_segment", "deposit_type", "arrival_date_month"],
)  # fmt: skip
TELECOM = """outcomes = ["churn"]
[data]
path = "telecom.csv"
id_column = "subscriber_no"
FEATURES
[model]
name = "telecom"
MODEL"""
TELECOM_FEATURES = (
    ["tenure_months", "minutes", "data_mb", "sms", "dropped_calls", "care_calls"],
    ["region", "plan_code"],
)
WIDE = """outcomes = ["responded"]
[data]
path = "wide.csv"
id_column = "cust"
FEATURES
[model]
name = "wide"
MODEL"""
WIDE_FEATURES: tuple[list[str], list[str]] = (
    [f"cat_{i:02d}_spend" for i in range(WIDE_COLUMNS)],
    [],
)
DATED = """outcomes = ["active_next_quarter"]
[data]
path = "dated_prepared.csv"
id_column = "Customer Id"
FEATURES
[model]
name = "dated"
MODEL"""
DATED_FEATURES = (
    ["days_since_signup_date", "days_since_last_purchase", "orders", "spend"],
    ["tier"],
)

APPS = """outcomes = ["revenue_30d"]
[data]
path = "app_users.csv"
id_column = "user_id"
FEATURES
[model]
name = "apps"
MODEL"""
APPS_FEATURES = (
    ["sessions_30d", "minutes_per_session", "level", "days_active_30d"],
    ["platform", "country", "channel", "push_enabled"],
)
ACCOUNTS = """outcomes = ["Renewed"]
[data]
path = "accounts.csv"
id_column = "Account"
FEATURES
[model]
name = "accounts"
MODEL"""
ACCOUNTS_FEATURES = (
    ["Seats", "Monthly Fee", "Open Tickets", "NPS", "Months as Customer"],
    ["Industry", "Region"],
)
LOYALTY = """[data]
path = "loyalty.csv"
kind = "transactions"
[data.transactions]
customer = "card_no"
timestamp = "visit_date"
amount = "basket_total"
reference_date = 2024-07-01
[outcomes.future]
days = 90
FEATURES
[model]
name = "loyalty"
MODEL"""
SAAS = """outcomes = ["churned"]
[data]
path = "accounts_usage.csv"
id_column = "account_id"
FEATURES
[model]
name = "saas"
MODEL"""
SAAS_FEATURES = (
    ["seats", "logins_30d", "reports_30d", "integrations", "api_calls_30d",
     "support_tickets_90d", "months_active"],
    ["plan", "billing", "country"],
)  # fmt: skip
RETAIL = """[data]
path = "orders.csv"
kind = "transactions"
[data.transactions]
customer = "customer"
timestamp = "ordered_at"
amount = "total"
order = "order_id"
[outcomes]
path = "campaign.csv"
id = "customer"
FEATURES
[model]
name = "retail"
MODEL"""


COMPARED = "job kmeans + tree"  # the tree among the candidates, on the first outcome
WHOLESALE = """[data]
path = "wholesale_lines.csv"
kind = "transactions"
[data.transactions]
customer = "account"
timestamp = "order_date"
quantity = "qty"
unit_price = "unit_price"
order = "order_no"
reference_date = 2024-07-01
[outcomes.future]
days = 90
FEATURES
[model]
name = "wholesale"
MODEL"""
WHOLESALE_FEATURES = (
    ["recency_days", "frequency", "monetary", "avg_order_value", "tenure_days"],
    [],
)
GAME = """outcomes = ["churned_30d"]
[data]
path = "players.csv"
id_column = "player_id"
FEATURES
[model]
name = "game"
MODEL"""
GAME_FEATURES = (
    ["days_since_install", "level", "sessions_7d", "sessions_30d", "avg_session_min",
     "purchases_30d", "spend_30d_usd", "friends", "ads_watched_30d", "in_guild"],
    ["country", "platform", "device_tier"],
)  # fmt: skip
DONORS = """outcomes = ["responded", "gift_amount"]
[data]
path = "donors.csv"
id_column = "donor_id"
FEATURES
[model]
name = "donors"
MODEL"""
DONORS_FEATURES = (
    ["age", "income_band", "promos_received", "num_gifts", "total_given", "last_gift",
     "max_gift", "months_since_last_gift", "months_since_first_gift"],
    ["gender", "homeowner", "urbanicity"],
)  # fmt: skip


KUNDEN = """[data]
path = "kunden.csv"
encoding = "cp1252"
id_column = "Kundennummer"
delimiter = ";"
decimal = ","
thousands = "."
FEATURES
[outcomes]
columns = ["Wiederkauf"]
positive = {"Wiederkauf" = "ja"}
[model]
name = "kunden"
MODEL"""
KUNDEN_FEATURES = (
    ["Bestellungen", "Umsatz (€)", "Retourenquote", "Tage seit letztem Kauf"],
    ["Newsletter", "Region"],
)
BANK_ADDITIONAL = """outcomes = ["y"]
[data]
path = "bank-additional.csv"
delimiter = ";"
FEATURES
[[features]]
name = "pdays"
missing_values = ["999"]
[model]
name = "bank_additional"
MODEL"""
BANK_ADDITIONAL_FEATURES = (
    ["age", "campaign", "previous", "emp.var.rate", "euribor3m", "nr.employed", "cons.conf.idx"],
    ["job", "education", "contact", "poutcome", "default"],
)
BILLING = """outcomes = ["churned_90d"]
[data]
path = "customers_prepared.csv"
id_column = "id"
FEATURES
[model]
name = "billing"
MODEL"""
BILLING_FEATURES = (
    ["MRR", "balance", "discount", "seats", "logins_30d", "days_since_created"],
    ["plan"],
)


NPS = "How likely are you to recommend us? (0-10)"
SURVEY = """outcomes = ["How likely are you to recommend us? (0-10)"]
[data]
path = "survey_prepared.csv"
id_column = "Respondent ID"
FEATURES
[model]
name = "survey"
MODEL"""
SURVEY_FEATURES = (
    ["easy_to_use", "good_value", "support_helpful", "would_buy_again"],
    ["Age group"],
)


B2B = """outcomes = ["Churned"]
[data]
path = "accounts.parquet"
id_column = "Customer ID"
FEATURES
[model]
name = "b2b"
MODEL"""
B2B_FEATURES = (
    ["Annual Revenue ($)", "Employees", "Seat Utilization (%)", "Is Enterprise",
     "Has Support Plan"],
    ["Industry", "Zip Code"],
)  # fmt: skip
EVENTS = """outcomes = ["active_after"]
[data]
path = "users.csv"
id_column = "user_id"
FEATURES
[model]
name = "events"
MODEL"""
EVENTS_FEATURES = (
    ["app_open_events", "level_complete_events", "ad_view_events", "purchase_events", "revenue",
     "days_since_last_event"],
    [],
)  # fmt: skip
CREDIT_OUTCOME = "default.payment.next.month"
CREDIT = """outcomes = ["default.payment.next.month"]
[data]
path = "UCI_Credit_Card.csv"
id_column = "ID"
FEATURES
[model]
name = "credit"
MODEL"""
CREDIT_FEATURES = (
    ["LIMIT_BAL", "AGE", "PAY_0", "PAY_2", "BILL_AMT1", "BILL_AMT2", "PAY_AMT1", "PAY_AMT2"],
    ["SEX", "EDUCATION", "MARRIAGE"],
)
OLIST = """[data]
path = "olist_orders_payments.csv"
kind = "transactions"
[data.transactions]
customer = "customer_unique_id"
timestamp = "order_purchase_timestamp"
amount = "payment_value"
order = "order_id"
reference_date = 2018-05-01
exclude_column = "order_status"
[outcomes]
path = "olist_reviews.csv"
id = "customer_unique_id"
[outcomes.future]
days = 120
FEATURES
[model]
name = "olist"
MODEL"""
OLIST_FEATURES = (
    ["recency_days", "frequency", "monetary", "avg_order_value", "tenure_days"],
    [],
)


def default_and_tree(outcome: str, **more: str) -> dict[str, str]:
    """The variants every dataset runs: label -> its [model] lines."""
    return {"job balanced (default)": "", **more,
            COMPARED: 'algorithms = ["kmeans", "tree"]',
            "job tree": f'algorithm = "tree"\ntarget = "{outcome}"'}  # fmt: skip


DATASETS = {
    # name: (writer, config, features, outcome, variants: label -> [model] lines)
    "bank": (bank, BANK, BANK_FEATURES, "y", default_and_tree(
        "y", **{"job, min_share = 0.03 (as the note says)": "min_share = 0.03"})),
    "mall": (mall, MALL, MALL_FEATURES, "Spending Score (1-100)",
             default_and_tree("Spending Score (1-100)")),
    "insurance": (insurance, INSURANCE, INSURANCE_FEATURES, "charges",
                  default_and_tree("charges")),
    "log": (order_log, LOG, LOG_FEATURES, "repurchased", default_and_tree("repurchased")),
    "churners": (churners, CHURNERS, CHURNERS_FEATURES, "Attrition_Flag",
                 default_and_tree("Attrition_Flag")),
    "shoppers": (shoppers_with_ids, SHOPPERS, SHOPPERS_FEATURES, "Revenue",
                 default_and_tree("Revenue")),
    "clv": (clv_prepared, CLV, CLV_FEATURES, "Customer Lifetime Value",
            default_and_tree("Customer Lifetime Value")),
    "orders": (instacart_customers, ORDERS, ORDERS_FEATURES, "back_within_7_days",
               default_and_tree("back_within_7_days")),
    "hotel": (hotel, HOTEL, HOTEL_FEATURES, "is_canceled", default_and_tree("is_canceled")),
    "telecom": (telecom, TELECOM, TELECOM_FEATURES, "churn", default_and_tree("churn")),
    "wide": (wide, WIDE, WIDE_FEATURES, "responded", default_and_tree("responded")),
    "dated": (dated, DATED, DATED_FEATURES, "active_next_quarter",
              default_and_tree("active_next_quarter")),
    "apps": (apps, APPS, APPS_FEATURES, "revenue_30d", default_and_tree("revenue_30d")),
    "accounts": (accounts, ACCOUNTS, ACCOUNTS_FEATURES, "Renewed", default_and_tree("Renewed")),
    "loyalty": (loyalty, LOYALTY, LOG_FEATURES, "repurchased", default_and_tree("repurchased")),
    "saas": (saas, SAAS, SAAS_FEATURES, "churned", default_and_tree("churned")),
    "retail": (retail, RETAIL, LOG_FEATURES, "responded", default_and_tree("responded")),
    "wholesale": (wholesale, WHOLESALE, WHOLESALE_FEATURES, "repurchased",
                  default_and_tree("repurchased")),
    "game": (game, GAME, GAME_FEATURES, "churned_30d", default_and_tree("churned_30d")),
    "donors": (donors, DONORS, DONORS_FEATURES, "responded", default_and_tree("responded")),
    "kunden": (kunden, KUNDEN, KUNDEN_FEATURES, "Wiederkauf", default_and_tree("Wiederkauf")),
    "bank_additional": (bank_additional, BANK_ADDITIONAL, BANK_ADDITIONAL_FEATURES, "y",
                        default_and_tree("y")),
    "billing": (billing_prepared, BILLING, BILLING_FEATURES, "churned_90d",
                default_and_tree("churned_90d")),
    "survey": (survey_prepared, SURVEY, SURVEY_FEATURES, NPS, default_and_tree(NPS)),
    "b2b": (b2b, B2B, B2B_FEATURES, "Churned", default_and_tree("Churned")),
    "events": (app_users, EVENTS, EVENTS_FEATURES, "active_after",
               default_and_tree("active_after")),
    "credit": (credit_default, CREDIT, CREDIT_FEATURES, CREDIT_OUTCOME,
               default_and_tree(CREDIT_OUTCOME)),
    "olist": (olist, OLIST, OLIST_FEATURES, "repurchased", default_and_tree(
        "repurchased", **{"job, min_share = 0.03 (as the note says)": "min_share = 0.03",
                          "job, k_min = 2 (as the note says too)": "k_min = 2"})),
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


def run(name: str, folder: Path, only: list[str] | None = None) -> list[dict]:
    writer, template, features, outcome, variants = DATASETS[name]
    writer(folder)
    rows: list[dict] = []
    for label, model in variants.items():
        if only and label not in only:
            continue
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
        served = store.load(config.model.name, manifest.version).estimator
        ids = served.predict(loaded)
        result = row(label, pd.factorize(ids)[0], y, manifest.quality.stability_ari)
        result["cpu_s"] = round(cpu, 1)
        result["note"] = manifest.selection.note or ""
        chosen = manifest.selection.chosen_algorithm or manifest.algorithm
        result["method"] += f" [{chosen}, refit {independent(served, loaded, y)}]"
        rows.append(result)
    rows.append(reference(x, y))
    base, top = rows[0]["effect"], rows[-1]["effect"]
    print(f"\n## {name} (outcome: {outcome})\n", flush=True)
    print("| method | k | smallest | stability | effect | x baseline | of the headroom |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        stability = "—" if r["stability"] is None else f"{r['stability']:.2f}"
        times = r["effect"] / max(base, 1e-9)
        headroom = f"{(r['effect'] - base) / (top - base):.0%}" if top > base else "—"
        print(
            f"| {r['method']} | {r['k']} | {r['smallest']:.1%} | {stability} | "
            f"{r['measure']} {r['effect']:.3f} | {times:.2f}x | {headroom} |",
            flush=True,
        )
    return rows


def reference(x: np.ndarray, y: np.ndarray) -> dict:
    """What the features can tell of the outcome in 3..8 segments: a regression tree fitted
    to the outcome itself (leaves of at least 5% of the customers), the best of 3..8 leaves,
    measured on the rows it was fitted on (no hold-out, no stability). Not a bound (greedy;
    the job's tree can pass it), but where the plain script comes near it, no segmentation
    has much to gain over the plain script."""
    present = ~np.isnan(y)
    best: dict | None = None
    smallest = max(1, int(np.ceil(0.05 * present.sum())))
    for leaves in range(3, 9):
        tree = DecisionTreeRegressor(
            max_leaf_nodes=leaves, min_samples_leaf=smallest, random_state=0
        )
        tree.fit(x[present], y[present])
        labels = pd.factorize(tree.apply(x))[0]
        candidate = row("reference: a tree on the outcome, in-sample", labels, y, None)
        if best is None or candidate["effect"] > best["effect"]:
            best = candidate
    assert best is not None
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(DATASETS))
    parser.add_argument(
        "--variants", default="", help="labels of the job's variants to run (default: all)"
    )
    args = parser.parse_args()
    for name in args.only.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            run(name, Path(tmp), [v for v in args.variants.split(",") if v] or None)


if __name__ == "__main__":
    main()
