"""Rows kept as their columns: a file's chunk as the vectorised paths read it.

A recording run assigns a file's rows and stores each row's features as its profile. Both
consumers read the rows column by column (the compiled assigner's ``many``, the profile
encoder's one ``orjson`` call), so making a dict per row, only for them to take it apart
again, cost a million dicts per million rows: more than a tenth of a run's CPU. A
``ColumnRows`` is still a sequence of rows (a dict is made for a row asked for: the rules,
the spool), so every consumer that takes rows takes it, and the vectorised ones read its
``columns`` instead. The columns hold exactly what the dicts held (``Series.tolist``), so
either way gives the same values.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

import pandas as pd


class ColumnRows(Sequence[Mapping[str, Any]]):
    """Rows of equal length ``columns`` (name -> values), each row a dict when asked for.

    >>> rows = ColumnRows({"spend": [1.5, None], "plan": ["pro", "free"]})
    >>> len(rows), rows[1], rows.values(("plan", "spend"))
    (2, {'spend': None, 'plan': 'free'}, [('pro', 1.5), ('free', None)])
    >>> rows.take(range(1, 2)).columns
    {'spend': [None], 'plan': ['free']}
    """

    __slots__ = ("_size", "columns")

    def __init__(self, columns: dict[str, list[Any]]) -> None:
        sizes = {len(values) for values in columns.values()}
        if len(sizes) > 1:
            raise ValueError("columns differ in length")
        self.columns = columns
        self._size = sizes.pop() if sizes else 0

    @classmethod
    def of_frame(cls, frame: pd.DataFrame) -> ColumnRows:
        """The frame's rows: each column's values as ``Series.tolist`` gives them, but for
        pandas' ``NA`` (a nullable column's missing value, as a Parquet file's ``string``
        or ``boolean`` column gives it), which is None: JSON and the rules know no ``NA``
        (a profile holding one failed the whole run)."""
        return cls({str(name): _values(frame[name]) for name in frame.columns})

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> ColumnRows: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | ColumnRows:
        if isinstance(index, slice):
            return ColumnRows({name: values[index] for name, values in self.columns.items()})
        return {name: values[index] for name, values in self.columns.items()}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        names = list(self.columns)
        for values in zip(*self.columns.values(), strict=True):
            yield dict(zip(names, values, strict=True))

    def take(self, indices: Sequence[int]) -> ColumnRows:
        """The rows at ``indices`` (a range is a slice)."""
        if isinstance(indices, range) and indices.step == 1:
            return self[indices.start : indices.stop]
        return ColumnRows(
            {name: [values[i] for i in indices] for name, values in self.columns.items()}
        )

    def values(self, names: Sequence[str]) -> list[tuple[Any, ...]]:
        """Each row's values of ``names``, in that order (what ``itemgetter(*names)`` gives
        of each row's dict, one-tuples for one name)."""
        return list(zip(*(self.columns[name] for name in names), strict=True))


def column_of(rows: Sequence[Mapping[str, Any]], name: str) -> list[Any]:
    """The values of ``name`` in ``rows``, as the vectorised paths read a feature: a
    ``ColumnRows``'s own column, else each row's value (a row without it: None)."""
    if isinstance(rows, ColumnRows):
        found = rows.columns.get(name)
        return [None] * len(rows) if found is None else found
    try:
        return list(map(operator.itemgetter(name), rows))
    except KeyError:
        return [row.get(name) for row in rows]


def take(items: Sequence[Any], indices: Sequence[int]) -> Sequence[Any]:
    """The items at ``indices``: a slice for a range, rows kept as columns kept so."""
    if isinstance(items, ColumnRows):
        return items.take(indices)
    if isinstance(indices, range) and indices.step == 1:
        return list(items[indices.start : indices.stop])
    return [items[i] for i in indices]


def _values(column: pd.Series) -> list[Any]:
    values = column.tolist()
    if getattr(column.dtype, "na_value", None) is pd.NA and column.hasnans:
        return [None if v is pd.NA else v for v in values]
    return values
