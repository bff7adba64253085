"""The offline training job: data in, one new immutable version in the model store out.

Steps (each timed into the manifest): load -> rules -> preprocess -> select k -> fit ->
quality -> stable ids -> profile -> write -> manifest -> report. The write goes through
``ModelStore.register``, so a failure at any step leaves no version behind.
"""

from __future__ import annotations

import functools
import importlib
import platform
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar, cast

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

import app
from app.drift.reference import add_training_drift, feature_references
from app.errors import DataError
from app.registry.manifest import (
    DataInfo,
    FeatureReference,
    FeatureSchema,
    Manifest,
    NumericStats,
    SegmentInfo,
)
from app.registry.store import ModelStore, new_version_id
from app.training.config import NumericFeature, TrainConfig
from app.training.data import TrainingData, load_training_data, min_rows_for
from app.training.matrix import fit_matrix
from app.training.model import ColumnWeights, SegmentationModel, warm_start
from app.training.profile import SlotInfo, feature_label, profile_segments
from app.training.quality import assess_sample, quality_sample
from app.training.rules import (
    RuleSegment,
    canonical_category,
    compile_rules,
    first_match_frame,
    name_text,
)
from app.training.selection import MIN_SEGMENT, chosen_by_outcomes, select_k
from app.training.stable_ids import Slot, assign_stable_ids
from app.training.tree import LeafRules, grow_tree
from app.training.tree_names import leaf_splits
from app.words import counted, percent

PROJECTION_POINTS = 5_000
StepCallback = Callable[[str], None]
P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class TrainResult:
    manifest: Manifest
    promoted: bool
    projection: np.ndarray = field(repr=False)


@dataclass
class _Timer:
    on_step: StepCallback | None
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        if self.on_step:
            self.on_step(name)
        start = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - start, 3)


def library_versions() -> dict[str, str]:
    import joblib
    import scipy
    import sklearn

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
        "segments": app.__version__,
    }


def _one_blas_thread(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with one BLAS thread. The job's fits are on samples or small matrices,
    where BLAS's threads gain nothing, and where cores are shared they spin: a 4,000-customer
    training with Gaussian mixture candidates took 9.5 min (7 min of CPU) on a loaded 2-core
    machine, 22 s with one BLAS thread. k-means keeps its OpenMP threads for the one fit on
    every row (it limits BLAS inside them itself); the steps on samples take one OpenMP
    thread too (``_sample_sized``)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapper


@contextmanager
def _sample_sized() -> Iterator[None]:
    """One thread for every library (OpenMP included) while the job fits and scores samples
    (choosing k, the bootstraps of quality): dozens of small k-means fits, each of whose
    iterations ends at a barrier of OpenMP threads. With a core busy elsewhere those threads
    spin at every barrier: choosing k for 1M customers took 16.8 s instead of 1.3 s beside
    one other busy process on this 2-core machine; with one thread it took 1.2-1.4 s, loaded
    or not (bench/README.md, stop 34)."""
    with threadpool_limits(limits=1):
        yield


@_one_blas_thread
def train(
    config: TrainConfig,
    store: ModelStore,
    *,
    promote: bool = False,
    on_step: StepCallback | None = None,
) -> TrainResult:
    """Train one version of ``config.model.name`` and register it (and promote it if asked)."""
    # a read-only or full store fails now, in one line, not after minutes of fitting
    store.check_writable(config.model.name)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="train-summaries") as background:
        return _train(config, store, promote, _Timer(on_step), background)


