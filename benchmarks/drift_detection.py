"""Drift detection: Autopilot's detectors beside River's ADWIN and Page-Hinkley on the same streams.

Streams come from the project's generator (``autopilot.training.generator``),
``--seeds`` of each scenario, each change point an *episode*:

- ``covariate`` (abrupt covariate shift at 0.5 n: x2, amount and the segment mix move;
  the labelling rule stays), ``concept`` (abrupt concept drift at 0.5 n: the rule
  changes, inputs look the same, so only labelled performance shows it),
  ``gradual`` (a gradual covariate shift over [0.3 n, 0.4 n) and a gradual concept
  drift over [0.6 n, 0.7 n), each row switching with a probability rising linearly),
  and ``stationary`` (no change: false alarms only).
- In an episode a logistic pipeline (the project's family builder) is trained on the
  ``TRAIN`` stable rows before the monitored stretch, as the controller would after
  its last retrain (for the second change of ``gradual``: the rows after the first
  transition ended). The monitored stretch runs from the end of training to the
  change (false alarms) and on to ``MAX_DELAY`` rows after it (detection).

Every detector sees the same rows, the model's 0/1 error stream and its features
(labels arrive at once):

- ``autopilot``: what the product detects, each part counted at the controller tick
  where it would be seen (every ``EVERY`` rows from the episode start): the union of
  ``autopilot (retrain triggers)``, ``ap:adwin(error,tick)`` and ``ap:adwin(features)``.
- ``autopilot (retrain triggers)``: what the policy acts on: the drift trigger on a
  drift report of the last ``WINDOW`` rows against the training rows' reference
  profile, and the performance trigger on the last ``WINDOW`` labels against the
  model's CV accuracy (``autopilot.policy.triggers`` with the default config),
  checked every ``EVERY`` rows; either firing is an alarm.
- ``ap:drift_report``, ``ap:performance``: those two alone.
- ``ap:adwin(features)``: the monitor's ADWIN on each numeric feature
  (``autopilot.monitor.FeatureWatch``, the class the monitor runs; numeric features
  from the training rows' reference profile), and ``ap:adwin(error,tick)``: ADWIN on
  the error stream. Both are what the controller journals as ``detected``: the
  *first* alarm of each detector per episode (the episode starts with a new champion,
  which resets them; a later alarm of the same detector is not journalled again), and
  seen at the next tick: an alarm at row r of the episode counts at row
  ``EVERY * ceil(r / EVERY)``, which adds up to ``EVERY - 1`` rows (about
  ``EVERY / 2`` on average) to the per-row detector's delay.
- ``ap:page_hinkley``, ``ap:adwin``, ``ap:ddm``: ``autopilot.stats`` streaming
  detectors with defaults on the error stream, every alarm at its own row.
- ``river:adwin``, ``river:page_hinkley``: River's detectors with their defaults on
  the error stream and on each numeric feature (an alarm on any is an alarm), run in
  a separate venv (``benchmarks/.venv-river``) over the saved streams.
- ``river:adwin(error)``: River's ADWIN on the error stream only.

Scoring: a change counts as detected when the first alarm at or after it comes
within ``MAX_DELAY`` rows; delay is that alarm's row minus the change row (the start
of the transition for gradual changes). Alarms before the change, and every alarm on
``stationary`` streams, are false alarms, per 10,000 monitored rows. After an alarm
a detector starts afresh (a controller acts on an alarm), so one change counts once.
Goals: recall >= 90 %, false alarms <= 1 per 10,000 rows, delay no worse than River's
ADWIN.

Run: ``.venv/bin/python benchmarks/drift_detection.py [--seeds 8]``; writes
``benchmarks/results/drift_detection.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _river  # noqa: E402

from autopilot.config import PolicyConfig  # noqa: E402
from autopilot.monitor import FeatureWatch  # noqa: E402
from autopilot.policy.triggers import drift_trigger, performance_trigger  # noqa: E402
from autopilot.policy.types import Evidence  # noqa: E402
from autopilot.training.data import coerce_features, infer_schema  # noqa: E402
from autopilot.training.families import build_pipeline  # noqa: E402
from autopilot.training.generator import drifting_stream  # noqa: E402

ROWS = 20_000
TRAIN = 2_000
WINDOW = 500  # the drift trigger's default min_rows: the smallest window the policy judges
EVERY = 50  # one controller tick at 5 requests/s and the default 10 s tick
MAX_DELAY = 2_500
SCENARIOS = ("covariate", "concept", "gradual", "stationary")
NUMERIC = ("x1", "x2", "x3", "amount")
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Monitored:
    """One episode: a model trained before ``start``, rows ``start..stop`` monitored."""

    kind: str  # "<kind>/<style>" of the change, or "none"
    seed: int
    start: int  # first monitored row (absolute)
    change: int | None  # absolute row of the change, None on a stationary stream
    errors: np.ndarray  # 0/1 per monitored row
    frame: pd.DataFrame  # features of the monitored rows
    baseline: float  # CV accuracy at training time
    reference: pd.DataFrame  # training features


def episodes(scenario: str, seed: int) -> list[Monitored]:
    """The episodes of one generated stream (one per change point, or one if none)."""
    from sklearn.model_selection import cross_val_score

    stream = drifting_stream(scenario, n_rows=ROWS, seed=seed)
    frame = stream.frame
    schema = infer_schema(frame.iloc[:TRAIN], "y", time_column="t")
    X = coerce_features(frame, schema)
    y = frame["y"].to_numpy()
    cps = list(stream.change_points)
    plans: list[tuple[int, int | None, int, str]] = []  # (train_end, change, stop, kind)
    if not cps:
        plans.append((TRAIN, None, ROWS, "none"))
    prev_end = 0
    for i, cp in enumerate(cps):
        nxt = cps[i + 1].row if i + 1 < len(cps) else ROWS
        train_end = prev_end + TRAIN  # the first stable rows since the last transition
        plans.append((train_end, cp.row, min(nxt, cp.row + MAX_DELAY),
                      f"{cp.kind}/{cp.style}"))
        prev_end = cp.row + cp.width
    out = []
    for train_end, change, stop, kind in plans:
        lo = train_end - TRAIN
        pipe = build_pipeline("logistic", {}, schema)
        Xt, yt = X.iloc[lo:train_end], y[lo:train_end]
        baseline = float(cross_val_score(pipe, Xt, yt, cv=5).mean())
        pipe.fit(Xt, yt)
        pred = pipe.predict(X.iloc[train_end:stop])
        out.append(Monitored(
            kind, seed, train_end, change, (pred != y[train_end:stop]).astype(float),
            X.iloc[train_end:stop].reset_index(drop=True), baseline, Xt,
        ))
    return out


# ------------------------------------------------------------------ our detectors


def windowed_alarms(m: Monitored, use_drift: bool, use_perf: bool, every: int = EVERY,
                    window: int = WINDOW) -> list[int]:
    """Alarms of the policy's drift/performance triggers checked every EVERY rows.

    The performance trigger gets both its views, as the controller gives them: the
    window's accuracy against the baseline, and the located change ADWIN finds in the
    error stream (``Evidence.error_change``, built as the monitor builds it).
    """
    from autopilot.policy.types import StreamAlarm
    from autopilot.stats import ADWIN, ReferenceProfile, locate_shift

    policy = PolicyConfig()
    profile = ReferenceProfile.fit(m.reference)
    alarms: list[int] = []
    start = 0  # a fresh window begins here (after an alarm the controller would act)
    n = len(m.errors)
    adwin, fed, since_reset, change = ADWIN(), 0, 0, None
    for end in range(every, n + 1, every):
        if use_perf:
            for i in range(fed, end):
                if adwin.update(m.errors[i]):
                    seg = m.errors[since_reset:i + 1]
                    cp = locate_shift(seg)
                    # online score = 1 - error: accuracy before and after the change
                    change = (since_reset + cp.index, 1.0 - cp.mean_before,
                              1.0 - cp.mean_after)
                    since_reset = i + 1
            fed = end
        lo = max(start, end - window)
        if end - lo < window // 2:
            continue
        fired = False
        if use_drift:
            report = profile.compare(m.frame.iloc[lo:end])
            ev = Evidence(model="bench", now=float(end), drift_severity=report.severity,
                          drift_rows=end - lo)
            fired = drift_trigger(ev, policy.triggers.drift).fired
        if use_perf and not fired:
            acc = 1.0 - float(m.errors[lo:end].mean())
            alarm = None if change is None else StreamAlarm(
                "adwin", float(change[0]), end - change[0], change[1], change[2])
            ev = Evidence(model="bench", now=float(end), metric_value=acc,
                          baseline_value=m.baseline, metric_labels=end - lo,
                          error_change=alarm)
            fired = performance_trigger(ev, policy.triggers.performance).fired
        if fired:
            alarms.append(m.start + end)
            start = end
            change = None  # acted on (the controller resets the detector)
            adwin, since_reset = ADWIN(), end
    return alarms


def numeric_features(m: Monitored) -> list[str]:
    """The numeric features of the episode's reference profile (what the monitor watches)."""
    from autopilot.stats import ReferenceProfile

    profile = ReferenceProfile.fit(m.reference)
    return [f.name for f in profile.features if f.kind == "numeric"]


