"""Each bad input gets one clear error, a non-zero exit, and no partial version in the store.

Over HTTP, a bad request is a 4xx problem naming what is wrong, never a 500: the inputs at
the end once were one (found in review; ``test_fuzz`` generates their kinds since).
"""

from __future__ import annotations

import codecs
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli.main import app
from app.main import create_app
from app.problems import Problem, invalid, problem_response
from app.registry.store import ModelStore
from app.settings import Settings
from app.training.job import TrainResult
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
        (
            "all-missing feature",
            "feature 'visits' is missing in every row (each cell blank or a missing marker): it "
            "can tell no customers apart; remove its [[features]] entry, or fix the export",
        ),
        ("fewer rows than segments", "2 customers, too few for the 3 segments"),
        ("as many rows as segments", "has 3 customers, too few for the 3 segments requested"),
        ("infinite value", "feature 'spend' holds infinite values"),
        ("duplicate ids", "repeats 1 id (2 rows), e.g. 'c1' (2 rows); a customer table has one"),
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
    elif case == "as many rows as segments":  # once trained k=2 and exited 0
        frame = frame.head(3)
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


def test_every_unreadable_numeric_column_is_named_in_one_error(tmp_path: Path) -> None:
    """A raw file with an amount in dollars, a percentage and a date took three runs to train,
    one error a run: each column's problem is a line of one error, worded as alone."""
    frame = good_frame()
    frame["spend"] = [f"${v:.2f}" for v in frame["spend"]]
    frame["visits"] = [f"{v}%" for v in frame["visits"]]
    frame["signup"] = "2024-02-11"
    data = tmp_path / "customers.csv"
    frame.to_csv(data, index=False)
    features = FEATURES + "\n[[features]]\nname = 'signup'\n"
    store = tmp_path / "store"
    config = write_config(tmp_path, data, features=features)
    result = runner.invoke(app, ["train", "--config", str(config), "--store", str(store)])
    assert result.exit_code == 1, result.output
    lines = [" ".join(line.split()) for line in result.output.split("\n  ")]
    assert lines[0] == "error: customers.csv: 3 feature columns cannot be used as they are:"
    assert [line.split(",")[0] for line in lines[1:]] == [
        "customers.csv: column 'spend' should be numeric but holds text",
        "customers.csv: column 'visits' should be numeric but holds text",
        "customers.csv: column 'signup' should be numeric but holds text",
    ]
    assert "'$0.00' is a number written with '$'" in lines[1]
    assert "'0%' is a number written with '%'" in lines[2]
    assert "if it holds dates, derive a number from them" in lines[3]
    assert result.output.count("error:") == 1
    assert_store_untouched(store)


def test_an_error_lists_ten_columns_and_counts_the_rest(tmp_path: Path) -> None:
    frame = good_frame()
    names = [f"x{i}" for i in range(13)]
    for name in names:
        frame[name] = "lots"
    data = tmp_path / "customers.csv"
    frame.to_csv(data, index=False)
    features = FEATURES + "".join(f"\n[[features]]\nname = '{n}'\n" for n in names)
    output = run_train(write_config(tmp_path, data, features=features), tmp_path / "store")
    assert "customers.csv: 13 feature columns cannot be used as they are:" in output
    assert "column 'x9' should be numeric" in output
    assert "'x10'" not in output
    assert output.endswith("and 3 more")


def test_too_few_customers_left_after_rules_for_k_min_is_refused(tmp_path: Path) -> None:
    """15 customers, a rule takes the 12 who spent: 3 are left for k_min = 3 segments (it once
    trained k=2 and exited 0)."""
    data = tmp_path / "customers.csv"
    good_frame(15).to_csv(data, index=False)
    rule = FEATURES + "\n[[rules]]\nname = 'spenders'\nwhen = 'spend > 0'\n"
    store = tmp_path / "store"
    output = run_train(write_config(tmp_path, data, features=rule), store)
    assert "only 3 customers are left for clustering after rule segments" in output
    assert "(model.k_min = 3): at least 4 are needed" in output
    assert_store_untouched(store)


