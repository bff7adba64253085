"""The training summary says why the chosen candidate won, once, whatever the method."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.cli import common
from app.cli.common import print_manifest_summary
from app.registry.store import ModelStore
from app.training.config import parse_config
from app.training.job import TrainResult, train


def _summary(manifest: object, capsys: pytest.CaptureFixture[str]) -> str:
    print_manifest_summary(manifest, None)  # type: ignore[arg-type]
    return " ".join(capsys.readouterr().out.split())


def _notes(tmp_path: Path, frame: pd.DataFrame, features: list[dict[str, object]]) -> list[str]:
    """The data notes of a small model trained on ``frame`` (ids in ``customer_id``)."""
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    config = parse_config(
        {
            "data": {"path": str(path), "id_column": "customer_id"},
            "features": features,
            "model": {"name": "notes", "k_min": 2, "k_max": 3, "stability_bootstraps": 0},
        },
        base_dir=tmp_path,
    )
    return train(config, ModelStore(tmp_path / "store")).manifest.data.notes


def test_the_reason_is_shown_for_every_method_and_a_note_is_not_repeated(
    trained: tuple[ModelStore, TrainResult], capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = trained[1].manifest
    selection = manifest.selection
    assert selection.reason
    shown = _summary(manifest, capsys)
    assert f"selection ({selection.method}): {selection.reason}" in shown
    # an audit read the headline's stability (a mean against the fitted segments) and the
    # selection's (the lowest of its own refits) as one figure that disagreed with itself
    q = manifest.quality
    assert q.bootstraps > 0
    said = f"stability ARI {q.stability_ari:.3f} (mean of {q.bootstraps} bootstrap refits against"
    assert said in shown
    silhouette = manifest.model_copy(
        update={
            "selection": selection.model_copy(
                update={"method": "silhouette", "reason": "highest silhouette (0.412)"}
            )
        }
    )
    assert "selection (silhouette): highest silhouette (0.412)" in _summary(silhouette, capsys)
    text = "no candidate in k = 3..8 is stable; chose k=3, whose smallest segment is largest"
    fallback = manifest.model_copy(
        update={"selection": selection.model_copy(update={"note": text, "reason": text})}
    )
    assert _summary(fallback, capsys).count(text) == 1


def test_negative_values_under_log1p_are_noted(tmp_path: Path) -> None:
    """``log1p`` counts a negative value as 0 (a customer at -250 looks like one at 0): the
    job says how many there were, in the manifest's notes (and so the summary and report)."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(600)],
            "balance": np.r_[rng.gamma(2.0, 100.0, 590), np.full(10, -250.0)],
            "kept": np.r_[rng.gamma(2.0, 100.0, 590), np.full(10, -5.0)],
            # a customer who returned everything: a net of a rounding error below 0
            "net": np.r_[rng.gamma(2.0, 100.0, 599), [-5.329070518200751e-15]],
            # one, as a retail log's net spend had: "1 negative values"
            "one": np.r_[rng.gamma(2.0, 100.0, 599), [-3.0]],
        }
    )
    features: list[dict[str, object]] = [
        {"name": "balance", "transform": "log1p"},
        {"name": "kept", "transform": "log1p", "clip": [0, 10_000]},
        {"name": "net", "transform": "log1p"},
        {"name": "one", "transform": "log1p"},
    ]
    notes = [n for n in _notes(tmp_path, frame, features) if "log1p" in n]
    assert notes == [
        'balance: 10 negative values (the lowest -250) count as 0 under transform = "log1p"; '
        'to keep them apart, write transform = "none"',
        'one: 1 negative value (the lowest -3) counts as 0 under transform = "log1p"; '
        'to keep them apart, write transform = "none"',
    ]


