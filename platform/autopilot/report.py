"""Self-contained HTML reports of what Autopilot saw and decided, with embedded plots.

The report is built from plain data (time series and a journal's rows), so it
is testable without Ray and can be written by the demo, by ``simulate`` and by
``autopilot report`` alike:

- metric over time, one line per model version;
- drift score per feature over time, each beside its threshold;
- traffic weight per version over time;
- every decision marked on the shared timeline, numbered, with its reasons;
- the drift report table of the latest window.

Plots are matplotlib figures (Agg backend, no display needed) embedded as
base64 PNGs, so the HTML is one file that opens anywhere. The main timeline is
also written as a PNG beside the HTML for terminals and issue trackers.

Example
-------
>>> data = ReportData.from_records(
...     model="demo",
...     metric=[{"t": 0, "version": "1", "value": 0.9}, {"t": 10, "version": "1", "value": 0.7}],
...     decisions=[{"t": 5, "action": "retrain", "reasons": ["drift: x severity high"]}],
... )
>>> html = render_html(data)
>>> "data:image/png;base64," in html and "drift: x severity high" in html
True
"""

from __future__ import annotations

import base64
import html as html_lib
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: reports are written by jobs and CLIs, never shown

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

__all__ = [
    "DecisionMark",
    "ReportData",
    "ReportFiles",
    "decisions_from_journal",
    "render_html",
    "render_timeline_png",
    "report_data_from_state",
    "write_report",
]

#: Journal actions that mean "nothing happened"; they are counted, not drawn.
QUIET_ACTIONS = frozenset({"none", "noop", "no_op", "wait", "hold", "keep", "continue", "observe"})

_ACTION_COLOURS = (
    ("rollback", "#d62728"),
    ("roll_back", "#d62728"),
    ("reject", "#d62728"),
    ("archive", "#8c564b"),
    ("promote", "#2ca02c"),
    ("ramp", "#ff7f0e"),
    ("canary", "#ff7f0e"),
    ("shadow", "#ff7f0e"),
    ("retrain", "#1f77b4"),
    ("train", "#1f77b4"),
    ("drift", "#9467bd"),
    ("detect", "#bcbd22"),  # a streaming detector's early warning (no action)
    ("gate", "#17becf"),
    ("validate", "#17becf"),
)

_METRIC_COLUMNS = ("t", "version", "value")
_DRIFT_COLUMNS = ("t", "feature", "score", "threshold")
_WEIGHT_COLUMNS = ("t", "version", "weight")
_MAX_DRIFT_FEATURES = 8  # more lines than this make the plot unreadable; the worst are kept


def _action_colour(action: str) -> str:
    low = action.lower()
    for key, colour in _ACTION_COLOURS:
        if key in low:
            return colour
    return "#7f7f7f"


@dataclass(frozen=True)
class DecisionMark:
    """One decision on the timeline.

    Parameters
    ----------
    t : float
        When it was taken (epoch seconds, or a row index for simulations).
    action : str
        What was decided (``retrain``, ``promote``, ``rollback``, ...).
    reasons : tuple of str
        Why, one line per reason, as the policy gave them.
    version : str or None
        The model version the decision concerns, when there is one.
    """

    t: float
    action: str
    reasons: tuple[str, ...] = ()
    version: str | None = None

    @property
    def quiet(self) -> bool:
        """True for "nothing to do" decisions, which are not drawn."""
        return self.action.lower() in QUIET_ACTIONS


