"""``SeenIds``: which customer ids a pass over many has met already, in 8 bytes an id."""

from __future__ import annotations

import numpy as np


class SeenIds:
    """The ids a pass has met (a rescore's listing, where SCAN returns a key again while
    Redis rehashes; a file's chunks), to drop the repeats, in 8 bytes an id: a million
    customers' ids as Python strings in a set took 92 MB, inside a serving worker.

    Each id is kept as its 64-bit hash (Python's ``hash``: SipHash, keyed per process, which
    is all one pass needs), in sorted arrays of about doubling sizes (a new page's array is
    merged with the last ones while they are no larger), so a page is checked with one
    binary search per array. Two distinct ids share a hash with a probability of about
    n² / 2^65 (3 in a million for 10 million customers): the second would be taken for a
    repeat.
    """

    def __init__(self) -> None:
        self.levels: list[np.ndarray] = []

    def first_seen(self, ids: list[str]) -> list[str]:
        """The ids of ``ids`` not returned before (a repeat within ``ids`` counts once), in
        their order; remembered from now on."""
        digests = np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids))
        new = np.zeros(len(ids), dtype=bool)
        new[np.unique(digests, return_index=True)[1]] = True
        for level in self.levels:
            at = np.minimum(np.searchsorted(level, digests), len(level) - 1)
            new &= level[at] != digests
        merged = np.sort(digests[new])
        while self.levels and len(self.levels[-1]) <= len(merged):
            merged = np.union1d(self.levels.pop(), merged)
        if len(merged):
            self.levels.append(merged)
        return [ids[i] for i in np.flatnonzero(new)]
