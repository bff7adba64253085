"""Concurrent recordings share pipelines, and each still gets its own, ordered outcome."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from app.history import HistoryConfig, Record
from app.history.recorder import Recorder, pack
from tests.history.conftest import delete_prefix
from tests.history.test_outage import service_for

pytestmark = pytest.mark.anyio


async def test_concurrent_records_are_coalesced_in_arrival_order(
    config: HistoryConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipelines: list[int] = []
    original = Recorder.exchange

    async def counted(self: Recorder, recs: list[Record], ids: list[str], *args: Any) -> object:
        pipelines.append(len(recs))
        return await original(self, recs, ids, *args)

    monkeypatch.setattr(Recorder, "exchange", counted)
    async with service_for(config, replayer=False) as service:
        try:
            # 60 customers at once, and one customer moving through four segments in order
            others = [Record.create(f"c{i}", "seg-001", "v1") for i in range(60)]
            journey = [Record.create("walker", f"seg-00{s}", "v1") for s in (1, 2, 2, 3)]
            outcomes = await asyncio.gather(*(service.record(r) for r in [*others, *journey]))
            assert all(o.recorded for o in outcomes)
            assert all(o.changed and o.previous_segment is None for o in outcomes[:60])
            walked = [(o.previous_segment, o.changed) for o in outcomes[60:]]
            assert walked == [
                (None, True),
                ("seg-001", True),
                ("seg-002", False),
                ("seg-002", True),
            ]
            assert sum(pipelines) == 64
            assert len(pipelines) < 64 / 4, pipelines  # shared round trips, not one each
            history = await service.recorder.history("walker", limit=10)
            assert [(m.from_segment, m.to_segment) for m in history] == [
                ("seg-002", "seg-003"),
                ("seg-001", "seg-002"),
                (None, "seg-001"),
            ]
            # alone, a record goes at once, in a pipeline of its own
            pipelines.clear()
            lone = await service.record(Record.create("lone", "seg-001", "v1"))
            assert lone.changed and pipelines == [1]
        finally:
            await delete_prefix(service.recorder)


async def test_a_flushed_script_cache_is_reloaded(config: HistoryConfig) -> None:
    """After SCRIPT FLUSH (a restarted server) the next pipeline reloads and still counts once."""
    assert config.redis_url is not None
    recorder = Recorder.connect(config.redis_url, config)
    try:
        first = await recorder.record_many([Record.create("x", "seg-001", "v1")])
        await recorder.client.script_flush()
        again = await recorder.record_many([Record.create("x", "seg-002", "v1")])
        assert first[0].changed and again[0].changed
        assert again[0].previous_segment == "seg-001"
        assert len(await recorder.history("x", limit=10)) == 2
    finally:
        await delete_prefix(recorder)
        await recorder.aclose()


def test_pack_is_resp() -> None:
    assert pack([[b"SET", "k\u00e9", 12], ["PING"]]) == (
        b"*3\r\n$3\r\nSET\r\n$3\r\nk\xc3\xa9\r\n$2\r\n12\r\n*1\r\n$4\r\nPING\r\n"
    )