def _train(
    config: TrainConfig,
    store: ModelStore,
    promote: bool,
    timer: _Timer,
    background: ThreadPoolExecutor,
) -> TrainResult:
    spec = config.model
    with timer.step("load data"):
        data = load_training_data(config)
        frame = data.frame
        config, logged = resolve_transforms(config, frame)
        data.notes.extend(logged)
        data.notes.extend(negatives_under_log(config, frame))
        data.notes.extend(near_duplicate_categories(config, frame))
        data.notes.extend(skewed_without_transform(config, frame))
        data.notes.extend(uninformative_features(config, frame))
    # what the manifest keeps of every row (each feature's distribution for drift, the data's
    # fingerprint) needs nothing the fit makes: the second thread computes it meanwhile (its
    # sorts, hashing and Arrow encoding run without the GIL: about 0.5 s of a 1M-row job)
    summaries = background.submit(_row_summaries, config, data)
    # then it imports plotting for the report (0.3 s), while the fits release the GIL
    background.submit(importlib.import_module, "app.training.report")
    kinds = {f.name: f.type for f in config.features}
    with timer.step("rules"):
        rules = compile_rules(config.rules, kinds)
        rule_slots = first_match_frame(rules, frame) if rules else np.full(len(frame), -1)
        clustered = frame.loc[rule_slots < 0, config.feature_names]
        if len(clustered) < min_rows_for(spec.k_min):
            raise DataError(
                f"only {len(clustered)} customers are left for clustering after rule segments, "
                f"too few for the {spec.k_min} segments requested (model.k_min = {spec.k_min}): "
                f"at least {min_rows_for(spec.k_min)} are needed"
            )
    with timer.step("preprocess"):
        # fit_transform's pipeline and matrix, one-hot blocks built per category, not per row
        preprocessor, matrix = fit_matrix(config, clustered)
    algorithm: str = spec.algorithm
    if algorithm == "auto":
        algorithm = "minibatch_kmeans" if len(matrix) > spec.minibatch_threshold else "kmeans"
    method = spec.selection or ("balanced" if data.outcomes else "silhouette")
    leaves: list[RuleSegment] = []
    grown = None
    if algorithm == "tree":  # the leaves are rule segments; no clusters
        with timer.step("tree"):
            target = _tree_target(spec.target, data, frame, rule_slots)
            grown = grow_tree(config, clustered, target, matrix)
        leaves, labels, selection = grown.rules, grown.labels, grown.selection
        assessed, clusterer = grown.quality, LeafRules()
        k = 0
    else:
        with _sample_sized(), timer.step("select k"):
            chosen = select_k(
                matrix,
                algorithm=algorithm,
                k_min=spec.k_min,
                k_max=spec.k_max,
                min_share=spec.min_share,
                clustered_fraction=len(clustered) / len(frame),
                sample_size=spec.selection_sample,
                silhouette_size=spec.silhouette_sample,
                seed=spec.seed,
                method=method,
                algorithms=list(spec.algorithms) if spec.algorithms else None,
                outcomes=frame.loc[rule_slots < 0, data.outcomes] if data.outcomes else None,
                bootstraps=spec.selection_bootstraps,
            )
            k = chosen.selection.chosen_k
            algorithm = chosen.algorithm
            selection = chosen.selection
            data.notes.extend(few_customers(len(clustered), k))
        declared: tuple[np.ndarray, np.ndarray] | None = None
        if chosen.weights is not None:  # the outcome-weighted space won: fit and serve in it
            # (a sample as declared, for how separate the customers are on their features)
            rng = np.random.default_rng(spec.seed + 2)
            rows = rng.choice(len(matrix), min(len(matrix), spec.silhouette_sample), False)
            declared = rows, matrix[rows]  # (a copy: fancy indexing)
            matrix *= chosen.weights
        with timer.step("fit"):
            # the rows the quality measures read, copied out first: k-means then fits on the
            # matrix itself instead of a copy of every row (184 MB at 1M customers), which it
            # centres in place and shifts back, equal only up to rounding afterwards
            drawn = quality_sample(
                matrix,
                seed=spec.seed,
                sample_size=spec.silhouette_sample,
                bootstraps=spec.stability_bootstraps,
                bootstrap_size=spec.selection_sample,
            )
            clusterer = fit_in_place(warm_start(algorithm, k, spec.seed, chosen.start), matrix)
            labels = fitted_labels(clusterer, matrix)
        with _sample_sized(), timer.step("quality"):
            assessed = assess_sample(drawn, labels, algorithm=algorithm, k=k, seed=spec.seed)
            as_declared = None
            if declared is not None and len(np.unique(labels[declared[0]])) > 1:
                as_declared = float(silhouette_score(declared[1], labels[declared[0]]))
            silhouette = assessed.quality.silhouette
            by = selection.method if chosen_by_outcomes(selection) else "silhouette"
            data.notes.extend(weak_structure(silhouette, by, as_declared))
    del matrix
    slots = rule_slots.astype(np.int64)
    slots[rule_slots < 0] = len(rules) + labels
    with timer.step("stable ids"):
        layout = [Slot("rule", r.name) for r in rules] + [Slot("leaf", r.text) for r in leaves]
        layout += [Slot("cluster", str(c)) for c in range(k)]
        ids, matching = assign_stable_ids(store, spec.name, frame, slots, layout)
    steps: list[tuple[str, object]] = [("preprocess", preprocessor), ("cluster", clusterer)]
    if grown is None and chosen.weights is not None:
        steps.insert(1, ("weight", ColumnWeights(chosen.weights)))
    pipeline = Pipeline(steps)
    model = SegmentationModel(
        features=[(f.name, f.type) for f in config.features],
        rules=rules + leaves,
        pipeline=pipeline,
        segment_ids=ids,
        algorithm=algorithm,
        leaves=len(leaves),
        tree=grown.tree if grown else None,
    )
    with timer.step("profile"):
        infos = [
            SlotInfo(ids[i], "rule", r.name, r.text, r.description, r.action)
            for i, r in enumerate(rules)
        ]
        stability = assessed.segment_stability
        splits = leaf_splits(grown.tree) if grown else []
        infos += [
            SlotInfo(
                ids[len(rules) + j],
                "rule",
                None,
                r.text,
                stability=_stability(stability, j),
                split=splits[j],
            )
            for j, r in enumerate(leaves)
        ]
        infos += [
            SlotInfo(ids[len(rules) + c], "cluster", stability=_stability(stability, c))
            for c in range(k)
        ]
        segments, outcome_tests = profile_segments(
            config,
            frame,
            _numeric_transformed(config, preprocessor, frame),
            slots,
            infos,
            spec.min_share,
            data.outcomes,
            data.positive,
        )
        data.notes.extend(empty_rules(config, frame, segments[: len(rules)]))
        if grown is not None:
            data.notes.extend(small_leaves(segments[len(rules) :], spec.min_share, len(rules)))
        projection, projected_ids = _project(model, frame, spec.seed)
    version = new_version_id()
    with store.register(spec.name, version) as folder:
        with timer.step("write"):
            artefact = store.write_artefact(folder, model)
        # the feature schema reads every row (the drift distributions come from the second
        # thread, waited for here): timed, so the bench shows it
        with timer.step("manifest"):
            references, fingerprint = summaries.result()
            manifest = Manifest(
                model_name=spec.name,
                version=version,
                created_at=datetime.now(UTC),
                artefact=artefact,
                libraries=library_versions(),
                data=_data_info(config, data, fingerprint),
                config=config.model_dump(mode="json"),
                features=_feature_schema(config, frame, preprocessor),
                algorithm=algorithm,
                seed=spec.seed,
                k=k or len(leaves),
                selection=selection,
                quality=assessed.quality,
                segments=segments,
                outcomes=outcome_tests,
                id_matching=matching,
                timings=timer.timings,
            )
            add_training_drift(manifest, config, frame, slots, ids, data.outcomes, references)
        with timer.step("report"):
            # plotting (matplotlib) is imported by the job only (in its second thread, see
            # above): every other command importing the job does not pay for it
            from app.training.report import write_report

            write_report(folder / "report.html", manifest, projection, projected_ids)
        manifest.timings = timer.timings
        (folder / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    if promote:
        store.promote(spec.name, version)
    return TrainResult(manifest=manifest, promoted=promote, projection=projection)


def fit_in_place(clusterer: Any, matrix: np.ndarray) -> Any:
    """``clusterer.fit(matrix)``, a k-means without copying ``matrix`` (``copy_x=False``):
    the same arithmetic on the same values, so the same fit to the bit
    (tests/training/test_fitted_labels.py), but ``matrix`` holds its values only up to
    rounding afterwards. The saved clusterer keeps the default ``copy_x=True``, so a refit of
    the artefact's pipeline leaves its input alone."""
    if not isinstance(clusterer, KMeans) or not clusterer.copy_x:
        return clusterer.fit(matrix)
    clusterer.set_params(copy_x=False)
    try:
        return clusterer.fit(matrix)
    finally:
        clusterer.set_params(copy_x=True)


def fitted_labels(clusterer: object, matrix: np.ndarray) -> np.ndarray:
    """``clusterer.predict(matrix)`` for the matrix it was just fitted on. k-means keeps
    those labels (``labels_``: its fit ends with the E-step ``predict`` runs), so they are
    read, not computed again over every row; a Gaussian mixture predicts."""
    labels = getattr(clusterer, "labels_", None)
    if labels is None:
        labels = clusterer.predict(matrix)  # type: ignore[attr-defined]
    return np.asarray(labels, dtype=np.int64)


def _tree_target(
    target: str | None, data: TrainingData, frame: pd.DataFrame, rule_slots: np.ndarray
) -> pd.Series:
    """The tree's outcome on the customers no configured rule took; it must be declared."""
    if target not in data.outcomes:
        declared = ", ".join(data.outcomes) or "none"
        raise DataError(
            f"model.target = {target!r} is not a declared outcome (declared: {declared}); "
            "add it to [outcomes] columns"
        )
    series: pd.Series = frame.loc[rule_slots < 0, target]
    return series


def _stability(values: np.ndarray | None, label: int) -> float | None:
    return None if values is None else round(float(values[label]), 4)


def _numeric_transformed(
    config: TrainConfig, preprocessor: object, frame: pd.DataFrame
) -> pd.DataFrame:
    numeric = [f.name for f in config.features if isinstance(f, NumericFeature)]
    if not numeric:
        return pd.DataFrame(index=frame.index)
    transform = preprocessor.named_transformers_["num"].named_steps["transform"]  # type: ignore[attr-defined]
    values = transform.transform(frame[numeric])
    return pd.DataFrame(values, index=frame.index, columns=numeric)


def _project(
    model: SegmentationModel, frame: pd.DataFrame, seed: int
) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(frame), min(len(frame), PROJECTION_POINTS), replace=False))
    sample = frame.iloc[rows]
    matrix = model.transform(sample)
    components = min(2, matrix.shape[1])
    projection = PCA(components, random_state=seed).fit_transform(matrix)
    if components < 2:
        projection = np.column_stack([projection, np.zeros(len(projection))])
    return projection, [str(s) for s in model.predict(sample)]


