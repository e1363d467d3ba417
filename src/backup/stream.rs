//! The encrypted layer of a backup archive: an AEAD (`cipher.rs`:
//! AES-256-GCM or XChaCha20-Poly1305) in the STREAM construction (Hoang,
//! Reyhanitabar, Rogaway, Vizár), big-endian 32-bit counter. The plaintext
//! is cut into chunks of `CHUNK` bytes; each is sealed under the nonce
//! `prefix || counter(4) || last(1)` with the archive's envelope as
//! associated data, and written as a frame `last(1) || length(4) || ciphertext`.
//!
//! **Invariants:** reordering, dropping, duplicating or altering a frame, the
//! envelope or the end of the stream fails a tag check; a stream that stops
//! before its last frame is refused as truncated; bytes after the last frame
//! are refused. Memory is a few chunks (those in flight between the
//! thread that fills them and the one that seals or opens them), whatever
//! the size of the stream.

use std::io::{self, BufRead, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::archive::ArchiveError;
use super::cipher::{ArchiveCipher, TAG_LEN as TAG};

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
pub const PREFIX_LEN: usize = 19;
/// A frame's head: the last-frame marker and the sealed length.
const HEAD: usize = 5;
/// Chunks in flight between the thread that fills them and the one that
/// seals (or opens) them: bounds the memory of the pipeline.
const IN_FLIGHT: usize = 8;

fn io_err(e: ArchiveError) -> io::Error {
    io::Error::other(e)
}

/// The sealing side: numbers chunks and writes their frames.
struct Sealer<W: Write> {
    out: W,
    cipher: ArchiveCipher,
    aad: Vec<u8>,
    counter: u32,
}

impl<W: Write> Sealer<W> {
    /// Seals the chunk in `frame` (after its `HEAD` bytes) in place, fills
    /// in the head, appends the tag, and writes the frame in one write.
    fn seal(&mut self, frame: &mut Vec<u8>, last: bool) -> io::Result<()> {
        let chunk = frame.get_mut(HEAD..).ok_or_else(|| io::Error::other("a frame without its head"))?;
        let tag = self
            .cipher
            .seal(self.counter, last, &self.aad, chunk)
            .ok_or_else(|| io::Error::other("sealing a chunk failed"))?;
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| io_err(ArchiveError::Format("the archive is too large (chunk counter)".into())))?;
        let len = u32::try_from(chunk.len() + TAG).map_err(|_| io::Error::other("chunk too large"))?;
        frame[0] = u8::from(last);
        frame[1..HEAD].copy_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(&tag);
        self.out.write_all(frame)
    }

    /// Seals what arrives on `chunks` until the last one, handing buffers back on `free`.
    fn run(mut self, chunks: Receiver<(Vec<u8>, bool)>, free: SyncSender<Vec<u8>>) -> io::Result<W> {
        while let Ok((mut chunk, last)) = chunks.recv() {
            self.seal(&mut chunk, last)?;
            if last {
                self.out.flush()?;
                return Ok(self.out);
            }
            let _ = free.try_send(chunk);
        }
        Err(io::Error::other("the archive was abandoned before its last chunk"))
    }
}

/// A buffer for the next frame: room for its head, then its chunk and tag.
fn empty_frame() -> Vec<u8> {
    let mut frame = Vec::with_capacity(HEAD + CHUNK + TAG);
    frame.resize(HEAD, 0);
    frame
}

/// Seals what is written to it into frames on `out`, on a thread of its
/// own: filling the next chunk (compressing) and sealing the previous one
/// overlap. At most `IN_FLIGHT` chunks wait between the two.
pub struct EncryptWriter<W> {
    buf: Vec<u8>,
    chunks: Option<SyncSender<(Vec<u8>, bool)>>,
    free: Receiver<Vec<u8>>,
    sealer: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> EncryptWriter<W> {
    pub fn new(out: W, cipher: ArchiveCipher, aad: Vec<u8>) -> io::Result<EncryptWriter<W>> {
        let sealer = Sealer { out, cipher, aad, counter: 0 };
        let (chunks, rx) = sync_channel(IN_FLIGHT);
        let (back, free) = sync_channel(IN_FLIGHT + 2);
        let handle = std::thread::Builder::new().name("tomo-seal".into()).spawn(move || sealer.run(rx, back))?;
        Ok(EncryptWriter { buf: empty_frame(), chunks: Some(chunks), free, sealer: Some(handle) })
    }
}

impl<W> EncryptWriter<W> {
    /// The sealing thread's error once it has stopped.
    fn stopped(&mut self) -> io::Error {
        self.chunks = None;
        match self.sealer.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => io::Error::other("the sealing thread panicked"),
            _ => io::Error::other("the sealing thread stopped"),
        }
    }

