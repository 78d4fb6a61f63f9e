"""The decision journal: durable, queryable, and the controller's recovery state."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from autopilot.journal import Journal, jsonable


@dataclass(frozen=True)
class _Ev:
    share: float
    drifted: tuple[str, ...]


def test_record_and_query_filters(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.record("a", "retrain", reasons=["drift"], evidence=_Ev(0.5, ("x",)), ts=100.0)
    j.record("a", "promote", reasons=["better"], numbers={"p": np.float64(0.01)}, ts=200.0)
    j.record("b", "rollback", reasons=["errors"], ts=300.0)

    assert [e.action for e in j.query(model="a")] == ["retrain", "promote"]
    assert [e.model for e in j.query(action="rollback")] == ["b"]
    assert [e.action for e in j.query(action=["retrain", "rollback"])] == ["retrain", "rollback"]
    assert [e.ts for e in j.query(since=150.0)] == [200.0, 300.0]
    assert [e.ts for e in j.query(until=150.0)] == [100.0]
    assert [e.ts for e in j.query(limit=2)] == [200.0, 300.0]
    assert [e.ts for e in j.query(limit=2, newest_first=True)] == [300.0, 200.0]
    first = j.query(model="a")[0]
    assert first.evidence == {"share": 0.5, "drifted": ["x"]}
    assert j.query(model="a")[1].numbers == {"p": 0.01}
    assert j.count() == 3 and j.count("a") == 2
    assert j.last("a").action == "promote"
    assert j.last("a", "retrain").ts == 100.0
    assert j.last("zzz") is None


def test_outcome_update_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "j.db"
    j = Journal(path)
    e = j.record("m", "retrain", reasons=["schedule"])
    assert e.outcome == "pending"
    j.update_outcome(e.id, "applied: version 3")
    j.save_state("m", "routing", {"version": 4, "weights": {"1": 0.95, "2": 0.05}})
    j.save_state("m", "routing", {"version": 5, "weights": {"1": 0.75, "2": 0.25}})
    j.close()

    again = Journal(path)
    assert again.query(model="m")[0].outcome == "applied: version 3"
    assert again.load_state("m", "routing") == {"version": 5, "weights": {"1": 0.75, "2": 0.25}}
    assert again.load_state("m", "nothing") is None
    assert again.models() == ["m"]
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_bad_input_named() -> None:
    j = Journal(":memory:")
    with pytest.raises(ValueError, match="model name"):
        j.record("", "retrain")
    with pytest.raises(ValueError, match="'m'"):
        j.record("m", "")
    with pytest.raises(KeyError, match="42"):
        j.update_outcome(42, "x")
    with pytest.raises(ValueError, match="-1"):
        j.query(limit=-1)


def test_jsonable_handles_numpy_and_nan() -> None:
    out = jsonable({"arr": np.arange(3), "b": np.bool_(True), "nan": np.nan, "s": {2, 1}})
    assert out == {"arr": [0, 1, 2], "b": True, "nan": None, "s": [1, 2]}
