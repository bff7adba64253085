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


def test_a_store_with_no_model_is_named_by_its_folder(tmp_path: Path) -> None:
    """A model trained from another folder (the store is ``models/`` of the current one) or
    under another SEGMENTS_MODEL_STORE: `segments assign` said "no model 'ecom' in the store
    (it holds no model yet)" and `models list` printed an empty table, neither saying where
    they had looked, nor how to look elsewhere."""
    store = tmp_path / "elsewhere"
    data = tmp_path / "c.csv"
    data.write_text("customer_id,x\n1,2\n")
    runner = CliRunner()
    where = f"it holds no model yet: {store.resolve()}; --store or SEGMENTS_MODEL_STORE names"
    listed = runner.invoke(app, ["models", "list", "--model", "ecom", "--store", str(store)])
    assert listed.exit_code == 1, listed.output  # a model named and absent: as `models show`
    assert where in " ".join(listed.output.split())
    assert "silhouette" not in listed.output  # no empty table
    assign = ["assign", "--model", "ecom", "--input", str(data), "--store", str(store)]
    tagged = runner.invoke(app, [*assign, "--output", str(tmp_path / "t.csv")])
    assert tagged.exit_code == 1
    assert f"error: no model 'ecom' in the store ({where}" in " ".join(tagged.output.split())


def test_list_of_a_model_named_and_absent_fails_and_of_the_default_does_not(
    tmp_path: Path, transactions_csv: Path
) -> None:
    """`models list --model nope` (a typo) printed its note and exited 0, so a script could not
    tell it from a model with versions, while `models show --model nope` and every other
    command exit 1; the default model listed empty (a new user's first look) still exits 0."""
    store = tmp_path / "store"
    version = train(example_config("transactions", transactions_csv), ModelStore(store))
    runner = CliRunner()
    typo = runner.invoke(app, ["models", "list", "--model", "transactoins", "--store", str(store)])
    assert typo.exit_code == 1, typo.output
    assert "no versions of 'transactoins'; the store holds transactions" in " ".join(
        typo.output.split()
    )
    named = runner.invoke(app, ["models", "list", "--model", "transactions", "--store", str(store)])
    assert named.exit_code == 0 and version.manifest.version in named.output
    assert runner.invoke(app, ["models", "list", "--store", str(store)]).exit_code == 0


def test_list_of_the_default_model_names_the_other_models_beside_it(
    tmp_path: Path, transactions_csv: Path, customers_csv: Path
) -> None:
    """After ./scripts/run (model customers) a new user trained their own model and ran
    `models list`: it listed customers alone, with no word of theirs. The others are named
    (on stderr, after the table), and not when a model is chosen with --model."""
    store = tmp_path / "store"
    train(example_config("customers", customers_csv, stability_bootstraps=0), ModelStore(store))
    train(example_config("transactions", transactions_csv), ModelStore(store))
    runner = CliRunner()
    listed = runner.invoke(app, ["models", "list", "--store", str(store)])
    assert listed.exit_code == 0, listed.output
    text = " ".join(listed.output.split())
    assert "customers in" in text and "silhouette" in text
    assert "the store also holds transactions: list one with --model NAME" in text, text
    chosen = runner.invoke(app, ["models", "list", "--model", "customers", "--store", str(store)])
    assert "also holds" not in chosen.output
