"""Result types shared by every statistics function."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DriftResult", "TestResult"]


@dataclass(frozen=True)
class DriftResult:
    """Outcome of one drift check on one feature.

    ``p_value`` is None for distances (PSI, JS, Wasserstein, ...), whose
    ``drifted`` flag compares ``statistic`` with ``threshold``; for tests,
    ``threshold`` is the significance level and ``drifted`` is
    ``p_value < threshold``.
    """

    method: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class TestResult:
    """Outcome of a two-sample or goodness-of-fit test.

    ``effect`` is the test's natural effect size (difference in means, lift,
    Cohen's d, ...; the docstring of each function says which), with a
    confidence interval ``[ci_low, ci_high]`` at level ``1 - alpha`` (NaN
    where none is defined). ``alpha`` is the significance level the function
    was called with; :attr:`rejected` is ``p_value < alpha``.
    """

    __test__ = False  # not a pytest test class

    method: str
    statistic: float
    p_value: float
    effect: float
    ci_low: float
    ci_high: float
    alpha: float = 0.05

    @property
    def rejected(self) -> bool:
        """Whether the null hypothesis is rejected at ``alpha``."""
        return bool(self.p_value < self.alpha)
