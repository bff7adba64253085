"""Outcome columns: what segments are validated against, never clustered on.

Three sources, combinable: columns of the customer table (``outcomes = [...]``); a table of
outcomes joined on the customer id (``[outcomes] path = ..., id = ...``); and, for a
transaction log, outcomes measured from the same log in the ``days`` after the reference
date (``[outcomes.future]``): ``future_orders``, ``future_spend`` and ``repurchased``. A
customer with no row in the outcomes table has no value (left out of that outcome's test).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from app.errors import DataError
from app.events.derive import aggregate_customers
from app.training.config import DataConfig, TrainConfig
from app.training.csv_format import CsvFormat
from app.training.data import (
    PARQUET_SUFFIXES,
    TrainingData,
    check_data_file,
    columns_of,
    index_by_id,
    read_table,
)
from app.training.values import outcome_column

FUTURE_OUTCOMES = ("future_orders", "future_spend", "repurchased")


def add_outcomes(config: TrainConfig, loaded: TrainingData) -> None:
    """Parse the declared outcome columns into ``loaded.frame`` (joining a table if given)."""
    spec, frame = config.outcomes, loaded.frame
    source = config.data.path.name
    read_from, dialect = config.data.path, CsvFormat.of(config.data)
    columns = list(spec.columns)
    if spec.path is not None:
        read_from, dialect = spec.path, CsvFormat(*spec.csv_format(config.data))
        joined = _read_outcome_table(
            spec.path, spec.id, columns, config.data.missing_values, dialect
        )
        columns = list(joined.columns)
        clash = sorted(set(columns) & set(frame.columns))
        if clash:
            raise DataError(
                f"{spec.path.name}: outcome column(s) {', '.join(map(repr, clash))} are also "
                "columns of the training data"
            )
        found = frame.index.isin(joined.index)
        matched = int(found.sum())
        if matched == 0:
            raise DataError(
                f"{spec.path.name}: no customer id in column {spec.id!r} matches a customer of "
                f"{source} (ids are compared as text, exactly as written)"
                + _spelt_otherwise(frame.index[~found], joined.index, spec.path.name)
            )
        if matched < len(frame):
            loaded.notes.append(
                f"{len(frame) - matched:,} of {len(frame):,} customers "
                f"{'has' if len(frame) - matched == 1 else 'have'} no row in "
                f"{spec.path.name}: they are left out of its outcomes"
                + _spelt_otherwise(frame.index[~found], joined.index, spec.path.name)
            )
        for column in columns:
            frame[column] = joined[column].reindex(frame.index)
        source = spec.path.name
    unknown = sorted(set(spec.positive) - set(columns))
    if unknown:
        raise DataError(
            f"[outcomes] positive names {', '.join(map(repr, unknown))}, not an outcome column "
            f"of {source} ({', '.join(map(repr, columns)) or 'none'})"
        )
    for column in columns:
        if column not in frame.columns:
            raise DataError(
                _per_line(config, column, read_from, dialect)
                or f"outcome {column!r} is not a column of {source}"
            )
        declared = spec.positive.get(column)
        values, positive = outcome_column(
            frame[column], column, source, config.data.missing_values, declared
        )
        if pd.api.types.is_bool_dtype(frame[column]):  # TRUE/FALSE, parsed: as written
            positive = _true_as_written(read_from, column, dialect)
        frame[column] = values
        if positive is not None:
            loaded.positive[column] = positive
    loaded.outcomes[:0] = columns  # future outcomes, if any, were added first: keep them last


def _per_line(config: TrainConfig, column: str, path: Path, dialect: CsvFormat) -> str:
    """Why a transaction log's own column is "not a column" as an outcome: the log's rows
    are lines, its customers derived (a marketplace's ``review_score``, joined into each
    line, was "not a column of" the very file that held it)."""
    if config.data.kind != "transactions" or path != config.data.path:
        return ""
    if column not in columns_of(path, dialect):
        return ""
    return (
        f"outcome {column!r} is written per line of {path.name}, not per customer: a log's "
        "customers are derived from its lines, and its outcomes are [outcomes.future] "
        "(measured from the log after the reference date) or a table of one row per customer "
        "joined on the id ([outcomes] path = ..., id = ...): write each customer's value (its "
        "mean, its last) into such a table first"
    )


LOOSE_SAMPLE = 100_000  # unmatched ids looked up spelt loosely


def _loose(customer_id: str) -> str:
    """An id as a spreadsheet or a float export may have rewritten it: trimmed, any case,
    without a float's ``.0`` and without leading zeros (``0176093``, `` 176093.0``)."""
    text = customer_id.strip().casefold()
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    return (text.lstrip("0") or "0") if text.isdigit() else text


