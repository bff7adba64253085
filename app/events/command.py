"""The transaction-log branch of ``segments assign`` (``--input LOG [--record] [--as-of]``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from app.errors import DataError, SegmentsError
from app.history.records import check_run_id
from app.registry.manifest import dropped_summary
from app.registry.store import ModelStore
from app.training.config import ahead_of_today
from app.training.csv_format import CsvFormat
from app.training.data import columns_of
from app.words import counted

if TYPE_CHECKING:  # (app.recording imports scikit-learn: only where a run is made)
    from app.recording.state import RunState

RECORD_CHUNK = 10_000  # customers seeded and recorded per round trip to Redis


def trained_on_log(store: ModelStore, model_name: str, version: str | None) -> bool:
    """Whether the version (default: the promoted one) was trained on a transaction log."""
    version = version or store.promoted(model_name)
    if version is None:
        return False
    return store.manifest(model_name, version).data.kind == "transactions"


def log_models(store: ModelStore) -> list[str]:
    """The store's models whose promoted version was trained on a transaction log."""
    found = []
    for name in store.model_names():
        with contextlib.suppress(SegmentsError, OSError, ValueError):  # a broken one is not
            if trained_on_log(store, name, None):
                found.append(name)
    return found


def with_log_hint(
    error: DataError, store: ModelStore, model_name: str, source: Path | None = None
) -> DataError:
    """A table's "missing column(s)" error: the store's other table models whose columns
    ``source`` has (the user meant one of them), else, when ``source`` is a transaction log
    (it has the columns a log model reads), the models that read one (the user ran
    ``segments assign --input LOG`` without ``--model``). A customer table short of a column
    gets neither: "pass --model shop" sent a tester to a model of another kind of file."""
    if "missing column" not in str(error) or source is None:
        return error
    fitting = _tables_fitting(store, model_name, source)
    if fitting:
        return DataError(
            f"{error}. The file has every column of model {fitting[0]}: --model {fitting[0]}"
            + (f" (models it fits: {', '.join(fitting)})" if len(fitting) > 1 else "")
        )
    logs = _logs_fitting(store, model_name, source)
    if not logs:
        return error
    return DataError(
        f"{error}. Model {model_name} reads one row per customer with its features; if this "
        f"is a transaction log, pass the model trained on one: --model {logs[0]}"
        + (f" (models trained on a log: {', '.join(logs)})" if len(logs) > 1 else "")
    )


def _columns(source: Path, data: Mapping[str, Any]) -> set[str]:
    """The columns of ``source`` as a model trained on ``data`` (its manifest's ``[data]``)
    reads them, with its delimiter (none where it cannot be read)."""
    try:
        return set(columns_of(source, CsvFormat.of(data)))
    except (SegmentsError, OSError, ValueError):
        return set()


def _logs_fitting(store: ModelStore, model_name: str, source: Path) -> list[str]:
    """The store's other models trained on a transaction log whose customer, time and amount
    (or quantity and unit price) columns are all columns of ``source`` as each reads it
    (their promoted versions)."""
    found = []
    for name in log_models(store):
        with contextlib.suppress(SegmentsError, OSError, ValueError):  # a broken one: not
            version = store.promoted(name)
            if name == model_name or version is None:
                continue
            data = store.manifest(name, version).config.get("data", {})
            read = data.get("transactions") or {}
            keys = ("customer", "timestamp", "amount", "quantity", "unit_price")
            wanted = {str(read[k]) for k in keys if read.get(k)}
            if wanted and wanted <= _columns(source, data):
                found.append(name)
    return found


def _tables_fitting(store: ModelStore, model_name: str, source: Path) -> list[str]:
    """The store's other models trained on a table whose id and feature columns are all
    columns of ``source`` as each reads it (their promoted versions)."""
    found = []
    for name in store.model_names():
        with contextlib.suppress(SegmentsError, OSError, ValueError):  # a broken one: not
            version = store.promoted(name)
            if name == model_name or version is None:
                continue
            manifest = store.manifest(name, version)
            if manifest.data.kind == "transactions":
                continue
            wanted = {trained_id_column(store, name, version), *(f.name for f in manifest.features)}
            if wanted <= _columns(source, manifest.config.get("data", {})):
                found.append(name)
    return found


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


def refuse_feature_as_id(
    store: ModelStore, model_name: str, version: str | None, id_column: str
) -> None:
    """``--id-column`` naming one of a table version's features (``--id-column region``)
    tagged one "customer" per region and rejected every other row as a duplicate id, exit 0
    (and with ``--record`` recorded the regions as customers): training refuses such an id
    column, and so does file tagging."""
    version = version or store.promoted(model_name)
    if version is None or version not in store.versions(model_name):
        return  # loading the version says what is missing
    manifest = store.manifest(model_name, version)
    if manifest.data.kind == "table" and id_column in {f.name for f in manifest.features}:
        trained = manifest.config.get("data", {}).get("id_column") or "customer_id"
        raise DataError(
            f"--id-column {id_column!r} is a feature of {model_name} {version}, not the "
            f"customer ids: name the file's id column (the version was trained with "
            f"{trained!r}, the default)"
        )


