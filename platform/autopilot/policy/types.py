"""Data types of the policy: what the controller gathers, holds, and is told to do.

The controller fills an :class:`Evidence` each tick for one model, keeps one
:class:`ModelState` per model, calls :func:`autopilot.policy.decide` and applies
the returned :class:`Decision`; :func:`autopilot.policy.next_state` then gives
the state to persist once the decision has been applied. Everything here is a
frozen dataclass of plain values (``to_dict`` / ``from_dict`` for the journal
and for recovery after a restart).

Phases of a model (``ModelState.phase``)
----------------------------------------
``steady``      champion serves all traffic; triggers are evaluated.
``training``    a retrain is running (launched by a ``retrain`` decision).
``validating``  a candidate is registered and waits for the offline gate.
``canary``      the challenger receives live (split/bandit) or mirrored (shadow) traffic.
``paused``      a person paused the autopilot; only manual commands act.

Actions (``Decision.action``)
-----------------------------
``none``               nothing to do.
``hold``               something is pending (a guard deferred a retrain, the gate or
                       canary waits for data); keep the current routing.
``retrain``            launch a training run; ``trigger`` names why.
``abort``              the running training failed; back to steady, routing unchanged.
``validate``           training produced ``version``; gather gate evidence for it.
``archive_candidate``  drop the challenger ``version`` (gate failed, or the canary ended
                       with no difference): champion keeps all traffic; tag it archived.
                       With ``rebaseline`` (a drift-triggered candidate failed the gate)
                       also re-fit the champion's reference profile on the recent window.
``accept_drift``       the drift trigger fired but labelled rows show the champion holds up
                       (``triggers.drift.confirm_with_labels``): no retrain; ``rebaseline``
                       re-fits its reference profile on the recent window.
``start_canary``       the gate passed: route ``weights`` (and ``shadow``) to start the canary.
``ramp``               move the challenger to the next canary step: apply ``weights``.
``promote``            challenger ``version`` becomes champion (registry alias moves);
                       apply ``weights``.
``rollback``           take traffic away from ``version`` using ``strategy`` (see
                       :data:`ROLLBACK_STRATEGIES`); apply ``weights``; alert. ``target``
                       serves instead; with ``fallback`` it becomes the champion. A
                       ``gradual`` rollback whose weights still give ``version`` a share
                       continues next tick; once its share is 0 the experiment is over.
``halt``               sample-ratio mismatch: the experiment is broken, not judged. Send all
                       traffic to the champion, keep the challenger unjudged, alert.
``set_weights``        apply ``weights`` (bandit allocation or a manual override).
``pause`` / ``resume`` manual: stop / restart automatic decisions (while paused the
                       routing table's paused flag sends all traffic to the champion;
                       ``resume`` carries the weights to restore).

Rollback strategies (``Decision.strategy``)
-------------------------------------------
``instant``   guardrail breach or erroring challenger: all traffic to the champion now.
``fallback``  the champion itself fails: route to ``fallback`` (previous champion).
``gradual``   the challenger is significantly worse but healthy: shift traffic back
              step by step (``weights`` is the next, smaller share).
``isolate``   a version's circuit breaker is open: drop it from the routing table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args

import numpy as np

__all__ = [
    "ACTIONS",
    "PHASES",
    "ROLLBACK_STRATEGIES",
    "Action",
    "ArmStats",
    "BreakerState",
    "CommandKind",
    "Decision",
    "Evidence",
    "GateEvidence",
    "GateResult",
    "ManualCommand",
    "ModelState",
    "Phase",
    "StreamAlarm",
    "RollbackStrategy",
    "TrainingStatus",
    "TriggerResult",
]

Phase = Literal["steady", "training", "validating", "canary", "paused"]
Action = Literal[
    "none",
    "hold",
    "retrain",
    "abort",
    "validate",
    "archive_candidate",
    "accept_drift",
    "start_canary",
    "ramp",
    "promote",
    "rollback",
    "halt",
    "set_weights",
    "pause",
    "resume",
]
RollbackStrategy = Literal["instant", "fallback", "gradual", "isolate"]
BreakerState = Literal["closed", "open", "half_open"]
CommandKind = Literal["pause", "resume", "retrain", "promote", "rollback", "set_weights"]
TrainingStatus = Literal["running", "succeeded", "failed"]

PHASES: tuple[str, ...] = get_args(Phase)
ACTIONS: tuple[str, ...] = get_args(Action)
ROLLBACK_STRATEGIES: tuple[str, ...] = get_args(RollbackStrategy)


# ---------------------------------------------------------------------- evidence


@dataclass(frozen=True)
class ArmStats:
    """Live (or mirrored, in shadow mode) traffic of one version.

    During a canary, counts are cumulative since ``ModelState.canary_started_at``.

    Attributes
    ----------
    version : str
        Registry version of the arm.
    requests : int
        Requests answered by this arm (routed, or mirrored in shadow mode).
    successes : float
        Sum of the per-row online score over labelled rows; for classifiers the
        number of correct predictions (score 1/0). Higher is better.
    labelled : int
        Rows of this arm whose label has arrived.
    errors : int
        Requests this arm failed to answer.
    p95_latency_ms : float
        95th percentile of this arm's latency (NaN if unknown).
    score_sumsq : float | None
        Sum of squared per-row scores, for continuous online metrics (regression);
        None for 0/1 scores, where ``successes`` is enough.
    """

    version: str
    requests: int = 0
    successes: float = 0.0
    labelled: int = 0
    errors: int = 0
    p95_latency_ms: float = float("nan")
    score_sumsq: float | None = None

    @property
    def error_rate(self) -> float:
        """Errors per request (0 when there were no requests)."""
        return self.errors / self.requests if self.requests else 0.0

    @property
    def success_rate(self) -> float:
        """Mean online score over labelled rows (NaN when none are labelled)."""
        return self.successes / self.labelled if self.labelled else float("nan")


@dataclass(frozen=True)
class StreamAlarm:
    """A streaming detector found a change in the champion's labelled error stream.

    The detector (ADWIN) says *that* the stream changed; the change is then
    located by least squares (:func:`autopilot.stats.mean_shift_point`).

    Attributes
    ----------
    detector : str
        Detector that fired ("adwin").
    at : float
        Time of the first labelled row after the located change (the clock of
        :attr:`Evidence.now`).
    rows_since : int
        Labelled rows at or after ``at`` (every version's, as a retrain would see them).
    metric_before, metric_after : float
        The online metric before and after the located change (accuracy for
        classifiers; minus the mean absolute error for regressors: higher is better).
    p_value : float | None
        For a change found by testing a finished window (detector "cusum"): the
        test's p-value; None for a streaming detector, whose alarm is its verdict.
    """

    detector: str
    at: float
    rows_since: int
    metric_before: float
    metric_after: float
    p_value: float | None = None

    @property
    def relative_drop(self) -> float:
        """How much worse the metric got, relative to before (positive is worse)."""
        return (self.metric_before - self.metric_after) / max(abs(self.metric_before), 1e-12)


@dataclass(frozen=True)
class GateEvidence:
    """Recent labelled rows scored by champion and candidate, for the offline gate.

    Attributes
    ----------
    y_true : ndarray of shape (n,)
    champion_pred, candidate_pred : ndarray of shape (n,)
        Predictions (class labels for accuracy, scores or values otherwise).
    metric : str
        ``"accuracy"`` selects McNemar's test; anything else a paired bootstrap of
        the metric named here (see :func:`autopilot.policy.gate.metric_function`).
    """

    y_true: np.ndarray
    champion_pred: np.ndarray
    candidate_pred: np.ndarray
    metric: str = "accuracy"


@dataclass(frozen=True)
class ManualCommand:
    """A person's override from the admin route or the CLI."""

    kind: CommandKind
    version: str | None = None  # promote / rollback target
    weights: Mapping[str, float] | None = None  # set_weights
    reason: str = "manual"


@dataclass(frozen=True)
class Evidence:
    """Everything the controller gathered this tick for one model.

    Missing measurements are None (or empty); the policy then does not act on them.

    Attributes
    ----------
    model : str
        Name of the managed model.
    now : float
        Unix time of this tick (seconds).
    drift_severity : str | None
        Overall severity from the drift report (``autopilot.stats.report.SEVERITIES``).
    drift_share : float
        Share of features that drifted.
    drift_rows : int
        Rows in the window the drift report looked at.
    drift_features : Mapping[str, float]
        Per-feature drift score (the report's statistic), for the journal.
    metric_name : str
        Name of the labelled performance metric.
    metric_value : float | None
        Champion's metric on recently labelled rows.
    metric_labels : int
        Labelled rows behind ``metric_value``.
    baseline_value : float | None
        Champion's validation metric, saved with the version at training time.
    higher_is_better : bool
        Direction of the metric.
    estimated_value : float | None
        Label-free estimate of the metric (CBPE-like) while labels are missing.
    error_change : StreamAlarm | None
        A change the streaming detector found in the champion's labelled error
        stream since the controller last acted on one.
    window_changes : tuple of StreamAlarm
        The newest labelled rows tested for a change in the online score users
        got, whichever version answered (OLS-CUSUM, detector "cusum"), and split
        where it changed most (least squares): the monitor's window first, then
        the rows a retrain would learn from.
    rows_since_retry : int | None
        Labelled rows at or after :attr:`ModelState.retry_since` (None when no
        retry is pending).
    new_labels : int
        Labelled rows that arrived since the champion's training data was cut.
    labels_per_day : float | None
        Recent labelled-data rate, for the adaptive schedule.
    model_age_s : float | None
        Seconds since the champion was trained.
    requests_per_s : float | None
        Recent traffic rate (informational; the low-usage window uses the clock).
    arms : Mapping[str, ArmStats]
        Stats by version (champion, and challenger if any): cumulative since the
        canary began during a canary; over a recent window otherwise (the
        champion's health for the fallback rule).
    breakers : Mapping[str, str]
        Circuit breaker state by version: "closed", "open" or "half_open".
    command : ManualCommand | None
        A pending manual command, applied before anything automatic.
    running_trainings : int
        Trainings running now across every model (for the concurrency guard).
    training_status : str | None
        Status of this model's running training: "running", "succeeded", "failed".
    candidate : str | None
        Version registered by the training that just succeeded.
    training_error : str | None
        Why the training failed.
    gate : GateEvidence | None
        Offline-gate data for the candidate (phase "validating").
    """

    model: str
    now: float
    drift_severity: str | None = None
    drift_share: float = 0.0
    drift_rows: int = 0
    drift_features: Mapping[str, float] = field(default_factory=dict)
    metric_name: str = "accuracy"
    metric_value: float | None = None
    metric_labels: int = 0
    baseline_value: float | None = None
    higher_is_better: bool = True
    estimated_value: float | None = None
    error_change: StreamAlarm | None = None
    window_changes: tuple[StreamAlarm, ...] = ()
    rows_since_retry: int | None = None
    new_labels: int = 0
    labels_per_day: float | None = None
    model_age_s: float | None = None
    requests_per_s: float | None = None
    arms: Mapping[str, ArmStats] = field(default_factory=dict)
    breakers: Mapping[str, str] = field(default_factory=dict)
    command: ManualCommand | None = None
    running_trainings: int = 0
    training_status: str | None = None
    candidate: str | None = None
    training_error: str | None = None
    gate: GateEvidence | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-value summary for the journal (gate arrays reduced to their size)."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["drift_features"] = dict(self.drift_features)
        out["breakers"] = dict(self.breakers)
        out["arms"] = {k: asdict(v) for k, v in self.arms.items()}
        out["command"] = None if self.command is None else {
            "kind": self.command.kind, "version": self.command.version,
            "weights": None if self.command.weights is None else dict(self.command.weights),
            "reason": self.command.reason,
        }
        out["error_change"] = None if self.error_change is None else asdict(self.error_change)
        out["window_changes"] = [asdict(c) for c in self.window_changes]
        out["gate"] = None if self.gate is None else {
            "metric": self.gate.metric, "rows": int(len(self.gate.y_true))}
        return out


# ------------------------------------------------------------------------- state


@dataclass(frozen=True)
class ModelState:
    """What the controller remembers about one model between ticks.

    Attributes
    ----------
    model : str
    phase : str
        One of :data:`PHASES`.
    champion : str | None
        Version serving production traffic.
    challenger : str | None
        Candidate under validation or canary.
    fallback : str | None
        Version to fall back to if the champion fails (the previous champion).
    mode : str
        Canary mode: "split", "shadow" or "bandit".
    step : int
        Index into ``CanaryConfig.steps`` (split mode).
    canary_started_at, step_started_at : float | None
        Unix times the canary and its current step began.
    step_requests : Mapping[str, int]
        Cumulative requests per arm when the current step began (SRM and the
        per-step sample count use the counts since then).
    min_p : float
        Running always-valid p-value of the sequential test (its running minimum).
    training_started_at : float | None
    last_training_at : float | None
        When the last training started.
    training_history : tuple[float, ...]
        Start times of recent trainings (per-model history, newest last).
    trigger : str | None
        Trigger that started the current cycle (lineage).
    weights : Mapping[str, float]
        Current routing weights by version.
    shadow : tuple[str, ...]
        Versions receiving mirrored traffic.
    isolated : tuple[str, ...]
        Versions removed from routing because their breaker opened.
    rolling_back : bool
        A gradual rollback is shifting traffic back to the champion step by step.
    resume_phase : str | None
        Phase to return to on ``resume``.
    validating_since : float | None
        When the candidate entered the gate.
    train_since : float | None
        Start of the current cycle's training window when it was cut at a
        located change (:attr:`Decision.train_since`).
    train_rows : int
        Labelled rows after that change when the training began (0 when not cut).
    retry_since : float | None
        A located change whose candidate, trained on the few rows after it, lost:
        the next performance-triggered retrain learns from the rows after it once
        ``triggers.performance.retry_rows_after_change`` of them exist.
    """

    model: str
    phase: Phase = "steady"
    champion: str | None = None
    challenger: str | None = None
    fallback: str | None = None
    mode: str = "split"
    step: int = 0
    canary_started_at: float | None = None
    step_started_at: float | None = None
    step_requests: Mapping[str, int] = field(default_factory=dict)
    min_p: float = 1.0
    training_started_at: float | None = None
    last_training_at: float | None = None
    training_history: tuple[float, ...] = ()
    trigger: str | None = None
    weights: Mapping[str, float] = field(default_factory=dict)
    shadow: tuple[str, ...] = ()
    isolated: tuple[str, ...] = ()
    rolling_back: bool = False
    resume_phase: Phase | None = None
    validating_since: float | None = None
    train_since: float | None = None
    train_rows: int = 0
    retry_since: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain values (JSON-able) for persistence."""
        out = asdict(self)
        out["step_requests"] = dict(self.step_requests)
        out["weights"] = dict(self.weights)
        out["training_history"] = list(self.training_history)
        out["shadow"] = list(self.shadow)
        out["isolated"] = list(self.isolated)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelState:
        """Inverse of :meth:`to_dict`; unknown keys raise ``TypeError``."""
        raw = dict(data)
        for key in ("training_history", "shadow", "isolated"):
            if key in raw:
                raw[key] = tuple(raw[key])
        if raw.get("phase", "steady") not in PHASES:
            raise ValueError(f"phase {raw['phase']!r} is not one of {PHASES}")
        return cls(**raw)


# ---------------------------------------------------------------------- results


@dataclass(frozen=True)
class TriggerResult:
    """Whether one retraining trigger fired, and why."""

    name: str
    fired: bool
    reason: str
    numbers: Mapping[str, float] = field(default_factory=dict)
    urgent: bool = False  # drift / performance / manual: not deferred to the low-usage window


@dataclass(frozen=True)
class GateResult:
    """Outcome of the offline gate: does the candidate beat the champion?

    Attributes
    ----------
    passed : bool
    method : str
        "mcnemar" or "paired_bootstrap" (or "insufficient_data").
    p_value : float
    effect : float
        Candidate minus champion on the metric (positive is better when higher is better).
    ci_low, ci_high : float
    n : int
        Rows compared.
    reason : str
    candidate_value : float
        The candidate's metric on those rows, as the metric is named (NaN without
        enough rows): an estimate of its live level from rows it never saw.
    """

    passed: bool
    method: str
    p_value: float
    effect: float
    ci_low: float
    ci_high: float
    n: int
    reason: str
    candidate_value: float = float("nan")


@dataclass(frozen=True)
class Decision:
    """What the controller should do now for one model, and why.

    Attributes
    ----------
    action : str
        One of :data:`ACTIONS` (documented at the top of this module).
    reasons : tuple[str, ...]
        Human-readable reasons, most important first.
    numbers : Mapping[str, float]
        The numbers behind the reasons (p-values, counts, rates) for the journal.
    weights : Mapping[str, float] | None
        Routing weights to apply, or None to leave routing alone.
    shadow : tuple[str, ...]
        Versions to mirror traffic to (shadow mode).
    version : str | None
        Version the action concerns (challenger to validate/promote/archive/roll back;
        for ``rollback`` the version losing traffic).
    target : str | None
        For ``rollback``: the version that serves instead (the champion, or the
        fallback that becomes champion).
    strategy : str | None
        Rollback strategy (:data:`ROLLBACK_STRATEGIES`) when ``action == "rollback"``.
    trigger : str | None
        Trigger name when ``action == "retrain"``.
    mode : str | None
        Canary mode ("split", "shadow", "bandit") when ``action == "start_canary"``.
    alert : bool
        Notify people urgently (rollback, halt, fallback).
    rebaseline : bool
        For ``accept_drift``: re-fit the champion's reference profile on the recent
        window (its baseline stays). For ``archive_candidate``: the candidate came from a drift- or
        performance-triggered retrain and the champion held up against it on
        fresh labelled rows, so the recent window is accepted as the new normal:
        re-fit the champion's reference profile on it (the same shift stops firing
        the drift trigger; a new shift still does) and re-anchor its performance
        baseline to ``baseline``.
    baseline : float | None
        With ``rebaseline``: the champion's performance baseline from now on, its
        metric on the recent window, replacing the validation score saved at
        training time (a holdout of a few hundred rows is a noisy, often
        optimistic yardstick). On ``promote`` after a drift- or
        performance-triggered cycle: a floor, the outgoing champion's baseline;
        the new champion's baseline is the better of it and its own level, the
        worse of its validation score and its score at the offline gate
        (``numbers["gate_candidate_value"]`` of its ``start_canary``: rows it
        never saw, where a small training set's validation score is optimistic).
        None: keep the current baseline.
    train_since : float | None
        For ``retrain``: train on labelled rows at or after this time only (the
        located start of a change in the champion's error stream); None: the
        controller's usual window of recent rows.
    """

    action: Action
    reasons: tuple[str, ...] = ()
    numbers: Mapping[str, float] = field(default_factory=dict)
    weights: Mapping[str, float] | None = None
    shadow: tuple[str, ...] = ()
    version: str | None = None
    target: str | None = None
    strategy: RollbackStrategy | None = None
    trigger: str | None = None
    mode: str | None = None
    alert: bool = False
    rebaseline: bool = False
    baseline: float | None = None
    train_since: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain values (JSON-able) for the journal."""
        out = asdict(self)
        out["numbers"] = {k: float(v) for k, v in self.numbers.items()}
        out["weights"] = None if self.weights is None else dict(self.weights)
        out["reasons"] = list(self.reasons)
        out["shadow"] = list(self.shadow)
        return out
