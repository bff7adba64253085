"""The recording run's progress bar: its rate is a real figure even for a file of one chunk."""

from __future__ import annotations

import io
import time

from rich.console import Console

from app.recording.progress import RunProgress


def test_the_rate_of_a_run_of_one_chunk_is_not_zero() -> None:
    """An audit's 3,000-row file (one chunk, one update) showed "0 rows/s" at its end."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with RunProgress(console, "redis", 3_000) as progress:
        time.sleep(0.05)
        progress.advance(3_000)
    shown = out.getvalue()
    assert "3,000/3,000 rows" in shown
    assert " 0 rows/s" not in shown
    last = shown.split(" rows/s")[-2].split()[-1]  # the final frame's rate
    assert int(last.replace(",", "")) > 0, shown
