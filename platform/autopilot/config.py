"""The user's configuration: one YAML file per managed model, validated once.

Every section is a frozen pydantic model with ``extra="forbid"``, so a misspelt
key is an error rather than a silent default, and the validated object is an
immutable value that travels through the rest of the code (actors, policy,
jobs) unchanged. :func:`load_config` turns pydantic's errors into a
:class:`~autopilot.errors.ConfigError` whose message names each key path.

Example
-------
>>> cfg = AutopilotConfig.model_validate({
...     "name": "churn",
...     "data": {"generator": {"n_rows": 2000, "seed": 1}, "target": "y"},
... })
>>> cfg.training.cv_folds, cfg.policy.canary.steps
(5, (0.05, 0.25, 0.5, 1.0))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from autopilot.errors import ConfigError

__all__ = [
    "AutopilotConfig",
    "BreakerConfig",
    "CacheConfig",
    "CanaryConfig",
    "ControllerConfig",
    "DataConfig",
    "FeatureLists",
    "GateConfig",
    "GeneratorConfig",
    "GuardsConfig",
    "MonitorConfig",
    "OnlineConfig",
    "PolicyConfig",
    "ServingConfig",
    "TrainingConfig",
    "TriggersConfig",
    "load_config",
]

Fraction = Annotated[float, Field(gt=0.0, le=1.0)]
PositiveSeconds = Annotated[float, Field(gt=0.0)]

_SHARED_FAMILIES = ("random_forest", "extra_trees", "hist_gb", "svm", "knn", "mlp")
CLASSIFICATION_FAMILIES = ("logistic", *_SHARED_FAMILIES)
REGRESSION_FAMILIES = ("linear", *_SHARED_FAMILIES)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- data


class GeneratorConfig(_Section):
    """Built-in drifting stream (see ``autopilot.training.generator``)."""

    scenario: str = "demo"
    n_rows: int = Field(default=20_000, ge=100)
    seed: int = 0


class FeatureLists(_Section):
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    binary: tuple[str, ...] = ()


class DataConfig(_Section):
    """Where training data comes from: exactly one of ``path`` or ``generator``."""

    path: Path | None = None
    generator: GeneratorConfig | None = None
    target: str
    time_column: str | None = None
    features: FeatureLists | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if (self.path is None) == (self.generator is None):
            raise ValueError("give exactly one of 'path' (CSV or Parquet) or 'generator'")
        if self.path is not None and self.path.suffix.lower() not in {".csv", ".parquet", ".pq"}:
            raise ValueError(f"path {str(self.path)!r} must end in .csv or .parquet")
        return self


# ----------------------------------------------------------------------- training


class OnlineConfig(_Section):
    """Online learning for ``partial_fit`` families."""

    family: Literal["sgd", "naive_bayes", "mlp"] = "sgd"
    strategy: Literal["incremental", "mini_batch", "periodic", "adaptive"] = "adaptive"
    batch_size: int = Field(default=256, ge=1)
    interval_s: PositiveSeconds = 3600.0
    accuracy_drop: Fraction = 0.05


class TrainingConfig(_Section):
    families: tuple[str, ...] | None = None  # None: every family for the task
    metric: str | None = None  # None: roc_auc (binary), accuracy (multiclass), r2
    num_trials: int = Field(default=20, ge=1)
    time_budget_s: PositiveSeconds = 120.0
    cv_folds: int = Field(default=5, ge=2, le=20)
    cpus_per_trial: Annotated[float, Field(gt=0.0, le=2.0)] = 0.5
    ensemble_top_k: int = Field(default=3, ge=0)
    seed: int = 0
    online: OnlineConfig | None = None


# ------------------------------------------------------------------------ serving


class CacheConfig(_Section):
    enabled: bool = True
    max_size: int = Field(default=10_000, ge=1)
    ttl_s: PositiveSeconds = 300.0


class BreakerConfig(_Section):
    window: int = Field(default=50, ge=1)
    min_requests: int = Field(default=10, ge=1)
    error_rate: Fraction = 0.5
    latency_ms: PositiveSeconds = 1000.0
    open_s: PositiveSeconds = 10.0
    half_open_probes: int = Field(default=3, ge=1)


class ServingConfig(_Section):
    host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    num_replicas: int | Literal["auto"] = 1
    min_replicas: int = Field(default=1, ge=1)
    max_replicas: int = Field(default=2, ge=1)
    num_cpus: Annotated[float, Field(gt=0.0, le=2.0)] = 0.25
    max_batch_size: int = Field(default=64, ge=1)
    batch_wait_timeout_s: Annotated[float, Field(ge=0.0)] = 0.002
    max_rows: int = Field(default=10_000, ge=1)
    cache: CacheConfig = CacheConfig()
    breaker: BreakerConfig = BreakerConfig()
    mode: Literal["split", "shadow", "bandit"] = "split"
    admin_token_env: str = "AUTOPILOT_ADMIN_TOKEN"
    record_batch_size: int = Field(default=256, ge=1)
    record_flush_s: PositiveSeconds = 0.5
    table_refresh_s: PositiveSeconds = 1.0
    access_log: bool = False

    @property
    def admin_token(self) -> str | None:
        """The admin bearer token, read from the environment variable named here."""
        return os.environ.get(self.admin_token_env) or None


# ------------------------------------------------------------------------- policy


class DriftTrigger(_Section):
    enabled: bool = True
    severity: Literal["low", "medium", "high", "critical"] = "high"
    min_rows: int = Field(default=500, ge=1)
    # Drift alone does not retrain when labels answer the question it raises: if the
    # performance trigger looked at performance.min_labels labelled rows and did not fire,
    # the shift is accepted (reference re-baselined) instead. Labels that arrive later and
    # show a drop still fire the performance trigger.
    confirm_with_labels: bool = False


class PerformanceTrigger(_Section):
    enabled: bool = True
    relative_drop: Fraction = 0.05
    absolute_floor: float | None = None
    min_labels: int = Field(default=200, ge=1)
    use_estimate: bool = True  # label-free estimate stands in while labels are too few
    # ADWIN on the champion's labelled error stream: fire when it finds a change that made
    # the metric worse by relative_drop, then retrain on the rows after the located change
    # once there are min_rows_after_change of them (fewer: wait for them).
    streaming: bool = True
    min_rows_after_change: int = Field(default=300, ge=1)
    # When the window view fires with no such change, the labelled rows (the monitor's
    # window, then the retrain window) are tested for a change in the online score
    # (OLS-CUSUM) at this level; if one is as large as relative_drop, the retrain learns
    # from the rows after it too. None: never.
    window_change_alpha: Fraction | None = 0.01
    # A candidate that learnt from the few rows after a change and lost the gate is tried
    # once more from the same change when this many labelled rows follow it (a model
    # trained on 300 rows may lose where one trained on 1,000 wins); None: accept at once.
    retry_rows_after_change: int | None = Field(default=1000, ge=1)


class ScheduleTrigger(_Section):
    enabled: bool = False
    interval_s: PositiveSeconds | None = None
    cron: str | None = None  # 5 fields, UTC (autopilot.policy.triggers.parse_cron)

    @model_validator(mode="after")
    def _valid_cron(self) -> ScheduleTrigger:
        if self.cron is not None:
            # Imported here: the policy package imports this module.
            from autopilot.policy.triggers import parse_cron

            parse_cron(self.cron).next_after(0.0)  # ValueError names the bad field
        return self


class AgeTrigger(_Section):
    enabled: bool = False
    max_age_s: PositiveSeconds = 30 * 86400.0


class VolumeTrigger(_Section):
    enabled: bool = False
    min_new_labels: int = Field(default=10_000, ge=1)


class TriggersConfig(_Section):
    drift: DriftTrigger = DriftTrigger()
    performance: PerformanceTrigger = PerformanceTrigger()
    schedule: ScheduleTrigger = ScheduleTrigger()
    age: AgeTrigger = AgeTrigger()
    volume: VolumeTrigger = VolumeTrigger()


class GuardsConfig(_Section):
    min_interval_s: Annotated[float, Field(ge=0.0)] = 3600.0
    max_concurrent: int = Field(default=3, ge=1)
    low_usage_hours: tuple[int, int] | None = None  # (start, end) hour of day, UTC
    adaptive: bool = True
    # Adaptive schedule (used when the schedule trigger has neither interval nor cron):
    # labels/day at or above levels[0] is "high", at or above levels[1] "medium", else "low".
    adaptive_levels: tuple[float, float] = (10_000.0, 1_000.0)
    adaptive_intervals_s: tuple[float, float, float] = (7 * 86400.0, 14 * 86400.0, 30 * 86400.0)
    # The interval is multiplied by adaptive_perf_factor once the champion's labelled metric
    # has lost adaptive_perf_drop (relative) of its validation baseline.
    adaptive_perf_factor: Fraction = 0.5
    adaptive_perf_drop: Fraction = 0.025
    max_per_day: int | None = Field(default=None, ge=1)  # trainings per model per 24 h
    # After a retrain that did not replace the champion, routine (non-urgent) triggers wait
    # this long, so an unbeatable champion is not retrained at every min_interval.
    retry_backoff_s: Annotated[float, Field(ge=0.0)] = 86400.0
    training_timeout_s: PositiveSeconds = 6 * 3600.0


class GateConfig(_Section):
    alpha: Fraction = 0.05
    min_rows: int = Field(default=200, ge=10)
    bootstrap_resamples: int = Field(default=2000, ge=100)
    # "superior": the candidate must be significantly better; "non_inferior": it must not be
    # worse by more than ``margin`` (the canary then decides).
    mode: Literal["superior", "non_inferior"] = "superior"
    margin: Annotated[float, Field(ge=0.0)] = 0.0
    max_wait_s: PositiveSeconds = 86400.0  # wait this long for min_rows, then archive


class CanaryConfig(_Section):
    mode: Literal["split", "shadow", "bandit"] = "split"
    steps: tuple[Fraction, ...] = (0.05, 0.25, 0.5, 1.0)
    alpha: Fraction = 0.05
    srm_alpha: Fraction = 0.001
    tau2: PositiveSeconds | None = None  # mixing variance; None: estimated from data
    min_samples_per_step: int = Field(default=200, ge=1)
    max_samples: int = Field(default=20_000, ge=1)
    max_duration_s: PositiveSeconds = 86400.0
    max_error_rate: Fraction = 0.05
    max_p95_latency_ms: PositiveSeconds = 250.0
    bandit_floor: Fraction = 0.01
    guardrail_min_requests: int = Field(default=20, ge=1)  # before error rate/latency count
    srm_min_requests: int = Field(default=100, ge=2)  # requests since the step began
    gradual_rollback: bool = True  # significantly worse (not failing): shift back step by step
    # The latency guardrail also needs the challenger's p95 above the champion's times this
    # factor, so load that slows every version does not roll the challenger back.
    latency_ratio: Annotated[float, Field(ge=1.0)] = 1.5
    # Urgent replacement: a candidate from a performance-triggered retrain (the champion
    # itself fails against its validation baseline) that passed the offline gate starts
    # at the first step >= this share instead of steps[0], so users leave the failing
    # champion sooner; later steps, guardrails, SRM and the test are unchanged.
    # None: every canary starts at steps[0].
    urgent_start_step: Fraction | None = 0.5
    # When max_samples / max_duration_s run out with no verdict: keep the champion, or
    # promote the challenger if its canary point estimate is not worse (it already beat the
    # champion at the offline gate, and it learnt from fresher data).
    on_no_verdict: Literal["keep_champion", "promote"] = "keep_champion"


class PolicyConfig(_Section):
    triggers: TriggersConfig = TriggersConfig()
    guards: GuardsConfig = GuardsConfig()
    gate: GateConfig = GateConfig()
    canary: CanaryConfig = CanaryConfig()


# ---------------------------------------------------------------- actors & stack


class MonitorConfig(_Section):
    store: Path | None = None  # None: <state_dir>/monitor.db
    window_rows: int = Field(default=5_000, ge=100)


class ControllerConfig(_Section):
    tick_interval_s: PositiveSeconds = 10.0
    webhooks: tuple[str, ...] = ()
    # Retrain window: the newest ``retrain_rows`` labelled rows, of which the newest
    # ``gate_holdout`` share is kept out of training for the offline gate.
    retrain_rows: int = Field(default=20_000, ge=10)
    gate_holdout: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3
    min_retrain_rows: int = Field(default=50, ge=1)  # fewer labelled rows: the retrain fails


class AutopilotConfig(_Section):
    """One managed model."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    task: Literal["classification", "regression"] | None = None  # None: inferred
    data: DataConfig
    training: TrainingConfig = TrainingConfig()
    serving: ServingConfig = ServingConfig()
    monitor: MonitorConfig = MonitorConfig()
    policy: PolicyConfig = PolicyConfig()
    controller: ControllerConfig = ControllerConfig()
    state_dir: Path = Path(".autopilot")
    tracking_uri: str | None = None  # None: sqlite under state_dir

    def resolved_state_dir(self) -> Path:
        """The state folder as an absolute path (created on demand by its users)."""
        return self.state_dir.expanduser().resolve()

    def resolved_tracking_uri(self) -> str:
        """MLflow tracking URI; SQLite under the state folder by default."""
        if self.tracking_uri:
            return self.tracking_uri
        return f"sqlite:///{self.resolved_state_dir() / 'mlflow.db'}"


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = [f"invalid config {source}:"]
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "<root>"
        lines.append(f"  {path}: {err['msg']}")
    return "\n".join(lines)


