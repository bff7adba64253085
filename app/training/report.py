"""The HTML report written beside every trained version (``report.html``).

One self-contained page an analyst opens in a browser: plots are inline PNGs, the CSS is
inline, and nothing is fetched from the network, so the file can be mailed or archived as is.
Figures are drawn on ``matplotlib.figure.Figure`` objects (the Agg canvas) without pyplot or
rcParams changes, so importing or rendering touches no global matplotlib state. Each segment
keeps one colour in every plot and table. All text from the manifest (segment names, rules and
descriptions are user-edited) goes through ``html.escape``; text drawn in plots has ``$``
escaped so mathtext never interprets it.
"""

from __future__ import annotations

import base64
import io
import textwrap
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import PercentFormatter

from app.registry.manifest import CategoryShare, Manifest, SegmentInfo

Colours = dict[str, str]  # segment id -> hex colour
INK, MUTED, OTHER, LINE = "#1f2328", "#5f6b7a", "#9aa3ad", "#c5cbd3"
NOTE: dict[str, Any] = {"fontsize": 8, "color": MUTED}
LEGEND: dict[str, Any] = {"frameon": False, "fontsize": 8, "title": "segment", "title_fontsize": 8}
TAG: dict[str, Any] = {"xytext": (3, 0), "textcoords": "offset points", "va": "center", **NOTE}
SAVE: dict[str, Any] = {"format": "png", "dpi": 100, "facecolor": "white"}
QUALITY = {
    "silhouette": "Silhouette",
    "davies_bouldin": "Davies–Bouldin",
    "calinski_harabasz": "Calinski–Harabasz",
    "stability_ari": "Bootstrap stability (ARI)",
}
HINTS = {
    "silhouette": "−1 to 1, higher is better: above 0.25 is usable structure, above 0.5 strong.",
    "davies_bouldin": "Lower is better: below 1 means compact, well-separated segments.",
    "calinski_harabasz": "Higher is better, but comparable only between models on the same data.",
    "stability_ari": "0 to 1: above 0.75 segments survive resampling; below 0.6 they are fragile.",
}
CSS = """
:root{--muted:#5f6b7a;--line:#e3e6ea}*{box-sizing:border-box}
body{margin:0;background:#f6f7f9;color:#1f2328;font:14px/1.5 system-ui,-apple-system,"Segoe UI",
Roboto,"Helvetica Neue",Arial,sans-serif}main{max-width:1200px;margin:0 auto;padding:28px 24px}
h1{font-size:26px;margin:0}h2{font-size:18px;margin:0 0 2px}h3{font-size:14px;margin:18px 0 6px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:18px 22px;
margin:16px 0}
.cap{margin:0 0 12px}.sub{margin:2px 0 0}
dl{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:12px 28px;margin:0}
dt{color:var(--muted);font-size:11px;text-transform:uppercase;letter-spacing:.05em}
dd{margin:0;font-weight:500;overflow-wrap:anywhere}
.metrics{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:12px}
.metric{border:1px solid var(--line);border-radius:6px;padding:10px 14px}
.metric b{display:block;font-size:24px;font-weight:600}.metric span{font-size:12px}
.metric span,.cap,.sub,.muted,footer{color:var(--muted)}
table{border-collapse:collapse;width:100%;font-size:13px}table.cat{width:auto;min-width:50%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600;font-size:12px}.cat .num{min-width:84px}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
.badge{display:inline-block;padding:0 8px;border-radius:10px;font-size:11px;font-weight:600;
background:#fff1d6;color:#8a5300;margin:1px 2px;white-space:nowrap}
.badge.too_small{background:#fde2e1;color:#a4161a}
code{font:12px ui-monospace,Menlo,Consolas,monospace;background:#f1f3f5;padding:1px 4px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:20px;align-items:start}
@media (max-width:900px){.grid{grid-template-columns:1fr}}
figure{margin:0 0 8px}img{max-width:100%;height:auto;display:block}footer{font-size:12px}
"""


