"""The one bound on numbers the service takes, in a module of its own: the training job's
data checks use it without importing the request validation (``validation`` pulls in
FastAPI and msgspec through ``app.problems``, a third of a second a training never needs).
"""

from __future__ import annotations

import numpy as np

NUMBER_LIMIT = 2**63  # a numeric feature at or beyond it (an integer or not) is out of range
FLOAT_LIMIT = float(NUMBER_LIMIT)  # (exact; a float compares fastest with a float)


def within_limit(values: np.ndarray | float) -> np.ndarray:
    """Where numbers are ones the service takes: finite, of magnitude below ``NUMBER_LIMIT``
    (NaN is not). The one bound of ``/v1/assign``, ``POST /v1/events`` and a log's lines."""
    return np.abs(np.asarray(values, dtype=np.float64)) < FLOAT_LIMIT
