"""``segments customers rescore`` of a model trained on a transaction log: each customer's
features are derived as of now from the behaviour the store holds (as ``POST /v1/assign`` by
id derives them), so recency moves customers without a new log run."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from app.registry.store import ModelStore
from app.training.job import TrainResult
from tests.history.test_rescore import _run, _service
from tests.test_several_models import _command_env


def test_a_log_models_customers_are_rescored_from_their_behaviour_as_of_now(
    tx_trained: tuple[ModelStore, TrainResult],
    transactions_csv: Path,
    service_redis: str,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Recorded as of the log's end (October 2026), re-derived as of today by the rescore:
    recency grew for everyone, so customers move (lapsed), and the service asked by id right
    after agrees with every recorded segment (nothing changes)."""
    store, result = tx_trained
    name = result.manifest.model_name
    copied = ModelStore(tmp_path / "store")
    shutil.copytree(store.root, copied.root)
    _command_env(monkeypatch, copied, service_redis, prefix, tmp_path)
    monkeypatch.setenv("SEGMENTS_MODEL_NAME", name)
    _run("assign", "--input", str(transactions_csv), "--record")
    output = _run("customers", "rescore")
    found = re.search(r"rescored ([\d,]+) customers .*: ([\d,]+) changed", output)
    assert found, output
    customers, changed = (int(n.replace(",", "")) for n in found.groups())
    assert customers > 2_500, output
    assert changed > 0, output  # recency grew since the log's end
    ids = sorted(pd.read_csv(transactions_csv, dtype={"customer_id": str})["customer_id"].unique())
    with _service(copied, service_redis, prefix, tmp_path, name) as api:
        items = [{"customer_id": c} for c in ids[:500]]
        answer = api.post("/v1/assign/batch", json={"items": items}).json()
        ok = [r for r in answer["results"] if r["status"] == "ok"]
        assert len(ok) > 400
        assert not [r["customer_id"] for r in ok if r["changed"]]
