"""``segments drift`` and ``segments refresh``: drift of a file against a version, and the
guarded retrain-compare-promote step (docs/drift.md)."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from app.cli.common import STORE_OPTION, default_model, fail_on_error, model_option, out, store_at
from app.words import counted

if TYPE_CHECKING:
    from app.drift.schemas import DriftReport
    from app.registry.manifest import ConvergencePair, Manifest

DRIFT_EXIT = 3
"""``segments drift`` exits 3 when a feature or the segment shares drift."""
console = Console(stderr=True, emoji=False)
_COLOURS = {"ok": "green", "watch": "yellow", "drift": "red", "no_data": "dim"}


def register(app: typer.Typer) -> None:
    app.command("drift")(drift)
    app.command("refresh")(refresh)


def drift(
    data: Annotated[Path, typer.Option("--data", help="customer file or transaction log")],
    store: STORE_OPTION = None,
    model: Annotated[
        str | None, typer.Option("--model", help="model name", callback=model_option)
    ] = None,
    version: Annotated[str | None, typer.Option(help="version (default: the promoted one)")] = None,
    reference_date: Annotated[
        str | None, typer.Option(help="as-of date for a transaction log (YYYY-MM-DD)")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Compare a file with a version's training data: PSI per feature, segment shares.

    Exit code 3 when any feature or the segment shares drift (0 otherwise, 1 on an error)."""
    from app.drift.offline import drift_of_file
    from app.drift.service import thresholds_of
    from app.errors import StoreError
    from app.settings import get_settings

    with fail_on_error(console):
        settings = get_settings()
        model_store = store_at(store)
        name = model or default_model(model_store, settings.model_name)
        chosen = version or model_store.promoted(name)
        if chosen is None:
            raise StoreError(model_store.no_promoted_version(name, "give --version"))
        as_of = _date(reference_date)
        found = drift_of_file(
            model_store, name, chosen, data, thresholds_of(settings), reference_date=as_of
        )
    if json:
        typer.echo(found.model_dump_json(indent=2))
    else:
        print_report(found)
    if found.status == "drift":
        raise typer.Exit(DRIFT_EXIT)


def refresh(
    config: Annotated[Path, typer.Option("--config", "-c", help="training config (TOML)")],
    store: STORE_OPTION = None,
    if_drifted: Annotated[
        bool, typer.Option("--if-drifted", help="train only if the config's data drifts")
    ] = False,
    min_kept: Annotated[
        float, typer.Option(min=0, max=1, help="least share of customers keeping their id")
    ] = 0.5,
    effect_tolerance: Annotated[
        float, typer.Option(min=0, max=1, help="outcome effect size the candidate may lose")
    ] = 0.02,
) -> None:
    """Train a candidate, compare it with the promoted version on the same data, promote it
    only if it passes; the decision and its reasons go into the candidate's manifest.

    Exit codes: 0 promoted, 4 kept (the candidate failed a check), 5 drift-free (with
    --if-drifted: nothing drifted, nothing trained), 1 an error."""
    from app.drift.refresh import refresh as run_refresh
    from app.drift.service import thresholds_of
    from app.settings import get_settings
    from app.training.config import load_config

    with fail_on_error(console):
        cfg = load_config(config)
        model_store = store_at(store)
        with console.status("refresh") as status:
            result = run_refresh(
                cfg,
                model_store,
                thresholds_of(get_settings()),
                if_drifted=if_drifted,
                min_kept=min_kept,
                effect_tolerance=effect_tolerance,
                on_step=lambda step: status.update(f"training the candidate: {step}…"),
            )
    if result.drift is not None:
        out.print(f"drift of {escape(str(cfg.data.path))}: {result.drift.status}")
    if result.candidate is None:
        found = result.drift.status if result.drift is not None else "ok"
        out.print(
            f"no drift past the thresholds ({found}; --if-drifted trains on 'drift'): "
            f"{cfg.model.name} {result.promoted_before} stays, nothing trained"
        )
    else:
        decision = result.decision
        assert decision is not None
        for check in decision.checks:
            mark = "[green]pass[/]" if check.passed else "[red]FAIL[/]"
            out.print(f"{mark} {check.name}: {escape(check.detail)}")
        verb = "promoted" if decision.promoted else "kept (not promoted)"
        out.print(f"candidate {result.candidate.version}: {verb}")
    raise typer.Exit(int(result.outcome))


