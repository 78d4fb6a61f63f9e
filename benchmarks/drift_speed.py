"""Drift report against a stored reference profile vs a plain scipy KS loop.

100,000 rows x 50 numeric features, reference and current window of the same
size, 10 features shifted. In one run, timed alternately (best of
``--repeats``):

* ``scipy loop``: ``scipy.stats.ks_2samp(ref[c], cur[c])`` for every feature
  (KS statistic and p-value only);
* ``profile (sketch)``: ``ReferenceProfile.compare(current)`` with the default
  profile (at most 10,000 sorted values per feature), reloaded from its JSON
  form as the monitor does; computes KS (statistic and p-value), PSI,
  Jensen-Shannon, Wasserstein, KL and Hellinger for every feature, the Holm
  correction, severities and recommendations;
* ``profile (exact)``: the same with every reference value kept
  (``max_sorted=None``), whose KS equals scipy's number for number.

Prints a table with both times and the ratio, and writes
``benchmarks/results/drift_speed.json``. Run: ``.venv/bin/python benchmarks/drift_speed.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy
from scipy.stats import ks_2samp

from autopilot.stats import ReferenceProfile
from autopilot.stats.drift import _ks_pvalue

RESULTS = Path(__file__).resolve().parent / "results" / "drift_speed.json"


def make_frames(rng: np.random.Generator, n_rows: int, n_features: int,
                n_shifted: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current frames; the first ``n_shifted`` features drift."""
    makers: list[Callable[[int], np.ndarray]] = [
        lambda n: rng.normal(0.0, 1.0, n),
        lambda n: rng.lognormal(0.0, 0.5, n),
        lambda n: rng.exponential(2.0, n),
        lambda n: rng.uniform(-1.0, 1.0, n),
        lambda n: np.round(rng.normal(50.0, 10.0, n)),  # integer-valued: ties
    ]
    ref, cur = {}, {}
    for j in range(n_features):
        make = makers[j % len(makers)]
        r = make(n_rows)
        c = make(n_rows)
        if j < n_shifted:
            c = c + (0.02 + 0.05 * j) * r.std()  # from negligible to large shifts
        ref[f"f{j:02d}"] = r
        cur[f"f{j:02d}"] = c
    return pd.DataFrame(ref), pd.DataFrame(cur)


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--shifted", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    ref, cur = make_frames(rng, args.rows, args.features, args.shifted)

    t0 = time.perf_counter()
    sketch = ReferenceProfile.fit(ref)
    fit_sketch = time.perf_counter() - t0
    stored = json.dumps(sketch.to_dict())
    sketch = ReferenceProfile.from_dict(json.loads(stored))
    t0 = time.perf_counter()
    exact = ReferenceProfile.fit(ref, max_sorted=None)
    fit_exact = time.perf_counter() - t0

    ref_cols = {c: ref[c].to_numpy() for c in ref.columns}
    cur_cols = {c: cur[c].to_numpy() for c in cur.columns}

    def scipy_loop() -> dict[str, tuple[float, float]]:
        return {
            c: (float(r.statistic), float(r.pvalue))
            for c in ref.columns
            for r in [ks_2samp(ref_cols[c], cur_cols[c])]
        }

    times: dict[str, float] = {"scipy": float("inf"), "sketch": float("inf"),
                               "exact": float("inf")}
    outs: dict[str, Any] = {}
    # Alternate the contenders so background load on the shared box hits all alike.
    for _ in range(args.repeats):
        for name, fn in (("scipy", scipy_loop), ("sketch", lambda: sketch.compare(cur)),
                         ("exact", lambda: exact.compare(cur))):
            t, outs[name] = best_time(fn, 1)
            times[name] = min(times[name], t)

    scipy_res = outs["scipy"]
    # The KS p-value (scipy's exact or kstwo distribution) costs the same in both
    # contenders; timed apart so the ratio can be read knowing what is shared.
    t0 = time.perf_counter()
    for c in ref.columns:
        _ks_pvalue(scipy_res[c][0], ref[c].size, cur[c].size)
    pvalue_seconds = time.perf_counter() - t0
    agreement: dict[str, dict[str, float]] = {}
    for name in ("sketch", "exact"):
        d_err = p_err = 0.0
        for f in outs[name].features:
            ks = f.check("ks")
            d_ref, p_ref = scipy_res[f.feature]
            d_err = max(d_err, abs(ks.statistic - d_ref))
            p_err = max(p_err, abs(ks.p_value - p_ref))
            assert {"ks", "psi", "jensen_shannon", "wasserstein"} <= {r.method for r in f.checks}
        agreement[name] = {"max_abs_ks_statistic_diff": d_err, "max_abs_ks_p_value_diff": p_err}

    rows = [
        ("scipy ks_2samp loop", "KS", times["scipy"], 1.0),
        ("profile.compare (sketch 10k)", "KS+PSI+JS+W1+KL+H, Holm, severity",
         times["sketch"], times["scipy"] / times["sketch"]),
        ("profile.compare (exact)", "KS+PSI+JS+W1+KL+H, Holm, severity",
         times["exact"], times["scipy"] / times["exact"]),
    ]
    print(f"drift speed: {args.rows:,} rows x {args.features} features, "
          f"{args.shifted} shifted, best of {args.repeats}")
    print(f"{'contender':<30} {'computes':<36} {'seconds':>8} {'speed-up':>9}")
    for name, what, secs, ratio in rows:
        print(f"{name:<30} {what:<36} {secs:8.3f} {ratio:8.2f}x")
    print(f"KS p-value evaluation alone (shared by all three): {pvalue_seconds:.3f} s")
    print(f"profile fit, once: sketch {fit_sketch:.2f} s, exact {fit_exact:.2f} s; "
          f"stored JSON {len(stored) / 1e6:.1f} MB")
    for name, agree in agreement.items():
        print(f"KS vs scipy ({name}): max |dD| {agree['max_abs_ks_statistic_diff']:.2e}, "
              f"max |dp| {agree['max_abs_ks_p_value_diff']:.2e}")
    report = outs["sketch"]
    print(f"report: {len(report.drifted_features)} drifted, severity {report.severity}, "
          f"share {report.share_drifted:.2f}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "drift_speed",
        "rows": args.rows,
        "features": args.features,
        "shifted": args.shifted,
        "repeats": args.repeats,
        "seed": args.seed,
        "seconds": {"scipy_ks_loop": times["scipy"], "profile_sketch": times["sketch"],
                    "profile_exact": times["exact"]},
        "speedup_vs_scipy": {"profile_sketch": times["scipy"] / times["sketch"],
                             "profile_exact": times["scipy"] / times["exact"]},
        "ks_pvalue_seconds_shared": pvalue_seconds,
        "profile_fit_seconds": {"sketch": fit_sketch, "exact": fit_exact},
        "stored_profile_json_bytes": len(stored),
        "ks_agreement_with_scipy": agreement,
        "per_feature_methods": sorted({r.method for r in report.features[0].checks}),
        "severity_counts": {s: sum(f.severity == s for f in report.features)
                            for s in ("none", "low", "medium", "high", "critical")},
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "scipy": scipy.__version__, "pandas": pd.__version__},
    }, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
