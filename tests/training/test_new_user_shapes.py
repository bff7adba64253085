"""Shapes of public tables a new user brought (issue 14, a second round): a frame's index
written by pandas' ``to_csv`` as the id column, ..."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from app.cli.main import app
from app.registry.store import ModelStore

runner = CliRunner()


def survey_frame(n: int = 200, seed: int = 5) -> pd.DataFrame:
    """A survey's answers, indexed by respondent: two groups apart on both numbers."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, n)
    return pd.DataFrame(
        {
            "visits": np.array([2.0, 12.0])[group] + rng.normal(0, 1, n),
            "age": np.array([25.0, 60.0])[group] + rng.normal(0, 3, n),
            "answer": rng.choice(["Agree", "Disagree"], n),
        },
        index=[f"R{i:05d}" for i in range(n)],
    )


def write_config(path: Path, data: Path, id_column: str | None) -> None:
    id_line = "" if id_column is None else f'id_column = "{id_column}"\n'
    path.write_text(
        f'[data]\npath = "{data}"\n{id_line}'
        '[[features]]\nname = "visits"\n[[features]]\nname = "age"\n'
        '[[features]]\nname = "answer"\ntype = "categorical"\n'
        "[model]\nk_min = 2\nk_max = 2\n"
    )


def test_a_frames_index_written_by_to_csv_is_the_id_column_unnamed_0(tmp_path: Path) -> None:
    """pandas writes a frame's index under an empty header cell; the error named it
    'Unnamed: 0' (pandas' name), and a config saying so crashed with a KeyError of pyarrow's
    reader, which read the header as ''."""
    data = tmp_path / "survey.csv"
    survey_frame().to_csv(data, lineterminator="\r\n", encoding="utf-8-sig")
    assert data.read_bytes().startswith(b"\xef\xbb\xbf,visits")
    config = tmp_path / "survey.toml"
    store = tmp_path / "store"
    write_config(config, data, None)
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "the first column has no name in the header" in said
    assert "id_column = 'Unnamed: 0' reads it" in said
    write_config(config, data, "Unnamed: 0")
    train = ["train", "--config", str(config), "--store", str(store), "--promote"]
    result = runner.invoke(app, train)
    assert result.exit_code == 0, result.output
    assert ModelStore(store).manifests("customers")[0].data.rows == 200
    tagged = tmp_path / "tagged.csv"
    result = runner.invoke(
        app, ["assign", "--input", str(data), "--output", str(tagged), "--store", str(store)]
    )
    assert result.exit_code == 0, result.output
    out = pd.read_csv(tagged, dtype=str)
    assert list(out.columns) == ["Unnamed: 0", "segment_id", "segment_name"]
    assert out["Unnamed: 0"].tolist() == [f"R{i:05d}" for i in range(200)]
