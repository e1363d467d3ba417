//! The marketplace catalog: stores (`marketplace_repos`) and their apps
//! (`marketplace_apps`, searched with FTS5). A sync replaces one store's
//! catalog in one transaction, so a failed sync leaves the previous one.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Store, StoreError};
use crate::market::{AppEntry, InvalidApp, Scan};

/// A category, with how many apps of the catalog are in it.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct CategoryRow {
    pub name: String,
    pub description: String,
    pub apps: i64,
    /// The stores that declare it or have apps in it.
    pub stores: Vec<String>,
}

/// Weights of the title, tagline and description columns in the ranking.
const RANK: &str = "bm25(marketplace_fts, 10.0, 4.0, 1.0)";

/// A user's search text as an FTS5 query that is never a syntax error:
/// each word quoted, all of them required, the last one a prefix (`nextc`
/// finds Nextcloud). `None` when the text has no word.
pub fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> =
        text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(|w| format!("\"{w}\"")).collect();
    let last = words.len().checked_sub(1)?;
    Some(
        words
            .iter()
            .enumerate()
            .map(|(i, w)| if i == last { format!("{w}*") } else { w.clone() })
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_string())
}

fn catalog_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CatalogRow> {
    let store: String = r.get(0)?;
    let def: String = r.get(1)?;
    let entry = serde_json::from_str::<AppEntry>(&def)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e)))?;
    Ok(CatalogRow { store, entry })
}

/// A store as the catalog knows it.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct RepoRow {
    pub name: String,
    /// The URL with any credentials removed.
    pub url: String,
    pub git_ref: String,
    pub format: String,
    pub last_sync_at: Option<String>,
    pub last_commit: Option<String>,
    /// Why the last sync failed (the catalog is the one before it).
    pub last_error: Option<String>,
    pub apps: i64,
    pub invalid: i64,
}

/// An app in the catalog.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct CatalogRow {
    pub store: String,
    #[serde(flatten)]
    pub entry: AppEntry,
}

/// What to search for; `None` is no filter.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// Full-text query (FTS5, ranked title > tagline > description).
    pub text: Option<String>,
    pub category: Option<String>,
    pub store: Option<String>,
    pub limit: Option<usize>,
}