def feature_watch_alarms(m: Monitored, numeric: list[str]) -> dict[str, list[int]]:
    """Every alarm of the monitor's :class:`FeatureWatch` per feature, at its own row.

    The values are the ones River gets (rounded to 6 decimals for the JSON hand-over),
    so the two can be compared alarm for alarm.
    """
    cols = {f: m.frame[f].round(6).to_numpy() for f in numeric}
    watch = FeatureWatch()
    out: dict[str, list[int]] = {f: [] for f in numeric}
    for i in range(len(m.frame)):
        for f, _ in watch.update({f: cols[f][i] for f in numeric}, numeric):
            out[f].append(m.start + watch.n)
    return out


def at_tick(m: Monitored, alarms: list[int], every: int = EVERY) -> list[int]:
    """Where the controller, looking every ``every`` rows from the episode start, sees them."""
    return sorted({m.start + every * -(-(a - m.start) // every) for a in alarms})


def journalled(m: Monitored, per_detector: list[list[int]], every: int = EVERY) -> list[int]:
    """What ``detected`` entries show: each detector's first alarm, at the next tick."""
    return at_tick(m, [a[0] for a in per_detector if a], every)


def streaming_alarms(m: Monitored, factory) -> list[int]:
    det = factory()
    alarms = []
    for i, e in enumerate(m.errors):
        if det.update(float(e)):
            alarms.append(m.start + i + 1)
            det.reset()
    return alarms


# ------------------------------------------------------------------------ River

_RIVER_CODE = r"""
import json, sys
from river import drift
payload = json.load(sys.stdin)
out = []
for s in payload["streams"]:
    res = {}
    for name, make in (("adwin", drift.ADWIN), ("page_hinkley", drift.PageHinkley)):
        for sig, values in s["signals"].items():
            det = make()
            alarms = []
            for i, v in enumerate(values):
                if v is None:  # a missing feature value is not an observation
                    continue
                det.update(v)
                if det.drift_detected:
                    alarms.append(s["offset"] + i + 1)
                    det = make()
            res[f"{name}:{sig}"] = alarms
    out.append(res)
print(json.dumps(out))
"""


def river_alarms(monitored: list[Monitored]) -> list[dict[str, list[int]]]:
    streams = []
    for m in monitored:
        signals = {"error": m.errors.tolist()}
        for f in NUMERIC:
            col = m.frame[f].round(6)
            signals[f] = [None if np.isnan(v) else float(v) for v in col]
        streams.append({"offset": m.start, "signals": signals})
    return _river.run_river(_RIVER_CODE, {"streams": streams})


# ---------------------------------------------------------------------- scoring


def score(monitored: list[Monitored], alarms: list[list[int]]) -> dict[str, float]:
    detected = changes = false = 0
    fa_rows = 0
    delays: list[float] = []
    per_kind: dict[str, list[float]] = {}
    for m, a in zip(monitored, alarms, strict=True):
        quiet_end = m.change if m.change is not None else m.start + len(m.errors)
        fa = [x for x in a if x < quiet_end]
        false += len(fa)
        fa_rows += quiet_end - m.start
        if m.change is None:
            continue
        changes += 1
        hits = [x for x in a if m.change <= x < m.change + MAX_DELAY]
        if hits:
            detected += 1
            delays.append(hits[0] - m.change)
            per_kind.setdefault(m.kind, []).append(hits[0] - m.change)
        else:
            per_kind.setdefault(m.kind, []).append(float("nan"))
    out = {
        "recall": detected / changes if changes else float("nan"),
        "false_alarms_per_10k": 10_000 * false / fa_rows,
        "mean_delay": float(np.mean(delays)) if delays else float("nan"),
        "changes": changes,
        "detected": detected,
        "false_alarms": false,
    }
    for kind, ds in per_kind.items():
        arr = np.array(ds, dtype=float)
        out[f"recall[{kind}]"] = float(np.mean(~np.isnan(arr)))
        out[f"delay[{kind}]"] = float(np.nanmean(arr)) if (~np.isnan(arr)).any() else float("nan")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--every", type=int, default=EVERY,
                        help="rows between two checks of the policy's triggers (a tick)")
    parser.add_argument("--window", type=int, default=WINDOW, help="rows in the checked window")
    parser.add_argument("--out", default=str(RESULTS / "drift_detection.json"))
    args = parser.parse_args(argv)
    from autopilot.stats import ADWIN, DDM, PageHinkley

    t0 = time.perf_counter()
    monitored = [e for sc in SCENARIOS for seed in range(args.seeds) for e in episodes(sc, seed)]
    kinds = sorted({m.kind for m in monitored if m.change is not None})
    rows = sum(len(m.errors) for m in monitored)
    print(f"{len(monitored)} episodes, {rows} monitored rows "
          f"({time.perf_counter() - t0:.1f} s to generate, train and score)", flush=True)

    detectors: dict[str, list[list[int]]] = {}
    timings: dict[str, float] = {}

    def timed(name, fn):
        t = time.perf_counter()
        detectors[name] = [fn(m) for m in monitored]
        timings[name] = time.perf_counter() - t

    timed("ap:drift_report", lambda m: windowed_alarms(m, True, False, args.every, args.window))
    timed("ap:performance", lambda m: windowed_alarms(m, False, True, args.every, args.window))
    detectors["autopilot (retrain triggers)"] = [
        sorted(set(a) | set(b))
        for a, b in zip(detectors["ap:drift_report"], detectors["ap:performance"], strict=True)
    ]
    timings["autopilot (retrain triggers)"] = (timings["ap:drift_report"]
                                               + timings["ap:performance"])
    timed("ap:page_hinkley", lambda m: streaming_alarms(m, PageHinkley))
    timed("ap:adwin", lambda m: streaming_alarms(m, ADWIN))
    timed("ap:ddm", lambda m: streaming_alarms(m, DDM))
    numeric = numeric_features(monitored[0])
    if sorted(numeric) != sorted(NUMERIC):
        raise SystemExit(f"the reference profile's numeric features {numeric} are not the "
                         f"ones River watches {list(NUMERIC)}")
    t = time.perf_counter()
    watched = [feature_watch_alarms(m, numeric_features(m)) for m in monitored]
    timings["ap:adwin(features)"] = time.perf_counter() - t
    detectors["ap:adwin(features)"] = [journalled(m, list(w.values()), args.every)
                                       for m, w in zip(monitored, watched, strict=True)]
    timings["ap:adwin(error,tick)"] = timings["ap:adwin"]
    detectors["ap:adwin(error,tick)"] = [journalled(m, [a], args.every)
                                         for m, a in zip(monitored, detectors["ap:adwin"],
                                                         strict=True)]
    detectors["autopilot"] = [
        sorted(set(a) | set(b) | set(c)) for a, b, c in zip(
            detectors["autopilot (retrain triggers)"], detectors["ap:adwin(error,tick)"],
            detectors["ap:adwin(features)"], strict=True)
    ]
    timings["autopilot"] = (timings["autopilot (retrain triggers)"] + timings["ap:adwin"]
                            + timings["ap:adwin(features)"])

    t = time.perf_counter()
    river = river_alarms(monitored)
    river_s = time.perf_counter() - t
    for name in ("adwin", "page_hinkley"):
        detectors[f"river:{name}"] = [
            sorted({x for key, xs in r.items() if key.startswith(name + ":") for x in xs})
            for r in river
        ]
        timings[f"river:{name}"] = river_s / 2
    detectors["river:adwin(error)"] = [r["adwin:error"] for r in river]
    timings["river:adwin(error)"] = float("nan")
    # The monitor's feature detectors are River's ADWIN, alarm for alarm, before the tick
    # and first-alarm rules above are applied.
    same = sum(w[f] == r[f"adwin:{f}"] for w, r in zip(watched, river, strict=True)
               for f in numeric)
    parity = {"feature_streams": len(monitored) * len(numeric), "identical_alarms": same}
    print(f"monitor FeatureWatch vs River ADWIN on the features: {same} of "
          f"{parity['feature_streams']} streams with identical alarms", flush=True)

    first = ["autopilot", "autopilot (retrain triggers)", "ap:drift_report", "ap:performance",
             "ap:adwin(error,tick)", "ap:adwin(features)"]
    order = first + [k for k in detectors if k not in first]
    table = {name: score(monitored, detectors[name]) for name in order}
    head = (f"{'detector':<29} {'recall':>7} {'FA/10k':>7} {'delay':>7}   "
            + "  ".join(f"{k.split('/')[0][:3]}/{k.split('/')[-1][:3]:<5}" for k in kinds))
    print(head + "   (per kind: recall delay)")
    print("-" * len(head))
    for name, r in table.items():
        per_kind = "  ".join(
            f"{r.get(f'recall[{k}]', float('nan')):4.0%} {r.get(f'delay[{k}]', float('nan')):4.0f}"
            for k in kinds
        )
        print(f"{name:<29} {r['recall']:>7.1%} {r['false_alarms_per_10k']:>7.2f} "
              f"{r['mean_delay']:>7.0f}   {per_kind}")
    ap, adw = table["autopilot"], table["river:adwin"]
    print("autopilot per kind, delay vs River ADWIN: " + "; ".join(
        f"{k} {ap[f'delay[{k}]']:.1f} vs {adw[f'delay[{k}]']:.1f}" for k in kinds))
    goals = {
        "recall>=0.9": ap["recall"] >= 0.9,
        "false_alarms_per_10k<=1": ap["false_alarms_per_10k"] <= 1.0,
        "delay<=river_adwin": ap["mean_delay"] <= adw["mean_delay"],
    }
    print(f"autopilot delay / river ADWIN delay = {ap['mean_delay'] / adw['mean_delay']:.2f}; "
          f"goals: {goals}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "streams": {"rows": ROWS, "train": TRAIN, "seeds": args.seeds,
                    "scenarios": list(SCENARIOS), "episodes": len(monitored),
                    "monitored_rows": rows},
        "window": args.window, "every": args.every, "max_delay": MAX_DELAY,
        "results": table, "seconds": timings, "goals": goals,
        "feature_watch_vs_river": parity,
    }, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
