//! A member's SHA-256 on a thread of its own. A verifying reading of an
//! archive otherwise decompresses and hashes on one core, bound by the
//! hash (about 0.55 s per GiB here, with the CPU's SHA instructions); with
//! the hash beside it, the reading thread only decompresses and copies.

use std::io;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

/// Bytes handed to the hashing thread at a time.
const BATCH: usize = 256 * 1024;

/// Batches queued for the hashing thread (the memory this costs is about
/// `AHEAD + 2` batches).
const AHEAD: usize = 4;

/// SHA-256 of what is passed to `update`, in order.
pub(crate) enum MemberHash {
    /// Hashed on the caller's thread (no thread could be started).
    Inline(Sha256),
    Ahead(HashAhead),
}

impl MemberHash {
    /// On a thread of its own when one can be started.
    pub(crate) fn start() -> MemberHash {
        HashAhead::start().map(MemberHash::Ahead).unwrap_or_else(|_| MemberHash::Inline(Sha256::new()))
    }

    pub(crate) fn update(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            MemberHash::Inline(h) => {
                h.update(data);
                Ok(())
            }
            MemberHash::Ahead(h) => h.update(data),
        }
    }

    pub(crate) fn finalize(self) -> io::Result<[u8; 32]> {
        match self {
            MemberHash::Inline(h) => Ok(h.finalize().into()),
            MemberHash::Ahead(h) => h.finalize(),
        }
    }
}

/// The hashing thread, fed batches over a bounded channel; the batches
/// come back to be filled again.
pub(crate) struct HashAhead {
    to_hash: Option<SyncSender<Vec<u8>>>,
    back: Receiver<Vec<u8>>,
    filling: Vec<u8>,
    handle: Option<JoinHandle<[u8; 32]>>,
}

impl HashAhead {
    fn start() -> io::Result<HashAhead> {
        let (to_hash, batches) = sync_channel::<Vec<u8>>(AHEAD);
        let (give_back, back) = sync_channel::<Vec<u8>>(AHEAD + 2);
        let handle = std::thread::Builder::new().name("tomo-hash".into()).spawn(move || {
            let mut h = Sha256::new();
            for mut batch in batches {
                h.update(&batch);
                batch.clear();
                let _ = give_back.try_send(batch);
            }
            h.finalize().into()
        })?;
        Ok(HashAhead { to_hash: Some(to_hash), back, filling: Vec::new(), handle: Some(handle) })
    }

    fn update(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.filling.capacity() == 0 {
                self.filling = self.back.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH));
            }
            let n = (BATCH - self.filling.len()).min(data.len());
            self.filling.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.filling.len() >= BATCH {
                self.send()?;
            }
        }
        Ok(())
    }

    fn send(&mut self) -> io::Result<()> {
        let batch = std::mem::take(&mut self.filling);
        let stopped = || io::Error::other("the hashing thread stopped");
        self.to_hash.as_ref().ok_or_else(stopped)?.send(batch).map_err(|_| stopped())
    }

    fn finalize(mut self) -> io::Result<[u8; 32]> {
        if !self.filling.is_empty() {
            self.send()?;
        }
        self.to_hash.take();
        let handle = self.handle.take().ok_or_else(|| io::Error::other("the hashing thread is gone"))?;
        handle.join().map_err(|_| io::Error::other("the hashing thread panicked"))
    }
}

impl Drop for HashAhead {
    /// Dropped unfinished (the reading failed): the thread hashes what is
    /// queued and ends on its own.
    fn drop(&mut self) {
        self.to_hash.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_ahead_equals_sha256_for_any_cut_of_the_input() {
        let data: Vec<u8> = (0..3 * BATCH + 12_345).map(|i| (i * 7 + i / 251) as u8).collect();
        let want: [u8; 32] = Sha256::digest(&data).into();
        for cut in [1, 1000, BATCH - 1, BATCH, BATCH + 1, 700_001] {
            let mut h = MemberHash::start();
            assert!(matches!(h, MemberHash::Ahead(_)));
            for piece in data.chunks(cut) {
                h.update(piece).unwrap();
            }
            assert_eq!(h.finalize().unwrap(), want, "cut {cut}");
        }
        let empty: [u8; 32] = Sha256::digest([]).into();
        assert_eq!(MemberHash::start().finalize().unwrap(), empty);
    }
}
