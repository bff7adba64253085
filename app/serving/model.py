"""The serving model and its holder: load the promoted version, swap it without a restart.

``ModelHolder.current`` is one immutable ``ServingModel``. A request reads it once and uses
that object to the end, so every response is wholly from one version even while a promotion
swaps the reference. Each worker process watches the store's pointer (and the segment
overrides) every ``reload_interval`` seconds and swaps when either changes, so a promotion
made through any worker, or the CLI, reaches all of them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd

from app.errors import StoreError
from app.observability import set_model_version
from app.registry.manifest import Manifest, SegmentInfo
from app.registry.overrides import SegmentOverrides, serving_segments
from app.registry.store import ModelStore
from app.serving.compiled import Assignment, CompiledAssigner, UnsupportedPipeline
from app.training.markers import FeatureMarkers
from app.training.model import SegmentationModel
from app.training.rules import canonical_category
from app.training.rules.values import CSV_NA_VALUES

log = logging.getLogger(__name__)
RETRY_MAX_S = 60.0  # longest wait before loading a version that failed to load, again


def category_number(text: str) -> float | None:
    """The finite number a category's text writes (``28.0``, `` 28``), else None."""
    if len(text) > 40:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class ServingModel:
    manifest: Manifest
    model: SegmentationModel
    assigner: CompiledAssigner | None
    segments: dict[str, SegmentInfo] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.manifest.version

    @cached_property
    def feature_kinds(self) -> dict[str, str]:
        """Feature -> how a request's value is read: ``numeric``, ``categorical``, or
        ``boolean``: a categorical feature whose learnt categories are true and false (a
        file's TRUE/FALSE column, which the readers type as booleans), whose text ``TRUE``,
        ``false`` … is read as the boolean, as the file's cell was."""
        kinds = dict(self.model.features)
        for name in self.manifest.boolean_features:
            kinds[name] = "boolean"
        return kinds

    @cached_property
    def labels(self) -> dict[str, str]:
        """Feature -> its label (the config's ``label``, else its name in words)."""
        return {f.name: f.label for f in self.manifest.features}

    @cached_property
    def known_categories(self) -> dict[str, frozenset[str]]:
        """Categorical feature -> the categories training saw (infrequent ones included)."""
        return {
            f.name: frozenset([*f.categories, *(f.infrequent or [])])  # (canonical text)
            for f in self.manifest.features
            if f.type == "categorical" and f.categories is not None
        }

    @cached_property
    def numbered_categories(self) -> dict[str, dict[float, list[str]]]:
        """Categorical feature -> its known categories that are numbers, by value: a request's
        ``28`` names the training file's ``28.0`` (``unknown_categories`` says so)."""
        found: dict[str, dict[float, list[str]]] = {}
        for name, known in self.known_categories.items():
            for category in sorted(known):
                number = category_number(category)
                if number is not None:
                    found.setdefault(name, {}).setdefault(number, []).append(category)
        return found

    @cached_property
    def missing_markers(self) -> frozenset[str]:
        """The texts a category is missing as: those the file readers take for missing
        (pandas' markers, ``NA``, ``null`` …, and the config's ``[data] missing_values``),
        so a request's ``"NA"`` is assigned as the same row of a file is (and was trained).
        A version whose categories were read as written takes only blank text and those
        of the config: its ``"NA"`` is a category (numeric text reads pandas' markers
        regardless: ``numeric_text``)."""
        if not self.manifest.numbered_categories:
            return frozenset({"", *self.manifest.missing_values})
        markers = CSV_NA_VALUES | frozenset(self.manifest.missing_values)
        # a version trained before Parquet's text read them so may know "NA" as a category:
        # what it learnt stays what it learnt
        learnt = frozenset().union(*self.known_categories.values())
        return markers - learnt

    @cached_property
    def feature_markers(self) -> dict[str, FeatureMarkers]:
        """Feature -> its own missing markers, as this version was trained with them
        (``[[features]] missing_values``: a request's ``pdays`` -1 is missing, as the file's
        cell was); none for a version trained before the option."""
        return self.manifest.feature_markers

    def unknown_categories(self, features: Mapping[str, Any]) -> dict[str, str]:
        """The categorical values of ``features`` training never saw, by feature (as the
        model compares them): the model counts such a value with the feature's infrequent
        categories where it has them, else as none of its categories."""
        unknown = {}
        for name, known in self.known_categories.items():
            value = features.get(name)
            if value is not None:
                text = canonical_category(value)
                if text is not None and text not in known:
                    unknown[name] = text
        return unknown

    def assign_one(self, features: Mapping[str, Any]) -> Assignment:
        if self.assigner is not None:
            return self.assigner.assign_one(features)
        return self._fallback([features])[0]

    def assign_many(self, rows: Sequence[Mapping[str, Any]]) -> list[Assignment]:
        if self.assigner is not None:
            return self.assigner.assign_many(rows)
        return self._fallback(rows)

    def assign_slots(self, rows: Sequence[Mapping[str, Any]]) -> tuple[list[int], list[float]]:
        """Slot and confidence per row (``assign_many`` without runner-ups and drivers)."""
        if self.assigner is not None:
            return self.assigner.assign_slots(rows)
        found = self._fallback(rows)
        return [a.slot for a in found], [a.confidence for a in found]

    @cached_property
    def slot_answers(self) -> list[tuple[str, str]]:
        """``(segment id, segment name)`` of each slot, for answering by slot."""
        return [(sid, self.segments[sid].name) for sid in self.model.segment_ids]

    def _fallback(self, rows: Sequence[Mapping[str, Any]]) -> list[Assignment]:
        frame = pd.DataFrame.from_records(list(rows), columns=self.model.feature_names)
        slots = self.model.predict_slots(frame)
        return [
            Assignment(
                int(s),
                self.model.segment_ids[s],
                0.0,
                int(s) if s < self.model.n_rules else None,
                None,
                (),
            )
            for s in slots
        ]

    def with_overrides(self, overrides: dict[str, dict[str, Any]]) -> ServingModel:
        segments = serving_segments(self.manifest, overrides)
        return ServingModel(self.manifest, self.model, self.assigner, segments)


