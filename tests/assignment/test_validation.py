"""The column-at-a-time check of a batch agrees with the item-by-item one, on any input."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.assignment.validation import (
    ItemInvalid,
    decode_valid_batch,
    parse_batch,
    parse_item,
)
from app.problems import Problem
from app.training.markers import FeatureMarkers

KINDS = {
    "monetary": "numeric",
    "visits": "numeric",
    "plan": "categorical",
    "vip": "categorical",
    "sso": "boolean",  # categorical, learnt as booleans (a file's TRUE/FALSE column)
}
BOOLEAN_TEXT = st.sampled_from(["TRUE", "False", "true", " TRUE", "yes", "T"])  # and not
VALUES = (
    st.none()
    | BOOLEAN_TEXT
    | st.booleans()
    | st.integers(min_value=-(2**66), max_value=2**66)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=300)
    | st.sampled_from(["NA", "null", "", "N/A "])  # missing markers, and one that is not
    | st.sampled_from([-1, -1.0, "-1", " -1.0 ", "-1.5", "unknown", "Unknown", "1e0"])
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=1)
)
IDS = st.text(max_size=140) | st.integers() | st.none()
MISSING = frozenset({"NA", "null", ""})  # a model's missing markers (ServingModel.missing_markers)
# features' own markers (ServingModel.feature_markers): a numeric sentinel, a text one, a
# categorical one, a boolean one
MARKERS = {
    "visits": FeatureMarkers.of(["-1", "unknown"], numeric=True),
    "monetary": FeatureMarkers.of(["1"], numeric=True),
    "plan": FeatureMarkers.of(["-1", "unknown"], numeric=False),
    "sso": FeatureMarkers.of(["true"], numeric=False),  # the category's text: TRUE too
}
SENTINELS = st.sampled_from([-1, -1.0, "-1", " -1.0 ", "-1.5", "unknown", "Unknown", "1e0"])


@st.composite
def items(draw: st.DrawFn) -> Any:
    features: Any = {name: draw(VALUES) for name in KINDS}
    if draw(st.integers(0, 9)) == 0:
        features.pop(draw(st.sampled_from(sorted(KINDS))))
    if draw(st.integers(0, 9)) == 0:
        features[draw(st.text(max_size=5))] = 1
    item: Any = {"customer_id": draw(IDS), "features": features}
    choice = draw(st.integers(0, 19))
    if choice == 0:
        item.pop("features")
    elif choice == 1:
        item["extra"] = 1
    elif choice == 2:
        item = draw(VALUES)
    elif choice == 3:
        item["features"] = draw(VALUES)
    return item


def each_valid(batch: list[Any]) -> bool:
    try:
        for i, item in enumerate(batch):
            parse_item(
                item,
                KINDS,
                max_id=128,
                prefix=f"items.{i}",
                missing=MISSING,
                feature_markers=MARKERS,
            )
    except ItemInvalid:
        return False
    return True


def slow_way(body: bytes, max_batch: int) -> tuple[list[str], list[dict[str, Any]]] | None:
    """What parse_batch + parse_item make of a body when every item is valid, else None."""
    try:
        batch = parse_batch(body, max_batch)
    except Problem:
        return None
    if not each_valid(batch):
        return None
    return [item["customer_id"] for item in batch], [item["features"] for item in batch]


def as_used(kind: str, value: Any) -> Any:
    """A value as the assigner uses it: a number as its float, a category as itself."""
    if kind == "numeric" and value is not None:
        return float(value)
    return (type(value), value)


NULLS = dict.fromkeys(KINDS)
NEAR_VALID = {  # mostly valid values, with the edges: 2**62 to 2**64, huge floats, long text
    "numeric": st.none()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([2**62, 2**62 + 1, 2**63, 2**63 + 1, -(2**63) - 1, 1e19, 2.0**62, True])
    | st.booleans()
    | BOOLEAN_TEXT
    | SENTINELS
    | st.sampled_from(["39", " 1.5e3 ", "NA", " ", "", "$1,200", "45%", "1e400", "1_000"]),
    "categorical": st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(min_size=250, max_size=260)
    | st.text(max_size=8)
    | st.sampled_from(["NA", "null", "", "N/A "])
    | SENTINELS,
}
NEAR_VALID["boolean"] = NEAR_VALID["categorical"] | BOOLEAN_TEXT


@st.composite
def near_valid_items(draw: st.DrawFn) -> Any:
    features = {name: draw(NEAR_VALID[kind]) for name, kind in KINDS.items()}
    printable = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cf", "Co", "Cn"))
    ids = st.text(printable, min_size=1, max_size=130) | st.text(max_size=3)
    return {"customer_id": draw(ids), "features": features}


NEAR_VALID_BODIES = st.lists(near_valid_items(), min_size=1, max_size=3).map(
    lambda batch: {"items": batch}
)
BODIES = (
    NEAR_VALID_BODIES
    | st.lists(items(), min_size=0, max_size=6).map(lambda batch: {"items": batch})
    | st.lists(items(), min_size=1, max_size=3).map(lambda batch: {"items": batch, "x": 1})
    | VALUES
)


@settings(max_examples=1_000, deadline=None)
@given(doc=NEAR_VALID_BODIES | BODIES)
@example(doc={"items": [{"customer_id": "0", "features": {**NULLS, "vip": -(2**63) - 1}}]})
@example(doc={"items": [{"customer_id": "0", "features": {**NULLS, "vip": 2**64 + 1}}]})
@example(doc={"items": [{"customer_id": "0", "features": {**NULLS, "vip": 2**64 - 1}}]})
@example(doc={"items": [{"customer_id": "0", "features": {**NULLS, "visits": 2**62 + 1}}]})
def test_the_one_pass_batch_decoder_accepts_only_what_the_checks_accept(doc: Any) -> None:
    body = json.dumps(doc).encode()
    fast = decode_valid_batch(body, KINDS, 128, 5, missing=MISSING, feature_markers=MARKERS)
    if fast is None:
        return  # the caller then takes the slow way, which decides and words the errors
    slow = slow_way(body, max_batch=5)
    assert slow is not None, body
    assert fast[0] == slow[0]
    for got, want in zip(fast[1], slow[1], strict=True):
        assert got.keys() == want.keys()
        for name, kind in KINDS.items():
            assert as_used(kind, got[name]) == as_used(kind, want[name]), (name, body)
            assert got[name] not in MISSING or kind == "numeric", (name, body)


def test_a_batch_of_sentinels_is_read_in_one_pass_as_item_by_item() -> None:
    """Each feature's own markers (-1, -1.0, "-1", a JSON true where 1 is one, a
    category's text) are missing on the one-pass decoder as item by item, without the slow
    way; other values of those features are kept."""
    first = {"monetary": 1, "visits": "-1", "plan": -1, "vip": "x", "sso": "TRUE"}
    second = {"monetary": True, "visits": -1.0, "plan": "unknown", "vip": -1, "sso": False}
    kept = {"monetary": 2.5, "visits": " -1.5", "plan": "-1.0", "vip": "unknown", "sso": None}
    items = [first, second, kept]
    doc = {"items": [{"customer_id": f"c{i}", "features": f} for i, f in enumerate(items)]}
    body = json.dumps(doc).encode()
    assert decode_valid_batch(body, KINDS, 128, 5, MISSING, MARKERS) is None  # " -1.5"
    kept["visits"] = -1.5
    body = json.dumps(doc).encode()
    fast = decode_valid_batch(body, KINDS, 128, 5, MISSING, MARKERS)
    assert fast is not None
    assert fast == slow_way(body, 5)
    missing = dict.fromkeys(KINDS)
    assert fast[1] == [
        {**missing, "vip": "x"},
        {**missing, "vip": -1, "sso": False},
        {"monetary": 2.5, "visits": -1.5, "plan": "-1.0", "vip": "unknown", "sso": None},
    ]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda b: b["items"][3]["features"].pop("plan"), "a missing feature"),
        (lambda b: b["items"][3]["features"].update(extra=1), "an unknown feature"),
        (lambda b: b["items"][3]["features"].update(visits="yes"), "a word as a number"),
        (lambda b: b["items"][3]["features"].update(visits=2**63 + 1), "an int out of range"),
        (lambda b: b["items"][3].update(customer_id="  "), "a blank id"),
        (lambda b: b["items"][3].update(customer_id="a\nb"), "a control character"),
        (lambda b: b["items"][3].update(customer_id="x" * 129), "an over-long id"),
        (lambda b: b["items"][3]["features"].update(plan="p" * 257), "an over-long category"),
        (lambda b: b.update(more=1), "an unknown top-level field"),
        (lambda b: b["items"].extend(b["items"]), "too many items"),
    ],
)
def test_a_valid_batch_is_decoded_in_one_pass(change: Any, why: str) -> None:
    batch = {
        "items": [
            {
                "customer_id": f"C{i}",
                "features": {
                    "monetary": 1.5,
                    "visits": i,
                    "plan": "pro",
                    "vip": i % 2 == 0,
                    "sso": "FALSE" if i % 3 else True,
                },
            }
            for i in range(6)
        ]
    }
    batch["items"][2]["features"]["monetary"] = None
    decoded = decode_valid_batch(json.dumps(batch).encode(), KINDS, max_id=128, max_batch=10)
    assert decoded is not None
    assert decoded[0] == [f"C{i}" for i in range(6)]
    want = {"monetary": 1.5, "visits": 1.0, "plan": "pro", "vip": False, "sso": False}
    assert decoded[1][1] == want
    assert decoded[1][2]["monetary"] is None
    change(batch)
    body = json.dumps(batch).encode()
    assert decode_valid_batch(body, KINDS, max_id=128, max_batch=10) is None, why


# text a numeric cell may hold: plain numbers with or without spaces, exponents, numbers
# written for people, underscores, other scripts' digits, infinities, markers, booleans, words
NUMERIC_TEXT = st.text(st.sampled_from("0123456789.eE+-_ ,$%٣\tNAnaifIty?"), max_size=12) | (
    st.sampled_from(
        [
            *["39", " 39 ", "1.5e3", "-.5", "1.", "$1,200", "45%", "1,234.50", "1_000", "inf"],
            *["-Infinity", "1e400", "9223372036854775807", "9223372036854775806.0", "NA", "n/a"],
            *["NULL", "nan", "NaN", "", "   ", "\t", "?", " ? ", "TRUE", " false ", "yes", "x"],
        ]
    )
)
FILE_MARKERS = ["?"]  # the model's [data] missing_values


def file_reading(cell: str, beside: str) -> tuple[float | None, bool]:
    """A numeric column's ``cell`` (above a cell ``beside``) as training reads it: the CSV
    reader, then ``numeric_column``'s ``parse_numbers``; (value or None, whether junk)."""
    import csv
    import io

    from app.training.data import csv_options
    from app.training.values import parse_numbers

    text = io.StringIO()
    csv.writer(text).writerows([["id", "x"], ["a", cell], ["b", beside]])
    text.seek(0)
    frame = pd.read_csv(text, **csv_options("id", ["id", "x"], FILE_MARKERS))
    parsed = parse_numbers(frame["x"], FILE_MARKERS)
    value = parsed.values.iloc[0]
    return (None if value != value else float(value)), bool(parsed.junk[0])


