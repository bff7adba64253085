"""``segments assign --input FILE --record`` on files once recorded wrong, against real Redis.

A row with an unquoted thousands comma was recorded shifted (customer C1 stored with plan
"900", channel "pro", country "organic") and counted among "rejected rows 0"; two rows of
customer ``007`` counted as two customers.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from app.errors import DataError
from app.history import HistoryConfig
from app.registry.store import ModelStore
from tests.assignment.test_input_files import SHIFTED
from tests.history.test_record_run import _expected, _profiles, _record, _state
from tests.history.test_record_run import clean as clean  # fixtures of the recording tests
from tests.history.test_record_run import model as model


def test_a_shifted_row_is_rejected_and_not_recorded(
    model: tuple[ModelStore, str],
    config: HistoryConfig,
    customers_csv: Path,
    tmp_path: Path,
    clean: None,
) -> None:
    frame = pd.read_csv(customers_csv, dtype={"customer_id": str}).head(20)
    text = frame.to_csv(index=False).splitlines()
    source = tmp_path / "shift.csv"
    source.write_text("\n".join([*text[:2], SHIFTED, *text[2:]]) + "\n")
    state = _record(model, config, source, tmp_path / "runs", chunk_size=8)
    assert (state.counts.customers, state.counts.rejected) == (20, 1)
    assert state.rejects is not None
    rejects = pd.read_csv(state.rejects, keep_default_na=False)
    assert rejects.to_dict("records") == [
        {"row": 2, "customer_id": "C1", "reason": "line 3 has 16 fields, the header 15"}
    ]
    assert _profiles(config, ["C1"]) == {"C1": None}  # never stored, shifted or not
    profiles = _profiles(config, frame["customer_id"].tolist())
    assert all(p is not None for p in profiles.values())


def test_a_repeated_id_counts_as_one_customer(
    model: tuple[ModelStore, str],
    config: HistoryConfig,
    customers_csv: Path,
    tmp_path: Path,
    clean: None,
) -> None:
    """The later row is the one recorded (its profile), once: one history entry each."""
    frame = pd.read_csv(customers_csv, dtype={"customer_id": str}).head(3)
    frame["customer_id"] = ["007", "008", "009"]
    source = tmp_path / "twice.csv"
    later = frame.iloc[[1]].assign(customer_id="007")
    pd.concat([frame, later]).to_csv(source, index=False)
    state = _record(model, config, source, tmp_path / "runs")
    assert (state.counts.customers, state.counts.rejected) == (3, 1)
    expected = _expected(model, frame)
    recorded = _state(config, ["007", "008", "009"], set(expected.values()))
    assert recorded["customers"]["007"] == (expected["008"], 1, 1)
    profiles = _profiles(config, ["007", "008"])
    assert profiles["007"] == profiles["008"]
    assert state.rejects is not None
    rejects = pd.read_csv(state.rejects, keep_default_na=False, dtype={"customer_id": str})
    reason = "duplicate id '007': row 4 has it too (that row is used)"
    assert rejects.to_dict("records") == [{"row": 1, "customer_id": "007", "reason": reason}]


def test_ids_and_numbers_the_service_refuses_are_rejected_not_recorded(
    model: tuple[ModelStore, str],
    config: HistoryConfig,
    customers_csv: Path,
    tmp_path: Path,
    clean: None,
) -> None:
    """An audit recorded ids with a tab, a newline, a bidi override or 200 characters, and a
    1e300 feature: stored customers that every by-id request then refused (422). Such rows
    are rejected with the reason, as ``/v1/assign`` words it; the others are recorded."""
    frame = pd.read_csv(customers_csv, dtype={"customer_id": str}).head(8)
    frame["monetary"] = frame["monetary"].astype(object)
    long_id = "L" * 129
    frame.loc[0, "customer_id"] = "TAB\tX"
    frame.loc[1, "customer_id"] = "NL\nX"
    frame.loc[2, "customer_id"] = "BIDI\u202eX"
    frame.loc[3, "customer_id"] = long_id
    frame.loc[4, "customer_id"] = "   "
    frame.loc[5, "monetary"] = "1e300"
    frame.loc[6, "customer_id"] = "L" * 128  # at the bound: taken
    source = tmp_path / "refused.csv"
    frame.to_csv(source, index=False)
    state = _record(model, config, source, tmp_path / "runs")
    assert (state.counts.customers, state.counts.rejected) == (2, 6)
    assert state.rejects is not None
    rejects = pd.read_csv(state.rejects, keep_default_na=False, dtype={"customer_id": str})
    unreadable = "customer id contains control characters, line separators or bidirectional"
    assert rejects[["row", "reason"]].to_dict("records") == [
        {"row": 1, "reason": f"{unreadable} overrides: 'TAB\\tX'"},
        {"row": 2, "reason": f"{unreadable} overrides: 'NL\\nX'"},
        {"row": 3, "reason": f"{unreadable} overrides: 'BIDI\\u202eX'"},
        {"row": 4, "reason": "customer id longer than 128 characters"},
        {"row": 5, "reason": "no customer id (empty cell)"},
        {
            "row": 6,
            "reason": "column 'monetary' is out of range (magnitude 2^63 or more): '1e+300'",
        },
    ]
    refused = [*frame["customer_id"].iloc[:6]]
    assert _profiles(config, refused) == dict.fromkeys(refused)
    kept = [*frame["customer_id"].iloc[6:]]
    assert all(p is not None for p in _profiles(config, kept).values())


def test_a_file_without_the_models_columns_starts_no_run(
    model: tuple[ModelStore, str],
    config: HistoryConfig,
    customers_csv: Path,
    tmp_path: Path,
    clean: None,
) -> None:
    """It failed after printing a run id, and left a run file of 0 rows to resume."""
    source = tmp_path / "no_plan.csv"
    pd.read_csv(customers_csv).head(5).drop(columns=["plan"]).to_csv(source, index=False)
    runs = tmp_path / "runs"
    with pytest.raises(DataError, match="missing column\\(s\\) 'plan'"):
        _record(model, config, source, runs)
    assert not runs.exists() or not list(runs.iterdir())
