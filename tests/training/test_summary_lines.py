"""The training summary says why the chosen candidate won, once, whatever the method."""

from __future__ import annotations

import pytest

from app.cli.common import print_manifest_summary
from app.registry.store import ModelStore
from app.training.job import TrainResult


def _summary(manifest: object, capsys: pytest.CaptureFixture[str]) -> str:
    print_manifest_summary(manifest, None)  # type: ignore[arg-type]
    return " ".join(capsys.readouterr().out.split())


def test_the_reason_is_shown_for_every_method_and_a_note_is_not_repeated(
    trained: tuple[ModelStore, TrainResult], capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = trained[1].manifest
    selection = manifest.selection
    assert selection.reason
    shown = _summary(manifest, capsys)
    assert f"selection ({selection.method}): {selection.reason}" in shown
    silhouette = manifest.model_copy(
        update={
            "selection": selection.model_copy(
                update={"method": "silhouette", "reason": "highest silhouette (0.412)"}
            )
        }
    )
    assert "selection (silhouette): highest silhouette (0.412)" in _summary(silhouette, capsys)
    text = "no candidate in k = 3..8 is stable; chose k=3, whose smallest segment is largest"
    fallback = manifest.model_copy(
        update={"selection": selection.model_copy(update={"note": text, "reason": text})}
    )
    assert _summary(fallback, capsys).count(text) == 1