@settings(max_examples=600, deadline=None)
@given(text=NUMERIC_TEXT, beside=st.sampled_from(["1", "x", ""]))
@example(text="39", beside="1")
@example(text=" 1.5e3", beside="x")
@example(text="$1,200", beside="1")
@example(text=" NA ", beside="1")  # a padded marker: missing, trimmed as numbers are
@example(text="n/a  ", beside="x")
def test_a_numeric_features_text_is_read_as_the_file_reads_the_cell(text: str, beside: str) -> None:
    """A request's text for a numeric feature is what training reads from the same cell of
    a CSV: missing (a marker, blank), a number (plain, trimmed, with an exponent), or an
    error where the file's is one (text that is no number, a number written for people) or
    where the number is past the bounds of a JSON one (not finite, 2^63 or more)."""
    from app.serving.model import CSV_NA_VALUES

    missing = CSV_NA_VALUES | frozenset(FILE_MARKERS)
    want, junk = file_reading(text, beside)
    refused = junk or (want is not None and not abs(want) < 2.0**63)
    item = {"customer_id": "c", "features": {**NULLS, "monetary": text}}
    got: Any = None
    errors: list[dict[str, str]] = []
    try:
        got = parse_item(item, KINDS, 128, missing=missing)[1]["monetary"]
    except ItemInvalid as exc:
        errors = exc.found
    assert bool(errors) == refused, (text, want, junk, errors)
    if errors:
        assert [e["field"] for e in errors] == ["features.monetary"]
    else:
        assert got == want, (text, got, want)


