//! The backup archive: a sequence of members (a SQLite store, manifest files,
//! an app's volume as a tar stream, ...) with a SHA-256 each and a contents
//! list at the end, compressed with zstd (`compress.rs`: blocks that don't
//! shrink are stored) and encrypted (`stream.rs`, with the cipher the
//! envelope names: `cipher.rs`) under a key derived with Argon2id from a
//! passphrase and the salt in the envelope.
//!
//! On disk: `MAGIC`, a u32 (big-endian) length, the envelope (JSON: header,
//! KDF, cipher, salt, nonce prefix, key check), then the encrypted frames. The
//! envelope is readable without the passphrase (time, installation) and
//! authenticated as the associated data of every frame.
//!
//! Inside, after zstd: for each member `'M'`, a length and the member's JSON
//! metadata, data blocks (`u32` length, bytes) ended by a zero length, then
//! the member's SHA-256 and size; finally `'C'`, a length and the contents
//! list (JSON). Members are written as they stream: their size is not needed
//! up front, and memory stays bounded by one block and one chunk.
//!
//! **Invariants:** `verify_all` reads everything and checks every tag, every
//! member's checksum against both its trailer and the contents list, and the
//! end of the archive, writing nothing; a wrong passphrase is told apart
//! from a damaged archive by the key check.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use chacha20poly1305::Key;
use chacha20poly1305::XNonce;
use chacha20poly1305::aead::Generate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::cipher::ArchiveCipher;
pub use super::cipher::Cipher;
use super::hashing::MemberHash;
use super::stream::{DecryptReader, EncryptWriter, PREFIX_LEN};
use crate::model::secret::SecretString;
use crate::model::spec::hex;

/// The first bytes of every archive.
pub const MAGIC: &[u8; 8] = b"TOMOBKP\x01";
/// The archive format this build writes. Format 2 added the envelope's
/// `cipher`; format 1 (no `cipher`: XChaCha20-Poly1305) is still read.
pub const FORMAT: u32 = 2;
const FORMATS_READ: [u32; 2] = [1, 2];
const KDF: &str = "argon2id-v19-m19456-t2-p1";
/// Bytes of member data per block inside the compressed stream.
const BLOCK: usize = 64 * 1024;
/// Upper bound on a JSON record (envelope, member metadata, contents).
const MAX_RECORD: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("this is not a tomo backup archive ({0})")]
    NotAnArchive(String),
    #[error("the archive has format {0}, which this tomo does not read; use a newer tomo")]
    UnsupportedFormat(u32),
    #[error("the passphrase does not open this archive (its key check does not match); nothing was changed")]
    WrongPassphrase,
    #[error("the archive is damaged or was altered: {0}; nothing was changed")]
    Tampered(String),
    #[error("the archive is truncated (it ends before its last chunk); nothing was changed")]
    Truncated,
    #[error("the archive is malformed: {0}")]
    Format(String),
    #[error("a member is still open: finish it before starting another or finishing the archive")]
    MemberOpen,
    #[error("key derivation failed: {0}")]
    Kdf(String),
    #[error("the backup passphrase is empty")]
    NoPassphrase,
    #[error(transparent)]
    Io(io::Error),
}

impl From<io::Error> for ArchiveError {
    /// Unwraps an `ArchiveError` that travelled through an `io::Error`
    /// (the decrypting reader sits under zstd, which speaks `io`).
    fn from(e: io::Error) -> ArchiveError {
        if e.get_ref().is_some_and(|inner| inner.is::<ArchiveError>()) {
            if let Some(inner) = e.into_inner() {
                if let Ok(a) = inner.downcast::<ArchiveError>() {
                    return *a;
                }
                return ArchiveError::Format("unexpected error".into());
            }
            return ArchiveError::Format("unexpected error".into());
        }
        ArchiveError::Io(e)
    }
}

