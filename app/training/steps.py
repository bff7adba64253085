"""The training job's steps after loading (``app.training.job`` loads the data): rules ->
preprocess -> select k -> fit -> quality -> stable ids -> profile -> write -> manifest ->
report, each timed into the manifest. The write goes through ``ModelStore.register``, so a
failure at any step leaves no version behind.

This module imports scikit-learn and SciPy (about a second): the job imports it while the
data file is read.
"""

from __future__ import annotations

import difflib
import json
import platform
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

import app
from app.drift.reference import add_training_drift, feature_references
from app.errors import DataError, RuleSyntaxError, SegmentsError
from app.registry.manifest import (
    DataInfo,
    FeatureReference,
    FeatureSchema,
    Manifest,
    NumericStats,
    SegmentInfo,
)
from app.registry.store import ModelStore, new_version_id
from app.serving.preprocess import infrequent_categories
from app.training.config import CategoricalFeature, NumericFeature, TrainConfig
from app.training.csv_format import CsvFormat
from app.training.data import TrainingData, columns_of, min_rows_for
from app.training.job import Timer, TrainResult, one_blas_thread
from app.training.matrix import fit_matrix
from app.training.missed import checked_rows, missed_features, outcome_in_features
from app.training.model import ColumnWeights, SegmentationModel, warm_start
from app.training.profile import SlotInfo, feature_label, profile_segments
from app.training.quality import assess_sample, in_space, quality_sample
from app.training.rules import (
    RuleSegment,
    canonical_category,
    compile_rules,
    evaluate_frame,
    first_match_frame,
)
from app.training.selection import DOUBTED, MIN_SEGMENT, chosen_by_outcomes, select_k
from app.training.stable_ids import Slot, assign_stable_ids
from app.training.tree import (
    LeafRules,
    LeafTree,
    TreeCandidate,
    fit_tree,
    grow_tree,
    tree_candidates,
)
from app.training.tree_names import leaf_splits
from app.words import percent

PROJECTION_POINTS = 5_000


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


