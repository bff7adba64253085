"""The compiled assigner answers exactly as the scikit-learn pipeline it was compiled from.

Every model here is trained by the real job on 10,000 customers, for each algorithm, with
and without rule segments, on a config that exercises every compiled step: log1p, absolute
clipping, learned winsorising, median/mean/zero imputation, one-hot blocks with an
infrequent group (rare countries and plans are planted), one without (``channel``), and
categoricals whose values are numbers (``store``) and booleans (``newsletter``).
``SegmentationModel.predict`` is the reference; requests are dicts as a JSON client sends
them (``None`` where a value is unknown).
"""

from __future__ import annotations

import copy
import logging
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.cluster import AgglomerativeClustering, Birch
from sklearn.compose import ColumnTransformer
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder
from threadpoolctl import threadpool_limits

from app.columns import ColumnRows
from app.datasets import make_customers
from app.main import create_app
from app.registry.store import ModelStore, new_version_id
from app.serving import build_serving_model
from app.serving.compiled import (
    SCORE_ROWS,
    TOP_DRIVERS,
    CompiledAssigner,
    UnsupportedPipeline,
)
from app.settings import Settings
from app.training.config import TrainConfig
from app.training.data import load_training_data
from app.training.job import train
from app.training.model import ALGORITHMS, SegmentationModel
from app.training.preprocess import canonical_column
from app.training.rules import canonical_category
from tests.conftest import example_config

ROWS = 10_000
RULES = [
    {"name": "Brand new", "when": "tenure_days < 30"},
    {"name": "Key accounts", "when": "plan == 'enterprise' and monetary > 2000"},
    {"name": "Unhappy Europeans", "when": "country in ['DE', 'FR'] and support_tickets >= 5"},
]
# Planted below the encoders' min_frequency, so they are grouped as infrequent.
RARE = {"country": ("JP", "BR"), "plan": ("legacy",)}
COMBINATIONS = [(algorithm, rules) for algorithm in ALGORITHMS for rules in (True, False)]
Row = dict[str, Any]


@dataclass(frozen=True)
class Trained:
    model: SegmentationModel
    assigner: CompiledAssigner
    frame: pd.DataFrame  # the training data, as the job read it
    rows: list[Row]  # the same customers as a JSON client sends them
    store: ModelStore
    version: str