def test_an_edited_name_is_shown_beside_the_generated_one(
    trained: tuple[ModelStore, TrainResult],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A name edited with ``PATCH /v1/segments/{id}`` is what the service gives (kept across
    retrains); the summary of ``segments train`` and ``models show`` shows it with the
    generated one (an outside try saw only the generated name after a retrain)."""
    from app.registry.overrides import SegmentOverrides, segment_names

    manifest = trained[1].manifest
    first = manifest.segments[0]
    folder = tmp_path / manifest.model_name
    SegmentOverrides(folder).update(first.id, {"name": "Loyal [core] holders"}, manifest)
    served = segment_names(manifest, folder)
    monkeypatch.setattr(common.out, "width", 400)  # one line per row: the cell unwrapped
    shown = _summary_with(manifest, served, capsys)
    assert f"Loyal [core] holders (edited; generated: {first.name})" in shown


def _summary_with(
    manifest: object, served: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> str:
    print_manifest_summary(manifest, None, served)  # type: ignore[arg-type]
    return " ".join(capsys.readouterr().out.split())


def test_categories_that_differ_only_in_case_or_spacing_are_noted(tmp_path: Path) -> None:
    """An audit's plan tier held 'pro', ' Pro ' and 'PRO' (12 categories for 3 tiers), and
    a segment '54% enterprise' was all enterprise: nothing said so."""
    rng = np.random.default_rng(5)
    spellings = ["pro", " Pro ", "PRO", "basic", "Basic", "enterprise"]
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(600)],
            "spend": rng.gamma(2.0, 100.0, 600),
            "plan": rng.choice(spellings, 600),
            "region": rng.choice(["north", "south"], 600),
        }
    )
    features: list[dict[str, object]] = [
        {"name": "spend"},
        {"name": "plan", "type": "categorical"},
        {"name": "region", "type": "categorical"},
    ]
    notes = _notes(tmp_path, frame, features)
    noted = [n for n in notes if "when case and spacing are ignored" in n]
    assert len(noted) == 1, notes
    assert noted[0].startswith("plan: 6 categories are 3 when case and spacing are ignored")


def test_a_heavily_skewed_feature_without_a_transform_is_noted(tmp_path: Path) -> None:
    """An audit's spend column (many zeros, a long tail) made a 0.8% segment of big spenders
    with the defaults; nothing suggested the transform that fixes it. A rare 0/1 flag is as
    skewed, but log1p leaves it so (a later audit was told to log a hotel's is_repeated_guest,
    whose 3% made a segment of their own): its note says what does help."""
    rng = np.random.default_rng(9)
    spend = np.where(rng.uniform(size=800) < 0.4, 0.0, rng.lognormal(4.0, 1.5, 800))
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(800)],
            "spend": spend,
            "logged": spend,
            "age": rng.normal(45, 12, 800),
            "is_repeated_guest": (rng.uniform(size=800) < 0.03).astype(int),
        }
    )
    features: list[dict[str, object]] = [
        {"name": "spend", "transform": "none"},  # (by default, "auto" logs it: see below)
        {"name": "logged", "transform": "log1p"},
        {"name": "age"},
        {"name": "is_repeated_guest"},
    ]
    notes = _notes(tmp_path, frame, features)
    skewed = [n for n in notes if "heavily skewed" in n]
    assert len(skewed) == 1 and skewed[0].startswith("spend: heavily skewed (skewness "), notes
    assert "zeros" in skewed[0] and 'consider transform = "log1p"' in skewed[0]
    share = frame["is_repeated_guest"].mean()
    flag = [n for n in notes if n.startswith("is_repeated_guest: ")]
    assert flag == [
        f"is_repeated_guest: {share:.0%} of customers hold 1 (the others 0): standardised, they "
        f"lie {((1 - share) / share) ** 0.5:.1f} sd from the rest and can make a segment of their "
        "own, which no transform changes; leave the feature out, or give them a rule "
        '(when = "is_repeated_guest == 1")'
    ], notes


def test_a_flag_few_customers_hold_never_reads_as_held_by_none(tmp_path: Path) -> None:
    """An audit's SaaS table had an ``api_version`` of 2 for 10 of 5,000 accounts (0.2%): the
    note said "0% of customers hold 2", a share that no one holds and that makes a segment."""
    rng = np.random.default_rng(5)
    n = 5000
    version = np.full(n, 3)
    version[rng.choice(n, 10, replace=False)] = 2
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "spend": rng.normal(100, 20, n),
            "api_version": version,
        }
    )
    notes = _notes(tmp_path, frame, [{"name": "spend"}, {"name": "api_version"}])
    flag = [n for n in notes if n.startswith("api_version: ")]
    assert len(flag) == 1 and flag[0].startswith(
        "api_version: 0.2% of customers hold 2 (the others 3): standardised, they lie 22.3 sd"
    ), notes


def test_a_share_reads_as_whole_percents_but_never_as_none_or_all() -> None:
    from app.words import percent

    assert [percent(s) for s in (0.0, 0.002, 0.0005, 0.05, 0.5, 0.996, 0.99999, 1.0)] == [
        "0%", "0.2%", "0.05%", "5%", "50%", "99.6%", ">99.9%", "100%",
    ]  # fmt: skip


def test_a_single_valued_feature_is_noted(tmp_path: Path) -> None:
    """An outside tester's ``region`` (always "global") trained without a word, though the
    docs say a constant column adds nothing; a numeric one too. A feature whose only value
    stands beside missing ones (a categorical's missing category) says what it tells."""
    rng = np.random.default_rng(11)
    n = 600
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "spend": rng.normal(100, 20, n),
            "region": ["global"] * n,
            "seats": np.r_[np.full(n - 5, 4.0), np.full(5, np.nan)],
            "flag": np.where(np.arange(n) % 10 < 3, "yes", None),
            "plan": rng.choice(["a", "b"], n),
        }
    )
    features: list[dict[str, object]] = [
        {"name": "spend"},
        {"name": "region", "type": "categorical"},
        {"name": "seats"},
        {"name": "flag", "type": "categorical"},
        {"name": "plan", "type": "categorical"},
    ]
    notes = [n for n in _notes(tmp_path, frame, features) if "one value" in n]
    assert notes == [
        "region: one value ('global') for every customer: it adds nothing to the segments; drop it",
        "seats: one value (4) for every customer with one (5 missing, imputed as the same): it "
        "adds nothing to the segments; drop it",
        "flag: one value ('yes') besides 420 missing (70%): it tells "
        "only the customers with a value from those without; drop it unless that is meant",
    ]
    report = next((tmp_path / "store" / "notes").glob("*/report.html")).read_text()
    assert "region: one value (&#x27;global&#x27;) for every customer" in report


