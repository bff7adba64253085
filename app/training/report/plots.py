"""The report's figures: matplotlib ``Figure`` objects (Agg canvas) embedded as inline PNGs.

No pyplot and no rcParams changes, so drawing touches no global matplotlib state. Each segment
keeps the colour the page gives it; text from the manifest has ``$`` escaped (``mpl``) so
mathtext never interprets it.
"""

from __future__ import annotations

import base64
import io
import textwrap
from collections.abc import Sequence
from html import escape
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import PercentFormatter

from app.registry.manifest import Manifest
from app.training.selection import segment_floor

Colours = dict[str, str]  # segment id -> hex colour
INK, MUTED, OTHER, LINE = "#1f2328", "#5f6b7a", "#9aa3ad", "#c5cbd3"
NOTE: dict[str, Any] = {"fontsize": 8, "color": MUTED}
LEGEND: dict[str, Any] = {"frameon": False, "fontsize": 8, "title": "segment", "title_fontsize": 8}
TAG: dict[str, Any] = {"xytext": (3, 0), "textcoords": "offset points", "va": "center", **NOTE}
SAVE: dict[str, Any] = {"format": "png", "dpi": 100, "facecolor": "white"}


def selection_plot(m: Manifest) -> Figure:
    fig, ax = figure(5.6, sizes_height(m))
    curve = sorted(m.selection.curve, key=lambda p: p.k)
    if not curve:
        ax.text(0.5, 0.5, "no selection curve", ha="center", transform=ax.transAxes, **NOTE)
        return fig
    for algorithm in dict.fromkeys(p.algorithm for p in curve):  # one line per algorithm
        line = [p for p in curve if p.algorithm == algorithm]
        ax.plot([p.k for p in line], [p.silhouette for p in line], color=LINE, zorder=1)
        if algorithm is not None and len({p.algorithm for p in curve}) > 1:
            ax.annotate(f" {algorithm}", (line[-1].k, line[-1].silhouette), **NOTE)
    ok, bad = [p for p in curve if p.admissible], [p for p in curve if not p.admissible]
    ax.scatter([p.k for p in ok], [p.silhouette for p in ok], color="#1f77b4", label="admissible")
    label = "inadmissible (a segment too small or unstable)"
    ax.scatter(
        [p.k for p in bad], [p.silhouette for p in bad], color=OTHER, marker="x", label=label
    )
    sel = m.selection
    for p in curve:
        if p.k == sel.chosen_k and p.algorithm == (sel.chosen_algorithm or p.algorithm):
            label = f"chosen k = {p.k}"
            ax.scatter(p.k, p.silhouette, s=220, fc="none", ec="#d62728", lw=2, label=label)
            break
    ticks = sorted({p.k for p in curve})
    ax.set(xlabel="number of clusters k", ylabel="silhouette", xticks=ticks)
    ax.legend(fontsize=8, frameon=False)
    return fig


def sizes_plot(m: Manifest, colours: Colours) -> Figure:
    segs = m.segments
    # the floor the selection held clusters to (20 customers of a small table, not min_share)
    floor = (
        m.selection.min_share
        if m.algorithm == "tree"
        else segment_floor(m.data.rows, m.selection.min_share)
    )
    min_share = floor * 100
    fig, ax = figure(5.6, sizes_height(m))
    shares = [s.share * 100 for s in segs]
    ax.barh(range(len(segs)), shares, color=[colours[s.id] for s in segs], height=0.7)
    for i, s in enumerate(segs):
        ax.text(shares[i], i, f"  {s.size:,} · {s.share:.1%}", va="center", **NOTE)
    if floor * m.selection.k_min <= 1:  # a floor no k could hold is not drawn at 300%
        ax.axvline(min_share, color=MUTED, ls="--", lw=1)
        ax.text(min_share, -0.75, " minimum share", **NOTE)
    ax.set_yticks(range(len(segs)), [mpl(f"{s.id}  {wrapped(s.name, 28)}") for s in segs])
    ax.set(xlabel="share of customers (%)", xlim=(0, max([*shares, 1]) * 1.3))
    ax.set_ylim(len(segs) - 0.5, -1)
    return fig


