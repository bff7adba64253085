"""The fast training matrix: the same fitted pipeline (the saved one) and the same matrix as
``build_preprocessor(config).fit_transform``, and equal to that pipeline's ``transform``."""

from __future__ import annotations

import io
import logging
import tomllib
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.preprocessing import OneHotEncoder

from app.training import matrix as matrix_module
from app.training.config import TrainConfig, parse_config
from app.training.matrix import GATHER_ROWS, fit_matrix, stand_in_counts, transform_matrix
from app.training.preprocess import build_preprocessor, canonical_column, category_codes
from app.training.profile import category_positions
from tests.conftest import EXAMPLES

ROWS = 5_000


def _config() -> TrainConfig:
    raw: dict[str, Any] = {
        "data": {"path": "unused.csv", "id_column": "customer_id"},
        "features": [
            {"name": "spend", "transform": "log1p"},
            {"name": "visits", "winsorize": [0.05, 0.95], "impute": "mean"},
            {"name": "share", "clip": [0.0, 1.0], "impute": "zero"},
            {"name": "plan", "type": "categorical"},
            {"name": "country", "type": "categorical", "min_frequency": 0.05},
            {"name": "store", "type": "categorical"},
            {"name": "tier", "type": "categorical"},
            {"name": "flag", "type": "categorical"},
        ],
    }
    return parse_config(raw, base_dir=Path("."))


