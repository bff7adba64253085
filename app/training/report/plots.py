"""The report's figures, as inline SVG and HTML: no image, no plotting library.

Each figure is markup the browser lays out: bars and the heat map are HTML tables, so a
segment's whole name wraps in its cell and is never cut off; the selection curve and the
projection are SVG, each with a ``<title>`` and ``<desc>`` (what it shows, for screen
readers), and each shape a reader points at says its figures. Every text taken from the
manifest goes through ``html.escape``. (The figures were matplotlib PNGs until 2026-12-06:
drawing them was 0.5 s of a million-customer training, and importing matplotlib another
0.3 s; see bench/README.md.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

import numpy as np

from app.colours import ink_on, z_colour
from app.registry.manifest import Manifest, SelectionPoint
from app.training.selection import segment_floor

Colours = dict[str, str]  # segment id -> hex colour
INK, MUTED, OTHER, LINE, CHOSEN, ADMISSIBLE = (
    "#1f2328", "#5f6b7a", "#9aa3ad", "#c5cbd3", "#d62728", "#1f77b4",
)  # fmt: skip
MISSING = "#eceef1"  # a heat-map cell without a profile
CSS = """
.bars{width:100%;font-size:12px}.bars th{font-weight:400;color:inherit;font-size:12px;
width:38%;overflow-wrap:anywhere}.bars td{padding:3px 6px;vertical-align:middle}
.track{position:relative;height:18px;min-width:60px}
.track span{position:absolute;top:50%;height:14px;margin-top:-7px}
.track .at{border-left:1.5px dashed #5f6b7a;top:-3px;bottom:-3px;height:auto;margin:0}
.track .zero{border-left:1px solid #c5cbd3;top:-3px;bottom:-3px;height:auto;margin:0}
.outcomes{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(330px,100%),1fr));gap:18px}
.outcomes h3{margin:6px 0 0}.outcomes .test{margin:0 0 4px;font-size:12px}
.sig{color:#a4161a}
table.heat{width:auto;font-size:12px}.heat td{text-align:center;min-width:58px;
font-variant-numeric:tabular-nums;border:1px solid #fff}.heat th{font-size:11px;
vertical-align:bottom;max-width:130px;overflow-wrap:anywhere}.heat th[scope=row]{max-width:none;
min-width:9em;font-size:12px;color:inherit;font-weight:400;vertical-align:middle}
.scale{display:flex;align-items:center;gap:6px;font-size:11px;color:#5f6b7a;margin:6px 0}
.scale .ramp{display:inline-block;width:160px;height:10px;border-radius:2px}
.key{font-size:12px;color:#5f6b7a;margin:4px 0 0}.key span{margin-right:14px;
display:inline-block}.legend{list-style:none;margin:0;padding:0;font-size:12px}
.legend li{margin:2px 0;overflow-wrap:anywhere}
.scatter{display:grid;grid-template-columns:minmax(0,3fr) minmax(180px,1fr);gap:12px;
align-items:start}
@media (max-width:900px){.scatter{grid-template-columns:minmax(0,1fr)}}
svg{max-width:100%;height:auto;display:block}
/* bars and heat-map cells are backgrounds, which printing leaves out unless told */
.bars,.heat,.scale,.sw,table.cat{-webkit-print-color-adjust:exact;print-color-adjust:exact}
"""


def selection_plot(m: Manifest) -> str:
    """Silhouette by k (a line per algorithm); admissible candidates as dots, the others as
    crosses, the chosen one ringed."""
    # (a silhouette that could not be measured, NaN, is no point to draw)
    curve = sorted((p for p in m.selection.curve if math.isfinite(p.silhouette)), key=lambda p: p.k)
    if not curve:
        return '<figure><p class="muted">No selection curve.</p></figure>'
    algorithms = list(dict.fromkeys(p.algorithm for p in curve))
    named = [a for a in algorithms if a is not None] if len(algorithms) > 1 else []
    right = 16.0 + 7.0 * max(map(len, named), default=0)  # room for each line's name
    width, height, left, top, bottom = 470.0 + right, 300.0, 56.0, 12.0, 42.0
    ks = sorted({p.k for p in curve})
    values = [p.silhouette for p in curve]
    y_ticks = nice_ticks(min(values), max(values))
    x_of = _scale(ks[0] - 0.5, ks[-1] + 0.5, left, width - right)
    y_of = _scale(y_ticks[0], y_ticks[-1], height - bottom, top)
    parts = _axes(width, height, left, right, top, bottom, [(x_of(k), str(k)) for k in ks],
                  [(y_of(v), f"{v:g}") for v in y_ticks],
                  _count_label(m, curve), "silhouette")  # fmt: skip
    for algorithm in algorithms:  # one line per algorithm
        line = [p for p in curve if p.algorithm == algorithm]
        points = " ".join(f"{x_of(p.k):.1f},{y_of(p.silhouette):.1f}" for p in line)
        parts.append(f'<polyline points="{points}" fill="none" stroke="{LINE}"/>')
        if algorithm in named:
            end = line[-1]
            parts.append(_text(x_of(end.k) + 8, y_of(end.silhouette) + 4, algorithm, MUTED))
    sel = m.selection
    for p in curve:
        x, y = x_of(p.k), y_of(p.silhouette)
        tip = f"<title>{escape(_point_title(p))}</title>"
        if p.admissible:
            dot = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{ADMISSIBLE}">'
            parts.append(f"{dot}{tip}</circle>")
        else:
            parts.append(
                f'<path d="M{x - 4:.1f} {y - 4:.1f}l8 8m0 -8l-8 8" stroke="{OTHER}" '
                f'stroke-width="2">{tip}</path>'
            )
    won = [p for p in curve if p.k == sel.chosen_k]
    chosen = next((p for p in won if p.algorithm == (sel.chosen_algorithm or p.algorithm)), None)
    if chosen is not None:
        parts.append(
            f'<circle cx="{x_of(chosen.k):.1f}" cy="{y_of(chosen.silhouette):.1f}" r="10" '
            f'fill="none" stroke="{CHOSEN}" stroke-width="2"/>'
        )
    desc = f"Silhouette of each candidate number of segments, {len(curve)} candidates; " + (
        f"chosen: k = {chosen.k}." if chosen else "none chosen."
    )
    key = (
        f'<p class="key"><span style="color:{ADMISSIBLE}">● admissible</span>'
        f'<span style="color:{OTHER}">✕ inadmissible (a segment too small or unstable)</span>'
        + (f'<span style="color:{CHOSEN}">◯ chosen k = {chosen.k}</span>' if chosen else "")
        + "</p>"
    )
    return f"<figure>{_svg(width, height, 'k-selection curve', desc, parts)}{key}</figure>"


def sizes_plot(m: Manifest, colours: Colours) -> str:
    """Each segment's share of customers, against the floor the selection held clusters to
    (20 customers of a small table, not ``min_share``)."""
    segs = m.segments
    floor = (
        m.selection.min_share
        if m.algorithm == "tree"
        else segment_floor(m.data.rows, m.selection.min_share)
    )
    drawn = floor * m.selection.k_min <= 1  # a floor no k could hold is not drawn at 300%
    high = max([s.share for s in segs] + ([floor] if drawn else []) + [0.01])
    rows = [
        (
            f"{s.id} {s.name}",
            colours[s.id],
            s.share,
            f"{s.size:,} · {s.share:.1%}",
            f"{s.id} {s.name}: {s.size:,} customers, {s.share:.1%}",
        )
        for s in segs
    ]
    marker = (floor, f"minimum share {floor:.1%}") if drawn else None
    caption = f"Dashed line: the minimum share, {floor:.1%}." if drawn else ""
    return _bars("segment sizes", rows, 0.0, high, marker, caption)


def profile_plot(m: Manifest, colours: Colours) -> str | None:
    """Numeric features (rows) by segments (columns): each cell the segment's mean in
    original units, coloured by how far it lies from the population's, in SDs."""
    # a transform named only where there is one: "age (none)" read as an age of no value
    labels = {
        f.name: f.label + (f" ({f.transform})" if f.transform not in (None, "none") else "")
        for f in m.features
    }
    feats = [f.name for f in m.features if f.type == "numeric"]
    feats += sorted({n for s in m.segments for n in s.numeric} - set(feats))
    segs = m.segments
    if not feats or not segs:
        return None
    zs = [abs(s.numeric[f].z) for f in feats for s in segs if f in s.numeric]
    finite = [z for z in zs if math.isfinite(z)]
    limit = min(max(max(finite, default=1.0), 1.0), 3.0)
    head = "".join(
        f'<th scope="col" style="border-top:6px solid {colours[s.id]}">{escape(s.id)}<br>'
        f'<span class="muted">{escape(s.name)}</span></th>'
        for s in segs
    )
    rows = []
    for f in feats:
        label = labels.get(f, f)
        cells = []
        for s in segs:
            profile = s.numeric.get(f)
            if profile is None or not math.isfinite(profile.z):
                cells.append(f'<td style="background:{MISSING}" title="no profile">–</td>')
                continue
            fill = z_colour(profile.z, limit)
            mean = short_num(profile.mean)
            title = f"{s.id} {s.name}, {label}: mean {mean}, z = {profile.z:+.2f}"
            cells.append(
                f'<td style="background:{fill};color:{ink_on(fill)}" '
                f'title="{escape(title)}">{mean}</td>'
            )
        rows.append(f'<tr><th scope="row">{escape(label)}</th>{"".join(cells)}</tr>')
    ramp = ",".join(z_colour(z, limit) for z in np.linspace(-limit, limit, 9))
    scale = (
        f'<p class="scale"><span>−{limit:.2g}</span><span class="ramp" '
        f'style="background:linear-gradient(90deg,{ramp})"></span><span>+{limit:.2g}</span>'
        "<span>z (SDs from the population mean)</span></p>"
    )
    return (
        f'<figure><div style="overflow-x:auto"><table class="heat" aria-label="profile heat map">'
        f"<tr><th></th>{head}</tr>{''.join(rows)}</table></div>{scale}</figure>"
    )


def projection_plot(m: Manifest, colours: Colours, xy: np.ndarray, ids: Sequence[str]) -> str:
    """A sample of customers on the first two principal components, coloured by segment."""
    if not len(ids):
        return '<figure><p class="muted">No projected customers.</p></figure>'
    xy = np.asarray(xy, dtype=float).reshape(len(ids), -1)
    xy = np.column_stack([xy, np.zeros((len(xy), 2))])[:, :2]  # pad a 1-D projection
    width, height, left, right, top, bottom = 860.0, 470.0, 52.0, 10.0, 10.0, 42.0
    x_ticks = nice_ticks(float(xy[:, 0].min()), float(xy[:, 0].max()))
    y_ticks = nice_ticks(float(xy[:, 1].min()), float(xy[:, 1].max()))
    x_of = _scale(x_ticks[0], x_ticks[-1], left, width - right)
    y_of = _scale(y_ticks[0], y_ticks[-1], height - bottom, top)
    parts = _axes(width, height, left, right, top, bottom,
                  [(x_of(v), f"{v:g}") for v in x_ticks], [(y_of(v), f"{v:g}") for v in y_ticks],
                  "principal component 1", "principal component 2")  # fmt: skip
    segment_of, present = np.asarray(ids), set(ids)
    names = {s.id: s.name for s in m.segments}
    shown = [s.id for s in m.segments if s.id in present]
    shown += sorted(present - set(shown))
    rows = {segment: segment_of == segment for segment in shown}
    # each segment one path of dots (a zero-length line with round caps per customer):
    # thousands of points at a few bytes each; the largest segments first, so the
    # smaller ones stay visible on top
    for segment in sorted(shown, key=lambda s: -int(rows[s].sum())):
        at = xy[rows[segment]]
        dots = "".join(f"M{x_of(x):.1f} {y_of(y):.1f}h0" for x, y in at)
        title = f"{segment} {names.get(segment, '')}: {len(at):,} of the {len(ids):,} shown"
        parts.append(
            f'<path d="{dots}" stroke="{colours.get(segment, OTHER)}" stroke-width="4.5" '
            f'stroke-linecap="round" stroke-opacity="0.6"><title>{escape(title)}</title></path>'
        )
    desc = f"{len(ids):,} customers in {len(shown)} segments, on two principal components"
    legend = "".join(
        f'<li><span class="sw" style="background:{colours.get(s, OTHER)}"></span>'
        f"{escape(s)} {escape(names.get(s, ''))}</li>"
        for s in shown
    )
    svg = _svg(width, height, "2-D projection of customers", desc, parts)
    return f'<figure class="scatter">{svg}<ul class="legend">{legend}</ul></figure>'


def outcome_plot(m: Manifest, colours: Colours) -> str | None:
    """Each outcome's mean per segment beside its overall mean, with its test."""
    tests, segs = m.outcomes, m.segments
    if not tests or not segs:
        return None
    blocks = []
    for test in tests:
        binary = test.kind == "binary"
        values = [s.outcomes.get(test.name) for s in segs]

        def shown(value: float | None, binary: bool = binary) -> str:
            return "n/a" if value is None else f"{value:.0%}" if binary else short_num(value)

        rows = [
            (
                s.id,
                colours[s.id],
                v,
                shown(v),
                f"{s.id} {s.name}: {test.name} {shown(v)}",
            )
            for s, v in zip(segs, values, strict=True)
        ]
        known = [v for v in values if v is not None]
        mean = test.overall_mean
        low = min([0.0, *known, *([mean] if mean is not None else [])])
        high = max([0.0, *known, *([mean] if mean is not None else [])])
        marker = (mean, f"overall {shown(mean)}") if mean is not None else None
        caption = f"Dashed line: overall {shown(mean)}." if mean is not None else ""
        p = test.p_value
        pv = "p n/a" if p is None else "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
        mark = ' class="test sig"' if test.significant else ' class="test muted"'
        blocks.append(
            f"<div><h3>{escape(test.name)}</h3><p{mark}>{escape(test.test)}, {pv}</p>"
            f"{_bars(f'{test.name} by segment', rows, low, high, marker, caption)}</div>"
        )
    return f'<div class="outcomes">{"".join(blocks)}</div>'


Bar = tuple[str, str, float | None, str, str]  # label, colour, value, value shown, title


def _bars(
    label: str,
    rows: Sequence[Bar],
    low: float,
    high: float,
    marker: tuple[float, str] | None,
    caption: str,
) -> str:
    """Horizontal bars as a table: the label wraps in its cell, the figure beside the bar;
    a bar runs from zero to its value on the scale ``low``..``high``."""
    at = _scale(low, high if high > low else low + 1.0, 0.0, 100.0)
    zero = at(0.0)
    lines = []
    for name, colour, value, shown, title in rows:
        track = f'<span class="zero" style="left:{zero:.2f}%"></span>' if low < 0 else ""
        if value:  # (none at 0: an empty segment showed a sliver)
            start, end = sorted((zero, at(value)))
            track += (
                f'<span style="left:{start:.2f}%;width:{max(end - start, 0.3):.2f}%;'
                f'background:{colour}"></span>'
            )
        if marker is not None:
            track += (
                f'<span class="at" style="left:{at(marker[0]):.2f}%" '
                f'title="{escape(marker[1])}"></span>'
            )
        lines.append(
            f'<tr title="{escape(title)}"><th scope="row">{escape(name)}</th>'
            f'<td class="track">{track}</td><td class="num">{escape(shown)}</td></tr>'
        )
    cap = f'<figcaption class="key">{escape(caption)}</figcaption>' if caption else ""
    return (
        f'<figure><table class="bars" aria-label="{escape(label)}">{"".join(lines)}</table>'
        f"{cap}</figure>"
    )


def _svg(width: float, height: float, title: str, desc: str, parts: Sequence[str]) -> str:
    return (
        f'<svg viewBox="0 0 {width:g} {height:g}" width="{width:g}" role="img" '
        'font-size="12" '
        f'font-family="system-ui,-apple-system,Segoe UI,Roboto,Arial,sans-serif">'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>{''.join(parts)}</svg>"
    )


def _axes(
    width: float,
    height: float,
    left: float,
    right: float,
    top: float,
    bottom: float,
    x_ticks: Sequence[tuple[float, str]],
    y_ticks: Sequence[tuple[float, str]],
    x_label: str,
    y_label: str,
) -> list[str]:
    """Two axis lines with their ticks, tick labels and titles."""
    base, edge = height - bottom, width - right
    parts = [
        f'<path d="M{left:g} {top:g}V{base:g}H{edge:g}" fill="none" stroke="{LINE}"/>',
        *(f'<path d="M{x:.1f} {base:g}v4" stroke="{LINE}"/>' for x, _ in x_ticks),
        *(_text(x, base + 17, t, MUTED, "middle") for x, t in x_ticks),
        *(f'<path d="M{left - 4:g} {y:.1f}h4" stroke="{LINE}"/>' for y, _ in y_ticks),
        *(_text(left - 7, y + 4, t, MUTED, "end") for y, t in y_ticks),
        _text((left + edge) / 2, height - 6, x_label, MUTED, "middle"),
    ]
    mid = (top + base) / 2
    parts.append(
        f'<text x="14" y="{mid:.1f}" fill="{MUTED}" text-anchor="middle" '
        f'transform="rotate(-90 14 {mid:.1f})">{escape(y_label)}</text>'
    )
    return parts


def _text(x: float, y: float, text: str, colour: str, anchor: str = "start") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" fill="{colour}" text-anchor="{anchor}">'
        f"{escape(text)}</text>"
    )


def _scale(lo: float, hi: float, start: float, end: float) -> Callable[[float], float]:
    """The linear map of ``lo``..``hi`` onto ``start``..``end``."""
    span = (hi - lo) or 1.0

    def at(value: float) -> float:
        return start + (value - lo) / span * (end - start)

    return at


def _count_label(m: Manifest, curve: Sequence[SelectionPoint]) -> str:
    """What the curve's x counts: a tree model's leaves, clusters, or both where a tree was
    among the candidates (``algorithms = [..., "tree"]``)."""
    kinds = {p.algorithm for p in curve}
    if m.algorithm == "tree" and kinds <= {None, "tree"}:
        return "number of leaves"
    return "number of clusters k or leaves" if "tree" in kinds else "number of clusters k"


def _point_title(p: SelectionPoint) -> str:
    which = f" ({p.algorithm})" if p.algorithm else ""
    stability = f", stability {p.stability:.2f}" if p.stability is not None else ""
    verdict = "admissible" if p.admissible else "inadmissible"
    return (
        f"k = {p.k}{which}: silhouette {p.silhouette:.3f}, smallest segment "
        f"{p.min_share:.1%}{stability}, {verdict}"
    )


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering ``lo``..``hi`` (about ``count`` of them)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    raw = (hi - lo) / max(count - 1, 1)
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if step * m >= raw)
    first = math.floor(lo / step) * step
    ticks = [first]
    while ticks[-1] < hi - 1e-9 * step:
        ticks.append(ticks[-1] + step)
    return [round(t, 10) for t in ticks]


def short_num(value: float) -> str:
    """A figure in at most five characters: ``43.1k``, ``2.5M``, ``0.674``; four digits whole
    (``1,958``, as wide as ``1.96k``): a heat map showed the birth years of four segments,
    1958 to 1978, as ``1.96k``, ``1.97k``, ``1.97k`` and ``1.98k``."""
    # each bound compared with the figure as rounded for display: 999.96 read "1e+03",
    # 999,999.9 "1e+03k" and 9,999.6 "10,000"
    if not math.isfinite(value):
        return f"{value:.3g}"
    if 1e3 <= abs(round(value)) < 1e4:
        return f"{round(value):,.0f}"
    shown = abs(float(f"{value:.3g}"))
    if shown >= 1e15:  # past the words: '1.5e+15', not '1.5e+03T'
        return f"{value:.2g}"
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if shown >= limit:
            return f"{float(f'{value:.3g}') / limit:.3g}{suffix}"
    return f"{value + 0.0:.3g}"  # (+ 0.0: a mean of -0.0 read '-0')
