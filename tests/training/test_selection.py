"""Choosing segments by what matters: effect sizes, and selection by outcome separation."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from app.registry.manifest import Manifest, SelectionPoint
from app.registry.store import ModelStore
from app.serving.compiled import CompiledAssigner
from app.training.config import parse_config
from app.training.effects import outcome_effect
from app.training.job import train
from app.training.report import render_report
from app.training.selection import _choose, capped_k_max, chosen_by_outcomes, select_k


def blobs_and_outcome(n: int = 1_500, seed: int = 1) -> pd.DataFrame:
    """Three clear blobs on two features that do not drive the outcome; ``bought`` rises
    with ``engagement``, a smooth feature without clusters."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, n)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    xy = centres[group] + rng.normal(0, 0.6, (n, 2))
    engagement = rng.normal(0, 1, n)
    bought = rng.uniform(size=n) < 1 / (1 + np.exp(-(2.5 * engagement - 1)))
    return pd.DataFrame(
        {
            "customer_id": [f"b{i}" for i in range(n)],
            "a": xy[:, 0],
            "b": xy[:, 1],
            "engagement": engagement,
            "bought": np.where(bought, "yes", "no"),
            "value": 100 + 40 * engagement + rng.normal(0, 5, n),
        }
    )


def config(data: Path, **model: object) -> dict[str, object]:
    return {
        "data": {"path": str(data)},
        "outcomes": ["bought", "value"],
        "features": [{"name": "a"}, {"name": "b"}, {"name": "engagement"}],
        "model": {"k_min": 3, "k_max": 5, "selection_bootstraps": 2, **model},
    }


def segment_v(store: ModelStore, version: str, frame: pd.DataFrame) -> float:
    ids = store.load("customers", version).estimator.predict(frame.set_index("customer_id"))
    size = outcome_effect((frame["bought"] == "yes").to_numpy(float), pd.factorize(ids)[0]).size
    assert size is not None
    return size


def test_outcome_selection_separates_the_outcome_better_than_silhouette(tmp_path: Path) -> None:
    frame = blobs_and_outcome()
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    store = ModelStore(tmp_path / "store")
    raw = config(data, selection="silhouette", k_max=8)
    by_silhouette = train(parse_config(raw, base_dir=tmp_path), store)
    default = train(parse_config(config(data, k_max=8), base_dir=tmp_path), store)
    m = default.manifest
    # with outcomes declared, the default is balanced, and it says why its winner won
    assert (
        m.selection.method == "balanced" and m.selection.reason and chosen_by_outcomes(m.selection)
    )
    assert by_silhouette.manifest.selection.method == "silhouette"
    assert by_silhouette.manifest.k == 3  # the blobs
    chosen = next(
        p for p in m.selection.curve if (p.k, p.algorithm) == (m.k, m.selection.chosen_algorithm)
    )
    assert chosen.admissible and chosen.stability is not None and chosen.stability >= 0.8
    # its stability is named for what it is (not the headline's mean against the model)
    said = f"stability {chosen.stability:.2f}: the lowest ARI of the selection's refits"
    assert said in m.selection.reason
    assert set(chosen.effects) == {"bought", "value"} and chosen.score is not None
    assert all(p.score is None or p.score <= chosen.score + 0.02 for p in m.selection.curve)
    v_default = segment_v(store, m.version, frame)
    v_silhouette = segment_v(store, by_silhouette.manifest.version, frame)
    assert v_default >= 1.2 * v_silhouette
    page = render_report(m, np.zeros((0, 2)), [])
    assert "Candidates (balanced)" in page and "separation" in page


def test_effect_sizes_in_the_manifest_and_the_outcome_table(tmp_path: Path) -> None:
    frame = blobs_and_outcome(600)
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    raw = config(data, selection="silhouette", stability_bootstraps=0)
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    bought, value = m.outcomes
    assert (bought.kind, bought.effect_measure, bought.positive) == ("binary", "Cramér's V", "yes")
    assert (value.kind, value.effect_measure) == ("numeric", "epsilon²")
    assert bought.effect_size is not None and 0.0 <= bought.effect_size <= 1.0
    means = [s.outcomes["bought"] for s in m.segments]
    assert bought.segment_min == min(means) and bought.segment_max == max(means)  # type: ignore[type-var]
    page = render_report(m, np.zeros((0, 2)), [])
    assert "Cramér&#x27;s V" in page or "Cramér's V" in page
    assert "epsilon²" in page


