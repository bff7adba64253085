"""The receiver in docs/webhooks.md, run as written, verifies and dedupes real deliveries."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app.history import Recorder
from app.webhooks.dispatcher import running
from tests.history.conftest import free_port
from tests.webhooks.conftest import dispatcher, scripted_run, store_of, wait_for

pytestmark = pytest.mark.anyio
DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def receiver_code() -> str:
    text = DOC.read_text()
    found = re.search(r"<!-- receiver-example.*?-->\n```python\n(.*?)```", text, re.S)
    assert found is not None
    return found.group(1)


def test_the_receiver_is_a_dozen_lines() -> None:
    code = [line for line in receiver_code().splitlines() if line.strip()]
    assert len([line for line in code if not line.lstrip().startswith(("import", "from"))]) <= 22


async def test_the_documented_receiver_verifies_and_dedupes(
    recorder: Recorder, tmp_path: Path
) -> None:
    script = tmp_path / "receiver.py"
    script.write_text(receiver_code())
    port = free_port()
    store = store_of(recorder)
    sub = await store.create(f"http://127.0.0.1:{port}/", ["segment.entered"], None, "")
    out = (tmp_path / "out.txt").open("wb")
    env = {**os.environ, "SEGMENTS_WEBHOOK_SECRET": sub.secret, "PORT": str(port)}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=out)
    try:
        async with running(dispatcher(recorder)):
            await recorder.record_many(scripted_run(customers=30, steps=1, seed=8))

            def lines() -> list[str]:
                return (tmp_path / "out.txt").read_text().splitlines()

            await wait_for(lambda: len(lines()) >= 30)
            # a wrong secret: the receiver answers 401, delivery keeps failing
            await store.update(sub.id, {"secret": sub.secret[:-4] + "AAA="})
            await recorder.record_many(scripted_run(customers=31, steps=1, seed=9)[30:])

            async def refused() -> bool:
                return (await store.status(sub.id)).last_failure_status == 401

            await wait_for(refused)
        assert sorted(line.split()[1] for line in lines()) == [f"C{c:05d}" for c in range(30)]
        assert all(line.startswith("segment.entered C") for line in lines())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
