"""Activation by webhooks: subscriptions kept in Redis, and a dispatcher that delivers the
change stream's segment events to them, signed (Standard Webhooks), batched, in order per
customer, retried, dead-lettered. ``docs/webhooks.md`` is the user's page.

    endpoints.py  ->  store.py (subscriptions, status, dead letters, replay; Redis)
    dispatcher.py ->  fan-out of the stream into per-endpoint queues, delivery loops
    delivery.py       one signed POST of a batch and what its answer means
    safety.py         which target URLs are allowed
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.webhooks.config import WebhookConfig

if TYPE_CHECKING:
    from app.webhooks.dispatcher import Dispatcher, run_dispatcher
    from app.webhooks.store import SubscriptionStore

__all__ = ["Dispatcher", "SubscriptionStore", "WebhookConfig", "run_dispatcher"]


def __getattr__(name: str) -> Any:
    """The dispatcher and the store on first use: ``app.settings`` reads ``WebhookConfig``
    from here, and every command imports the settings, so importing them up front (the
    model registry, scikit-learn) made each command pay a second of imports before its
    first step (``segments assign --record`` could not start reading its file meanwhile)."""
    if name in ("Dispatcher", "run_dispatcher"):
        from app.webhooks import dispatcher

        return getattr(dispatcher, name)
    if name == "SubscriptionStore":
        from app.webhooks.store import SubscriptionStore

        return SubscriptionStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
