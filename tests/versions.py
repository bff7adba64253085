"""For the hot-swap tests: two trained versions of one model that answer differently, and
client threads that keep a service busy while it swaps."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import orjson
import pandas as pd
from threadpoolctl import threadpool_limits

from app.registry.store import ModelStore
from app.training.job import train
from tests.conftest import example_config

MODEL = "customers"


def client_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as a JSON client sends them: None for NaN, JSON numbers and strings."""
    records = frame.to_dict(orient="records")
    return [
        {str(k): None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
        for r in orjson.loads(orjson.dumps(records))
    ]


@dataclass(frozen=True)
class Versions:
    store: ModelStore  # the template: each test works on its own copy
    old: str  # promoted
    new: str
    rows: list[dict[str, Any]]  # the customers the clients send
    segment: dict[str, list[str]]  # version -> expected segment id of each row
    names: dict[str, dict[str, str]]  # version -> segment id -> name, from its manifest


def train_two_versions(
    folder: Path, customers: pd.DataFrame, customers_csv: Path, sample: int
) -> Versions:
    """k=3 (promoted) and k=6 on the same data: many customers change segment between them."""
    store = ModelStore(folder)
    with threadpool_limits(1):  # see test_compiled: BLAS threads thrash on a busy machine
        old = train(
            example_config(MODEL, customers_csv, stability_bootstraps=0, k_min=3, k_max=3),
            store,
            promote=True,
        )
        new = train(
            example_config(MODEL, customers_csv, stability_bootstraps=0, k_min=6, k_max=6, seed=7),
            store,
            promote=False,
        )
    frame = customers.set_index("customer_id").head(sample)
    segment, names = {}, {}
    for manifest in (old.manifest, new.manifest):
        model = store.load(MODEL, manifest.version).estimator
        segment[manifest.version] = [str(s) for s in model.predict(frame)]
        names[manifest.version] = {s.id: s.name for s in manifest.segments}
    # the versions answer differently for many customers, so a mixed answer would show
    differ = sum(a != b for a, b in zip(*segment.values(), strict=True))
    assert differ > len(frame) // 10
    rows = client_rows(frame[store.load(MODEL).estimator.feature_names])
    return Versions(store, old.manifest.version, new.manifest.version, rows, segment, names)


A = TypeVar("A")


class Load(Generic[A]):
    """``threads`` client threads asking back to back until stopped, every answer kept.

    ``session()`` opens what one thread uses (e.g. its HTTP client) and gives the function
    that asks for one row and returns the answer; thread ``n`` asks rows n, n + threads, ...
    """

    def __init__(
        self,
        session: Callable[[], AbstractContextManager[Callable[[int], A]]],
        rows: int,
        threads: int,
    ) -> None:
        self.session, self.rows = session, rows
        self.answers: list[A] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(n, threads)) for n in range(threads)
        ]

    def __enter__(self) -> Load[A]:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in self._threads)

    def _run(self, n: int, step: int) -> None:
        i = n
        with self.session() as ask:
            while not self._stop.is_set():
                answer = ask(i % self.rows)
                i += step
                with self._lock:
                    self.answers.append(answer)

    def snapshot(self) -> list[A]:
        with self._lock:
            return list(self.answers)

    def wait_for(self, condition: Callable[[list[A]], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self.snapshot()):
            assert time.monotonic() < deadline, "the load did not reach the expected state"
            time.sleep(0.02)
