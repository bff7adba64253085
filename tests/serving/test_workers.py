"""``segments serve --workers 2`` for real: both workers answer, and a CLI promotion reaches both.

The service runs as a subprocess (the real CLI, two uvicorn worker processes, recording off so
no Redis is involved) on a store holding two versions of one model (k=3 and k=6, so an answer
tells which version gave it). Every request opens a new TCP connection, and the test finds out
which worker process answered it: while the connection is still open, the server side of it
(``/proc/net/tcp``) is looked up among the workers' file descriptors. So the test knows, per
answer, the worker and the version, and checks that

* both workers serve traffic before, during and after the promotion;
* while ``segments models promote`` runs in another process under load, no request fails and
  every answer is from one of the two versions, wholly (segment id and name match that
  version's model);
* each worker moves to the new version within the reload interval (plus the time to load a
  model), never goes back, and afterwards every answer is from the new version.

A second test promotes through the API and reads ``segments_model_info`` from ``/metrics``,
which carries each worker's pid in multi-process mode.

The server is stopped by its pid (SIGTERM, then SIGKILL after a timeout); the test fails if
any of its processes is left behind.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.registry.store import ModelStore
from app.security import new_key
from tests.versions import Load, Versions

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/net/tcp").is_file(), reason="needs Linux /proc"),
]

MODEL = "customers"
RELOAD_INTERVAL = 0.25
# a worker swaps on its first check after the pointer moved, then loads and compiles the
# model: allow the interval plus a generous load time on a busy machine
SWAP_BUDGET = RELOAD_INTERVAL + 3.0
SEGMENTS = Path(sys.executable).parent / "segments"


# -- processes --------------------------------------------------------------------------------


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, FileNotFoundError):
        return False
    return state != "Z"


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc: pid -> parent pid)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def server_side_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the server's end of the connection 127.0.0.1:client_port -> server_port."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return fields[9]
    return None


class Server:
    """``segments serve --workers 2`` in a subprocess; knows its worker processes."""

    def __init__(
        self, store: ModelStore, api_key_line: str, folder: Path, **extra_env: str
    ) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SEGMENTS_", "PROMETHEUS_")) and k != "REDIS_URL"
        }
        env.update(
            SEGMENTS_MODEL_STORE=str(store.root),
            SEGMENTS_MODEL_NAME=MODEL,
            SEGMENTS_API_KEYS=api_key_line,
            SEGMENTS_RECORD_ASSIGNMENTS="false",  # no Redis at all
            SEGMENTS_RELOAD_INTERVAL=str(RELOAD_INTERVAL),
            SEGMENTS_ACCESS_LOG="false",
            SEGMENTS_DATA_DIR=str(folder / "data"),
            TMPDIR=str(folder / "tmp"),  # where serve makes the workers' metrics folder
            **extra_env,
        )
        (folder / "tmp").mkdir()
        self.log = folder / "serve.log"
        command = [str(SEGMENTS), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--workers", "2", "--log-level", "warning"]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.workers: list[int] = []  # known once ready

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until two worker processes hold the listening socket and each answered /healthz
        (so both finished starting: loading the model, the keys)."""
        deadline = time.monotonic() + timeout
        healthy: set[int] = set()
        while True:
            assert self.proc.poll() is None, f"serve exited:\n{self.log.read_text()}"
            assert time.monotonic() < deadline, f"serve did not start:\n{self.log.read_text()}"
            if len(self.workers) < 2:
                self.workers = self.worker_pids()
            try:
                status, _, worker = self.call("GET", "/healthz")
            except OSError:
                status, worker = 0, None
            if status == 200 and worker is not None:
                healthy.add(worker)
            if len(self.workers) == 2 and healthy == set(self.workers):
                return
            if status != 200:
                time.sleep(0.1)

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, int | None]:
        """One request on a new connection: status, body, and the worker that answered (found
        while the connection is still open)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            assert conn.sock is not None
            return response.status, data, self.worker_of(conn.sock.getsockname()[1])
        finally:
            conn.close()

    def worker_pids(self) -> list[int]:
        """The processes under serve that have a socket open (uvicorn's workers)."""
        listening = self._listening_inodes()
        return sorted(pid for pid in descendants(self.proc.pid) if socket_inodes(pid) & listening)

    def _listening_inodes(self) -> set[str]:
        local = f"0100007F:{self.port:04X}"
        return {
            fields[9]
            for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
            if (fields := line.split())[1] == local and fields[3] == "0A"  # LISTEN
        }

    def worker_of(self, client_port: int) -> int | None:
        """Which worker holds the server end of this (still open) connection."""
        inode = server_side_inode(self.port, client_port)
        if inode is None:
            return None
        for pid in self.workers:
            if inode in socket_inodes(pid):
                return pid
        return None

    def stop(self, timeout: float = 20.0) -> list[int]:
        """SIGTERM, then SIGKILL after ``timeout``; returns the pids that had to be killed."""
        everyone = descendants(self.proc.pid)
        killed = []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                killed.append(self.proc.pid)
        deadline = time.monotonic() + timeout
        for pid in sorted(everyone):
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        return killed


@pytest.fixture
def server(versions: Versions, tmp_path: Path) -> Iterator[tuple[Server, ModelStore, str]]:
    store = ModelStore(tmp_path / "store")
    shutil.copytree(versions.store.root, store.root)
    assert store.promoted(MODEL) == versions.old
    key, line = new_key(["assign", "read", "admin"])
    running = Server(store, line, tmp_path)
    metrics = tmp_path / "tmp"
    try:
        running.wait_ready()
        [folder] = metrics.glob("segments-metrics-*")  # made by serve
        # the parent serves nothing: no live gauge of its own (it would be a stale minimum)
        assert not list(folder.glob(f"gauge_live*_{running.proc.pid}.db"))
        assert list(folder.glob(f"gauge_live*_{running.workers[0]}.db"))
        yield running, store, key
    finally:
        killed = running.stop()
        log = running.log.read_text(errors="replace")
        assert not killed, f"processes {killed} ignored SIGTERM and were killed:\n{log}"
        assert running.proc.returncode is not None
        assert not list(metrics.glob("segments-metrics-*")), "serve left its metrics folder"


# -- clients ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    row: int
    started: float
    ended: float
    status: int | None  # None: the request raised
    body: dict[str, Any]
    worker: int | None
    error: str | None = None

    @property
    def version(self) -> str | None:
        return self.body.get("model_version")


def ask(server: Server, key: str, row: int, rows: list[dict[str, Any]]) -> Answer:
    """One POST /v1/assign on a new connection, and which worker answered it."""
    body = orjson.dumps({"customer_id": f"w-{row}", "features": rows[row]})
    headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
    started = time.monotonic()
    try:
        status, data, worker = server.call("POST", "/v1/assign", body, headers)
        return Answer(row, started, time.monotonic(), status, orjson.loads(data), worker)
    except Exception as exc:  # counted by the test, never lost
        return Answer(row, started, time.monotonic(), None, {}, None, repr(exc))


def clients(server: Server, key: str, rows: list[dict[str, Any]], threads: int) -> Load[Answer]:
    """Client threads sending ``/v1/assign``, each request on a new connection."""
    return Load(lambda: nullcontext(partial(ask, server, key, rows=rows)), len(rows), threads)


def check_answers(answers: list[Answer], versions: Versions) -> None:
    """No failure; each answer from one of the two versions, wholly, by a known worker."""
    failed = [a for a in answers if a.status != 200]
    assert not failed, f"{len(failed)} of {len(answers)} requests failed, e.g. {failed[:3]}"
    for a in answers:
        assert a.version in (versions.old, versions.new), a
        assert a.body["segment_id"] == versions.segment[a.version][a.row], a
        assert a.body["segment_name"] == versions.names[a.version][a.body["segment_id"]], a
        assert a.body["customer_id"] == f"w-{a.row}"
        assert a.body["recorded"] is False  # recording is off
        assert a.worker is not None, f"no worker holds the server end of {a}"


def both_workers(answers: list[Answer]) -> bool:
    """Both workers answered some of these (the kernel hands each new connection to one of
    them; nothing makes it alternate, so the test keeps sending until both took some)."""
    return len({a.worker for a in answers} - {None}) == 2


def per_worker(answers: list[Answer]) -> dict[int, list[Answer]]:
    out: dict[int, list[Answer]] = {}
    for a in sorted(answers, key=lambda a: a.started):
        assert a.worker is not None
        out.setdefault(a.worker, []).append(a)
    return out


def steady(running: Server, key: str, versions: Versions, version: str) -> None:
    """Fresh connections until both workers answered: every answer right and from ``version``."""
    with clients(running, key, versions.rows, threads=4) as load:
        load.wait_for(lambda answers: len(answers) >= 200 and both_workers(answers))
    answers = load.snapshot()
    check_answers(answers, versions)
    assert {a.version for a in answers} == {version}
    assert set(per_worker(answers)) == set(running.workers), "one worker got no traffic"


def test_a_cli_promotion_reaches_both_workers_without_a_failed_request(
    versions: Versions, server: tuple[Server, ModelStore, str]
) -> None:
    running, store, key = server
    workers = running.workers
    assert len(workers) == 2, workers

    # before: many fresh connections, spread over both workers, all from the old version
    steady(running, key, versions, versions.old)

    # during: the CLI promotes from another process while clients keep sending
    command = [str(SEGMENTS), "models", "promote", versions.new]
    command += ["--store", str(store.root), "--model", MODEL]
    with clients(running, key, versions.rows, threads=4) as load:
        load.wait_for(lambda answers: len(answers) >= 50)
        cli_started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        promoted = time.monotonic()
        assert done.returncode == 0, done.stderr
        assert store.promoted(MODEL) == versions.new

        def settled(answers: list[Answer]) -> bool:
            late = [a for a in answers if a.started > promoted + SWAP_BUDGET]
            return len(late) >= 100 and both_workers(late)

        load.wait_for(settled)
    during = load.snapshot()
    check_answers(during, versions)
    assert all(a.version == versions.old for a in during if a.ended < cli_started)
    by_worker = per_worker(during)
    assert set(by_worker) == set(workers)
    for pid, answers in by_worker.items():
        seen = [a.version for a in answers]
        first_new = seen.index(versions.new) if versions.new in seen else None
        assert first_new is not None, f"worker {pid} never served the new version"
        # each worker swapped once, in time, and never went back (answers by start time; a
        # request that started just before its worker's swap may end after a newer one)
        swap = answers[first_new]
        assert swap.started > cli_started, f"worker {pid} answered from the new version early"
        assert all(
            a.version == versions.new for a in answers[first_new:] if a.started > swap.ended
        ), f"worker {pid} went back to the old version"
        assert swap.ended - promoted < SWAP_BUDGET, f"worker {pid} swapped late"
    # requests were served while the CLI ran (it takes a second or more to start and verify)
    assert any(a.version == versions.old for a in during if a.started > cli_started)
    late = [a for a in during if a.started > promoted + SWAP_BUDGET]
    assert {a.version for a in late} == {versions.new}

    # after: fresh connections again, every answer from the new version, on both workers
    steady(running, key, versions, versions.new)
    assert running.worker_pids() == workers  # no worker died or was replaced


def get(server: Server, key: str, path: str, method: str = "GET") -> tuple[int, bytes]:
    status, body, _ = server.call(method, path, headers={"authorization": f"Bearer {key}"})
    return status, body


def served_versions(metrics: str, by: str) -> dict[str, set[str]]:
    """The label ``by`` (``pid``, ``model``) -> the versions ``segments_model_info`` reports
    as served (value 1) in a ``/metrics`` text."""
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics):
        if family.name == "segments_model_info":
            for sample in family.samples:
                if sample.value == 1:
                    out.setdefault(sample.labels[by], set()).add(sample.labels["version"])
    return out