def test_effect_sizes_match_their_definitions() -> None:
    groups = np.repeat([0, 1, 2], 100)
    outcome = np.concatenate([np.zeros(100), np.ones(100), np.r_[np.zeros(50), np.ones(50)]])
    # chi-square of this 3x2 table (expected 50 per cell) is 4 x 50 = 200: V = sqrt(200 / 300)
    assert outcome_effect(outcome, groups).size == pytest.approx(np.sqrt(200 / 300))
    assert outcome_effect(np.ones(300), groups).size is None
    numeric = groups.astype(float) * 10 + np.tile(np.arange(100) / 100, 3)
    # epsilon² = H / (n - 1): the share of the ranks' variance between segments (eta² of ranks)
    ranks = numeric.argsort().argsort() + 1.0
    means = np.array([ranks[groups == g].mean() for g in range(3)])
    between = (100 * (means - ranks.mean()) ** 2).sum() / ((ranks - ranks.mean()) ** 2).sum()
    assert outcome_effect(numeric, groups).size == pytest.approx(between)


def test_without_outcomes_the_default_stays_silhouette(tmp_path: Path) -> None:
    frame = blobs_and_outcome(600)
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    raw = config(data, stability_bootstraps=0)
    raw["outcomes"] = []
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    assert m.selection.method == "silhouette" and m.k == 3
    assert all(p.score is None and p.stability is None for p in m.selection.curve)


@pytest.mark.parametrize("selection", ["outcome", "balanced"])
def test_a_selection_by_outcomes_without_any_is_refused(tmp_path: Path, selection: str) -> None:
    """An audit's config asked for ``selection = "outcome"`` and declared no outcome: the job
    chose by silhouette without a word."""
    from app.errors import ConfigError

    raw = config(tmp_path / "data.csv", selection=selection)
    raw["outcomes"] = []
    with pytest.raises(ConfigError, match=f"selection = '{selection}' chooses by the outcomes"):
        parse_config(raw, base_dir=tmp_path)
    raw["model"]["selection"] = "silhouette"
    parse_config(raw, base_dir=tmp_path)  # the same config choosing by silhouette is fine


def test_candidates_across_algorithms(tmp_path: Path) -> None:
    frame = blobs_and_outcome(800)
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    raw = config(data, algorithms=["kmeans", "gmm"], stability_bootstraps=0)
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    # each algorithm, in the declared space and in the outcome-weighted one
    assert {(p.algorithm, p.k) for p in m.selection.curve} == {
        (f"{a}{space}", k)
        for a in ("kmeans", "gmm")
        for space in ("", " outcome-weighted")
        for k in (3, 4, 5)
    }
    assert m.selection.chosen_algorithm is not None
    assert m.selection.chosen_algorithm.removesuffix(" outcome-weighted") == m.algorithm


def test_features_that_carry_the_outcome_lead_the_weighted_space(tmp_path: Path) -> None:
    """Blobs on ``a`` and ``b`` that do not drive the outcome: the weighted candidate wins,
    weighs ``engagement`` most, and the served model (pipeline and compiled) applies it."""
    frame = blobs_and_outcome(6_000, seed=3)
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    store = ModelStore(tmp_path / "s")
    m = train(parse_config(config(data), base_dir=tmp_path), store).manifest
    assert m.selection.chosen_algorithm == "kmeans outcome-weighted", m.selection.reason
    assert m.quality.stability_ari is not None and m.quality.stability_ari >= 0.9
    # its silhouette is its own space's; on the features as declared the customers form
    # blobs these segments cut across, and the job says so (a tester read 0.506 as strong)
    assert m.quality.silhouette is not None and m.quality.silhouette > 0.25
    weak = [n for n in m.data.notes if "on the features as declared" in n]
    assert len(weak) == 1 and "outcome-weighted space" in weak[0], m.data.notes
    model = store.load("customers", m.version).estimator
    weights = model.pipeline.named_steps["weight"].weights
    assert weights.argmax() == 2 and weights.max() == 1.0  # a, b, engagement
    assert weights[:2].max() < 0.2
    rows = frame[["a", "b", "engagement"]]
    expected = model.pipeline.predict(rows)
    assigner = CompiledAssigner(model)
    records = rows.to_dict("records")
    slots, _ = assigner.assign_slots(records)
    assert slots == expected.tolist()
    assert [assigner.assign_one(r).slot for r in records[:300]] == expected[:300].tolist()


def test_a_manifest_written_before_these_fields_still_loads(tmp_path: Path) -> None:
    frame = blobs_and_outcome(400)
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    raw = config(data, stability_bootstraps=0, selection_bootstraps=0)
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    old = json.loads(m.model_dump_json())
    for key in ("dropped_reasons", "missing_cells", "text_as_missing", "notes"):
        del old["data"][key]
    for key in ("method", "chosen_algorithm", "reason"):
        del old["selection"][key]
    for point in old["selection"]["curve"]:
        for key in ("algorithm", "stability", "effects", "separation", "score"):
            del point[key]
    for test in old["outcomes"]:
        for key in ("positive", "effect_size", "effect_measure", "segment_min", "segment_max"):
            del test[key]
    loaded = Manifest.model_validate(old)
    assert loaded.outcomes[0].effect_size is None and loaded.selection.method == "silhouette"
    from app.cli.common import outcome_line

    assert outcome_line(loaded.outcomes[0]).startswith("outcome bought (1 = '1'): segments")
    render_report(loaded, np.zeros((0, 2)), [])


