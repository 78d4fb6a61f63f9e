"""Labels for a regression model must not break the monitor's default detectors.

Found running ``autopilot up --address`` with ``examples/regression.yaml``: the
default detectors include DDM, which takes a 0/1 error stream, and the monitor
feeds it a regressor's absolute error, so ``ingest_labels`` raised and every
controller tick for the model failed. Regression models now get the detectors
that take real-valued errors only (Page-Hinkley, ADWIN).
"""

from __future__ import annotations

from pathlib import Path

from autopilot.monitor import MonitorStore


def test_regression_labels_are_ingested_with_default_detectors(tmp_path: Path) -> None:
    store = MonitorStore(tmp_path / "mon.db", window_rows=100)
    store.configure("spend", task="regression", target="y")
    records = [{"request_id": f"r{i}", "model": "spend", "version": "1",
                "features": {"x": float(i)}, "prediction": 10.0 + i, "proba": None,
                "latency_ms": 5.0, "error": None, "cache_hit": False,
                "caller_key": f"u{i}", "ts": 1000.0 + i, "shadow": False} for i in range(20)]
    assert store.ingest(records) == 20
    labels = [{"request_id": f"r{i}", "model": "spend", "label": 12.5 + i, "ts": 2000.0 + i}
              for i in range(20)]
    assert store.ingest_labels(labels) == 20
    det = store.detectors("spend", "1")
    assert det.n == 20
    assert "ddm" not in store._detectors[("spend", "1")]  # real-valued stream: no DDM
