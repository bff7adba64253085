"""A log's numeric day/month dates (``15/03/2024 14:22 +0100``) without a timestamp_format:
the order is decided from the whole column, or refused, never guessed from the first value
(an audit trained a day-first log as month-first, or dropped its days above 12)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from app.drift.offline import drift_of_file
from app.drift.schemas import Thresholds
from app.errors import DataError
from app.events.tagging import tag_log
from app.recording import load_serving
from app.registry.store import ModelStore
from app.training.config import parse_config
from app.training.data import load_training_data
from app.training.job import train


def log_times(days_up_to: int = 28, customers: int = 40, seed: int = 3) -> pd.DataFrame:
    """A log (customer, order, when, amount) from January to June 2024 at random minutes,
    on days of the month up to ``days_up_to``, in time order, a busy first fortnight of
    January first (its first hundred values read either way: pandas guessed month first from
    them); ``when`` in +01:00."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(customers):
        for line in range(int(rng.integers(4, 10))):
            early = line < 3
            month = 1 if early else int(rng.integers(1, 7))
            day = int(rng.integers(2, 13 if early else days_up_to + 1))
            minute = int(rng.integers(0, 24 * 60))
            when = pd.Timestamp(2024, month, day, minute // 60, minute % 60, tz="+01:00")
            rows.append((f"c{c:03d}", f"o{c}-{line}", when, float(rng.integers(5, 200))))
    rows[0] = (rows[0][0], rows[0][1], pd.Timestamp(2024, 1, 2, 8, 0, tz="+01:00"), 10.0)
    log = pd.DataFrame(rows, columns=["customer", "order", "when", "amount"])
    return log.sort_values("when", kind="stable", ignore_index=True)


def write_log(log: pd.DataFrame, path: Path, fmt: str) -> Path:
    out = log.drop(columns="when").assign(ts=[t.strftime(fmt) for t in log["when"]])
    out.to_csv(path, index=False)
    return path


def raw_config(path: Path, **tx: Any) -> dict[str, Any]:
    return {
        "data": {
            "path": str(path),
            "kind": "transactions",
            "transactions": {
                "customer": "customer",
                "timestamp": "ts",
                "amount": "amount",
                "order": "order",
                **tx,
            },
        },
        "features": [
            {"name": name}
            for name in ("recency_days", "frequency", "monetary", "avg_order_value", "tenure_days")
        ],
        "model": {"k_min": 2, "k_max": 3, "selection_bootstraps": 0},
    }


def features(path: Path, tmp_path: Path, **tx: Any) -> pd.DataFrame:
    return load_training_data(parse_config(raw_config(path, **tx), base_dir=tmp_path)).frame


ISO = "%Y-%m-%d %H:%M:%S%z"


def test_day_first_is_proven_by_a_day_above_12_and_trains_as_the_iso_log(tmp_path: Path) -> None:
    log = log_times()
    slashes = write_log(log, tmp_path / "day_first.csv", "%d/%m/%Y %H:%M %z")
    iso = write_log(log, tmp_path / "iso.csv", ISO)
    store = ModelStore(tmp_path / "store")
    result = train(parse_config(raw_config(slashes), base_dir=tmp_path), store)
    data = result.manifest.data
    assert data.dropped_rows == 0 and data.dropped_reasons == {}
    assert data.reference_date == (log["when"].max().date() + pd.Timedelta(days=1)).isoformat()
    assert data.reference_date <= "2024-07-01"
    pd.testing.assert_frame_equal(features(slashes, tmp_path), features(iso, tmp_path))


def test_month_first_is_proven_by_a_second_field_above_12(tmp_path: Path) -> None:
    log = log_times()
    slashes = write_log(log, tmp_path / "month_first.csv", "%m/%d/%Y %H:%M %z")
    iso = write_log(log, tmp_path / "iso.csv", ISO)
    pd.testing.assert_frame_equal(features(slashes, tmp_path), features(iso, tmp_path))


def test_a_dotted_day_first_log_with_a_single_day_above_12(tmp_path: Path) -> None:
    """Every line but one has its day at 12 or less: that one line proves the order."""
    log = log_times(days_up_to=12)
    log.loc[len(log) - 1, "when"] = pd.Timestamp(2024, 6, 25, 9, 0, tz="+01:00")
    dots = write_log(log, tmp_path / "dots.csv", "%d.%m.%Y %H:%M")
    iso = write_log(log, tmp_path / "iso.csv", "%Y-%m-%d %H:%M")
    pd.testing.assert_frame_equal(features(dots, tmp_path), features(iso, tmp_path))


@pytest.mark.parametrize(("fmt", "iso_fmt"), [("%d/%m/%Y %H:%M %z", ISO), ("%d-%m-%Y", "%Y-%m-%d")])
def test_no_day_above_12_is_refused_naming_timestamp_format(
    tmp_path: Path, fmt: str, iso_fmt: str
) -> None:
    log = log_times(days_up_to=12)
    path = write_log(log, tmp_path / "ambiguous.csv", fmt)
    with pytest.raises(DataError) as caught:
        features(path, tmp_path)
    message = str(caught.value)
    assert "column 'ts'" in message and "timestamp_format" in message
    example = pd.read_csv(path)["ts"].iloc[0]
    assert example in message or "such as" in message
    sep = fmt[2]
    assert f"%d{sep}%m{sep}%Y" in message and f"%m{sep}%d{sep}%Y" in message
    if "%z" in fmt:
        assert '"%d/%m/%Y %H:%M %z" (day first)' in message
        assert '"%m/%d/%Y %H:%M %z" (month first)' in message
    # the format given, it trains, day first
    iso = write_log(log, tmp_path / "iso.csv", iso_fmt)
    given = features(path, tmp_path, timestamp_format=fmt)
    pd.testing.assert_frame_equal(given, features(iso, tmp_path))


def test_both_orders_in_one_column_are_refused_as_mixed(tmp_path: Path) -> None:
    log = log_times()
    path = write_log(log, tmp_path / "mixed.csv", "%d/%m/%Y %H:%M")
    frame = pd.read_csv(path)
    frame.loc[len(frame)] = ["c000", "o-us", 10.0, "03/15/2024 10:00"]  # month first
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match="column 'ts' mixes day-first and month-first") as caught:
        features(path, tmp_path)
    assert "03/15/2024 10:00" in str(caught.value) and "timestamp_format" in str(caught.value)


