"""Shared plumbing of the training jobs: printing results and mapping errors to exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import pandas as pd

from autopilot.errors import AutopilotError, ConfigError, DataError

__all__ = ["format_leaderboard", "print_outcome", "run_cli"]

EXIT_USAGE = 2  # bad config or data: the user must fix the input
EXIT_FAILED = 1  # training or registry failed


def format_leaderboard(leaderboard: pd.DataFrame, max_param_chars: int = 70) -> str:
    """The leaderboard as a fixed-width table (params shortened to fit a terminal)."""
    cols = ["rank", "family", "cv_mean", "cv_std", "folds_done", "fit_time_s", "status", "params"]
    lb = leaderboard.loc[:, [c for c in cols if c in leaderboard.columns]].copy()
    if "params" in lb:
        lb["params"] = lb["params"].map(
            lambda p: p if len(p) <= max_param_chars else p[: max_param_chars - 3] + "..."
        )
    with pd.option_context("display.width", 200, "display.max_colwidth", max_param_chars + 5):
        return lb.to_string(index=False, float_format=lambda v: f"{v:.4f}")


def print_outcome(outcome, promoted: bool = False) -> None:
    """Print the leaderboard, the registered version and its holdout metrics."""
    v = outcome.version
    print(f"\nLeaderboard (metric: {outcome.metric}, CV on the training part):")
    print(format_leaderboard(outcome.leaderboard))
    print(
        f"\nRegistered {v.name} version {v.version} (status {v.status}"
        f"{', champion' if promoted else ''}): family {outcome.family}, "
        f"CV {outcome.metric} {outcome.cv_score:.4f}, sha256 {v.sha256[:16]}..."
    )
    print("Holdout metrics: " + ", ".join(f"{k}={x:.4f}" for k, x in outcome.metrics.items()))
    print(
        "Lineage: "
        + json.dumps(
            {
                "trigger": v.lineage.trigger,
                "parent_version": v.lineage.parent_version,
                "data_window": v.lineage.data_window,
                "data_fingerprint": v.lineage.data_fingerprint[:16],
                "training_run_id": v.lineage.training_run_id,
            }
        )
    )
    print(f"Took {outcome.duration_s:.1f}s")


def run_cli(body: Callable[[], int]) -> int:
    """Run a job body; a bad config or data exits 2 and a failed training 1, with a message."""
    try:
        return body()
    except (ConfigError, DataError) as exc:
        kind = "config" if isinstance(exc, ConfigError) else "data"
        print(f"error: invalid {kind}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AutopilotError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
