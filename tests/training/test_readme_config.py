"""The README's smallest config (section "Your own data") trains as written: a new user copies
it, points it at a customer table with those columns and runs ``segments train``. A README
whose config had drifted from the config schema (a renamed key, a table moved) fails here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from app.training.config import parse_config
from tests.conftest import ROOT

SEGMENTS = str(Path(sys.executable).with_name("segments"))  # the installed command


def _readme_config() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Your own data") :]
    block = re.search(r"```toml\n(.*?)```", section, re.S)
    assert block, "the README's 'Your own data' section has no toml block"
    return block.group(1)


def _customers(n: int, seed: int = 3) -> pd.DataFrame:
    """Three kinds of customer with the README config's columns: churn depends on them."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    spend = np.exp(rng.normal(np.array([3.0, 4.5, 5.5])[kind], 0.4))
    tenure = rng.normal(np.array([4.0, 20.0, 48.0])[kind], np.array([2.0, 6.0, 10.0])[kind])
    tenure = tenure.clip(0)
    contract = np.array(["Month-to-month", "One year", "Two year"])[kind]
    churn = rng.random(n) < np.array([0.45, 0.15, 0.03])[kind]
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "monthly_spend": spend.round(2),
            "tenure_months": tenure.round().astype(int),
            "contract": contract,
            "churned": churn.astype(int),
        }
    )


def test_readme_smallest_config_trains_from_the_cli(tmp_path: Path) -> None:
    config_text = _readme_config()
    config = tomllib.loads(config_text)
    data = tmp_path / config["data"]["path"]
    _customers(3_000).to_csv(data, index=False)
    (tmp_path / "churn.toml").write_text(config_text)
    store = tmp_path / "models"
    done = subprocess.run(
        [SEGMENTS, "train", "--config", "churn.toml", "--promote"],
        cwd=tmp_path,
        env={**os.environ, "SEGMENTS_MODEL_STORE": str(store)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    model = config["model"]["name"]
    promoted = store / model / "promoted.json"
    assert promoted.exists(), sorted(p.name for p in (store / model).iterdir())
    # the summary shows what the README says it shows: names and the outcome's effect size
    assert "churned" in done.stdout and "Cramér's V" in done.stdout, done.stdout[-2000:]


def _doc_toml_blocks() -> list[str]:
    text = (ROOT / "docs" / "training.md").read_text()
    return re.findall(r"```toml\n(.*?)```", text, re.S)


def test_every_config_block_of_the_training_docs_is_accepted_keys_commented_out_too() -> None:
    """Each toml block of docs/training.md, with its commented-out keys (``# delimiter =
    ";"``) switched on, passes the config schema: a key renamed or moved in the loader, and
    not in the docs, fails here. A fragment (a ``[[features]]`` or ``[outcomes]`` alone) gets
    the smallest ``[data]`` and feature it lacks."""
    blocks = _doc_toml_blocks()
    assert len(blocks) >= 5, len(blocks)
    for block in blocks:
        switched_on = re.sub(r"(?m)^# (?=[a-z_]+ = )", "", block)
        raw = tomllib.loads(switched_on)
        raw.setdefault("data", {"path": "customers.csv"})
        raw.setdefault("features", [{"name": "monthly_spend"}])
        config = parse_config(raw, base_dir=ROOT, source="docs/training.md")
        assert config.features, block


def test_every_config_key_the_loader_accepts_is_documented() -> None:
    """A key the loader takes and no doc names (in backticks or as ``key =``) is one a user
    cannot find: a rule's ``description`` and ``action``, ``minibatch_threshold`` and
    ``stability_bootstraps`` were in neither, ``seed`` only as ``[model] seed``."""
    from app.training import config as schema

    text = (ROOT / "README.md").read_text() + (ROOT / "docs" / "training.md").read_text()
    tables = [
        schema.DataConfig,
        schema.TransactionsConfig,
        schema.NumericFeature,
        schema.CategoricalFeature,
        schema.RuleConfig,
        schema.ModelConfig,
        schema.OutcomesConfig,
        schema.FutureOutcomes,
    ]
    undocumented = [
        f"{table.__name__}.{key}"
        for table in tables
        for key in table.model_fields
        if f"`{key}" not in text and f"{key} =" not in text
    ]
    assert undocumented == []
