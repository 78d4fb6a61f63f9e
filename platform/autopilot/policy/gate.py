"""The offline gate: a candidate must beat the champion on recent labelled rows.

Both models are scored on the *same* recent labelled rows, so the comparison
is paired: McNemar's test on the rows where exactly one model is right (for
accuracy), or a paired bootstrap of the metric difference (any other metric).
In ``"superior"`` mode (default) the candidate passes only if it is
significantly better; in ``"non_inferior"`` mode it passes if the interval
rules out a loss larger than ``margin`` (the canary then decides on live
traffic).

Example
-------
>>> import numpy as np
>>> from autopilot.config import GateConfig
>>> from autopilot.policy.types import GateEvidence
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 2, 1000)
>>> champ = np.where(rng.random(1000) < 0.75, y, 1 - y)
>>> cand = np.where(rng.random(1000) < 0.90, y, 1 - y)
>>> r = run_gate(GateEvidence(y, champ, cand, "accuracy"), GateConfig(), rng)
>>> r.passed, r.method
(True, 'mcnemar_chi2')
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

from autopilot.config import GateConfig
from autopilot.policy.types import GateEvidence, GateResult
from autopilot.stats.experiments import mcnemar_test, paired_bootstrap

__all__ = ["HIGHER_IS_BETTER", "metric_function", "run_gate"]

Metric = Callable[[NDArray[np.generic], NDArray[np.generic]], float]


def _accuracy(y: NDArray[np.generic], p: NDArray[np.generic]) -> float:
    return float(np.mean(y == p))


def _balanced_accuracy(y: NDArray[np.generic], p: NDArray[np.generic]) -> float:
    classes = np.unique(y)
    return float(np.mean([np.mean(p[y == c] == c) for c in classes]))


def _f1(y: NDArray[np.generic], p: NDArray[np.generic]) -> float:
    # Binary F1 of the positive class (the larger label), sklearn's default.
    pos = np.max(y)
    tp = float(np.sum((p == pos) & (y == pos)))
    fp = float(np.sum((p == pos) & (y != pos)))
    fn = float(np.sum((p != pos) & (y == pos)))
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def _roc_auc(y: NDArray[np.generic], s: NDArray[np.generic]) -> float:
    # Mann-Whitney U over average ranks; a one-class resample carries no information.
    pos = y == np.max(y)
    n1 = int(pos.sum())
    n0 = pos.size - n1
    if n1 == 0 or n0 == 0:
        return 0.5
    ranks = rankdata(np.asarray(s, dtype=float))
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _r2(y: NDArray[np.generic], p: NDArray[np.generic]) -> float:
    yf, pf = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    ss_tot = float(np.sum((yf - yf.mean()) ** 2))
    ss_res = float(np.sum((yf - pf) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0


def _neg_mse(y: NDArray[np.generic], p: NDArray[np.generic]) -> float:
    return -float(np.mean((np.asarray(y, dtype=float) - np.asarray(p, dtype=float)) ** 2))


def _neg_rmse(y: NDArray[np.generic], p: NDArray[np.generic]) -> float:
    return -float(np.sqrt(-_neg_mse(y, p)))


def _neg_mae(y: NDArray[np.generic], p: NDArray[np.generic]) -> float:
    return -float(np.mean(np.abs(np.asarray(y, dtype=float) - np.asarray(p, dtype=float))))


def _neg_log_loss(y: NDArray[np.generic], p: NDArray[np.generic]) -> float:
    # p: probability of the positive class (1-D) or probability rows (2-D, column = label).
    prob = np.asarray(p, dtype=float)
    if prob.ndim == 2:
        prob = prob[np.arange(prob.shape[0]), np.asarray(y, dtype=int)]
    else:
        prob = np.where(np.asarray(y) == 1, prob, 1.0 - prob)
    return float(np.mean(np.log(np.clip(prob, 1e-15, 1.0))))


_METRICS: dict[str, tuple[Metric, bool]] = {  # name -> (score, higher is better as named)
    "accuracy": (_accuracy, True),
    "balanced_accuracy": (_balanced_accuracy, True),
    "f1": (_f1, True),
    "roc_auc": (_roc_auc, True),
    "r2": (_r2, True),
    "mse": (_neg_mse, False),
    "rmse": (_neg_rmse, False),
    "mae": (_neg_mae, False),
    "log_loss": (_neg_log_loss, False),
    "neg_mean_squared_error": (_neg_mse, True),
    "neg_root_mean_squared_error": (_neg_rmse, True),
    "neg_mean_absolute_error": (_neg_mae, True),
    "neg_log_loss": (_neg_log_loss, True),
}

HIGHER_IS_BETTER: dict[str, bool] = {k: v[1] for k, v in _METRICS.items()}


def metric_function(name: str) -> Metric:
    """A ``(y_true, pred) -> float`` scorer for ``name`` where HIGHER IS ALWAYS BETTER.

    Losses (``mse``, ``rmse``, ``mae``, ``log_loss``) come back negated, as the
    paired bootstrap expects. ``roc_auc`` and ``log_loss`` take scores or
    probabilities of the positive class as predictions.

    >>> import numpy as np
    >>> metric_function("rmse")(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
    -1.414...
    """
    try:
        return _METRICS[name][0]
    except KeyError:
        raise ValueError(f"gate metric {name!r} is not one of {sorted(_METRICS)}") from None


def run_gate(
    evidence: GateEvidence,
    cfg: GateConfig,
    rng: np.random.Generator,
) -> GateResult:
    """Compare candidate and champion on the same labelled rows.

    Parameters
    ----------
    evidence : GateEvidence
        ``y_true`` and both models' predictions, shape (n,) each.
    cfg : GateConfig
        ``alpha``, ``min_rows``, ``bootstrap_resamples``, ``mode`` and ``margin``.
    rng : numpy.random.Generator
        For the bootstrap.

    Returns
    -------
    GateResult
        ``effect`` is candidate minus champion on the metric (higher is better;
        losses are negated). With fewer than ``cfg.min_rows`` rows the result is
        ``method="insufficient_data"`` and ``passed=False``.

    Raises
    ------
    ValueError
        Arrays of different lengths, or an unknown metric.
    """
    y = np.asarray(evidence.y_true)
    a = np.asarray(evidence.champion_pred)
    b = np.asarray(evidence.candidate_pred)
    n = int(y.shape[0]) if y.ndim else 0
    if not (a.shape[:1] == b.shape[:1] == y.shape[:1]):
        raise ValueError(
            f"gate arrays must be paired: y_true {y.shape}, champion_pred {a.shape}, "
            f"candidate_pred {b.shape}"
        )
    metric = evidence.metric
    if n < cfg.min_rows:
        nan = float("nan")
        return GateResult(False, "insufficient_data", nan, nan, nan, nan, n,
                          f"{n} labelled rows < gate min_rows {cfg.min_rows}")
    if metric == "accuracy":
        res = mcnemar_test(a == y, b == y, alpha=cfg.alpha)
        # McNemar's p is two-sided; the direction comes from the effect's sign.
        better = res.p_value < cfg.alpha and res.effect > 0
    else:
        res = paired_bootstrap(y, a, b, metric_function(metric), rng,
                               n_resamples=cfg.bootstrap_resamples, alpha=cfg.alpha)
        better = res.p_value < cfg.alpha  # one-sided: "b is not better"
    if cfg.mode == "superior":
        passed = bool(better)
        verdict = "beats" if passed else "does not significantly beat"
        reason = (
            f"candidate {verdict} the champion on {n} recent labelled rows: {metric} "
            f"difference {res.effect:+.4f} (CI {res.ci_low:+.4f}..{res.ci_high:+.4f}), "
            f"{res.method} p={res.p_value:.3g} (alpha {cfg.alpha})"
        )
    else:
        passed = bool(res.ci_low > -cfg.margin)
        verdict = "is non-inferior to" if passed else "may be worse than"
        reason = (
            f"candidate {verdict} the champion on {n} rows: {metric} difference "
            f"{res.effect:+.4f}, CI lower bound {res.ci_low:+.4f} vs margin -{cfg.margin:g}"
        )
    sign = 1.0 if HIGHER_IS_BETTER.get(metric, True) else -1.0  # undo the loss negation
    value = sign * metric_function(metric)(y, b)
    return GateResult(passed, res.method, float(res.p_value), float(res.effect),
                      float(res.ci_low), float(res.ci_high), n, reason, float(value))
