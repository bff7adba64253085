"""What a new user hit on real data (issue 14): blank cells, junk values, yes/no outcomes,
outcomes for a transaction log, the exclusive reference date, misplaced config keys."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli.main import app
from app.errors import ConfigError, DataError
from app.registry.store import ModelStore
from app.training.config import load_config, parse_config
from app.training.data import load_training_data
from app.training.job import train
from tests.conftest import ROOT

runner = CliRunner()


def churn_frame(n: int = 300, seed: int = 3) -> pd.DataFrame:
    """Three clear groups; churn depends on the group; TotalCharges as text like the file."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, n)
    tenure = np.array([3.0, 30.0, 70.0])[group] + rng.normal(0, 2, n)
    charges = np.array([90.0, 60.0, 25.0])[group] + rng.normal(0, 3, n)
    churn = rng.uniform(size=n) < np.array([0.6, 0.25, 0.05])[group]
    return pd.DataFrame(
        {
            "customerID": [f"k{i:04d}" for i in range(n)],
            "tenure": tenure.round(1),
            "MonthlyCharges": charges.round(2),
            "TotalCharges": (tenure * charges).round(2).astype(str),
            "Churn": np.where(churn, "Yes", "No"),
        }
    )


def churn_config(data: Path, **extra: object) -> dict[str, object]:
    raw: dict[str, object] = {
        "data": {"path": str(data), "id_column": "customerID"},
        "outcomes": ["Churn"],
        "features": [
            {"name": "tenure"},
            {"name": "MonthlyCharges"},
            {"name": "TotalCharges", "transform": "log1p"},
        ],
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0},
    }
    raw.update(extra)
    return raw


def test_blank_cells_in_a_numeric_column_are_missing_values(tmp_path: Path) -> None:
    """The churn table's 11 cells of ' ' once stopped the job ("holds text, e.g. ' '")."""
    frame = churn_frame()
    frame.loc[[3, 50, 99], "TotalCharges"] = [" ", "  ", "\t"]
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    config = tmp_path / "churn.toml"
    config.write_text(
        f'outcomes = ["Churn"]\n[data]\npath = "{data}"\nid_column = "customerID"\n'
        '[[features]]\nname = "tenure"\n[[features]]\nname = "TotalCharges"\n'
        'transform = "log1p"\n[model]\nk_min = 3\nk_max = 3\n'
    )
    store = tmp_path / "store"
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "TotalCharges: 3 missing values, imputed (median)" in output
    manifest = ModelStore(store).manifests("customers")[0]
    assert manifest.data.missing_cells == {"TotalCharges": 3}
    assert manifest.data.rows == 300


def test_missing_value_markers_and_junk_values(tmp_path: Path) -> None:
    frame = churn_frame()
    frame.loc[[1, 2], "TotalCharges"] = "?"
    frame["MonthlyCharges"] = frame["MonthlyCharges"].astype(object)
    frame.loc[[7, 8, 9], "MonthlyCharges"] = "n/a-ish"
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    raw = churn_config(data)
    with pytest.raises(DataError) as caught:
        load_training_data(parse_config(raw, base_dir=tmp_path))
    message = str(caught.value)
    # the default stays an error; it says how many rows and which option fixes it
    assert "'MonthlyCharges' should be numeric but holds text, e.g. 'n/a-ish' (3 of 300" in message
    assert 'errors = "missing"' in message and "missing_values" in message
    raw["features"][1]["errors"] = "missing"  # type: ignore[index]
    with pytest.raises(DataError, match=r"'TotalCharges' .* e.g. '\?' \(2 of 300 rows\)"):
        load_training_data(parse_config(raw, base_dir=tmp_path))
    raw["data"] = {**raw["data"], "missing_values": ["?"]}  # type: ignore[dict-item]
    loaded = load_training_data(parse_config(raw, base_dir=tmp_path))
    assert loaded.missing_cells == {"TotalCharges": 2, "MonthlyCharges": 3}
    assert loaded.text_as_missing == {"MonthlyCharges": 3}
    assert loaded.frame["TotalCharges"].dtype == np.float64


@pytest.mark.parametrize(
    ("yes", "no"), [("Yes", "No"), ("true", "FALSE"), ("TRUE", "FALSE"), ("Y", "n"), ("yes", "no")]
)
def test_yes_no_outcomes_are_binary_and_the_summary_says_which_counted(
    tmp_path: Path, yes: str, no: str
) -> None:
    frame = churn_frame()
    frame["Churn"] = np.where(frame["Churn"] == "Yes", yes, no)
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    store = ModelStore(tmp_path / "store")
    result = train(parse_config(churn_config(data), base_dir=tmp_path), store)
    test = result.manifest.outcomes[0]
    assert (test.kind, test.test) == ("binary", "chi-square")
    # as written (pandas reads TRUE/FALSE as a bool column, which said 1 = 'True')
    assert test.positive == yes
    assert test.overall_mean == pytest.approx((frame["Churn"] == yes).mean())
    assert test.significant
    from app.cli.common import outcome_line

    assert f"outcome Churn (1 = '{test.positive}'): segments differ, Cramér's V" in outcome_line(
        test
    )


def test_an_outcome_mixing_yes_no_spellings_reads_all_of_them(tmp_path: Path) -> None:
    """`Yes`/`No` in most rows and `Y`/`N` (or 1/0) in some: one binary outcome, as the README
    promises any of these spellings (it was refused: "156 rows hold other values ('N', 'Y')")."""
    frame = churn_frame()
    churned = (frame["Churn"] == "Yes").to_numpy()
    spelled = np.where(churned, "Yes", "No").astype(object)
    spelled[::9] = np.where(churned[::9], "Y", "n")
    spelled[1::13] = np.where(churned[1::13], "1", "0")
    frame["Churn"] = spelled
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    loaded = load_training_data(parse_config(churn_config(data), base_dir=tmp_path))
    assert loaded.frame["Churn"].tolist() == churned.astype(float).tolist()
    result = train(parse_config(churn_config(data), base_dir=tmp_path), ModelStore(tmp_path / "s"))
    test = result.manifest.outcomes[0]
    assert (test.kind, test.positive) == ("binary", "Yes")
    assert test.overall_mean == pytest.approx(churned.mean())


def test_repeated_ids_are_counted_and_duplicate_ids_last_keeps_each_ids_last_row(
    tmp_path: Path,
) -> None:
    """A table repeating ids was refused with a bare "duplicate ids, e.g. 7" (no count, no
    fix), while `segments assign` uses each id's last row: the error counts them and names
    the option that does what assign does."""
    frame = churn_frame()
    repeats = frame.iloc[[5, 9, 9]].copy()
    repeats["tenure"] = [1001, 1002, 1003]  # later rows: the ones used
    frame = pd.concat([frame, repeats], ignore_index=True)
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    config = churn_config(data)
    with pytest.raises(DataError) as caught:
        load_training_data(parse_config(config, base_dir=tmp_path))
    text = str(caught.value)
    first, second = (repr(str(frame.iloc[i]["customerID"])) for i in (5, 9))
    assert f"repeats 2 ids (5 rows), e.g. {first} (2 rows), {second} (3 rows)" in text
    assert 'duplicate_ids = "last"' in text
    config["data"]["duplicate_ids"] = "last"
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    assert len(loaded.frame) == len(frame) - 3 and loaded.frame.index.is_unique
    assert loaded.frame.loc[str(frame.iloc[9]["customerID"]), "tenure"] == 1003
    assert loaded.dropped_reasons == {
        'an earlier row of an id a later row repeats (duplicate_ids = "last")': 3
    }
    assert loaded.source_rows == len(frame)


def test_an_outcome_of_two_other_words_names_them_and_positive_says_which_counts(
    tmp_path: Path,
) -> None:
    """`Churned`/`Stayed` was refused as text with no way to train on it: the error names
    both words and the option, and `[outcomes] positive` makes it a binary outcome."""
    frame = churn_frame()
    churned = (frame["Churn"] == "Yes").to_numpy()
    frame["Churn"] = np.where(churned, "Churned", "Stayed").astype(object)
    frame.loc[frame.index[:4], "Churn"] = " churned "  # spelled otherwise: the same value
    frame.loc[frame.index[4], "Churn"] = ""  # blank: left out of the outcome's test
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    config = churn_config(data)
    with pytest.raises(DataError) as caught:
        load_training_data(parse_config(config, base_dir=tmp_path))
    assert "'Churn' holds two values, 'Stayed' and 'Churned'" in str(caught.value)
    # both offered, valid TOML (a reviewer: the most common one offered alone flipped the
    # outcome, and a key with a space was no TOML)
    text = " ".join(str(caught.value).split())
    assert 'positive = {"Churn" = "Stayed"} or positive = {"Churn" = "Churned"}' in text
    assert "beside its columns" in text
    config["outcomes"] = {"columns": ["Churn"], "positive": {"Churn": "Churned"}}
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    expected = churned.astype(float)
    expected[:4], expected[4] = 1.0, np.nan
    np.testing.assert_array_equal(loaded.frame["Churn"].to_numpy(), expected)
    assert loaded.positive["Churn"] == "Churned"
    result = train(parse_config(config, base_dir=tmp_path), ModelStore(tmp_path / "s"))
    test = result.manifest.outcomes[0]
    assert (test.kind, test.positive) == ("binary", "Churned")
    assert test.overall_mean == pytest.approx(np.nanmean(expected))


@pytest.mark.parametrize(
    ("positive", "cells", "error"),
    [
        ("Left", ["Churned", "Stayed"], "positive = 'Left' is not a value of the column"),
        ("Churned", ["Churned", "Stayed", "Paused"], "holds 3 values"),
    ],
)
def test_a_declared_positive_that_does_not_fit_the_column_is_named(
    tmp_path: Path, positive: str, cells: list[str], error: str
) -> None:
    frame = churn_frame()
    frame["Churn"] = [cells[i % len(cells)] for i in range(len(frame))]
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    config = churn_config(data, outcomes={"columns": ["Churn"], "positive": {"Churn": positive}})
    with pytest.raises(DataError, match=error):
        load_training_data(parse_config(config, base_dir=tmp_path))


def test_positive_of_a_column_that_is_no_outcome_is_a_config_error(tmp_path: Path) -> None:
    outcomes = {"columns": ["Churn"], "positive": {"churn": "Y"}}
    config = churn_config(tmp_path / "x.csv", outcomes=outcomes)
    with pytest.raises(ConfigError, match="positive names 'churn', not an outcome column"):
        parse_config(config, base_dir=tmp_path)


def test_an_outcome_of_many_words_is_an_error_naming_it(tmp_path: Path) -> None:
    frame = churn_frame()
    frame["Churn"] = [("left", "stayed", "paused")[i % 3] for i in range(len(frame))]
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    with pytest.raises(DataError, match="'Churn' .*Yes/No, true/false, Y/N"):
        load_training_data(parse_config(churn_config(data), base_dir=tmp_path))


def test_a_yes_no_outcome_with_a_few_other_values_says_so_and_how_to_leave_them_out(
    tmp_path: Path,
) -> None:
    """It said the column "holds text" in nearly every row (the Yes/No cells counted too)."""
    frame = churn_frame()
    frame["Churn"] = frame["Churn"].astype(object)
    frame.loc[frame.index[:30], "Churn"] = "Maybe"
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    config = churn_config(data)
    with pytest.raises(DataError) as caught:
        load_training_data(parse_config(config, base_dir=tmp_path))
    text = str(caught.value)
    assert f"yes/no outcome in {len(frame) - 30:,} rows" in text
    assert "30 rows hold other values ('Maybe')" in text and "missing_values" in text
    config["data"]["missing_values"] = ["Maybe"]  # as the message says: then it trains
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    assert loaded.frame["Churn"].isna().sum() == 30
    # and the summary counts the customers the outcome's test left out (it was silent)
    result = train(parse_config(config, base_dir=tmp_path), ModelStore(tmp_path / "store"))
    test = result.manifest.outcomes[0]
    assert test.missing == 30
    from app.cli.common import outcome_line

    assert "30 customers without a value left out" in outcome_line(test)
    assert "; 1 customer without a value left out" in outcome_line(
        test.model_copy(update={"missing": 1})
    )


def retail_log(tmp_path: Path) -> Path:
    """Ten customers buying over 1997; customer c0 buys on 30 September and later."""
    rows = []
    for c in range(10):
        for month in range(1, 13):
            if month <= 9 or c % 2 == 0:
                rows.append(
                    (f"c{c}", f"1997-{month:02d}-{10 + c}", 10.0 * (c + 1), f"o{c}-{month}")
                )
    rows.append(("c0", "1997-09-30", 5.0, "o0-late"))
    rows.append(("", "1997-03-01", 7.0, "o-none"))
    log = pd.DataFrame(rows, columns=["customer", "when", "amount", "order"])
    path = tmp_path / "log.csv"
    log.to_csv(path, index=False)
    return path


def log_config(path: Path, reference: str, **extra: object) -> dict[str, object]:
    raw: dict[str, object] = {
        "data": {
            "path": str(path),
            "kind": "transactions",
            "transactions": {
                "customer": "customer",
                "timestamp": "when",
                "amount": "amount",
                "order": "order",
                "reference_date": reference,
            },
        },
        "features": [{"name": "monetary"}, {"name": "frequency"}],
        "model": {"k_min": 2, "k_max": 2, "stability_bootstraps": 0},
    }
    raw.update(extra)
    return raw


def test_reference_date_is_exclusive_and_dropped_rows_say_why(tmp_path: Path) -> None:
    path = retail_log(tmp_path)
    loaded = load_training_data(parse_config(log_config(path, "1997-09-30"), base_dir=tmp_path))
    assert loaded.reference_date is not None and loaded.reference_date.isoformat() == "1997-09-30"
    # the order of 30 September is on the reference date, so not a feature
    assert loaded.frame.loc["c0", "frequency"] == 9
    assert loaded.dropped_reasons == {
        "no customer id": 1,
        "on or after the reference date (exclusive)": 16,
    }
    later = load_training_data(parse_config(log_config(path, "1997-10-01"), base_dir=tmp_path))
    assert later.frame.loc["c0", "frequency"] == 10

    store = ModelStore(tmp_path / "store")
    manifest = train(parse_config(log_config(path, "1997-10-01"), base_dir=tmp_path), store)
    assert manifest.manifest.data.reference_date == "1997-10-01"
    assert manifest.manifest.data.dropped_reasons["no customer id"] == 1
    from app.training.report import render_report

    page = render_report(manifest.manifest, np.zeros((0, 2)), [])
    assert "1997-10-01" in page and "exclusive" in page