impl Store {
    /// Replaces store `store`'s catalog with `scan`, recording the sync
    /// (time, commit, no error), in one transaction: when any step fails,
    /// the catalog is the one before.
    pub fn market_replace(&self, store: &RepoRow, scan: &Scan) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| self.err(e))?;
        tx.prepare_cached(
            "INSERT INTO marketplace_repos (name, url, git_ref, format, last_sync_at, last_commit, last_error)
             VALUES (?1, ?2, ?3, ?4, COALESCE(?5, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), ?6, NULL)
             ON CONFLICT (name) DO UPDATE SET url = excluded.url, git_ref = excluded.git_ref,
             format = excluded.format, last_sync_at = excluded.last_sync_at,
             last_commit = excluded.last_commit, last_error = NULL",
        )
        .and_then(|mut st| {
            st.execute(params![
                store.name,
                store.url,
                store.git_ref,
                store.format,
                store.last_sync_at,
                store.last_commit
            ])
        })
        .map_err(|e| self.err(e))?;
        for table in ["marketplace_apps", "marketplace_invalid", "marketplace_categories"] {
            tx.prepare_cached(&format!("DELETE FROM {table} WHERE repo = ?1"))
                .and_then(|mut st| st.execute([&store.name]))
                .map_err(|e| self.err(e))?;
        }
        {
            let mut app = tx
                .prepare_cached(
                    "INSERT INTO marketplace_apps (repo, app_id, title, tagline, description, category, author, icon,
                     version, architectures_json, ports_json, source, checksum, main, notes_json, featured, definition_json)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                )
                .map_err(|e| self.err(e))?;
            for a in &scan.apps {
                let featured = scan.featured.iter().any(|f| f.eq_ignore_ascii_case(&a.id));
                app.execute(params![
                    store.name,
                    a.id,
                    a.title,
                    a.tagline,
                    a.description,
                    a.category,
                    a.author,
                    a.icon,
                    a.version,
                    json(&a.architectures),
                    json(&a.ports),
                    a.source,
                    a.checksum,
                    a.main,
                    json(&a.notes),
                    featured,
                    json(a),
                ])
                .map_err(|e| self.err(e))?;
            }
            let mut bad = tx
                .prepare_cached(
                    "INSERT INTO marketplace_invalid (repo, app_id, source, reason) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(|e| self.err(e))?;
            for i in &scan.invalid {
                bad.execute(params![store.name, i.id, i.source, i.reason]).map_err(|e| self.err(e))?;
            }
            let mut cat = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO marketplace_categories (repo, name, description) VALUES (?1, ?2, ?3)",
                )
                .map_err(|e| self.err(e))?;
            for c in &scan.categories {
                cat.execute(params![store.name, c.name, c.description]).map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Records that syncing `store` failed; its catalog stays as it was.
    pub fn market_sync_failed(&self, store: &str, error: &str) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "INSERT INTO marketplace_repos (name, url, git_ref, format, last_error) VALUES (?1, '', '', '', ?2)
                 ON CONFLICT (name) DO UPDATE SET last_error = excluded.last_error",
            )
            .and_then(|mut st| st.execute([store, error]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Every store in the catalog, by name.
    pub fn market_repos(&self) -> Result<Vec<RepoRow>, StoreError> {
        self.rows(
            "SELECT name, url, git_ref, format, last_sync_at, last_commit, last_error,
             (SELECT COUNT(*) FROM marketplace_apps a WHERE a.repo = r.name),
             (SELECT COUNT(*) FROM marketplace_invalid i WHERE i.repo = r.name)
             FROM marketplace_repos r ORDER BY name",
            [],
            |r| {
                Ok(RepoRow {
                    name: r.get(0)?,
                    url: r.get(1)?,
                    git_ref: r.get(2)?,
                    format: r.get(3)?,
                    last_sync_at: r.get(4)?,
                    last_commit: r.get(5)?,
                    last_error: r.get(6)?,
                    apps: r.get(7)?,
                    invalid: r.get(8)?,
                })
            },
        )
    }

    /// Drops a store and its apps from the catalog.
    pub fn market_forget(&self, store: &str) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached("DELETE FROM marketplace_repos WHERE name = ?1")
            .and_then(|mut st| st.execute([store]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Apps matching `q`, best first (without text: featured first, then by title).
    pub fn market_search(&self, q: &SearchQuery) -> Result<Vec<CatalogRow>, StoreError> {
        let limit = q.limit.map_or(-1, |l| l.min(i64::MAX as usize) as i64);
        let category = q.category.as_deref().filter(|c| !c.is_empty());
        let store = q.store.as_deref().filter(|s| !s.is_empty());
        match q.text.as_deref().and_then(fts_query) {
            Some(m) => self.rows(
                &format!(
                    "SELECT a.repo, a.definition_json FROM marketplace_fts f JOIN marketplace_apps a ON a.id = f.rowid
                     WHERE marketplace_fts MATCH ?1 AND (?2 IS NULL OR a.category = ?2 COLLATE NOCASE)
                     AND (?3 IS NULL OR a.repo = ?3)
                     ORDER BY {RANK}, a.featured DESC, a.title COLLATE NOCASE, a.repo LIMIT ?4"
                ),
                params![m, category, store, limit],
                catalog_row,
            ),
            None => self.rows(
                "SELECT a.repo, a.definition_json FROM marketplace_apps a
                 WHERE (?1 IS NULL OR a.category = ?1 COLLATE NOCASE) AND (?2 IS NULL OR a.repo = ?2)
                 ORDER BY a.featured DESC, a.title COLLATE NOCASE, a.repo LIMIT ?3",
                params![category, store, limit],
                catalog_row,
            ),
        }
    }

    /// One app, `STORE/ID` (the id matched exactly, else ignoring case).
    pub fn market_app(&self, store: &str, id: &str) -> Result<Option<CatalogRow>, StoreError> {
        let conn = self.conn();
        conn.prepare_cached(
            "SELECT repo, definition_json FROM marketplace_apps WHERE repo = ?1 AND app_id = ?2 COLLATE NOCASE
             ORDER BY app_id = ?2 DESC LIMIT 1",
        )
        .and_then(|mut st| st.query_row([store, id], catalog_row).optional())
        .map_err(|e| self.err(e))
    }

    /// The ids of a store's apps (all stores': `STORE/ID`), for suggestions.
    pub fn market_app_ids(&self, store: Option<&str>) -> Result<Vec<String>, StoreError> {
        self.rows(
            "SELECT CASE WHEN ?1 IS NULL THEN repo || '/' || app_id ELSE app_id END FROM marketplace_apps
             WHERE ?1 IS NULL OR repo = ?1 ORDER BY repo, app_id",
            [store],
            |r| r.get(0),
        )
    }

    /// The apps a store lists as invalid, with their reasons.
    pub fn market_invalid(&self, store: Option<&str>) -> Result<Vec<(String, InvalidApp)>, StoreError> {
        self.rows(
            "SELECT repo, app_id, source, reason FROM marketplace_invalid WHERE ?1 IS NULL OR repo = ?1
             ORDER BY repo, app_id",
            [store],
            |r| Ok((r.get(0)?, InvalidApp { id: r.get(1)?, source: r.get(2)?, reason: r.get(3)? })),
        )
    }

    /// The categories stores declare or their apps use, with app counts.
    pub fn market_categories(&self, store: Option<&str>) -> Result<Vec<CategoryRow>, StoreError> {
        let rows: Vec<(String, String, i64, String)> = self.rows(
            "WITH names AS (
                 SELECT repo, name, description FROM marketplace_categories
                 UNION SELECT repo, category, '' FROM marketplace_apps WHERE category != ''
             )
             SELECT n.name, MAX(n.description),
                    (SELECT COUNT(*) FROM marketplace_apps a WHERE a.category = n.name COLLATE NOCASE
                     AND (?1 IS NULL OR a.repo = ?1)),
                    GROUP_CONCAT(DISTINCT n.repo)
             FROM names n WHERE ?1 IS NULL OR n.repo = ?1
             GROUP BY n.name COLLATE NOCASE ORDER BY n.name COLLATE NOCASE",
            [store],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        Ok(rows
            .into_iter()
            .map(|(name, description, apps, stores)| CategoryRow {
                name,
                description,
                apps,
                stores: stores.split(',').map(str::to_string).collect(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(id: &str, title: &str, tagline: &str, description: &str, category: &str) -> AppEntry {
        AppEntry {
            id: id.into(),
            title: title.into(),
            tagline: tagline.into(),
            description: description.into(),
            category: category.into(),
            version: "1".into(),
            ..AppEntry::default()
        }
    }

    fn repo(name: &str) -> RepoRow {
        RepoRow {
            name: name.into(),
            url: format!("https://example.org/{name}.git"),
            git_ref: "main".into(),
            format: "casaos".into(),
            last_sync_at: None,
            last_commit: Some("abc".into()),
            last_error: None,
            apps: 0,
            invalid: 0,
        }
    }

    fn store_with(apps: Vec<AppEntry>) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        let scan = Scan {
            apps,
            invalid: vec![InvalidApp {
                id: "Broken".into(),
                source: "Apps/Broken/docker-compose.yml".into(),
                reason: "x:3:1: bad".into(),
            }],
            categories: vec![crate::market::Category { name: "Media".into(), description: "Media Apps".into() }],
            featured: vec!["files".into()],
        };
        store.market_replace(&repo("main"), &scan).unwrap();
        (dir, store)
    }

    fn ids(rows: &[CatalogRow]) -> Vec<String> {
        rows.iter().map(|r| format!("{}/{}", r.store, r.entry.id)).collect()
    }

    fn search(store: &Store, text: &str) -> Vec<String> {
        ids(&store.market_search(&SearchQuery { text: Some(text.into()), ..Default::default() }).unwrap())
    }

    #[test]
    fn ranking_puts_title_before_tagline_before_description() {
        let (_d, store) = store_with(vec![
            app("desc", "Alpha", "A thing", "It syncs your photos", "Media"),
            app("tag", "Beta", "Photos everywhere", "Something", "Media"),
            app("title", "Photos", "Gallery", "Nothing", "Media"),
            app("none", "Gamma", "Other", "Unrelated", "Tools"),
        ]);
        assert_eq!(search(&store, "photos"), ["main/title", "main/tag", "main/desc"]);
        // Prefix on the last word; every word required.
        assert_eq!(search(&store, "phot"), ["main/title", "main/tag", "main/desc"]);
        assert_eq!(search(&store, "syncs phot"), ["main/desc"]);
    }

    #[test]
    fn search_text_is_never_fts_syntax() {
        let (_d, store) = store_with(vec![app("nc", "Nextcloud", "Files", "Your cloud", "Productivity")]);
        for q in [
            "\"",
            "nextc",
            "NEXTC\"",
            "next* OR",
            "(next",
            "AND",
            "-next",
            "title:next",
            "n^e",
            "'nextcloud'",
            "NOT x",
            "*",
            "\u{0}",
            "next NEAR(",
            "}{",
        ] {
            store.market_search(&SearchQuery { text: Some(q.into()), ..Default::default() }).unwrap();
        }
        assert_eq!(search(&store, "nextc"), ["main/nc"]);
        assert_eq!(search(&store, "(nextcloud\""), ["main/nc"]);
        assert_eq!(search(&store, "title:next"), Vec::<String>::new());
        // No word at all: every app.
        assert_eq!(search(&store, "*** \""), ["main/nc"]);
    }

    #[test]
    fn any_search_text_is_a_valid_query() {
        let (_d, store) = store_with(vec![app("nc", "Nextcloud", "Files", "Your cloud", "Productivity")]);
        let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config::with_cases(300));
        runner
            .run(&"\\PC{0,60}", |text| {
                store.market_search(&SearchQuery { text: Some(text), ..Default::default() }).unwrap();
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn filters_by_category_and_store_and_featured_come_first() {
        let (_d, store) = store_with(vec![
            app("a", "Aardvark", "x", "y", "Media"),
            app("files", "Zeta files", "x", "y", "Productivity"),
        ]);
        store
            .market_replace(&repo("other"), &Scan { apps: vec![app("b", "Bee", "x", "y", "media")], ..Scan::default() })
            .unwrap();
        let q = |category: Option<&str>, s: Option<&str>| {
            ids(&store
                .market_search(&SearchQuery {
                    category: category.map(Into::into),
                    store: s.map(Into::into),
                    ..Default::default()
                })
                .unwrap())
        };
        assert_eq!(q(None, None), ["main/files", "main/a", "other/b"]);
        assert_eq!(q(Some("Media"), None), ["main/a", "other/b"]);
        assert_eq!(q(Some("media"), Some("other")), ["other/b"]);
        assert_eq!(q(None, Some("main")), ["main/files", "main/a"]);
        let cats = store.market_categories(None).unwrap();
        let media = cats.iter().find(|c| c.name.eq_ignore_ascii_case("media")).unwrap();
        assert_eq!((media.apps, media.description.as_str()), (2, "Media Apps"));
        assert_eq!(store.market_app("main", "A").unwrap().unwrap().entry.title, "Aardvark");
        assert!(store.market_app("main", "b").unwrap().is_none());
        let repos = store.market_repos().unwrap();
        assert_eq!(
            repos.iter().map(|r| (r.name.as_str(), r.apps, r.invalid)).collect::<Vec<_>>(),
            [("main", 2, 1), ("other", 1, 0)]
        );
        assert_eq!(store.market_invalid(Some("main")).unwrap()[0].1.reason, "x:3:1: bad");
        store.market_forget("other").unwrap();
        assert_eq!(q(None, None), ["main/files", "main/a"]);
        assert_eq!(search(&store, "bee"), Vec::<String>::new());
    }

    #[test]
    fn a_failed_replace_leaves_the_previous_catalog() {
        let (_d, store) = store_with(vec![app("a", "Aardvark", "x", "y", "Media")]);
        // Two apps with one id: the second insert fails, after the delete.
        let bad = Scan { apps: vec![app("n", "New", "", "", ""), app("n", "New", "", "", "")], ..Scan::default() };
        let mut r = repo("main");
        r.last_commit = Some("def".into());
        assert!(store.market_replace(&r, &bad).is_err());
        assert_eq!(search(&store, "aardvark"), ["main/a"]);
        assert_eq!(search(&store, "new"), Vec::<String>::new());
        let repos = store.market_repos().unwrap();
        assert_eq!((repos[0].last_commit.as_deref(), repos[0].apps, repos[0].invalid), (Some("abc"), 1, 1));
        store.market_sync_failed("main", "fetch failed").unwrap();
        assert_eq!(store.market_repos().unwrap()[0].last_error.as_deref(), Some("fetch failed"));
        assert_eq!(search(&store, "aard"), ["main/a"]);
        // A replace with the same ids keeps the index consistent.
        store
            .market_replace(&repo("main"), &Scan { apps: vec![app("a", "Renamed", "", "", "")], ..Scan::default() })
            .unwrap();
        assert_eq!(search(&store, "aardvark"), Vec::<String>::new());
        assert_eq!(search(&store, "renamed"), ["main/a"]);
    }
}