STALE_DAYS = 2
"""A recording run as of this many days before now or more says the service, which derives
as of now, will move some of its customers again (the log's last day is yesterday's in a
nightly export: no note)."""


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
    run_id: str | None = None,
    resume: str | None = None,
    chunk_size: int | None = None,
) -> None:
    """Tag (``output``) and/or record (``record``: a run, or ``run_id`` again, or the rest
    of ``resume``; ``chunk_size`` customers per round trip) every customer of a log."""
    from app.events.tagging import record_log, tag_log, unassigned_report, write_output
    from app.recording import RunRequest, load_serving
    from app.recording.run import plan_run, served_note, summary
    from app.recording.state import RunError
    from app.redis_client import namespace_note, redis_target
    from app.settings import get_settings

    if output is None and not record:
        raise DataError("--output is required (or --record)")
    today = datetime.now(UTC).date()
    if as_of is not None and (ahead := ahead_of_today("--as-of", as_of)):
        raise DataError(
            f"{ahead}: the features would be derived as of a day to come, and with --record "
            "every event posted before it would be late (not applied)"
        )
    if not source.is_file():
        raise DataError(f"input file not found: {source}")
    settings = get_settings()
    runs = settings.data_dir / "runs"
    earlier = _earlier_run(runs, run_id, resume) if record else None
    if earlier is not None:
        assert earlier.reference is not None
        reference = date.fromisoformat(earlier.reference)
        if as_of is not None and as_of != reference:  # (a finished run too: it did not)
            raise RunError(
                f"run {earlier.run_id} derived the log as of {reference.isoformat()}; as of "
                f"{as_of.isoformat()} the customers and features differ: start a new run"
            )
        as_of = reference
        if resume is not None:
            if earlier.finished:
                console.print(f"run {earlier.run_id} is already finished")
                return
            if version is not None and version != earlier.version:
                raise RunError(f"run {earlier.run_id} recorded version {earlier.version}")
            version = earlier.version
    serving = load_serving(store, model_name, version)
    started = time.perf_counter()
    tagged = tag_log(serving, source, as_of)
    if output is not None and not record:
        write_output(tagged, output, id_column)
    customers = counted(tagged.customers, "customer")
    span = f"{customers} of {source.name} as of {tagged.reference} (exclusive)"
    if record:
        chunk = chunk_size or RECORD_CHUNK
        request = RunRequest(source, output, model_name, runs, id_column, chunk, run_id, resume)
        state = plan_run(request, serving.version)
        state.reference = tagged.reference.isoformat()
        config = settings.history_config(model_name)  # its own keys unless the default
        if note := namespace_note(settings, model_name):
            console.print(note, markup=False, soft_wrap=True)
        with redis_target(config) as target:
            where = f" after customer {state.rows_done:,}" if state.rows_done else ""
            console.print(
                f"run {state.run_id}: {'resuming' if where else 'recording'} {span}{where} "
                f"with {model_name} {serving.version} into {target.description}",
                soft_wrap=True,
                markup=False,  # a path may hold [brackets]: printed as it is
            )
            config = replace(config, redis_url=target.url)
            state = asyncio.run(record_log(serving, tagged, config, state, runs, output))
        if output is not None:  # once recorded: a failed run writes none, and it shows
            write_output(tagged, output, id_column)  # the segments recorded
        for line in summary(state, time.perf_counter() - started):
            console.print(line, soft_wrap=True, highlight=False, markup=False)
        console.print(
            "  behaviour aggregates seeded for each (events posted from now on update them)"
        )
        if note := served_note(store, state):
            console.print(f"  note: {note}", soft_wrap=True, highlight=False, markup=False)
        if (behind := (today - tagged.reference).days + 1) >= STALE_DAYS:
            console.print(
                f"[yellow]note:[/] recorded as of {tagged.reference.isoformat()}, "
                f"{counted(behind, 'day')} before now; the service derives these customers' "
                "features as of now (an assignment by id, an event, a rescore), so those "
                "whose recency or tenure crosses a segment's edge move again then. To record "
                f"them as of now: --as-of {(today + timedelta(days=1)).isoformat()}",
                soft_wrap=True,
            )
    else:
        seconds = time.perf_counter() - started
        console.print(
            f"tagged {span} with {model_name} {serving.version} in {seconds:.1f} s",
            soft_wrap=True,
            markup=False,
        )
    if output is not None:
        console.print(f"  -> {output}", soft_wrap=True, markup=False)
    if tagged.dropped:  # as training reports them
        why = dropped_summary(tagged.dropped, tagged.examples)
        console.print(
            f"[yellow]note:[/] {sum(tagged.dropped.values()):,} of {counted(tagged.rows, 'row')} "
            f"of {escape(source.name)} were left out ({escape(why)})",
            soft_wrap=True,
        )
    for note in tagged.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    report = unassigned_report(
        tagged, output, source, runs, id_column, state.run_id if record else None
    )
    if report is not None:
        reasons: dict[str, int] = {}
        for _, reason in tagged.unassigned:
            reasons[reason] = reasons.get(reason, 0) + 1
        for reason, count in reasons.items():
            console.print(f"[yellow]{counted(count, 'customer')}[/]: {reason}", soft_wrap=True)
        console.print(f"  each listed with its reason in {report}", soft_wrap=True, markup=False)


def _earlier_run(runs: Path, run_id: str | None, resume: str | None) -> RunState | None:
    """The run file of ``--resume`` (required) or ``--run-id`` (if any), of a log's run."""
    from app.recording.state import RunError, RunState

    wanted = resume or run_id
    if wanted is None:
        return None
    try:
        check_run_id(wanted)
    except ValueError as exc:
        raise RunError(str(exc)) from None
    state = RunState.load(runs, wanted)
    if state is None and resume is not None:
        raise RunError(f"no run file for run {wanted} under {runs}")
    if state is not None and state.reference is None:
        raise RunError(
            f"run {wanted} recorded a customer table, not a transaction log: start a new run"
        )
    return state
