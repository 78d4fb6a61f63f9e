"""Data loading, schema inference, validation, fingerprints and time splits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from autopilot.config import DataConfig, FeatureLists, GeneratorConfig
from autopilot.errors import DataError
from autopilot.schema import Column, FeatureSchema
from autopilot.training.data import (
    coerce_features,
    fingerprint,
    infer_schema,
    load_frame,
    split_xy,
    time_split,
    validate_training_data,
)


@pytest.fixture()
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    return pd.DataFrame(
        {
            "t": np.arange(n, dtype=float),
            "age": rng.normal(40, 10, n).round(1),
            "plan": rng.choice(["basic", "pro", "team"], n),
            "active": rng.choice([True, False], n),
            "code": rng.choice([0, 1], n),
            "y": np.tile([0, 1], n // 2),
        }
    )


def _schema(task: str = "classification") -> FeatureSchema:
    cols = (Column("x", "numeric"), Column("c", "categorical", categories=("a", "b")))
    return FeatureSchema(cols, "y", task, ("0", "1") if task == "classification" else ())


# ------------------------------------------------------------------------- loading


def test_load_csv_and_parquet_round_trip(tmp_path: Path, frame: pd.DataFrame) -> None:
    csv, pq = tmp_path / "d.csv", tmp_path / "d.parquet"
    frame.to_csv(csv, index=False)
    frame.to_parquet(pq, index=False)
    a = load_frame(DataConfig(path=csv, target="y"))
    b = load_frame(DataConfig(path=pq, target="y"))
    assert a.shape == b.shape == frame.shape
    assert a["plan"].tolist() == frame["plan"].tolist()
    pd.testing.assert_frame_equal(b, frame)


def test_load_generator_and_window() -> None:
    cfg = DataConfig(generator=GeneratorConfig(scenario="demo", n_rows=1000, seed=2), target="y")
    training = load_frame(cfg)  # the quiet stretch before the first change point
    assert len(training) == 300
    full = load_frame(cfg, whole_stream=True)
    pd.testing.assert_frame_equal(training, full.iloc[:300])
    part = load_frame(cfg, window=(100, 250), whole_stream=True)
    assert len(full) == 1000 and len(part) == 150
    assert part.index.tolist() == list(range(150))
    pd.testing.assert_frame_equal(part, full.iloc[100:250].reset_index(drop=True))


def test_load_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.csv.*does not exist"):
        load_frame(DataConfig(path=tmp_path / "nope.csv", target="y"))
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="bad.parquet"):
        load_frame(DataConfig(path=bad, target="y"))
    cfg = DataConfig(generator=GeneratorConfig(scenario="nosuch"), target="y")
    with pytest.raises(DataError, match="nosuch"):
        load_frame(cfg)
    ok = DataConfig(generator=GeneratorConfig(n_rows=200), target="y")
    with pytest.raises(DataError, match="window"):
        load_frame(ok, window=(500, 600))


# -------------------------------------------------------------------------- schema


def test_infer_schema_kinds_and_task(frame: pd.DataFrame) -> None:
    s = infer_schema(frame, "y", time_column="t")
    kinds = {c.name: c.kind for c in s.columns}
    assert kinds == {"age": "numeric", "plan": "categorical", "active": "binary", "code": "binary"}
    assert s.names == ("age", "plan", "active", "code")  # frame order, t and y excluded
    assert s.task == "classification" and s.classes == ("0", "1")
    assert s.time_column == "t"
    assert dict((c.name, c.categories) for c in s.columns)["plan"] == ("basic", "pro", "team")
    assert dict((c.name, c.categories) for c in s.columns)["active"] == ("False", "True")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (["a", "b", "c"] * 20, "classification"),
        ([0, 1, 2, 3] * 15, "classification"),
        (list(np.linspace(0, 1, 60)), "regression"),
        (list(range(60)), "regression"),  # many distinct integers: a quantity
    ],
)
def test_task_inference(target: list, expected: str) -> None:
    f = pd.DataFrame({"x": np.arange(60.0), "y": target})
    assert infer_schema(f, "y").task == expected


def test_declared_features_and_errors(frame: pd.DataFrame) -> None:
    lists = FeatureLists(numeric=("age",), categorical=("plan", "code"))
    s = infer_schema(frame, "y", features=lists, task="classification")
    assert [(c.name, c.kind) for c in s.columns] == [
        ("age", "numeric"), ("plan", "categorical"), ("code", "categorical")
    ]
    with pytest.raises(DataError, match="'ghost'"):
        infer_schema(frame, "y", features=FeatureLists(numeric=("ghost",)))
    with pytest.raises(DataError, match="'age' is declared twice"):
        infer_schema(frame, "y", features=FeatureLists(numeric=("age",), binary=("age",)))
    with pytest.raises(DataError, match="target column 'label' is missing"):
        infer_schema(frame, "label")
    with pytest.raises(DataError, match="time column 'when'"):
        infer_schema(frame, "y", time_column="when")


def test_mostly_numeric_text_column_is_numeric_and_then_rejected() -> None:
    vals = [str(v) for v in range(30)] + ["n/a?"] + [str(v) for v in range(29)]
    f = pd.DataFrame({"x": vals, "y": [0, 1] * 30})
    s = infer_schema(f, "y")
    assert s.columns[0].kind == "numeric"
    with pytest.raises(DataError, match=r"'x'.*1 value.*n/a\?"):
        validate_training_data(f, s, cv_folds=3)


# ---------------------------------------------------------------------- validation


def test_validation_accepts_good_data(frame: pd.DataFrame) -> None:
    validate_training_data(frame, infer_schema(frame, "y"), cv_folds=5)


@pytest.mark.parametrize(
    ("data", "folds", "match"),
    [
        ({"x": [1.0, 2.0, 3.0]}, 2, "target column 'y' is missing"),
        ({"x": [1.0, 2.0, 3.0], "y": [1, 1, 1]}, 2, "single class"),
        ({"x": [np.nan] * 4, "c": ["a", "b"] * 2, "y": [0, 1] * 2}, 2, r"\['x'\].*only missing"),
        ({"x": ["1", "2", "zz", "4"], "c": ["a"] * 4, "y": [0, 1] * 2}, 2, "'x'.*'zz'"),
        ({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a"] * 4, "y": [0, 1] * 2}, 5, "fewer than cv_folds=5"),
        ({"x": np.arange(6.0), "c": ["a"] * 6, "y": [0] * 5 + [1]}, 3, r"'1': 1"),
        ({"x": [1.0, 2.0], "c": ["a", "b"], "y": [None, None]}, 2, "no labelled rows"),
    ],
)
def test_validation_names_the_problem(data: dict, folds: int, match: str) -> None:
    f = pd.DataFrame(data)
    if "c" not in f:
        f["c"] = "a"
    with pytest.raises(DataError, match=match):
        validate_training_data(f, _schema(), cv_folds=folds)


def test_validation_regression_target() -> None:
    f = pd.DataFrame({"x": np.arange(5.0), "c": ["a"] * 5, "y": [2.0] * 5})
    with pytest.raises(DataError, match="constant"):
        validate_training_data(f, _schema("regression"), cv_folds=2)
    f["y"] = ["1.5", "2", "oops", "3", "4"]
    with pytest.raises(DataError, match="oops"):
        validate_training_data(f, _schema("regression"), cv_folds=2)


def test_missing_feature_column_is_named() -> None:
    f = pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]})
    with pytest.raises(DataError, match=r"\['c'\]"):
        validate_training_data(f, _schema(), cv_folds=2)


# ---------------------------------------------------------------- features & split


def test_split_xy_orders_columns_and_drops_unlabelled() -> None:
    f = pd.DataFrame(
        {"c": ["a", "b", None, "a"], "x": ["1", 2, 3.5, None], "y": [0, None, 1, 1]}
    )
    X, y = split_xy(f, _schema())
    assert X.columns.tolist() == ["x", "c"]
    assert X["x"].dtype == np.float64 and X["c"].dtype == object
    assert y.tolist() == [0, 1, 1]
    assert X["x"].tolist()[:2] == [1.0, 3.5] and np.isnan(X["x"].iloc[2])
    assert X["c"].iloc[0] == "a" and pd.isna(X["c"].iloc[1])


def test_coerce_features_matches_training_representation() -> None:
    s = FeatureSchema(
        (Column("n", "numeric"), Column("b", "binary", categories=("0", "1"))), "y", "regression"
    )
    training = coerce_features(pd.DataFrame({"n": [1, 2], "b": [0, 1]}), s)
    request = coerce_features(pd.DataFrame({"b": [0.0, 1.0], "n": ["1", "2"], "extra": 1}), s)
    pd.testing.assert_frame_equal(training, request)
    with pytest.raises(DataError, match=r"missing feature column\(s\) \['b'\]"):
        coerce_features(pd.DataFrame({"n": [1]}), s)
    with pytest.raises(DataError, match="'n'.*'abc'"):
        coerce_features(pd.DataFrame({"n": ["abc"], "b": [1]}), s)


# ---------------------------------------------------------------------- fingerprint


def test_fingerprint_properties(frame: pd.DataFrame) -> None:
    fp = fingerprint(frame)
    assert len(fp) == 64 and int(fp, 16) >= 0
    assert fingerprint(frame.set_axis(range(100, 100 + len(frame)))) == fp  # index ignored
    assert fingerprint(frame[frame.columns[::-1]]) == fp  # column order ignored
    changed = frame.copy()
    changed.loc[3, "age"] += 0.1
    assert fingerprint(changed) != fp
    assert fingerprint(frame.iloc[::-1]) != fp  # row order is content
    assert fingerprint(frame.iloc[:-1]) != fp
    assert fingerprint(frame.rename(columns={"age": "Age"})) != fp


def test_fingerprint_survives_a_file_round_trip(frame: pd.DataFrame, tmp_path: Path) -> None:
    frame = frame.assign(plan=frame["plan"].astype(object))
    frame.to_parquet(tmp_path / "f.parquet")
    frame.to_csv(tmp_path / "f.csv", index=False)
    assert fingerprint(pd.read_parquet(tmp_path / "f.parquet")) == fingerprint(frame)
    assert fingerprint(pd.read_csv(tmp_path / "f.csv")) == fingerprint(frame)


def test_fingerprint_stable_across_processes(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    frame.to_parquet(path)
    code = (
        "import pandas as pd, sys; from autopilot.training.data import fingerprint; "
        f"print(fingerprint(pd.read_parquet({str(path)!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    )
    assert out.stdout.strip() == fingerprint(pd.read_parquet(path))


# ------------------------------------------------------------------------ time split


def test_time_split_orders_and_keeps_instants_together() -> None:
    f = pd.DataFrame({"t": [5, 1, 3, 3, 2, 4, 3, 6], "v": range(8)})
    train, test = time_split(f, "t", 0.5)
    assert train["t"].tolist() == [1, 2]  # every t == 3 row goes to the later side
    assert test["t"].tolist() == [3, 3, 3, 4, 5, 6]
    assert train["t"].max() < test["t"].min()
    assert sorted([*train.index, *test.index]) == list(range(8))


def test_time_split_errors() -> None:
    f = pd.DataFrame({"t": [1.0, None, 3.0], "v": [1, 2, 3]})
    with pytest.raises(DataError, match="'t' has 1 missing"):
        time_split(f, "t", 0.3)
    with pytest.raises(DataError, match="'when'"):
        time_split(f, "when", 0.3)
    with pytest.raises(ValueError, match="test_fraction"):
        time_split(f, "t", 1.0)
    with pytest.raises(DataError, match="empty"):
        time_split(pd.DataFrame({"t": [1, 1, 1]}), "t", 0.3)
