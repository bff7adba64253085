"""The one-time migration of the first key layout, and the history commands of the CLI."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import orjson
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from typer.testing import CliRunner

from app.cli.main import app as cli
from app.history import HistoryConfig, Member, Record, Recorder
from app.history.migrate import migrate_keys
from app.history.records import now_ms
from tests.history.conftest import RedisProcess, delete_prefix, make_config, open_recorder

pytestmark = pytest.mark.anyio


async def write_first_layout(client: Any, prefix: str, t0: int) -> None:
    """Keys exactly as the first layout's script wrote them: two customers in seg-002 (one
    after a migration from seg-001) and one whose history list expired."""
    tag = f"{prefix}{{0}}:"
    rid = "01a2087ecb1476fd8653e60d22e229e1"
    entries = {
        "C1": [("seg-001", "seg-002", 2, t0 + 5), (None, "seg-001", 1, t0)],
        "C2": [(None, "seg-002", 1, t0 + 1)],
    }
    for customer, history in entries.items():
        (source, target, seq, at), *_ = history
        member = f"{at:013d}:{customer}"
        await client.hset(
            f"{tag}c:{customer}:cur",
            mapping={"segment": target, "name": "Loyal", "version": "v1", "assigned_at": at + 9,
                     "since": at, "member": member, "seq": seq, "rid": rid},
        )  # fmt: skip
        await client.zadd(f"{tag}m:{target}", {member: 0})
        for source, target, seq, at in reversed(history):
            entry = {"from": source, "from_name": None, "seq": seq, "to": target,
                     "to_name": "Loyal", "version": "v1", "at": at, "rid": rid}  # fmt: skip
            await client.lpush(f"{tag}c:{customer}:hist", orjson.dumps(entry))
    await client.hset(
        f"{tag}c:C3:cur",
        mapping={"segment": "seg-003", "version": "v0", "assigned_at": t0, "since": t0 - 7,
                 "member": f"{t0 - 7:013d}:C3", "seq": 4, "rid": rid},
    )  # fmt: skip
    await client.zadd(f"{tag}m:seg-003", {f"{t0 - 7:013d}:C3": 0})


async def test_the_first_layout_migrates_to_the_same_answers(config: HistoryConfig) -> None:
    t0 = now_ms() - 60_000
    async with open_recorder(config) as recorder:
        await write_first_layout(recorder.client, config.key_prefix, t0)

        report = await migrate_keys(recorder)
        again = await migrate_keys(recorder)

        assert (report.customers, report.members, report.segments) == (3, 3, 2)
        assert (again.customers, again.members) == (0, 0)
        state = await recorder.current("C1")
        assert state is not None
        assert (state.segment_id, state.model_version, state.since, state.migrations) == (
            "seg-002", "v1", t0 + 5, 2,
        )  # fmt: skip
        assert state.assigned_at == t0 + 14
        history = await recorder.history("C1")
        assert [(m.from_segment, m.to_segment, m.at) for m in history] == [
            ("seg-001", "seg-002", t0 + 5),
            (None, "seg-001", t0),
        ]
        members = (await recorder.members("seg-002")).members
        assert members == [Member("C2", t0 + 1), Member("C1", t0 + 5)]  # join order kept
        assert await recorder.member_count("seg-002") == 2
        old = await recorder.current("C3")
        assert old is not None and (old.since, old.migrations, old.model_version) == (
            t0 - 7, 4, "v0",
        )  # fmt: skip
        # the replay guard kept its record id: an older record changes nothing
        stale = Record("C1", "seg-009", "v1", t0, "01a2087ecb1476fd8653e60d22e229e0")
        assert (await recorder.record(stale)).duplicate
        moved = await recorder.record(Record.create("C1", "seg-003", "v2"))
        assert moved.changed and moved.previous_segment == "seg-002"
        assert [m.customer_id for m in (await recorder.members("seg-003")).members] == [
            "C3",
            "C1",
        ]
        names = [k async for k in recorder.client.scan_iter(match=recorder.keys.pattern())]
        assert not [k for k in names if k.endswith((":cur", ":hist"))]


class FailingClient:
    """The recorder's client, failing as Redis would (a dropped connection) at its
    ``fail_at``-th command; scans pass through."""

    def __init__(self, client: Any, fail_at: int) -> None:
        self.client, self.fail_at, self.calls = client, fail_at, 0

    def scan_iter(self, *args: Any, **kwargs: Any) -> Any:
        return self.client.scan_iter(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self.fail_at:
                raise RedisConnectionError(f"connection lost at command {self.calls} ({name})")
            return await method(*args, **kwargs)

        return call


async def answers(config: HistoryConfig) -> tuple[Any, ...]:
    """What readers see after a migration, and which keys hold it (a new recorder each
    time: a recorder caches the version indexes it has read, which the test reuses)."""
    assert config.redis_url is not None
    recorder = Recorder.connect(config.redis_url, config)
    try:
        return await read_answers(recorder)
    finally:
        await recorder.aclose()


async def read_answers(recorder: Recorder) -> tuple[Any, ...]:
    states = [await recorder.current(c) for c in ("C1", "C2", "C3")]
    histories = [await recorder.history(c) for c in ("C1", "C2", "C3")]
    segments = ("seg-001", "seg-002", "seg-003")
    members = [(await recorder.members(s)).members for s in segments]
    counts = [await recorder.member_count(s) for s in segments]
    # a set: SCAN may return a key twice (CI, 2026-12-06: '{0}:reg' twice, "cut at command 10")
    names = sorted({k async for k in recorder.client.scan_iter(match=recorder.keys.pattern())})
    return states, histories, members, counts, names


async def test_a_migration_cut_short_anywhere_finishes_on_a_second_run(
    config: HistoryConfig,
) -> None:
    """Redis failing at any command of the migration loses nothing: the old membership set
    was deleted before its members were rewritten (and its join numbers were gone for the
    customers a second run rewrote)."""
    t0 = now_ms() - 60_000
    async with open_recorder(config) as recorder:
        await write_first_layout(recorder.client, config.key_prefix, t0)
        await migrate_keys(recorder)
        expected = await answers(config)
        assert not [k for k in expected[-1] if ":mig:" in k]  # nothing left aside
        await delete_prefix(recorder)

        fail_at, runs = 1, 0
        while True:
            await write_first_layout(recorder.client, config.key_prefix, t0)
            failing = FailingClient(recorder.client, fail_at)
            cut = cast(Recorder, SimpleNamespace(client=failing, keys=recorder.keys))
            try:
                await migrate_keys(cut)
            except RedisConnectionError:
                runs += 1
            else:
                break  # fail_at is past the last command: every point was cut
            await migrate_keys(recorder)
            assert await answers(config) == expected, f"cut at command {fail_at}"
            await delete_prefix(recorder)
            fail_at += 1
        assert runs > 20  # every command of the migration was a cut point


def test_customers_forget_from_the_command_line(
    redis_server: RedisProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"cli{uuid.uuid4().hex[:8]}:"
    monkeypatch.setenv("SEGMENTS_REDIS_URL", redis_server.url)
    monkeypatch.setenv("SEGMENTS_KEY_PREFIX", prefix)
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(tmp_path))
    config = make_config(redis_server.url, tmp_path, key_prefix=prefix)
    asyncio.run(record_and_keep(config))
    hostile = "x\x1b[2J\rnobody"  # an id that would clear the terminal, printed raw
    result = CliRunner().invoke(cli, ["customers", "forget", "C1", "nobody", hostile])

    assert result.exit_code == 1, result.output  # one of them was unknown
    assert "C1: forgotten" in result.output and "nobody: unknown" in result.output
    assert "\x1b" not in result.output and "\r" not in result.output
    # shown as its escapes, and refused as the API refuses it (it could never be recorded)
    assert "'x\\x1b[2J\\rnobody': not a customer id (contains control characters" in result.output
    assert f"Redis at {redis_server.url}" in result.output
    assert asyncio.run(current_ids(config)) == ["C2"]


async def record_and_keep(config: HistoryConfig) -> None:
    assert config.redis_url is not None
    recorder = Recorder.connect(config.redis_url, config)
    try:
        await recorder.record(Record.create("C1", "A", "v1", profile={"x": 1.0}))
        await recorder.record(Record.create("C2", "A", "v1"))
    finally:
        await recorder.aclose()


async def current_ids(config: HistoryConfig) -> list[str]:
    async with open_recorder(config) as recorder:  # (deletes the prefix on exit)
        return [c for c in ("C1", "C2") if await recorder.current(c) is not None]


def test_migrate_keys_without_redis_is_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Redis that does not answer (nothing listens on the port) was redis-py's traceback."""
    import socket

    with socket.socket() as probe:  # a free port, closed again: connections are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("SEGMENTS_REDIS_URL", f"redis://127.0.0.1:{port}/0")
    monkeypatch.setenv("SEGMENTS_KEY_PREFIX", f"cli{uuid.uuid4().hex[:8]}:")
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["history", "migrate-keys"])

    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    text = " ".join(result.output.split())
    assert text.count("error:") == 1, text
    assert "error: Redis failed while migrating the keys (" in text
    assert "run it again once Redis answers" in text
