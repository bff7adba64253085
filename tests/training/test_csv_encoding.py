"""A CSV saved on Windows (Excel's plain "CSV", the UCI Online Retail file): cp1252 text, not
UTF-8. Declared in ``[data] encoding``, training reads its names and values as written, and
file tagging reads it as training did (the encoding kept in the manifest's config);
undeclared, it is refused with the option that reads it; a codec Python does not know is
refused when the config is read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from app.batch import assign_file
from app.drift.offline import drift_of_file
from app.drift.schemas import Thresholds
from app.errors import ConfigError, DataError
from app.events.tagging import tag_log
from app.recording import load_serving
from app.registry.diff import migration_matrix
from app.registry.store import ModelStore
from app.training.config import parse_config
from app.training.csv_format import CsvFormat
from app.training.data import load_training_data
from app.training.job import train

EU = {"delimiter": ";", "decimal": ",", "thousands": "."}
PLACES = ["Österreich", "Café Süd", "Zürich", "Deutschland"]


def _eu(value: float) -> str:
    """``1234.5`` as a German spreadsheet writes it: ``1.234,50``."""
    return f"{value:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")


def windows_customers(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    big = rng.random(n) < 0.35
    return pd.DataFrame(
        {
            "Kundennr": [f"Müller-{i:04d}" for i in range(n)],
            "Umsatz €": np.round(
                np.where(big, rng.uniform(2e3, 9e4, n), rng.uniform(5, 900, n)), 2
            ),
            "Besuche": rng.integers(1, 30, n),
            "Ort": rng.choice(PLACES, n),
        }
    )


def write(frame: pd.DataFrame, path: Path, encoding: str, eu: bool) -> Path:
    if eu:
        frame = frame.assign(**{"Umsatz €": frame["Umsatz €"].map(_eu)})
    frame.to_csv(path, index=False, sep=";" if eu else ",", encoding=encoding)
    return path


def table_config(path: Path, name: str, **data: Any) -> dict[str, Any]:
    return {
        "data": {"path": str(path), "id_column": "Kundennr", **data},
        "features": [
            {"name": "Umsatz €", "transform": "log1p", "label": "Umsatz"},
            {"name": "Besuche"},
            {"name": "Ort", "type": "categorical"},
        ],
        "model": {"name": name, "k_min": 3, "k_max": 3, "stability_bootstraps": 0},
    }


@pytest.mark.parametrize("eu", [True, False], ids=["semicolons-decimal-commas", "plain"])
def test_a_cp1252_table_trains_and_tags_as_its_utf8_copy(tmp_path: Path, eu: bool) -> None:
    frame = windows_customers()
    utf8 = write(frame, tmp_path / "utf8.csv", "utf-8", eu)
    windows = write(frame, tmp_path / "windows.csv", "cp1252", eu)
    assert "Müller".encode("cp1252") in windows.read_bytes()  # not UTF-8: b"M\xfcller"
    fmt = EU if eu else {}
    a_config = parse_config(table_config(utf8, "a", **fmt), base_dir=tmp_path)
    b_config = parse_config(table_config(windows, "b", encoding="cp1252", **fmt), base_dir=tmp_path)

    loaded = load_training_data(b_config)  # the names and values as written
    assert loaded.frame.index.tolist() == frame["Kundennr"].tolist()
    assert loaded.frame["Umsatz €"].tolist() == pytest.approx(frame["Umsatz €"].tolist())
    assert set(loaded.frame["Ort"]) == set(PLACES)

    store = ModelStore(tmp_path / "store")
    a = train(a_config, store).manifest
    b = train(b_config, store).manifest
    assert b.config["data"]["encoding"] == "cp1252" and b.data.rows == a.data.rows == len(frame)
    assert [s.name for s in b.segments] == [s.name for s in a.segments]
    assert [s.numeric["Umsatz €"].mean for s in b.segments] == pytest.approx(
        [s.numeric["Umsatz €"].mean for s in a.segments]
    )
    # segments assign reads the cp1252 file as training did, with no option of its own
    out_a, out_b = tmp_path / "a.csv", tmp_path / "b.csv"
    assign_file(store.load("a", a.version), utf8, out_a, id_column="Kundennr")
    assign_file(store.load("b", b.version), windows, out_b, id_column="Kundennr")
    tagged_a, tagged_b = pd.read_csv(out_a, dtype=str), pd.read_csv(out_b, dtype=str)
    assert tagged_b["Kundennr"].tolist() == frame["Kundennr"].tolist()
    assert tagged_b["segment_name"].tolist() == tagged_a["segment_name"].tolist()
    # drift and models diff read it so too: its own training data, every customer counted
    limits = Thresholds(watch=0.1, drift=0.25, min_observations=1)
    drift = drift_of_file(store, "b", b.version, windows, limits)
    assert drift.observations == len(frame) and drift.status == "ok", drift
    assert [s.live_share for s in drift.segments] == [s.trained_share for s in drift.segments]
    matrix, kept = migration_matrix(store, "b", b.version, b.version, windows)
    assert kept == len(frame) == int(matrix.to_numpy().sum())


def test_a_cp1252_log_trains_with_its_customers_and_amounts(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    names = ["Müller", "Café Zürich", "Ærø €", "Søren", "Ôlà"]
    rows = [
        (
            f"{names[c % 5]} {c}",
            f"2024-0{m}-1{c % 9} 10:00",
            float(rng.uniform(5, 4e3)),
            f"o{c}-{m}",
        )
        for c in range(40)
        for m in range(1, 2 + c % 8)
    ]
    log = pd.DataFrame(rows, columns=["Kunde", "Datum", "Betrag", "Beleg"])
    path = tmp_path / "log.csv"
    log.assign(Betrag=log["Betrag"].map(_eu)).to_csv(path, index=False, sep=";", encoding="cp1252")
    raw = {
        "data": {
            "path": str(path),
            "kind": "transactions",
            "encoding": "cp1252",
            **EU,
            "transactions": {
                "customer": "Kunde",
                "timestamp": "Datum",
                "amount": "Betrag",
                "order": "Beleg",
                "reference_date": "2024-10-01",
            },
        },
        "features": [{"name": "monetary"}, {"name": "frequency"}],
        "model": {"name": "orders", "k_min": 2, "k_max": 2, "stability_bootstraps": 0},
    }
    config = parse_config(raw, base_dir=tmp_path)
    spent = log.assign(Betrag=log["Betrag"].round(2)).groupby("Kunde")["Betrag"].sum()
    loaded = load_training_data(config)
    assert loaded.frame["monetary"].to_dict() == pytest.approx(spent.to_dict())
    store = ModelStore(tmp_path / "store")
    train(config, store, promote=True)
    tagged = tag_log(load_serving(store, "orders", None), path, None)
    monetary = dict(zip(tagged.ids, (f["monetary"] for f in tagged.features), strict=True))
    assert monetary == pytest.approx(spent.to_dict())


def test_an_outcomes_table_in_cp1252_is_read_with_the_datas_encoding(tmp_path: Path) -> None:
    frame = windows_customers(200)
    windows = write(frame, tmp_path / "windows.csv", "cp1252", eu=True)
    outcomes = frame[["Kundennr"]].assign(Käufer=np.arange(len(frame)) % 3 == 0)
    outcomes.assign(Käufer=outcomes["Käufer"].map({True: "Ja", False: "Nein"})).to_csv(
        tmp_path / "ergebnis.csv", index=False, sep=";", encoding="cp1252"
    )
    raw = table_config(windows, "b", encoding="cp1252", **EU)
    raw["outcomes"] = {
        "path": "ergebnis.csv",
        "id": "Kundennr",
        "columns": ["Käufer"],
        "positive": {"Käufer": "Ja"},
    }
    loaded = load_training_data(parse_config(raw, base_dir=tmp_path))
    assert loaded.frame["Käufer"].tolist() == (outcomes["Käufer"] * 1.0).tolist()


def test_an_undeclared_windows_file_is_refused_naming_the_encoding_to_declare(
    tmp_path: Path,
) -> None:
    frame = windows_customers(60)
    windows = write(frame, tmp_path / "windows.csv", "cp1252", eu=True)
    with pytest.raises(DataError) as refused:
        load_training_data(parse_config(table_config(windows, "b", **EU), base_dir=tmp_path))
    message = str(refused.value)
    assert 'encoding = "cp1252"' in message and "[data]" in message
    assert "delimiter" not in message  # declared already: only the encoding is wrong
    assert "open(new_path, 'w', encoding='utf-8')" in message  # the re-encoding, as an option
    # nothing declared: the encoding and the spreadsheet's options together
    with pytest.raises(DataError) as bare:
        load_training_data(parse_config(table_config(windows, "b"), base_dir=tmp_path))
    assert 'encoding = "cp1252", delimiter = ";", decimal = ","' in str(bare.value)
    # a byte cp1252 leaves undefined (0x81): Latin-1, which reads every byte, is the one
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"Kundennr,Besuche,Ort,Umsatz \x80\nM\xfcller\x81,1,Caf\xe9,2.5\n")
    with pytest.raises(DataError, match='encoding = "latin-1"'):
        load_training_data(parse_config(table_config(latin, "b"), base_dir=tmp_path))
    # declared, and a byte it does not read: said so, with the codec that reads any byte
    with pytest.raises(DataError, match=r"not cp1252 text as \[data\] encoding declares"):
        load_training_data(
            parse_config(table_config(latin, "b", encoding="cp1252"), base_dir=tmp_path)
        )


@pytest.mark.parametrize(
    ("encoding", "wanted"),
    [("cp9999", "no codec Python knows"), ("utf-16", "not read"), ("rot13", "not read")],
)
def test_an_encoding_that_cannot_be_read_is_refused_at_config_load(
    tmp_path: Path, encoding: str, wanted: str
) -> None:
    with pytest.raises(ConfigError, match=rf"data\.encoding: .*{wanted}"):
        parse_config(table_config(tmp_path / "x.csv", "x", encoding=encoding), base_dir=tmp_path)
    raw = table_config(tmp_path / "x.csv", "x")
    raw["outcomes"] = {"path": "y.csv", "encoding": encoding}
    with pytest.raises(ConfigError, match=rf"outcomes\.encoding: .*{wanted}"):
        parse_config(raw, base_dir=tmp_path)


def test_a_manifest_written_before_the_option_reads_its_files_as_utf8() -> None:
    config = {"data": {"path": "x.csv", "delimiter": ";", "decimal": ","}}
    old = CsvFormat.of(config["data"])
    assert (old.encoding, old.codec, old.pandas, old.arrow()) == ("utf-8", "utf-8-sig", {}, None)
    assert CsvFormat.of({**config["data"], "encoding": "latin-1"}).pandas == {"encoding": "latin-1"}


def test_pandas_and_html_words_for_the_option_name_it(tmp_path: Path) -> None:
    for word in ("charset", "codec"):
        raw = table_config(tmp_path / "x.csv", "x")
        raw["data"][word] = "cp1252"
        with pytest.raises(ConfigError, match=rf"data\.{word}: .*did you mean 'encoding'"):
            parse_config(raw, base_dir=tmp_path)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "UTF-8-SIG", "UTF8", "utf_8"])
def test_utf8_spellings_read_a_file_with_a_byte_order_mark(tmp_path: Path, encoding: str) -> None:
    # "utf-8-sig" (pandas' and Python's name for Excel's 'CSV UTF-8') was refused at config
    # load as a codec whose separators are not ASCII bytes (its encoder writes a mark first)
    frame = windows_customers(60)
    path = write(frame, tmp_path / "bom.csv", "utf-8-sig", eu=False)
    config = parse_config(table_config(path, "x", encoding=encoding), base_dir=tmp_path)
    assert CsvFormat.of(config.data).utf8
    loaded = load_training_data(config)
    assert loaded.frame.index.tolist() == frame["Kundennr"].tolist()
    assert set(loaded.frame["Ort"]) == set(PLACES)


def test_a_utf8_file_read_with_a_declared_cp1252_is_refused_not_misread(tmp_path: Path) -> None:
    # a model trained on Excel's plain CSV; next month's file saved as 'CSV UTF-8' (as the
    # not-UTF-8 error advises): read as cp1252, every 'Müller-0001' was tagged and recorded as
    # 'MÃ¼ller-0001' without a word, and a byte-order mark made the id column 'ï»¿Kundennr'
    frame = windows_customers(120)
    windows = write(frame, tmp_path / "windows.csv", "cp1252", eu=True)
    store = ModelStore(tmp_path / "store")
    raw = table_config(windows, "b", encoding="cp1252", **EU)
    version = train(parse_config(raw, base_dir=tmp_path), store).manifest.version
    model = store.load("b", version)
    for encoding in ("utf-8", "utf-8-sig"):
        utf8 = write(frame, tmp_path / f"{encoding}.csv", encoding, eu=True)
        with pytest.raises(DataError, match="is UTF-8 text, not cp1252 as the config's encoding"):
            assign_file(model, utf8, tmp_path / "out.csv", id_column="Kundennr")
        with pytest.raises(DataError, match="is UTF-8 text, not cp1252"):
            moved = {**raw, "data": {**raw["data"], "path": str(utf8)}}
            load_training_data(parse_config(moved, base_dir=tmp_path))
    assert not (tmp_path / "out.csv").exists()
    # the cp1252 file itself is read as declared
    assign_file(model, windows, tmp_path / "out.csv", id_column="Kundennr")
    assert (
        pd.read_csv(tmp_path / "out.csv", dtype=str)["Kundennr"].tolist()
        == frame["Kundennr"].tolist()
    )
