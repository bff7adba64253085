"""``segments drift`` and ``segments refresh`` from the command line: tables, JSON, exit
codes, and the refresh decision in the candidate's manifest."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
from typer.testing import CliRunner

from app.cli.main import app as cli
from app.registry.store import ModelStore
from app.training.job import train
from tests.conftest import EXAMPLES, example_config


def _run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_drift_exit_codes_table_and_json(trained: Any, customers: Any, tmp_path: Path) -> None:
    store, result = trained
    calm = tmp_path / "calm.csv"
    customers[0].sample(frac=0.5, random_state=4).to_csv(calm, index=False)
    ran = _run("drift", "--data", str(calm), "--store", str(store.root), "--model", "customers")
    assert ran.exit_code == 0, ran.output
    assert "sessions_30d" in ran.output and "ok" in ran.output
    shifted = customers[0].sample(frac=0.5, random_state=4)
    shifted["monetary"] = shifted["monetary"] * 10
    moved = tmp_path / "moved.csv"
    shifted.to_csv(moved, index=False)
    ran = _run("drift", "--data", str(moved), "--store", str(store.root), "--json")
    assert ran.exit_code == 3
    body = json.loads(ran.output)
    assert body["status"] == "drift"
    assert body["model_version"] == result.manifest.version
    assert {f["name"]: f["status"] for f in body["features"]}["monetary"] == "drift"


def test_drift_of_a_missing_file_is_one_clear_error(trained: Any, tmp_path: Path) -> None:
    store, _ = trained
    ran = _run("drift", "--data", str(tmp_path / "nope.csv"), "--store", str(store.root))
    assert ran.exit_code == 1
    assert "nope.csv" in ran.output


def test_drift_of_a_file_with_infinite_numbers_is_one_clear_error(
    trained: Any, customers: Any, tmp_path: Path
) -> None:
    store, _ = trained
    frame = customers[0].head(50).copy()
    frame["customer_id"] = frame["customer_id"].astype(str)
    frame.loc[frame.index[[1, 2]], "monetary"] = float("inf")
    data = tmp_path / "inf.csv"
    frame.to_csv(data, index=False)  # written 'inf', as a spreadsheet or a script may
    ran = CliRunner().invoke(cli, ["drift", "--data", str(data), "--store", str(store.root)])
    assert ran.exit_code == 1, ran.output
    assert ran.exception is None or isinstance(ran.exception, SystemExit)
    assert "'monetary'" in ran.output and "2 infinite value(s)" in ran.output
    assert "Traceback" not in ran.output


def test_drift_of_a_transaction_log_uses_the_training_derivation(
    transactions_csv: Path, tmp_path: Path
) -> None:
    store = ModelStore(tmp_path / "store")
    config = example_config("transactions", transactions_csv, stability_bootstraps=0)
    train(config, store, promote=True)
    ran = _run("drift", "--data", str(transactions_csv), "--store", str(store.root), "--json")
    assert ran.exit_code == 0, ran.output
    body = json.loads(ran.output)
    assert body["status"] == "ok"
    assert {f["name"] for f in body["features"]} >= {"recency_days", "frequency", "monetary"}
    # the date a log's features were derived at is said (a tester's log drifted, as of its
    # own last day against a training as of another, with no word of either date)
    assert "a log's features as of " in body["source"] and "trained as of" in body["source"]


def _config(path: Path, data: Path, **model: Any) -> Path:
    """The customers example config, on ``data``, with ``model`` overrides, as a file."""
    text = (EXAMPLES / "customers.toml").read_text()
    text = text.replace('path = "../data/customers.csv"', f'path = "{data}"')
    for key, value in model.items():  # keys the example sets already
        text = re.sub(rf"^{key} = \S+", f"{key} = {json.dumps(value)}", text, flags=re.M)
    text = text.replace("seed = 42\n", "seed = 42\nstability_bootstraps = 0\n")
    path.write_text(text)
    return path


def test_refresh_promotes_a_good_candidate(
    store_copy: ModelStore, trained: Any, customers: Any, tmp_path: Path
) -> None:
    before = trained[1].manifest.version
    data = tmp_path / "new.csv"
    customers[0].sample(frac=0.9, random_state=8).to_csv(data, index=False)
    config = _config(tmp_path / "good.toml", data)
    ran = _run("refresh", "--config", str(config), "--store", str(store_copy.root))
    assert ran.exit_code == 0, ran.output
    promoted = store_copy.promoted("customers")
    assert promoted != before
    decision = store_copy.manifest("customers", promoted).refresh
    assert decision is not None and decision.promoted and decision.compared_with == before
    assert {c.name for c in decision.checks} >= {"kept_ids", "no_new_flags"}
    assert all(c.passed for c in decision.checks)
    store_copy.load("customers")  # the rewritten manifest still loads (artefact hash intact)


def test_refresh_refuses_a_worse_candidate_and_says_why(
    store_copy: ModelStore, trained: Any, customers_csv: Path, tmp_path: Path
) -> None:
    before = trained[1].manifest.version
    # two segments where the data has five: customers move, outcomes separate less
    config = _config(tmp_path / "worse.toml", customers_csv, k_min=2, k_max=2)
    ran = _run("refresh", "--config", str(config), "--store", str(store_copy.root))
    assert ran.exit_code == 4, ran.output
    assert store_copy.promoted("customers") == before
    candidate = store_copy.manifests("customers")[-1]
    assert candidate.version != before
    decision = candidate.refresh
    assert decision is not None and not decision.promoted
    failed = {c.name for c in decision.checks if not c.passed}
    assert "kept_ids" in failed and any(n.startswith("outcome_effect:") for n in failed)
    assert any("keep their segment id" in r for r in decision.reasons)


def test_refresh_if_drifted_on_calm_data_trains_nothing(
    store_copy: ModelStore, customers: Any, tmp_path: Path
) -> None:
    versions = store_copy.versions("customers")
    data = tmp_path / "calm.csv"
    customers[0].sample(frac=0.8, random_state=9).to_csv(data, index=False)
    config = _config(tmp_path / "calm.toml", data)
    ran = _run("refresh", "--config", str(config), "--store", str(store_copy.root), "--if-drifted")
    assert ran.exit_code == 5, ran.output
    assert store_copy.versions("customers") == versions
    # "drift-free" was said of a 'watch' status too: the line says which status it was
    said = " ".join(ran.output.split())
    assert "no drift past the thresholds (" in said and "nothing trained" in said
    assert "drift-free" not in said


def test_refresh_if_drifted_on_drifted_data_trains(
    store_copy: ModelStore, customers: Any, tmp_path: Path
) -> None:
    frame: pd.DataFrame = customers[0].sample(frac=0.8, random_state=10)
    frame["support_tickets"] = frame["support_tickets"] + 6
    data = tmp_path / "drifted.csv"
    frame.to_csv(data, index=False)
    config = _config(tmp_path / "drifted.toml", data)
    versions = store_copy.versions("customers")
    ran = _run("refresh", "--config", str(config), "--store", str(store_copy.root), "--if-drifted")
    assert ran.exit_code in (0, 4), ran.output
    assert "drift of" in ran.output and ": drift" in ran.output
    assert len(store_copy.versions("customers")) == len(versions) + 1


def test_drift_against_a_version_without_a_reference_says_so(
    store_copy: ModelStore, trained: Any, customers_csv: Path
) -> None:
    version = trained[1].manifest.version
    path = store_copy.version_dir("customers", version) / "manifest.json"
    raw = json.loads(path.read_text())
    del raw["drift_reference"], raw["convergence"], raw["refresh"]  # as written before drift
    path.write_text(json.dumps(raw))
    ran = _run("drift", "--data", str(customers_csv), "--store", str(store_copy.root))
    assert ran.exit_code == 0, ran.output
    assert "no reference" in ran.output
    unknown = _run("drift", "--data", str(customers_csv), "--store", str(store_copy.root),
                   "--version", "20200101-000000-abcdef")  # fmt: skip
    assert unknown.exit_code == 1 and "unknown version" in unknown.output


def test_too_few_rows_show_no_psi_and_say_why(
    trained: Any, customers: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """A file of 20 rows is not judged (`no_data`): its PSIs are noise, 1.96 or 0.01, and
    the table printed them beside `no_data` (as the dashboard did until it said why)."""
    store, _ = trained
    few = tmp_path / "few.csv"
    customers[0].head(20).to_csv(few, index=False)
    monkeypatch.setenv("SEGMENTS_DRIFT_MIN_OBSERVATIONS", "50")
    ran = _run("drift", "--data", str(few), "--store", str(store.root), "--model", "customers")
    assert ran.exit_code == 0, ran.output
    text = " ".join(ran.output.split())
    assert "no_data: fewer than 50 values to compare" in text, ran.output
    rows = [line.split("│") for line in ran.output.splitlines() if "no_data" in line]
    rows = [cells for cells in rows if len(cells) > 3]  # the tables' rows
    assert len(rows) > 10, ran.output
    for cells in rows:  # no PSI beside it
        assert not any(re.fullmatch(r"\d+\.\d{4}", c.strip()) for c in cells), cells
    body = json.loads(
        _run("drift", "--data", str(few), "--store", str(store.root), "--json").output
    )
    assert body["segment_status"] == "no_data" and body["segment_psi"] is not None  # the API's


def test_ids_the_file_repeats_are_counted_once_within_and_across_chunks(
    trained: Any, customers: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """The version's `[data] duplicate_ids` was for its training file: a drift file with
    repeated ids was refused with a hint to set it there (which cannot be done for this
    file); each customer is now counted once, as `segments assign` keeps one row an id."""
    store, _ = trained
    frame = customers[0].head(300)
    repeated = pd.concat([frame, frame.head(40), frame.iloc[[5, 5]]])  # 42 repeats
    path = tmp_path / "repeated.csv"
    repeated.to_csv(path, index=False)
    monkeypatch.setattr("app.drift.offline.CHUNK_ROWS", 100)  # repeats across chunks too
    where = ["--data", str(path), "--store", str(store.root), "--model", "customers"]
    ran = _run("drift", *where, "--json")
    assert ran.exit_code in (0, 2, 3), ran.output
    body = json.loads(ran.output)
    assert body["observations"] == 300, body
    assert body["note"].startswith("42 rows of ids the file repeats left out"), body
    once = tmp_path / "once.csv"
    frame.to_csv(once, index=False)
    alone = json.loads(_run("drift", *where[:1], str(once), *where[2:], "--json").output)
    assert [f["psi"] for f in alone["features"]] == [f["psi"] for f in body["features"]]
    text = " ".join(_run("drift", *where).output.split())
    assert "42 rows of ids the file repeats left out" in text


def test_rows_with_text_in_a_numeric_feature_are_left_out_and_counted(
    trained: Any, customers: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """A bank file's one `age = 'abc'` stopped the whole check with "set errors = 'missing'
    in its [[features]] entry", which only a retrain could follow, where `segments assign`
    rejects that row: such rows are left out (across chunks) and counted in the note."""
    store, _ = trained
    frame = customers[0].head(300).astype({"monetary": object, "frequency": object})
    clean = tmp_path / "clean.csv"
    frame.to_csv(clean, index=False)
    frame.loc[frame.index[[3, 150]], "monetary"] = ["abc", "1,200"]
    frame.loc[frame.index[250], "frequency"] = "n/a?" + "?" * 100_000  # (repeated clipped)
    path = tmp_path / "junk.csv"
    frame.to_csv(path, index=False)
    monkeypatch.setattr("app.drift.offline.CHUNK_ROWS", 100)
    where = ["--store", str(store.root), "--model", "customers", "--json"]
    ran = _run("drift", "--data", str(path), *where)
    assert ran.exit_code in (0, 3), ran.output
    body = json.loads(ran.output)
    assert body["observations"] == 297, body
    assert body["note"] == (
        "3 rows with text in a numeric feature left out, as segments assign rejects them "
        "(column 'monetary' is not a number, e.g. 'abc': 2; column 'frequency' is not a "
        f"number, e.g. {'n/a?' + '?' * 76!r}… (100,004 characters): 1)"
    ), body
    kept = json.loads(_run("drift", "--data", str(clean), *where).output)
    assert kept["observations"] == 300 and kept.get("note") is None


def test_drift_as_of_a_day_to_come_is_one_clear_error(trained: Any, tmp_path: Path) -> None:
    """`--reference-date 9999-12-31` derived a log's features as of then: every customer
    lapsed, every feature "drift", exit 3; `segments assign --as-of` refuses such a day."""
    store, _ = trained
    data = tmp_path / "log.csv"
    data.write_text("customer_id,timestamp,amount\nC1,2024-01-01,5\n")
    args = ["drift", "--data", str(data), "--store", str(store.root), "--model", "customers"]
    ran = _run(*args, "--reference-date", "9999-12-31")
    assert ran.exit_code == 1, ran.output
    text = " ".join(ran.output.split())
    assert "error: --reference-date 9999-12-31 is more than a day ahead of today (" in text
    assert "give a past date, or leave it out" in text


def test_drift_reads_a_version_trained_before_a_config_refusal(
    store_copy: ModelStore, customers: Any, tmp_path: Path
) -> None:
    """Refusals added for new configs (blank words, ``algorithms = []``, a reference date
    to come) made versions trained earlier with them unreadable: drift answered 'invalid
    config the version's config: ...'. A stored version's config is read as it was trained."""
    (manifest_path,) = (store_copy.root / "customers").glob("*/manifest.json")
    manifest = json.loads(manifest_path.read_text())
    config = manifest["config"]
    config["features"][0]["label"] = " "  # as an earlier version kept it
    config["model"]["algorithms"] = []
    manifest_path.write_text(json.dumps(manifest))
    calm = tmp_path / "calm.csv"
    customers[0].sample(frac=0.2, random_state=4).to_csv(calm, index=False)

    ran = _run("drift", "--data", str(calm), "--store", str(store_copy.root))

    assert ran.exit_code == 0, ran.output
    assert "sessions_30d" in ran.output and "invalid config" not in ran.output