    fn send(&mut self, last: bool) -> io::Result<()> {
        let next = match self.free.try_recv() {
            Ok(mut used) => {
                used.truncate(HEAD);
                used
            }
            Err(_) => empty_frame(),
        };
        let full = std::mem::replace(&mut self.buf, next);
        let sent = self.chunks.as_ref().map(|c| c.send((full, last)).is_ok());
        if sent == Some(true) { Ok(()) } else { Err(self.stopped()) }
    }

    /// Seals the last chunk (possibly empty) and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.send(true)?;
        self.chunks = None;
        match self.sealer.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the sealing thread panicked")),
            None => Err(io::Error::other("the archive was already finished")),
        }
    }
}

impl<W> Write for EncryptWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() == HEAD + CHUNK {
            self.send(false)?;
        }
        let n = data.len().min(HEAD + CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Chunks are sealed whole; the sealing thread flushes at the end.
        Ok(())
    }
}

/// The opening side: reads frames and checks their tags.
struct Opener<R: Read> {
    input: R,
    cipher: ArchiveCipher,
    aad: Vec<u8>,
    counter: u32,
}

impl<R: Read> Opener<R> {
    /// Reads and opens the next frame into `buf`; whether it was the last.
    fn next_frame(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        let mut head = [0u8; HEAD];
        read_exact_or_truncated(&mut self.input, &mut head)?;
        let last = match head[0] {
            0 => false,
            1 => true,
            _ => return Err(io_err(ArchiveError::Tampered(format!("frame {} has a bad marker", self.counter)))),
        };
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if !(TAG..=CHUNK + TAG).contains(&len) {
            return Err(io_err(ArchiveError::Tampered(format!("frame {} has a bad length", self.counter))));
        }
        buf.resize(len, 0);
        read_exact_or_truncated(&mut self.input, buf)?;
        let plain = self.cipher.open(self.counter, last, &self.aad, buf).ok_or_else(|| {
            io_err(ArchiveError::Tampered(format!("chunk {} fails its authentication tag", self.counter)))
        })?;
        buf.truncate(plain);
        self.counter = self.counter.wrapping_add(1);
        if last {
            let mut extra = [0u8; 1];
            if read_some(&mut self.input, &mut extra)? != 0 {
                return Err(io_err(ArchiveError::Tampered("bytes follow the end of the archive".into())));
            }
        }
        Ok(last)
    }

    /// Opens frames and sends them on `out` until the last one or the first error.
    fn run(mut self, out: SyncSender<io::Result<(Vec<u8>, bool)>>, free: Receiver<Vec<u8>>) {
        loop {
            let mut buf = free.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK + TAG));
            let opened = self.next_frame(&mut buf);
            let end = !matches!(opened, Ok(false));
            if out.send(opened.map(|last| (buf, last))).is_err() || end {
                return;
            }
        }
    }
}

enum Source<R: Read> {
    /// Frames opened on the reading thread.
    Inline(Box<Opener<R>>),
    /// Frames opened on a thread of their own, ahead of the reader.
    Thread { opened: Receiver<io::Result<(Vec<u8>, bool)>>, free: SyncSender<Vec<u8>> },
}