def empty_rules(config: TrainConfig, frame: pd.DataFrame, segments: list[SegmentInfo]) -> list[str]:
    """A note per rule segment that holds no customer, naming a quoted value of the rule
    that differs from a category of the data only in case or spacing (``'yes'`` where the
    data has ``Yes``: categories are compared as written)."""
    empty = [seg for seg in segments if not seg.size]
    if not empty:
        return []
    # each categorical feature's categories, as rules compare them (a CSV's True/False are
    # the categories true/false), read once for every empty rule
    categories = {
        f.name: {
            c
            for c in map(canonical_category, frame[f.name].dropna().unique()[:10_000])
            if c is not None
        }
        for f in config.features
        if f.type == "categorical" and f.name in frame.columns
    }
    notes = []
    for seg in empty:
        near = []
        for quoted in re.findall(r"'([^']*)'|\"([^\"]*)\"", seg.rule or ""):
            value = quoted[0] or quoted[1]
            for name, present in categories.items():
                alike = sorted(
                    c for c in present if c != value and c.strip().casefold() == value.casefold()
                )
                if alike and value not in present:
                    near.append(f"{value!r} is {' or '.join(map(repr, alike))} in {name!r}")
        hint = f" ({'; '.join(near)}: categories are compared as written)" if near else ""
        notes.append(
            f"rule segment {seg.name!r} holds no customer: {seg.rule!r} matches none of the "
            f"data{hint}"
        )
    return notes


