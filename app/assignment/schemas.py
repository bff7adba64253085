"""API schemas of assignment (separate from the internal ``Assignment`` type)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.assignment.validation import CUSTOMER_ID_PATTERN, INT_LIMIT, MAX_CATEGORY_LENGTH
from app.problems import FieldError
from app.training.rules.values import BOOL_TEXT, CSV_NA_VALUES

FeatureValue = float | int | str | bool | None
FeaturesFrom = Literal["request", "profile", "merged"]
# The published document describes the example model's features (examples/customers.toml; a
# test keeps the two equal): what ``features`` must hold depends on the model served, and a
# service serving another one checks its own features the same way (422 naming each).
EXAMPLE_MODEL_KINDS = {
    "recency_days": "numeric",
    "frequency": "numeric",
    "monetary": "numeric",
    "avg_order_value": "numeric",
    "sessions_30d": "numeric",
    "feature_usage": "numeric",
    "support_tickets": "numeric",
    "tenure_days": "numeric",
    "plan": "categorical",
    "channel": "categorical",
    "country": "categorical",
}


def _literal(text: str) -> str:
    """``text`` as a regular expression matching it (escaping only what ECMA-262 and
    Python read alike: ``re.escape`` escapes ``#``, an error in an ECMA pattern)."""
    return "".join(f"\\{c}" if c in ".^$*+?()[]{}|\\/" else c for c in text)


# The text a numeric feature takes (``numeric_text``), trimmed: a plain number, here within
# the bound (at most 18 digits, or 9 with a one-digit exponent: below 2^63, as a request's
# text must be), a boolean's or a missing marker's text (pandas' markers; a model's own
# ``[data] missing_values`` too), or nothing (blank)
_NUMERIC_TEXT = (
    r"^\s*(?:[-+]?(?:[0-9]{1,18}(?:\.[0-9]*)?|(?:[0-9]{1,9}(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:[eE][-+]?[0-9])?)|"
    + "|".join(_literal(t) for t in sorted(BOOL_TEXT.keys() | CSV_NA_VALUES - {""}))
    + r")?\s*$"
)
_VALUE_SCHEMAS: dict[str, dict[str, JsonValue]] = {
    "numeric": {
        "anyOf": [
            {
                "type": ["number", "null"],
                # (2^63 - 512: the bound of a number read as a 64-bit float, exact for
                # integers and floats alike, as ``out_of_range`` checks it)
                "exclusiveMinimum": -INT_LIMIT,
                "exclusiveMaximum": INT_LIMIT,
            },
            {"type": "boolean"},
            {"type": "string", "pattern": _NUMERIC_TEXT},
        ],
        "description": "null when unknown; a boolean is 1 or 0, as is its text as a file's cell "
        "writes it (TRUE, false ...); text is read as the file readers read the cell: a plain "
        'number ("39", "-1.5e3") is that number, a missing marker (NA, null, N/A ...) or '
        'blank text is unknown, other text ("$1,200", "45%") is refused',
    },
    "categorical": {
        "anyOf": [
            {"type": "string", "maxLength": MAX_CATEGORY_LENGTH},
            {"type": ["number", "boolean", "null"]},
        ],
        "description": "a category (a number or boolean is read as its text); null when unknown, "
        "as is blank text or one of the model's [data] missing_values (NA is a category unless "
        "listed there; a version trained before categories were read as written takes "
        "pandas' markers, NA, null, N/A ..., for missing too); where the "
        "categories learnt are booleans (a file's TRUE/FALSE column), the text True, TRUE, true, "
        "False, FALSE or false is the boolean, as the file readers read it",
    },
}
FEATURES_SCHEMA: dict[str, JsonValue] = {
    "type": "object",
    "description": "features of the serving model, by name (here: the example model's); null "
    "means unknown; a feature left out is taken from the customer's stored profile",
    "properties": {name: _VALUE_SCHEMAS[kind] for name, kind in EXAMPLE_MODEL_KINDS.items()},
    "additionalProperties": False,
}
EXAMPLE_FEATURES: dict[str, JsonValue] = {  # every feature of the example model
    "recency_days": 9,
    "frequency": 29,
    "monetary": 3190.0,
    "avg_order_value": 25.0,
    "sessions_30d": 5,
    "feature_usage": 0.29,
    "support_tickets": 1,
    "tenure_days": 1580,
    "plan": "pro",
    "channel": "organic",
    "country": "DE",
}


class AssignRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"customer_id": "C000123", "features": EXAMPLE_FEATURES}]},
    )
    customer_id: str = Field(
        min_length=1,
        max_length=128,
        description="your customer id: readable text (no control characters, line "
        "separators or bidirectional overrides; not blank)",
        json_schema_extra={"pattern": CUSTOMER_ID_PATTERN},
    )
    features: dict[str, FeatureValue] = Field(
        default_factory=dict,
        description="the customer's features; leave out some or all to take them from the "
        "customer's stored profile (what the service last saw: what is sent wins, and the "
        "merged features become the new profile). Omitted for a customer without a stored "
        "profile: 404",
        json_schema_extra=FEATURES_SCHEMA,
    )


