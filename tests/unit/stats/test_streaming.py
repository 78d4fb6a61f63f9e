"""Streaming detectors: River-identical detection indices, quiet on stationary streams."""

from __future__ import annotations

import numpy as np
import pytest

from autopilot.stats.streaming import ADWIN, DDM, DriftDetector, PageHinkley


def _detections(detector: DriftDetector, stream: np.ndarray) -> list[int]:
    return [i for i, x in enumerate(stream) if detector.update(float(x))]


def _level_shift() -> np.ndarray:
    rng = np.random.default_rng(12345)
    return np.concatenate([rng.integers(0, 2, 1000), rng.integers(4, 8, 1000)]).astype(float)


def _metric_stream() -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.concatenate(
        [rng.normal(0, 0.1, 3000), rng.normal(0.3, 0.1, 2000), rng.normal(-0.2, 0.2, 2000)]
    )


def _error_stream() -> np.ndarray:
    rng = np.random.default_rng(42)
    return np.concatenate([rng.random(1000) < 0.1, rng.random(1000) < 0.3]).astype(float)


def _error_stream_2() -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.concatenate(
        [rng.random(3000) < 0.2, rng.random(2000) < 0.35, rng.random(2000) < 0.05]
    ).astype(float)


# Expected indices were produced by river 0.26.1 (river.drift.PageHinkley, river.drift.ADWIN,
# river.drift.binary.DDM) on exactly these streams, in a separate environment; River is not a
# dependency of this project.
@pytest.mark.parametrize(
    ("make", "stream", "expected"),
    [
        (lambda: PageHinkley(), _level_shift, [1008]),
        (lambda: PageHinkley(), _metric_stream, [3166, 5109]),
        (lambda: PageHinkley(mode="up", threshold=5.0), _metric_stream, [1546, 3017]),
        (lambda: PageHinkley(mode="down", threshold=5.0), _metric_stream, [5014, 5444, 6241]),
        (lambda: ADWIN(), _level_shift, [1023]),
        (lambda: ADWIN(), _metric_stream, [3039, 5023]),
        (lambda: ADWIN(clock=1, delta=0.01), _metric_stream, [3026, 5016]),
        (lambda: DDM(), _error_stream, [1243]),
        (lambda: DDM(), _error_stream_2, [3378]),
        (lambda: DDM(warm_start=50, drift_threshold=2.5), _error_stream_2, [548, 3287]),
    ],
)
def test_detection_indices_match_river(make, stream, expected) -> None:  # type: ignore[no-untyped-def]
    assert _detections(make(), stream()) == expected


def test_quiet_on_stationary_streams() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert _detections(PageHinkley(), rng.normal(5.0, 0.1, 3000)) == []
        assert _detections(ADWIN(), rng.normal(0.0, 1.0, 3000)) == []
        assert _detections(ADWIN(), (rng.random(3000) < 0.2).astype(float)) == []


def test_ddm_false_alarm_rate_depends_on_warm_start() -> None:
    """DDM's minimum over early, noisy estimates makes it alarm-prone with a short warm start."""
    rng = np.random.default_rng(1)
    rates = {}
    for warm in (30, 1000):
        alarms = [
            bool(_detections(DDM(warm_start=warm), (rng.random(2000) < 0.2).astype(float)))
            for _ in range(100)
        ]
        rates[warm] = float(np.mean(alarms))
    print("DDM share of stationary 2000-point streams with a false alarm:", rates)
    assert rates[1000] <= 0.05
    assert rates[30] >= 0.15  # the default warm start really is alarm-prone


def test_reset_restarts_from_scratch() -> None:
    stream = _metric_stream()
    for make in (PageHinkley, ADWIN):
        d = make()
        first = _detections(d, stream)
        d.reset()
        assert not d.drift_detected
        assert _detections(d, stream) == first
    ddm = DDM()
    first = _detections(ddm, _error_stream())
    ddm.reset()
    assert _detections(ddm, _error_stream()) == first


def test_detector_state_after_detection() -> None:
    adwin = ADWIN()
    stream = _level_shift()
    for x in stream[:1024]:
        adwin.update(float(x))
    assert adwin.drift_detected
    adwin.update(5.0)  # like River, the detector starts afresh after a detection
    assert adwin.width == 1 and adwin.estimation == 5.0
    ddm = DDM()
    warned = False
    for x in _error_stream()[:1243]:
        ddm.update(float(x))
        warned = warned or ddm.warning_detected
    assert warned and not ddm.drift_detected
    assert ddm.update(float(_error_stream()[1243]))


def test_bad_input_names_the_problem() -> None:
    with pytest.raises(ValueError, match="x must be a finite number"):
        PageHinkley().update(float("nan"))
    with pytest.raises(ValueError, match="x must be a finite number"):
        ADWIN().update(float("inf"))
    with pytest.raises(ValueError, match="DDM expects 0/1"):
        DDM().update(0.5)
    with pytest.raises(ValueError, match="mode must be"):
        PageHinkley(mode="sideways")
    with pytest.raises(ValueError, match="delta must lie in"):
        ADWIN(delta=2.0)
    with pytest.raises(ValueError, match="clock must be a positive integer"):
        ADWIN(clock=0)
    with pytest.raises(ValueError, match="warning_threshold <= drift_threshold"):
        DDM(warning_threshold=4.0, drift_threshold=3.0)


def test_adwin_last_change_locates_the_cut_near_the_true_change():
    from autopilot.stats.streaming import StreamChange

    rng = np.random.default_rng(7)
    for seed_shift in range(5):
        errors = np.concatenate([rng.random(3000) < 0.1, rng.random(2000) < 0.35]).astype(float)
        adwin = ADWIN()
        hit = next(i for i, x in enumerate(errors) if adwin.update(x))
        change = adwin.last_change_
        assert isinstance(change, StreamChange)
        assert change.n == hit + 1
        since = hit + 1 - 3000  # true rows since the change at detection
        assert since > 0
        # the kept window holds every post-change row (whole buckets: it may keep old ones)
        assert change.rows_after >= since, (seed_shift, since, change)
        assert change.rows_after < change.n
        assert abs(change.mean_before - 0.1) < 0.03
        assert change.mean_after > change.mean_before
        adwin.update(0.0)  # the next update starts afresh
        assert adwin.last_change_ is None
