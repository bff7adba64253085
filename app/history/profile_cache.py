"""The per-process cache of stored profiles that lets an assignment by id take one round trip.

An assignment by id reads the customer's profile, assigns from it, then records: two trips
through the coalescing lane, the second depending on the first. With the profile cached, the
service assigns at once and sends one record that carries the profile as it was read
(``Record.expected_profile``: ``p`` and the chunk fields, exactly as Redis returned them).
``record.lua`` applies it only if the customer's hash still holds exactly those fields, in
the same atomic call; otherwise it applies nothing and answers "stale", and the service drops
the entry and takes the read-assign-record path again. So the cache is never trusted: Redis
validates every answer made from it (optimistic concurrency), whoever changed the profile
(another worker or host, a batch, a file run, a forget, a merge).

Comparing the stored strings needs no version field in the hash, so no migration and no
byte more per customer. A by-id record stores no profile, so it leaves the compared fields
as they are: concurrent by-id requests for one customer never make each other stale.

An entry also keeps what a caller made from its profile (``keep_made``: the by-id path's
features and assignment, a pure function of the profile and the serving version), for as
long as that profile is the entry's: a customer asked for again is answered without
assigning again. Every such answer is still checked by Redis like any other.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.history.records import Profile


@dataclass(slots=True)
class _Entry:
    profile: Profile
    made_for: str | None = None  # the key ``made`` was made for (a serving version)
    made: Any = None


class ProfileCache:
    """At most ``size`` customers' profiles, least recently used out first (0: off).

    ``hits``, ``misses`` and ``stale`` count lookups that found an entry, lookups that did
    not, and entries that Redis found out of date when a record made from them was checked.

    >>> cache = ProfileCache(2)
    >>> for customer in ("C1", "C2", "C3"):
    ...     cache.put(customer, Profile({"x": 1}, 0, "1:1\\x1e1"))
    >>> cache.get("C1") is None, cache.get("C3").features, len(cache)
    (True, {'x': 1}, 2)
    """

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"the profile cache size must be 0 or more, got {size}")
        self.size = size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self.hits = self.misses = self.stale = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, customer_id: str) -> Profile | None:
        entry = self._entries.get(customer_id)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(customer_id)
        return entry.profile

    def put(self, customer_id: str, profile: Profile) -> None:
        """Keep ``profile`` (read from Redis: it has its ``stored`` form) for the customer."""
        if not self.size or not profile.stored:
            return
        self._entries[customer_id] = _Entry(profile)
        self._entries.move_to_end(customer_id)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def made(self, customer_id: str, key: str) -> Any:
        """What ``keep_made`` kept for ``key`` from the customer's cached profile, or None.

        >>> cache = ProfileCache(2)
        >>> profile = Profile({"x": 1}, 0, "1:1\x1e1")
        >>> cache.put("C1", profile)
        >>> cache.keep_made("C1", profile, "v1", "made")
        >>> cache.made("C1", "v1"), cache.made("C1", "v2")
        ('made', None)
        >>> cache.put("C1", Profile({"x": 2}, 1, "1:1\x1e2"))  # a new profile: made again
        >>> cache.made("C1", "v1") is None
        True
        """
        entry = self._entries.get(customer_id)
        return entry.made if entry is not None and entry.made_for == key else None

    def keep_made(self, customer_id: str, profile: Profile, key: str, made: Any) -> None:
        """Keep ``made``, made from ``profile`` for ``key``, while ``profile`` is the cached
        one (an entry replaced meanwhile keeps nothing of it)."""
        entry = self._entries.get(customer_id)
        if entry is not None and entry.profile is profile:
            entry.made_for, entry.made = key, made

    def drop(self, customer_id: str) -> None:
        self._entries.pop(customer_id, None)

    def drop_stale(self, customer_id: str) -> None:
        """Redis found the customer's entry out of date."""
        self.stale += 1
        self.drop(customer_id)

    def drop_many(self, customer_ids: Sequence[str]) -> None:
        if self._entries:
            for customer_id in customer_ids:
                self._entries.pop(customer_id, None)
