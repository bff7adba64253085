"""A client that hangs up before its body arrives is not a server error: no 500 counted (it
set off 5xx alerts), no traceback in the log; it is counted as 499 (client closed)."""

from __future__ import annotations

import re
import socket
import time
import uuid
from pathlib import Path

import httpx

from app.registry.store import ModelStore
from app.settings import Settings
from app.training.job import TrainResult
from tests.serving.test_hot_swap import serving


def _count(metrics: str, route: str, status: str) -> float:
    pattern = (
        r'segments_http_requests_total\{[^}]*route="'
        + re.escape(route)
        + r'"[^}]*status="'
        + status
        + r'"[^}]*\} ([0-9.e+]+)'
    )
    return sum(float(v) for v in re.findall(pattern, metrics))


def test_a_client_gone_mid_body_is_counted_as_499_not_500(
    trained: tuple[ModelStore, TrainResult], tmp_path: Path
) -> None:
    settings = Settings(
        model_store=trained[0].root,
        dev_mode=True,
        access_log=False,
        key_prefix=f"gone{uuid.uuid4().hex[:8]}:",
        data_dir=tmp_path,
    )
    routes = ("/v1/assign", "/v1/events")
    with serving(settings) as url, httpx.Client(base_url=url, timeout=10) as api:
        before = api.get("/metrics").text
        port = int(url.rsplit(":", 1)[1])
        for route in routes:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(
                    f"POST {route} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                    'content-length: 100\r\n\r\n{"cu'.encode()
                )
        deadline = time.monotonic() + 10
        while True:
            after = api.get("/metrics").text
            gone = [_count(after, r, "499") - _count(before, r, "499") for r in routes]
            if gone == [1, 1] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert gone == [1, 1], after
        for route in routes:
            assert _count(after, route, "500") == _count(before, route, "500"), route