@pytest.mark.parametrize(
    ("extra", "features", "expected"),
    [
        ("colour = 'blue'", FEATURES, "data.colour: unknown config key"),
        (
            "",
            FEATURES + "\n[[features]]\nname='x'\nscale=2\n",
            "features.3 ('x').scale: unknown config key",
        ),
        # a misspelt key names the key valid at its place it is closest to
        (
            "",
            FEATURES.replace('transform = "log1p"', 'transfrom = "log1p"'),
            "features.0 ('spend').transfrom: unknown config key; did you mean 'transform'?",
        ),
        (
            "id_colum = 'customer_id'",
            FEATURES,
            "data.id_colum: unknown config key; did you mean 'id_column'?",
        ),
        (
            "",
            FEATURES + "\n[[rules]]\nname='r'\nwhen='spend < 3'\ndescripton='x'\n",
            "rules.0 ('r').descripton: unknown config key; did you mean 'description'?",
        ),
        ("", FEATURES + "\n[[rules]]\nname='r'\nwhen='spnd < 3'\n", "unknown feature 'spnd'"),
        ("", FEATURES + "\n[[rules]]\nname='r'\nwhen='spend <'\n", "rule condition"),
        # the feature named as written, not pydantic's "features.0.numeric.transform"
        ("", FEATURES.replace('"log1p"', '"sqrt"'), "features.0 ('spend').transform: Input"),
        (
            "",
            FEATURES.replace('"categorical"', '"category"'),
            "features.2 ('plan'): type 'category' is not 'numeric' or 'categorical'",
        ),
        (
            "",
            FEATURES.replace('"categorical"', '"date"'),
            "features.2 ('plan'): type 'date' is not 'numeric' or 'categorical': a date is not "
            "a feature; derive a number from it in the file first (days since the booking, "
            "say) and declare that numeric",
        ),
        (
            "",
            FEATURES.replace('"categorical"', '"boolean"'),
            "features.2 ('plan'): type 'boolean' is not 'numeric' or 'categorical': a column "
            "of TRUE/FALSE or 0/1 cells is read as 1/0 as 'numeric' (the default); as "
            "'categorical', TRUE/FALSE are the categories 'true' and 'false'",
        ),
        ("", "", "features: Field required"),
        (
            "",
            FEATURES + '\n[outcomes]\ncolumns = ["customer_id"]\n',
            "id column 'customer_id' cannot also be an outcome: an outcome is a number or "
            "yes/no of each customer",
        ),
        # a feature's own missing markers are strings, as [data] missing_values are
        (
            "",
            FEATURES.replace('name = "visits"', 'name = "visits"\nmissing_values = [-1]'),
            "features.1 ('visits').missing_values: missing_values lists the cells read as "
            "missing in this column, each a string as written in the file, e.g. missing_values "
            '= ["-1"] (not [-1]); got [-1]',
        ),
        (
            "",
            FEATURES.replace('type = "categorical"', 'type = "categorical"\nmissing_values = "?"'),
            "features.2 ('plan').missing_values: missing_values lists the cells read as missing",
        ),
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


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # a word of the key it means (the brief's case had no hint at all)
        (
            "[model]",
            "[outcomes.future]\nwindow_days = 270\n\n[model]",
            "outcomes.future.window_days: unknown config key; did you mean 'days'?",
        ),
        (
            "[model]",
            "[outcomes]\nfuture = {horizon = 270}\n\n[model]",
            "outcomes.future.horizon: unknown config key; did you mean 'days'?",
        ),
        # another tool's word for the key: not the close spelling 'order'
        (
            'timestamp = "timestamp"',
            'order_date = "timestamp"',
            "data.transactions.order_date: unknown config key; did you mean 'timestamp'?",
        ),
        (
            'amount = "amount"',
            'amount = "amount"\nreference = "2024-01-01"',
            "data.transactions.reference: unknown config key; did you mean 'reference_date'?",
        ),
        # a key of another table, said with where it belongs
        (
            'kind = "transactions"',
            'kind = "transactions"\nreference_dat = "2024-01-01"',
            "data.reference_dat: unknown config key; did you mean 'reference_date'? (it belongs "
            "in [data.transactions])",
        ),
        (
            "seed = 42",
            "min_frequncy = 3",
            "model.min_frequncy: unknown config key; did you mean 'min_frequency'? (it belongs "
            "in [[features]])",
        ),
        (
            'when = "tenure_days < 30"',
            'conditon = "tenure_days < 30"',
            "rules.0 ('New customers').conditon: unknown config key; did you mean 'when'?",
        ),
        ("seed = 42", "Random-State = 42", "did you mean 'seed'?"),
    ],
)
def test_a_misspelt_key_anywhere_names_the_key_it_means(
    old: str, new: str, expected: str, tmp_path: Path, transactions_csv: Path
) -> None:
    """``window_days`` in [outcomes.future] got "unknown config key" alone: the hint was a
    close spelling of a key of the same table only, which 'days' is not."""
    text = (EXAMPLES / "transactions.toml").read_text()
    text = text.replace('path = "../data/transactions.csv"', f"path = {str(transactions_csv)!r}")
    assert old in text
    config = tmp_path / "transactions.toml"
    config.write_text(text.replace(old, new, 1))
    store = tmp_path / "store"
    output = run_train(config, store)
    assert expected in output
    assert_store_untouched(store)


def test_an_error_repeats_a_file_s_huge_cell_or_name_clipped(tmp_path: Path) -> None:
    """A 1 MB cell in a numeric column was repeated whole in the job's one error line (and a
    100,000-character column name in the list of the file's columns): an error repeats at
    most 80 characters of either, saying how long it was; the rest of the line is as
    before, its advice included."""
    frame = good_frame()
    frame["spend"] = frame["spend"].astype(object)
    frame.loc[5, "spend"] = "x" * 1_000_000
    frame["n" * 100_000] = 1
    data = tmp_path / "customers.csv"
    frame.to_csv(data, index=False)
    store = tmp_path / "store"
    output = run_train(write_config(tmp_path, data), store)
    assert len(output) < 1_000, output[:2_000]
    assert f"e.g. {'x' * 80!r}… (1,000,000 characters) (1 of 60 rows)" in output
    assert 'set errors = "missing" in its [[features]] entry' in output
    missing = FEATURES + "\n[[features]]\nname = 'region'\n"
    output = run_train(write_config(tmp_path, data, features=missing), store)
    assert len(output) < 1_000, output[:2_000]
    assert f"{'n' * 80!r}… (100,000 characters)" in output
    repeated = good_frame()
    repeated.loc[[3, 4], "customer_id"] = "d" * 100_000  # an id twice: named clipped
    repeated.to_csv(data, index=False)
    output = run_train(write_config(tmp_path, data), store)
    assert len(output) < 1_000, output[:2_000]
    assert f"e.g. {'d' * 80!r}… (100,000 characters) (2 rows); a customer table" in output
    assert_store_untouched(store)


