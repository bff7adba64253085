"""A customer table as a spreadsheet exports it: a byte-order mark, ``;`` between fields,
decimal commas and thousands dots, Windows line endings, blank rows and a total row under
the customers. Real files, real training."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli.main import app
from app.registry.store import ModelStore
from app.training.data import EMPTY_ROW
from app.training.totals import TOTAL_ROW, total_rows

runner = CliRunner()


def german(value: float) -> str:
    """``1970893.42`` as a German Excel writes it: ``1.970.893,42``."""
    return f"{value:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")


def shop_export(folder: Path, n: int = 900, seed: int = 41) -> Path:
    """Three kinds of customers, a repurchase outcome, then two blank rows, a ``Summe`` row
    holding the column sums, and three blank rows more, as Excel leaves them."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 3, n)
    orders = rng.poisson(np.array([2, 6, 15])[kind]) + 1
    spend = np.round(orders * rng.lognormal(np.array([3.5, 4.0, 4.3])[kind], 0.4), 2)
    days = np.round(rng.gamma(2, np.array([120, 40, 10])[kind])).astype(int)
    again = rng.uniform(size=n) < np.array([0.1, 0.4, 0.8])[kind]
    frame = pd.DataFrame(
        {
            "Kundennummer": [f"K{i:05d}" for i in range(n)],
            "Bestellungen": orders.astype(str),
            "Umsatz": [german(v) for v in spend],
            "Tage seit Kauf": days.astype(str),
            "Wiederkauf": np.where(again, "yes", "no"),
        }
    )
    blank = pd.DataFrame([dict.fromkeys(frame.columns, "")])
    total = {"Kundennummer": "Summe", "Bestellungen": str(orders.sum())}
    total |= {"Umsatz": german(float(spend.sum())), "Tage seit Kauf": "", "Wiederkauf": ""}
    frame = pd.concat([frame, blank, blank, pd.DataFrame([total]), blank, blank, blank])
    path = folder / "kunden.csv"
    text = frame.to_csv(sep=";", index=False, lineterminator="\r\n")
    path.write_bytes(text.encode("utf-8-sig"))
    return path


def test_a_total_row_under_the_customers_is_left_out_and_counted(tmp_path: Path) -> None:
    """The German shop's export read its ``Summe`` row as a customer: the biggest by far, a
    segment of its own, and a selection that took a segment of 0.025% for want of a better
    one (Cramér's V 0.28; 0.59 without the row)."""
    shop_export(tmp_path)
    config = tmp_path / "kunden.toml"
    config.write_text(
        'outcomes = ["Wiederkauf"]\n[data]\npath = "kunden.csv"\nid_column = "Kundennummer"\n'
        'delimiter = ";"\ndecimal = ","\nthousands = "."\n'
        '[[features]]\nname = "Bestellungen"\n[[features]]\nname = "Umsatz"\n'
        '[[features]]\nname = "Tage seit Kauf"\n[model]\nname = "kunden"\nk_min = 3\n'
        "k_max = 5\n",
        encoding="utf-8",
    )
    store = tmp_path / "store"
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert (
        "note: 6 of 906 input rows were left out (an empty row (every field blank): 5; a total "
        "row (the sum of the other rows), e.g. 'Summe': Bestellungen "
    ) in output, output
    assert "no customer id" not in output  # Excel's blank lines: empty, said once
    manifest = ModelStore(store).manifests("kunden")[0]
    assert manifest.data.rows == 900
    assert manifest.data.dropped_reasons[TOTAL_ROW] == 1
    assert "Summe" in manifest.data.dropped_examples[TOTAL_ROW]
    assert manifest.data.missing_cells == {}  # its blank cells were no customer's
    assert min(s.share for s in manifest.segments) >= 0.05


