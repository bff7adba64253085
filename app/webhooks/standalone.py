"""``segments dispatch``: the webhook dispatcher as a process of its own.

It finds Redis as the other commands do (``SEGMENTS_REDIS_URL``, else the running service's
embedded server), loads the promoted version for segment names (and follows promotions),
and runs until SIGINT or SIGTERM, releasing its lease on the way out so that a standby
takes over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from app.history import Keys, create_redis
from app.redis_client import redis_target
from app.registry.store import ModelStore
from app.serving import ModelHolder, every
from app.settings import Settings
from app.webhooks.dispatcher import Dispatcher, names_from
from app.webhooks.store import SubscriptionStore

log = logging.getLogger(__name__)


async def _serve(settings: Settings, url: str) -> None:
    config = settings.history_config()
    holder = ModelHolder(
        ModelStore(settings.model_store), settings.model_name, settings.reload_interval
    )
    await asyncio.to_thread(holder.refresh, True)
    client = create_redis(url, config)
    store = SubscriptionStore(client, config.key_prefix, Keys.from_config(config).all_events())
    dispatcher = Dispatcher(store, settings.webhook_config(), names_from(holder))
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()

    def stop() -> None:
        dispatcher.stop()  # ends the loops even if the cancel is lost (see Dispatcher.stop)
        main.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    watcher = asyncio.create_task(every(settings.reload_interval, holder.refresh, "model"))
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
