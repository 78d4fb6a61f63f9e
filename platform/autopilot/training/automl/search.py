"""What Ray Tune tries next: the family searcher, its warm start, and ASHA that spares defaults.

:class:`FamilySearcher` proposes ``{"family", "params", "protected"}``
configurations: the warm-start points (:func:`warm_points`, from the
champion's configuration) first, then each family's defaults, then a mix of
fresh samples and perturbations of well-ranked families' best configurations.
:func:`protecting_asha` is ASHA that never stops those protected first points.
Importing this module imports ``ray.tune`` (the searcher subclasses Tune's).
"""

from __future__ import annotations

import json
import pickle
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from autopilot.training.automl.trials import FAILED_OBJECTIVE
from autopilot.training.families import (
    default_params,
    get_family,
    perturb_params,
    sample_params,
)

__all__ = ["FamilySearcher", "protecting_asha", "warm_points"]


# The order in which family defaults are tried: strong, cheap families first so a
# short budget still sees them. Kernel SVMs are cheap and strong on small data and
# scale quadratically, so they move to the back on large tables.
_SMALL_DATA_ROWS = 5_000
_DEFAULT_ORDER_SMALL = (
    "logistic",
    "linear",
    "svm",
    "hist_gb",
    "extra_trees",
    "random_forest",
    "knn",
    "mlp",
)
_DEFAULT_ORDER_LARGE = (
    "hist_gb",
    "logistic",
    "linear",
    "random_forest",
    "extra_trees",
    "mlp",
    "knn",
    "svm",
)


def _searcher_base() -> type:
    from ray.tune.search import Searcher

    return Searcher


class FamilySearcher(_searcher_base()):  # type: ignore[misc]
    """Conditional search over families: warm start, defaults, then explore/exploit.

    Parameters
    ----------
    task
        ``"classification"`` or ``"regression"``.
    families
        Families to search.
    rng
        Source of randomness.
    points_to_evaluate
        Configurations ``{"family": ..., "params": {...}}`` tried first (warm start).
    explore
        Probability of sampling a family uniformly instead of by rank.
    n_rows
        Training rows; decides the order in which family defaults are tried.
    """

    def __init__(
        self,
        task: str,
        families: Sequence[str],
        rng: np.random.Generator,
        *,
        points_to_evaluate: Sequence[Mapping[str, Any]] = (),
        explore: float = 0.3,
        metric: str = "objective",
        mode: str = "max",
        n_rows: int = 0,
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        self._task = task
        self._families = tuple(families)
        self._rng = rng
        self._explore = explore
        preferred = _DEFAULT_ORDER_SMALL if n_rows <= _SMALL_DATA_ROWS else _DEFAULT_ORDER_LARGE
        order = [f for f in preferred if f in self._families]
        order += [f for f in self._families if f not in order]
        self._queue: deque[dict[str, Any]] = deque(
            [{"family": p["family"], "params": dict(p["params"])} for p in points_to_evaluate]
            + [{"family": f, "params": default_params(f, task)} for f in order]
        )
        self.n_protected = len(self._queue)
        self._live: dict[str, dict[str, Any]] = {}
        self._done: list[tuple[dict[str, Any], float]] = []
        self._seen: set[str] = set()

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        if metric:
            self._metric = metric
        if mode:
            self._mode = mode
        return True

    @staticmethod
    def _key(cfg: Mapping[str, Any]) -> str:
        return json.dumps(cfg, sort_keys=True, default=str)

    def _best_by_family(self) -> dict[str, tuple[float, dict[str, Any]]]:
        best: dict[str, tuple[float, dict[str, Any]]] = {}
        for cfg, obj in self._done:
            f = cfg["family"]
            if f not in best or obj > best[f][0]:
                best[f] = (obj, cfg["params"])
        return best

    def _sample(self) -> dict[str, Any]:
        best = self._best_by_family()
        ranked = sorted(best, key=lambda f: -best[f][0])
        if not ranked or self._rng.random() < self._explore:
            family = self._families[int(self._rng.integers(len(self._families)))]
        else:
            # Rank weights 1, 1/2, 1/3...: keep refining the leaders, still visit the rest.
            w = np.array([1.0 / (i + 1) for i in range(len(ranked))])
            family = ranked[int(self._rng.choice(len(ranked), p=w / w.sum()))]
        if family in best and self._rng.random() < 0.6:
            params = perturb_params(family, self._task, best[family][1], self._rng)
        else:
            params = sample_params(family, self._task, self._rng)
        return {"family": family, "params": params}

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        cfg = None
        protected = False
        while self._queue:
            cand = self._queue.popleft()
            if self._key(cand) not in self._seen:
                cfg, protected = cand, True
                break
        if cfg is None:
            for _ in range(20):  # small discrete spaces can repeat: avoid duplicates
                cfg = self._sample()
                if self._key(cfg) not in self._seen:
                    break
        assert cfg is not None
        self._seen.add(self._key(cfg))
        self._live[trial_id] = cfg
        return {"family": cfg["family"], "params": dict(cfg["params"]), "protected": protected}

    def save(self, checkpoint_path: str) -> None:
        # Tune checkpoints searcher state with the experiment; the state is small.
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.__dict__, fh)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as fh:
            self.__dict__.update(pickle.load(fh))

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        cfg = self._live.pop(trial_id, None)
        if cfg is None or error or not result or "objective" not in result:
            return
        obj = float(result["objective"])
        if obj > FAILED_OBJECTIVE:
            self._done.append((cfg, obj))


def protecting_asha(**kwargs: Any) -> Any:
    """ASHA that records every trial at its rungs but never stops a protected one.

    The warm-start point and each family's defaults are what a small search
    mostly consists of; stopping them after one fold would only leave the
    leaderboard (and the ensemble) without complete candidates. Their scores
    still set the rung cut-offs that sampled configurations must beat.
    """
    from ray.tune.schedulers import ASHAScheduler, TrialScheduler

    class _ProtectingASHA(ASHAScheduler):
        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
            action = super().on_trial_result(tune_controller, trial, result)
            if (
                action == TrialScheduler.STOP
                and (trial.config or {}).get("protected")
                and result.get(self._time_attr, 0) < self._max_t
            ):
                self._num_stopped -= 1
                return TrialScheduler.CONTINUE
            return action

    return _ProtectingASHA(**kwargs)


def warm_points(
    warm_start: Mapping[str, Any] | None, families: Sequence[str], task: str
) -> list[dict]:
    """The searcher's first points from a champion's ``{"family", "params"}``."""
    if not warm_start:
        return []
    family = warm_start.get("family")
    params = warm_start.get("params") or {}
    if family == "ensemble":
        # An ensemble champion: warm-start each of its members instead.
        return [
            p for member in params.get("members", []) for p in warm_points(member, families, task)
        ]
    if not isinstance(family, str) or family not in families:
        return []
    space = get_family(family, task).space
    # Drop stale keys (a champion from an older search space) rather than fail.
    return [{"family": family, "params": {k: v for k, v in params.items() if k in space}}]