def test_silhouettes_of_many_labelings_equal_scikit_learns() -> None:
    from sklearn.metrics import silhouette_score

    from app.training.selection import _silhouettes

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1_100, 6))
    labelings = [rng.integers(0, k, len(x)) for k in (2, 3, 7)]
    labelings.append(np.r_[np.zeros(len(x) - 1, dtype=int), [1]])  # a singleton cluster
    want = [silhouette_score(x, labels) for labels in labelings]
    assert _silhouettes(x, labelings, block=100) == pytest.approx(want, abs=1e-12)
    assert _silhouettes(x, [np.zeros(len(x), dtype=int)]) == [-1.0]


@pytest.mark.parametrize("method", ["silhouette", "balanced"])
def test_the_note_when_no_candidate_is_admissible_reads_plainly(method: str) -> None:
    """It said "gives every segment segment 5%" (an audit's summary)."""
    curve = [
        SelectionPoint(k=k, silhouette=0.3, min_share=share, admissible=False)
        for k, share in ((3, 0.04), (4, 0.02))
    ]
    chosen, note, _ = _choose(curve, method, 3, 4, 0.05)
    assert chosen.k == 3 and note is not None
    assert "segment segment" not in note
    assert "every segment 5% of customers" in note
    # and how small that largest smallest segment is (a 265-customer retail week's said
    # only "whose smallest segment is largest": 8 customers, 3%)
    assert "chose k=3, whose smallest segment is largest: 4% of customers" in note, note


def test_an_outcome_no_candidate_separates_leaves_the_choice_to_the_others() -> None:
    """Every candidate's effect on the outcome is 0: the mean of no ratios warned ("Mean of
    empty slice") and made every score NaN; the choice falls back to the fewest segments."""
    curve = [
        SelectionPoint(
            k=k, silhouette=0.4, min_share=0.2, admissible=True, stability=1.0, effects={"y": 0.0}
        )
        for k in (3, 4)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chosen, note, _ = _choose(curve, "balanced", 3, 4, 0.05)
    assert chosen.k == 3 and note is None
    assert chosen.separation == 0.0


def test_outcome_weights_judge_collinear_columns_on_their_own() -> None:
    """A subscription table: revenue is seats times the plan's price (no effect of its own),
    churn follows usage, renewal and tenure. One regularised model of all the columns gave
    revenue the largest weight (offset by the seats' and the plan's coefficients) and the
    drivers a third of it; each column's own correlation puts the drivers first."""
    from app.training.selection import outcome_weights

    rng = np.random.default_rng(11)
    n = 6_000
    plan = rng.choice(4, n, p=[0.4, 0.33, 0.2, 0.07])
    seats = np.log1p(
        np.maximum(1, np.round(rng.lognormal(np.array([0.7, 2, 3.2, 4.5])[plan], 0.5)))
    )
    revenue = seats + np.log(np.array([12, 25, 45, 80])[plan] * (1 - rng.uniform(0, 0.3, n)))
    usage = np.clip(rng.beta(2, 3, n) + 0.15 * (plan == 3), 0, 1)
    renews = (rng.random(n) < 0.6).astype(float)
    tenure = rng.integers(10, 1800, n).astype(float)
    logit = -1.0 - 2.2 * usage - 0.9 * renews - 0.0008 * tenure + 0.3 * (plan == 0)
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    numeric = np.column_stack([seats, revenue, usage, renews, tenure])
    numeric = (numeric - numeric.mean(axis=0)) / numeric.std(axis=0)
    matrix = np.column_stack([numeric, np.eye(4)[plan]])
    weights = outcome_weights(matrix, {"churned": (churned, np.arange(n), True)})
    assert weights is not None and weights.max() == 1.0
    seats_w, revenue_w, usage_w, renews_w, tenure_w = weights[:5]
    assert min(usage_w, renews_w, tenure_w) > 3 * max(seats_w, revenue_w), weights.round(3)


def churn_like(n: int, seed: int = 11) -> pd.DataFrame:
    """No clusters: churn follows a contract, short tenure, support calls and a service;
    total charges are tenure times monthly charges (the quality bench's churn table)."""
    rng = np.random.default_rng(seed)
    contract = rng.choice(["month", "one_year", "two_year"], n, p=[0.55, 0.25, 0.2])
    tenure = np.where(contract == "month", rng.exponential(14, n), rng.exponential(40, n))
    tenure = tenure.clip(0, 72)
    monthly = rng.normal(65, 25, n).clip(18, 120)
    calls = rng.poisson(1.5, n)
    internet = rng.choice(["dsl", "fibre", "none"], n, p=[0.35, 0.45, 0.2])
    logit = -2.3 + 1.4 * (contract == "month") - 0.035 * tenure + 1.2 * (calls >= 4)
    logit += 0.6 * (internet == "fibre")
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:06d}" for i in range(n)],
            "tenure": tenure,
            "monthly": monthly,
            "total": tenure * monthly * rng.normal(1, 0.05, n),
            "calls": calls,
            "age": rng.normal(45, 14, n),
            "contract": contract,
            "internet": internet,
            "churned": (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int),
        }
    )


