"""Drift: training distributions kept per version, live and offline PSI, guarded refresh.

Modules: ``psi`` (binning, PSI, status), ``reference`` (what training keeps), ``live`` (the
per-process counters the assignment path feeds), ``counts`` (their Redis buckets),
``compare`` (a drift report from counts), ``offline`` (a file against a version),
``refresh`` (train, check, promote or keep), ``endpoints`` (``GET /v1/drift``).
"""