def test_one_error_line_is_bounded_whatever_it_lists() -> None:
    from app.words import bounded_message

    text = "error start " + "'abc', " * 100_000 + "the advice at the end"
    shown = bounded_message(text)
    assert len(shown) < 4_100
    assert shown.startswith("error start ") and shown.endswith("the advice at the end")
    assert "characters left out" in shown
    assert bounded_message("short") == "short"


def test_invalid_toml_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[data\npath = 'x'")
    output = run_train(config, tmp_path / "store")
    assert "is not valid TOML" in output


def test_a_failure_after_fitting_leaves_no_version(tmp_path: Path, monkeypatch) -> None:
    """A write failing in the report (the last step) must not leave a half-written version,
    and ends in one error line like every other store write."""
    import app.training.report as report  # the job imports it when it writes the report

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(report, "write_report", broken)
    data = tmp_path / "customers.csv"
    good_frame().to_csv(data, index=False)
    store = tmp_path / "store"
    output = run_train(write_config(tmp_path, data), store)
    assert f"cannot write to the model store folder {store / 'customers'}: disk full" in output
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


# -- over HTTP ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(
    trained: tuple[ModelStore, TrainResult], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    store, _ = trained
    settings = Settings(
        model_store=store.root,
        dev_mode=True,
        access_log=False,
        key_prefix=f"bad{uuid.uuid4().hex[:8]}:",
        data_dir=tmp_path_factory.mktemp("bad-input-data"),
    )
    # a 500 must come back as a response the test can inspect, not as an exception
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def features(trained: tuple[ModelStore, TrainResult]) -> dict[str, Any]:
    """A valid feature set (every feature unknown) of the trained model."""
    _, result = trained
    return dict.fromkeys(f.name for f in result.manifest.features)


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    doc: dict[str, Any] = response.json()
    assert doc["status"] == status
    return doc


def escaped(doc: Any) -> bytes:
    """JSON with any lone surrogate as its escape (UTF-8 cannot hold one; JSON text can)."""
    return json.dumps(doc, ensure_ascii=True).encode()


DEEP_ARRAYS = b"[" * 5_000 + b"]" * 5_000
DEEP_OBJECTS = b'{"a":' * 2_000 + b"1" + b"}" * 2_000
# a feature's value nested past Python's own recursion limit: the assignment's bounded read
# of a body of many names said "maximum recursion depth exceeded while decoding a JSON object
# from a unicode string", Python's words (hostile audit)
DEEP_FEATURE = (
    b'{"customer_id": "x", "features": {"plan": ' + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}}"
)


@pytest.mark.parametrize("path", ["/v1/assign", "/v1/assign/batch"])
@pytest.mark.parametrize(
    "body",
    [DEEP_ARRAYS, DEEP_OBJECTS, b'{"items": [' + DEEP_ARRAYS + b"]}", DEEP_FEATURE],
    ids=["arrays", "objects", "in-items", "in-a-feature"],
)
def test_deeply_nested_json_is_a_400(client: TestClient, path: str, body: bytes) -> None:
    doc = problem(client.post(path, content=body), 400)
    assert doc["type"] == "/problems/malformed-json"
    assert "not valid JSON: depth limit exceeded" in doc["detail"]


@pytest.mark.parametrize("path", ["/v1/assign", "/v1/assign/batch"])
def test_a_body_not_in_utf_8_is_told_so_and_where(client: TestClient, path: str) -> None:
    """A body in Latin-1 (an integrator's usual slip) is told where its first byte that is no
    UTF-8 is, as the routed endpoints tell it: the parser said "str is not valid UTF-8:
    surrogates not allowed: line 1 column 1 (char 0)", of a body that holds no surrogate and
    is wrong at byte 20 (hostile audit)."""
    item = b'{"customer_id": "Jos\xe9"}'
    body = item if path == "/v1/assign" else b'{"items": [' + item + b"]}"
    doc = problem(client.post(path, content=body), 400)
    assert doc["type"] == "/problems/malformed-json"
    at = body.index(b"\xe9")
    assert doc["errors"] == [
        {"field": "body", "message": f"not UTF-8 (invalid continuation byte at byte {at})"}
    ]
    if path == "/v1/assign":  # a body of more names than an item has is read apart
        many = b'{"customer_id": "Jos\xe9", ' + b", ".join(b'"f%d": 1' % i for i in range(2_000))
        doc = problem(client.post(path, content=many + b"}"), 400)
        assert doc["errors"][0]["message"] == "not UTF-8 (invalid continuation byte at byte 20)"


