"""The charts' geometry: what the SVG draws matches the figures it stands for."""

from __future__ import annotations

import math

from app.registry.store import ModelStore
from app.training.job import TrainResult
from app.ui.charts import NEW, heat_map, sankey, z_colour

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
