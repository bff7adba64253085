"""Shapes of public tables a new user brought (issue 14, a second round): a frame's index
written by pandas' ``to_csv`` as the id column, a city of hundreds of values, a SaaS table
of dates and money written for people prepared by the docs' own pandas lines, a usage table
whose customers of no data use were "very low" on it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli.main import app
from app.registry.store import ModelStore
from app.training.config import parse_config
from app.training.data import load_training_data
from app.training.job import train
from tests.conftest import ROOT

runner = CliRunner()


def survey_frame(n: int = 200, seed: int = 5) -> pd.DataFrame:
    """A survey's answers, indexed by respondent: two groups apart on both numbers."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, n)
    return pd.DataFrame(
        {
            "visits": np.array([2.0, 12.0])[group] + rng.normal(0, 1, n),
            "age": np.array([25.0, 60.0])[group] + rng.normal(0, 3, n),
            "answer": rng.choice(["Agree", "Disagree"], n),
        },
        index=[f"R{i:05d}" for i in range(n)],
    )


def write_config(path: Path, data: Path, id_column: str | None) -> None:
    id_line = "" if id_column is None else f'id_column = "{id_column}"\n'
    path.write_text(
        f'[data]\npath = "{data}"\n{id_line}'
        '[[features]]\nname = "visits"\n[[features]]\nname = "age"\n'
        '[[features]]\nname = "answer"\ntype = "categorical"\n'
        "[model]\nk_min = 2\nk_max = 2\n"
    )


def test_a_frames_index_written_by_to_csv_is_the_id_column_unnamed_0(tmp_path: Path) -> None:
    """pandas writes a frame's index under an empty header cell; the error named it
    'Unnamed: 0' (pandas' name), and a config saying so crashed with a KeyError of pyarrow's
    reader, which read the header as ''."""
    data = tmp_path / "survey.csv"
    survey_frame().to_csv(data, lineterminator="\r\n", encoding="utf-8-sig")
    assert data.read_bytes().startswith(b"\xef\xbb\xbf,visits")
    config = tmp_path / "survey.toml"
    store = tmp_path / "store"
    write_config(config, data, None)
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "the first column has no name in the header" in said
    assert "id_column = 'Unnamed: 0' reads it" in said
    write_config(config, data, "Unnamed: 0")
    train = ["train", "--config", str(config), "--store", str(store), "--promote"]
    result = runner.invoke(app, train)
    assert result.exit_code == 0, result.output
    assert ModelStore(store).manifests("customers")[0].data.rows == 200
    tagged = tmp_path / "tagged.csv"
    result = runner.invoke(
        app, ["assign", "--input", str(data), "--output", str(tagged), "--store", str(store)]
    )
    assert result.exit_code == 0, result.output
    out = pd.read_csv(tagged, dtype=str)
    assert list(out.columns) == ["Unnamed: 0", "segment_id", "segment_name"]
    assert out["Unnamed: 0"].tolist() == [f"R{i:05d}" for i in range(200)]


def test_categories_grouped_as_infrequent_for_many_customers_are_noted(tmp_path: Path) -> None:
    """An e-commerce table's city, 300 values among 3,000 customers, kept its 16 commonest
    and put most customers in one 'infrequent' group without a word; a plan of three values
    and a few rare ones (under 5% of the customers together) is not noted."""
    rng = np.random.default_rng(8)
    n = 3000
    weights = 1 / np.arange(1, 301) ** 0.8
    cities = rng.choice([f"City{i:03d}" for i in range(300)], n, p=weights / weights.sum())
    plan = rng.choice(
        ["basic", "pro", "team", "legacy-a", "legacy-b"], n, p=[0.5, 0.3, 0.18, 0.01, 0.01]
    )
    frame = pd.DataFrame(
        {
            "customer_id": [f"e{i}" for i in range(n)],
            "spend": rng.normal(50, 10, n),
            "city": cities,
            "plan": plan,
        }
    )
    data = tmp_path / "e.csv"
    frame.to_csv(data, index=False)
    raw = {
        "data": {"path": str(data)},
        "features": [
            {"name": "spend"},
            {"name": "city", "type": "categorical"},
            {"name": "plan", "type": "categorical"},
        ],
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0},
    }
    notes = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    said = [note for note in notes.data.notes if "grouped as one, infrequent" in note]
    counts = frame["city"].value_counts()
    rare = counts[counts < 30]
    share = f"{rare.sum() / n:.0%}"
    assert said == [
        f"city: {len(rare)} of its {len(counts)} categories are each held by fewer than "
        f"min_frequency = 0.01 of the customers and are grouped as one, infrequent ({share} of "
        f"the customers): segments, names and rules tell apart only its "
        f"{len(counts) - len(rare)} commoner ones; a lower min_frequency keeps more, or write "
        "a coarser column into the file (a region for a city, a zip code's first digits)"
    ], notes.data.notes
    assert rare.sum() / n > 0.4


def _docs_lines(start: str) -> str:
    """docs/training.md's first python block after ``start`` (a heading, or a sentence)."""
    text = (ROOT / "docs" / "training.md").read_text()
    block = re.search(r"```python\n(.*?)```", text[text.index(start) :], re.S)
    assert block, f"docs/training.md has no python block after {start!r}"
    return block.group(1)


def _preparing_lines() -> str:
    return _docs_lines("## Preparing a file")


def saas_frame(n: int = 600, seed: int = 9) -> pd.DataFrame:
    """Accounts with their dates and their MRR as an export writes them: churn follows the
    last login."""
    rng = np.random.default_rng(seed)
    signup = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    away = rng.choice([5, 200], n)
    last = pd.Timestamp("2024-06-01") - pd.to_timedelta(away + rng.integers(0, 20, n), unit="D")
    mrr = rng.lognormal(6, 1, n)
    return pd.DataFrame(
        {
            "account_id": [f"00{i:04d}" for i in range(n)],
            "signup_date": signup.strftime("%Y-%m-%d"),
            "last_login": last.strftime("%Y-%m-%d"),
            "MRR": [f"${v:,.2f}" for v in mrr],
            "churned": np.where((away > 100) & (rng.random(n) < 0.7), "Yes", "No"),
        }
    )