@one_blas_thread  # again: for the BLAS that importing this module loaded (SciPy's)
def fit_version(
    config: TrainConfig,
    data: TrainingData,
    store: ModelStore,
    promote: bool,
    timer: Timer,
    background: ThreadPoolExecutor,
) -> TrainResult:
    """Fit, profile and register one version of ``config.model.name`` on the loaded ``data``
    (``config`` with its transforms resolved); ``background``: one thread, for what the
    manifest keeps of every row, while this one fits."""
    spec, frame = config.model, data.frame
    # what the manifest keeps of every row (each feature's distribution for drift, the data's
    # fingerprint) needs nothing the fit makes: the second thread computes it meanwhile (its
    # sorts, hashing and Arrow encoding run without the GIL: about 0.5 s of a 1M-row job)
    summaries = background.submit(_row_summaries, config, data)
    kinds = {f.name: f.type for f in config.features}
    with timer.step("rules"):
        try:
            rules = compile_rules(config.rules, kinds)
        except RuleSyntaxError as exc:
            raise RuleSyntaxError(f"{exc}{_undeclared_hint(str(exc), config, data)}") from None
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
    compared, candidates, tree_target = _compared_tree(config, data, clustered, rule_slots, timer)
    if algorithm == "tree":  # the leaves are rule segments; no clusters
        with timer.step("tree"):
            target = _tree_target(spec.target, data, frame, rule_slots)
            grown = grow_tree(config, clustered, target, matrix)
        leaves, labels, selection = grown.rules, grown.labels, grown.selection
        assessed, clusterer = grown.quality, LeafRules()
        k = 0
    else:
        with _sample_sized(), timer.step("select k"):
            # the rows the quality measures read, copied out first: k-means then fits on the
            # matrix itself instead of a copy of every row (184 MB at 1M customers), which it
            # centres in place and shifts back, equal only up to rounding afterwards; drawn
            # before the selection, whose winner's confirmation fits the quality check's refits
            confirms = method != "silhouette" and spec.stability_bootstraps > 0
            drawn = quality_sample(
                matrix,
                seed=spec.seed,
                sample_size=spec.silhouette_sample,
                bootstraps=spec.stability_bootstraps,
                bootstrap_size=spec.selection_sample,
                spare=max(0, DOUBTED - spec.stability_bootstraps) if confirms else 0,
            )
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
                algorithms=[a for a in spec.algorithms if a != "tree"] if spec.algorithms else None,
                outcomes=frame.loc[rule_slots < 0, data.outcomes] if data.outcomes else None,
                bootstraps=spec.selection_bootstraps,
                trees=candidates,
                tree_target=tree_target,
                confirm=drawn,
            )
            k = chosen.selection.chosen_k
            algorithm = chosen.algorithm
            selection = chosen.selection
        if algorithm == "tree":  # a tree won: served as algorithm = "tree" serves one
            assert compared is not None
            assert tree_target is not None
            with timer.step("tree"):
                target = _tree_target(tree_target, data, frame, rule_slots)
                served = fit_tree(config, clustered, target, seed=spec.seed, count=k,
                                  choice=compared.choice)  # fmt: skip
                grown = grow_tree(config, clustered, target, matrix, tree=served)
            leaves, labels = grown.rules, grown.labels
            assessed, clusterer = grown.quality, LeafRules()
            k = 0
        else:
            data.notes.extend(few_customers(len(clustered), k))
            declared: tuple[np.ndarray, np.ndarray] | None = None
            if chosen.weights is not None:  # the outcome-weighted space won: fit and serve in it
                # (a sample as declared, for how separate the customers are on their features)
                rng = np.random.default_rng(spec.seed + 2)
                rows = rng.choice(len(matrix), min(len(matrix), spec.silhouette_sample), False)
                declared = rows, matrix[rows]  # (a copy: fancy indexing)
                matrix *= chosen.weights
            with timer.step("fit"):
                drawn = in_space(drawn, chosen.weights)  # (as drawn from the weighted matrix)
                clusterer = fit_in_place(warm_start(algorithm, k, spec.seed, chosen.start), matrix)
                labels = fitted_labels(clusterer, matrix)
            with _sample_sized(), timer.step("quality"):
                assessed = assess_sample(
                    drawn, labels, algorithm=algorithm, k=k, seed=spec.seed, refits=chosen.refits
                )
                as_declared = None
                if declared is not None and len(np.unique(labels[declared[0]])) > 1:
                    as_declared = float(silhouette_score(declared[1], labels[declared[0]]))
                silhouette = assessed.quality.silhouette
                by = selection.method if chosen_by_outcomes(selection) else "silhouette"
                data.notes.extend(weak_structure(silhouette, by, as_declared))
                data.notes.extend(fragile(assessed.quality.stability_ari, k))
    del matrix
    # each feature's schema (the numeric ones' mean, spread and median over every row) in
    # the second thread too (its reductions mostly without the GIL), beside the profile
    schema = background.submit(_feature_schema, config, frame, preprocessor)
    slots = rule_slots.astype(np.int64)
    slots[rule_slots < 0] = len(rules) + labels
    with timer.step("stable ids"):
        layout = [Slot("rule", r.name) for r in rules] + [Slot("leaf", r.text) for r in leaves]
        layout += [Slot("cluster", str(c)) for c in range(k)]
        ids, matching = assign_stable_ids(store, spec.name, frame, slots, layout)
        data.notes.extend(another_segmentation(store, spec.name, matching.previous_version, config))
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
            infrequent_by_feature(config, preprocessor),
        )
        data.notes.extend(empty_rules(config, frame, segments[: len(rules)], rules))
        checked = checked_rows(config, frame, data.outcomes)
        written_again, outcome_like = outcome_in_features(config, checked, outcome_tests)
        data.notes.extend(written_again)
        if grown is not None:
            data.notes.extend(small_leaves(segments[len(rules) :], spec.min_share, len(rules)))
        else:
            data.notes.extend(missed_features(config, checked, outcome_tests, outcome_like))
        projection, projected_ids = _project(model, frame, spec.seed)
    version = new_version_id()
    with store.register(spec.name, version) as folder:
        with timer.step("write"):
            artefact = store.write_artefact(folder, model)
        # the feature schema and the drift distributions read every row (both come from the
        # second thread, waited for here): timed, so the bench shows it
        with timer.step("manifest"):
            references, fingerprint = summaries.result()
            manifest = Manifest(
                model_name=spec.name,
                version=version,
                created_at=datetime.now(UTC),
                artefact=artefact,
                libraries=library_versions(),
                data=_data_info(config, data, fingerprint),
                config=_as_trained(config, tree_target if grown is not None else None),
                features=schema.result(),
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
            from app.training.report import write_report  # imported by the job only

            write_report(folder / "report.html", manifest, projection, projected_ids)
        manifest.timings = timer.timings
        (folder / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    if promote:
        store.promote(spec.name, version)
    return TrainResult(manifest=manifest, promoted=promote, projection=projection)


def _as_trained(config: TrainConfig, tree_target: str | None) -> dict[str, Any]:
    """The config the manifest keeps; where a tree among the candidates won on the first
    declared outcome, with that outcome as its ``target``: the report and the command line
    name the tree's target from it, as for ``algorithm = "tree"``."""
    dumped: dict[str, Any] = config.model_dump(mode="json")
    if tree_target is not None and dumped["model"].get("target") is None:
        dumped["model"]["target"] = tree_target
    return dumped


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


def _compared_tree(
    config: TrainConfig,
    data: TrainingData,
    clustered: pd.DataFrame,
    rule_slots: np.ndarray,
    timer: Timer,
) -> tuple[LeafTree | None, list[TreeCandidate], str | None]:
    """With ``"tree"`` in ``[model] algorithms``: the tree on ``target`` (default: the first
    declared outcome), its shape chosen as ``algorithm = "tree"`` chooses it, and each of its
    leaf counts as a candidate for the selection; none where no outcome was read."""
    spec = config.model
    if not spec.compares_tree:
        return None, [], None
    if not data.outcomes:  # (a config with outcomes declared refuses it first)
        raise DataError(
            "[model] algorithms lists 'tree', a tree grown on an outcome, and no outcome was "
            "read: declare one (outcomes = [...]) or leave 'tree' out"
        )
    name = spec.target or data.outcomes[0]
    with timer.step("tree candidates"):
        target = _tree_target(name, data, data.frame, rule_slots)
        try:
            tree = fit_tree(config, clustered, target, seed=spec.seed)
        except DataError as exc:  # no tree to compare: the clusters alone, and a word why
            data.notes.append(f"no tree on {name!r} among the candidates: {exc}")
            return None, [], None
        outcomes = data.frame.loc[rule_slots < 0, data.outcomes]
        return tree, tree_candidates(config, clustered, tree, outcomes), name


def _tree_target(
    target: str | None, data: TrainingData, frame: pd.DataFrame, rule_slots: np.ndarray
) -> pd.Series:
    """The tree's outcome on the customers no configured rule took; it must be declared."""
    if target not in data.outcomes:
        declared = ", ".join(data.outcomes) or "none"
        close = difflib.get_close_matches(str(target), list(data.outcomes), n=1)
        # the tree block copied without the outcomes line above it: the short form, where
        # it goes (a key written after [model] is [model]'s)
        fix = (
            f"did you mean {close[0]!r}?"
            if close
            else f"declare it: outcomes = [{json.dumps(target)}] at the top of the config, "
            "above the first [table] (or in [outcomes] columns)"
        )
        raise DataError(
            f"model.target = {target!r} is not a declared outcome (declared: {declared}); {fix}"
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


def _undeclared_hint(message: str, config: TrainConfig, data: TrainingData) -> str:
    """Why a rule's unknown name is none of the features, where it is a column of the file
    or an outcome (a new user's rule on a seller table's ``country``, a column never declared,
    was told only the features declared)."""
    unknown = re.search(r"unknown feature '([^']+)'", message)
    if unknown is None:
        return ""
    name = unknown.group(1)
    if name in data.outcomes:
        return (
            f"; {name!r} is an outcome: a rule reads the features only, as the service "
            "assigns without the outcome"
        )
    if config.data.kind != "table" or name not in columns_of(
        config.data.path, CsvFormat.of(config.data)
    ):
        return ""
    return (
        f"; {name!r} is a column of {config.data.path.name} but no feature: a rule reads the "
        "declared features, as the service assigns from them: declare it in [[features]] "
        '(type = "categorical" for text) to use it'
    )


def empty_rules(
    config: TrainConfig,
    frame: pd.DataFrame,
    segments: list[SegmentInfo],
    rules: list[RuleSegment] | None = None,
) -> list[str]:
    """A note per rule segment that holds no customer, naming a quoted value of the rule
    that differs from a category of the data only in case or spacing (``'yes'`` where the
    data has ``Yes``: categories are compared as written), or the earlier ``rules`` that take
    every customer it matches."""
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
        if taken := _taken_by(rules or [], seg.name, frame):  # ("matches none" misled)
            notes.append(f"rule segment {seg.name!r} holds no customer: {taken}")
            continue
        notes.append(
            f"rule segment {seg.name!r} holds no customer: {seg.rule!r} matches none of the "
            f"data{hint}"
        )
    return notes


def _taken_by(rules: list[RuleSegment], name: str, frame: pd.DataFrame) -> str:
    """Where rule ``name`` matches customers all taken by earlier rules, which ones."""
    at = next((i for i, r in enumerate(rules) if r.name == name), None)
    if at is None:
        return ""
    matched = evaluate_frame(rules[at].condition, frame)
    if not matched.any():
        return ""
    earlier = [r.name for r in rules[:at] if evaluate_frame(r.condition, frame)[matched].any()]
    return (
        f"the {matched.sum():,} customers {rules[at].text!r} matches are all taken by the "
        f"earlier rule(s) {', '.join(map(repr, earlier))} (rules are evaluated in order, "
        "the first match wins): put it before them, or narrow them"
    )


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


def another_segmentation(
    store: ModelStore, model: str, previous: str | None, config: TrainConfig
) -> list[str]:
    """A note where the model's version before this one reads none of its features: a
    config without ``[model] name`` trained a new user's own table into ``customers``, the
    example model ``./scripts/run`` serves, without a word; promoted, it would answer that
    model's clients (who send the example's features) with 422s."""
    if previous is None:
        return []
    try:
        before = [f.name for f in store.manifest(model, previous).features]
    except SegmentsError:
        return []  # (unreadable: the id matching said so)
    if not before or {f.name for f in config.features} & set(before):
        return []
    shown = ", ".join(before[:5]) + (", ..." if len(before) > 5 else "")
    return [
        f"model {model!r} held version {previous}, trained on other features ({shown}), of "
        "which this version reads none: promoted, it would answer that model's clients, who "
        "send those, with errors; if this is another segmentation, give it its own name "
        '([model] name = "...", or --model NAME)'
    ]


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


FRAGILE_STABILITY = 0.6  # the report's "fragile" (below it) in its legend


def fragile(stability: float | None, k: int) -> list[str]:
    """A note when refits on resamples of the customers draw other segments (the report's
    legend calls below 0.6 fragile): a mall table's 3 segments at 0.59 had no word of it."""
    if stability is None or stability >= FRAGILE_STABILITY:
        return []
    fewer = f"fewer segments (k_max = {k - 1}), " if k > 2 else ""
    return [
        f"stability {stability:.2f}, below the {FRAGILE_STABILITY} the report calls fragile: "
        "refits on resamples of these customers draw other segments, so a customer's "
        f"segment says less than it seems; {fewer}other features or more customers may "
        "give steadier ones"
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


def infrequent_by_feature(config: TrainConfig, preprocessor: object) -> dict[str, set[str]]:
    """Categorical feature -> the categories its fitted encoder groups as infrequent (the
    feature schema's ``infrequent``): profiles count them as one category, as the model does."""
    named = preprocessor.named_transformers_  # type: ignore[attr-defined]
    grouped: dict[str, set[str]] = {}
    for f in config.features:
        if isinstance(f, CategoricalFeature):
            rare = infrequent_categories(named[f"cat_{f.name}"].named_steps["onehot"])
            if rare is not None and len(rare):
                grouped[f.name] = {str(c) for c in rare}
    return grouped


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
            infrequent = infrequent_categories(encoder)
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
