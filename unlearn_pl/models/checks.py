"""Argument checks for models built from Python.

From the command line jsonargparse's restricted types in the signatures (``PositiveInt`` …)
reject bad values while parsing; from Python those annotations are not enforced, so the
constructors check again here.
"""

from __future__ import annotations

import numbers


def check_positive_int(**values: object) -> None:
    """Raise ``ValueError`` naming the first argument that is not an integer ≥ 1."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
