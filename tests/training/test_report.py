"""The HTML report: self-contained, escaped, and robust to thin or unusual manifests."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from app.registry.manifest import (
    ArtefactInfo,
    CategoryShare,
    DataInfo,
    FeatureSchema,
    IdMatching,
    Manifest,
    NumericProfile,
    NumericStats,
    OutcomeTest,
    Quality,
    SegmentInfo,
    Selection,
    SelectionPoint,
)
from app.training.report import render_report, write_report

# User-editable text that must come out inert in HTML (and in the figures' SVG).
EVIL_NAME = '$\\bad{$ <script>x()</script> & "co"'
RULE = 'tenure_days < 30 and plan == "<trial>"'
NAMES = [
    "New customers (first 30 days)",
    EVIL_NAME,
    "Lapsed one-time buyers",
    "High-value loyalists",
    "Discount hunters",
    "Frequent small baskets",
    "Weekend browsers",
    "Dormant enterprise accounts",
]
FEATURES = [
    "recency_days", "frequency", "monetary", "avg_order_value", "tenure_days", "visits_30d",
    "support_tickets", "discount_share", "returns", "pages_per_visit", "email_opens",
    "app_sessions", "basket_size", "categories_bought", "days_between_orders",
]  # fmt: skip
PLANS = ("basic", "pro", "enterprise", "__infrequent__")


def make_manifest(
    n_segments: int = 8,
    n_features: int = 15,
    *,
    categorical: bool = True,
    outcomes: bool = True,
    rule: bool = True,
) -> Manifest:
    """A plausible manifest with ``n_segments`` segments, the first a rule one if ``rule``."""
    rng = np.random.default_rng(3)
    numeric = (FEATURES + [f"feature_{i}" for i in range(15, n_features)])[:n_features]
    features = [
        FeatureSchema(
            name=name,
            type="numeric",
            label=name.replace("_", " "),
            transform="log1p" if name in {"monetary", "frequency"} else None,
            stats=NumericStats(mean=50, std=10, min=0, median=48, max=500, missing_share=0),
        )
        for name in numeric
    ]
    if categorical:
        features.append(
            FeatureSchema(name="plan", type="categorical", label="plan", categories=list(PLANS))
        )
    population = np.array([0.5, 0.3, 0.15, 0.05])
    shares = rng.dirichlet(np.ones(n_segments) * 3)
    segments = []
    for i in range(n_segments):
        is_rule = rule and i == 0
        plan = rng.dirichlet(population * 20)
        profile = {
            f: NumericProfile(mean=float(mean), median=float(mean) * 0.9, z=float(z))
            for f, mean, z in zip(
                numeric, rng.lognormal(3, 2, n_features), rng.normal(0, 1, n_features), strict=True
            )
        }
        plan_profile = {
            p: CategoryShare(
                share=float(plan[j]),
                population_share=float(population[j]),
                z=float((plan[j] - population[j]) / np.sqrt(population[j] * (1 - population[j]))),
            )
            for j, p in enumerate(PLANS)
        }
        segments.append(
            SegmentInfo(
                id=f"seg-{i + 1:03d}",
                name=NAMES[i] if i < len(NAMES) else f"Segment {i + 1}",
                kind="rule" if is_rule else "cluster",
                rule=RULE if is_rule else None,
                description=f"{shares[i]:.1%} of customers: {numeric[i % max(n_features, 1)]}"
                if n_features
                else "close to average",
                action="Send the onboarding series" if is_rule else None,
                size=int(shares[i] * 10_000),
                share=float(shares[i]),
                numeric={} if is_rule else profile,  # rule members are not profiled here
                categorical={"plan": plan_profile} if categorical else {},
                outcomes={"ltv": float(rng.gamma(2, 300)), "converted": float(rng.uniform())}
                if outcomes
                else {},
                stability=None if is_rule else round(float(rng.uniform(0.4, 0.99)), 3),
                flags=["too_small", "unstable"] if i == 2 else ["not_distinct"] if i == 3 else [],
            )
        )
    chosen = n_segments - int(rule)
    curve = [
        SelectionPoint(
            k=k,
            silhouette=0.33 - 0.012 * (k - chosen) ** 2,
            min_share=0.3 / k,
            admissible=k != chosen + 1,
        )
        for k in range(3, 9)
    ]
    return Manifest(
        model_name="retail-customers",
        version="20250101T120000Z-ab12",
        created_at=datetime(2025, 1, 1, 12, tzinfo=UTC),
        artefact=ArtefactInfo(sha256="f" * 64, bytes=123_456),
        libraries={"numpy": "2.1.0", "scikit-learn": "1.5.2", "pandas": "2.2.3"},
        data=DataInfo(
            path="data/customers.csv",
            kind="table",
            rows=10_000,
            source_rows=10_050,
            dropped_rows=50,
            fingerprint="0123456789abcdef" * 4,
        ),
        config={"model": {"algorithm": "kmeans"}},
        features=features,
        algorithm="kmeans",
        seed=42,
        k=chosen,
        selection=Selection(
            criterion="silhouette on a sample, subject to a minimum segment share",
            sample_size=5000,
            k_min=3,
            k_max=8,
            min_share=0.05,
            chosen_k=chosen,
            curve=curve,
            note=f"k = {chosen + 1} left a segment under 5%",
        ),
        quality=Quality(
            silhouette=0.31,
            davies_bouldin=1.12,
            calinski_harabasz=2345.6,
            stability_ari=0.82,
            bootstraps=20,
            sample_size=5000,
        ),
        segments=segments,
        outcomes=[
            OutcomeTest(
                name="ltv",
                kind="numeric",
                test="Kruskal-Wallis",
                statistic=812.0,
                p_value=1e-12,
                significant=True,
                overall_mean=600.0,
            ),
            OutcomeTest(
                name="converted",
                kind="binary",
                test="chi-square",
                statistic=3.2,
                p_value=0.21,
                significant=False,
                overall_mean=0.5,
            ),
        ]
        if outcomes
        else [],
        id_matching=IdMatching(previous_version=None, new=[s.id for s in segments]),
        timings={"load": 0.4, "fit": 2.1, "quality": 1.3},
    )


def projection_for(manifest: Manifest, n: int = 5_000) -> tuple[np.ndarray, list[str]]:
    """``n`` points in one blob per segment, like a PCA of well-separated clusters."""
    rng = np.random.default_rng(0)
    ids = [manifest.segments[i].id for i in rng.integers(0, len(manifest.segments), n)]
    centres = {s.id: rng.normal(0, 4, 2) for s in manifest.segments}
    points = np.array([centres[i] for i in ids]) + rng.normal(0, 1, (n, 2))
    return points, ids


def render(manifest: Manifest) -> str:
    return render_report(manifest, *projection_for(manifest))


def test_report_shows_every_segment_and_flag_and_escapes_user_text() -> None:
    manifest = make_manifest()
    page = render(manifest)
    for segment in manifest.segments:
        assert html.escape(segment.name) in page
    assert "<script>" not in page
    assert html.escape(RULE) in page
    for flag in ("too small", "unstable", "not distinct"):
        assert f">{flag}</span>" in page
    assert "Send the onboarding series" in page


def test_a_trees_target_is_escaped_where_the_outcomes_section_names_it() -> None:
    """An outcome is any column's name, and a tree among the candidates takes the first
    declared one as its target: the outcomes section's caption printed it raw."""
    target = '</p><style>main{display:none}</style><p title="x'
    manifest = make_manifest().model_copy(
        update={"algorithm": "tree", "config": {"model": {"algorithm": "tree", "target": target}}}
    )
    page = render(manifest)
    assert "<style>main" not in page
    assert html.escape(repr(target), quote=False) in page