class Driver(BaseModel):
    feature: str
    weight: float = Field(description="how much this feature favours the segment (squared sd)")


class Explanation(BaseModel):
    kind: Literal["rule", "cluster"]
    text: str = Field(
        examples=["closest to 'High spend'; vs 'Dormant' mostly on spend, days since last order"],
        description="in words: the features' labels (``drivers`` give their names)",
    )
    rule: str | None = Field(None, description="the matching rule's condition")
    runner_up_id: str | None = Field(None, description="the second-closest segment")
    drivers: list[Driver] = Field(default_factory=list)
    unknown_categories: dict[str, str] | None = Field(
        None,
        description="categorical features whose value training never saw, with the value "
        "(at most 64 characters, control and direction characters escaped): the model counts "
        "it with the feature's infrequent categories where it has them (which may be only its "
        "missing values), else as none of its categories (absent when there is none)",
        examples=[{"city": "Atlantis"}],
    )


class AssignResponse(BaseModel):
    customer_id: str
    segment_id: str = Field(examples=["seg-003"])
    segment_name: str = Field(examples=["Very high spend, high frequency"])
    model_version: str = Field(examples=["20261123-072415-3fa9c1"])
    confidence: float = Field(ge=0, le=1, description="posterior (mixture) or distance margin")
    explanation: Explanation
    features_from: FeaturesFrom = Field(
        description="where the features came from: all sent (request), all from the stored "
        "profile (profile; for a model trained on a transaction log, derived as of now from "
        "the customer's behaviour aggregates), or some of each (merged)"
    )
    features_as_of: datetime | None = Field(
        None,
        description="for a model trained on a transaction log, features derived from the "
        "customer's stored behaviour: the reference time they were derived as of (events "
        "strictly before it count; recency and tenure are measured to it); absent otherwise",
        examples=["2026-12-01T10:00:00.000000Z"],
    )
    previous_segment_id: str | None = Field(None, description="segment before this assignment")
    changed: bool | None = Field(None, description="whether the segment changed")
    recorded: bool = Field(
        False,
        description="whether the assignment was recorded in Redis (false: Redis unreachable, "
        "the record is spooled and written later; or a newer assignment of this customer was "
        "already recorded; previous_segment_id and changed are then null)",
    )


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[AssignRequest | JsonValue] = Field(
        min_length=1,
        max_length=10_000,
        description="each an AssignRequest; a bad item (anything else) is reported in its "
        "result, in place, and fails no other: the body is accepted",
    )


class BatchItem(BaseModel):
    index: int
    status: Literal["ok", "error"]
    customer_id: str | None = None
    segment_id: str | None = None
    segment_name: str | None = None
    confidence: float | None = None
    explanation: Explanation | None = None
    previous_segment_id: str | None = None
    changed: bool | None = None
    recorded: bool = False
    features_from: FeaturesFrom | None = Field(
        None, description="present when some features came from the stored profile"
    )
    features_as_of: datetime | None = Field(
        None, description="present when features were derived from the stored behaviour"
    )
    errors: list[FieldError] | None = None


class BatchResponse(BaseModel):
    model_version: str
    assigned: int
    failed: int
    results: list[BatchItem]
    hint: str | None = Field(
        None,
        description="present where the items' unknown features (those the results list) are "
        "all another served model's: that model, and ?model= to send them with",
    )