def small_leaves(segments: list[SegmentInfo], min_share: float, rules: int) -> list[str]:
    """A note on tree leaves below ``min_share`` of all customers (the tree keeps each leaf
    at ``min_share`` of the customers the rules leave it)."""
    small = [s for s in segments if s.share < min_share]
    if not small:
        return []
    shown = ", ".join(f"{s.id} ({s.share:.1%})" for s in small)
    why = (
        f"the {rules} rule segment(s) leave it"
        if rules
        else "it was grown on (a sample of them, at this size)"
    )
    return [
        f"{shown} below min_share ({percent(min_share)}) of all customers: the tree keeps "
        f"each leaf at {percent(min_share)} of the customers {why}"
    ]


FEW_PER_SEGMENT = MIN_SEGMENT
"""Customers per clustered segment below which a note says the segments are fragile: a
centre of a few dozen customers moves with each of them (the bootstrap stability measures
that, on the same few)."""


def few_customers(customers: int, k: int) -> list[str]:
    """A note when the clustered customers are too few for ``k`` steady segments."""
    if customers >= FEW_PER_SEGMENT * k:
        return []
    return [
        f"only {customers:,} customers for {k} clustered segments ({customers / k:,.0f} each "
        f"on average): segments of so few move with each customer and say little of a "
        f"population; {FEW_PER_SEGMENT * k:,} or more (a few thousand is usual) give steadier "
        "segments"
    ]