def figures(page: str) -> int:
    """The figures drawn: SVG charts and bar and heat-map tables, no image."""
    return page.count("<svg ") + page.count('class="bars"') + page.count('class="heat"')


def test_report_is_self_contained_with_inline_figures() -> None:
    page = render(make_manifest())
    assert figures(page) >= 5 and "<img" not in page
    assert "http://" not in page
    assert "https://" not in page
    assert not re.search(r"""(src|href)=(?!["']?data:)""", page)  # nothing loaded from elsewhere


def test_header_carries_version_data_quality_and_footer_libraries() -> None:
    page = render(make_manifest())
    expected = [
        "retail-customers", "20250101T120000Z-ab12", "data/customers.csv", "10,000 customers",
        "0123456789ab", "kmeans", "0.31", "1.12", "2,346", "0.82", "numpy 2.1.0", "fit 2.10 s",
    ]  # fmt: skip
    for text in expected:
        assert text in page


def test_segment_colour_is_the_same_in_every_table() -> None:
    page = render(make_manifest())
    swatches = re.findall(r'class="sw" style="background:(#[0-9a-f]{6})"></span>([\w-]+)', page)
    colours: dict[str, set[str]] = {}
    for colour, segment_id in swatches:
        colours.setdefault(segment_id, set()).add(colour)
    assert len(colours) == 8
    assert all(len(c) == 1 for c in colours.values())
    assert len({next(iter(c)) for c in colours.values()}) == 8  # and distinct between segments