def model_info(server: Server, key: str) -> dict[str, set[str]]:
    """Worker pid -> the versions ``segments_model_info`` reports (value 1) for it."""
    status, body = get(server, key, "/metrics")
    assert status == 200
    return served_versions(body.decode(), "pid")


def test_metrics_name_only_the_version_each_worker_serves(
    versions: Versions, server: tuple[Server, ModelStore, str]
) -> None:
    running, _, key = server
    pids = {str(p) for p in running.workers}
    assert model_info(running, key) == {pid: {versions.old} for pid in pids}
    status, body = get(running, key, f"/v1/models/{versions.new}/promote", method="POST")
    assert status == 200, body
    # both workers serve the new version: the one that took the call, and the other one
    # after its next check
    deadline = time.monotonic() + 30
    while True:
        answers = [ask(running, key, i, versions.rows) for i in range(40)]
        check_answers(answers, versions)
        served_by = {str(a.worker) for a in answers}
        if {a.version for a in answers} == {versions.new} and served_by == pids:
            break
        assert time.monotonic() < deadline, "the workers did not all swap"
    reported = model_info(running, key)
    assert set(reported) == pids
    assert all(versions.new in found for found in reported.values()), reported
    # (MODEL_INFO.clear() does nothing in prometheus_client's multi-process mode: the old
    # version's sample stayed at 1 until set_model_version set it to 0)
    assert reported == {pid: {versions.new} for pid in pids}


