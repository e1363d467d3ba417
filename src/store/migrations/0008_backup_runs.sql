-- Backup runs: each `tomo backup create` (by hand, by watch's schedule or by
-- an agent), its archive and whether it was verified after writing.
CREATE TABLE backup_runs (
    id          INTEGER PRIMARY KEY,
    started_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at TEXT,
    trigger     TEXT NOT NULL,
    file        TEXT,
    size        INTEGER,
    members     INTEGER,
    apps_json   TEXT,
    verified    INTEGER NOT NULL DEFAULT 0,
    outcome     TEXT NOT NULL DEFAULT 'running',
    error       TEXT
);
CREATE INDEX backup_runs_file ON backup_runs (file);