def client_rows(frame: pd.DataFrame) -> list[Row]:
    """Rows as JSON documents: NaN becomes None, numbers and booleans their JSON types."""
    records = frame.to_dict(orient="records")
    cleaned = [
        {str(k): None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
        for r in records
    ]
    rows: list[Row] = orjson.loads(orjson.dumps(cleaned))
    return rows


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame, _ = make_customers(ROWS, seed=2024)
    rng = np.random.default_rng(5)
    store = rng.integers(1, 5, ROWS).astype(float)
    store[rng.random(ROWS) < 0.03] = np.nan
    frame["store"] = store  # read back as floats 1.0..4.0: canonical "1".."4"
    frame["newsletter"] = rng.random(ROWS) < 0.3  # read back as booleans: "true"/"false"
    rare_rows = rng.choice(ROWS, 120, replace=False)
    frame.loc[rare_rows[:40], "country"] = "JP"
    frame.loc[rare_rows[40:70], "country"] = "BR"
    frame.loc[rare_rows[70:], "plan"] = "legacy"
    path = tmp_path_factory.mktemp("compiled-data") / "customers.csv"
    frame.to_csv(path, index=False)
    return path


def make_config(path: Path, algorithm: str, rules: bool) -> TrainConfig:
    base = example_config(
        "customers", path, algorithm=algorithm, stability_bootstraps=0, k_min=4, k_max=5
    )
    raw = base.model_dump()
    tweaks: dict[str, dict[str, Any]] = {
        "feature_usage": {"clip": (0.0, 1.0), "impute": "mean"},
        "support_tickets": {"winsorize": (0.0, 0.99)},
        "avg_order_value": {"impute": "zero"},
    }
    features = [{**f, **tweaks.get(f["name"], {})} for f in raw["features"]]
    features += [
        {"name": "store", "type": "categorical"},
        {"name": "newsletter", "type": "categorical"},
    ]
    return TrainConfig.model_validate(
        {**raw, "features": features, "rules": RULES if rules else []}
    )


@pytest.fixture(scope="module")
def models(
    tmp_path_factory: pytest.TempPathFactory, data_csv: Path
) -> Callable[[str, bool], Trained]:
    """Train each (algorithm, rules) combination once, on first use."""
    cache: dict[tuple[str, bool], Trained] = {}

    def get(algorithm: str, rules: bool) -> Trained:
        if (algorithm, rules) not in cache:
            config = make_config(data_csv, algorithm, rules)
            store = ModelStore(tmp_path_factory.mktemp(f"compiled-{algorithm}"))
            # BLAS threads spinning against each other on a busy machine turn a one-second
            # mixture fit into a minute; one thread keeps training time predictable.
            with threadpool_limits(1):
                result = train(config, store, promote=True)
            model = store.load("customers").estimator
            frame = load_training_data(config).frame
            assert len(frame) == ROWS
            cache[algorithm, rules] = Trained(
                model,
                CompiledAssigner(model),
                frame,
                client_rows(frame[model.feature_names]),
                store,
                result.manifest.version,
            )
        return cache[algorithm, rules]

    return get


@pytest.fixture(
    params=COMBINATIONS, ids=[f"{a}-{'rules' if r else 'plain'}" for a, r in COMBINATIONS]
)
def trained(request: pytest.FixtureRequest, models: Callable[[str, bool], Trained]) -> Trained:
    algorithm, rules = request.param
    return models(algorithm, rules)


@pytest.fixture(params=ALGORITHMS)
def ruled(request: pytest.FixtureRequest, models: Callable[[str, bool], Trained]) -> Trained:
    """The models with rule segments (edge cases include the rules' thresholds)."""
    return models(request.param, True)


def reference(model: SegmentationModel, rows: list[Row]) -> tuple[list[str], np.ndarray]:
    """The pipeline's segment and preprocessed vector of each request, as if sent alone.

    A one-row DataFrame per request costs ~50 ms of pandas; rows whose values have the same
    Python type in every column build the same column dtypes together as they do alone, so
    they share one frame (rows are never batched across types: True, 1 and 1.0 differ).
    """
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, row in enumerate(rows):
        signature = tuple(type(row.get(name)).__name__ for name in model.feature_names)
        groups.setdefault(signature, []).append(i)
    segments: list[str] = [""] * len(rows)
    vectors = np.zeros((len(rows), 0))
    for index in groups.values():
        frame = pd.DataFrame([rows[i] for i in index], columns=model.feature_names)
        transformed = model.transform(frame)
        if vectors.shape[1] == 0:
            vectors = np.zeros((len(rows), transformed.shape[1]))
        vectors[index] = transformed
        for i, segment in zip(index, model.predict(frame), strict=True):
            segments[i] = str(segment)
    return segments, vectors


def as_columns(rows: list[dict[str, Any]]) -> ColumnRows:
    """The rows kept as columns, as a recording run keeps a file's chunk (a key a row lacks:
    None, as the dicts' ``get`` gives)."""
    names = list(dict.fromkeys(name for row in rows for name in row))
    return ColumnRows({name: [row.get(name) for row in rows] for name in names})


# -- every training row ---------------------------------------------------------------------
def test_every_training_row_gets_the_pipelines_segment(trained: Trained) -> None:
    model, assigner = trained.model, trained.assigner
    slots = model.predict_slots(trained.frame)
    expected = model.predict(trained.frame).tolist()
    one = [assigner.assign_one(row) for row in trained.rows]
    many = assigner.assign_many(trained.rows)
    assert len(many) == len(trained.rows)
    for name, got in (("assign_one", one), ("assign_many", many)):
        wrong = [
            i for i, (a, want) in enumerate(zip(got, expected, strict=True)) if a.segment_id != want
        ]
        assert not wrong, f"{name}: {len(wrong)} rows differ, e.g. {trained.rows[wrong[0]]}"
        assert [a.slot for a in got] == slots.tolist()
        assert [a.rule for a in got] == [s if s < model.n_rules else None for s in slots]
    # the lean batch path: the same slots and confidences, without Assignment objects
    lean_slots, lean_confidence = assigner.assign_slots(trained.rows)
    assert lean_slots == slots.tolist()
    assert lean_confidence == [a.confidence for a in many]
    # the rows kept as columns (a recording run's chunk): the same answers
    kept = as_columns(trained.rows)
    assert assigner.assign_slots(kept) == (lean_slots, lean_confidence)
    assert assigner.assign_many(kept) == many
    # the comparison covers every rule and several clusters, not one segment
    used = set(slots.tolist())
    assert set(range(model.n_rules)) <= used
    assert len(used - set(range(model.n_rules))) >= 3


def test_scores_in_blocks_equal_one_pass_bitwise(trained: Trained) -> None:
    """A chunk's rows are scored ``SCORE_ROWS`` at a time: the same numbers, to the bit, as
    one pass over them all (which made a rows x clusters x features temporary)."""
    assigner = trained.assigner
    if assigner.kind == "leaves":
        return  # a tree's leaves: no scores
    z = assigner.preprocess.many(trained.rows)
    if assigner.weights is not None:
        z = z * assigner.weights
    assert len(z) > 2 * SCORE_ROWS
    blocked, whole = assigner._scores(z), assigner._scores_of(z)
    assert blocked.shape == whole.shape == (len(z), len(blocked[0]))
    assert blocked.tobytes() == whole.tobytes()


def test_vector_and_matrix_equal_the_preprocessing(trained: Trained) -> None:
    reference = trained.model.transform(trained.frame)
    matrix = trained.assigner.matrix(trained.rows)
    assert matrix.shape == reference.shape
    np.testing.assert_allclose(matrix, reference, rtol=0, atol=1e-9)
    vectors = np.vstack([trained.assigner.vector(row) for row in trained.rows])
    np.testing.assert_allclose(vectors, reference, rtol=0, atol=1e-9)
    # the planted data reaches the infrequent columns and the imputed values
    assert trained.frame["avg_order_value"].isna().any()
    assert trained.frame["country"].isin(RARE["country"]).any()


def test_confidence_is_the_clusterers_own(trained: Trained) -> None:
    model, assigner = trained.model, trained.assigner
    slots = model.predict_slots(trained.frame)
    clustered = slots >= model.n_rules
    z = model.transform(trained.frame)[clustered]
    clusterer = model.pipeline.named_steps["cluster"]
    if model.algorithm == "gmm":
        want = clusterer.predict_proba(z).max(axis=1)
    else:
        distances = np.sort(clusterer.transform(z), axis=1)
        want = 1.0 - distances[:, 0] / distances[:, 1]
    rows = [r for r, c in zip(trained.rows, clustered, strict=True) if c]
    one = np.array([assigner.assign_one(r).confidence for r in rows])
    many = np.array([a.confidence for a in assigner.assign_many(rows)])
    for got in (one, many):
        assert ((got >= 0.0) & (got <= 1.0)).all()
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    # a real spread, not a constant that any formula would match (a well-separated mixture
    # is sure of most customers: it is the uncertain few that show the formula)
    assert (want < 0.99).sum() >= 10 and want.min() < 0.9
    ruled = [r for r, c in zip(trained.rows, clustered, strict=True) if not c]
    assert all(assigner.assign_one(r).confidence == 1.0 for r in ruled)


def test_the_scalar_and_vectorised_paths_agree(trained: Trained) -> None:
    """``assign_one`` and ``assign_many`` give each other the same answers, confidences and
    drivers, from the same preprocessed rows (to the last bits: libm's and numpy's log1p may
    round apart): a transform or a stage changed on one path only fails here, even where it
    stays within the tolerance of the comparisons with the pipeline."""
    assigner = trained.assigner
    rows = trained.rows + [row for _, row in edge_cases(trained.model, trained.rows[0])]
    vectors = np.vstack([assigner.vector(row) for row in rows])
    np.testing.assert_allclose(vectors, assigner.matrix(rows), rtol=1e-14, atol=1e-14)
    many = assigner.assign_many(rows)
    differ = []
    for i, (row, batched) in enumerate(zip(rows, many, strict=True)):
        single = assigner.assign_one(row)
        weights = zip(single.drivers, batched.drivers, strict=False)
        same = (
            (single.slot, single.rule, single.runner_up)
            == (batched.slot, batched.rule, batched.runner_up)
            and [f for f, _ in single.drivers] == [f for f, _ in batched.drivers]
            and all(abs(a - b) <= 1.01e-4 for (_, a), (_, b) in weights)  # rounded to 4 places
        )
        if not same or abs(single.confidence - batched.confidence) > 1e-12:
            differ.append((i, single, batched))
    assert not differ, f"{len(differ)} rows differ, e.g. {differ[0]}"
    # the comparison covers explained cluster answers, not only rules or empty drivers
    explained = [a for a in many if a.rule is None and len(a.drivers) == TOP_DRIVERS]
    assert len(explained) > len(rows) // 4
    # a driver is shown with a positive weight (a weight rounded to 0.0 was shown as one)
    assert all(w > 0 for a in many for _, w in a.drivers)
    assert all(w > 0 for row in rows for _, w in assigner.assign_one(row).drivers)


# -- generated edge cases -------------------------------------------------------------------
def infrequent(model: SegmentationModel) -> dict[str, list[str]]:
    prep = model.pipeline.named_steps["preprocess"]
    out: dict[str, list[str]] = {}
    for name, kind in model.features:
        if kind == "categorical":
            encoder = prep.named_transformers_[f"cat_{name}"].named_steps["onehot"]
            rare = encoder.infrequent_categories_[0]
            out[name] = [str(c) for c in rare] if rare is not None else []
    return out


EXTREMES: tuple[Any, ...] = (1e12, -1e12, 0, 1e-300, 1.7e308, -1.7e308)
MORE_NUMBERS: tuple[Any, ...] = (-0.0, 5e-324, 7, 7.0, 2**63, -(2**63), 0.5)
CATEGORIES: tuple[Any, ...] = ("never-seen", "", "ünïcødé ✓ 🙂\x00\n", 3, True)
MORE_CATEGORIES: tuple[Any, ...] = ("ENTERPRISE", "pro ", "__missing__", "x" * 256, 3.0, 2.5, 0)


def edge_cases(model: SegmentationModel, base: Row) -> list[tuple[str, Row]]:
    """Missing values, extreme numbers, odd categories: each on its own, around ``base``."""
    kinds = dict(model.features)
    cases: list[tuple[str, Row]] = [("all missing", dict.fromkeys(kinds))]
    for name, kind in kinds.items():
        cases.append((f"{name}=None", {**base, name: None}))
        values = EXTREMES if kind == "numeric" else CATEGORIES
        cases += [(f"{name}={value!r}", {**base, name: value}) for value in values]
    for name in ("monetary", "feature_usage"):  # log1p'd, and clipped to [0, 1]
        cases += [(f"{name}={value!r}", {**base, name: value}) for value in MORE_NUMBERS]
    cases += [(f"plan={value!r}", {**base, "plan": value}) for value in MORE_CATEGORIES]
    for name, rare in infrequent(model).items():
        cases += [(f"{name}={value!r} (infrequent)", {**base, name: value}) for value in rare]
    # one category as an int, a float and a string; a boolean as JSON, a string and an int
    for value in (1, 1.0, "1", "4.0", "1.5"):
        cases.append((f"store={value!r}", {**base, "store": value}))
    for value in (True, False, "true", "True", 1, 0):
        cases.append((f"newsletter={value!r}", {**base, "newsletter": value}))
    return cases


def boundary_cases(base: Row) -> list[tuple[str, Row, int | None]]:
    """Rows on and around each rule's thresholds, with the rule that must match (if any)."""
    calm = {**base, "tenure_days": 400, "plan": "pro", "country": "US"}
    calm |= {"monetary": 500.0, "support_tickets": 1}
    below, above = float(np.nextafter(30.0, 0.0)), float(np.nextafter(30.0, 99.0))
    cases: list[tuple[str, Row, int | None]] = [("calm", calm, None)]
    for v, rule in [
        (30, None), (30.0, None), (30 + 1e-9, None), (above, None), (31, None),
        (29, 0), (29.999999999, 0), (30 - 1e-9, 0), (below, 0), (-5, 0), (0, 0),
    ]:  # fmt: skip
        cases.append((f"tenure_days={v!r}", {**calm, "tenure_days": v}, rule))
    for v, rule in [
        (2000, None), (2000.0, None), (2000 - 1e-9, None), (1999, None),
        (2000 + 1e-9, 1), (float(np.nextafter(2000.0, 1e9)), 1), (2001, 1), (1e12, 1),
    ]:  # fmt: skip
        cases.append(
            (f"enterprise, monetary={v!r}", {**calm, "plan": "enterprise", "monetary": v}, rule)
        )
    cases.append(("Enterprise (case)", {**calm, "plan": "Enterprise", "monetary": 9e3}, None))
    cases.append(
        ("enterprise, monetary=None", {**calm, "plan": "enterprise", "monetary": None}, None)
    )
    for country in ("DE", "FR"):
        for v, rule in [(5, 2), (5.0, 2), (5 + 1e-9, 2), (9, 2), (5 - 1e-9, None), (4, None)]:
            row = {**calm, "country": country, "support_tickets": v}
            cases.append((f"{country}, support_tickets={v!r}", row, rule))
    cases.append(("de (case)", {**calm, "country": "de", "support_tickets": 9}, None))
    cases.append(("country=None", {**calm, "country": None, "support_tickets": 9}, None))
    cases.append(("tenure_days=None", {**calm, "tenure_days": None}, None))
    first = {**calm, "tenure_days": 3, "plan": "enterprise", "monetary": 9e3, "country": "DE"}
    cases.append(("all three match: the first wins", {**first, "support_tickets": 9}, 0))
    return cases


def test_edge_cases_match_the_pipeline(ruled: Trained) -> None:
    model, assigner = ruled.model, ruled.assigner
    slots = model.predict_slots(ruled.frame)
    base = ruled.rows[int(np.argmax(slots >= model.n_rules))]  # a clustered customer
    cases = edge_cases(model, base) + [(label, row) for label, row, _ in boundary_cases(base)]
    rows = [row for _, row in cases]
    want, vectors = reference(model, rows)
    many = assigner.assign_many(rows)
    assert assigner.assign_slots(rows) == ([a.slot for a in many], [a.confidence for a in many])
    np.testing.assert_allclose(assigner.matrix(rows), vectors, rtol=0, atol=1e-9)
    assert assigner.assign_many(as_columns(rows)) == many  # rules, unknowns, None: as dicts
    # rows kept as columns are read by the rules through their own features only
    assert assigner.assign_slots(as_columns(rows)) == assigner.assign_slots(rows)
    wrong = []
    for (label, row), batched, segment, vector in zip(cases, many, want, vectors, strict=True):
        single = assigner.assign_one(row)
        np.testing.assert_allclose(assigner.vector(row), vector, rtol=0, atol=1e-9, err_msg=label)
        if (single.segment_id, batched.segment_id) != (segment, segment):
            wrong.append((label, segment, single.segment_id, batched.segment_id))
        for a in (single, batched):
            assert 0.0 <= a.confidence <= 1.0, (label, a)
    assert not wrong, wrong[:10]
    assert len(set(want)) >= 3  # the cases reach several segments, not one
    assert len(cases) > 120


def test_reference_batches_agree_with_one_row_frames(
    models: Callable[[str, bool], Trained],
) -> None:
    """Spot-check ``reference``: grouping by type gives what a one-row frame gives."""
    trained = models("kmeans", True)
    model = trained.model
    cases = [row for _, row in edge_cases(model, trained.rows[0])][::6]
    segments, vectors = reference(model, cases)
    for row, segment, vector in zip(cases, segments, vectors, strict=True):
        alone = pd.DataFrame([row], columns=model.feature_names)
        assert model.predict(alone)[0] == segment, row
        np.testing.assert_array_equal(model.transform(alone)[0], vector)


def test_rule_thresholds_are_exact(trained: Trained) -> None:
    model, assigner = trained.model, trained.assigner
    for label, row, rule in boundary_cases(trained.rows[0]):
        want = rule if model.rules else None
        a = assigner.assign_one(row)
        assert a.rule == want, label
        if want is not None:
            assert (a.segment_id, a.confidence) == (model.segment_ids[want], 1.0), label


def test_unknown_and_infrequent_categories_take_the_infrequent_column(ruled: Trained) -> None:
    """An unseen country counts as an infrequent one; an unseen channel (no group) as none."""
    model, assigner = ruled.model, ruled.assigner
    base = ruled.rows[0]
    rare = infrequent(model)
    assert rare["country"] and rare["plan"] and not rare["channel"]
    seen = np.array(assigner.vector({**base, "country": rare["country"][0]}))
    assert np.array_equal(assigner.vector({**base, "country": "ZZ"}), seen)
    unknown_channel = assigner.vector({**base, "channel": "carrier pigeon"})
    missing_channel = assigner.vector({**base, "channel": None})
    assert not np.array_equal(unknown_channel, missing_channel)  # missing has its own column
    # a number and its string are one category; a boolean is "true", not "1"
    assert np.array_equal(
        assigner.vector({**base, "store": 2}), assigner.vector({**base, "store": "2"})
    )
    assert np.array_equal(
        assigner.vector({**base, "store": 2.0}), assigner.vector({**base, "store": 2})
    )
    assert np.array_equal(
        assigner.vector({**base, "newsletter": True}),
        assigner.vector({**base, "newsletter": "true"}),
    )
    assert not np.array_equal(
        assigner.vector({**base, "newsletter": True}), assigner.vector({**base, "newsletter": 1})
    )


def test_a_batch_with_mixed_category_types_is_canonicalised_per_value() -> None:
    """``True``, ``1`` and ``1.0`` are different categories even in one column of a batch."""
    column = pd.DataFrame([{"s": 1}, {"s": True}, {"s": 1.0}, {"s": "1"}, {"s": False}])["s"]
    assert canonical_column(column).tolist() == [canonical_category(v) for v in column]


# -- pipelines the compiler does not know ---------------------------------------------------
def _sample(trained: Trained, n: int = 2_000) -> np.ndarray:
    z: np.ndarray = trained.model.transform(trained.frame.iloc[:n])
    return z


def with_birch(trained: Trained) -> SegmentationModel:
    model = copy.deepcopy(trained.model)
    birch = Birch(n_clusters=model.n_clusters).fit(_sample(trained))
    model.pipeline.steps[-1] = ("cluster", birch)
    return model


def with_agglomerative(trained: Trained) -> SegmentationModel:
    model = copy.deepcopy(trained.model)
    agglomerative = AgglomerativeClustering(model.n_clusters).fit(_sample(trained, 500))
    model.pipeline.steps[-1] = ("cluster", agglomerative)
    return model


def with_diagonal_mixture(trained: Trained) -> SegmentationModel:
    model = copy.deepcopy(trained.model)
    mixture = GaussianMixture(model.n_clusters, covariance_type="diag", random_state=0)
    model.pipeline.steps[-1] = ("cluster", mixture.fit(_sample(trained)))
    return model


def with_extra_block(trained: Trained) -> SegmentationModel:
    model = copy.deepcopy(trained.model)
    prep = model.pipeline.named_steps["preprocess"]
    blocks = [*prep.transformers, ("extra", "passthrough", ["frequency"])]
    bigger = ColumnTransformer(blocks, remainder="drop", sparse_threshold=0.0)
    model.pipeline.steps[0] = ("preprocess", bigger.fit(trained.frame[model.feature_names]))
    return model


def with_minmax_scaling(trained: Trained) -> SegmentationModel:
    model = copy.deepcopy(trained.model)
    numeric = model.pipeline.named_steps["preprocess"].named_transformers_["num"]
    names = [n for n, kind in model.features if kind == "numeric"]
    values = numeric.named_steps["transform"].transform(trained.frame[names])
    numeric.steps[-1] = ("scale", MinMaxScaler().fit(values))
    return model


def with_dropped_category(trained: Trained) -> SegmentationModel:
    model = copy.deepcopy(trained.model)
    block = model.pipeline.named_steps["preprocess"].named_transformers_["cat_plan"]
    values = block.named_steps["canonical"].transform(trained.frame[["plan"]])
    block.steps[-1] = ("onehot", OneHotEncoder(drop="first", sparse_output=False).fit(values))
    return model


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (with_birch, "Birch"),
        (with_agglomerative, "AgglomerativeClustering"),
        (with_diagonal_mixture, "GaussianMixture"),
        (with_extra_block, "extra"),
        (with_minmax_scaling, "numeric block"),
        (with_dropped_category, "plan"),
    ],
)
def test_unknown_steps_are_refused(
    models: Callable[[str, bool], Trained],
    mutate: Callable[[Trained], SegmentationModel],
    message: str,
) -> None:
    trained = models("kmeans", True)
    with pytest.raises(UnsupportedPipeline, match=message):
        CompiledAssigner(mutate(trained))
    CompiledAssigner(trained.model)  # the untouched model still compiles