/// Who made the archive, and when. Readable without the passphrase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The installation id of the store that was backed up.
    pub installation: String,
    pub tomo_version: String,
    /// Seconds since the Unix epoch.
    pub created: i64,
}

impl Header {
    pub fn new(installation: impl Into<String>, created: i64) -> Header {
        Header { installation: installation.into(), tomo_version: env!("CARGO_PKG_VERSION").into(), created }
    }
}

/// The plain part before the encrypted frames.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub format: u32,
    pub header: Header,
    pub kdf: String,
    /// Absent in format 1, whose only cipher is XChaCha20-Poly1305, and
    /// present in format 2 (`read_envelope` checks both); see `cipher()`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher: Option<Cipher>,
    pub salt: String,
    pub nonce_prefix: String,
    /// SHA-256 of the key under a fixed label, to tell a wrong passphrase
    /// from damage. No weaker than the Argon2id it follows.
    pub key_check: String,
}

impl Envelope {
    /// The cipher of the archive's frames.
    pub fn cipher(&self) -> Cipher {
        self.cipher.unwrap_or(Cipher::XChaCha20Poly1305)
    }
}

/// What a member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MemberKind {
    /// The SQLite store (`tomo.db`), a consistent copy.
    Store,
    /// One file of the manifest folder; `path` is relative to it.
    Manifest,
    /// An app's named volume, as a tar stream.
    Volume,
    /// An app's bind folder, as a tar stream.
    Bind,
    /// The vault's salt (`TOMO_SALT`): with the passphrase, what opens the
    /// secrets in the store.
    VaultSalt,
}

/// A member's description, written before its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberMeta {
    pub name: String,
    pub kind: MemberKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// A file's path (relative to the manifest folder) or a volume's name or
    /// bind folder's path on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Unix permission bits of a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

impl MemberMeta {
    pub fn new(name: impl Into<String>, kind: MemberKind) -> MemberMeta {
        MemberMeta { name: name.into(), kind, app: None, server: None, path: None, mode: None }
    }
}

/// A member as recorded in the contents list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(flatten)]
    pub meta: MemberMeta,
    pub size: u64,
    pub sha256: String,
}

/// The contents list at the end of the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contents {
    pub header: Header,
    pub members: Vec<Entry>,
    /// Free notes, e.g. `manifests_revision` (the manifest folder's git commit).
    #[serde(default)]
    pub notes: BTreeMap<String, String>,
}

impl Contents {
    /// The apps whose data the archive holds, sorted, once each.
    pub fn apps(&self) -> Vec<String> {
        let mut apps: Vec<String> = self.members.iter().filter_map(|m| m.meta.app.clone()).collect();
        apps.sort();
        apps.dedup();
        apps
    }

    /// The bytes of member data.
    pub fn data_size(&self) -> u64 {
        self.members.iter().map(|m| m.size).sum()
    }
}

fn derive(passphrase: &SecretString, salt: &[u8]) -> Result<Key, ArchiveError> {
    if passphrase.expose().is_empty() {
        return Err(ArchiveError::NoPassphrase);
    }
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, argon2::Params::DEFAULT);
    let mut out = [0u8; 32];
    argon
        .hash_password_into(passphrase.expose().as_bytes(), salt, &mut out)
        .map_err(|e| ArchiveError::Kdf(e.to_string()))?;
    let key = Key::from(out);
    zeroize::Zeroize::zeroize(&mut out);
    Ok(key)
}

fn key_check(key: &Key) -> String {
    let mut h = Sha256::new();
    h.update(b"tomo backup key check v1");
    h.update(key.as_slice());
    hex(&h.finalize())
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect()
}

/// An archive's fingerprint: the SHA-256 of its envelope as written. The
/// envelope holds the archive's random salt and nonce prefix and is the
/// associated data of every frame, so two archives never share one, and a
/// reading whose fingerprint is the one planned reads that archive.
pub fn fingerprint(envelope_json: &[u8]) -> String {
    hex(&Sha256::digest(envelope_json))
}

