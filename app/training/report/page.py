"""The report's HTML page: header, sections, tables and footer around the figures of ``plots``.

Every text taken from the manifest (segment names, rules and descriptions are user-edited)
goes through ``html.escape``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from pathlib import Path

import numpy as np

from app.colours import segment_colours
from app.registry.manifest import (
    CategoryShare,
    Manifest,
    OutcomeTest,
    SegmentInfo,
    SelectionPoint,
    dropped_summary,
)
from app.training.preprocess import MISSING_CATEGORY
from app.training.quality import UNSTABLE_JACCARD
from app.training.report.plots import CSS as FIGURES_CSS
from app.training.report.plots import (
    Colours,
    outcome_plot,
    profile_plot,
    projection_plot,
    selection_plot,
    sizes_plot,
)
from app.training.selection import (
    MIN_SEGMENT,
    MIN_STABILITY,
    SILHOUETTE_SHARE,
    WEIGHTED,
    segment_floor,
)
from app.words import INFREQUENT_CATEGORY, counted, percent, rare_group

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
LEFT_OUT_NAMED = 50  # categories a table leaves out named below it; the rest are counted
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
.grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:20px;align-items:start}
@media (max-width:900px){.grid{grid-template-columns:minmax(0,1fr)}}
figure{margin:0 0 8px}.wide{overflow-x:auto}footer{font-size:12px}
@media (max-width:700px){.wide>table{min-width:760px}}
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
    colours = segment_colours([s.id for s in m.segments])
    heat, outcomes = profile_plot(m, colours), outcome_plot(m, colours)
    sizes = (
        f'<div class="grid">{selection_plot(m)}{sizes_plot(m, colours)}</div>'
        + (f'<p class="cap">{escape(sel.note)}</p>' if sel.note else "")
        + _candidates(m)
    )
    tree = m.algorithm == "tree"
    assigned = (
        "Each customer is in the tree leaf whose rule it matches (rule segments declared in "
        "the config come first, in order)."
        if tree
        else "Rule segments are assigned first, in order; everyone else is clustered."
    )
    choosing = (
        f"Left: each candidate leaf count (criterion: {escape(sel.criterion)}); a count is "
        f"inadmissible when one of its leaves holds less than {percent(sel.min_share)} of "
        "customers. Right: share of customers per segment. (A tree's leaves are cut by the "
        "outcome, not by distance: its silhouette is low by design.)"
        if tree and sel.method == "tree"
        else f"Left: silhouette of each candidate k (criterion: {escape(sel.criterion)}); a k "
        f"is inadmissible when one of its segments holds less than {_floor(m)}. "
        "Right: share of customers per segment."
    )
    sections = [
        ("Segments", f"{assigned} Stability: how much of a segment its closest match holds "
         "in refits on bootstrap samples (mean Jaccard overlap, 0 to 1; under "
         f"{UNSTABLE_JACCARD} it is flagged unstable). Flagged segments failed a quality "
         f"criterion: too small (under {percent(sel.min_share)} of customers), not distinct "
         "(close to all customers on every feature), unstable, or converging (another segment "
         "is close to it, or differs from it on no outcome); look twice before "
         "acting on them.",
         _segment_table(m.segments, colours)),
        ("Choosing k and segment sizes", choosing, sizes),
        ("Profiles", "Colour: how far the segment's mean lies from the population mean, in "
         "population standard deviations (after each feature's transform). Number: the "
         "segment's mean in original units. Grey: no profile (e.g. an empty rule segment).",
         heat or "<p>No numeric features.</p>"),
        ("Customers in two dimensions", "A sample of customers projected onto the first two "
         "principal components of the model's feature space. Segments that overlap here may "
         "still be apart in the dimensions not shown.",
         projection_plot(m, colours, projection, projection_segments)),
        ("Outcomes", _outcomes_use(m) + " They show whether segments differ on what the "
         "business cares about. Bars: segment mean; dashed line: overall mean; a "
         "small p-value means the differences are unlikely to be chance.",
         (_effects(m) + outcomes)
         if outcomes else "<p>No outcome columns.</p>"),
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
        f"<style>{CSS}{FIGURES_CSS}</style></head><body><main>{body}{_footer(m)}</main></body></html>\n"
    )


def write_report(
    path: Path, manifest: Manifest, projection: np.ndarray, projection_segments: Sequence[str]
) -> None:
    """Write :func:`render_report`'s page to ``path``."""
    path.write_text(render_report(manifest, projection, projection_segments), encoding="utf-8")