def build_serving_model(store: ModelStore, model_name: str, version: str | None) -> ServingModel:
    """Load (verifying the artefact) and compile a version; falls back to the pipeline loudly."""
    loaded = store.load(model_name, version)
    model = loaded.estimator
    if not isinstance(model, SegmentationModel):
        raise StoreError(f"{model_name} {loaded.manifest.version} is not a segmentation model")
    try:
        assigner: CompiledAssigner | None = CompiledAssigner(model)
    except UnsupportedPipeline as exc:
        log.warning(
            "cannot compile %s %s (%s): serving through the scikit-learn pipeline, which is "
            "much slower per request",
            model_name,
            loaded.manifest.version,
            exc,
        )
        assigner = None
    return ServingModel(loaded.manifest, model, assigner)


FORMER_VERSIONS = 20  # versions ``former_names`` reads (a few are served at once)


class ModelHolder:
    """Holds the serving model of one worker and swaps it when the store changes."""

    def __init__(self, store: ModelStore, model_name: str, reload_interval: float) -> None:
        self.store, self.model_name, self.reload_interval = store, model_name, reload_interval
        self.overrides = SegmentOverrides(store.root / model_name)
        self.current: ServingModel | None = None
        self.last_error: str | None = None
        self._tokens: tuple[object, object] = (None, None)
        self._failures, self._retry_at = 0, 0.0  # after a failed load: when to try again
        self._lock = threading.Lock()
        self._manifests: dict[str, Manifest] = {}  # earlier versions' (segment_name)

    def segment_name(self, segment_id: str, version: str) -> str | None:
        """A segment's served name (as edited): the serving version's, else, for a customer
        that ``version`` put in a segment the serving one lacks (after a promotion, before
        ``segments customers rescore``), its name there. None if neither has it."""
        serving = self.current
        if serving is not None and segment_id in serving.segments:
            return serving.segments[segment_id].name
        manifest = self._manifests.get(version)
        if manifest is None:
            try:
                manifest = self.store.manifest(self.model_name, version)
            except StoreError:  # a version deleted from the store since
                return None
            if len(self._manifests) >= 8:  # a few versions at most are recorded at once
                self._manifests.clear()
            self._manifests[version] = manifest
        known = serving_segments(manifest, self.overrides.load()).get(segment_id)
        return None if known is None else known.name

    def former_names(self, versions: int = FORMER_VERSIONS) -> dict[str, str]:
        """The served names (as edited) of the segments the serving version lacks, from the
        model's ``versions`` newest other versions (the newest that has a segment names it):
        what a webhook of a customer leaving such a segment (a rescore after a promotion)
        calls it. Reads those manifests: call it when the serving version changes."""
        serving = self.current
        served = set(serving.segments) if serving is not None else set()
        overrides = self.overrides.load()
        found: dict[str, str] = {}
        for version in reversed(self.store.versions(self.model_name)[-versions - 1 :]):
            if serving is not None and version == serving.version:
                continue
            try:
                manifest = self.store.manifest(self.model_name, version)
            except StoreError:  # deleted or damaged since: the others still name theirs
                continue
            for segment_id, seg in serving_segments(manifest, overrides).items():
                if segment_id not in served:
                    found.setdefault(segment_id, seg.name)
        return found

    def _tokens_now(self) -> tuple[object, object]:
        return (self.store.mtime_token(self.model_name), self.overrides.token())

    def refresh(self, force: bool = False) -> bool:
        """Reload if the pointer or the overrides changed; True when something was swapped."""
        with self._lock:
            tokens = self._tokens_now()
            failed = self.last_error is not None  # the last try failed: try it all again
            # nothing moved: nothing to do, unless a failed load is due for another try
            if (
                not force
                and tokens == self._tokens
                and (not failed or time.monotonic() < self._retry_at)
            ):
                return False
            pointer_changed = (
                force or failed or tokens[0] != self._tokens[0] or self.current is None
            )
            try:
                if pointer_changed:
                    version = self.store.promoted(self.model_name)
                    if version is None:
                        reason = self.store.no_promoted_version(self.model_name)
                        if self.current is not None and reason != self.last_error:
                            # deleted, or moved, while served: say it once; it goes on
                            # serving (no request fails) until this process restarts
                            log.warning(
                                "%s: %s; still serving %s until this process restarts",
                                self.model_name,
                                reason,
                                self.current.version,
                            )
                        self._tokens, self.last_error = tokens, reason
                        return False
                    if self.current is None or self.current.version != version:
                        base = build_serving_model(self.store, self.model_name, version)
                        log.info("serving %s %s", self.model_name, version)
                    else:
                        base = self.current
                else:
                    assert self.current is not None
                    base = self.current
                self.current = base.with_overrides(self.overrides.load())
                self._tokens, self.last_error, self._failures = tokens, None, 0
                set_model_version(self.model_name, self.current.version)
                return True
            except Exception as exc:  # keep serving the old version; readiness shows the error
                # tried again after 1, 2, 4 ... 60 s (a passing read error, a file repaired in
                # place), at once if the pointer moves; logged once per distinct error
                if str(exc) != self.last_error:
                    log.error("cannot load the promoted version of %s: %s", self.model_name, exc)
                self._tokens, self.last_error = tokens, str(exc)
                self._retry_at = time.monotonic() + min(RETRY_MAX_S, 2.0**self._failures)
                self._failures += 1
                return False

    def promote(self, version: str) -> tuple[ServingModel, str | None]:
        """Verify, promote and serve ``version`` now (other workers follow on their next
        check); what serves, and the version the pointer held when it moved (``swap``)."""
        candidate = build_serving_model(self.store, self.model_name, version)
        replaced: list[str | None] = []
        served = self._serve(
            candidate, lambda: replaced.append(self.store.swap(self.model_name, version))
        )
        return served, replaced[0]

    def rollback(self, target: str) -> ServingModel:
        """Verify and load ``target``, the version the store rolls back to, then roll back and
        serve it now: loaded once, as a promotion is."""
        candidate = build_serving_model(self.store, self.model_name, target)

        def move_pointer() -> None:  # the history may have moved meanwhile
            self.store.rollback(self.model_name, expected=target)

        return self._serve(candidate, move_pointer)

    def _serve(self, candidate: ServingModel, move_pointer: Callable[[], object]) -> ServingModel:
        with self._lock:
            move_pointer()
            self.current = candidate.with_overrides(self.overrides.load())
            self._tokens = self._tokens_now()
            set_model_version(self.model_name, candidate.version)
            self.last_error = None
            return self.current


async def every(interval: float, task: Callable[[], object], name: str) -> None:
    """Run ``task`` in a thread every ``interval`` seconds until cancelled; never dies."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(task)
        except Exception:
            log.exception("%s failed", name)
