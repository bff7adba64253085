"""A rule whose customers an earlier rule takes holds none, and the note says so: it said
"matches none of the data" of `tenure > 40` behind `tenure > 10` (an outside audit's
command-line pass), which sends the analyst looking for a typo that is not there."""

from __future__ import annotations

from pathlib import Path

from app.registry.store import ModelStore
from app.training.config import parse_config
from app.training.job import train
from tests.training.test_frictions import churn_config, churn_frame


def test_a_rule_shadowed_by_an_earlier_one_is_noted_as_such(tmp_path: Path) -> None:
    frame = churn_frame()
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    config = churn_config(data)
    config["rules"] = [
        {"name": "Settled", "when": "tenure > 10"},
        {"name": "Loyal", "when": "tenure > 40"},
        {"name": "Nobody", "when": "tenure < -1000"},
    ]
    notes = train(
        parse_config(config, base_dir=tmp_path), ModelStore(tmp_path / "store")
    ).manifest.data.notes
    loyal = int((frame["tenure"] > 40).sum())
    assert loyal > 0
    assert (
        f"rule segment 'Loyal' holds no customer: the {loyal:,} customers 'tenure > 40' "
        "matches are all taken by the earlier rule(s) 'Settled' (rules are evaluated in "
        "order, the first match wins): put it before them, or narrow them"
    ) in notes, notes
    # a rule that matches nobody at all is still said to
    assert "rule segment 'Nobody' holds no customer: 'tenure < -1000' matches none of the data" in (
        notes
    ), notes
