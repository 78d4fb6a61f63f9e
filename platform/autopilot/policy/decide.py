"""``decide``: one pure function from (state, evidence, policy) to a decision.

The controller calls :func:`decide` once per model per tick, applies the
returned :class:`~autopilot.policy.types.Decision`, and, once applied, stores
:func:`next_state`. Neither function does I/O or keeps state, so a tick can be
replayed from the journal and every scenario is a unit test.

Precedence within a tick:

1. a manual command (pause, resume, retrain, promote, rollback, set_weights);
2. nothing automatic while paused;
3. the champion failing (fallback), or a version's breaker open (isolate);
4. the phase: ``steady`` evaluates triggers then guards; ``training`` waits for
   the run; ``validating`` runs the offline gate; ``canary`` judges the canary.

Example
-------
>>> from autopilot.config import PolicyConfig
>>> from autopilot.policy.types import Evidence, ModelState
>>> state = ModelState(model="churn", champion="3", weights={"3": 1.0})
>>> ev = Evidence(model="churn", now=1e9, drift_severity="critical", drift_share=0.6,
...               drift_rows=5000)
>>> d = decide(state, ev, PolicyConfig())
>>> d.action, d.trigger
('retrain', 'drift')
>>> next_state(state, d, ev).phase
'training'
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from autopilot.config import PolicyConfig
from autopilot.policy.canary import judge_canary, start_weights, urgent_step
from autopilot.policy.gate import metric_function, run_gate
from autopilot.policy.guards import check_guards
from autopilot.policy.rollback import champion_failure, instant_rollback, isolate_version
from autopilot.policy.triggers import (
    CHANGE_TRIGGERS,
    acted_on_change,
    evaluate_triggers,
    window_change,
    window_drop,
)
from autopilot.policy.types import (
    Decision,
    Evidence,
    GateResult,
    ManualCommand,
    ModelState,
    TriggerResult,
)
from autopilot.stats.sequential import mean_confidence_sequence

__all__ = ["HISTORY_LIMIT", "decide", "next_state"]

HISTORY_LIMIT = 50  # training start times kept per model


def _rng_for(state: ModelState, evidence: Evidence) -> np.random.Generator:
    # Deterministic per (model, tick) so a replayed tick gives the same decision.
    seed = zlib.crc32(state.model.encode()) ^ int(evidence.now * 1000) % (2**32)
    return np.random.default_rng(seed)


def decide(
    state: ModelState,
    evidence: Evidence,
    policy: PolicyConfig,
    rng: np.random.Generator | None = None,
) -> Decision:
    """What to do this tick for one model.

    Parameters
    ----------
    state : ModelState
        The model's state after the previous tick.
    evidence : Evidence
        What the controller gathered this tick.
    policy : PolicyConfig
        The model's policy section.
    rng : numpy.random.Generator, optional
        For the gate's bootstrap and bandit sampling; by default a generator
        seeded from the model name and ``evidence.now`` (replayable).

    Returns
    -------
    Decision
    """
    if evidence.model != state.model:
        raise ValueError(f"evidence is for model {evidence.model!r}, state for {state.model!r}")
    rng = rng if rng is not None else _rng_for(state, evidence)
    if evidence.command is not None:
        return _manual(state, evidence, evidence.command, policy)
    if state.phase == "paused":
        return Decision("none", ("paused: automatic decisions are off until resumed",))

    failing = champion_failure(state, evidence, policy.canary)
    if failing is not None:
        return failing
    if state.challenger is not None and evidence.breakers.get(state.challenger) == "open" \
            and state.phase == "canary" and state.champion is not None:
        return isolate_version(
            state, state.challenger,
            (f"challenger {state.challenger} circuit breaker is open; isolating it",), {})

    if state.phase == "steady":
        return _steady(state, evidence, policy)
    if state.phase == "training":
        return _training(state, evidence, policy)
    if state.phase == "validating":
        return _validating(state, evidence, policy, rng)
    d = judge_canary(state, evidence, policy.canary, rng)
    if d.action in ("none", "hold", "ramp", "set_weights"):
        # no verdict yet: the experiment may have been overtaken by the data
        moved = (_regime_change_during_canary(state, evidence, policy)
                 or _neither_arm_meets_the_bar(state, evidence, policy))
        if moved is not None:
            return moved
    if d.action == "archive_candidate" and d.numbers.get("budget_spent"):
        # ran its course with no verdict: the champion held up as in a failed gate
        return _accept_recent_window(state, evidence, policy, d)
    return _inherit_baseline(state, evidence, d)


def _accept_recent_window(
    state: ModelState, evidence: Evidence, policy: PolicyConfig, d: Decision
) -> Decision:
    """The champion held up against a model trained on the recent data: accept that data.

    After a drift- or performance-triggered retrain whose candidate failed the gate
    or ended its canary with no difference, the champion's reference profile is
    re-fitted on the recent window (``rebaseline``) and, with enough labels, its
    performance baseline re-anchored to its recent metric; otherwise the unchanged
    reference (or baseline) fires the same trigger again at every
    ``guards.min_interval_s``.
    """
    if state.trigger not in CHANGE_TRIGGERS:
        return d
    value = evidence.metric_value
    anchored = value is not None and bool(np.isfinite(value)) and \
        evidence.metric_labels >= policy.triggers.performance.min_labels
    why = (f"champion {state.champion} held up on the recent window: its reference profile "
           "is re-baselined to it")
    if anchored:
        why += (f" and its performance baseline re-anchored to {evidence.metric_name} "
                f"{value:.4g} ({evidence.metric_labels} labels)")
    return replace(d, reasons=(*d.reasons, why), rebaseline=True,
                   baseline=float(value) if anchored and value is not None else None)


def _inherit_baseline(state: ModelState, evidence: Evidence, d: Decision) -> Decision:
    """A replacement must restore the level its predecessor was held to.

    On promotion after a drift- or performance-triggered cycle the outgoing
    champion's baseline becomes a floor for the new champion's: a model trained
    while a change was still under way has a low holdout score, and judged
    against it alone it would never be retrained once the rows after the change
    could teach more. If retraining cannot reach the bar, a failed gate lowers it
    (``rebaseline``).
    """
    base = evidence.baseline_value
    if (d.action != "promote" or state.trigger not in CHANGE_TRIGGERS
            or base is None or not np.isfinite(base)):
        return d
    return replace(d, baseline=float(base), reasons=(
        *d.reasons, f"{d.version} is held to at least its predecessor's baseline "
        f"{evidence.metric_name} {base:.4g}"))


def _neither_arm_meets_the_bar(
    state: ModelState, evidence: Evidence, policy: PolicyConfig
) -> Decision | None:
    """End a canary in which neither arm meets the bar the champion is held to.

    The bar is the performance trigger's: ``relative_drop`` below the champion's
    baseline. The champion is under it on ``min_labels`` labelled rows (the trigger
    would fire) and the challenger's always-valid upper bound
    (:func:`autopilot.stats.mean_confidence_sequence` on its 0/1 scores, level
    ``canary.alpha``, mixing variance the squared gap between baseline and bar) is
    under it too. Whichever arm won, users would keep a failing model, and the canary
    holds the performance trigger off for as long as it runs (up to ``max_samples``);
    ended, the trigger retrains on current rows. Accuracy only: there the arms'
    per-row score is the metric itself.
    """
    perf = policy.triggers.performance
    champ, chal = state.champion, state.challenger
    if champ is None or chal is None or not perf.enabled or evidence.metric_name != "accuracy":
        return None
    # the champion fails as the trigger's window view judges it, on labels, by the drop
    window = window_drop(evidence, perf)
    if (not window.fired or window.numbers.get("estimated") != 0.0
            or window.numbers.get("relative_drop", 0.0) < perf.relative_drop):
        return None
    base, value = window.numbers["baseline"], window.numbers["value"]
    bar = base * (1.0 - perf.relative_drop)
    arm = evidence.arms.get(chal)
    if arm is None or arm.score_sumsq is not None or arm.labelled == 0:
        return None
    _, high = mean_confidence_sequence(arm.successes, arm.labelled, sigma2=0.25,
                                       tau2=(base - bar) ** 2, alpha=policy.canary.alpha)
    if high >= bar:
        return None
    return Decision(
        "archive_candidate",
        (f"neither arm meets the bar accuracy {bar:.4g} ({perf.relative_drop:.1%} below "
         f"the baseline {base:.4g}): champion {champ} has {value:.4g} on "
         f"{evidence.metric_labels} labelled rows, challenger {chal} at most {high:.4g} "
         f"(always-valid bound on {arm.labelled} labelled rows); the canary is ended so the "
         "performance trigger can retrain on current rows",),
        {"bar": float(bar), "champion_value": float(value),
         "challenger_upper": float(high), "challenger_labelled": float(arm.labelled)},
        weights={champ: 1.0}, version=chal)


def _regime_change_during_canary(
    state: ModelState, evidence: Evidence, policy: PolicyConfig
) -> Decision | None:
    """End the experiment when the champion's error stream changed after the challenger's
    training began.

    A canary compares two models under one data regime. When the champion's
    labelled errors show a change located after the challenger's training began
    (``last_training_at``; the canary's start when that is unknown or later) and as
    large as the performance trigger acts on, both arms were trained before it: the
    comparison no longer answers the question. The challenger is archived and the
    champion serves alone; the performance trigger, steady again, retrains on the
    rows after the change. (A change during training and the gate counts too: the
    gate then compared two models that never saw the new regime.)
    """
    change = acted_on_change(evidence, policy.triggers.performance)
    started = state.canary_started_at
    if started is None:
        return None
    # The challenger learnt from rows labelled before its training began: a change after
    # that (during training or the gate, too) is one neither arm has seen.
    trained = state.last_training_at
    since = trained if trained is not None and trained <= started else started
    if (change is None or change.at < since
            or state.champion is None or state.challenger is None):
        return None
    when = "after the canary began" if change.at >= started else (
        "after the challenger's training began")
    return Decision(
        "archive_candidate",
        (f"the data changed during the canary: {change.detector} found a change in champion "
         f"{state.champion}'s labelled errors {change.rows_since} rows ago (online score "
         f"{change.metric_before:.4g} -> {change.metric_after:.4g}, "
         f"{change.relative_drop:+.1%} worse), {when}; both versions were "
         "trained before it, so the experiment is ended and the champion serves alone",),
        {"change_rows_since": float(change.rows_since),
         "change_relative_drop": float(change.relative_drop)},
        weights={state.champion: 1.0}, version=state.challenger)


def _steady(state: ModelState, evidence: Evidence, policy: PolicyConfig) -> Decision:
    if state.champion is None:
        guard = check_guards(state, evidence, policy.guards, urgent=True)
        if not guard.allowed:
            return Decision("hold", ("no champion yet; initial training deferred", guard.reason),
                            guard.numbers)
        return Decision("retrain", ("no champion yet: initial training",), guard.numbers,
                        trigger="initial")
    results = evaluate_triggers(state, evidence, policy.triggers, policy.guards)
    numbers = {f"{r.name}.{k}": float(v) for r in results for k, v in r.numbers.items()}
    fired = [r for r in results if r.fired]
    if not fired:
        return Decision("none", ("no trigger fired",), numbers)
    reasons = tuple(r.reason for r in fired)
    held = _labels_hold_up(results, policy) if [r.name for r in fired] == ["drift"] else None
    if held is not None:
        return Decision("accept_drift", (*reasons, held), numbers, version=state.champion,
                        rebaseline=True)
    urgent = any(r.urgent for r in fired)
    guard = check_guards(state, evidence, policy.guards, urgent=urgent)
    numbers.update({f"guard.{k}": v for k, v in guard.numbers.items()})
    if not guard.allowed:
        return Decision("hold", (*reasons, f"retrain blocked by guard {guard.guard}: "
                                 f"{guard.reason}"), numbers, trigger=fired[0].name)
    perf = policy.triggers.performance
    change = acted_on_change(evidence, perf) or window_change(evidence, perf)
    retry = state.retry_since
    if (retry is not None and any(r.name == "performance" for r in fired)
            and (change is None or change.at <= retry)):
        need = perf.retry_rows_after_change or 0
        have = evidence.rows_since_retry or 0
        if have < need:
            return Decision("hold", (*reasons, f"waiting for {need} labelled rows after the "
                                     f"change whose first retrain lost (have {have}) to "
                                     "retrain once more"), numbers, trigger="performance")
        return Decision("retrain", (*reasons, f"retraining once more on the {have} labelled "
                                    "rows since the change whose first retrain lost"),
                        {**numbers, "retry": 1.0, "train_rows_since": float(have)},
                        trigger="performance", train_since=retry)
    if change is not None and any(r.name == "performance" for r in fired):
        # Rows before the change teach the old concept: learn from the rows after it only,
        # once there are enough of them (the champion keeps serving meanwhile).
        need = perf.min_rows_after_change
        numbers["change_rows_needed"] = float(need)
        if change.rows_since < need:
            return Decision("hold", (*reasons, f"waiting for {need} labelled rows after the "
                                     f"change (have {change.rows_since}) to retrain on"),
                            numbers, trigger=fired[0].name)
        where = ("" if change.p_value is None else
                 f" the window test located ({change.detector} p={change.p_value:.2g}: online "
                 f"score {change.metric_before:.4g} -> {change.metric_after:.4g})")
        numbers["train_rows_since"] = float(change.rows_since)
        return Decision("retrain", (*reasons, f"training on the {change.rows_since} labelled "
                                    f"rows since the change{where}"), numbers,
                        trigger=fired[0].name, train_since=change.at)
    return Decision("retrain", reasons, numbers, trigger=fired[0].name)


def _labels_hold_up(results: Sequence[TriggerResult], policy: PolicyConfig) -> str | None:
    """Why the drift need not be retrained on, when labels say the champion holds up.

    With ``triggers.drift.confirm_with_labels``: the performance trigger judged
    at least ``min_labels`` labelled rows (not the label-free estimate) against
    the baseline and did not fire.
    """
    if not policy.triggers.drift.confirm_with_labels:
        return None
    perf = next((r for r in results if r.name == "performance"), None)
    n = perf.numbers if perf is not None else {}
    if (perf is None or perf.fired or "relative_drop" not in n or n.get("estimated", 1.0)
            or n.get("labels", 0.0) < policy.triggers.performance.min_labels):
        return None
    return (f"labelled rows say the champion holds up ({perf.reason}): the shift is "
            "accepted and its reference re-baselined, no retrain "
            "(triggers.drift.confirm_with_labels)")


def _training(state: ModelState, evidence: Evidence, policy: PolicyConfig) -> Decision:
    if evidence.training_status == "failed":
        return Decision("abort", (f"training failed: {evidence.training_error or 'unknown'}",),
                        alert=True)
    if evidence.candidate is not None:
        if state.champion is None:
            return Decision("promote", (f"first model: version {evidence.candidate} becomes "
                                        "champion",), weights={evidence.candidate: 1.0},
                            version=evidence.candidate)
        return Decision("validate", (f"training produced version {evidence.candidate}; "
                                     "running the offline gate",), version=evidence.candidate)
    started = state.training_started_at
    if started is not None and evidence.now - started > policy.guards.training_timeout_s:
        return Decision("abort", (f"training ran {evidence.now - started:.0f} s > timeout "
                                  f"{policy.guards.training_timeout_s:.0f} s",),
                        {"running_s": evidence.now - started}, alert=True)
    return Decision("hold", ("training running",))


def _validating(
    state: ModelState, evidence: Evidence, policy: PolicyConfig, rng: np.random.Generator
) -> Decision:
    cand, champ = state.challenger, state.champion
    if cand is None or champ is None:
        raise ValueError(f"validating needs a champion and a candidate, state is {state!r}")
    waited = evidence.now - (state.validating_since or evidence.now)
    too_long = waited > policy.gate.max_wait_s
    if evidence.gate is None:
        if too_long:
            return Decision("archive_candidate", (f"no gate evidence after {waited:.0f} s",),
                            {"waited_s": waited}, weights={champ: 1.0}, version=cand)
        return Decision("hold", ("waiting for gate evidence",), {"waited_s": waited})
    res = run_gate(evidence.gate, policy.gate, rng)
    numbers = {"gate_p": res.p_value, "gate_effect": res.effect, "gate_ci_low": res.ci_low,
               "gate_ci_high": res.ci_high, "gate_rows": float(res.n)}
    if evidence.gate.metric == evidence.metric_name and np.isfinite(res.candidate_value):
        # its level on rows it never saw: caps its own baseline (see Decision.baseline)
        numbers["gate_candidate_value"] = res.candidate_value
    if res.method == "insufficient_data":
        if too_long:
            return Decision("archive_candidate", (res.reason, f"gave up after {waited:.0f} s"),
                            numbers, weights={champ: 1.0}, version=cand)
        return Decision("hold", (res.reason,), numbers)
    if not res.passed:
        failed = Decision("archive_candidate", (f"offline gate failed: {res.reason}",), numbers,
                          weights={champ: 1.0}, version=cand)
        retry_rows = policy.triggers.performance.retry_rows_after_change
        if (retry_rows is not None and state.trigger == "performance"
                and state.train_since is not None and state.train_rows < retry_rows):
            # Few rows after the change taught too little: not yet evidence that the
            # champion holds up, so nothing is re-anchored until a second try loses too
            # (the retry trains on >= retry_rows rows, so its loss is accepted below).
            return replace(failed, reasons=(
                *failed.reasons, f"the candidate learnt from the rows after the change only; "
                f"it is retrained once more from that change when {retry_rows} labelled rows "
                "follow it"), numbers={**numbers, "retry_since": state.train_since})
        return _accept_recent_window(state, evidence, policy, failed)
    mode = policy.canary.mode
    reasons = [f"offline gate passed: {res.reason}", f"starting {mode} canary"]
    step = 0
    drop = _relative_drop(evidence)
    urgent = _urgency(state, evidence, policy, res, drop) if mode != "shadow" else None
    if urgent is not None and state.trigger == "performance" and drop is not None:
        numbers["champion_relative_drop"] = drop
    if urgent is not None:
        # Urgent replacement: the champion is failing, or the candidate beat it offline by
        # as much as the performance trigger calls a failure, so every row left at steps[0]
        # is served by the worse model. Guardrails and the sequential test still judge it.
        step = urgent_step(policy.canary)
        if step > 0:
            share = policy.canary.steps[step]
            reasons.append(
                f"urgent replacement: {urgent}; canary starts at step {step} ({share:.0%}) "
                f"instead of {policy.canary.steps[0]:.0%}")
    numbers["start_step"] = float(step)
    weights, shadow = start_weights(champ, cand, policy.canary, step)
    return Decision("start_canary", tuple(reasons),
                    numbers, weights=weights, shadow=shadow, version=cand, mode=mode)


def _urgency(
    state: ModelState, evidence: Evidence, policy: PolicyConfig, res: GateResult,
    drop: float | None,
) -> str | None:
    """Why the champion should not keep most traffic through a slow canary, or None.

    ``drop`` is the champion's relative drop from its baseline (``_relative_drop``).
    """
    champ = state.champion
    if state.trigger == "performance":
        seen = ("unknown" if drop is None else
                f"{drop:.1%} below its baseline {evidence.baseline_value:.4g} "
                f"({evidence.metric_name} {evidence.metric_value:.4g})")
        return (f"champion {champ} failed its performance check (now {seen}) and the "
                f"candidate passed the gate (effect {res.effect:+.4g})")
    gate = evidence.gate
    if gate is None:
        return None
    level = metric_function(gate.metric)(gate.y_true, gate.champion_pred)
    if not np.isfinite(level) or level == 0:
        return None
    gain = res.effect / abs(level)
    if gain >= policy.triggers.performance.relative_drop:
        return (f"the candidate beat champion {champ} offline by {gain:.1%} of its "
                f"{gate.metric} {level:.4g} (>= the performance trigger's "
                f"{policy.triggers.performance.relative_drop:.1%})")
    return None


def _relative_drop(evidence: Evidence) -> float | None:
    """Champion's drop from its validation baseline (positive is worse), if measurable."""
    value, base = evidence.metric_value, evidence.baseline_value
    if value is None or base is None or not (np.isfinite(value) and np.isfinite(base)):
        return None
    sign = 1.0 if evidence.higher_is_better else -1.0
    return float(sign * (base - value) / max(abs(base), 1e-12))


# ------------------------------------------------------------------------ manual


def _normalise(weights: Mapping[str, float]) -> dict[str, float]:
    bad = {k: v for k, v in weights.items() if not (np.isfinite(v) and v >= 0)}
    if bad:
        raise ValueError(f"weights must be finite and non-negative, got {bad}")
    total = float(sum(weights.values()))
    if total <= 0:
        raise ValueError(f"weights must not all be zero, got {dict(weights)}")
    return {k: float(v) / total for k, v in weights.items()}


def _manual(
    state: ModelState, evidence: Evidence, cmd: ManualCommand, policy: PolicyConfig
) -> Decision:
    who = f"manual {cmd.kind}: {cmd.reason}"
    if cmd.kind == "pause":
        if state.phase == "paused":
            return Decision("none", (who, "already paused"))
        return Decision("pause", (who,))
    if cmd.kind == "resume":
        if state.phase != "paused":
            return Decision("none", (who, "not paused"))
        return Decision("resume", (who,), weights=dict(state.weights) or None,
                        shadow=state.shadow)
    if cmd.kind == "retrain":
        if state.phase in ("training", "validating", "canary"):
            return Decision("hold", (who, f"refused: a {state.phase} cycle is in progress"))
        # A person asked: guards (interval, window, history) do not apply.
        return Decision("retrain", (who,), trigger="manual")
    if cmd.kind == "promote":
        version = cmd.version or state.challenger
        if version is None:
            return Decision("hold", (who, "refused: no version named and no challenger"))
        if version == state.champion:
            return Decision("none", (who, f"version {version} is already champion"))
        return Decision("promote", (who,), weights={version: 1.0}, version=version)
    if cmd.kind == "rollback":
        if cmd.version is not None and cmd.version != state.champion:
            return Decision("rollback", (who,), weights={cmd.version: 1.0},
                            version=state.champion, target=cmd.version, strategy="fallback",
                            alert=True)
        if state.challenger is not None and state.champion is not None and \
                state.phase == "canary":
            return instant_rollback(state, (who,), {})
        if state.fallback is not None and state.champion is not None:
            return Decision("rollback", (who,), weights={state.fallback: 1.0},
                            version=state.champion, target=state.fallback, strategy="fallback",
                            alert=True)
        return Decision("hold", (who, "refused: nothing to roll back to"))
    # set_weights
    if not cmd.weights:
        return Decision("hold", (who, "refused: no weights given"))
    return Decision("set_weights", (who,), weights=_normalise(cmd.weights))


# ------------------------------------------------------------------ transitions


def _counts(evidence: Evidence, versions: tuple[str | None, ...]) -> dict[str, int]:
    return {v: int(evidence.arms[v].requests) if v in evidence.arms else 0
            for v in versions if v is not None}


def _steady_state(state: ModelState, champion: str | None, **changes: object) -> ModelState:
    base = replace(
        state,
        phase="steady",
        champion=champion,
        challenger=None,
        step=0,
        canary_started_at=None,
        step_started_at=None,
        step_requests={},
        min_p=1.0,
        weights={champion: 1.0} if champion is not None else {},
        shadow=(),
        rolling_back=False,
        validating_since=None,
        training_started_at=None,
        train_since=None,
        train_rows=0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def next_state(state: ModelState, decision: Decision, evidence: Evidence) -> ModelState:
    """The state to store once ``decision`` has been applied.

    Parameters
    ----------
    state : ModelState
        State the decision was made from.
    decision : Decision
        Returned by :func:`decide` for ``(state, evidence)``.
    evidence : Evidence
        The same tick's evidence (its ``now`` and arm counts are recorded).

    Returns
    -------
    ModelState
        If applying the decision failed, keep ``state`` instead.
    """
    now = evidence.now
    act = decision.action
    s = state
    if s.phase == "canary" and "always_valid_p" in decision.numbers:
        s = replace(s, min_p=min(s.min_p, float(decision.numbers["always_valid_p"])))
    if s.phase == "canary" and not s.step_requests:
        # Baseline for SRM and per-step counts, one tick after the weights changed.
        s = replace(s, step_requests=_counts(evidence, (s.champion, s.challenger)))

    if act in ("none", "hold", "accept_drift"):
        return s
    if act == "retrain":
        history = (*s.training_history, now)[-HISTORY_LIMIT:]
        return replace(s, phase="training", training_started_at=now, last_training_at=now,
                       training_history=history, trigger=decision.trigger, resume_phase=None,
                       train_since=decision.train_since, retry_since=None,
                       train_rows=int(decision.numbers.get("train_rows_since", 0)))
    if act == "abort":
        return replace(s, phase="steady", training_started_at=None)
    if act == "validate":
        return replace(s, phase="validating", challenger=decision.version,
                       validating_since=now, training_started_at=None)
    if act == "archive_candidate":
        return _steady_state(s, s.champion, retry_since=decision.numbers.get("retry_since"))
    if act == "start_canary":
        return replace(
            s, phase="canary", challenger=decision.version, mode=decision.mode or "split",
            step=int(decision.numbers.get("start_step", 0)),
            canary_started_at=now, step_started_at=now, step_requests={}, min_p=1.0,
            weights=dict(decision.weights or {}), shadow=decision.shadow, rolling_back=False,
            validating_since=None,
        )
    if act == "ramp":
        return replace(s, step=s.step + 1, step_started_at=now, step_requests={},
                       weights=dict(decision.weights or {}))
    if act == "promote":
        old = s.champion if s.champion != decision.version else s.fallback
        return _steady_state(s, decision.version, fallback=old)
    if act == "rollback":
        return _after_rollback(s, decision, now)
    if act == "halt":
        return replace(_steady_state(s, s.champion), phase="paused", resume_phase="steady")
    if act == "set_weights":
        return replace(s, weights=dict(decision.weights or {}), step_started_at=now,
                       step_requests={})
    if act == "pause":
        return replace(s, phase="paused", resume_phase=s.phase)
    if act == "resume":
        phase = s.resume_phase or "steady"
        # Traffic went to the champion while paused: re-baseline the counts.
        return replace(s, phase=phase, resume_phase=None, step_requests={},
                       step_started_at=now if phase == "canary" else s.step_started_at)
    raise ValueError(f"unknown action {act!r}")


def _after_rollback(s: ModelState, decision: Decision, now: float) -> ModelState:
    if decision.strategy == "fallback":
        # The fallback version becomes the champion; the failed one is remembered as fallback
        # only if it is not the one failing (it is), so none is left.
        return _steady_state(s, decision.target, fallback=None)
    if decision.strategy == "gradual":
        share = (decision.weights or {}).get(s.challenger or "", 0.0)
        if share > 0:
            return replace(s, step=max(s.step - 1, 0), step_started_at=now, step_requests={},
                           weights=dict(decision.weights or {}), rolling_back=True)
        return _steady_state(s, s.champion)
    isolated = s.isolated
    if decision.strategy == "isolate" and decision.version is not None \
            and decision.version not in isolated:
        isolated = (*isolated, decision.version)
    return _steady_state(s, s.champion, isolated=isolated)
