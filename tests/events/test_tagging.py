"""Tagging and recording from a transaction log (issue 13, item 2): ``segments assign
--input LOG [--record] [--as-of DATE]`` for a model trained on a log, through the real CLI."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli.main import app as cli
from app.history.records import run_started_ms
from app.main import create_app
from app.registry.store import ModelStore
from app.settings import Settings
from app.training.config import TrainConfig
from app.training.data import load_training_data
from app.training.job import TrainResult

RUN_LINE = re.compile(r"^run ([0-9a-f]{20}): recording ", re.MULTILINE)


def _assign(store: ModelStore, *args: str) -> Any:
    result = CliRunner().invoke(
        cli, ["assign", "--store", str(store.root), "--model", "transactions", *args]
    )
    assert result.exit_code == 0, result.output
    return result


def test_tagging_a_log_gives_what_training_assigned(
    tx_trained: tuple[ModelStore, TrainResult], tmp_path: Path
) -> None:
    store, result = tx_trained
    config = TrainConfig.model_validate(result.manifest.config)
    reference = result.manifest.data.reference_date
    assert reference is not None
    out = tmp_path / "tagged.csv"
    _assign(store, "--input", str(config.data.path), "--output", str(out), "--as-of", reference)
    tagged = pd.read_csv(out, dtype=str).set_index("customer_id")
    training = load_training_data(config).frame
    model = store.load("transactions", result.manifest.version).estimator
    assert sorted(tagged.index) == sorted(training.index)  # every customer, ids as text
    trained = pd.Series(model.predict(training), index=training.index)
    assert (tagged["segment_id"] == trained.loc[tagged.index]).all()


def _log(tmp_path: Path) -> Path:
    rows = [
        ("a", "1", "2026-10-01 10:00", 50.0),
        ("a", "1", "2026-10-01 10:00", 25.0),  # a second line of order 1
        ("a", "2", "2026-10-20 12:00", 40.0),
        ("0042", "3", "2026-09-01 09:00", 90.0),
        ("refunder", "4", "2026-10-02 09:00", -30.0),  # only a refund
        ("late", "5", "2026-11-05 09:00", 10.0),  # after the as-of date: not tagged
    ]
    path = tmp_path / "log.csv"
    pd.DataFrame(rows, columns=["customer_id", "order_id", "timestamp", "amount"]).to_csv(
        path, index=False
    )
    return path


def test_customers_without_lines_before_the_reference_or_with_only_refunds_are_reported(
    tx_trained: tuple[ModelStore, TrainResult], tmp_path: Path
) -> None:
    store, _ = tx_trained
    out = tmp_path / "out.csv"
    shown = _assign(
        store, "--input", str(_log(tmp_path)), "--output", str(out), "--as-of", "2026-11-01"
    )
    tagged = pd.read_csv(out, dtype=str)
    assert sorted(tagged["customer_id"]) == ["0042", "a"]  # the refunder bought nothing
    unassigned = pd.read_csv(tmp_path / "out.review.csv", dtype=str)
    assert dict(zip(unassigned["customer_id"], unassigned["reason"], strict=True)) == {
        "late": "no line before the reference date (not tagged)",
        "refunder": "only refund lines before the reference date: no purchase (not tagged)",
    }
    assert "1 customer:" in shown.output and "out.review.csv" in shown.output


def test_a_logs_customers_whose_id_the_service_refuses_are_listed_not_tagged(
    tx_trained: tuple[ModelStore, TrainResult], tmp_path: Path
) -> None:
    """As a table's rows are rejected: a recorded customer the API refuses by id (an audit's
    tab and 200-character ids) could never be assigned by id."""
    store, _ = tx_trained
    log = _log(tmp_path)
    extra = pd.DataFrame(
        [("TAB\tX", "6", "2026-10-03 10:00", 20.0), ("L" * 129, "7", "2026-10-04 10:00", 5.0)],
        columns=["customer_id", "order_id", "timestamp", "amount"],
    )
    pd.concat([pd.read_csv(log, dtype={"customer_id": str}), extra]).to_csv(log, index=False)
    out = tmp_path / "out.csv"
    _assign(store, "--input", str(log), "--output", str(out), "--as-of", "2026-11-01")
    assert sorted(pd.read_csv(out, dtype=str)["customer_id"]) == ["0042", "a"]
    review = pd.read_csv(tmp_path / "out.review.csv", dtype=str, keep_default_na=False)
    reasons = dict(zip(review["customer_id"], review["reason"], strict=True))
    assert reasons["TAB\tX"] == (
        "customer id contains control characters, line separators or bidirectional overrides "
        "(the service refuses it; not tagged)"
    )
    assert reasons["L" * 129] == (
        "customer id longer than 128 characters (the service refuses it; not tagged)"
    )


def _settings(store: ModelStore, prefix: str, tmp_path: Path) -> Settings:
    """The service's settings for the transactions model, under the test's key prefix."""
    return Settings(
        model_store=store.root,
        model_name="transactions",
        dev_mode=True,
        key_prefix=prefix,
        data_dir=tmp_path,
    )


def test_recording_a_log_seeds_the_aggregates_events_then_update(
    tx_trained: tuple[ModelStore, TrainResult],
    tmp_path: Path,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, _ = tx_trained
    # the command runs with the service's settings: the same prefix and default model
    monkeypatch.setenv("SEGMENTS_KEY_PREFIX", prefix)
    monkeypatch.setenv("SEGMENTS_MODEL_NAME", "transactions")
    log = _log(tmp_path)
    shown = _assign(store, "--input", str(log), "--record", "--as-of", "2026-11-01")
    assert "recorded 2 customers" in shown.output  # not the refunder: nothing bought
    settings = _settings(store, prefix, tmp_path)
    with TestClient(create_app(settings)) as client:
        client.app.state.clock = datetime(2026, 11, 10, tzinfo=UTC).timestamp  # type: ignore[attr-defined]
        assert client.get("/v1/customers/0042").json()["segment_id"]
        assert client.get("/v1/customers/42").status_code == 404  # ids are text
        behaviour = client.app.state.behaviour  # type: ignore[attr-defined]
        seeded = client.portal.call(behaviour.read, ["a"])[0]  # type: ignore[union-attr]
        assert (seeded.orders, seeded.monetary) == (2, 115.0)
        events = [
            # a third line of order 2 (already counted by the log), after the reference
            {"event_id": "n1", "customer_id": "a", "type": "order", "amount": 5.0,
             "at": "2026-11-03T10:00:00Z", "order_id": "2"},
            {"event_id": "n2", "customer_id": "a", "type": "order", "amount": 10.0,
             "at": "2026-11-04T10:00:00Z", "order_id": "9"},
            # older than the reference of the log's run: the log covers it
            {"event_id": "old", "customer_id": "a", "type": "order", "amount": 99.0,
             "at": "2026-10-15T10:00:00Z", "order_id": "7"},
        ]  # fmt: skip
        doc = client.post("/v1/events", json={"events": events}).json()
        assert (doc["accepted"], doc["late"]) == (2, 1)
        assert doc["late_events"] == [{"index": 2, "event_id": "old"}]  # which one
        now = client.portal.call(behaviour.read, ["a"])[0]  # type: ignore[union-attr]
        assert (now.orders, now.monetary) == (3, 130.0)
    # the next nightly run, from a log that now has the posted lines up to its reference:
    # the log replaces what it covers, the posted events after it stay on top
    grown = pd.read_csv(log, dtype=str)
    grown.loc[len(grown)] = ["a", "2", "2026-11-03 10:00", "5.0"]
    grown.to_csv(log, index=False)
    _assign(store, "--input", str(log), "--record", "--as-of", "2026-11-04")
    with TestClient(create_app(settings)) as client:
        behaviour = client.app.state.behaviour  # type: ignore[attr-defined]
        again = client.portal.call(behaviour.read, ["a"])[0]  # type: ignore[union-attr]
        assert (again.orders, again.monetary) == (3, 130.0)  # n2 (Nov 4) kept, n1 in the log


def test_lines_beyond_the_bound_are_left_out_of_a_recorded_log(
    tx_trained: tuple[ModelStore, TrainResult],
    tmp_path: Path,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by the audit: an amount of 1e300 or inf, or a customer whose lines sum beyond
    2^63, passed through `--record` and failed it late. They are left out and counted by
    reason, as training leaves them out, and the rest is recorded."""
    monkeypatch.setenv("SEGMENTS_KEY_PREFIX", prefix)
    monkeypatch.setenv("SEGMENTS_MODEL_NAME", "transactions")
    log = _log(tmp_path)
    odd = pd.DataFrame(
        [
            ("big", "6", "2026-10-03 09:00", "1e300"),
            ("a", "7", "2026-10-03 09:00", "-inf"),
            ("rich", "8", "2026-10-04 09:00", "6e18"),
            ("rich", "9", "2026-10-05 09:00", "6e18"),
        ],
        columns=["customer_id", "order_id", "timestamp", "amount"],
    )
    pd.concat([pd.read_csv(log, dtype=str), odd]).to_csv(log, index=False)
    shown = _assign(
        store := tx_trained[0], "--input", str(log), "--record", "--as-of", "2026-11-01"
    )
    assert "recorded 2 customers" in shown.output  # not the refunder: nothing bought
    assert (
        "amount not finite or beyond 2^63, e.g. 1e+300: 2; a customer's net amount before the "
        "reference date beyond 2^63, e.g. 'rich': 2"
    ) in " ".join(shown.output.split())
    out = tmp_path / "out.csv"
    _assign(store, "--input", str(log), "--output", str(out), "--as-of", "2026-11-01")
    assert sorted(pd.read_csv(out, dtype=str)["customer_id"]) == ["0042", "a"]