/// The associated data of every frame: the magic and the envelope as written.
fn aad(envelope_json: &[u8]) -> Vec<u8> {
    let mut a = MAGIC.to_vec();
    a.extend_from_slice(envelope_json);
    a
}

fn write_record(w: &mut impl Write, tag: u8, json: &[u8]) -> io::Result<()> {
    let len = u32::try_from(json.len()).map_err(|_| io::Error::other("record too large"))?;
    w.write_all(&[tag])?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(json)
}

type Compressor<W> = super::compress::Compressor<EncryptWriter<W>>;

/// Writes an archive, one member after the other.
pub struct ArchiveWriter<W: Write> {
    z: Compressor<W>,
    header: Header,
    entries: Vec<Entry>,
    notes: BTreeMap<String, String>,
    open_member: bool,
}

impl<W: Write + Send + 'static> ArchiveWriter<W> {
    /// Writes the envelope to `out` and starts the encrypted stream (sealed
    /// on a thread of its own, which owns `out` until `finish`).
    /// With the faster cipher on this CPU (`Cipher::for_this_machine`).
    pub fn create(out: W, passphrase: &SecretString, header: Header) -> Result<ArchiveWriter<W>, ArchiveError> {
        ArchiveWriter::create_with(out, passphrase, header, Cipher::for_this_machine())
    }

    /// `create` with the given cipher.
    pub fn create_with(
        mut out: W,
        passphrase: &SecretString,
        header: Header,
        cipher: Cipher,
    ) -> Result<ArchiveWriter<W>, ArchiveError> {
        let salt = XNonce::generate();
        let salt = &salt[..16];
        let key = derive(passphrase, salt)?;
        let nonce = XNonce::generate();
        let mut prefix = [0u8; PREFIX_LEN];
        prefix.copy_from_slice(&nonce[..PREFIX_LEN]);
        let envelope = Envelope {
            format: FORMAT,
            header: header.clone(),
            kdf: KDF.into(),
            cipher: Some(cipher),
            salt: hex(salt),
            nonce_prefix: hex(&prefix),
            key_check: key_check(&key),
        };
        let json = serde_json::to_vec(&envelope).map_err(|e| ArchiveError::Format(e.to_string()))?;
        out.write_all(MAGIC)?;
        out.write_all(&u32::try_from(json.len()).map_err(|_| ArchiveError::Format("envelope".into()))?.to_be_bytes())?;
        out.write_all(&json)?;
        let enc = EncryptWriter::new(out, ArchiveCipher::new(cipher, &key, &prefix), aad(&json))?;
        let z = Compressor::new(enc)?;
        Ok(ArchiveWriter { z, header, entries: Vec::new(), notes: BTreeMap::new(), open_member: false })
    }
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts a member; write its data to the returned writer, then `finish` it.
    pub fn member(&mut self, meta: MemberMeta) -> Result<MemberWriter<'_, W>, ArchiveError> {
        if self.open_member {
            return Err(ArchiveError::MemberOpen);
        }
        let json = serde_json::to_vec(&meta).map_err(|e| ArchiveError::Format(e.to_string()))?;
        write_record(&mut self.z, b'M', &json)?;
        self.open_member = true;
        self.z.probe_again();
        Ok(MemberWriter {
            archive: self,
            meta: Some(meta),
            buf: Vec::with_capacity(BLOCK),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Copies `data` to its end as one member.
    pub fn append(&mut self, meta: MemberMeta, data: &mut impl Read) -> Result<Entry, ArchiveError> {
        let mut m = self.member(meta)?;
        io::copy(data, &mut m)?;
        m.finish()
    }

    /// Records a note in the contents list.
    pub fn note(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.notes.insert(key.into(), value.into());
    }

    /// The members written so far.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Writes the contents list, ends the stream and returns the output.
    pub fn finish(mut self) -> Result<(W, Contents), ArchiveError> {
        if self.open_member {
            return Err(ArchiveError::MemberOpen);
        }
        let contents = Contents { header: self.header, members: self.entries, notes: self.notes };
        let json = serde_json::to_vec(&contents).map_err(|e| ArchiveError::Format(e.to_string()))?;
        write_record(&mut self.z, b'C', &json)?;
        let enc = self.z.finish()?;
        let out = enc.finish()?;
        Ok((out, contents))
    }
}

/// The data of one member being written. Dropping it without `finish` leaves
/// the archive unusable (`MemberOpen`).
pub struct MemberWriter<'a, W: Write> {
    archive: &'a mut ArchiveWriter<W>,
    meta: Option<MemberMeta>,
    buf: Vec<u8>,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> MemberWriter<'_, W> {
    fn flush_block(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        write_block(&mut self.archive.z, &self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// Ends the member: its checksum and size follow the data.
    pub fn finish(mut self) -> Result<Entry, ArchiveError> {
        self.flush_block()?;
        let digest = std::mem::take(&mut self.hasher).finalize();
        let z = &mut self.archive.z;
        z.write_all(&0u32.to_be_bytes())?;
        z.write_all(&digest)?;
        z.write_all(&self.size.to_be_bytes())?;
        let meta = self.meta.take().ok_or(ArchiveError::MemberOpen)?;
        let entry = Entry { meta, size: self.size, sha256: hex(&digest) };
        self.archive.entries.push(entry.clone());
        self.archive.open_member = false;
        Ok(entry)
    }
}

/// Writes one block of member data (its length, then its bytes), stored
/// when it would not shrink.
fn write_block<W: Write>(z: &mut Compressor<W>, block: &[u8]) -> io::Result<()> {
    let len = u32::try_from(block.len()).map_err(|_| io::Error::other("block too large"))?.to_be_bytes();
    if z.worth_compressing(block) {
        z.write_all(&len)?;
        z.write_all(block)
    } else {
        z.store(&[&len, block])
    }
}

impl<W: Write> Write for MemberWriter<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() == BLOCK {
            self.flush_block()?;
        }
        if self.buf.is_empty() && data.len() >= BLOCK {
            // A whole block in hand: written from the caller's bytes, not copied first.
            let block = &data[..BLOCK];
            self.hasher.update(block);
            write_block(&mut self.archive.z, block)?;
            self.size += BLOCK as u64;
            return Ok(BLOCK);
        }
        let n = data.len().min(BLOCK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.hasher.update(&data[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads the envelope at the start of an archive (no passphrase needed).
pub fn read_envelope(input: &mut impl Read) -> Result<(Envelope, Vec<u8>), ArchiveError> {
    let mut magic = [0u8; 8];
    input.read_exact(&mut magic).map_err(|_| ArchiveError::NotAnArchive("too short".into()))?;
    if &magic != MAGIC {
        return Err(ArchiveError::NotAnArchive("it does not start with tomo's backup marker".into()));
    }
    let mut len = [0u8; 4];
    input.read_exact(&mut len).map_err(|_| ArchiveError::Truncated)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_RECORD {
        return Err(ArchiveError::Tampered("the envelope length is implausible".into()));
    }
    let mut json = vec![0u8; len];
    input.read_exact(&mut json).map_err(|_| ArchiveError::Truncated)?;
    let envelope: Envelope = serde_json::from_slice(&json)
        .map_err(|e| ArchiveError::Tampered(format!("the envelope does not parse: {e}")))?;
    if !FORMATS_READ.contains(&envelope.format) {
        return Err(ArchiveError::UnsupportedFormat(envelope.format));
    }
    match (envelope.format, envelope.cipher) {
        (1, None) | (2, Some(_)) => {}
        (1, Some(_)) => return Err(ArchiveError::Format("an envelope of format 1 names a cipher".into())),
        _ => return Err(ArchiveError::Format("the envelope names no cipher".into())),
    }
    if envelope.kdf != KDF {
        return Err(ArchiveError::Format(format!("unknown key derivation `{}`", envelope.kdf)));
    }
    Ok((envelope, json))
}

/// Reads the envelope and derives the key, checking the passphrase.
fn unlock(
    input: &mut impl Read,
    passphrase: &SecretString,
) -> Result<(Envelope, Vec<u8>, Key, [u8; PREFIX_LEN]), ArchiveError> {
    let (envelope, json) = read_envelope(input)?;
    let salt = unhex(&envelope.salt).ok_or_else(|| ArchiveError::Tampered("the salt is not hex".into()))?;
    let prefix: [u8; PREFIX_LEN] = unhex(&envelope.nonce_prefix)
        .and_then(|p| p.try_into().ok())
        .ok_or_else(|| ArchiveError::Tampered("the nonce prefix is malformed".into()))?;
    let key = derive(passphrase, &salt)?;
    if key_check(&key) != envelope.key_check {
        return Err(ArchiveError::WrongPassphrase);
    }
    Ok((envelope, json, key, prefix))
}

type Decompressor<R> = zstd::stream::read::Decoder<'static, DecryptReader<R>>;

/// Reads an archive opened with its passphrase.
pub struct ArchiveReader<R: Read> {
    envelope: Envelope,
    z: Decompressor<R>,
    /// Whether members are hashed as they are read (see `reopen_verified`).
    rehash: bool,
    key: Unlocked,
    fingerprint: String,
}

/// An archive's key, as its first reading derived it, its cipher and its
/// nonce prefix (no two archives share one): what `reopen_verified` needs
/// to read the same archive again. The key is zeroed when dropped.
pub struct Unlocked {
    key: Key,
    cipher: Cipher,
    nonce_prefix: String,
}

impl Drop for Unlocked {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(self.key.as_mut_slice());
    }
}

impl<R: Read> ArchiveReader<R> {
    /// Reads the envelope and checks the passphrase. Reads no member.
    pub fn open(mut input: R, passphrase: &SecretString) -> Result<ArchiveReader<R>, ArchiveError> {
        let (envelope, json, key, prefix) = unlock(&mut input, passphrase)?;
        let dec = DecryptReader::new(input, ArchiveCipher::new(envelope.cipher(), &key, &prefix), aad(&json));
        let z = zstd::stream::read::Decoder::with_buffer(dec)?;
        let key = Unlocked { key, cipher: envelope.cipher(), nonce_prefix: envelope.nonce_prefix.clone() };
        Ok(ArchiveReader { envelope, z, rehash: true, key, fingerprint: fingerprint(&json) })
    }

    /// Like `open`, with the frames decrypted on a thread of their own, a
    /// few chunks ahead of decompression and hashing.
    pub fn open_pipelined(mut input: R, passphrase: &SecretString) -> Result<ArchiveReader<R>, ArchiveError>
    where
        R: Send + 'static,
    {
        let (envelope, json, key, prefix) = unlock(&mut input, passphrase)?;
        let dec = DecryptReader::pipelined(input, ArchiveCipher::new(envelope.cipher(), &key, &prefix), aad(&json))?;
        let z = zstd::stream::read::Decoder::with_buffer(dec)?;
        let key = Unlocked { key, cipher: envelope.cipher(), nonce_prefix: envelope.nonce_prefix.clone() };
        Ok(ArchiveReader { envelope, z, rehash: true, key, fingerprint: fingerprint(&json) })
    }

    /// Opens again (pipelined) an archive whose `verify_keeping_key` passed,
    /// with the key that reading derived: Argon2id does not run again (its
    /// time, and its 19 MiB), and members are not hashed again. Every
    /// chunk's tag is still checked, and the tags (under this archive's key
    /// and nonce prefix, with the envelope as associated data) only pass for
    /// the bytes the verified reading hashed; the trailers are still read
    /// and the contents list still compared. Refused when the file is
    /// another archive than the one verified.
    pub fn reopen_verified(mut input: R, verified: &Unlocked) -> Result<ArchiveReader<R>, ArchiveError>
    where
        R: Send + 'static,
    {
        let (envelope, json) = read_envelope(&mut input)?;
        if envelope.nonce_prefix != verified.nonce_prefix
            || envelope.cipher() != verified.cipher
            || envelope.key_check != key_check(&verified.key)
        {
            return Err(ArchiveError::Tampered("the archive changed since it was verified".into()));
        }
        let prefix: [u8; PREFIX_LEN] = unhex(&envelope.nonce_prefix)
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| ArchiveError::Tampered("the nonce prefix is malformed".into()))?;
        let cipher = ArchiveCipher::new(envelope.cipher(), &verified.key, &prefix);
        let dec = DecryptReader::pipelined(input, cipher, aad(&json))?;
        let z = zstd::stream::read::Decoder::with_buffer(dec)?;
        let key =
            Unlocked { key: verified.key, cipher: envelope.cipher(), nonce_prefix: envelope.nonce_prefix.clone() };
        Ok(ArchiveReader { envelope, z, rehash: false, key, fingerprint: fingerprint(&json) })
    }

    pub fn header(&self) -> &Header {
        &self.envelope.header
    }

    /// The archive's fingerprint (`fingerprint`).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Reads the whole archive, checking every tag and checksum; writes nothing.
    pub fn verify_all(self) -> Result<Contents, ArchiveError> {
        self.verify_keeping_key().map(|(contents, _)| contents)
    }

    /// `verify_all`, and the key for `reopen_verified`.
    pub fn verify_keeping_key(mut self) -> Result<(Contents, Unlocked), ArchiveError> {
        let key = Unlocked { key: self.key.key, cipher: self.key.cipher, nonce_prefix: self.key.nonce_prefix.clone() };
        self.rehash = true;
        let contents = self.for_each_member(|_, _| Ok(()))?;
        Ok((contents, key))
    }

    /// Hands each member's data to `f` in order, then checks the member's
    /// checksum (reading what `f` left) and, at the end, the contents list.
    /// Run `verify_all` on the archive first: `f` sees data before the
    /// checksum that covers it.
    pub fn for_each_member(
        mut self,
        mut f: impl FnMut(&MemberMeta, &mut dyn Read) -> Result<(), ArchiveError>,
    ) -> Result<Contents, ArchiveError> {
        let mut seen = Vec::new();
        loop {
            let (tag, json) = read_record(&mut self.z)?;
            match tag {
                b'M' => {
                    let meta: MemberMeta = serde_json::from_slice(&json)
                        .map_err(|e| ArchiveError::Format(format!("member metadata: {e}")))?;
                    let mut data = MemberReader::new(&mut self.z, self.rehash);
                    f(&meta, &mut data)?;
                    data.drain()?;
                    let (size, sha256) = data.check()?;
                    seen.push(Entry { meta, size, sha256 });
                }
                b'C' => {
                    let contents: Contents = serde_json::from_slice(&json)
                        .map_err(|e| ArchiveError::Format(format!("contents list: {e}")))?;
                    let mut rest = [0u8; 1];
                    if self.z.read(&mut rest)? != 0 {
                        return Err(ArchiveError::Tampered("data follows the contents list".into()));
                    }
                    if contents.members != seen {
                        return Err(ArchiveError::Tampered("the contents list does not match the members".into()));
                    }
                    if contents.header != self.envelope.header {
                        return Err(ArchiveError::Tampered("the contents list's header does not match".into()));
                    }
                    return Ok(contents);
                }
                other => return Err(ArchiveError::Format(format!("unknown record {other:#04x}"))),
            }
        }
    }
}

fn read_u32(r: &mut impl Read) -> Result<u32, ArchiveError> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).map_err(eof_is_truncated)?;
    Ok(u32::from_be_bytes(b))
}

fn eof_is_truncated(e: io::Error) -> ArchiveError {
    if e.kind() == io::ErrorKind::UnexpectedEof { ArchiveError::Truncated } else { ArchiveError::from(e) }
}

fn read_record(r: &mut impl Read) -> Result<(u8, Vec<u8>), ArchiveError> {
    let mut tag = [0u8; 1];
    r.read_exact(&mut tag).map_err(eof_is_truncated)?;
    let len = read_u32(r)? as usize;
    if len > MAX_RECORD {
        return Err(ArchiveError::Format("a record is implausibly long".into()));
    }
    let mut json = vec![0u8; len];
    r.read_exact(&mut json).map_err(eof_is_truncated)?;
    Ok((tag[0], json))
}

/// One member's data blocks, hashed as they are read.
struct MemberReader<'a, R: Read> {
    inner: &'a mut R,
    left: usize,
    ended: bool,
    /// `None` on a reading of an archive already verified.
    hasher: Option<MemberHash>,
    size: u64,
}

