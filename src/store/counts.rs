//! Figures about the store itself, for `metrics_system`: its size on disk
//! and how many apply runs ended how.

use super::{Store, StoreError};

impl Store {
    /// Bytes the store takes on disk: the database and its write-ahead log.
    pub fn file_bytes(&self) -> u64 {
        let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        size(&self.path) + size(std::path::Path::new(&wal))
    }

    /// Apply runs by status (`applied`, `failed`, …), every run counted.
    pub fn run_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.rows("SELECT status, COUNT(*) FROM apply_runs GROUP BY status ORDER BY status", [], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })
    }
}