def test_a_mixture_fitted_on_every_row_keeps_the_segments_chosen_on_the_sample(
    tmp_path: Path,
) -> None:
    """The fit on every row starts from the chosen mixture's weights, means and precisions:
    from its means alone it re-estimated the covariances and emptied two of five components
    (segments of 0 customers were served)."""
    frame = churn_like(3_000)
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    features = [{"name": c} for c in ("tenure", "monthly", "calls", "age")]
    features += [{"name": "total", "transform": "log1p"}]
    features += [{"name": c, "type": "categorical"} for c in ("contract", "internet")]
    raw = {
        "data": {"path": str(data)},
        "outcomes": ["churned"],
        "features": features,
        "model": {"k_min": 5, "k_max": 5, "algorithms": ["gmm"], "seed": 42},
    }
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    assert m.algorithm == "gmm" and m.k == 5
    assert min(s.size for s in m.segments) >= 0.05 * len(frame), [s.size for s in m.segments]


def test_k_is_capped_by_the_customers_a_segment_needs(tmp_path: Path) -> None:
    """150 customers trained 8 segments (19 each on average): k_max is lowered so that every
    segment can hold 20 customers, and the summary and the report say so."""
    frame = blobs_and_outcome(100, seed=5)
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    raw = config(data, k_max=8, selection="silhouette", stability_bootstraps=0)
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    assert m.selection.k_max == 5 and m.k <= 5
    assert max(p.k for p in m.selection.curve) == 5
    said = "k_max = 8 lowered to 5: 100 customers fill at most 5 segments of 20"
    assert m.selection.note is not None and said in m.selection.note
    assert m.selection.reason is not None and said in m.selection.reason
    assert said in render_report(m, np.zeros((0, 2)), [])
    # every admissible candidate's smallest segment holds 20 customers, not only 5%
    assert all(p.min_share * 100 >= 20 for p in m.selection.curve if p.admissible)


def test_the_note_says_when_the_30_customers_are_the_floor_and_when_no_k_can_hold_them(
    tmp_path: Path,
) -> None:
    """A 270-customer log said "no candidate gives every segment 11% of customers" under a
    config of min_share = 0.05: the note says where the 11% comes from."""
    frame = blobs_and_outcome(50, seed=6)
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    raw = config(data, selection="silhouette", stability_bootstraps=0)
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    note = m.selection.note or ""
    # 50 customers cannot fill 3 segments of 20: no share (40% each) could, so it says 20
    assert "no candidate in k = 3..3 can give every segment 20 customers" in note, note
    assert "%" not in note, note  # 20 customers read "every segment 150% of customers"
    assert "k_max = 5 lowered to 3: 50 customers fill fewer than k_min = 3 segments" in note
    # a 60-customer table's summary said it twice, as the note and (in another order) as
    # the selection's reason: the reason is the note, printed once
    assert m.selection.reason == note
    # where 20 customers is a share segments can hold (100 customers, 3 segments): the share
    # and where it comes from, when a segment holds fewer (three blobs of 50, 45 and 5)
    rng = np.random.default_rng(1)
    centres = np.repeat([[0.0, 0.0], [9.0, 0.0], [0.0, 9.0]], [50, 45, 5], axis=0)
    points = centres + rng.normal(0, 0.3, centres.shape)
    options = {"clustered_fraction": 1.0, "sample_size": 100, "silhouette_size": 100, "seed": 0}
    chosen = select_k(points, algorithm="kmeans", k_min=3, k_max=3, min_share=0.05, **options)
    note = chosen.selection.note or ""
    assert "gives every segment 20% of customers" in note, note
    assert "(20% is 20 customers, the fewest a segment may hold, above min_share = 0.05)" in note
    # fewer, larger segments may be admissible: the note says how to let the selection try
    # them (an insurance table's k = 3 split half its customers by noise, k = 2 was stable)
    assert note.endswith("; k_min = 2 lets the selection consider fewer segments"), note
    assert chosen.selection.reason == note
    chosen = select_k(points, algorithm="kmeans", k_min=2, k_max=2, min_share=0.6, **options)
    assert "no candidate" in (note := chosen.selection.note or "") and "k_min" not in note