def _reasons(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                return (text,)
            return _reasons(parsed)
        return (text,) if text else ()
    if isinstance(raw, Mapping):
        return tuple(f"{k}: {v}" for k, v in raw.items())
    if isinstance(raw, Iterable):
        out: list[str] = []
        for item in raw:
            if isinstance(item, Mapping):
                # a structured reason: prefer its human text, else all its fields
                human = item.get("text") or item.get("message") or item.get("reason")
                out.append(str(human) if human else ", ".join(f"{k}={v}" for k, v in item.items()))
            else:
                out.append(str(item))
        return tuple(out)
    return (str(raw),)


def _time_of(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, pd.Timestamp):
        return float(value.timestamp())
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return float(pd.Timestamp(value).timestamp())
    return float(value)


def decisions_from_journal(rows: Iterable[Mapping[str, Any]]) -> tuple[DecisionMark, ...]:
    """Turn a decision journal's rows into timeline marks.

    Accepts the field names the journal and the simulator use: time under
    ``t``, ``ts``, ``time`` or ``timestamp``; the action under ``action``
    (or ``kind``/``event``); reasons under ``reasons`` (a list, a JSON list,
    a string or a mapping); the version under ``version``, ``challenger`` or
    ``champion``.

    Raises
    ------
    ValueError
        A row has no time or no action; the message names the row.

    Examples
    --------
    >>> marks = decisions_from_journal([{"ts": 3.0, "action": "promote", "reasons": '["won"]'}])
    >>> marks[0].action, marks[0].reasons
    ('promote', ('won',))
    """
    marks: list[DecisionMark] = []
    for i, row in enumerate(rows):
        t = next((row[k] for k in ("t", "ts", "time", "timestamp") if row.get(k) is not None), None)
        action = next((row[k] for k in ("action", "kind", "event") if row.get(k)), None)
        if t is None or action is None:
            raise ValueError(f"journal row {i} needs a time and an action, got keys {sorted(row)}")
        version = next(
            (row[k] for k in ("version", "challenger", "champion") if row.get(k) is not None), None
        )
        action_text = getattr(action, "value", action)  # enums print as their value
        marks.append(
            DecisionMark(
                t=_time_of(t),
                action=str(action_text),
                reasons=_reasons(row.get("reasons", row.get("reason"))),
                version=None if version is None else str(version),
            )
        )
    return tuple(sorted(marks, key=lambda m: m.t))


def _frame(raw: Any, columns: Sequence[str], name: str) -> pd.DataFrame:
    if raw is None:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    frame = raw.copy() if isinstance(raw, pd.DataFrame) else pd.DataFrame(list(raw))
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} series lacks column(s) {missing}; has {list(frame.columns)}")
    frame["t"] = [_time_of(v) for v in frame["t"]]
    return frame.sort_values("t", kind="stable").reset_index(drop=True)


@dataclass(frozen=True, eq=False)
class ReportData:
    """Everything a report shows, as plain frames.

    Attributes
    ----------
    model : str
        The managed model's name (title of the report).
    metric : DataFrame
        Columns ``t, version, value``: the online metric per version over time.
    drift : DataFrame
        Columns ``t, feature, score, threshold``: a drift score per feature
        over time with the threshold it is judged against.
    weights : DataFrame
        Columns ``t, version, weight``: traffic share per version over time.
    decisions : tuple of DecisionMark
        The journal's decisions, in time order.
    drift_table : DataFrame or None
        The drift report of the latest window (one row per feature).
    metric_name : str
        What ``metric.value`` is (``accuracy``, ``r2``, ...).
    summary : dict
        Extra key facts shown at the top (retrains, versions, ...).
    """

    model: str
    metric: pd.DataFrame
    drift: pd.DataFrame
    weights: pd.DataFrame
    decisions: tuple[DecisionMark, ...] = ()
    drift_table: pd.DataFrame | None = None
    metric_name: str = "accuracy"
    summary: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_records(
        cls,
        model: str,
        metric: Any = None,
        drift: Any = None,
        weights: Any = None,
        decisions: Iterable[Mapping[str, Any]] | Iterable[DecisionMark] = (),
        drift_table: pd.DataFrame | Sequence[Mapping[str, Any]] | None = None,
        metric_name: str = "accuracy",
        summary: Mapping[str, Any] | None = None,
    ) -> ReportData:
        """Build from lists of dicts (or frames) and a journal's rows.

        Raises
        ------
        ValueError
            A series lacks a required column, or a journal row has no time
            or action; the message names which.
        """
        decision_list = list(decisions)
        given = [d for d in decision_list if isinstance(d, DecisionMark)]
        marks: tuple[DecisionMark, ...]
        if decision_list and len(given) == len(decision_list):
            marks = tuple(sorted(given, key=lambda m: m.t))
        else:
            marks = decisions_from_journal(decision_list)  # type: ignore[arg-type]
        table = drift_table
        if table is not None and not isinstance(table, pd.DataFrame):
            table = pd.DataFrame(list(table))
        return cls(
            model=model,
            metric=_frame(metric, _METRIC_COLUMNS, "metric"),
            drift=_frame(drift, _DRIFT_COLUMNS, "drift"),
            weights=_frame(weights, _WEIGHT_COLUMNS, "weights"),
            decisions=marks,
            drift_table=table,
            metric_name=metric_name,
            summary=dict(summary or {}),
        )

    def all_times(self) -> list[float]:
        """Every time stamp in the data (to decide the time axis)."""
        times = [m.t for m in self.decisions]
        for frame in (self.metric, self.drift, self.weights):
            if not frame.empty:
                times.extend(float(v) for v in frame["t"])
        return times


