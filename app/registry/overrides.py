"""Human edits of segment fields (name, description, action), kept beside the model.

Stored in ``<store>/<model>/segment_overrides.json`` keyed by stable segment id, so an edit
survives restarts and, because a retrain reuses the ids of the segments it matches, retrains.
Writes take an exclusive file lock and replace the file atomically, so workers that edit at
the same time never lose each other's changes.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

EDITABLE = ("name", "description", "action")


class SegmentOverrides:
    def __init__(self, folder: Path) -> None:
        self.path = folder / "segment_overrides.json"

    def token(self) -> tuple[int, int]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return (0, 0)
        return (stat.st_mtime_ns, stat.st_ino)

    def load(self) -> dict[str, dict[str, Any]]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        return data if isinstance(data, dict) else {}

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def update(self, segment_id: str, fields: dict[str, str | None]) -> dict[str, Any]:
        """Set (or, with None, clear) editable fields of one segment; returns its overrides."""
        with self._locked():
            data = self.load()
            entry = {k: v for k, v in data.get(segment_id, {}).items() if k in EDITABLE}
            for key, value in fields.items():
                if value is None:
                    entry.pop(key, None)
                else:
                    entry[key] = value
            entry["updated_at"] = datetime.now(UTC).isoformat()
            data[segment_id] = entry
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".overrides-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            return entry