def mall(tmp_path: Path, sizes: list[int]) -> tuple[dict[str, Any], np.ndarray, pd.DataFrame]:
    """A mall-like table: income and spending score in five groups of these sizes."""
    rng = np.random.default_rng(2)
    centres = np.repeat([[0.0, 0.0], [8.0, 8.0], [8.0, -8.0], [-8.0, 8.0], [-8.0, -8.0]], sizes, 0)
    points = centres + rng.normal(0, 1.0, centres.shape)
    frame = pd.DataFrame({"customer_id": [f"m{i}" for i in range(len(points))]})
    frame["income"], frame["score"] = points[:, 0], points[:, 1]
    frame.to_csv(data := tmp_path / "mall.csv", index=False)
    raw = {"data": {"path": str(data)}, "features": [{"name": "income"}, {"name": "score"}]}
    return raw, points, frame


def test_a_mall_table_keeps_its_five_groups(tmp_path: Path) -> None:
    """The public mall table's five groups (81, 39, 35, 23, 22 customers of 200): a floor of
    30 customers a segment ruled k = 5 out and chose 3 segments (silhouette 0.33 against
    0.48, stability 0.59 on the real table); at 20 the five groups are found."""
    raw, _, _ = mall(tmp_path, [81, 39, 35, 23, 22])
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    assert m.k == 5 and sorted(s.size for s in m.segments) == [22, 23, 35, 39, 81]
    assert "fewer than 20 customers" not in (m.selection.reason or "")


def test_candidates_only_the_20_customers_ruled_out_are_named_with_the_floor_drawn(
    tmp_path: Path,
) -> None:
    """A mall table of 200 customers chose k = 3 at silhouette 0.33, its k = 5 (0.48) ruled
    out by the customer floor: the reason said only "highest silhouette among admissible k",
    and the report drew k = 5 inadmissible "when one of its segments holds less than 5%" with
    the min_share line at 5%, though its smallest segment held 10.5%. (Five groups here of
    which two hold fewer than the 20 customers.)"""
    raw, points, frame = mall(tmp_path, [86, 41, 37, 18, 18])
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    five = next(p for p in m.selection.curve if p.k == 5)
    assert m.k < 5 and not five.admissible and five.min_share >= m.selection.min_share
    reason = m.selection.reason or ""
    assert f"best {five.silhouette:.3f}, k = 5) but a segment of fewer than 20 customers" in reason
    assert "(k = 5: 18 customers, 9%)" in reason, reason
    page = render_report(m, np.zeros((0, 2)), [])
    assert "holds less than 10% of customers (20 customers, the fewest" in page
    assert "less than 5% of customers" not in page
    # a table too small for k_min segments of 20: no "less than 50%" floor, none drawn at 50%
    frame.iloc[::5].to_csv(tmp_path / "mall.csv", index=False)
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s2")).manifest
    page = render_report(m, np.zeros((0, 2)), [])
    assert "less than 20 customers, the fewest a segment may hold (these 40 cannot give" in page
    assert "less than 50%" not in page
    # a table large enough for its min_share says no more than before
    chosen = select_k(
        points,
        algorithm="kmeans",
        k_min=3,
        k_max=5,
        min_share=0.05,
        clustered_fraction=1.0 / 5,
        sample_size=200,
        silhouette_size=200,
        seed=0,
    )
    assert "20 customers" not in chosen.selection.reason


def test_a_table_large_enough_keeps_its_range() -> None:
    assert capped_k_max(160, 3, 8) == (8, None)
    assert capped_k_max(159, 3, 8)[0] == 7
    k_max, note = capped_k_max(40, 3, 8)  # never below k_min: the few-customers note says more
    assert k_max == 3 and note is not None and "fewer than k_min = 3 segments of 20" in note


def noise_outcome(n: int = 1_500, seed: int = 1) -> pd.DataFrame:
    frame = blobs_and_outcome(n, seed)
    rng = np.random.default_rng(seed + 10)
    frame["bought"] = np.where(rng.uniform(size=n) < 0.3, "yes", "no")  # unrelated to all
    frame["value"] = rng.normal(100, 10, n)
    return frame


def test_an_outcome_unrelated_to_the_features_leaves_the_choice_to_structure(
    tmp_path: Path,
) -> None:
    """A noise outcome made balanced pick the candidate whose chance separation happened to
    be highest (and weight the features by chance correlations): now its effects count only
    beyond chance, and with none the best silhouette chooses, as the reason says."""
    frame = noise_outcome()
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    store = ModelStore(tmp_path / "s")
    silhouette = train(
        parse_config(config(data, k_max=8, selection="silhouette"), base_dir=tmp_path), store
    ).manifest
    m = train(parse_config(config(data, k_max=8), base_dir=tmp_path), store).manifest
    assert m.selection.method == "balanced"
    assert m.k == silhouette.k == 3 and m.selection.chosen_algorithm == "kmeans"
    assert not any("outcome-weighted" in (p.algorithm or "") for p in m.selection.curve)
    reason = m.selection.reason or ""
    assert "no candidate separated 'bought', 'value' beyond chance" in reason, reason
    assert "fell back to structure" in reason
    # the effects are still measured and shown: chance-level, never zero
    assert all(p.effects.get("bought", 0.0) > 0 for p in m.selection.curve)
    # the silhouette chose: a note on weak structure says so, not "chosen for the outcomes"
    assert not chosen_by_outcomes(m.selection)


