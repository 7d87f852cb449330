"""The benchmark store's tables and views (SQLite DDL; the layout is described in `hwdiffnas.store`)."""

SPACE_COLUMN = "ALTER TABLE cells ADD COLUMN space TEXT NOT NULL DEFAULT 'nb201'"
"""The space column (added to schema-1 stores written before it, in place: older readers ignore it). While the
store holds NB201 alone, ``arch_str`` is unique by itself, so (space, arch_str) is too."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
    cell_key INTEGER PRIMARY KEY,
    arch_str TEXT NOT NULL UNIQUE,
    ops TEXT NOT NULL,
    connected INTEGER NOT NULL,
    nats_unique_str TEXT NOT NULL,
    nb201_idx INTEGER UNIQUE,
    iso_rep_idx INTEGER,
    space TEXT NOT NULL DEFAULT 'nb201'
);
CREATE TABLE IF NOT EXISTS accuracy_series (
    series_id INTEGER PRIMARY KEY,
    dataset TEXT NOT NULL,
    column_name TEXT NOT NULL,
    source TEXT NOT NULL,
    source_column TEXT NOT NULL,
    file TEXT NOT NULL,
    n INTEGER NOT NULL,
    imported_at TEXT NOT NULL,
    UNIQUE (dataset, column_name)
);
CREATE TABLE IF NOT EXISTS accuracy (
    series_id INTEGER NOT NULL REFERENCES accuracy_series(series_id) ON DELETE CASCADE,
    cell_key INTEGER NOT NULL REFERENCES cells(cell_key),
    value REAL NOT NULL,
    PRIMARY KEY (series_id, cell_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hw_series (
    series_id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    source TEXT NOT NULL,
    column_name TEXT NOT NULL,
    setting TEXT NOT NULL,
    metric TEXT NOT NULL CHECK (metric IN ('latency', 'energy')),
    unit TEXT NOT NULL,
    file TEXT NOT NULL,
    n INTEGER NOT NULL,
    imported_at TEXT NOT NULL,
    UNIQUE (source, column_name, setting, metric)
);
CREATE INDEX IF NOT EXISTS hw_series_device ON hw_series(device);
CREATE TABLE IF NOT EXISTS hw_value (
    series_id INTEGER NOT NULL REFERENCES hw_series(series_id) ON DELETE CASCADE,
    cell_key INTEGER NOT NULL REFERENCES cells(cell_key),
    value REAL NOT NULL,
    PRIMARY KEY (series_id, cell_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    device TEXT NOT NULL,
    cell_key INTEGER NOT NULL REFERENCES cells(cell_key),
    arch_str TEXT NOT NULL,
    runtime TEXT NOT NULL DEFAULT '',
    runtime_version TEXT NOT NULL DEFAULT '',
    host TEXT NOT NULL DEFAULT '',
    settings_json TEXT NOT NULL DEFAULT '{}',
    stats_json TEXT NOT NULL DEFAULT '{}',
    median_ms REAL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    error TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    UNIQUE (device, run_id, cell_key)
);
CREATE INDEX IF NOT EXISTS measurements_device ON measurements(device, status);
CREATE TABLE IF NOT EXISTS imports (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    rows INTEGER NOT NULL,
    seconds REAL NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    tool_version TEXT NOT NULL
);
CREATE VIEW IF NOT EXISTS accuracy_v AS
    SELECT c.arch_str, c.nb201_idx, s.dataset, s.column_name, s.source, a.value
    FROM accuracy a JOIN accuracy_series s USING (series_id) JOIN cells c USING (cell_key);
CREATE VIEW IF NOT EXISTS hw_v AS
    SELECT c.arch_str, c.nb201_idx, s.device, s.source, s.column_name, s.setting, s.metric, s.unit, v.value
    FROM hw_value v JOIN hw_series s USING (series_id) JOIN cells c USING (cell_key);
"""
