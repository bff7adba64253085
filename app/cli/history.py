"""``segments customers forget`` and ``segments history migrate-keys``: the history store
from the command line, with the service's settings (``SEGMENTS_REDIS_URL``, or the embedded
server under ``SEGMENTS_DATA_DIR``: the running service's, else one started for the command).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from app.cli.common import fail_on_error

if TYPE_CHECKING:
    from app.history import HistoryService


def register(app: typer.Typer) -> None:
    """Add the ``customers`` and ``history`` groups to the ``segments`` command."""
    app.add_typer(customers_app, name="customers")
    app.add_typer(history_app, name="history")


customers_app = typer.Typer(help="Customers in the history store: forget them.")
history_app = typer.Typer(help="The history store: one-time key migrations.")
console = Console(stderr=True)


@contextlib.asynccontextmanager
async def _history() -> AsyncIterator[HistoryService]:
    """A HistoryService on the service's Redis (no replayer), saying which Redis it uses."""
    from app.history import HistoryService, Recorder, Spool
    from app.redis_client import redis_target
    from app.settings import Settings

    config = Settings().history_config()
    async with contextlib.AsyncExitStack() as stack:
        target = stack.enter_context(redis_target(config))
        console.print(f"using {target.description}", soft_wrap=True, highlight=False)
        url = target.url
        spool = Spool(config.spool_dir, config.spool_max_records, config.spool_fsync)
        stack.callback(spool.close)
        recorder = Recorder.connect(url, config)
        stack.push_async_callback(recorder.aclose)
        yield HistoryService(recorder, spool)


@customers_app.command("forget")
def forget(
    customer_ids: Annotated[list[str], typer.Argument(help="the customers to forget")],
) -> None:
    """Forget customers: profile, current segment, history and membership (and this host's
    spooled records of them). Exits 1 if any was unknown."""

    async def run() -> list[bool]:
        async with _history() as service:
            return [await service.forget(c) for c in customer_ids]

    with fail_on_error(console):
        found = asyncio.run(run())
    for customer_id, known in zip(customer_ids, found, strict=True):
        state = "forgotten" if known else "[yellow]unknown[/]"
        console.print(f"{escape(customer_id)}: {state}", highlight=False)
    if not all(found):
        raise typer.Exit(1)


@history_app.command("migrate-keys")
def migrate_keys() -> None:
    """Rewrite the first key layout into the compact one (run with the service stopped)."""
    from app.history.migrate import migrate_keys as migrate

    async def run() -> str:
        async with _history() as service:
            report = await migrate(service.recorder)
        return (
            f"{report.customers:,} customers, {report.members:,} members of "
            f"{report.segments:,} segment sets rewritten"
        )

    with fail_on_error(console):
        console.print(asyncio.run(run()))