def test_iso_times_are_read_as_before(tmp_path: Path) -> None:
    log = log_times(days_up_to=12)
    path = write_log(log, tmp_path / "iso.csv", ISO)
    frame = features(path, tmp_path, reference_date=date(2024, 7, 1))
    first = log.groupby("customer")["when"].min().dt.tz_convert("UTC").dt.tz_localize(None)
    expected = (pd.Timestamp("2024-07-01") - first) / pd.Timedelta(days=1)
    assert np.allclose(frame["tenure_days"].to_numpy(), expected.loc[frame.index].to_numpy())


@pytest.mark.parametrize(("fmt", "day_first"), [("%d/%m/%Y %H:%M %z", True), (ISO, None)])
def test_a_log_of_the_first_twelve_days_is_read_in_the_order_training_proved(
    tmp_path: Path, fmt: str, day_first: bool | None
) -> None:
    """A nightly log of the 1st to the 12th proves no order: tagging it was refused even
    though the model's training log had proved day first. The manifest keeps the order;
    tagging and drift read such a log in it (a model trained on ISO times has none: still
    refused)."""
    store = ModelStore(tmp_path / "store")
    trained = write_log(log_times(), tmp_path / "train.csv", fmt)
    config = raw_config(trained)
    config["model"]["name"] = "orders"
    manifest = train(parse_config(config, base_dir=tmp_path), store, promote=True).manifest
    assert manifest.data.day_first is day_first
    early = log_times(days_up_to=12, seed=8)
    short = write_log(early, tmp_path / "early.csv", "%d/%m/%Y %H:%M %z")
    serving = load_serving(store, "orders", None)
    if day_first is None:
        with pytest.raises(DataError, match="timestamp_format"):
            tag_log(serving, short, None)
        return
    tagged = tag_log(serving, short, None)
    iso = tag_log(serving, write_log(early, tmp_path / "early_iso.csv", ISO), None)
    assert tagged.dropped == {} and tagged.reference == iso.reference
    assert tagged.features == iso.features and tagged.segment_ids == iso.segment_ids
    drift = drift_of_file(
        store,
        "orders",
        manifest.version,
        short,
        Thresholds(watch=0.1, drift=0.25, min_observations=10),
    )
    assert drift.status in ("ok", "watch", "drift")


