"""Record a whole customer file in Redis: ``segments assign --input FILE --record``.

Every row is assigned by the serving model (its compiled assigner, a chunk at a time, with
the segment names the service gives, PATCHes included) and recorded through the recorder the
service uses, so each customer's current segment, history, membership, flows and events are
exactly what ``POST /v1/assign/batch`` would have written. A run is the nightly re-score:
customers whose segment changed get one migration each, the others a new time only.

Replays count once: every record of a run is stamped with the run's start time and an id
made of the run id and the row (``run_record_ids``), so a rerun of the same run, or a resumed
one re-sending a chunk Redis had partly applied, changes nothing already done. One chunk is
in flight while the next is read and assigned (in a thread), so Redis and Python work at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from app.batch import UnseenCategories, rejects_path
from app.errors import SegmentsError
from app.history import HistoryConfig, Recorder, RedisUnavailable
from app.history.recorder import Progress
from app.history.records import (
    Outcome,
    RecordBatch,
    check_run_id,
    new_run_id,
    now_ms,
    run_record_ids,
    run_started_ms,
)
from app.recording.chunks import Chunk, read_chunks
from app.recording.output import OutputWriter
from app.recording.progress import RunProgress
from app.recording.state import (
    Counts,
    RejectsFile,
    RunError,
    RunState,
    count_outcomes,
    fingerprint,
    resume_command,
)
from app.registry.store import ModelStore
from app.serving.model import ServingModel
from app.settings import get_settings
from app.words import counted


@dataclass(frozen=True)
class RunRequest:
    """What the command line asked for."""

    source: Path
    output: Path | None
    model_name: str
    runs_dir: Path
    id_column: str = "customer_id"
    chunk_size: int = 100_000
    run_id: str | None = None  # rerun this run from its first row
    resume: str | None = None  # finish this run after its last acknowledged chunk


@dataclass
class _Assigned:
    chunk: Chunk
    segment_ids: list[str] = field(default_factory=list)
    segment_names: list[str | None] = field(default_factory=list)


def plan_run(request: RunRequest, version: str) -> RunState:
    """The run to make: a new one, a rerun (``run_id``) or the rest of one (``resume``)."""
    source = request.source
    if not source.is_file():
        raise RunError(f"input file not found: {source}")
    run_id = request.resume or request.run_id
    try:
        run_id = new_run_id() if run_id is None else check_run_id(run_id)
    except ValueError as exc:
        raise RunError(str(exc)) from None
    state = RunState.load(request.runs_dir, run_id)
    if request.resume is not None:
        if state is None:
            raise RunError(f"no run file for run {run_id} under {request.runs_dir}")
        state.check_same_run(source, version)
        return state
    if state is not None:
        state.check_same_run(source, version)
    elif request.run_id is not None:
        check_fresh_run_id(run_id, request.runs_dir)
    rejects = (
        rejects_path(request.output)  # beside the output, as file tagging puts it
        if request.output is not None
        else request.runs_dir / f"{run_id}.rejects.csv"
    )
    return RunState(
        run_id,
        str(source.resolve()),
        fingerprint(source),
        request.model_name,
        version,
        request.id_column,
        request.chunk_size,
        rejects=str(rejects),
    )


FRESH_MS = 3_600_000
"""How old a run id without a run file may be: one made for this run (an orchestrator that
names its runs for safe retries) is minutes old at most."""


def check_fresh_run_id(run_id: str, runs_dir: Path) -> None:
    """A ``--run-id`` with no run file here must be one made now: every record of a run
    carries the id's time, so an old id's records are older than the customers' latest (all
    counted stale: the run would record nothing), and an id ahead of the clock would make
    every later assignment of its customers stale."""
    age = now_ms() - run_started_ms(run_id)
    if -300_000 <= age <= FRESH_MS:
        return
    try:
        when = datetime.fromtimestamp(run_started_ms(run_id) / 1000, UTC).isoformat(
            timespec="seconds"
        )
    except (ValueError, OverflowError, OSError):  # beyond year 9999: no date to show
        when = "a time beyond any date"
    raise RunError(
        f"no run file for run {run_id} under {runs_dir}, and its id was made at {when}, "
        f"{'ahead of the clock' if age < 0 else 'not now'}: --run-id reruns a run recorded "
        "here (or names a new run with an id made just before it); omit it to start a new run"
    )


def _progress_timeout(config: HistoryConfig) -> float:
    """How long Redis may go without taking a write or answering a call of a chunk: 10 s
    (a call is milliseconds of Redis's work), or the batch deadline if that is longer."""
    return max(config.batch_timeout_s, 10.0)


async def record_chunk(
    recorder: Recorder, batch: RecordBatch, config: HistoryConfig
) -> list[Outcome]:
    """Record a chunk of a run (a file's, a log's) in one exchange, its calls in order on one
    connection (a customer's records apply in file order), under a deadline that each write
    and reply moves on.

    The run fails when Redis stops making progress, not when a loaded machine makes a whole
    chunk slow (a deadline for the whole chunk failed a run at its first chunk under load);
    Redis works without a pause while the chunk is packed and sent (slices of 10,000
    records, each awaited before the next was packed, left it idle a fifth of the run).
    """
    seconds = _progress_timeout(config)
    return await recorder.record_many(batch, seconds, Progress(seconds))


async def record_run(
    serving: ServingModel,
    state: RunState,
    request: RunRequest,
    config: HistoryConfig,
    progress: RunProgress,
    unseen: UnseenCategories | None = None,
    kept: Sequence[tuple[str, str]] = (),
) -> RunState:
    """Record the file of ``state`` (from ``state.rows_done`` on) into Redis at ``config``;
    ``unseen`` counts the categories training never saw in the rows recorded; ``kept``
    columns the version does not read are stored in the profiles too (``kept_columns``).

    Raises
    ------
    RunError
        Redis did not answer or failed part-way: the message says how to resume.
    """
    url = config.redis_url
    assert url is not None
    # a bulk run waits on whole chunks, not single requests: deadlines to match
    config = replace(config, timeout_ms=max(config.timeout_ms, 5_000))
    recorder = Recorder.connect(url, config)
    rejects = RejectsFile(Path(state.rejects or request.runs_dir / f"{state.run_id}.rejects.csv"))
    resumed_at = state.rows_done
    if resumed_at:
        rejects.keep_until(resumed_at)
    else:
        rejects.path.unlink(missing_ok=True)
        state.counts, state.finished = Counts(), False
    state.save(request.runs_dir)
    writer = None if request.output is None else OutputWriter(request.output, state.id_column)
    chunks = _assigned(serving, state, writer, 0 if writer else resumed_at, unseen, kept)
    pending: tuple[Chunk, asyncio.Future[list[Outcome]]] | None = None
    at = run_started_ms(state.run_id)
    try:
        if not await recorder.ping():
            raise RedisUnavailable(f"{progress.target} does not answer", "Redis does not answer")
        while True:
            # read and assign the next chunk while Redis works on the one in flight
            item = await asyncio.to_thread(next, chunks, None)
            batch = None
            if item is not None and item.chunk.end > resumed_at:
                batch = _batch(item, state.run_id, serving.version, at)
            done = None
            if pending is not None:
                done, outcomes = pending[0], await pending[1]
                pending = None
            if item is not None and batch is not None:
                # Redis gets the next chunk's first calls before this one is counted (the
                # run file written), so it does not wait on our bookkeeping between chunks
                future = asyncio.ensure_future(record_chunk(recorder, batch, config))
                pending = (item.chunk, future)
                await asyncio.sleep(0)  # let it pack and send before the next read starts
            if done is not None:
                _acknowledge(state, done, outcomes, rejects, request.runs_dir)
                progress.advance(done.size)
            if item is None:
                break
            if batch is None:  # recorded before the run was resumed
                progress.advance(item.chunk.size)
        if writer is not None:
            writer.close()
        state.finished = True
        state.save(request.runs_dir)
        return state
    except RedisUnavailable as exc:
        raise RunError(
            f"{exc}; recorded up to row {state.rows_done:,} of {state.input}. Resume with "
            f"`{resume_command(state, request.source, request.output)}` "
            f"(run file {RunState.path(request.runs_dir, state.run_id)})"
        ) from None
    finally:
        if pending is not None:
            pending[1].cancel()
            await asyncio.gather(pending[1], return_exceptions=True)
        if writer is not None:
            writer.discard()
        with contextlib.suppress(ValueError):  # still running in its thread (interrupted)
            chunks.close()
        await recorder.aclose()


def _assigned(
    serving: ServingModel,
    state: RunState,
    writer: OutputWriter | None,
    skip_until: int,
    unseen: UnseenCategories | None = None,
    kept: Sequence[tuple[str, str]] = (),
) -> Generator[_Assigned, None, None]:
    """The file's chunks with each kept row's segment (chunks before ``skip_until``: none);
    ``unseen`` counts the categories of the chunks read (from ``skip_until`` on)."""
    answers = serving.slot_answers
    for chunk in read_chunks(
        Path(state.input),
        state.id_column,
        serving.model.features,
        state.chunk_size,
        skip_until=skip_until,
        missing_values=serving.manifest.missing_values,
        junk_as_missing=serving.manifest.junk_as_missing,
        max_id=get_settings().max_id_length,  # the ids the service takes
        unseen=unseen,
        feature_markers=serving.feature_markers,
        booleans=serving.manifest.boolean_features,
        dialect=serving.manifest.csv_format,
        numbered=serving.manifest.numbered_categories,
        read_along=kept,
    ):
        item = _Assigned(chunk)
        if chunk.features:
            slots, _ = serving.assign_slots(chunk.features)
            pairs = [answers[slot] for slot in slots]
            item.segment_ids = [p[0] for p in pairs]
            item.segment_names = [p[1] for p in pairs]
        if writer is not None:
            writer.write(chunk.ids, item.segment_ids, item.segment_names)
        yield item


def _batch(item: _Assigned, run_id: str, version: str, at: int) -> RecordBatch:
    """The records of a chunk's kept rows: each row's id derives from the run and the row."""
    chunk = item.chunk
    record_ids = run_record_ids(run_id, chunk.start, chunk.size)
    if len(chunk.rows) < chunk.size:  # rows were rejected: the ids of those kept
        record_ids = [record_ids[row - chunk.start] for row in chunk.rows]
    return RecordBatch(
        chunk.ids,
        item.segment_ids,
        item.segment_names,
        version,
        assigned_at=at,
        profiles=chunk.features,  # what the customer was assigned from is its profile
        record_ids=record_ids,
    )


def _acknowledge(
    state: RunState, chunk: Chunk, outcomes: list[Outcome], rejects: RejectsFile, runs_dir: Path
) -> None:
    """Count a chunk Redis confirmed, note its rejects, and move the run file past it."""
    counts = Counts(rejected=len(chunk.rejects))
    refused = [
        (chunk.rows[i] + 1, chunk.ids[i], str(outcomes[i].error))
        for i in count_outcomes(outcomes, counts)
    ]
    rejects.write(sorted(chunk.rejects + refused))
    state.counts.add(counts)
    state.rows_done = chunk.end
    state.save(runs_dir)


def served_note(store: ModelStore, state: RunState) -> str | None:
    """What to say when the version promoted now is not the one the run recorded with
    (promoted during the run, or the run's ``--version``/``--resume`` named another): the
    customers it recorded hold that version's segments. (Nothing when the pointer cannot be
    read: the run is done, and its own summary stands.)"""
    return not_served_note(store, state.model, state.version, "this run recorded with")


def not_served_note(store: ModelStore, model: str, version: str, done: str) -> str | None:
    """``served_note`` for any recording by ``version`` (a run, a rescore): ``done`` says
    what it did with it ("this run recorded with")."""
    try:
        promoted = store.promoted(model)
    except SegmentsError:
        return None
    if promoted is None or promoted == version:
        return None
    return (
        f"{model} {promoted} is the promoted version now, not {version} that "
        f"{done}: the customers it recorded hold that version's segments "
        "until something assigns them again; `segments customers rescore --model "
        f"{model}` moves them all to {promoted}'s"
    )


def summary(state: RunState, seconds: float) -> list[str]:
    """The closing lines of a run, for the terminal."""
    c = state.counts
    rate = c.customers / seconds if seconds > 0 else 0.0
    lines = [
        f"run {state.run_id}: recorded {counted(c.customers, 'customer')} with {state.model} "
        f"{state.version} in {seconds:.1f} s ({rate:,.0f}/s)",
        f"  changed {c.changed:,} · unchanged {c.unchanged:,} · "
        f"duplicates/stale {c.duplicates:,} · rejected rows {c.rejected:,}",
    ]
    if c.with_events:
        lines.append(
            f"  {c.with_events:,} of them with the events posted after the reference on top of "
            "the log, as of the run's time (as the service derives them)"
        )
    if c.rejected and state.rejects:
        lines.append(f"  reasons of the rejected rows: {state.rejects}")
    return lines
