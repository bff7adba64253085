"""Subscriptions, their delivery status, dead letters and replay, kept in Redis.

``SubscriptionStore`` is the only code that reads or writes the webhook keys
(``app.webhooks.keys``); the endpoints and the dispatcher both go through it.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import orjson
from redis.asyncio import Redis
from redis.exceptions import ResponseError, WatchError

from app.webhooks.keys import GROUP, WebhookKeys
from app.webhooks.sources import Sources, fixed

EVENT_TYPES: tuple[Literal["segment.entered", "segment.exited"], ...] = (
    "segment.entered",
    "segment.exited",
)

# Move every dead-lettered event to the tail of the queue (oldest first) and re-enable the
# endpoint; atomic, so a dead letter is never both replayed and kept, nor lost. A
# subscription deleted meanwhile (KEYS[4] no longer holds ARGV[1]) is left alone: nothing
# of it is written back ({-1, 0}).
REPLAY = """
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 0 then return {-1, 0} end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i = 1, #items do redis.call('RPUSH', KEYS[2], items[i]) end
redis.call('DEL', KEYS[1])
local was = redis.call('HGET', KEYS[3], 'disabled_at')
redis.call('HDEL', KEYS[3], 'disabled_at', 'disabled_reason', 'failing_since')
redis.call('HSET', KEYS[3], 'failures', 0)
return {#items, was and 1 or 0}
"""


UPDATE_TRIES = 50


class Contended(Exception):
    """An update kept finding the subscriptions changed under it (a retry may pass)."""


@dataclass(frozen=True)
class Subscription:
    id: str
    url: str
    events: list[str]
    segments: list[str] | None
    description: str
    paused: bool
    created_at: int  # epoch ms
    secret: str = field(repr=False)
    models: list[str] | None = None  # None: every served model's events
    # after a rotation, the secret it replaced signs too until ``previous_until`` (epoch ms)
    previous_secret: str | None = field(default=None, repr=False)
    previous_until: int | None = None
    # ``models`` was pinned by the ``segments`` filter (none was given), not named by the
    # user: clearing or changing that filter drops or re-resolves it (app.webhooks.filters)
    models_pinned: bool = False

    def secrets_at(self, now_ms: int) -> list[str]:
        """The secrets a delivery at ``now_ms`` is signed with: the current one, and the
        previous one while its overlap lasts (Standard Webhooks: one signature each)."""
        if self.previous_secret and self.previous_until and now_ms < self.previous_until:
            return [self.secret, self.previous_secret]
        return [self.secret]

    def wants_model(self, model: str) -> bool:
        """Whether events of ``model`` are for this subscription ("": an unnamed source,
        always); which types and segments is the fan-out script's test."""
        return not model or self.models is None or model in self.models

    def to_json(self) -> bytes:
        """Without the rotation's fields while none runs: a process of the release before
        them (a `segments dispatch` not yet upgraded) reads every other subscription."""
        fields = asdict(self)
        if self.previous_secret is None and self.previous_until is None:
            del fields["previous_secret"], fields["previous_until"]
        if not self.models_pinned:
            del fields["models_pinned"]
        return orjson.dumps(fields)

    @classmethod
    def from_json(cls, text: str | bytes) -> Subscription:
        """A subscription as stored; fields a later release added are left out, so a
        process not yet upgraded keeps delivering (with what it knows)."""
        stored = orjson.loads(text)
        return cls(**{k: v for k, v in stored.items() if k in _FIELDS})


_FIELDS = frozenset(Subscription.__dataclass_fields__)


@dataclass(frozen=True)
class DeliveryStatus:
    backlog: int
    dead_letters: int
    delivered: int
    consecutive_failures: int
    last_success_at: int | None
    last_failure_at: int | None
    last_failure_status: int | None
    last_failure_error: str | None
    failing_since: int | None
    disabled_at: int | None
    disabled_reason: str | None
    dropped: int


def _int(value: str | None) -> int | None:
    return None if value is None or value == "" else int(value)


def new_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class SubscriptionStore:
    """The webhook feature's state in Redis (``client`` decodes responses)."""

    def __init__(self, client: Redis, prefix: str, sources: Sources | list[str]) -> None:
        self.client, self.keys = client, WebhookKeys(prefix)
        self.sources = fixed(sources) if isinstance(sources, list) else sources
        self._replay = client.register_script(REPLAY)

    async def ensure_groups(
        self, streams: list[str] | None = None, since_ms: int | None = None
    ) -> None:
        """Create the consumer group on ``streams`` (default: every source's), if missing:
        events from now on are read, or from ``since_ms`` (stream ids are times)."""
        every = [s for source in self.sources() for s in source.streams]
        start = "$" if since_ms is None else f"{since_ms}-0"
        for stream in every if streams is None else streams:
            try:
                await self.client.xgroup_create(stream, GROUP, id=start, mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def create(
        self,
        url: str,
        events: list[str],
        segments: list[str] | None,
        description: str,
        models: list[str] | None = None,
        models_pinned: bool = False,
    ) -> Subscription:
        await self.ensure_groups()
        sub = Subscription(
            id="wh_" + secrets.token_hex(8),
            url=url,
            events=sorted(set(events)),
            segments=sorted(set(segments)) if segments is not None else None,
            description=description,
            paused=False,
            created_at=await self._first_ms(),
            secret=new_secret(),
            models=sorted(set(models)) if models is not None else None,
            models_pinned=models_pinned and models is not None,
        )
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.subscriptions, sub.id, sub.to_json())
            pipe.incr(self.keys.subscriptions_version)
            await pipe.execute()
        return sub

    async def _now_ms(self) -> int:
        """Redis's time in ms: the stream's entry ids are its times, whatever this host's
        clock."""
        seconds, micros = await self.client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def _first_ms(self) -> int:
        """The first millisecond whose entries a new subscription gets (scripts.FANOUT): the
        one after Redis's now, returned once Redis's clock has reached it. Every entry
        recorded before the call is older, and every one recorded after the 201 is not; with
        now itself, entries recorded just before in the same millisecond were sent (CI: 15
        of a batch recorded before the subscription)."""
        first = await self._now_ms() + 1
        while await self._now_ms() < first:
            await asyncio.sleep(0.0005)
        return first

    async def all(self) -> list[Subscription]:
        raw: Any = await self.client.hgetall(self.keys.subscriptions)
        subs = [Subscription.from_json(text) for text in raw.values()]
        return sorted(subs, key=lambda s: (s.created_at, s.id))

    async def get(self, sub_id: str) -> Subscription | None:
        text = await self.client.hget(self.keys.subscriptions, sub_id)
        return None if text is None else Subscription.from_json(text)

    async def update(self, sub_id: str, changes: dict[str, Any]) -> Subscription | None:
        """Apply ``changes`` (url, events, segments, description, paused); resuming a disabled
        endpoint (``paused=False``) re-enables it. None: no such subscription.

        A read, then a write of the whole subscription, as one optimistic transaction on the
        subscriptions hash: a delete or another update in between makes it start again, so a
        deleted subscription is never written back and concurrent edits never undo each
        other (a 200 for ``paused`` that another edit's stale copy unpaused).
        """
        if "events" in changes:
            changes["events"] = sorted(set(changes["events"]))
        for name in ("segments", "models"):
            if changes.get(name) is not None:
                changes[name] = sorted(set(changes[name]))
        return await self._rewrite(sub_id, lambda _: changes)

    async def rotate(self, sub_id: str, keep_previous_ms: int) -> Subscription | None:
        """Give the subscription a new signing secret; the one it replaces keeps signing
        (a second signature) for ``keep_previous_ms``, so a receiver can switch without
        refusing a delivery. None: no such subscription."""

        def rotated(current: Subscription) -> dict[str, Any]:
            until = int(time.time() * 1000) + keep_previous_ms if keep_previous_ms else None
            return {
                "secret": new_secret(),
                "previous_secret": current.secret if until else None,
                "previous_until": until,
            }

        return await self._rewrite(sub_id, rotated)

    async def _rewrite(
        self, sub_id: str, changes_of: Callable[[Subscription], dict[str, Any]]
    ) -> Subscription | None:
        """Write the subscription with ``changes_of(current)`` applied (see ``update``)."""
        subs = self.keys.subscriptions
        async with self.client.pipeline(transaction=True) as pipe:
            for _ in range(UPDATE_TRIES):
                try:
                    await pipe.watch(subs)
                    text = await pipe.hget(subs, sub_id)
                    if text is None:
                        return None
                    current = Subscription.from_json(text)
                    changes = changes_of(current)
                    updated = Subscription(**{**asdict(current), **changes})
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(subs, sub_id, updated.to_json())
                    pipe.incr(self.keys.subscriptions_version)
                    if changes.get("paused") is False:
                        status = self.keys.status(sub_id)
                        pipe.hdel(status, "disabled_at", "disabled_reason", "failing_since")
                        pipe.hset(status, "failures", 0)
                    await pipe.execute()
                    return updated
                except WatchError:
                    continue  # the subscriptions changed meanwhile: read them again
        raise Contended(f"the webhook subscriptions kept changing ({UPDATE_TRIES} tries)")

    async def delete(self, sub_id: str) -> bool:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hdel(self.keys.subscriptions, sub_id)
            pipe.delete(*self.keys.all_of(sub_id))
            pipe.incr(self.keys.subscriptions_version)
            removed, _, _ = await pipe.execute()
        return bool(removed)

    async def status(self, sub_id: str) -> DeliveryStatus:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.status(sub_id))
            pipe.llen(self.keys.queue(sub_id))
            pipe.llen(self.keys.dead(sub_id))
            st, backlog, dead = await pipe.execute()
        return DeliveryStatus(
            backlog=backlog,
            dead_letters=dead,
            delivered=int(st.get("delivered", 0)),
            consecutive_failures=int(st.get("failures", 0)),
            last_success_at=_int(st.get("ok_at")),
            last_failure_at=_int(st.get("fail_at")),
            last_failure_status=_int(st.get("fail_status")),
            last_failure_error=st.get("fail_error") or None,
            failing_since=_int(st.get("failing_since")),
            disabled_at=_int(st.get("disabled_at")),
            disabled_reason=st.get("disabled_reason") or None,
            dropped=int(st.get("dropped", 0)),
        )

    async def attempts(self, sub_id: str, limit: int) -> list[dict[str, Any]]:
        """The delivery log: the last ``limit`` attempts, newest first."""
        raw: list[Any] = await self.client.lrange(self.keys.log(sub_id), 0, limit - 1)
        return [orjson.loads(line) for line in raw]

    async def replay(self, sub_id: str) -> tuple[int, bool] | None:
        """Queue the dead letters again (after what waits now); re-enables a disabled
        endpoint. Returns how many events, and whether it was disabled; None: no such
        subscription (deleted, perhaps while this was asked)."""
        keys = [self.keys.dead(sub_id), self.keys.queue(sub_id), self.keys.status(sub_id)]
        keys.append(self.keys.subscriptions)
        count, was_disabled = await self._replay(keys=keys, args=[sub_id])
        return None if int(count) < 0 else (int(count), bool(was_disabled))