def test_the_docs_money_line_reads_a_currency_code_and_a_minus_too(tmp_path: Path) -> None:
    """A SaaS export's MRR of '78.08 USD' was refused with "write plain numbers (78.08)",
    and the docs' line, which took out $, €, £, commas and spaces only, left '78.08USD': it
    keeps the digits, the point and the minus."""
    frame = saas_frame(n=7)
    # and a currency abbreviated with a point: "Rs.1,234" kept its point, read 0.1234; a
    # billing export's credit balance in accounting style, "($19.14)", became +19.14
    frame = pd.concat([frame, frame.iloc[:3]], ignore_index=True)
    frame["MRR"] = ["$1,234.50", "1,234.50 USD", "€ 99", "-12.5 EUR", "Rs.1,234", "$.99", "-$5",
                    "($19.14)", "1,234.50-", ""]  # fmt: skip
    frame.to_csv(tmp_path / "accounts.csv", index=False)
    done = subprocess.run(
        [sys.executable, "-c", _preparing_lines()], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    prepared = pd.read_csv(tmp_path / "accounts_prepared.csv")
    assert prepared["MRR"].iloc[:9].tolist() == [
        1234.5, 1234.5, 99.0, -12.5, 1234.0, 0.99, -5.0, -19.14, -1234.5
    ]  # fmt: skip
    assert np.isnan(prepared["MRR"].iloc[9])  # a blank cell stays blank


def test_dates_and_money_for_people_point_to_the_docs_lines_that_prepare_them(
    tmp_path: Path,
) -> None:
    """A SaaS table's signup_date, last_login and MRR of '$1,234.50' were each refused with
    "derive a number" or "write plain numbers", and nothing showed how: the errors point to
    docs/training.md's pandas lines, and those lines, run as written, make a file that
    trains (ids kept as written, the days and the money read as numbers)."""
    frame = saas_frame()
    frame.to_csv(tmp_path / "accounts.csv", index=False)
    features = "".join(f'[[features]]\nname = "{name}"\n' for name in ["last_login", "MRR"])
    config = tmp_path / "raw.toml"
    config.write_text(
        f'outcomes = ["churned"]\n[data]\npath = "accounts.csv"\nid_column = "account_id"\n'
        f"{features}[model]\nk_min = 2\nk_max = 3\n"
    )
    store = tmp_path / "store"
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert said.count("(the pandas lines that do it: docs/training.md#preparing-a-file)") == 2
    assert "'2024-" in said and "'$" in said
    done = subprocess.run(
        [sys.executable, "-c", _preparing_lines()], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    prepared = pd.read_csv(tmp_path / "accounts_prepared.csv", dtype=str)
    assert prepared["account_id"].tolist() == frame["account_id"].tolist()
    assert prepared["MRR"].astype(float).round(2).tolist() == [
        float(v.strip("$").replace(",", "")) for v in frame["MRR"]
    ]
    names = ["days_since_signup_date", "days_since_last_login", "MRR"]
    features = "".join(f'[[features]]\nname = "{name}"\n' for name in names)
    config.write_text(
        f'outcomes = ["churned"]\n[data]\npath = "accounts_prepared.csv"\n'
        f'id_column = "account_id"\n{features}[model]\nk_min = 2\nk_max = 3\n'
    )
    done = subprocess.run(
        [str(Path(sys.executable).with_name("segments")), "train", "--config", str(config)],
        env={**os.environ, "SEGMENTS_MODEL_STORE": str(store)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = ModelStore(store).manifests("customers")[0]
    assert manifest.data.rows == 600
    assert "days_since_last_login" in manifest.segments[0].numeric


def usage_frame(n: int = 1500, seed: int = 12) -> pd.DataFrame:
    """A telecom usage table: a third of the customers use no data at all (exact zeros), the
    others a heavy-tailed amount; voice minutes apart from it."""
    rng = np.random.default_rng(seed)
    none = rng.random(n) < 0.35
    return pd.DataFrame(
        {
            "customer_id": [f"t{i}" for i in range(n)],
            "data_mb": np.where(none, 0.0, rng.lognormal(6, 0.5, n).round(1)),
            "voice_minutes": rng.lognormal(4, 0.1, n).round(1),
        }
    )


def usage_names(tmp_path: Path, frame: pd.DataFrame, **data_mb: str) -> list[str]:
    data = tmp_path / "usage.csv"
    frame.to_csv(data, index=False)
    raw = {
        "data": {"path": str(data)},
        "features": [
            {"name": "data_mb", "transform": "log1p", **data_mb},
            {"name": "voice_minutes"},
        ],
        "model": {"k_min": 2, "k_max": 2, "stability_bootstraps": 0},
    }
    store = ModelStore(tmp_path / "s")
    return [s.name for s in train(parse_config(raw, base_dir=tmp_path), store).manifest.segments]


def _id_writing_lines() -> str:
    return _docs_lines("## Customer ids")


def test_the_docs_lines_that_write_an_id_column_make_a_file_that_trains(tmp_path: Path) -> None:
    """docs/training.md's three lines for a file without ids (the bank-marketing table:
    ';' between fields, text quoted), run as written on such a file, keep its format and
    every cell as written (a code's leading zeros, a hotel table's ``NULL`` agent: pandas'
    defaults wrote them as 2134 and a blank cell), and the file trains with ``delimiter =
    ";"``, its ids read as written."""
    rng = np.random.default_rng(4)
    n = 400
    kind = rng.integers(0, 3, n)
    said_yes = rng.random(n) < 0.1 * (kind + 1)
    rows = [
        f'{int(rng.normal([30, 45, 65][k], 4))};"{["admin.", "services", "retired"][k]}";'
        f'{int(rng.lognormal([5, 7, 8][k], 0.4))};"{"yes" if yes else "no"}";'
        f'"{["02134", "NULL", "10001"][k]}"'
        for k, yes in zip(kind, said_yes, strict=True)
    ]
    header = '"age";"job";"balance";"y";"zip"\n'
    (tmp_path / "bank-full.csv").write_text(header + "\n".join(rows) + "\n")
    done = subprocess.run(
        [sys.executable, "-c", _id_writing_lines()], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    written = pd.read_csv(tmp_path / "bank.csv", sep=";", dtype=str)
    assert written["customer_id"].tolist()[:2] == ["B00000", "B00001"]
    assert len(written) == n and list(written.columns)[1:] == ["age", "job", "balance", "y", "zip"]
    kept = pd.read_csv(tmp_path / "bank.csv", sep=";", dtype=str, keep_default_na=False)
    assert set(kept["zip"]) == {"02134", "NULL", "10001"}, set(kept["zip"])
    features = '[[features]]\nname = "age"\n[[features]]\nname = "balance"\n'
    config = tmp_path / "bank.toml"
    config.write_text(
        f'outcomes = ["y"]\n[data]\npath = "bank.csv"\ndelimiter = ";"\n{features}'
        '[[features]]\nname = "job"\ntype = "categorical"\n[[features]]\nname = "zip"\n'
        'type = "categorical"\n[model]\nk_min = 2\nk_max = 3\n'
    )
    store = tmp_path / "store"
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert ModelStore(store).manifests("customers")[0].data.rows == n


def test_a_segment_of_customers_at_zero_is_named_zero(tmp_path: Path) -> None:
    """A telecom table's segment of customers using no data at all (35% of all) was named
    "Very low data mb": it is "Zero data mb", what a marketer acts on (voice-only
    customers). A segment most but not nearly all of whose customers are at 0, a feature
    with negative values, or one the config gives its own words for, keeps its level word."""
    frame = usage_frame()
    names = usage_names(tmp_path, frame)
    zero = [name for name in names if name.startswith("Zero data mb")]
    assert len(zero) == 1, names
    assert not any("low data mb" in name.lower() for name in names), names
    # the config's own word wins
    worded = usage_names(tmp_path, frame, low="light data use", high="heavy data use")
    assert not any("zero" in name.lower() for name in worded), worded
    assert any("light data use" in name.lower() for name in worded), worded
    # a corrected (negative) value: 0 is no floor, the level word stays
    shifted = frame.assign(data_mb=frame["data_mb"].where(frame.index != 7, -3.0))
    assert not any("zero" in name.lower() for name in usage_names(tmp_path, shifted))


def test_a_misspelt_column_names_the_one_it_likely_is(tmp_path: Path) -> None:
    """``outcomes = ["churn"]`` for a file's ``churned`` listed the file's columns and left
    the reader to spot it; as a misspelt config key is, the close column is named."""
    frame = survey_frame().assign(churned=0)
    data = tmp_path / "s.csv"
    frame.rename_axis("customer_id").to_csv(data)
    config = tmp_path / "s.toml"
    config.write_text(
        f'outcomes = ["churn"]\n[data]\npath = "{data}"\n[[features]]\nname = "visit"\n'
    )
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(tmp_path)])
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "(did you mean 'visits' for 'visit'?; did you mean 'churned' for 'churn'?)" in said


def test_answers_on_an_ordered_scale_are_noted_once_with_the_scale(tmp_path: Path) -> None:
    """A survey's four Likert items, declared categorical as the docs allow, were segmented
    on without their order (an 'Agree' as far from 'Strongly agree' as from 'Strongly
    disagree'): one note names them and the numbers to write; other categories are not."""
    rng = np.random.default_rng(14)
    n = 300
    scale = ["Strongly disagree", "Disagree", "Neutral", "Agree", "Strongly agree"]
    frame = pd.DataFrame(
        {
            "customer_id": [f"r{i}" for i in range(n)],
            "visits": rng.poisson(4, n),
            "q1": rng.choice(scale, n),
            "q2": rng.choice([" strongly AGREE", *scale[1:]], n),
            "plan": rng.choice(["basic", "pro", "team"], n),
        }
    )
    notes = categorical_notes(tmp_path, frame, ["q1", "q2", "plan"])
    said = [note for note in notes if "ordered scale" in note]
    assert said == [
        "q1, q2: answers on an ordered scale ('Strongly disagree' ... 'Strongly agree'), "
        "segmented on as categories, whose order is not used; written as numbers (1 for "
        "'Strongly disagree' to 5 for 'Strongly agree') they are a scale the segments follow "
        "(docs/training.md#preparing-a-file)"
    ], notes


def test_a_scale_beside_a_don_t_know_answer_is_noted_too(tmp_path: Path) -> None:
    """A real survey answers "Don't know" beside its five-point items (and leaves some
    blank): the note on ordered answers, which wanted the scale's words only, said nothing
    of four such items. Two answers beside the scale, a quarter of the customers at most,
    are left blank in the numbers; a column mostly of other answers is no scale."""
    rng = np.random.default_rng(15)
    n = 400
    scale = ["Strongly disagree", "Disagree", "Neither agree nor disagree", "Agree",
             "Strongly agree"]  # fmt: skip
    frame = pd.DataFrame(
        {
            "customer_id": [f"r{i}" for i in range(n)],
            "visits": rng.poisson(4, n),
            "easy": rng.choice([*scale, "Don't know", ""], n, p=[0.18] * 5 + [0.06, 0.04]),
            "mostly_other": rng.choice([*scale, "Other"], n, p=[0.1] * 5 + [0.5]),
        }
    )
    notes = categorical_notes(tmp_path, frame, ["easy", "mostly_other"])
    said = [note for note in notes if "ordered scale" in note]
    assert said == [
        "easy: answers on an ordered scale ('Strongly disagree' ... 'Strongly agree'), "
        "segmented on as categories, whose order is not used; written as numbers (1 for "
        "'Strongly disagree' to 5 for 'Strongly agree', \"Don't know\" left blank) they are a "
        "scale the segments follow (docs/training.md#preparing-a-file)"
    ], notes


def categorical_notes(tmp_path: Path, frame: pd.DataFrame, categorical: list[str]) -> list[str]:
    """The notes of a two-segment training on ``visits`` and the ``categorical`` columns."""
    data = tmp_path / "table.csv"
    frame.to_csv(data, index=False)
    raw = {
        "data": {"path": str(data)},
        "features": [
            {"name": "visits"},
            *({"name": name, "type": "categorical"} for name in categorical),
        ],
        "model": {"k_min": 2, "k_max": 2, "stability_bootstraps": 0},
    }
    trained = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s"))
    return trained.manifest.data.notes


@pytest.mark.parametrize("index_name", [None, "respondent"])
def test_a_frames_index_written_by_to_parquet_is_an_id_column(
    tmp_path: Path, index_name: str | None
) -> None:
    """pandas' to_parquet keeps a frame's index as a column (``__index_level_0__``, or the
    index's name), which the error listed among the file's columns; named as the id column,
    pandas made it the index again when reading it by name: a KeyError in training, and in
    ``segments assign``'s chunks."""
    frame = survey_frame().rename_axis(index_name)
    data = tmp_path / "survey.parquet"
    frame.to_parquet(data)
    column = index_name or "__index_level_0__"
    config = tmp_path / "survey.toml"
    store = tmp_path / "store"
    if index_name is None:
        write_config(config, data, None)
        result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
        assert result.exit_code == 1
        said = " ".join(result.output.split())
        assert "id_column = '__index_level_0__' reads it" in said, said
    write_config(config, data, column)
    train = ["train", "--config", str(config), "--store", str(store), "--promote"]
    result = runner.invoke(app, train)
    assert result.exit_code == 0, result.output
    tagged = tmp_path / "tagged.csv"
    result = runner.invoke(
        app, ["assign", "--input", str(data), "--output", str(tagged), "--store", str(store)]
    )
    assert result.exit_code == 0, result.output
    out = pd.read_csv(tagged, dtype=str)
    assert list(out.columns) == [column, "segment_id", "segment_name"]
    assert out[column].tolist() == [f"R{i:05d}" for i in range(200)]


def test_bands_of_numbers_are_noted_as_a_scale_and_codes_are_not(tmp_path: Path) -> None:
    """A card-attrition table's ``Income_Category`` (``Less than $40K``, ``$40K - $60K`` ...
    ``$120K +``, ``Unknown``) declared categorical was segmented on without its order, and
    the summary, which notes survey answers so, said nothing; codes (``Offer1``) are no
    bands."""
    rng = np.random.default_rng(15)
    n = 300
    bands = ["Less than $40K", "$40K - $60K", "$60K - $80K", "$80K - $120K", "$120K +"]
    frame = pd.DataFrame(
        {
            "customer_id": [f"r{i}" for i in range(n)],
            "visits": rng.poisson(4, n),
            "Income_Category": rng.choice([*bands, "Unknown"], n),
            "offer": rng.choice(["Offer1", "Offer2", "Offer3"], n),
        }
    )
    notes = categorical_notes(tmp_path, frame, ["Income_Category", "offer"])
    said = [note for note in notes if "bands of numbers" in note]
    assert said == [
        "Income_Category: bands of numbers ('Less than $40K' ... '$120K +'), segmented on as "
        "categories, whose order is not used; written as numbers (each band's middle, say), "
        "'Unknown' left blank, they are a scale the segments follow "
        "(docs/training.md#preparing-a-file)"
    ], notes


def booking_frame(n: int = 1200, seed: int = 21) -> pd.DataFrame:
    """Bookings whose cancellations follow lead time and the deposit, with the booking's
    final status beside them: Canceled or No-Show when cancelled, else Check-Out."""
    rng = np.random.default_rng(seed)
    lead = rng.gamma(0.9, 115, n).round()
    deposit = rng.choice(["No Deposit", "Non Refund"], n, p=[0.85, 0.15])
    logit = -1.2 + 0.006 * lead + 2.5 * (deposit == "Non Refund")
    canceled = rng.random(n) < 1 / (1 + np.exp(-logit))
    status = np.where(canceled, rng.choice(["Canceled", "No-Show"], n, p=[0.9, 0.1]), "Check-Out")
    return pd.DataFrame(
        {
            "customer_id": [f"H{i:05d}" for i in range(n)],
            "lead_time": lead,
            "adr": rng.lognormal(4.5, 0.4, n).round(2),
            "deposit_type": deposit,
            "reservation_status": status,
            "is_canceled": canceled.astype(int),
        }
    )


@pytest.mark.parametrize("tree", [False, True])
def test_a_feature_that_is_the_outcome_written_again_is_named(tmp_path: Path, tree: bool) -> None:
    """A new user's hotel table declared ``reservation_status`` (Canceled / No-Show /
    Check-Out) as a feature beside the outcome ``is_canceled``: the summary advised a tree
    that splits on it ("separates is_canceled at Cramér's V 1.00, more than the segments"),
    never that it is the outcome itself, which the service cannot know before it happens.
    It is named, with the advice to leave it out, and no tree is advised on it; a feature
    that drives the outcome (the deposit) is not named."""
    data = tmp_path / "hotel.csv"
    booking_frame().to_csv(data, index=False)
    model = 'algorithm = "tree"\ntarget = "is_canceled"\n' if tree else ""
    config = tmp_path / "hotel.toml"
    config.write_text(
        'outcomes = ["is_canceled"]\n[data]\npath = "hotel.csv"\n'
        '[[features]]\nname = "lead_time"\n[[features]]\nname = "adr"\n'
        '[[features]]\nname = "deposit_type"\ntype = "categorical"\n'
        '[[features]]\nname = "reservation_status"\ntype = "categorical"\n'
        f'[model]\nname = "hotel"\n{model}'
    )
    store = tmp_path / "store"
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 0, (result.output, result.exc_info)
    assert "Traceback" not in result.output
    notes = ModelStore(store).manifests("hotel")[0].data.notes
    named = [n for n in notes if n.startswith("reservation_status: its values all but determine")]
    assert len(named) == 1, notes
    assert "'Canceled' 1, 'Check-Out' 0, 'No-Show' 1" in named[0], named[0]
    assert "leave it out of [[features]]" in named[0], named[0]
    assert not any(n.startswith("deposit_type") for n in notes), notes
    assert not any("reservation_status alone" in n for n in notes), notes
    assert "all but determine the outcome" in " ".join(result.output.split())
    if tree:  # two pure leaves where three were chosen: said, where it was a KeyError
        manifest = ModelStore(store).manifests("hotel")[0]
        assert len(manifest.segments) == 2, manifest.selection.reason
        assert manifest.selection.reason.startswith("3 leaves"), manifest.selection.reason
        assert "; 2 grown: no cut improves a leaf further" in manifest.selection.reason


def test_a_categorical_features_missing_count_says_what_it_counted(tmp_path: Path) -> None:
    """A hotel table's ``country`` (blank cells and ``NA`` written as a category) was noted
    as "87 missing values (blank, or written NA, null, N/A or another missing marker)",
    where NA in a categorical column is a category and only the blank cells were counted:
    the note says what it counted."""
    rng = np.random.default_rng(3)
    n = 500
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "spend": rng.lognormal(3, 1, n).round(2),
            "region": np.where(np.arange(n) % 10 == 0, "NA", "EU"),
        }
    )
    frame.loc[np.arange(n) % 25 == 1, "region"] = ""
    data = tmp_path / "d.csv"
    frame.to_csv(data, index=False)
    config = tmp_path / "d.toml"
    config.write_text(
        '[data]\npath = "d.csv"\n[[features]]\nname = "spend"\n'
        '[[features]]\nname = "region"\ntype = "categorical"\n[model]\nk_min = 2\nk_max = 3\n'
    )
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert (
        "region: 20 missing values (blank, or listed in [data] missing_values; NA, null or "
        "None written in the file are categories here), imputed (own category)"
    ) in said, said


def test_a_numeric_feature_named_as_a_code_is_noted(tmp_path: Path) -> None:
    """A telecom table's ``region`` (1..5) declared without ``type`` was segmented on as a
    scale, region 5 beside 4 and far from 1, and no segment name said a region; the summary
    said nothing. A numeric feature named as a code with few whole values is noted with the
    fix; a count (``care_calls``) and a code column of many values are not, nor a count or
    an amount named by a code word before its head (``NumStorePurchases`` 0..13 of a retailer's
    table was told to be declared categorical, as ``store`` named a code)."""
    rng = np.random.default_rng(12)
    n = 800
    frame = pd.DataFrame(
        {
            "subscriber_no": [f"{i:07d}" for i in range(n)],
            "Region_Code": rng.integers(1, 6, n),
            "care_calls": rng.poisson(0.8, n),
            "postal_code": rng.integers(1000, 9999, n),
            "NumStorePurchases": rng.integers(0, 14, n),
            "store_visits": rng.integers(0, 6, n),
            "StoreType": rng.integers(1, 5, n),
            "store_id": rng.integers(1, 9, n),
            "minutes": rng.gamma(2, 150, n).round(1),
        }
    )
    data = tmp_path / "t.csv"
    frame.to_csv(data, index=False)
    features = "".join(f'[[features]]\nname = "{c}"\n' for c in frame.columns[1:])
    config = tmp_path / "t.toml"
    config.write_text(f'[data]\npath = "t.csv"\nid_column = "subscriber_no"\n{features}')
    store = tmp_path / "s"
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 0, result.output
    notes = ModelStore(store).manifests("customers")[0].data.notes
    coded = [n for n in notes if "named as a code" in n]
    assert coded == [
        "Region_Code: 5 whole numbers (1 to 5), named as a code, segmented on as a number (so "
        "that 5 lies beside 4 and far from 1): if they name categories (regions, plans), "
        'declare type = "categorical" in its [[features]] entry',
        "StoreType: 4 whole numbers (1 to 4), named as a code, segmented on as a number (so "
        "that 4 lies beside 3 and far from 1): if they name categories (regions, plans), "
        'declare type = "categorical" in its [[features]] entry',
        "store_id: 8 whole numbers (1 to 8), named as a code, segmented on as a number (so "
        "that 8 lies beside 7 and far from 1): if they name categories (regions, plans), "
        'declare type = "categorical" in its [[features]] entry',
    ], notes
    # declared categorical: no note
    config.write_text(
        config.read_text().replace(
            'name = "Region_Code"\n', 'name = "Region_Code"\ntype = "categorical"\n'
        )
    )
    other = tmp_path / "categorical"
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(other)])
    assert result.exit_code == 0, result.output
    latest = ModelStore(other).manifests("customers")[0]
    coded = [n.split(":")[0] for n in latest.data.notes if "named as a code" in n]
    assert coded == ["StoreType", "store_id"], latest.data.notes


