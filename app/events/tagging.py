"""``segments assign --input LOG [--record] [--as-of DATE]`` for a model trained on a log.

The log is read as the training job reads it (``read_events``: the model's own column
names, amounts and missing-value markers) and every customer's features are derived as of
the reference (``--as-of``, exclusive; default the day after the last event) by the one
derivation (``app.events.derive``). Each customer is then tagged by the serving model
(compiled, with the PATCHed names); with ``--record`` the assignments are recorded as the
service records them and the customers' behaviour aggregates are seeded, so the events posted
afterwards update them (``seed.lua``); a customer whose events posted after the reference the
seeding kept is recorded from the log and those events, as of the run's time (as the service
derives them: the run moves nobody back to a log-only segment). Recording is a run, as a
table's is: it prints its id, its run file (``app.recording.state``, with the reference date)
follows it chunk by chunk, and ``--resume RUN`` finishes it after its last acknowledged chunk
(``--run-id RUN`` reruns it), deriving the log as of the run's reference again.

The log's rows without a customer id, a readable time or an amount (or with another number
of fields than the header, an amount beyond the service's bound, or of a customer whose net
amount is beyond it) are left out as training leaves them out, and counted by reason in the
terminal. Lines repeated exactly are counted each time, and noted, or once with the model's
``[data] drop_duplicates = true``, as training counted them.

Customers who cannot be tagged (every line of theirs on or after the reference, or every line
before it a refund: no purchase, as training leaves them out) are reported, in the terminal
and, one per line with the reason, in ``<output stem>.review.csv`` (or
``<runs dir>/<run id>.review.csv`` with ``--record`` alone).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.batch import refused_ids
from app.columns import ColumnRows
from app.errors import DataError
from app.events.derive import (
    aggregate_customers,
    feature_rows,
    features_frame,
    purchases,
    to_us,
)
from app.events.store import Aggregates, BehaviourStore, Seed
from app.history import HistoryConfig, Recorder, RedisUnavailable
from app.history.records import Outcome, RecordBatch, run_record_ids, run_started_ms
from app.recording.output import OutputWriter
from app.recording.run import record_chunk
from app.recording.state import (
    Counts,
    RejectsFile,
    RunError,
    RunState,
    count_outcomes,
    resume_command,
)
from app.serving.model import ServingModel
from app.settings import get_settings
from app.training.config import STORED, DataConfig
from app.training.data import read_events

NO_EVENT_BEFORE = "no line before the reference date (not tagged)"
ONLY_REFUNDS = "only refund lines before the reference date: no purchase (not tagged)"


@dataclass
class LogTagged:
    """What a log's tagging found and did."""

    reference: date
    customers: int
    ids: list[str]
    segment_ids: list[str]
    segment_names: list[str | None]
    features: list[dict[str, Any]]
    aggregates: pd.DataFrame
    order_keys: dict[str, list[str]]
    unassigned: list[tuple[str, str]] = field(default_factory=list)  # customer, reason
    counting: bool = True
    # the log's rows left out, reason -> rows (no customer id, time or amount), as training
    dropped: dict[str, int] = field(default_factory=dict)
    rows: int = 0  # the log's rows
    examples: dict[str, str] = field(default_factory=dict)  # reason -> an example row
    notes: list[str] = field(default_factory=list)  # as training's (lines repeated exactly)
    # customers whose lines are all refunds: not tagged, but seeded (their net amount, with no
    # purchase time), so the log replaces what events said of them as of any other customer
    refunders: pd.DataFrame = field(default_factory=pd.DataFrame)


def is_log_model(serving: ServingModel) -> bool:
    return serving.manifest.data.kind == "transactions"


def _log_config(serving: ServingModel, source: Path, as_of: date | None) -> DataConfig:
    data = dict(serving.manifest.config["data"])
    tx = {**data["transactions"], "reference_date": as_of}
    # a stored version's config: refusals added after it was trained do not apply to it
    return DataConfig.model_validate(
        {**data, "path": source, "transactions": tx}, context={STORED: True}
    )


