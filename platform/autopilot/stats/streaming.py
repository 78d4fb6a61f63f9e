"""Streaming change detectors for error and metric streams.

Three classic detectors, each with ``update(x) -> bool`` (True when a change is
detected at this observation) and ``reset()``. Parameters, defaults and
behaviour follow River 0.26 (``river.drift.PageHinkley``, ``river.drift.ADWIN``,
``river.drift.binary.DDM``), so detection indices agree with River on the same
stream; like River, a detector starts afresh on the update after a detection.

- :class:`PageHinkley`: cumulative deviation from the running mean (Page
  1954); for shifts in the level of a real-valued stream.
- :class:`ADWIN`: adaptive windowing (Bifet & Gavaldà 2007); finds a cut of
  the recent window into two parts whose means differ by more than a
  Hoeffding/Bernstein bound. Any bounded real stream.
- :class:`DDM`: drift detection method (Gama et al. 2004) for a 0/1 error
  stream; flags when the error rate rises beyond its best level plus
  ``drift_threshold`` standard deviations (``warning_detected`` at
  ``warning_threshold``).

Constructors only store parameters (as scikit-learn and River do); the state
lives in attributes ending in ``_``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ADWIN", "DDM", "DriftDetector", "PageHinkley", "StreamChange"]


@dataclass(frozen=True)
class StreamChange:
    """Where ADWIN cut its window when it detected a change.

    Attributes
    ----------
    n : int
        Observations seen when the change was detected.
    rows_after : int
        Observations kept after the cut. ADWIN drops whole buckets, so this is an
        upper bound on the rows since the change, not an estimate of it
        (:func:`autopilot.stats.changepoint.mean_shift_point` locates it).
    mean_before, mean_after : float
        Stream mean over the dropped (older) part and over the kept window.
    """

    n: int
    rows_after: int
    mean_before: float
    mean_after: float


def _finite(x: float) -> float:
    value = float(x)
    if not math.isfinite(value):
        raise ValueError(f"x must be a finite number, got {x!r}")
    return value


class DriftDetector:
    """Base class: ``update(x) -> bool``, ``reset()``, ``drift_detected``."""

    def __init__(self) -> None:
        self.drift_detected_ = False
        self.n_ = 0

    @property
    def drift_detected(self) -> bool:
        """Whether the last :meth:`update` detected a change."""
        return self.drift_detected_

    def reset(self) -> None:
        """Forget everything seen so far (parameters are kept)."""
        self.drift_detected_ = False
        self.n_ = 0

    def update(self, x: float) -> bool:  # pragma: no cover - abstract
        """Feed one observation; return True if a change is detected now."""
        raise NotImplementedError


class PageHinkley(DriftDetector):
    """Page-Hinkley test for a change in the mean of a stream.

    With the running mean ``m_t``, the detector accumulates
    ``U_t = alpha U_{t-1} + (x_t - m_t - delta)`` (for increases) and
    ``L_t = alpha L_{t-1} + (x_t - m_t + delta)`` (for decreases) and flags a
    change when ``U_t - min U > threshold`` or ``max L - L_t > threshold``,
    once ``min_instances`` values have arrived.

    Parameters
    ----------
    min_instances : int
        Observations before a change may be flagged.
    delta : float
        Magnitude of changes tolerated (in the stream's unit).
    threshold : float
        Detection threshold lambda (unit x observations).
    alpha : float
        Forgetting factor on the cumulative sums.
    mode : {"both", "up", "down"}
        Which direction of change to detect.

    Notes
    -----
    ``delta`` and ``threshold`` are in the stream's units, so the defaults
    (River's) suit streams whose standard deviation is well below 1. On a
    stationary N(0, 1) stream they alarm within a few hundred points; on a
    stationary 0/1 error stream at rate 0.3, 9 of 20 runs of 10,000 points
    alarmed. ``delta=0.05`` gave no alarm in those 20 runs and still caught a
    0.20 -> 0.35 error-rate rise after a median of ~490 points (measured with
    this implementation).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(12345)
    >>> stream = np.concatenate([rng.integers(0, 2, 1000), rng.integers(4, 8, 1000)])
    >>> ph = PageHinkley()
    >>> [i for i, x in enumerate(stream) if ph.update(x)]
    [1008]
    """

    def __init__(
        self,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1 - 0.0001,
        mode: str = "both",
    ) -> None:
        if mode not in ("both", "up", "down"):
            raise ValueError(f"mode must be 'both', 'up' or 'down', got {mode!r}")
        if min_instances < 1:
            raise ValueError(f"min_instances must be >= 1, got {min_instances!r}")
        if threshold <= 0:
            raise ValueError(f"threshold must be positive, got {threshold!r}")
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must lie in (0, 1], got {alpha!r}")
        self.min_instances = min_instances
        self.delta = delta
        self.threshold = threshold
        self.alpha = alpha
        self.mode = mode
        super().__init__()
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        super().reset()
        self.mean_ = 0.0
        self.sum_increase_ = 0.0
        self.sum_decrease_ = 0.0
        self.min_increase_ = math.inf
        self.max_decrease_ = -math.inf

    def update(self, x: float) -> bool:
        """Feed one observation; return True if a change is detected now."""
        value = _finite(x)
        if self.drift_detected_:
            self.reset()
        self.n_ += 1
        self.mean_ += (1.0 / self.n_) * (value - self.mean_)
        dev = value - self.mean_
        self.sum_increase_ = self.alpha * self.sum_increase_ + dev - self.delta
        self.sum_decrease_ = self.alpha * self.sum_decrease_ + dev + self.delta
        self.min_increase_ = min(self.min_increase_, self.sum_increase_)
        self.max_decrease_ = max(self.max_decrease_, self.sum_decrease_)
        if self.n_ >= self.min_instances:
            up = self.sum_increase_ - self.min_increase_ > self.threshold
            down = self.max_decrease_ - self.sum_decrease_ > self.threshold
            if self.mode == "up":
                self.drift_detected_ = up
            elif self.mode == "down":
                self.drift_detected_ = down
            else:
                self.drift_detected_ = up or down
        return self.drift_detected_


class _Row:
    """Buckets of one size (2**row) as parallel lists, oldest first."""

    __slots__ = ("totals", "variances")

    def __init__(self) -> None:
        self.totals: list[float] = []
        self.variances: list[float] = []


class ADWIN(DriftDetector):
    """ADaptive WINdowing change detector (Bifet & Gavaldà, 2007).

    The window is kept as an exponential histogram of buckets (at most
    ``max_buckets`` per size 1, 2, 4, ...), so memory is O(log width). Every
    ``clock`` updates each cut of the window into an older part W0 and a newer
    part W1 (both at least ``min_window_length`` long) is checked: a change is
    flagged when ``|mean(W0) - mean(W1)| > eps`` with
    ``eps = sqrt(2 m var ln(2 ln(width) / delta)) + (2/3) m ln(2 ln(width) / delta)``,
    ``m = 1/(n0 - mwl + 1) + 1/(n1 - mwl + 1)`` and ``var`` the window's
    variance; the oldest buckets are then dropped until no cut is significant.
    ``last_change_`` then holds a :class:`StreamChange`: how many observations
    the window kept and the means before and after the cut.

    Parameters
    ----------
    delta : float
        Confidence parameter; smaller means fewer false alarms.
    clock : int
        Check for cuts every ``clock`` updates.
    max_buckets : int
        Buckets of each size kept before two are merged.
    min_window_length : int
        Minimum length of each sub-window of a cut.
    grace_period : int
        Observations before any check.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(12345)
    >>> stream = np.concatenate([rng.integers(0, 2, 1000), rng.integers(4, 8, 1000)])
    >>> adwin = ADWIN()
    >>> [i for i, x in enumerate(stream) if adwin.update(x)]
    [1023]

    Where it cut (read it at the detection: the next update starts afresh):

    >>> adwin = ADWIN()
    >>> first = next(i for i, x in enumerate(stream) if adwin.update(x))
    >>> change = adwin.last_change_
    >>> first, change.rows_after, round(change.mean_before, 2), round(change.mean_after, 2)
    (1023, 32, 0.47, 4.5)
    """

    def __init__(
        self,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
    ) -> None:
        if not 0 < delta < 1:
            raise ValueError(f"delta must lie in (0, 1), got {delta!r}")
        for name, value in (
            ("clock", clock),
            ("max_buckets", max_buckets),
            ("min_window_length", min_window_length),
        ):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if grace_period < 0:
            raise ValueError(f"grace_period must be >= 0, got {grace_period!r}")
        self.delta = delta
        self.clock = int(clock)
        self.max_buckets = int(max_buckets)
        self.min_window_length = int(min_window_length)
        self.grace_period = grace_period
        super().__init__()
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        super().reset()
        self.rows_: list[_Row] = [_Row()]
        self.width_ = 0.0
        self.total_ = 0.0
        self.variance_ = 0.0  # sum of squared deviations over the window
        self.n_detections_ = 0
        self.last_change_: StreamChange | None = None

    @property
    def width(self) -> int:
        """Current window length."""
        return int(self.width_)

    @property
    def estimation(self) -> float:
        """Mean of the current window (0 when empty)."""
        return self.total_ / self.width_ if self.width_ else 0.0

    def update(self, x: float) -> bool:
        """Feed one observation; return True if a change is detected now."""
        value = _finite(x)
        if self.drift_detected_:
            self.reset()
        self.n_ += 1
        self._insert(value)
        self.drift_detected_ = self._detect()
        return self.drift_detected_

    def _insert(self, value: float) -> None:
        row = self.rows_[0]
        row.totals.append(value)
        row.variances.append(0.0)
        self.width_ += 1.0
        if self.width_ > 1.0:
            prev_mean = self.total_ / (self.width_ - 1.0)
            self.variance_ += (self.width_ - 1.0) * (value - prev_mean) ** 2 / self.width_
        self.total_ += value
        self._compress()

    def _compress(self) -> None:
        # Merge the two oldest buckets of a full row into the next row, cascading.
        idx = 0
        while idx < len(self.rows_) and len(self.rows_[idx].totals) == self.max_buckets + 1:
            row = self.rows_[idx]
            if idx + 1 == len(self.rows_):
                self.rows_.append(_Row())
            size = 2.0**idx
            t0, t1 = row.totals[0], row.totals[1]
            mu0, mu1 = t0 / size, t1 / size
            # River's operation order, so results agree bit for bit.
            merged_var = row.variances[0] + row.variances[1]
            merged_var += size * 0.5 * (mu0 - mu1) * (mu0 - mu1)
            nxt = self.rows_[idx + 1]
            nxt.totals.append(t0 + t1)
            nxt.variances.append(merged_var)
            del row.totals[:2], row.variances[:2]
            idx += 1

    def _delete_oldest(self) -> float:
        row = self.rows_[-1]
        size = 2.0 ** (len(self.rows_) - 1)
        total, var = row.totals[0], row.variances[0]
        self.width_ -= size
        self.total_ -= total
        mu, mu_window = total / size, self.total_ / self.width_
        self.variance_ -= var + size * self.width_ * (mu - mu_window) ** 2 / (size + self.width_)
        del row.totals[0], row.variances[0]
        if not row.totals:
            self.rows_.pop()
        return size

    def _cut_is_significant(self, n0: float, n1: float, diff: float) -> bool:
        d_prime = math.log(2.0 * math.log(self.width_) / self.delta)
        m_recip = 1.0 / (n0 - self.min_window_length + 1) + 1.0 / (n1 - self.min_window_length + 1)
        var_window = self.variance_ / self.width_
        eps = math.sqrt(2.0 * m_recip * var_window * d_prime) + 2.0 / 3.0 * d_prime * m_recip
        return abs(diff) > eps

    def _detect(self) -> bool:
        if self.n_ % self.clock != 0 or self.width_ <= self.grace_period:
            return False
        width_before, total_before = self.width_, self.total_
        detected = False
        shrink = True
        while shrink:
            shrink = False
            n0, n1, u0, u1 = 0.0, self.width_, 0.0, self.total_
            # Walk the cuts from the oldest bucket forward (River's order, so the
            # same buckets are dropped); the cut after the newest bucket leaves W1 empty.
            for idx in range(len(self.rows_) - 1, -1, -1):
                row = self.rows_[idx]
                size = 2.0**idx
                stop = False
                last = len(row.totals) - 1
                for k in range(last + 1):
                    n0 += size
                    n1 -= size
                    u0 += row.totals[k]
                    u1 -= row.totals[k]
                    if idx == 0 and k == last:
                        stop = True
                        break
                    if (
                        n1 >= self.min_window_length
                        and n0 >= self.min_window_length
                        and self._cut_is_significant(n0, n1, u0 / n0 - u1 / n1)
                    ):
                        detected = shrink = True
                        if self.width_ > 0:
                            self._delete_oldest()
                            stop = True
                            break
                if stop:
                    break
        if detected:
            self.n_detections_ += 1
            dropped = width_before - self.width_
            self.last_change_ = StreamChange(
                n=self.n_,
                rows_after=int(self.width_),
                mean_before=(total_before - self.total_) / dropped,
                mean_after=self.estimation,
            )
        return detected


class DDM(DriftDetector):
    """Drift Detection Method (Gama et al., 2004) for a 0/1 error stream.

    With the running error rate ``p_i`` and ``s_i = sqrt(p_i (1 - p_i) / i)``,
    the detector remembers ``(p_min, s_min)`` where ``p_i + s_i`` was lowest
    and flags a change when ``p_i + s_i > p_min + drift_threshold * s_min``
    (a warning at ``warning_threshold``), after ``warm_start`` observations.

    Parameters
    ----------
    warm_start : int
        Observations before detection starts.
    warning_threshold : float
        Standard deviations above the minimum for the warning zone.
    drift_threshold : float
        Standard deviations above the minimum for a drift.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(42)
    >>> errors = np.concatenate([rng.random(1000) < 0.1, rng.random(1000) < 0.3])
    >>> ddm = DDM()
    >>> [i for i, x in enumerate(errors) if ddm.update(x)]
    [1243]
    """

    def __init__(
        self,
        warm_start: int = 30,
        warning_threshold: float = 2.0,
        drift_threshold: float = 3.0,
    ) -> None:
        if warm_start < 0:
            raise ValueError(f"warm_start must be >= 0, got {warm_start!r}")
        if not 0 < warning_threshold <= drift_threshold:
            raise ValueError(
                "need 0 < warning_threshold <= drift_threshold, got "
                f"{warning_threshold!r} and {drift_threshold!r}"
            )
        self.warm_start = warm_start
        self.warning_threshold = warning_threshold
        self.drift_threshold = drift_threshold
        super().__init__()
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        super().reset()
        self.warning_detected_ = False
        self.p_ = 0.0
        self.p_min_ = math.inf
        self.s_min_ = math.inf
        self.ps_min_ = math.inf

    @property
    def warning_detected(self) -> bool:
        """Whether the last update put the detector in the warning zone."""
        return self.warning_detected_

    def update(self, x: float) -> bool:
        """Feed one outcome (1/True = error); return True if a drift is detected now."""
        value = _finite(x)
        if value not in (0.0, 1.0):
            raise ValueError(f"DDM expects 0/1 (or bool) errors, got {x!r}")
        if self.drift_detected_:
            self.reset()
        self.n_ += 1
        self.p_ += (1.0 / self.n_) * (value - self.p_)
        s = math.sqrt(self.p_ * (1.0 - self.p_) / self.n_)
        if self.n_ > self.warm_start:
            if self.p_ + s <= self.ps_min_:
                self.p_min_, self.s_min_ = self.p_, s
                self.ps_min_ = self.p_min_ + self.s_min_
            level = self.p_ + s
            self.warning_detected_ = level > self.p_min_ + self.warning_threshold * self.s_min_
            if level > self.p_min_ + self.drift_threshold * self.s_min_:
                self.drift_detected_ = True
                self.warning_detected_ = False
        return self.drift_detected_