def render_report(
    manifest: Manifest, projection: np.ndarray, projection_segments: Sequence[str]
) -> str:
    """Render the report for ``manifest`` as one self-contained HTML page.

    ``projection`` is an ``(n, 2)`` array of customers in two dimensions (a PCA of the model's
    feature space) and ``projection_segments`` the segment id of each of those customers.
    """
    if len(projection) != len(projection_segments):
        raise ValueError("projection and projection_segments differ in length")
    m, sel = manifest, manifest.selection
    palette = colormaps["tab10" if len(m.segments) <= 10 else "tab20"]
    colours = {s.id: to_hex(palette(i % palette.N)) for i, s in enumerate(m.segments)}
    heat, outcomes = _profile_plot(m, colours), _outcome_plot(m, colours)
    sizes = (
        f'<div class="grid">{_img(_selection_plot(m), "k-selection curve")}'
        f"{_img(_sizes_plot(m, colours), 'segment sizes')}</div>"
        + (f'<p class="cap">{escape(sel.note)}</p>' if sel.note else "")
    )
    sections = [
        ("Segments", "Rule segments are assigned first, in order; everyone else is clustered. "
         "Flagged segments failed a quality criterion: look twice before acting on them.",
         _segment_table(m.segments, colours)),
        ("Choosing k and segment sizes", f"Left: silhouette of each candidate k (criterion: "
         f"{escape(sel.criterion)}); a k is inadmissible when one of its segments holds less "
         f"than {sel.min_share:.0%} of customers. Right: share of customers per segment.", sizes),
        ("Profiles", "Colour: how far the segment's mean lies from the population mean, in "
         "population standard deviations (after each feature's transform). Number: the "
         "segment's mean in original units. Grey: no profile (e.g. an empty rule segment).",
         _img(heat, "profile heat map") if heat else "<p>No numeric features.</p>"),
        ("Customers in two dimensions", "A sample of customers projected onto the first two "
         "principal components of the model's feature space. Segments that overlap here may "
         "still be apart in the dimensions not shown.",
         _img(_projection_plot(m, colours, projection, projection_segments), "2-D projection")),
        ("Outcomes", "Outcomes are not used to form segments; they show whether segments differ "
         "on what the business cares about. Bars: segment mean; dashed line: overall mean; a "
         "small p-value means the differences are unlikely to be chance.",
         _img(outcomes, "outcome differences") if outcomes else "<p>No outcome columns.</p>"),
        ("Categorical features", "Share of each segment in each category, beside the share in "
         "the whole population. Blue: over-represented, red: under-represented; bold: the "
         "segment's most common category.", _categorical(m, colours)),
    ]  # fmt: skip
    body = _header(m) + "".join(
        f'<section><h2>{title}</h2><p class="cap">{caption}</p>{content}</section>'
        for title, caption, content in sections
    )
    title = escape(f"{m.model_name} {m.version} segmentation report")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<style>{CSS}</style></head><body><main>{body}{_footer(m)}</main></body></html>\n"
    )


def write_report(
    path: Path, manifest: Manifest, projection: np.ndarray, projection_segments: Sequence[str]
) -> None:
    """Write :func:`render_report`'s page to ``path``."""
    path.write_text(render_report(manifest, projection, projection_segments), encoding="utf-8")


def _header(m: Manifest) -> str:
    d, q, previous = m.data, m.quality, m.id_matching.previous_version
    meta = {
        "Version": m.version,
        "Created": m.created_at.strftime("%Y-%m-%d %H:%M %Z").strip(),
        "Data": d.path,
        "Rows": f"{d.rows:,} customers ({d.source_rows:,} rows read, {d.dropped_rows:,} dropped)",
        "Fingerprint": d.fingerprint[:12],
        "Algorithm": m.algorithm,
        "Chosen k": f"{m.selection.chosen_k} clusters, {len(m.segments)} segments in all",
        "Segment ids": f"matched to {previous}" if previous else "first version, all new",
    }
    items = "".join(f"<div><dt>{k}</dt><dd>{escape(v)}</dd></div>" for k, v in meta.items())
    cards = "".join(
        f'<div class="metric"><span>{label}</span><b>{_num(getattr(q, key))}</b>'
        f"<span>{HINTS[key]}</span></div>"
        for key, label in QUALITY.items()
    )
    return (
        f'<header><h1>{escape(m.model_name)}</h1><p class="sub">Customer segmentation report'
        f"</p></header><section><dl>{items}</dl></section><section><h2>Quality</h2>"
        f'<p class="cap">Measured on a sample of {q.sample_size:,} customers; stability from '
        f'{q.bootstraps} bootstrap refits.</p><div class="metrics">{cards}</div></section>'
    )


