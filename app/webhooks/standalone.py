"""``segments dispatch``: the webhook dispatcher as a process of its own.

It finds Redis as the other commands do (``SEGMENTS_REDIS_URL``, else the running service's
embedded server), loads the promoted version of every model the service serves (the same
``SEGMENTS_MODELS``) for their streams and segment names, follows promotions and new models,
and runs until SIGINT or SIGTERM, releasing its lease on the way out so that a standby
takes over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from starlette.datastructures import State

from app.history import create_redis
from app.models import Models
from app.redis_client import redis_target
from app.registry.store import ModelStore
from app.serving import ModelHolder
from app.settings import Settings
from app.webhooks.dispatcher import Dispatcher
from app.webhooks.sources import model_sources
from app.webhooks.store import SubscriptionStore

log = logging.getLogger(__name__)


async def _serve(settings: Settings, url: str) -> None:
    config = settings.history_config()
    holder = ModelHolder(
        ModelStore(settings.model_store), settings.model_name, settings.reload_interval
    )
    await asyncio.to_thread(holder.refresh, True)
    # every model the service serves (the same settings), for their streams and names
    models = Models(
        State({"holder": holder}),
        holder.store,
        settings.model_name,
        settings.served_models(),
        settings.reload_interval,
    )
    await models.refresh()
    client = create_redis(url, config)
    store = SubscriptionStore(client, config.key_prefix, model_sources(models, config))
    dispatcher = Dispatcher(store, settings.webhook_config())
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()

    def stop() -> None:
        dispatcher.stop()  # ends the loops even if the cancel is lost (see Dispatcher.stop)
        main.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    watcher = asyncio.create_task(models.watch())  # promotions, and models served later
    try:
        await dispatcher.run()
    finally:
        watcher.cancel()
        await client.aclose()


def dispatch(settings: Settings) -> None:
    """Run the dispatcher until interrupted (see the module docstring)."""
    with redis_target(settings.history_config()) as target:
        log.warning("webhook dispatcher on %s", target.description)
        with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt):
            asyncio.run(_serve(settings, target.url))
