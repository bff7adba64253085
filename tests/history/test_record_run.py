"""``segments assign --input FILE --record``: the whole file recorded as the service records.

Against real Redis servers: the members of each segment are the file's assignment, a re-score
migrates exactly the customers who changed, a rerun of the same run changes no byte, and a
run killed (SIGKILL) half-way then resumed ends as an uninterrupted run.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis
from rich.console import Console
from typer.testing import CliRunner

from app.batch import NO_ID
from app.cli.main import app as cli
from app.history import EmbeddedRedis, HistoryConfig, Keys, Record, Recorder
from app.history.records import new_run_id, run_record_ids
from app.recording import RunRequest, RunState, record_file
from app.redis_client import redis_target
from app.registry.overrides import SegmentOverrides
from app.registry.store import ModelStore
from app.training.job import TrainResult
from tests.history.conftest import RedisProcess, free_port, make_config
from tests.versions import MODEL

SEGMENTS = Path(sys.executable).with_name("segments")


def test_run_record_ids_increase_with_the_row_and_repeat_for_the_same_run() -> None:
    run = new_run_id(at_ms=1_700_000_000_000)
    ids = run_record_ids(run, (1 << 30) - 5, 10)  # across the row bit moving into rand_a
    assert ids == sorted(ids) and len(set(ids)) == 10
    assert run_record_ids(run, (1 << 30) - 2, 3) == ids[3:6]
    assert all(i[:12] == run[:12] and i[12] == "7" and i[16] in "89ab" for i in ids)
    # the layout spelt out: time, version 7, then row (42 bits), variant 0b10, run's 32 bits
    for row, rid in zip(range((1 << 30) - 5, (1 << 30) + 5), ids, strict=True):
        bits = row << 32 | int(run[12:], 16)
        rand_a, rand_b = bits >> 62, bits & ((1 << 62) - 1)
        assert rid == f"{int(run[:12], 16) << 80 | 7 << 76 | rand_a << 64 | 1 << 63 | rand_b:032x}"
    later = new_run_id(at_ms=1_700_000_000_001)
    assert run_record_ids(later, 0, 1)[0] > ids[-1]  # a later run's records are newer
    assert run_record_ids(run, 0, 5) != run_record_ids(new_run_id(1_700_000_000_000), 0, 5)


@pytest.fixture
def model(trained: tuple[ModelStore, TrainResult]) -> tuple[ModelStore, str]:
    store, result = trained
    return store, result.manifest.model_name


@pytest.fixture
def clean(config: HistoryConfig) -> Any:
    yield
    _delete_prefix(config)


def _delete_prefix(config: HistoryConfig) -> None:
    assert config.redis_url is not None
    with redis.Redis.from_url(config.redis_url) as client:
        keys = list(client.scan_iter(match=Keys.from_config(config).pattern(), count=1000))
        if keys:
            client.delete(*keys)


def _record(
    model: tuple[ModelStore, str], config: HistoryConfig, source: Path, runs: Path, **kw: Any
) -> RunState:
    store, name = model
    request = RunRequest(source, None, name, runs, chunk_size=kw.pop("chunk_size", 1000), **kw)
    return record_file(store, None, request, config, Console(file=io.StringIO()))


def _expected(model: tuple[ModelStore, str], frame: pd.DataFrame) -> dict[str, str]:
    """Customer id -> segment, as ``Pipeline.predict`` assigns the file (the reference)."""
    store, name = model
    estimator = store.load(name).estimator
    return dict(zip(frame["customer_id"], estimator.predict(frame), strict=True))


def _state(config: HistoryConfig, ids: list[str], segments: set[str]) -> dict[str, Any]:
    """Per customer: current segment, migrations, history length; members of each segment."""

    async def read() -> dict[str, Any]:
        assert config.redis_url is not None
        recorder = Recorder.connect(config.redis_url, config)
        try:
            customers = {}
            for cid in ids:
                current = await recorder.current(cid)
                assert current is not None, cid
                history = await recorder.history(cid)
                customers[cid] = (current.segment_id, current.migrations, len(history))
            members: dict[str, set[str]] = {}
            for seg in segments:
                found, cursor = set(), None
                while True:
                    page = await recorder.members(seg, cursor, limit=1000)
                    found |= {m.customer_id for m in page.members}
                    if (cursor := page.next_cursor) is None:
                        break
                members[seg] = found
            return {"customers": customers, "members": members}
        finally:
            await recorder.aclose()

    return asyncio.run(read())


def _profiles(config: HistoryConfig, ids: list[str]) -> dict[str, dict[str, Any] | None]:
    async def read() -> dict[str, dict[str, Any] | None]:
        assert config.redis_url is not None
        recorder = Recorder.connect(config.redis_url, config)
        try:
            found = await recorder.profiles(ids)
            return {c: None if p is None else p.features for c, p in zip(ids, found, strict=True)}
        finally:
            await recorder.aclose()

    return asyncio.run(read())


def _dump(config: HistoryConfig) -> dict[bytes, bytes | None]:
    assert config.redis_url is not None
    with redis.Redis.from_url(config.redis_url) as client:
        pattern = Keys.from_config(config).pattern()
        return {key: client.dump(key) for key in client.scan_iter(match=pattern, count=1000)}


def test_members_of_each_segment_are_the_files_assignment(
    model: tuple[ModelStore, str],
    config: HistoryConfig,
    customers_csv: Path,
    tmp_path: Path,
    clean: None,
) -> None:
    frame = pd.read_csv(customers_csv)
    expected = _expected(model, frame)
    state = _record(model, config, customers_csv, tmp_path / "runs")
    assert state.finished and state.counts.customers == len(frame) == state.counts.changed
    recorded = _state(config, list(expected), set(expected.values()))
    for seg in set(expected.values()):
        assert recorded["members"][seg] == {c for c, s in expected.items() if s == seg}
    assert all(v == (expected[c], 1, 1) for c, v in recorded["customers"].items())
    # each customer's profile is the row it was assigned from (an empty cell: null, as JSON)
    store, name = model
    features = store.load(name).estimator.feature_names
    rows = frame.set_index("customer_id")[features].astype(object)
    rows = rows.where(rows.notna(), None).to_dict("index")
    assert _profiles(config, list(expected)) == {c: rows[c] for c in expected}


def test_a_parquet_files_nullable_columns_are_recorded_with_null_profiles(
    model: tuple[ModelStore, str],
    config: HistoryConfig,
    customers: tuple[pd.DataFrame, Any],
    tmp_path: Path,
    clean: None,
) -> None:
    """pandas writes a ``string`` (or ``boolean``, ``Int64``) column's missing value to
    Parquet as a null that it reads back as ``pd.NA``: a profile holding one could not be
    encoded, and the run died at its first chunk with a traceback (file tagging read it)."""
    frame = customers[0].head(40).copy()
    frame["plan"] = frame["plan"].astype("string")
    frame.loc[[2, 5], "plan"] = pd.NA
    source = tmp_path / "nullable.parquet"
    frame.to_parquet(source, index=False)
    state = _record(model, config, source, tmp_path / "runs", chunk_size=16)
    assert state.finished and state.counts.customers == 40 == state.counts.changed
    expected = _expected(model, frame.astype({"plan": object}).replace({pd.NA: None}))
    recorded = _state(config, list(expected), set(expected.values()))
    assert {c: v[0] for c, v in recorded["customers"].items()} == expected
    profiles = _profiles(config, list(expected))
    ids = frame["customer_id"].tolist()
    assert [profiles[ids[i]]["plan"] for i in (1, 2, 5)] == [frame["plan"][1], None, None]  # type: ignore[index]


def test_a_rescore_migrates_exactly_the_customers_who_changed(
    model: tuple[ModelStore, str],
    config: HistoryConfig,
    customers_csv: Path,
    tmp_path: Path,
    clean: None,
) -> None:
    frame = pd.read_csv(customers_csv)
    before = _expected(model, frame)
    _record(model, config, customers_csv, tmp_path / "runs")
    # 300 customers take the features of a customer of another segment
    changed_frame = frame.copy()
    segments = frame["customer_id"].map(before)
    features = [c for c in frame.columns if c != "customer_id"]
    for i in range(0, 3000, 10):
        donor = int((segments != segments.iloc[i]).to_numpy().argmax())
        changed_frame.loc[i, features] = frame.loc[donor, features]
    second = tmp_path / "second.csv"
    changed_frame.to_csv(second, index=False)
    after = _expected(model, changed_frame)
    moved = {c for c in after if after[c] != before[c]}
    assert 100 < len(moved) <= 300

    state = _record(model, config, second, tmp_path / "runs")
    assert (state.counts.changed, state.counts.unchanged) == (len(moved), len(frame) - len(moved))
    recorded = _state(config, list(after), set(after.values()))
    for cid, (segment, migrations, history) in recorded["customers"].items():
        assert segment == after[cid]
        assert migrations == history == (2 if cid in moved else 1), cid


def test_a_version_promoted_while_a_run_records_is_named_at_its_end(
    versions: Any,
    config: HistoryConfig,
    customers_csv: Path,
    tmp_path: Path,
    clean: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run records with the version promoted at its start; promoted meanwhile, the new one
    serves while the run goes on recording the old one's segments, and the run ended
    without a word of it: the summary names both and the rescore that moves everyone."""
    import app.recording as recording

    store = ModelStore(tmp_path / "store")
    shutil.copytree(versions.store.root, store.root, dirs_exist_ok=True)
    original = recording.record_run

    async def promoted_meanwhile(*args: Any, **kwargs: Any) -> RunState:
        store.promote(MODEL, versions.new)  # (as `segments models promote` does)
        return await original(*args, **kwargs)

    monkeypatch.setattr(recording, "record_run", promoted_meanwhile)
    out = io.StringIO()
    request = RunRequest(customers_csv, None, MODEL, tmp_path / "runs", chunk_size=5000)
    state = record_file(store, None, request, config, Console(file=out, width=400))
    assert state.finished and state.version == versions.old
    said = " ".join(out.getvalue().split())
    assert f"{MODEL} {versions.new} is the promoted version now, not {versions.old}" in (said)
    assert f"segments customers rescore --model {MODEL}" in said
    monkeypatch.setattr(recording, "record_run", original)  # promoted before it: nothing said
    again = io.StringIO()
    record_file(store, None, request, config, Console(file=again, width=400))
    assert "is the promoted version now" not in again.getvalue()