def _frame(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    spend = rng.lognormal(3, 1, ROWS)
    spend[rng.random(ROWS) < 0.05] = np.nan
    visits = rng.poisson(4, ROWS).astype(np.float64)
    visits[:7] = np.nan
    share = rng.normal(0.5, 0.4, ROWS)
    plan = rng.choice(["basic", "pro", "enterprise", "trial"], ROWS, p=[0.5, 0.3, 0.195, 0.005])
    plan_col = pd.Series(plan, dtype="string[pyarrow]")
    plan_col[rng.random(ROWS) < 0.03] = None  # missing: the __missing__ category
    shares = [0.3, 0.3, 0.3, 0.06, 0.03, 0.01]  # ES and NL are rare at min_frequency 0.05
    country = rng.choice(["DE", "FR", "US", "IT", "ES", "NL"], ROWS, p=shares)
    # mixed objects: 3, 3.0 and "3" are one category, True is "true", None is missing
    store = rng.choice(np.array([3, 3.0, "3", True, None, "web", 7], dtype=object), ROWS)
    tier = rng.choice([1.0, 2.0, 2.5, np.nan], ROWS)  # a float column with gaps
    flag = rng.choice([True, False], ROWS)
    return pd.DataFrame(
        {
            "spend": spend,
            "visits": visits,
            "share": share,
            "plan": plan_col,
            "country": pd.Series(country, dtype=object),
            "store": pd.Series(store, dtype=object),
            "tier": tier,
            "flag": flag,
        }
    )


def _pickled(estimator: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(("seed", "gather_rows"), [(3, GATHER_ROWS), (11, GATHER_ROWS), (3, 777)])
def test_the_fast_matrix_is_the_pipelines_transform(
    seed: int, gather_rows: int, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also with the rows gathered into the matrix a few at a time (777: seven slices and a
    short one), as a million rows are."""
    monkeypatch.setattr(matrix_module, "GATHER_ROWS", gather_rows)
    config, frame = _config(), _frame(seed)
    slow = build_preprocessor(config)
    expected = slow.fit_transform(frame)
    with caplog.at_level(logging.WARNING, logger="app.training.matrix"):
        fast, matrix = fit_matrix(config, frame)
    assert not caplog.records  # the fast build passed its own check: no fallback

    assert _pickled(fast) == _pickled(slow)  # what is saved and served is unchanged
    assert matrix.flags.c_contiguous and matrix.dtype == np.float64
    np.testing.assert_array_equal(matrix, expected)
    np.testing.assert_array_equal(matrix, fast.transform(frame))
    encoder = fast.named_transformers_["cat_country"].named_steps["onehot"]
    assert encoder.infrequent_categories_[0] is not None  # the rare-category path is covered
    plan = fast.named_transformers_["cat_plan"].named_steps["onehot"]
    assert "__missing__" in plan.categories_[0]


@pytest.mark.parametrize("gather_rows", [GATHER_ROWS, 777])
def test_a_fitted_preprocessors_fast_transform_is_its_transform(
    gather_rows: int, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stored version's preprocessor on new rows (a retrain's matching of ids, batch
    predictions): categories it never saw, rare ones and missing ones included."""
    monkeypatch.setattr(matrix_module, "GATHER_ROWS", gather_rows)
    fitted = build_preprocessor(_config()).fit(_frame(3))
    frame = _frame(11).sample(frac=1.0, random_state=5)  # another order, another index
    rng = np.random.default_rng(0)
    unseen = rng.random(len(frame)) < 0.02
    frame["country"] = frame["country"].where(~unseen, "JP")
    frame["plan"] = frame["plan"].astype(object).where(~unseen, "gold")
    frame["store"] = frame["store"].where(~unseen, 9.5)
    with caplog.at_level(logging.WARNING, logger="app.training.matrix"):
        matrix = transform_matrix(fitted, frame)
    assert not caplog.records  # no fallback: the fast path is what was compared
    assert matrix.flags.c_contiguous and matrix.dtype == np.float64
    np.testing.assert_array_equal(matrix, fitted.transform(frame))


def test_a_preprocessor_of_another_shape_is_transformed_by_itself() -> None:
    """A passthrough remainder is not a shape the fast path knows: ``transform`` answers."""
    frame = _frame(3)
    preprocessor = build_preprocessor(_config())
    preprocessor.set_params(remainder="passthrough")
    frame["extra"] = np.arange(len(frame), dtype=np.float64)
    preprocessor.fit(frame)
    np.testing.assert_array_equal(
        transform_matrix(preprocessor, frame), preprocessor.transform(frame).astype(np.float64)
    )


@pytest.mark.parametrize("rules", [[], [{"name": "Key", "when": "plan == 'enterprise'"}]])
def test_a_models_slots_are_its_pipelines_predictions(
    rules: list[dict[str, str]],
    customers: tuple[pd.DataFrame, Any],
    customers_csv: Path,
    train_into: Any,
) -> None:
    """``predict_slots`` (the fast preprocessing, then the clusterer) equals the saved
    pipeline's own ``predict`` on every row the rules leave; the others keep their rule."""
    raw = tomllib.loads((EXAMPLES / "customers.toml").read_text())
    raw["data"]["path"] = str(customers_csv)
    raw["rules"] = rules
    raw["model"] |= {"k_min": 4, "k_max": 4}
    result = train_into(parse_config(raw, base_dir=EXAMPLES))
    model = train_into.store.load(result.manifest.model_name, result.manifest.version).estimator
    frame = customers[0]
    todo = ~(frame["plan"] == "enterprise").to_numpy() if rules else np.ones(len(frame), bool)
    assert 0 < todo.sum() <= len(frame)
    expected = np.zeros(len(frame), dtype=np.int64)  # the one rule's slot
    expected[todo] = model.n_rules + model.pipeline.predict(frame.loc[todo, model.feature_names])
    np.testing.assert_array_equal(model.predict_slots(frame), expected)


def test_category_codes_are_the_canonical_column() -> None:
    frame = _frame()
    for name in ("plan", "country", "store", "tier", "flag"):
        codes, categories = category_codes(frame[name])
        expected = canonical_column(frame[name]).to_numpy(dtype=str)
        assert (categories.astype(str)[codes] == expected).all(), name
        assert len(set(categories.tolist())) == len(categories), name


def test_profile_category_positions_are_the_value_counts_of_the_canonical_column() -> None:
    frame = _frame()
    rng = np.random.default_rng(1)
    # ties in the counts: the ranking must break them as value_counts does
    tied = pd.Series(np.repeat(np.array(["b", "a", None, "c", "d"], dtype=object), 40))
    columns = {name: frame[name] for name in ("plan", "country", "store", "tier", "flag")}
    columns["tied, shuffled"] = tied.sample(frac=1.0, random_state=4).reset_index(drop=True)
    columns["tied, arrow"] = tied.astype("string[pyarrow]").iloc[rng.permutation(len(tied))]
    for name, column in columns.items():
        canonical = canonical_column(column)
        expected_shares = canonical.value_counts(normalize=True)
        positions, shares = category_positions(column)
        assert shares.index.tolist() == expected_shares.index.tolist(), name
        assert shares.to_numpy().tolist() == expected_shares.to_numpy().tolist(), name
        expected = expected_shares.index.get_indexer(pd.Index(canonical))
        assert (positions == expected).all(), name


@pytest.mark.parametrize("min_frequency", [None, 0.001, 0.01, 0.02, 0.05, 0.1, 0.3, 0.45])
def test_an_encoder_fitted_on_its_stand_in_column_is_the_full_fits(
    min_frequency: float | None,
) -> None:
    """Each categorical encoder is fitted on a small stand-in column (no sort of every row's
    text): its pickle is byte-equal to the fit on every row, for counts around the infrequent
    threshold, all frequent, all rare, one category."""
    rng = np.random.default_rng(5)
    names = np.array([f"c{i:02d}" for i in range(40)] + ["a longer category name"])
    shapes = [rng.integers(1, 3_000, size) for size in (1, 2, 5, 12, 41) for _ in range(3)]
    shapes += [np.full(10, 1_000), np.full(30, 7), np.array([50_000, 1, 1, 2])]
    rows = 100_000
    threshold = rows * (min_frequency or 0)
    edge = [max(int(np.ceil(threshold)) - 1, 1), max(int(np.ceil(threshold)), 1)]
    shapes.append(np.array([*edge, rows - sum(edge)]))  # counts either side of the threshold
    used = 0
    for counts in shapes:
        text = names[rng.choice(len(names), len(counts), replace=False)].astype(str)
        full = OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            min_frequency=min_frequency,
            sparse_output=False,
            dtype=np.float64,
        )
        quick = clone(full)
        full.fit(np.repeat(text, counts).reshape(-1, 1))
        stand_in = stand_in_counts(counts, min_frequency)
        if stand_in is None:
            continue
        used += 1
        assert stand_in.sum() < max(counts.sum(), 2_000)
        quick.fit(np.repeat(text, stand_in).reshape(-1, 1))
        assert _pickled(quick) == _pickled(full)
    assert used >= len(shapes) - 1  # the stand-in is the rule, the full fit the exception
