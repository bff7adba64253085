"""The embedded Redis server: starts in an empty folder, persists, stops, leaves no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from app.history import EmbeddedRedis, EmbeddedRedisError, HistoryConfig, Record, open_history
from tests.history.conftest import BINARIES

OWNER = """
import sys, time
from pathlib import Path
from app.history.embedded import EmbeddedRedis
server = EmbeddedRedis(Path(sys.argv[1]))
server.start()
print(server.pid, server._watchdog.pid, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return (
        Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z" if Path("/proc").is_dir() else True
    )


def wait_dead(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def start_owner(data_dir: Path) -> tuple[subprocess.Popen[str], int, int]:
    """Another process that starts an embedded server; returns it, the server and watchdog pids."""
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(data_dir)], stdout=subprocess.PIPE, text=True
    )
    assert owner.stdout is not None
    server_pid, watchdog_pid = map(int, owner.stdout.readline().split())
    owner.stdout.close()
    return owner, server_pid, watchdog_pid


@pytest.mark.parametrize("binary", sorted(BINARIES))
def test_it_starts_in_an_empty_folder_and_keeps_data_across_a_restart(
    tmp_path: Path, binary: str
) -> None:
    data_dir = tmp_path / "fresh" / "redis"
    with EmbeddedRedis(data_dir, binary=BINARIES[binary]) as server:
        assert server.url == f"unix://{data_dir / 'redis.sock'}"
        with redis.Redis.from_url(server.url) as client:
            client.set("survives", "yes")
            assert client.config_get("appendonly") == {"appendonly": "yes"}
        first_pid = server.pid
    assert first_pid is not None and wait_dead(first_pid, 1)
    assert not (data_dir / "embedded-redis.pid").exists()

    with (
        EmbeddedRedis(data_dir, binary=BINARIES[binary]) as server,
        redis.Redis.from_url(server.url) as client,
    ):
        assert client.get("survives") == b"yes"


def test_a_long_data_path_gets_a_short_socket_elsewhere(tmp_path: Path) -> None:
    data_dir = tmp_path / ("d" * 120)
    with EmbeddedRedis(data_dir) as server, redis.Redis.from_url(server.url) as client:
        assert client.ping()
        assert not server.url.startswith(f"unix://{data_dir}")
        socket_dir = Path(server.url.removeprefix("unix://")).parent
    assert not socket_dir.exists()


def test_one_owner_per_data_folder(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path), pytest.raises(EmbeddedRedisError, match="another live process"):
        EmbeddedRedis(tmp_path).start()


def test_a_server_that_cannot_start_is_reported_and_releases_the_folder(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedRedisError, match="exited with code"):
        EmbeddedRedis(tmp_path, binary=Path("/bin/false")).start()
    with EmbeddedRedis(tmp_path) as server, redis.Redis.from_url(server.url) as client:
        assert client.ping()


def test_the_server_stops_when_its_owner_dies(tmp_path: Path) -> None:
    owner, server_pid, watchdog_pid = start_owner(tmp_path)
    assert alive(server_pid)

    owner.kill()
    owner.wait()

    assert wait_dead(server_pid), "the embedded server outlived its owner"
    assert wait_dead(watchdog_pid)


def test_a_leftover_server_is_stopped_by_the_next_start(tmp_path: Path) -> None:
    owner, server_pid, watchdog_pid = start_owner(tmp_path)
    os.kill(watchdog_pid, signal.SIGKILL)  # no watchdog either: the server is orphaned
    assert wait_dead(watchdog_pid)
    owner.kill()
    owner.wait()
    assert alive(server_pid)

    with EmbeddedRedis(tmp_path) as server:
        assert not alive(server_pid)
        assert server.pid != server_pid


@pytest.mark.anyio
async def test_open_history_without_a_url_records_on_an_embedded_server(tmp_path: Path) -> None:
    config = HistoryConfig(redis_url=None, data_dir=tmp_path / "redis", spool_dir=tmp_path / "q")
    async with open_history(config) as service:
        outcome = await service.record(Record.create("C1", "seg-001", "v1"))
        pid = int((tmp_path / "redis" / "embedded-redis.pid").read_text())
    assert outcome.recorded and outcome.changed
    assert wait_dead(pid, 1)

    async with open_history(config) as service:
        state = await service.recorder.current("C1")
    assert state is not None and state.segment_id == "seg-001"
