"""``segments customers forget`` and ``segments history migrate-keys``: the history store
from the command line, with the service's settings (``SEGMENTS_REDIS_URL``, or the embedded
server under ``SEGMENTS_DATA_DIR``: the running service's, else one started for the command).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from app.cli.common import fail_on_error, model_option, terminal_text
from app.words import counted

if TYPE_CHECKING:
    from app.history import HistoryService


def register(app: typer.Typer) -> None:
    """Add the ``customers`` and ``history`` groups to the ``segments`` command."""
    app.add_typer(customers_app, name="customers")
    app.add_typer(history_app, name="history")


customers_app = typer.Typer(
    help="Customers in the history store: re-assign them all with the served version, or forget "
    "them."
)
history_app = typer.Typer(help="The history store: one-time key migrations.")
console = Console(stderr=True, emoji=False)


@contextlib.asynccontextmanager
async def _history(models: tuple[str | None, ...] = (None,)) -> AsyncIterator[list[HistoryService]]:
    """A HistoryService per model (``None``: the default model) on the service's Redis (no
    replayer), saying which Redis it uses, and for one model its keys (another model than the
    default records under its own prefix)."""
    from app.history import HistoryService, Recorder, Spool
    from app.redis_client import namespace_note, redis_target
    from app.settings import get_settings

    settings = get_settings()
    one = models[0] if len(models) == 1 else None
    async with contextlib.AsyncExitStack() as stack:
        target = stack.enter_context(redis_target(settings.history_config(one)))
        if one is not None and (note := namespace_note(settings, one)):
            console.print(note, soft_wrap=True, highlight=False, markup=False)
        console.print(f"using {target.description}", soft_wrap=True, highlight=False, markup=False)
        services = []
        for model in models:
            config = settings.history_config(model)
            spool = Spool(config.spool_dir, config.spool_max_records, config.spool_fsync)
            stack.callback(spool.close)
            # an offline command connects within the batch deadline, not the service's 100 ms
            # one (migrate-keys timed out connecting to a healthy local Redis, each of three
            # runs on a 2-core machine at load 0.7; given 2 s, each run answered)
            timeout = max(config.timeout_ms, config.batch_timeout_ms)
            recorder = Recorder.connect(target.url, replace(config, timeout_ms=timeout))
            stack.push_async_callback(recorder.aclose)
            services.append(HistoryService(recorder, spool))
        yield services


def _every_model() -> tuple[str, ...]:
    """The models the service serves with these settings (``SEGMENTS_MODELS``, else every
    model of the store), the default one included."""
    from app.registry.store import ModelStore
    from app.settings import get_settings

    settings = get_settings()
    names = settings.served_models() or tuple(ModelStore(settings.model_store).model_names())
    return tuple(dict.fromkeys((settings.model_name, *names)))


def _check_model(name: str) -> None:
    from app.errors import StoreError
    from app.registry.store import ModelStore
    from app.settings import get_settings

    store = ModelStore(get_settings().model_store)
    if name not in store.model_names():
        raise StoreError(store.no_promoted_version(name))


@customers_app.command("forget")
def forget(
    customer_ids: Annotated[list[str], typer.Argument(help="the customers to forget")],
    model: Annotated[
        str | None,
        typer.Option(
            help="forget only in this model (default: in every model served)", callback=model_option
        ),
    ] = None,
) -> None:
    """Forget customers in every model the service serves (or only in --model): profile,
    current segment, history and membership (and this host's spooled records of them), as
    DELETE /v1/customers/{id} does. Exits 1 if any was unknown in all of them, or is no
    customer id (as the API refuses it: blank, control characters, too long)."""

    async def run() -> list[bool]:
        models = (model,) if model else _every_model()
        async with _history(models) as services:
            found = []
            for customer_id in customer_ids:
                if problems[customer_id] is not None:
                    found.append(False)
                    continue
                known = [await service.forget(customer_id) for service in services]
                found.append(any(known))
            return found

    from app.problems import clipped  # the API's own clipping; fastapi only when forgetting

    problems = {customer_id: _id_problem(customer_id) for customer_id in customer_ids}
    with fail_on_error(console):
        if model is not None:  # a mistyped name would read as "unknown" customers
            _check_model(model)
        found = asyncio.run(run())
    for customer_id, known in zip(customer_ids, found, strict=True):
        state = "forgotten" if known else "[yellow]unknown[/]"
        if problem := problems[customer_id]:
            state = f"[red]not a customer id[/] ({problem})"
            customer_id = f"'{clipped(customer_id, 40)}'"
        console.print(
            f"{escape(terminal_text(customer_id))}: {state}", highlight=False, soft_wrap=True
        )
    if not all(found):
        raise typer.Exit(1)


def _id_problem(customer_id: str) -> str | None:
    """Why the service would refuse ``customer_id`` (empty, control characters only, longer
    than the API reads), as DELETE /v1/customers/{id} does, or None: such an id could never
    have been recorded, so "unknown" would mislead."""
    from app.assignment.customer_ids import id_problem
    from app.history.endpoints import MAX_PATH_ID

    return id_problem(customer_id, MAX_PATH_ID)


@customers_app.command("rescore")
def rescore(
    model: Annotated[
        str | None,
        typer.Option(
            help="the model (default: SEGMENTS_MODEL_NAME, else the store's only one)",
            callback=model_option,
        ),
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="assign with this version (default: the promoted one)")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="customers assigned and recorded per batch")
    ] = 5_000,
) -> None:
    """Re-assign every customer the history store knows with the promoted version (or
    --version) and record each, as POST /v1/assign by id does: from the stored profile, or for
    a model trained on a transaction log, from the stored behaviour as of now. Run it after a
    promotion or a rollback, so that members and histories follow the served segmentation at
    once; for a log model, it also moves the customers whose recency grew since. Safe to
    repeat. Exits 3 when some customers could not be assigned (each reason is counted)."""
    from app.cli.common import default_model, store_at
    from app.events.store import BehaviourStore
    from app.history.keys import Keys
    from app.recording import load_serving
    from app.recording.rescore import Rescored, rescore
    from app.recording.run import not_served_note
    from app.rescore.service import settle_wait
    from app.settings import get_settings

    settings = get_settings()

    shown = [time.monotonic()]

    async def progress(done: Rescored) -> None:  # a line every 5 s at most (a log, not a screen)
        if time.monotonic() - shown[0] >= 5:
            shown[0] = time.monotonic()
            seen = done.customers + done.not_assigned
            line = f"  {counted(seen, 'customer')}: {done.changed:,} changed"
            console.print(line, highlight=False)

    async def run() -> tuple[str, Rescored]:
        async with _history((name,)) as (service,):
            config = settings.history_config(name)
            keys = Keys.from_config(config)
            behaviour = None
            if serving.manifest.data.kind == "transactions":
                client = service.recorder.client
                behaviour = BehaviourStore(client, keys, max(config.batch_timeout_s, 30.0))
            done = await rescore(
                serving, service, keys, behaviour, settings.max_id_length, batch_size, progress
            )
            return serving.version, done

    with fail_on_error(console):
        store = store_at(None)
        name = model or default_model(store, settings.model_name)
        serving = load_serving(store, name, version)
        if serving.version == store.promoted(name):
            # a service's workers serve it first: one still serving the version before would
            # record customers after the run moved them (SEGMENTS_RELOAD_INTERVAL)
            wait = settle_wait(store, name, settings.reload_interval)
            if wait > 0:
                line = f"waiting {wait:.1f} s for the service's workers to serve {serving.version}"
                console.print(line, highlight=False, markup=False)
                time.sleep(wait)
        console.print(f"rescoring {name} with {serving.version}", highlight=False, markup=False)
        started = time.perf_counter()
        used, done = asyncio.run(run())
    seconds = time.perf_counter() - started
    console.print(
        f"rescored {counted(done.customers, 'customer')} with {name} {used} in {seconds:.1f} s: "
        f"{done.changed:,} changed, {done.unchanged:,} unchanged"
        + (f", {done.not_recorded:,} not recorded" if done.not_recorded else "")
        + (f", {done.gone:,} gone since listed (forgotten or expired)" if done.gone else ""),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    for (before, after), count in done.moves.most_common(10):
        console.print(f"  {before or '(none)'} -> {after}: {count:,}", highlight=False)
    # --version of another than the served one: its segments are recorded, which the service
    # does not serve (members listed under none of its segments), and move back when asked
    if note := not_served_note(store, name, used, "this rescore recorded with"):
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    if done.not_assigned:
        console.print(
            f"[yellow]not assigned: {done.not_assigned:,}[/] (their segment stays as recorded)",
            highlight=False,
            soft_wrap=True,
        )
        for reason, count in done.refused.most_common(10):
            line = f"  {escape(terminal_text(reason))}: {count:,}"
            console.print(line, highlight=False, soft_wrap=True)
        from app.assignment.profiles import NOT_STORED

        if any(NOT_STORED in reason for reason in done.refused):
            # (the reason is the API's, "send it, or null": no one sends a rescore anything)
            console.print(
                "  a feature their stored profiles lack (a retrain added it): record the "
                f"customers' file again, `segments assign --input FILE --record --model {name}`, "
                "which stores every feature the versions read, then rescore",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        raise typer.Exit(3)  # partial: what was assigned is recorded


@history_app.command("migrate-keys")
def migrate_keys() -> None:
    """Rewrite the first key layout into the compact one (run with the service stopped)."""
    from redis.exceptions import RedisError

    from app.errors import SegmentsError
    from app.history.migrate import migrate_keys as migrate

    async def run() -> str:
        async with _history() as (service,):
            try:
                report = await migrate(service.recorder)
            except (RedisError, OSError) as exc:  # (was the redis-py traceback)
                raise SegmentsError(
                    f"Redis failed while migrating the keys ({exc or type(exc).__name__}): "
                    "run it again once Redis answers (it rewrites the keys still in the "
                    "first layout)"
                ) from None
        return (
            f"{counted(report.customers, 'customer')}, {counted(report.members, 'member')} of "
            f"{counted(report.segments, 'segment set')} rewritten"
        )

    with fail_on_error(console):
        console.print(asyncio.run(run()))