def tag_log(serving: ServingModel, source: Path, as_of: date | None) -> LogTagged:
    """Derive, as training does, and tag every customer of the log ``source``."""
    data = _log_config(serving, source, as_of)
    assert data.transactions is not None
    # a log that proves no day/month order (the 1st to the 12th) is read in training's
    events, log_rows = read_events(data, data.transactions, serving.manifest.data.day_first)
    log, reference = events.all, events.reference
    # customers whose id the service refuses are not tagged (nor recorded): listed instead
    id_text = log["customer"].astype(str)
    customers = pd.Series(id_text.unique(), dtype="string")
    max_id = get_settings().max_id_length
    refused = {str(customers.iloc[i]): p for i, p in refused_ids(customers, max_id)}
    if refused:
        log = log.loc[~id_text.isin(refused).to_numpy()]
    before = log.loc[(log["when"] < pd.Timestamp(reference)).to_numpy()]
    if before.empty:
        raise DataError(
            f"{source.name}: no transaction before the reference date {reference.isoformat()}"
        )
    aggregates, refunders = aggregate_customers(before)
    frame = features_frame(aggregates, to_us(reference))
    kinds = serving.feature_kinds
    ids = frame.index.to_list()
    columns = {name: frame[name].to_numpy(dtype=np.float64).tolist() for name in kinds}
    rows = [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]
    slots, _ = serving.assign_slots(rows)
    answers = serving.slot_answers
    pairs = [answers[slot] for slot in slots]
    only_refunds = refunders.index.to_list()
    every = set(log["customer"].astype(str))
    late_only = sorted(every - set(ids) - set(only_refunds))
    counting = "order" in before
    order_keys: dict[str, list[str]] = {}
    if counting:  # the orders the aggregates counted: those of purchases
        bought = before.loc[purchases(before["amount"].to_numpy(dtype=float))]
        known = bought.loc[bought["order"].notna(), ["customer", "order"]].drop_duplicates()
        for customer, orders in known.groupby("customer")["order"]:
            order_keys[str(customer)] = [f"o{o}" for o in orders.astype(str)]
    return LogTagged(
        reference,
        len(ids),
        ids,
        [p[0] for p in pairs],
        [p[1] for p in pairs],
        rows,
        aggregates,
        order_keys,
        [(c, NO_EVENT_BEFORE) for c in late_only]
        + [(c, ONLY_REFUNDS) for c in only_refunds]
        + [
            (c, f"customer id {p} (the service refuses it; not tagged)") for c, p in refused.items()
        ],
        counting,
        events.dropped,
        log_rows,
        events.examples,
        list(events.notes),
        refunders,
    )


def write_output(tagged: LogTagged, target: Path, id_column: str) -> None:
    writer = OutputWriter(target, id_column)
    try:
        writer.write(tagged.ids, tagged.segment_ids, tagged.segment_names)
        writer.close()
    finally:
        writer.discard()


