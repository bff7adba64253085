"""The embedded Redis server: starts in an empty folder, persists, stops, leaves no orphans."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from app.history import EmbeddedRedis, EmbeddedRedisError, HistoryConfig, Record, open_history
from app.registry.store import ModelStore
from tests.history.conftest import BINARIES
from tests.serving.test_workers import SEGMENTS
from tests.versions import Versions

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


def test_a_supervised_server_stopped_on_purpose_stays_stopped(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    server.start()
    server.supervise(interval=0.05)
    pid = server.pid
    assert pid is not None
    server.stop()
    time.sleep(0.3)  # (six of the supervisor's intervals: it would have started one)
    assert wait_dead(pid, 1) and server.pid is None
    assert not (tmp_path / "embedded-redis.pid").exists()


def test_serve_starts_its_embedded_server_again_when_it_dies(
    versions: Versions, tmp_path: Path
) -> None:
    """``segments serve`` without a Redis URL: its embedded server killed (the OOM killer, a
    stray ``kill``), the service starts it again on its data and replays what it spooled
    meanwhile. It stayed dead: every record went to the spool until the spool's bound and
    /readyz said 'spooled to disk until it returns' for good."""
    store = ModelStore(tmp_path / "store")
    shutil.copytree(versions.store.root, store.root)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    data = tmp_path / "data"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SEGMENTS_", "PROMETHEUS_")) and k != "REDIS_URL"
    }
    env |= {
        "SEGMENTS_MODEL_STORE": str(store.root),
        "SEGMENTS_DEV_MODE": "true",
        "SEGMENTS_DATA_DIR": str(data),
        "SEGMENTS_ACCESS_LOG": "false",
        "SEGMENTS_WEBHOOK_DISPATCHER": "false",
    }
    log = tmp_path / "serve.log"
    command = [str(SEGMENTS), "serve", "--port", str(port), "--log-level", "warning"]
    with log.open("wb") as out:
        serve = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def redis_check(client: httpx.Client) -> dict[str, Any]:
        return dict(client.get(f"{base}/readyz").json()["checks"]["redis"])

    def wait_for(what: Callable[[], bool], seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not what():
            assert serve.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)

    def up(client: httpx.Client) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return bool(redis_check(client)["mode"] == "direct")
        return False

    try:
        with httpx.Client(timeout=10) as client:
            wait_for(lambda: up(client))
            first = client.post(
                f"{base}/v1/assign", json={"customer_id": "a", "features": versions.rows[0]}
            )
            assert first.json()["recorded"] is True, first.text
            pid_file = data / "redis" / "embedded-redis.pid"
            killed = int(pid_file.read_text())
            os.kill(killed, signal.SIGKILL)
            assert wait_dead(killed)
            spooled = client.post(
                f"{base}/v1/assign", json={"customer_id": "b", "features": versions.rows[1]}
            )
            assert spooled.status_code == 200 and spooled.json()["recorded"] is False
            # started again, on its data: the spooled record is replayed, the first one kept
            wait_for(lambda: up(client) and redis_check(client)["spool_depth"] == 0)
            restarted = int(pid_file.read_text())
            assert restarted != killed and alive(restarted)
            for customer_id in ("a", "b"):
                state = client.get(f"{base}/v1/customers/{customer_id}")
                assert state.status_code == 200, state.text
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)
    assert wait_dead(restarted), "the restarted server outlived serve"
