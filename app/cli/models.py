"""``segments models``: list, show, promote, roll back and compare versions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from app.cli.common import (
    STORE_OPTION,
    fail_on_error,
    model_option,
    not_promoted_note,
    out,
    print_manifest_summary,
    store_at,
)
from app.errors import StoreError
from app.registry.overrides import segment_names
from app.words import counted

app = typer.Typer(
    help="Inspect, promote, roll back and compare model versions.", no_args_is_help=True
)
console = Console(stderr=True, emoji=False)
MODEL_OPTION = Annotated[
    str | None,
    typer.Option("--model", help="model name [env: SEGMENTS_MODEL_NAME]", callback=model_option),
]


def _name(model: str | None) -> str:
    from app.settings import get_settings

    return model or get_settings().model_name


@app.command("list")
def list_versions(store: STORE_OPTION = None, model: MODEL_OPTION = None) -> None:
    """The versions of a model, oldest first; the promoted one is marked."""
    with fail_on_error(console):
        model_store, name = store_at(store), _name(model)
        promoted = model_store.promoted(name)
        table = Table(title=f"{name} in {model_store.root}")
        for column in ("version", "created", "algorithm", "k", "rows", "silhouette", "serving"):
            table.add_column(column)
        manifests, unreadable = model_store.listed(name)
        for m in manifests:
            sil = m.quality.silhouette
            table.add_row(
                m.version,
                m.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                m.algorithm,
                str(m.k),
                f"{m.data.rows:,}",
                "—" if sil is None else f"{sil:.3f}",
                "[green]promoted[/]" if m.version == promoted else "",
            )
        others = [n for n in model_store.model_names() if n != name]
        if table.rows:  # no empty table before the note naming the others (or the folder)
            out.print(table)
        elif not others and not unreadable:  # a store with no model: say where it looked
            console.print(model_store.no_promoted_version(name), soft_wrap=True, highlight=False)
        for version, why in unreadable.items():
            console.print(f"left out {version}: {why}", soft_wrap=True, highlight=False)
        if promoted is not None and promoted not in model_store.versions(name):
            # its folder is gone: the running services keep what they loaded, but a restart
            # serves nothing, and `models show` said only "unknown version"
            console.print(
                f"[red]the promoted version {promoted} is not in the store[/] (its folder is "
                f"gone): restore it, or promote another (`segments models promote VERSION "
                f"--model {name}`)",
                soft_wrap=True,
                highlight=False,
            )
        if not table.rows and others:  # e.g. trained with --model rfm, listed without it
            console.print(
                f"no versions of {name!r}; the store holds {', '.join(others)} "
                "(choose with --model NAME or SEGMENTS_MODEL_NAME)",
                soft_wrap=True,
                highlight=False,
            )
        if table.rows and others and model is None:
            # the default listed, another model trained beside it (./scripts/run's customers,
            # then a user's own): the list named only customers, and nothing of theirs
            console.print(
                f"the store also holds {', '.join(others)}: list one with --model NAME",
                soft_wrap=True,
                highlight=False,
            )
        if model is not None and not manifests and not unreadable:
            # a model named that the store lacks (a typo?) fails, as `models show --model`
            # and every other command do; the default listed empty is a new user's question
            raise typer.Exit(1)


@app.command()
def show(
    version: Annotated[
        str | None,
        typer.Argument(
            help="default: the promoted version; with none promoted, the latest (said so on "
            "stderr, with the command that promotes it)"
        ),
    ] = None,
    store: STORE_OPTION = None,
    model: MODEL_OPTION = None,
    json: Annotated[bool, typer.Option("--json", help="print the whole manifest")] = False,
) -> None:
    """One version's manifest as a summary table (or JSON)."""
    with fail_on_error(console):
        model_store, name = store_at(store), _name(model)
        note = ""
        if version is None and (version := model_store.promoted(name)) is None:
            # a new user who trained without --promote sees what was trained (it was an
            # error naming the latest), told it is not served and how to serve it
            versions = model_store.versions(name)
            if not versions:
                raise StoreError(model_store.no_promoted_version(name, "name a version"))
            version = versions[-1]
            many = f", of {len(versions)}: `segments models list`" if len(versions) > 1 else ""
            why = f"no version of {name} is; this is the latest ({version}{many}); "
            note = not_promoted_note(name, version, store, why)
        manifest = model_store.manifest(name, version)
        if json:
            typer.echo(manifest.model_dump_json(indent=2))
        else:
            served = segment_names(manifest, model_store.root / name)
            print_manifest_summary(manifest, model_store.promoted(name), served)
            report = model_store.version_dir(name, version) / "report.html"
            out.print(f"report: {report}", markup=False)
        if note:  # on stderr: --json's stdout stays the manifest alone
            console.print(note, markup=False, soft_wrap=True, highlight=False)


@app.command()
def promote(
    version: Annotated[str, typer.Argument()],
    store: STORE_OPTION = None,
    model: MODEL_OPTION = None,
) -> None:
    """Make a version the serving one (atomic; running services pick it up)."""
    with fail_on_error(console):
        model_store, name = store_at(store), _name(model)
        model_store.load(name, version)  # refuse a version that would not load
        model_store.promote(name, version)
        out.print(f"promoted {name} {version}")
    _rescore_hint(name)


@app.command()
def rollback(store: STORE_OPTION = None, model: MODEL_OPTION = None) -> None:
    """Serve the version that was promoted before the current one."""
    with fail_on_error(console):
        model_store, name = store_at(store), _name(model)
        target = model_store.rollback_target(name)
        # refuse a version that would not load, as promote does: the pointer once moved to a
        # damaged artefact, which running services refused and a restart could not serve
        model_store.load(name, target)
        version = model_store.rollback(name, expected=target)
        out.print(f"rolled back {name} to {version}")
    _rescore_hint(name)


def _rescore_hint(name: str) -> None:
    console.print(
        "note: customers already recorded keep their segment until something assigns them "
        f"again; `segments customers rescore --model {name}` moves them all now",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


@app.command()
def diff(
    old: Annotated[str, typer.Argument(help="older version")],
    new: Annotated[str, typer.Argument(help="newer version")],
    store: STORE_OPTION = None,
    model: MODEL_OPTION = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="customer file (a model trained on a log: a log, its features derived as of "
            "the day after its last line); default: the newer version's data"
        ),
    ] = None,
) -> None:
    """How the customers of the newer version's data move between the two versions' segments."""
    from app.registry.diff import migration_matrix

    with fail_on_error(console):
        model_store, name = store_at(store), _name(model)
        matrix, kept = migration_matrix(model_store, name, old, new, data)
        _print_matrix(matrix, old, new)
        total = int(matrix.to_numpy().sum())
        keep = "keeps its" if kept == 1 else "keep their"
        out.print(f"{kept:,} of {counted(total, 'customer')} {keep} segment id")


def _print_matrix(matrix: pd.DataFrame, old: str, new: str) -> None:
    table = Table(title=f"customers by segment: rows {old} → columns {new}")
    table.add_column("from \\ to")
    for column in matrix.columns:
        table.add_column(str(column), justify="right")
    for label, row in matrix.iterrows():
        table.add_row(str(label), *[f"{int(v):,}" for v in row])
    out.print(table)
