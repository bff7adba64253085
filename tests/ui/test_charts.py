"""The charts' geometry: what the SVG draws matches the figures it stands for."""

from __future__ import annotations

import math
import re

from app.colours import segment_colours
from app.registry.manifest import CategoryShare, NumericProfile, SegmentInfo
from app.registry.store import ModelStore
from app.training.job import TrainResult
from app.training.report.plots import profile_plot
from app.ui.charts import NEW, heat_map, sankey, signed, z_colour
from app.ui.render import figure, fmt, p_value

FLOWS = [(None, "a", 30), (None, "b", 10), ("a", "b", 20), ("b", "c", 5), ("a", "c", 1)]


def test_sankey_bands_are_as_wide_as_their_counts_and_fill_their_nodes() -> None:
    chart = sankey(FLOWS, {"a": "Alpha", "b": "Beta", "c": "Gamma"})
    assert chart.total == 66
    assert {(link.source, link.target, link.count) for link in chart.links} == {
        (NEW, "a", 30),
        (NEW, "b", 10),
        ("a", "b", 20),
        ("b", "c", 5),
        ("a", "c", 1),
    }
    per_unit = {link.band / link.count for link in chart.links}
    assert max(per_unit) - min(per_unit) < 1e-9  # one scale for every band
    for nodes, end in ((chart.left, "source"), (chart.right, "target")):
        for node in nodes:
            bands = sum(link.band for link in chart.links if getattr(link, end) == node.key)
            assert math.isclose(bands, node.height), node
            assert node.y + node.height <= chart.height + 1e-9
    assert chart.left[0].label == "new customers"
    assert next(x for x in chart.links if x.source == "b").title == "Beta → Gamma: 5"


def test_an_empty_window_draws_nothing() -> None:
    chart = sankey([], {})
    assert (chart.total, chart.links, chart.left, chart.right) == (0, [], [], [])


def test_heat_map_has_a_cell_per_segment_and_profile_row(
    trained: tuple[ModelStore, TrainResult],
) -> None:
    manifest = trained[1].manifest
    labels = {f.name: f.label for f in manifest.features}
    heat = heat_map(manifest.segments, labels)
    numeric = [f for f in labels if f in manifest.segments[0].numeric]
    categories = sum(len(v) for v in manifest.segments[0].categorical.values())
    assert len(heat.rows) == len(numeric) + categories
    assert len(heat.cells) == len(heat.rows) * len(manifest.segments)
    seg = manifest.segments[0]
    feature = numeric[0]
    cell = next(c for c in heat.cells if c.title.startswith(f"{seg.name} ({seg.id}), "))
    assert cell.z == seg.numeric[feature].z


def test_colours_run_blue_to_white_to_red() -> None:
    assert z_colour(0.0) == "#f7f7f7"
    assert z_colour(5.0) == z_colour(2.0) == "#b2182b"
    assert z_colour(-2.0) == "#2166ac"


def test_heat_map_reads_as_words_to_a_marketer() -> None:
    """Audit (2026-12-07, helper G): the dashboard's heat map printed the internal bucket
    ``acquisition channel = __missing__`` as a row label, and a z that rounds to zero as
    ``-0.0``, beside ``+0.0`` (the customers example, screenshot k8-segments-1280)."""
    share = CategoryShare(share=0.1, population_share=0.1, z=-0.004)
    seg = SegmentInfo(
        id="seg-001",
        name="Lapsed",
        kind="cluster",
        description="",
        size=10,
        share=1.0,
        numeric={"recency": NumericProfile(mean=1.0, median=1.0, z=-0.03)},
        categorical={
            "channel": {"__missing__": share, "paid": share.model_copy(update={"z": 1.26})}
        },
    )
    heat = heat_map([seg], {"recency": "recency", "channel": "acquisition channel"})
    assert [label for _, label in heat.rows] == [
        "recency",
        "acquisition channel = (missing)",
        "acquisition channel = paid",
    ]
    assert [c.text for c in heat.cells] == ["0.0", "0.0", "+1.3"]
    assert signed(-0.004, 2) == "0.00" and signed(-0.006, 2) == "-0.01"