def keys_file_ok(server: Server) -> float:
    """``segments_api_keys_file_ok`` as /metrics aggregates it over the live workers (min)."""
    status, body, _ = server.call("GET", "/metrics")
    assert status == 200
    for family in text_string_to_metric_families(body.decode()):
        if family.name == "segments_api_keys_file_ok":
            [sample] = family.samples
            return float(sample.value)
    raise AssertionError("segments_api_keys_file_ok is not exported")


def test_a_broken_keys_file_is_refused_and_reported_by_both_workers(
    trained: Any, tmp_path: Path
) -> None:
    store, _ = trained
    keys = {name: new_key(["read"], label=name) for name in ("keep", "revoke")}
    path = tmp_path / "keys"
    path.write_text(f"{keys['keep'][1]}\n{keys['revoke'][1]}\n")
    _, inline = new_key(["admin"])
    running = Server(store, inline, tmp_path, SEGMENTS_API_KEYS_FILE=str(path))
    try:
        running.wait_ready()
        assert keys_file_ok(running) == 1

        def statuses(name: str) -> dict[int | None, int]:
            """Worker -> the status its last answer to this key's request had."""
            seen: dict[int | None, int] = {}
            while set(seen) != set(running.workers):
                status, _, worker = running.call(
                    "GET", "/v1/segments", headers={"x-api-key": keys[name][0]}
                )
                seen[worker] = status
            return seen

        path.write_text(f"{keys['keep'][1]}\noops\n")  # the revoked key's line now malformed
        deadline = time.monotonic() + 30
        while keys_file_ok(running) != 0 or set(statuses("revoke").values()) != {401}:
            assert time.monotonic() < deadline, running.log.read_text()
            time.sleep(RELOAD_INTERVAL)
        assert set(statuses("keep").values()) == {200}
        # 0 while any worker has a problem: each reports it, the minimum is what shows
        path.write_text(f"{keys['keep'][1]}\n")
        while keys_file_ok(running) != 1:
            assert time.monotonic() < deadline, running.log.read_text()
            time.sleep(RELOAD_INTERVAL)
        assert set(statuses("revoke").values()) == {401}
    finally:
        assert not running.stop(), running.log.read_text()
    log = running.log.read_text()
    assert "Traceback" not in log
    assert log.count("line 2") == 2  # once per worker, not once per check