def test_a_mostly_missing_feature_is_noted(tmp_path: Path) -> None:
    """An outside tester's ``nps_score`` (90% missing) was noted only as "5,409 missing
    values, imputed (median)": the median stood for nine customers in ten. Above half
    missing, the note says the share; at 40% it says nothing more."""
    rng = np.random.default_rng(12)
    n = 600
    score = rng.normal(30, 10, n)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "spend": rng.normal(100, 20, n),
            "nps_score": np.where(np.arange(n) % 10 < 9, np.nan, score),
            "usage": np.where(np.arange(n) % 10 < 4, np.nan, score),
            "channel": np.where(np.arange(n) % 5 < 3, None, rng.choice(["web", "shop"], n)),
        }
    )
    features: list[dict[str, object]] = [
        {"name": "spend"},
        {"name": "nps_score"},
        {"name": "usage"},
        {"name": "channel", "type": "categorical"},
    ]
    notes = [n for n in _notes(tmp_path, frame, features) if "have no value" in n]
    assert notes == [
        "nps_score: 90% of the customers have no value (540 of 600): the imputed value (median) "
        "stands for most of them and dominates the feature; consider dropping it, another "
        "impute, or a rule segment for them (when = 'nps_score is missing')",
        "channel: 60% of the customers have no value (360 of 600): the missing category stands "
        "for most of them and dominates the feature; consider dropping it, or a rule segment "
        "for them (when = 'channel is missing')",
    ]


