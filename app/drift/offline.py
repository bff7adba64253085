"""Offline drift: a customer file (or transaction log) against a stored version.

The file is read as the version's own training config reads its data (for a transaction
log, the same RFM derivation as training, as of the day after its last event unless
``reference_date`` is given), assigned by the version's model, and binned against its
reference.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from app.drift.compare import report
from app.drift.psi import category_counts, numeric_counts
from app.drift.schemas import DriftReport, Thresholds
from app.errors import DataError
from app.registry.store import ModelStore
from app.seen_ids import SeenIds
from app.training.config import OutcomesConfig, TrainConfig, parse_config
from app.training.csv_format import CsvFormat
from app.training.data import (
    PARQUET_SUFFIXES,
    TrainingData,
    check_data_file,
    csv_options,
    index_by_id,
    learnt_booleans,
    load_training_data,
    read_error,
    typed_categories,
)
from app.training.markers import markers_of, mask_markers
from app.training.model import SegmentationModel
from app.training.values import for_people, numeric_column, parse_numbers
from app.words import counted, echoed


def config_for_file(
    config: dict[str, object], path: Path, reference_date: date | None = None
) -> TrainConfig:
    """A version's training config (``manifest.config``) reading ``path`` instead, without
    outcomes (a new file need not have them)."""
    cfg = parse_config(
        dict(config), base_dir=path.parent, source="the version's config", stored=True
    )
    # each id's last row, as segments assign keeps it: the version's duplicate_ids was for its
    # training file, and its hint (set it in [data]) cannot be followed for this one
    data = cfg.data.model_copy(update={"path": path.resolve(), "duplicate_ids": "last"})
    if data.transactions is not None:
        tx = data.transactions.model_copy(update={"reference_date": reference_date})
        data = data.model_copy(update={"transactions": tx})
    return cfg.model_copy(update={"data": data, "outcomes": OutcomesConfig()})


def load_frame(
    config: dict[str, object],
    path: Path,
    reference_date: date | None = None,
    day_first: bool | None = None,
) -> pd.DataFrame:
    """The file's customers and features, as training would see them (``day_first``: the
    version's ``data.day_first``, for a log that proves no day/month order)."""
    return load_data(config, path, reference_date, day_first).frame


def load_data(
    config: dict[str, object],
    path: Path,
    reference_date: date | None = None,
    day_first: bool | None = None,
) -> TrainingData:
    """``load_frame``'s data, with the reference date a log's features were derived at."""
    cfg = config_for_file(config, path, reference_date)
    # k_min only bounds the rows needed to train; a small file can still be compared
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"k_min": 2})})
    return load_training_data(cfg, day_first)


CHUNK_ROWS = 50_000
"""Rows of a CSV customer table read at a time: memory stays bounded by this, not the file."""


def drift_of_frame(
    store: ModelStore,
    model_name: str,
    version: str,
    frame: pd.DataFrame,
    thresholds: Thresholds,
    source: str,
) -> DriftReport:
    return drift_of_frames(store, model_name, version, [frame], thresholds, source)


def drift_of_frames(
    store: ModelStore,
    model_name: str,
    version: str,
    frames: Iterable[pd.DataFrame],
    thresholds: Thresholds,
    source: str,
) -> DriftReport:
    """The drift of the customers of ``frames`` (parts of one file), counted part by part."""
    loaded = store.load(model_name, version)
    manifest, model = loaded.manifest, loaded.estimator
    assert isinstance(model, SegmentationModel)
    ref = manifest.drift_reference
    features: dict[str, np.ndarray] = {}
    segments: Counter[str] = Counter()
    for frame in frames:
        if ref is None or not len(frame):
            continue
        for f in ref.features:
            column = frame[f.name]
            if f.type == "numeric":
                values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
                _refuse_infinite(values, frame, f.name, source)
                counts = numeric_counts(values, f.edges or [])
            else:
                counts = category_counts(column.tolist(), f.categories or [])
            features[f.name] = features.get(f.name, 0) + counts
        labels, counts = np.unique(model.predict(frame).astype(str), return_counts=True)
        segments.update({str(k): int(v) for k, v in zip(labels, counts, strict=True)})
    found = {name: [int(c) for c in counts] for name, counts in features.items()}
    return report(manifest, found, dict(segments), thresholds, source)


def _refuse_infinite(values: np.ndarray, frame: pd.DataFrame, name: str, source: str) -> None:
    """An infinite value cannot be binned or assigned: one error naming the column (as a
    text value in a numeric column is), not the model's traceback."""
    infinite = np.isinf(values)
    if infinite.any():
        first = frame.index[int(np.argmax(infinite))]
        raise DataError(
            f"column {name!r} of {source} holds {int(infinite.sum()):,} infinite value(s) "
            f"(e.g. customer {str(first)[:40]!r}): drift compares finite numbers; blank them "
            "(a missing value) or leave those rows out"
        )