def test_log_lines_before_1970_or_far_ahead_are_left_out_saying_why(tmp_path: Path) -> None:
    """The bounds POST /v1/events holds an event's time to (found by the audit: a line of
    year 1 gave a tenure of 740,000 days, and one in year 3000 made everyone lapsed)."""
    path = retail_log(tmp_path)
    clean = log_config(path, "")
    del clean["data"]["transactions"]["reference_date"]  # type: ignore[index]
    expected = load_training_data(parse_config(clean, base_dir=tmp_path))
    odd = [
        ("c1", "0001-01-01", 5.0, "o-year-1"),
        ("c1", "1969-12-31", 5.0, "o-1969"),
        ("c2", "3000-01-01", 5.0, "o-3000"),
    ]
    log = pd.read_csv(path, dtype={"when": str})
    pd.concat([log, pd.DataFrame(odd, columns=log.columns)]).to_csv(path, index=False)
    loaded = load_training_data(parse_config(clean, base_dir=tmp_path))
    assert loaded.reference_date == expected.reference_date  # the day after 1997's last line
    pd.testing.assert_frame_equal(loaded.frame, expected.frame)
    assert loaded.dropped_reasons == {
        **expected.dropped_reasons,
        "time before 1970-01-01": 2,
        "time more than a day ahead of the clock": 1,
    }


@pytest.mark.parametrize("rows", ["all", "some"])
def test_amounts_written_with_a_currency_sign_name_the_column_and_the_fix(
    tmp_path: Path, rows: str
) -> None:
    """An audit's log wrote `$12.50`: every row gave a bare "no transaction with a customer
    id, time and amount" (no column, no example, no fix); some rows were left out with a note
    while the spend of their customers was under-counted."""
    path = retail_log(tmp_path)
    log = pd.read_csv(path, dtype=str, keep_default_na=False)
    written = "$" + log["amount"]
    log["amount"] = written if rows == "all" else log["amount"].where(log.index % 7 > 0, written)
    if rows == "some":  # junk too: a line left out and counted, not one of those written so
        log.loc[log.index % 7 == 3, "amount"] = "abc"
    log.to_csv(path, index=False)
    config = parse_config(log_config(path, "1997-10-01"), base_dir=tmp_path)
    with pytest.raises(DataError) as caught:
        load_training_data(config)
    text = str(caught.value)
    with_id = log["customer"] != ""  # a line without an id is left out for that first
    count = (with_id if rows == "all" else with_id & (log.index % 7 == 0)).sum()
    assert (
        f"column 'amount' holds numbers written for people in {count:,} of {len(log):,} rows"
        in text
    ), text
    assert "abc" not in text
    assert f"{log['amount'][0]!r} is a number written with '$': write plain numbers" in text


def test_purchase_lines_without_an_order_id_are_counted_in_a_note(tmp_path: Path) -> None:
    """A new user blanked the order id of 100 customers' lines: each line became an order (the
    frequency nearly doubled) without a word. They still count so, and a note says how many."""
    path = retail_log(tmp_path)
    log = pd.read_csv(path, dtype=str, keep_default_na=False)
    log.loc[log["customer"].isin(["c1", "c2"]), "order"] = ""
    log.loc[len(log)] = ["c1", "1997-05-20", "-4.0", ""]  # a refund: no order, not counted
    log.to_csv(path, index=False)
    loaded = load_training_data(parse_config(log_config(path, "1997-10-01"), base_dir=tmp_path))
    blank = int(((log["order"] == "") & (log["amount"] != "-4.0")).sum())
    assert loaded.notes == [
        f"{blank} purchase lines have no order id in column 'order': each counts as an order "
        "of its own (frequency, avg_order_value); fill the column where those lines belong to "
        "larger orders"
    ]
    assert loaded.frame.loc["c1", "frequency"] == 9  # nine lines before October: nine orders


def test_a_log_in_several_currencies_is_noted(tmp_path: Path) -> None:
    """Amounts in EUR and USD were added as they were without a word (an audit): a column
    named like a currency with several values gets a note with their shares; one currency,
    or lines left out anyway, none."""
    path = retail_log(tmp_path)
    log = pd.read_csv(path, dtype=str, keep_default_na=False)
    log["Currency"] = np.where(log.index % 4 == 0, "USD", "EUR")
    log.to_csv(path, index=False)
    config = parse_config(log_config(path, "1997-10-01"), base_dir=tmp_path)
    notes = load_training_data(config).notes
    said = [n for n in notes if "currencies" in n]
    assert len(said) == 1, notes
    assert said[0].startswith("column 'Currency' holds 2 currencies (EUR 7") and "USD 2" in said[0]
    assert "amounts are added as written, whatever their currency" in said[0]
    # where the lines that convert them are (a wholesaler's log had the advice, not the how)
    assert "docs/training.md#a-transaction-log-one-row-per-order-line" in said[0]
    log["Currency"] = "EUR"
    log.to_csv(path, index=False)
    assert not [n for n in load_training_data(config).notes if "currencies" in n]


def test_refunds_marked_by_a_column_count_negative_as_signed_ones_do(tmp_path: Path) -> None:
    """A log that marks refunds in a column (Stripe-like: type = refund, amount positive)
    counted them as purchases: `refund_column` makes them refunds, with the features a log
    of negative amounts gives; a column with no refund value is noted."""
    path = retail_log(tmp_path)
    log = pd.read_csv(path, dtype=str, keep_default_na=False)
    refunds = [("c1", "1997-06-20", "15.0", ""), ("c2", "1997-07-02", "8.5", "")]
    signed = pd.concat(
        [log, pd.DataFrame([(c, w, f"-{a}", o) for c, w, a, o in refunds], columns=log.columns)]
    )
    signed.to_csv(tmp_path / "signed.csv", index=False)
    marked = pd.concat([log, pd.DataFrame(refunds, columns=log.columns)])
    marked["type"] = ["purchase"] * len(log) + [" Refund", "RETURNED"]
    marked.to_csv(path, index=False)
    config = log_config(path, "1997-10-01")
    unmarked = load_training_data(parse_config(config, base_dir=tmp_path)).frame
    assert unmarked.loc["c1", "monetary"] > 0  # counted as a purchase without the option
    config["data"]["transactions"]["refund_column"] = "type"  # type: ignore[index]
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    config["data"]["path"] = str(tmp_path / "signed.csv")  # type: ignore[index]
    del config["data"]["transactions"]["refund_column"]  # type: ignore[attr-defined]
    expected = load_training_data(parse_config(config, base_dir=tmp_path)).frame
    pd.testing.assert_frame_equal(loaded.frame, expected)
    assert loaded.frame.loc["c1", "monetary"] == unmarked.loc["c1", "monetary"] - 30.0
    assert not [n for n in loaded.notes if "refund" in n]
    marked["type"] = "purchase"
    marked.to_csv(path, index=False)
    config["data"]["path"] = str(path)  # type: ignore[index]
    config["data"]["transactions"]["refund_column"] = "type"  # type: ignore[index]
    noted = load_training_data(parse_config(config, base_dir=tmp_path)).notes
    assert any("no line of column 'type' says refund" in n and "'purchase'" in n for n in noted)


def _train_log(
    runner: CliRunner, tmp_path: Path, path: Path, data: str = "", transactions: str = ""
) -> tuple[str, Path]:
    """`segments train --promote` of a 2-segment model of the retail log at ``path`` into
    ``tmp_path / "models"`` (``data`` and ``transactions``: more lines of those tables); the
    train's output (its exit code asserted 0) and the store."""
    store = tmp_path / "models"
    (tmp_path / "log.toml").write_text(
        f'[data]\npath = "{path}"\nkind = "transactions"\n{data}'
        '[data.transactions]\ncustomer = "customer"\ntimestamp = "when"\namount = "amount"\n'
        f'order = "order"\n{transactions}'
        '[[features]]\nname = "monetary"\n[[features]]\nname = "frequency"\n'
        '[model]\nname = "log"\nk_min = 2\nk_max = 2\nstability_bootstraps = 0\n'
    )
    trained = runner.invoke(
        app, ["train", "--config", str(tmp_path / "log.toml"), "--store", str(store), "--promote"]
    )
    assert trained.exit_code == 0, trained.output
    return trained.output, store


def test_refunds_or_cancellations_a_column_marks_undeclared_are_noted(tmp_path: Path) -> None:
    """A shop export (type = return, amount written positive) trained without `refund_column`
    counted each return as a purchase, a recent order and spend, without a word (a new user's
    pass): a column named like a line's type or status saying refund or cancelled on lines
    that count as purchases is noted with the option; declared, or on refunds already
    negative, it is not."""
    path = retail_log(tmp_path)
    log = pd.read_csv(path, dtype=str, keep_default_na=False)
    extra = [("c1", "1997-06-20", "15.0", "o1-6"), ("c2", "1997-07-02", "-8.5", "o2-7")]
    extra += [("c3", "1997-05-02", "9.0", "x3")]
    marked = pd.concat([log, pd.DataFrame(extra, columns=log.columns)], ignore_index=True)
    marked["Transaction Type"] = ["sale"] * len(log) + ["Return", "return", "sale"]
    marked["order_status"] = ["delivered"] * (len(marked) - 1) + ["Cancelled"]
    marked.to_csv(path, index=False)
    config = log_config(path, "1997-10-01")
    notes = load_training_data(parse_config(config, base_dir=tmp_path)).notes
    refund = [n for n in notes if "refund_column" in n]
    assert refund == [
        "column 'Transaction Type' says 'Return' on 1 line of positive amount, counted as "
        "purchases: if those lines are refunds, set [data.transactions] refund_column = "
        '"Transaction Type"'
    ], notes
    exclude = [n for n in notes if "exclude_column" in n]
    assert exclude == [
        "column 'order_status' says 'Cancelled' on 1 line of positive amount, counted as "
        "purchases: if those lines are no sale at all, set [data.transactions] exclude_column "
        '= "order_status"'
    ], notes
    # read by the words of their names: an id column named transaction_id is not
    from app.training.data import kind_columns

    assert kind_columns(path, ["customer", "when", "amount", "order"]) == [
        "Transaction Type",
        "order_status",
    ]
    marked.assign(transaction_id="t", TxnKind="sale").to_csv(tmp_path / "ids.csv", index=False)
    assert kind_columns(tmp_path / "ids.csv", [])[-1:] == ["TxnKind"]
    assert "transaction_id" not in kind_columns(tmp_path / "ids.csv", [])
    # an order's status marks the sale itself, later refunded: the note says both readings
    status = marked.assign(financial_status="paid").drop(columns=["Transaction Type"])
    status.loc[len(log), "financial_status"] = "Refunded"
    status.to_csv(tmp_path / "status.csv", index=False)
    config["data"]["path"] = str(tmp_path / "status.csv")  # type: ignore[index]
    notes = load_training_data(parse_config(config, base_dir=tmp_path)).notes
    assert (
        "column 'financial_status' says 'Refunded' on 1 line of positive amount, counted as "
        "purchases: if those lines are refunds, set [data.transactions] refund_column = "
        '"financial_status"; if they are sales later refunded, exclude_column = '
        '"financial_status" with exclude_values = ["refunded"]'
    ) in notes, notes
    config["data"]["path"] = str(path)  # type: ignore[index]
    tx = config["data"]["transactions"]  # type: ignore[index]
    tx["refund_column"] = "Transaction Type"  # type: ignore[index]
    tx["exclude_column"] = "order_status"  # type: ignore[index]
    declared = load_training_data(parse_config(config, base_dir=tmp_path)).notes
    assert not [n for n in declared if "_column =" in n], declared
    # the same note where `segments assign` tags the log
    del tx["refund_column"]  # type: ignore[attr-defined]
    runner = CliRunner()
    trained, store = _train_log(
        runner, tmp_path, path, transactions='exclude_column = "order_status"\n'
    )
    assert 'refund_column = "Transaction Type"' in " ".join(trained.split())
    tagged = runner.invoke(
        app,
        [
            "assign",
            "--input",
            str(path),
            "--output",
            str(tmp_path / "t.csv"),
            "--store",
            str(store),
        ],
    )
    assert tagged.exit_code == 0, tagged.output
    assert 'refund_column = "Transaction Type"' in " ".join(tagged.output.split())


def test_a_log_s_placeholder_customer_id_is_noted_and_missing_values_leaves_it_out(
    tmp_path: Path,
) -> None:
    """A database export wrote its guest lines' customer as NULL: one customer 'NULL', the
    log's most frequent, was segmented without a word, and `[data] missing_values = ["NULL"]`
    (missing "in every column", the README says) left it in. Now the placeholder is noted
    with the option, and the option leaves those lines out as blank ids are, in training and
    in `segments assign --input LOG` alike."""
    path = retail_log(tmp_path)
    log = pd.read_csv(path, dtype=str, keep_default_na=False)
    guests = pd.DataFrame(
        [("NULL", f"1997-0{m}-03", "4.0", f"g{m}") for m in range(1, 10)], columns=log.columns
    )
    pd.concat([log, guests]).to_csv(path, index=False)
    config = log_config(path, "1997-10-01")
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    assert "NULL" in loaded.frame.index
    assert (
        "column 'customer' holds the id 'NULL' on 9 lines, read as a customer (ids are text as "
        'written): if it marks lines without a customer, set [data] missing_values = ["NULL"] '
        "to leave them out, counted as no customer id"
    ) in loaded.notes, loaded.notes
    config["data"]["missing_values"] = ["NULL"]  # type: ignore[index]
    listed = load_training_data(parse_config(config, base_dir=tmp_path))
    assert "NULL" not in listed.frame.index and len(listed.frame) == len(loaded.frame) - 1
    assert listed.dropped_reasons["no customer id"] == loaded.dropped_reasons["no customer id"] + 9
    assert not [n for n in listed.notes if "'NULL'" in n]
    runner = CliRunner()
    _, store = _train_log(runner, tmp_path, path, data='missing_values = ["NULL"]\n')
    out = tmp_path / "tagged.csv"
    tagged = runner.invoke(
        app, ["assign", "--input", str(path), "--output", str(out), "--store", str(store)]
    )
    assert tagged.exit_code == 0, tagged.output
    ids = pd.read_csv(out, dtype=str, keep_default_na=False)["customer"]
    assert "NULL" not in set(ids) and len(ids) == len(listed.frame)