def test_segments_without_structure_are_noted_and_clear_groups_are_not(tmp_path: Path) -> None:
    """Eight independent features hold no groups: the silhouette is far below the report's
    0.25 of usable structure, and the job says the segments are bands, not groups; three
    clear blobs get no such note."""
    rng = np.random.default_rng(5)
    n = 1_500
    flat = pd.DataFrame(rng.normal(size=(n, 8)), columns=[f"f{i}" for i in range(8)])
    flat.insert(0, "customer_id", [f"c{i}" for i in range(n)])
    features: list[dict[str, object]] = [{"name": f"f{i}"} for i in range(8)]
    (tmp_path / "flat").mkdir()
    (tmp_path / "blobs").mkdir()
    notes = [n for n in _notes(tmp_path / "flat", flat, features) if "usable structure" in n]
    assert len(notes) == 1 and "bands cut through them" in notes[0], notes
    centres = rng.choice(3, n)
    blobs = flat.copy()
    blobs[["f0", "f1"]] = np.array([[0, 0], [8, 0], [0, 8]])[centres] + rng.normal(size=(n, 2))
    blob_features: list[dict[str, object]] = [{"name": "f0"}, {"name": "f1"}]
    notes = _notes(tmp_path / "blobs", blobs, blob_features)
    assert not [n for n in notes if "usable structure" in n], notes