def _segment_table(segs: list[SegmentInfo], colours: Colours) -> str:
    rows = []
    for s in segs:
        kind = "cluster" if s.kind == "cluster" else f"rule <code>{escape(s.rule or '')}</code>"
        badges = (
            f'<span class="badge {escape(f)}">{escape(f.replace("_", " "))}</span>' for f in s.flags
        )
        action = f"<br><i>Action: {escape(s.action)}</i>" if s.action else ""
        rows.append(
            f"<tr><td class=num>{_swatch(colours[s.id])}{escape(s.id)}</td><td><b>"
            f"{escape(s.name)}</b></td><td>{kind}</td><td class=num>{s.size:,}</td>"
            f"<td class=num>{s.share:.1%}</td><td class=num>{_num(s.stability)}</td>"
            f"<td>{''.join(badges) or '—'}</td><td>{escape(s.description)}{action}</td></tr>"
        )
    head = "".join(
        f"<th{' class=num' if h in {'Size', 'Share', 'Stability'} else ''}>{h}</th>"
        for h in ("Id", "Name", "Kind", "Size", "Share", "Stability", "Flags", "Description")
    )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _categorical(m: Manifest, colours: Colours) -> str:
    labels = {f.name: f.label for f in m.features}
    names = [f.name for f in m.features if f.type == "categorical"]
    names += sorted({n for s in m.segments for n in s.categorical} - set(names))
    blocks = []
    for name in names:
        profiles = [s.categorical.get(name, {}) for s in m.segments]
        pop = {c: v.population_share for shares in profiles for c, v in shares.items()}
        cats = sorted(pop, key=lambda c: -pop[c])
        population = "".join(f"<td class=num>{pop[c]:.0%}</td>" for c in cats)
        rows = [f"<tr><td><i>All customers</i></td>{population}</tr>"]
        for s, shares in zip(m.segments, profiles, strict=True):
            top = max(shares, key=lambda c: shares[c].share, default=None)
            cells = "".join(_share_cell(shares.get(c), c == top) for c in cats)
            rows.append(
                f"<tr><td>{_swatch(colours[s.id])}{escape(s.id)} · "
                f"{escape(_short(s.name, 48))}</td>{cells}</tr>"
            )
        head = "".join(f"<th class=num>{_category(c)}</th>" for c in cats)
        blocks.append(
            f"<h3>{escape(labels.get(name, name))}</h3><table class=cat><tr>"
            f"<th>Segment</th>{head}</tr>{''.join(rows)}</table>"
        )
    return "".join(blocks) or "<p>No categorical features.</p>"


def _footer(m: Manifest) -> str:
    libs = " · ".join(f"{escape(k)} {escape(v)}" for k, v in sorted(m.libraries.items()))
    times = " · ".join(f"{escape(k)} {v:.2f} s" for k, v in m.timings.items())
    total = f" (total {sum(m.timings.values()):.1f} s)" if m.timings else ""
    return (
        f"<footer><p>Libraries: {libs or '—'}<br>Timings: {times or '—'}{total}<br>Seed "
        f"{m.seed} · manifest schema {m.schema_version} · artefact sha256 "
        f"{escape(m.artefact.sha256[:12])}</p></footer>"
    )