def candidate(algorithm: str, k: int, silhouette: float, effect: float) -> SelectionPoint:
    """An admissible, stable candidate with this effect on the outcome ``y``."""
    return SelectionPoint(
        k=k,
        silhouette=silhouette,
        min_share=0.2,
        admissible=True,
        stability=1.0,
        effects={"y": effect},
        algorithm=algorithm,
    )


def test_only_effects_beyond_chance_count_as_separation() -> None:
    """k=4 holds the largest effect, by chance; k=3's smaller effect is beyond chance: k=3."""
    curve = [
        candidate("kmeans", k, sil, effect) for k, sil, effect in ((3, 0.3, 0.1), (4, 0.4, 0.12))
    ]
    beyond = {("kmeans", 3): {"y"}, ("kmeans", 4): set[str]()}
    chosen, _, reason = _choose(curve, "balanced", 3, 4, 0.05, beyond, 0.025)
    assert chosen.k == 3 and chosen.separation == 1.0
    # separated by none beyond chance: the best silhouette, and the reason says why
    chosen, _, reason = _choose(curve, "balanced", 3, 4, 0.05, {}, 0.025)
    assert chosen.k == 4 and "no candidate separated 'y' beyond chance (p < 0.025" in reason
    # an outcome beside it that none separates: the threshold is said as one (a marketer
    # read "'Complain' separated by no candidate beyond chance (p < 0.0042)" as a p reached)
    for p in curve:
        p.effects["complained"] = 0.01
    chosen, _, reason = _choose(curve, "balanced", 3, 4, 0.05, beyond, 0.025)
    assert (
        chosen.k == 3
        and (
            "; 'complained' separated by no candidate beyond chance (p < 0.025, 0.05 over the "
            "candidates): left out of the separation"
        )
        in reason
    ), reason


def test_the_silhouette_floor_compares_candidates_of_one_space() -> None:
    """The weighted space's own silhouettes (0.6) set the floor (0.3) above every declared
    candidate (0.25): each space's candidates are now held to their own space's best."""
    points = [
        ("kmeans", 3, 0.25, 0.20),
        ("kmeans", 4, 0.10, 0.30),  # a slice of the declared space: under its floor (0.125)
        ("kmeans outcome-weighted", 3, 0.60, 0.10),
    ]
    curve = [candidate(*p) for p in points]
    chosen, _, reason = _choose(curve, "balanced", 3, 4, 0.05)
    assert (chosen.algorithm, chosen.k) == ("kmeans", 3), reason
    assert next(p for p in curve if p.k == 4).score is None
    assert "of its space, declared 0.250, outcome-weighted 0.600" in reason


def test_fragile_segments_are_noted(tmp_path: Path) -> None:
    """A mall table's 3 segments at stability 0.59 (the report's legend: below 0.6 they are
    fragile) had no word of it in the summary; steady segments get none."""
    rng = np.random.default_rng(1)
    n = 200
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)]})
    for name in "abcde":
        frame[name] = rng.uniform(0, 1, n)  # no groups: seven segments cut at random
    frame.to_csv(data := tmp_path / "d.csv", index=False)
    raw = {
        "data": {"path": str(data)},
        "features": [{"name": name} for name in "abcde"],
        "model": {"k_min": 7, "k_max": 7},
    }
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    assert m.quality.stability_ari is not None and m.quality.stability_ari < 0.6
    said = [note for note in m.data.notes if "the report calls fragile" in note]
    assert said == [
        f"stability {m.quality.stability_ari:.2f}, below the 0.6 the report calls fragile: "
        "refits on resamples of these customers draw other segments, so a customer's segment "
        "says less than it seems; fewer segments (k_max = 6), other features or more "
        "customers may give steadier ones"
    ], m.data.notes
    raw, _, _ = mall(tmp_path, [81, 39, 35, 23, 22])
    steady = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s2")).manifest
    assert not [note for note in steady.data.notes if "fragile" in note], steady.data.notes