def _spelt_otherwise(unmatched: pd.Index, ids: pd.Index, name: str) -> str:
    """Where unmatched ids of the training file are in the outcomes table spelt otherwise
    (a telecom's ``0176093`` written ``176093`` by a spreadsheet that dropped the zeros, so
    10% of its customers silently lost their outcome), a clause that counts them, with an
    example."""
    if unmatched.empty or ids.empty:
        return ""
    spelt = {_loose(str(i)): str(i) for i in ids}
    pairs = [
        (str(u), spelt[key]) for u in unmatched[:LOOSE_SAMPLE] if (key := _loose(str(u))) in spelt
    ]
    if not pairs:
        return ""
    ours, theirs = pairs[0]
    return (
        f"; {len(pairs):,} of them {'is' if len(pairs) == 1 else 'are'} in {name} spelt "
        f"otherwise, e.g. {ours!r} written {theirs!r} (leading zeros, a float's .0, case or "
        "spaces): ids are compared as text, exactly as written, so write them alike in both "
        "files"
    )


def _read_outcome_table(
    path: Path,
    id_column: str,
    columns: list[str],
    missing_values: list[str],
    dialect: CsvFormat,
) -> pd.DataFrame:
    wanted = [id_column, *columns] if columns else None
    # the header first: a file of another delimiter is one column, named so ([outcomes])
    check_data_file(path, [id_column], dialect, id_column=id_column, table="[outcomes]")
    table = read_table(
        path, wanted, id_column=id_column, missing_values=missing_values, dialect=dialect
    )
    table, _, _ = index_by_id(table, id_column, path.name)
    if table.columns.empty:
        raise DataError(f"{path.name}: no outcome column besides the id {id_column!r}")
    return table


def _true_as_written(path: Path, column: str, dialect: CsvFormat) -> str:
    """How a CSV's column that pandas read as booleans writes true, the commonest spelling
    (``TRUE``, ``true``), as a Yes/No outcome's positive is its spelling; ``True`` for a
    Parquet file's, which has none."""
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return "True"
    text = pd.read_csv(path, usecols=[column], dtype=str, sep=dialect.delimiter, **dialect.pandas)
    text = text[column]
    text = text.str.strip()
    spellings = text[text.str.lower() == "true"]
    return str(spellings.mode().iloc[0]) if len(spellings) else "True"


def add_future_outcomes(
    loaded: TrainingData, later: pd.DataFrame, days: int, data: DataConfig
) -> None:
    """Outcomes from the events in [reference date, reference date + days), per customer of
    the training frame: orders bought (distinct orders when given; a refund is none, as the
    features count them), net spend, and 1 if any order."""
    assert loaded.reference_date is not None
    start = pd.Timestamp(loaded.reference_date)
    end = start + pd.Timedelta(days=days)
    window = later.loc[(later["when"] >= start) & (later["when"] < end)]
    if later.empty:
        raise DataError(
            f"{data.path.name}: [outcomes.future] needs events on or after the reference date "
            f"{loaded.reference_date.isoformat()}, and the log has none: set [data.transactions] "
            "reference_date to the start of the period the outcomes measure"
        )
    last = later["when"].max()
    if last < end - pd.Timedelta(days=1):
        loaded.notes.append(
            f"the log ends on {last.date().isoformat()}, before the end of the {days}-day "
            f"outcome window ({(end - pd.Timedelta(days=1)).date().isoformat()})"
        )
    # orders bought as the features count them (a refund is none); spend is net of refunds
    if len(window):
        bought, refunders = aggregate_customers(window)
        orders = bought["orders"]
        spend = pd.concat([bought["monetary"], refunders["monetary"]])
    else:
        orders = spend = pd.Series(dtype="float64")
    frame = loaded.frame
    frame["future_orders"] = orders.reindex(frame.index, fill_value=0).astype("float64")
    frame["future_spend"] = spend.reindex(frame.index, fill_value=0.0).astype("float64")
    frame["repurchased"] = (frame["future_orders"] > 0).astype("float64")
    loaded.outcomes.extend(FUTURE_OUTCOMES)
    loaded.positive["repurchased"] = f"an order within {days} days"
    loaded.notes.append(
        f"future outcomes measured from {start.date().isoformat()} (the reference date) to "
        f"{(end - pd.Timedelta(days=1)).date().isoformat()} inclusive"
    )
