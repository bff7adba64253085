"""Config values that contradict themselves or the libraries' ranges: each one clear error at
load, exit 1 and no version, never a traceback from numpy or scikit-learn mid-training (an
outside audit's command-line pass found these)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli.main import app
from tests.training.test_bad_input import FEATURES, assert_store_untouched, good_frame, run_train


def _config(folder: Path, top: str = "", model: str = "") -> Path:
    data = folder / "customers.csv"
    frame = good_frame()
    frame["churned"] = [i % 2 for i in range(len(frame))]
    frame.to_csv(data, index=False)
    config = folder / "config.toml"
    config.write_text(
        f'{top}\n[data]\npath = "{data.name}"\n{FEATURES}\n[model]\nk_min = 3\nk_max = 4\n{model}\n'
    )
    return config


@pytest.mark.parametrize(
    ("top", "model", "expected"),
    [
        # numpy's "expected non-negative integer" and scikit-learn's random_state range
        ("", "seed = -1", "model.seed: Input should be greater than or equal to 0"),
        ("", "seed = 99999999999", "model.seed: Input should be less than or equal to 4294967295"),
        # an IndexError in the outcome weights
        ('outcomes = ["churned", "churned"]', "", "outcome columns declared twice: churned"),
        # trained the default silently
        ("", "algorithms = []", "algorithms is empty"),
        (
            'outcomes = ["churned"]',
            'algorithm = "tree"\ntarget = "churned"\nalgorithms = ["gmm"]',
            "algorithms lists the candidates to compare, and algorithm = 'tree' grows a tree",
        ),
        ("", 'algorithms = ["kmeans", "gmm", "kmeans"]', "algorithms lists 'kmeans' twice"),
        # a tree among the candidates: beside a clustering algorithm, with an outcome, and a
        # selection that reads outcomes
        (
            'outcomes = ["churned"]',
            'algorithms = ["tree"]\ntarget = "churned"',
            'model.algorithms: algorithms = ["tree"] compares the tree with nothing: write '
            'algorithm = "tree" with target',
        ),
        (
            "",
            'algorithms = ["kmeans", "tree"]',
            "[model] algorithms lists 'tree', a tree grown on an outcome, and none is declared",
        ),
        (
            'outcomes = ["churned"]',
            'algorithms = ["kmeans", "tree"]\nselection = "silhouette"',
            "'tree' in algorithms is judged by its held-out effect on its target, and "
            "selection = 'silhouette' never looks at an outcome",
        ),
        (
            'outcomes = ["churned"]',
            'target = "churned"',
            "target is only used with algorithm = 'tree' or 'tree' in algorithms",
        ),
        ("", 'algorithms = ["auto", "gmm"]', "model.algorithms: 'auto' is not a candidate"),
        # pydantic read true as 1 and false as 0 (seed = false trained with seed 0)
        ("", "seed = false", "model.seed: expected a number, not false"),
        ("", "min_share = true", "model.min_share: expected a number, not true"),
        # a fixed number of segments as other tools write it: "unknown config key", no more
        (
            "",
            "k = 4",
            "model.k: unknown config key; a fixed number of segments is k_min = 4 and k_max = 4",
        ),
        ("", "n_clusters = 5", "model.n_clusters: unknown config key; a fixed number of segm"),
    ],
)
def test_a_contradictory_config_is_one_error(
    top: str, model: str, expected: str, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    output = run_train(_config(tmp_path, top, model), store)
    assert expected in output
    assert_store_untouched(store)


@pytest.mark.parametrize(
    ("command", "seed"),
    [("train", "-1"), ("train", "4294967296"), ("example-data", "-1")],
)
def test_a_seed_option_out_of_range_is_a_usage_error(
    command: str, seed: str, tmp_path: Path
) -> None:
    args = ["--config", str(_config(tmp_path)), "--store", str(tmp_path / "store")]
    if command == "example-data":
        args = ["--out", str(tmp_path / "data")]
    result = CliRunner().invoke(app, [command, *args, "--seed", seed])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--seed'" in result.output
    assert not (tmp_path / "store").exists()
    assert not (tmp_path / "data").exists()


def test_example_data_of_more_customers_than_memory_holds_is_a_usage_error(
    tmp_path: Path,
) -> None:
    """``--customers 10000000000`` started generating until the machine ran out of memory."""
    out = tmp_path / "data"
    result = CliRunner().invoke(app, ["example-data", "--out", str(out), "--customers", "1e10"])
    assert result.exit_code == 2 and "Invalid value for '--customers'" in result.output
    result = CliRunner().invoke(
        app, ["example-data", "--out", str(out), "--customers", "10000000000"]
    )
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--customers'" in result.output and "5000000" in result.output
    assert not out.exists()


def test_a_config_in_another_encoding_is_one_error_naming_the_line(tmp_path: Path) -> None:
    config = _config(tmp_path)
    config.write_bytes(b"# caf\xe9 (Latin-1)\n" + config.read_bytes())
    store = tmp_path / "store"
    output = run_train(config, store)
    assert "is not UTF-8 text: line 1 holds the byte b'\\xe9'; save the file as UTF-8" in output
    assert_store_untouched(store)


def test_a_config_saved_with_a_byte_order_mark_trains(tmp_path: Path) -> None:
    """Notepad's UTF-8 starts with a byte-order mark, which tomllib calls an invalid
    statement at line 1, column 1."""
    config = _config(tmp_path)
    config.write_bytes(b"\xef\xbb\xbf" + config.read_bytes())
    store = tmp_path / "store"
    result = CliRunner().invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert len(list((store / "customers").glob("2*"))) == 1


def test_a_log_reference_date_to_come_is_refused(tmp_path: Path) -> None:
    """2999-01-01 trained every customer as lapsed for centuries, and nothing said so."""
    from datetime import UTC, datetime, timedelta

    from app.errors import ConfigError
    from app.training.config import parse_config

    def raw(day: object) -> dict[str, object]:
        log = {"customer": "c", "timestamp": "t", "amount": "a", "reference_date": day}
        return {
            "data": {"path": "log.csv", "kind": "transactions", "transactions": log},
            "features": [{"name": "recency_days"}],
        }

    with pytest.raises(ConfigError, match="reference_date 2999-01-01 is more than a day ahead"):
        parse_config(raw(datetime(2999, 1, 1).date()), base_dir=tmp_path)
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    parse_config(raw(tomorrow), base_dir=tmp_path)  # a log exported late today, UTC: fine


@pytest.mark.parametrize(
    ("features", "expected"),
    [
        (
            FEATURES.replace('name = "visits"', 'name = "visits"\nlabel = " "'),
            "features.1 ('visits').label: is blank: write the words, or leave the key out",
        ),
        (
            FEATURES.replace('name = "visits"', 'name = "visits"\nhigh = ""'),
            "features.1 ('visits').high: is blank",
        ),
        (
            FEATURES + "\n[[rules]]\nname = '   '\nwhen = 'spend > 10'\n",
            "rules.0 (' ').name: is blank: a rule segment's name is what the service serves",
        ),
    ],
)
def test_blank_words_are_refused(features: str, expected: str, tmp_path: Path) -> None:
    """A rule named by spaces trained a segment served with no name; a blank label or level
    word was ignored without a word."""
    data = tmp_path / "customers.csv"
    good_frame().to_csv(data, index=False)
    config = tmp_path / "config.toml"
    config.write_text(f'[data]\npath = "{data.name}"\n{features}\n')
    store = tmp_path / "store"
    output = run_train(config, store)
    assert expected in output
    assert_store_untouched(store)


def test_a_stored_log_config_with_a_day_now_refused_is_still_read() -> None:
    """The events path reads the serving version's [data.transactions] again: a version
    trained before reference dates to come were refused would answer every event with a
    validation error."""
    from datetime import date

    from pydantic import ValidationError

    from app.training.config import STORED, TransactionsConfig

    raw = {"customer": "c", "timestamp": "t", "amount": "a", "reference_date": date(2999, 1, 1)}
    with pytest.raises(ValidationError, match="more than a day ahead of today"):
        TransactionsConfig.model_validate(raw)
    stored = TransactionsConfig.model_validate(raw, context={STORED: True})
    assert stored.reference_date == date(2999, 1, 1)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([None], "the tree's target 'churned' is blank in every row"),
        ([1, None], "the tree's target 'churned' has one value (1) in every row that has one"),
    ],
)
def test_a_tree_on_an_outcome_without_two_values_says_which(
    values: list[int | None], expected: str, tmp_path: Path
) -> None:
    """A blank target was said to have 'fewer than two distinct values'."""
    config = _config(tmp_path, 'outcomes = ["churned"]', 'algorithm = "tree"\ntarget = "churned"')
    data = tmp_path / "customers.csv"
    frame = good_frame()
    frame["churned"] = [values[i % len(values)] for i in range(len(frame))]
    frame.to_csv(data, index=False)
    store = tmp_path / "store"
    output = run_train(config, store)
    assert expected in output
    assert_store_untouched(store)


def test_a_version_not_promoted_says_how_to_use_it_and_assign_takes_out(tmp_path: Path) -> None:
    """A new user's `segments assign` after `segments train` (no --promote) answered "no
    promoted version"; `--out`, as example-data and openapi spell it, was "No such option"."""
    store = tmp_path / "store"
    config = _config(tmp_path)
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert trained.exit_code == 0, trained.output
    version = trained.output.split()[-1]
    text = " ".join(trained.output.split())
    hint = f"segments models promote {version} --model customers --store {store}"
    assert "not promoted: the service and `segments assign` use the promoted version" in text
    assert hint in text
    promoted = runner.invoke(app, hint.split()[1:])
    assert promoted.exit_code == 0, promoted.output
    out = tmp_path / "tagged.csv"
    tagged = runner.invoke(
        app, ["assign", "--input", str(tmp_path / "customers.csv"), "--out", str(out),
              "--store", str(store)],
    )  # fmt: skip
    assert tagged.exit_code == 0, tagged.output
    assert len(out.read_text().splitlines()) == 61  # the header and every customer
    again = runner.invoke(
        app, ["train", "--config", str(config), "--store", str(store), "--promote"]
    )
    assert again.exit_code == 0 and "not promoted" not in again.output


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        # was "'impute' belongs in [[features]]", where it stood
        (
            'impute = "mode"',
            "features.2 ('plan').impute: unknown config key; 'impute' is a key of numeric "
            "features, and this one is categorical: a categorical feature's missing cells are "
            "a category of their own",
        ),
        (
            'transform = "log1p"',
            "features.2 ('plan').transform: unknown config key; 'transform' is a key of "
            "numeric features, and this one is categorical",
        ),
    ],
)
def test_a_numeric_features_key_in_a_categorical_one_says_so(
    key: str, expected: str, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    text = config.read_text()
    config.write_text(text.replace('type = "categorical"', f'type = "categorical"\n{key}'))
    store = tmp_path / "store"
    output = " ".join(run_train(config, store).split())
    assert expected in output
    assert "belongs in" not in output
    assert_store_untouched(store)
