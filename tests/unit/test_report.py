"""The HTML report: self-contained, shows the decisions, writes the timeline PNG."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest

from autopilot.report import (
    DecisionMark,
    ReportData,
    decisions_from_journal,
    render_html,
    render_timeline_png,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _data(epoch: bool = False) -> ReportData:
    rng = np.random.default_rng(0)
    t0 = 1_760_000_000.0 if epoch else 0.0
    metric = [
        {"t": t0 + i, "version": "1", "value": 0.9 - (0.2 if i > 50 else 0.0) + rng.normal(0, 0.01)}
        for i in range(0, 100, 5)
    ] + [{"t": t0 + i, "version": "2", "value": 0.88} for i in range(60, 100, 5)]
    drift = [
        {"t": t0 + i, "feature": f, "score": (0.4 if (f == "x1" and i > 40) else 0.05),
         "threshold": 0.2}
        for i in range(0, 100, 10) for f in ("x1", "x2", "city")
    ]
    weights = [
        {"t": t0 + 0, "version": "1", "weight": 1.0},
        {"t": t0 + 60, "version": "1", "weight": 0.95},
        {"t": t0 + 60, "version": "2", "weight": 0.05},
        {"t": t0 + 80, "version": "1", "weight": 0.0},
        {"t": t0 + 80, "version": "2", "weight": 1.0},
    ]
    journal = [
        {"ts": t0 + 10, "action": "none", "reasons": []},
        {"ts": t0 + 45, "action": "retrain", "reasons": '["drift: x1 severity high (psi 0.40)"]'},
        {"ts": t0 + 60, "action": "canary", "reasons": ["gate passed: McNemar p=0.001"],
         "version": 2},
        {"ts": t0 + 80, "action": "promote", "reasons": ["mSPRT p=0.01 < 0.05"], "version": 2},
        {"ts": t0 + 90, "action": "rollback", "reasons": ["error rate 0.3 > 0.05 <script>"]},
    ]
    table = pd.DataFrame(
        {"feature": ["x1", "x2"], "method": ["psi", "psi"], "statistic": [0.4, 0.05],
         "severity": ["high", "none"]}
    )
    return ReportData.from_records(
        "churn", metric=metric, drift=drift, weights=weights, decisions=journal,
        drift_table=table, summary={"retrains": 1},
    )


@pytest.mark.parametrize("epoch", [False, True])
def test_html_is_self_contained_with_images_and_decisions(epoch: bool) -> None:
    html = render_html(_data(epoch))
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 4  # timeline + three panels
    assert all(base64.b64decode(img).startswith(PNG_MAGIC) for img in images)
    for text in ("drift: x1 severity high (psi 0.40)", "gate passed: McNemar p=0.001",
                 "mSPRT p=0.01 &lt; 0.05", "promote", "rollback"):
        assert text in html
    # reasons are escaped, never injected
    assert "<script>" not in html and "&lt;script&gt;" in html
    # the quiet tick is counted, not listed as a decision
    assert "4 decisions shown, 1 quiet ticks" in html
    # the latest window's drift table
    assert "<th>severity</th>" in html and ">x1<" in html
    # no external resources
    assert "http://" not in html and "https://" not in html


def test_write_report_writes_html_and_png(tmp_path) -> None:
    files = write_report(_data(), tmp_path / "sub" / "report.html")
    assert files.html.exists() and files.png == tmp_path / "sub" / "report.png"
    assert files.png.read_bytes().startswith(PNG_MAGIC)
    assert "promote" in files.html.read_text()


def test_empty_data_still_renders() -> None:
    data = ReportData.from_records("empty")
    assert render_timeline_png(data).startswith(PNG_MAGIC)
    html = render_html(data)
    assert "No decisions were taken." in html and "No drift report yet." in html


def test_journal_parsing_variants() -> None:
    marks = decisions_from_journal([
        {"time": "2026-01-01T00:00:10Z", "kind": "ramp", "reason": "step 0.25"},
        {"t": 1, "action": "retrain", "reasons": {"drift": "high"}, "challenger": 3},
        {"t": 2, "action": "promote", "reasons": [{"text": "won"}, {"code": "x", "n": 2}]},
    ])
    assert [m.action for m in marks] == ["retrain", "promote", "ramp"]  # time order
    assert marks[0].reasons == ("drift: high",) and marks[0].version == "3"
    assert marks[1].reasons == ("won", "code=x, n=2")
    assert marks[2].reasons == ("step 0.25",)
    assert DecisionMark(0, "wait").quiet and not marks[0].quiet


def test_bad_input_names_the_problem() -> None:
    with pytest.raises(ValueError, match="journal row 0"):
        decisions_from_journal([{"reasons": []}])
    with pytest.raises(ValueError, match=r"metric series lacks column\(s\) \['version'\]"):
        ReportData.from_records("m", metric=[{"t": 0, "value": 1.0}])


def test_report_from_a_state_folder(tmp_path) -> None:
    """`autopilot report`: journal decisions, monitor metric per version, drift, weights."""
    from autopilot.journal import Journal
    from autopilot.monitor import MonitorStore
    from autopilot.report import report_data_from_state
    from autopilot.stats import ReferenceProfile

    rng = np.random.default_rng(3)
    journal = Journal(tmp_path / "journal.db")
    journal.record("m", "retrain", reasons=["drift severity 'high'"], ts=1_700_000_050.0,
                   numbers={"trigger": "drift"})
    journal.record("m", "detected", reasons=["ADWIN on feature x: mean 0 -> 2"],
                   ts=1_700_000_065.0, outcome="noted: early warning, no action")
    journal.record("m", "start_canary", reasons=["gate passed"], ts=1_700_000_080.0,
                   numbers={"version": "2", "weights": {"1": 0.9, "2": 0.1}})
    journal.record("m", "promote", reasons=["significantly better"], ts=1_700_000_120.0,
                   numbers={"version": "2", "weights": {"2": 1.0}})
    journal.close()
    store = MonitorStore(tmp_path / "monitor.db")
    store.configure("m", task="classification", classes=(0, 1), target="y")
    ref = pd.DataFrame({"x": rng.normal(size=500)})
    store.set_reference("m", "1", ReferenceProfile.fit(ref).to_dict())
    recs, labels = [], []
    for i in range(600):
        shifted = i >= 300
        x = float(rng.normal(2.0 if shifted else 0.0))
        recs.append({"request_id": f"r{i}", "model": "m", "version": "1",
                     "features": {"x": x}, "prediction": 1, "latency_ms": 1.0,
                     "ts": 1_700_000_000.0 + i * 0.2})
        labels.append({"request_id": f"r{i}", "model": "m", "label": int(i % 4 != 0 or shifted),
                       "ts": 1_700_000_000.0 + i * 0.2 + 1})
    store.ingest(recs)
    store.ingest_labels(labels)
    store.close()

    data = report_data_from_state(tmp_path, window_rows=150)
    assert [m.action for m in data.decisions] == ["retrain", "detected", "start_canary",
                                                  "promote"]
    assert not data.decisions[1].quiet  # an early warning is drawn on the timeline
    assert sorted(data.metric["value"].round(2)) == [0.75, 0.75, 1.0, 1.0]
    x = data.drift[data.drift["feature"] == "x"]["score"].to_numpy()
    assert x[0] < 0.25 < x[-1]  # the shift shows up against the "high" line
    assert data.drift_table is not None and data.drift_table.loc[0, "severity"] == "critical"
    w = data.weights
    assert set(w[w["t"] == 1_700_000_120.0]["version"]) == {"1", "2"}  # v1 dropped to 0
    assert data.summary["promotions"] == 1 and data.summary["detections"] == 1
    with pytest.raises(ValueError, match="not in the journal"):
        report_data_from_state(tmp_path, "other")
    with pytest.raises(FileNotFoundError, match="no journal"):
        report_data_from_state(tmp_path / "nowhere")
