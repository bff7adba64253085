"""The model store: versioned, immutable artefacts on disk and a pointer to the serving one.

Layout::

    <root>/<model_name>/<version>/model.joblib    the fitted estimator (joblib, i.e. a pickle)
    <root>/<model_name>/<version>/manifest.json   the ``Manifest`` describing it
    <root>/<model_name>/<version>/report.html     the analyst's report
    <root>/<model_name>/promoted.json             {"version", "promoted_at", "history": [...]}

A version appears only complete: ``register()`` writes into a hidden temporary folder and
renames it into place, or deletes it on any error. The pointer is replaced atomically. An
artefact is unpickled only after its bytes match the hash recorded in its manifest.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import orjson
from pydantic import ValidationError

from app.errors import IntegrityError, StoreError, StoreWriteError
from app.registry.manifest import ArtefactInfo, Manifest
from app.words import did_you_mean

log = logging.getLogger(__name__)
KNOWN_NAMED = 10  # versions an unknown version's error names (the newest)
VERSION_PATTERN = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")
MODEL_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
SEGMENT_ID_PATTERN = re.compile(r"seg-(\d+)")
ARTEFACT_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
POINTER_FILE = "promoted.json"
# a writer fills its .tmp- folder in seconds (the artefact, report, manifest): one untouched
# for this long belongs to a writer that was killed, and is removed by the next register
STALE_TMP_SECONDS = 3600


def new_version_id(now: datetime | None = None) -> str:
    """Return a new time-ordered version id, ``YYYYMMDD-HHMMSS-xxxxxx`` in UTC.

    Parameters
    ----------
    now : datetime, optional
        The creation time; the current time by default. A naive datetime is taken as UTC.

    Examples
    --------
    >>> new_version_id(datetime(2024, 5, 1, 12, 30, tzinfo=UTC))[:15]
    '20240501-123000'
    """
    now = datetime.now(UTC) if now is None else now
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def validate_model_name(name: str) -> str:
    """Return ``name`` if it is a safe model name (letters, digits, ``_.-``), else raise."""
    if not isinstance(name, str) or not MODEL_NAME_PATTERN.fullmatch(name):
        raise StoreError(model_name_problem(name))
    return name


def model_name_problem(given: object, example: str = "{!r}") -> str:
    """Why ``given`` is no model name, in words, and a name that keeps, written as
    ``example`` writes it (``name = {!r}`` in a config, ``--model {}`` on the command line):
    ``'Game Players' is not a model name: letters, digits, ... e.g. 'Game_Players'``. One
    sentence for the config's ``[model] name``, every command's ``--model`` and the store
    (it was a regex, or "use 1-64 of [A-Za-z0-9_.-]")."""
    text = str(given)
    shown = text if len(text) <= 80 else text[:80] + "…"
    like = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).lstrip("_.-")[:64].rstrip("_.-") or "customers"
    return (
        f"{shown!r} is not a model name: letters, digits, '_', '.' and '-' only, at most 64, "
        f"the first a letter or digit (it names the model's folder in the store and ?model= "
        f"in the API), e.g. {example.format(like)}"
    )


def validate_version(version: str) -> str:
    """Return ``version`` if it is a well-formed version id, else raise ``StoreError``."""
    if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
        raise StoreError(f"invalid version id {version!r}: expected YYYYMMDD-HHMMSS-xxxxxx")
    return version


@dataclass(frozen=True)
class LoadedModel:
    """A verified, unpickled version; ``path`` is its version folder."""

    manifest: Manifest
    estimator: Any
    path: Path


class ModelStore:
    """Versioned model artefacts under ``root``; nothing is created until a write.

    Parameters
    ----------
    root : Path
        The store folder (``models/`` by default in the CLI).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def model_names(self) -> list[str]:
        """Names of the models with at least one complete version, sorted."""
        if not self.root.is_dir():
            return []
        names = (p.name for p in self.root.iterdir() if p.is_dir())
        return sorted(n for n in names if MODEL_NAME_PATTERN.fullmatch(n) and self.versions(n))

    def no_promoted_version(self, model_name: str, hint: str = "") -> str:
        """Why ``model_name`` has no version to serve: the model is not in the store (naming
        the ones that are), or none of its versions is promoted (then ``hint`` follows)."""
        if not self.versions(model_name):
            others = self.model_names()
            held = f"it holds {', '.join(others)}" if others else "it holds no model yet"
            # a typo: SEGMENTS_MODELS=rmf for rfm
            return f"no model {model_name!r} in the store ({held})" + did_you_mean(
                model_name, others
            )
        return f"model {model_name} has no promoted version" + (f"; {hint}" if hint else "")

    def versions(self, model_name: str) -> list[str]:
        """Complete versions of ``model_name``, oldest first (temporary folders are ignored)."""
        folder = self._model_dir(model_name)
        if not folder.is_dir():
            return []
        return sorted(
            p.name
            for p in folder.iterdir()
            if VERSION_PATTERN.fullmatch(p.name) and (p / MANIFEST_FILE).is_file()
        )

    def manifest(self, model_name: str, version: str) -> Manifest:
        """The manifest of one version; ``StoreError`` if the version is unknown or corrupt."""
        return _read_manifest(self.version_dir(model_name, version), model_name, version)

    def manifests(self, model_name: str) -> list[Manifest]:
        """The manifests of every complete version, oldest first."""
        return [self.manifest(model_name, v) for v in self.versions(model_name)]

    def listed(self, model_name: str) -> tuple[list[Manifest], dict[str, str]]:
        """What a listing shows: the manifests that can be read, oldest first, and the
        versions whose manifest cannot be read, with why (one damaged version does not
        hide the others)."""
        manifests, unreadable = [], {}
        for version in self.versions(model_name):
            try:
                manifests.append(self.manifest(model_name, version))
            except StoreError as exc:
                unreadable[version] = str(exc)
        return manifests, unreadable

    def version_dir(self, model_name: str, version: str) -> Path:
        """The folder of an existing version; ``StoreError`` naming the known ones if unknown."""
        path = self._model_dir(model_name) / validate_version(version)
        if not (path / MANIFEST_FILE).is_file():
            if not self.versions(model_name):  # no such model: name the ones there are
                raise StoreError(self.no_promoted_version(model_name))
            versions = self.versions(model_name)  # oldest first: name the newest ten
            known = ", ".join(versions[-KNOWN_NAMED:])
            if len(versions) > KNOWN_NAMED:
                known = f"{len(versions) - KNOWN_NAMED:,} earlier and {known}"
            others = (name for name in self.model_names() if name != model_name)
            owner = next((n for n in others if (self._model_dir(n) / version).is_dir()), None)
            where = f"; it is a version of model {owner!r}" if owner else ""
            where += f" (?model={owner}, --model {owner})" if owner else ""
            raise StoreError(
                f"unknown version {version} of model {model_name} (known: {known}){where}"
            )
        return path

    def max_segment_number(self, model_name: str) -> int:
        """The highest ``seg-NNN`` number any version has used (0 if none); ``StoreError``
        when a version's manifest cannot be read, saying what to do."""
        manifests, unreadable = self.listed(model_name)
        if unreadable:
            version, why = next(iter(unreadable.items()))
            folder = self._model_dir(model_name) / version
            raise StoreError(
                f"{why}; a new version numbers its new segments above every id the model has "
                f"used, and this version's are unknown: restore {folder}/{MANIFEST_FILE} (from "
                "a backup), or move the folder out of the store if no customer, webhook or "
                "dashboard ever saw its segment ids (a later version may then reuse them)"
            )
        numbers = (
            int(match.group(1))
            for manifest in manifests
            for segment in manifest.segments
            if (match := SEGMENT_ID_PATTERN.fullmatch(segment.id))
        )
        return max(numbers, default=0)

    @contextmanager
    def register(self, model_name: str, version: str) -> Iterator[Path]:
        """Yield a temporary folder to write a version into; publish it atomically on success.

        On normal exit the folder must hold ``manifest.json`` (for this model and version)
        and the artefact it names, with a matching hash; it is then fsynced and renamed to
        ``<version>``. On any exception, including ``KeyboardInterrupt``, the folder (and any
        store folder this call created) is removed and the exception re-raised, so no partial
        version is ever visible.

        Raises
        ------
        StoreError
            If the version exists already, or the folder is incomplete on exit.
        """
        model_dir = self._model_dir(model_name)
        final = model_dir / validate_version(version)
        if final.exists():
            raise StoreError(f"version {version} of model {model_name} exists already")
        created = [d for d in (model_dir, self.root) if not d.exists()]
        tmp = model_dir / f".tmp-{version}-{secrets.token_hex(4)}"
        try:
            with _writing(model_dir):
                model_dir.mkdir(parents=True, exist_ok=True)
                _remove_stale_tmp(model_dir)
                tmp.mkdir()
            with _writing(model_dir):
                yield tmp
            if not (tmp / MANIFEST_FILE).is_file():
                raise StoreError(f"cannot register {model_name} {version}: no {MANIFEST_FILE}")
            manifest = _read_manifest(tmp, model_name, version)
            artefact = _artefact_path(tmp, manifest)
            if not artefact.is_file() or _sha256(artefact.read_bytes()) != manifest.artefact.sha256:
                raise StoreError(
                    f"cannot register {model_name} {version}: no {artefact.name} "
                    "matching the manifest's hash"
                )
            with _writing(model_dir):
                for file in tmp.rglob("*"):
                    if file.is_file():
                        with file.open("rb") as fh:
                            os.fsync(fh.fileno())
                _fsync_dir(tmp)
            with _folder_lock(model_dir):  # the check, then the rename
                self._check_new_ids(model_name, manifest)
                try:  # fails if a concurrent writer published the same version meanwhile
                    os.rename(tmp, final)
                except OSError as exc:
                    raise StoreError(f"cannot publish {model_name} {version}: {exc}") from exc
            with _writing(model_dir):
                _fsync_dir(model_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            for folder in created:  # leave the store as found; rmdir spares a concurrent writer's
                with suppress(OSError):
                    folder.rmdir()
            raise

    def check_writable(self, model_name: str) -> None:
        """Create, write, fsync and remove a small file in the model's folder, or raise.

        Called before a long job (training) so that a read-only or full store is one clear
        error before the work, not a traceback after it. Folders this call had to create are
        removed again: the store stays as found.

        Raises
        ------
        StoreWriteError
            Naming the folder and the operating system's reason.
        """
        model_dir = self._model_dir(model_name)
        created = [d for d in (model_dir, *model_dir.parents) if not d.exists()]
        probe = model_dir / f".write-check-{secrets.token_hex(4)}"
        try:
            with _writing(model_dir):
                model_dir.mkdir(parents=True, exist_ok=True)
                with probe.open("xb") as fh:
                    # some bytes, not an empty file: a full disk still creates empty files
                    fh.write(b"\0" * 4096)
                    fh.flush()
                    os.fsync(fh.fileno())
        finally:
            with suppress(OSError):  # never created, or the folder is gone
                probe.unlink()
            for folder in created:  # innermost first
                with suppress(OSError):
                    folder.rmdir()

    def write_artefact(self, folder: Path, estimator: Any) -> ArtefactInfo:
        """Dump ``estimator`` to ``folder/model.joblib`` and return its hash and size."""
        path = folder / ARTEFACT_FILE
        joblib.dump(estimator, path, compress=3)
        data = path.read_bytes()
        return ArtefactInfo(file=ARTEFACT_FILE, sha256=_sha256(data), bytes=len(data))

    def promoted(self, model_name: str) -> str | None:
        """The serving version of ``model_name``, or None if none was promoted."""
        version = self._read_pointer(model_name).get("version")
        return None if version is None else validate_version(version)

    def promotion_history(self, model_name: str) -> list[dict[str, str]]:
        """Every promotion and rollback, oldest first; ``StoreError`` if the pointer's history
        is not a list of ``{version, promoted_at, action}`` entries (an edited file)."""
        history = self._read_pointer(model_name).get("history", [])
        fields = ("version", "promoted_at", "action")
        if not isinstance(history, list):
            wrong = "it is not a list"
        else:
            wrong = next(
                (
                    f"entry {i} is not one"
                    for i, entry in enumerate(history, 1)
                    if not isinstance(entry, dict)
                    or not all(isinstance(entry.get(f), str) for f in fields)
                ),
                "",
            )
        if wrong:
            path = self._model_dir(model_name) / POINTER_FILE
            raise StoreError(
                f"{path}: the promotion history should be a list of {{version, promoted_at, "
                f"action}} entries ({wrong}): repair it, or remove 'history' from the file to "
                "start it again"
            )
        return list(history)

    def promote(self, model_name: str, version: str) -> bool:
        """Make ``version`` the serving one (atomic; promoting the current one is a no-op);
        whether the pointer moved."""
        return self.swap(model_name, version) != version

    def swap(self, model_name: str, version: str) -> str | None:
        """``promote``, returning the version the pointer held when it moved (read under the
        pointer's lock: another promotion meanwhile is not mistaken for it), ``version``
        itself where it was serving already, None where none was."""
        self.version_dir(model_name, version)
        if self.promoted(model_name) == version:
            return version  # (no lock taken: a read-only store may answer this one)
        with self._pointer_lock(model_name):
            previous = self.promoted(model_name)
            if previous != version:  # (else another did, meanwhile)
                self._move_pointer(model_name, version, "promote")
            return previous

    def rollback_target(self, model_name: str) -> str:
        """The version ``rollback`` would serve (raises ``StoreError`` if there is none)."""
        current = self.promoted(model_name)
        stack = _serving_stack(self.promotion_history(model_name))
        while stack and stack[-1] == current:
            stack.pop()
        if not self.versions(model_name):
            raise StoreError(self.no_promoted_version(model_name))
        # (said with what to do instead: a new user's first rollback, after one promotion,
        # was told "nothing to roll back to" and no more)
        promote = f"segments models promote VERSION --model {model_name}"
        if current is None:
            raise StoreError(
                f"model {model_name}: nothing to roll back to: no version is promoted; "
                f"promote one ({promote})"
            )
        if not stack:
            raise StoreError(
                f"model {model_name}: nothing to roll back to: {current} is the first version "
                "promoted (a rollback serves the version promoted before the serving one); to "
                f"serve another, promote it ({promote}; `segments models list --model "
                f"{model_name}` lists them)"
            )
        return stack[-1]

    def rollback(self, model_name: str, expected: str | None = None) -> str:
        """Move the pointer back to the version serving before the current one; return it.
        With ``expected`` (the target a caller verified), refuse when the history moved
        meanwhile and the target is another version."""
        self.rollback_target(model_name)  # an unknown model, or nothing to roll back to
        with self._pointer_lock(model_name):
            target = self.rollback_target(model_name)  # (as of now, under the lock)
            if expected is not None and target != expected:
                raise StoreError(
                    f"model {model_name}: the rollback target is no longer {expected}; try again"
                )
            self.version_dir(model_name, target)
            self._move_pointer(model_name, target, "rollback")
        return target

    def _check_new_ids(self, model_name: str, manifest: Manifest) -> None:
        """Refuse a version whose new segment ids another version registered meanwhile: two
        trainings of one model at once each numbered their new segments above the same
        highest id, and gave one id (seg-014) to two different groups of customers."""
        new = set(manifest.id_matching.new)
        if not new:
            return
        manifests, _ = self.listed(model_name)
        for other in manifests:
            taken = sorted(new & {s.id for s in other.segments})
            if taken:
                raise StoreError(
                    f"model {model_name}: version {other.version}, trained at the same time, "
                    f"gave the new segment id(s) {', '.join(taken)} to its own segments; ids are "
                    "never given to two groups: train again (one training of a model at a time)"
                )

    @contextmanager
    def _pointer_lock(self, model_name: str) -> Iterator[None]:
        """An exclusive lock on the model's pointer across processes (workers, the CLI): a
        promotion or rollback reads the history, appends to it and replaces the file, and two
        at once kept only one of their entries (an audit: 108 moves, 71 entries)."""
        folder = self._model_dir(model_name)
        with _writing(folder), open(folder / ".pointer.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def mtime_token(self, model_name: str) -> tuple[int, int]:
        """``(st_mtime_ns, st_ino)`` of the pointer, or ``(0, 0)``: cheap change detection."""
        try:
            stat = (self._model_dir(model_name) / POINTER_FILE).stat()
        except FileNotFoundError:
            return (0, 0)
        return (stat.st_mtime_ns, stat.st_ino)

    def load(self, model_name: str, version: str | None = None) -> LoadedModel:
        """Verify and unpickle a version (the promoted one by default).

        The artefact's bytes are read once, hashed and compared with the manifest before
        anything is unpickled, and the installed scikit-learn must be the one it was saved with.

        Raises
        ------
        StoreError
            If there is no such version, or no promoted version.
        IntegrityError
            If the artefact's hash or the scikit-learn version does not match the manifest.
        """
        if version is None:
            version = self.promoted(model_name)
            if version is None:
                raise StoreError(
                    self.no_promoted_version(model_name, "run `segments models promote`")
                )
        manifest = self.manifest(model_name, version)  # validates both names
        folder = self.root / model_name / version
        path = _artefact_path(folder, manifest)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise IntegrityError(f"cannot read artefact {path}: {exc}") from exc
        if _sha256(data) != manifest.artefact.sha256:
            raise IntegrityError(
                f"artefact {path} hash mismatch: refusing to load "
                "(joblib files are pickles and can run code)"
            )
        import sklearn  # deferred: importing the store must stay cheap

        saved_with = manifest.libraries.get("scikit-learn")
        if saved_with != sklearn.__version__:
            raise IntegrityError(
                f"{model_name} {version} was saved with scikit-learn {saved_with}, "
                f"but scikit-learn {sklearn.__version__} is installed; retrain or reinstall"
            )
        return LoadedModel(manifest=manifest, estimator=joblib.load(io.BytesIO(data)), path=folder)

    def _model_dir(self, model_name: str) -> Path:
        return self.root / validate_model_name(model_name)

    def _read_pointer(self, model_name: str) -> dict[str, Any]:
        path = self._model_dir(model_name) / POINTER_FILE
        try:
            pointer = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError) as exc:
            raise StoreError(f"cannot read {path}: {exc}") from exc
        if not isinstance(pointer, dict):
            raise StoreError(f"{path} is not a JSON object")
        return pointer

    def _move_pointer(self, model_name: str, version: str, action: str) -> None:
        now = datetime.now(UTC).isoformat()
        history = self.promotion_history(model_name)
        history.append({"version": version, "promoted_at": now, "action": action})
        payload = {"version": version, "promoted_at": now, "history": history}
        folder = self._model_dir(model_name)
        # The temporary file sits beside the pointer so that os.replace is a same-filesystem,
        # atomic rename: readers see the old pointer or the new one, never a half-written file.
        tmp = folder / f".{POINTER_FILE}.{secrets.token_hex(4)}.tmp"
        with _writing(folder):
            try:
                with tmp.open("xb") as fh:
                    fh.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2))
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, folder / POINTER_FILE)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            _fsync_dir(folder)