def test_a_header_repeated_inside_the_file_is_no_row(tmp_path: Path) -> None:
    """Two exports appended into one file hold the header again in the middle: a log counted
    it as a line whose time is not readable (`e.g. 'when'`), and a table stopped on text in
    its numeric columns, suggesting `errors = "missing"`, which made the header a customer
    named `customerID`. Now it is left out as what it is, and the data is the file's
    without it, in training and `segments assign --input LOG` alike."""
    path = retail_log(tmp_path)
    text = path.read_text().splitlines(keepends=True)
    appended = tmp_path / "appended.csv"
    appended.write_text("".join([*text[:40], text[0], *text[40:]]))
    config = log_config(path, "1997-10-01")
    plain = load_training_data(parse_config(config, base_dir=tmp_path))
    config["data"]["path"] = str(appended)  # type: ignore[index]
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    pd.testing.assert_frame_equal(loaded.frame, plain.frame)
    assert loaded.dropped_reasons == {
        **plain.dropped_reasons,
        "the header line repeated (files appended)": 1,
    }
    assert loaded.source_rows == plain.source_rows + 1
    # two files Excel saved as 'CSV UTF-8' appended: the second header keeps its BOM
    (tmp_path / "bom.csv").write_text("".join([*text[:40], "\ufeff" + text[0], *text[40:]]))
    config["data"]["path"] = str(tmp_path / "bom.csv")  # type: ignore[index]
    boms = load_training_data(parse_config(config, base_dir=tmp_path))
    assert boms.dropped_reasons == loaded.dropped_reasons
    config["data"]["path"] = str(appended)  # type: ignore[index]
    table = churn_frame()
    table.to_csv(tmp_path / "churn.csv", index=False)
    one = load_training_data(parse_config(churn_config(tmp_path / "churn.csv"), base_dir=tmp_path))
    with (tmp_path / "churn2.csv").open("w") as out:
        table.iloc[:100].to_csv(out, index=False)
        table.iloc[100:].to_csv(out, index=False)
    two = load_training_data(parse_config(churn_config(tmp_path / "churn2.csv"), base_dir=tmp_path))
    pd.testing.assert_frame_equal(two.frame, one.frame)
    assert two.dropped_reasons == {"the header line repeated (files appended)": 1}
    # `segments assign` of the table rejects it with that reason (it said "not a number"),
    # and a model of categorical features only no longer tags a customer 'customerID'
    raw = churn_config(tmp_path / "churn.csv")
    raw["features"] = [{"name": "Churn", "type": "categorical"}]
    raw["outcomes"], raw["model"] = [], {"k_min": 2, "k_max": 2, "name": "churn"}
    train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "tables"), promote=True)
    out = tmp_path / "churn_tagged.csv"
    tagged = runner.invoke(
        app,
        ["assign", "-i", str(tmp_path / "churn2.csv"), "-o", str(out),
         "--store", str(tmp_path / "tables"), "--model", "churn"],
    )  # fmt: skip
    assert tagged.exit_code == 0, tagged.output
    assert "customerID" not in set(pd.read_csv(out, dtype=str)["customerID"])
    rejects = pd.read_csv(tmp_path / "churn_tagged.rejects.csv")
    assert rejects.to_dict("records") == [
        {"row": 101, "reason": "the header line repeated (files appended)"}
    ]
    _, store = _train_log(runner, tmp_path, path)
    tagged = runner.invoke(
        app,
        [
            "assign",
            "--input",
            str(appended),
            "--output",
            str(tmp_path / "t.csv"),
            "--store",
            str(store),
        ],
    )
    assert tagged.exit_code == 0, tagged.output
    assert "the header line repeated (files appended): 1" in " ".join(tagged.output.split())
    assert "not readable" not in tagged.output


def test_ids_written_with_and_without_surrounding_spaces_are_noted(tmp_path: Path) -> None:
    """Two exports appended, one of a database's padded CHAR ids ('00105   '): ids are text as
    written, so a log's 376 customers were 579 without a word. The ids stay as written (the
    service knows them so), and the summary says how many are written both ways and the
    fix; ids all written one way are not noted."""
    path = retail_log(tmp_path)
    log = pd.read_csv(path, dtype=str, keep_default_na=False)
    log.loc[log.index % 2 == 0, "customer"] = log["customer"].map(lambda c: c and f"{c}   ")
    log.to_csv(path, index=False)
    config = log_config(path, "1997-10-01")
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    assert {"c1", "c1   "} <= set(loaded.frame.index)  # as written
    said = [n for n in loaded.notes if "surrounding spaces" in n]
    assert said == [
        "10 ids of column 'customer' are written both with and without surrounding spaces "
        "(e.g. 'c0' and 'c0   '): ids are text as written, so each is two customers; write each "
        "id one way in the file (frame['customer'] = frame['customer'].str.strip(), read with "
        "dtype=str)"
    ], loaded.notes
    log["customer"] = log["customer"].str.strip().map(lambda c: c and f" {c}")
    log.to_csv(path, index=False)
    assert not [
        n
        for n in load_training_data(parse_config(config, base_dir=tmp_path)).notes
        if "surrounding spaces" in n
    ]
    # a shop keyed by the e-mail typed at each order: Ann@Shop.com and ann@shop.com
    log["customer"] = log["customer"].str.strip().map(lambda c: c and f"{c}@shop.com")
    log.loc[log.index % 2 == 0, "customer"] = log["customer"].str.upper()
    log.to_csv(path, index=False)
    said = [
        n
        for n in load_training_data(parse_config(config, base_dir=tmp_path)).notes
        if "in upper and lower case" in n
    ]
    assert said and said[0].startswith(
        "10 ids of column 'customer' are written both in upper and lower case (e.g. "
        "'C0@SHOP.COM' and 'c0@shop.com')"
    ), said
    assert said[0].endswith(".str.strip().str.lower(), read with dtype=str)")
    table = churn_frame()
    table.loc[5, "customerID"] = "k0001 "
    table.to_csv(tmp_path / "churn.csv", index=False)
    notes = load_training_data(
        parse_config(churn_config(tmp_path / "churn.csv"), base_dir=tmp_path)
    ).notes
    assert [n for n in notes if n.startswith("1 id of column 'customerID' is written both")]


def test_ids_written_with_and_without_leading_zeros_are_noted(tmp_path: Path) -> None:
    """Two exports appended, one through a spreadsheet that dropped the ids' leading zeros
    (00105 became 105) or through pandas (105.0): as written, each such customer was two
    without a word. The ids stay as written and the summary says how many and why; ids of
    one width with leading zeros are not noted."""
    path = retail_log(tmp_path)
    log = pd.read_csv(path, dtype=str, keep_default_na=False)
    number = log["customer"].str.removeprefix("c")
    log["customer"] = number.map(lambda n: n and f"00{n}")
    log.loc[log.index % 3 == 0, "customer"] = number.map(lambda n: n and f"{n}.0")
    log.loc[log.index % 3 == 1, "customer"] = number
    log.to_csv(path, index=False)
    config = log_config(path, "1997-10-01")
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    assert {"001", "1", "1.0"} <= set(loaded.frame.index)  # as written
    said = [n for n in loaded.notes if "leading zeros" in n]
    assert len(said) == 1 and said[0].startswith(
        "10 ids of column 'customer' are written both with and without leading zeros or a "
        "trailing .0 (e.g. '0' and '0.0' and '000'): ids are text as written, so each is two "
        "customers; write each id one way in the file"
    ), loaded.notes
    log["customer"] = number.map(lambda n: n and f"00{n}")
    log.to_csv(path, index=False)
    notes = load_training_data(parse_config(config, base_dir=tmp_path)).notes
    assert not [n for n in notes if "leading zeros" in n], notes


def test_a_note_on_ids_repeats_a_long_id_clipped() -> None:
    """A 100,000-digit id beside its number without the zeros was repeated whole in the note
    (the summary, the manifest and the report): at most 80 characters of it now."""
    from app.training.data import zero_ids

    (note,) = zero_ids(pd.Series(["0" * 99_999 + "7", "7", "8"]), "customer_id")
    assert f"(e.g. {'0' * 80!r}… (100,000 characters) and '7')" in note
    assert len(note) < 500


def test_times_an_offset_moves_across_the_reference_date_are_noted(tmp_path: Path) -> None:
    """A New York shop's order of 30 September at 21:00 -04:00 is 1 October in UTC: with
    reference_date = 1997-10-01 it was left out of the features (and the customer's
    recency and frequency) without a word. Times stay UTC, as the service reads them; the
    summary now counts such lines each way; times in UTC, or an offset that crosses
    nothing, are not noted."""
    path = retail_log(tmp_path)
    log = pd.read_csv(path, dtype=str, keep_default_na=False)
    log["when"] = log["when"] + "T12:00:00-04:00"
    late = [("c1", "1997-09-30T21:00:00-04:00", "5.0", "o1-late")]
    early = [("c3", "1997-10-01T00:30:00+02:00", "6.0", "o3-early")]
    pd.concat([log, pd.DataFrame(late + early, columns=log.columns)]).to_csv(path, index=False)
    config = log_config(path, "1997-10-01")
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    assert loaded.frame.loc["c1", "frequency"] == 9  # the 30th's order is October in UTC
    assert loaded.frame.loc["c3", "frequency"] == 10  # the 1st's order is September in UTC
    assert (
        "2 lines written with an offset are on the other side of reference_date 1997-10-01 in "
        "UTC (e.g. '1997-09-30T21:00:00-04:00' is 1997-10-01 01:00 UTC): times are read in UTC "
        "and the reference date starts at 00:00 UTC, so 1 line written before it is left out "
        "of the features and 1 line written on or after it is in the features; where that "
        "matters, write the times in UTC or move the reference date"
    ) in loaded.notes, loaded.notes
    utc = pd.concat([log, pd.DataFrame(late, columns=log.columns)])
    utc["when"] = utc["when"].str.replace("-04:00", "Z")
    utc.to_csv(path, index=False)
    notes = load_training_data(parse_config(config, base_dir=tmp_path)).notes
    assert not [n for n in notes if "written with an offset" in n], notes


def test_a_log_s_own_column_as_a_feature_says_it_is_per_line(tmp_path: Path) -> None:
    """A new user declared the log's `Country` as a feature: the error said it "is not a
    column of" the log, which has it. It now says a log's features are the derived ones,
    and that the column is written per line, not per customer."""
    path = retail_log(tmp_path)
    log = pd.read_csv(path, dtype=str, keep_default_na=False)
    log.assign(Country="UK").to_csv(path, index=False)
    for name, per_line in (("Country", True), ("recency", False)):
        config = log_config(path, "1997-10-01")
        config["features"] = [{"name": "monetary"}, {"name": name, "type": "categorical"}]
        with pytest.raises(DataError) as caught:
            load_training_data(parse_config(config, base_dir=tmp_path))
        message = str(caught.value)
        assert message.startswith(
            f"feature {name!r} is not one a transaction log derives (its features are "
            "recency_days, frequency, monetary, avg_order_value, tenure_days)"
        ), message
        assert ("written per line, not per customer" in message) is per_line, message


def test_a_log_read_without_its_order_column_says_frequency_counts_lines(tmp_path: Path) -> None:
    """A new user's config for a shop export left out `order` (the smallest example has
    none): frequency counted each basket's lines as orders, and avg_order_value a line's
    amount, without a word. A column named like an order id that groups the purchase lines
    into fewer orders is now noted with the option; declared, or one line per order, not."""
    path = retail_log(tmp_path)
    log = pd.read_csv(path, dtype=str, keep_default_na=False)
    items = log[log["customer"] != ""].assign(amount="2.5")  # a second item of each order
    log = pd.concat([log, items], ignore_index=True)
    log = log.rename(columns={"order": "InvoiceNo"})
    log.to_csv(path, index=False)
    config = log_config(path, "1997-10-01")
    tx = config["data"]["transactions"]  # type: ignore[index]
    del tx["order"]  # type: ignore[attr-defined]
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    assert loaded.frame.loc["c1", "frequency"] == 18  # nine orders of two lines
    assert (
        "frequency counts purchase lines (212), not orders: column 'InvoiceNo' groups them "
        'into 106; if it is the order id, set [data.transactions] order = "InvoiceNo" '
        "(frequency and avg_order_value then count distinct orders)"
    ) in loaded.notes, loaded.notes
    tx["order"] = "InvoiceNo"  # type: ignore[index]
    declared = load_training_data(parse_config(config, base_dir=tmp_path))
    assert declared.frame.loc["c1", "frequency"] == 9
    assert not [n for n in declared.notes if "not orders" in n]


