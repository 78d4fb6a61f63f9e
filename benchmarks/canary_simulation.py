"""Canary promotion rates under A/A and under a real 2-point uplift, checked every tick.

In one run, on synthetic Bernoulli arms (champion accuracy 0.80; challenger
0.80 for A/A, 0.82 for the uplift), with the same traffic per tick and the
same labelled-row budget:

* ``autopilot``: the real policy. :func:`autopilot.policy.simulate.simulate_canary`
  calls ``decide``/``next_state`` after every tick: SRM check, guardrails,
  always-valid mSPRT, ramp 5 % -> 25 % -> 50 %, promote / roll back / archive.
* ``naive peeking`` (peer): a fixed-horizon two-proportion z-test at alpha
  0.05 on a 50/50 split, looked at after every tick, promoting at the first
  ``z > 1.96``: what a dashboard refreshed every tick does.
* ``fixed horizon`` (peer): the same z-test looked at once, when the budget is
  spent: valid, but it never stops early.
* ``autopilot shadow`` / ``autopilot bandit``: the policy in its other canary
  modes (``--mode-runs`` runs each): shadow mirrors every request to the
  challenger; bandit allocates by Thompson sampling with a floor.

Prints a table and writes ``benchmarks/results/canary_simulation.json``.
Run: ``.venv/bin/python benchmarks/canary_simulation.py [--runs 1000]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from autopilot.config import CanaryConfig, PolicyConfig
from autopilot.policy.simulate import simulate_canary

RESULTS = Path(__file__).resolve().parent / "results" / "canary_simulation.json"
Z = 1.959963984540054  # two-sided 5 %


def z_test_paths(p_a: float, p_b: float, runs: int, ticks: int, per_tick: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """z after every tick of a 50/50 split: (z of shape (runs, ticks), labelled per tick)."""
    half = per_tick // 2
    sa = rng.binomial(half, p_a, size=(runs, ticks)).cumsum(axis=1)
    sb = rng.binomial(half, p_b, size=(runs, ticks)).cumsum(axis=1)
    n = half * np.arange(1, ticks + 1)
    pooled = (sa + sb) / (2 * n)
    se = np.sqrt(pooled * (1 - pooled) * 2 / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (sb - sa) / n / se, 0.0)
    return z, 2 * n


def naive_peeking(z: np.ndarray, labelled: np.ndarray) -> dict[str, float]:
    """First crossing of |z| > Z decides; promote if it was upward."""
    hit = np.abs(z) > Z
    first = np.where(hit.any(axis=1), hit.argmax(axis=1), z.shape[1] - 1)
    up = hit.any(axis=1) & (z[np.arange(z.shape[0]), first] > 0)
    return {"promote_rate": float(up.mean()), "mean_labelled": float(labelled[first].mean())}


def fixed_horizon(z: np.ndarray, labelled: np.ndarray) -> dict[str, float]:
    return {"promote_rate": float((z[:, -1] > Z).mean()), "mean_labelled": float(labelled[-1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--requests-per-tick", type=int, default=1000)
    ap.add_argument("--max-samples", type=int, default=40_000)
    ap.add_argument("--mode-runs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()

    policy = PolicyConfig(canary=CanaryConfig(max_samples=args.max_samples, max_duration_s=1e9))
    ticks = args.max_samples // args.requests_per_tick
    rows: list[dict[str, Any]] = []
    for label, p_b in (("A/A", 0.80), ("uplift +2pt", 0.82)):
        t0 = time.perf_counter()
        sim = simulate_canary(0.80, p_b, args.runs, policy, np.random.default_rng(args.seed),
                              requests_per_tick=args.requests_per_tick)
        took = time.perf_counter() - t0
        rows.append({"scenario": label, "method": "autopilot", "promote_rate": sim.promote_rate,
                     "mean_labelled": sim.mean_labelled, "outcomes": sim.outcomes,
                     "seconds": took})
        z, lab = z_test_paths(0.80, p_b, args.runs, ticks, args.requests_per_tick,
                              np.random.default_rng(args.seed + 1))
        rows.append({"scenario": label, "method": "naive peeking", **naive_peeking(z, lab)})
        rows.append({"scenario": label, "method": "fixed horizon", **fixed_horizon(z, lab)})
        for mode in ("shadow", "bandit"):
            pol = PolicyConfig(canary=CanaryConfig(mode=mode, max_samples=args.max_samples,
                                                   max_duration_s=1e9))
            t0 = time.perf_counter()
            sim = simulate_canary(0.80, p_b, args.mode_runs, pol,
                                  np.random.default_rng(args.seed + 2),
                                  requests_per_tick=args.requests_per_tick)
            rows.append({"scenario": label, "method": f"autopilot {mode}",
                         "promote_rate": sim.promote_rate, "mean_labelled": sim.mean_labelled,
                         "outcomes": sim.outcomes, "runs": args.mode_runs,
                         "seconds": time.perf_counter() - t0})

    print(f"{args.runs} runs per scenario ({args.mode_runs} for shadow/bandit), "
          f"{args.requests_per_tick} requests/tick, budget {args.max_samples} labelled rows")
    print(f"{'scenario':<13} {'method':<18} {'promote rate':>12} {'mean labelled':>14}")
    for r in rows:
        print(f"{r['scenario']:<13} {r['method']:<18} {r['promote_rate']:>12.3f} "
              f"{r['mean_labelled']:>14.0f}")
    aa = next(r for r in rows if r["scenario"] == "A/A" and r["method"] == "autopilot")
    up = next(r for r in rows if r["scenario"] != "A/A" and r["method"] == "autopilot")
    print(f"autopilot: A/A promote rate {aa['promote_rate']:.3f} (target <= 0.05), "
          f"uplift promote rate {up['promote_rate']:.3f} (target >= 0.80)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "canary_simulation",
        "runs": args.runs,
        "requests_per_tick": args.requests_per_tick,
        "mode_runs": args.mode_runs,
        "max_samples": args.max_samples,
        "seed": args.seed,
        "python": platform.python_version(),
        "aa_promote_rate": aa["promote_rate"],
        "uplift_promote_rate": up["promote_rate"],
        "rows": rows,
    }, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
