"""Helpers shared by the CLI commands: store option, error handling, summary tables."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from app.errors import SegmentsError, StoreError
from app.registry.manifest import Manifest, OutcomeTest, dropped_summary
from app.registry.store import MODEL_NAME_PATTERN, ModelStore, model_name_problem
from app.words import bounded_message, counted

STORE_OPTION = Annotated[
    Path | None,
    typer.Option("--store", help="model store folder [env: SEGMENTS_MODEL_STORE, default: models]"),
]


def model_option(value: str | list[str] | None) -> str | list[str] | None:
    """A ``--model`` option's callback: a name the store cannot hold (``Game Players``) is
    a usage error saying the rule in words and a name that keeps (``--model Game_Players``),
    as the config's ``[model] name`` does, before anything is read or written."""
    for name in [value] if isinstance(value, str) else value or []:
        if not MODEL_NAME_PATTERN.fullmatch(name):
            raise typer.BadParameter(model_name_problem(name, "--model {}"))
    return value


# piped output (CI logs, files) gets wide tables instead of 80 columns of wrapped cells
out = Console(width=None if sys.stdout.isatty() else 160, emoji=False)


class CommandStore(ModelStore):
    """The store a command works on: where it holds no model at all, its errors name the
    folder looked in (a model trained from another folder, or under another
    ``SEGMENTS_MODEL_STORE``, was "no model 'ecom' in the store (it holds no model yet)",
    with no word of where). The service's store names no path: its probe is unauthenticated."""

    def no_promoted_version(self, model_name: str, hint: str = "") -> str:
        said = super().no_promoted_version(model_name, hint)
        if versions := self.versions(model_name):  # trained, not promoted: "name a version"
            # named no version; a new user's first `models show` after a training without
            # --promote then had to list them first
            many = f", of {len(versions)}: `segments models list`" if len(versions) > 1 else ""
            return f"{said} (the latest: {versions[-1]}{many})"
        if self.model_names():
            return said
        return (
            f"{said.removesuffix(')')}: {self.root.resolve()}; --store or "
            "SEGMENTS_MODEL_STORE names the folder a model was trained into)"
        )


def store_at(path: Path | None) -> ModelStore:
    from app.settings import get_settings

    return CommandStore(path or get_settings().model_store)


def not_promoted_note(name: str, version: str, store: Path | None, why: str = "") -> str:
    """The line a command prints under a version it shows that is not promoted (``train``
    without ``--promote``; ``models show`` of a model none of whose versions is): what that
    means and the command that promotes it, with the ``--store`` the user gave."""
    where = f" --store {store}" if store is not None else ""
    return (
        f"not promoted: {why}the service and `segments assign` use the promoted version; to "
        f"use this one: segments models promote {version} --model {name}{where}"
    )


def default_model(store: ModelStore, configured: str) -> str:
    """The model to use when ``--model`` is not given: the configured one
    (SEGMENTS_MODEL_NAME, default ``customers``) if the store holds it, else the store's only
    model; with several and none configured, an error that names them."""
    names = store.model_names()
    if configured in names or not names:
        return configured  # an empty store: loading names the store and what is missing
    if len(names) == 1:
        return names[0]
    raise StoreError(
        f"the store {store.root} holds several models and none named {configured!r}: "
        f"choose one with --model ({', '.join(names)})"
    )