def write_unassigned(tagged: LogTagged, target: Path, id_column: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(tagged.unassigned, columns=[id_column, "reason"], dtype=object)
    frame.to_csv(target, index=False)


async def record_log(
    serving: ServingModel,
    tagged: LogTagged,
    config: HistoryConfig,
    state: RunState,
    runs_dir: Path,
    output: Path | None = None,
) -> RunState:
    """Seed the customers' aggregates and record their assignments, ``state.chunk_size``
    customers at a time from ``state.rows_done`` on (customers in the order ``tag_log``
    gives, which the same log and reference always give).

    As a table's run does (``app.recording.run``): every record carries the run's time and
    an id made of the run id and the customer's position, and the run file moves past each
    chunk Redis acknowledged, so a rerun or a resumed run counts each customer once (seeding
    replaces the aggregates, so a re-sent chunk seeds the same values).

    Raises
    ------
    RunError
        Redis did not answer or failed part-way: the message says how to resume.
    """
    config = replace(config, timeout_ms=max(config.timeout_ms, 5_000))
    assert config.redis_url is not None
    recorder = Recorder.connect(config.redis_url, config)
    store = BehaviourStore(recorder.client, recorder.keys, max(config.batch_timeout_s, 30.0))
    rejects = RejectsFile(Path(state.rejects or runs_dir / f"{state.run_id}.rejects.csv"))
    if state.rows_done:
        rejects.keep_until(state.rows_done)
    else:
        rejects.path.unlink(missing_ok=True)
        state.counts, state.finished = Counts(), False
    state.save(runs_dir)
    reference_us = to_us(tagged.reference)
    at = run_started_ms(state.run_id)
    # customers with events posted after the reference are derived as of the run's time (an
    # instant the run keeps when resumed), as ``POST /v1/assign`` by id would derive them
    as_of_us = max(reference_us, at * 1000)
    agg = tagged.aggregates
    try:
        if not await recorder.ping():
            raise RedisUnavailable("Redis does not answer")
        for start in range(state.rows_done, tagged.customers, state.chunk_size):
            part = slice(start, start + state.chunk_size)
            ids = tagged.ids[part]
            seeds = [
                Seed(
                    cid,
                    Aggregates(int(f), int(last), int(o), float(m)),
                    tagged.order_keys.get(cid, ()),
                )
                for cid, f, last, o, m in zip(
                    ids,
                    agg["first_us"].to_numpy()[part],
                    agg["last_us"].to_numpy()[part],
                    agg["orders"].to_numpy()[part],
                    agg["monetary"].to_numpy()[part],
                    strict=True,
                )
            ]
            kept = await store.seed(seeds, reference_us, tagged.counting)
            segment_ids, names = tagged.segment_ids[part], tagged.segment_names[part]
            profiles = tagged.features[part]
            posted = [i for i, agg in enumerate(kept) if agg is not None]
            if posted:  # tagged as the service tags them: the log and the later events
                with_kept = [agg for agg in kept if agg is not None]  # (in ``posted``'s order)
                rows, pairs = _with_kept_events(serving, with_kept, as_of_us)
                for k, (i, (segment_id, name)) in enumerate(zip(posted, pairs, strict=True)):
                    segment_ids[i], names[i] = segment_id, name
                    profiles[i] = rows[k]
                # what is recorded is what the run's --output shows, written after it
                tagged.segment_ids[part], tagged.segment_names[part] = segment_ids, names
            batch = RecordBatch(
                ids,
                segment_ids,
                names,
                serving.version,
                assigned_at=at,
                profiles=profiles,
                record_ids=run_record_ids(state.run_id, start, len(ids)),
            )
            outcomes = await record_chunk(recorder, batch, config)
            _acknowledge(state, start, ids, outcomes, rejects, runs_dir, len(posted))
        # the customers with refunds only: not tagged, but their aggregates become the log's
        # as everyone's do (the events posted before the reference forgotten, a late one
        # refused), with no purchase time; their first purchase posted makes them taggable
        refunders = tagged.refunders
        if len(refunders):
            no_purchase = [
                Seed(cid, Aggregates(0, 0, 0, float(m)), bought=False)
                for cid, m in zip(
                    refunders.index, refunders["monetary"].to_numpy(dtype=float), strict=True
                )
            ]
            kept = await store.seed(no_purchase, reference_us, tagged.counting)
            # a purchase posted after the reference, kept on top: tagged and recorded as the
            # service tags them (as of the run's time), as any customer with kept events
            bought = [(s.customer_id, a) for s, a in zip(no_purchase, kept, strict=True) if a]
            if bought:
                rows, pairs = _with_kept_events(serving, [a for _, a in bought], as_of_us)
                batch = RecordBatch(
                    [cid for cid, _ in bought],
                    [p[0] for p in pairs],
                    [p[1] for p in pairs],
                    serving.version,
                    assigned_at=at,
                    profiles=rows,
                    record_ids=run_record_ids(state.run_id, tagged.customers, len(bought)),
                )
                outcomes = await record_chunk(recorder, batch, config)
                done = Counts(with_events=len(bought))
                count_outcomes(outcomes, done)
                state.counts.add(done)
        state.finished = True
        state.save(runs_dir)
        return state
    except RedisUnavailable as exc:
        raise RunError(
            f"{exc}; recorded {state.rows_done:,} of the {tagged.customers:,} customers of "
            f"{state.input}. Resume with `{resume_command(state, Path(state.input), output)}` "
            f"(run file {RunState.path(runs_dir, state.run_id)})"
        ) from None
    finally:
        await recorder.aclose()


def _with_kept_events(
    serving: ServingModel, kept: list[Aggregates], as_of_us: int
) -> tuple[ColumnRows, list[tuple[str, str | None]]]:
    """The features and (segment id, name) of customers whose seeding kept events posted
    after the reference (``kept``: their aggregates with them), derived as of ``as_of_us``
    and tagged as the service tags them."""
    rows = feature_rows(kept, as_of_us, serving.feature_kinds)
    slots, _ = serving.assign_slots(rows)
    return rows, [serving.slot_answers[slot] for slot in slots]


def _acknowledge(
    state: RunState,
    start: int,
    ids: list[str],
    outcomes: list[Outcome],
    rejects: RejectsFile,
    runs_dir: Path,
    with_events: int = 0,
) -> None:
    """Count a chunk Redis confirmed and move the run file past it (a refused record is
    listed with the customer's position in the run, 1 the first)."""
    counts = Counts(with_events=with_events)
    refused = [
        (start + 1 + i, ids[i], str(outcomes[i].error)) for i in count_outcomes(outcomes, counts)
    ]
    rejects.write(refused)
    state.counts.add(counts)
    state.rows_done = start + len(ids)
    state.save(runs_dir)


def unassigned_report(
    tagged: LogTagged,
    output: Path | None,
    source: Path,
    runs_dir: Path,
    id_column: str,
    run_id: str | None = None,
) -> Path | None:
    """Write the customers to review: those not tagged (``<stem>.review.csv`` beside the
    output, else under
    the runs directory by the run's id, so that two logs of one name keep their reports);
    where, or None when every customer was tagged plainly."""
    if not tagged.unassigned:
        return None
    if output is not None:
        report = output.with_name(f"{output.stem}.review.csv")
    else:
        report = runs_dir / f"{run_id or source.stem}.review.csv"
    write_unassigned(tagged, report, id_column)
    return report