USABLE_SILHOUETTE = 0.25  # the report's "usable structure" (above it) in its legend


def weak_structure(
    silhouette: float | None, method: str, as_declared: float | None = None
) -> list[str]:
    """A note when the chosen segments' silhouette is below what the report calls usable
    structure: the default selection chose k = 6 at 0.142 on an insurance table, and the
    report's legend said "above 0.25 is usable structure" with no word on it. Segments of
    the outcome-weighted space are judged on the features as declared (``as_declared``):
    their own space's 0.506 hid a 0.171 on the features (a log weighted to recency)."""
    where = ""
    if as_declared is not None and silhouette is not None and as_declared < silhouette:
        where = (
            f" on the features as declared ({silhouette:.2f} in the outcome-weighted space "
            "the segments were fitted in)"
        )
        silhouette = as_declared
    if silhouette is None or silhouette >= USABLE_SILHOUETTE:
        return []
    said = f"silhouette {silhouette:.2f}{where}"
    why = (
        "they were chosen for how they separate the outcomes: see the selection"
        if method != "silhouette"
        else "no candidate separated the customers better"
    )
    return [
        f"{said}, below the {USABLE_SILHOUETTE} of usable structure: these customers do not "
        "form separate groups on the features, and the segments are bands cut through them "
        f"({why}); read each as the traits that name it, and expect customers near a "
        "boundary to move between segments as their values change"
    ]


def negatives_under_log(config: TrainConfig, frame: pd.DataFrame) -> list[str]:
    """A note per ``log1p`` feature holding negative values (after its ``clip``): the
    transform counts them as 0, so a customer at -250 looks like one at 0."""
    notes = []
    for feature in config.features:
        if not isinstance(feature, NumericFeature) or feature.transform != "log1p":
            continue
        values = frame[feature.name].to_numpy(dtype=np.float64, na_value=np.nan)
        lower = feature.clip[0] if feature.clip else None
        if lower is not None:
            values = np.maximum(values, lower)
        # below a rounding error of the column's scale: a customer who returned everything
        # has a net of -5.3e-15, not a negative amount
        scale = float(np.nanmax(np.abs(values), initial=0.0))
        negative = values < -1e-9 * max(scale, 1.0)
        if negative.any():
            many = int(negative.sum())
            notes.append(
                f"{feature.name}: {counted(many, 'negative value')} (the lowest "
                f"{float(np.nanmin(values)):g}) {'counts' if many == 1 else 'count'} as 0 under "
                'transform = "log1p"; to keep them apart, write transform = "none"'
            )
    return notes


SKEWED = 2.0  # a skewness above which a feature's largest values pull the clusters
HEAD_ROWS = 1_000  # rows looked at first where the first of them can already decide
NEGATIVE_SHARE = 0.01  # a skewed feature may have this share of negatives and still be logged
SKEW_SAMPLE = 100_000  # values a feature's skewness is measured on


