"""Input checks shared by the statistics modules (errors name the argument)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def float_series(x: ArrayLike, name: str) -> NDArray[np.float64]:
    """A 1-D float array with NaN kept in place.

    Raises ``TypeError`` for non-numeric input and ``ValueError`` for a wrong
    shape, an empty or all-NaN series, or infinite values, naming ``name``.
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric, got {type(x).__name__}: {exc}") from exc
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if np.isinf(arr).any():
        raise ValueError(f"{name} contains infinite values")
    if np.isnan(arr).all():
        raise ValueError(f"{name} holds only NaN values")
    return arr