def profile_plot(m: Manifest, colours: Colours) -> Figure | None:
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
    z = np.array([[s.numeric[f].z if f in s.numeric else np.nan for s in segs] for f in feats])
    mean = [[s.numeric[f].mean if f in s.numeric else None for s in segs] for f in feats]
    limit = float(np.clip(np.nanmax(np.abs(z), initial=1.0), 1.0, 3.0))
    cell = min(1.15, 8.6 / len(segs))  # inches; wider than the page would shrink the text
    fig, ax = figure(2.8 + cell * len(segs), 1.3 + 0.36 * len(feats))
    cmap = colormaps["RdBu_r"].with_extremes(bad="#eceef1")
    image = ax.imshow(np.ma.masked_invalid(z), cmap=cmap, vmin=-limit, vmax=limit, aspect="auto")
    for (i, j), value in np.ndenumerate(np.array(mean, dtype=object)):
        dark = value is not None and abs(z[i, j]) > 0.6 * limit
        text = "–" if value is None else short_num(value)
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else INK)
    for j, s in enumerate(segs):  # a strip of segment colours above the columns
        ax.add_patch(Rectangle((j - 0.5, -0.95), 1, 0.35, color=colours[s.id], clip_on=False))
    wrap = max(8, int(cell * 14))
    names = [mpl(f"{s.id}\n" + "\n".join(textwrap.wrap(s.name, wrap))) for s in segs]
    ax.set_xticks(range(len(segs)), names, fontsize=7.5)
    ax.set_yticks(range(len(feats)), [mpl(labels.get(f, f)) for f in feats], fontsize=8.5)
    ax.tick_params(length=0)
    ax.spines[:].set_visible(False)
    bar = fig.colorbar(image, ax=ax, shrink=min(1.0, 4 / (0.36 * len(feats) + 1)), pad=0.02)
    bar.set_label("z (SDs from population mean)", **NOTE)
    bar.ax.tick_params(labelsize=7.5, colors=MUTED)
    bar.outline.set_visible(False)
    return fig


def projection_plot(m: Manifest, colours: Colours, xy: np.ndarray, ids: Sequence[str]) -> Figure:
    fig, ax = figure(11.5, 6.5)
    if not len(ids):
        ax.text(0.5, 0.5, "no projected customers", ha="center", transform=ax.transAxes, **NOTE)
        return fig
    xy = np.asarray(xy, dtype=float).reshape(len(ids), -1)
    xy = np.column_stack([xy, np.zeros((len(xy), 2))])[:, :2]  # pad a 1-D projection
    order = np.random.default_rng(0).permutation(len(xy))  # no segment painted over the rest
    point_colours = [colours.get(ids[i], OTHER) for i in order]
    ax.scatter(xy[order, 0], xy[order, 1], c=point_colours, s=6, alpha=0.6, linewidths=0)
    present = set(ids)
    shown = [s for s in m.segments if s.id in present]
    handles = [Line2D([], [], ls="", marker="o", color=colours[s.id]) for s in shown]
    labels = [mpl(f"{s.id}  {wrapped(s.name, 40)}") for s in shown]
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1), **LEGEND)
    ax.set(xlabel="principal component 1", ylabel="principal component 2")
    return fig


def outcome_plot(m: Manifest, colours: Colours) -> Figure | None:
    tests, segs = m.outcomes, m.segments
    if not tests or not segs:
        return None
    cols = min(3, len(tests))
    rows = -(-len(tests) // cols)
    fig = Figure(figsize=(4.1 * cols, 3.3 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, test in zip(axes, tests, strict=False):
        style(ax)
        values = [s.outcomes.get(test.name) for s in segs]
        ax.bar(range(len(segs)), [v or 0.0 for v in values], color=[colours[s.id] for s in segs])
        for j in (j for j, v in enumerate(values) if v is None):
            ax.text(j, 0, "n/a", ha="center", va="bottom", **NOTE)
        if test.overall_mean is not None:
            mean = test.overall_mean
            ax.axhline(mean, color=INK, ls="--", lw=1)
            text = (
                f"overall\n{mean:.0%}" if test.kind == "binary" else f"overall\n{short_num(mean)}"
            )
            ax.annotate(text, (1, mean), xycoords=("axes fraction", "data"), **TAG)
        p = test.p_value
        pv = "p n/a" if p is None else "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
        ax.set_title(mpl(test.name), fontsize=10, loc="left", fontweight="bold")
        colour = "#a4161a" if test.significant else MUTED
        ax.set_title(f"{test.test}, {pv}", fontsize=8, loc="right", color=colour)
        ax.set_xticks(range(len(segs)), [mpl(s.id) for s in segs], rotation=45, ha="right")
        if test.kind == "binary":
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    for ax in axes[len(tests) :]:
        ax.set_visible(False)
    return fig


def sizes_height(m: Manifest) -> float:
    lines = sum(len(textwrap.wrap(s.name, 28)) or 1 for s in m.segments)  # wrapped labels
    return max(3.2, 0.42 * len(m.segments) + 0.16 * (lines - len(m.segments)) + 1.0)


def figure(width: float, height: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.subplots()
    style(ax)
    return fig, ax


def style(ax: Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.spines[["left", "bottom"]].set_color(LINE)
    ax.tick_params(colors=MUTED, labelsize=8)
    ax.xaxis.label.set(color=MUTED, fontsize=9)
    ax.yaxis.label.set(color=MUTED, fontsize=9)


def img(fig: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, metadata={"Software": None}, **SAVE)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<figure><img alt="{escape(alt)}" src="data:image/png;base64,{data}"></figure>'


def short_num(value: float) -> str:
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def wrapped(text: str, width: int) -> str:
    """The whole text on lines of at most ``width`` characters: labels are never cut off."""
    return "\n".join(textwrap.wrap(text, width)) or text


def mpl(text: str) -> str:
    return text.replace("$", r"\$")
