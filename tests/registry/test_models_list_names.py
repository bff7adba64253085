"""`segments models list` when the configured model is not in the store (a new user's case)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from app.cli.main import app
from app.registry.store import ModelStore
from app.training.job import train
from tests.conftest import example_config


def test_list_of_an_absent_model_names_the_models_the_store_holds(
    tmp_path: Path, transactions_csv: Path
) -> None:
    """The README trains `--model rfm`, then runs `models list`: an empty table of `customers`
    said nothing; it now says which models the store holds and how to choose one."""
    store = tmp_path / "store"
    train(example_config("transactions", transactions_csv), ModelStore(store))
    result = CliRunner().invoke(app, ["models", "list", "--store", str(store)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "no versions of 'customers'" in text
    assert "transactions" in text and "--model" in text
    assert "silhouette" not in text  # no empty table of versions before it
