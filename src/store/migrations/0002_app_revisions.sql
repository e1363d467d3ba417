-- tomo store, version 2: each App document as it was when an apply changed
-- the app, for `app_history` and `app_rollback`. Documents hold secret
-- references (`{secret: NAME}`), never secret values.
CREATE TABLE app_revisions (
    id       INTEGER PRIMARY KEY,
    app      TEXT NOT NULL,
    run_id   INTEGER REFERENCES apply_runs(id) ON DELETE SET NULL,
    at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    doc_json TEXT NOT NULL
);
CREATE INDEX app_revisions_app ON app_revisions(app, id);
