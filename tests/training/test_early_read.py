"""The job reads the data file on its second thread while it imports scikit-learn and SciPy
(about a second of a fresh process: bench/README.md). A failed read still surfaces as the
same one error, raised where ``train`` was called."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

import app.training.job as job
from app.cli.main import app
from app.errors import DataError
from app.registry.store import ModelStore
from app.training.config import load_config

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_importing_the_job_imports_no_fitting_library() -> None:
    # what the CLI and the bench import before ``train`` starts the read
    code = (
        "import sys, app.registry.store, app.training.config, app.training.job\n"
        "print(sorted(set(sys.modules) & {'sklearn', 'scipy', 'matplotlib', "
        "'app.training.steps'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


def _config(folder: Path, data: Path) -> Path:
    config = folder / "config.toml"
    config.write_text(
        f'[data]\npath = "{data}"\n\n[[features]]\nname = "spend"\n\n[[features]]\n'
        'name = "plan"\ntype = "categorical"\n\n[model]\nk_min = 3\nk_max = 4\n'
    )
    return config


def test_a_failed_read_raises_its_own_error_where_train_was_called(tmp_path: Path) -> None:
    data = tmp_path / "customers.csv"
    data.write_text("customer_id,spend,plan\n")  # a header, no rows
    config, store = _config(tmp_path, data), tmp_path / "store"
    expected = f"data file {data} has a header but no rows"
    threads = threading.active_count()
    with pytest.raises(DataError) as raised:
        job.train(load_config(config), ModelStore(store))
    assert str(raised.value) == expected
    assert threading.active_count() == threads  # the reading thread has ended
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 1
    assert " ".join(result.output.split()) == f"error: {expected}"
    assert not list(store.rglob("*.json"))


def test_a_bug_in_the_read_is_raised_as_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(config: object) -> None:
        raise KeyError("a bug, not a data error")

    monkeypatch.setattr(job, "load_training_data", broken)
    data = tmp_path / "customers.csv"
    data.write_text("customer_id,spend,plan\nc1,1,a\n")
    with pytest.raises(KeyError, match="a bug, not a data error"):
        job.train(load_config(_config(tmp_path, data)), ModelStore(tmp_path / "store"))