def _header(m: Manifest) -> str:
    d, q, previous = m.data, m.quality, m.id_matching.previous_version
    tree = m.algorithm == "tree"
    meta = {
        "Version": m.version,
        "Created": m.created_at.strftime("%Y-%m-%d %H:%M %Z").strip(),
        "Data": d.path,
        "Rows": f"{d.rows:,} customers ({d.source_rows:,} rows read, {d.dropped_rows:,} dropped)",
        **(
            {"Dropped rows": dropped_summary(d.dropped_reasons, d.dropped_examples)}
            if d.dropped_reasons
            else {}
        ),
        **(
            {"Reference date": f"{d.reference_date} (exclusive: events strictly before it)"}
            if d.reference_date
            else {}
        ),
        "Fingerprint": d.fingerprint[:12],
        "Algorithm": m.algorithm,
        "Chosen k": f"{m.selection.chosen_k} {'tree leaves' if tree else 'clusters'}, "
        f"{len(m.segments)} segments in all",
        "Segment ids": f"matched to {previous}" if previous else "first version, all new",
    }
    items = "".join(f"<div><dt>{k}</dt><dd>{escape(v)}</dd></div>" for k, v in meta.items())
    notes = [
        f"{name}: {counted(cells, 'missing value')} imputed"
        + (
            f" ({d.text_as_missing[name]:,} of them text read as missing)"
            if name in d.text_as_missing
            else ""
        )
        for name, cells in d.missing_cells.items()
    ] + d.notes
    if notes:
        items += "".join(f"<div><dt>Note</dt><dd>{escape(n)}</dd></div>" for n in notes)
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


def _floor(m: Manifest) -> str:
    """The smallest share a cluster may hold, as the selection held it: ``min_share``, or
    ``MIN_SEGMENT`` customers where that is more (a 200-row table's k = 5 with a segment of
    10.5% was drawn inadmissible beside "less than 5%")."""
    floor = segment_floor(m.data.rows, m.selection.min_share)
    if floor <= m.selection.min_share:
        return f"{percent(m.selection.min_share)} of customers"
    if floor * m.selection.k_min > 1:  # 10 customers: "less than 300%" no table could hold
        return (
            f"{MIN_SEGMENT} customers, the fewest a segment may hold (these "
            f"{m.data.rows:,} cannot give k_min = {m.selection.k_min} segments that many)"
        )
    return (
        f"{percent(floor)} of customers ({MIN_SEGMENT} customers, the fewest a segment may "
        f"hold, above min_share = {m.selection.min_share:g})"
    )


def _candidates(m: Manifest) -> str:
    """The candidate table of an outcome-based selection, and why the winner won."""
    sel = m.selection
    if sel.method == "silhouette" and not any(p.algorithm for p in sel.curve):
        return ""
    outcomes = list(dict.fromkeys(o for p in sel.curve for o in p.effects))
    head = "".join(f'<th class="num">{escape(o)}</th>' for o in outcomes)
    rows = []
    floor = segment_floor(m.data.rows, sel.min_share)
    for p in sorted(sel.curve, key=lambda p: -(p.score or -1.0)):
        won = p.k == sel.chosen_k and p.algorithm == sel.chosen_algorithm
        cells = [p.algorithm or m.algorithm, str(p.k)]
        nums = [p.silhouette, p.min_share, p.stability, *(p.effects.get(o) for o in outcomes)]
        nums += [p.separation, p.score]
        style = ' style="font-weight:600"' if won else ""
        rows.append(
            f"<tr{style}>"
            + "".join(f"<td>{escape(c)}</td>" for c in cells)
            + "".join(f'<td class="num">{_num(v)}</td>' for v in nums)
            + f"<td>{'chosen' if won else escape(_verdict(p, floor, sel.method))}</td></tr>"
        )
    return (
        f'<h3>Candidates ({escape(sel.method)})</h3><p class="cap">{escape(sel.reason or "")}'
        '</p><div class="wide"><table><tr><th>algorithm</th><th>k</th>'
        '<th class="num">silhouette</th>'
        '<th class="num">smallest share</th><th class="num">stability</th>'
        f'{head}<th class="num">separation</th><th class="num">score</th>'
        f"<th>admissible</th></tr>{''.join(rows)}</table></div>"
    )


def _verdict(p: SelectionPoint, floor: float, method: str) -> str:
    """Whether a candidate was admissible, and why not where its figures say: the column
    read "no" eleven times on a marketing table, the reader left to work out which rule
    (a segment under the smallest share, a refit under the stability) each had failed."""
    if p.admissible:
        # ranked only at or above the silhouette floor (balanced): no score below it
        if p.score is None and method == "balanced":
            return f"yes; not ranked: silhouette under {SILHOUETTE_SHARE} x the best"
        return "yes"
    if p.min_share < floor:
        return f"no: a segment under {percent(floor)}"
    if method != "silhouette" and p.stability is not None and p.stability < MIN_STABILITY:
        # cut to two decimals, not rounded: 0.897 read "stability 0.90 < 0.9"
        return (
            f"no: stability {math.floor(round(p.stability * 100, 6)) / 100:.2f} < {MIN_STABILITY}"
        )
    return "no"