def _selection_plot(m: Manifest) -> Figure:
    fig, ax = _figure(5.6, _sizes_height(m))
    curve = sorted(m.selection.curve, key=lambda p: p.k)
    if not curve:
        ax.text(0.5, 0.5, "no selection curve", ha="center", transform=ax.transAxes, **NOTE)
        return fig
    ax.plot([p.k for p in curve], [p.silhouette for p in curve], color=LINE, zorder=1)
    ok, bad = [p for p in curve if p.admissible], [p for p in curve if not p.admissible]
    ax.scatter([p.k for p in ok], [p.silhouette for p in ok], color="#1f77b4", label="admissible")
    label = "inadmissible (a segment too small)"
    ax.scatter(
        [p.k for p in bad], [p.silhouette for p in bad], color=OTHER, marker="x", label=label
    )
    for p in (p for p in curve if p.k == m.selection.chosen_k):
        label = f"chosen k = {p.k}"
        ax.scatter(p.k, p.silhouette, s=220, fc="none", ec="#d62728", lw=2, label=label)
    ax.set(xlabel="number of clusters k", ylabel="silhouette", xticks=[p.k for p in curve])
    ax.legend(fontsize=8, frameon=False)
    return fig


def _sizes_plot(m: Manifest, colours: Colours) -> Figure:
    segs, min_share = m.segments, m.selection.min_share * 100
    fig, ax = _figure(5.6, _sizes_height(m))
    shares = [s.share * 100 for s in segs]
    ax.barh(range(len(segs)), shares, color=[colours[s.id] for s in segs], height=0.7)
    for i, s in enumerate(segs):
        ax.text(shares[i], i, f"  {s.size:,} · {s.share:.1%}", va="center", **NOTE)
    ax.axvline(min_share, color=MUTED, ls="--", lw=1)
    ax.text(min_share, -0.75, " minimum share", **NOTE)
    ax.set_yticks(range(len(segs)), [_mpl(f"{s.id}  {_short(s.name, 28)}") for s in segs])
    ax.set(xlabel="share of customers (%)", xlim=(0, max([*shares, 1]) * 1.3))
    ax.set_ylim(len(segs) - 0.5, -1)
    return fig


def _profile_plot(m: Manifest, colours: Colours) -> Figure | None:
    labels = {f.name: f.label + (f" ({f.transform})" if f.transform else "") for f in m.features}
    feats = [f.name for f in m.features if f.type == "numeric"]
    feats += sorted({n for s in m.segments for n in s.numeric} - set(feats))
    segs = m.segments
    if not feats or not segs:
        return None
    z = np.array([[s.numeric[f].z if f in s.numeric else np.nan for s in segs] for f in feats])
    mean = [[s.numeric[f].mean if f in s.numeric else None for s in segs] for f in feats]
    limit = float(np.clip(np.nanmax(np.abs(z), initial=1.0), 1.0, 3.0))
    cell = min(1.15, 8.6 / len(segs))  # inches; wider than the page would shrink the text
    fig, ax = _figure(2.8 + cell * len(segs), 1.3 + 0.36 * len(feats))
    cmap = colormaps["RdBu_r"].with_extremes(bad="#eceef1")
    image = ax.imshow(np.ma.masked_invalid(z), cmap=cmap, vmin=-limit, vmax=limit, aspect="auto")
    for (i, j), value in np.ndenumerate(np.array(mean, dtype=object)):
        dark = value is not None and abs(z[i, j]) > 0.6 * limit
        text = "–" if value is None else _short_num(value)
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else INK)
    for j, s in enumerate(segs):  # a strip of segment colours above the columns
        ax.add_patch(Rectangle((j - 0.5, -0.95), 1, 0.35, color=colours[s.id], clip_on=False))
    wrap = max(8, int(cell * 14))
    names = [_mpl(f"{s.id}\n" + "\n".join(textwrap.wrap(s.name, wrap)[:3])) for s in segs]
    ax.set_xticks(range(len(segs)), names, fontsize=7.5)
    ax.set_yticks(range(len(feats)), [_mpl(labels.get(f, f)) for f in feats], fontsize=8.5)
    ax.tick_params(length=0)
    ax.spines[:].set_visible(False)
    bar = fig.colorbar(image, ax=ax, shrink=min(1.0, 4 / (0.36 * len(feats) + 1)), pad=0.02)
    bar.set_label("z (SDs from population mean)", **NOTE)
    bar.ax.tick_params(labelsize=7.5, colors=MUTED)
    bar.outline.set_visible(False)
    return fig