impl<'a, R: Read> MemberReader<'a, R> {
    fn new(inner: &'a mut R, hash: bool) -> MemberReader<'a, R> {
        MemberReader { inner, left: 0, ended: false, hasher: hash.then(MemberHash::start), size: 0 }
    }

    /// After the data: compares the trailer with what was read.
    fn check(self) -> Result<(u64, String), ArchiveError> {
        let mut digest = [0u8; 32];
        self.inner.read_exact(&mut digest).map_err(eof_is_truncated)?;
        let mut size = [0u8; 8];
        self.inner.read_exact(&mut size).map_err(eof_is_truncated)?;
        let matches = match self.hasher {
            Some(h) => h.finalize()? == digest,
            None => true,
        };
        if !matches || u64::from_be_bytes(size) != self.size {
            return Err(ArchiveError::Tampered("a member's checksum does not match its data".into()));
        }
        Ok((self.size, hex(&digest)))
    }
}

impl<R: Read> MemberReader<'_, R> {
    /// The next bytes of the member's data blocks, not hashed.
    fn read_unhashed(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.ended || out.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut b = [0u8; 4];
            self.inner.read_exact(&mut b)?;
            self.left = u32::from_be_bytes(b) as usize;
            if self.left == 0 {
                self.ended = true;
                return Ok(0);
            }
            if self.left > BLOCK {
                return Err(io::Error::other(ArchiveError::Format("a data block is implausibly long".into())));
            }
        }
        let want = out.len().min(self.left);
        let n = self.inner.read(&mut out[..want])?;
        if n == 0 {
            return Err(io::Error::other(ArchiveError::Truncated));
        }
        self.size += n as u64;
        self.left -= n;
        Ok(n)
    }

    /// Reads the rest of the data, hashing it: decompressed straight into
    /// the hashing thread's batches when it has one.
    fn drain(&mut self) -> io::Result<()> {
        let mut hash = match self.hasher.take() {
            Some(MemberHash::Ahead(hash)) => hash,
            other => {
                // Hashed on this thread, or not at all: through `read`.
                self.hasher = other;
                return drain(self);
            }
        };
        let drained = loop {
            match hash.fill_with(|room| self.read_unhashed(room)) {
                Ok(0) => break Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.hasher = Some(MemberHash::Ahead(hash));
        drained
    }
}

impl<R: Read> Read for MemberReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.read_unhashed(out)?;
        if let Some(h) = &mut self.hasher {
            h.update(&out[..n])?;
        }
        Ok(n)
    }
}

/// Reads `data` to its end, in large reads (each is a read of the
/// decoder and a hash update).
fn drain(data: &mut dyn Read) -> io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match data.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;
