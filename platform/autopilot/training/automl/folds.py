"""Cross-validation folds, fixed once in the driver so every configuration sees the same splits."""

from __future__ import annotations

from typing import Any

import numpy as np

from autopilot.errors import DataError

__all__ = ["make_folds"]


def make_folds(
    y: np.ndarray, n_folds: int, task: str, *, time_ordered: bool = False, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train/test row indices for each fold.

    >>> folds = make_folds(np.array([0, 1] * 10), 5, "classification", seed=0)
    >>> len(folds), sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(20))
    (5, True)
    """
    from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit

    n = len(y)
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    if n < 2 * n_folds:
        raise DataError(f"{n} rows are too few for {n_folds}-fold cross-validation")
    if time_ordered:
        splitter: Any = TimeSeriesSplit(n_splits=n_folds)
        split = splitter.split(np.zeros(n))
    elif task == "classification":
        _, counts = np.unique(y, return_counts=True)
        if counts.min() >= n_folds:
            splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
            split = splitter.split(np.zeros(n), y)
        else:  # a class rarer than the fold count cannot be stratified
            splitter = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
            split = splitter.split(np.zeros(n))
    else:
        splitter = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
        split = splitter.split(np.zeros(n))
    return [(np.asarray(tr), np.asarray(te)) for tr, te in split]