def _outcomes_use(m: Manifest) -> str:
    """How the outcomes took part in forming the segments: effects measured on the customers
    the segments were fitted to are optimistic when they did."""
    sel = m.selection
    if m.algorithm == "tree":
        target = m.config.get("model", {}).get("target")
        chosen = (
            f" It won the selection (selection = {sel.method!r}) on its effect on the half of "
            "the customers each trial tree was not grown on: see the candidates."
            if sel.method != "tree"
            else ""
        )
        return (
            "The segments are the leaves of a tree fitted to predict "
            f"{escape(repr(target), quote=False)}, so its effect below is measured on the "
            f"customers it was fitted to: optimistic.{chosen}"
        )
    if sel.chosen_algorithm and WEIGHTED in sel.chosen_algorithm:
        return (
            f"The outcomes weighted the features the segments were formed in, and chose among "
            f"the candidates (selection = {sel.method!r}): the effects below are measured on "
            "the customers they were fitted to, so they are optimistic."
        )
    if sel.method != "silhouette":
        return (
            f"The outcomes chose among the candidate segmentations (selection = "
            f"{sel.method!r}), not how customers are grouped within one."
        )
    return "The outcomes are not used to form segments."


def _mean(t: OutcomeTest, value: float | None) -> str:
    """An outcome's mean: a binary outcome's as a rate (8.4%, as its bars say), a numeric
    one's as a figure."""
    if t.kind == "binary" and value is not None and math.isfinite(value):
        return f"{value:.1%}"
    return _num(value)


def _effects(m: Manifest) -> str:
    """Effect size per outcome: with thousands of customers every p-value is tiny, so how
    much the segments differ is the figure to read."""
    rows = "".join(
        f"<tr><td>{escape(t.name)}</td><td>{t.kind}"
        + (f" (1 = {escape(t.positive)})" if t.kind == "binary" and t.positive else "")
        + f'</td><td>{escape(t.effect_measure or "")}</td><td class="num">{_num(t.effect_size)}'
        f'</td><td class="num">{_mean(t, t.segment_min)} to {_mean(t, t.segment_max)}</td>'
        f'<td class="num">{_mean(t, t.overall_mean)}</td></tr>'
        for t in m.outcomes
    )
    return (
        '<div class="wide"><table><tr><th>outcome</th><th>kind</th><th>effect size</th>'
        '<th class="num">value'
        '</th><th class="num">segment means</th><th class="num">overall</th></tr>'
        f'{rows}</table></div><p class="cap">Effect size: Cramér\'s V (binary outcome) or epsilon² '
        "(numeric, from the Kruskal-Wallis H), 0 = segments do not differ, 1 = the segment "
        "decides the outcome; about 0.1 is small, 0.3 medium, 0.5 large for V (0.01, 0.06, "
        "0.14 for epsilon²).</p>"
    )


def _segment_table(segs: list[SegmentInfo], colours: Colours) -> str:
    rows = []
    for s in segs:
        kind = "cluster" if s.kind == "cluster" else f"rule <code>{escape(s.rule or '')}</code>"
        badges = (
            f'<span class="badge {escape(f)}">{escape(f.replace("_", " "))}</span>' for f in s.flags
        )
        action = f"<br><i>Action: {escape(s.action)}</i>" if s.action else ""
        # one precision for the column: 0.990, not 0.99 beside 0.996
        stability = "n/a" if s.stability is None else f"{s.stability:.3f}"
        rows.append(
            f"<tr><td class=num>{_swatch(colours[s.id])}{escape(s.id)}</td><td><b>"
            f"{escape(s.name)}</b></td><td>{kind}</td><td class=num>{s.size:,}</td>"
            f"<td class=num>{s.share:.1%}</td><td class=num>{stability}</td>"
            f"<td>{''.join(badges) or '—'}</td><td>{escape(s.description)}{action}</td></tr>"
        )
    head = "".join(
        f"<th{' class=num' if h in {'Size', 'Share', 'Stability'} else ''}>{h}</th>"
        for h in ("Id", "Name", "Kind", "Size", "Share", "Stability", "Flags", "Description")
    )
    return f'<div class="wide"><table><tr>{head}</tr>{"".join(rows)}</table></div>'


