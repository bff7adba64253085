"""``data_notes`` finds each categorical feature's distinct values once and hands them to the
three notes that read them: the same notes as each note finding them itself, on columns where
every one of them fires (and on the text as pandas and as pyarrow read it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.datasets import make_customers
from app.training.data_notes import (
    data_notes,
    near_duplicate_categories,
    numeric_bands,
    ordered_answers,
)
from tests.conftest import example_config


@pytest.mark.parametrize("dtype", [object, "string"])
def test_notes_from_the_shared_distinct_values_are_the_notes_each_finds(
    tmp_path: Path, dtype: object
) -> None:
    frame = make_customers(3_000, 3)[0].set_index("customer_id")
    rng = np.random.default_rng(0)
    n = len(frame)
    # plan: spellings that differ in case and spacing, some missing
    frame["plan"] = pd.Series(
        rng.choice(["pro", " Pro ", "PRO", "free", None], n), index=frame.index
    )
    # channel: answers on an ordered scale
    scale = ["Strongly disagree", "Disagree", "Neutral", "Agree", "Strongly agree"]
    frame["channel"] = pd.Series(rng.choice(scale, n), index=frame.index)
    # country: bands of numbers, and very many of them among few customers is another note
    bands = ["Less than $40K", "$40K - $60K", "$60K - $80K", "$80K - $120K", "$120K +"]
    frame["country"] = pd.Series(rng.choice(bands, n), index=frame.index)
    for name in ("plan", "channel", "country"):
        frame[name] = frame[name].astype(dtype)  # type: ignore[call-overload]
    config = example_config("customers", tmp_path / "unused.csv")
    _, notes = data_notes(config, frame)
    alone = (
        near_duplicate_categories(config, frame)
        + ordered_answers(config, frame)
        + numeric_bands(config, frame)
    )
    assert len(alone) == 3, alone  # each of the three fires
    assert all(note in notes for note in alone)
    # and in the same order among the others
    assert [note for note in notes if note in alone] == alone