def bank_calls(n: int = 6_000, seed: int = 1) -> pd.DataFrame:
    """A bank-marketing table's shape: no clusters, an outcome driven most by the earlier
    campaign's success, which 3-4% of the customers had (half of them subscribe)."""
    rng = np.random.default_rng(seed)
    contacted = rng.uniform(size=n) < 0.18
    before = np.where(
        contacted, rng.choice(["failure", "other", "success"], n, p=[0.6, 0.2, 0.2]), "unknown"
    )
    housing = rng.choice(["yes", "no"], n, p=[0.56, 0.44])
    contact = rng.choice(["cellular", "unknown", "telephone"], n, p=[0.65, 0.29, 0.06])
    age = rng.normal(41, 10.5, n).clip(18, 95).round()
    logit = -3.0 + 0.9 * (housing == "no") + 2.2 * (before == "success")
    logit += 0.8 * (contact == "cellular") + 0.6 * ((age < 25) | (age > 60))
    y = rng.uniform(size=n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "customer_id": [f"B{i:05d}" for i in range(n)],
            "age": age,
            "balance": np.where(  # 8% overdrawn: not logged, its tail left as it is
                rng.uniform(size=n) < 0.08,
                -rng.integers(1, 2000, n),
                np.round(rng.lognormal(6.5, 1.6, n) - 300),
            ),
            "campaign": rng.geometric(0.38, n).clip(1, 63),
            "previous": np.where(contacted, rng.geometric(0.4, n), 0),
            "housing": housing,
            "contact": contact,
            "poutcome": before,
            "y": np.where(y, "yes", "no"),
        }
    )


def test_a_fallback_names_the_min_share_that_admits_a_better_separation(tmp_path: Path) -> None:
    """A bank-marketing table's default training found no admissible candidate (every
    outcome-weighted one held the 3% of earlier successes as a segment, below min_share 5%)
    and chose a fragile k = 3 at Cramér's V 0.08, saying only that k_min = 2 might help:
    the note now names the candidate that separated the outcome 3x as well and the
    min_share that lets the selection consider it, and that min_share does."""
    frame = bank_calls()
    frame.to_csv(tmp_path / "bank.csv", index=False)
    raw: dict[str, Any] = {
        "data": {"path": "bank.csv"},
        "outcomes": ["y"],
        "features": [{"name": c} for c in ["age", "balance", "campaign", "previous"]]
        + [{"name": c, "type": "categorical"} for c in ["housing", "contact", "poutcome"]],
        "model": {"name": "customers"},
    }
    store = ModelStore(tmp_path / "store")
    first = train(parse_config(raw, base_dir=tmp_path), store).manifest
    note = first.selection.note or ""
    assert "no candidate in k = 3..8 is stable" in note, note
    assert "separated 'y' at Cramér's V" in note and "min_share = 0.03 lets" in note, note
    raw["model"]["min_share"] = 0.03  # as the note says
    second = train(parse_config(raw, base_dir=tmp_path), store).manifest
    assert not second.selection.note, second.selection.note

    def v(version: str) -> float:
        ids = store.load("customers", version).estimator.predict(frame.set_index("customer_id"))
        effect = outcome_effect((frame["y"] == "yes").to_numpy(float), pd.factorize(ids)[0])
        return effect.size or 0.0

    assert v(second.version) > 2 * v(first.version)
    assert (second.quality.stability_ari or 0) > (first.quality.stability_ari or 0)


def test_when_none_is_stable_the_outcomes_still_choose_among_those_above_min_share(
    tmp_path: Path,
) -> None:
    """A 200-row mall table with its spending score as the outcome: no candidate's refits
    all reach ARI 0.9, and the fallback to the largest smallest segment chose k = 3 at
    epsilon² 0.04, beside an outcome-weighted k = 5 at 0.28 (the plain script: 0.18). The
    selection's own criterion now ranks those that hold min_share (and the closest to stable of
    the three it ranks first is served), and the note says so."""
    rng = np.random.default_rng(2)
    groups = [(22, 25, 26, 79), (23, 45, 26, 20), (81, 43, 55, 50), (39, 33, 87, 82),
              (35, 41, 88, 17)]  # fmt: skip
    x = np.vstack([rng.normal((a, i, s), 9, (m, 3)) for m, a, i, s in groups])
    x = np.c_[x[:, 0].clip(18, 70), x[:, 1].clip(15, 137), x[:, 2].clip(1, 99)].round()
    rng.shuffle(x)
    frame = pd.DataFrame(
        {"CustomerID": [str(i) for i in range(1, 201)],
         "Gender": rng.choice(["Female", "Male"], 200, p=[0.56, 0.44]),
         "Age": x[:, 0], "Annual Income (k$)": x[:, 1], "Spending Score (1-100)": x[:, 2]}
    )  # fmt: skip
    frame.to_csv(tmp_path / "mall.csv", index=False)
    raw = {
        "data": {"path": "mall.csv", "id_column": "CustomerID"},
        "outcomes": ["Spending Score (1-100)"],
        "features": [{"name": "Gender", "type": "categorical"}, {"name": "Age"},
                     {"name": "Annual Income (k$)"}],
        "model": {"name": "mall"},
    }  # fmt: skip
    store = ModelStore(tmp_path / "store")
    manifest = train(parse_config(raw, base_dir=tmp_path), store).manifest
    note = manifest.selection.note or ""
    assert "no candidate in k = 3..8 is stable" in note, note
    # ranked by balanced among those that hold the floor, then confirmed in turn: none
    # reached 0.9, and the one that came closest is served
    assert "which came closest: mean ARI" in note, note
    ids = store.load("mall", manifest.version).estimator.predict(frame.set_index("CustomerID"))
    score = frame["Spending Score (1-100)"].to_numpy(float)
    effect = outcome_effect(score, pd.factorize(ids)[0], binary=False).size or 0.0
    assert effect > 0.2, effect
    assert min(s.share for s in manifest.segments) >= 0.1


