-- Fleet metrics, replacing the unused `metrics` table of 0001.
DROP INDEX IF EXISTS metrics_lookup;
DROP TABLE IF EXISTS metrics;

-- One row per series: a figure of a server, a container (app, service) or
-- a mount (device); '' where it does not apply.
CREATE TABLE metric_series (
    id      INTEGER PRIMARY KEY,
    server  TEXT NOT NULL,
    app     TEXT NOT NULL DEFAULT '',
    service TEXT NOT NULL DEFAULT '',
    device  TEXT NOT NULL DEFAULT '',
    figure  TEXT NOT NULL,
    UNIQUE (server, app, service, device, figure)
);

-- Raw samples: one row per server per round, its values packed as
-- (series id delta, scaled value) varints (`store/metrics/pack.rs`).
CREATE TABLE metric_samples (
    server TEXT NOT NULL,
    at     INTEGER NOT NULL,            -- unix seconds
    packed BLOB NOT NULL,
    PRIMARY KEY (server, at)
) WITHOUT ROWID;

-- 5-minute rollups per series, values scaled as in metric_samples.
CREATE TABLE metric_rollups (
    series INTEGER NOT NULL,
    at     INTEGER NOT NULL,            -- the bucket's start
    min    INTEGER NOT NULL,
    avg    INTEGER NOT NULL,
    max    INTEGER NOT NULL,
    PRIMARY KEY (series, at)
) WITHOUT ROWID;

-- How far each server's samples are rolled up (the next bucket's start).
CREATE TABLE metric_rolled (
    server TEXT PRIMARY KEY,
    upto   INTEGER NOT NULL
);

-- Alerts firing now: a rule for one series.
CREATE TABLE metric_alerts (
    rule   TEXT NOT NULL,
    series INTEGER NOT NULL,
    value  REAL NOT NULL,
    since  INTEGER NOT NULL,
    PRIMARY KEY (rule, series)
);
