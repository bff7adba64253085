"""Convergence flags: segments with close centres or outcomes that do not differ."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.drift.reference import convergence
from app.registry.manifest import NumericProfile, SegmentInfo
from tests.conftest import example_config


def _segment(sid: str, *z: float) -> SegmentInfo:
    numeric = {f"f{i}": NumericProfile(mean=0.0, median=0.0, z=v) for i, v in enumerate(z)}
    return SegmentInfo(
        id=sid, name=sid, kind="cluster", description="", size=100, share=0.25, numeric=numeric
    )


def test_close_centres_are_flagged_and_distinct_ones_not() -> None:
    segments = [_segment("a", 1.0, -1.0), _segment("b", 1.1, -0.9), _segment("c", -1.0, 1.0)]
    pairs = convergence(segments)
    assert [(p.segments, p.reasons) for p in pairs] == [(("a", "b"), ["close_centres"])]
    assert pairs[0].distance < 0.25


def test_close_centres_whose_outcome_differs_are_no_converging_pair() -> None:
    """An e-commerce table's "Lapsed" and "Very lapsed" segments were 0.94 sd apart on days
    since the last order, 0.22 as the root mean square over 24 dimensions (most of them
    categories near the population), and at 29% and 68% churn: flagged close_centres, with
    the advice to merge them. Where an outcome differs the pair is not converging; close
    centres whose outcomes do not differ, or without outcomes, still are."""
    rng = np.random.default_rng(1)
    flat = [0.05] * 23
    segments = [_segment("a", 0.29, *flat), _segment("b", 1.23, *flat), _segment("c", 1.2, *flat)]
    labels = np.array(["a"] * 400 + ["b"] * 400 + ["c"] * 400, dtype=object)
    churn = np.r_[rng.random(400) < 0.29, rng.random(400) < 0.68, rng.random(400) < 0.68]
    pairs = convergence(segments, labels, pd.DataFrame({"churned": churn.astype(float)}))
    assert [(p.segments, p.reasons) for p in pairs] == [
        (("b", "c"), ["close_centres", "same_outcomes"])
    ]
    # without outcomes, the centres alone decide
    close = [(p.segments, p.reasons) for p in convergence(segments)]
    assert close == [(("a", "b"), ["close_centres"]), (("a", "c"), ["close_centres"]),
                     (("b", "c"), ["close_centres"])]  # fmt: skip


def test_segments_whose_outcomes_do_not_differ_are_flagged() -> None:
    rng = np.random.default_rng(0)
    labels = np.array(["a"] * 500 + ["b"] * 500 + ["c"] * 500, dtype=object)
    ltv = np.concatenate(
        [rng.normal(100, 10, 500), rng.normal(100, 10, 500), rng.normal(300, 10, 500)]
    )
    outcomes = pd.DataFrame({"ltv": ltv})
    segments = [_segment("a", 1.0), _segment("b", -1.0), _segment("c", 0.0)]
    pairs = convergence(segments, labels, outcomes)
    assert [(p.segments, p.reasons) for p in pairs] == [(("a", "b"), ["same_outcomes"])]


def test_an_outcome_of_one_value_for_every_customer_flags_no_pair() -> None:
    """A log that ended before its 90-day window: every customer's future_orders was 0, and
    every pair of segments was flagged converging, "same_outcomes", with advice to merge them.
    An outcome that is one value for everyone says nothing; one that varies still counts, and
    two segments both at 0 of it are the same on it."""
    labels = np.array(["a"] * 100 + ["b"] * 100 + ["c"] * 100, dtype=object)
    segments = [_segment("a", 1.0), _segment("b", -1.0), _segment("c", 0.0)]
    nothing = pd.DataFrame({"future_orders": np.zeros(300), "repurchased": np.zeros(300)})
    assert convergence(segments, labels, nothing) == []
    rng = np.random.default_rng(3)
    varied = nothing.assign(repurchased=np.r_[np.zeros(200), rng.integers(0, 2, 100)])
    pairs = convergence(segments, labels, varied)
    assert [(p.segments, p.reasons) for p in pairs] == [(("a", "b"), ["same_outcomes"])]


def test_an_all_but_constant_outcome_is_compared_without_a_warning() -> None:
    """A segment whose outcome is constant and another all but constant: scipy warns of
    precision loss (the suite turns warnings into errors; a user saw it in the terminal)."""
    labels = np.array(["a"] * 50 + ["b"] * 50, dtype=object)
    spend = np.r_[np.full(50, 1e6), np.full(49, 1e6), 1e6 + 1e-9]
    segments = [_segment("a", 1.0), _segment("b", -1.0)]
    pairs = convergence(segments, labels, pd.DataFrame({"spend": spend}))
    assert [(p.segments, p.reasons) for p in pairs] in ([], [(("a", "b"), ["same_outcomes"])])


def test_a_trained_version_keeps_its_reference_and_no_false_flags(trained: Any) -> None:
    _, result = trained
    manifest = result.manifest
    ref = manifest.drift_reference
    assert ref is not None
    assert ref.segment_shares == {s.id: s.share for s in manifest.segments}
    for f in ref.features:
        assert abs(sum(f.shares) - 1) < 1e-6
        if f.type == "numeric":
            assert f.edges == sorted(f.edges or []) and len(f.shares) == len(f.edges or []) + 2
    assert manifest.convergence == []  # the planted segments are distinct
    assert not any("converging" in s.flags for s in manifest.segments)


def test_splitting_planted_segments_is_flagged_in_manifest_and_report(
    customers_csv: Path, train_into: Any
) -> None:
    # five planted segments cut into eight: some halves are the same customers' kind
    config = example_config(
        "customers", customers_csv, k_min=8, k_max=8, min_share=0.01, stability_bootstraps=0
    )
    result = train_into(config, promote=False)
    manifest = result.manifest
    assert manifest.convergence, "an over-split model has converging pairs"
    assert any(p.distance < 0.25 and "close_centres" in p.reasons for p in manifest.convergence)
    for pair in manifest.convergence:
        assert set(pair.reasons) <= {"close_centres", "same_outcomes"} and pair.reasons
        for sid in pair.segments:
            assert "converging" in manifest.segment(sid).flags  # type: ignore[union-attr]
    stored = train_into.store.manifest("customers", manifest.version)
    assert stored.convergence == manifest.convergence
    folder = train_into.store.version_dir("customers", manifest.version)
    assert "converging" in (folder / "report.html").read_text()


# a pair's reasons as the summary says them (it printed the manifest's codes, "same_outcomes;
# profile distance 0.823", which a marketer reading it could not act on)
SAME = "no outcome differs between them; centres "


def _train_converging(tmp_path: Path, model: str, rules: str = "") -> str:
    """`segments train`'s output on three planted groups whose churn does not differ (every
    pair converges: same outcomes), with ``model`` as the [model] table's keys (chosen by
    silhouette) and ``rules``."""
    from typer.testing import CliRunner

    from app.cli.main import app

    rng = np.random.default_rng(4)
    n = 600
    group = np.arange(n) % 3
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "spend": np.array([10.0, 50.0, 90.0])[group] + rng.normal(0, 3, n),
            "visits": np.array([1.0, 8.0, 4.0])[group] + rng.normal(0, 0.5, n),
            "churned": (np.arange(n) // 3) % 2,  # half of every group
        }
    )
    frame.to_csv(tmp_path / "customers.csv", index=False)
    config = tmp_path / "config.toml"
    config.write_text(
        'outcomes = ["churned"]\n[data]\npath = "customers.csv"\n[[features]]\nname = "spend"\n'
        f'[[features]]\nname = "visits"\n{rules}[model]\nselection = "silhouette"\n'
        f"stability_bootstraps = 0\n{model}\n"
    )
    store = tmp_path / "stores" / str(len(list(tmp_path.glob("stores/*"))))
    result = CliRunner().invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_the_advice_on_converging_segments_is_one_that_can_be_followed(tmp_path: Path) -> None:
    """The docs said a lower k_max is usually the fix, to a tester whose k was already k_min:
    at k_min the advice is a lower k_min; at 2, the fewest, neither; above k_min, k_max."""
    at_min = _train_converging(tmp_path, "k_min = 3\nk_max = 3")
    assert f"converging: seg-001 and seg-002 ({SAME}" in at_min
    assert (
        "converging: k = 3 is already k_min, the fewest segments the selection may choose (a "
        "lower k_max cannot merge them): k_min = 2 lets it consider fewer; or act on each pair "
        "as one" in at_min
    )
    assert "k_max = 2" not in at_min
    fewest = _train_converging(tmp_path, "k_min = 2\nk_max = 2")
    assert f"converging: seg-001 and seg-002 ({SAME}" in fewest
    assert (
        "converging: k = 2 is the fewest segments a model fits: no setting merges them; act on "
        "each pair as one, or keep both where their profiles differ enough to matter" in fewest
    )
    above = _train_converging(tmp_path, "k_min = 2\nk_max = 3")
    assert (
        "converging: fewer segments may merge them: k = 3 was chosen among 2..3, and k_max = 2 "
        "makes the selection choose fewer; or act on each pair as one" in above
    )
    # a rule segment is not merged by any k: its rule is what to change
    rule = "[[rules]]\nname = 'big'\nwhen = 'spend > 80'\n"
    ruled = _train_converging(tmp_path, "k_min = 2\nk_max = 2", rule)
    assert f"converging: seg-001 and seg-002 ({SAME}" in ruled
    assert (
        "; seg-001: a rule segment, kept whatever k is; change its rule if its customers are "
        "like those of the segment beside it" in ruled
    )


def test_the_summary_lists_a_few_converging_pairs_and_counts_the_rest(tmp_path: Path) -> None:
    """An audit's six hotel segments, whose one outcome was noise, printed thirteen
    "converging:" lines before the advice; the summary lists five and counts the rest."""
    shown = _train_converging(tmp_path, "k_min = 6\nk_max = 6")
    store = next((tmp_path / "stores").glob("*"))
    manifest = json.loads(next(store.glob("*/*/manifest.json")).read_text())
    pairs = len(manifest["convergence"])
    assert pairs > 5, manifest["convergence"]
    assert shown.count(f"({SAME}") + shown.count("(centres ") == 5, shown
    more = pairs - 5
    assert f"converging: and {more} more pair{'s' if more > 1 else ''} (every pair: " in shown


def test_slot_numbers_as_a_categorical_pair_as_the_ids_themselves() -> None:
    """The job hands each row's segment as a categorical over the slots' ids (its rows'
    slot numbers compared, not a million strings): the same pairs as the ids written out."""
    rng = np.random.default_rng(5)
    ids = ["seg-3", "seg-1", "seg-7", "seg-4"]
    slots = rng.integers(0, 4, 4_000)
    outcomes = pd.DataFrame(
        {
            "churned": (rng.random(4_000) < np.array([0.2, 0.2, 0.6, 0.2])[slots]).astype(float),
            "ltv": np.where(rng.random(4_000) < 0.05, np.nan, rng.normal(100, 10, 4_000)),
        }
    )
    segments = [_segment(sid, 0.1 * i, 0.05) for i, sid in enumerate(ids)]
    written = np.asarray(ids, dtype=str)[slots]
    categorical = pd.Categorical.from_codes(slots, categories=pd.Index(ids))
    expected = convergence(segments, written, outcomes)
    assert any("same_outcomes" in p.reasons for p in expected)  # the outcomes were compared
    assert convergence(segments, categorical, outcomes) == expected


def test_the_summary_says_why_a_pair_converges_in_words() -> None:
    """Each reason is said, never its manifest code, with the distance in its unit."""
    from app.cli.drift import pair_reasons
    from app.registry.manifest import ConvergencePair

    both = ConvergencePair(
        segments=("seg-001", "seg-002"), distance=0.1234, reasons=["close_centres", "same_outcomes"]
    )
    assert pair_reasons(both) == (
        "no outcome differs between them; centres 0.12 sd apart, under 0.25, root mean square "
        "over the features"
    )
    far = ConvergencePair(
        segments=("seg-001", "seg-003"), distance=0.823, reasons=["same_outcomes"]
    )
    assert pair_reasons(far) == (
        "no outcome differs between them; centres 0.82 sd apart, root mean square over the features"
    )


def test_a_close_pair_just_under_the_bound_is_not_said_at_it() -> None:
    """A pair 0.2496 sd apart, close under 0.25, read "centres 0.25 sd apart, under 0.25":
    the distance is cut, not rounded, to two decimals where it is under the bound."""
    from app.cli.drift import pair_reasons
    from app.registry.manifest import ConvergencePair

    pair = ConvergencePair(
        segments=("seg-001", "seg-002"), distance=0.2496, reasons=["close_centres"]
    )
    assert pair_reasons(pair) == (
        "centres 0.24 sd apart, under 0.25, root mean square over the features"
    )
