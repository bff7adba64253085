"""The training job's fits on samples, two at a time.

Choosing k fits dozens of candidates and refits on samples of 5,000-20,000 customers, each
with one thread of every library (``steps._sample_sized``: OpenMP threads spin at every
barrier of an iteration where a core is busy elsewhere). One after the other they used one of
this machine's two cores; k-means' iterations, the k-means++ distances and the silhouettes'
products run without the GIL, so two such fits side by side take about half the time.

``sample_map`` is ``[fn(item) for item in items]`` with up to ``SAMPLE_THREADS`` items at a
time, each in a thread limited to one OpenMP thread (OpenMP's thread count is a setting of
the calling thread: a new thread would start with one per core; BLAS's is the process's,
which the job limits to one). Every item's result is computed as it was one after the other
(its own estimator, seed and data; one thread each), so results are the same to the bit in
the same order (tests/training/test_parallel.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from threadpoolctl import ThreadpoolController

T = TypeVar("T")
R = TypeVar("R")
SAMPLE_THREADS = 2


def sample_map(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[fn(item) for item in items]``, up to ``SAMPLE_THREADS`` at a time, each in a thread
    with one OpenMP thread; the first exception raised is raised here."""
    todo = list(items)
    if len(todo) < 2:
        return [fn(item) for item in todo]

    with ThreadPoolExecutor(
        SAMPLE_THREADS, thread_name_prefix="train-sample", initializer=_one_thread_each
    ) as pool:
        return list(pool.map(fn, todo))


def _one_thread_each() -> None:
    """OpenMP limited to one thread in this (new) thread, for its life: its count is a
    setting of the calling thread (BLAS's is the process's, one already)."""
    _openmp().limit(limits=1)


@functools.cache
def _openmp() -> ThreadpoolController:
    """The OpenMP runtimes loaded (scikit-learn's, by the time anything is fitted), found
    once: finding them walks every loaded library, 3-15 ms each time on this machine."""
    return ThreadpoolController().select(user_api="openmp")