@contextmanager
def _writing(folder: Path) -> Iterator[None]:
    """Turn an operating-system error while writing under ``folder`` into a ``StoreWriteError``
    naming the folder and the reason (read-only, no space left, not a directory, ...)."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise StoreWriteError(f"cannot write to the model store folder {folder}: {reason}") from exc


def _serving_stack(history: list[dict[str, str]]) -> list[str]:
    """Replay the history: a promotion pushes a version, a rollback pops back to its target."""
    stack: list[str] = []
    for entry in history:
        version = entry["version"]
        if entry.get("action") == "rollback":
            while stack and stack[-1] != version:
                stack.pop()
            if not stack:
                stack.append(version)
        else:
            stack.append(version)
    return stack


def _read_manifest(folder: Path, model_name: str, version: str) -> Manifest:
    path = folder / MANIFEST_FILE
    try:
        manifest = Manifest.model_validate_json(path.read_bytes())
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise StoreError(f"cannot read the manifest of {model_name} {version}: {reason}") from exc
    except ValidationError as exc:  # its first problem, without the file's text
        first = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        more = exc.error_count() - 1
        raise StoreError(
            f"the manifest of {model_name} {version} is not valid: {first['msg']}"
            + (f" at {where}" if where else "")
            + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
        ) from exc
    if (manifest.model_name, manifest.version) != (model_name, version):
        raise StoreError(f"{path} describes {manifest.model_name} {manifest.version}")
    return manifest


def _artefact_path(folder: Path, manifest: Manifest) -> Path:
    name = manifest.artefact.file
    if name != Path(name).name or name in ("", ".", ".."):  # a manifest must not point outside
        raise IntegrityError(f"manifest of {manifest.version} names artefact {name!r}")
    return folder / name


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _remove_stale_tmp(model_dir: Path) -> None:
    """Remove the ``.tmp-`` folders of writers killed mid-write (untouched for an hour)."""
    cutoff = datetime.now(UTC).timestamp() - STALE_TMP_SECONDS
    for tmp in model_dir.glob(".tmp-*"):
        with suppress(OSError):  # gone meanwhile, or not ours to remove: leave it
            if tmp.is_dir() and tmp.stat().st_mtime < cutoff:
                shutil.rmtree(tmp)
                log.warning("removed %s, left by a writer killed mid-write", tmp)


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock across processes on ``folder`` itself (no lock file left in it)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield  # (closing the descriptor releases the lock)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
