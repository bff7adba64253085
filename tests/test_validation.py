"""The column-at-a-time check of a batch agrees with the item-by-item one, on any input."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.assignment.validation import ItemInvalid, bulk_valid, parse_item

KINDS = {"monetary": "numeric", "visits": "numeric", "plan": "categorical", "vip": "categorical"}
VALUES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**66), max_value=2**66)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=300)
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=1)
)
IDS = st.text(max_size=140) | st.integers() | st.none()


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
            parse_item(item, KINDS, max_id=128, prefix=f"items.{i}")
    except ItemInvalid:
        return False
    return True


@settings(max_examples=600, deadline=None)
@given(batch=st.lists(items(), min_size=1, max_size=6))
def test_bulk_check_agrees_with_item_checks(batch: list[Any]) -> None:
    assert bulk_valid(batch, KINDS, max_id=128) == each_valid(batch)


def test_a_valid_batch_passes_in_bulk() -> None:
    batch = [
        {
            "customer_id": f"C{i}",
            "features": {"monetary": 1.5, "visits": i, "plan": "pro", "vip": i % 2 == 0},
        }
        for i in range(100)
    ]
    batch[7]["features"]["monetary"] = None
    assert bulk_valid(batch, KINDS, max_id=128)
    batch[9]["features"]["visits"] = 2**64
    assert not bulk_valid(batch, KINDS, max_id=128)
    assert not bulk_valid([], KINDS, max_id=128)