WIDE = {  # JSON in UTF-16 or UTF-32, with or without their byte-order marks
    "utf-16": "utf-16",
    "utf-16-le": "utf-16-le",
    "utf-16-be": "utf-16-be",
    "utf-32": "utf-32",
}


@pytest.mark.parametrize("path", ["/v1/assign", "/v1/assign/batch", "/v1/webhooks"])
@pytest.mark.parametrize("codec", sorted(WIDE))
def test_a_body_in_utf_16_or_32_is_not_utf_8(client: TestClient, path: str, codec: str) -> None:
    """The contract is JSON in UTF-8 ("no charset but UTF-8"); a body in UTF-16 or UTF-32
    (a Windows client's "Unicode") was read all the same, by the assign endpoints' lenient
    fallback parser and by Starlette's, which guesses those encodings, for the routed ones.
    Every endpoint answers it as a body that is not UTF-8, at its first NUL byte (a NUL is
    never in UTF-8 JSON: JSON escapes it in strings)."""
    item = '{"customer_id": "c1", "age": 30}'
    text = item if path == "/v1/assign" else '{"items": [' + item + "]}"
    if path == "/v1/webhooks":
        text = '{"url": "http://127.0.0.1:9/hook"}'
    body = text.encode(WIDE[codec])
    doc = problem(client.post(path, content=body), 400)
    assert doc["type"] == "/problems/malformed-json"
    at = body.index(b"\0")
    assert doc["errors"] == [
        {"field": "body", "message": f"not UTF-8 (a NUL byte at byte {at}: UTF-16 or UTF-32?)"}
    ], doc


@pytest.mark.parametrize("path", ["/v1/assign", "/v1/assign/batch"])
def test_a_utf_8_byte_order_mark_is_skipped_as_the_routed_endpoints_skip_it(
    client: TestClient, path: str
) -> None:
    """UTF-8 with a byte-order mark (Notepad's "UTF-8 with BOM") is UTF-8: RFC 8259 lets a
    reader ignore the mark, and the routed endpoints do; the assign endpoints answer it as
    they answer the body without it."""
    item = b'{"customer_id": "c1"}'
    body = item if path == "/v1/assign" else b'{"items": [' + item + b"]}"
    plain = client.post(path, content=body)
    marked = client.post(path, content=codecs.BOM_UTF8 + body)
    assert (marked.status_code, marked.json()) == (plain.status_code, plain.json()), marked.text


LONE = "\ud800"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda b: b.update(customer_id=LONE), "customer_id", "must be valid Unicode"),
        (lambda b: b.update(customer_id=f"C1{LONE}"), "customer_id", "must be valid Unicode"),
        (lambda b: b.update({LONE: 1}), "\\ud800", "unknown field"),
        (lambda b: b["features"].update({f"x{LONE}": 1}), "features.x\\ud800", "unknown feature"),
        (lambda b: b["features"].update(plan=LONE), "features.plan", "must be valid Unicode"),
    ],
    ids=["id", "id-suffix", "top-level-key", "feature-name", "category"],
)
def test_lone_surrogates_are_a_422_naming_the_field(
    client: TestClient, features: dict[str, Any], change: Any, field: str, message: str
) -> None:
    body: dict[str, Any] = {"customer_id": "C1", "features": dict(features)}
    change(body)
    doc = problem(client.post("/v1/assign", content=escaped(body)), 422)
    assert [e["field"] for e in doc["errors"]] == [field]
    assert message in doc["errors"][0]["message"]


def test_lone_surrogates_in_a_batch_are_reported_in_place(
    client: TestClient, features: dict[str, Any]
) -> None:
    items = [
        {"customer_id": LONE, "features": features},
        {"customer_id": "C2", "features": {**features, LONE: 1}},
        {"customer_id": "C3", "features": {**features, "plan": f"pro{LONE}"}},
        {"customer_id": "C4", "features": features},
    ]
    response = client.post("/v1/assign/batch", content=escaped({"items": items}))
    assert response.status_code == 200, response.text
    doc = response.json()
    assert (doc["assigned"], doc["failed"]) == (1, 3)
    bad, unknown, category, ok = doc["results"]
    assert bad["customer_id"] is None  # not echoed: no answer can hold it
    assert bad["errors"] == [
        {"field": "items.0.customer_id", "message": "must be valid Unicode (no lone surrogates)"}
    ]
    assert unknown["errors"] == [
        {"field": "items.1.features.\\ud800", "message": "unknown feature"}
    ]
    assert [e["field"] for e in category["errors"]] == ["items.2.features.plan"]
    assert (ok["status"], ok["customer_id"]) == ("ok", "C4")
    envelope = problem(
        client.post("/v1/assign/batch", content=escaped({"items": items, LONE: 1})), 422
    )
    assert envelope["errors"] == [{"field": "\\ud800", "message": "unknown field"}]


def test_raw_surrogate_bytes_are_refused(client: TestClient, features: dict[str, Any]) -> None:
    """The same surrogate as raw (invalid UTF-8) bytes: the lenient parse reads it alike."""
    body = escaped({"customer_id": LONE, "features": features}).replace(b"\\ud800", b"\xed\xa0\x80")
    doc = problem(client.post("/v1/assign", content=body), 422)
    assert doc["errors"][0]["field"] == "customer_id"