def no_metrics() -> Manifest:
    quality = Quality(
        silhouette=None,
        davies_bouldin=None,
        calinski_harabasz=None,
        stability_ari=None,
        bootstraps=0,
        sample_size=0,
    )
    return make_manifest().model_copy(update={"quality": quality})


@pytest.mark.parametrize(
    ("manifest", "shows"),
    [
        pytest.param(make_manifest(outcomes=False), "No outcome columns", id="no-outcomes"),
        pytest.param(make_manifest(categorical=False), "No categorical", id="no-categorical"),
        pytest.param(make_manifest(n_segments=1, rule=False), "seg-001", id="one-segment"),
        pytest.param(make_manifest(n_segments=2), "rule <code>", id="rule-without-profile"),
        pytest.param(make_manifest(n_features=0), "No numeric features", id="no-numeric"),
        pytest.param(make_manifest(n_segments=12, n_features=28), "seg-012", id="many-features"),
        pytest.param(no_metrics(), "<b>n/a</b>", id="no-metrics"),
    ],
)
def test_edge_cases_render(manifest: Manifest, shows: str) -> None:
    page = render(manifest)
    assert page.startswith("<!DOCTYPE html>")
    assert shows in page
    for segment in manifest.segments:
        assert html.escape(segment.name) in page


def test_missing_outcome_values_and_p_values_render() -> None:
    manifest = make_manifest(n_segments=3)
    manifest.segments[1].outcomes["ltv"] = None
    manifest.outcomes[0].p_value = None
    manifest.outcomes[0].overall_mean = None
    page = render(manifest)
    assert figures(page) >= 5
    assert ">n/a</td>" in page and "p n/a" in page  # the missing segment mean, the missing p


def test_empty_projection_renders() -> None:
    page = render_report(make_manifest(), np.empty((0, 2)), [])
    assert figures(page) >= 4 and "No projected customers." in page


def test_projection_and_ids_must_match() -> None:
    with pytest.raises(ValueError, match="length"):
        render_report(make_manifest(), np.zeros((3, 2)), ["seg-001"])


def test_the_page_of_5000_projected_customers_stays_small() -> None:
    manifest = make_manifest(n_segments=8, n_features=15)
    projection, ids = projection_for(manifest, 5_000)
    page = render_report(manifest, projection, ids)
    assert len(page.encode()) < 400_000
    assert page.count("h0") >= 5_000  # every projected customer drawn, one dot each


def test_write_report_writes_the_page(tmp_path: Path) -> None:
    manifest = make_manifest()
    path = tmp_path / "report.html"
    write_report(path, manifest, *projection_for(manifest))
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    assert html.escape(EVIL_NAME) in page


def test_long_segment_names_are_never_cut_off() -> None:
    """Every table and figure shows the whole name, as text the browser wraps in its cell."""
    long = "Month-to-month contract, very lapsed, very high monthly charges, fibre-optic internet"
    manifest = make_manifest(4)
    manifest.segments[1] = manifest.segments[1].model_copy(update={"name": long})
    page = render(manifest)
    # the segment table, the sizes' bars, the heat map's column, the projection's legend
    assert page.count(html.escape(long)) >= 4 and "…" not in page


@pytest.mark.parametrize(
    ("algorithm", "method", "chosen", "says"),
    [
        ("kmeans", "silhouette", None, "The outcomes are not used to form segments."),
        ("kmeans", "balanced", "kmeans", "chose among the candidate segmentations"),
        ("kmeans", "balanced", "kmeans outcome-weighted", "The outcomes weighted the features"),
        ("tree", "tree", "tree", "leaves of a tree fitted to predict 'converted'"),
    ],
)
def test_the_outcomes_section_says_how_outcomes_formed_the_segments(
    algorithm: str, method: str, chosen: str | None, says: str
) -> None:
    """An audit read "Outcomes are not used to form segments" above the effects of an
    outcome-weighted model: those effects are in-sample, and the page must say so."""
    manifest = make_manifest()
    selection = manifest.selection.model_copy(update={"method": method, "chosen_algorithm": chosen})
    config = {**manifest.config, "model": {"target": "converted"}}
    manifest = manifest.model_copy(
        update={"algorithm": algorithm, "selection": selection, "config": config}
    )
    page = render(manifest)
    assert says in page
    assert ("optimistic" in page) == (chosen is not None and chosen != "kmeans")