def test_effects_the_outcomes_shaped_are_said_to_be_optimistic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An audit's tree, grown on a hotel's cancellation flag that was pure noise, printed
    "segments differ ... p=0.0009" and nothing else: the report alone said such effects are
    measured on the customers the tree was fitted to. The summary says so, with the held-out
    effect size to judge by (and, below a small effect, that the leaves barely separate the
    target: "segments differ" alone was read as a finding); segments of plain clusters get
    no such note."""
    rng = np.random.default_rng(12)
    n = 1500
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "nights": rng.integers(1, 15, n),
            "price": rng.lognormal(5, 0.6, n),
            "cancelled": rng.choice(["TRUE", "FALSE"], n, p=[0.2, 0.8]),
        }
    )
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    raw: dict[str, object] = {
        "outcomes": ["cancelled"],
        "data": {"path": str(path)},
        "features": [{"name": "nights"}, {"name": "price", "transform": "log1p"}],
        "model": {"algorithm": "tree", "target": "cancelled", "k_min": 3, "k_max": 5},
    }
    manifest = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "t")).manifest
    point = next(p for p in manifest.selection.curve if p.k == manifest.selection.chosen_k)
    shown = _summary(manifest, capsys)
    assert (
        "note: the leaves were grown to separate 'cancelled': its test above is measured on "
        "the customers they were fitted to, so its p-value and effect size are optimistic; "
        f"its effect size on held-out halves, {point.effects['cancelled']:.3f}, is the one to "
        "judge it by, and it is below a small effect (0.1): on customers they were not grown "
        "on, the leaves barely separate it"
    ) in " ".join(shown.split()), shown
    raw["model"] = {"k_min": 3, "k_max": 3, "selection": "silhouette"}
    plain = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "k")).manifest
    assert "optimistic" not in _summary(plain, capsys)
    chosen = plain.selection.model_copy(update={"chosen_algorithm": "kmeans outcome-weighted"})
    weighted = plain.model_copy(update={"selection": chosen})
    assert (
        "note: the outcomes weighted the features the segments were formed in: the effects "
        "above are measured on the customers they were fitted to, so they are optimistic"
    ) in _summary(weighted, capsys)


def test_a_skewed_feature_with_many_negatives_is_noted_and_recorded_as_none(
    tmp_path: Path,
) -> None:
    """A net spend with 5% refunders is not logged by ``transform = "auto"`` (log1p would
    count the refunds as 0), and an amount owed written negative is skewed the other way:
    either made a 0.1% segment of its extremes, and the summary said nothing of them; when no
    feature was logged, the version even recorded ``auto`` where the docs promise what it
    resolved to."""
    rng = np.random.default_rng(2)
    n = 2_000
    refund = rng.uniform(size=n) < 0.05
    net = np.where(refund, -rng.lognormal(3.0, 1.0, n), rng.lognormal(5.0, 1.5, n))
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "net_spend": net,
            "owed": -rng.lognormal(5.0, 1.5, n),
            "age": rng.normal(45, 12, n),
        }
    )
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    config = parse_config(
        {
            "data": {"path": str(path), "id_column": "customer_id"},
            "features": [{"name": "net_spend"}, {"name": "owed"}, {"name": "age"}],
            "model": {"name": "net", "k_min": 2, "k_max": 3, "stability_bootstraps": 0},
        },
        base_dir=tmp_path,
    )
    m = train(config, ModelStore(tmp_path / "store")).manifest
    assert [f.transform for f in m.features] == ["none", "none", "none"]
    assert [f["transform"] for f in m.config["features"]] == ["none", "none", "none"]
    skewed = {n.split(":")[0]: n for n in m.data.notes if "heavily skewed" in n}
    assert sorted(skewed) == ["net_spend", "owed"], m.data.notes
    assert re.search(r"skewness \d+\.\d, 5% negative\): its largest values", skewed["net_spend"])
    assert re.search(r"skewness -\d+\.\d, 100% negative\): its most negative", skewed["owed"])
    assert "log1p would count its negatives as 0" in skewed["owed"]


def test_skewed_features_are_logged_by_default_and_the_version_keeps_it(tmp_path: Path) -> None:
    """A card table's purchases and cash advances (many zeros, long tails), untransformed by
    a config written from the README, made one 80% segment of "typical customers" and a
    k-means of the plain script's quality: ``transform = "auto"`` (the default) logs a
    heavily skewed feature, says so, and the version records and serves the log."""
    rng = np.random.default_rng(4)
    n = 1_200
    spend = np.where(rng.uniform(size=n) < 0.4, 0.0, rng.lognormal(5.0, 1.3, n))
    income = rng.normal(50_000, 15_000, n).clip(2_000)
    income[0] = 666_666  # one outlier: skewed overall, symmetric within its percentiles
    balance = rng.lognormal(6.0, 1.2, n) * np.where(rng.uniform(size=n) < 0.05, -1, 1)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "spend": spend,
            "income": income,
            "balance": balance,  # 5% negative: no tail to log
            "kept": rng.lognormal(5.0, 1.3, n),
        }
    )
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    features: list[dict[str, object]] = [
        {"name": "spend"},
        {"name": "income"},
        {"name": "balance"},
        {"name": "kept", "transform": "none"},
    ]
    config = parse_config(
        {
            "data": {"path": str(path), "id_column": "customer_id"},
            "features": features,
            "model": {"name": "auto", "k_min": 2, "k_max": 4, "stability_bootstraps": 0},
        },
        base_dir=tmp_path,
    )
    store = ModelStore(tmp_path / "store")
    m = train(config, store).manifest
    transforms = {f.name: f.transform for f in m.features}
    assert transforms == {"spend": "log1p", "income": "none", "balance": "none", "kept": "none"}
    assert [f["transform"] for f in m.config["features"]] == ["log1p", "none", "none", "none"]
    logged = [n for n in m.data.notes if n.startswith("log1p-transformed")]
    assert len(logged) == 1 and re.search(r": spend \(skewness \d+\.\d, \d+% zeros\)$", logged[0])
    assert 'transform = "auto", the default' in logged[0] and "income" not in logged[0]
    # the explicit "none" keeps its advice
    assert any(n.startswith("kept: heavily skewed") for n in m.data.notes), m.data.notes
    # the served model applies the log: it assigns the training rows as training did
    model = store.load("auto", m.version).estimator
    x = frame.set_index("customer_id")
    logged_matrix = model.pipeline[:-1].transform(x)
    spend_column = list(transforms).index("spend")
    expected = np.log1p(spend)
    assert np.corrcoef(logged_matrix[:, spend_column], expected)[0, 1] > 0.999


def test_an_outcome_line_writes_a_tiny_p_value_as_a_bound() -> None:
    """The customer-personality table's Response read "(chi-square, p=0.0000)", a p of
    exactly 0 to a reader; below 0.0001 it is written as that bound, other p-values as
    before."""
    from app.cli.common import outcome_line
    from app.registry.manifest import OutcomeTest

    test = OutcomeTest(
        name="Response",
        kind="binary",
        test="chi-square",
        statistic=129.0,
        p_value=3.2e-27,
        significant=True,
        effect_size=0.24,
        effect_measure="Cramér's V",
        segment_min=0.0534,
        segment_max=0.297,
        overall_mean=0.149,
    )
    assert outcome_line(test).endswith("segment means 0.0534 to 0.297 (chi-square, p < 0.0001)")
    assert outcome_line(test.model_copy(update={"p_value": 0.7334})).endswith("p=0.7334)")