@contextmanager
def fail_on_error(console: Console) -> Iterator[None]:
    """Print a product error as one clear line and exit 1; let real bugs raise."""
    try:
        yield
    except SegmentsError as exc:
        message = escape(bounded_message(str(exc)))
        console.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def terminal_text(text: str) -> str:
    """``text`` safe to print to a terminal: control characters (escape sequences, carriage
    returns) and bidirectional overrides as their escapes, everything else as it is."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def print_manifest_summary(
    manifest: Manifest, promoted: str | None, served: Mapping[str, str] | None = None
) -> None:
    """The version's summary; ``served``: segment id -> the name the service gives it (an
    edit by ``PATCH /v1/segments/{id}`` is kept across retrains), shown beside the generated
    one where they differ."""
    q = manifest.quality
    state = "promoted" if manifest.version == promoted else "not promoted"
    # the rule segments beside k ("k=4" of 5 segments served read as one missing)
    more = len(manifest.segments) - manifest.k
    k = f"k={manifest.k}" + (f" (+{more} rule segment{'s' if more > 1 else ''})" if more else "")
    weighted = (manifest.selection.chosen_algorithm or "").endswith("outcome-weighted")
    space = " in the outcome-weighted space" if weighted else ""
    out.print(
        f"[bold]{manifest.model_name}[/] {manifest.version} ({state}) — {manifest.algorithm}, "
        f"{k}, {counted(manifest.data.rows, 'customer')}; silhouette {_fmt(q.silhouette)}{space}, "
        f"Davies–Bouldin {_fmt(q.davies_bouldin)}, stability ARI {_fmt(q.stability_ari)}"
        + (
            f" (mean of {q.bootstraps} bootstrap refits against these segments)"
            if q.bootstraps
            else ""
        )
    )
    data = manifest.data
    if data.reference_date:
        out.print(
            f"reference date {data.reference_date} (exclusive: features use the events "
            "strictly before it)"
        )
    if data.dropped_rows:
        reasons = data.dropped_reasons
        why = dropped_summary(reasons, data.dropped_examples, counts=len(reasons) > 1)
        if not why:  # a manifest written before reasons were recorded
            why = "no customer id" if data.kind == "table" else "no customer id, time or amount"
        out.print(
            f"[yellow]note:[/] {data.dropped_rows:,} of {data.source_rows:,} "
            f"input rows were left out ({escape(why)})"
        )
    for feature, cells in data.missing_cells.items():
        junk = data.text_as_missing.get(feature, 0)
        text = f", {junk:,} of them text read as missing" if junk else ""
        impute = _impute_of(manifest, feature)
        schema = next((f for f in manifest.features if f.name == feature), None)
        if impute == "own category" and schema is not None and schema.as_written:
            # only blanks and [data] missing_values: a hotel table's country was said to
            # count NA and null as missing, which this reading keeps as categories
            text += (
                " (blank, or listed in [data] missing_values; NA, null or None written in "
                "the file are categories here)"
            )
        elif impute == "own category":  # a version that read pandas' markers as missing
            text += " (blank, or written NA, null, N/A or another missing marker)"
        out.print(
            f"[yellow]note:[/] {escape(feature)}: {counted(cells, 'missing value')}"
            f"{escape(text)}, imputed ({impute})"
        )
    for note in data.notes:
        out.print(f"[yellow]note:[/] {escape(note)}")
    if manifest.selection.note:
        out.print(f"[yellow]note:[/] {escape(manifest.selection.note)}")
    reason = manifest.selection.reason
    if reason and reason != manifest.selection.note:  # the note says it already
        out.print(f"selection ({manifest.selection.method}): {escape(reason)}")
    table = Table(show_lines=False)
    for column in ("id", "name", "kind", "size", "share", "stability", "flags"):
        table.add_column(column, justify="right" if column in ("size", "share") else "left")
    outcomes = [t.name for t in manifest.outcomes]
    for name in outcomes:
        table.add_column(name, justify="right")
    for seg in manifest.segments:
        name = (served or {}).get(seg.id, seg.name)
        table.add_row(
            seg.id,
            escape(name if name == seg.name else f"{name} (edited; generated: {seg.name})"),
            seg.kind,
            f"{seg.size:,}",
            f"{seg.share:.1%}",
            _fmt(seg.stability, 2),
            ", ".join(seg.flags) or "",
            *[_fmt(seg.outcomes.get(o), 3) for o in outcomes],
        )
    out.print(table)
    for test in manifest.outcomes:
        out.print(outcome_line(test))
    if manifest.outcomes and (fitted := fitted_to_outcomes(manifest)):
        out.print(f"[yellow]note:[/] {escape(fitted)}", soft_wrap=True)


def fitted_to_outcomes(manifest: Manifest) -> str | None:
    """What the report says of effects measured on the customers the outcomes shaped the
    segments of: optimistic (an audit's tree, grown on a cancellation flag that was noise,
    printed "segments differ ... p=0.0009", the report alone saying it was optimistic)."""
    sel = manifest.selection
    if manifest.algorithm == "tree":
        target = str(manifest.config.get("model", {}).get("target"))
        point = next(
            (p for p in sel.curve if p.k == sel.chosen_k and p.algorithm in (None, "tree")), None
        )
        held = point.effects.get(target) if point is not None else None
        judge = (
            f"; its effect size on held-out halves, {held:.3f}, is the one to judge it by"
            if held is not None
            else ""
        )
        test = next((t for t in manifest.outcomes if t.name == target), None)
        small = 0.1 if test is not None and test.kind == "binary" else 0.01
        if held is not None and held < small:  # a noise target's tree "differs", p = 0.0017
            judge += (
                f", and it is below a small effect ({small:g}): on customers they were not "
                "grown on, the leaves barely separate it"
            )
        return (
            f"the leaves were grown to separate {target!r}: its test above is measured on the "
            f"customers they were fitted to, so its p-value and effect size are optimistic{judge}"
        )
    from app.training.selection import WEIGHTED  # (here: it loads scikit-learn)

    if sel.chosen_algorithm and sel.chosen_algorithm.endswith(WEIGHTED):
        return (
            "the outcomes weighted the features the segments were formed in: the effects above "
            "are measured on the customers they were fitted to, so they are optimistic"
        )
    return None


def outcome_line(test: OutcomeTest) -> str:
    """One outcome's verdict: effect size and range across segments, then the test."""
    verdict = "differ" if test.significant else "do not differ significantly"
    line = f"outcome {escape(test.name)}"
    if test.p_value is None and test.segment_min is None and test.segment_max is None:
        # blank in every row: "(1 = '1'): segments do not differ significantly" was said
        return (
            f"{line}: no customer has a value ({test.missing:,} blank or missing), so it "
            "separates nothing (is it the right column?)"
        )
    if test.kind == "binary":
        line += f" (1 = {escape(repr(test.positive or '1'))})"
    low, high = test.segment_min, test.segment_max
    if test.p_value is None and low is not None and low == high:  # nothing was tested
        line += (
            f": {_mean(low)} for every customer, so it separates nothing (is it the right column?)"
        )
        return line + _left_out(test)
    line += f": segments {verdict}"
    if test.effect_size is not None:
        line += f", {test.effect_measure} {test.effect_size:.3f}"
    if test.segment_min is not None and test.segment_max is not None:
        line += f", segment means {_mean(test.segment_min)} to {_mean(test.segment_max)}"
    # (a p below what four decimals show was "p=0.0000", which reads as no chance at all;
    # the report writes "p < 0.001")
    tiny = test.p_value is not None and 0 <= test.p_value < 0.0001
    line += f" ({test.test}, {'p < 0.0001' if tiny else f'p={_fmt(test.p_value, 4)}'})"
    return line + _left_out(test)


def _mean(value: float) -> str:
    """A segment's mean as the report writes it: an insurance table's charges were "segment
    means 1.41e+04 to 4.06e+04", now ``14,099 to 40,583``; below 1,000 three digits."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _left_out(test: OutcomeTest) -> str:
    return f"; {counted(test.missing, 'customer')} without a value left out" if test.missing else ""


def _impute_of(manifest: Manifest, feature: str) -> str:
    schema = next((f for f in manifest.features if f.name == feature), None)
    return schema.impute if schema is not None and schema.impute else "own category"