def test_a_categorical_table_names_the_categories_it_leaves_out(tmp_path: Path) -> None:
    """A tester's `job` (12 categories) showed 8 in its table with no sign of the other 4:
    below the table, the rest are named, most frequent first, with their share (missing
    values too); a feature of few categories gets no such line."""
    import pandas as pd

    from app.registry.store import ModelStore
    from app.training.config import parse_config
    from app.training.job import train

    rng = np.random.default_rng(8)
    n = 1_200
    jobs = [f"job{i:02d}" for i in range(12)]
    weights = np.arange(12, 0, -1) / np.arange(12, 0, -1).sum()  # job00 commonest
    job = rng.choice(jobs, n, p=weights).astype(object)
    job[:30] = None
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "spend": rng.gamma(2.0, 50.0, n),
            "job": job,
            "plan": rng.choice(["basic", "pro"], n),
        }
    )
    frame.to_csv(tmp_path / "data.csv", index=False)
    config = parse_config(
        {
            "data": {"path": str(tmp_path / "data.csv")},
            "features": [
                {"name": "spend"},
                {"name": "job", "type": "categorical"},
                {"name": "plan", "type": "categorical"},
            ],
            "model": {"k_min": 2, "k_max": 3, "stability_bootstraps": 0},
        },
        base_dir=tmp_path,
    )
    store = ModelStore(tmp_path / "store")
    manifest = train(config, store).manifest
    page = (store.version_dir("customers", manifest.version) / "report.html").read_text()
    shown = list(manifest.segments[0].categorical["job"])
    assert len(shown) == 8
    present = frame["job"].value_counts(normalize=True)
    left = [c for c in present.index if c not in shown]
    assert len(left) == 4
    named = ", ".join(f"{c} ({present[c] * (n - 30) / n:.1%})" for c in left)
    line = re.search(
        r'<p class="cap">and 5 more, not profiled by segment[^<]*(<i>[^<]*</i>)?[^<]*', page
    )
    assert line is not None, page
    assert line.group(0).endswith(f"(share of all customers): {named}, <i>missing</i> (2.5%)")
    assert page.count("more, not profiled by segment") == 1  # plan: both categories shown


def test_a_rare_category_share_never_reads_as_none(tmp_path: Path) -> None:
    """An audit's SaaS plans of 0.2% of the accounts read "0%" in every row of the
    categorical table, as a category nobody holds."""
    import pandas as pd

    from app.registry.store import ModelStore
    from app.training.config import parse_config
    from app.training.job import train

    rng = np.random.default_rng(9)
    n = 1_200
    plan = rng.choice(["basic", "pro"], n).astype(object)
    plan[:4] = "custom"  # 0.33% of the customers
    frame = pd.DataFrame(
        {"customer_id": [f"c{i}" for i in range(n)], "spend": rng.gamma(2.0, 50.0, n), "plan": plan}
    )
    frame.to_csv(tmp_path / "data.csv", index=False)
    config = parse_config(
        {
            "data": {"path": str(tmp_path / "data.csv")},
            "features": [{"name": "spend"}, {"name": "plan", "type": "categorical"}],
            "model": {"k_min": 2, "k_max": 2, "stability_bootstraps": 0},
        },
        base_dir=tmp_path,
    )
    store = ModelStore(tmp_path / "store")
    manifest = train(config, store).manifest
    page = (store.version_dir("customers", manifest.version) / "report.html").read_text()
    assert "<td><i>All customers</i></td>" in page
    population = page.split("<td><i>All customers</i></td>")[1].split("</tr>")[0]
    assert "<td class=num>0.33%</td>" in population, population
    assert ">0%<" not in population, population


def test_the_profile_map_names_a_transform_only_where_there_is_one() -> None:
    """A mall table's heat map read "age (none)", "annual income (k$) (none)": the resolved
    transform "none" said beside each label, as if the feature had no value."""
    from app.training.report.plots import profile_plot

    m = make_manifest()
    m.features[0].transform = "none"
    colours = {s.id: "#1f77b4" for s in m.segments}
    heat = profile_plot(m, colours)
    assert heat is not None
    shown = [html.unescape(t) for t in re.findall(r'<th scope="row">([^<]*)</th>', heat)]
    assert len(shown) == len([f for f in m.features if f.type == "numeric"])
    assert not any(t.endswith("(none)") for t in shown), shown
    assert any(t.endswith("(log1p)") for t in shown), shown


