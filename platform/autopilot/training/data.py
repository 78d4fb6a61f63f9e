"""Training data: load, infer a schema, validate, split, fingerprint.

Everything that turns a user's table into model input goes through this
module, so training (``split_xy``) and serving (``coerce_features``) see
features in exactly the same representation:

- numeric columns become ``float64`` (unparseable values are an error, not NaN);
- categorical and binary columns become ``object`` columns of ``str`` labels,
  with integral numbers written without a decimal point (``1.0`` -> ``"1"``)
  so a level seen as ``1`` in a CSV and as ``1.0`` in a JSON request is the
  same level; missing values stay ``NaN`` for the pipelines' imputers.

Example
-------
>>> import pandas as pd
>>> frame = pd.DataFrame({"age": [31, 45, None, 52], "plan": ["a", "b", "a", "c"],
...                       "churn": [0, 1, 0, 1]})
>>> schema = infer_schema(frame, "churn")
>>> schema.task, [(c.name, c.kind) for c in schema.columns]
('classification', [('age', 'numeric'), ('plan', 'categorical')])
>>> X, y = split_xy(frame, schema)
>>> X.dtypes.tolist(), y.tolist()
([dtype('float64'), dtype('O')], [0, 1, 0, 1])
"""

from __future__ import annotations

import hashlib
import math
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from autopilot.config import DataConfig, FeatureLists
from autopilot.errors import DataError
from autopilot.schema import Column, FeatureSchema, Kind

__all__ = [
    "MAX_CATEGORIES",
    "MAX_CLASSES",
    "coerce_features",
    "fingerprint",
    "infer_schema",
    "load_frame",
    "split_xy",
    "time_split",
    "validate_training_data",
]

#: A numeric target with at most this many distinct integer values is a class label.
MAX_CLASSES = 20
#: Categorical columns with more levels than this keep an open level set (``categories=()``).
MAX_CATEGORIES = 200
# Share of non-null values that must parse as numbers for a text column to count as numeric;
# below it the column is categorical. A few stray strings then surface as a DataError
# in validation instead of silently turning a numeric column into thousands of levels.
_NUMERIC_SHARE = 0.9


# ---------------------------------------------------------------------------- loading


def load_frame(
    data_cfg: DataConfig,
    *,
    window: tuple[int, int] | None = None,
    whole_stream: bool = False,
) -> pd.DataFrame:
    """Load the table a :class:`~autopilot.config.DataConfig` points at.

    Parameters
    ----------
    data_cfg : DataConfig
        A CSV or Parquet ``path``, or a built-in ``generator``
        (:func:`autopilot.training.generator.drifting_stream`).
    window : (start, stop), optional
        Keep only rows ``start <= i < stop`` (positions, after loading).
    whole_stream : bool
        Generator sources only. By default a generator's *training data* is its
        quiet stretch before the first change point (``Stream.reference()``):
        the rows a model was built on before going live, while the rest of the
        stream is the future that the demo replays as traffic. ``True`` returns
        every row.

    Returns
    -------
    pandas.DataFrame
        The rows, with a fresh ``RangeIndex``.

    Raises
    ------
    DataError
        The file is missing or unreadable, is empty, or the window is invalid.
    """
    if data_cfg.generator is not None:
        from autopilot.training.generator import drifting_stream

        g = data_cfg.generator
        try:
            stream = drifting_stream(g.scenario, n_rows=g.n_rows, seed=g.seed)
        except ValueError as exc:
            raise DataError(f"data.generator: {exc}") from exc
        frame = (stream.frame if whole_stream else stream.reference()).copy()
    else:
        frame = _read_path(Path(str(data_cfg.path)))
    if window is not None:
        start, stop = window
        if not 0 <= start < stop:
            raise DataError(f"window {window!r} must satisfy 0 <= start < stop")
        frame = frame.iloc[start:stop]
        if frame.empty:
            raise DataError(f"window {window!r} selects no rows (the data has fewer rows)")
    return frame.reset_index(drop=True)


