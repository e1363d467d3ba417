-- tomo store: tomo's own events (runs, actions, syncs, daemon starts and
-- stops, alerts, warnings) as structured rows, read by `tomo logs --system`.
-- Replaces the unused `logs` table of version 1. Rows are read by time, so
-- the table is indexed by it; message and fields are capped by the writer.
DROP TABLE IF EXISTS logs;
CREATE TABLE logs (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    level       TEXT NOT NULL CHECK (level IN ('error', 'warn', 'info', 'debug')),
    source      TEXT NOT NULL,              -- apply | watch | serve | store | metrics | tracing target
    message     TEXT NOT NULL,
    fields_json TEXT                        -- a JSON object, secrets already masked
);
CREATE INDEX logs_at ON logs(at);