def test_a_candidate_without_a_silhouette_draws_no_broken_shape() -> None:
    """A silhouette that could not be measured (NaN) is left out of the curve: an SVG
    coordinate "nan" is an error in the browser's console and draws nothing."""
    manifest = make_manifest()
    manifest.selection.curve[0].silhouette = float("nan")
    page = render(manifest)
    assert not re.search(r'(cx|cy|points|d)="[^"]*nan', page, re.IGNORECASE)
    shapes = page.count("<circle") + page.count("l8 8m0 -8l-8 8")  # dots, crosses, the ring
    assert shapes == 5 + 1  # the five other candidates, and the chosen one's ring


@pytest.mark.parametrize(
    ("algorithm", "candidates", "axis"),
    [
        ("kmeans", [None], "number of clusters k"),
        ("tree", [None], "number of leaves"),
        ("kmeans", ["kmeans", "tree"], "number of clusters k or leaves"),
        ("tree", ["kmeans", "tree"], "number of clusters k or leaves"),
    ],
)
def test_the_selection_curve_says_what_it_counts(
    algorithm: str, candidates: list[str | None], axis: str
) -> None:
    """A tree's candidates are leaf counts; beside clusters (algorithms = [..., "tree"]) the
    curve holds both, and its axis must not call a tree's leaves clusters."""
    m = make_manifest()
    m.algorithm = algorithm
    m.selection.curve = [
        p.model_copy(update={"algorithm": candidates[i % len(candidates)]})
        for i, p in enumerate(m.selection.curve)
    ]
    page = render(m)
    assert f">{axis}</text>" in page


def test_a_tree_model_counts_leaves_and_an_empty_segment_draws_no_bar() -> None:
    """A tree's header said "5 clusters"; a segment of no customers showed a sliver of a
    bar as if it held some."""
    m = make_manifest(n_segments=3)
    m.algorithm = "tree"
    m.segments[1] = m.segments[1].model_copy(update={"size": 0, "share": 0.0})
    page = render(m)
    assert f"{m.selection.chosen_k} tree leaves, 3 segments in all" in page
    row = re.search(r'<tr title="seg-002 [^"]*: 0 customers, 0.0%">(.*?)</tr>', page)
    assert row is not None and "width:" not in row.group(1)


def test_the_profile_map_shows_four_digit_means_whole() -> None:
    """The customer-personality table's heat map showed its segments' mean birth years,
    1958, 1969, 1968 and 1978, as 1.96k, 1.97k, 1.97k and 1.98k: two segments ten years
    apart read alike, and a year read as thousands. Four digits are shown whole."""
    from app.training.report.plots import profile_plot

    m = make_manifest(n_segments=4, categorical=False, outcomes=False, rule=False)
    name = m.features[0].name
    for segment, year in zip(m.segments, (1958.3, 1969.2, 1968.4, 1978.1), strict=True):
        segment.numeric[name].mean = year
    heat = profile_plot(m, {s.id: "#1f77b4" for s in m.segments})
    assert heat is not None
    row = heat.split(f'<th scope="row">{m.features[0].label}')[1].split("</tr>")[0]
    shown = re.findall(r">([^<>]+)</td>", row)
    assert shown == ["1,958", "1,969", "1,968", "1,978"], shown
    assert "mean 1,969, z =" in row


def test_the_profile_map_rounds_a_mean_at_a_boundary_as_a_figure() -> None:
    """Means that round up across a boundary (999.96 to a thousand, 999,999.9 to a million,
    9,999.6 to ten thousand) read '1e+03', '1e+03k' and '10,000' (six characters, where a
    cell holds five): each is written as the figure it rounds to."""
    from app.training.report.plots import profile_plot

    m = make_manifest(n_segments=3, categorical=False, outcomes=False, rule=False)
    name = m.features[0].name
    for segment, mean in zip(m.segments, (999.96, 999_999.9, 9_999.6), strict=True):
        segment.numeric[name].mean = mean
    heat = profile_plot(m, {s.id: "#1f77b4" for s in m.segments})
    assert heat is not None
    row = heat.split(f'<th scope="row">{m.features[0].label}')[1].split("</tr>")[0]
    shown = re.findall(r">([^<>]+)</td>", row)
    assert shown == ["1,000", "1M", "10k"], shown


