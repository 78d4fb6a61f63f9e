"""Seeded drifting tabular streams with known change points.

A stream is a table ordered in time (column ``t``, seconds since the start,
strictly increasing) with a target ``y`` and six features:

=========  ===========  ==================================================
column     kind         base distribution (covariate regime 0)
=========  ===========  ==================================================
``x1``     numeric      N(0, 1)
``x2``     numeric      N(0, 1)
``x3``     numeric      N(0, 1), 3 % missing
``amount`` numeric      log-normal, median 20 (log-mean 3.0, log-sd 0.5)
``segment`` categorical ``a``/``b``/``c``/``d`` with P = .4/.3/.2/.1, 2 % missing
``promo``  binary       ``0``/``1`` with P(1) = 0.3
=========  ===========  ==================================================

Concepts (the meaning of the features, P(y | x)) use the score

    s(x) = 2.0 x1 - 1.2 x2 + 1.0 tanh(2 x3) + 0.6 log(amount / 20)
           + seg[segment] + 0.8 promo

with segment effects ``seg = {a: 0.8, b: -0.4, c: 0.0, d: -0.8}`` (missing
values count as 0 in the score). Classification: ``y = 1[s(x) + e > 0]``,
``e ~ N(0, 0.9^2)``, which a good model learns to about 87 % accuracy.
Regression: ``y = 10 + 3 s(x) + N(0, 1.5^2)``.

What changes at each kind of change point
-----------------------------------------
covariate (P(x) moves, P(y | x) unchanged)
    ``x2`` mean 0 -> 1.5, ``amount`` log-mean 3.0 -> 3.6 (median 20 -> 37),
    segment mix .4/.3/.2/.1 -> .1/.2/.3/.4. Per-feature drift tests see it;
    a model's accuracy moves only as much as the new region of x is harder.
concept (P(x) unchanged, P(y | x) changes)
    ``x1``'s effect flips sign (2.0 -> -2.0), the segment effects are mirrored
    (a: 0.8 -> -0.8, b: -0.4 -> 0.4, d: -0.8 -> 0.8) and ``promo`` flips
    (0.8 -> -0.8). The inputs look exactly as before, so only labelled
    performance shows it: the old model loses 30-40 accuracy points; a model
    retrained on the new concept is as good as the old one was.
both
    The two changes at the same row.

An *abrupt* change switches at ``row``. A *gradual* one spans ``width`` rows
from ``row``: row ``i`` in the span follows the new regime with probability
``(i - row) / width`` (a linear mixture, as in MOA's sigmoid-free drift).

Scenarios (``n`` = ``n_rows``)
------------------------------
``demo``        quiet until 0.3 n; abrupt covariate shift at 0.3 n; abrupt
                concept drift at 0.6 n; quiet to the end (the demo's story).
``covariate``   one abrupt covariate shift at 0.5 n.
``concept``     one abrupt concept drift at 0.5 n.
``both``        covariate shift and concept drift together at 0.5 n.
``gradual``     gradual covariate shift over [0.3 n, 0.4 n), gradual concept
                drift over [0.6 n, 0.7 n).
``stationary``  no change.
``regression``  the ``demo`` story with the continuous target.

Example
-------
>>> s = drifting_stream("demo", n_rows=1000, seed=0)
>>> [(c.row, c.kind, c.style) for c in s.change_points]
[(300, 'covariate', 'abrupt'), (600, 'concept', 'abrupt')]
>>> s.frame.columns.tolist()
['t', 'x1', 'x2', 'x3', 'amount', 'segment', 'promo', 'y']
>>> len(s.reference())
300
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["SCENARIOS", "ChangePoint", "Stream", "drifting_stream"]

SEGMENTS = ("a", "b", "c", "d")
_SEG_P = (np.array([0.4, 0.3, 0.2, 0.1]), np.array([0.1, 0.2, 0.3, 0.4]))
_X2_MEAN = (0.0, 1.5)
_AMOUNT_LOGMEAN = (3.0, 3.6)
_X1_COEF = (2.0, -2.0)
_SEG_EFFECT = (np.array([0.8, -0.4, 0.0, -0.8]), np.array([-0.8, 0.4, 0.0, 0.8]))
_PROMO_COEF = (0.8, -0.8)
_NOISE_SD = 0.9
_REG_NOISE_SD = 1.5

Kind = Literal["covariate", "concept", "both"]
Style = Literal["abrupt", "gradual"]
Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class ChangePoint:
    """A known change: where it starts, what changes, and how fast."""

    row: int  # first row of the new regime (abrupt) or of the transition (gradual)
    kind: Kind
    style: Style
    width: int  # rows the transition spans; 0 when abrupt
    description: str


@dataclass(frozen=True, eq=False)
class Stream:
    """A generated stream: the rows and the change points behind them."""

    frame: pd.DataFrame
    change_points: tuple[ChangePoint, ...]
    scenario: str
    seed: int
    task: Task = "classification"
    target: str = "y"
    time_column: str = "t"

    def reference(self) -> pd.DataFrame:
        """Rows before the first change (all rows when there is none): the quiet stretch."""
        end = self.change_points[0].row if self.change_points else len(self.frame)
        return self.frame.iloc[:end]

    def segment(self, i: int) -> pd.DataFrame:
        """Rows of the ``i``-th stable stretch (0: before the first change point).

        Gradual transitions belong to neither neighbour.
        """
        bounds = [(0, 0)] + [(c.row, c.row + c.width) for c in self.change_points]
        bounds.append((len(self.frame), len(self.frame)))
        if not 0 <= i < len(bounds) - 1:
            raise ValueError(f"segment {i} out of range 0..{len(bounds) - 2}")
        return self.frame.iloc[bounds[i][1] : bounds[i + 1][0]]


_COV_TEXT = (
    "covariate shift: x2 mean 0 -> 1.5, amount median 20 -> 37, segment mix "
    "a/b/c/d .4/.3/.2/.1 -> .1/.2/.3/.4; P(y|x) unchanged"
)
_CON_TEXT = (
    "concept drift: x1 effect 2.0 -> -2.0, segment effects mirrored, promo effect "
    "0.8 -> -0.8; P(x) unchanged"
)


def _cp(row: int, kind: Kind, style: Style = "abrupt", width: int = 0) -> ChangePoint:
    text = {"covariate": _COV_TEXT, "concept": _CON_TEXT, "both": f"{_COV_TEXT}; {_CON_TEXT}"}
    return ChangePoint(row=row, kind=kind, style=style, width=width, description=text[kind])


def _plan(scenario: str, n: int) -> tuple[tuple[ChangePoint, ...], Task]:
    def f(q: float) -> int:  # the row at a fraction of the stream
        return int(round(q * n))

    plans: dict[str, tuple[ChangePoint, ...]] = {
        "demo": (_cp(f(0.3), "covariate"), _cp(f(0.6), "concept")),
        "covariate": (_cp(f(0.5), "covariate"),),
        "concept": (_cp(f(0.5), "concept"),),
        "both": (_cp(f(0.5), "both"),),
        "gradual": (
            _cp(f(0.3), "covariate", "gradual", f(0.1)),
            _cp(f(0.6), "concept", "gradual", f(0.1)),
        ),
        "stationary": (),
        "regression": (_cp(f(0.3), "covariate"), _cp(f(0.6), "concept")),
    }
    if scenario not in plans:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {sorted(plans)}")
    return plans[scenario], ("regression" if scenario == "regression" else "classification")


SCENARIOS = ("demo", "covariate", "concept", "both", "gradual", "stationary", "regression")


def _regime(changes: tuple[ChangePoint, ...], kinds: set[str], n: int,
            rng: np.random.Generator) -> np.ndarray:
    """Per row, how many changes of the given kinds it has passed (0 or 1 per change)."""
    rows = np.arange(n)
    state = np.zeros(n, dtype=int)
    for c in changes:
        if c.kind not in kinds:
            continue
        if c.style == "abrupt" or c.width == 0:
            passed = rows >= c.row
        else:
            progress = np.clip((rows - c.row) / c.width, 0.0, 1.0)
            passed = rng.random(n) < progress
        state += passed
    return state % 2  # a second change of the same kind returns to the base regime


def drifting_stream(scenario: str = "demo", n_rows: int = 20_000, seed: int = 0) -> Stream:
    """Generate a drifting stream with known change points.

    Parameters
    ----------
    scenario : str
        One of :data:`SCENARIOS` (see the module docstring for each).
    n_rows : int
        Rows to generate (at least 100).
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same stream.

    Returns
    -------
    Stream

    Raises
    ------
    ValueError
        Unknown scenario or ``n_rows < 100``.

    >>> a = drifting_stream("concept", n_rows=500, seed=3)
    >>> b = drifting_stream("concept", n_rows=500, seed=3)
    >>> a.frame.equals(b.frame), round(float(a.frame["y"].mean()), 2)
    (True, 0.51)
    """
    if n_rows < 100:
        raise ValueError(f"n_rows must be at least 100, got {n_rows}")
    changes, task = _plan(scenario, n_rows)
    rng = np.random.default_rng(seed)
    n = n_rows
    cov = _regime(changes, {"covariate", "both"}, n, rng)
    con = _regime(changes, {"concept", "both"}, n, rng)

    x1 = rng.normal(0.0, 1.0, n)
    x2 = rng.normal(np.take(_X2_MEAN, cov), 1.0)
    x3 = rng.normal(0.0, 1.0, n)
    amount = np.exp(rng.normal(np.take(_AMOUNT_LOGMEAN, cov), 0.5))
    u = rng.random(n)
    cum = np.cumsum(np.stack(_SEG_P), axis=1)[cov]  # (n, 4) cumulative segment probabilities
    seg_idx = np.minimum((u[:, None] > cum).sum(axis=1), len(SEGMENTS) - 1)
    promo = (rng.random(n) < 0.3).astype(int)

    seg_effect = np.stack(_SEG_EFFECT)[con, seg_idx]
    score = (
        np.take(_X1_COEF, con) * x1
        - 1.2 * x2
        + 1.0 * np.tanh(2.0 * x3)
        + 0.6 * np.log(amount / 20.0)
        + seg_effect
        + np.take(_PROMO_COEF, con) * promo
    )
    # Missingness is drawn after the score: the label depends on the true value,
    # as when a field fails to arrive downstream of the event it describes.
    x3_missing = rng.random(n) < 0.03
    seg_missing = rng.random(n) < 0.02
    score_noise = rng.normal(0.0, 1.0, n)
    if task == "classification":
        y = (score + _NOISE_SD * score_noise > 0).astype(int)
    else:
        y = np.round(10.0 + 3.0 * score + _REG_NOISE_SD * score_noise, 4)
    t = np.cumsum(rng.exponential(1.0, n))

    segment = np.array(SEGMENTS, dtype=object)[seg_idx]
    segment[seg_missing] = None
    frame = pd.DataFrame(
        {
            "t": np.round(t, 3),
            "x1": x1,
            "x2": x2,
            "x3": np.where(x3_missing, np.nan, x3),
            "amount": np.round(amount, 2),
            "segment": pd.Series(segment, dtype=object),
            "promo": promo,
            "y": y,
        }
    )
    return Stream(frame=frame, change_points=changes, scenario=scenario, seed=seed, task=task)
