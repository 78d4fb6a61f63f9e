"""Retraining efficiency: Autopilot's policy against periodic retraining, replayed offline.

``autopilot.simulate`` replays each stream in time order and scores, on the same
rows, three strategies: never retrain, retrain every N rows (periodic, N = a
tenth of the scored rows: ten retrains), and Autopilot's policy (drift and
performance triggers, offline gate, canary). Scores are prequential (each row is
predicted before its label is used). Streams:

- the project's generator (``autopilot.training.generator``): ``demo`` (covariate
  shift then concept drift), ``gradual`` (both, phased in), ``both`` (together);
- River's SEA generator (Street and Kim, 2001): three abrupt concept changes
  (variants 0 -> 1 -> 2 -> 3 at quarters of the stream) with 10 % label noise,
  made in a separate venv (``benchmarks/.venv-river``) and saved as CSV, then
  replayed from the CSV like any user's history.

The policy is the shipped example's (``examples/autopilot.yaml``: drift severity
high, 5 % performance drop, 60 s between trainings, 5-25-50-100 % canary), with
one row per second of the stream's clock. Goal: accuracy at least periodic's
with at most half its retrains. Prints a table; writes
``benchmarks/results/retraining_efficiency.json``.

Run: ``.venv/bin/python benchmarks/retraining_efficiency.py [--rows 20000]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _river  # noqa: E402

from autopilot.config import load_config  # noqa: E402
from autopilot.simulate import SimulationSettings, simulate  # noqa: E402
from autopilot.training.generator import drifting_stream  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

_SEA_CODE = r"""
import csv, json, sys
from river.datasets import synth
p = json.load(sys.stdin)
n, seed, noise = p["rows"], p["seed"], p["noise"]
q = n // 4
with open(p["path"], "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["t", "x0", "x1", "x2", "y"])
    i = 0
    for variant in range(4):  # abrupt: each quarter of the stream is one SEA concept
        for x, y in synth.SEA(variant=variant, noise=noise, seed=seed + variant).take(q):
            w.writerow([i, round(x[0], 5), round(x[1], 5), round(x[2], 5), int(y)])
            i += 1
print(json.dumps({"rows": 4 * q, "changes": [q, 2 * q, 3 * q]}))
"""


def sea_stream(rows: int, seed: int, path: Path) -> tuple[pd.DataFrame, list[int]]:
    """SEA concepts from River, written to ``path`` and read back as a user's CSV would be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = _river.run_river(_SEA_CODE, {"rows": rows, "seed": seed, "noise": 0.1,
                                       "path": str(path)})
    return pd.read_csv(path), list(out["changes"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", default=str(ROOT / "examples" / "autopilot.yaml"))
    parser.add_argument("--out", default=str(RESULTS / "retraining_efficiency.json"))
    args = parser.parse_args(argv)

    policy = load_config(args.config).policy
    # A second policy beside the shipped one: a shorter canary (25 % then 100 %, 100
    # samples a step) and 25 min between trainings, so a persistent covariate shift whose
    # candidates keep failing the gate costs fewer retrains.
    fast = policy.model_copy(update={
        "canary": policy.canary.model_copy(update={"steps": (0.25, 1.0),
                                                   "min_samples_per_step": 100}),
        "guards": policy.guards.model_copy(update={"min_interval_s": 1500.0}),
    })
    streams: list[tuple[str, pd.DataFrame, list[int]]] = []
    for scenario in ("demo", "gradual", "both"):
        s = drifting_stream(scenario, n_rows=args.rows, seed=args.seed)
        streams.append((f"generator:{scenario}", s.frame, [c.row for c in s.change_points]))
    # the CSV is an intermediate (regenerated each run), kept out of the results folder
    sea_csv = Path(tempfile.gettempdir()) / "autopilot-bench" / f"sea_{args.seed}.csv"
    sea, sea_changes = sea_stream(args.rows, args.seed, sea_csv)
    streams.append(("river:SEA", sea, sea_changes))

    settings = SimulationSettings(seed=args.seed)
    rows_out = []
    doc = {"config": args.config, "rows": args.rows, "seed": args.seed, "streams": {}}
    for name, frame, changes in streams:
        t0 = time.perf_counter()
        res = simulate(frame, "y", settings, time_column="t", policy=policy,
                       change_rows=changes)
        res_fast = simulate(frame, "y", replace(settings, strategies=("autopilot",)),
                            time_column="t", policy=fast, change_rows=changes)
        wall = time.perf_counter() - t0
        per = {s.name: s for s in res.strategies}
        per["autopilot-fast"] = replace(res_fast.strategies[0], name="autopilot-fast")
        strategies = list(per.values())
        auto, periodic = per["autopilot"], per["periodic"]
        goal_acc = auto.score >= periodic.score
        goal_retrains = auto.retrains <= periodic.retrains / 2
        fast_r = per["autopilot-fast"]
        doc["streams"][name] = {
            **res.to_dict(), "autopilot_fast": fast_r.to_dict(), "wall_s": wall,
            "goals": {"accuracy>=periodic": goal_acc, "retrains<=half_periodic": goal_retrains,
                      "fast: accuracy>=periodic": fast_r.score >= periodic.score,
                      "fast: retrains<=half_periodic":
                          fast_r.retrains <= periodic.retrains / 2},
        }
        for s in strategies:
            rec = [r.rows_to_recover for r in s.recoveries]
            rows_out.append((name, s.name, s.score, s.retrains, s.train_seconds, rec))
        print(f"{name}: autopilot {auto.score:.4f} with {auto.retrains} retrains "
              f"(fast canary: {fast_r.score:.4f} with {fast_r.retrains}) vs periodic "
              f"{periodic.score:.4f} with {periodic.retrains} "
              f"(accuracy ratio {auto.score / periodic.score:.3f}, retrain ratio "
              f"{auto.retrains / max(1, periodic.retrains):.2f}); goals: accuracy "
              f"{'met' if goal_acc else 'NOT met'}, retrains "
              f"{'met' if goal_retrains else 'NOT met'} ({wall:.0f} s)", flush=True)

    head = f"{'stream':<20} {'strategy':<14} {'accuracy':>9} {'retrains':>8} {'train s':>8}  " \
           f"recovery rows per change"
    print()
    print(head)
    print("-" * len(head))
    for name, strat, score, retrains, secs, rec in rows_out:
        rec_s = ", ".join("-" if r is None else str(r) for r in rec)
        print(f"{name:<20} {strat:<14} {score:>9.4f} {retrains:>8d} {secs:>8.1f}  {rec_s}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=str))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
