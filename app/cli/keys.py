"""``segments keys``: create, list and revoke API keys (only their hashes are stored).

A keys file (``SEGMENTS_API_KEYS_FILE``) holds one ``<id>:<sha256-hex>:<scopes>[:<label>]``
entry per line (``app/security.py``); the service re-reads it when it changes, so a key
revoked here stops working within ``SEGMENTS_RELOAD_INTERVAL`` seconds, without a restart.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from app.files import replace_file
from app.words import counted

app = typer.Typer(
    help="API keys: create, list and revoke them (only their hashes are stored).",
    no_args_is_help=True,
)
console = Console(stderr=True, emoji=False)
FILE_OPTION = Annotated[
    Path | None,
    typer.Option("--file", envvar="SEGMENTS_API_KEYS_FILE", help="the keys file"),
]
_KEY = re.compile(r"^sk_([0-9a-f]+)_")  # a whole key names its id


@app.command("create")
def create_key(
    scope: Annotated[list[str], typer.Option("--scope", "-s", help="assign, read or admin")],
    label: Annotated[str, typer.Option(help="a note kept beside the hash")] = "",
    append: Annotated[
        Path | None, typer.Option(help="append the hashed entry to this keys file")
    ] = None,
) -> None:
    """Print a new API key once, and the line that configures it."""
    from app.security import new_key

    try:
        key, line = new_key([s for part in scope for s in part.split(",") if s], label)
    except ValueError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    if append is not None:
        append.parent.mkdir(parents=True, exist_ok=True)
        with append.open("a+b") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() > 0:  # a last line without its break would take the entry in
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) not in b"\r\n":
                    handle.write(b"\n")
            handle.write(line.encode() + b"\n")
        append.chmod(0o600)
        console.print(
            f"added to {append} (serve with SEGMENTS_API_KEYS_FILE={append})", markup=False
        )
    else:
        console.print(f"configure with: SEGMENTS_API_KEYS='{line}'", soft_wrap=True)
    console.print("the key (shown once; store it in your secret manager):")
    typer.echo(key)


@app.command("list")
def list_keys(file: FILE_OPTION = None) -> None:
    """The keys of a keys file: id, scopes and label (never the hash); malformed lines named
    (and then exit code 1: the service gives them no key and reports itself degraded)."""
    from app.security import parse_lines

    file, text = _read(file)
    entries, problems = parse_lines(text, str(file))
    table = Table(title=f"{counted(len(entries), 'key')} in {file}")
    for column in ("id", "scopes", "label"):
        table.add_column(column)
    for entry in entries.values():
        table.add_row(entry.key_id, "+".join(sorted(entry.scopes)), escape(entry.label))
    Console(emoji=False).print(table)
    for problem in problems:  # the service leaves these lines out (fails closed)
        console.print(f"[yellow]malformed:[/] {escape(problem)}", soft_wrap=True)
    if problems:  # the service's readiness says degraded: so does the exit code (it was 0)
        raise typer.Exit(1)


@app.command("revoke")
def revoke_keys(
    key_ids: Annotated[
        list[str] | None,
        typer.Argument(help="key ids (the <id> of sk_<id>_..., or the whole key)"),
    ] = None,
    file: FILE_OPTION = None,
    label: Annotated[
        str | None, typer.Option(help="revoke every key with this label (none: exit 1)")
    ] = None,
) -> None:
    """Remove keys from a keys file (rewritten whole, comments and other lines kept); a
    running service stops accepting them within SEGMENTS_RELOAD_INTERVAL seconds."""
    from app.security import parse_lines

    wanted = {(m[1] if (m := _KEY.match(k)) else k) for k in key_ids or []}
    if not wanted and label is None:
        console.print("[red]error:[/] name the keys to revoke (their ids) or a --label")
        raise typer.Exit(2)
    file, text = _read(file)
    entries, _ = parse_lines(text, str(file))
    unknown = sorted(wanted - set(entries))
    if unknown:
        known = ", ".join(entries) or "none"
        console.print(
            f"[red]error:[/] no key {escape(', '.join(unknown))} in {escape(str(file))} "
            f"(its keys: {escape(known)}); nothing revoked",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    gone = wanted | {k for k, e in entries.items() if label is not None and e.label == label}
    if not gone:  # a mistyped label in an offboarding script must not pass as done
        labels = ", ".join(sorted({repr(e.label) for e in entries.values() if e.label})) or "none"
        console.print(
            f"[red]error:[/] no key labelled {escape(repr(label))} in {escape(str(file))} "
            f"(its labels: {escape(labels)}); nothing revoked",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    replace_file(file, _without(text, gone).encode())  # the service never reads half of it
    console.print(
        f"revoked {counted(len(gone), 'key')} ({', '.join(sorted(gone))}) in {file}",
        markup=False,
        soft_wrap=True,
    )


def _without(text: str, gone: set[str]) -> str:
    """``text`` without the entries of the ids ``gone``: other entries and comments stay as
    they are; a line left with neither is dropped."""
    kept = []
    for raw in text.splitlines():
        body, sep, comment = raw.partition("#")
        items = body.split(",")
        left = [i for i in items if i.strip().split(":", 1)[0] not in gone]
        if len(left) == len(items):
            kept.append(raw)
        elif any(i.strip() for i in left) or sep:
            kept.append(",".join(left) + sep + comment)
    return "".join(line + "\n" for line in kept)


def _read(file: Path | None) -> tuple[Path, str]:
    if file is None or not file.is_file():
        where = str(file) if file is not None else "given (--file or SEGMENTS_API_KEYS_FILE)"
        console.print(f"[red]error:[/] no keys file {escape(where)}", soft_wrap=True)
        raise typer.Exit(1)
    from app.security import read_keys

    return file, read_keys(file)