def heavy_skew(values: pd.Series) -> str | None:
    """How a numeric feature's present values are heavily right-skewed (``skewness 6.5, 40%
    zeros``), or None: fewer than three distinct values (a flag: ``rare_flag``), skewness at
    most ``SKEWED``, or more than ``NEGATIVE_SHARE`` of them negative (a net spend's few
    refunders count as 0 under log1p, noted; a balance that is often negative is no tail to
    log: ``negative_tail``).
    The skewness is of the values within their 1st and 99th percentiles: a tail, not a few
    outliers (a marketing table's Income, skewness 6.8 from one 666,666 among incomes up to
    160,000, is symmetric within them, 0.0, and its segments lost their stability logged).
    Measured on a seeded sample of ``SKEW_SAMPLE`` values: the same answer, a tenth of the
    time of a million (0.08 s a feature)."""
    shape = _shape(values)
    if shape is None or shape[1] > NEGATIVE_SHARE or not shape[0] > SKEWED:
        return None
    skew, _, zeros = shape
    return f"skewness {skew:.1f}" + (f", {zeros:.0%} zeros" if zeros >= 0.05 else "")


def negative_tail(values: pd.Series) -> str | None:
    """How a feature ``heavy_skew`` leaves unlogged for its negatives is as heavily skewed
    either way (``skewness 3.1, 5% negative``), or None. Left as it is, its tail sets the
    segments as a spend column's does (a net spend with 5% refunders made a 0.1% segment of
    its two biggest spenders, and the summary said nothing)."""
    shape = _shape(values)
    if shape is None or shape[1] <= NEGATIVE_SHARE or not abs(shape[0]) > SKEWED:
        return None
    return f"skewness {shape[0]:.1f}, {percent(shape[1])} negative"


def _shape(values: pd.Series) -> tuple[float, float, float] | None:
    """The skewness within the 1st and 99th percentiles, and the shares of negatives and of
    zeros, of a seeded sample of ``values`` (None: fewer than three distinct values)."""
    if len(values) > SKEW_SAMPLE:
        rows = np.random.default_rng(0).choice(len(values), SKEW_SAMPLE, replace=False)
        values = values.iloc[np.sort(rows)]
    if len(values) < 3 or values.nunique() < 3:
        return None
    low, high = values.quantile([0.01, 0.99])
    skew = float(cast(float, values.clip(low, high).skew()))
    return skew, float((values < 0).mean()), float((values == 0).mean())


def resolve_transforms(config: TrainConfig, frame: pd.DataFrame) -> tuple[TrainConfig, list[str]]:
    """The config with each ``transform = "auto"`` (the default) resolved on the training
    data: ``log1p`` for a heavily skewed feature without ``clip`` or ``winsorize`` (money,
    counts: untransformed, their few largest values set the segments: a card table's
    purchases and cash advances made one 80% segment of "typical customers"), else
    ``none``; and a note naming the features it logged. The version keeps the resolved
    transform (its config, schema and pipeline), so serving and retrains of it read the
    same."""
    features, logged = [], []
    for feature in config.features:
        if isinstance(feature, NumericFeature) and feature.transform == "auto":
            trimmed = feature.winsorize is not None or feature.clip is not None
            skew = None if trimmed else heavy_skew(frame[feature.name].dropna())
            feature = feature.model_copy(update={"transform": "log1p" if skew else "none"})
            if skew:
                logged.append(f"{feature.name} ({skew})")
        features.append(feature)
    config = config.model_copy(update={"features": features})  # "none" recorded too
    if not logged:
        return config, []
    note = (
        f'log1p-transformed as heavily skewed (transform = "auto", the default; write '
        f'transform = "none" to keep a feature as it is): {", ".join(logged)}'
    )
    return config, [note]


