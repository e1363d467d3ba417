-- tomo store: an apply run can end `cancelled` (stopped on request: the
-- actions that had started finished, no other started). SQLite cannot change
-- a CHECK constraint in place, so the table is rebuilt (the documented
-- procedure; migrations run with foreign keys off and checked before commit,
-- so the rows that refer to runs keep referring to them).
CREATE TABLE apply_runs_new (
    id               INTEGER PRIMARY KEY,
    started_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at      TEXT,
    status           TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted', 'cancelled')),
    plan_fingerprint TEXT,
    actor            TEXT,                  -- user name, or 'cli' / 'watch'
    source           TEXT,                  -- cli | mcp | watch | proposal
    pid              INTEGER,
    summary_json     TEXT
);
INSERT INTO apply_runs_new (id, started_at, finished_at, status, plan_fingerprint, actor, source, pid, summary_json)
    SELECT id, started_at, finished_at, status, plan_fingerprint, actor, source, pid, summary_json FROM apply_runs;
DROP TABLE apply_runs;
ALTER TABLE apply_runs_new RENAME TO apply_runs;