def test_the_nightly_run_tags_customers_with_the_events_posted_after_its_reference(
    tx_trained: tuple[ModelStore, TrainResult],
    tmp_path: Path,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by the audit: a nightly run recorded the log's features alone for a customer
    whose events after the reference it kept on top of the seeded aggregates, so the run
    moved the customer back (a spurious migration) and the next event moved them again. A
    customer with kept events is tagged from the log and the events, as of the run's time:
    what ``POST /v1/assign`` by id gives at that instant, and the run changes no segment."""
    monkeypatch.setenv("SEGMENTS_KEY_PREFIX", prefix)
    monkeypatch.setenv("SEGMENTS_MODEL_NAME", "transactions")
    store, _ = tx_trained
    log = _log(tmp_path)
    _assign(store, "--input", str(log), "--record", "--as-of", "2026-11-01")
    settings = _settings(store, prefix, tmp_path)
    spend = [  # a big spender now: 40 orders after the reference
        {"event_id": f"n{i}", "customer_id": "a", "type": "order", "amount": 500.0,
         "at": f"2026-11-{2 + i // 4:02d}T{10 + i % 4}:00:00Z", "order_id": f"x{i}"}
        for i in range(40)
    ]  # fmt: skip
    with TestClient(create_app(settings)) as client:
        client.app.state.clock = datetime(2026, 11, 13, tzinfo=UTC).timestamp  # type: ignore[attr-defined]
        doc = client.post("/v1/events", json={"events": spend}).json()
        assert doc["accepted"] == 40 and doc["customers"][0]["changed"] is True
    # the same log again (no line after the reference): a new nightly run
    out = tmp_path / "nightly.csv"
    shown = _assign(
        store, "--input", str(log), "--record", "--as-of", "2026-11-01", "--output", str(out)
    )
    assert "changed 0 · unchanged 2" in shown.output, shown.output
    assert "1 of them with the events posted after the reference" in shown.output
    run_id = RUN_LINE.search(shown.output)
    assert run_id is not None
    run_at = run_started_ms(run_id.group(1)) / 1000
    with TestClient(create_app(settings)) as client:
        stored = client.get("/v1/customers/a").json()
        assert stored["profile"]["monetary"] == 115.0 + 40 * 500.0
        assert stored["profile"]["frequency"] == 2 + 40
        client.app.state.clock = lambda: run_at  # type: ignore[attr-defined]
        by_id = client.post("/v1/assign", json={"customer_id": "a"}).json()
        assert by_id["segment_id"] == stored["segment_id"]
        assert by_id["changed"] is False
        assert client.get("/v1/customers/a").json()["profile"] == stored["profile"]
    # the run's file shows what it recorded (it showed the log's segment for 'a')
    written = pd.read_csv(out, dtype=str).set_index("customer_id")["segment_id"]
    assert written["a"] == stored["segment_id"]


def test_a_recorded_log_seeds_customers_with_refunds_only_as_the_log_says(
    tx_trained: tuple[ModelStore, TrainResult],
    tmp_path: Path,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by a review: a customer whose lines before the reference are all refunds was not
    seeded (no purchase, no features), so the log's refund never reached Redis, the events
    posted before the reference stayed, and a late event was applied (it is refused for every
    seeded customer). Such a customer is seeded with the log's net amount and no purchase
    time; a purchase posted after the reference stays on top, as for anyone."""
    monkeypatch.setenv("SEGMENTS_KEY_PREFIX", prefix)
    monkeypatch.setenv("SEGMENTS_MODEL_NAME", "transactions")
    store, _ = tx_trained
    log = _log(tmp_path)  # 'refunder' has one line before 2026-11-01: a refund of 30
    settings = _settings(store, prefix, tmp_path)
    bought = {"event_id": "r-buy", "customer_id": "refunder", "type": "order", "amount": 100.0,
              "at": "2026-11-03T09:00:00Z", "order_id": "10"}  # fmt: skip
    early = {"event_id": "r-early", "customer_id": "refunder", "type": "order", "amount": 7.0,
             "at": "2026-10-05T09:00:00Z", "order_id": "11"}  # fmt: skip
    with TestClient(create_app(settings)) as client:
        client.app.state.clock = datetime(2026, 11, 10, tzinfo=UTC).timestamp  # type: ignore[attr-defined]
        doc = client.post("/v1/events", json={"events": [bought, early]}).json()
        assert doc["accepted"] == 2
    shown = _assign(store, "--input", str(log), "--record", "--as-of", "2026-11-01")
    assert "only refund lines before the reference date" in " ".join(shown.output.split())
    late = {**early, "event_id": "r-late"}
    with TestClient(create_app(settings)) as client:
        client.app.state.clock = datetime(2026, 11, 10, tzinfo=UTC).timestamp  # type: ignore[attr-defined]
        behaviour = client.app.state.behaviour  # type: ignore[attr-defined]
        seeded = client.portal.call(behaviour.read, ["refunder"])[0]  # type: ignore[union-attr]
        at = int(datetime(2026, 11, 3, 9, tzinfo=UTC).timestamp() * 1_000_000)
        # the log's refund (-30) and the purchase kept after the reference; the early event
        # (before the reference: the log covers that period) forgotten
        assert seeded == (at, at, 1, 70.0)
        doc = client.post("/v1/events", json={"events": [late]}).json()
        assert (doc["accepted"], doc["late"]) == (0, 1)
        # and recorded from the log and the purchase kept on top (its record showed the
        # forgotten early event: frequency 2, monetary 107), as any customer with kept events
        profile = client.get("/v1/customers/refunder").json()["profile"]
        assert (profile["frequency"], profile["monetary"]) == (1.0, 70.0)
