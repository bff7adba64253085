"""The rows the outcome checks read (``checked_rows``): the columns of the seeded sample,
the same rows and values as the sample of those columns of every row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.training.config import parse_config
from app.training.missed import SAMPLE, checked_rows


@pytest.mark.parametrize("rows", [SAMPLE // 10, SAMPLE + 7_001])
def test_the_sample_of_the_columns_is_the_columns_of_the_sample(rows: int) -> None:
    config = parse_config(
        {
            "data": {"path": "unused.csv", "id_column": "customer_id"},
            "features": [{"name": "spend"}, {"name": "plan", "type": "categorical"}],
            "model": {"seed": 13},
        },
        base_dir=Path("."),
    )
    rng = np.random.default_rng(rows)
    frame = pd.DataFrame(
        {
            "unread": rng.random(rows),
            "plan": rng.choice(["a", "b", "c"], rows),
            "churned": rng.integers(0, 2, rows).astype(np.float64),
            "spend": rng.lognormal(3, 1, rows),
        },
        index=pd.Index([f"c{i}" for i in range(rows)], name="customer_id"),
    )
    outcomes = ["churned", "absent"]
    columns = ["spend", "plan", "churned"]
    expected = frame[columns]
    if rows > SAMPLE:
        expected = expected.sample(SAMPLE, random_state=13)
    pd.testing.assert_frame_equal(checked_rows(config, frame, outcomes), expected, check_exact=True)