def _projection_plot(m: Manifest, colours: Colours, xy: np.ndarray, ids: Sequence[str]) -> Figure:
    fig, ax = _figure(11.5, 6.5)
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
    labels = [_mpl(f"{s.id}  {_short(s.name, 40)}") for s in shown]
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1), **LEGEND)
    ax.set(xlabel="principal component 1", ylabel="principal component 2")
    return fig


def _outcome_plot(m: Manifest, colours: Colours) -> Figure | None:
    tests, segs = m.outcomes, m.segments
    if not tests or not segs:
        return None
    cols = min(3, len(tests))
    rows = -(-len(tests) // cols)
    fig = Figure(figsize=(4.1 * cols, 3.3 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, test in zip(axes, tests, strict=False):
        _style(ax)
        values = [s.outcomes.get(test.name) for s in segs]
        ax.bar(range(len(segs)), [v or 0.0 for v in values], color=[colours[s.id] for s in segs])
        for j in (j for j, v in enumerate(values) if v is None):
            ax.text(j, 0, "n/a", ha="center", va="bottom", **NOTE)
        if test.overall_mean is not None:
            mean = test.overall_mean
            ax.axhline(mean, color=INK, ls="--", lw=1)
            text = (
                f"overall\n{mean:.0%}" if test.kind == "binary" else f"overall\n{_short_num(mean)}"
            )
            ax.annotate(text, (1, mean), xycoords=("axes fraction", "data"), **TAG)
        p = test.p_value
        pv = "p n/a" if p is None else "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
        ax.set_title(_mpl(test.name), fontsize=10, loc="left", fontweight="bold")
        colour = "#a4161a" if test.significant else MUTED
        ax.set_title(f"{test.test}, {pv}", fontsize=8, loc="right", color=colour)
        ax.set_xticks(range(len(segs)), [_mpl(s.id) for s in segs], rotation=45, ha="right")
        if test.kind == "binary":
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    for ax in axes[len(tests) :]:
        ax.set_visible(False)
    return fig


def _sizes_height(m: Manifest) -> float:
    return max(3.2, 0.42 * len(m.segments) + 1.0)


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.subplots()
    _style(ax)
    return fig, ax


def _style(ax: Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.spines[["left", "bottom"]].set_color(LINE)
    ax.tick_params(colors=MUTED, labelsize=8)
    ax.xaxis.label.set(color=MUTED, fontsize=9)
    ax.yaxis.label.set(color=MUTED, fontsize=9)


def _img(fig: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, metadata={"Software": None}, **SAVE)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<figure><img alt="{escape(alt)}" src="data:image/png;base64,{data}"></figure>'


def _share_cell(share: CategoryShare | None, top: bool) -> str:
    if share is None:
        return '<td class="num muted">—</td>'
    rgb = "33,102,172" if share.z > 0 else "178,24,43"  # blue over-, red under-represented
    text = f"<b>{share.share:.0%}</b>" if top else f"{share.share:.0%}"
    alpha = min(abs(share.z) / 2, 1) / 2
    return f'<td class="num" style="background:rgba({rgb},{alpha:.2f})">{text}</td>'


def _category(name: str) -> str:
    """Reserved buckets such as ``__infrequent__`` read as words, in italics."""
    reserved = name.startswith("__") and name.endswith("__")
    return f"<i>{escape(name.strip('_'))}</i>" if reserved else escape(name)


def _swatch(colour: str) -> str:
    return f'<span class="sw" style="background:{colour}"></span>'


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _short_num(value: float) -> str:
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _mpl(text: str) -> str:
    return text.replace("$", r"\$")
