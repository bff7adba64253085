"""A slot's slice of the rows grouped by slot (``SlotRows``) holds what a boolean mask of
the slot selects, in the same order: every per-segment figure the profile computes from it
(means, medians, standardised means) is the same to the bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.training.profile import SlotRows


def _same(a: float, b: float) -> bool:
    return (np.isnan(a) and np.isnan(b)) or a == b


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    skewed = rng.lognormal(3.0, 2.0, n)
    skewed[rng.random(n) < 0.05] = np.nan
    counts = pd.array(rng.integers(0, 40, n), dtype="Int64")
    counts[rng.random(n) < 0.03] = pd.NA
    return pd.DataFrame(
        {
            "spend": skewed,
            "orders": rng.integers(0, 1_000_000, n),
            "visits": counts,
            "share": pd.array(rng.random(n), dtype="float64[pyarrow]"),
            "tiny": rng.normal(0, 1e-12, n) + 1e6,  # sums where order shows in the last bits
        },
        index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"),
    )


@pytest.mark.parametrize("count", [1, 4, 7])  # 7: two slots hold no row
def test_slices_hold_the_masked_rows(count: int) -> None:
    rng = np.random.default_rng(count)
    n = 30_011
    frame = _frame(rng, n)
    slots = rng.choice(np.arange(min(count, 5)), n, p=None).astype(np.int64)
    # the profile's transformed numeric block: a DataFrame over one 2-D float array
    transformed = pd.DataFrame(
        np.log1p(rng.random((n, 3)) * 1e4), index=frame.index, columns=["a", "b", "c"]
    )
    by_slot = SlotRows(slots, count)
    raw, grouped = by_slot.gather(frame), by_slot.gather(transformed)
    for slot in range(count):
        mask = slots == slot
        rows = by_slot.rows(slot)
        pd.testing.assert_frame_equal(raw.iloc[rows], frame.loc[mask], check_exact=True)
        assert rows.stop - rows.start == int(mask.sum())
        if not mask.any():
            continue
        for col in frame.columns:
            sliced, masked = raw[col].iloc[rows], frame.loc[mask, col]
            assert _same(float(sliced.mean()), float(masked.mean())), col
            assert _same(float(sliced.median()), float(masked.median())), col
            assert _same(float(sliced.std()), float(masked.std())), col
        # the standardised means take the whole block's column means at once
        got = grouped.iloc[rows].mean().to_numpy()
        want = transformed.loc[mask].mean().to_numpy()
        assert got.tobytes() == want.tobytes()


def test_order_is_stable_within_a_slot() -> None:
    slots = np.array([2, 0, 2, 1, 0, 2, 0])
    by_slot = SlotRows(slots, 4)
    assert by_slot.order.tolist() == [1, 4, 6, 3, 0, 2, 5]
    assert [by_slot.rows(s) for s in range(4)] == [
        slice(0, 3),
        slice(3, 4),
        slice(4, 7),
        slice(7, 7),
    ]
