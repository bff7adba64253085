"""Slow clients against ``segments serve`` for real (a subprocess on a free port).

With a low ``SEGMENTS_MAX_CONNECTIONS``, idle connections that sent half a request cannot make
a normal request hang: it is answered 503 at once (uvicorn's ``limit_concurrency``). Each
half-sent request (half a header, a header and half a body, nothing at all) is closed by the
server after ``SEGMENTS_REQUEST_TIMEOUT``, and an idle kept-alive connection after
``SEGMENTS_KEEP_ALIVE_TIMEOUT``; then normal requests get through again.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.registry.store import ModelStore
from app.training.job import TrainResult
from tests.history.conftest import free_port

SEGMENTS = Path(sys.executable).parent / "segments"
MAX_CONNECTIONS = 4
REQUEST_TIMEOUT = 1.0
PATIENCE = 30.0  # generous bound on waits for the server: the figures above are what count


@pytest.fixture
def server(trained: tuple[ModelStore, TrainResult], tmp_path: Path) -> Iterator[int]:
    store, _ = trained
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SEGMENTS_", "PROMETHEUS_")) and k != "REDIS_URL"
    }
    env.update(
        SEGMENTS_MODEL_STORE=str(store.root),
        SEGMENTS_DEV_MODE="true",
        SEGMENTS_RECORD_ASSIGNMENTS="false",
        SEGMENTS_DATA_DIR=str(tmp_path / "data"),
        SEGMENTS_MAX_CONNECTIONS=str(MAX_CONNECTIONS),
        SEGMENTS_REQUEST_TIMEOUT=str(REQUEST_TIMEOUT),
        SEGMENTS_KEEP_ALIVE_TIMEOUT="1",
    )
    log = tmp_path / "serve.log"
    command = [str(SEGMENTS), "serve", "--port", str(port), "--log-level", "warning"]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while get(port, "/healthz")[0] != 200:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            pytest.fail(f"serve ignored SIGTERM:\n{log.read_text()}")


def get(port: int, path: str) -> tuple[int, bytes]:
    """One GET on a new connection; (0, b"") when the server cannot be reached."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PATIENCE)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    except ConnectionRefusedError:
        return 0, b""
    finally:
        conn.close()


def half_sent(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
    if data:
        sock.sendall(data)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server closed the connection (EOF or reset); False if it stayed open
    for ``PATIENCE`` seconds (the socket's timeout)."""
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_half_sent_requests_are_bounded_and_closed_after_the_timeout(server: int) -> None:
    port = server
    partial = [
        b"",  # connected, nothing sent
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n",  # half a header block
        b"GET /healthz HTTP/1.1\r\nHo",  # half a header line
        b"POST /v1/assign HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"customer_id"',  # the header, half the body
        b"GET /healthz HTTP/1.1\r\n",
    ]
    assert len(partial) == MAX_CONNECTIONS + 1
    sockets = [half_sent(port, data) for data in partial]
    try:
        # over the limit: a normal request is answered at once, 503, rather than hanging
        status, body = get(port, "/healthz")
        assert status == 503, body
        assert body == b"Service Unavailable"
        # every half-sent request is closed by the server (never on the old code)
        assert all(closed_by_server(sock) for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()
    # the slots are free again
    deadline = time.monotonic() + PATIENCE
    while (status := get(port, "/healthz")[0]) == 503 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status == 200


def test_an_idle_kept_alive_connection_is_closed_and_a_whole_request_is_answered(
    server: int,
) -> None:
    sock = half_sent(port := server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    with sock:
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            answer += sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200")
        assert closed_by_server(sock)  # after SEGMENTS_KEEP_ALIVE_TIMEOUT of silence
    assert get(port, "/healthz")[0] == 200


def test_a_half_sent_second_request_on_a_kept_alive_connection_is_closed(server: int) -> None:
    sock = half_sent(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    with sock:
        answer = b""
        while not answer.endswith(b"}"):
            answer += sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")  # stops the keep-alive timer
        assert closed_by_server(sock)  # the request deadline closes it
