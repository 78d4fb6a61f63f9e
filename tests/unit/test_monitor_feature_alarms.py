"""MonitorStore.feature_alarms: ADWIN on each numeric input feature of a model's served rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from autopilot.monitor import FeatureWatch, MonitorStore
from autopilot.stats import ADWIN, ReferenceProfile

QUIET, SHIFTED = 6000, 1500  # rows before and after x's mean moves from 0 to 1


def _stream(seed: int = 7) -> pd.DataFrame:
    """x shifts at row QUIET; z stays put; code (categorical) and s change completely too."""
    rng = np.random.default_rng(seed)
    n = QUIET + SHIFTED
    x = rng.normal(0.0, 1.0, n)
    x[QUIET:] += 1.0
    code = np.where(np.arange(n) < QUIET, 0, 1)  # a category coded as a number
    s = np.where(np.arange(n) < QUIET, "a", "b")
    return pd.DataFrame({"x": x, "z": rng.normal(0.0, 1.0, n), "code": code, "s": s})


def _profile(frame: pd.DataFrame) -> dict[str, Any]:
    return ReferenceProfile.fit(frame.iloc[:1000], {"code": "categorical"}).to_dict()


def _records(frame: pd.DataFrame, start: int = 0, *, version: str = "1",
             shadow: bool = False) -> list[dict[str, Any]]:
    out = []
    for i, row in enumerate(frame.to_dict("records"), start=start):
        out.append({"request_id": f"r{i}", "model": "m", "version": version,
                    "features": {k: (v.item() if hasattr(v, "item") else v)
                                 for k, v in row.items()},
                    "prediction": 1, "proba": None, "latency_ms": 2.0, "error": None,
                    "cache_hit": False, "caller_key": None, "ts": 1000.0 + i,
                    "shadow": shadow})
    return out


def _ingest(store: MonitorStore, frame: pd.DataFrame, start: int = 0, **kw: Any) -> None:
    recs = _records(frame, start, **kw)
    for lo in range(0, len(recs), 500):
        assert store.ingest(recs[lo:lo + 500]) == len(recs[lo:lo + 500])


@pytest.fixture()
def frame() -> pd.DataFrame:
    return _stream()


def _store(path: Path, frame: pd.DataFrame) -> MonitorStore:
    store = MonitorStore(path, window_rows=300)
    store.configure("m", task="classification", classes=[0, 1], target="y")
    store.set_reference("m", "1", _profile(frame))
    return store


def test_fires_on_the_shifted_feature_only(tmp_path: Path, frame: pd.DataFrame) -> None:
    store = _store(tmp_path / "mon.db", frame)
    _ingest(store, frame.iloc[:QUIET])
    assert store.feature_alarms("m") == []  # 6000 stationary rows: no false alarm
    _ingest(store, frame.iloc[QUIET:], start=QUIET)
    alarms = store.feature_alarms("m")
    # z never moved; code and s are not numeric (code by the profile's kinds), so only x.
    assert [a["feature"] for a in alarms] == ["x"]
    a = alarms[0]
    assert a["detector"] == "adwin" and a["version"] == "1"
    assert QUIET < a["n"] <= QUIET + 300
    assert a["at"] == 1000.0 + a["n"] - 1  # the ts of the row it fired at (row n - 1)
    assert abs(a["mean_before"]) < 0.1 and a["mean_after"] > 0.4
    assert 0 < a["rows_after"] <= a["n"]


def test_same_alarm_as_a_bare_adwin_on_the_feature(tmp_path: Path,
                                                   frame: pd.DataFrame) -> None:
    store = _store(tmp_path / "mon.db", frame)
    _ingest(store, frame)
    adwin = ADWIN()
    first = next(i + 1 for i, v in enumerate(frame["x"]) if adwin.update(v))
    assert store.feature_alarms("m")[0]["n"] == first
    assert store.feature_alarms("m")[0]["mean_after"] == pytest.approx(
        adwin.last_change_.mean_after)


def test_shadow_and_error_rows_do_not_feed_it(tmp_path: Path, frame: pd.DataFrame) -> None:
    store = _store(tmp_path / "mon.db", frame)
    _ingest(store, frame.iloc[:2000])
    _ingest(store, frame.iloc[QUIET:], start=QUIET, shadow=True)  # shifted, but mirrored
    errors = _records(frame.iloc[QUIET:], start=20_000)
    for rec in errors:
        rec["error"], rec["prediction"] = "boom", None
    assert store.ingest(errors) == len(errors)
    assert store.feature_alarms("m") == []


def test_no_reference_no_kinds_no_alarms(tmp_path: Path, frame: pd.DataFrame) -> None:
    store = MonitorStore(tmp_path / "mon.db", window_rows=300)
    _ingest(store, frame)
    assert store.feature_alarms("m") == []


def test_reset_forgets_alarms_and_starts_afresh(tmp_path: Path, frame: pd.DataFrame) -> None:
    store = _store(tmp_path / "mon.db", frame)
    _ingest(store, frame)
    assert [a["feature"] for a in store.feature_alarms("m")] == ["x"]
    store.reset_feature_detectors("m")
    assert store.feature_alarms("m") == []
    # The new level of x is stationary: a fresh detector has nothing to say about it.
    _ingest(store, frame.iloc[QUIET:], start=50_000)
    assert store.feature_alarms("m") == []
    # ... and a later shift is counted from the reset.
    back = frame.iloc[QUIET:].copy()
    back["x"] -= 1.0
    _ingest(store, back, start=60_000)
    alarms = store.feature_alarms("m")
    assert [a["feature"] for a in alarms] == ["x"]
    assert SHIFTED < alarms[0]["n"] <= 2 * SHIFTED
    assert alarms[0]["mean_after"] < alarms[0]["mean_before"]


def test_alarms_and_reset_survive_a_restart(tmp_path: Path, frame: pd.DataFrame) -> None:
    path = tmp_path / "mon.db"
    store = _store(path, frame)
    _ingest(store, frame)
    before = store.feature_alarms("m")
    assert before
    # A crash: no close(); a new store opens the same file and knows the same alarms.
    again = MonitorStore(path, window_rows=300)
    assert again.feature_alarms("m") == before
    # Its detectors carry on (row counts too): a later shift of z is one more alarm.
    more = frame.iloc[QUIET:].copy()
    more["z"] += 1.0
    _ingest(again, more, start=30_000)
    after = again.feature_alarms("m")
    assert after[0] == before[0] and [a["feature"] for a in after] == ["x", "z"]
    assert QUIET + SHIFTED < after[1]["n"] <= QUIET + 2 * SHIFTED
    again.reset_feature_detectors("m")
    third = MonitorStore(path, window_rows=300)
    assert third.feature_alarms("m") == []  # the reset is durable: old rows do not re-fire
    _ingest(third, frame.iloc[QUIET:], start=40_000)
    back = frame.iloc[QUIET:].copy()
    back["x"] -= 1.0
    _ingest(third, back, start=45_000)
    alarms = third.feature_alarms("m")
    assert [a["feature"] for a in alarms] == ["x"]
    assert SHIFTED < alarms[0]["n"] <= 2 * SHIFTED  # rows since the reset


def test_feature_watch_skips_missing_and_non_finite_values() -> None:
    watch = FeatureWatch()
    rng = np.random.default_rng(3)
    fired = []
    for i in range(3000):
        value: Any = float(rng.normal(5.0 if i >= 2000 else 0.0, 1.0))
        if i % 3 == 0:
            value = (None, float("nan"), "n/a")[(i // 3) % 3]
        fired += [(watch.n, f) for f, _ in watch.update({"x": value}, ["x", "absent"])]
    assert watch.n == 3000
    assert len(fired) == 1 and fired[0][1] == "x" and 2000 < fired[0][0] < 2100