@pytest.mark.parametrize("name", ["store_nbr", "region_cd", "Zone_Nbr", "branch_idx"])
def test_a_code_named_by_an_abbreviated_number_word_is_noted(tmp_path: Path, name: str) -> None:
    """Favorita's ``store_nbr`` (a code of 54 stores, read as a number) and a warehouse's
    ``region_cd`` were noted as codes while any word of the name counted; reading the head
    word only, an abbreviation of number or code at the end (nbr, cd, idx) hid the code's
    word before it, as ``id`` and ``no`` do not."""
    from app.training.data_notes import coded_categories

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({name: rng.integers(1, 9, 400), "spend": rng.gamma(2, 50, 400)})
    config = parse_config(
        {
            "data": {"path": str(tmp_path / "t.csv")},
            "features": [{"name": name}, {"name": "spend"}],
        },
        base_dir=tmp_path,
    )
    assert [n.split(":")[0] for n in coded_categories(config, frame)] == [name]


@pytest.mark.parametrize(
    ("name", "coded"),
    [
        ("years_in_job", False),
        ("YearsAtJob", False),
        ("months_on_platform", False),
        ("visits_per_device", False),
        ("job_code", True),
        ("device", True),
        ("MARRIAGE", True),
    ],
)
def test_a_measure_of_a_code_words_thing_is_no_code(tmp_path: Path, name: str, coded: bool) -> None:
    """A measure named with a preposition before a code word (``years_in_job`` 0..15, a
    tenure) has its head word before the preposition: the new person's-kind code words
    (job, platform, device ...) named such counts codes, "declare type = categorical"."""
    from app.training.data_notes import coded_categories

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({name: rng.integers(0, 16, 400), "spend": rng.gamma(2, 50, 400)})
    config = parse_config(
        {
            "data": {"path": str(tmp_path / "t.csv")},
            "features": [{"name": name}, {"name": "spend"}],
        },
        base_dir=tmp_path,
    )
    said = [n.split(":")[0] for n in coded_categories(config, frame)]
    assert said == ([name] if coded else []), said


