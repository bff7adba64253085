"""Each bad input gets one clear error, a non-zero exit, and no partial version in the store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli.main import app
from tests.conftest import EXAMPLES

runner = CliRunner()
FEATURES = """
[[features]]
name = "spend"
transform = "log1p"

[[features]]
name = "visits"

[[features]]
name = "plan"
type = "categorical"
"""


def good_frame(n: int = 60) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "spend": [float(i % 7) * 10 for i in range(n)],
            "visits": [i % 5 for i in range(n)],
            "plan": ["free", "pro", "team"] * (n // 3),
        }
    )


def write_config(folder: Path, data: Path, extra: str = "", features: str = FEATURES) -> Path:
    config = folder / "config.toml"
    config.write_text(
        f'[data]\npath = "{data}"\n{extra}\n{features}\n[model]\nk_min = 3\nk_max = 4\n'
    )
    return config


def run_train(config: Path, store: Path) -> str:
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    output = " ".join(result.output.split())
    assert output.count("error:") == 1, output
    assert "Traceback" not in output
    return output


def assert_store_untouched(store: Path) -> None:
    leftovers = list(store.rglob("*")) if store.exists() else []
    assert leftovers == [], leftovers


def test_a_good_input_trains(tmp_path: Path) -> None:
    data = tmp_path / "customers.csv"
    good_frame().to_csv(data, index=False)
    result = runner.invoke(
        app,
        ["train", "--config", str(write_config(tmp_path, data)), "--store", str(tmp_path / "s")],
    )
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "s" / "customers").iterdir())) == 1


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing column", "missing column(s) 'visits'"),
        ("wrong type", "column 'spend' should be numeric but holds text, e.g. 'lots'"),
        ("empty file", "is empty"),
        ("header only", "has a header but no rows"),
        ("all-missing feature", "feature 'visits' is missing in every row"),
        ("fewer rows than segments", "2 customers, fewer than the 3 segments"),
        ("infinite value", "feature 'spend' holds infinite values"),
        ("duplicate ids", "duplicate ids, e.g. c1"),
        ("missing file", "data file not found"),
    ],
)
def test_bad_data_is_refused_with_one_clear_error(case: str, expected: str, tmp_path: Path) -> None:
    data = tmp_path / "customers.csv"
    frame = good_frame()
    if case == "missing column":
        frame = frame.drop(columns=["visits"])
    elif case == "wrong type":
        frame["spend"] = frame["spend"].astype(object)
        frame.loc[5, "spend"] = "lots"
    elif case == "all-missing feature":
        frame["visits"] = None
    elif case == "fewer rows than segments":
        frame = frame.head(2)
    elif case == "infinite value":
        frame.loc[3, "spend"] = float("inf")
    elif case == "duplicate ids":
        frame.loc[2, "customer_id"] = "c1"
    if case == "empty file":
        data.write_text("")
    elif case == "header only":
        data.write_text(",".join(frame.columns) + "\n")
    elif case != "missing file":
        frame.to_csv(data, index=False)
    store = tmp_path / "store"
    output = run_train(write_config(tmp_path, data), store)
    assert expected in output
    assert_store_untouched(store)


@pytest.mark.parametrize(
    ("extra", "features", "expected"),
    [
        ("colour = 'blue'", FEATURES, "data.colour: unknown config key"),
        (
            "",
            FEATURES + "\n[[features]]\nname='x'\nscale=2\n",
            "features.3.numeric.scale: unknown config key",
        ),
        ("", FEATURES + "\n[[rules]]\nname='r'\nwhen='spnd < 3'\n", "unknown feature 'spnd'"),
        ("", FEATURES + "\n[[rules]]\nname='r'\nwhen='spend <'\n", "rule condition"),
        ("", FEATURES.replace('"log1p"', '"sqrt"'), "features.0.numeric.transform"),
        ("", "", "features: Field required"),
        ("kind = 'transactions'", FEATURES, "needs a [data.transactions] table"),
    ],
)
def test_bad_config_is_refused_with_one_clear_error(
    extra: str, features: str, expected: str, tmp_path: Path
) -> None:
    data = tmp_path / "customers.csv"
    good_frame().to_csv(data, index=False)
    store = tmp_path / "store"
    output = run_train(write_config(tmp_path, data, extra, features), store)
    assert expected in output
    assert_store_untouched(store)


def test_invalid_toml_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[data\npath = 'x'")
    output = run_train(config, tmp_path / "store")
    assert "is not valid TOML" in output


def test_a_failure_after_fitting_leaves_no_version(tmp_path: Path, monkeypatch) -> None:
    """A crash while writing the report (the last step) must not leave a half-written version."""
    import app.training.job as job

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(job, "write_report", broken)
    data = tmp_path / "customers.csv"
    good_frame().to_csv(data, index=False)
    store = tmp_path / "store"
    result = runner.invoke(
        app, ["train", "--config", str(write_config(tmp_path, data)), "--store", str(store)]
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, OSError)
    assert_store_untouched(store)


def test_a_tampered_artefact_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "customers.csv"
    good_frame().to_csv(data, index=False)
    store = tmp_path / "store"
    config = write_config(tmp_path, data)
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 0, result.output
    version = result.output.strip().splitlines()[-1]
    artefact = store / "customers" / version / "model.joblib"
    artefact.write_bytes(artefact.read_bytes() + b"\x00")
    result = runner.invoke(app, ["models", "promote", version, "--store", str(store)])
    assert result.exit_code == 1
    assert "hash mismatch" in " ".join(result.output.split())
    assert not (store / "customers" / "promoted.json").exists()


def test_example_configs_are_valid() -> None:
    from app.training.config import load_config

    for path in sorted(EXAMPLES.glob("*.toml")):
        load_config(path)