@pytest.fixture
def birch_store(
    models: Callable[[str, bool], Trained], tmp_path: Path
) -> tuple[ModelStore, str, SegmentationModel]:
    """A copy of the k-means store with a registered, uncompilable (Birch) version."""
    trained = models("kmeans", True)
    store = ModelStore(tmp_path / "store")
    shutil.copytree(trained.store.root, store.root)
    model = with_birch(trained)
    version = new_version_id()
    with store.register("customers", version) as folder:
        artefact = store.write_artefact(folder, model)
        manifest = store.manifest("customers", trained.version)
        # its segments are the trained version's: their ids reused, none new (a new id another
        # version holds is refused at registration, as two trainings at once gave one id)
        matching = manifest.id_matching.model_copy(
            update={"previous_version": trained.version, "new": []}
        )
        manifest = manifest.model_copy(
            update={"version": version, "artefact": artefact, "id_matching": matching}
        )
        (folder / "manifest.json").write_text(manifest.model_dump_json())
    return store, version, model


def test_an_uncompilable_version_is_served_by_the_pipeline_with_a_warning(
    models: Callable[[str, bool], Trained],
    birch_store: tuple[ModelStore, str, SegmentationModel],
    caplog: pytest.LogCaptureFixture,
) -> None:
    trained = models("kmeans", True)
    store, version, model = birch_store
    with caplog.at_level(logging.WARNING, logger="app.serving.model"):
        serving = build_serving_model(store, "customers", version)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings, "falling back to the pipeline must be logged"
    assert "Birch" in warnings[0].getMessage() and version in warnings[0].getMessage()
    assert serving.assigner is None
    expected = model.predict(trained.frame[:3_000]).tolist()
    got = serving.assign_many(trained.rows[:3_000])
    assert [a.segment_id for a in got] == expected
    assert [serving.assign_one(r).segment_id for r in trained.rows[:10]] == expected[:10]
    assert {a.rule for a in got} >= {0, 1, 2, None}
    assert all(0.0 <= a.confidence <= 1.0 for a in got)
    # edge cases in one batch give what each gives alone
    cases = [row for _, row in edge_cases(model, trained.rows[0])][::4]
    batched = [a.segment_id for a in serving.assign_many(cases)]
    assert batched == reference(model, cases)[0]


def test_the_service_answers_from_an_uncompilable_version(
    models: Callable[[str, bool], Trained],
    birch_store: tuple[ModelStore, str, SegmentationModel],
) -> None:
    trained = models("kmeans", True)
    store, version, model = birch_store
    store.promote("customers", version)
    settings = Settings(model_store=store.root, model_name="customers", dev_mode=True)
    expected = model.predict(trained.frame[:40]).tolist()
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz").json()
        assert ready["checks"]["model"] == {**ready["checks"]["model"], "compiled": False}
        assert ready["checks"]["model"]["version"] == version
        for i, (row, want) in enumerate(zip(trained.rows[:40], expected, strict=True)):
            response = client.post("/v1/assign", json={"customer_id": f"c{i}", "features": row})
            assert response.status_code == 200, response.text
            assert (response.json()["segment_id"], response.json()["model_version"]) == (
                want,
                version,
            )