def parse_config(raw: Any, source: str = "<dict>", base_dir: Path | None = None) -> AutopilotConfig:
    """Validate an already-parsed mapping; relative paths resolve against ``base_dir``."""
    if not isinstance(raw, dict):
        raise ConfigError(
            f"config {source} must be a mapping at the top level, got {type(raw).__name__}"
        )
    try:
        cfg = AutopilotConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from exc
    if base_dir is not None:
        updates: dict[str, Any] = {}
        if not cfg.state_dir.is_absolute():
            updates["state_dir"] = (base_dir / cfg.state_dir).resolve()
        if cfg.data.path is not None and not cfg.data.path.is_absolute():
            data_path = (base_dir / cfg.data.path).resolve()
            updates["data"] = cfg.data.model_copy(update={"path": data_path})
        if updates:
            cfg = cfg.model_copy(update=updates)
    return cfg


def load_config(path: str | os.PathLike[str]) -> AutopilotConfig:
    """Read and validate a YAML config file.

    Relative paths inside the file (data path, state folder) are taken relative
    to the file's own folder, so a config works from any working directory.

    Raises
    ------
    ConfigError
        The file is missing, is not YAML, or fails validation; the message
        names every offending key path.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(p)!r}: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(p)!r} is not valid YAML: {exc}") from exc
    return parse_config(raw, source=repr(str(p)), base_dir=p.resolve().parent)
