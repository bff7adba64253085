"""The one-pass check of an event agrees with the field-by-field one (``checked``): every
event the latter accepts, the former accepts as the same ``Event``; it never accepts one the
latter rejects."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.events.validation import AmountFields, _valid, checked

NOW = 1_780_000_000_000_000
# the types an event may say, as the log's refund_column may (any case, padded), and others
TYPES = ["order", "refund", "purchase", 3, None, "Return", " REFUNDED ", "ORDER", "sale", "void"]
texts = st.one_of(st.text(max_size=6), st.just(" "), st.just("x" * 129), st.integers(), st.none())
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 10**6),
    st.sampled_from([1e300, 4e9, 2**63, 2**63 - 1, 9.3e18, 2**64]),  # at and beyond the bound
    st.booleans(),
    st.text(max_size=3),
    st.none(),
)
times = st.one_of(
    st.just("2026-05-01T10:00:00Z"),
    st.just("2026-05-01 10:00:00.123456+02:00"),
    st.just("2026-05-01"),
    st.just("2099-01-01T00:00:00Z"),  # in the future
    st.sampled_from(["0001-01-01T00:00:00Z", "1969-12-31T23:59:59.999999Z", "1970-01-01"]),
    st.just("yesterday"),
    st.integers(),
    st.text(max_size=4),
)


@st.composite
def items(draw: st.DrawFn) -> Any:
    item: dict[str, Any] = {}
    for name, values in (
        ("event_id", texts),
        ("customer_id", texts),
        ("type", st.sampled_from(TYPES)),
        ("at", times),
        ("order_id", texts),
        ("amount", numbers),
        ("quantity", numbers),
        ("unit_price", numbers),
        ("colour", st.just("red")),
    ):
        if draw(st.integers(0, 9)) < (
            8 if name in ("event_id", "customer_id", "type", "at") else 4
        ):
            item[name] = draw(values)
    return item


@settings(max_examples=600, deadline=None)
@given(item=items(), product=st.booleans(), refunds=st.sampled_from([None, ["void", "Storno"]]))
def test_the_one_pass_check_agrees_with_the_field_by_field_one(
    item: dict[str, Any], product: bool, refunds: list[str] | None
) -> None:
    amounts = AmountFields(product) if refunds is None else AmountFields.of(product, refunds)
    slow = checked(item, 0, amounts, 128, NOW)
    fast = _valid(item, amounts, 128, NOW)
    if isinstance(slow, list):
        assert fast is None, (item, slow)
    else:
        assert fast == slow, item


def test_an_epoch_number_as_at_is_told_the_iso_time_to_send() -> None:
    """An app's events carried their time as Unix epoch seconds (its event log's
    ``event_time``); ``"at": 1718000000`` was refused as "must be an ISO 8601 time string"
    with no word of what to send instead (a new user's pass). The error now gives the ISO
    time the number is as an epoch time, in the unit its size says; a small number, a
    negative one or a boolean gets the plain message."""
    amounts = AmountFields(False)
    base = {"event_id": "e1", "customer_id": "u1", "type": "order", "amount": 0.99}
    cases = {
        1718000000: "seconds",
        1718000000123: "milliseconds",
        1718000000123456: "microseconds",
    }
    for at, unit in cases.items():
        errors = checked({**base, "at": at}, 0, amounts, 128, NOW)
        assert errors == [
            {
                "field": "events.0.at",
                "message": "must be an ISO 8601 time string, not a number: if "
                f"{at} is a Unix epoch time (in {unit}, by its size), send "
                "'2024-06-10T06:13:20Z'",
            }
        ], errors
    for at in (5, -1718000000, True, 1e300):
        errors = checked({**base, "at": at}, 0, amounts, 128, NOW)
        assert errors == [{"field": "events.0.at", "message": "must be an ISO 8601 time string"}]
