"""Categorical columns of a CSV are the text written (``3.0``, ``999``, ``007``) on every
path: training, file tagging in chunks, the API; a version trained before that typed them as
pandas types them (but codes with leading zeros), and is read so still.

Found by a new-user audit: a ``zip`` column of ``02134``, ``01001`` ... was read as the
numbers 2134, 1001, so training learnt the categories ``2134`` and ``1001`` (shown so in the
report and the profiles), while a request sending the ZIP code ``"02134"`` got a category
never seen: 57 of 2,000 customers were assigned otherwise over the API than from the file.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli.main import app
from app.main import create_app
from app.registry.manifest import Manifest
from app.registry.store import ModelStore
from app.serving.model import build_serving_model
from app.settings import Settings
from app.training.config import parse_config
from app.training.data import typed_categories
from app.training.job import train


def test_categories_are_the_text_written_or_typed_as_pandas_for_a_version_trained_so() -> None:
    text = "a,b,c,z,m,e\n1,True,3.0,02134,x,\n2,False,,10001,1,\n,,4,,,\n"
    names = ["a", "b", "c", "z", "m", "e"]
    written = typed_categories(pd.read_csv(io.StringIO(text), dtype=str), names)
    assert written["c"].tolist()[0] == "3.0" and written["a"].tolist()[:2] == ["1", "2"]
    assert written["b"].tolist()[:2] == [True, False]  # (booleans stay booleans)
    as_text = pd.read_csv(io.StringIO(text), dtype=str)
    inferred = pd.read_csv(io.StringIO(text))
    typed = typed_categories(as_text, names, numbered=names)
    for name in ("a", "b", "c", "m", "e"):  # as pandas' own inference
        pd.testing.assert_series_equal(typed[name], inferred[name], check_dtype=False)
    assert typed["z"].tolist()[:2] == ["02134", "10001"]  # pandas: 2134.0, 10001.0
    assert inferred["z"].tolist()[:2] == [2134.0, 10001.0]
    # a cell of spaces is missing, as a blank one is (it was the category ' ')
    spaced = pd.read_csv(io.StringIO("i,p\n1,pro\n2, \n3,basic\n"), dtype=str)
    assert typed_categories(spaced, ["p"])["p"].isna().tolist() == [False, True, False]


@pytest.fixture
def zips(tmp_path: Path) -> tuple[ModelStore, pd.DataFrame, Path]:
    rng = np.random.default_rng(5)
    n = 2000
    codes = np.array(["02134", "01001", "10001", "07030", "94105"])
    z = rng.choice(codes, n)
    frame = pd.DataFrame(
        {
            "customer_id": [f"Z{i}" for i in range(n)],
            "spend": np.round(rng.lognormal(4, 1, n) * (1 + 2 * (z == "02134")), 2),
            "visits": rng.poisson(5, n),
            "zip": z,
        }
    )
    data = tmp_path / "zip.csv"
    frame.to_csv(data, index=False)
    raw = {
        "data": {"path": str(data)},
        "features": [
            {"name": "spend", "transform": "log1p"},
            {"name": "visits"},
            {"name": "zip", "type": "categorical"},
        ],
        "model": {"name": "zip", "k_min": 3, "k_max": 5, "stability_bootstraps": 0},
    }
    store = ModelStore(tmp_path / "store")
    train(parse_config(raw, base_dir=tmp_path), store, promote=True)
    return store, frame, data


def test_a_zip_code_is_learnt_tagged_and_served_as_written(
    zips: tuple[ModelStore, pd.DataFrame, Path], tmp_path: Path
) -> None:
    store, frame, data = zips
    serving = build_serving_model(store, "zip", None)
    schema = next(f for f in serving.manifest.features if f.name == "zip")
    assert sorted(schema.categories or []) == ["01001", "02134", "07030", "10001", "94105"]
    out = tmp_path / "tagged.csv"
    tagged = CliRunner().invoke(
        app,
        ["assign", "--input", str(data), "--output", str(out), "--store", str(store.root)],
    )
    assert tagged.exit_code == 0, tagged.output
    assert "never saw" not in tagged.output, tagged.output
    from_file = pd.read_csv(out, dtype=str)["segment_id"].tolist()
    rows = frame[["spend", "visits", "zip"]].to_dict("records")  # the codes as a client sends
    assert not any(serving.unknown_categories(r) for r in rows)
    served = [a.segment_id for a in serving.assign_many(rows)]
    differ = sum(a != b for a, b in zip(served, from_file, strict=True))
    assert differ == 0, f"{differ} of {len(rows)} customers differ between the file and the API"


def test_min_frequency_written_as_a_count_is_refused_saying_it_is_a_share(tmp_path: Path) -> None:
    """An audit wrote ``min_frequency = 20`` (scikit-learn takes a count too) and was told
    only "Input should be less than 1"."""
    from app.errors import ConfigError

    raw = {
        "data": {"path": "x.csv"},
        "features": [{"name": "zip", "type": "categorical", "min_frequency": 20}],
    }
    with pytest.raises(ConfigError, match=r"min_frequency is a share of the customers \(0.01"):
        parse_config(raw, base_dir=tmp_path)
    raw["features"][0]["min_frequency"] = 0.002  # type: ignore[index]
    assert parse_config(raw, base_dir=tmp_path).features[0].min_frequency == 0.002  # type: ignore[union-attr]


def test_a_categorical_feature_of_very_many_values_is_noted(tmp_path: Path) -> None:
    """An audit declared a date column (663 values among 2,240 customers) and an amount
    categorical: both trained without a word."""
    rng = np.random.default_rng(3)
    n = 1200
    frame = pd.DataFrame(
        {
            "customer_id": [f"d{i}" for i in range(n)],
            "spend": rng.normal(50, 10, n),
            "enrolled": [f"2024-{m:02d}-{d:02d}" for m, d in rng.integers(1, 13, (n, 2)) % 28 + 1],
            "plan": rng.choice(["basic", "pro"], n),
        }
    )
    data = tmp_path / "d.csv"
    frame.to_csv(data, index=False)
    raw = {
        "data": {"path": str(data)},
        "features": [
            {"name": "spend"},
            {"name": "enrolled", "type": "categorical"},
            {"name": "plan", "type": "categorical"},
        ],
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0},
    }
    notes = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    said = [n for n in notes.data.notes if "categories among" in n]
    assert len(said) == 1 and said[0].startswith("enrolled: "), notes.data.notes
    assert "usually a date, an id, an amount or a fine code" in said[0]


def test_a_running_number_declared_as_a_feature_is_noted(tmp_path: Path) -> None:
    """A new user's bank table had its row number, ``id`` (1..n), among the features: it
    was segmented on without a word. Whole numbers all distinct in a run as long as the
    customers are noted; a measure that happens to be whole (``visits``, ``tenure_days``
    spread over years) is not."""
    rng = np.random.default_rng(4)
    n = 600
    frame = pd.DataFrame(
        {
            "customer_id": [f"b{i}" for i in range(n)],
            "id": rng.permutation(n) + 1,
            "visits": rng.poisson(4, n),
            "tenure_days": rng.integers(0, 20_000, n),
            "spend": rng.normal(50, 10, n),
        }
    )
    frame.to_csv(data := tmp_path / "d.csv", index=False)
    features = [{"name": c} for c in ("id", "visits", "tenure_days", "spend")]
    raw = {
        "data": {"path": str(data)},
        "features": features,
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0},
    }
    notes = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    said = [n for n in notes.data.notes if "a different whole number" in n]
    assert said == [
        "id: a different whole number for every customer (1 to 600), as a running number or "
        "an id holds: segments would split customers by it; leave it out unless it measures "
        "something ([data] id_column names the ids)"
    ], notes.data.notes


def _learnt(tmp_path: Path, raw: dict[str, Any], feature: str) -> tuple[ModelStore, Any, list[str]]:
    """Train ``raw`` into a store of its own: the store, the serving model and the learnt
    categories of ``feature``."""
    store = ModelStore(tmp_path / "store")
    train(parse_config(raw, base_dir=tmp_path), store, promote=True)
    serving = build_serving_model(store, raw["model"]["name"], None)
    schema = next(f for f in serving.manifest.features if f.name == feature)
    return store, serving, sorted(schema.categories or [])


def test_a_numeric_looking_code_is_one_category_in_training_chunks_and_the_api(
    tmp_path: Path,
) -> None:
    """``3.0`` was the category ``3`` where every cell of a column (or of a chunk of a file
    being tagged) was a number, and ``3.0`` where one was not: a file tagged in chunks read
    it both ways, and a request's ``"3.0"`` was a category never seen."""
    rng = np.random.default_rng(2)
    n = 600
    group = rng.integers(0, 3, n)
    frame = pd.DataFrame(
        {
            "customer_id": [f"k{i}" for i in range(n)],
            "spend": group * 5 + rng.normal(size=n),
            "code": np.array(["999", "3.0", "12"])[group],
        }
    )
    frame.loc[::50, "code"] = ""
    data = tmp_path / "codes.csv"
    frame.to_csv(data, index=False)
    raw = {
        "data": {"path": str(data)},
        "features": [{"name": "spend"}, {"name": "code", "type": "categorical"}],
        "model": {"name": "codes", "k_min": 3, "k_max": 3, "stability_bootstraps": 0},
    }
    store, serving, learnt = _learnt(tmp_path, raw, "code")
    assert learnt == ["12", "3.0", "999", "__missing__"]
    assert serving.manifest.numbered_categories == frozenset()
    # a manifest written before: its categorical features were read as numbers
    before = serving.manifest.model_dump(mode="json")
    for feature in before["features"]:
        feature.pop("as_written")
    assert Manifest.model_validate(before).numbered_categories == {"code"}
    # tagged in chunks of 2: ("3.0", "x") is read as text, ("3.0", "12") was read as numbers
    probe = pd.DataFrame(
        {"customer_id": ["a", "b", "c", "d"], "spend": 5.0, "code": ["3.0", "x", "3.0", "12"]}
    )
    source, out = tmp_path / "probe.csv", tmp_path / "tagged.csv"
    probe.to_csv(source, index=False)
    where = ["--store", str(store.root), "--chunk-size", "2"]
    tagged = CliRunner().invoke(
        app, ["assign", "--input", str(source), "--output", str(out), *where]
    )
    assert tagged.exit_code == 0, tagged.output
    assert "'x' (1 row)" in tagged.output and "'3" not in tagged.output, tagged.output
    rows = probe[["spend", "code"]].to_dict("records")
    assert [serving.unknown_categories(r) for r in rows] == [{}, {"code": "x"}, {}, {}]
    from_file = pd.read_csv(out, dtype=str)["segment_id"].tolist()
    assert [a.segment_id for a in serving.assign_many(rows)] == from_file