def test_numeric_text_is_read_item_by_item_and_the_one_pass_decoder_leaves_it_there() -> None:
    """A batch whose numbers are text ("39", "NA", " ") is read item by item as the file's
    cells are; the one-pass decoder declines it (and reads the batch of the same numbers
    written as numbers, as the item-by-item way does)."""
    texts = [("39", "NA"), (" 1.5e3 ", "  "), ("-2", "?"), ("FALSE", "")]
    numbers = [(39.0, None), (1500.0, None), (-2.0, None), (0.0, None)]
    missing = MISSING | {"?"}

    def batch(values: list[tuple[Any, Any]]) -> bytes:
        items = [
            {"customer_id": f"c{i}", "features": {**NULLS, "monetary": m, "visits": v}}
            for i, (m, v) in enumerate(values)
        ]
        return json.dumps({"items": items}).encode()

    body = batch(texts)
    assert decode_valid_batch(body, KINDS, 128, 5, missing, MARKERS) is None
    read = [
        parse_item(item, KINDS, 128, missing=missing, feature_markers=MARKERS)[1]
        for item in parse_batch(body, 5)
    ]
    assert [(r["monetary"], r["visits"]) for r in read] == numbers
    fast = decode_valid_batch(batch(numbers), KINDS, 128, 5, missing, MARKERS)
    assert fast is not None
    assert [(r["monetary"], r["visits"]) for r in fast[1]] == numbers