def test_a_wide_tables_logged_features_are_named_up_to_eight(tmp_path: Path) -> None:
    """A 64-column spend table's note on the features logged named 38 of them, 13 lines of
    the summary: it names 8 and counts the others, whose transform the manifest keeps."""
    rng = np.random.default_rng(13)
    n = 400
    columns = {f"cat_{i:02d}_spend": rng.lognormal(2, 1.5, n).round(2) for i in range(12)}
    frame = pd.DataFrame({"customer_id": [f"w{i}" for i in range(n)], **columns})
    frame.to_csv(tmp_path / "w.csv", index=False)
    features = "".join(f'[[features]]\nname = "{c}"\n' for c in columns)
    config = tmp_path / "w.toml"
    config.write_text(
        f'[data]\npath = "w.csv"\n{features}[model]\nk_min = 2\nk_max = 3\n'
        "stability_bootstraps = 0\n"
    )
    store = tmp_path / "s"
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 0, result.output
    manifest = ModelStore(store).manifests("customers")[0]
    logged = [n for n in manifest.data.notes if n.startswith("log1p-transformed")]
    assert len(logged) == 1, manifest.data.notes
    assert "cat_07_spend (skewness" in logged[0] and "cat_08_spend" not in logged[0], logged
    assert logged[0].endswith(
        ", and 4 more (each feature's transform is in the manifest's features and the "
        "report's profile)"
    ), logged[0]
    assert all(f.transform == "log1p" for f in manifest.features)