def drift_of_file(
    store: ModelStore,
    model_name: str,
    version: str,
    path: Path,
    thresholds: Thresholds,
    reference_date: date | None = None,
) -> DriftReport:
    manifest = store.manifest(model_name, version)
    cfg = config_for_file(manifest.config, path, reference_date)
    repeats, left_out = [0], Counter[str]()
    booleans = manifest.boolean_features  # each TRUE cell the boolean, chunk or not
    source = str(path)
    if cfg.data.kind == "table" and path.suffix.lower() not in PARQUET_SUFFIXES:
        numbered = manifest.numbered_categories
        frames: Iterable[pd.DataFrame] = table_chunks(
            cfg, path, booleans=booleans, numbered=numbered, repeats=repeats, left_out=left_out
        )
    else:  # a log's features need every event of a customer; Parquet is read whole
        loaded = load_data(manifest.config, path, reference_date, manifest.data.day_first)
        frames = [learnt_booleans(loaded.frame, booleans)]
        if loaded.reference_date is not None:  # the date says what the figures compare:
            # the training log itself, as of its own last day, drifted by that alone
            how = "" if reference_date else ", the day after its last line"
            trained = manifest.data.reference_date
            source += f" (a log's features as of {loaded.reference_date}{how}"
            source += f"; trained as of {trained})" if trained else ")"
    found = drift_of_frames(store, model_name, version, frames, thresholds, source)
    notes = []
    if repeats[0]:
        notes.append(
            f"{counted(repeats[0], 'row')} of ids the file repeats "
            "left out: each customer counted once (as segments assign keeps one row an id)"
        )
    if left_out:
        rows = sum(left_out.values())
        notes.append(
            f"{counted(rows, 'row')} with text in a numeric feature left "
            "out, as segments assign rejects them ("
            + "; ".join(f"{what}: {n:,}" for what, n in left_out.most_common(3))
            + ")"
        )
    if notes:
        found = found.model_copy(update={"note": "; ".join(notes)})
    return found


def _without_text_rows(
    frame: pd.DataFrame, cfg: TrainConfig, missing_values: Iterable[str], left_out: Counter[str]
) -> pd.DataFrame:
    """``frame`` without the rows ``segments assign`` rejects for a numeric feature's text
    (``'abc'``, or ``'1,200'`` whatever ``errors`` says; other text is missing with
    ``errors = "missing"``), each counted in ``left_out`` by its first example: a bank
    file's one ``age = 'abc'`` stopped the whole drift check with a hint to set ``errors``,
    which only a retrain could follow."""
    bad = np.zeros(len(frame), dtype=bool)
    for feature in cfg.features:
        if feature.type != "numeric":
            continue
        column = frame[feature.name]
        if pd.api.types.is_numeric_dtype(column):  # read as numbers: no text to find
            continue
        junk = np.asarray(parse_numbers(column, missing_values).junk, dtype=bool)
        if feature.errors == "missing" and junk.any():
            junk[junk] = for_people(column[junk])
        new = junk & ~bad
        if new.any():  # counted under the feature's first example, across chunks
            example = column.iloc[int(np.flatnonzero(new)[0])]
            named = f"column {feature.name!r} "
            key = next(
                (k for k in left_out if k.startswith(named)),
                f"{named}is not a number, e.g. {echoed(example)}",
            )
            left_out[key] += int(new.sum())
        bad |= junk
    return frame.loc[~bad] if bad.any() else frame


def table_chunks(
    cfg: TrainConfig,
    path: Path,
    rows: int = CHUNK_ROWS,
    booleans: Collection[str] = (),
    numbered: Collection[str] = (),
    repeats: list[int] | None = None,
    left_out: Counter[str] | None = None,
) -> Iterator[pd.DataFrame]:
    """A CSV customer table ``rows`` at a time, each read and checked as training reads it
    (ids as text, the config's missing markers and each feature's own, text in a numeric
    column an error unless ``errors = "missing"``). A feature missing in every row is
    counted (all in the missing bin: a drift), not refused as training refuses it. An id
    repeated in the file is counted once (its last row within a chunk, its first chunk's
    across chunks); ``repeats[0]`` counts the rows left out so."""
    data = cfg.data
    wanted = list(dict.fromkeys([data.id_column, *cfg.feature_names]))
    dialect = CsvFormat.of(data)  # as training read its file
    check_data_file(path, wanted, dialect)
    categories = [f.name for f in cfg.features if f.type == "categorical"]
    written = [c for c in categories if c not in numbered]
    options = csv_options(data.id_column, wanted, data.missing_values, categories, dialect, written)
    markers = markers_of((f.model_dump() for f in cfg.features), data.missing_values)
    kinds = {f.name: f.type for f in cfg.features}
    read, seen = 0, SeenIds()
    repeats = repeats if repeats is not None else [0]
    left_out = left_out if left_out is not None else Counter()
    try:
        for chunk in pd.read_csv(path, chunksize=rows, **options):
            chunk = dialect.numbers(chunk, [data.id_column, *categories])
            chunk = typed_categories(chunk, categories, numbered)  # as training reads them
            chunk = learnt_booleans(chunk, booleans)  # whatever else the chunk holds
            read += len(chunk)
            frame, _, superseded = index_by_id(chunk, data.id_column, path.name, "last")
            ids = list(frame.index)
            first = set(seen.first_seen(ids))
            if len(first) < len(ids):  # ids an earlier chunk had
                frame = frame.loc[[i in first for i in ids]]
            repeats[0] += superseded + len(ids) - len(first)
            mask_markers(frame, markers, kinds)  # a feature's own (pdays = -1)
            frame = _without_text_rows(frame, cfg, data.missing_values, left_out)
            for feature in cfg.features:
                if feature.type == "numeric":
                    frame[feature.name], _ = numeric_column(
                        frame,
                        feature.name,
                        path.name,
                        missing_values=data.missing_values,
                        junk_is_missing=feature.errors == "missing",
                    )
            yield frame
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise read_error(path, exc, dialect) from None
    if not read:
        raise DataError(f"data file {path} has a header but no rows")