@dataclass(frozen=True)
class ReportFiles:
    """Where a report was written."""

    html: Path
    png: Path


class _TimeAxis:
    """Maps raw times to plotted x values: datetimes for epoch seconds, else as given."""

    def __init__(self, times: Sequence[float]) -> None:
        # Anything after 2001 in epoch seconds is a wall-clock time; smaller values are
        # row indices or seconds since start (the simulator's and tests' case).
        self.epoch = bool(times) and min(times) > 1e9
        self.label = "time (UTC)" if self.epoch else "row / time"

    def __call__(self, values: Iterable[float]) -> list[Any]:
        if self.epoch:
            return [datetime.fromtimestamp(float(v), tz=UTC) for v in values]
        return [float(v) for v in values]

    def fmt(self, t: float) -> str:
        if self.epoch:
            return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        return f"{t:g}"


def _mark_decisions(ax: Any, data: ReportData, axis: _TimeAxis, label: bool) -> None:
    loud = [m for m in data.decisions if not m.quiet]
    for n, mark in enumerate(loud, start=1):
        x = axis([mark.t])[0]
        ax.axvline(x, color=_action_colour(mark.action), linestyle=":", linewidth=1.2, alpha=0.9)
        if label:
            ax.annotate(
                f"{n}",
                xy=(x, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(2, -10),
                textcoords="offset points",
                fontsize=7,
                color=_action_colour(mark.action),
            )


def _plot_metric(ax: Any, data: ReportData, axis: _TimeAxis) -> None:
    if data.metric.empty:
        ax.text(0.5, 0.5, "no labelled metric yet", ha="center", va="center",
                transform=ax.transAxes)
    for version, grp in data.metric.groupby("version", sort=True):
        ax.plot(axis(grp["t"]), grp["value"].astype(float), marker=".", markersize=3,
                linewidth=1.2, label=f"v{version}")
    ax.set_ylabel(data.metric_name)
    ax.set_title(f"{data.metric_name} over time per version (decisions numbered)", fontsize=9)
    if not data.metric.empty:
        ax.legend(fontsize=7, loc="lower left", ncol=4)
    _mark_decisions(ax, data, axis, label=True)


def _plot_weights(ax: Any, data: ReportData, axis: _TimeAxis) -> None:
    if data.weights.empty:
        ax.text(0.5, 0.5, "no routing history", ha="center", va="center", transform=ax.transAxes)
    end = max(data.all_times(), default=0.0)
    for version, grp in data.weights.groupby("version", sort=True):
        # a weight holds until the next table, so carry the last one to the end of the report
        ts = [*grp["t"].astype(float), end]
        ws = [*grp["weight"].astype(float), float(grp["weight"].iloc[-1])]
        ax.step(axis(ts), ws, where="post", label=f"v{version}")
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("traffic weight")
    ax.set_title("traffic weights per version", fontsize=9)
    if not data.weights.empty:
        ax.legend(fontsize=7, loc="center left", ncol=4)
    _mark_decisions(ax, data, axis, label=False)


def _worst_features(drift: pd.DataFrame) -> list[str]:
    thr = drift["threshold"].astype(float).where(drift["threshold"].astype(float) > 0)
    ratio = drift["score"].astype(float) / thr
    worst = ratio.groupby(drift["feature"]).max().fillna(0.0).sort_values(ascending=False)
    return [str(f) for f in worst.index[:_MAX_DRIFT_FEATURES]]


def _plot_drift(ax: Any, data: ReportData, axis: _TimeAxis) -> None:
    if data.drift.empty:
        ax.text(0.5, 0.5, "no drift checks yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_title("drift score per feature", fontsize=9)
        return
    features = _worst_features(data.drift)
    cmap = plt.get_cmap("tab10")
    for i, feat in enumerate(features):
        grp = data.drift[data.drift["feature"].astype(str) == feat]
        colour = cmap(i % 10)
        xs = axis(grp["t"])
        ax.plot(xs, grp["score"].astype(float), color=colour, linewidth=1.2, label=feat)
        ax.plot(xs, grp["threshold"].astype(float), color=colour, linewidth=0.8, linestyle="--")
    shown = len(features)
    total = data.drift["feature"].nunique()
    extra = f" (worst {shown} of {total})" if total > shown else ""
    ax.set_title(f"drift score per feature, dashed: its threshold{extra}", fontsize=9)
    ax.set_ylabel("drift score")
    ax.legend(fontsize=7, loc="upper left", ncol=4)
    _mark_decisions(ax, data, axis, label=False)


def _figure_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def render_timeline_png(data: ReportData) -> bytes:
    """The main timeline: metric per version, drift scores, traffic weights, decisions.

    Returns
    -------
    bytes
        A PNG image (three panels sharing the time axis).
    """
    axis = _TimeAxis(data.all_times())
    fig, axes = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    _plot_metric(axes[0], data, axis)
    _plot_drift(axes[1], data, axis)
    _plot_weights(axes[2], data, axis)
    axes[2].set_xlabel(axis.label)
    fig.suptitle(f"Autopilot: {data.model}", fontsize=11)
    if axis.epoch:
        fig.autofmt_xdate()
    return _figure_png(fig)


def _single_panel(data: ReportData, which: str) -> bytes:
    axis = _TimeAxis(data.all_times())
    fig, ax = plt.subplots(1, 1, figsize=(11, 3.2))
    {"metric": _plot_metric, "drift": _plot_drift, "weights": _plot_weights}[which](ax, data, axis)
    ax.set_xlabel(axis.label)
    if axis.epoch:
        fig.autofmt_xdate()
    return _figure_png(fig)


def _img(png: bytes, alt: str) -> str:
    b64 = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html_lib.escape(alt)}" src="data:image/png;base64,{b64}"/>'


def _fmt_cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.4g}"
    return str(value)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1150px;
