"""MonitorStore.error_change: ADWIN on a version's labelled errors, the change located by
least squares; window_change: the newest labelled rows tested (OLS-CUSUM) and split; and a
re-baselined reference judges only rows from its own start on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from autopilot.monitor import MonitorStore
from autopilot.stats import ReferenceProfile

BEFORE, AFTER = 1500, 600  # rows before and after the change in the error rate


def _rec(i: int, x: float = 0.0) -> dict[str, Any]:
    return {"request_id": f"r{i}", "model": "m", "version": "1", "features": {"x": x},
            "prediction": 1, "proba": None, "latency_ms": 5.0, "error": None,
            "cache_hit": False, "caller_key": f"u{i}", "ts": 1000.0 + i, "shadow": False}


def _store(path: Path) -> MonitorStore:
    s = MonitorStore(path, window_rows=5000)
    s.configure("m", task="classification", classes=[0, 1], target="y")
    return s


def _serve_with_a_change(store: MonitorStore, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = BEFORE + AFTER
    store.ingest([_rec(i) for i in range(n)])
    right = np.concatenate([rng.random(BEFORE) < 0.9, rng.random(AFTER) < 0.6])
    # prediction is always 1: the label says whether it was right
    store.ingest_labels([{"request_id": f"r{i}", "model": "m", "label": int(ok),
                          "ts": 5000.0 + i} for i, ok in enumerate(right)])


def test_error_change_is_located_near_the_true_change(tmp_path: Path) -> None:
    misses = []
    for seed in range(5):
        store = _store(tmp_path / f"mon{seed}.db")
        _serve_with_a_change(store, seed)
        found = store.error_change("m", "1")
        assert found is not None and found["detector"] == "adwin"
        row = int(found["at"] - 1000.0)
        misses.append(abs(row - BEFORE))
        assert found["rows_since"] == BEFORE + AFTER - row  # labelled rows at or after it
        assert abs(found["before"] - 0.9) < 0.04 and abs(found["after"] - 0.6) < 0.08
    assert np.median(misses) <= 20 and max(misses) <= 100, misses


def test_no_change_no_alarm_and_reset_forgets(tmp_path: Path) -> None:
    store = _store(tmp_path / "mon.db")
    rng = np.random.default_rng(1)
    store.ingest([_rec(i) for i in range(3000)])
    store.ingest_labels([{"request_id": f"r{i}", "model": "m", "label": int(ok), "ts": 9e3}
                         for i, ok in enumerate(rng.random(3000) < 0.85)])
    assert store.error_change("m", "1") is None
    _serve_with_a_change(store2 := _store(tmp_path / "mon2.db"), 0)
    assert store2.error_change("m", "1") is not None
    store2.reset_detectors("m", "1")
    assert store2.error_change("m", "1") is None


def test_rebaselined_reference_judges_rows_from_its_start(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    store = _store(tmp_path / "mon.db")
    ref = ReferenceProfile.fit(pd.DataFrame({"x": rng.normal(0, 1, 1000)}), {"x": "numeric"})
    store.set_reference("m", "1", ref.to_dict())
    xs = np.concatenate([rng.normal(0, 1, 600), rng.normal(2, 1, 400)])  # shift at row 600
    store.ingest([_rec(i, float(x)) for i, x in enumerate(xs)])
    assert store.drift_report("m", "1").drifted
    out = store.rebaseline("m", "1", rows=300)  # the newest 300: all after the shift
    assert out["rows"] == 300
    # the 600 unshifted rows still in the window are not compared with the new reference
    assert not store.drift_report("m", "1").drifted
    assert store.drift_report("m", "1", min_rows=301) is None  # only 300 rows since
    restarted = _store(tmp_path / "mon.db")  # the start survives a restart
    assert not restarted.drift_report("m", "1").drifted
    more = rng.normal(2, 1, 200)
    store.ingest([_rec(1000 + i, float(x)) for i, x in enumerate(more)])
    assert not store.drift_report("m", "1").drifted
    store.ingest([_rec(1200 + i, float(x)) for i, x in enumerate(rng.normal(-2, 1, 400))])
    assert store.drift_report("m", "1").drifted  # a new shift still shows


def test_window_change_tests_and_locates_the_newest_rows(tmp_path: Path) -> None:
    store = _store(tmp_path / "mon.db")
    _serve_with_a_change(store, 3)
    found = store.window_change("m", rows=1000)  # 400 rows before the change, 600 after
    assert found is not None and found["detector"] == "cusum" and found["rows"] == 1000
    assert found["p_value"] < 1e-6
    row = int(found["at"] - 1000.0)
    assert abs(row - BEFORE) <= 40
    assert found["rows_since"] == BEFORE + AFTER - row
    assert abs(found["before"] - 0.9) < 0.05 and abs(found["after"] - 0.6) < 0.08
    # the newest 500 rows all come after the change: nothing to find there
    assert store.window_change("m", rows=500)["p_value"] > 0.01
    assert store.window_change("m", rows=2000, min_rows=2101) is None  # too few rows


def test_window_change_p_value_is_calibrated_on_a_steady_stream(tmp_path: Path) -> None:
    # the same OLS-CUSUM test as stats.cusum_test, on what the store kept: about alpha
    rejections = 0
    for seed in range(40):
        store = _store(tmp_path / f"s{seed}.db")
        rng = np.random.default_rng(100 + seed)
        store.ingest([_rec(i) for i in range(600)])
        store.ingest_labels([{"request_id": f"r{i}", "model": "m", "label": int(ok),
                              "ts": 9e3} for i, ok in enumerate(rng.random(600) < 0.85)])
        rejections += store.window_change("m", rows=600)["p_value"] <= 0.1
    assert rejections <= 9  # 40 tests at 10 %: 4 expected, P(>= 10) < 1 %


def test_window_change_reads_what_users_got_from_any_version(tmp_path: Path) -> None:
    # version 1 answers before the change, version 2 after; shadow copies of version 9,
    # always right, are not what users got and are left out
    store = _store(tmp_path / "mon.db")
    rng = np.random.default_rng(5)
    recs = [{**_rec(i), "version": "1" if i < BEFORE else "2"} for i in range(BEFORE + AFTER)]
    shadows = [{**_rec(i), "version": "9", "shadow": True, "prediction": None}
               for i in range(BEFORE + AFTER)]
    store.ingest(recs + shadows)
    right = np.concatenate([rng.random(BEFORE) < 0.9, rng.random(AFTER) < 0.6])
    store.ingest_labels([{"request_id": f"r{i}", "model": "m", "label": int(ok), "ts": 9e3}
                         for i, ok in enumerate(right)])
    found = store.window_change("m", rows=BEFORE + AFTER)
    assert found is not None and found["rows"] == BEFORE + AFTER
    assert abs(int(found["at"] - 1000.0) - BEFORE) <= 40 and found["p_value"] < 1e-6
    assert abs(found["after"] - 0.6) < 0.08

