"""Activation by webhooks: subscriptions kept in Redis, and a dispatcher that delivers the
change stream's segment events to them, signed (Standard Webhooks), batched, in order per
customer, retried, dead-lettered. ``docs/webhooks.md`` is the user's page.

    endpoints.py  ->  store.py (subscriptions, status, dead letters, replay; Redis)
    dispatcher.py ->  fan-out of the stream into per-endpoint queues, delivery loops
    delivery.py       one signed POST of a batch and what its answer means
    safety.py         which target URLs are allowed
"""

from app.webhooks.config import WebhookConfig
from app.webhooks.dispatcher import Dispatcher, run_dispatcher
from app.webhooks.store import SubscriptionStore

__all__ = ["Dispatcher", "SubscriptionStore", "WebhookConfig", "run_dispatcher"]
