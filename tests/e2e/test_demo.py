"""`python -m jobs.demo --quick` end to end; the story is checked from the durable journal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_demo_quick_tells_the_whole_story(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)  # the demo must start (and stop) its own Ray
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.demo", "--quick", "--no-dashboard", "--port", "0",
         "--state-dir", str(state)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert_demo_story(state, proc.stdout)


def assert_demo_story(state: Path, stdout: str) -> None:
    """The journal assertions on a finished demo's state folder (also usable by hand on a
    demo run as a Ray job: see the README's "Run on a Ray cluster")."""
    from autopilot.journal import Journal

    summary = json.loads((state / "demo_summary.json").read_text())
    marks = summary["marks"]
    journal = Journal(state / "journal.db")
    entries = journal.query(model="demo")
    loud = [e for e in entries if e.action not in ("none", "hold")]

    # Nothing was decided in the quiet stretch (before the covariate shift reached traffic);
    # "detected" entries are early warnings that change nothing.
    assert not [e for e in loud if e.ts < marks["covariate"] and e.action != "detected"], \
        loud[:3]
    # The covariate shift was caught by the drift check, which started a retrain.
    drift_retrains = [e for e in loud if e.action == "retrain" and e.ts >= marks["covariate"]
                      and e.numbers.get("trigger") == "drift"]
    assert drift_retrains and "drift severity" in drift_retrains[0].reasons[0]
    # The bad challenger reached the canary and was rolled back by its guardrail.
    flaky = summary["flaky_version"]
    assert flaky is not None
    rollbacks = [e for e in loud if e.action == "rollback"]
    assert any(e.numbers.get("version") == flaky for e in rollbacks), rollbacks
    # ... by the canary guardrail on its error rate, or by isolating it once its circuit
    # breaker opened (whichever sees the errors first).
    assert any(("error rate" in " ".join(e.reasons) or "circuit breaker" in " ".join(e.reasons))
               for e in rollbacks), [e.reasons for e in rollbacks]
    # A better challenger was promoted after the concept drift, past the offline gate.
    promotes = [e for e in loud if e.action == "promote"]
    assert promotes and promotes[-1].ts > marks["concept"]
    winner = promotes[-1].numbers["version"]
    assert winner != flaky
    canaries = [e for e in loud
                if e.action == "start_canary" and e.numbers.get("version") == winner]
    assert canaries
    # The winner learnt from the new concept only: its training window (the registry's
    # lineage: prediction times of the labelled rows it was trained on) begins at the
    # concept change, not a full retrain window before it (the window is whole seconds).
    from autopilot.config import load_config
    from autopilot.registry.mlflow_store import open_registry

    window = open_registry(load_config(state / "demo.yaml")).get("demo", winner) \
        .lineage.data_window
    found = re.search(r"ts (\d+)\.\.(\d+)", window)
    assert found and float(found.group(1)) >= marks["concept"] - 3.0, (window, marks)
    # Its score at the offline gate is kept: its baseline is the worse of that and its holdout.
    gate_value = canaries[-1].numbers["numbers"]["gate_candidate_value"]
    assert journal.load_state("demo", f"gate_value:{winner}") == pytest.approx(gate_value)
    # ... and it answers with good accuracy at the end; the report was written.
    assert summary["summary"]["request errors"] == 0
    assert (state / "report.html").exists() and (state / "report.png").exists()
    assert "stack stopped" in stdout
    assert not (state / "stack.json").exists()