def test_each_space_scores_only_its_own_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    """With outcomes, each candidate is fitted in the plain and in the outcome-weighted
    space; each space's silhouettes are its own labelings' only (the plain space scored the
    weighted space's too, and dropped them), and the scores are those of a call per labeling."""
    import app.training.selection as selection

    frame = blobs_and_outcome()
    points = frame[["a", "b", "engagement"]].to_numpy()
    outcomes = pd.DataFrame({"bought": (frame["bought"] == "yes").astype(float)})
    calls: list[int] = []
    real = selection._silhouettes

    def counted(x: np.ndarray, labelings: list[np.ndarray], block: int = 512) -> list[float]:
        calls.append(len(labelings))
        return real(x, labelings, block)

    monkeypatch.setattr(selection, "_silhouettes", counted)
    options = {"clustered_fraction": 1.0, "sample_size": 1_000, "silhouette_size": 500}
    chosen = select_k(
        points, algorithm="kmeans", k_min=2, k_max=5, min_share=0.05, seed=0,
        method="balanced", outcomes=outcomes, **options,
    )  # fmt: skip
    assert calls == [4, 4]  # k = 2..5 in each of the two spaces
    assert len(chosen.selection.curve) == 8  # both spaces


def test_the_note_when_no_candidate_is_admissible_names_the_chosen_algorithm() -> None:
    """Candidates of two algorithms (or spaces), none admissible: the note said "chose k=3"
    of a k both algorithms fitted, where the note of the stable-less branch names it."""
    curve = [
        SelectionPoint(k=k, silhouette=0.3, min_share=share, admissible=False, algorithm=a)
        for a, k, share in (("kmeans", 3, 0.02), ("gmm", 3, 0.04), ("gmm", 4, 0.01))
    ]
    chosen, note, _ = _choose(curve, "balanced", 3, 4, 0.05)
    assert (chosen.algorithm, chosen.k) == ("gmm", 3) and note is not None
    assert "chose gmm k=3, whose smallest segment is largest: 4% of customers" in note, note


def test_a_fallback_where_every_candidate_is_below_min_share_names_the_min_share() -> None:
    """An Olist-like log's repeat buyers (4% of its customers) were a segment of their own in
    every candidate, so none held min_share 5%; the fallback (k = 3, Cramér's V 0.25) was
    told only that k_min = 2 might help, and k = 2 separated the repurchase at 0.08 (a new
    user's pass). The note now names the chosen one's smallest segment, its separation and
    the min_share that lets the selection weigh these candidates (min_share = 0.03 gave 0.25,
    stable at 0.93); nothing where the chosen one holds min_share, separates no outcome
    beyond chance, or its smallest segment is under 20 customers."""
    from app.training.selection import _below_min_share

    def point(k: int, smallest: float, v: float) -> SelectionPoint:
        return SelectionPoint(
            k=k, silhouette=0.4, min_share=smallest, admissible=False, algorithm="kmeans",
            effects={"repurchased": v},
        )  # fmt: skip

    y = np.zeros(10)
    targets = {"repurchased": (y, y, True)}
    curve = [point(3, 0.0386, 0.250), point(4, 0.0386, 0.251), point(5, 0.019, 0.26)]
    beyond = {("kmeans", k): {"repurchased"} for k in (3, 4, 5)}
    said = _below_min_share(curve, curve[0], beyond, targets, 0.05, 5131)
    assert said == (
        "; every candidate held a segment below min_share, and the chosen one, its smallest "
        "4% of the customers, separated 'repurchased' at Cramér's V 0.250: where a group "
        "that small matters (the outcome may be about it), min_share = 0.03 lets the "
        "selection weigh these candidates"
    ), said
    assert _below_min_share(curve, curve[0], {}, targets, 0.05, 5131) == ""
    assert _below_min_share(curve, curve[0], beyond, targets, 0.05, 400) == ""  # 15 customers
    held = point(3, 0.06, 0.250)
    assert _below_min_share([held], held, beyond, targets, 0.05, 5131) == ""