color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ddd;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f4f4f4}img{max-width:100%}
.act{font-weight:600}.muted{color:#777}
"""


def render_html(data: ReportData) -> str:
    """Render the whole report as one self-contained HTML page.

    Every plot is an inline ``data:image/png;base64`` image; every text value
    (reasons, feature names) is HTML-escaped.
    """
    axis = _TimeAxis(data.all_times())
    esc = html_lib.escape
    loud = [m for m in data.decisions if not m.quiet]
    quiet = len(data.decisions) - len(loud)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Autopilot report: {esc(data.model)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Autopilot report: {esc(data.model)}</h1>",
        f"<p class='muted'>generated {datetime.now(tz=UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC; "
        f"{len(loud)} decisions shown, {quiet} quiet ticks</p>",
    ]
    if data.summary:
        parts.append("<h2>Summary</h2><table>")
        for key, value in data.summary.items():
            parts.append(f"<tr><th>{esc(str(key))}</th><td>{esc(_fmt_cell(value))}</td></tr>")
        parts.append("</table>")
    parts.append("<h2>Timeline</h2>")
    parts.append(_img(render_timeline_png(data), "timeline"))
    parts.append("<h2>Decisions</h2>")
    if loud:
        parts.append("<table><tr><th>#</th><th>time</th><th>action</th><th>version</th>"
                     "<th>reasons</th></tr>")
        for n, m in enumerate(loud, start=1):
            reasons = "<br>".join(esc(r) for r in m.reasons) or "<span class='muted'>-</span>"
            parts.append(
                f"<tr><td>{n}</td><td>{esc(axis.fmt(m.t))}</td>"
                f"<td class='act' style='color:{_action_colour(m.action)}'>{esc(m.action)}</td>"
                f"<td>{esc(m.version or '')}</td><td>{reasons}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p class='muted'>No decisions were taken.</p>")
    parts.append(f"<h2>{esc(data.metric_name)} per version</h2>")
    parts.append(_img(_single_panel(data, "metric"), f"{data.metric_name} over time"))
    parts.append("<h2>Drift per feature</h2>")
    parts.append(_img(_single_panel(data, "drift"), "drift scores over time"))
    parts.append("<h2>Traffic weights</h2>")
    parts.append(_img(_single_panel(data, "weights"), "traffic weights over time"))
    parts.append("<h2>Drift report, latest window</h2>")
    if data.drift_table is not None and not data.drift_table.empty:
        table = data.drift_table.copy()
        for col in table.columns:
            table[col] = [_fmt_cell(v) for v in table[col]]
        parts.append(table.to_html(index=False, escape=True, border=0))
    else:
        parts.append("<p class='muted'>No drift report yet.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(data: ReportData, html_path: str | Path) -> ReportFiles:
    """Write the HTML report and, beside it, the main timeline as a PNG.

    Parameters
    ----------
    data : ReportData
        What to show.
    html_path : path
        Where the HTML goes; the PNG gets the same name with ``.png``.
        Parent folders are created.

    Returns
    -------
    ReportFiles
        The two paths written.
    """
    html_file = Path(html_path)
    html_file.parent.mkdir(parents=True, exist_ok=True)
    png_file = html_file.with_suffix(".png")
    png_file.write_bytes(render_timeline_png(data))
    html_file.write_text(render_html(data), encoding="utf-8")
    return ReportFiles(html=html_file, png=png_file)


# ------------------------------------------------------------------ from a state folder

#: Effect size at which the drift report grades a feature "high": the default effect
#: threshold (0.1, normalised Wasserstein or Jensen-Shannon) times the "high" multiple 2.5.
HIGH_EFFECT = 0.25


def _plain(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def report_data_from_state(
    state_dir: str | Path, model: str | None = None, *, window_rows: int = 300
) -> ReportData:
    """Read a stack's journal and monitor stores (``journal.db``, ``monitor.db``).

    Parameters
    ----------
    state_dir : path
        The state folder of ``autopilot up`` or the demo.
    model : str, optional
        Which model; required when the journal holds several.
    window_rows : int
        Predictions per point of the metric and drift series.

    Raises
    ------
    FileNotFoundError
        No journal in ``state_dir``.
    ValueError
        Several models and none named, or the named one is unknown.
    """
    import sqlite3

    from autopilot.journal import Journal

    state = Path(state_dir)
    jpath = state / "journal.db"
    if not jpath.is_file():
        raise FileNotFoundError(f"no journal at {str(jpath)!r}: is {str(state)!r} a state folder?")
    journal = Journal(jpath)
    try:
        models = journal.models()
        if model is None:
            if len(models) != 1:
                raise ValueError(f"the journal holds models {models}; name one")
            model = models[0]
        elif model not in models:
            raise ValueError(f"model {model!r} is not in the journal; it holds {models}")
        entries = [e.to_dict() for e in journal.query(model=model)]
    finally:
        journal.close()

    weights: list[dict[str, Any]] = []
    routed: set[str] = set()
    for e in entries:
        w = (e.get("numbers") or {}).get("weights")
        if not w:
            continue
        for v, share in w.items():
            weights.append({"t": e["ts"], "version": str(v), "weight": float(share)})
        for v in routed - set(w):
            weights.append({"t": e["ts"], "version": v, "weight": 0.0})
        routed = set(w)

    metric: list[dict[str, Any]] = []
    drift: list[dict[str, Any]] = []
    table = None
    metric_name = "accuracy"
    mpath = state / "monitor.db"
    if mpath.is_file():
        conn = sqlite3.connect(f"file:{mpath}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT task FROM models WHERE model = ?", (model,)).fetchone()
            task = row[0] if row else "classification"
            rows = conn.execute(
                "SELECT p.ts, p.version, p.features, p.prediction, l.label FROM predictions p"
                " LEFT JOIN labels l ON l.model = p.model AND l.request_id = p.request_id"
                " WHERE p.model = ? AND p.shadow = 0 AND p.error IS NULL ORDER BY p.ts",
                (model,),
            ).fetchall()
            refs = {v: json.loads(p) for v, p in conn.execute(
                "SELECT version, profile FROM refs WHERE model = ?", (model,))}
        finally:
            conn.close()
        metric_name = "accuracy" if task != "regression" else "mean absolute error"
        metric = _metric_points(rows, window_rows, task)
        drift, table = _drift_points(rows, refs, window_rows)
    return ReportData.from_records(
        model, metric=metric, drift=drift, weights=weights, decisions=entries,
        drift_table=table, metric_name=metric_name,
        summary={"decisions": sum(e["action"] not in QUIET_ACTIONS for e in entries),
                 "retrains": sum(e["action"] == "retrain" for e in entries),
                 "promotions": sum(e["action"] == "promote" for e in entries),
                 "rollbacks": sum(e["action"] == "rollback" for e in entries),
                 "detections": sum(e["action"] == "detected" for e in entries)},
    )


def _metric_points(rows: list[tuple[Any, ...]], window: int, task: str) -> list[dict[str, Any]]:
    frame = pd.DataFrame(rows, columns=["ts", "version", "features", "prediction", "label"])
    frame = frame[frame["label"].notna() & frame["prediction"].notna()]
    out: list[dict[str, Any]] = []
    for version, grp in frame.groupby("version", sort=False):
        for start in range(0, len(grp), window):
            chunk = grp.iloc[start:start + window]
            if len(chunk) < max(5, window // 5):
                continue
            pred = [json.loads(p) for p in chunk["prediction"]]
            lab = [json.loads(v) for v in chunk["label"]]
            if task == "regression":
                value = float(sum(abs(float(a) - float(b)) for a, b in zip(pred, lab,
                                                                           strict=True))
                              / len(lab))
            else:
                value = sum(_plain(a) == _plain(b) for a, b in zip(pred, lab, strict=True)) \
                    / len(lab)
            out.append({"t": float(chunk["ts"].iloc[-1]), "version": str(version),
                        "value": float(value)})
    return out


def _drift_points(
    rows: list[tuple[Any, ...]], refs: Mapping[str, Any], window: int
) -> tuple[list[dict[str, Any]], pd.DataFrame | None]:
    from autopilot.stats import ReferenceProfile

    if not rows or not refs:
        return [], None
    profiles = {v: ReferenceProfile.from_dict(p) for v, p in refs.items()}
    out: list[dict[str, Any]] = []
    table = None
    for start in range(0, len(rows), window):
        chunk = rows[start:start + window]
        if len(chunk) < window // 2:
            break
        versions = pd.Series([r[1] for r in chunk])
        version = str(versions.mode().iloc[0])  # the version that served most of the window
        profile = profiles.get(version)
        if profile is None:
            continue
        feats = pd.DataFrame([json.loads(r[2]) for r in chunk])
        missing = [c for c in profile.columns if c not in feats.columns]
        if missing:
            continue
        report = profile.compare(feats[list(profile.columns)])
        t = float(chunk[-1][0])
        for f in report.features:
            out.append({"t": t, "feature": f.feature, "score": float(f.effect_size),
                        "threshold": HIGH_EFFECT})
        table = report.to_frame()[["feature", "kind", "method", "statistic", "p_value_adjusted",
                                   "effect_size", "severity", "recommendation"]]
    return out, table