def test_a_segment_above_a_feature_most_customers_hold_0_of_is_named_with_it(
    tmp_path: Path,
) -> None:
    """A hotel table's bookings with children (7%; 93% of all bookings have none) were
    "Very high children": a marketer reads a segment of large families, where most have one
    child. Where most customers hold 0 of a feature and nearly all of a segment more, the
    name says "with children"; a feature the config gives words keeps them, and a plural
    noun among them takes no degree ("Very families" was said)."""
    rng = np.random.default_rng(14)
    n = 1500
    family = rng.random(n) < 0.08
    frame = pd.DataFrame(
        {
            "customer_id": [f"b{i}" for i in range(n)],
            "children": np.where(family, rng.choice([1, 2], n, p=[0.6, 0.4]), 0),
            "lead_time": np.where(family, rng.normal(40, 8, n), rng.normal(120, 8, n)).round(),
        }
    )
    frame.to_csv(tmp_path / "b.csv", index=False)

    def names(**children: str) -> list[str]:
        raw = {
            "data": {"path": str(tmp_path / "b.csv")},
            "features": [{"name": "children", **children}, {"name": "lead_time"}],
            "model": {"k_min": 2, "k_max": 2, "stability_bootstraps": 0},
        }
        store = ModelStore(tmp_path / f"s{len(children)}")
        return [
            s.name for s in train(parse_config(raw, base_dir=tmp_path), store).manifest.segments
        ]

    plain = names()
    assert any(name.startswith("With children") for name in plain), plain
    assert not any("high children" in name.lower() for name in plain), plain
    # a plural noun of the config's is a kind of customer: never "Very families"
    worded = names(high="families", low="adults only")
    assert any(name.startswith("Families") for name in worded), worded


def test_a_tree_that_finds_no_split_says_so(tmp_path: Path) -> None:
    """A tree on ``churn`` whose one feature sets apart only 2% of the customers (a ``vip``
    flag, below min_share) grew a single leaf, and the job ended on an IndexError in
    ``leaf_rules``. It is one ``error:`` line naming the floor and the ways on, exit 1, and
    no version."""
    rng = np.random.default_rng(2)
    n = 2000
    vip = rng.random(n) < 0.02
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "vip": np.where(vip, "yes", "no"),
            "churn": np.where(vip, 1, (rng.random(n) < 0.2).astype(int)),
        }
    )
    frame.to_csv(tmp_path / "t.csv", index=False)
    config = tmp_path / "t.toml"
    config.write_text(
        'outcomes = ["churn"]\n[data]\npath = "t.csv"\n[[features]]\nname = "vip"\n'
        'type = "categorical"\n[model]\nalgorithm = "tree"\ntarget = "churn"\n'
    )
    store = tmp_path / "store"
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and "Traceback" not in said, (said, result.exc_info)
    assert (
        "error: the tree on 'churn' found no split that leaves each side at least 100 of the "
        "2,000 customers (min_share = 0.05, or 20 customers where that is more;"
    ) in said, said
    assert not list(store.glob("customers/2*")), list(store.rglob("*"))


