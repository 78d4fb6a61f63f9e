"""How long a 20-trial AutoML search on breast_cancer takes on 2 CPUs.

Measures ``run_automl`` end to end (Tune search with 5-fold CV and ASHA, the
ensemble, the refit of the winner and the MLflow logging of every trial) on a
local Ray with 2 CPUs, trials at 0.5 CPU each. Ray start-up is reported
separately. The time budget is set far above the expected time so that the
trial count, not the clock, ends the search.

Usage::

    python benchmarks/automl_speed.py [--trials 20] [--folds 5]

Writes ``benchmarks/results/automl_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "automl_speed.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--cpus-per-trial", type=float, default=0.5)
    args = ap.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    import mlflow
    from sklearn.datasets import load_breast_cancer

    from autopilot.config import TrainingConfig
    from autopilot.schema import Column, FeatureSchema
    from autopilot.training.automl import ensure_ray, run_automl

    bunch = load_breast_cancer(as_frame=True)
    X = bunch.data.copy()
    X.columns = [c.replace(" ", "_") for c in X.columns]
    y = bunch.target.to_numpy()
    schema = FeatureSchema(
        tuple(Column(c, "numeric") for c in X.columns), "target", "classification", ("0", "1")
    )
    t0 = time.perf_counter()
    ensure_ray(num_cpus=2)
    ray_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="automl-speed-") as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        mlflow.MlflowClient(tracking_uri=uri).search_experiments()  # create tables first
        cfg = TrainingConfig(
            num_trials=args.trials,
            time_budget_s=600,
            cv_folds=args.folds,
            cpus_per_trial=args.cpus_per_trial,
            ensemble_top_k=3,
            seed=0,
        )
        t1 = time.perf_counter()
        res = run_automl(
            X,
            y,
            schema,
            cfg,
            task="classification",
            tracking_uri=uri,
            experiment="speed",
            run_name="speed",
        )
        total = time.perf_counter() - t1
    lb = res.leaderboard
    out = {
        "trials": res.n_trials,
        "folds": args.folds,
        "cpus_per_trial": args.cpus_per_trial,
        "ray_init_s": round(ray_s, 1),
        "automl_s": round(total, 1),
        "tune_s": round(res.tune_duration_s, 1),
        "complete": int((lb["status"] == "complete").sum()),
        "stopped_early": int((lb["status"] == "stopped").sum()),
        "errors": int((lb["status"] == "error").sum()),
        "families": sorted(set(lb["family"]) - {"ensemble"}),
        "best_family": res.best_family,
        "best_cv_roc_auc": round(res.best_score, 4),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(out, indent=2))
    print(
        f"\n{res.n_trials}-trial search: {total:.1f}s end to end "
        f"(Tune {res.tune_duration_s:.1f}s), plus {ray_s:.1f}s Ray start-up; "
        f"machine load {out['load_avg_1m']}"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