def _date(text: str | None) -> date | None:
    from app.errors import ConfigError
    from app.training.config import ahead_of_today

    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--reference-date: {text!r} is not a date (YYYY-MM-DD)") from None
    if ahead := ahead_of_today("--reference-date", day):  # (it drifted, exit 3)
        raise ConfigError(
            f"{ahead}: every customer would look lapsed and drift; give a past date, or "
            "leave it out for the day after the log's last event"
        )
    return day


def print_report(found: DriftReport) -> None:
    out.print(
        f"[bold]{found.model_name}[/] {found.model_version} against "
        f"{escape(found.source)}: [{_COLOURS[found.status]}]{found.status}[/] "
        f"({counted(found.observations, 'customer')}; watch at PSI {found.thresholds.watch}, "
        f"drift at {found.thresholds.drift})"
    )
    if not found.has_reference:
        out.print(f"[yellow]{escape(found.note or 'no reference')}[/]")
        return
    table = Table(title="features")
    for column in ("feature", "type", "PSI", "status", "observations"):
        table.add_column(column, justify="right" if column in ("PSI", "observations") else "left")
    for f in found.features:  # a PSI of too few values is noise (1.96 or 0.01): not shown
        psi = "—" if f.psi is None or f.status == "no_data" else f"{f.psi:.4f}"
        colour = _COLOURS[f.status]
        table.add_row(f.name, f.type, psi, f"[{colour}]{f.status}[/]", f"{f.observations:,}")
    out.print(table)
    judged = found.segment_psi is not None and found.segment_status != "no_data"
    overall = f"PSI {found.segment_psi}, " if judged else ""
    segments = Table(title=f"segment shares ({overall}{found.segment_status})")
    for column in ("segment", "trained", "now", "PSI", "status"):
        segments.add_column(column, justify="left" if column in ("segment", "status") else "right")
    for s in found.segments:
        now = "—" if s.live_share is None else f"{s.live_share:.1%}"
        psi = "—" if s.psi is None or s.status == "no_data" else f"{s.psi:.4f}"
        colour = _COLOURS[s.status]
        segments.add_row(s.id, f"{s.trained_share:.1%}", now, psi, f"[{colour}]{s.status}[/]")
    out.print(segments)
    if found.note:
        out.print(f"[yellow]note:[/] {escape(found.note)}", soft_wrap=True)
    if "no_data" in {found.segment_status, *(f.status for f in found.features)}:
        least = found.thresholds.min_observations
        out.print(
            f"no_data: fewer than {least:,} values to compare (SEGMENTS_DRIFT_MIN_OBSERVATIONS):"
            " not judged, and no PSI shown",
            highlight=False,
        )


PAIRS_SHOWN = 5  # converging pairs the summary lists; the manifest keeps every one


def pair_reasons(pair: ConvergencePair) -> str:
    """Why a pair converges, in words: the summary printed the manifest's codes,
    ``(same_outcomes; profile distance 0.823)``, which a reader of it cannot act on."""
    from app.drift.reference import CLOSE_CENTRES

    said = ["no outcome differs between them"] if "same_outcomes" in pair.reasons else []
    close = f", under {CLOSE_CENTRES}" if "close_centres" in pair.reasons else ""
    # under the bound, cut to two decimals: 0.2496 rounded read "0.25 sd apart, under 0.25"
    distance = math.floor(round(pair.distance * 100, 6)) / 100 if close else pair.distance
    said.append(f"centres {distance:.2f} sd apart{close}, root mean square over the features")
    return "; ".join(said)


def print_convergence(manifest: Manifest) -> None:
    """The training summary's convergence lines (nothing when the segments are distinct),
    then what can be done about them."""
    from app.drift.reference import convergence_advice  # the job has imported it already

    for pair in manifest.convergence[:PAIRS_SHOWN]:
        a, b = pair.segments
        out.print(f"[yellow]converging:[/] {escape(a)} and {escape(b)} ({pair_reasons(pair)})")
    if (more := len(manifest.convergence) - PAIRS_SHOWN) > 0:
        # (an audit's six hotel segments, whose one outcome was noise, printed 13 such lines)
        out.print(
            f"[yellow]converging:[/] and {more:,} more pair{'s' if more > 1 else ''} "
            "(every pair: manifest.json's convergence)"
        )
    advice = convergence_advice(manifest)
    if advice:
        out.print(f"[yellow]converging:[/] {escape(advice)}")
