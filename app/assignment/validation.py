"""Strict, fast validation of assignment items against the serving model's feature schema.

Hand-written on purpose: it runs per request on the hot path, and it checks what a generic
schema cannot (the *model's* features: none unknown, none missing, numbers finite and typed).
Every problem is reported as ``{"field": ..., "message": ...}`` with the field's full path.
A batch whose every item is valid is decoded and checked in one pass by a msgspec decoder
built from the model's features (``decode_valid_batch``); any other goes item by item.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import operator
from collections.abc import Iterable, Mapping
from itertools import islice
from math import isfinite
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

import msgspec
import orjson

from app.assignment.bounded_json import read_item
from app.assignment.customer_ids import CUSTOMER_ID_PATTERN as CUSTOMER_ID_PATTERN
from app.assignment.customer_ids import id_refusal, readable_id
from app.assignment.customer_ids import is_unicode as is_unicode
from app.assignment.number_limit import FLOAT_LIMIT as _FLOAT_LIMIT
from app.assignment.number_limit import INT_LIMIT as INT_LIMIT  # re-exported
from app.assignment.number_limit import NUMBER_LIMIT as NUMBER_LIMIT  # re-exported
from app.assignment.number_limit import out_of_range
from app.assignment.unique_names import (
    REPEATED,
    Repeated,
    checked_items,
    lenient_int,
    proven_unique,
    reparse,
    repeated,
)
from app.problems import (
    MAX_ERRORS,
    bounded,
    invalid,
    malformed_json,
    shown,
    too_many,
    unknown_field,
)
from app.query import given_twice
from app.training.markers import FeatureMarkers
from app.training.rules.values import BOOL_TEXT, CSV_NA_VALUES
from app.training.values import text_number
from app.words import loose_name

MAX_CATEGORY_LENGTH = 256
BATCH_MAX_ERRORS = 1_000  # field errors listed across one batch's items, then one line each


_ABSENT = object()
# a boolean as a numeric feature reads it (a file's TRUE/FALSE cell, a JSON true): 1 or 0
_BOOL_NUMBERS = {text: float(flag) for text, flag in BOOL_TEXT.items()}
NOT_UNICODE = "must be valid Unicode (no lone surrogates)"
NOT_NUMERIC = (
    "must be a number, true or false (or null when unknown); text is read as a file's cell "
    "is: a plain number ('39', '-1.5e3', no units or separators), a missing marker ('NA') "
    "or blank"
)
_ITEM_FIELDS = ("customer_id", "features")


class ItemInvalid(Exception):
    """An item's errors: ``found`` (at most a few dozen) and ``omitted`` (counted, never
    built: a million unknown names are one count); ``errors`` is the bounded list to answer."""

    def __init__(self, found: list[dict[str, str]], omitted: int = 0, where: str = "body") -> None:
        super().__init__(found[0]["message"] if found else "invalid")
        self.found, self.omitted = found, omitted
        self.errors = bounded(found, omitted, where)


class ErrorBudget:
    """Bounds the errors of a batch's answer: ``BATCH_MAX_ERRORS`` listed in all, past which
    a bad item is reported with one line (its result stays in place)."""

    def __init__(self, limit: int = BATCH_MAX_ERRORS) -> None:
        self.left = limit

    def take(self, errors: list[dict[str, str]], where: str) -> list[dict[str, str]]:
        if self.left <= 0:
            limit = f"{BATCH_MAX_ERRORS:,}"
            return [{"field": where, "message": f"invalid (not detailed: past {limit} errors)"}]
        self.left -= len(errors)
        return errors


def number_id(value: float) -> str:
    """The error of a customer id sent as a JSON number: ids are text, as written."""
    if not abs(value) < 1e15:  # (a huge number is echoed as nothing: its text is unbounded)
        return "must be a string: customer ids are text, exactly as the file writes them"
    text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    return (
        f'must be a string: customer ids are text, exactly as the file writes them ("{text}", '
        f'with any leading zeros it has, "00{text}" and "{text}" being two customers)'
    )


def unknown_feature(name: Any, known: Iterable[str]) -> str:
    """ "unknown feature", and the model's feature it may be meant for: the same name apart
    from case, spaces and punctuation, or its start (``Annual Income`` for a mall table's
    ``Annual Income (k$)``, ``tenure`` for ``tenure_days``), else a close spelling. Names
    longer than a feature name could be are not compared (an error path stays cheap)."""
    loose = loose_name(name) if isinstance(name, str) and len(name) <= 200 else ""
    if len(loose) < 3:
        return "unknown feature"
    names = {loose_name(k): k for k in known}
    near = names.get(loose) or next(
        (k for other, k in names.items() if other.startswith(loose)), None
    )
    if near is None:
        close = difflib.get_close_matches(loose, list(names), n=1, cutoff=0.8)
        near = names[close[0]] if close else None
    return f"unknown feature; did you mean {shown(near)!r}?" if near else "unknown feature"


def _unlisted(names: Any, known: Any, count: int) -> tuple[list[str], int]:
    """The first ``MAX_ERRORS`` of ``names`` not in ``known``, and how many more there are
    (``count``: how many are not known, so a million are never listed or set apart)."""
    listed = list(islice((n for n in names if n not in known), MAX_ERRORS))
    return listed, count - len(listed)


def parse_json(body: bytes) -> Any:
    if not body:
        raise invalid([{"field": "body", "message": "request body is empty; send JSON"}])
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # NaN, Infinity and 1e400 are not JSON, but a client that sends them should hear which
        # field is wrong: parse leniently (error path only) and let validation name it.
        # A body nested deeper than orjson's limit makes this one recurse until it gives up.
        try:
            return json.loads(body, parse_int=lenient_int)
        except (ValueError, RecursionError):
            pass
        try:  # orjson says "str is not valid UTF-8: surrogates not allowed ... (char 0)"
            body.decode()
        except UnicodeDecodeError as bad:  # where, as the routed endpoints say it
            raise malformed_json(f"not UTF-8 ({bad.reason} at byte {bad.start})") from None
        raise malformed_json(exc) from None


def parse_item(
    obj: Any,
    kinds: dict[str, str],
    max_id: int,
    prefix: str = "",
    partial: bool = False,
    missing: frozenset[str] = frozenset(),
    feature_markers: Mapping[str, FeatureMarkers] | None = None,
) -> tuple[str, dict[str, Any]]:
    """Check one ``{customer_id, features}`` object; raises ``ItemInvalid`` with every error.

    With ``partial`` (the service holds profiles), ``features`` may be left out or hold only
    some features: the caller completes them from the customer's stored profile. A category
    written as one of the ``missing`` markers (``ServingModel.missing_markers``: ``NA``,
    ``null`` …) or of spaces only is missing (None), as training and file tagging read it.
    A boolean value is read as a file's ``TRUE``/``FALSE`` cell is (``BOOL_TEXT``): a
    ``boolean`` feature's (``ServingModel.feature_kinds``) text ``TRUE`` is True, and a
    numeric feature's true or ``TRUE`` is 1.0. A value that is one of its feature's own
    ``feature_markers`` (``ServingModel.feature_markers``: ``pdays`` -1, -1.0 or ``"-1"``) is
    missing too, as the file's cell is read. Other text of a numeric feature is read as
    ``parse_numbers`` reads the cell (``numeric_text``): blank or a ``missing`` marker is
    missing, a plain number (``"39"``) is that number.
    """
    p, where = (f"{prefix}." if prefix else ""), prefix or "body"
    if obj.__class__ is not dict:
        if isinstance(obj, Repeated):  # (a batch's item that repeats a name: parse_batch)
            repeats = [{"field": f"{p}{name}", "message": REPEATED} for name in obj.names]
            raise ItemInvalid(repeats, where=where)
        raise ItemInvalid([{"field": where, "message": "must be an object"}])
    errors: list[dict[str, str]] = []
    omitted = 0
    extra = len(obj) - ("customer_id" in obj) - ("features" in obj)
    if extra:
        names, omitted = _unlisted(obj, _ITEM_FIELDS, extra)
        errors += [
            {"field": f"{p}{shown(key)}", "message": _unknown_message(key, _ITEM_FIELDS)}
            for key in names
        ]
    customer_id = obj.get("customer_id")
    if customer_id is None:
        errors.append({"field": f"{p}customer_id", "message": "field required"})
    elif isinstance(customer_id, int | float) and not isinstance(customer_id, bool):
        # an id column of numbers is still text (an audit sent a hotel guest's 18855 for the
        # file's "018855", and was told only "must be a non-empty string")
        errors.append({"field": f"{p}customer_id", "message": number_id(customer_id)})
    elif not isinstance(customer_id, str) or not customer_id.strip():
        errors.append({"field": f"{p}customer_id", "message": "must be a non-empty string"})
    elif len(customer_id) > max_id:
        errors.append({"field": f"{p}customer_id", "message": f"longer than {max_id} characters"})
    elif not (customer_id.isascii() and customer_id.isprintable()) and not readable_id(customer_id):
        errors.append({"field": f"{p}customer_id", "message": id_refusal(customer_id)})
    features = {} if partial and "features" not in obj else obj.get("features")
    if not isinstance(features, dict):
        problem = "field required" if "features" not in obj else "must be an object"
        errors.append({"field": f"{p}features", "message": problem})
        raise ItemInvalid(errors, omitted, where)
    if partial and not features:  # an id alone (assignment by id): no feature to check
        if errors:
            raise ItemInvalid(errors, omitted, where)
        return customer_id, features  # type: ignore[return-value]
    if feature_markers:
        for name, marked in feature_markers.items():
            if name in features and name in kinds and marked.hit(features[name], kinds[name]):
                features[name] = None  # a sentinel (pdays = -1), as a file's cell is read
    if len(features) != len(kinds) or not features.keys() <= kinds.keys():
        unknown = len(features) - sum(name in features for name in kinds)
        names, more = _unlisted(features, kinds, unknown)
        errors += [
            {"field": f"{p}features.{shown(n)}", "message": unknown_feature(n, kinds)}
            for n in names
        ]
        omitted += more
    for name, kind in kinds.items():
        # accept the common valid values inline (this runs per feature of every customer);
        # anything else goes to _check_value, which decides and words the error
        value = features.get(name, _ABSENT)
        t = type(value)
        if t is float:
            if -_FLOAT_LIMIT < value < _FLOAT_LIMIT or (kind != "numeric" and isfinite(value)):
                continue
        elif value is None:
            continue
        elif kind == "numeric":
            if t is int and -INT_LIMIT < value < INT_LIMIT:  # (its float within 2^63)
                continue
            if t is bool or (t is str and value.strip() in _BOOL_NUMBERS):
                features[name] = _BOOL_NUMBERS[str(value).strip()]  # as a file's cell is read
                continue
            if t is str:  # "NA", " ", "39": as the file's cell is read
                number, bad = numeric_text(value, missing)
                own = feature_markers.get(name) if feature_markers else None
                if bad is None:
                    features[name] = number
                elif bad is NOT_NUMERIC and own is not None and own.junk_is_missing(value):
                    features[name] = None  # errors = "missing": as the file's junk cell
                else:
                    errors.append({"field": f"{p}features.{name}", "message": bad})
                continue
        elif t is str:
            if len(value) <= MAX_CATEGORY_LENGTH and is_unicode(value):
                if missing and (value in missing or value.isspace()):
                    features[name] = None  # as a file's marker or blank cell is read
                elif kind == "boolean" and value in BOOL_TEXT:
                    features[name] = BOOL_TEXT[value]  # as typed_categories reads the cell
                continue
        elif t is int or t is bool:
            continue
        if value is _ABSENT:
            if not partial:
                errors.append({"field": f"{p}features.{name}", "message": "missing feature"})
            continue
        bad = _check_value(value, kind)
        if bad:
            errors.append({"field": f"{p}features.{name}", "message": bad})
    if errors:
        raise ItemInvalid(errors, omitted, where)
    return customer_id, features  # type: ignore[return-value]


def numeric_text(
    text: str, missing: frozenset[str] = frozenset()
) -> tuple[float | None, str | None]:
    """A numeric feature's text (not a boolean's) read as ``parse_numbers`` reads the same
    cell of a file: blank, or one of the ``missing`` markers (trimmed, as a file's
    ``[data] missing_values``), is missing (None); a plain number (``" 39"``, ``"1.5e3"``:
    ``text_number``) is that number, held to the bounds of a JSON one. Returns the value
    and None, or None and the problem (``$1,200`` or ``45%`` is none: the file refuses it
    too)."""
    trimmed = text.strip()
    if not trimmed or trimmed in missing or text in missing or trimmed in CSV_NA_VALUES:
        return None, None  # (pandas' markers: missing in a file's numeric column, always)
    number = text_number(trimmed)
    if number is None:
        return None, NOT_NUMERIC
    return number, _number_problem(number)


OUT_OF_RANGE = (
    "number out of range: read as a 64-bit float, as a file's cell is, its magnitude must be "
    "below 2^63 (an integer below 9223372036854775296)"
)


def _number_problem(value: float) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if out_of_range(value):
        return OUT_OF_RANGE
    return None


def _check_value(value: Any, kind: str) -> str | None:
    if value is None:
        return None
    if kind == "numeric":
        if not isinstance(value, int | float):
            return NOT_NUMERIC
        return _number_problem(value)
    if isinstance(value, str):
        if len(value) > MAX_CATEGORY_LENGTH:
            return f"longer than {MAX_CATEGORY_LENGTH} characters"
        return None if is_unicode(value) else NOT_UNICODE
    if isinstance(value, bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "must be a finite number"
    return "must be a string, number or boolean (or null when unknown)"


# The msgspec types of a wholly valid batch. A number is only taken as numeric within +-2**62:
# JSON integers are converted to float before msgspec checks a bound, so a bound at 2**63 would
# let through an integer just above it that ``parse_item`` refuses; anything outside goes the
# item-by-item way, which decides.
_Float = Annotated[float, msgspec.Meta(ge=-(2.0**62), le=2.0**62)]
_Numeric = _Float | bool | Literal["True", "TRUE", "true", "False", "FALSE", "false"] | None
_MarkedNumeric = _Float | bool | str | None  # its own markers may be text ("-1", "unknown")
_Category = (
    Annotated[str, msgspec.Meta(max_length=MAX_CATEGORY_LENGTH)]
    # orjson reads an integer outside [-2**63, 2**64) as a float (so the item-by-item way sees
    # another category) where msgspec keeps an int: such a number goes that way (found by
    # hypothesis)
    | Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
    | _Float
    | bool
    | None
)


@functools.lru_cache(maxsize=8)
def _batch_decoder(
    kinds: tuple[tuple[str, str], ...], max_id: int, max_batch: int, marked: frozenset[str]
) -> msgspec.json.Decoder[Any]:
    numeric = {name: _MarkedNumeric if name in marked else _Numeric for name, _ in kinds}
    # a struct's fields must be identifiers, and a column's name need not be one (``Umsatz
    # (€)``, ``Anzahl Besuche``: an audit's every batch was a 500): fields f0, f1 ... in the
    # order of ``kinds``, each read under its feature's name
    fields = [f"f{i}" for i in range(len(kinds))]
    features = msgspec.defstruct(
        "Features",
        [
            (field, numeric[name] if kind == "numeric" else _Category)
            for field, (name, kind) in zip(fields, kinds, strict=True)
        ],
        rename=dict(zip(fields, (name for name, _ in kinds), strict=True)),
        forbid_unknown_fields=True,
    )
    item = msgspec.defstruct(
        "Item",
        [
            ("customer_id", Annotated[str, msgspec.Meta(min_length=1, max_length=max_id)]),
            ("features", features),
        ],
        forbid_unknown_fields=True,
    )
    items = Annotated[list[item], msgspec.Meta(min_length=1, max_length=max_batch)]  # type: ignore[valid-type]
    batch = msgspec.defstruct("Batch", [("items", items)], forbid_unknown_fields=True)
    return msgspec.json.Decoder(batch)


def decode_valid_batch(
    body: bytes,
    kinds: dict[str, str],
    max_id: int,
    max_batch: int,
    missing: frozenset[str] = frozenset(),
    feature_markers: Mapping[str, FeatureMarkers] | None = None,
) -> tuple[list[str], list[dict[str, Any]]] | None:
    """The customer ids and features of a batch body whose every item is valid, else None.

    A batch's common case, parsed and checked in one pass (msgspec, typed by the model's
    features) instead of parsing to objects and checking them. It accepts only what
    ``parse_batch`` and ``parse_item`` accept, with the same values (a test proves it on any
    input); on None the caller takes that way, which words every error. Text for a numeric
    feature other than a boolean's or a marker of its own (``"39"``, ``"NA"``) is left to that
    way too (``numeric_text``): a batch of numbers is read with no work per value.
    """
    # (a numeric feature's junk, errors = "missing", is text: left to the item-by-item way)
    markers = {name: m for name, m in (feature_markers or {}).items() if m.texts}
    decoder = _batch_decoder(tuple(kinds.items()), max_id, max_batch, frozenset(markers))
    try:  # msgspec refuses a lone surrogate (as orjson does), and recurses on nesting
        items = decoder.decode(body).items
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None
    ids = [item.customer_id for item in items]
    if not all(map(str.isprintable, ids)) or not all(map(str.strip, ids)):
        return None
    if not all(map(str.isascii, ids)) and not all(map(readable_id, ids)):
        return None  # an id that shows nothing: the item-by-item way reports it
    names = list(kinds)  # the decoder's fields, in order
    rows = [dict(zip(names, msgspec.structs.astuple(item.features), strict=True)) for item in items]
    if not proven_unique(body, 1 + len(items) * (2 + len(kinds)), lambda: _texts(ids, rows)):
        return None  # a name may be repeated: the item-by-item way finds and reports it
    for name, marked in markers.items():  # first, as parse_item reads them
        kind = kinds.get(name)
        if kind is None:
            continue
        sent = list(map(operator.itemgetter(name), rows))
        if kind != "numeric":  # each distinct category checked once (True is not 1 here)
            hits = {
                p for p in set(zip(map(type, sent), sent, strict=True)) if marked.hit(p[1], kind)
            }
            if hits:
                for row in rows:
                    if (row[name].__class__, row[name]) in hits:
                        row[name] = None
            continue
        if str not in set(map(type, sent)) and marked.numbers.isdisjoint(sent):
            continue  # numbers, none a marker: the common case, checked in C
        for row in rows:
            value = row[name]
            if marked.hit(value, kind):
                row[name] = None
            elif value.__class__ is str and value not in _BOOL_NUMBERS:
                return None  # text that is neither a marker nor a boolean: the slow way
    for name, kind in kinds.items():  # booleans and the markers of a missing category,
        # read as parse_item reads them
        values = map(operator.itemgetter(name), rows)
        if kind == "numeric":
            if any(v.__class__ is bool or v.__class__ is str for v in values):
                for row in rows:
                    value = row[name]
                    if value.__class__ is bool or value.__class__ is str:
                        row[name] = _BOOL_NUMBERS[str(value)]
        elif missing or kind == "boolean":
            # checked once per distinct value (a batch holds few categories), then replaced
            column = set(values)
            read = {
                v: None if v in missing or v.isspace() else BOOL_TEXT[v]
                for v in column
                if v.__class__ is str
                and (v in missing or v.isspace() or (kind == "boolean" and v in BOOL_TEXT))
            }
            if read:
                for row in rows:
                    value = row[name]
                    if value.__class__ is str and value in read:
                        row[name] = read[value]
    return ids, rows


def _texts(ids: list[str], rows: list[dict[str, Any]]) -> Iterable[str]:
    """The strings of decoded items, ids first (``user:42``), each kind joined: one count
    in C each."""
    yield "\0".join(ids)
    for row in rows:
        yield "\0".join(row)
        yield "\0".join([v for v in row.values() if v.__class__ is str])


def parse_single(
    body: bytes,
    kinds: dict[str, str],
    max_id: int,
    partial: bool = False,
    missing: frozenset[str] = frozenset(),
    feature_markers: Mapping[str, FeatureMarkers] | None = None,
) -> tuple[str, dict[str, Any]]:
    cut: list[dict[str, str]] = []
    if len(body) > _SMALL_BODY and body.count(b'"') > _most_quotes(len(kinds), max_id):
        # too many strings for one valid item (a million unknown names, say): read it only
        # as far as a valid item could go, so neither the work nor the answer grows with it
        read = read_item(body, len(kinds) + MAX_ERRORS)
        obj, cut = read if read is not None else (parse_json(body), [])
    else:
        obj = parse_json(body)
    try:
        customer_id, features = parse_item(
            obj, kinds, max_id, partial=partial, missing=missing, feature_markers=feature_markers
        )
    except ItemInvalid as exc:  # (a small body's repeated names too: they may be the cause)
        repeats = _repeated(reparse(body)) if not cut and len(body) <= _SMALL_BODY else []
        raise invalid(cut + repeats + exc.found, exc.omitted) from None
    if cut:  # (repeated names, all known)
        raise invalid(cut)
    # a valid item's names: its own and its features' (whose values hold none)
    names = len(obj) + len(features)
    if body.count(b":") != names and not proven_unique(  # (the common case inline: no call)
        body, names, functools.partial(_texts, [customer_id], [features])
    ):
        repeats = _repeated(reparse(body))
        if repeats:
            raise invalid(repeats)
    return customer_id, features


def _repeated(value: Any) -> list[dict[str, str]]:
    return [{"field": path, "message": REPEATED} for path in repeated(value)]


# A body this small is parsed whole; a larger one whose quote characters outnumber those of
# any valid item (two keys, an id, and each feature's name and longest category, all quotes)
# is read with bounds.
_SMALL_BODY = 16 * 1024


def _unknown(names: list[str], valid: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"field": shown(key), "message": _unknown_message(key, valid)} for key in names]


def _unknown_message(key: str, valid: tuple[str, ...]) -> str:
    """An unknown field's message; an option sent in a body says it is a query parameter
    (``{"items": [...], "explain": true}`` is ``?explain=true``, ``"model"`` ``?model=``)."""
    if key in ("explain", "model"):
        return f"unknown field: {key} is a query parameter (?{key}=...)"
    return unknown_field(key, valid)


def _most_quotes(features: int, max_id: int) -> int:
    return 8 + max_id + features * (4 + MAX_ERRORS + MAX_CATEGORY_LENGTH)


def parse_batch(body: bytes, max_batch: int) -> list[Any]:
    """The items of a batch body; an item that repeats a name is a ``Repeated`` (which
    ``parse_item`` refuses, in place), a repeated name of the body itself a 422."""
    payload = parse_json(body)
    if payload.__class__ is dict and payload.get("items").__class__ is list:
        _check_size(len(payload["items"]), max_batch)  # before any recheck of its names
        sent = [item for item in payload["items"] if item.__class__ is dict]
        ids = [i["customer_id"] for i in sent if i.get("customer_id").__class__ is str]
        rows = [i["features"] for i in sent if i.get("features").__class__ is dict]
        least = len(payload) + sum(map(len, sent)) + sum(map(len, rows))  # names, at least
        payload = checked_items(body, payload, "items", least, lambda: _texts(ids, rows))
    if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
        need = [{"field": "items", "message": "body must be an object with an items list"}]
        if isinstance(payload, dict) and "items" not in payload:  # (misspelt: 'item')
            names, omitted = _unlisted(payload, ("items",), len(payload))
            raise invalid([*need, *_unknown(names, ("items",))], omitted)
        raise invalid(need)
    if len(payload) > 1:
        names, omitted = _unlisted(payload, ("items",), len(payload) - 1)
        raise invalid(_unknown(names, ("items",)), omitted)
    items: list[Any] = payload["items"]
    if not items:
        raise invalid([{"field": "items", "message": "must hold at least one item"}])
    return items


def _check_size(count: int, max_batch: int) -> None:
    if count > max_batch:
        raise too_many("items", count, max_batch, "customer")


_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


def parse_flag(query: bytes, name: str, default: bool) -> bool:
    """A boolean query parameter, spelt as FastAPI (pydantic) accepts it; 422 otherwise."""
    values = parse_qs(query.decode("latin-1"), keep_blank_values=True).get(name)
    if not values:
        return default
    if len(values) > 1:  # which one was meant cannot be told (as a repeated model)
        raise invalid([given_twice(name, len(values))])
    value = values[0].strip().lower()
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise invalid([{"field": name, "message": "must be a boolean (true or false)"}])