def test_lines_an_order_status_marks_as_no_sale_are_left_out_and_counted(
    tmp_path: Path,
) -> None:
    """Cancelled or failed orders (Olist's `order_status = canceled`) counted as purchases:
    `exclude_column` leaves them out, counted with an example, and the features are those of
    the log without them; a column where no line says so is noted."""
    path = retail_log(tmp_path)
    log = pd.read_csv(path, dtype=str, keep_default_na=False)
    log.to_csv(tmp_path / "plain.csv", index=False)
    extra = [("c1", "1997-06-20", "15.0", "x1"), ("c2", "1997-07-02", "8.5", "x2")]
    marked = pd.concat([log, pd.DataFrame(extra, columns=log.columns)])
    marked["status"] = ["delivered"] * len(log) + [" Canceled", "FAILED"]
    marked.to_csv(path, index=False)
    config = log_config(path, "1997-10-01")
    config["data"]["transactions"]["exclude_column"] = "status"  # type: ignore[index]
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    assert loaded.dropped_reasons["no sale (exclude_column)"] == 2
    config["data"]["path"] = str(tmp_path / "plain.csv")  # type: ignore[index]
    del config["data"]["transactions"]["exclude_column"]  # type: ignore[attr-defined]
    expected = load_training_data(parse_config(config, base_dir=tmp_path)).frame
    pd.testing.assert_frame_equal(loaded.frame, expected)
    marked["status"] = "delivered"
    marked.to_csv(path, index=False)
    config["data"]["path"] = str(path)  # type: ignore[index]
    config["data"]["transactions"]["exclude_column"] = "status"  # type: ignore[index]
    config["data"]["transactions"]["exclude_values"] = ["cancelado"]  # type: ignore[index]
    noted = load_training_data(parse_config(config, base_dir=tmp_path)).notes
    assert any("no line of column 'status' says exclude" in n and "'delivered'" in n for n in noted)
    marked["status"] = "cancelled"
    marked.to_csv(path, index=False)
    del config["data"]["transactions"]["exclude_values"]  # type: ignore[attr-defined]
    with pytest.raises(DataError) as caught:
        load_training_data(parse_config(config, base_dir=tmp_path))
    assert "no sale left: every one of" in str(caught.value)


def test_a_table_in_several_currencies_is_noted(tmp_path: Path) -> None:
    """An audit's hotel bookings were priced in EUR, USD and GBP (a `currency` column beside
    `total_price`): segmented on the prices as one currency, without a word, where a log in
    several currencies is noted. A table gets the note too; one currency, or a table with
    no numeric feature, none; the column stays out of the training frame."""
    rng = np.random.default_rng(21)
    n = 300
    frame = pd.DataFrame(
        {
            "customer_id": [f"g{i:04d}" for i in range(n)],
            "total_price": rng.lognormal(5, 0.5, n).round(2),
            "room": rng.choice(["Standard", "Suite"], n),
            "Currency": rng.choice(["EUR", "USD", "GBP"], n, p=[0.6, 0.3, 0.1]),
        }
    )
    path = tmp_path / "bookings.csv"
    frame.to_csv(path, index=False)
    features = [{"name": "total_price"}, {"name": "room", "type": "categorical"}]
    raw = {"data": {"path": str(path)}, "features": features}
    loaded = load_training_data(parse_config(raw, base_dir=tmp_path))
    said = [n for n in loaded.notes if "currencies" in n]
    assert len(said) == 1, loaded.notes
    assert said[0].startswith("column 'Currency' holds 3 currencies (EUR 6"), said
    assert "a money feature (a price, a spend) is compared as written" in said[0]
    assert "Currency" not in loaded.frame.columns
    frame.assign(Currency="EUR").to_csv(path, index=False)
    assert not load_training_data(parse_config(raw, base_dir=tmp_path)).notes
    frame.to_csv(path, index=False)
    only = {**raw, "features": features[1:]}
    assert not load_training_data(parse_config(only, base_dir=tmp_path)).notes


def test_a_code_that_is_no_currency_is_junk_left_out_not_a_unit(tmp_path: Path) -> None:
    """Found by a review: any three capitals read as a currency code, so one `ERR404` in a
    log stopped the job ("a number written with 'ERR'"). Such a line is left out and counted,
    as `TBD` is; a long value is not matched at all (the pattern was quadratic in it)."""
    from app.training.values import unit_hint

    path = retail_log(tmp_path)
    log = pd.read_csv(path, dtype=str, keep_default_na=False)
    log.loc[3, "amount"] = "ERR404"
    log.to_csv(path, index=False)
    loaded = load_training_data(parse_config(log_config(path, "1997-10-01"), base_dir=tmp_path))
    assert loaded.dropped_reasons["amount not a number"] == 1
    assert unit_hint(["SKU123", "12 PCS", "1" * 20_000 + "x"]) is None
    assert unit_hint(["USD 12.50"]) is not None


def test_a_log_with_no_usable_line_says_why_each_was_left_out(tmp_path: Path) -> None:
    """The same bare "no transaction with ..." whatever the cause: now the reasons, counted,
    with an example, and the columns read."""
    path = retail_log(tmp_path)
    log = pd.read_csv(path, dtype=str, keep_default_na=False)
    log.loc[log.index[3:], "customer"] = ""
    log.loc[log.index[:3], "amount"] = ["lots", "n/a?", "lots"]
    log.to_csv(path, index=False)
    with pytest.raises(DataError) as caught:
        load_training_data(parse_config(log_config(path, "1997-10-01"), base_dir=tmp_path))
    text = " ".join(str(caught.value).split())
    assert f"every one of the {len(log):,} rows was left out" in text
    assert f"no customer id: {len(log) - 3:,}" in text
    assert "amount not a number, e.g. 'lots': 3" in text
    assert "the columns read are 'customer', 'when', 'amount', 'order'" in text


def test_a_percent_column_says_to_write_plain_numbers(tmp_path: Path) -> None:
    """`94%` in every row got the advice for categories and dates; it is a number with a
    unit: the message says so, and how to write it."""
    frame = churn_frame()
    frame["MonthlyCharges"] = (frame["MonthlyCharges"].round(0).astype(int)).astype(str) + "%"
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    with pytest.raises(DataError) as caught:
        load_training_data(parse_config(churn_config(data), base_dir=tmp_path))
    text = str(caught.value)
    example = frame["MonthlyCharges"][0]
    assert f"column 'MonthlyCharges' should be numeric but holds text, e.g. {example!r}" in text
    assert f"{example!r} is a number written with '%': write plain numbers ({example[:-1]})" in text
    assert "categorical" not in text and "date" not in text


@pytest.mark.parametrize("offset", ["Z", "+02:00", "-05:00"])
def test_log_times_with_an_offset_are_read_as_utc(tmp_path: Path, offset: str) -> None:
    """ISO 8601 times with `Z` or an offset, the usual export (and what POST /v1/events
    takes), are converted to UTC; they crashed training and tagging with a pandas TypeError
    (comparing aware times with the naive reference date; found by the audit)."""
    path = retail_log(tmp_path)
    naive = load_training_data(parse_config(log_config(path, "1997-10-01"), base_dir=tmp_path))
    log = pd.read_csv(path, dtype={"when": str})
    hours = 0 if offset == "Z" else int(offset[:3])
    local = pd.to_datetime(log["when"]) + pd.Timedelta(hours=hours)  # the same instants
    log["when"] = local.dt.strftime("%Y-%m-%dT%H:%M:%S") + offset
    log.to_csv(path, index=False)
    loaded = load_training_data(parse_config(log_config(path, "1997-10-01"), base_dir=tmp_path))
    pd.testing.assert_frame_equal(loaded.frame, naive.frame)
    assert loaded.dropped_reasons == naive.dropped_reasons


def test_log_times_mixing_naive_and_offset_ones_are_all_read(tmp_path: Path) -> None:
    """A column of naive times and times with an offset (two systems' exports appended) lost
    the offset ones as unreadable (pandas guessed one format from the first value)."""
    path = retail_log(tmp_path)
    naive = load_training_data(parse_config(log_config(path, "1997-10-01"), base_dir=tmp_path))
    log = pd.read_csv(path, dtype={"when": str})
    when = pd.to_datetime(log["when"])
    shifted = (when + pd.Timedelta(hours=2)).dt.strftime("%Y-%m-%dT%H:%M:%S") + "+02:00"
    plain = when.dt.strftime("%Y-%m-%d %H:%M:%S")
    log["when"] = plain.where(log.index % 2 == 0, shifted)  # the same instants
    log.to_csv(path, index=False)
    loaded = load_training_data(parse_config(log_config(path, "1997-10-01"), base_dir=tmp_path))
    pd.testing.assert_frame_equal(loaded.frame, naive.frame)
    assert loaded.dropped_reasons == naive.dropped_reasons


@pytest.mark.parametrize("parquet", [False, True])
def test_log_order_ids_are_text_as_events_send_them(tmp_path: Path, parquet: bool) -> None:
    """Found by the audit: a numeric order column was read as numbers (``5001`` became
    ``5001.0`` beside a blank cell, ``007`` and ``7`` one order), while an event's order id is
    its text: the log and the events counted the same customer's orders differently."""
    from app.events.derive import aggregate_log
    from app.training.data import read_events

    rows = [
        ("c1", "1997-05-01", 10.0, "5001"),
        ("c1", "1997-05-01", 5.0, "5001"),  # a second line of order 5001
        ("c1", "1997-05-02", 7.0, "007"),
        ("c1", "1997-05-03", 3.0, "7"),  # not order 007
        ("c1", "1997-05-04", 2.0, ""),  # no order id: an order of its own
        ("c2", "1997-05-05", 1.0, "12"),
    ]
    log = pd.DataFrame(rows, columns=["customer", "when", "amount", "order"])
    path = tmp_path / ("log.parquet" if parquet else "log.csv")
    if parquet:  # a typed column: integers with a gap are floats (5001.0), 007 is 7
        log["order"] = pd.to_numeric(log["order"].replace("", None)).astype("float64")
        log.to_parquet(path, index=False)
    else:
        log.to_csv(path, index=False)
    config = parse_config(log_config(path, "1997-06-01"), base_dir=tmp_path)
    assert config.data.transactions is not None
    events, _ = read_events(config.data, config.data.transactions)
    orders = set(events.all["order"].dropna())
    assert orders == ({"5001", "7", "12"} if parquet else {"5001", "007", "7", "12"})
    aggregates = aggregate_log(events.all)
    assert aggregates.loc["c1", "orders"] == (3 if parquet else 4)


@pytest.mark.parametrize("product", [False, True])
def test_log_amounts_beyond_the_events_bound_are_left_out_saying_why(
    tmp_path: Path, product: bool
) -> None:
    """The bound POST /v1/events holds an amount to (found by the audit: an amount of 1e300
    or inf, or a quantity of 1e300, failed training late with "holds infinite values", and a
    customer's lines summed beyond 2^63 gave a monetary /v1/assign refuses): such a line is
    left out, and every line of a customer whose net amount before the reference is beyond."""
    path = retail_log(tmp_path)
    clean = log_config(path, "1997-10-01")
    expected = load_training_data(parse_config(clean, base_dir=tmp_path))
    odd = [
        ("c1", "1997-05-01", "1e300", "o-big"),
        ("c1", "1997-05-02", "inf", "o-inf"),
        ("c2", "1997-05-03", "-inf", "o-minus"),
        ("c3", "1997-05-04", "-9.3e18", "o-below"),
        ("rich", "1997-05-05", "9e18", "o-rich-1"),  # each within, 1.8e19 together
        ("rich", "1997-05-06", "9e18", "o-rich-2"),
        ("rich", "1997-11-06", "1.0", "o-rich-3"),  # after the reference: left out too
    ]
    log = pd.read_csv(path, dtype=str, keep_default_na=False)
    log = pd.concat([log, pd.DataFrame(odd, columns=log.columns)])
    if product:  # quantity x unit price, each checked too: 1e300 x 1 and 1 x 1e300
        log = log.rename(columns={"amount": "quantity"}).assign(unit_price="1")
        log.iloc[-7, -1], log.iloc[-7, 2] = "1e300", "1"
        tx = clean["data"]["transactions"]  # type: ignore[index]
        del tx["amount"]
        tx.update(quantity="quantity", unit_price="unit_price")
    log.to_csv(path, index=False)
    loaded = load_training_data(parse_config(clean, base_dir=tmp_path))
    pd.testing.assert_frame_equal(loaded.frame, expected.frame)
    beyond = "amount not finite or beyond 2^63"
    net = "a customer's net amount before the reference date beyond 2^63"
    assert loaded.dropped_reasons == {**expected.dropped_reasons, beyond: 4, net: 3}
    assert loaded.dropped_examples == {beyond: "1e+300", net: "'rich'"}


def test_outcomes_joined_from_a_table_for_a_transaction_log(tmp_path: Path) -> None:
    path = retail_log(tmp_path)
    table = tmp_path / "outcomes.csv"
    pd.DataFrame({"cid": [f"c{c}" for c in range(9)], "churned": ["Y", "N"] * 4 + ["Y"]}).to_csv(
        table, index=False
    )
    raw = log_config(path, "1997-10-01", outcomes={"path": str(table), "id": "cid"})
    loaded = load_training_data(parse_config(raw, base_dir=tmp_path))
    assert loaded.outcomes == ["churned"] and loaded.positive == {"churned": "Y"}
    assert loaded.frame.loc["c0", "churned"] == 1.0 and loaded.frame.loc["c1", "churned"] == 0
    assert np.isnan(loaded.frame.loc["c9", "churned"])  # no row in the outcomes table
    assert any("1 of 10 customers has no row in outcomes.csv" in n for n in loaded.notes)


def test_future_outcomes_from_the_same_log(tmp_path: Path) -> None:
    """Do segments from past behaviour separate future value? Measured after the reference."""
    path = retail_log(tmp_path)
    raw = log_config(path, "1997-10-01", outcomes={"future": {"days": 60}})
    config = parse_config(raw, base_dir=tmp_path)
    loaded = load_training_data(config)
    assert loaded.outcomes == ["future_orders", "future_spend", "repurchased"]
    reason = "on or after the reference date (exclusive, used for the future outcomes)"
    assert loaded.dropped_reasons[reason] == 15  # 5 customers x October to December
    # even customers bought in October and November (inside 60 days), odd ones stopped
    assert loaded.frame.loc["c0", "future_orders"] == 2
    assert loaded.frame.loc["c2", "future_spend"] == pytest.approx(60.0)
    assert loaded.frame.loc["c1", "repurchased"] == 0 and loaded.frame.loc["c4", "repurchased"] == 1
    result = train(config, ModelStore(tmp_path / "store"))
    names = [t.name for t in result.manifest.outcomes]
    assert names == ["future_orders", "future_spend", "repurchased"]
    repurchased = result.manifest.outcomes[2]
    assert repurchased.kind == "binary" and repurchased.effect_size is not None


