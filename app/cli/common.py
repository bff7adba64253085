"""Helpers shared by the CLI commands: store option, error handling, summary tables."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from app.errors import SegmentsError
from app.registry.manifest import Manifest
from app.registry.store import ModelStore

STORE_OPTION = Annotated[
    Path | None,
    typer.Option("--store", help="model store folder [env: SEGMENTS_MODEL_STORE, default: models]"),
]
# piped output (CI logs, files) gets wide tables instead of 80 columns of wrapped cells
out = Console(width=None if sys.stdout.isatty() else 160)


def store_at(path: Path | None) -> ModelStore:
    from app.settings import get_settings

    return ModelStore(path or get_settings().model_store)


@contextmanager
def fail_on_error(console: Console) -> Iterator[None]:
    """Print a product error as one clear line and exit 1; let real bugs raise."""
    try:
        yield
    except SegmentsError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def print_manifest_summary(manifest: Manifest, promoted: str | None) -> None:
    q = manifest.quality
    state = "promoted" if manifest.version == promoted else "not promoted"
    out.print(
        f"[bold]{manifest.model_name}[/] {manifest.version} ({state}) — {manifest.algorithm}, "
        f"k={manifest.k}, {manifest.data.rows:,} customers; silhouette {_fmt(q.silhouette)}, "
        f"Davies–Bouldin {_fmt(q.davies_bouldin)}, stability ARI {_fmt(q.stability_ari)}"
    )
    if manifest.data.dropped_rows:
        why = (
            "no customer id" if manifest.data.kind == "table" else "no customer id, time or amount"
        )
        out.print(
            f"[yellow]note:[/] {manifest.data.dropped_rows:,} of {manifest.data.source_rows:,} "
            f"input rows were left out ({why})"
        )
    if manifest.selection.note:
        out.print(f"[yellow]note:[/] {manifest.selection.note}")
    table = Table(show_lines=False)
    for column in ("id", "name", "kind", "size", "share", "stability", "flags"):
        table.add_column(column, justify="right" if column in ("size", "share") else "left")
    outcomes = [t.name for t in manifest.outcomes]
    for name in outcomes:
        table.add_column(name, justify="right")
    for seg in manifest.segments:
        table.add_row(
            seg.id,
            seg.name,
            seg.kind,
            f"{seg.size:,}",
            f"{seg.share:.1%}",
            _fmt(seg.stability, 2),
            ", ".join(seg.flags) or "",
            *[_fmt(seg.outcomes.get(o), 3) for o in outcomes],
        )
    out.print(table)
    for test in manifest.outcomes:
        verdict = "differ" if test.significant else "do not differ significantly"
        out.print(
            f"outcome {test.name}: segments {verdict} ({test.test}, p={_fmt(test.p_value, 4)})"
        )
