"""A store the job cannot write: one ``error:`` line and exit 1, never a traceback.

Tests run as root, where a read-only mode bit does not stop a write. The failures here are
ones root gets too: a store path under a regular file (ENOTDIR), and a file-size limit of the
process (``RLIMIT_FSIZE``: every write past it fails with EFBIG, as a full disk fails with
ENOSPC) set in a child process that runs the real ``segments`` command.
"""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli.main import app
from app.errors import StoreWriteError
from app.registry.store import ModelStore
from app.training.job import train
from tests.conftest import example_config
from tests.registry.test_store import MODEL, add_version, version_at

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "examples" / "customers.toml")


def one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, output
    assert "Traceback" not in output
    return " ".join(output.split())


def run_limited(
    args: list[str], max_file_bytes: int, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``segments ARGS`` in a child whose writes past ``max_file_bytes`` fail (EFBIG)."""

    def limit() -> None:  # pragma: no cover - runs in the child
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write instead of the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    return subprocess.run(
        [sys.executable, "-c", "from app.cli.main import main; main()", *args],
        preexec_fn=limit,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={"PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        check=False,
    )


@pytest.fixture
def small_csv(tmp_path: Path, customers: tuple[pd.DataFrame, object]) -> Path:
    path = tmp_path / "customers.csv"
    customers[0].head(600).to_csv(path, index=False)
    return path


def test_an_unwritable_store_stops_training_before_the_first_step(
    tmp_path: Path, small_csv: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a regular file where the store's parent should be")
    store = ModelStore(blocker / "models")
    steps: list[str] = []
    config = example_config("customers", small_csv)
    with pytest.raises(StoreWriteError) as caught:
        train(config, store, on_step=steps.append)
    assert steps == []  # refused before loading the data, let alone fitting
    assert str(blocker / "models" / "customers") in str(caught.value)
    assert "Not a directory" in str(caught.value)


def test_cli_train_into_an_unwritable_store_is_one_error_line(
    tmp_path: Path, small_csv: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    args = ["train", "-c", CONFIG, "--data", str(small_csv), "--store", str(blocker / "m")]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    output = one_error_line(result.output)
    assert f"cannot write to the model store folder {blocker / 'm' / 'customers'}" in output
    assert "Not a directory" in output


def test_a_full_disk_while_writing_the_version_is_one_error_line_and_no_version(
    tmp_path: Path, small_csv: Path
) -> None:
    """The write check passes (4 KB), the report and artefact do not fit: the failure comes
    from inside ``register`` and still ends in one line, with no version left behind."""
    store = tmp_path / "models"
    result = run_limited(
        ["train", "-c", CONFIG, "--data", str(small_csv), "--store", str(store)],
        max_file_bytes=8192,
        cwd=REPO,
    )
    assert result.returncode == 1, result.stderr
    output = one_error_line(result.stderr)
    assert f"cannot write to the model store folder {store / 'customers'}" in output
    assert "File too large" in output
    assert ModelStore(store).versions("customers") == []
    assert not list(store.rglob(".tmp-*"))


def test_cli_train_refuses_a_store_where_nothing_can_be_written(
    tmp_path: Path, small_csv: Path
) -> None:
    store = tmp_path / "models"
    result = run_limited(
        ["train", "-c", CONFIG, "--data", str(small_csv), "--store", str(store)],
        max_file_bytes=0,
        cwd=REPO,
    )
    assert result.returncode == 1, result.stderr
    output = one_error_line(result.stderr)
    assert "File too large" in output
    assert not store.exists()  # the check leaves the store as it found it


def test_promote_and_rollback_that_cannot_write_the_pointer_are_one_error_line(
    tmp_path: Path,
) -> None:
    store = ModelStore(tmp_path / "models")
    first, second = version_at(1), version_at(2)
    add_version(store, first)
    add_version(store, second)
    store.promote(MODEL, first)
    common = ["--store", str(store.root), "--model", MODEL]

    result = run_limited(["models", "promote", second, *common], max_file_bytes=0, cwd=REPO)
    assert result.returncode == 1, result.stderr
    output = one_error_line(result.stderr)
    assert f"cannot write to the model store folder {store.root / MODEL}" in output
    assert "File too large" in output
    assert store.promoted(MODEL) == first
    assert not list((store.root / MODEL).glob(".promoted.json.*"))

    store.promote(MODEL, second)
    result = run_limited(["models", "rollback", *common], max_file_bytes=0, cwd=REPO)
    assert result.returncode == 1, result.stderr
    assert "File too large" in one_error_line(result.stderr)
    assert store.promoted(MODEL) == second


def test_a_promotion_over_http_that_cannot_write_the_pointer_is_a_503_problem(
    tmp_path: Path,
    trained: tuple[ModelStore, object],
    service_redis: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os
    import shutil

    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    shared, _ = trained
    store = ModelStore(tmp_path / "store")
    shutil.copytree(shared.root, store.root)
    current = store.promoted("customers")
    assert current is not None
    other = "20990101-000000-abcdef"  # the same artefact under a second version id
    shutil.copytree(store.version_dir("customers", current), store.root / "customers" / other)
    manifest_path = store.root / "customers" / other / "manifest.json"
    manifest_path.write_text(manifest_path.read_text().replace(current, other))
    settings = Settings(
        model_store=store.root,
        model_name="customers",
        dev_mode=True,
        access_log=False,
        redis_url=service_redis,
        key_prefix=f"store-writes-{os.getpid()}:",
        data_dir=tmp_path / "data",
    )
    with TestClient(create_app(settings)) as client:

        def no_space(src: object, dst: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", no_space)
        response = client.post(f"/v1/models/{other}/promote")
        monkeypatch.undo()
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "No space left on device" in response.json()["detail"]
        assert store.promoted("customers") == current
        assert client.get("/v1/segments").status_code == 200
