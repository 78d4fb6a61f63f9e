r"""Bayesian A/B quantities for conversion-type outcomes.

With uniform Beta(1, 1) priors a rate with ``s`` successes in ``n`` trials has
posterior Beta(1 + s, 1 + n - s). :func:`prob_b_beats_a` evaluates
:math:`P(p_B > p_A)` exactly with Evan Miller's closed form ("Formulas for
Bayesian A/B Testing", 2015): for :math:`p_A \sim \mathrm{Beta}(a_A, b_A)`,
:math:`p_B \sim \mathrm{Beta}(a_B, b_B)` with integer :math:`a_B`,

.. math::

    P(p_B > p_A) = \sum_{i=0}^{a_B - 1}
        \frac{B(a_A + i,\, b_A + b_B)}{(b_B + i)\, B(1 + i,\, b_B)\, B(a_A, b_A)},

summed in log space (``scipy.special.betaln`` and ``logsumexp``) so large
counts neither overflow nor underflow. :func:`thompson_weights` turns the same
posteriors into traffic weights.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaln, logsumexp

__all__ = ["prob_b_beats_a", "thompson_weights"]

_CHUNK = 1 << 20  # terms per block: bounds memory for very large counts


def _whole(value: int, name: str) -> int:
    if isinstance(value, bool) or int(value) != value or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _miller_log(a_a: int, b_a: int, a_b: int, b_b: int) -> float:
    """``log P(X_B > X_A)`` for Beta(a_a, b_a), Beta(a_b, b_b); ``a_b`` terms."""
    const = betaln(a_a, b_a)
    parts = []
    for start in range(0, a_b, _CHUNK):
        i = np.arange(start, min(a_b, start + _CHUNK), dtype=np.float64)
        terms = betaln(a_a + i, b_a + b_b) - np.log(b_b + i) - betaln(1.0 + i, b_b) - const
        parts.append(float(logsumexp(terms)))
    return float(logsumexp(parts))


def prob_b_beats_a(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> float:
    """Exact posterior probability that B's rate exceeds A's (uniform priors).

    Parameters
    ----------
    successes_a, trials_a : int
        Successes and trials of A (control).
    successes_b, trials_b : int
        Successes and trials of B (treatment).

    Returns
    -------
    float
        :math:`P(p_B > p_A \\mid data)` under independent Beta(1, 1) priors.
        The sum has ``successes_b + 1`` terms; the same probability is also
        a sum over ``trials_a - successes_a + 1`` terms (by ``p -> 1 - p``),
        and the shorter one is used, so the cost is O(min of the two).
        No data gives 0.5.

    Examples
    --------
    >>> round(prob_b_beats_a(100, 1000, 130, 1000), 4)
    0.9822
    >>> prob_b_beats_a(0, 0, 0, 0)
    0.5
    """
    sa = _whole(successes_a, "successes_a")
    na = _whole(trials_a, "trials_a")
    sb = _whole(successes_b, "successes_b")
    nb = _whole(trials_b, "trials_b")
    if sa > na:
        raise ValueError(f"successes_a={sa} exceeds trials_a={na}")
    if sb > nb:
        raise ValueError(f"successes_b={sb} exceeds trials_b={nb}")
    a_a, b_a, a_b, b_b = 1 + sa, 1 + na - sa, 1 + sb, 1 + nb - sb
    if a_b <= b_a:
        log_p = _miller_log(a_a, b_a, a_b, b_b)
    else:
        # p_B > p_A  <=>  (1 - p_A) > (1 - p_B), and 1 - p ~ Beta(b, a): the
        # same formula with b_a terms, still a direct (not 1 - x) evaluation.
        log_p = _miller_log(b_b, a_b, b_a, a_a)
    return float(min(1.0, max(0.0, np.exp(log_p))))


def thompson_weights(
    successes: ArrayLike,
    failures: ArrayLike,
    rng: np.random.Generator,
    floor: float = 0.01,
    draws: int = 10_000,
) -> NDArray[np.float64]:
    """Traffic weights by Thompson sampling, with a minimum share per arm.

    Each arm's weight is the Monte Carlo probability that it has the highest
    rate under Beta(1 + successes, 1 + failures) posteriors, then mixed with
    the uniform floor: ``w = floor + (1 - k * floor) * P(best)``, so every
    weight is at least ``floor`` and they sum to 1. The floor keeps evidence
    flowing to every arm (a starved arm could never recover).

    Parameters
    ----------
    successes, failures : array_like, shape (k,)
        Non-negative counts per arm (fractional counts, e.g. discounted, are
        accepted).
    rng : numpy.random.Generator
        Source of the posterior draws.
    floor : float
        Minimum weight per arm, ``0 <= floor <= 1 / k``.
    draws : int
        Posterior draws used to estimate P(best).

    Returns
    -------
    ndarray, shape (k,)
        Weights summing to 1.

    Examples
    --------
    >>> w = thompson_weights([10, 30], [90, 70], np.random.default_rng(0))
    >>> w.round(3).tolist(), float(w.sum())
    ([0.01, 0.99], 1.0)
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    s = np.asarray(successes, dtype=np.float64)
    f = np.asarray(failures, dtype=np.float64)
    for name, arr in (("successes", s), ("failures", f)):
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {arr.shape}")
        if not np.isfinite(arr).all() or (arr < 0).any():
            raise ValueError(f"{name} must be finite and non-negative, got {arr.tolist()}")
    if s.size != f.size:
        raise ValueError(
            f"successes and failures must have one entry per arm, got {s.size} and {f.size}"
        )
    k = s.size
    floor = float(floor)
    if not 0.0 <= floor <= 1.0 / k:
        raise ValueError(f"floor must lie in [0, 1/{k}] for {k} arms, got {floor!r}")
    if int(draws) != draws or draws < 1:
        raise ValueError(f"draws must be a positive integer, got {draws!r}")
    samples = rng.beta(1.0 + s, 1.0 + f, size=(int(draws), k))
    best = np.bincount(np.argmax(samples, axis=1), minlength=k) / float(draws)
    weights = floor + (1.0 - k * floor) * best
    return np.asarray(weights / weights.sum(), dtype=np.float64)