def skewed_without_transform(config: TrainConfig, frame: pd.DataFrame) -> list[str]:
    """A note per untransformed, untrimmed numeric feature that is heavily skewed (money,
    counts; or a net amount with many negatives, ``negative_tail``): its few largest values
    set the clusters (an audit's spend column made a 0.8% segment of big spenders and left
    the rest to age); and
    per rare two-valued flag (``rare_flag``), which no transform changes."""
    notes = []
    for feature in config.features:
        if not isinstance(feature, NumericFeature):
            continue
        values = frame[feature.name].dropna()
        # three values among the first rows already rule a flag out, without hashing them all
        if values.iloc[:HEAD_ROWS].nunique() <= 2 and values.nunique() == 2:
            notes.extend(rare_flag(feature.name, values))
            continue
        if feature.transform != "none":
            continue
        if feature.winsorize is not None or feature.clip is not None:
            continue
        if skew := heavy_skew(values):
            notes.append(
                f"{feature.name}: heavily skewed ({skew}): its largest values pull the "
                'segments; consider transform = "log1p"'
            )
        elif tail := negative_tail(values):
            end = "most negative" if tail.startswith("skewness -") else "largest"
            notes.append(
                f"{feature.name}: heavily skewed ({tail}): its {end} values pull the "
                "segments, and log1p would count its negatives as 0; consider winsorize = "
                "[0.01, 0.99], or a rule for the tail"
            )
    return notes


def rare_flag(name: str, values: pd.Series) -> list[str]:
    """A note for a two-valued feature whose rarer value few customers hold (as skewed as
    a spend column, beyond ``SKEWED`` either way): standardised, they lie far from everyone
    else and can make a segment of their own (an audit's hotel guests: 3% repeated guests
    were a segment, noted only as skewed, with log1p advised, which maps 0/1 to 0/0.69 and
    standardises to the same values)."""
    counts = values.value_counts()
    share = float(counts.iloc[-1] / len(values))
    if abs(float(cast(float, values.skew()))) <= SKEWED:
        return []
    rare, usual = float(counts.index[-1]), float(counts.index[0])
    return [
        f"{name}: {percent(share)} of customers hold {rare:g} (the others {usual:g}): "
        f"standardised, they lie {np.sqrt((1 - share) / share):.1f} sd from the rest and can "
        "make a segment of their own, which no transform changes; leave the feature out, or "
        f'give them a rule (when = "{name_text(name)} == {rare:g}")'
    ]


MOSTLY_MISSING = 0.5  # a feature missing in more than this share of the customers


def uninformative_features(config: TrainConfig, frame: pd.DataFrame) -> list[str]:
    """A note per feature holding a single value (once its missing values are set aside):
    it adds nothing (the docs said so, the job said nothing: an audit's ``region``, always
    "global"); and one per feature missing in most rows, where the value filled in (or, for
    a categorical feature, the missing category) stands for most customers (an audit's
    ``nps_score``, 90% missing, was noted only as "5,409 missing values, imputed")."""
    notes = []
    for feature in config.features:
        column = frame[feature.name]
        present = column.dropna()
        missing = len(column) - len(present)
        share = missing / len(column) if len(column) else 0.0
        value = _single_value(feature, present)
        if value is not None:
            if missing and _missing_stands_apart(feature, value):
                notes.append(
                    f"{feature.name}: one value ({value}) besides {missing:,} missing "
                    f"({percent(share)}): it tells only the customers with a value from those "
                    "without; drop it unless that is meant"
                )
            else:
                notes.append(
                    f"{feature.name}: one value ({value}) for every customer"
                    + (f" with one ({missing:,} missing, imputed as the same)" if missing else "")
                    + ": it adds nothing to the segments; drop it"
                )
        elif share > MOSTLY_MISSING:
            filled = (
                "the missing category"
                if feature.type == "categorical"
                else f"the imputed value ({feature.impute})"
            )
            impute = "" if feature.type == "categorical" else "another impute, "
            notes.append(
                f"{feature.name}: {share:.0%} of the customers have no value ({missing:,} of "
                f"{len(column):,}): {filled} stands for most of them and dominates the feature; "
                f"consider dropping it, {impute}or a rule segment for them (when = "
                f"'{feature.name} is missing')"
            )
    return notes


def _single_value(feature: object, present: pd.Series) -> str | None:
    """The one value of a feature's present values, as the summary shows it (``5``,
    ``'global'``), or None when it has none or several (compared as vectors: no hashing of a
    million values)."""
    if present.empty:
        return None
    if isinstance(feature, NumericFeature):
        values = present.to_numpy(dtype=np.float64)
        return f"{values[0]:g}" if values.min() == values.max() else None
    first = present.iloc[0]
    if not (present == first).all():
        return None
    return repr(canonical_category(first))


