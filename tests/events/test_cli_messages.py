"""What the CLI says when a new user names a model wrongly or records a second model (found
by an outside audit): the store's models are named, and key prefixes print as they are."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli.main import app as cli
from app.registry.store import ModelStore
from app.serving.model import ModelHolder
from app.training.config import parse_config
from app.training.job import TrainResult, train
from tests.events.test_tagging import _log


def _text(output: str) -> str:
    return " ".join(output.split())


def _whole(output: str) -> str:
    """The output without any whitespace (a long path may be folded)."""
    return "".join(output.split())


def test_an_unknown_model_is_named_with_the_ones_the_store_holds(
    tx_trained: tuple[ModelStore, TrainResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`models show --model nosuch` said "has no promoted version; name a version", and
    `customers forget --model nosuch ID` said the customer was "unknown"."""
    store, _ = tx_trained
    shown = CliRunner().invoke(
        cli, ["models", "show", "--store", str(store.root), "--model", "nosuch"]
    )
    assert shown.exit_code == 1
    assert "no model 'nosuch' in the store (it holds transactions)" in _text(shown.output)
    version = store.promoted("transactions")
    assert version is not None
    for command in (["rollback"], ["promote", version], ["diff", version, version]):
        where = ["--store", str(store.root), "--model", "nosuch"]
        moved = CliRunner().invoke(cli, ["models", *command, *where])
        assert moved.exit_code == 1
        assert "no model 'nosuch' in the store (it holds transactions)" in _text(moved.output)

    monkeypatch.setenv("SEGMENTS_MODEL_STORE", str(store.root))
    forgot = CliRunner().invoke(cli, ["customers", "forget", "--model", "nosuch", "C1"])
    assert forgot.exit_code == 1
    assert "no model 'nosuch' in the store (it holds transactions)" in _text(forgot.output)
    assert "unknown" not in forgot.output

    holder = ModelHolder(store, "nosuch", 1.0)
    holder.refresh()
    assert holder.last_error == "no model 'nosuch' in the store (it holds transactions)"
    holder = ModelHolder(store, "transactions", 1.0)
    holder.refresh()
    assert holder.last_error is None


