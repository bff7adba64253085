"""Whole-base recording: ``segments assign --input FILE --record``.

``record_file`` loads the serving model (names as the service gives them), finds the Redis
the service uses (``app.redis_client.redis_target``, as every command does), plans the run
(new, ``--run-id`` rerun or ``--resume``; the run file in ``state``) and records the file
chunk by chunk (``run``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from rich.console import Console

from app.batch import UnseenCategories, check_derived_input, check_input
from app.history import HistoryConfig
from app.recording.progress import RunProgress, count_rows
from app.recording.run import RunRequest, plan_run, record_run, served_note, summary
from app.recording.state import RunError, RunState
from app.redis_client import redis_target
from app.registry.overrides import SegmentOverrides
from app.registry.store import ModelStore
from app.serving.model import ServingModel, build_serving_model

__all__ = ["RunError", "RunRequest", "RunState", "load_serving", "record_file"]


def load_serving(store: ModelStore, model_name: str, version: str | None) -> ServingModel:
    """The version as the service would serve it: compiled, with the PATCHed segment names."""
    serving = build_serving_model(store, model_name, version)
    return serving.with_overrides(SegmentOverrides(store.root / model_name).load())


def kept_columns(
    store: ModelStore, model_name: str, serving: ServingModel
) -> list[tuple[str, str]]:
    """The features other versions of the model read and ``serving`` does not (a retrain
    dropped them), as ``(name, kind)``, the latest version's kind: a run stores the file's
    such columns in each profile, beside the features it assigns from, as an assignment by id
    keeps the stored ones. Stored without them, a nightly run by a version that dropped
    ``support_tickets`` made every customer a 422 (``features.support_tickets: missing
    feature``) after a rollback, which no rescore could assign."""
    read = {name for name, _ in serving.model.features}
    manifests, _ = store.listed(model_name)  # (a damaged version is left out)
    kinds: dict[str, str] = {}
    for manifest in manifests:  # oldest first: a later version's kind wins
        for feature in manifest.features:
            if feature.name not in read:
                kinds[feature.name] = feature.type
    return sorted(kinds.items())


def record_file(
    store: ModelStore,
    version: str | None,
    request: RunRequest,
    config: HistoryConfig,
    console: Console,
) -> RunState:
    """Run (or rerun, or resume) a recording run and print where, how far and what it did."""
    if request.resume is not None:
        previous = RunState.load(request.runs_dir, request.resume)
        if previous is None:
            raise RunError(f"no run file for run {request.resume} under {request.runs_dir}")
        if previous.reference is not None:
            raise RunError(
                f"run {request.resume} recorded a transaction log; resume it with a model "
                "trained on a log"
            )
        if version is not None and version != previous.version:
            raise RunError(f"run {request.resume} recorded version {previous.version}")
        version = previous.version
    serving = load_serving(store, request.model_name, version)
    features = [name for name, _ in serving.model.features]
    dialect = serving.manifest.csv_format  # the file is read as training read its own
    if serving.manifest.data.kind == "transactions":  # given the log itself: say what instead
        check_derived_input(request.source, request.id_column, features, dialect)
    else:  # before the run has an id and a file: a file without the columns makes neither
        check_input(request.source, [request.id_column, *features], dialect)
    state = plan_run(request, serving.version)
    if state.finished and request.resume is not None:
        console.print(f"run {state.run_id} is already finished")
        return state
    started = time.perf_counter()
    with redis_target(config) as target:
        where = f" after row {state.rows_done:,}" if state.rows_done else ""
        console.print(
            f"run {state.run_id}: {'resuming' if where else 'recording'} {request.source}"
            f"{where} with {request.model_name} {serving.version} into {target.description}",
            soft_wrap=True,
            markup=False,  # a path may hold [brackets]: printed as it is
        )
        config = replace(config, redis_url=target.url)
        with RunProgress(console, target.description, count_rows(request.source)) as progress:
            unseen = UnseenCategories(serving.manifest)
            kept = kept_columns(store, request.model_name, serving)
            state = asyncio.run(record_run(serving, state, request, config, progress, unseen, kept))
    for line in summary(state, time.perf_counter() - started):
        console.print(line, soft_wrap=True, highlight=False, markup=False)
    for line in unseen.lines():
        console.print(f"  note: {line}", soft_wrap=True, highlight=False, markup=False)
    if note := served_note(store, state):
        console.print(f"  note: {note}", soft_wrap=True, highlight=False, markup=False)
    return state