def test_na_in_a_categorical_column_is_a_category_on_every_path(tmp_path: Path) -> None:
    """pandas reads ``NA`` as missing: a region column's North America was lost to "missing"
    in training, file tagging and the API alike. In a categorical column only blank cells
    and ``[data] missing_values`` are missing; in a numeric one ``NA`` still is."""
    rng = np.random.default_rng(4)
    n = 600
    group = rng.integers(0, 3, n)
    frame = pd.DataFrame(
        {
            "customer_id": [f"r{i}" for i in range(n)],
            "spend": (group * 5 + rng.normal(size=n)).round(3).astype(str),
            "region": np.array(["NA", "EU", "APAC"])[group],
        }
    )
    frame.loc[::40, "region"] = ""
    frame.loc[1::60, "spend"] = "NA"
    data = tmp_path / "regions.csv"
    frame.to_csv(data, index=False)
    frame.to_parquet(tmp_path / "regions.parquet")
    raw: dict[str, Any] = {
        "data": {"path": str(data)},
        "features": [
            {"name": "spend", "impute": "median"},
            {"name": "region", "type": "categorical"},
        ],
        "model": {"name": "regions", "k_min": 3, "k_max": 3, "stability_bootstraps": 0},
    }
    store, _, learnt = _learnt(tmp_path, raw, "region")
    assert learnt == ["APAC", "EU", "NA", "__missing__"]
    # the API reads the cells as the file writes them: "NA" a region, and a missing spend
    settings = Settings(
        model_store=store.root, model_name="regions", dev_mode=True, record_assignments=False
    )
    items = [
        {"customer_id": c, "features": {"spend": s, "region": r}}
        for c, s, r in zip(frame["customer_id"], frame["spend"], frame["region"], strict=True)
    ]
    with TestClient(create_app(settings)) as client:
        answer = client.post("/v1/assign/batch", json={"items": items})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert not any(r.get("unknown_categories") for r in results)
    served = [r["segment_id"] for r in results]
    for source in ("regions.csv", "regions.parquet"):
        out = tmp_path / f"{source}.out.csv"
        where = ["--input", str(tmp_path / source), "--output", str(out)]
        tagged = CliRunner().invoke(app, ["assign", *where, "--store", str(store.root)])
        assert tagged.exit_code == 0, tagged.output
        assert "never saw" not in tagged.output, tagged.output
        assert pd.read_csv(out, dtype=str)["segment_id"].tolist() == served, source
    # listed, NA is missing in a categorical column too
    raw["data"]["missing_values"] = ["NA"]
    raw["model"]["name"] = "listed"
    train(parse_config(raw, base_dir=tmp_path), store, promote=True)
    listed = build_serving_model(store, "listed", None).manifest
    region = next(f for f in listed.features if f.name == "region")
    assert "NA" not in (region.categories or [])