def test_a_second_models_key_prefix_prints_as_it_is(
    tx_trained: tuple[ModelStore, TrainResult],
    tmp_path: Path,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A model other than the default records under '<prefix>m:<model>:'; the console
    printed ':m:' as an emoji (Ⓜ)."""
    store, _ = tx_trained
    monkeypatch.setenv("SEGMENTS_KEY_PREFIX", prefix)
    monkeypatch.setenv("SEGMENTS_MODEL_NAME", "customers")  # transactions is not the default
    log = _log(tmp_path)
    command = ["assign", "--store", str(store.root), "--model", "transactions"]
    ran = CliRunner().invoke(cli, [*command, "--input", str(log), "--record"])
    assert ran.exit_code == 0, ran.output
    assert f"keys under '{prefix}m:transactions:'" in _text(ran.output)
    assert "Ⓜ" not in ran.output


def test_a_log_given_to_a_table_model_names_the_model_trained_on_one(
    tx_trained: tuple[ModelStore, TrainResult],
    trained: tuple[ModelStore, TrainResult],
    transactions_csv: Path,
    tmp_path: Path,
) -> None:
    """`segments assign --input transactions.csv` without --model (the default model reads a
    table) said only "missing column(s) ..." (found by the audit): it names the model that
    reads a log."""
    store = ModelStore(tmp_path / "store")
    shutil.copytree(trained[0].root, store.root)
    shutil.copytree(tx_trained[0].root / "transactions", store.root / "transactions")
    where = ["--store", str(store.root), "--model", "customers"]
    shown = CliRunner().invoke(
        cli,
        ["assign", *where, "--input", str(transactions_csv), "--output", str(tmp_path / "out.csv")],
    )
    assert shown.exit_code == 1
    assert "missing column(s)" in shown.output
    assert "if this is a transaction log, pass the model trained on one: --model transactions" in (
        _text(shown.output)
    )
    assert not (tmp_path / "out.csv").exists()


def test_a_table_short_of_a_column_is_not_sent_to_the_log_model(
    tx_trained: tuple[ModelStore, TrainResult],
    trained: tuple[ModelStore, TrainResult],
    customers_csv: Path,
    tmp_path: Path,
) -> None:
    """A customer table missing one feature column was told "if this is a transaction log,
    pass the model trained on one: --model shop" (an outside tester): the hint is for a file
    holding a log model's columns only."""
    store = ModelStore(tmp_path / "store")
    shutil.copytree(trained[0].root, store.root)
    shutil.copytree(tx_trained[0].root / "transactions", store.root / "transactions")
    table = tmp_path / "short.csv"
    dropped = trained[1].manifest.features[0].name
    pd.read_csv(customers_csv).drop(columns=[dropped]).head(50).to_csv(table, index=False)
    where = ["--store", str(store.root), "--model", "customers"]
    shown = CliRunner().invoke(
        cli, ["assign", *where, "--input", str(table), "--output", str(tmp_path / "out.csv")]
    )
    assert shown.exit_code == 1
    assert f"missing column(s) '{dropped}'" in _text(shown.output)
    assert "transaction log" not in shown.output and "--model" not in shown.output
    assert not (tmp_path / "out.csv").exists()


def test_an_as_of_date_to_come_is_refused(
    tx_trained: tuple[ModelStore, TrainResult], tmp_path: Path
) -> None:
    """Found by the audit: `--as-of` a year ahead seeded the aggregates as of then, so every
    event posted in that year was late (not applied). More than a day ahead is refused."""
    store, _ = tx_trained
    ahead = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()
    out = tmp_path / "out.csv"
    where = ["--store", str(store.root), "--model", "transactions", "--input", str(_log(tmp_path))]
    shown = CliRunner().invoke(cli, ["assign", *where, "--output", str(out), "--as-of", ahead])
    assert shown.exit_code == 1
    assert f"--as-of {ahead} is more than a day ahead of today" in _text(shown.output)
    assert not out.exists()
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    kept = CliRunner().invoke(cli, ["assign", *where, "--output", str(out), "--as-of", tomorrow])
    assert kept.exit_code == 0, kept.output


def test_as_of_on_a_log_model_with_no_promoted_version_says_so(
    tx_trained: tuple[ModelStore, TrainResult], tmp_path: Path
) -> None:
    """Found by a new-user audit: `--as-of` on a log model not yet promoted said the model
    "was trained on a table" (exit 2); the command says what it says without `--as-of`."""
    store, _ = tx_trained
    copy = ModelStore(tmp_path / "store")
    shutil.copytree(store.root, copy.root)
    (copy.root / "transactions" / "promoted.json").unlink()
    assert copy.promoted("transactions") is None
    out = tmp_path / "out.csv"
    where = ["--store", str(copy.root), "--model", "transactions", "--input", str(_log(tmp_path))]
    shown = CliRunner().invoke(
        cli, ["assign", *where, "--output", str(out), "--as-of", "2026-11-01"]
    )
    assert shown.exit_code == 1
    said = _text(shown.output)
    assert "model transactions has no promoted version; run `segments models promote`" in said
    assert "--version" in said and "trained on a table" not in said
    version = store.promoted("transactions")
    assert version is not None
    named = CliRunner().invoke(
        cli, ["assign", *where, "--output", str(out), "--as-of", "2026-11-01", "--version", version]
    )
    assert named.exit_code == 0, named.output


def test_paths_with_brackets_print_as_they_are(
    tx_trained: tuple[ModelStore, TrainResult], tmp_path: Path
) -> None:
    """Found by the audit: the console read ``[red]`` or ``[b]`` in a path as markup and
    dropped it (``-> /tmp/mx/o.csv`` for ``/tmp/m[red]x/o[b].csv``)."""
    store, _ = tx_trained
    folder = tmp_path / "m[red]x"
    made = CliRunner().invoke(
        cli, ["example-data", "--out", str(folder / "d[1]"), "--customers", "100"]
    )
    assert made.exit_code == 0 and str(folder / "d[1]" / "transactions.csv") in _whole(made.output)
    out = folder / "o[b].csv"
    where = ["--store", str(store.root), "--model", "transactions", "--input", str(_log(tmp_path))]
    tagged = CliRunner().invoke(
        cli, ["assign", *where, "--output", str(out), "--as-of", "2026-11-01"]
    )
    assert tagged.exit_code == 0, tagged.output
    assert f"->{out}" in _whole(tagged.output)
    assert str(folder / "o[b].review.csv") in _whole(tagged.output)


def test_a_wrong_setting_is_named_not_a_traceback(
    tx_trained: tuple[ModelStore, TrainResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the audit: a bad SEGMENTS_KEY_PREFIX ended `segments assign --record` and
    `segments customers forget` with pydantic's traceback."""
    store, _ = tx_trained
    monkeypatch.setenv("SEGMENTS_KEY_PREFIX", "bad prefix{")
    monkeypatch.setenv("SEGMENTS_HISTORY_CAP", "abc")
    monkeypatch.setenv("SEGMENTS_MODEL_STORE", str(store.root))
    where = ["--store", str(store.root), "--model", "transactions", "--input", str(_log(tmp_path))]
    for command in (["assign", *where, "--record"], ["customers", "forget", "C1"]):
        shown = CliRunner().invoke(cli, command)
        assert shown.exit_code == 1, shown.output
        text = _text(shown.output)
        assert "error: invalid settings: SEGMENTS_KEY_PREFIX='bad prefix{': String should" in text
        assert "SEGMENTS_HISTORY_CAP='abc': Input should be a valid integer" in text
        assert "Traceback" not in text and "pydantic" not in text


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_a_file_of_another_table_model_names_that_model(
    trained: tuple[ModelStore, TrainResult], tmp_path: Path, delimiter: str
) -> None:
    """An audit's churn table, tagged without --model, was told about the log models only
    ("if this is a transaction log ..."): the file has every column of the churn model; a
    semicolon file too, read with the churn model's delimiter (not split on commas)."""
    store = ModelStore(tmp_path / "store")
    shutil.copytree(trained[0].root, store.root)
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "account": [f"a{i}" for i in range(300)],
            "tenure": rng.gamma(2.0, 10.0, 300),
            "charges": rng.normal(70, 20, 300),
        }
    )
    path = tmp_path / "churn.csv"
    frame.to_csv(path, index=False, sep=delimiter)
    config = parse_config(
        {
            "data": {"path": str(path), "id_column": "account", "delimiter": delimiter},
            "features": [{"name": "tenure"}, {"name": "charges"}],
            "model": {"name": "churn", "k_min": 2, "k_max": 3, "stability_bootstraps": 0},
        },
        base_dir=tmp_path,
    )
    train(config, store, promote=True)
    where = ["--store", str(store.root), "--model", "customers"]
    out = tmp_path / "out.csv"
    shown = CliRunner().invoke(cli, ["assign", *where, "--input", str(path), "--output", str(out)])
    assert shown.exit_code == 1
    assert "The file has every column of model churn: --model churn" in _text(shown.output)
    assert not out.exists()


def test_one_customer_left_untagged_is_counted_in_the_singular(
    tx_trained: tuple[ModelStore, TrainResult], tmp_path: Path
) -> None:
    """An audit's log run said "1 customers: only refund lines before the reference date"."""
    store, _ = tx_trained
    where = ["--store", str(store.root), "--model", "transactions", "--input", str(_log(tmp_path))]
    out = tmp_path / "o.csv"
    tagged = CliRunner().invoke(
        cli, ["assign", *where, "--output", str(out), "--as-of", "2026-11-01"]
    )
    assert tagged.exit_code == 0, tagged.output
    said = _text(tagged.output)
    assert "1 customer: only refund lines before the reference date" in said, said
    assert "1 customers" not in said, said


def test_recording_a_log_as_of_long_ago_says_the_service_will_move_customers_again(
    tx_trained: tuple[ModelStore, TrainResult],
    tmp_path: Path,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by the lifecycle audit: the nightly run recorded a stale log as of its last day,
    the service derives as of now, and customers flipped at each cycle (webhooks each time)."""
    store, _ = tx_trained
    monkeypatch.setenv("SEGMENTS_KEY_PREFIX", prefix)
    where = ["--store", str(store.root), "--model", "transactions", "--input", str(_log(tmp_path))]
    ran = CliRunner().invoke(cli, ["assign", *where, "--record", "--as-of", "2026-11-01"])
    assert ran.exit_code == 0, ran.output
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    behind = (datetime.now(UTC).date() - date(2026, 11, 1)).days + 1
    assert f"recorded as of 2026-11-01, {behind:,} days before now" in _text(
        ran.output
    ) and f"--as-of {tomorrow}" in _text(ran.output), ran.output
    current = CliRunner().invoke(cli, ["assign", *where, "--record", "--as-of", tomorrow])
    assert current.exit_code == 0, current.output
    assert "before now" not in current.output


@pytest.mark.parametrize(
    ("customer_id", "why"),
    [("", "blank"), ("   ", "blank"), ("x" * 5000, "longer than 1024 characters")],
)
def test_forget_refuses_an_id_the_service_would_refuse(
    tx_trained: tuple[ModelStore, TrainResult],
    monkeypatch: pytest.MonkeyPatch,
    customer_id: str,
    why: str,
) -> None:
    """Found by the hostile audit: `segments customers forget ''` (or a 5,000-character id)
    answered "unknown" where DELETE /v1/customers/{id} refuses the id with a 422: it says
    which id is no customer id and why, shown short, and exits 1."""
    store, _ = tx_trained
    monkeypatch.setenv("SEGMENTS_MODEL_STORE", str(store.root))
    shown = CliRunner().invoke(cli, ["customers", "forget", "C1", customer_id])
    assert shown.exit_code == 1, shown.output
    text = _text(shown.output)
    quoted = f"'{customer_id[:39]}\u2026'" if len(customer_id) > 40 else f"'{customer_id}'"
    assert f"{quoted}: not a customer id ({why})" in shown.output
    assert "C1: unknown" in text
    assert "unknown" not in text.replace("C1: unknown", "")
    assert len(shown.output) < 400


def test_a_model_with_no_promoted_version_shows_its_latest(
    tx_trained: tuple[ModelStore, TrainResult], tmp_path: Path
) -> None:
    """Found by a new-user audit: `models show` after a training without --promote said
    "model bank has no promoted version; name a version" and named none; then (outside
    testers) it named the latest but still showed nothing: it shows the latest, says it is
    not promoted and how to promote it. ``--json`` prints the same version's manifest, the
    note on stderr; a version named is shown as before; a model with no version is still an
    error."""
    store, _ = tx_trained
    copy = ModelStore(tmp_path / "store")
    shutil.copytree(store.root, copy.root)
    (copy.root / "transactions" / "promoted.json").unlink()
    latest = copy.versions("transactions")[-1]
    where = ["--store", str(copy.root), "--model", "transactions"]
    shown = CliRunner().invoke(cli, ["models", "show", *where])
    assert shown.exit_code == 0, shown.output
    summary, said = _text(shown.stdout), _text(shown.stderr)
    assert f"transactions {latest} (not promoted)" in summary, summary
    assert f"{latest}/report.html" in _whole(shown.stdout)
    latest_said = f"not promoted: no version of transactions is; this is the latest ({latest}"
    assert said.startswith(latest_said), said
    assert "the service and `segments assign` use the promoted version" in said
    promote = f"segments models promote {latest} --model transactions --store {copy.root}"
    assert promote in said, said
    as_json = CliRunner().invoke(cli, ["models", "show", "--json", *where])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["version"] == latest  # stdout stays one JSON document
    assert _text(as_json.stderr) == said
    named = CliRunner().invoke(cli, ["models", "show", latest, *where])
    assert named.exit_code == 0, named.output
    assert named.stdout == shown.stdout and "not promoted:" not in named.stderr
    # the promote line it prints promotes it
    promoted = CliRunner().invoke(cli, promote.split()[1:])
    assert promoted.exit_code == 0, promoted.output
    again = CliRunner().invoke(cli, ["models", "show", *where])
    assert f"transactions {latest} (promoted)" in _text(again.stdout) and not again.stderr
    none = CliRunner().invoke(cli, ["models", "show", "--store", str(copy.root), "--model", "nope"])
    assert none.exit_code == 1 and "no model 'nope' in the store" in _text(none.output)