@pytest.mark.parametrize(
    ("scale", "unit", "words"), [(1, "s", "seconds"), (1000, "ms", "milliseconds")]
)
def test_a_log_of_epoch_numbers_is_refused_with_the_line_that_writes_times(
    tmp_path: Path, scale: int, unit: str, words: str
) -> None:
    """An audit's order log with Unix epoch times (``1728802302``) trained without a word:
    pandas read them as nanoseconds after 1970, and every customer's last order was 19,967
    days before the reference date. Refused, the unit guessed from the numbers' size, in
    training and in a file run of a log model alike; eight-digit dates are still dates."""
    log = log_times()
    epoch = pd.Timestamp("1970-01-01", tz="UTC")
    seconds = [int((t - epoch) // pd.Timedelta(seconds=1)) * scale for t in log["when"]]
    path = tmp_path / "epoch.csv"
    log.drop(columns="when").assign(ts=seconds).to_csv(path, index=False)
    with pytest.raises(DataError) as caught:
        load_training_data(parse_config(raw_config(path), base_dir=tmp_path))
    assert str(caught.value) == (
        f"epoch.csv: column 'ts' holds numbers, not times (e.g. '{seconds[0]}'); if they are "
        f"Unix epoch times (in {words}, by their size), write them as times in the file "
        f"first, e.g. log['ts'] = pandas.to_datetime(log['ts'], unit='{unit}', utc=True)"
    )
    dates = write_log(log, tmp_path / "dates.csv", "%Y%m%d")
    loaded = load_training_data(parse_config(raw_config(dates), base_dir=tmp_path))
    assert len(loaded.frame) == log["customer"].nunique()


def test_a_log_of_small_numbers_is_refused_as_no_times_not_as_epoch_seconds(
    tmp_path: Path,
) -> None:
    """An order log without dates (Instacart's ``orders.csv``: ``order_number`` and
    ``days_since_prior_order`` per user) named with either as the timestamp was told they
    might be Unix epoch seconds, and given the line that reads ``4.0`` as 4 seconds after
    1970: a wrong fix. Numbers too small for any epoch time (below 1e8, March 1973) are
    refused as no times, pointing to what a user does with such a log."""
    log = log_times()
    path = tmp_path / "orders.csv"
    days = [float(d % 31) for d in range(len(log))]
    log.drop(columns="when").assign(ts=days).to_csv(path, index=False)
    with pytest.raises(DataError) as caught:
        load_training_data(parse_config(raw_config(path), base_dir=tmp_path))
    assert str(caught.value) == (
        "orders.csv: column 'ts' holds numbers, not times (e.g. '0.0', up to 30: too "
        "small for Unix epoch times); a log needs each line's date: one with order numbers "
        "or days since the prior order instead is made a customer table first "
        "(docs/training.md#an-order-log-without-dates)"
    )


@pytest.mark.parametrize(
    ("written", "zone"), [("%Y-%m-%d %H:%M:%S CET", "CET"), ("%d/%m/%Y %I:%M %p PST", "PST")]
)
def test_times_with_a_zone_name_say_to_write_offsets_not_a_format(
    tmp_path: Path, written: str, zone: str
) -> None:
    """A European export wrote `01/01/2011 01:27:56 CET`: the error asked for a
    timestamp_format, and none reads a zone's name (strptime's %Z takes UTC and GMT only,
    and CST is three zones). It now says so, and what to write; UTC and GMT stay read."""
    log = log_times()
    path = write_log(log, tmp_path / "named.csv", written)
    with pytest.raises(DataError) as caught:
        features(path, tmp_path)
    message = str(caught.value)
    assert f"times with a time zone written by its name ({zone}) are not read by any " in message
    assert (
        "write each with its offset instead (" in message and "set timestamp_format" not in message
    )
    utc = write_log(
        log.assign(when=log["when"].dt.tz_convert("UTC")),
        tmp_path / "u.csv",
        "%Y-%m-%d %H:%M:%S UTC",
    )
    iso = write_log(log, tmp_path / "iso.csv", ISO)
    pd.testing.assert_frame_equal(features(utc, tmp_path), features(iso, tmp_path))


def test_a_log_of_spreadsheet_serial_dates_says_so_with_the_line_that_writes_times(
    tmp_path: Path,
) -> None:
    """A log saved from a spreadsheet whose dates were not formatted writes 40544.0194 (days
    since 1899-12-30): the error called them order numbers or days since the prior order and
    sent the user to make a customer table. It now names serial dates and the line that
    writes them as times, which then trains as the log written with times does."""
    log = log_times()
    naive = log["when"].dt.tz_convert("UTC").dt.tz_localize(None)
    serial = ((naive - pd.Timestamp("1899-12-30")) / pd.Timedelta(days=1)).round(6)
    path = tmp_path / "serial.csv"
    log.drop(columns="when").assign(ts=serial.astype(str)).to_csv(path, index=False)
    with pytest.raises(DataError) as caught:
        load_training_data(parse_config(raw_config(path), base_dir=tmp_path))
    message = str(caught.value)
    first = f"{naive.iloc[0]:%Y-%m-%d %H:%M}"
    assert message.startswith(
        f"serial.csv: column 'ts' holds numbers, not times (e.g. '{serial.iloc[0]}'); if they "
        f"are a spreadsheet's serial dates (days since 1899-12-30: {serial.iloc[0]} is {first})"
    ), message
    line = "pandas.to_datetime(log['ts'].astype(float), unit='D', origin='1899-12-30')"
    assert line in message
    written = pd.read_csv(path, dtype=str)
    written["ts"] = pd.to_datetime(written["ts"].astype(float), unit="D", origin="1899-12-30")
    written["ts"] = written["ts"].dt.round("s")
    written.to_csv(path, index=False)
    fixed = features(path, tmp_path)
    iso = write_log(log, tmp_path / "iso.csv", ISO)
    pd.testing.assert_frame_equal(fixed, features(iso, tmp_path))
