//! Plain compose folders: one folder per app holding `compose.yaml` or
//! `docker-compose.yml` (an `x-casaos` block, when there is one, is read
//! as in a CasaOS store). Folders without a compose file are not apps.

use std::path::Path;

use super::{InvalidApp, Scan, casaos};

/// Reads a store of compose folders rooted at `root` (canonical).
pub fn scan(root: &Path) -> Result<Scan, String> {
    let mut scan = Scan::default();
    for (id, dir) in super::app_folders(root, root)? {
        match dir {
            Ok(dir) => match casaos::read_folder(root, &dir, &id, &id, false) {
                Ok(Some(entry)) => scan.apps.push(entry),
                Ok(None) => {}
                Err(invalid) => scan.invalid.push(invalid),
            },
            Err(why) => {
                scan.invalid.push(InvalidApp { id: id.clone(), source: id.clone(), reason: format!("{id} {why}") })
            }
        }
    }
    scan.categories = casaos::categories(root);
    scan.featured = casaos::featured(root);
    Ok(scan)
}
