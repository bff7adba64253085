"""Stable segment ids across retrains.

A retrained model reuses the ids of the promoted version's segments (of the latest version
while none is promoted) by matching segments that
hold the same customers: the promoted model assigns the new training data, and each new
cluster is paired with an old cluster by maximum-weight matching on their Jaccard overlap
(the Hungarian algorithm); a pair counts only when the overlap is at least ``MIN_JACCARD``.
A feature the previous version read and the new data lacks (a
retrain that dropped it) is missing for it, imputed as a blank cell is.
Rule segments keep the id of the previous rule with the same name; a tree's leaf keeps the id
of the previous leaf with the same rule (its path, as text), and the leaves left over are
matched like clusters, by the customers they hold (with clusters and leaves left over on the
old side). Every other segment gets a
new id numbered above every id any version of this model has ever used, so an id is never
reused for a different group of customers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from app.errors import SegmentsError
from app.registry.manifest import IdMatching
from app.registry.store import ModelStore
from app.training.model import SegmentationModel

log = logging.getLogger(__name__)
MIN_JACCARD = 0.5


def format_segment_id(number: int) -> str:
    return f"seg-{number:03d}"


@dataclass(frozen=True)
class Slot:
    kind: str  # "rule" | "leaf" | "cluster"
    key: str  # rule name, leaf rule text, or cluster label as text


def assign_stable_ids(
    store: ModelStore, model_name: str, frame: pd.DataFrame, slots: np.ndarray, layout: list[Slot]
) -> tuple[list[str], IdMatching]:
    """Ids for the new model's slots, reusing the promoted version's where customers match
    (with none promoted yet, the latest version's: a model trained, subscribed to and trained
    again before any promote kept no id)."""
    versions = store.versions(model_name)
    previous_version = store.promoted(model_name) or (versions[-1] if versions else None)
    ids: list[str | None] = [None] * len(layout)
    reused: dict[str, float] = {}
    if previous_version is not None:
        try:
            previous = store.load(model_name, previous_version).estimator
        except SegmentsError as exc:
            log.warning("cannot load version %s to match segment ids: %s", previous_version, exc)
            previous = None
        if isinstance(previous, SegmentationModel):
            _match_rules(previous, layout, ids, reused)
            _match_leaves(previous, layout, ids, reused)
            _match_clusters(previous, _readable_by(previous, frame), slots, layout, ids, reused)
    counter = store.max_segment_number(model_name)
    new: list[str] = []
    for i, current in enumerate(ids):
        if current is None:
            counter += 1
            ids[i] = format_segment_id(counter)
            new.append(format_segment_id(counter))
    matching = IdMatching(previous_version=previous_version, reused=reused, new=new)
    return [str(i) for i in ids], matching


def _readable_by(previous: SegmentationModel, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each feature the previous version reads and the new data lacks (a
    retrain that dropped it) as a missing value, which the previous version imputes as it
    imputes a blank cell. Without it, dropping one feature renumbered every segment, and the
    next rescore recorded each customer's move from a segment to the same segment under a new
    id as a migration; the Jaccard floor still keeps a segment the lost feature defined from
    passing its id on."""
    lacking = [name for name in previous.feature_names if name not in frame.columns]
    if not lacking:
        return frame
    missing = pd.DataFrame(np.nan, index=frame.index, columns=lacking)
    return pd.concat([frame, missing], axis=1)


def _match_rules(
    previous: SegmentationModel, layout: list[Slot], ids: list[str | None], reused: dict[str, float]
) -> None:
    configured = previous.rules[: previous.n_configured_rules]
    old = {rule.name: previous.segment_ids[i] for i, rule in enumerate(configured)}
    for i, slot in enumerate(layout):
        if slot.kind == "rule" and slot.key in old:
            ids[i] = old[slot.key]
            reused[old[slot.key]] = 1.0


def _match_leaves(
    previous: SegmentationModel, layout: list[Slot], ids: list[str | None], reused: dict[str, float]
) -> None:
    first = previous.n_configured_rules
    old = {r.text: previous.segment_ids[first + j] for j, r in enumerate(previous.rules[first:])}
    for i, slot in enumerate(layout):
        if slot.kind == "leaf" and slot.key in old and old[slot.key] not in reused:
            ids[i] = old[slot.key]
            reused[old[slot.key]] = 1.0


def _match_clusters(
    previous: SegmentationModel,
    frame: pd.DataFrame,
    slots: np.ndarray,
    layout: list[Slot],
    ids: list[str | None],
    reused: dict[str, float],
) -> None:
    new_clusters = [
        i for i, s in enumerate(layout) if s.kind in ("cluster", "leaf") and ids[i] is None
    ]
    old_slots = previous.predict_slots(frame)
    old_clusters = [
        slot
        for slot in range(previous.n_configured_rules, len(previous.segment_ids))
        if previous.segment_ids[slot] not in reused
    ]
    if not new_clusters or not old_clusters:
        return
    joint = np.zeros((len(layout), len(previous.segment_ids)))
    np.add.at(joint, (slots, old_slots), 1)
    joint = joint[np.ix_(new_clusters, old_clusters)]
    union = joint.sum(axis=1, keepdims=True) + joint.sum(axis=0, keepdims=True) - joint
    jaccard = np.divide(joint, union, out=np.zeros_like(joint), where=union > 0)
    rows, cols = linear_sum_assignment(-jaccard)
    for r, c in zip(rows, cols, strict=True):
        if jaccard[r, c] >= MIN_JACCARD:
            old_id = previous.segment_ids[old_clusters[c]]
            ids[new_clusters[r]] = old_id
            reused[old_id] = round(float(jaccard[r, c]), 4)