def _read_path(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"data file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path)
        elif suffix in {".parquet", ".pq"}:
            frame = pd.read_parquet(path)
        else:
            raise DataError(f"data file {str(path)!r}: unsupported suffix {suffix!r}")
    except DataError:
        raise
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read data file {str(path)!r}: {exc}") from exc
    except Exception as exc:  # pyarrow raises its own types for corrupt Parquet
        raise DataError(f"cannot read data file {str(path)!r}: {exc}") from exc
    if frame.empty:
        raise DataError(f"data file {str(path)!r} has no rows")
    return frame


# ------------------------------------------------------------------------ labelling


def _label(value: Any) -> Any:
    """One categorical level as ``str`` (missing stays ``NaN``)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return np.nan
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        f = float(value)
        if math.isnan(f):
            return np.nan
        return str(int(f)) if f.is_integer() else repr(f)
    return str(value)


def _as_labels(series: pd.Series) -> pd.Series:
    return pd.Series(
        [_label(v) for v in series.to_numpy(dtype=object)], index=series.index, dtype=object
    )


def _levels(series: pd.Series) -> list[Any]:
    """Distinct non-null values, sorted naturally (numbers numerically)."""
    values = pd.unique(series.dropna())
    try:
        return sorted(values.tolist())
    except TypeError:  # mixed types: fall back to their labels
        return sorted(values.tolist(), key=lambda v: str(_label(v)))


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _is_text(series: pd.Series) -> bool:
    return not (
        _is_numeric(series)
        or pd.api.types.is_bool_dtype(series)
        or pd.api.types.is_datetime64_any_dtype(series)
        or isinstance(series.dtype, pd.CategoricalDtype)
    )


def _numeric_share(series: pd.Series) -> float:
    present = series.dropna()
    if present.empty:
        return 0.0
    parsed = pd.to_numeric(present, errors="coerce")
    return float(parsed.notna().mean())


# ------------------------------------------------------------------------- schema


def _infer_kind(series: pd.Series) -> Kind | None:
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        return None  # timestamps are not features; the time column is declared separately
    n_levels = series.nunique(dropna=True)
    if pd.api.types.is_bool_dtype(series):
        return "binary"
    if _is_numeric(series):
        return "binary" if n_levels == 2 else "numeric"
    if isinstance(series.dtype, pd.CategoricalDtype):
        return "binary" if n_levels == 2 else "categorical"
    if n_levels > 2 and _numeric_share(series) >= _NUMERIC_SHARE:
        return "numeric"
    return "binary" if n_levels == 2 else "categorical"


def _column(name: str, kind: Kind, series: pd.Series) -> Column:
    categories: tuple[str, ...] = ()
    if kind in ("categorical", "binary"):
        levels = list(dict.fromkeys(_label(v) for v in _levels(series)))
        if len(levels) <= MAX_CATEGORIES:
            categories = tuple(levels)
    # Every pipeline imputes, so a missing value is acceptable input for any column.
    return Column(name=name, kind=kind, nullable=True, categories=categories)


def _infer_task(y: pd.Series) -> Literal["classification", "regression"]:
    present = y.dropna()
    if not _is_numeric(present) and not (_is_text(present) and _numeric_share(present) == 1.0):
        return "classification"
    values = pd.to_numeric(present, errors="coerce").to_numpy(dtype=float)
    integral = bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))
    if integral and len(np.unique(values)) <= MAX_CLASSES:
        return "classification"
    return "regression"


def infer_schema(
    frame: pd.DataFrame,
    target: str,
    *,
    features: FeatureLists | None = None,
    task: Literal["classification", "regression"] | None = None,
    time_column: str | None = None,
) -> FeatureSchema:
    """Infer the feature schema (kinds, levels), the task and the classes.

    Parameters
    ----------
    frame : pandas.DataFrame
        Training data, target included.
    target : str
        Target column.
    features : FeatureLists, optional
        Declared columns by kind; only these are features (numeric, then
        categorical, then binary). Inferred from every other column when absent.
    task : {"classification", "regression"}, optional
        Inferred when absent: a non-numeric target, or one with at most
        :data:`MAX_CLASSES` distinct integer values, is classification.
    time_column : str, optional
        Excluded from the features and recorded in the schema.

    Returns
    -------
    FeatureSchema

    Raises
    ------
    DataError
        The target, the time column or a declared feature is missing, a column
        is declared twice, or no feature remains.

    Notes
    -----
    Inferred kinds: bool columns and columns with exactly two levels are
    binary; other numeric columns are numeric; text columns are numeric when
    at least 90 % of their values parse as numbers (the rest then fail
    :func:`validate_training_data`), else categorical. Datetime columns other
    than the time column are left out.
    """
    if target not in frame.columns:
        raise DataError(f"target column {target!r} is missing; columns are {list(frame.columns)}")
    if time_column is not None and time_column not in frame.columns:
        raise DataError(f"time column {time_column!r} is missing")
    if time_column == target:
        raise DataError(f"time column {time_column!r} cannot be the target")
    excluded = {target, time_column}

    columns: list[Column] = []
    if features is not None:
        declared: list[tuple[str, Kind]] = [
            *((n, "numeric") for n in features.numeric),
            *((n, "categorical") for n in features.categorical),
            *((n, "binary") for n in features.binary),
        ]
        seen: dict[str, str] = {}
        for name, kind in declared:
            if name in seen:
                raise DataError(f"feature {name!r} is declared twice ({seen[name]} and {kind})")
            seen[name] = kind
            if name in excluded:
                raise DataError(f"feature {name!r} is the target or the time column")
            if name not in frame.columns:
                raise DataError(f"declared feature {name!r} ({kind}) is missing from the data")
            columns.append(_column(name, kind, frame[name]))
    else:
        for name in frame.columns:
            if name in excluded:
                continue
            inferred = _infer_kind(frame[name])
            if inferred is not None:
                columns.append(_column(str(name), inferred, frame[name]))
    if not columns:
        raise DataError(f"no feature columns besides target {target!r}")

    y = frame[target]
    resolved = task or _infer_task(y)
    classes: tuple[str, ...] = ()
    if resolved == "classification":
        classes = tuple(dict.fromkeys(str(_label(v)) for v in _levels(y)))
    return FeatureSchema(
        columns=tuple(columns),
        target=target,
        task=resolved,
        classes=classes,
        time_column=time_column,
    )


# ----------------------------------------------------------------------- features


def _unparseable(series: pd.Series) -> pd.Series:
    """The non-null values of ``series`` that do not parse as numbers."""
    if _is_numeric(series) or pd.api.types.is_bool_dtype(series):
        return series.iloc[0:0]
    parsed = pd.to_numeric(series, errors="coerce")
    return series[series.notna() & parsed.isna()]


def coerce_features(frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """Turn rows (training data or requests) into model input.

    Parameters
    ----------
    frame : pandas.DataFrame
        Rows holding at least the schema's features; other columns are ignored.
    schema : FeatureSchema

    Returns
    -------
    pandas.DataFrame
        ``schema.names`` in order: numeric columns ``float64``, categorical and
        binary columns ``object`` labels (see the module docstring).

    Raises
    ------
    DataError
        A feature is missing, or a numeric feature holds unparseable values.

    >>> from autopilot.schema import Column, FeatureSchema
    >>> s = FeatureSchema((Column("x", "numeric"), Column("c", "binary")), "y", "regression")
    >>> coerce_features(pd.DataFrame({"c": [1.0, 0], "x": ["2.5", None]}), s).values.tolist()
    [[2.5, '1'], [nan, '0']]
    """
    missing = [n for n in schema.names if n not in frame.columns]
    if missing:
        raise DataError(f"missing feature column(s) {missing}")
    out: dict[str, pd.Series] = {}
    for col in schema.columns:
        series = frame[col.name]
        if col.kind == "numeric":
            bad = _unparseable(series)
            if len(bad):
                examples = list(dict.fromkeys(map(str, bad.tolist())))[:3]
                raise DataError(
                    f"numeric feature {col.name!r} has {len(bad)} unparseable value(s), "
                    f"e.g. {examples}"
                )
            out[col.name] = pd.to_numeric(series, errors="coerce").astype("float64")
        else:
            out[col.name] = _as_labels(series)
    return pd.DataFrame(out, index=frame.index, columns=list(schema.names))


def split_xy(frame: pd.DataFrame, schema: FeatureSchema) -> tuple[pd.DataFrame, np.ndarray]:
    """Features and target for fitting; rows without a target are dropped.

    Returns
    -------
    X : pandas.DataFrame
        ``coerce_features(frame, schema)`` for the labelled rows.
    y : numpy.ndarray
        The target as stored (class labels unchanged; ``float64`` for regression).

    Raises
    ------
    DataError
        The target or a feature is missing, or a numeric value is unparseable.
    """
    if schema.target not in frame.columns:
        raise DataError(f"target column {schema.target!r} is missing")
    labelled = frame[frame[schema.target].notna()]
    X = coerce_features(labelled, schema).reset_index(drop=True)
    y_series = labelled[schema.target]
    if schema.task == "regression":
        bad = _unparseable(y_series)
        if len(bad):
            raise DataError(
                f"regression target {schema.target!r} has unparseable values, "
                f"e.g. {list(map(str, bad.tolist()))[:3]}"
            )
        return X, pd.to_numeric(y_series).to_numpy(dtype="float64")
    return X, y_series.to_numpy()


# ----------------------------------------------------------------------- validation


def validate_training_data(frame: pd.DataFrame, schema: FeatureSchema, cv_folds: int) -> None:
    """Refuse data a training run cannot use, naming the problem.

    Raises
    ------
    DataError
        The target is missing or wholly unlabelled; a classification target has
        one class (a regression target is constant); feature columns are
        missing or all-NaN; numeric columns hold unparseable values; there are
        fewer labelled rows than ``cv_folds``, or a class has fewer members.

    >>> from autopilot.schema import Column, FeatureSchema
    >>> s = FeatureSchema((Column("x", "numeric"),), "y", "classification", ("0", "1"))
    >>> validate_training_data(pd.DataFrame({"x": [1, 2, 3], "y": [0, 0, 0]}), s, 2)
    Traceback (most recent call last):
    ...
    autopilot.errors.DataError: target 'y' has a single class (0); need at least two
    """
    if cv_folds < 2:
        raise ValueError(f"cv_folds must be at least 2, got {cv_folds}")
    target = schema.target
    if target not in frame.columns:
        raise DataError(f"target column {target!r} is missing; columns are {list(frame.columns)}")
    missing = [n for n in schema.names if n not in frame.columns]
    if missing:
        raise DataError(f"feature column(s) {missing} are missing")
    all_nan = [n for n in schema.names if frame[n].isna().all()]
    if all_nan:
        raise DataError(f"feature column(s) {all_nan} contain only missing values")
    problems = []
    for col in schema.columns:
        if col.kind != "numeric":
            continue
        bad = _unparseable(frame[col.name])
        if len(bad):
            examples = list(dict.fromkeys(map(str, bad.tolist())))[:3]
            problems.append(f"{col.name!r} ({len(bad)} value(s), e.g. {examples})")
    if problems:
        raise DataError("unparseable values in numeric feature(s): " + "; ".join(problems))

    y = frame[target].dropna()
    if y.empty:
        raise DataError(f"target {target!r} has no labelled rows")
    if schema.task == "classification":
        counts = y.map(_label).value_counts()
        if len(counts) < 2:
            raise DataError(
                f"target {target!r} has a single class ({counts.index[0]}); need at least two"
            )
    else:
        bad = _unparseable(y)
        if len(bad):
            raise DataError(
                f"regression target {target!r} has unparseable values, "
                f"e.g. {list(map(str, bad.tolist()))[:3]}"
            )
        if pd.to_numeric(y).nunique() < 2:
            raise DataError(f"regression target {target!r} is constant")
    if len(y) < cv_folds:
        raise DataError(f"{len(y)} labelled row(s) is fewer than cv_folds={cv_folds}")
    if schema.task == "classification":
        rare = counts[counts < cv_folds]
        if len(rare):
            listed = ", ".join(f"{k!r}: {v}" for k, v in rare.items())
            raise DataError(
                f"class(es) of target {target!r} with fewer members than cv_folds={cv_folds}: "
                f"{listed}"
            )


# ------------------------------------------------------------------ fingerprint, split


def fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of a table's content, for lineage.

    Independent of the row index, of column order (columns are taken by name)
    and of how text is stored (object or string dtype); sensitive to values,
    other dtypes and row order. Stable across processes
    because :func:`pandas.util.hash_pandas_object` uses a fixed key.

    >>> a = pd.DataFrame({"x": [1.0, 2.0], "c": ["u", "v"]})
    >>> b = a[["c", "x"]].set_axis([10, 11])
    >>> fingerprint(a) == fingerprint(b), fingerprint(a) == fingerprint(a.iloc[::-1])
    (True, False)
    >>> len(fingerprint(a))
    64
    """
    h = hashlib.sha256()
    names = sorted(map(str, frame.columns))
    by_name = {str(c): c for c in frame.columns}
    h.update(f"rows={len(frame)};".encode())
    for name in names:
        col = frame[by_name[name]]
        # Text is text whether pandas holds it as object, "str" or "string" (the values
        # hash alike), so a table read back from Parquet or CSV keeps its fingerprint.
        text = pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)
        h.update(f"{name}:{'text' if text else col.dtype};".encode())
        h.update(pd.util.hash_pandas_object(col, index=False).to_numpy().tobytes())
    return h.hexdigest()


