"""Compare two versions: how one set of customers moves between their segments."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from app.errors import DataError
from app.registry.overrides import segment_names
from app.registry.store import LoadedModel, ModelStore
from app.training.config import STORED, TrainConfig
from app.training.csv_format import CsvFormat
from app.training.data import load_training_data, read_table
from app.training.markers import mask_markers
from app.training.values import numeric_column


def migration_matrix(
    store: ModelStore, model_name: str, old: str, new: str, data: Path | None = None
) -> tuple[pd.DataFrame, int]:
    """Counts of customers by (old segment, new segment), labelled ``id name``, and how many
    customers keep their segment id."""
    old_model, new_model = store.load(model_name, old), store.load(model_name, new)
    if data is None:
        config = TrainConfig.model_validate(new_model.manifest.config, context={STORED: True})
        if not config.data.path.exists():
            raise DataError(
                f"the newer version's data {config.data.path} is gone; pass --data FILE"
            )
        frame = load_training_data(config).frame
        old_frame = new_frame = frame
    elif new_model.manifest.data.kind == "transactions":
        # a log, as `segments assign --input` reads one: each customer's features derived
        # from it as of the day after its last line (read as a table it had no feature)
        from app.drift.offline import load_frame

        manifest = new_model.manifest
        old_frame = new_frame = load_frame(manifest.config, data, None, manifest.data.day_first)
    else:
        old_frame, new_frame = _read_features(data, [old_model, new_model])
    missing = sorted(
        set(old_model.estimator.feature_names + new_model.estimator.feature_names)
        - set(new_frame.columns)
    )
    if missing:
        raise DataError(f"{data or 'data'} lacks feature column(s): {', '.join(missing)}")
    before = pd.Series(old_model.estimator.predict(old_frame), name="from")
    after = pd.Series(new_model.estimator.predict(new_frame), name="to")
    # the names the service gives each version (edits by PATCH /v1/segments/{id} included)
    folder = store.root / model_name
    served_old = segment_names(old_model.manifest, folder)
    served_new = segment_names(new_model.manifest, folder)
    names_old = {sid: f"{sid} {name}" for sid, name in served_old.items()}
    names_new = {sid: f"{sid} {name}" for sid, name in served_new.items()}
    kept = int((before == after).sum())
    return pd.crosstab(before.map(names_old), after.map(names_new)), kept


def _read_features(data: Path, models: list[LoadedModel]) -> list[pd.DataFrame]:
    """``data`` as each model reads it, as file tagging reads it: blank cells, the training
    config's missing markers and each feature's own (``[[features]] missing_values``, which
    two versions may not share) are missing values; text in a numeric feature is an error
    naming the column (a blank cell reached scikit-learn as text, a traceback)."""
    categories = [
        name for model in models for name, kind in model.estimator.features if kind == "categorical"
    ]
    # each version reads it as its training read its own file (``[data] delimiter`` ...)
    # (and its categories as written, or as numbers for a version trained so)
    reads: dict[tuple[CsvFormat, frozenset[str]], pd.DataFrame] = {}
    frames = []
    for model in models:
        way = (model.manifest.csv_format, model.manifest.numbered_categories)
        if way not in reads:
            reads[way] = read_table(data, categories=categories, dialect=way[0], numbered=way[1])
        read = reads[way]
        markers = model.manifest.missing_values
        features = dict(model.estimator.features)
        frame = mask_markers(read.copy(), model.manifest.feature_markers, features)
        for name, kind in model.estimator.features:
            if kind == "numeric" and name in frame.columns:
                frame[name], _ = numeric_column(
                    frame,
                    name,
                    str(data),
                    missing_values=markers,
                    junk_is_missing=name in model.manifest.junk_as_missing,
                )
        frames.append(frame)
    return frames
