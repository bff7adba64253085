"""The rules package split by concern still loads artefacts pickled before the split."""

from __future__ import annotations

import pickle

from app.training import rules


def test_a_condition_pickled_under_the_old_module_path_still_loads() -> None:
    """Artefacts written before the split name ``app.training.rules.Compare`` (and the other
    nodes, and ``RuleSegment``); the package re-exports them under those names."""
    condition = rules.parse_condition('x < 3 and not (c in ["a"] or c is missing)', KINDS)
    segment = rules.RuleSegment("r", condition, "x < 3", None, None)
    data = pickle.dumps(segment, protocol=0)  # text protocol: module paths are plain lines
    for module in ("conditions", "segments", "parser", "values"):
        data = data.replace(f"app.training.rules.{module}\n".encode(), b"app.training.rules\n")
    assert b"app.training.rules.conditions" not in data
    restored = pickle.loads(data)
    assert restored == segment
    assert rules.evaluate_row(restored.condition, {"x": 1, "c": "b"})


KINDS: rules.FeatureKinds = {"x": "numeric", "c": "categorical"}