def time_split(
    frame: pd.DataFrame, time_column: str, test_fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split by time: the latest ``test_fraction`` of rows are the test set.

    Rows are ordered by ``time_column`` (stably); rows sharing the cut-off
    timestamp all go to the test side, so no instant is split across the two.

    Returns
    -------
    train, test : pandas.DataFrame
        Time-ordered, index preserved.

    Raises
    ------
    DataError
        The time column is missing or has missing values, or a side is empty.
    ValueError
        ``test_fraction`` is not in (0, 1).

    >>> f = pd.DataFrame({"t": [3, 1, 2, 4, 5], "v": list("abcde")})
    >>> train, test = time_split(f, "t", 0.4)
    >>> train["t"].tolist(), test["t"].tolist()
    ([1, 2, 3], [4, 5])
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if time_column not in frame.columns:
        raise DataError(f"time column {time_column!r} is missing")
    t = frame[time_column]
    if t.isna().any():
        raise DataError(f"time column {time_column!r} has {int(t.isna().sum())} missing value(s)")
    ordered = frame.sort_values(time_column, kind="stable")
    n_test = max(1, int(round(len(ordered) * test_fraction)))
    cut_value = ordered[time_column].iloc[len(ordered) - n_test]
    is_test = (ordered[time_column] >= cut_value).to_numpy()
    train, test = ordered[~is_test], ordered[is_test]
    if train.empty or test.empty:
        raise DataError(
            f"time split of {len(frame)} row(s) at fraction {test_fraction} leaves a side empty"
        )
    return train, test

