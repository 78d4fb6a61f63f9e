"""Autopilot's AutoML against FLAML with the same wall-clock budget, on the same split.

Four datasets that scikit-learn ships (breast_cancer, wine, digits, diabetes)
are split once (75/25, seeded, stratified for classification). Both systems get
the same training rows, the same time budget, two CPUs, and are scored by the
same code (``autopilot.training.metrics``) on the same held-out rows: ROC-AUC
for the binary task, accuracy for the multiclass ones, R² for regression.

FLAML (``flaml[automl]``, which brings LightGBM and XGBoost) runs in its own
virtual environment, ``benchmarks/.venv-flaml``, created on first use, because
its pins need not agree with ours; it receives the split as ``.npz`` files and
returns predictions. Autopilot runs in this interpreter on a local Ray.

Usage::

    python benchmarks/automl_vs_flaml.py [--budget 60] [--datasets breast_cancer wine]

Prints a table (scores, ratio Autopilot/FLAML, wall times) and writes
``benchmarks/results/automl_vs_flaml.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
FLAML_VENV = HERE / ".venv-flaml"
FLAML_REQUIREMENT = "flaml[automl]==2.7.0"
RESULTS = HERE / "results" / "automl_vs_flaml.json"
DATASETS = ("breast_cancer", "wine", "digits", "diabetes")

# Runs inside the FLAML venv: fit on the given split, write predictions.
_FLAML_SCRIPT = r"""
import json, sys, time
import numpy as np
from flaml import AutoML

d = np.load(sys.argv[1], allow_pickle=False)
spec = json.loads(sys.argv[2])
automl = AutoML()
t0 = time.perf_counter()
automl.fit(
    d["X_train"], d["y_train"],
    task=spec["task"], metric=spec["metric"], time_budget=spec["budget"],
    n_jobs=spec["n_jobs"], seed=spec["seed"], verbose=0,
)
fit_s = time.perf_counter() - t0
out = {"fit_s": fit_s, "best_estimator": automl.best_estimator,
       "best_config": automl.best_config}
if spec["task"] == "classification":
    np.savez(sys.argv[3], proba=automl.predict_proba(d["X_test"]),
             labels=automl.predict(d["X_test"]), classes=automl.classes_)
else:
    np.savez(sys.argv[3], values=automl.predict(d["X_test"]))
