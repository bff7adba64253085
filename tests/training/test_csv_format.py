"""A spreadsheet's CSV export where the comma is the decimal mark (``;`` between fields,
``1.234,56``): declared in ``[data]`` (``delimiter``, ``decimal``, ``thousands``), training
reads it as the same data written plainly, and file tagging reads it as training did (the
options kept in the manifest); undeclared, it is refused with the options that read it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from app.batch import assign_file
from app.errors import ConfigError, DataError
from app.events.tagging import tag_log
from app.recording import load_serving
from app.registry.store import ModelStore
from app.training.config import parse_config
from app.training.data import load_training_data, read_table
from app.training.job import train

EU = {"delimiter": ";", "decimal": ",", "thousands": "."}


def _eu(value: float) -> str:
    """``1234.5`` as a German spreadsheet writes it: ``1.234,50``."""
    return f"{value:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")


def _customers(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    big = rng.random(n) < 0.35
    return pd.DataFrame(
        {
            "kunde": [f"{i:05d}" for i in range(n)],
            "umsatz": np.round(np.where(big, rng.uniform(2e3, 9e4, n), rng.uniform(5, 900, n)), 2),
            "besuche": rng.integers(1, 30, n),
            "land": rng.choice(["DE", "AT", "CH"], n),
        }
    )


def _config(path: Path, name: str, **data: Any) -> dict[str, Any]:
    return {
        "data": {"path": str(path), "id_column": "kunde", **data},
        "features": [
            {"name": "umsatz", "transform": "log1p"},
            {"name": "besuche"},
            {"name": "land", "type": "categorical"},
        ],
        "model": {"name": name, "k_min": 3, "k_max": 3, "stability_bootstraps": 0},
    }


def test_a_semicolon_export_with_decimal_commas_trains_and_tags_as_the_plain_file(
    tmp_path: Path,
) -> None:
    frame = _customers()
    plain = tmp_path / "plain.csv"
    frame.to_csv(plain, index=False)
    eu = tmp_path / "kunden.csv"
    written = frame.assign(umsatz=frame["umsatz"].map(_eu))
    written.to_csv(eu, index=False, sep=";")
    assert "." in eu.read_text().splitlines()[1]  # 1.234,56 somewhere: grouped and a comma
    store = ModelStore(tmp_path / "store")
    a = train(parse_config(_config(plain, "plain"), base_dir=tmp_path), store).manifest
    b = train(parse_config(_config(eu, "eu", **EU), base_dir=tmp_path), store).manifest
    assert b.config["data"]["delimiter"] == ";" and b.data.rows == a.data.rows == len(frame)
    assert [s.numeric["umsatz"].mean for s in b.segments] == pytest.approx(
        [s.numeric["umsatz"].mean for s in a.segments]
    )
    assert [s.name for s in b.segments] == [s.name for s in a.segments]
    # segments assign reads the export as training did, with no option of its own
    out_a, out_b = tmp_path / "a.csv", tmp_path / "b.csv"
    assign_file(store.load("plain", a.version), plain, out_a, id_column="kunde")
    assign_file(store.load("eu", b.version), eu, out_b, id_column="kunde")
    tagged_a = pd.read_csv(out_a, dtype=str)
    tagged_b = pd.read_csv(out_b, dtype=str)
    assert tagged_b["kunde"].tolist() == frame["kunde"].tolist()  # 00042 stays text
    assert tagged_b["segment_name"].tolist() == tagged_a["segment_name"].tolist()


def test_an_undeclared_export_is_refused_with_the_options_that_read_it(tmp_path: Path) -> None:
    frame = _customers(60)
    eu = tmp_path / "kunden.csv"
    frame.assign(umsatz=frame["umsatz"].map(_eu)).to_csv(eu, index=False, sep=";")
    with pytest.raises(DataError) as refused:
        train(parse_config(_config(eu, "eu"), base_dir=tmp_path), ModelStore(tmp_path / "s"))
    assert 'delimiter = ";", decimal = ",", thousands = "."' in str(refused.value)
    assert "pandas.read_csv(path, sep=';'" in str(refused.value)  # the line that rewrites it
    # the delimiter alone: its grouped numbers say which option reads them
    with pytest.raises(DataError) as grouped:
        train(
            parse_config(_config(eu, "eu", delimiter=";"), base_dir=tmp_path),
            ModelStore(tmp_path / "s"),
        )
    assert "'umsatz'" in str(grouped.value) and 'decimal = ","' in str(grouped.value)


@pytest.mark.parametrize(
    ("data", "wanted"),
    [
        ({"decimal": ","}, "is the delimiter too"),
        ({"delimiter": ";", "decimal": ",", "thousands": ","}, "is the decimal mark too"),
        ({"delimiter": ":"}, "delimiter"),
    ],
)
def test_formats_that_cannot_be_read_are_refused_by_name(
    tmp_path: Path, data: dict[str, str], wanted: str
) -> None:
    with pytest.raises(ConfigError, match=wanted):
        parse_config(_config(tmp_path / "x.csv", "x", **data), base_dir=tmp_path)


def test_a_semicolon_log_with_decimal_commas_is_tagged_as_training_derived_it(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(5)
    rows = [
        (f"c{c}", f"2024-0{m}-1{c % 9} 10:00", float(rng.uniform(5, 4e3)), f"o{c}-{m}")
        for c in range(40)
        for m in range(1, 1 + 1 + c % 8)
    ]
    log = pd.DataFrame(rows, columns=["customer", "when", "amount", "order"])
    path = tmp_path / "log.csv"
    log.assign(amount=log["amount"].map(_eu)).to_csv(path, index=False, sep=";")
    raw = {
        "data": {
            "path": str(path),
            "kind": "transactions",
            **EU,
            "transactions": {
                "customer": "customer",
                "timestamp": "when",
                "amount": "amount",
                "order": "order",
                "reference_date": "2024-10-01",
            },
        },
        "features": [{"name": "monetary"}, {"name": "frequency"}],
        "model": {"name": "orders", "k_min": 2, "k_max": 2, "stability_bootstraps": 0},
    }
    store = ModelStore(tmp_path / "store")
    manifest = train(parse_config(raw, base_dir=tmp_path), store, promote=True).manifest
    assert manifest.data.dropped_rows == 0
    tagged = tag_log(load_serving(store, "orders", None), path, None)
    monetary = dict(zip(tagged.ids, (f["monetary"] for f in tagged.features), strict=True))
    spent = log.assign(amount=log["amount"].round(2)).groupby("customer")["amount"].sum()
    assert monetary == pytest.approx(spent.to_dict())


def test_a_number_the_declared_format_does_not_write_is_refused_not_guessed(
    tmp_path: Path,
) -> None:
    """pandas' own ``thousands='.'`` reads ``1.5`` as 15 and ``1.23.4`` as 1234: a declared
    format reads only numbers written in it (``12.000`` is 12000), and another plain number
    (``1.5``) is refused by training, and rejected (that row only) by ``segments assign``."""
    frame = _customers(90)
    eu = tmp_path / "kunden.csv"
    cells = frame["umsatz"].map(_eu)
    cells.iloc[3] = "12.000"
    frame.assign(umsatz=cells).to_csv(eu, index=False, sep=";")
    store = ModelStore(tmp_path / "store")
    manifest = train(parse_config(_config(eu, "eu", **EU), base_dir=tmp_path), store).manifest
    out = tmp_path / "out.csv"
    odd = frame.assign(umsatz=cells)
    odd.loc[5, "umsatz"] = "1.5"
    odd.to_csv(tmp_path / "odd.csv", index=False, sep=";")
    done = assign_file(
        store.load("eu", manifest.version), tmp_path / "odd.csv", out, id_column="kunde"
    )
    assert done.rejected == 1 and done.rows == len(frame) - 1
    reasons = pd.read_csv(done.rejects, dtype=str) if done.rejects else pd.DataFrame()
    assert reasons["row"].tolist() == ["6"]
    assert "'1.5 (not a number as [data] declares them" in reasons["reason"].iloc[0]
    with pytest.raises(DataError, match=r"1\.5 \(not a number as \[data\] declares them"):
        config = _config(tmp_path / "odd.csv", "odd", **EU)
        train(parse_config(config, base_dir=tmp_path), store)
    # 12.000 is twelve thousand in this file, as training profiled it
    loaded = store.load("eu", manifest.version)

    read = read_table(
        eu, ["kunde", "umsatz"], id_column="kunde", dialect=loaded.manifest.csv_format
    )
    assert read["umsatz"].iloc[3] == 12000.0


def _dotted(value: float) -> str:
    """``1234567`` grouped by dots, as a German export writes a whole number: ``1.234.567``."""
    return f"{int(value):,}".replace(",", ".")


def test_twelve_thousand_written_12_000_beside_grouped_numbers_is_refused_not_read_12(
    tmp_path: Path,
) -> None:
    """A column of ``1.234.567`` and ``12.000``: the first is refused as written for people,
    but ``12.000`` was read as 12 without a word, so a user who rewrote the refused cells kept
    every other amount a thousand times too small. Beside numbers grouped by dots beyond
    doubt, a cell of one dot and three digits is refused (training) or rejected (``segments
    assign``) too; alone (prices to three decimals, ``12.500``) it is read as written."""
    frame = _customers(200)
    amounts = (frame["umsatz"] * 10).round()  # 523, 12.340 ...
    grouped = frame.assign(umsatz=amounts.map(_dotted))
    grouped.loc[0, "umsatz"] = "1.234.567"
    path = tmp_path / "grouped.csv"
    grouped.to_csv(path, index=False)
    assert grouped["umsatz"].str.fullmatch(r"\d{1,3}\.\d{3}").sum() > 50  # 12.000 cells
    store = ModelStore(tmp_path / "store")
    with pytest.raises(DataError) as refused:
        train(parse_config(_config(path, "g"), base_dir=tmp_path), store)
    message = str(refused.value)
    assert "'1.234.567'" in message and "grouped so too, such as" in message, message
    # prices to three decimals, and nothing grouped beyond doubt: read as written
    prices = tmp_path / "prices.csv"
    frame.assign(umsatz=frame["umsatz"].map(lambda v: f"{v:.3f}")).to_csv(prices, index=False)
    manifest = train(parse_config(_config(prices, "p"), base_dir=tmp_path), store).manifest
    assert manifest.data.rows == len(frame)
    # segments assign: the model (trained on plain numbers) rejects both kinds of row
    out = tmp_path / "out.csv"
    done = assign_file(store.load("p", manifest.version), path, out, id_column="kunde")
    ones = int(grouped["umsatz"].str.fullmatch(r"\d{1,3}\.\d{3}").sum())
    assert done.rejected == 1 + ones and done.rejects is not None
    reasons = pd.read_csv(done.rejects, dtype=str)["reason"]
    assert reasons.str.contains("written with dots as thousands separators").sum() == ones
    assert done.rows == len(frame) - done.rejected
    clean = tmp_path / "clean.csv"
    assert (
        assign_file(store.load("p", manifest.version), prices, clean, id_column="kunde").rejected
        == 0
    )


def _outcomes(frame: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.DataFrame(
        {"kunde": frame["kunde"], "wert": np.round(rng.uniform(1e3, 5e4, len(frame)), 2)}
    )


def test_an_outcomes_table_exported_as_the_data_is_read_with_its_format(tmp_path: Path) -> None:
    """``[outcomes] path`` was read comma-separated only: the same export's outcomes table had
    no column ``kunde`` (one column ``kunde;wert``)."""
    frame = _customers(300)
    eu = tmp_path / "kunden.csv"
    frame.assign(umsatz=frame["umsatz"].map(_eu)).to_csv(eu, index=False, sep=";")
    values = _outcomes(frame)
    table = tmp_path / "werte.csv"
    values.assign(wert=values["wert"].map(_eu)).to_csv(table, index=False, sep=";")
    raw = _config(eu, "eu", **EU) | {"outcomes": {"path": str(table), "id": "kunde"}}
    loaded = load_training_data(parse_config(raw, base_dir=tmp_path))
    assert loaded.outcomes == ["wert"]
    assert loaded.frame["wert"].tolist() == pytest.approx(values["wert"].tolist())


def test_an_outcomes_table_declares_its_own_format(tmp_path: Path) -> None:
    frame = _customers(300)
    plain = tmp_path / "plain.csv"
    frame.to_csv(plain, index=False)
    values = _outcomes(frame)
    table = tmp_path / "werte.csv"
    values.assign(wert=values["wert"].map(_eu)).to_csv(table, index=False, sep=";")
    outcomes = {"path": str(table), "id": "kunde"}
    # undeclared: refused, naming the options of [outcomes] that read it
    with pytest.raises(DataError, match=r"\[outcomes\] table, delimiter = \";\""):
        load_training_data(
            parse_config(_config(plain, "p") | {"outcomes": outcomes}, base_dir=tmp_path)
        )
    raw = _config(plain, "p") | {"outcomes": outcomes | EU}
    loaded = load_training_data(parse_config(raw, base_dir=tmp_path))
    assert loaded.frame["wert"].tolist() == pytest.approx(values["wert"].tolist())
    assert loaded.frame["umsatz"].tolist() == pytest.approx(frame["umsatz"].tolist())
    # decimal commas beside [data]'s comma between fields
    bad = _config(plain, "p") | {"outcomes": outcomes | {"decimal": ","}}
    with pytest.raises(ConfigError, match=r"\[outcomes\] decimal = ',' is the delimiter too"):
        parse_config(bad, base_dir=tmp_path)


def test_a_plain_outcomes_table_beside_a_semicolon_export_is_refused_with_its_options(
    tmp_path: Path,
) -> None:
    """The other way round: the data a spreadsheet's export, the outcomes a plain CSV read
    with [data]'s ';'. It said only "missing column(s) 'kunde'; the file has: 'kunde,wert'",
    the hint of another separator looking for ';', tabs and '|' but never for the comma."""
    frame = _customers(300)
    eu = tmp_path / "kunden.csv"
    frame.assign(umsatz=frame["umsatz"].map(_eu)).to_csv(eu, index=False, sep=";")
    values = _outcomes(frame)
    table = tmp_path / "werte.csv"
    values.to_csv(table, index=False)
    outcomes = {"path": str(table), "id": "kunde"}
    with pytest.raises(DataError) as refused:
        load_training_data(
            parse_config(_config(eu, "eu", **EU) | {"outcomes": outcomes}, base_dir=tmp_path)
        )
    assert "the file seems ','-separated, and [outcomes] reads it with ';'" in str(refused.value)
    assert 'delimiter = ",", decimal = "." in the training config\'s [outcomes] table' in str(
        refused.value
    )
    # as it says: then it reads
    plain = outcomes | {"delimiter": ",", "decimal": "."}
    raw = _config(eu, "eu", **EU) | {"outcomes": plain}
    loaded = load_training_data(parse_config(raw, base_dir=tmp_path))
    assert loaded.frame["wert"].tolist() == pytest.approx(values["wert"].tolist())
