"""The Monitor's SQLite tables: the prediction log, labels, references and detector marks."""

__all__ = ["SCHEMA"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    ts REAL NOT NULL,
    features TEXT NOT NULL,
    prediction TEXT,
    proba TEXT,
    latency_ms REAL NOT NULL,
    error TEXT,
    cache_hit INTEGER NOT NULL,
    caller_key TEXT,
    shadow INTEGER NOT NULL,
    label TEXT,
    score REAL
);
CREATE INDEX IF NOT EXISTS predictions_mvt ON predictions (model, version, ts);
CREATE INDEX IF NOT EXISTS predictions_req ON predictions (model, request_id);
CREATE INDEX IF NOT EXISTS predictions_mt ON predictions (model, ts);
CREATE TABLE IF NOT EXISTS labels (
    model TEXT NOT NULL,
    request_id TEXT NOT NULL,
    label TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (model, request_id)
);
CREATE TABLE IF NOT EXISTS refs (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    profile TEXT NOT NULL,
    PRIMARY KEY (model, version)
);
CREATE TABLE IF NOT EXISTS ref_since (
    model TEXT NOT NULL, version TEXT NOT NULL, since REAL NOT NULL,
    PRIMARY KEY (model, version)
);
CREATE TABLE IF NOT EXISTS replayed (
    path TEXT PRIMARY KEY,
    offset INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS models (
    model TEXT PRIMARY KEY,
    task TEXT,
    classes TEXT NOT NULL,
    target TEXT NOT NULL,
    window_rows INTEGER
);
CREATE TABLE IF NOT EXISTS feature_watch (
    model TEXT PRIMARY KEY,
    since_id INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS feature_alarms (
    model TEXT NOT NULL,
    feature TEXT NOT NULL,
    detector TEXT NOT NULL,
    version TEXT NOT NULL,
    ts REAL NOT NULL,
    n INTEGER NOT NULL,
    rows_after INTEGER NOT NULL,
    mean_before REAL NOT NULL,
    mean_after REAL NOT NULL,
    PRIMARY KEY (model, feature, detector)
);
"""
