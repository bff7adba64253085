"""Tagging a log counts its exactly repeated lines as training does: each time, noted in
the terminal, or once with the model's ``[data] drop_duplicates = true``."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from app.cli.main import app as cli
from app.events.tagging import tag_log
from app.recording import load_serving
from app.registry.store import ModelStore
from app.training.data import load_training_data
from app.training.job import train
from tests.training.test_log_duplicates import NOTE, _config, logs


def test_tagging_counts_repeated_lines_as_the_model_was_trained_to(tmp_path: Path) -> None:
    once, twice, copies = logs(tmp_path)
    store = ModelStore(tmp_path / "store")
    summing = train(_config(once, tmp_path), store, promote=True).manifest
    serving = load_serving(store, summing.model_name, summing.version)
    tagged = tag_log(serving, twice, None)
    assert tagged.notes == [f"{copies} {NOTE}"] and tagged.dropped == {}
    trained = load_training_data(_config(twice, tmp_path)).frame
    assert tagged.ids == trained.index.to_list()
    assert [row["monetary"] for row in tagged.features] == trained["monetary"].to_list()
    shown = CliRunner().invoke(
        cli,
        [
            "assign", "--store", str(store.root), "--model", summing.model_name,
            "--input", str(twice), "--output", str(tmp_path / "out.csv"),
        ],
    )  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert f"note: {copies} {NOTE}" in " ".join(shown.output.split())

    once_only = train(_config(once, tmp_path, drop_duplicates=True), store).manifest
    serving = load_serving(store, once_only.model_name, once_only.version)
    deduplicated, plain = tag_log(serving, twice, None), tag_log(serving, once, None)
    assert deduplicated.notes == []
    assert deduplicated.dropped == {
        "an exact duplicate of another line (drop_duplicates = true)": copies
    }
    assert deduplicated.ids == plain.ids and deduplicated.features == plain.features
    assert deduplicated.segment_ids == plain.segment_ids
    assert (deduplicated.aggregates == plain.aggregates).all().all()