def test_a_p_value_too_small_to_print_is_not_shown_as_zero() -> None:
    """The segments page's outcome table printed p = 0.0000 for p < 0.00005 (every outcome of
    the customers example): a p-value is never zero; the report says ``p < 0.001``."""
    assert p_value(1e-300) == "<\u00a00.0001"  # a no-break space: one line in a narrow column
    assert p_value(0.0) == "<\u00a00.0001"
    assert p_value(0.01234) == "0.0123"
    assert p_value(None) == "—"


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours."""

    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_heat_map_figures_are_readable_on_every_colour(
    trained: tuple[ModelStore, TrainResult],
) -> None:
    """Audit (2026-12-07, helper G): the figure in a heat-map cell switched from dark to white
    at a fixed |z|, so just past it white stood on a mid blue at 2.7:1 (dashboard, z = -1.21)
    and 3.3:1 (report); WCAG AA asks 4.5:1 for text this small (11 px)."""
    zs = [z / 100 for z in range(-300, 301)]
    seg = SegmentInfo(
        id="seg-001",
        name="Lapsed",
        kind="cluster",
        description="",
        size=10,
        share=1.0,
        numeric={f"f{i}": NumericProfile(mean=1.0, median=1.0, z=z) for i, z in enumerate(zs)},
    )
    heat = heat_map([seg], {f"f{i}": f"f{i}" for i in range(len(zs))})
    worst = min(heat.cells, key=lambda c: contrast(c.fill, c.ink))
    assert contrast(worst.fill, worst.ink) >= 4.5, worst
    manifest = trained[1].manifest.model_copy(deep=True)
    for limit in (1.0, 1.7, 2.2, 3.0):
        segment = manifest.segments[0]
        for i, feature in enumerate(segment.numeric):
            segment.numeric[feature].z = limit * (i / max(len(segment.numeric) - 1, 1) * 2 - 1)
        table = profile_plot(manifest, segment_colours([s.id for s in manifest.segments]))
        assert table is not None
        for fill, ink in re.findall(r"background:(#[0-9a-f]{6});color:(#[0-9a-f]{6})", table):
            assert contrast(fill, ink) >= 4.5, (limit, fill, ink)


def test_a_stored_value_a_hair_below_zero_reads_0_not_minus_0() -> None:
    """A balance summed from credits and debits, 0.1 + 0.2 - 0.3 negated (-5.55e-17), read
    '-0' on the customer page: rounded to no digit, it is nought without a sign."""
    assert figure(-(0.1 + 0.2 - 0.3)) == "0"
    assert figure(-1e-20) == "0"
    assert figure(-0.0) == "0"
    assert figure(-0.001) == "-0.001"
    assert figure(-1234567.5) == "-1,234,567.5"


def test_a_table_figure_that_rounds_to_nought_has_no_sign() -> None:
    """A feature's mean of -0.0002 on the heat map's table, a silhouette of -0.0001, read
    '-0.000': nought, signed."""
    assert fmt(-0.0002) == "0.000"
    assert fmt(-0.0) == "0.000"
    assert fmt(-0.4, 0) == "0"
    assert fmt(-0.0006) == "-0.001"
    assert fmt(-1234.5) == "-1,234.500"
    assert fmt(None) == "—"


def test_the_missing_bucket_is_not_a_category_written_missing() -> None:
    """The heat map named the missing-value bucket ``acquisition channel = missing``, as a
    column holding the text 'missing' (a survey's answer) names its own category: two rows
    of one label, which read the same and differ. The bucket's word is in brackets, as the
    report and the dashboard's table set it apart in italics."""
    share = CategoryShare(share=0.1, population_share=0.1, z=0.5)
    seg = SegmentInfo(
        id="seg-001",
        name="Lapsed",
        kind="cluster",
        description="",
        size=10,
        share=1.0,
        numeric={},
        categorical={"channel": {"__missing__": share, "missing": share, "__": share}},
    )
    heat = heat_map([seg], {"channel": "channel"})
    labels = [label for _, label in heat.rows]
    assert len(set(labels)) == len(labels) == 3, labels
    assert "channel = (missing)" in labels and "channel = missing" in labels