def test_a_problem_with_unencodable_text_still_renders() -> None:
    """Whatever a future message holds, its problem body is JSON (not a 500)."""
    bad = invalid([{"field": f"features.{LONE}", "message": f"not {LONE}"}])
    bad.errors.append({"field": "n", "message": 2**70})  # type: ignore[union-attr,dict-item]
    doc = orjson.loads(problem_response(bad, f"/v1/{LONE}").body)
    assert doc["errors"][0] == {"field": "features.\\ud800", "message": "not \\ud800"}
    assert doc["errors"][1] == {"field": "n", "message": str(2**70)}
    assert (doc["detail"], doc["instance"]) == (bad.detail.replace(LONE, "\\ud800"), "/v1/\\ud800")
    plain = problem_response(Problem(400, "Bad", "fine"))
    assert orjson.loads(plain.body)["detail"] == "fine"


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("9999-12-31T00:00:00Z", "9999-12-31T23:59:59Z"),  # the review's
        ("9998-12-31T23:00:00Z", "9999-01-01T00:00:01Z"),
        ("9999-12-31T00:00:00-05:00", "9999-12-31T10:00:00-05:00"),
        (None, "0001-01-01T01:00:00Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T01:00:00Z"),
        ("0001-01-01T00:00:00+05:00", "0001-01-01T01:00:00+05:00"),
        ("1969-12-31T23:59:59Z", "1970-01-01T01:00:00Z"),
        ("9999-12-31T00:00:00", None),
    ],
)
def test_a_migration_window_out_of_range_is_read_within_it(
    client: TestClient, since: str | None, until: str | None
) -> None:
    """No flow is recorded before 1970 or after 9999-01-01: such ends are read as those bounds
    (the contract accepts any date-time; issue 11, item 8)."""
    params = {k: v for k, v in (("since", since), ("until", until)) if v is not None}
    response = client.get("/v1/migrations", params=params)
    assert response.status_code == 200, response.text
    doc = response.json()
    for end in (doc["since"], doc["until"]):  # (since may be after until: an empty window)
        assert "1970-01-01T00:00:00Z" <= end <= "9999-01-01T01:00:00Z"


