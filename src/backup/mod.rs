//! Backups of tomo's own state (and, through the same archive, of the apps'
//! data): the archive format (`archive`, `compress`, `stream`, `cipher`), what goes into a system
//! backup and how it comes back (`system`), and the keep rules (`keep`).
//! It reads and writes streams and files; the engine decides when and where.

pub mod archive;
mod cipher;
mod compress;
mod hashing;
mod pinned;
mod stream;

pub use archive::{
    ArchiveError, ArchiveReader, ArchiveWriter, Contents, Entry, Envelope, Header, MemberKind, MemberMeta,
    MemberWriter, Unlocked, fingerprint, read_envelope,
};
pub mod keep;
pub use pinned::{PinnedArchive, Reading};
pub mod system;
pub mod time;

pub use keep::Keep;
pub use system::{BackupError, Part, Replaces, RestorePlan, Restored, Written};
