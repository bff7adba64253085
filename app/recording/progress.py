"""The progress bar of a recording run: rows done of the file's rows, and rows per second."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

from app.training.data import PARQUET_SUFFIXES


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        # Rich's estimate needs two updates within its window: a file of one chunk has one,
        # and showed "0 rows/s" at its end; the average so far stands in
        speed = task.finished_speed or task.speed
        if speed is None and task.elapsed:
            speed = task.completed / task.elapsed
        return Text(f"{speed:,.0f} rows/s" if speed else "- rows/s")


def count_rows(path: Path) -> int | None:
    """Data rows of a file, cheaply: Parquet metadata, or the lines of a CSV less its header
    (a quoted field spanning lines makes it an estimate: it only sizes the bar)."""
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return int(pq.ParquetFile(path).metadata.num_rows)
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            lines += block.count(b"\n")
            last = block[-1:]
    return max(lines + (last != b"\n") - 1, 0)


class RunProgress:
    """``with RunProgress(console, target, total) as progress: progress.advance(rows, done)``."""

    def __init__(self, console: Console, target: str, total: int | None) -> None:
        self.target = target
        self._bar = Progress(
            TextColumn("recording"),
            BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} rows"),
            _RateColumn(),
            TimeElapsedColumn(),
            console=console,
            refresh_per_second=2,  # a throughput job: its bar need not cost CPU
        )
        self._task = self._bar.add_task("recording", total=total)

    def __enter__(self) -> RunProgress:
        self._bar.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bar.stop()

    def advance(self, rows: int) -> None:
        self._bar.update(self._task, advance=rows)