def _categorical(m: Manifest, colours: Colours) -> str:
    labels = {f.name: f.label for f in m.features}
    names = [f.name for f in m.features if f.type == "categorical"]
    names += sorted({n for s in m.segments for n in s.categorical} - set(names))
    blocks = []
    for name in names:
        profiles = [s.categorical.get(name, {}) for s in m.segments]
        pop = {c: v.population_share for shares in profiles for c, v in shares.items()}
        cats = sorted(pop, key=lambda c: -pop[c])
        population = "".join(f"<td class=num>{percent(pop[c])}</td>" for c in cats)
        rows = [f"<tr><td><i>All customers</i></td>{population}</tr>"]
        for s, shares in zip(m.segments, profiles, strict=True):
            top = max(shares, key=lambda c: shares[c].share, default=None)
            cells = "".join(_share_cell(shares.get(c), c == top) for c in cats)
            rows.append(
                f"<tr><td>{_swatch(colours[s.id])}{escape(s.id)} · "
                f"{escape(s.name)}</td>{cells}</tr>"
            )
        schema = next((f for f in m.features if f.name == name), None)
        rare = schema.infrequent if schema is not None else None
        head = "".join(f"<th class=num>{_category(c, rare)}</th>" for c in cats)
        blocks.append(
            f'<h3>{escape(labels.get(name, name))}</h3><div class="wide"><table class=cat><tr>'
            f"<th>Segment</th>{head}</tr>{''.join(rows)}</table></div>{_left_out(m, name, cats)}"
        )
    return "".join(blocks) or "<p>No categorical features.</p>"


def _left_out(m: Manifest, name: str, shown: Sequence[str]) -> str:
    """The categories of a feature its table leaves out (a segment's profile keeps the most
    frequent ones), most frequent first with their share of all customers: the table of a
    job with 12 categories showed 8, with no sign of the other 4."""
    ref = next(
        (f for f in (m.drift_reference.features if m.drift_reference else []) if f.name == name),
        None,
    )
    left: list[tuple[str, float | None]] = []
    if ref is not None and ref.categories is not None:  # shares: categories, other, missing
        known = ref.categories
        left += [(c, v) for c, v in zip(known, ref.shares, strict=False) if c not in shown]
        missing = ref.shares[-1] if len(ref.shares) == len(known) + 2 else 0.0
        if missing and MISSING_CATEGORY not in shown:
            left.append((MISSING_CATEGORY, missing))
    schema = next((f for f in m.features if f.name == name), None)
    # the rare ones the model groups are counted in the group's column, where it is shown
    grouped = set(schema.infrequent or []) if schema and INFREQUENT_CATEGORY in shown else set()
    left = [(c, v) for c, v in left if c not in grouped]
    seen = set(shown) | {c for c, _ in left} | grouped
    left += [(c, None) for c in (schema.categories or [] if schema else []) if c not in seen]
    if not left:
        return ""
    named = ", ".join(
        _category(c) + ("" if v is None else f" ({v:.1%})") for c, v in left[:LEFT_OUT_NAMED]
    )
    rest = len(left) - LEFT_OUT_NAMED
    return (
        f'<p class="cap">and {len(left):,} more, not profiled by segment (share of all '
        f"customers): {named}{f', and {rest:,} rarer ones' if rest > 0 else ''}</p>"
    )


def _footer(m: Manifest) -> str:
    libs = " · ".join(f"{escape(k)} {escape(v)}" for k, v in sorted(m.libraries.items()))
    times = " · ".join(f"{escape(k)} {v:.2f} s" for k, v in m.timings.items())
    total = f" (total {sum(m.timings.values()):.1f} s)" if m.timings else ""
    return (
        f"<footer><p>Libraries: {libs or '—'}<br>Timings: {times or '—'}{total}<br>Seed "
        f"{m.seed} · manifest schema {m.schema_version} · artefact sha256 "
        f"{escape(m.artefact.sha256[:12])}</p></footer>"
    )


def _share_cell(share: CategoryShare | None, top: bool) -> str:
    if share is None:
        return '<td class="num muted">—</td>'
    rgb = "33,102,172" if share.z > 0 else "178,24,43"  # blue over-, red under-represented
    text = f"<b>{percent(share.share)}</b>" if top else percent(share.share)
    alpha = min(abs(share.z) / 2, 1) / 2
    return f'<td class="num" style="background:rgba({rgb},{alpha:.2f})">{text}</td>'


def _category(name: str, infrequent: Sequence[str] | None = None) -> str:
    """Reserved buckets read as words, in italics: ``__missing__`` as ``missing``, the
    encoder's rare categories (``__infrequent__``; ``infrequent``, its feature's) as ``other
    (3 rare: Absurd, Alone, YOLO)``."""
    if name == INFREQUENT_CATEGORY:
        return f"<i>{escape(rare_group(infrequent or []))}</i>"
    reserved = name.startswith("__") and name.endswith("__")
    return f"<i>{escape(name.strip('_'))}</i>" if reserved else escape(name)


def _swatch(colour: str) -> str:
    return f'<span class="sw" style="background:{colour}"></span>'


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