def test_no_customer_is_taken_for_a_total() -> None:
    """A customer of half the orders is no total unless ten others bought; a column with
    negative values (a balance) sums to nothing; a whale near, not at, the sum stays."""
    few = pd.DataFrame({"orders": [1, 1, 2]}, index=["a", "b", "c"])
    assert not total_rows(few, ["orders"])[0].any()
    signed = pd.DataFrame({"balance": [*([10.0] * 12), -20.0, 100.0]})
    assert not total_rows(signed, ["balance"])[0].any()
    whale = pd.DataFrame({"spend": [*([10.0] * 200), 1999.0]})
    assert not total_rows(whale, ["spend"])[0].any()
    # ten customers of one complaint and one of ten: a sparse count's sum, in one column
    sparse = pd.DataFrame(
        {"complaints": [*([1] * 10), 10, *([0] * 50)], "spend": np.arange(1.0, 62.0)}
    )
    assert not total_rows(sparse, ["complaints", "spend"])[0].any()
    summed = pd.DataFrame({"spend": [*([10.0] * 20), 200.0], "rate": [0.5] * 21})
    summed["orders"] = [*([2] * 20), 40]
    found, example = total_rows(summed, ["spend", "rate", "orders"])
    assert found.tolist() == [False] * 20 + [True]
    assert example == "'20': spend 200, orders 40, the sum of the others"
    one = pd.DataFrame({"spend": [*([10.0] * 100), 1000.0]})  # one column, of 100 others
    assert total_rows(one, ["spend"])[0].tolist() == [False] * 100 + [True]
    assert not total_rows(one.iloc[1:], ["spend"])[0].any()  # of 99


def test_yes_and_no_of_other_languages_are_a_binary_outcome_and_name_a_trait(
    tmp_path: Path,
) -> None:
    """The German shop's ``Wiederkauf`` of ``ja``/``nein`` was refused as two other words
    (declare positive = ...), and a ``Newsletter`` of ``ja``/``nein`` was no yes/no trait:
    read as Yes/No are, the outcome counts ``ja`` as 1 and a segment of subscribers reads
    ``newsletter``, not ``Newsletter ja``."""
    rng = np.random.default_rng(7)
    n = 600
    subscribed = rng.uniform(size=n) < 0.4
    frame = pd.DataFrame(
        {
            "Kundennummer": [f"K{i:05d}" for i in range(n)],
            "Bestellungen": rng.poisson(np.where(subscribed, 12, 3)) + 1,
            "Newsletter": np.where(subscribed, "ja", "nein"),
            "Wiederkauf": np.where(
                rng.uniform(size=n) < np.where(subscribed, 0.7, 0.2), "Ja", "Nein"
            ),
        }
    )
    frame.to_csv(tmp_path / "kunden.csv", sep=";", index=False)
    config = tmp_path / "kunden.toml"
    config.write_text(
        'outcomes = ["Wiederkauf"]\n[data]\npath = "kunden.csv"\nid_column = "Kundennummer"\n'
        'delimiter = ";"\n[[features]]\nname = "Bestellungen"\n[[features]]\n'
        'name = "Newsletter"\ntype = "categorical"\n[model]\nname = "kunden"\nk_min = 2\n'
        "k_max = 2\n"
    )
    store = tmp_path / "store"
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "outcome Wiederkauf (1 = 'Ja'): segments differ" in " ".join(result.output.split())
    names = sorted(s.name for s in ModelStore(store).manifests("kunden")[0].segments)
    assert names == ["Low bestellungen", "Newsletter, very high bestellungen"], names


