-- tomo store, version 1: every table the product uses.
-- Timestamps are RFC 3339 UTC text; JSON columns hold serde_json documents.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer', 'agent')),
    password_hash TEXT NOT NULL,            -- Argon2id PHC string
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- One row per issued JWT (its jti), so tokens can be listed and revoked.
CREATE TABLE sessions (
    jti        TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    expires_at TEXT NOT NULL,
    revoked_at TEXT,
    client     TEXT
);

-- Failed logins per user or address, for slowing down and locking.
CREATE TABLE login_failures (
    key          TEXT PRIMARY KEY,          -- 'user:NAME' or 'addr:IP'
    failures     INTEGER NOT NULL DEFAULT 0,
    last_at      TEXT NOT NULL,
    locked_until TEXT
);

-- Observed facts per declared server, and trusted host keys.
CREATE TABLE servers (
    name             TEXT PRIMARY KEY,
    host             TEXT NOT NULL,
    reachable        INTEGER,
    docker_version   TEXT,
    os               TEXT,
    uptime_seconds   INTEGER,
    facts_json       TEXT,
    host_key         TEXT,                  -- trusted SHA256 fingerprint
    host_key_at      TEXT,
    observed_at      TEXT
);

CREATE TABLE apply_runs (
    id               INTEGER PRIMARY KEY,
    started_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at      TEXT,
    status           TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
    plan_fingerprint TEXT,
    actor            TEXT,                  -- user name, or 'cli' / 'watch'
    source           TEXT,                  -- cli | mcp | watch | proposal
    pid              INTEGER,
    summary_json     TEXT
);

-- Each action of a run; also the crash journal (written before and after each action).
CREATE TABLE apply_actions (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES apply_runs(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    server      TEXT NOT NULL,
    app         TEXT,
    service     TEXT,
    action      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'skipped')),
    started_at  TEXT,
    finished_at TEXT,
    error       TEXT,
    detail_json TEXT
);
CREATE INDEX apply_actions_run ON apply_actions(run_id, seq);

-- What is deployed where, by which run.
CREATE TABLE installations (
    server       TEXT NOT NULL,
    app          TEXT NOT NULL,
    service      TEXT NOT NULL,
    container_id TEXT,
    image        TEXT,
    spec_hash    TEXT,
    spec_json    TEXT,
    run_id       INTEGER REFERENCES apply_runs(id) ON DELETE SET NULL,
    deployed_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (server, app, service)
);

CREATE TABLE marketplace_repos (
    name         TEXT PRIMARY KEY,
    url          TEXT NOT NULL,
    git_ref      TEXT NOT NULL,
    format       TEXT NOT NULL,
    last_sync_at TEXT,
    last_commit  TEXT,
    last_error   TEXT
);

CREATE TABLE marketplace_apps (
    repo            TEXT NOT NULL REFERENCES marketplace_repos(name) ON DELETE CASCADE,
    app_id          TEXT NOT NULL,
    title           TEXT,
    description     TEXT,
    category        TEXT,
    version         TEXT,
    definition_json TEXT NOT NULL,
    PRIMARY KEY (repo, app_id)
);

-- Per-user settings ('' = installation-wide); system settings are the Settings manifest.
CREATE TABLE settings (
    user       TEXT NOT NULL DEFAULT '',
    key        TEXT NOT NULL,
    value_json TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (user, key)
);

CREATE TABLE logs (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    level       TEXT NOT NULL,
    target      TEXT,
    message     TEXT NOT NULL,
    fields_json TEXT
);

-- The audit log.
CREATE TABLE activities (
    id             INTEGER PRIMARY KEY,
    at             TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    actor          TEXT,
    role           TEXT,
    category       TEXT NOT NULL,           -- auth | settings | manifest | apply | tool | secret | server
    action         TEXT NOT NULL,
    target         TEXT,
    arguments_json TEXT,                    -- secrets redacted
    result         TEXT NOT NULL,           -- ok | error | refused
    detail         TEXT
);
CREATE INDEX activities_at ON activities(at);

CREATE TABLE metrics (
    id        INTEGER PRIMARY KEY,
    at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    server    TEXT NOT NULL,
    container TEXT,
    name      TEXT NOT NULL,
    value     REAL NOT NULL
);
CREATE INDEX metrics_lookup ON metrics(server, name, at);

-- The vault: values encrypted with XChaCha20-Poly1305 under the master key.
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- A known value encrypted under the master key: a wrong password or salt is
-- detected before anything is read or written.
CREATE TABLE vault_meta (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    kdf        TEXT NOT NULL,
    nonce      BLOB NOT NULL,
    key_check  BLOB NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE proposals (
    id               TEXT PRIMARY KEY,
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    created_by       TEXT NOT NULL,
    role             TEXT NOT NULL,
    title            TEXT NOT NULL,
    diff             TEXT NOT NULL,         -- unified diff of the manifest edits
    edits_json       TEXT NOT NULL,
    plan_json        TEXT,
    plan_fingerprint TEXT,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'applied', 'failed', 'stale')),
    decided_by       TEXT,
    decided_at       TEXT,
    reason           TEXT,
    run_id           INTEGER REFERENCES apply_runs(id) ON DELETE SET NULL
);

-- Named locks (one apply per data directory), with who holds them since when.
CREATE TABLE locks (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    host        TEXT NOT NULL,
    acquired_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
