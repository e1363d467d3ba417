-- tomo store, version 9: releases. One row per apply that changed an app:
-- who, how it ended, the app's manifest revision (content hash of its
-- document, the git commit of the manifest folder when it is a
-- repository), the document itself (secret references, never values) and
-- a one-line summary of the changes; per server and service, the spec hash,
-- the image as written and the image digest that ran. `number` counts an
-- app's releases from 1 (`tomo history`, `tomo rollback --to N`).
CREATE TABLE releases (
    id         INTEGER PRIMARY KEY,
    app        TEXT NOT NULL,
    number     INTEGER NOT NULL,
    run_id     INTEGER REFERENCES apply_runs(id) ON DELETE SET NULL,
    at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    actor      TEXT NOT NULL,
    source     TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    revision   TEXT NOT NULL,
    git_commit TEXT,
    doc_json   TEXT NOT NULL,
    changes    TEXT NOT NULL,
    UNIQUE (app, number)
);
CREATE TABLE release_services (
    release_id INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    server     TEXT NOT NULL,
    service    TEXT NOT NULL,
    spec_hash  TEXT,
    image      TEXT NOT NULL,
    digest     TEXT,
    PRIMARY KEY (release_id, server, service)
);