def test_outcome_ids_spelt_otherwise_are_counted_with_an_example(tmp_path: Path) -> None:
    """A telecom table's zero-padded ids (``0176093``) and an outcomes table a spreadsheet
    had saved (``176093``): a tenth of the customers silently lost their outcome, noted
    only as "have no row". The note (and the error where none matches) counts the ids
    spelt otherwise there and shows one."""
    rng = np.random.default_rng(30)
    n = 600
    ids = [f"{i:07d}" for i in rng.choice(10**7, n, replace=False)]
    frame = pd.DataFrame({"subscriber_no": ids, "care_calls": rng.poisson(1.0, n)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    outcomes = pd.DataFrame({"subscriber_no": [i.lstrip("0") for i in ids], "churned": 0})
    outcomes["churned"] = (rng.random(n) < 0.2).astype(int)
    outcomes.to_csv(tmp_path / "o.csv", index=False)
    padded = sum(i.startswith("0") for i in ids)
    config = tmp_path / "t.toml"
    config.write_text(
        '[data]\npath = "t.csv"\nid_column = "subscriber_no"\n[[features]]\n'
        'name = "care_calls"\n[outcomes]\npath = "o.csv"\nid = "subscriber_no"\n'
        "[model]\nk_min = 2\nk_max = 3\nstability_bootstraps = 0\n"
    )
    store = tmp_path / "s"
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 0, result.output
    notes = ModelStore(store).manifests("customers")[0].data.notes
    said = [n for n in notes if "no row in o.csv" in n]
    assert len(said) == 1 and 0 < padded < n, notes
    first = next(i for i in ids if i.startswith("0"))
    assert said[0].endswith(
        f"; {padded:,} of them are in o.csv spelt otherwise, e.g. {first!r} written "
        f"{first.lstrip('0')!r} (leading zeros, a float's .0, case or spaces): ids are "
        "compared as text, exactly as written, so write them alike in both files"
    ), said
    # every id spelt otherwise: the error says so too
    outcomes.assign(subscriber_no=[f"{i}.0" for i in ids]).to_csv(tmp_path / "o.csv", index=False)
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 1, result.output
    assert f"; {n:,} of them are in o.csv spelt otherwise" in " ".join(result.output.split())


def test_an_outcome_blank_in_every_row_is_said_so(tmp_path: Path) -> None:
    """An outcome column blank in every row (the wrong column, or a join that matched no
    one's value) was "(1 = '1'): segments do not differ significantly (chi-square, p=—)": a
    positive value and a test that never were. The line says no customer has a value."""
    rng = np.random.default_rng(31)
    n = 300
    frame = pd.DataFrame(
        {"customer_id": [f"c{i}" for i in range(n)], "spend": rng.lognormal(3, 1, n), "y": ""}
    )
    frame.to_csv(tmp_path / "b.csv", index=False)
    config = tmp_path / "b.toml"
    config.write_text(
        'outcomes = ["y"]\n[data]\npath = "b.csv"\n[[features]]\nname = "spend"\n'
        "[model]\nk_min = 2\nk_max = 3\nstability_bootstraps = 0\n"
    )
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert (
        "outcome y: no customer has a value (300 blank or missing), so it separates nothing "
        "(is it the right column?)"
    ) in said, said
    assert "(1 = '1')" not in said, said


def plans_frame(n: int = 5000, seed: int = 25) -> pd.DataFrame:
    """A table of categories only: upgrades driven by the plan, and a little by the channel."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["free", "basic", "pro", "enterprise"], n, p=[0.4, 0.3, 0.2, 0.1])
    channel = rng.choice(["organic", "paid", "referral", "partner"], n)
    country = rng.choice(["US", "UK", "DE", "FR", "IN", "BR"], n)
    device = rng.choice(["mobile", "desktop", "tablet"], n, p=[0.5, 0.4, 0.1])
    level = pd.Series(plan).map({"free": 0, "basic": 1, "pro": 2, "enterprise": 3}).to_numpy()
    rate = 1 / (1 + np.exp(-(-2 + 0.7 * level + 0.5 * (channel == "referral"))))
    upgraded = np.where(rng.uniform(size=n) < rate, "Yes", "No")
    return pd.DataFrame(
        {"customer_id": [f"c{i}" for i in range(n)], "plan": plan, "channel": channel,
         "country": country, "device": device, "upgraded": upgraded}
    )  # fmt: skip


def test_a_table_of_categories_only_names_its_tree_leaves_and_segments_by_them(
    tmp_path: Path,
) -> None:
    """A tree's leaf of ``plan not in ['free', 'basic', 'pro']``, every customer of it on
    the enterprise plan, was named "Plan not basic, free, pro"; and every segment of a table
    of categories only was "close to the population average on every numeric feature", a
    table without one."""
    data = tmp_path / "plans.csv"
    plans_frame().to_csv(data, index=False)
    names = ("plan", "channel", "country", "device")
    features = [{"name": name, "type": "categorical"} for name in names]
    raw = {
        "outcomes": ["upgraded"],
        "data": {"path": str(data)},
        "features": features,
        "model": {"algorithm": "tree", "target": "upgraded", "stability_bootstraps": 0},
    }
    store = ModelStore(tmp_path / "store")
    tree = train(parse_config(raw, base_dir=tmp_path), store).manifest
    rules = {s.name: s.rule for s in tree.segments}
    assert rules["Enterprise plan"] == "plan not in ['free', 'basic', 'pro']", rules
    assert not [name for name in rules if "plan not" in name.lower()], rules
    raw["model"] = {"k_min": 3, "k_max": 5, "stability_bootstraps": 0}
    clusters = train(parse_config(raw, base_dir=tmp_path), store).manifest
    described = [s.description for s in [*tree.segments, *clusters.segments]]
    assert all("numeric" not in text for text in described), described
    assert all(re.search(r"\d+% \w+ plan \(\d+% of all\)", text) for text in described)


def test_a_csv_of_quoted_numbers_with_commas_is_told_to_write_plain_numbers(
    tmp_path: Path,
) -> None:
    """A B2B accounts export writes its ARR "4,512" in quotes; told that such a number is
    written for people, a new user declared [data] thousands = ",", which the README lists,
    and was told only that "the thousands separator is another character (1.234,56 ...)",
    the advice for a European export. Now the error gives the fix this file needs, and the
    docs' pandas line that it points to makes the file train."""
    rng = np.random.default_rng(21)
    n = 400
    arr = np.round(rng.lognormal(9, 0.8, n)).astype(int)
    frame = pd.DataFrame(
        {
            "account_id": [f"ACC-{i:05d}" for i in range(n)],
            "ARR": [f"{v:,}" for v in arr],
            "seats": rng.integers(1, 200, n),
            "sso_enabled": rng.choice(["TRUE", "FALSE"], n),
        }
    )
    data = tmp_path / "accounts.csv"
    frame.to_csv(data, index=False)
    assert '"' in data.read_text()  # pandas quotes a field holding the delimiter
    config = tmp_path / "accounts.toml"
    features = "".join(f'[[features]]\nname = "{c}"\n' for c in ("ARR", "seats", "sso_enabled"))
    body = f'{features}[model]\nname = "accounts"\nk_min = 2\nk_max = 3\n'
    config.write_text(f'[data]\npath = "accounts.csv"\nid_column = "account_id"\n'
                      f'thousands = ","\n{body}')  # fmt: skip
    store = tmp_path / "store"
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "thousands = ',' is the delimiter too" in said
    assert "write plain numbers (4512) in the file" in said
    assert "docs/training.md#preparing-a-file" in said
    # the docs' line, as docs/training.md#preparing-a-file writes it for MRR
    prepared = pd.read_csv(data, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    prepared["ARR"] = prepared["ARR"].str.replace(r"[^\d.\-]", "", regex=True)
    prepared.to_csv(data, index=False)
    config.write_text(f'[data]\npath = "accounts.csv"\nid_column = "account_id"\n{body}')
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 0, result.output
    schema = ModelStore(store).manifests("accounts")[0].features
    assert next(f for f in schema if f.name == "ARR").stats.max == arr.max()


def test_a_tree_on_a_tiny_table_chooses_only_the_leaves_its_rows_hold(tmp_path: Path) -> None:
    """A 50-customer table's tree grew 2 leaves (27 and 23 customers, converting at 56% and
    22%) where 3 were chosen, and the reason said each leaf held "one value of 'converted'
    or no feature telling its customers apart": neither held; no leaf could be cut into
    two of 20 customers, the fewest a segment may hold. Then it said it "chose 3 leaves"
    and grew 2: 50 rows hold at most 2 leaves of 20, so 2 is the most it chooses among,
    and the note says why."""
    rng = np.random.default_rng(24)
    n = 50
    group = rng.integers(0, 3, n)
    frame = pd.DataFrame(
        {
            "customer_id": range(1, n + 1),
            "visits": np.array([2, 8, 20])[group] + rng.poisson(2, n),
            "spend": (np.array([30, 120, 400])[group] * rng.lognormal(0, 0.3, n)).round(2),
            "converted": (rng.uniform(size=n) < np.array([0.1, 0.3, 0.6])[group]).astype(int),
        }
    )
    data = tmp_path / "tiny.csv"
    frame.to_csv(data, index=False)
    raw = {
        "outcomes": ["converted"],
        "data": {"path": str(data)},
        "features": [{"name": "visits"}, {"name": "spend"}],
        "model": {"algorithm": "tree", "target": "converted", "stability_bootstraps": 0},
    }
    manifest = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    sizes = sorted(s.size for s in manifest.segments)
    assert len(sizes) == 2 and all(20 <= size < 40 for size in sizes), sizes
    assert {round(s.outcomes["converted"] or 0.0, 2) for s in manifest.segments} != {0.0, 1.0}
    selection = manifest.selection
    assert selection.reason.startswith("2 leaves, plateau"), selection.reason
    assert "grown" not in selection.reason  # as many grown as chosen
    assert selection.chosen_k == 2 and [p.k for p in selection.curve] == [2]
    assert selection.note is not None and selection.note.startswith(
        "k_min = 3 and k_max = 8 lowered to 2: 50 customers hold at most 2 leaves of at least "
        "20 (min_share, or 20 customers where that is more)"
    ), selection.note


@pytest.mark.parametrize(
    ("rows", "share", "k_min", "k_max", "counts", "said"),
    [
        (6_000, 0.05, 3, 8, range(3, 9), None),
        (100, 0.2, 3, 8, range(3, 6), "k_max = 8 lowered to 5: 100 customers hold at most 5"),
        (50, 0.4, 3, 8, range(2, 3), "k_min = 3 and k_max = 8 lowered to 2: 50 customers"),
        (50, 0.4, 2, 2, range(2, 3), None),
    ],
)
def test_a_tree_s_leaf_counts_are_those_its_rows_hold(
    rows: int, share: float, k_min: int, k_max: int, counts: range, said: str | None
) -> None:
    from app.training.tree import leaf_counts

    found, note = leaf_counts(rows, share, k_min, k_max)
    assert found == counts
    assert (note is None) if said is None else (note is not None and note.startswith(said))


def test_min_frequency_0_keeps_every_category_and_trains(tmp_path: Path) -> None:
    """A B2B table's industry of 40 values, some under 1% of the accounts: the docs say to
    lower min_frequency to keep more of them, and min_frequency = 0 (keep them all) ended the
    job on an AttributeError of scikit-learn's encoder, which groups nothing then. It trains,
    keeps every category, and the served path encodes as the fitted pipeline does."""
    from app.serving.preprocess import CompiledPreprocess

    rng = np.random.default_rng(21)
    n = 2000
    weights = 1 / np.arange(1, 41) ** 1.2
    industries = [f"Industry {i:02d}" for i in range(40)]
    frame = pd.DataFrame(
        {
            "account_id": [f"ACC-{i:05d}" for i in range(n)],
            "industry": rng.choice(industries, n, p=weights / weights.sum()),
            "logins_per_week": rng.gamma(2, 10, n).round(1),
        }
    )
    assert (frame["industry"].value_counts(normalize=True) < 0.01).sum() >= 10
    data = tmp_path / "accounts.csv"
    frame.to_csv(data, index=False)
    config = tmp_path / "accounts.toml"
    config.write_text(
        '[data]\npath = "accounts.csv"\nid_column = "account_id"\n'
        '[[features]]\nname = "logins_per_week"\n'
        '[[features]]\nname = "industry"\ntype = "categorical"\nmin_frequency = 0\n'
        '[model]\nname = "accounts"\nk_min = 3\nk_max = 4\nstability_bootstraps = 0\n'
    )
    store = tmp_path / "store"
    result = runner.invoke(
        app, ["train", "--config", str(config), "--store", str(store), "--promote"]
    )
    assert result.exit_code == 0, (result.output, result.exc_info)
    loaded = ModelStore(store).load("accounts")
    schema = {f.name: f for f in loaded.manifest.features}
    assert sorted(schema["industry"].categories or []) == sorted(set(frame["industry"]))
    assert schema["industry"].infrequent == []
    frame.loc[0, "industry"] = "Industry 99"  # one training never saw: no column
    prep = loaded.estimator.pipeline.named_steps["preprocess"]
    rows = frame[["logins_per_week", "industry"]].to_dict("records")
    compiled = CompiledPreprocess(prep).many(rows)
    np.testing.assert_allclose(compiled, prep.transform(frame), atol=1e-12)
    assert compiled.shape[1] == 1 + 40 and not compiled[0, 1:].any()
    frame.to_csv(data, index=False)
    tagged = tmp_path / "tagged.csv"
    result = runner.invoke(
        app, ["assign", "--input", str(data), "--output", str(tagged), "--store", str(store)]
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tagged)) == n


def _currency_lines() -> str:
    return _docs_lines("Amounts are added as written.")


def test_the_docs_currency_lines_make_a_log_of_one_currency_that_trains(tmp_path: Path) -> None:
    """A wholesaler's log priced in each account's currency (SEK beside EUR) was noted
    "convert them to one currency first" with no line that does: the docs' lines, run as
    written on such a log, make a file whose spend is in EUR, and the note is gone."""
    rng = np.random.default_rng(31)
    rows = []
    for a in range(300):
        ccy = ["EUR", "SEK", "GBP", "usd "][a % 4]  # one written in lower case, padded
        rate = {"EUR": 1.0, "SEK": 11.4, "GBP": 0.86, "usd ": 1.08}[ccy]
        for o in range(int(rng.integers(1, 8))):
            day = (pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 300)))).date()
            price = f"{20 * rate:.2f}" if o else ""  # a first line without a price
            rows.append((f"SO{a}-{o}", f"ACC-{a:04d}", str(day), 3, price, ccy))
    log = pd.DataFrame(
        rows, columns=["order_no", "account", "order_date", "qty", "unit_price", "currency"]
    )
    log.to_csv(tmp_path / "order_lines.csv", index=False)
    done = subprocess.run(
        [sys.executable, "-c", _currency_lines()], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    transactions = {
        "customer": "account", "timestamp": "order_date", "quantity": "qty",
        "unit_price": "unit_price", "order": "order_no", "reference_date": "2024-12-01",
    }  # fmt: skip
    raw = {
        "data": {
            "path": "order_lines_eur.csv",
            "kind": "transactions",
            "transactions": transactions,
        },
        "features": [{"name": "monetary"}, {"name": "frequency"}],
        "model": {"k_min": 3, "k_max": 3, "stability_bootstraps": 0},
    }
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    assert not any("currenc" in note for note in m.data.notes), m.data.notes
    eur = pd.read_csv(tmp_path / "order_lines_eur.csv", dtype={"unit_price": float})
    assert "currency" not in eur.columns
    # 20 EUR a unit, whatever the currency it was priced in (rates of the docs' own table)
    priced = eur["unit_price"].dropna()
    assert priced.between(18.0, 23.0).all(), priced.describe()
    assert eur["unit_price"].isna().sum() == 300  # a blank price stays blank, not 0


def test_the_docs_lines_make_an_event_log_a_table_of_every_user(tmp_path: Path) -> None:
    """An app's event log (epoch seconds, app_open and ad_view lines of amount 0 beside
    purchases) read as a transaction log lost every user who never paid once their lines
    were excluded as no sale; docs/training.md's lines, run as written, make it a table of
    counts per user that keeps them all, with the outcome after the cut, and it trains."""
    rng = np.random.default_rng(5)
    rows = []
    start = int(pd.Timestamp("2024-05-01", tz="UTC").timestamp())
    for user in range(120):
        payer = user % 3 == 0
        for _ in range(int(rng.integers(3, 12))):
            at = start + int(rng.integers(0, 80 * 86400))
            name = (
                "purchase" if payer and rng.random() < 0.3 else rng.choice(["app_open", "ad_view"])
            )
            rows.append((str(9000 + user), at, name, 4.99 if name == "purchase" else 0.0))
    columns = ["user_id", "event_time", "event_name", "revenue_usd"]
    pd.DataFrame(rows, columns=columns).to_csv(tmp_path / "events.csv", index=False)
    lines = _docs_lines("### An event log of activity beside purchases")
    done = subprocess.run(
        [sys.executable, "-c", lines], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    users = pd.read_csv(tmp_path / "users.csv", dtype={"user_id": str})
    before = {r[0] for r in rows if r[1] < int(pd.Timestamp("2024-07-01", tz="UTC").timestamp())}
    assert set(users["user_id"]) == before  # every user with an event before the cut
    assert {"app_open_events", "ad_view_events", "purchase_events"} <= set(users.columns)
    assert set(users["active_after"]) == {0, 1}
    features = ["app_open_events", "ad_view_events", "revenue", "days_since_last_event"]
    raw = {
        "outcomes": ["active_after"],
        "data": {"path": "users.csv", "id_column": "user_id"},
        "features": [{"name": name} for name in features],
        "model": {"k_min": 2, "k_max": 3, "stability_bootstraps": 0},
    }
    manifest = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    assert manifest.data.rows == len(before)


def test_levels_low_average_high_are_noted_as_an_ordered_scale(tmp_path: Path) -> None:
    """A customer-segmentation table's Spending_Score, ``Low``, ``Average`` and ``High``,
    declared categorical as a text column must be: segmented on without its order (``Low``
    as far from ``Average`` as from ``High``), without a word (a new user's pass). The note
    on ordered answers names it and the numbers to write; a plan's names are no scale."""
    rng = np.random.default_rng(16)
    n = 300
    frame = pd.DataFrame(
        {
            "customer_id": [f"r{i}" for i in range(n)],
            "visits": rng.poisson(4, n),
            "Spending_Score": rng.choice(["Low", "Average", "High"], n, p=[0.6, 0.25, 0.15]),
            "plan": rng.choice(["basic", "pro", "team"], n),
        }
    )
    notes = categorical_notes(tmp_path, frame, ["Spending_Score", "plan"])
    said = [note for note in notes if "ordered scale" in note]
    assert said == [
        "Spending_Score: answers on an ordered scale ('Low' ... 'High'), segmented on as "
        "categories, whose order is not used; written as numbers (1 for 'Low' to 3 for "
        "'High') they are a scale the segments follow (docs/training.md#preparing-a-file)"
    ], notes


@pytest.mark.parametrize("name", ["MARRIAGE", "marital_status_code", "Occupation", "device"])
def test_a_persons_kind_coded_as_numbers_is_noted(tmp_path: Path, name: str) -> None:
    """The UCI credit-card default table's MARRIAGE (0 to 3: married, single, other) declared
    without ``type`` by a new user was segmented on as a scale, 3 beside 2 and far from 0,
    without a word: a person's kind, coded, is named as a code too; a count of such things
    (``devices``, ``marriages``: the head word's plural) is not."""
    from app.training.data_notes import coded_categories

    rng = np.random.default_rng(4)
    frame = pd.DataFrame({name: rng.integers(0, 4, 400), "devices": rng.integers(0, 5, 400)})
    config = parse_config(
        {
            "data": {"path": str(tmp_path / "t.csv")},
            "features": [{"name": name}, {"name": "devices"}],
        },
        base_dir=tmp_path,
    )
    assert [n.split(":")[0] for n in coded_categories(config, frame)] == [name]


def test_the_docs_lines_for_ids_written_as_floats_give_the_ids_as_other_systems_know_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The UCI retail log's ids are floats (``17850.0``): the docs said to fix the export,
    with no line that does. Its lines, run as written, give ``17850``, leave blank ids
    (guest lines) and other ids as they are, and the log then trains without the warning."""
    rng = np.random.default_rng(5)
    rows = []
    for c in range(120):
        customer = ["17850.0", "A-17.05", "", "00123.0"][c % 4] if c < 4 else f"{12000 + c}.0"
        for o in range(int(rng.integers(1, 6))):
            day = pd.Timestamp("2011-01-01") + pd.Timedelta(days=int(rng.integers(0, 200)))
            rows.append((f"{c}-{o}", day.strftime("%Y-%m-%d %H:%M:%S"), "2", "3.5", customer))
    log = pd.DataFrame(
        rows, columns=["InvoiceNo", "InvoiceDate", "Quantity", "UnitPrice", "CustomerID"]
    )
    log.to_csv(tmp_path / "online_retail.csv", index=False)
    code = _docs_lines("### Ids written as floats")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    written = pd.read_csv(tmp_path / "online_retail_ids.csv", dtype=str, keep_default_na=False)
    assert set(written["CustomerID"]) >= {"17850", "A-17.05", "", "00123"}
    assert not written["CustomerID"].str.endswith(".0").any()
    transactions = {
        "customer": "CustomerID", "timestamp": "InvoiceDate", "quantity": "Quantity",
        "unit_price": "UnitPrice", "order": "InvoiceNo", "reference_date": "2011-08-01",
    }  # fmt: skip
    raw = {
        "data": {
            "path": "online_retail_ids.csv",
            "kind": "transactions",
            "transactions": transactions,
        },
        "features": [{"name": "monetary"}, {"name": "frequency"}],
        "model": {"k_min": 2, "k_max": 2, "stability_bootstraps": 0},
    }
    with caplog.at_level("WARNING"):
        loaded = load_training_data(parse_config(raw, base_dir=tmp_path))
    assert "17850" in loaded.frame.index and "17850.0" not in loaded.frame.index
    assert not [r for r in caplog.records if "floats" in r.getMessage()], caplog.text


def test_the_docs_lines_for_an_order_log_without_dates_make_a_table_that_trains(
    tmp_path: Path,
) -> None:
    """docs/training.md's lines for Instacart's ``orders.csv`` (order numbers and days since
    the prior order, no date) were run by no test: run as written on such a log, they make
    one row per user, the last order kept out as the outcome, and the table trains with the
    features and outcome the docs then declare."""
    rng = np.random.default_rng(8)
    rows, order_id = [], 0
    for user in range(1, 301):
        weekly = user % 2 == 0  # every other user comes back within a week
        for number in range(1, int(rng.integers(3, 9)) + 1):
            order_id += 1
            gap = (
                None
                if number == 1
                else float(rng.integers(1, 8) if weekly else rng.integers(10, 31))
            )
            rows.append((order_id, user, number, gap, int(rng.integers(1, 20))))
    columns = ["order_id", "user_id", "order_number", "days_since_prior_order", "basket_size"]
    pd.DataFrame(rows, columns=columns).to_csv(tmp_path / "orders.csv", index=False)
    code = _docs_lines("### An order log without dates")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(tmp_path / "order_customers.csv")
    assert len(table) == 300 and set(table["back_within_7_days"]) == {"yes", "no"}
    raw = {
        "outcomes": ["back_within_7_days"],
        "data": {"path": "order_customers.csv"},
        "features": [{"name": n} for n in ("orders", "mean_days_between", "basket_size")],
        "model": {"k_min": 2, "k_max": 3, "stability_bootstraps": 0},
    }
    m = train(parse_config(raw, base_dir=tmp_path), ModelStore(tmp_path / "s")).manifest
    [outcome] = m.outcomes
    assert outcome.name == "back_within_7_days" and outcome.significant, outcome