def test_ids_a_spreadsheet_wrote_in_scientific_notation_are_named(tmp_path: Path) -> None:
    """Twelve-digit account numbers saved by Excel as shown, 4.51182E+11: two accounts cut
    to the same digits were a repeated id, and the error advised duplicate_ids = "last",
    which keeps one of two customers; with no repeat, the ids trained without a word, though
    they match no other system's."""
    rng = np.random.default_rng(3)
    n = 500
    accounts = rng.integers(400_000_000_000, 499_999_999_999, n)
    accounts[1] = accounts[0] + 7  # neighbours: one number once its last digits are cut
    frame = pd.DataFrame(
        {
            "Account Number": [f"{float(v):.5E}" for v in accounts],
            "spend": rng.gamma(2, 50, n).round(2),
            "visits": rng.poisson(5, n),
        }
    )
    assert frame["Account Number"].duplicated().any()  # the digits cut made a repeat
    config = tmp_path / "accounts.toml"
    config.write_text(
        '[data]\npath = "accounts.csv"\nid_column = "Account Number"\n[[features]]\n'
        'name = "spend"\n[[features]]\nname = "visits"\n[model]\nname = "accounts"\n'
        "k_min = 2\nk_max = 3\n"
    )
    frame.to_csv(tmp_path / "accounts.csv", index=False)
    store = tmp_path / "store"
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "written in scientific notation, as a spreadsheet shows a long number" in said, said
    assert 'duplicate_ids = "last" would keep one of them' in said
    assert "use each id's last row" not in said
    frame.drop_duplicates("Account Number").iloc[1:201].to_csv(
        tmp_path / "accounts.csv", index=False
    )
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert (
        "note: 200 ids of column 'Account Number' are written in scientific notation (e.g. '4."
    ) in said, said
    assert "save the file with the id column formatted as text" in said


def test_blank_lines_are_empty_rows_and_a_row_without_an_id_is_no_customer_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A helper's review: a spreadsheet's blank lines (``;;;;``) were counted as rows with no
    customer id, and said twice, by a log line and by the summary. They are counted as empty
    rows; a row with values and a blank id is still one without an id; the summary says
    both, and no log line repeats it."""
    rng = np.random.default_rng(3)
    lines = ["id;spend;visits"]
    lines += [f"c{i};{rng.gamma(2, 40):.2f};{rng.poisson(4)}" for i in range(300)]
    lines += [";;", ";;", " ;12.5;3", ";;"]
    (tmp_path / "shop.csv").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    config = tmp_path / "shop.toml"
    config.write_text(
        '[data]\npath = "shop.csv"\nid_column = "id"\ndelimiter = ";"\n'
        '[[features]]\nname = "spend"\n[[features]]\nname = "visits"\n[model]\nname = "shop"\n',
        encoding="utf-8",
    )
    with caplog.at_level(logging.WARNING):
        result = runner.invoke(
            app, ["train", "--config", str(config), "--store", str(tmp_path / "store")]
        )
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert (
        "4 of 304 input rows were left out (no customer id: 1; an empty row (every field blank): 3)"
    ) in output, output
    assert not [r for r in caplog.records if "no customer id" in r.getMessage()]
    manifest = ModelStore(tmp_path / "store").manifests("shop")[0]
    assert manifest.data.rows == 300
    assert manifest.data.dropped_reasons == {"no customer id": 1, EMPTY_ROW: 3}


def test_a_language_column_of_ja_and_no_is_no_yes_no_trait(tmp_path: Path) -> None:
    """A yes and a no of one language only: a language column's ``ja`` (Japanese) and ``no``
    (Norwegian) named the Japanese speakers' segment 'Language' and the Norwegians' 'No
    language', as if they answered a question."""
    rng = np.random.default_rng(3)
    n = 400
    language = rng.choice(["ja", "no", "en", "de"], n)
    spend = np.where(
        language == "ja",
        rng.uniform(800, 1000, n),
        np.where(language == "no", rng.uniform(1, 50, n), rng.uniform(100, 400, n)),
    )
    pd.DataFrame(
        {"customer_id": [f"c{i}" for i in range(n)], "spend": spend.round(2), "language": language}
    ).to_csv(tmp_path / "users.csv", index=False)
    config = tmp_path / "users.toml"
    config.write_text(
        '[data]\npath = "users.csv"\n[[features]]\nname = "spend"\n[[features]]\n'
        'name = "language"\ntype = "categorical"\n[model]\nname = "users"\nk_min = 3\n'
        "k_max = 3\nstability_bootstraps = 0\n"
    )
    store = tmp_path / "store"
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 0, result.output
    names = sorted(s.name for s in ModelStore(store).manifests("users")[0].segments)
    assert names[0].startswith("Ja language") and names[1].startswith("No language"), names
