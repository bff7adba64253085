"""Compare two versions: how one set of customers moves between their segments."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from app.errors import DataError
from app.registry.overrides import segment_names
from app.registry.store import LoadedModel, ModelStore
from app.training.config import TrainConfig
from app.training.data import load_training_data, read_table
from app.training.values import numeric_column


def migration_matrix(
    store: ModelStore, model_name: str, old: str, new: str, data: Path | None = None
) -> tuple[pd.DataFrame, int]:
    """Counts of customers by (old segment, new segment), labelled ``id name``, and how many
    customers keep their segment id."""
    old_model, new_model = store.load(model_name, old), store.load(model_name, new)
    if data is None:
        config = TrainConfig.model_validate(new_model.manifest.config)
        if not config.data.path.exists():
            raise DataError(
                f"the newer version's data {config.data.path} is gone; pass --data FILE"
            )
        frame = load_training_data(config).frame
    else:
        frame = _read_features(data, [old_model, new_model])
    missing = sorted(
        set(old_model.estimator.feature_names + new_model.estimator.feature_names)
        - set(frame.columns)
    )
    if missing:
        raise DataError(f"{data or 'data'} lacks feature column(s): {', '.join(missing)}")
    before = pd.Series(old_model.estimator.predict(frame), name="from")
    after = pd.Series(new_model.estimator.predict(frame), name="to")
    # the names the service gives each version (edits by PATCH /v1/segments/{id} included)
    folder = store.root / model_name
    served_old = segment_names(old_model.manifest, folder)
    served_new = segment_names(new_model.manifest, folder)
    names_old = {sid: f"{sid} {name}" for sid, name in served_old.items()}
    names_new = {sid: f"{sid} {name}" for sid, name in served_new.items()}
    kept = int((before == after).sum())
    return pd.crosstab(before.map(names_old), after.map(names_new)), kept


def _read_features(data: Path, models: list[LoadedModel]) -> pd.DataFrame:
    """``data`` with the models' numeric features read as file tagging reads them: blank
    cells and the training config's missing markers are missing values; text is an error
    naming the column (a blank cell reached scikit-learn as text, a traceback)."""
    categories = [
        name for model in models for name, kind in model.estimator.features if kind == "categorical"
    ]
    frame = read_table(data, categories=categories)
    for model in models:
        markers = model.manifest.missing_values
        for name, kind in model.estimator.features:
            if kind == "numeric" and name in frame.columns:
                frame[name], _ = numeric_column(
                    frame,
                    name,
                    str(data),
                    missing_values=markers,
                    junk_is_missing=name in model.manifest.junk_as_missing,
                )
    return frame
