//! A member's SHA-256 on a thread of its own. A verifying reading of an
//! archive otherwise decompresses and hashes on one core, bound by the
//! hash (about 0.55 s per GiB here, with the CPU's SHA instructions); with
//! the hash beside it, the reading thread only decompresses, straight into
//! the hashing thread's batches when it drains a member (`fill_with`).

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
/// come back to be filled again, their bytes left as they were (a batch is
/// `BATCH` bytes long from its allocation on, and is never zeroed again).
pub(crate) struct HashAhead {
    to_hash: Option<SyncSender<(Vec<u8>, usize)>>,
    back: Receiver<Vec<u8>>,
    /// The batch being filled (empty when none is taken yet).
    filling: Vec<u8>,
    /// How much of `filling` is filled.
    filled: usize,
    handle: Option<JoinHandle<[u8; 32]>>,
}

impl HashAhead {
    fn start() -> io::Result<HashAhead> {
        let (to_hash, batches) = sync_channel::<(Vec<u8>, usize)>(AHEAD);
        let (give_back, back) = sync_channel::<Vec<u8>>(AHEAD + 2);
        let handle = std::thread::Builder::new().name("tomo-hash".into()).spawn(move || {
            let mut h = Sha256::new();
            for (batch, len) in batches {
                h.update(&batch[..len]);
                let _ = give_back.try_send(batch);
            }
            h.finalize().into()
        })?;
        Ok(HashAhead { to_hash: Some(to_hash), back, filling: Vec::new(), filled: 0, handle: Some(handle) })
    }

    /// The unfilled rest of the current batch (a batch taken when none is).
    fn room(&mut self) -> &mut [u8] {
        if self.filling.is_empty() {
            self.filling = self.back.try_recv().unwrap_or_else(|_| vec![0u8; BATCH]);
        }
        &mut self.filling[self.filled..]
    }

    /// Marks `n` more bytes of the batch filled, sending it when full.
    fn filled(&mut self, n: usize) -> io::Result<()> {
        self.filled += n;
        if self.filled >= BATCH { self.send() } else { Ok(()) }
    }

    fn update(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let room = self.room();
            let n = room.len().min(data.len());
            room[..n].copy_from_slice(&data[..n]);
            data = &data[n..];
            self.filled(n)?;
        }
        Ok(())
    }

    /// Lets `read` write straight into the batch (no copy); what it read.
    pub(crate) fn fill_with(&mut self, read: impl FnOnce(&mut [u8]) -> io::Result<usize>) -> io::Result<usize> {
        let n = read(self.room())?;
        self.filled(n)?;
        Ok(n)
    }

    fn send(&mut self) -> io::Result<()> {
        let batch = std::mem::take(&mut self.filling);
        let len = std::mem::take(&mut self.filled);
        let stopped = || io::Error::other("the hashing thread stopped");
        self.to_hash.as_ref().ok_or_else(stopped)?.send((batch, len)).map_err(|_| stopped())
    }

    fn finalize(mut self) -> io::Result<[u8; 32]> {
        if self.filled > 0 {
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
            // Filled in place, in reads of at most `cut` bytes, mixed with copies.
            let (mut h, mut rest) = (HashAhead::start().unwrap(), &data[..]);
            while !rest.is_empty() {
                let n = h
                    .fill_with(|room| {
                        let n = room.len().min(cut).min(rest.len());
                        room[..n].copy_from_slice(&rest[..n]);
                        Ok(n)
                    })
                    .unwrap();
                rest = &rest[n..];
                let k = rest.len().min(3);
                h.update(&rest[..k]).unwrap();
                rest = &rest[k..];
            }
            assert_eq!(h.finalize().unwrap(), want, "filled in place, cut {cut}");
        }
        let empty: [u8; 32] = Sha256::digest([]).into();
        assert_eq!(MemberHash::start().finalize().unwrap(), empty);
    }
}