def test_the_profile_map_writes_trillions_and_nought_as_figures() -> None:
    """Past a billion the map had no word: a mean of 2.5e12 (a bank's balances in rupiah)
    read '2.5e+03B' and 999.6 billion, rounding up, '1e+03B', what 6165318 mended for a
    thousand and a million; a mean of -0.0 read '-0'."""
    from app.training.report.plots import profile_plot

    m = make_manifest(n_segments=3, categorical=False, outcomes=False, rule=False)
    name = m.features[0].name
    for segment, mean in zip(m.segments, (999.6e9, 2.5e12, -0.0), strict=True):
        segment.numeric[name].mean = mean
    heat = profile_plot(m, {s.id: "#1f77b4" for s in m.segments})
    assert heat is not None
    row = heat.split(f'<th scope="row">{m.features[0].label}')[1].split("</tr>")[0]
    shown = re.findall(r">([^<>]+)</td>", row)
    assert shown == ["1T", "2.5T", "0"], shown


def test_the_candidate_table_says_why_a_candidate_was_not_admissible() -> None:
    """A marketing table's candidate table read "no" eleven times: which rule each candidate
    had failed (a segment under the smallest share, a refit under the stability floor) was
    left to the reader. Each says it, and an admissible one under the silhouette floor
    (balanced: not ranked) says that too."""
    m = make_manifest()

    def point(k: int, share: float, admissible: bool, **more: float) -> SelectionPoint:
        return SelectionPoint(
            k=k,
            silhouette=0.3,
            min_share=share,
            admissible=admissible,
            algorithm="kmeans",
            effects={"churned": 0.2},
            **more,
        )

    m.selection = m.selection.model_copy(
        update={
            "method": "balanced",
            "chosen_k": 3,
            "chosen_algorithm": "kmeans",
            "curve": [
                point(3, 0.2, True, stability=0.95, score=1.0),
                point(4, 0.2, True, stability=0.95),
                point(5, 0.2, False, stability=0.804),
                point(7, 0.2, False, stability=0.897),  # cut, not rounded: not "0.90 < 0.9"
                point(6, 0.002, False),
            ],
        }
    )
    page = render(m)
    table = page[page.index("<h3>Candidates") :].split("</table>")[0]
    verdicts = [
        html.unescape(v) for v in re.findall(r"<td>((?:chosen|yes|no)[^<]*)</td></tr>", table)
    ]
    assert verdicts == [
        "chosen",
        "yes; not ranked: silhouette under 0.5 x the best",
        "no: stability 0.80 < 0.9",
        "no: stability 0.89 < 0.9",
        "no: a segment under 5%",
    ], verdicts


def test_the_segment_table_says_what_its_stability_and_flags_mean() -> None:
    """A new user's report showed each segment's stability (0.961) and flags (converging)
    with no word of what they measure; the section's caption says it."""
    page = " ".join(html.unescape(render(make_manifest())).split())
    assert (
        "Stability: how much of a segment its closest match holds in refits on bootstrap "
        "samples (mean Jaccard overlap, 0 to 1; under 0.6 it is flagged unstable). Flagged "
        "segments failed a quality criterion: too small (under 5% of customers), not distinct "
        "(close to all customers on every feature), unstable, or converging (another segment "
        "is close to it, or differs from it on no outcome)"
    ) in page


def test_segment_stabilities_share_one_precision() -> None:
    """Audit (2026-12-07, helper G; the tree report on the example data): the segments
    table's Stability column read 0.996, 0.99, 0.996: three significant digits dropped the
    trailing zero of 0.990, so one figure looked rounder (less precise) than the others."""
    manifest = make_manifest()
    manifest.segments[0].stability = 0.99
    manifest.segments[1].stability = 0.996
    page = render(manifest)
    assert "<td class=num>0.990</td>" in page
    assert "<td class=num>0.996</td>" in page


def test_a_binary_outcomes_means_read_as_rates_as_its_bars_do() -> None:
    """Audit (2026-12-07, helper G; the customer_personality report): the outcome table gave
    a campaign's acceptance as "0.0843 to 0.219", overall 0.149, while the bars under it say
    8% and 22%; a rate reads as a percentage in both."""
    manifest = make_manifest()
    converted = manifest.outcomes[1]
    converted.segment_min, converted.segment_max = 0.0843, 0.219
    manifest.outcomes[0].segment_min, manifest.outcomes[0].segment_max = 150.0, 2400.0
    page = render(manifest)
    assert '<td class="num">8.4% to 21.9%</td><td class="num">50.0%</td>' in page
    assert '<td class="num">150 to 2,400</td><td class="num">600</td>' in page
