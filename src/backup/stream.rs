//! The encrypted layer of a backup archive: XChaCha20-Poly1305 in the STREAM
//! construction (Hoang, Reyhanitabar, Rogaway, Vizár), big-endian 32-bit
//! counter. The plaintext is cut into chunks of `CHUNK` bytes; each is sealed
//! under the nonce `prefix(19) || counter(4) || last(1)` with the archive's
//! envelope as associated data, and written as a frame
//! `last(1) || length(4) || ciphertext`.
//!
//! **Invariants:** reordering, dropping, duplicating or altering a frame, the
//! envelope or the end of the stream fails a tag check; a stream that stops
//! before its last frame is refused as truncated; bytes after the last frame
//! are refused. Memory is one chunk, whatever the size of the stream.

use std::io::{self, Read, Write};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

use super::archive::ArchiveError;

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
pub const PREFIX_LEN: usize = 19;

fn nonce(prefix: &[u8; PREFIX_LEN], counter: u32, last: bool) -> XNonce {
    let mut n = [0u8; 24];
    n[..PREFIX_LEN].copy_from_slice(prefix);
    n[PREFIX_LEN..23].copy_from_slice(&counter.to_be_bytes());
    n[23] = u8::from(last);
    XNonce::from(n)
}

fn io_err(e: ArchiveError) -> io::Error {
    io::Error::other(e)
}

/// Seals what is written to it into frames on `out`.
pub struct EncryptWriter<W: Write> {
    out: W,
    cipher: XChaCha20Poly1305,
    prefix: [u8; PREFIX_LEN],
    aad: Vec<u8>,
    counter: u32,
    buf: Vec<u8>,
}

impl<W: Write> EncryptWriter<W> {
    pub fn new(out: W, key: &Key, prefix: [u8; PREFIX_LEN], aad: Vec<u8>) -> EncryptWriter<W> {
        EncryptWriter {
            out,
            cipher: XChaCha20Poly1305::new(key),
            prefix,
            aad,
            counter: 0,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn seal(&mut self, last: bool) -> io::Result<()> {
        let n = nonce(&self.prefix, self.counter, last);
        let ct = self
            .cipher
            .encrypt(&n, Payload { msg: &self.buf, aad: &self.aad })
            .map_err(|_| io::Error::other("sealing a chunk failed"))?;
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| io_err(ArchiveError::Format("the archive is too large (chunk counter)".into())))?;
        let len = u32::try_from(ct.len()).map_err(|_| io::Error::other("chunk too large"))?;
        self.out.write_all(&[u8::from(last)])?;
        self.out.write_all(&len.to_be_bytes())?;
        self.out.write_all(&ct)?;
        self.buf.clear();
        Ok(())
    }

    /// Seals the last chunk (possibly empty) and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.seal(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for EncryptWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() == CHUNK {
            self.seal(false)?;
        }
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Chunks are sealed whole; flushing the output is all that can be done.
        self.out.flush()
    }
}

/// Opens frames from `input`; reading past the end of the stream checks that
/// the last frame was seen and nothing follows it.
pub struct DecryptReader<R: Read> {
    input: R,
    cipher: XChaCha20Poly1305,
    prefix: [u8; PREFIX_LEN],
    aad: Vec<u8>,
    counter: u32,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl<R: Read> DecryptReader<R> {
    pub fn new(input: R, key: &Key, prefix: [u8; PREFIX_LEN], aad: Vec<u8>) -> DecryptReader<R> {
        DecryptReader {
            input,
            cipher: XChaCha20Poly1305::new(key),
            prefix,
            aad,
            counter: 0,
            buf: Vec::new(),
            pos: 0,
            done: false,
        }
    }

    /// Reads and opens the next frame into `buf`.
    fn next_frame(&mut self) -> io::Result<()> {
        let mut head = [0u8; 5];
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
        let mut ct = vec![0u8; len];
        read_exact_or_truncated(&mut self.input, &mut ct)?;
        let n = nonce(&self.prefix, self.counter, last);
        self.buf = self.cipher.decrypt(&n, Payload { msg: &ct, aad: &self.aad }).map_err(|_| {
            io_err(ArchiveError::Tampered(format!("chunk {} fails its authentication tag", self.counter)))
        })?;
        self.pos = 0;
        self.counter = self.counter.wrapping_add(1);
        if last {
            let mut extra = [0u8; 1];
            if read_some(&mut self.input, &mut extra)? != 0 {
                return Err(io_err(ArchiveError::Tampered("bytes follow the end of the archive".into())));
            }
            self.done = true;
        }
        Ok(())
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
        while self.pos == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            self.next_frame()?;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
