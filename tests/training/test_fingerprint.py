"""The training data's fingerprint: the digest of ``hash_pandas_object(frame, index=True)``,
whatever way it is computed faster."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from app.training.data import frame_fingerprint


def _obvious(frame: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    hashed = pd.util.hash_pandas_object(frame, index=True)
    digest.update(np.ascontiguousarray(hashed.to_numpy()).tobytes())
    return digest.hexdigest()


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    plan = pd.Series(rng.choice(np.array(["a", "b", None], dtype=object), rows), dtype="str")
    return pd.DataFrame(
        {
            "spend": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(size=rows)),
            "plan": plan.to_numpy(),
            "arrow": pd.array(rng.choice(np.array(["x", "", None], dtype=object), rows), "string"),
            "mixed": rng.choice(np.array([3, "3", 3.0, True, None], dtype=object), rows),
            "count": rng.integers(0, 5, rows),
            "flag": rng.random(rows) < 0.5,
        },
        index=pd.Index([f"c{i:05d}" for i in rng.permutation(rows)], dtype="str"),
    )


def test_the_fingerprint_is_the_digest_of_the_pandas_row_hashes() -> None:
    for seed in range(3):
        frame = _frame(2_000, seed)
        assert frame_fingerprint(frame) == _obvious(frame)
        assert frame_fingerprint(frame.iloc[::-1]) == _obvious(frame.iloc[::-1])
    numeric_ids = _frame(500, 9).reset_index(drop=True)
    assert frame_fingerprint(numeric_ids) == _obvious(numeric_ids)
    without_objects = _frame(2_000, 5).drop(columns="mixed")  # the faster path
    assert frame_fingerprint(without_objects) == _obvious(without_objects)
    object_ids = without_objects.set_axis(without_objects.index.astype(object))
    assert frame_fingerprint(object_ids) == _obvious(object_ids)


def test_the_fingerprint_changes_with_one_cell() -> None:
    frame = _frame(1_000, 4).drop(columns="mixed")
    changed = frame.copy()
    changed.iloc[10, changed.columns.get_loc("plan")] = "zzz"
    assert frame_fingerprint(changed) != frame_fingerprint(frame)
