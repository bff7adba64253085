"""The webhook feature's configuration: one frozen value, mapped from ``Settings``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """How the dispatcher batches, retries, bounds and guards deliveries.

    Parameters
    ----------
    batch_size, batch_wait_ms
        A batch is sent when ``batch_size`` events wait for the endpoint, or ``batch_wait_ms``
        after the first of them arrived.
    timeout_s
        Deadline of one POST (connect, send, answer).
    retry_base_ms, retry_max_ms
        Backoff before retry ``n`` is a random time between half and all of
        ``min(max, base * 2**n)`` (jitter, so that endpoints failing together do not retry
        together); a longer ``Retry-After`` of the answer is waited instead.
    retry_for_s
        A batch failing this long goes to the dead-letter list.
    disable_after_s
        An endpoint with no success for this long, when a batch of it goes dead, is disabled:
        its queue moves to the dead letters, and so do its new events until it is re-enabled.
    max_queue
        Most events waiting per endpoint (queue, and dead letters); beyond it they are
        dropped and counted.
    log_size
        Delivery attempts kept per endpoint (the delivery log).
    allow_private
        Allow targets that resolve to private, loopback, link-local or reserved addresses.
    allow_http_hosts
        Host names that may be reached over plain ``http`` (anything else needs ``https``).
    lease_ms
        Lifetime of the dispatcher's lease (renewed every third of it): one dispatcher works
        per deployment; a standby takes over within this long after the worker dies.
    """

    batch_size: int = 500
    batch_wait_ms: int = 200
    timeout_s: float = 10.0
    retry_base_ms: int = 1_000
    retry_max_ms: int = 600_000
    retry_for_s: float = 86_400.0
    disable_after_s: float = 86_400.0
    max_queue: int = 1_000_000
    log_size: int = 100
    allow_private: bool = False
    allow_http_hosts: frozenset[str] = frozenset()
    lease_ms: int = 10_000
