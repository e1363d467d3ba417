-- tomo store, version 3: the marketplace catalog. A sync replaces one
-- store's rows in one transaction. `marketplace_apps` (never written before
-- this version) is remade with a rowid for its full-text index.
DROP TABLE marketplace_apps;

CREATE TABLE marketplace_apps (
    id                 INTEGER PRIMARY KEY,
    repo               TEXT NOT NULL REFERENCES marketplace_repos(name) ON DELETE CASCADE,
    app_id             TEXT NOT NULL,
    title              TEXT NOT NULL,
    tagline            TEXT NOT NULL,
    description        TEXT NOT NULL,
    category           TEXT NOT NULL,
    author             TEXT NOT NULL,
    icon               TEXT NOT NULL,
    version            TEXT NOT NULL,
    architectures_json TEXT NOT NULL,       -- ["amd64", ...]
    ports_json         TEXT NOT NULL,       -- host ports published: [8080, ...]
    source             TEXT NOT NULL,       -- definition file, relative to the store's root
    checksum           TEXT NOT NULL,       -- SHA-256 of the app's folder
    main               TEXT,
    notes_json         TEXT NOT NULL,       -- what was read leniently
    featured           INTEGER NOT NULL DEFAULT 0,
    definition_json    TEXT NOT NULL,       -- the whole catalog entry
    UNIQUE (repo, app_id)
);
CREATE INDEX marketplace_apps_category ON marketplace_apps(category COLLATE NOCASE);

-- Apps of a store that could not be read, with their `file:line` reason.
CREATE TABLE marketplace_invalid (
    repo    TEXT NOT NULL REFERENCES marketplace_repos(name) ON DELETE CASCADE,
    app_id  TEXT NOT NULL,
    source  TEXT NOT NULL,
    reason  TEXT NOT NULL,
    PRIMARY KEY (repo, app_id)
);

-- Categories a store declares (`category-list.json`).
CREATE TABLE marketplace_categories (
    repo        TEXT NOT NULL REFERENCES marketplace_repos(name) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    PRIMARY KEY (repo, name)
);

-- Full-text index over the apps (external content: the text is stored once).
CREATE VIRTUAL TABLE marketplace_fts USING fts5(
    title, tagline, description,
    content = 'marketplace_apps', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER marketplace_apps_ai AFTER INSERT ON marketplace_apps BEGIN
    INSERT INTO marketplace_fts (rowid, title, tagline, description)
    VALUES (new.id, new.title, new.tagline, new.description);
END;
CREATE TRIGGER marketplace_apps_ad AFTER DELETE ON marketplace_apps BEGIN
    INSERT INTO marketplace_fts (marketplace_fts, rowid, title, tagline, description)
    VALUES ('delete', old.id, old.title, old.tagline, old.description);
END;
CREATE TRIGGER marketplace_apps_au AFTER UPDATE ON marketplace_apps BEGIN
    INSERT INTO marketplace_fts (marketplace_fts, rowid, title, tagline, description)
    VALUES ('delete', old.id, old.title, old.tagline, old.description);
    INSERT INTO marketplace_fts (rowid, title, tagline, description)
    VALUES (new.id, new.title, new.tagline, new.description);
END;