@pytest.mark.parametrize(
    ("since", "until", "answered"),
    [
        ("9998-12-31T22:30:00Z", "9999-01-01T00:00:00Z", "9999-01-01T00:00:00Z"),
        ("9998-12-31T22:30:00+01:00", "9999-01-01T01:00:00+01:00", "9999-01-01T00:00:00Z"),
        ("1970-01-01T00:00:00Z", "1970-01-01T00:30:00Z", "1970-01-01T01:00:00Z"),
        (None, "1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
    ],
)
def test_a_migration_window_at_the_ends_of_the_range_is_answered(
    client: TestClient, since: str | None, until: str, answered: str
) -> None:
    params = {k: v for k, v in (("since", since), ("until", until)) if v is not None}
    response = client.get("/v1/migrations", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["until"] == answered  # widened to the end of its bucket


@pytest.mark.parametrize(
    ("since", "until"),
    [("2020-01-02T00:00:00Z", "2020-01-01T00:00:00Z"), ("2020-01-01T00:00:01Z", "2020-01-01")],
)
def test_a_migration_window_that_ends_before_it_starts_is_refused_naming_both_ends(
    client: TestClient, since: str, until: str
) -> None:
    """It was an empty 200, which reads as "nobody moved" when the two were swapped (the
    dashboard already refused it): a 422 naming since and until with their values."""
    response = client.get("/v1/migrations", params={"since": since, "until": until})
    assert response.status_code == 422, response.text
    fields = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert set(fields) == {"since", "until"}, fields
    assert since in fields["until"], fields


@pytest.mark.parametrize(
    ("name", "write", "expected"),
    [
        # a gzipped CSV ended in a traceback from the row-shape scan (found by this stop)
        # (with the command that decompresses it beside it)
        (
            "customers.csv.gz",
            "gzip",
            "customers.csv.gz is compressed (gzip): the data is read "
            "from CSV or Parquet files; decompress it first (gunzip -k customers.csv.gz)",
        ),
        ("customers.json", "json", "customers.json is not CSV or Parquet (.json)"),
        ("customers.xlsx", "zip", "customers.xlsx is a spreadsheet (.xlsx)"),
        ("customers.csv", "parquet", "customers.csv is a Parquet file: name it .parquet"),
        ("customers.csv", "gzip", "customers.csv is compressed (gzip), not CSV text"),
    ],
)
def test_a_file_neither_csv_nor_parquet_is_named_by_training_and_tagging(
    tmp_path: Path, name: str, write: str, expected: str
) -> None:
    import gzip
    import zipfile

    data, frame = tmp_path / name, good_frame()
    if write == "gzip":
        data.write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    elif write == "json":
        frame.to_json(data, orient="records")
    elif write == "zip":
        with zipfile.ZipFile(data, "w") as archive:
            archive.writestr("xl/workbook.xml", "<workbook/>")
    else:
        frame.to_parquet(data)
    store = tmp_path / "store"
    assert expected in run_train(write_config(tmp_path, data), store)
    assert_store_untouched(store)
    good = tmp_path / "good.csv"
    frame.to_csv(good, index=False)
    trained = runner.invoke(
        app,
        [
            "train",
            "--config",
            str(write_config(tmp_path, good)),
            "--store",
            str(store),
            "--promote",
        ],
    )
    assert trained.exit_code == 0, trained.output
    tagged = runner.invoke(
        app, ["assign", "--input", str(data), "--output", str(tmp_path / "out.csv"),
              "--store", str(store)],
    )  # fmt: skip
    assert tagged.exit_code == 1 and "Traceback" not in tagged.output
    assert expected in " ".join(tagged.output.split())


@pytest.mark.parametrize(
    ("write", "expected"),
    [
        # a late row of a Windows file: `segments assign` ended in a traceback, training
        # said only "cannot read ... 'utf-8' codec can't decode"
        # (now: the encoding to declare, and the re-encoding as the other way)
        (
            "cp1252",
            "customers.csv is not UTF-8 text (byte 0xfc is not UTF-8): a file saved on Windows "
            """(Excel's plain 'CSV') is read as written with encoding = "cp1252" in the """,
        ),
        # Excel's semicolon CSV: the line given read it with commas, splitting 1.583,07 in
        # two; then a pandas line that parsed the cells, writing ids 00123 as 123: the
        # text is re-encoded as written, and the format declared
        (
            "cp1252;",
            'encoding = "cp1252", delimiter = ";", decimal = ",", thousands = "." in the '
            "training config's [data] table (it seems ';'-separated); or save it as UTF-8",
        ),
        ("utf-16", "customers.csv is UTF-16 text: save it as UTF-8"),
        # without a byte-order mark the NULs were read into every name: "not found"
        ("utf-16-le", "customers.csv is UTF-16 text: save it as UTF-8"),
        ("utf-16-be", "customers.csv is UTF-16 text: save it as UTF-8"),
        ("spaces", "'visits' is written ' visits' in the file: names are matched exactly"),
        ("case", "'spend' is written 'Spend' in the file"),
        ("id", "'customer_id' is written 'Customer ID' in the file"),
    ],
)
def test_text_of_another_encoding_or_names_off_by_spaces_are_named(
    tmp_path: Path, write: str, expected: str
) -> None:
    data, frame = tmp_path / "customers.csv", good_frame(3000)
    store = tmp_path / "store"
    frame.to_csv(tmp_path / "good.csv", index=False)
    trained = runner.invoke(
        app,
        ["train", "--config", str(write_config(tmp_path, tmp_path / "good.csv")),
         "--store", str(store), "--promote"],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    if write.startswith("cp1252"):
        frame.loc[2500, "plan"] = "für"
        sep = write.removeprefix("cp1252") or ","
        if sep == ";":  # a European export's header, its first byte that is no UTF-8
            frame["Région"] = "Süd"
        frame.to_csv(
            data, index=False, encoding="cp1252", sep=sep, decimal="." if sep == "," else ","
        )
    elif write.startswith("utf-16"):
        frame.to_csv(data, index=False, encoding=write)
    else:
        renamed = {"spaces": {"visits": " visits"}, "case": {"spend": "Spend"}}.get(
            write, {"customer_id": "Customer ID"}
        )
        frame.rename(columns=renamed).to_csv(data, index=False)
    assert expected in run_train(write_config(tmp_path, data), tmp_path / "other")
    tagged = runner.invoke(
        app, ["assign", "--input", str(data), "--output", str(tmp_path / "out.csv"),
              "--store", str(store)],
    )  # fmt: skip
    assert tagged.exit_code == 1 and "Traceback" not in tagged.output, tagged.output
    assert expected in " ".join(tagged.output.split())
    if write in ("spaces", "case", "id"):  # a trained model's names are fixed: no config
        assert "rename them in the file" in " ".join(tagged.output.split())


def test_a_windows_export_declared_in_full_is_told_only_of_its_encoding(
    tmp_path: Path,
) -> None:
    """Excel's 'CSV (semicolon)' on a German Windows, its format declared from the docs
    (delimiter, decimal, thousands): the error told the user to declare the very options
    the config held, beside the re-encoding that was all the file lacked; one option
    missing is still named (and only it)."""
    data, frame = tmp_path / "kunden.csv", good_frame(300)
    frame["Région"] = "Süd"
    frame["spend"] = frame["spend"] * 1000
    frame.to_csv(data, index=False, encoding="cp1252", sep=";", decimal=",")
    declared = '\ndelimiter = ";"\ndecimal = ","\nthousands = "."\n'
    output = run_train(write_config(tmp_path, data, declared), tmp_path / "store")
    assert "kunden.csv is not UTF-8 text (byte 0xe9 is not UTF-8)" in output
    assert """read as written with encoding = "cp1252" in the training config's""" in output
    assert output.endswith("encoding='cp1252').read())"), output
    assert "delimiter" not in output and "decimal" not in output
    output = run_train(write_config(tmp_path, data, '\ndelimiter = ";"\n'), tmp_path / "store")
    assert """encoding = "cp1252", decimal = ",", thousands = "." in the training""" in output
    assert_store_untouched(tmp_path / "store")


def test_text_that_starts_like_a_compressed_file_is_still_csv(tmp_path: Path) -> None:
    """The first bytes decide only where they are a real header: a CSV whose first column is
    named `BZh...` or `PAR...` is CSV; a real bzip2 file is named."""
    import bz2

    from app.training.data import format_problem

    for header in ("BZh9_score,customer_id\n", "PAR1x,customer_id\n", "PK,customer_id\n"):
        path = tmp_path / "d.csv"
        path.write_text(header + "1,c1\n")
        assert format_problem(path) is None, header
    for text in ("PAR1", "PAR1,a\n1,PAR1"):  # shorter than any Parquet file: start = end
        path.write_text(text)
        assert format_problem(path) is None, text
    path.write_bytes(bz2.compress(b"customer_id,x\nc1,1\n"))
    assert format_problem(path) == (
        "is compressed (bzip2), not CSV text: the data is read from CSV or Parquet files; "
        "decompress or export it first"
    )


def test_a_table_whose_ids_are_under_another_name_is_told_the_key(tmp_path: Path) -> None:
    """A hotel table with its ids in ``guest_id`` and a config without ``id_column`` got
    "missing column(s) 'customer_id'", with no word of the key that names it."""
    data = tmp_path / "guests.csv"
    good_frame().rename(columns={"customer_id": "guest_id"}).to_csv(data, index=False)
    store = tmp_path / "store"
    output = run_train(write_config(tmp_path, data), store)
    assert (
        "guests.csv: missing column(s) 'customer_id'; the file has: 'guest_id', 'spend', "
        "'visits', 'plan' ('customer_id' is the id column: [data] id_column names the file's "
        "column of customer ids, 'customer_id' unless set, e.g. id_column = 'guest_id')"
    ) in output
    assert_store_untouched(store)
    # a missing feature column is not told about the id column
    good_frame().drop(columns=["visits"]).to_csv(data.with_name("c.csv"), index=False)
    output = run_train(write_config(tmp_path, data.with_name("c.csv")), store)
    assert "missing column(s) 'visits'" in output and "id_column" not in output
    # an id named after the first column only where it reads as one: a bank table without
    # ids was told "e.g. id_column = 'age'"
    frame = good_frame().drop(columns=["customer_id"])
    frame.insert(0, "age", range(len(frame)))
    frame.to_csv(data, index=False)
    output = run_train(write_config(tmp_path, data), store)
    assert "id_column = 'age'" not in output
    assert (
        "'customer_id' unless set; no column of this file is named like one: a file without "
        "ids needs a column of them written first, see docs/training.md#customer-ids)"
    ) in output
    # nor a column that only mentions a customer's noun: the hotel-bookings table (no id
    # column) was told "e.g. id_column = 'is_repeated_guest'", its 0/1 flag
    frame.insert(1, "is_repeated_guest", 0)
    frame.insert(2, "account_length", frame["age"])
    frame.to_csv(data, index=False)
    output = run_train(write_config(tmp_path, data), store)
    assert "e.g. id_column" not in output and "no column of this file is named like" in output
    frame.insert(3, "Member Number", frame["age"])
    frame.to_csv(data, index=False)
    assert "e.g. id_column = 'Member Number')" in run_train(write_config(tmp_path, data), store)


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("5", "for 5%, write min_share = 0.05"),
        ("60", "for 60%, write min_share = 0.6 (at most 0.5)"),
    ],
)
def test_a_min_share_written_as_a_percent_says_the_fraction(
    tmp_path: Path, given: str, said: str
) -> None:
    """A new user's min_share = 5 (5%) got pydantic's "Input should be less than 0.5"."""
    data = tmp_path / "customers.csv"
    good_frame().to_csv(data, index=False)
    config = tmp_path / "config.toml"
    config.write_text(f'[data]\npath = "{data}"\n{FEATURES}\n[model]\nmin_share = {given}\n')
    output = run_train(config, tmp_path / "store")
    assert (
        "model.min_share: min_share is a share of the customers (0.05: 5%), not a percent or a "
        f"count: {said}"
    ) in output, output


def test_a_header_below_a_title_row_is_found(tmp_path: Path) -> None:
    """The UCI credit-card default sheet, saved as CSV, has a row of placeholders ('X1',
    'X2' ... 'Y') above its header: every column the config named was "missing", and the
    error listed the placeholders (a new user's pass). It now names the line that holds the
    names and the pandas line that deletes the ones above; a ';' file's line keeps its sep,
    and a file without the names anywhere gets no such hint."""
    data = tmp_path / "sheet.csv"
    frame = good_frame()
    body = frame.to_csv(index=False)
    data.write_text(",X1,X2,Y\n" + body)
    output = run_train(write_config(tmp_path, data), tmp_path / "store")
    assert (
        "sheet.csv: missing column(s) 'customer_id', 'spend', 'visits', 'plan'; the file has: "
        "'Unnamed: 0', 'X1', 'X2', 'Y' (the names are on line 2 of the file, below a title or "
        "a spreadsheet's row of placeholders: delete the line above them first, e.g. "
        "pandas.read_csv(path, skiprows=1, dtype=str, keep_default_na=False).to_csv(path, "
        "index=False))"
    ) in output, output
    data.write_text("Customer report;\nexported 2024-06-01;\n" + body.replace(",", ";"))
    output = run_train(write_config(tmp_path, data, 'delimiter = ";"'), tmp_path / "store")
    assert (
        "(the names are on line 3 of the file, below a title or a spreadsheet's row of "
        "placeholders: delete the 2 lines above them first, e.g. pandas.read_csv(path, "
        "skiprows=2, dtype=str, keep_default_na=False, sep=';').to_csv(path, index=False, "
        "sep=';'))"
    ) in output, output
    renamed = frame.rename(columns={"spend": "s", "visits": "v", "plan": "p"})
    data.write_text(",X1,X2,Y\n" + renamed.to_csv(index=False))
    output = run_train(write_config(tmp_path, data), tmp_path / "store")
    assert "line 2 of the file" not in output, output  # 1 of the 4 names: no header there
    assert_store_untouched(tmp_path / "store")


def test_a_value_named_like_a_missing_column_is_no_header(tmp_path: Path) -> None:
    """A header that holds the config's other columns is the header: a missing column's
    name found as a value on a line below (a plan 'team' where the config names a column
    'team') is no header there, and the hint is not to delete the real header (it was:
    'the names are on line 2 ... delete the line above them')."""
    data = tmp_path / "plans.csv"
    good_frame().to_csv(data, index=False)
    features = FEATURES + '\n[[features]]\nname = "team"\ntype = "categorical"\n'
    output = run_train(write_config(tmp_path, data, features=features), tmp_path / "store")
    assert (
        "plans.csv: missing column(s) 'team'; the file has: 'customer_id', 'spend', 'visits', "
        "'plan'"
    ) in output, output
    assert "of the file, below a title" not in output, output
    assert "skiprows" not in output, output
    assert_store_untouched(tmp_path / "store")


def test_outcomes_written_both_short_and_as_a_table_are_told_the_fix(tmp_path: Path) -> None:
    """A new user wrote the README's short ``outcomes = ["review_score"]`` above an
    ``[outcomes.future]`` table (a log's repurchase): TOML's own error, "Cannot declare
    ('outcomes', 'future') twice", named neither the line nor the fix. It now says both
    declare outcomes and how to write the columns in the table; a table written twice is
    told so too."""
    data = tmp_path / "customers.csv"
    good_frame().to_csv(data, index=False)
    config = tmp_path / "config.toml"
    config.write_text(
        f'outcomes = ["visits"]\n[data]\npath = "{data}"\n{FEATURES}\n[outcomes.future]\n'
        "days = 90\n[model]\nk_min = 3\n"
    )
    output = run_train(config, tmp_path / "store")
    assert output.endswith(
        "Cannot declare ('outcomes', 'future') twice (at line 16, column 17): `outcomes = "
        "[...]` and an [outcomes] or [outcomes.future] table both declare outcomes, which TOML "
        "refuses; write the columns in the table instead: [outcomes] with columns = [...] "
        "(beside its path, positive or [outcomes.future])"
    ), output
    config.write_text(f'[data]\npath = "{data}"\n[model]\nk_min = 3\n[data]\nkind = "table"\n')
    output = run_train(config, tmp_path / "store")
    assert output.endswith(
        ": [data] is declared twice (a table written twice, or a key data = ... beside a "
        "[data] table); write its keys once, in one table"
    ), output
    assert_store_untouched(tmp_path / "store")


def test_an_outcome_written_per_line_of_a_log_is_told_why(tmp_path: Path) -> None:
    """A marketplace log with each order's review score joined into its lines, and
    ``[outcomes] columns = ["review_score"]``: "outcome 'review_score' is not a column of
    orders.csv", of the very file that held it (a new user's pass). The error now says the
    column is per line and what a log's outcomes are."""
    data = tmp_path / "orders.csv"
    rows = [
        (f"c{i % 30}", f"2024-0{1 + i % 6}-0{1 + i % 9}", 10.0 + i, i % 5 + 1) for i in range(90)
    ]
    pd.DataFrame(rows, columns=["customer", "ts", "value", "review_score"]).to_csv(
        data, index=False
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f'[data]\npath = "{data}"\nkind = "transactions"\n[data.transactions]\n'
        'customer = "customer"\ntimestamp = "ts"\namount = "value"\n'
        '[outcomes]\ncolumns = ["review_score"]\n[[features]]\nname = "recency_days"\n'
        '[[features]]\nname = "monetary"\n[model]\nk_min = 2\nk_max = 2\n'
    )
    output = run_train(config, tmp_path / "store")
    assert (
        "error: outcome 'review_score' is written per line of orders.csv, not per customer: "
        "a log's customers are derived from its lines, and its outcomes are [outcomes.future] "
        "(measured from the log after the reference date) or a table of one row per customer "
        "joined on the id ([outcomes] path = ..., id = ...): write each customer's value (its "
        "mean, its last) into such a table first"
    ) in output, output
    assert_store_untouched(tmp_path / "store")
