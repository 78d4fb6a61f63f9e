"""Training pipeline without Ray: bad config or data is refused before any search and
changes nothing registered; the jobs exit non-zero naming the problem; searcher logic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from autopilot.config import AutopilotConfig
from autopilot.errors import ConfigError, DataError
from autopilot.registry import InMemoryRegistry, Lineage
from autopilot.schema import Column, FeatureSchema
from autopilot.training.automl import FamilySearcher, make_folds
from autopilot.training.automl.search import warm_points
from autopilot.training.pipeline import champion_config, evaluate, train_and_register


def _frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "c": rng.choice(["a", "b"], n), "y": (x > 0).astype(int)})


def _cfg(tmp_path, **training) -> AutopilotConfig:
    return AutopilotConfig.model_validate(
        {
            "name": "m",
            "data": {"path": str(tmp_path / "d.csv"), "target": "y"},
            "training": {"cv_folds": 3, **training},
            "state_dir": str(tmp_path),
            "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
        }
    )


@pytest.fixture()
def registry() -> InMemoryRegistry:
    reg = InMemoryRegistry()
    schema = FeatureSchema((Column("x", "numeric"),), "y", "classification", ("0", "1"))
    frame = _frame()
    reg.register(
        "m",
        LogisticRegression().fit(frame[["x"]], frame["y"]),
        schema=schema,
        lineage=Lineage(
            "initial",
            None,
            "ab" * 32,
            "all",
            {"roc_auc": 0.9},
            None,
            "logistic",
            {"C": 2.0, "class_weight": None},
        ),
    )
    reg.promote("m", "1")
    return reg


def _snapshot(reg: InMemoryRegistry) -> list[tuple]:
    return [(v.version, v.status, v.aliases, v.sha256) for v in reg.list_versions("m")]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns="y"), "target column 'y' is missing"),
        (lambda f: f.assign(y=1), "single class"),
        (lambda f: f.assign(x=np.nan), r"\['x'\] contain only missing values"),
        (lambda f: f.head(2), "fewer than cv_folds=3"),
    ],
)
def test_bad_data_is_refused_by_name_and_registers_nothing(tmp_path, registry, mutate, message):
    before = _snapshot(registry)
    with pytest.raises(DataError, match=message):
        train_and_register(_cfg(tmp_path), mutate(_frame()), registry, trigger="drift")
    assert _snapshot(registry) == before
    assert registry.alias("m", "champion").version == "1"


@pytest.mark.parametrize(
    ("training", "message"),
    [
        ({"families": ["logistic", "forest"]}, "training.families: unknown .* 'forest'"),
        ({"metric": "rmse"}, "training.metric: 'rmse' is a regression metric"),
        ({"metric": "nope"}, "training.metric: unknown metric 'nope'"),
    ],
)
def test_bad_training_config_is_refused_before_any_search(tmp_path, registry, training, message):
    before = _snapshot(registry)
    # Ray's init raises in unit tests: these errors must come before it is needed.
    with pytest.raises(ConfigError, match=message):
        train_and_register(_cfg(tmp_path, **training), _frame(), registry)
    assert _snapshot(registry) == before


def test_champion_config_for_warm_start(registry):
    assert champion_config(registry, "m") == {
        "family": "logistic",
        "params": {"C": 2.0, "class_weight": None},
    }
    assert champion_config(registry, "other") is None


def test_warm_points_filter_stale_params_and_expand_ensembles():
    fams = ("logistic", "hist_gb")
    assert warm_points(
        {"family": "logistic", "params": {"C": 3.0, "old": 1}}, fams, "classification"
    ) == [{"family": "logistic", "params": {"C": 3.0}}]
    assert warm_points({"family": "knn", "params": {}}, fams, "classification") == []
    ens = {
        "family": "ensemble",
        "params": {
            "members": [
                {"family": "logistic", "params": {"C": 1.0}},
                {"family": "svm", "params": {"C": 1.0}},
            ]
        },
    }
    assert warm_points(ens, fams, "classification") == [
        {"family": "logistic", "params": {"C": 1.0}}
    ]


def test_searcher_tries_warm_start_then_defaults_then_explores_without_duplicates():
    warm = [{"family": "svm", "params": {"C": 5.0, "gamma": 0.01}}]
    s = FamilySearcher(
        "classification",
        ("logistic", "svm", "hist_gb"),
        np.random.default_rng(0),
        points_to_evaluate=warm,
    )
    first = [s.suggest(f"t{i}") for i in range(4)]
    assert first[0] == {"family": "svm", "params": {"C": 5.0, "gamma": 0.01}, "protected": True}
    assert [c["family"] for c in first[1:]] == ["logistic", "svm", "hist_gb"]  # small data
    assert all(c["protected"] for c in first)
    for i, obj in enumerate([0.9, 0.7, 0.8, 0.95]):  # svm, logistic, svm, hist_gb
        s.on_trial_complete(f"t{i}", {"objective": obj})
    later = [s.suggest(f"u{i}") for i in range(30)]
    assert not any(c["protected"] for c in later)
    keys = {
        FamilySearcher._key({"family": c["family"], "params": c["params"]}) for c in first + later
    }
    assert len(keys) == 34
    # Exploitation favours the best family (hist_gb here) over the worst (logistic).
    fams = [c["family"] for c in later]
    assert fams.count("hist_gb") > fams.count("logistic")


def test_folds_are_stratified_or_time_ordered():
    y = np.array([0] * 30 + [1] * 10)
    for tr, te in make_folds(y, 5, "classification", seed=1):
        assert np.sum(y[te] == 1) == 2 and len(set(tr) & set(te)) == 0
    ts = make_folds(np.arange(40.0), 4, "regression", time_ordered=True)
    assert all(tr.max() < te.min() for tr, te in ts)
    with pytest.raises(DataError, match="too few"):
        make_folds(np.arange(5), 5, "regression")


def test_evaluate_reports_every_task_metric():
    frame = _frame(200)
    model = LogisticRegression().fit(frame[["x"]], frame["y"])
    m = evaluate(model, frame[["x"]], frame["y"].to_numpy(), "classification")
    assert set(m) == {"accuracy", "f1", "precision", "recall", "roc_auc", "log_loss"}
    one_class = frame[frame["y"] == 1]
    assert "roc_auc" not in evaluate(
        model, one_class[["x"]], one_class["y"].to_numpy(), "classification"
    )


def test_jobs_exit_2_with_a_message_on_bad_config_or_data(tmp_path, capsys):
    from jobs import retrain, train

    assert train.main(["--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: m\ndata: {path: d.csv, target: y}\ntraining: {num_trials: 0}\n")
    assert train.main(["--config", str(bad)]) == 2
    assert "training.num_trials" in capsys.readouterr().err
    ok = tmp_path / "ok.yaml"
    ok.write_text(f"name: m\ndata: {{path: d.csv, target: y}}\nstate_dir: {tmp_path}\n")
    assert retrain.main(["--config", str(ok), "--data", str(tmp_path / "nope.csv")]) == 2
    assert "nope.csv" in capsys.readouterr().err
    assert retrain.main(["--config", str(ok), "--data", str(tmp_path / "w.txt")]) == 2
    assert "--data" in capsys.readouterr().err


def test_online_snapshot_registers_through_the_same_path(tmp_path, registry):
    from autopilot.config import OnlineConfig
    from autopilot.training.data import infer_schema, split_xy
    from autopilot.training.online import OnlineLearner
    from autopilot.training.pipeline import register_candidate

    frame, holdout = _frame(600, seed=1), _frame(200, seed=2)
    schema = infer_schema(frame, "y", task="classification")
    X, y = split_xy(frame, schema)
    learner = OnlineLearner(
        OnlineConfig(strategy="mini_batch", batch_size=100),
        schema,
        classes=[0, 1],
        rng=np.random.default_rng(0),
    )
    for i in range(0, 600, 100):
        learner.observe(X.iloc[i : i + 100], y[i : i + 100], now=float(i))
    version, metrics, profile = register_candidate(
        _cfg(tmp_path),
        learner.snapshot(),
        frame,
        registry,
        holdout=holdout,
        trigger="online",
        family="sgd",
        params={"strategy": "mini_batch"},
        parent_version="1",
        data_window="rows 0:600",
    )
    assert version.version == "2" and version.status == "draft"
    assert version.lineage.trigger == "online" and version.lineage.parent_version == "1"
    assert metrics["accuracy"] > 0.9 and version.lineage.metrics["accuracy"] == metrics["accuracy"]
    assert profile is not None
    loaded = registry.load("m", "2")
    assert loaded.model.predict(holdout[["x", "c"]]).shape == (200,)
    assert registry.alias("m", "champion").version == "1"  # candidates are never promoted here


def test_ensemble_cv_from_out_of_fold_predictions_equals_fold_wise_soft_voting():
    from sklearn.base import clone
    from sklearn.datasets import make_classification

    from autopilot.training.automl.ensemble import build_ensemble, ensemble_candidate
    from autopilot.training.automl.trials import Trial
    from autopilot.training.families import build_pipeline
    from autopilot.training.metrics import score

    Xa, y = make_classification(n_samples=300, n_features=6, random_state=0)
    X = pd.DataFrame(Xa, columns=[f"f{i}" for i in range(6)])
    schema = FeatureSchema(tuple(Column(c, "numeric") for c in X.columns), "y", "classification")
    folds = make_folds(y, 3, "classification", seed=0)
    classes = np.unique(y)
    trials = []
    for fam, cv in (("logistic", 0.90), ("knn", 0.80), ("hist_gb", 0.85)):
        oof = np.zeros((len(y), 2))
        for tr, te in folds:
            oof[te] = (
                build_pipeline(fam, {}, schema).fit(X.iloc[tr], y[tr]).predict_proba(X.iloc[te])
            )
        trials.append(Trial(fam, fam, {}, [cv] * 3, [0.1], "complete", "", oof))
    members, scores = ensemble_candidate(
        trials, k=2, metric="roc_auc", y=y, folds=folds, task="classification", classes=classes
    )
    assert [m.family for m in members] == ["logistic", "hist_gb"]  # the top two by CV
    vote = build_ensemble(members, schema, "classification", seed=0)
    direct = [
        score(
            "roc_auc",
            y[te],
            proba=clone(vote).fit(X.iloc[tr], y[tr]).predict_proba(X.iloc[te]),
            classes=list(classes),
        )
        for tr, te in folds
    ]
    np.testing.assert_allclose(scores, direct, rtol=1e-9)
