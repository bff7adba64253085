"""The run file of a recording run: what it records, and how far it got.

``<data_dir>/runs/<run id>.json`` is rewritten (atomically) after every chunk Redis
acknowledged, so a run killed at any point can be resumed after its last whole chunk:
re-sending a chunk Redis had partly applied is harmless, its record ids are the same.
Resuming checks the input is the same file (size, mtime and a hash of its ends) and the
version the same, since the record ids of a row only mean something for the same rows.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shlex
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from app.errors import SegmentsError
from app.history.records import Outcome

_ENDS = 64 * 1024  # bytes hashed at each end of the input


class RunError(SegmentsError):
    """A recording run cannot start, resume or go on (the message says what to do)."""


def fingerprint(path: Path) -> str:
    """Size, mtime and the SHA-256 of the first and last 64 KiB: the same file, unchanged."""
    stat = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        digest.update(handle.read(_ENDS))
        if stat.st_size > _ENDS:
            handle.seek(max(_ENDS, stat.st_size - _ENDS))
            digest.update(handle.read(_ENDS))
    return f"{stat.st_size}:{stat.st_mtime_ns}:{digest.hexdigest()[:32]}"


@dataclass
class Counts:
    """What a run did so far: customers recorded, split by outcome, and rows rejected."""

    customers: int = 0
    changed: int = 0
    unchanged: int = 0
    duplicates: int = 0
    rejected: int = 0
    # a log's run: customers tagged with the events posted after the reference on top of the
    # log (as the service tags them), not from the log alone
    with_events: int = 0

    def add(self, other: Counts) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


def count_outcomes(outcomes: Sequence[Outcome], counts: Counts) -> list[int]:
    """Add what recording did to ``counts`` (customers recorded, by outcome; those Redis
    refused as rejected); the positions of the refused ones."""
    refused = []
    for i, outcome in enumerate(outcomes):
        if outcome.error is not None:
            refused.append(i)
        elif outcome.duplicate:
            counts.duplicates += 1
        elif outcome.changed:
            counts.changed += 1
        else:
            counts.unchanged += 1
    counts.rejected += len(refused)
    counts.customers += len(outcomes) - len(refused)
    return refused


def resume_command(state: RunState, source: Path, output: Path | None) -> str:
    """The command that finishes ``state``'s run: its model, file and output named."""
    target = f" --output {shlex.quote(str(output))}" if output is not None else ""
    return (
        f"segments assign --model {shlex.quote(state.model)} --input "
        f"{shlex.quote(str(source))}{target} --record --resume {state.run_id}"
    )


@dataclass
class RunState:
    """The run file's contents; ``rows_done`` rows of the input are recorded."""

    run_id: str
    input: str
    fingerprint: str
    model: str
    version: str
    id_column: str
    chunk_size: int
    rows_done: int = 0
    finished: bool = False
    rejects: str | None = None
    counts: Counts = field(default_factory=Counts)
    # a transaction log's run: the reference date it was derived as of (ISO); rows are the
    # log's customers in the order tagging gives (None: a customer table, rows are its rows)
    reference: str | None = None

    @staticmethod
    def path(runs_dir: Path, run_id: str) -> Path:
        return runs_dir / f"{run_id}.json"

    @classmethod
    def load(cls, runs_dir: Path, run_id: str) -> RunState | None:
        """The run file of ``run_id``, or None if there is none."""
        try:
            data = orjson.loads(cls.path(runs_dir, run_id).read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError) as exc:
            raise RunError(f"cannot read the run file of {run_id}: {exc}") from None
        return cls(**{**data, "counts": Counts(**data["counts"])})

    def save(self, runs_dir: Path) -> None:
        """Write the run file atomically (the old one stays whole until the rename)."""
        runs_dir.mkdir(parents=True, exist_ok=True)
        target = self.path(runs_dir, self.run_id)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_bytes(orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2))
        os.replace(partial, target)

    def check_same_run(self, source: Path, version: str) -> None:
        """Refuse to record another file or version under this run's id."""
        if Path(self.input) != source.resolve() or self.fingerprint != fingerprint(source):
            raise RunError(
                f"run {self.run_id} recorded {self.input} as it was then; {source} is another "
                "file or has changed since: start a new run (without --run-id/--resume)"
            )
        if self.version != version:
            raise RunError(
                f"run {self.run_id} recorded with version {self.version}, not {version}: "
                "start a new run"
            )


class RejectsFile:
    """The rejected rows of a run as CSV, created on the first: row (1 = the first data row),
    customer id, reason. UTF-8 whatever the locale (an id such as ``Müller`` of a cp1252
    input file is text by then), as file tagging's rejects file is."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def keep_until(self, rows_done: int) -> None:
        """On resume: drop what was written for rows after the last acknowledged chunk."""
        if not self.path.exists():
            return
        with self.path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        kept = [r for r in rows if r and (r[0] == "row" or int(r[0]) <= rows_done)]
        with self.path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(kept)

    def write(self, rejects: list[tuple[int, str, str]]) -> None:
        if not rejects:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        with self.path.open("a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(["row", "customer_id", "reason"])
            writer.writerows(rejects)
