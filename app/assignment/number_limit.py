"""The one bound on numbers the service takes, in a module of its own: the training job's
data checks use it without importing the request validation (``validation`` pulls in
FastAPI and msgspec through ``app.problems``, a third of a second a training never needs).

A number is read as a 64-bit float, as a file's cell is (pandas reads ``9223372036854775807``
as an int64 and the model as the float 2^63): an integer is within the bound only if its
float is, which is below ``INT_LIMIT``; from it on (2^63 − 512) it rounds to 2^63.
"""

from __future__ import annotations

import numpy as np

NUMBER_LIMIT = 2**63  # a numeric feature at or beyond it (an integer or not) is out of range
FLOAT_LIMIT = float(NUMBER_LIMIT)  # (exact; a float compares fastest with a float)
# the least integer whose float is 2^63 (half-way between 2^63 - 1024 and 2^63: rounded to
# the even one); a JSON integer of this magnitude or more is out of range, as the cell is
INT_LIMIT = 2**63 - 512


def out_of_range(value: int | float) -> bool:
    """Whether a number (not NaN) is beyond the bound as its 64-bit float is: an integer
    compared exactly (a float of one beyond 1e308 would overflow)."""
    if isinstance(value, int):
        return not -INT_LIMIT < value < INT_LIMIT
    return not -FLOAT_LIMIT < value < FLOAT_LIMIT


def within_limit(values: np.ndarray | float) -> np.ndarray:
    """Where numbers are ones the service takes: finite, of magnitude below ``NUMBER_LIMIT``
    (NaN is not). The one bound of ``/v1/assign``, ``POST /v1/events`` and a log's lines."""
    return np.abs(np.asarray(values, dtype=np.float64)) < FLOAT_LIMIT
