"""A guarded refresh: train a candidate, compare it with the promoted version on the same
data, promote it only if it passes, and write the decision into its manifest.

Checks (each recorded with its figures, ``RefreshCheck``):

- ``kept_ids``: the share of the data's customers whose segment id is the same under both
  versions is at least ``min_kept``;
- ``outcome_effect``: for every outcome, the candidate's effect size (Cramér's V or
  epsilon², ``app.training.effects``) on the data is not below the promoted version's on the
  same data by more than ``effect_tolerance``;
- ``no_new_flags``: no candidate segment has a flag (too_small, not_distinct, unstable,
  converging) that the promoted segment of the same id did not have, and no new convergence
  pair.

With ``if_drifted``, the data is first compared with the promoted version (offline drift);
when nothing drifts, nothing is trained.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum

import numpy as np
import pandas as pd

from app.drift.offline import drift_of_file, load_frame
from app.drift.schemas import DriftReport, Thresholds
from app.registry.manifest import Manifest, RefreshCheck, RefreshDecision
from app.registry.store import ModelStore, _fsync_dir
from app.training.config import TrainConfig
from app.training.data import load_training_data
from app.training.effects import outcome_effect
from app.training.job import train
from app.training.model import SegmentationModel

MIN_KEPT = 0.5
EFFECT_TOLERANCE = 0.02


class RefreshExit(IntEnum):
    """``segments refresh`` exit codes (1 stays an error, 2 a usage error)."""

    PROMOTED = 0
    KEPT = 4
    DRIFT_FREE = 5


@dataclass
class RefreshResult:
    outcome: RefreshExit
    promoted_before: str | None
    candidate: Manifest | None = None
    decision: RefreshDecision | None = None
    drift: DriftReport | None = None


def refresh(
    config: TrainConfig,
    store: ModelStore,
    thresholds: Thresholds,
    *,
    if_drifted: bool = False,
    min_kept: float = MIN_KEPT,
    effect_tolerance: float = EFFECT_TOLERANCE,
    on_step: Callable[[str], None] | None = None,
) -> RefreshResult:
    name = config.model.name
    current = store.promoted(name)
    drift = None
    # a log is read as of the config's reference date, as the candidate will be trained
    tx = config.data.transactions
    as_of = tx.reference_date if tx is not None else None
    old_frame = None
    if current is not None:
        # the data as the promoted version reads it (its own features, which the new config
        # may not have): read before training, so a file it cannot read makes no candidate
        promoted = store.manifest(name, current)
        old_frame = load_frame(promoted.config, config.data.path, as_of, promoted.data.day_first)
    if if_drifted and current is not None:
        drift = drift_of_file(store, name, current, config.data.path, thresholds, as_of)
        if drift.status != "drift":
            return RefreshResult(RefreshExit.DRIFT_FREE, current, drift=drift)
    candidate = train(config, store, promote=False, on_step=on_step).manifest
    if current is None:
        checks = [RefreshCheck(name="first_version", passed=True, detail="nothing to compare")]
    else:
        checks = compare(config, store, current, candidate, min_kept, effect_tolerance, old_frame)
    passed = all(c.passed for c in checks)
    decision = RefreshDecision(
        decided_at=datetime.now(UTC),
        compared_with=current,
        promoted=passed,
        checks=checks,
        reasons=[c.detail for c in checks if not c.passed],
    )
    candidate.refresh = decision
    write_manifest(store, candidate)
    if passed:
        store.promote(name, candidate.version)
    outcome = RefreshExit.PROMOTED if passed else RefreshExit.KEPT
    return RefreshResult(outcome, current, candidate, decision, drift)


def compare(
    config: TrainConfig,
    store: ModelStore,
    current: str,
    candidate: Manifest,
    min_kept: float,
    effect_tolerance: float,
    old_frame: pd.DataFrame | None = None,
) -> list[RefreshCheck]:
    """The checks of ``candidate`` against version ``current`` on ``config``'s data.

    Each version assigns the data as it reads it (``old_frame``: read with ``current``'s
    own config; default: the candidate's frame); customers are matched by id, and one the
    promoted version's reading dropped counts as not keeping its id."""
    name = config.model.name
    old = store.load(name, current)
    new = store.load(name, candidate.version)
    old_model, new_model = old.estimator, new.estimator
    assert isinstance(old_model, SegmentationModel)
    assert isinstance(new_model, SegmentationModel)
    data = load_training_data(config)
    frame = data.frame
    old_frame = frame if old_frame is None else old_frame
    old_labels = pd.Series(old_model.predict(old_frame).astype(str), index=old_frame.index)
    before = old_labels.reindex(frame.index).to_numpy(dtype=object)
    after = new_model.predict(frame).astype(str)
    kept = float(np.mean(before == after))
    known = pd.notna(before)
    checks = [
        RefreshCheck(
            name="kept_ids",
            passed=kept >= min_kept,
            detail=f"{kept:.1%} of customers keep their segment id (at least {min_kept:.0%})",
        )
    ]
    for outcome in data.outcomes:
        values = frame[outcome].to_numpy(dtype=np.float64)
        ok = np.isfinite(values) & known
        was = outcome_effect(values[ok], before[ok].astype(str)).size
        now = outcome_effect(values[ok], after[ok]).size
        if was is None or now is None:
            continue
        checks.append(
            RefreshCheck(
                name=f"outcome_effect:{outcome}",
                passed=now >= was - effect_tolerance,
                detail=f"{outcome}: effect size {now:.3f} against {was:.3f} for {current} "
                f"(tolerance {effect_tolerance})",
            )
        )
    checks.append(_flags_check(old.manifest, candidate))
    return checks


def _flags_check(old: Manifest, new: Manifest) -> RefreshCheck:
    had = {(s.id, f) for s in old.segments for f in s.flags}
    fresh = sorted(f"{s.id}: {f}" for s in new.segments for f in s.flags if (s.id, f) not in had)
    pairs_before = {p.segments for p in old.convergence}
    fresh += [f"{a} ~ {b}: converging" for a, b in (p.segments for p in new.convergence)
              if (a, b) not in pairs_before]  # fmt: skip
    detail = "new flags: " + "; ".join(fresh) if fresh else "no new flags"
    return RefreshCheck(name="no_new_flags", passed=not fresh, detail=detail)


def write_manifest(store: ModelStore, manifest: Manifest) -> None:
    """Rewrite a stored version's manifest in place, atomically (the artefact and its hash
    are untouched; only the refresh decision is added).

    Done before any promotion of the version, so a service only ever loads the final
    manifest; a reader sees the old file or the new one (``os.replace``), never a partial
    one. The temporary file is this writer's own and is removed if anything fails; the
    folder is fsynced so the decision survives a crash once written."""
    folder = store.version_dir(manifest.model_name, manifest.version)
    path = folder / "manifest.json"
    tmp = folder / f".manifest.json.{secrets.token_hex(4)}.tmp"
    try:
        with tmp.open("x") as fh:
            fh.write(manifest.model_dump_json(indent=2))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(folder)
