"""Features named as a spreadsheet names its columns (``Umsatz (€)``, ``Anzahl Besuche``,
``class``) are assigned over HTTP as they are in the file.

An audit trained on a European export whose headers held spaces, accents and a currency
sign: training, ``segments assign`` and a single ``POST /v1/assign`` took them, and every
``POST /v1/assign/batch`` was a 500 (the batch decoder built a struct whose fields must be
Python identifiers).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli.main import app
from app.registry.store import ModelStore
from app.training.config import parse_config
from app.training.job import train
from tests.assignment.conftest import served_client

PREFIX = "column-names:"
N = 600
SPEND, VISITS, KEYWORD, REGION = "Umsatz (€)", "Anzahl Besuche", "class", "Région"


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelStore, pd.DataFrame, Path]:
    """Three groups of customers under headers that are no identifiers; trained, promoted."""
    folder = tmp_path_factory.mktemp("column-names")
    rng = np.random.default_rng(5)
    group = rng.choice(3, N)
    frame = pd.DataFrame(
        {
            "Kunden-Nr": [f"K{i:05d}" for i in range(N)],
            SPEND: np.round(np.array([80.0, 900.0, 4000.0])[group] * rng.lognormal(0, 0.2, N), 2),
            VISITS: np.array([1, 6, 20])[group] + rng.integers(0, 3, N),
            KEYWORD: np.array([1, 2, 3])[group],
            REGION: np.array(["Süd", "Nord", "Österreich"])[group],
        }
    )
    data = folder / "kunden.csv"
    frame.to_csv(data, index=False)
    raw = {
        "data": {"path": str(data), "id_column": "Kunden-Nr"},
        "features": [
            {"name": SPEND, "transform": "log1p"},
            {"name": VISITS},
            {"name": KEYWORD},
            {"name": REGION, "type": "categorical"},
        ],
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0, "seed": 4},
    }
    store = ModelStore(folder / "store")
    train(parse_config(raw, base_dir=folder), store, promote=True)
    return store, frame, data


@pytest.fixture(scope="module")
def client(
    export: tuple[ModelStore, pd.DataFrame, Path], service_redis: str
) -> Iterator[TestClient]:
    with served_client(export[0].root, PREFIX, service_redis) as test_client:
        yield test_client


def _items(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows = frame.to_dict("records")
    return [
        {"customer_id": row.pop("Kunden-Nr"), "features": {k: _plain(v) for k, v in row.items()}}
        for row in rows
    ]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def test_a_batch_of_features_named_with_spaces_and_signs_is_assigned_as_the_file(
    client: TestClient, export: tuple[ModelStore, pd.DataFrame, Path], tmp_path: Path
) -> None:
    store, frame, data = export
    out = tmp_path / "tagged.csv"
    tagged = CliRunner().invoke(
        app, ["assign", "-i", str(data), "-o", str(out), "--store", str(store.root)]
    )
    assert tagged.exit_code == 0, tagged.output
    expected = pd.read_csv(out, dtype=str).set_index("Kunden-Nr")["segment_id"]
    assert expected.nunique() == 3

    items = _items(frame.iloc[::6])
    response = client.post("/v1/assign/batch", json={"items": items})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["segment_id"] for r in results] == [expected[i["customer_id"]] for i in items]

    single = client.post("/v1/assign", json=items[0])
    assert single.status_code == 200, single.text
    assert single.json()["segment_id"] == results[0]["segment_id"]


def test_a_batch_under_such_names_still_refuses_what_it_refused(client: TestClient) -> None:
    """The decoder reads each field under its feature's name: the struct's own field names
    (``f0`` ...) are unknown features, and a feature left out is one the item lacks."""
    features = {SPEND: 120.0, VISITS: 2, KEYWORD: 1, REGION: "Süd"}
    for sent, field in [
        ({**features, "f0": 1.0}, "items.0.features.f0"),
        ({k: v for k, v in features.items() if k != VISITS}, f"items.0.features.{VISITS}"),
    ]:
        response = client.post(
            "/v1/assign/batch", json={"items": [{"customer_id": "K1", "features": sent}]}
        )
        assert response.status_code == 200, response.text
        errors = response.json()["results"][0]["errors"]
        assert field in [e["field"] for e in errors], errors