def test_future_outcomes_need_a_reference_date_inside_the_log(tmp_path: Path) -> None:
    path = retail_log(tmp_path)
    raw = log_config(path, "1998-01-01", outcomes={"future": {"days": 30}})
    with pytest.raises(DataError, match=r"\[outcomes.future\] needs events on or after"):
        load_training_data(parse_config(raw, base_dir=tmp_path))
    table = {**log_config(path, "1998-01-01"), "outcomes": {"future": {"days": 30}}}
    table["data"] = {"path": str(path)}
    with pytest.raises(ConfigError, match="needs kind = 'transactions'"):
        parse_config(table, base_dir=tmp_path)


def test_a_misplaced_top_level_key_says_where_it_belongs(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[data]\npath = "x.csv"\nk_max = 4\n[[features]]\nname = "a"\n'
        '[model]\nname = "m"\noutcomes = ["churned"]\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    message = str(caught.value)
    assert "model.outcomes: unknown config key; 'outcomes' is a top-level key" in message
    assert "move it above the first [table]" in message
    assert "data.k_max: unknown config key; 'k_max' belongs in [model]" in message


def test_assign_without_model_uses_the_only_one_or_names_them(
    tmp_path: Path, customers_csv: Path
) -> None:
    frame = churn_frame()
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    store = ModelStore(tmp_path / "store")
    raw = churn_config(data)
    raw["model"] = {**raw["model"], "name": "churn"}  # type: ignore[dict-item]
    train(parse_config(raw, base_dir=tmp_path), store, promote=True)
    out = tmp_path / "out.csv"
    args = ["assign", "-i", str(data), "-o", str(out), "--store", str(store.root)]
    args += ["--id-column", "customerID"]
    result = runner.invoke(app, args)  # configured: "customers", not in this store
    assert result.exit_code == 0, result.output
    assert "with churn " in result.output and len(pd.read_csv(out)) == 300

    raw["model"] = {**raw["model"], "name": "churn2"}  # type: ignore[dict-item]
    train(parse_config(raw, base_dir=tmp_path), store, promote=True)
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "choose one with --model (churn, churn2)" in " ".join(result.output.split())


def test_every_command_reads_a_file_as_training_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by an audit: a model trained with `errors = "missing"` and `missing_values`
    rejected the same file's rows in `segments assign` (and `--record`) and `models diff`
    refused it, telling the user to set the option already set."""
    frame = churn_frame()
    frame.loc[[1, 2], "TotalCharges"] = "?"
    frame["MonthlyCharges"] = frame["MonthlyCharges"].astype(object)
    frame.loc[[7, 8, 9], "MonthlyCharges"] = "unknown"
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    store = ModelStore(tmp_path / "store")
    raw = churn_config(data)
    raw["features"][1]["errors"] = "missing"  # type: ignore[index]
    raw["data"] = {**raw["data"], "missing_values": ["?"]}  # type: ignore[dict-item]
    raw["model"] = {**raw["model"], "name": "churn"}  # type: ignore[dict-item]
    first = train(parse_config(raw, base_dir=tmp_path), store, promote=True)
    second = train(parse_config(raw, base_dir=tmp_path), store, promote=False)
    common = ["--store", str(store.root), "--model", "churn"]

    out = tmp_path / "out.csv"
    tagged = runner.invoke(
        app, ["assign", "-i", str(data), "-o", str(out), *common, "--id-column", "customerID"]
    )
    assert tagged.exit_code == 0, tagged.output
    assert "tagged 300 " in tagged.output and "rejected" not in tagged.output
    assert len(pd.read_csv(out)) == 300
    assert not (tmp_path / "out.rejects.csv").exists()

    monkeypatch.setenv("SEGMENTS_KEY_PREFIX", f"tf{uuid.uuid4().hex[:8]}:")  # the suite's Redis
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(tmp_path / "data"))
    recorded = runner.invoke(
        app, ["assign", "-i", str(data), "--record", *common, "--id-column", "customerID"]
    )
    assert recorded.exit_code == 0, recorded.output
    assert "recorded 300 customers" in " ".join(recorded.output.split())

    compared = runner.invoke(
        app,
        [
            "models",
            "diff",
            first.manifest.version,
            second.manifest.version,
            "--data",
            str(data),
            *common,
        ],
    )
    assert compared.exit_code == 0, compared.output


@pytest.mark.parametrize("written", ["${:.2f}", "{:,.2f}", "{:.0f}%"])
@pytest.mark.parametrize("rows", ["some", "all"])
def test_errors_missing_reads_junk_as_missing_but_never_numbers_written_for_people(
    tmp_path: Path, written: str, rows: str
) -> None:
    """An audit's money column with `errors = "missing"` had 682 amounts written `$174.23` or
    `1,234.50` read as missing (imputed as the median: the biggest accounts lost, a count in a
    note), while a percentage column of `11%` in every row was still an error. Junk is read as
    missing; a number written for people is the error, whatever its count, in every command."""
    frame = churn_frame()
    charges = frame["MonthlyCharges"].astype(object)
    shown = [written.format(v * 1000 if "," in written else v) for v in charges]
    people = frame.index % 5 == 0 if rows == "some" else np.ones(len(frame), dtype=bool)
    frame["MonthlyCharges"] = charges.where(~people, pd.Series(shown, dtype=object))
    frame.loc[[1, 2, 3], "MonthlyCharges"] = "unknown"  # junk: read as missing
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    raw = churn_config(data)
    raw["features"][1]["errors"] = "missing"  # type: ignore[index]
    with pytest.raises(DataError) as caught:
        load_training_data(parse_config(raw, base_dir=tmp_path))
    message = str(caught.value)
    first = frame["MonthlyCharges"][people & ~frame.index.isin([1, 2, 3])].iloc[0]
    count = int((people & ~frame.index.isin([1, 2, 3])).sum())
    assert f"'MonthlyCharges' should be numeric but holds text, e.g. {first!r}" in message
    assert f"({count:,} of 300 rows)" in message
    assert "is a number written with" in message and "write plain numbers" in message
    assert 'set errors = "missing"' not in message

    # a model trained on the clean file tags a file written so: those rows are rejected
    clean = churn_frame()
    clean.loc[[1, 2, 3], "MonthlyCharges"] = np.nan
    clean_data = tmp_path / "clean.csv"
    clean.to_csv(clean_data, index=False)
    store = ModelStore(tmp_path / "store")
    train(
        parse_config(churn_config(clean_data, **{"features": raw["features"]}), base_dir=tmp_path),
        store,
        promote=True,
    )
    out = tmp_path / "out.csv"
    common = ["--store", str(store.root), "--id-column", "customerID"]
    tagged = runner.invoke(app, ["assign", "-i", str(data), "-o", str(out), *common])
    assert tagged.exit_code == 0, tagged.output
    rejects = pd.read_csv(tmp_path / "out.rejects.csv")
    assert len(rejects) == count and len(pd.read_csv(out)) == 300 - count
    assert rejects["reason"].str.contains("'MonthlyCharges' is not a number").all()


@pytest.mark.parametrize(
    ("group", "decimal", "says"),
    [
        (".", ",", "dots as thousands separators and a decimal comma"),
        ("\u00a0", ",", "spaces as thousands separators and a decimal comma"),
        ("'", ".", "apostrophes as thousands separators"),
    ],
)
def test_numbers_grouped_as_other_locales_write_them_are_never_read_as_missing(
    tmp_path: Path, group: str, decimal: str, says: str
) -> None:
    """An audit's income column from a European export (`138.950,00`, beside `0` and junk
    `k.A.`) with `errors = "missing"`: every income was read as missing and imputed as 0,
    with nothing but a note that the column held one value; so were French (`1 234,56`) and
    Swiss (`1'234.56`) ones. Such a number is written for people, as `1,234.50` is: the
    error names it and the plain number to write."""
    frame = churn_frame()
    charges = frame["MonthlyCharges"] * 1000
    written = [f"{v:,.2f}".translate(str.maketrans(",.", group + decimal)) for v in charges]
    frame["MonthlyCharges"] = pd.Series(written, dtype=object)
    frame.loc[[1, 2, 3], "MonthlyCharges"] = "k.A."  # junk: read as missing
    frame.loc[[4, 5], "MonthlyCharges"] = "0"
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    raw = churn_config(data)
    raw["features"][1]["errors"] = "missing"  # type: ignore[index]
    with pytest.raises(DataError) as caught:
        load_training_data(parse_config(raw, base_dir=tmp_path))
    message = str(caught.value)
    first = frame["MonthlyCharges"][0]
    plain = f"{charges[0]:.2f}"
    assert f"'MonthlyCharges' should be numeric but holds text, e.g. {first!r}" in message
    assert "(295 of 300 rows)" in message
    assert says in message and f"write plain numbers ({plain})" in message


def test_negative_numbers_in_parentheses_are_never_read_as_missing(tmp_path: Path) -> None:
    """An accounting export writes a debit as `(1,234.50)`: with `errors = "missing"` an
    audit's refunds were read as missing (imputed as the median: a refund became a purchase).
    Such a number is written for people: the error names it and the plain number."""
    frame = churn_frame()
    frame["MonthlyCharges"] = frame["MonthlyCharges"].map("{:.2f}".format).astype(object)
    frame.loc[[7, 8], "MonthlyCharges"] = ["(1,234.50)", "(12.00)"]
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    raw = churn_config(data)
    raw["features"][1]["errors"] = "missing"  # type: ignore[index]
    with pytest.raises(DataError) as caught:
        load_training_data(parse_config(raw, base_dir=tmp_path))
    message = str(caught.value)
    assert "'(1,234.50)' is a negative number written in parentheses" in message
    assert "with a minus sign (-1234.50)" in message and "(2 of 300 rows)" in message


def test_negative_amounts_with_a_trailing_minus_are_never_left_out(tmp_path: Path) -> None:
    """A till export writes a refund as `8.76-` (its minus sign after it): a log left those
    lines out as "amount not a number", so every refund was dropped and spend over-counted.
    Such a number is written for people: the error names it and the plain number."""
    path = retail_log(tmp_path)
    log = pd.read_csv(path, dtype=str, keep_default_na=False)
    refunds = pd.DataFrame(
        [("c1", "1997-06-20", "8.76-", ""), ("c2", "1997-07-02", "1,200.50-", "")],
        columns=log.columns,
    )
    pd.concat([log, refunds]).to_csv(path, index=False)
    with pytest.raises(DataError) as caught:
        load_training_data(parse_config(log_config(path, "1997-10-01"), base_dir=tmp_path))
    message = str(caught.value)
    assert "'8.76-' is a negative number written with its minus sign after it" in message
    assert "with a leading minus sign (-8.76)" in message and "in 2 of 109 rows" in message
    assert message.endswith("(leaving those lines out would over-count their customers' spend)")
    from app.training.values import unit_hint

    assert unit_hint(["1,200.50-"]) and "(-1200.50)" in str(unit_hint(["1,200.50-"]))
    assert unit_hint(["-8.76"]) is None and unit_hint(["-"]) is None and unit_hint(["a-"]) is None


@pytest.mark.parametrize("errors", ["raise", "missing"])
def test_a_column_with_no_number_at_all_says_what_to_declare(tmp_path: Path, errors: str) -> None:
    """An audit's date and company-name columns were told to set errors = "missing", which
    would have made a feature missing in every row."""
    frame = churn_frame()
    frame["MonthlyCharges"] = pd.date_range("2024-01-01", periods=len(frame)).astype(str)
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    raw = churn_config(data)
    raw["features"][1]["errors"] = errors  # type: ignore[index]
    with pytest.raises(DataError) as caught:
        load_training_data(parse_config(raw, base_dir=tmp_path))
    message = str(caught.value)
    assert "'MonthlyCharges' should be numeric but holds text, e.g. '2024-01-01'" in message
    assert 'type = "categorical"' in message and "dates" in message
    assert 'set errors = "missing"' not in message


def test_too_few_customers_for_steady_segments_are_noted(tmp_path: Path) -> None:
    """45 customers trained three segments without a word: a note says how few that is."""
    few = tmp_path / "few.csv"
    churn_frame(45).to_csv(few, index=False)
    store = ModelStore(tmp_path / "store")
    notes = train(parse_config(churn_config(few), base_dir=tmp_path), store).manifest.data.notes
    assert any(
        n.startswith("only 45 customers for 3 clustered segments (15 each on average)")
        for n in notes
    ), notes
    enough = tmp_path / "enough.csv"
    churn_frame(300).to_csv(enough, index=False)
    notes = train(parse_config(churn_config(enough), base_dir=tmp_path), store).manifest.data.notes
    assert not any("clustered segments" in n for n in notes), notes


@pytest.mark.parametrize(
    ("column", "when", "said"),
    [
        # the data says Month-to-month: categories are compared as written
        ("contract", "contract == 'month-to-month'", "'month-to-month' is 'Month-to-month'"),
        # a CSV column of True/False is read as booleans: the categories true/false (as JSON's
        # true and false reach the API)
        ("auto_renew", "auto_renew == 'True'", "'True' is 'true'"),
    ],
)
def test_a_rule_matching_no_customer_is_noted_with_the_spelling_the_data_has(
    tmp_path: Path, column: str, when: str, said: str
) -> None:
    """Found by an audit: `has_app == 'yes'` where the data says `Yes` (and `auto_renew ==
    'True'` on a CSV's True/False) made an empty segment and training said nothing."""
    frame = churn_frame()
    long = frame["tenure"] > 40
    frame[column] = np.where(long, "Two year", "Month-to-month") if column == "contract" else long
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    config = churn_config(data)
    config["features"].append({"name": column, "type": "categorical"})  # type: ignore[attr-defined]
    config["rules"] = [{"name": "Ruled", "when": when}]
    notes = train(
        parse_config(config, base_dir=tmp_path), ModelStore(tmp_path / "store")
    ).manifest.data.notes
    assert (
        f"rule segment 'Ruled' holds no customer: {when!r} matches none of the data ({said} in "
        f"{column!r}: categories are compared as written)"
    ) in notes, notes


def test_tree_leaves_below_min_share_of_all_customers_are_noted() -> None:
    from app.registry.manifest import SegmentInfo
    from app.training.steps import small_leaves

    leaves = [
        SegmentInfo.model_construct(id="seg-004", share=0.04),
        SegmentInfo.model_construct(id="seg-005", share=0.30),
    ]
    assert small_leaves(leaves, 0.05, 3) == [
        "seg-004 (4.0%) below min_share (5%) of all customers: the tree keeps each leaf at 5% "
        "of the customers the 3 rule segment(s) leave it"
    ]
    assert small_leaves(leaves[1:], 0.05, 3) == []


def test_a_declared_positive_of_a_numeric_outcome_compares_numbers() -> None:
    """`positive = "1"` of a column read as numbers (1.0 where a blank made it float), and
    of another two-valued number."""
    from app.training.values import outcome_column

    numbers, positive = outcome_column(pd.Series([1.0, 0.0, np.nan, 1.0]), "x", "s", (), "1")
    assert numbers.tolist()[:2] == [1.0, 0.0] and np.isnan(numbers[2]) and positive == "1"
    numbers, _ = outcome_column(pd.Series([2, 3, 3]), "x", "s", (), "3")
    assert numbers.tolist() == [0.0, 1.0, 1.0]
    # a nullable column (as Parquet reads it) ended in a TypeError writing text into it
    for dtype in ("Int64", "Float64"):
        numbers, _ = outcome_column(pd.Series([1, 0, None], dtype=dtype), "x", "s", (), "1")
        assert numbers.tolist()[:2] == [1.0, 0.0] and np.isnan(numbers[2])
    numbers, _ = outcome_column(pd.Series([True, False, None], dtype="boolean"), "x", "s", (), "1")
    assert numbers.tolist()[:2] == [1.0, 0.0] and np.isnan(numbers[2])


def test_a_count_of_one_conjugates_its_verb() -> None:
    from app.words import counted

    assert counted(1, "purchase line", verb="have") == "1 purchase line has"
    assert counted(2, "purchase line", verb="have") == "2 purchase lines have"
    assert counted(1, "row", verb="hold") == "1 row holds"


def test_customers_with_refunds_only_are_one_reason_in_every_manifest(tmp_path: Path) -> None:
    """An audit's order log's summary read "refunds of customers with no purchase before the
    reference date (1 customers: ...)": the count was in the reason, which the manifest
    promises is the same text in every manifest (to sum them). It is in the example now."""
    reasons = []
    for refunders in (1, 3):
        log = pd.read_csv(retail_log(tmp_path), dtype=str, keep_default_na=False)
        extra = [(f"r{i}", "1997-04-02", "-6.0", "") for i in range(refunders)]
        extra.append(("r0", "1997-05-02", "-2.0", ""))  # a second refund line of r0
        log = pd.concat([log, pd.DataFrame(extra, columns=log.columns)])
        path = tmp_path / f"refunds{refunders}.csv"
        log.to_csv(path, index=False)
        config = parse_config(log_config(path, "1997-10-01"), base_dir=tmp_path)
        store = ModelStore(tmp_path / f"s{refunders}")
        data = train(config, store).manifest.data
        reason = next(r for r in data.dropped_reasons if r.startswith("refunds of customers"))
        assert data.dropped_reasons[reason] == refunders + 1
        assert data.dropped_examples[reason] == (
            "'r0' (1 customer in all)" if refunders == 1 else "'r0' (3 customers in all)"
        )
        reasons.append(reason)
    assert (
        reasons[0]
        == reasons[1]
        == (
            "refunds of customers with no purchase before the reference date (no purchase to "
            "derive recency from)"
        )
    )


def test_a_reference_date_written_month_first_says_how_to_write_it(tmp_path: Path) -> None:
    """A new user's reference_date = "09/01/2024" got pydantic's "invalid character in
    year"; a quoted ISO date is read as the date it is."""
    path = retail_log(tmp_path)
    with pytest.raises(ConfigError) as caught:
        parse_config(log_config(path, "09/01/1997"), base_dir=tmp_path)
    assert (
        "data.transactions.reference_date: reference_date '09/01/1997' is not a date written "
        "year first: write it as a TOML date, reference_date = 1997-01-09 if day first, or "
        "1997-09-01 if month first (no quotes needed)"
    ) in str(caught.value)
    # a wholesaler's "01.07.2024" was told "reference_date = 2024-09-01", another day: its
    # own date, each way it may be read, or the one way where only one is a date
    for given, said in [
        ("15.07.2024", "reference_date = 2024-07-15 (no quotes"),
        ("7/15/2024", "reference_date = 2024-07-15 (no quotes"),
        ("01.01.2024", "reference_date = 2024-01-01 (no quotes"),
        ("July 1st", "reference_date = 2024-09-01 (no quotes"),  # no such date: an example
        ("31/31/2024", "reference_date = 2024-09-01 (no quotes"),
    ]:
        with pytest.raises(ConfigError) as caught:
            parse_config(log_config(path, given), base_dir=tmp_path)
        assert said in str(caught.value), str(caught.value)
    config = parse_config(log_config(path, "1997-10-01"), base_dir=tmp_path)
    assert config.data.transactions is not None
    assert str(config.data.transactions.reference_date) == "1997-10-01"


@pytest.mark.parametrize("value", ["No", "0"])
def test_an_outcome_with_one_value_says_so_rather_than_that_segments_do_not_differ(
    tmp_path: Path, value: str
) -> None:
    """Every customer 'No' (an export's wrong column, a filter left on): the summary said the
    segments 'do not differ significantly, segment means 0 to 0 (p=—)', as if tested."""
    from app.cli.common import outcome_line

    frame = churn_frame()
    frame["Churn"] = value
    data = tmp_path / "churn.csv"
    frame.to_csv(data, index=False)
    config = parse_config(churn_config(data), base_dir=tmp_path)
    test = train(config, ModelStore(tmp_path / "store")).manifest.outcomes[0]
    line = outcome_line(test)
    assert "do not differ" not in line, line
    assert ": 0 for every customer, so it separates nothing" in line, line


def test_the_summary_writes_money_outcome_means_as_numbers_not_exponents() -> None:
    """An insurance table's charges read "segment means 1.41e+04 to 4.06e+04" in the summary
    (the report wrote 14,099): a marketer reads money as the report writes it; rates and
    small means keep their three digits."""
    from app.cli.common import outcome_line
    from app.registry.manifest import OutcomeTest

    charges = OutcomeTest(
        name="charges", kind="numeric", test="Kruskal-Wallis", statistic=870.0, p_value=0.0,
        significant=True, overall_mean=20_063.1, effect_size=0.655, effect_measure="epsilon²",
        segment_min=14_099.126, segment_max=40_583.02,
    )  # fmt: skip
    assert "segment means 14,099 to 40,583 (" in outcome_line(charges)
    rate = charges.model_copy(update={"segment_min": 0.0585, "segment_max": 0.513})
    assert "segment means 0.0585 to 0.513 (" in outcome_line(rate)
    same = charges.model_copy(update={"p_value": None, "segment_max": 14_099.126})
    assert ": 14,099 for every customer" in outcome_line(same)


def test_a_feature_whose_values_alone_separate_the_outcome_better_is_noted(
    tmp_path: Path,
) -> None:
    """A marketing customer-value table: lifetime value is highest for customers of two
    policies, lower for one or three and more (not in one direction, so the outcome-weighted
    space, weighting by correlation, did not see it), and the default's segments followed
    the premiums at epsilon² 0.18 while a tree reached 0.66, without a word in the summary.
    A feature of few values that alone separates an outcome at least 1.5 times as well as
    the segments is noted, with the tree that splits on it."""
    rng = np.random.default_rng(5)
    n = 1_200
    policies = rng.choice([1, 2, 3], n)
    blob = rng.integers(0, 3, n)
    frame = pd.DataFrame(
        {
            "customerID": [f"k{i:04d}" for i in range(n)],
            "premium": np.array([70.0, 110.0, 200.0])[blob] + rng.normal(0, 8, n),
            "tenure": np.array([10.0, 40.0, 80.0])[blob] + rng.normal(0, 5, n),
            "policies": policies,
            "value": 4000 + 6000 * (policies == 2) + rng.gamma(2, 500, n),
        }
    )
    data = tmp_path / "clv.csv"
    frame.to_csv(data, index=False)
    raw = {
        "data": {"path": str(data), "id_column": "customerID"},
        "outcomes": ["value"],
        "features": [{"name": "premium"}, {"name": "tenure"}, {"name": "policies"}],
        "model": {"name": "clv", "stability_bootstraps": 0, "k_min": 3, "k_max": 3},
    }
    store = ModelStore(tmp_path / "store")
    manifest = train(parse_config(raw, base_dir=tmp_path), store).manifest
    segments = manifest.outcomes[0].effect_size
    assert segments is not None
    notes = [n for n in manifest.data.notes if n.startswith("policies alone")]
    assert len(notes) == 1, manifest.data.notes
    assert notes[0].startswith(
        "policies alone (its 3 values as groups) separates value at epsilon² "
    )
    assert notes[0].endswith(
        f"than the segments' {segments:.2f}: they cut across it (its effect is not in one "
        'direction, or too narrow to shape them); a tree on the outcome (algorithm = "tree", '
        'target = "value") splits on it (docs/training.md#tree-segments)'
    )


def test_skipped_deliveries_of_amount_0_a_column_marks_are_noted(tmp_path: Path) -> None:
    """A subscription box's log wrote each month's skip, pause and resume as a line of amount
    0 beside the shipments: a line of amount 0 is a purchase, so a customer who skipped every
    month was as frequent and as recent as one who bought every month, without a word (a new
    user's pass; the cancellations followed the skips). The note names the column, its values
    and the exclude_column that leaves them out, also where that column is refund_column;
    once excluded the lines are counted as left out and the note is gone; free lines of a
    value the sales hold too (a free sample's 'sale') are no such lines."""
    rows = []
    for c in range(6):
        for month in range(1, 10):
            skipped = c % 2 == 1 and month % 3 != 0
            kind = ("pause" if month == 4 else "skip") if skipped else "shipment"
            amount = "0" if skipped else "29.0"
            rows.append((f"s{c}", f"2024-{month:02d}-05", amount, kind))
    rows.append(("s0", "2024-09-10", "29.0", "refund"))
    rows.append(("s2", "2024-09-11", "0", "shipment"))  # a free box, written as a shipment
    path = tmp_path / "box.csv"
    pd.DataFrame(rows, columns=["sub_id", "day", "amount", "event_type"]).to_csv(path, index=False)
    tx: dict[str, object] = {"customer": "sub_id", "timestamp": "day", "amount": "amount"}
    config: dict[str, object] = {
        "data": {"path": str(path), "kind": "transactions", "transactions": tx},
        "features": [{"name": "recency_days"}, {"name": "frequency"}],
        "model": {"k_min": 2, "k_max": 2, "stability_bootstraps": 0},
    }
    note = (
        "column 'event_type' says 'skip', 'pause' on 18 lines of amount 0 (values no line of "
        "positive amount holds), counted as purchases (each one an order for frequency, a last "
        "purchase for recency_days): if those lines are no sale (a skipped or paused "
        'delivery), set [data.transactions] exclude_column = "event_type" with '
        'exclude_values = ["pause", "skip"]'
    )
    for declared in ({}, {"refund_column": "event_type"}):
        tx.update(declared)
        loaded = load_training_data(parse_config(config, base_dir=tmp_path))
        assert note in loaded.notes, loaded.notes
        assert loaded.frame.loc["s1", "frequency"] == 9  # each skip an order
    tx.update(exclude_column="event_type", exclude_values=["pause", "skip"])
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    assert not [n for n in loaded.notes if "of amount 0" in n], loaded.notes
    assert loaded.frame.loc["s1", "frequency"] == 3
    assert loaded.frame.loc["s2", "frequency"] == 10  # the free shipment stays an order
    assert loaded.dropped_reasons == {"no sale (exclude_column)": 18}, loaded.dropped_reasons
    # exclude_column already declared: the values it lacks are added to those it has
    tx.update(exclude_values=["cancelled", "pause"])
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    assert [n for n in loaded.notes if "of amount 0" in n] == [
        "column 'event_type' says 'skip' on 15 lines of amount 0 (values no line of positive "
        "amount holds), counted as purchases (each one an order for frequency, a last purchase "
        "for recency_days): if those lines are no sale (a skipped or paused delivery), set "
        '[data.transactions] exclude_column = "event_type" with exclude_values = '
        '["cancelled", "pause", "skip"]'
    ], loaded.notes


def test_the_note_on_lines_of_amount_0_reads_values_as_written() -> None:
    """The values are folded once each (not line by line): a blank or missing value is no
    mark, ' Skip' and 'skip' are one word, and a number column's values are its numbers."""
    from app.training.config import TransactionsConfig
    from app.training.data import free_marks

    tx = TransactionsConfig.model_validate({"customer": "c", "timestamp": "t", "amount": "a"})
    amount = np.array([0.0, 0.0, 0.0, 5.0])
    cases = {
        "missing": ([None, np.nan, " ", "order"], None),
        "case": ([" Skip", "skip", None, "order"], ("'skip'", 2)),
        "numbers": ([7, 7, 2, 2], ("'7'", 2)),
    }
    for name, (values, expected) in cases.items():
        notes = free_marks(pd.DataFrame({"k": values}), tx, ["k"], np.ones(4, bool), amount)
        if expected is None:
            assert notes == (), (name, notes)
        else:
            assert len(notes) == 1, (name, notes)
            assert f"says {expected[0]} on {expected[1]} lines of amount 0" in notes[0], notes


@pytest.mark.parametrize(
    ("table", "key", "expected"),
    [
        # a new user's outcomes keyed on `subscriber` was told to move id_column to [data]
        (
            "outcomes",
            "id_column",
            "outcomes.id_column: unknown config key; the outcomes table's column of customer "
            'ids is id here: id = "subscriber"',
        ),
        # and [data] id was told it "belongs in [outcomes]"
        (
            "data",
            "id",
            "data.id: unknown config key; the file's column of customer ids is id_column here: "
            'id_column = "subscriber"',
        ),
        (
            "data",
            "customer_id",
            "data.customer_id: unknown config key; the file's column of customer ids is "
            'id_column here: id_column = "subscriber"',
        ),
    ],
)
def test_an_id_column_under_another_tables_key_says_this_tables_key(
    tmp_path: Path, table: str, key: str, expected: str
) -> None:
    config = churn_config(tmp_path / "d.csv")
    config["outcomes"] = {"path": str(tmp_path / "o.csv"), "columns": ["Churn"]}
    section = config[table]
    assert isinstance(section, dict)
    section[key] = "subscriber"
    with pytest.raises(ConfigError) as raised:
        parse_config(config, base_dir=tmp_path)
    assert expected in str(raised.value), str(raised.value)


@pytest.mark.parametrize("key", ["customer", "id"])
def test_a_logs_id_column_under_data_says_data_transactions_customer(
    tmp_path: Path, key: str
) -> None:
    """A log's customer column written in [data] (not [data.transactions]) was told
    "'customer' belongs in [data.transactions]"; the id-key hint then told it id_column, the
    key of a table's ids, which a log does not read its customers by."""
    config = log_config(tmp_path / "log.csv", "2026-01-01")
    data = config["data"]
    assert isinstance(data, dict)
    del data["transactions"]["customer"]
    data[key] = "subscriber"
    with pytest.raises(ConfigError) as raised:
        parse_config(config, base_dir=tmp_path)
    assert (
        f"data.{key}: unknown config key; the log's column of customer ids is customer in "
        '[data.transactions]: customer = "subscriber"'
    ) in str(raised.value), str(raised.value)


def test_a_logs_id_column_naming_another_column_is_refused_not_ignored(tmp_path: Path) -> None:
    """A wholesaler's log config with [data] id_column = "acct" (and customer = "account")
    trained without a word: a log's customers are read by [data.transactions] customer and
    id_column by nothing. Naming another column is refused, nothing stored; naming the
    customer column (as examples/transactions.toml does) trains; a version stored with
    one stays readable."""
    path = retail_log(tmp_path)
    store = ModelStore(tmp_path / "s")
    config = log_config(path, "1997-10-01")
    data = config["data"]
    assert isinstance(data, dict)
    data["id_column"] = "acct"
    with pytest.raises(ConfigError) as raised:
        train(parse_config(config, base_dir=tmp_path), store)
    assert (
        "id_column = 'acct' is not read for a transaction log: its customers are "
        "[data.transactions] customer = 'customer'; leave id_column out, or set customer = "
        "'acct' if that is the column of customer ids"
    ) in str(raised.value), str(raised.value)
    assert store.versions("customers") == []
    data["id_column"] = "customer"
    manifest = train(parse_config(config, base_dir=tmp_path), store).manifest
    assert manifest.data.rows == 10
    # a version trained before the refusal, with such a config, is still read
    stored = dict(manifest.config)
    stored["data"] = {**stored["data"], "id_column": "acct"}
    assert parse_config(stored, base_dir=tmp_path, stored=True).data.id_column == "acct"


@pytest.mark.parametrize(
    ("name", "like"),
    [
        ("Game Players", "Game_Players"),
        ("-churn", "churn"),
        ("x" * 70, "x" * 64),
        ("€", "customers"),
    ],
)
def test_a_model_name_the_store_cannot_hold_says_the_rule_in_words(
    tmp_path: Path, name: str, like: str
) -> None:
    """A game studio's [model] name = "Game Players" was refused with "String should match
    pattern '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'": the rule in words and a name that keeps,
    before anything is read or stored."""
    path = retail_log(tmp_path)
    config = log_config(path, "1997-10-01")
    config["model"] = {"name": name}
    store = ModelStore(tmp_path / "s")
    with pytest.raises(ConfigError) as raised:
        train(parse_config(config, base_dir=tmp_path), store)
    said = str(raised.value)
    assert "is not a model name: letters, digits, '_', '.' and '-' only, at most 64" in said
    assert said.endswith(f"e.g. name = {like!r}"), said
    assert "pattern" not in said, said
    assert store.model_names() == []
    config["model"] = {"name": like}  # the name it gives trains
    assert train(parse_config(config, base_dir=tmp_path), store).manifest.model_name == like


def test_an_outcomes_table_without_the_default_id_column_names_its_key(tmp_path: Path) -> None:
    """A subscription log's outcomes were keyed on `subscriber`: without `id` in [outcomes]
    the error said "missing column(s) 'customer_id'" and no word of the key that names the
    outcomes table's id column (the training table's id_column is named so)."""
    frame = churn_frame()
    frame.drop(columns=["Churn"]).to_csv(tmp_path / "d.csv", index=False)
    outcomes = frame[["customerID", "Churn"]].rename(columns={"customerID": "subscriber"})
    outcomes.to_csv(tmp_path / "o.csv", index=False)
    config = churn_config(tmp_path / "d.csv")
    config["outcomes"] = {"path": str(tmp_path / "o.csv"), "columns": ["Churn"]}
    with pytest.raises(DataError) as raised:
        train(parse_config(config, base_dir=tmp_path), ModelStore(tmp_path / "s"))
    assert str(raised.value) == (
        "o.csv: missing column(s) 'customer_id'; the file has: 'subscriber', 'Churn' "
        "('customer_id' is the id column: [outcomes] id names the file's column of customer "
        "ids, 'customer_id' unless set, e.g. id = 'subscriber')"
    )


def test_a_rule_on_a_column_declared_no_feature_says_to_declare_it(tmp_path: Path) -> None:
    """A new user's rule on a seller table's `country`, a column of the file never declared,
    was told "unknown feature 'country'" and the features declared, not why a column of the
    file is unknown; a rule on the outcome is told that the service assigns without it."""
    frame = churn_frame()
    frame.to_csv(tmp_path / "d.csv", index=False)
    config = churn_config(tmp_path / "d.csv")
    config["features"] = [{"name": "tenure"}, {"name": "TotalCharges"}]
    said = {}
    for name, when in [("column", "MonthlyCharges > 80"), ("outcome", "Churn == 1")]:
        config["rules"] = [{"name": "r", "when": when}]
        with pytest.raises(ConfigError) as raised:
            train(parse_config(config, base_dir=tmp_path), ModelStore(tmp_path / "s"))
        said[name] = str(raised.value)
    assert said["column"].endswith(
        "unknown feature 'MonthlyCharges' (declared: tenure, TotalCharges); 'MonthlyCharges' is "
        "a column of d.csv but no feature: a rule reads the declared features, as the service "
        'assigns from them: declare it in [[features]] (type = "categorical" for text) to use it'
    ), said
    assert said["outcome"].endswith(
        "; 'Churn' is an outcome: a rule reads the features only, as the service assigns "
        "without the outcome"
    ), said
    assert not (tmp_path / "s").exists() or not list((tmp_path / "s").rglob("manifest.json"))


def test_a_model_name_the_store_cannot_hold_on_the_command_line_says_the_rule_too(
    trained: tuple[ModelStore, object], customers_csv: Path, tmp_path: Path
) -> None:
    """Found by an outside tester: ``--model "Game Players"`` was told "invalid model name
    'Game Players': use 1-64 of [A-Za-z0-9_.-], no leading '.'" (``serve``: pydantic's regex)
    where the config's ``[model] name`` says the rule in words and a name that keeps: every
    command's ``--model`` says the same, before anything is read or written."""
    store, _ = trained
    before = sorted(p.name for p in store.root.rglob("*"))
    config = tmp_path / "c.toml"
    config.write_text((ROOT / "examples" / "customers.toml").read_text())
    new_store = tmp_path / "new"
    s, csv = str(store.root), str(customers_csv)
    commands = [
        ["models", "list", "--store", s],
        ["models", "show", "--store", s],
        ["models", "promote", "20240101-000000-abcdef", "--store", s],
        ["train", "--config", str(config), "--data", csv, "--store", str(new_store)],
        ["assign", "--input", csv, "--output", str(tmp_path / "o.csv"), "--store", s],
        ["drift", "--data", csv, "--store", s],
        ["serve", "--store", s, "--port", "8395"],
        ["dispatch", "--store", s],
        ["customers", "forget", "c1"],
        ["customers", "rescore"],
    ]
    for command in commands:
        said = CliRunner().invoke(app, [*command, "--model", "Game Players"])
        text = " ".join(said.output.replace("│", " ").split())
        assert said.exit_code == 2, (command, said.output)
        assert "'Game Players' is not a model name: letters, digits, '_', '.' and '-' only" in text
        assert text.count("is not a model name") == 1, text
        assert "e.g. --model Game_Players" in text, (command, text)
        assert "pattern" not in text and "[A-Za-z0-9_.-]" not in text, text
    assert not new_store.exists() and not (tmp_path / "o.csv").exists()
    assert sorted(p.name for p in store.root.rglob("*")) == before


def test_customers_with_only_excluded_lines_are_counted(tmp_path: Path) -> None:
    """An app's event log holds every app_open and ad_view beside the purchases, each of
    amount 0: the note named exclude_column, and once it was set the users who never paid
    (41% of a generated log's) were in no segment, with only a count of lines left out to
    say so (a new user's pass). Both notes now count those customers, and name the table
    of counts per customer that segments them too."""
    rows = [("u1", "2024-03-01", "app_open", "0"), ("u1", "2024-03-02", "purchase", "4.99")]
    rows += [(f"u{c}", f"2024-03-0{d}", "app_open", "0") for c in (2, 3) for d in (1, 2, 3)]
    rows += [("u4", "2024-03-04", "purchase", "9.99"), ("u4", "2024-03-05", "ad_view", "0")]
    rows += [(f"u{c}", f"2024-03-0{c}", "purchase", "0.99") for c in (5, 6)]
    path = tmp_path / "events.csv"
    columns = ["user_id", "event_time", "event_name", "revenue_usd"]
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    tx: dict[str, object] = {"customer": "user_id", "timestamp": "event_time"}
    tx["amount"] = "revenue_usd"
    config: dict[str, object] = {
        "data": {"path": str(path), "kind": "transactions", "transactions": tx},
        "features": [{"name": "recency_days"}, {"name": "frequency"}],
        "model": {"k_min": 2, "k_max": 2, "stability_bootstraps": 0},
    }
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    [note] = [n for n in loaded.notes if "of amount 0" in n]
    assert note.endswith(
        'exclude_values = ["ad_view", "app_open"]; 2 customers (33%) hold only such lines '
        "and would then be in no segment: where they are customers to segment too (an app's "
        "users who never paid), count each one's events per customer into a table first "
        "(docs/training.md#an-event-log-of-activity-beside-purchases)"
    ), note
    tx.update(exclude_column="event_name", exclude_values=["app_open", "ad_view"])
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    assert sorted(loaded.frame.index) == ["u1", "u4", "u5", "u6"]
    assert (
        "2 customers (33% of the log's, e.g. 'u2') have only lines that exclude_column "
        "'event_name' leaves out: with no sale, they are in no segment and `segments assign` "
        "tags none of them; where they are customers to segment too (an app's users who "
        "never paid), count each one's events per customer into a table first "
        "(docs/training.md#an-event-log-of-activity-beside-purchases)"
    ) in loaded.notes, loaded.notes
    # an excluded line beside a customer's sales leaves nobody out: no such note
    tx.update(exclude_values=["ad_view"])
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    assert not [n for n in loaded.notes if "only lines that exclude_column" in n], loaded.notes


def test_an_order_status_of_unavailable_is_no_sale_by_default(tmp_path: Path) -> None:
    """A marketplace's export (Olist's orders) writes an order it could not fulfil as
    order_status 'unavailable', beside 'canceled': with exclude_column declared and the
    default values, those orders counted as purchases (frequency, spend) without a word (a
    new user's pass). They are no sale by default now, as a payment 'declined' or
    'rejected' is."""
    rows = [(f"c{c}", f"o{c}{i}", f"2024-0{i + 1}-05T10:00:00-03:00", "50.0", "delivered")
            for c in range(5) for i in range(2)]  # fmt: skip
    rows += [("c0", "o09", "2024-04-01T10:00:00-03:00", "80.0", "unavailable")]
    rows += [("c1", "o19", "2024-04-02T10:00:00-03:00", "80.0", "Declined")]
    rows += [("c2", "o29", "2024-04-03T10:00:00-03:00", "80.0", "canceled")]
    path = tmp_path / "orders.csv"
    columns = ["customer_unique_id", "order_id", "ts", "payment_value", "order_status"]
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    tx = {"customer": "customer_unique_id", "timestamp": "ts", "amount": "payment_value"}
    tx |= {"order": "order_id", "exclude_column": "order_status"}
    config: dict[str, object] = {
        "data": {"path": str(path), "kind": "transactions", "transactions": tx},
        "features": [{"name": "frequency"}, {"name": "monetary"}],
        "model": {"k_min": 2, "k_max": 2, "stability_bootstraps": 0},
    }
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    assert loaded.dropped_reasons == {"no sale (exclude_column)": 3}, loaded.dropped_reasons
    assert loaded.frame["frequency"].tolist() == [2] * 5
    assert loaded.frame["monetary"].tolist() == [100.0] * 5


def test_a_customer_column_of_one_id_per_order_is_noted(tmp_path: Path) -> None:
    """Olist's orders table writes a new customer_id with each order (its customers table
    maps them to customer_unique_id): read as the customer, every one bought once and no one
    came back, and the summary only advised dropping frequency as a constant (a new user's
    pass). The note asks whether the column is a person's; a log where a customer came back
    after the reference date, or of a few customers, has none."""
    rows = [(f"{c:032x}", f"o{c}", f"2024-0{1 + c % 5}-1{c % 9}", "50.0") for c in range(150)]
    rows += [(f"{c:032x}", f"o{c}", "2024-07-02", "40.0") for c in range(150, 170)]
    path = tmp_path / "orders.csv"
    pd.DataFrame(rows, columns=["customer_id", "order_id", "ts", "value"]).to_csv(path, index=False)
    tx = {"customer": "customer_id", "timestamp": "ts", "amount": "value", "order": "order_id"}
    tx["reference_date"] = "2024-07-01"
    config: dict[str, object] = {
        "data": {"path": str(path), "kind": "transactions", "transactions": tx},
        "features": [{"name": "recency_days"}, {"name": "frequency"}],
        "model": {"k_min": 2, "k_max": 2, "stability_bootstraps": 0},
    }
    note = (
        "every one of the 150 customers bought exactly one order before the reference date "
        "(and none of them is among the 20 customers who bought on or after the reference "
        "date): is 'customer_id' a new id with each order rather than a person's? (Olist's "
        "orders table writes its customer_id so; its customers table gives each one's "
        "customer_unique_id): read the column that names the person as [data.transactions] "
        "customer, or frequency, tenure and the future outcomes tell nothing"
    )
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    assert note in loaded.notes, loaded.notes
    frame = pd.DataFrame([*rows, (f"{3:032x}", "o999", "2024-07-03", "20.0")])
    frame.to_csv(path, index=False, header=["customer_id", "order_id", "ts", "value"])
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    assert not [n for n in loaded.notes if n.startswith("every one of")], loaded.notes


def test_a_categorical_feature_of_only_rare_categories_is_said_to_add_nothing(
    tmp_path: Path,
) -> None:
    """A B2B table's zip code (2,602 codes among 6,000 accounts) declared categorical: every
    code under min_frequency, grouped as one, and the note said segments "tell apart only its
    0 commoner ones" (a new user's pass); it now says the feature is then one category for
    everyone, and the coarser column a zip code gives."""
    from app.training.data_notes import grouped_categories

    n = 600
    frame = pd.DataFrame({"zip": [f"{(i * 7919) % 300:05d}" for i in range(n)]})
    raw = {
        "data": {"path": str(tmp_path / "x.csv")},
        "features": [{"name": "zip", "type": "categorical"}],
    }
    [note] = grouped_categories(parse_config(raw, base_dir=tmp_path), frame)
    assert note == (
        "zip: 300 of its 300 categories are each held by fewer than min_frequency = 0.01 of "
        "the customers and are grouped as one, infrequent (100% of the customers): with no "
        "commoner one, it is one category for every customer with a value, and adds nothing "
        "to the segments; a lower min_frequency keeps more, or write a coarser column into the "
        "file (a region for a city, a zip code's first digits)"
    ), note


def test_an_outcome_of_several_classes_is_told_the_column_to_write() -> None:
    """A customer-segmentation table's ``Segmentation`` (A to D) declared as the outcome:
    "should be numeric but holds text", and with positive = {Segmentation = "D"}, "holds 4
    values, not two", neither naming a way on (a new user's pass). Both now give the 0/1
    column of a class against the others; money written for people and dates keep their
    own errors."""
    from app.training.values import outcome_column

    frame = pd.Series(["A", "B", "C", "D", "D", " D"] * 5)
    with pytest.raises(DataError) as raised:
        outcome_column(frame, "Segmentation", "Train.csv")
    assert str(raised.value) == (
        "Train.csv: outcome 'Segmentation' holds 4 classes ('A', 'B', 'C', 'D'), where an "
        "outcome is a number or two values (Yes/No, true/false, Y/N ...): to judge the "
        "segments by one class against the others, write a 0/1 column for it into the file first "
        "(frame['Segmentation_D'] = (frame['Segmentation'].astype(str).str.strip() == 'D')"
        ".astype(int)) and declare 'Segmentation_D' as the outcome (one such column per class "
        "that matters; a value "
        "that means unknown goes in [data] missing_values)"
    )
    with pytest.raises(DataError) as raised:
        outcome_column(frame, "Segmentation", "Train.csv", positive="A")
    assert str(raised.value).endswith(
        "not two: list the ones that are neither in [data] missing_values; or, for 'A' against "
        "all the others, write a 0/1 column for it into the file first (frame['Segmentation_A'] "
        "= (frame['Segmentation'] == 'A').astype(int)) and declare 'Segmentation_A' as the "
        "outcome"
    ), raised.value
    for other in (["$1,200", "$3,000", "$50.00"], ["2024-01-01", "2024-02-01", "2024-03-01"]):
        with pytest.raises(DataError) as raised:
            outcome_column(pd.Series(other * 3), "o", "f.csv")
        assert "classes" not in str(raised.value), raised.value


def test_the_class_column_line_makes_the_class_it_names() -> None:
    """The pandas line an outcome of several classes is told, run on the column as pandas
    reads it, makes a 0/1 column of the class: it compared a numeric column to text
    (``frame['rating'] == '5'``, all 0 on a column of numbers) and missed the class's
    spellings padded with spaces or in another case, which the outcome's reading counts."""
    from app.training.values import outcome_column

    def line_of(error: str) -> str:
        return error.split("file first (", 1)[1].split(") and declare", 1)[0]

    cases = [
        (pd.Series([1, 2, 3, 4, 5] * 4), "5", 4),
        (pd.Series([1.5, 2.0, 3.0] * 4), "3", 4),
        (pd.Series(["A", "B", "C", "D", " D", "d "] * 3), "D", 9),
        (pd.Series(["A", "B", "C", "D", " D"] * 3), None, 6),
    ]
    for column, positive, ones in cases:
        with pytest.raises(DataError) as raised:
            outcome_column(column, "o", "f.csv", positive=positive)
        frame = pd.DataFrame({"o": column})
        target, expression = line_of(str(raised.value)).split(" = ", 1)
        made = eval(expression, {"frame": frame})  # the line as a user runs it
        assert int(made.sum()) == ones, (str(raised.value), made.tolist())
        assert target.startswith("frame['o_"), raised.value


def test_views_and_carts_of_positive_amount_beside_purchases_are_noted(tmp_path: Path) -> None:
    """A store's event log (REES46's ``event_type``: view, cart, purchase) writes the
    product's price on every event: read with ``amount = "price"``, each view counted as a
    purchase of that price, without a word (a new user's pass). The note names the column,
    its values and the exclude_values that leave them out, and counts the customers who only
    browsed; an order status of 'ordered' beside 'shipped' (a sale's) is no such column."""
    rows = []
    for c in range(8):
        for d in range(1, 6):
            rows.append((f"u{c}", f"2019-10-0{d} 10:00:00 UTC", "view", "19.99", "ordered"))
            if c % 2 == 0:
                rows.append((f"u{c}", f"2019-10-0{d} 10:05:00 UTC", "cart", "19.99", "shipped"))
                rows.append((f"u{c}", f"2019-10-0{d} 10:09:00 UTC", "purchase", "19.99", "ordered"))
    path = tmp_path / "events.csv"
    columns = ["user_id", "event_time", "event_type", "price", "order_status"]
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    tx: dict[str, object] = {"customer": "user_id", "timestamp": "event_time", "amount": "price"}
    config: dict[str, object] = {
        "data": {"path": str(path), "kind": "transactions", "transactions": tx},
        "features": [{"name": "recency_days"}, {"name": "frequency"}],
        "model": {"k_min": 2, "k_max": 2, "stability_bootstraps": 0},
    }
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    said = [n for n in loaded.notes if "of positive amount, beside" in n]
    assert said == [
        "column 'event_type' says 'view', 'cart' on 60 lines of positive amount, beside "
        "'purchase' on 20 lines: each such line counts as a purchase of its amount (an order "
        "for frequency, spend for monetary, a last purchase for recency_days); if only "
        "'purchase' lines are sales (the others a product viewed or put in a cart at its "
        'price), set [data.transactions] exclude_column = "event_type" with exclude_values = '
        '["cart", "view"]; 4 customers (50%) hold only such lines and would then be in no '
        "segment: where they are customers to segment too (an app's users who never paid), "
        "count each one's events per customer into a table first "
        "(docs/training.md#an-event-log-of-activity-beside-purchases)"
    ], loaded.notes
    tx.update(exclude_column="event_type", exclude_values=["cart", "view"])
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    assert not [n for n in loaded.notes if "of positive amount, beside" in n], loaded.notes
    assert loaded.frame["frequency"].tolist() == [5] * 4


def test_click_and_collect_orders_are_no_browsing(tmp_path: Path) -> None:
    """A till's order type of 'Sale' beside 'Click & Collect' (an order picked up in store,
    paid like any) and 'Click_and_collect': the word 'click' read as a browsing click, and
    the note said to leave those sales out (exclude_values = ["click & collect", ...]). A
    type that names an order's way of being bought is a sale's."""
    rows = []
    for c in range(8):
        for d in range(1, 6):
            kind = ("Sale", "Click & Collect", "click_and_collect")[(c + d) % 3]
            rows.append((f"u{c}", f"2019-10-0{d} 10:00:00", kind, "19.99"))
    path = tmp_path / "orders.csv"
    pd.DataFrame(rows, columns=["customer", "when", "order_type", "total"]).to_csv(
        path, index=False
    )
    tx: dict[str, object] = {"customer": "customer", "timestamp": "when", "amount": "total"}
    config: dict[str, object] = {
        "data": {"path": str(path), "kind": "transactions", "transactions": tx},
        "features": [{"name": "recency_days"}, {"name": "frequency"}],
        "model": {"k_min": 2, "k_max": 2, "stability_bootstraps": 0},
    }
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    assert not [n for n in loaded.notes if "of positive amount, beside" in n], loaded.notes


def test_the_browsing_note_is_bounded_however_many_types_browse(tmp_path: Path) -> None:
    """A type column whose views name their page (200 distinct 'view page /products/...'
    of 109 characters beside 'purchase'): the note listed every value in exclude_values and
    three whole, 23,485 characters into the summary and the manifest (a million pages: a
    note of megabytes). It names a few, clipped, and counts the rest."""
    rows = []
    for c in range(40):
        for d in range(1, 6):
            rows.append((f"u{c}", f"2019-10-0{d} 10:00:00", "purchase", "19.99"))
            page = f"view page /products/item-{c}-{d}-" + "x" * 80
            rows.append((f"u{c}", f"2019-10-0{d} 10:01:00", page, "19.99"))
    path = tmp_path / "events.csv"
    columns = ["user_id", "event_time", "event_type", "price"]
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    tx: dict[str, object] = {"customer": "user_id", "timestamp": "event_time", "amount": "price"}
    config: dict[str, object] = {
        "data": {"path": str(path), "kind": "transactions", "transactions": tx},
        "features": [{"name": "recency_days"}, {"name": "frequency"}],
    }
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    said = [n for n in loaded.notes if "of positive amount, beside" in n]
    assert len(said) == 1, loaded.notes
    assert len(said[0]) < 1_000, said[0]
    assert "200 values" in said[0], said[0]


def test_only_holding_is_the_customers_with_no_other_kept_line() -> None:
    """``only_holding`` by codes of one factorisation (a hashed ``isin`` of a 3.5M-line log's
    ids took 30 s of CPU per note in pandas 3, 60 s a training with an exclude column and a
    browsing one): the same customers, in the order of their first such line, as a plain set
    of the other lines' ids gives, with ids repeated, missing and of every line kept or not."""
    from app.training.data import only_holding

    rng = np.random.default_rng(11)
    for size in (0, 1, 7, 2_000):
        written = rng.choice([f"C{i:03d}" for i in range(60)] + [None], size)
        ids = pd.Series(written, dtype="string")
        keep = rng.random(size) < 0.8
        keep &= ids.notna().to_numpy()
        lines = keep & (rng.random(size) < 0.3)
        others = {c for c, k, line in zip(written, keep, lines, strict=True) if k and not line}
        plain: list[str] = []
        for c, line in zip(written, lines, strict=True):
            if line and c not in others and c not in plain:
                plain.append(c)
        found = only_holding(ids, lines, keep)
        assert found == plain, (size, found, plain)
        assert all(type(c) is str for c in found)


def test_the_per_order_check_of_a_million_customers_looks_them_up_in_the_index() -> None:
    """An Olist-like log of a million customers who each bought once, and 300,000 lines
    after the reference date: the note, then none once one of them came back (the lookup in
    the customers' index that replaced pandas' 5 s ``isin``; its time is in bench/README)."""
    from app.training.data import per_order_ids

    rng = np.random.default_rng(0)
    size = 1_000_000
    frame = pd.DataFrame(
        {"frequency": np.ones(size)}, index=pd.Index(np.char.add("C", np.arange(size).astype(str)))
    )
    later = pd.DataFrame({"customer": np.char.add("D", rng.integers(0, size, 300_000).astype(str))})
    said = per_order_ids(frame, later, "customer_id")
    assert len(said) == 1 and "every one of the 1,000,000 customers" in said[0], said
    later.loc[7, "customer"] = "C123"  # one came back: the ids are people's
    assert per_order_ids(frame, later, "customer_id") == ()


def test_the_excluded_customers_note_clips_the_id_it_shows(tmp_path: Path) -> None:
    """The note on customers left with no line by exclude_column showed its example id
    whole: an export's ids of 5,000 characters (a session token) made a note of 5 KB."""
    rows = []
    for c in range(20):
        customer = f"{c:02d}" + "t" * 5_000
        for d in range(1, 4):
            status = "cancelled" if c < 5 else "paid"
            rows.append((customer, f"2024-05-0{d} 10:00:00", "19.99", status))
    path = tmp_path / "orders.csv"
    pd.DataFrame(rows, columns=["customer", "when", "total", "status"]).to_csv(path, index=False)
    tx: dict[str, object] = {
        "customer": "customer",
        "timestamp": "when",
        "amount": "total",
        "exclude_column": "status",
    }
    config: dict[str, object] = {
        "data": {"path": str(path), "kind": "transactions", "transactions": tx},
        "features": [{"name": "recency_days"}, {"name": "frequency"}],
    }
    loaded = load_training_data(parse_config(config, base_dir=tmp_path))
    said = [n for n in loaded.notes if "only lines that exclude_column" in n]
    assert len(said) == 1, loaded.notes
    assert len(said[0]) < 1_000 and "(5,002 characters)" in said[0], said[0][:400]
