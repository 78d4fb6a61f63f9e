"""MonitorStore.rebaseline: accept a lasting shift, still see the next one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from autopilot.errors import ControlError
from autopilot.monitor import MonitorStore, _MonitorActorImpl
from autopilot.stats import ReferenceProfile

N = 600


def _records(start: int, xs: np.ndarray, cs: np.ndarray) -> list[dict[str, Any]]:
    return [{"request_id": f"r{start + i}", "model": "m", "version": "1",
             "features": {"x": float(x), "c": str(c)}, "prediction": 1, "proba": None,
             "latency_ms": 5.0, "error": None, "cache_hit": False, "caller_key": None,
             "ts": 1000.0 + start + i, "shadow": False}
            for i, (x, c) in enumerate(zip(xs, cs, strict=True))]


def _frame(rng: np.random.Generator, shift: float, p_a: float) -> pd.DataFrame:
    return pd.DataFrame({"x": rng.normal(shift, 1.0, N),
                         "c": np.where(rng.random(N) < p_a, "a", "b")})


@pytest.fixture()
def shifted(tmp_path: Path) -> MonitorStore:
    """Reference fitted on N(0, 1) / 50% "a"; the window holds N(2, 1) / 80% "a"."""
    rng = np.random.default_rng(3)
    store = MonitorStore(tmp_path / "mon.db", window_rows=N)
    ref = ReferenceProfile.fit(_frame(rng, 0.0, 0.5), {"x": "numeric", "c": "categorical"},
                               bins=8)
    store.set_reference("m", "1", ref.to_dict())
    win = _frame(rng, 2.0, 0.8)
    store.ingest(_records(0, win["x"].to_numpy(), win["c"].to_numpy()))
    return store


def test_rebaseline_accepts_the_shift_and_still_sees_a_new_one(
        shifted: MonitorStore, tmp_path: Path) -> None:
    before = shifted.drift_report("m", "1")
    assert before.drifted and before.feature("x").drifted

    out = shifted.rebaseline("m", "1")
    assert out == {"model": "m", "version": "1", "rows": N, "previous_rows": N}
    after = shifted.drift_report("m", "1")
    assert not after.drifted and after.severity == "none"

    # Same columns, kinds and bins as the old reference.
    again = MonitorStore(tmp_path / "mon.db", window_rows=N)  # durable: a restart keeps it
    prof = again._reference("m", "1")
    assert prof.columns == ("x", "c") and prof.bins == 8
    assert [f.kind for f in prof.features] == ["numeric", "categorical"]
    assert not again.drift_report("m", "1").drifted

    # A further shift replaces the window and is drift against the new reference.
    rng = np.random.default_rng(4)
    new = _frame(rng, 5.0, 0.8)
    shifted.ingest(_records(N, new["x"].to_numpy(), new["c"].to_numpy()))
    report = shifted.drift_report("m", "1")
    assert report.drifted and report.feature("x").drifted and not report.feature("c").drifted


def test_rebaseline_on_the_newest_rows(shifted: MonitorStore) -> None:
    assert shifted.rebaseline("m", "1", rows=200)["rows"] == 200
    assert shifted._reference("m", "1").n_rows == 200


def test_rebaseline_needs_a_reference_rows_and_valid_input(shifted: MonitorStore) -> None:
    with pytest.raises(ControlError, match="'9'"):
        shifted.rebaseline("m", "9")
    shifted.set_reference("m", "2", shifted._reference("m", "1").to_dict())
    with pytest.raises(ControlError, match="window has 0 rows"):
        shifted.rebaseline("m", "2")
    with pytest.raises(ValueError, match="rows must be"):
        shifted.rebaseline("m", "1", rows=0)


def test_rebaseline_reaches_through_the_actor_surface(tmp_path: Path) -> None:
    impl = _MonitorActorImpl(str(tmp_path / "a.db"), window_rows=50)
    ref = ReferenceProfile.fit(pd.DataFrame({"x": np.arange(50.0)}))
    impl.store.set_reference("m", "1", ref.to_dict())
    impl.store.ingest([{**r, "features": {"x": 100.0 + i}}
                       for i, r in enumerate(_records(0, np.zeros(50), np.zeros(50)))])
    assert impl.call("drift_report", "m", "1").drifted
    assert impl.call("rebaseline", "m", "1")["rows"] == 50
    assert not impl.call("drift_report", "m", "1").drifted
