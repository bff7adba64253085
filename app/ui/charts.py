"""Geometry of the dashboard's charts, drawn as server-rendered SVG by the templates.

Each chart is plain data (positions, sizes, colours, labels) so the templates stay free of
arithmetic and every shape can carry a ``<title>`` naming what it shows. Pages also print the
same figures as a table: the text alternative for screen readers and for printing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.colours import ink_on, z_colour
from app.registry.manifest import FeatureSchema, SegmentInfo
from app.words import INFREQUENT_CATEGORY, rare_group


@dataclass(frozen=True)
class Cell:
    x: float
    y: float
    z: float
    fill: str
    ink: str
    title: str
    text: str  # the z printed in the cell


@dataclass(frozen=True)
class HeatMap:
    width: float
    height: float
    cell_w: float
    cell_h: float
    left: float
    top: float
    columns: list[tuple[float, str, str]]  # x of the centre, segment id, name
    rows: list[tuple[float, str]]  # y of the centre, feature label
    cells: list[Cell]


def signed(z: float, digits: int = 1) -> str:
    """A z with its sign, and a z that rounds to zero as plain zero (not ``-0.0``)."""
    text = f"{z:+.{digits}f}"
    return text[1:] if float(text) == 0 else text


def category_label(category: str, infrequent: Sequence[str] | None = None) -> str:
    """A reserved bucket as the words it stands for: the encoder's rare categories
    (``__infrequent__``, ``infrequent`` its feature's) as ``other (3 rare: Absurd, Alone,
    YOLO)``, another (``__missing__``) as its word in brackets, ``(missing)``: a column may
    hold the text 'missing' too (the report and the dashboard's table set the bucket apart
    in italics, which an SVG row label has not)."""
    if category == INFREQUENT_CATEGORY:
        return rare_group(infrequent or [])
    word = category.strip("_")
    reserved = category.startswith("__") and category.endswith("__") and word
    return f"({word})" if reserved else category


def rare_of(features: Sequence[FeatureSchema]) -> dict[str, list[str]]:
    """Categorical feature -> its encoder's infrequent categories (the manifest's schema)."""
    return {f.name: f.infrequent for f in features if f.infrequent}


def heat_map(
    segments: Sequence[SegmentInfo],
    labels: Mapping[str, str],
    features: Sequence[FeatureSchema] = (),
) -> HeatMap:
    """Features (rows) by segments (columns), each cell the segment's standardised difference
    from the population; categorical features contribute one row per category, the rare ones
    the model groups one row (``features``' ``infrequent`` name them)."""
    rare = rare_of(features)
    rows: list[tuple[str, dict[str, float]]] = []
    for feature, label in labels.items():
        if any(feature in s.numeric for s in segments):
            zs = {s.id: s.numeric[feature].z for s in segments if feature in s.numeric}
            rows.append((label, zs))
        categories = sorted({c for s in segments for c in s.categorical.get(feature, {})})
        for category in categories:
            values = {
                s.id: s.categorical[feature][category].z
                for s in segments
                if category in s.categorical.get(feature, {})
            }
            text = category_label(category, rare.get(feature))
            rows.append((f"{label} = {text}", values))
    cell_w, cell_h, left, top = 56.0, 24.0, 250.0, 30.0
    columns = [(left + (i + 0.5) * cell_w, s.id, s.name) for i, s in enumerate(segments)]
    cells = []
    for r, (label, values) in enumerate(rows):
        for c, seg in enumerate(segments):
            if seg.id not in values:
                continue
            z = values[seg.id]
            title = f"{seg.name} ({seg.id}), {label}: z = {signed(z, 2)}"
            x, y = left + c * cell_w, top + r * cell_h
            fill = z_colour(z)
            cells.append(Cell(x, y, z, fill, ink_on(fill), title, signed(z)))
    return HeatMap(
        width=left + cell_w * len(segments) + 4,
        height=top + cell_h * len(rows) + 4,
        cell_w=cell_w,
        cell_h=cell_h,
        left=left,
        top=top,
        columns=columns,
        rows=[(top + (r + 0.5) * cell_h, label) for r, (label, _) in enumerate(rows)],
        cells=cells,
    )


@dataclass(frozen=True)
class Node:
    key: str
    label: str
    x: float
    y: float
    height: float
    count: int


@dataclass(frozen=True)
class Link:
    source: str
    target: str
    count: int
    band: float  # its thickness, proportional to count
    path: str
    title: str


@dataclass(frozen=True)
class Sankey:
    width: float
    height: float
    node_w: float
    left: list[Node]
    right: list[Node]
    links: list[Link]
    total: int


NEW = "new"  # the origin of a first assignment


def sankey(
    flows: Sequence[tuple[str | None, str, int]], names: Mapping[str, str], height: float = 420
) -> Sankey:
    """Who moved from where (left) to where (right): one band per (from, to) pair, as wide as
    its count. First assignments come from the node ``new``."""
    width, node_w, gap, side = 860.0, 14.0, 8.0, 215.0  # side: room for the labels
    out: dict[str, int] = {}
    into: dict[str, int] = {}
    for origin, target, count in flows:
        out[origin or NEW] = out.get(origin or NEW, 0) + count
        into[target] = into.get(target, 0) + count
    total = sum(out.values())

    def label(key: str) -> str:
        return "new customers" if key == NEW else names.get(key, key)

    most = max(len(out), len(into), 1)
    scale = (height - gap * (most - 1)) / total if total else 0.0  # one scale for both sides

    def column(totals: dict[str, int], x: float) -> list[Node]:
        keys = sorted(totals, key=lambda k: (k != NEW, k))
        nodes, y = [], 0.0
        for key in keys:
            h = max(1.0, totals[key] * scale)
            nodes.append(Node(key, label(key), x, y, h, totals[key]))
            y += h + gap
        return nodes

    left, right = column(out, side), column(into, width - side - node_w)
    left_at = {n.key: n.y for n in left}
    right_at = {n.key: n.y for n in right}
    links = []
    ordered = sorted(flows, key=lambda f: ((f[0] or NEW) != NEW, f[0] or NEW, f[1]))
    for origin, target, count in ordered:
        source = origin or NEW
        band = count * scale
        y0, y1 = left_at[source], right_at[target]
        left_at[source] += band
        right_at[target] += band
        x0, x1 = side + node_w, width - side - node_w
        mid = (x0 + x1) / 2
        path = (
            f"M{x0:.1f},{y0:.1f} C{mid:.1f},{y0:.1f} {mid:.1f},{y1:.1f} {x1:.1f},{y1:.1f} "
            f"L{x1:.1f},{y1 + band:.1f} C{mid:.1f},{y1 + band:.1f} {mid:.1f},{y0 + band:.1f} "
            f"{x0:.1f},{y0 + band:.1f} Z"
        )
        title = f"{label(source)} → {label(target)}: {count}"
        links.append(Link(source, target, count, band, path, title))
    return Sankey(width, height, node_w, left, right, links, total)
