//! An archive file opened once and read from its start as often as a
//! restore needs (`PinnedArchive::reading`): each reading keeps a position of
//! its own (`read_at`), and every one reads the file that was opened, even
//! when another file is renamed onto its path in between. A restore checks
//! the whole archive in one reading and streams it in a second; pinned, the
//! second is of the file the first checked.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// An opened archive file (see the module).
#[derive(Clone)]
pub struct PinnedArchive {
    file: Arc<File>,
}

impl PinnedArchive {
    pub fn open(path: &Path) -> io::Result<PinnedArchive> {
        Ok(PinnedArchive { file: Arc::new(File::open(path)?) })
    }

    /// A reading of the file from its first byte.
    pub fn reading(&self) -> Reading {
        Reading { file: self.file.clone(), at: 0 }
    }
}

/// One reading of a `PinnedArchive`, with its own position.
pub struct Reading {
    file: Arc<File>,
    at: u64,
}

impl Read for Reading {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_of_the_opened_file_each_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let (path, other) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&path, b"the archive that was checked").unwrap();
        std::fs::write(&other, b"another one").unwrap();
        let pinned = PinnedArchive::open(&path).unwrap();
        let mut first = String::new();
        pinned.reading().read_to_string(&mut first).unwrap();
        // Swapped in after the first reading, as an attacker would.
        std::fs::rename(&other, &path).unwrap();
        let (mut second, mut partial) = (String::new(), [0u8; 3]);
        let mut third = pinned.reading();
        third.read_exact(&mut partial).unwrap();
        pinned.reading().read_to_string(&mut second).unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("the archive that was checked", "the archive that was checked"));
        let mut rest = String::new();
        third.read_to_string(&mut rest).unwrap();
        assert_eq!((&partial, rest.as_str()), (b"the", " archive that was checked"));
        assert_eq!(std::fs::read(&path).unwrap(), b"another one");
    }
}
