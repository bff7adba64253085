"""The Redis keys of the webhook feature, built here only (listed in ``docs/webhooks.md``).

Every key carries the hash tag ``{wh}`` after the service's prefix, so the scripts that touch
a queue, the dead letters and the lease together stay in one Cluster slot.

>>> keys = WebhookKeys("seg:")
>>> keys.queue("wh_1")
'seg:{wh}:q:wh_1'
"""

from __future__ import annotations

GROUP = "segments-webhooks"
"""The consumer group the dispatcher reads every shard's event stream with."""


class WebhookKeys:
    def __init__(self, prefix: str) -> None:
        self.base = f"{prefix}{{wh}}:"

    @property
    def subscriptions(self) -> str:
        """Hash: subscription id -> its JSON (with the signing secret)."""
        return f"{self.base}subs"

    @property
    def subscriptions_version(self) -> str:
        """String: a counter every create, update and delete of a subscription increments (the
        fan-out checks its list of subscriptions is current against it)."""
        return f"{self.base}subs:v"

    @property
    def lease(self) -> str:
        """String: the token of the dispatcher working now (expires unless renewed)."""
        return f"{self.base}lease"

    def status(self, sub_id: str) -> str:
        """Hash: delivery status of a subscription (last success, failures, disabled...)."""
        return f"{self.base}st:{sub_id}"

    def queue(self, sub_id: str) -> str:
        """List: events waiting for the endpoint, oldest first (the head is in flight)."""
        return f"{self.base}q:{sub_id}"

    def dead(self, sub_id: str) -> str:
        """List: dead-lettered events, oldest first, until replayed."""
        return f"{self.base}dead:{sub_id}"

    def log(self, sub_id: str) -> str:
        """List: the last delivery attempts, newest first."""
        return f"{self.base}log:{sub_id}"

    def all_of(self, sub_id: str) -> list[str]:
        return [self.status(sub_id), self.queue(sub_id), self.dead(sub_id), self.log(sub_id)]