def test_the_same_run_twice_changes_nothing(
    model: tuple[ModelStore, str],
    config: HistoryConfig,
    customers_csv: Path,
    tmp_path: Path,
    clean: None,
) -> None:
    first = _record(model, config, customers_csv, tmp_path / "runs")
    keys = _dump(config)
    again = _record(model, config, customers_csv, tmp_path / "runs", run_id=first.run_id)
    assert again.counts.duplicates == again.counts.customers == first.counts.customers
    assert _dump(config) == keys


def test_a_chunk_sent_in_many_calls_records_a_repeated_customer_once_from_its_last_row(
    model: tuple[ModelStore, str],
    config: HistoryConfig,
    customers_csv: Path,
    tmp_path: Path,
    clean: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A chunk goes to Redis as many script calls. A customer whose rows fall in different
    calls of one chunk is one customer: its last row is recorded, once, and the earlier rows
    are rejected as duplicates (they were once recorded as migrations between them, and
    counted 3 times)."""
    import app.history.recorder

    monkeypatch.setattr(app.history.recorder, "RECORDS_PER_CALL", 37)
    frame = pd.read_csv(customers_csv).head(300)
    expected = _expected(model, frame)
    ids = frame["customer_id"].tolist()
    # customer 0 comes back at rows 101 and 252 with the features of two customers of two
    # other segments: three rows in three calls of one chunk
    first = ids[0]
    one = next(i for i in range(1, 300) if expected[ids[i]] != expected[first])
    two = next(
        i for i in range(1, 300) if expected[ids[i]] not in (expected[first], expected[ids[one]])
    )
    late = frame.iloc[[one, two]].copy()
    late["customer_id"] = first
    parts = [frame.iloc[:100], late.iloc[:1], frame.iloc[100:250], late.iloc[1:], frame.iloc[250:]]
    source = tmp_path / "repeats.csv"
    pd.concat(parts).to_csv(source, index=False)
    state = _record(model, config, source, tmp_path / "runs", chunk_size=1000)
    assert state.finished
    assert (state.counts.customers, state.counts.changed, state.counts.rejected) == (300, 300, 2)
    recorded = _state(config, ids, set(expected.values()))
    assert recorded["customers"][first] == (expected[ids[two]], 1, 1)
    assert all(recorded["customers"][c] == (expected[c], 1, 1) for c in ids[1:])
    assert state.rejects is not None
    rejects = pd.read_csv(state.rejects, keep_default_na=False)
    reason = f"duplicate id {first!r}: row 252 has it too (that row is used)"
    assert rejects.to_dict("list") == {
        "row": [1, 101],
        "customer_id": [first, first],
        "reason": [reason] * 2,
    }


def test_rows_without_an_id_are_rejected_with_their_reason(
    model: tuple[ModelStore, str],
    config: HistoryConfig,
    customers_csv: Path,
    tmp_path: Path,
    clean: None,
) -> None:
    frame = pd.read_csv(customers_csv).head(50)
    frame["customer_id"] = frame["customer_id"].astype(object)
    frame.loc[[3, 40], "customer_id"] = None
    source = tmp_path / "holes.csv"
    frame.to_csv(source, index=False)
    state = _record(model, config, source, tmp_path / "runs", chunk_size=20)
    assert (state.counts.customers, state.counts.rejected) == (48, 2)
    assert state.rejects is not None
    rejects = pd.read_csv(state.rejects, keep_default_na=False)
    assert rejects.to_dict("list") == {
        "row": [4, 41],
        "customer_id": ["", ""],
        "reason": [NO_ID] * 2,  # the reason file tagging gives
    }


def test_a_run_counts_the_categories_training_never_saw(
    model: tuple[ModelStore, str],
    config: HistoryConfig,
    customers_csv: Path,
    tmp_path: Path,
    clean: None,
) -> None:
    """As file tagging does: a recorded row whose category training never saw is counted in
    the run's summary (it was recorded silently as none of the feature's categories)."""
    store, name = model
    frame = pd.read_csv(customers_csv).head(60)
    frame["channel"] = frame["channel"].astype(object)
    frame.loc[frame.index[:7], "channel"] = "carrier pigeon"
    source = tmp_path / "odd.csv"
    frame.to_csv(source, index=False)
    request = RunRequest(source, None, name, tmp_path / "runs", chunk_size=25)
    console = Console(file=io.StringIO(), width=200)
    state = record_file(store, None, request, config, console)
    assert state.counts.customers == 60
    said = " ".join(console.file.getvalue().split())  # type: ignore[attr-defined]
    assert "note: column 'channel': 7 rows hold categories training never saw" in said
    assert "'carrier pigeon' (7 rows)" in said


def test_a_run_killed_half_way_then_resumed_equals_an_uninterrupted_run(
    model: tuple[ModelStore, str],
    customers_csv: Path,
    tmp_path: Path,
    start_redis: type[RedisProcess],
) -> None:
    server = start_redis(tmp_path / "redis", args=["--save", "", "--appendonly", "no"]).start()
    killed = make_config(server.url, tmp_path)
    whole = replace(killed, key_prefix=killed.key_prefix + "whole:")
    store, name = model
    env = {
        **os.environ,
        "SEGMENTS_REDIS_URL": server.url,
        "SEGMENTS_KEY_PREFIX": killed.key_prefix,
        "SEGMENTS_HISTORY_CAP": str(killed.history_cap),
        "SEGMENTS_STREAM_MAXLEN": str(killed.stream_maxlen),
        "SEGMENTS_DATA_DIR": str(tmp_path / "data"),
        "SEGMENTS_MODEL_STORE": str(store.root),
        "SEGMENTS_MODEL_NAME": name,
    }
    runs = tmp_path / "data" / "runs"
    run_id = new_run_id()
    command = [str(SEGMENTS), "assign", "-i", str(customers_csv), "--record"]
    total = len(pd.read_csv(customers_csv))
    proc = subprocess.Popen(
        [*command, "--chunk-size", "100", "--run-id", run_id],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with redis.Redis.from_url(server.url) as client:
        try:
            while proc.poll() is None:
                state = RunState.load(runs, run_id)
                if state is not None and state.rows_done >= total // 2:
                    # hold every write, so the run stops about here, then kill it mid-chunk
                    client.client_pause(60_000, all=False)
                    break
                time.sleep(0.001)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        finally:
            client.client_unpause()
    state = RunState.load(runs, run_id)
    assert state is not None and proc.returncode == -signal.SIGKILL, "finished before the kill"
    assert total // 2 <= state.rows_done < total and not state.finished

    resumed = subprocess.run(
        [*command, "--resume", run_id], env=env, capture_output=True, text=True, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {customers_csv} after row {state.rows_done:,}" in resumed.stderr
    finished = RunState.load(runs, run_id)
    assert finished is not None and finished.finished and finished.rows_done == total

    _record(model, whole, customers_csv, tmp_path / "whole-runs")
    expected = _expected(model, pd.read_csv(customers_csv))
    ids, segments = list(expected), set(expected.values())
    assert _state(killed, ids, segments) == _state(whole, ids, segments)


def test_the_output_keeps_the_id_column_and_carries_the_patched_names(
    trained: tuple[ModelStore, TrainResult],
    config: HistoryConfig,
    customers_csv: Path,
    tmp_path: Path,
    clean: None,
) -> None:
    store, result = trained
    copy = ModelStore(tmp_path / "store")
    shutil.copytree(store.root, copy.root)
    name = result.manifest.model_name
    segment = result.manifest.segments[-1].id
    overrides = SegmentOverrides(copy.root / name)
    overrides.path.unlink(missing_ok=True)  # edits other tests made to the shared store
    overrides.update(segment, {"name": "Renamed by a PATCH"})
    frame = pd.read_csv(customers_csv).head(300)
    expected = _expected((copy, name), frame)
    # ids are text: "007" and "7" are two customers, under the file's own id column name
    ids = ["007", "7", *(f"{c}" for c in frame["customer_id"].iloc[2:])]
    frame = frame.rename(columns={"customer_id": "client ref"}).assign(**{"client ref": ids})
    source, output = tmp_path / "few.csv", tmp_path / "tagged.csv"
    frame.to_csv(source, index=False)
    request = RunRequest(source, output, name, tmp_path / "runs", "client ref", 100)
    record_file(copy, None, request, config, Console(file=io.StringIO()))

    tagged = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert list(tagged.columns) == ["client ref", "segment_id", "segment_name"]
    assert tagged["client ref"].tolist() == ids
    assert tagged["segment_id"].tolist() == list(expected.values())
    names = {s.id: s.name for s in result.manifest.segments} | {segment: "Renamed by a PATCH"}
    assert tagged["segment_name"].tolist() == [names[s] for s in expected.values()]
    recorded = _state(config, ["007", "7"], set())["customers"]
    assert recorded == {i: (s, 1, 1) for i, s in zip(ids[:2], expected.values(), strict=False)}


def test_redis_unreachable_stops_with_one_error_line_saying_how_to_resume(
    model: tuple[ModelStore, str], customers_csv: Path, tmp_path: Path
) -> None:
    store, name = model
    env = {
        **os.environ,
        "SEGMENTS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "SEGMENTS_DATA_DIR": str(tmp_path / "data"),
        "SEGMENTS_MODEL_STORE": str(store.root),
        "SEGMENTS_MODEL_NAME": name,
    }
    done = subprocess.run(
        [str(SEGMENTS), "assign", "-i", str(customers_csv), "--record"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--resume" in errors[0], done.stderr
    assert not (tmp_path / "data" / "spool").exists()  # nothing spooled


@pytest.mark.parametrize("made", ["a month ago", "a day ahead", "beyond any date"])
def test_a_run_id_of_no_run_and_not_made_now_is_refused(
    model: tuple[ModelStore, str],
    customers_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    made: str,
) -> None:
    """Found by the audit: `--run-id` of no run recorded here, made long ago, recorded
    nothing and reported "duplicates/stale 5,000" (its records carry the id's time, older
    than the customers' latest); one ahead of the clock would make later assignments stale."""
    store, name = model
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SEGMENTS_MODEL_NAME", name)
    shift = -30 * 86_400_000 if made == "a month ago" else 86_400_000
    run_id = new_run_id(at_ms=int(time.time() * 1000) + shift)
    if made == "beyond any date":  # the audit's: the year 10889 (a traceback, exit 1)
        run_id = "f" * 20
    command = ["assign", "--store", str(store.root), "-i", str(customers_csv), "--record"]
    shown = CliRunner().invoke(cli, [*command, "--run-id", run_id])
    assert shown.exit_code == 1
    text = " ".join(shown.output.split())
    assert f"no run file for run {run_id}" in text
    assert ("not now" if made == "a month ago" else "ahead of the clock") in text
    assert "omit it to start a new run" in text


def test_without_a_url_the_run_uses_the_services_embedded_redis(tmp_path: Path) -> None:
    data_dir = tmp_path / "redis"
    config = HistoryConfig(redis_url=None, data_dir=data_dir)
    # what `segments serve` starts, then the run beside it
    with EmbeddedRedis(data_dir) as service, redis_target(config) as target:
        assert target.url == service.url and "service's embedded" in target.description
    with redis_target(config) as target:  # none running: the run starts its own
        assert "started for this command" in target.description
        # the first line names the key prefix: a run recorded under another prefix than the
        # service's is invisible to it, and the line is where a user can notice
        assert "keys under 'seg:'" in target.description
        with redis.Redis.from_url(target.url) as client:
            assert client.ping()
    assert not (data_dir / "redis.sock").exists()


def test_redis_dying_mid_run_stops_it_with_the_resume_command(
    model: tuple[ModelStore, str],
    customers_csv: Path,
    tmp_path: Path,
    start_redis: type[RedisProcess],
) -> None:
    server = start_redis(tmp_path / "redis", args=["--save", "", "--appendonly", "no"]).start()
    store, name = model
    env = {
        **os.environ,
        "SEGMENTS_REDIS_URL": server.url,
        "SEGMENTS_DATA_DIR": str(tmp_path / "data"),
        "SEGMENTS_MODEL_STORE": str(store.root),
        "SEGMENTS_MODEL_NAME": name,
    }
    run_id, runs = new_run_id(), tmp_path / "data" / "runs"
    command = [str(SEGMENTS), "assign", "-i", str(customers_csv), "--record", "--run-id", run_id]
    proc = subprocess.Popen(
        [*command, "--chunk-size", "100"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    while proc.poll() is None:
        state = RunState.load(runs, run_id)
        if state is not None and state.rows_done > 0:
            server.stop(signal.SIGKILL)
            break
        time.sleep(0.001)
    _, stderr = proc.communicate(timeout=120)
    state = RunState.load(runs, run_id)
    assert state is not None and not state.finished, "finished before Redis died"
    assert proc.returncode == 1
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    # the command to finish it names the run's model and file (it lacked --model)
    said = " ".join(stderr.split())
    assert (
        f"segments assign --model {name} --input {customers_csv} --record --resume {run_id}" in said
    )
    assert not (tmp_path / "data" / "spool").exists()


def test_commands_find_the_running_services_embedded_redis_by_its_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / ("d" * 80)  # too long a path for a socket: the server's is elsewhere
    config = HistoryConfig(redis_url=None, data_dir=data / "redis", key_prefix="cmd:")
    with EmbeddedRedis(config.data_dir) as service:  # what `segments serve` starts
        assert not (config.data_dir / "redis.sock").exists()

        async def keep() -> None:
            recorder = Recorder.connect(service.url, config)
            try:
                await recorder.record(Record.create("C1", "seg-001", "v1"))
            finally:
                await recorder.aclose()

        asyncio.run(keep())
        monkeypatch.delenv("SEGMENTS_REDIS_URL", raising=False)
        monkeypatch.setenv("SEGMENTS_DATA_DIR", str(data))
        monkeypatch.setenv("SEGMENTS_KEY_PREFIX", config.key_prefix)
        result = CliRunner().invoke(cli, ["customers", "forget", "C1"])
        assert result.exit_code == 0, result.output
        assert "C1: forgotten" in result.output
        assert f"the running service's embedded Redis at {service.socket_path}" in "".join(
            result.output.splitlines()
        )


def test_recording_a_log_on_a_log_trained_version_says_what_to_give(
    tmp_path: Path, transactions_csv: Path
) -> None:
    """As file tagging: the error says the version wants derived features, before any Redis."""
    from app.errors import DataError
    from app.training.job import train
    from tests.conftest import example_config

    store = ModelStore(tmp_path / "store")
    train(example_config("transactions", transactions_csv), store, promote=True)
    request = RunRequest(transactions_csv, None, "transactions", tmp_path / "runs")
    config = HistoryConfig(redis_url=None, data_dir=tmp_path / "data")
    with pytest.raises(DataError, match="trained on a transaction log"):
        record_file(store, None, request, config, Console(file=io.StringIO()))
    assert not (tmp_path / "data").exists()  # refused before Redis was started


def test_a_command_under_another_prefix_than_the_running_service_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new user ran `segments assign --record` from a shell without the service's
    SEGMENTS_KEY_PREFIX: 20,000 customers were recorded where the service never looks, and
    `customers rescore` then moved "0 customers", each saying only the prefix it used.
    `segments serve` marks its embedded server with its prefix; a command on that server
    under another one says the service sees none of it, and the prefix to run with (not under
    the service's own prefix, nor another model's keys under it); the mark goes with serve."""
    import app.cli.main as cli_main

    data = tmp_path / "data"
    monkeypatch.delenv("SEGMENTS_REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(data))
    monkeypatch.setenv("SEGMENTS_DEV_MODE", "true")
    monkeypatch.setenv("SEGMENTS_MODEL_STORE", str(tmp_path / "store"))
    said: dict[str, str] = {}

    def serving(*_: object) -> None:  # while `segments serve` would answer requests
        assert (data / "redis" / "service-key-prefix").read_text() == "svc:"
        url = os.environ.pop("SEGMENTS_REDIS_URL")  # serve's, for its workers: not a shell's
        for prefix in ("other:", "svc:"):
            monkeypatch.setenv("SEGMENTS_KEY_PREFIX", prefix)
            result = CliRunner().invoke(cli, ["customers", "forget", "C1"])
            said[prefix] = " ".join(result.output.split())
        monkeypatch.setenv("SEGMENTS_KEY_PREFIX", "svc:")
        os.environ["SEGMENTS_REDIS_URL"] = url

    monkeypatch.setattr(cli_main, "_run_uvicorn", serving)
    monkeypatch.setenv("SEGMENTS_KEY_PREFIX", "svc:")
    result = CliRunner().invoke(cli, ["serve", "--port", "8399"])
    assert result.exit_code == 0, result.output
    assert (
        "keys under 'other:'; the service running on it keeps its keys under 'svc:' (its "
        "SEGMENTS_KEY_PREFIX): it sees nothing under 'other:', so run this command with "
        "SEGMENTS_KEY_PREFIX=svc:"
    ) in said["other:"], said
    assert "keys under 'svc:'" in said["svc:"] and "sees nothing" not in said["svc:"], said
    assert not (data / "redis" / "service-key-prefix").exists()
    assert not (data / "redis" / "service-model-name").exists()


def test_a_model_recorded_beside_the_running_service_of_the_same_default_is_not_warned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transactions_csv: Path
) -> None:
    """The README's several-models flow (`./scripts/run`, then `segments assign --record
    --model NAME` from the same folder) printed on every run that a service started with
    SEGMENTS_MODEL_NAME=NAME would look elsewhere, though the running one, of this command's
    default, reads the model where it records. On the running service's server, of the same
    prefix and default, it is not said; with another default it is."""
    import app.cli.main as cli_main
    from app.training.job import train
    from tests.conftest import example_config

    config = example_config("transactions", transactions_csv, selection_bootstraps=0)
    train(config, ModelStore(tmp_path / "store"), promote=True)
    data = tmp_path / "data"
    for name in ("SEGMENTS_REDIS_URL", "REDIS_URL", "SEGMENTS_MODEL_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(data))
    monkeypatch.setenv("SEGMENTS_DEV_MODE", "true")
    monkeypatch.setenv("SEGMENTS_MODEL_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("SEGMENTS_KEY_PREFIX", "svc:")
    said: dict[str, str] = {}

    def serving(*_: object) -> None:  # while `segments serve` would answer requests
        assert (data / "redis" / "service-model-name").read_text() == "customers"
        url = os.environ.pop("SEGMENTS_REDIS_URL")  # serve's, for its workers: not a shell's
        for default in ("customers", "tiers"):
            monkeypatch.setenv("SEGMENTS_MODEL_NAME", default)
            forget = ["customers", "forget", "C1", "--model", "transactions"]
            result = CliRunner().invoke(cli, forget)
            said[default] = " ".join(result.output.split())
        monkeypatch.delenv("SEGMENTS_MODEL_NAME")
        os.environ["SEGMENTS_REDIS_URL"] = url

    monkeypatch.setattr(cli_main, "_run_uvicorn", serving)
    result = CliRunner().invoke(cli, ["serve", "--port", "8399"])
    assert result.exit_code == 0, result.output
    assert "keys under 'svc:m:transactions:'" in said["customers"], said
    assert "because SEGMENTS_MODEL_NAME" not in said["customers"], said
    assert (
        "model 'transactions' records under 'svc:m:transactions:' because SEGMENTS_MODEL_NAME "
        "is 'tiers'"
    ) in said["tiers"], said