def _missing_stands_apart(feature: object, value: str) -> bool:
    """Whether a feature's missing values differ from its single value once filled in: a
    categorical feature's missing values are a category of their own; a numeric feature's
    median or mean is that value, zero is another unless the value is 0."""
    if not isinstance(feature, NumericFeature):
        return True
    return feature.impute == "zero" and float(value) != 0.0


VARIED_CATEGORIES = 50  # more distinct values than this (and over 5% of the customers)


def near_duplicate_categories(config: TrainConfig, frame: pd.DataFrame) -> list[str]:
    """A note per categorical feature whose categories differ only in case or spacing
    (``'pro'``, ``' Pro '``, ``'PRO'``): kept apart, they split one group into several, in
    the profiles, the names and the rules that test one spelling. And one per categorical
    feature of very many values (a date or an amount declared categorical: an audit's
    ``Dt_Customer``, 663 values among 2,240 customers, trained without a word)."""
    notes = []
    for feature in config.features:
        if feature.type != "categorical":
            continue
        present = frame[feature.name].dropna()
        spellings = pd.Series(present.unique()).astype(str)
        if len(spellings) > VARIED_CATEGORIES and len(spellings) > 0.05 * len(present):
            notes.append(
                f"{feature.name}: {len(spellings):,} categories among {len(present):,} "
                "customers; a categorical column this varied is usually a date, an id or an "
                "amount (its rare values are grouped as infrequent): derive a number from it "
                "or leave it out"
            )
        keys = spellings.str.strip().str.casefold().str.split().str.join(" ")
        groups = spellings.groupby(keys.to_numpy()).agg(list)
        merged = groups[groups.map(len) > 1]
        if len(merged):
            example = ", ".join(map(repr, merged.iloc[0][:4]))
            notes.append(
                f"{feature.name}: {len(spellings):,} categories are {len(groups):,} when case "
                f"and spacing are ignored (e.g. {example}); they are kept apart: clean the "
                "column if they name one thing"
            )
    return notes


def _row_summaries(config: TrainConfig, data: TrainingData) -> tuple[list[FeatureReference], str]:
    return feature_references(config, data.frame), data.fingerprint


def _data_info(config: TrainConfig, data: TrainingData, fingerprint: str) -> DataInfo:
    return DataInfo(
        path=str(config.data.path),
        kind=config.data.kind,
        rows=len(data.frame),
        source_rows=data.source_rows,
        dropped_rows=data.dropped_rows,
        fingerprint=fingerprint,
        reference_date=data.reference_date.isoformat() if data.reference_date else None,
        dropped_reasons=data.dropped_reasons,
        dropped_examples=data.dropped_examples,
        missing_cells=data.missing_cells,
        text_as_missing=data.text_as_missing,
        notes=data.notes,
        day_first=data.day_first,
    )


def _feature_schema(
    config: TrainConfig, frame: pd.DataFrame, preprocessor: object
) -> list[FeatureSchema]:
    schema: list[FeatureSchema] = []
    named = preprocessor.named_transformers_  # type: ignore[attr-defined]
    for f in config.features:
        label = feature_label(config, f)
        if isinstance(f, NumericFeature):
            col = frame[f.name]
            stats = NumericStats(
                mean=float(col.mean()),
                std=float(col.std(ddof=0)),
                min=float(col.min()),
                median=float(col.median()),
                max=float(col.max()),
                missing_share=float(col.isna().mean()),
            )
            schema.append(
                FeatureSchema(
                    name=f.name,
                    type="numeric",
                    label=label,
                    transform=f.transform,
                    clip=f.clip,
                    impute=f.impute,
                    stats=stats,
                )
            )
        else:
            encoder = named[f"cat_{f.name}"].named_steps["onehot"]
            infrequent = encoder.infrequent_categories_[0]
            schema.append(
                FeatureSchema(
                    name=f.name,
                    type="categorical",
                    label=label,
                    categories=[str(c) for c in encoder.categories_[0]],
                    infrequent=[str(c) for c in infrequent] if infrequent is not None else [],
                    as_written=True,
                )
            )
    return schema
