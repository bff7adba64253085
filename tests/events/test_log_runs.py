"""Recording a transaction log is a run, as recording a table is: ``segments assign --input
LOG --record`` prints its run id, ``--run-id`` reruns it (counted once) and ``--resume``
finishes it; a run killed (SIGKILL) half-way then resumed ends as an uninterrupted run."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis
from typer.testing import CliRunner

from app.cli.main import app as cli
from app.events.store import BehaviourStore
from app.history import HistoryConfig, Keys, Recorder
from app.recording import RunState
from app.registry.store import ModelStore
from app.training.job import TrainResult
from tests.events.test_tagging import _log
from tests.history.conftest import RedisProcess, make_config, start_redis
from tests.history.test_record_run import SEGMENTS, _state

__all__ = ["start_redis"]  # the fixture, for this module's tests
RUN_LINE = re.compile(r"^run ([0-9a-f]{20}): recording ", re.MULTILINE)


def _invoke(store: ModelStore, *args: str) -> Any:
    return CliRunner().invoke(
        cli, ["assign", "--store", str(store.root), "--model", "transactions", *args]
    )


def test_a_logs_run_prints_its_id_and_reruns_and_resumes_by_it(
    tx_trained: tuple[ModelStore, TrainResult],
    tmp_path: Path,
    prefix: str,
    service_redis: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, _ = tx_trained
    monkeypatch.setenv("SEGMENTS_KEY_PREFIX", prefix)
    monkeypatch.setenv("SEGMENTS_MODEL_NAME", "transactions")
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(tmp_path / "data"))
    log = _log(tmp_path)
    first = _invoke(store, "--input", str(log), "--record", "--as-of", "2026-11-01")
    assert first.exit_code == 0, first.output
    found = RUN_LINE.search(first.output)
    assert found, first.output
    run_id = found.group(1)
    assert f"run {run_id}: recorded 2 customers" in first.output
    state = RunState.load(tmp_path / "data" / "runs", run_id)
    assert state is not None and state.finished and state.reference == "2026-11-01"
    assert (state.rows_done, state.counts.customers, state.counts.changed) == (2, 2, 2)
    # the customers not tagged plainly, by the run's id (a log of the same name keeps its own)
    report = tmp_path / "data" / "runs" / f"{run_id}.review.csv"
    assert set(pd.read_csv(report, dtype=str)["customer_id"]) == {"late", "refunder"}

    done = _invoke(store, "--input", str(log), "--resume", run_id)
    assert done.exit_code == 0 and f"run {run_id} is already finished" in done.output
    # without --model, of the model its run file names (in a store of several models, with
    # none configured, it was refused: an audit's failed run printed just this command)
    several = tmp_path / "several"
    shutil.copytree(store.root, several)
    shutil.copytree(several / "transactions", several / "other")
    monkeypatch.setenv("SEGMENTS_MODEL_NAME", "nothere")
    bare = CliRunner().invoke(
        cli, ["assign", "--store", str(several), "--input", str(log), "--resume", run_id]
    )
    assert bare.exit_code == 0 and f"run {run_id} is already finished" in bare.output, bare.output
    monkeypatch.setenv("SEGMENTS_MODEL_NAME", "transactions")
    # another date is refused, finished or not (it said "already finished" and exited 0)
    dated = _invoke(store, "--input", str(log), "--resume", run_id, "--as-of", "2026-11-02")
    assert dated.exit_code == 1 and "derived the log as of 2026-11-01" in dated.output
    # a rerun derives as of the run's date again and changes nothing already recorded
    again = _invoke(store, "--input", str(log), "--run-id", run_id)
    assert again.exit_code == 0, again.output
    assert "changed 0 · unchanged 0 · duplicates/stale 2" in again.output
    config = HistoryConfig(redis_url=service_redis, key_prefix=prefix)
    assert _state(config, ["a", "0042"], set())["customers"]["a"][1:] == (1, 1)
    other = _invoke(store, "--input", str(log), "--run-id", run_id, "--as-of", "2026-11-02")
    assert other.exit_code == 1 and "derived the log as of 2026-11-01" in other.output
    table = _invoke(store, "--input", str(log), "--resume", "0" * 20)
    assert table.exit_code == 1 and "no run file for run" in table.output


def _aggregates(config: HistoryConfig, ids: list[str]) -> list[Any]:
    async def read() -> list[Any]:
        assert config.redis_url is not None
        recorder = Recorder.connect(config.redis_url, config)
        try:
            return await BehaviourStore(recorder.client, Keys.from_config(config), 10.0).read(ids)
        finally:
            await recorder.aclose()

    return asyncio.run(read())


def test_a_logs_run_killed_half_way_then_resumed_equals_an_uninterrupted_run(
    tx_trained: tuple[ModelStore, TrainResult],
    transactions_csv: Path,
    tmp_path: Path,
    start_redis: type[RedisProcess],
) -> None:
    store, result = tx_trained
    server = start_redis(tmp_path / "redis", args=["--save", "", "--appendonly", "no"]).start()
    killed = make_config(server.url, tmp_path)
    whole = make_config(server.url, tmp_path)
    base = {
        **os.environ,
        "SEGMENTS_REDIS_URL": server.url,
        "SEGMENTS_HISTORY_CAP": str(killed.history_cap),
        "SEGMENTS_STREAM_MAXLEN": str(killed.stream_maxlen),
        "SEGMENTS_DATA_DIR": str(tmp_path / "data"),
        "SEGMENTS_MODEL_STORE": str(store.root),
        "SEGMENTS_MODEL_NAME": "transactions",
    }
    env = {**base, "SEGMENTS_KEY_PREFIX": killed.key_prefix}
    runs = tmp_path / "data" / "runs"
    command = [str(SEGMENTS), "assign", "-i", str(transactions_csv), "--record"]
    tagged = tmp_path / "tagged.csv"
    subprocess.run([*command[:4], "-o", str(tagged)], env=env, check=True, capture_output=True)
    ids = pd.read_csv(tagged, dtype=str)["customer_id"].tolist()
    total = len(ids)
    proc = subprocess.Popen(
        [*command, "--chunk-size", "50"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,  # where the command's console writes
        text=True,
    )
    run_id = None
    with redis.Redis.from_url(server.url) as client:
        try:
            while proc.poll() is None:
                found = list(runs.glob("*.json"))
                state = RunState.load(runs, found[0].stem) if found else None
                if state is not None and state.rows_done >= total // 2:
                    # hold every write, so the run stops about here, then kill it mid-chunk
                    client.client_pause(60_000, all=False)
                    run_id = state.run_id
                    break
                time.sleep(0.001)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        finally:
            client.client_unpause()
    assert run_id is not None and proc.returncode == -signal.SIGKILL, "finished before the kill"
    assert proc.stderr is not None and f"run {run_id}: recording" in proc.stderr.read()
    state = RunState.load(runs, run_id)
    assert state is not None and total // 2 <= state.rows_done < total and not state.finished

    resumed = subprocess.run(
        [*command, "--resume", run_id], env=env, capture_output=True, text=True, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"run {run_id}: resuming" in resumed.stderr
    assert f"after customer {state.rows_done:,}" in resumed.stderr
    finished = RunState.load(runs, run_id)
    assert finished is not None and finished.finished and finished.rows_done == total
    assert finished.counts.customers == total  # each customer once, the re-sent chunk too

    env = {**base, "SEGMENTS_KEY_PREFIX": whole.key_prefix}
    subprocess.run(command, env=env, check=True, capture_output=True)
    segments = {s.id for s in result.manifest.segments}
    assert _state(killed, ids, segments) == _state(whole, ids, segments)
    assert _aggregates(killed, ids) == _aggregates(whole, ids)