/// Opens frames from `input`; reading past the end of the stream checks that
/// the last frame was seen and nothing follows it.
pub struct DecryptReader<R: Read> {
    source: Source<R>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl<R: Read> DecryptReader<R> {
    pub fn new(input: R, cipher: ArchiveCipher, aad: Vec<u8>) -> DecryptReader<R> {
        let opener = Opener { input, cipher, aad, counter: 0 };
        DecryptReader { source: Source::Inline(Box::new(opener)), buf: Vec::new(), pos: 0, done: false }
    }

    /// Like `new`, with the frames opened on a thread of their own (at most
    /// `IN_FLIGHT` ahead): decrypting and what the reader does overlap.
    pub fn pipelined(input: R, cipher: ArchiveCipher, aad: Vec<u8>) -> io::Result<DecryptReader<R>>
    where
        R: Send + 'static,
    {
        let opener = Opener { input, cipher, aad, counter: 0 };
        let (out, opened) = sync_channel(IN_FLIGHT);
        let (free, back) = sync_channel(IN_FLIGHT + 2);
        std::thread::Builder::new().name("tomo-open".into()).spawn(move || opener.run(out, back))?;
        Ok(DecryptReader { source: Source::Thread { opened, free }, buf: Vec::new(), pos: 0, done: false })
    }

    /// Replaces `buf` with the next opened frame. Nothing of a frame that
    /// failed (unverified ciphertext) stays readable: after an error the
    /// buffer is empty.
    fn next_frame(&mut self) -> io::Result<()> {
        let opened = match &mut self.source {
            Source::Inline(opener) => opener.next_frame(&mut self.buf),
            Source::Thread { opened, free } => match opened.recv() {
                Ok(Ok((buf, last))) => {
                    let _ = free.try_send(std::mem::replace(&mut self.buf, buf));
                    Ok(last)
                }
                Ok(Err(e)) => Err(e),
                Err(_) => Err(io::Error::other("the decrypting thread stopped")),
            },
        };
        self.pos = 0;
        match opened {
            Ok(last) => {
                self.done = last;
                Ok(())
            }
            Err(e) => {
                self.buf.clear();
                Err(e)
            }
        }
    }
}

fn read_some(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

fn read_exact_or_truncated(r: &mut impl Read, buf: &mut [u8]) -> io::Result<()> {
    r.read_exact(buf)
        .map_err(|e| if e.kind() == io::ErrorKind::UnexpectedEof { io_err(ArchiveError::Truncated) } else { e })
}

impl<R: Read> Read for DecryptReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let opened = self.fill_buf()?;
        let n = out.len().min(opened.len());
        out[..n].copy_from_slice(&opened[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// Read in place: the decompressor reads the opened frame itself, without
/// a copy into a buffer of its own.
impl<R: Read> BufRead for DecryptReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.buf.len() {
            if self.done {
                return Ok(&[]);
            }
            self.next_frame()?;
        }
        Ok(&self.buf[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::archive::Cipher;

    fn cipher() -> ArchiveCipher {
        ArchiveCipher::new(Cipher::Aes256Gcm, &chacha20poly1305::Key::from([7u8; 32]), &[3u8; PREFIX_LEN])
    }

    #[test]
    fn after_a_frame_fails_its_tag_no_read_gives_bytes() {
        let plain: Vec<u8> = (0..3 * CHUNK).map(|i| (i % 251) as u8).collect();
        let mut w = EncryptWriter::new(Vec::new(), cipher(), b"aad".to_vec()).unwrap();
        w.write_all(&plain).unwrap();
        let mut sealed = w.finish().unwrap();
        // A byte of the second frame's ciphertext.
        sealed[HEAD + CHUNK + TAG + HEAD + 100] ^= 1;
        for pipelined in [false, true] {
            let input = io::Cursor::new(sealed.clone());
            let mut r = if pipelined {
                DecryptReader::pipelined(input, cipher(), b"aad".to_vec()).unwrap()
            } else {
                DecryptReader::new(input, cipher(), b"aad".to_vec())
            };
            let mut first = vec![0u8; CHUNK];
            r.read_exact(&mut first).unwrap();
            assert_eq!(first, plain[..CHUNK]);
            let mut buf = vec![0u8; 2 * CHUNK];
            assert!(r.read(&mut buf).is_err(), "pipelined {pipelined}");
            for _ in 0..3 {
                assert!(
                    !matches!(r.read(&mut buf), Ok(n) if n > 0),
                    "bytes after a failed tag (pipelined {pipelined})"
                );
                assert!(!matches!(r.fill_buf(), Ok(b) if !b.is_empty()), "pipelined {pipelined}");
            }
        }
    }
}
