"""The transaction-log branch of ``segments assign`` (``--input LOG [--record] [--as-of]``)."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date
from pathlib import Path

from rich.console import Console

from app.errors import DataError
from app.registry.store import ModelStore


def trained_on_log(store: ModelStore, model_name: str, version: str | None) -> bool:
    """Whether the version (default: the promoted one) was trained on a transaction log."""
    version = version or store.promoted(model_name)
    if version is None:
        return False
    return store.manifest(model_name, version).data.kind == "transactions"


def trained_id_column(store: ModelStore, model_name: str, version: str | None) -> str:
    """The customer id column the version (default: the promoted one) was trained with: the
    log's customer column, or the table's id column (``customer_id`` when unknown)."""
    version = version or store.promoted(model_name)
    if version is None or version not in store.versions(model_name):
        return "customer_id"  # loading the version says what is missing
    data = store.manifest(model_name, version).config.get("data", {})
    if data.get("kind") == "transactions":
        return str((data.get("transactions") or {}).get("customer") or "customer_id")
    return str(data.get("id_column") or "customer_id")


def assign_log(
    store: ModelStore,
    model_name: str,
    version: str | None,
    source: Path,
    output: Path | None,
    *,
    as_of: date | None,
    record: bool,
    id_column: str,
    console: Console,
) -> None:
    """Tag (``output``) and/or record (``record``) every customer of a transaction log."""
    from app.events.tagging import run
    from app.recording import load_serving
    from app.redis_client import redis_target
    from app.settings import get_settings

    if output is None and not record:
        raise DataError("--output is required (or --record)")
    if not source.is_file():
        raise DataError(f"input file not found: {source}")
    settings = get_settings()
    serving = load_serving(store, model_name, version)
    started = time.perf_counter()
    runs = settings.data_dir / "runs"
    if record:
        config = settings.history_config(model_name)  # its own keys unless the default
        with redis_target(config) as target:
            console.print(
                f"recording {source} with {model_name} {serving.version} into {target.description}",
                soft_wrap=True,
            )
            config = replace(config, redis_url=target.url)
            tagged, report = run(
                serving,
                source,
                output=output,
                as_of=as_of,
                record_to=config,
                id_column=id_column,
                runs_dir=runs,
            )
    else:
        tagged, report = run(
            serving,
            source,
            output=output,
            as_of=as_of,
            record_to=None,
            id_column=id_column,
            runs_dir=runs,
        )
    seconds = time.perf_counter() - started
    done = "recorded" if record else "tagged"
    console.print(
        f"{done} {tagged.customers:,} customers of {source.name} as of "
        f"{tagged.reference.isoformat()} (exclusive) with {model_name} {serving.version} in "
        f"{seconds:.1f} s" + (f" -> {output}" if output else ""),
        soft_wrap=True,
    )
    if record:
        console.print(
            f"  changed {tagged.changed:,} · unchanged {tagged.unchanged:,} · behaviour "
            "aggregates seeded for each (events posted from now on update them)"
        )
    if report is not None:
        reasons: dict[str, int] = {}
        for _, reason in tagged.unassigned:
            reasons[reason] = reasons.get(reason, 0) + 1
        for reason, count in reasons.items():
            console.print(f"[yellow]{count:,} customers[/]: {reason}", soft_wrap=True)
        console.print(f"  listed in {report}", soft_wrap=True)
