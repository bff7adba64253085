"""How a profile's values are cut into hash fields: the fast cut of ASCII text is the
value-by-value cut (``_chunked_by_value``), on any values."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.history.values import (
    CHUNK_BYTES,
    CHUNK_SEPARATOR,
    VALUE_SEPARATOR,
    _chunked,
    _chunked_by_value,
    _joined,
    encode_profiles,
)

# JSON texts as stored: never empty, never holding a separator; lengths around a chunk's
ascii_values = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=140
)
any_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x1e\x1f"),
    min_size=1,
    max_size=70,
)


@settings(max_examples=500, deadline=None)
@given(st.lists(ascii_values, min_size=1, max_size=14))
def test_the_ascii_cut_is_the_value_by_value_cut(values: list[str]) -> None:
    joined = VALUE_SEPARATOR.join(values)
    assert _chunked(joined) == _chunked_by_value(joined)


@settings(max_examples=300, deadline=None)
@given(st.lists(any_values, min_size=1, max_size=14))
def test_chunks_hold_whole_values_within_the_bytes(values: list[str]) -> None:
    chunks = _chunked(VALUE_SEPARATOR.join(values)).split(CHUNK_SEPARATOR)
    assert VALUE_SEPARATOR.join(chunks).split(VALUE_SEPARATOR) == values
    for chunk in chunks:  # a chunk over the bytes is one long value alone
        assert len(chunk.encode()) <= CHUNK_BYTES or VALUE_SEPARATOR not in chunk


def test_the_cuts_at_the_edges() -> None:
    exact = VALUE_SEPARATOR.join(["x" * 31, "y" * 32])  # 64 bytes: one chunk
    assert _chunked(exact) == exact
    over = exact + VALUE_SEPARATOR + "z"
    assert _chunked(over) == exact + CHUNK_SEPARATOR + "z"
    long = VALUE_SEPARATOR.join(["a", "b" * 100, "c"])
    assert _chunked(long) == CHUNK_SEPARATOR.join(["a", "b" * 100, "c"])


# feature values as profiles hold them: numbers (those JSON has no text for too), booleans,
# unknowns and text that may hold what the batch encoding splits on
feature_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.none(),
    st.sampled_from(["a,b", "],[", "x]", "[y", '"', "Zürich", "", "1,2],[3"]),
    st.text(max_size=8),
)


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 6).flatmap(lambda n: st.lists(st.tuples(*[feature_values] * n), max_size=8)))
def test_a_batch_of_profiles_encoded_at_once_is_each_row_encoded_alone(
    rows: list[tuple[object, ...]],
) -> None:
    """``encode_profiles`` formats a batch with one ``orjson`` call, cut with one replace and
    one split where no value holds a comma (numbers), row by row otherwise; each row encoded
    alone (``_joined``: a value at a time) is the same text."""
    names = tuple(f"f{i}" for i in range(len(rows[0]) if rows else 1))
    profiles = [dict(zip(names, row, strict=True)) for row in rows]
    assert encode_profiles(profiles, names) == [_joined(row) for row in rows]