print(json.dumps(out, default=str))
"""


def load_dataset(name: str) -> tuple[pd.DataFrame, np.ndarray, str, str]:
    """(X, y, task, metric) of a bundled scikit-learn dataset."""
    from sklearn import datasets

    loader = {
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
        "digits": datasets.load_digits,
        "diabetes": datasets.load_diabetes,
    }[name]
    bunch = loader(as_frame=True)
    X = bunch.data.copy()
    X.columns = [str(c).replace(" ", "_") for c in X.columns]
    y = bunch.target.to_numpy()
    if name == "diabetes":
        return X, y.astype(float), "regression", "r2"
    metric = "roc_auc" if len(np.unique(y)) == 2 else "accuracy"
    return X, y, "classification", metric


def ensure_flaml_venv() -> Path:
    """The FLAML interpreter, creating its venv and installing FLAML if missing."""
    python = FLAML_VENV / "bin" / "python"
    if python.exists():
        probe = subprocess.run([str(python), "-c", "import flaml, lightgbm"], capture_output=True)
        if probe.returncode == 0:
            return python
    print(f"creating {FLAML_VENV} and installing {FLAML_REQUIREMENT} (once)...", flush=True)
    venv.EnvBuilder(with_pip=True, clear=not python.exists()).create(FLAML_VENV)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", FLAML_REQUIREMENT], check=True)
    return python


def run_flaml(python: Path, split: dict, task: str, metric: str, budget: float, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="flaml-bench-") as tmp:
        data, preds, script = Path(tmp) / "data.npz", Path(tmp) / "preds.npz", Path(tmp) / "f.py"
        np.savez(
            data,
            X_train=split["X_train"].to_numpy(dtype=float),
            y_train=split["y_train"],
            X_test=split["X_test"].to_numpy(dtype=float),
        )
        script.write_text(_FLAML_SCRIPT)
        spec = {"task": task, "metric": metric, "budget": budget, "n_jobs": 2, "seed": seed}
        t0 = time.perf_counter()
        proc = subprocess.run(
            [str(python), str(script), str(data), json.dumps(spec), str(preds)],
            capture_output=True,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "2"},
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"FLAML failed:\n{proc.stderr[-3000:]}")
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        with np.load(preds, allow_pickle=False) as p:
            out = {k: p[k] for k in p.files}
    return {"wall_s": wall, **info, "preds": out}


def run_autopilot(split: dict, task: str, metric: str, budget: float, seed: int, tracking: str):
    from autopilot.config import TrainingConfig
    from autopilot.schema import Column, FeatureSchema
    from autopilot.training.automl import run_automl

    X = split["X_train"]
    schema = FeatureSchema(
        tuple(Column(c, "numeric") for c in X.columns),
        target="target",
        task=task,  # type: ignore[arg-type]
    )
    cfg = TrainingConfig(
        metric=metric,
        num_trials=500,  # the wall clock is the binding limit, as for FLAML
        time_budget_s=budget,
        cv_folds=5,
        cpus_per_trial=0.5,
        ensemble_top_k=3,
        seed=seed,
    )
    t0 = time.perf_counter()
    res = run_automl(
        X,
        split["y_train"],
        schema,
        cfg,
        task=task,
        tracking_uri=tracking,
        experiment="bench-automl-vs-flaml",
        run_name=f"{metric}-{int(time.time())}",
        log_model=False,
    )
    wall = time.perf_counter() - t0
    model = res.best_model
    Xt = split["X_test"]
    if task == "classification":
        preds = {
            "proba": model.predict_proba(Xt),
            "labels": model.predict(Xt),
            "classes": np.asarray(model.classes_),
        }
    else:
        preds = {"values": model.predict(Xt)}
    return {
        "wall_s": wall,
        "tune_s": res.tune_duration_s,
        "best_family": res.best_family,
        "n_trials": res.n_trials,
        "n_complete": int((res.leaderboard["status"] == "complete").sum()),
        "cv_score": res.best_score,
        "preds": preds,
    }


def held_out_score(metric: str, y_test: np.ndarray, preds: dict) -> float:
    from autopilot.training.metrics import score

    if "values" in preds:
        return score(metric, y_test, values=preds["values"])
    return score(
        metric,
        y_test,
        labels=preds["labels"],
        proba=preds["proba"],
        classes=list(preds["classes"]),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per dataset and system")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_limits

    from autopilot.training.automl import ensure_ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    flaml_python = ensure_flaml_venv()
    ensure_ray(num_cpus=2)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as tmp:
        tracking = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        import mlflow

        # Create the tracking tables before any clock starts: one-time setup, like
        # FLAML's interpreter start-up, which is not in its budget either.
        mlflow.MlflowClient(tracking_uri=tracking).search_experiments()
        for name in args.datasets:
            X, y, task, metric = load_dataset(name)
            X_tr, X_te, y_tr, y_te = train_test_split(
                X,
                y,
                test_size=0.25,
                random_state=args.seed,
                stratify=y if task == "classification" else None,
            )
            split = {
                "X_train": X_tr.reset_index(drop=True),
                "y_train": y_tr,
                "X_test": X_te.reset_index(drop=True),
            }
            print(
                f"== {name}: {task}, {metric}, {len(X_tr)} train / {len(X_te)} test rows",
                flush=True,
            )
            with threadpool_limits(limits=1):  # the driver's refit shares the cores
                ap_res = run_autopilot(split, task, metric, args.budget, args.seed, tracking)
            fl_res = run_flaml(flaml_python, split, task, metric, args.budget, args.seed)
            ap_score = held_out_score(metric, y_te, ap_res["preds"])
            fl_score = held_out_score(metric, y_te, fl_res["preds"])
            row = {
                "dataset": name,
                "task": task,
                "metric": metric,
                "budget_s": args.budget,
                "autopilot": ap_score,
                "flaml": fl_score,
                "ratio": ap_score / fl_score if fl_score else float("nan"),
                "autopilot_wall_s": round(ap_res["wall_s"], 1),
                "flaml_wall_s": round(fl_res["wall_s"], 1),
                "autopilot_best": ap_res["best_family"],
                "flaml_best": fl_res["best_estimator"],
                "autopilot_trials": ap_res["n_trials"],
                "autopilot_complete": ap_res["n_complete"],
                "autopilot_cv": ap_res["cv_score"],
                # Both systems share the machine with whatever else runs: record how busy.
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
            rows.append(row)
            print(
                f"   autopilot {ap_score:.4f} ({row['autopilot_best']}, "
                f"{row['autopilot_trials']} trials, {row['autopilot_wall_s']}s)  "
                f"flaml {fl_score:.4f} ({row['flaml_best']}, {row['flaml_wall_s']}s)  "
                f"ratio {row['ratio']:.4f}",
                flush=True,
            )
    table = pd.DataFrame(rows)
    cols = [
        "dataset",
        "metric",
        "autopilot",
        "flaml",
        "ratio",
        "autopilot_wall_s",
        "flaml_wall_s",
        "autopilot_best",
        "flaml_best",
        "autopilot_trials",
    ]
    print()
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    met = int((table["autopilot"] >= table["flaml"] - 1e-12).sum())
    print(f"\nAutopilot >= FLAML on {met} of {len(table)} datasets (budget {args.budget:g}s each)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "budget_s": args.budget,
                "seed": args.seed,
                "split": "train_test_split(test_size=0.25, stratified for classification)",
                "flaml": FLAML_REQUIREMENT,
                "cpus": 2,
                "results": rows,
            },
            indent=2,
            default=float,
        )
    )
    print(f"wrote {RESULTS.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
