"""AutoML on Ray Tune: a conditional search over model families, CV-scored, logged to MLflow.

Modules
-------
driver
    :func:`run_automl`, the whole search from inputs to result, and :func:`ensure_ray`.
folds
    :func:`make_folds`, the CV splits every configuration is scored on.
search
    :class:`FamilySearcher`, the warm start, and ASHA that spares protected trials.
trials
    The Tune trainable that CV-scores one configuration; the trial records.
ensemble
    The top-k ensemble: members, out-of-fold score, the fitted voting model.
mlflow_logging
    The experiment, the parent run, one nested MLflow run per trial (and the
    ensemble), the leaderboard artifact, the winner's model, the parent's summary.
results
    :class:`AutoMLResult`, :class:`EnsembleInfo`, the ranked leaderboard.

How one training runs
---------------------
1. Folds are fixed once in the driver (stratified K-fold for classification,
   K-fold for regression, ``TimeSeriesSplit`` when rows are time-ordered) and
   shipped with the data through the object store (``tune.with_parameters``),
   so every configuration is scored on exactly the same splits.
2. :class:`FamilySearcher` proposes configurations: the warm-start point (the
   champion's configuration) first, then each family's defaults, then a mix of
   fresh samples and perturbations of the best configuration of well-ranked
   families. Randomness comes from a seeded ``numpy.random.Generator``.
3. Each trial is a function trainable that fits fold after fold and reports
   the running CV mean after each one, so ASHA stops sampled configurations
   that are behind at a rung (fold ``grace``, ``2*grace``...) without finishing
   their folds. The warm-start point and the family defaults are *protected*:
   they set the rung cut-offs but always finish, so even a small search ends
   with complete candidates for the leaderboard and the ensemble. Trials take
   ``cpus_per_trial`` CPUs (and as many BLAS/OpenMP threads, at least one) and
   actors are reused, which removes most per-trial worker start-up.
4. A soft-voting (regression: averaging) ensemble of the top-k complete trials
   of distinct families competes as one more candidate. Its CV score comes
   from the members' out-of-fold predictions, which is exactly the score of the
   fold-wise voting ensemble, so no extra fitting is needed to score it.
5. The winner is refit on all rows in the driver. MLflow logging happens in the
   driver after the search (workers stay fast): one parent run per training and
   one nested run per trial (params, per-fold and mean/std metric, fit time,
   status); the winner's run holds the leaderboard CSV and the model with its
   signature and an input example.

Importing this package imports ``ray.tune`` (the searcher subclasses Tune's
``Searcher``), but neither starts Ray nor imports MLflow.
"""

from autopilot.training.automl.driver import ensure_ray, run_automl
from autopilot.training.automl.folds import make_folds
from autopilot.training.automl.results import AutoMLResult, EnsembleInfo
from autopilot.training.automl.search import FamilySearcher

__all__ = [
    "AutoMLResult",
    "EnsembleInfo",
    "FamilySearcher",
    "ensure_ray",
    "make_folds",
    "run_automl",
]
