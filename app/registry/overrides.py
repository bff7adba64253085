"""Human edits of segment fields (name, description, action), kept beside the model.

Stored in ``<store>/<model>/segment_overrides.json`` keyed by stable segment id, so an edit
survives restarts and, because a retrain reuses the ids of the segments it matches, retrains.
Writes take an exclusive file lock and replace the file atomically, so workers that edit at
the same time never lose each other's changes.
"""

from __future__ import annotations

import fcntl
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from app.errors import NameTaken
from app.files import replace_file
from app.registry.confusables import latin_looks, latin_skeleton
from app.registry.manifest import Manifest, SegmentInfo
from app.visible import JOINERS, invisible

EDITABLE = ("name", "description", "action")


def serving_segments(
    manifest: Manifest, overrides: Mapping[str, Mapping[str, Any]], distinct: bool = True
) -> dict[str, SegmentInfo]:
    """The segments of a version as they are served: the manifest's, with the human edits
    (``PATCH /v1/segments/{id}``) applied. The service and ``segments assign`` both name
    segments through this, so offline and online give a customer the same name."""
    segments = {}
    edited: set[str] = set()
    for seg in manifest.segments:
        edits = {k: v for k, v in overrides.get(seg.id, {}).items() if k in EDITABLE}
        segments[seg.id] = seg.model_copy(update=edits) if edits else seg
        if "name" in edits:
            edited.add(name_key(edits["name"]))
    # a name edited on one segment may be the generated name of another (a retrain, or a
    # promoted version, names a segment so after the edit): the edit, a person's, keeps the
    # name, and the generated one says which segment it is, so no two are served alike; two
    # edits alike (each PATCHed while a version without the other segment served) keep it
    # for the first segment only (``distinct`` False: the PATCH check, where a new edit may
    # not take a served name)
    if distinct:
        kept: set[str] = set()  # edited names already served
        for seg_id, seg in segments.items():
            key = name_key(seg.name)
            if "name" in overrides.get(seg_id, {}) and key not in kept:
                kept.add(key)
            elif key in edited:
                segments[seg_id] = seg.model_copy(update={"name": f"{seg.name} ({seg_id})"})
    return segments


def segment_names(manifest: Manifest, model_folder: Path) -> dict[str, str]:
    """Segment id -> served name for a version of the model kept in ``model_folder``."""
    segments = serving_segments(manifest, SegmentOverrides(model_folder).load())
    return {seg_id: seg.name for seg_id, seg in segments.items()}


def name_key(name: str) -> str:
    """A name as names are compared: what a reader cannot tell apart is the same name. Case,
    compatibility forms (full-width 'ＶＩＰ', ligatures: NFKC), invisible characters (zero-width
    spaces, soft hyphens, fillers and blank-looking letters) and runs of whitespace do not
    count, nor do Cyrillic and Greek letters drawn as Latin ones (``VІPs`` with a Cyrillic
    ``І``: ``confusables``). The joiners (U+200C, U+200D) do: they change what is shown (one
    family emoji against three people; Persian words)."""
    normal = unicodedata.normalize("NFKC", latin_looks(name))
    visible = "".join(c for c in normal if c in JOINERS or not invisible(c))
    return latin_skeleton(" ".join(visible.split()).casefold())


def check_name_free(
    manifest: Manifest, overrides: Mapping[str, Mapping[str, Any]], segment_id: str
) -> None:
    """``NameTaken`` naming the segment of ``manifest`` that already has the served name
    ``segment_id`` has with ``overrides``."""
    segments = serving_segments(manifest, overrides, distinct=False)
    name = segments[segment_id].name
    for other in segments.values():
        if other.id != segment_id and name_key(other.name) == name_key(name):
            raise NameTaken(
                f"segment {other.id} of version {manifest.version} is already named "
                f"{other.name!r}, which {name!r} reads as; names are compared as a reader "
                "sees them (ignoring case, spacing, invisible characters, full-width forms "
                "and Cyrillic or Greek letters drawn as Latin ones): "
                f"choose another name for {segment_id}, or rename {other.id} first"
            )


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

    def update(
        self, segment_id: str, fields: dict[str, str | None], manifest: Manifest | None = None
    ) -> dict[str, Any]:
        """Set (or, with None, clear) editable fields of one segment; returns its overrides.

        With ``manifest``, a change of name (a new one, or back to the generated one) that
        another segment of that version has raises ``NameTaken`` and changes nothing; the
        check is under the lock, so two workers cannot give two segments one name."""
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
            if manifest is not None and "name" in fields:
                check_name_free(manifest, data, segment_id)
            replace_file(self.path, orjson.dumps(data, option=orjson.OPT_INDENT_2))
            return entry
