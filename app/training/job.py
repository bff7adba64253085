"""The offline training job: data in, one new immutable version in the model store out.

Steps (each timed into the manifest): load -> rules -> preprocess -> select k -> fit ->
quality -> stable ids -> profile -> write -> manifest -> report (``app.training.steps``
after the load). The write goes through ``ModelStore.register``, so a failure at any step
leaves no version behind.

Importing this module imports no scikit-learn or SciPy: ``train`` starts reading the data
file first, then imports them (``app.training.steps``, about a second) while pyarrow reads.
"""

from __future__ import annotations

import functools
import gc
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from threadpoolctl import threadpool_limits

from app.training.config import TrainConfig
from app.training.data import load_training_data
from app.training.data_notes import data_notes

if TYPE_CHECKING:
    import numpy as np

    from app.registry.manifest import Manifest
    from app.registry.store import ModelStore

StepCallback = Callable[[str], None]
P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class TrainResult:
    manifest: Manifest
    promoted: bool
    projection: np.ndarray = field(repr=False)


@dataclass
class Timer:
    on_step: StepCallback | None
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        if self.on_step:
            self.on_step(name)
        start = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - start, 3)


def one_blas_thread(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with one BLAS thread (in each BLAS library loaded when it is called). The
    job's fits are on samples or small matrices, where BLAS's threads gain nothing, and where
    cores are shared they spin: a 4,000-customer training with Gaussian mixture candidates
    took 9.5 min (7 min of CPU) on a loaded 2-core machine, 22 s with one BLAS thread. k-means
    keeps its OpenMP threads for the one fit on every row (it limits BLAS inside them itself);
    the steps on samples take one OpenMP thread too (``steps._sample_sized``)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapper


OVERLAP_SWITCH = 0.0002  # seconds: the GIL's switch interval while the read and import overlap


@contextmanager
def short_switches() -> Iterator[None]:
    """The GIL handed between threads every 0.2 ms instead of every 5 ms while the data file
    is read beside the import of the fitting steps; the caller's interval again after.

    The import holds the GIL without a pause of its own; the reading thread lets it go at
    each file read, Arrow conversion or numpy pass, and then waits for the importing thread
    to be made to give it back: up to a whole interval each time, so that at 5 ms the two
    threads ran mostly one after the other (wall time about equal to CPU time in fresh
    processes; bench/README.md, issue 14's load step). Nothing computed depends on when
    threads switch."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(OVERLAP_SWITCH)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


YOUNG_COLLECTION = 50_000  # net allocations between young collections while the job runs


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Python's cyclic garbage collector set to young collections only, every 50,000 net
    allocations, while the job runs; its own thresholds again after, also on failure.

    The job imports scikit-learn and SciPy and builds their objects by the
    hundred thousand: with the default thresholds (700, 10, 10) the collector ran 566 times
    in a 1M-customer training, four of them full passes over every object in the process
    (0.5-1.6 s of a loaded machine's job, bench/README.md). Nothing the job computes depends
    on when cycles are freed, and young collections still free the job's own (figures,
    fitted candidates) as it goes, so its peak RSS is the same; the service does the same
    (``app.main``)."""
    thresholds = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


@one_blas_thread
def train(
    config: TrainConfig,
    store: ModelStore,
    *,
    promote: bool = False,
    on_step: StepCallback | None = None,
) -> TrainResult:
    """Train one version of ``config.model.name`` and register it (and promote it if asked)."""
    # a read-only or full store fails now, in one line, not after minutes of fitting
    store.check_writable(config.model.name)
    store.max_segment_number(config.model.name)  # so does a damaged version (its ids unknown)
    timer = Timer(on_step)
    with (
        fewer_collections(),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="train-background") as background,
    ):
        with timer.step("load data"):
            # the second thread reads the file (pyarrow's reader releases the GIL and has
            # threads of its own) while this one imports the fitting steps' libraries; a
            # failed read raises its own error here, as when this thread read the file
            with short_switches():
                reading = background.submit(load_training_data, config)
                from app.training import steps

                data = reading.result()
            config, notes = data_notes(config, data.frame)
            data.notes.extend(notes)
        return steps.fit_version(config, data, store, promote, timer, background)
