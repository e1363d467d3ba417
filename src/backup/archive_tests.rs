//! Tests of the archive format: round trips, partial reads, and refusal of
//! wrong passphrases, truncation, trailing bytes and any flipped bit.

use std::io::{Cursor, Write};

use proptest::prelude::*;

use super::*;

fn pass(p: &str) -> SecretString {
    SecretString::new(p.to_string())
}

fn header() -> Header {
    Header::new("inst-1", 1_700_000_000)
}

/// An archive with a small member, an empty one and one spanning many chunks.
fn sample() -> (Vec<u8>, Vec<u8>) {
    sample_with(Cipher::for_this_machine())
}

fn sample_with(cipher: Cipher) -> (Vec<u8>, Vec<u8>) {
    let big: Vec<u8> = (0..300_000u32).flat_map(|i| (i.wrapping_mul(2_654_435_761)).to_le_bytes()).collect();
    let mut w = ArchiveWriter::create_with(Vec::new(), &pass("pw"), header(), cipher).unwrap();
    w.append(MemberMeta::new("store", MemberKind::Store), &mut Cursor::new(b"sqlite bytes".to_vec())).unwrap();
    w.append(MemberMeta::new("empty", MemberKind::Manifest), &mut std::io::empty()).unwrap();
    let mut m = w.member(MemberMeta { app: Some("web".into()), ..MemberMeta::new("vol", MemberKind::Volume) }).unwrap();
    for piece in big.chunks(10_007) {
        m.write_all(piece).unwrap();
    }
    m.finish().unwrap();
    w.note("manifests_revision", "abc");
    let (out, contents) = w.finish().unwrap();
    assert_eq!(contents.members.len(), 3);
    (out, big)
}

#[test]
fn round_trip_gives_back_every_member_and_the_contents() {
    let (bytes, big) = sample();
    let contents = ArchiveReader::open(Cursor::new(&bytes), &pass("pw")).unwrap().verify_all().unwrap();
    assert_eq!(contents.header, header());
    assert_eq!(contents.apps(), vec!["web".to_string()]);
    assert_eq!(contents.notes["manifests_revision"], "abc");
    assert_eq!(contents.members[2].size, big.len() as u64);
    let mut got = Vec::new();
    ArchiveReader::open(Cursor::new(&bytes), &pass("pw"))
        .unwrap()
        .for_each_member(|meta, data| {
            let mut buf = Vec::new();
            data.read_to_end(&mut buf)?;
            got.push((meta.name.clone(), buf));
            Ok(())
        })
        .unwrap();
    assert_eq!(got[0], ("store".to_string(), b"sqlite bytes".to_vec()));
    assert_eq!(got[1], ("empty".to_string(), Vec::new()));
    assert_eq!(got[2].1, big);
}

#[test]
fn a_callback_that_reads_part_of_a_member_still_gets_the_next() {
    let (bytes, _) = sample();
    let mut names = Vec::new();
    ArchiveReader::open(Cursor::new(&bytes), &pass("pw"))
        .unwrap()
        .for_each_member(|meta, data| {
            let mut two = [0u8; 2];
            let _ = data.read(&mut two)?;
            names.push(meta.name.clone());
            Ok(())
        })
        .unwrap();
    assert_eq!(names, ["store", "empty", "vol"]);
}

#[test]
fn the_envelope_is_readable_without_the_passphrase() {
    let (bytes, _) = sample();
    let (env, _) = read_envelope(&mut Cursor::new(&bytes)).unwrap();
    assert_eq!(env.header, header());
}

#[test]
fn a_wrong_passphrase_is_told_apart() {
    let (bytes, _) = sample();
    assert!(matches!(ArchiveReader::open(Cursor::new(&bytes), &pass("nope")), Err(ArchiveError::WrongPassphrase)));
    assert!(matches!(ArchiveReader::open(Cursor::new(&bytes), &pass("")), Err(ArchiveError::NoPassphrase)));
}

#[test]
fn truncation_anywhere_is_refused() {
    let (bytes, _) = sample();
    for cut in [bytes.len() - 1, bytes.len() - 17, bytes.len() / 2, 200, 13, 3] {
        let r = ArchiveReader::open(Cursor::new(&bytes[..cut]), &pass("pw")).and_then(|r| r.verify_all());
        assert!(r.is_err(), "cut at {cut} accepted");
    }
}

#[test]
fn trailing_bytes_are_refused() {
    let (mut bytes, _) = sample();
    bytes.push(0);
    let r = ArchiveReader::open(Cursor::new(&bytes), &pass("pw")).unwrap().verify_all();
    assert!(matches!(r, Err(ArchiveError::Tampered(_))), "{r:?}");
}

#[test]
fn an_unfinished_member_blocks_the_archive() {
    let mut w = ArchiveWriter::create(Vec::new(), &pass("pw"), header()).unwrap();
    drop(w.member(MemberMeta::new("a", MemberKind::Store)).unwrap());
    assert!(matches!(w.member(MemberMeta::new("b", MemberKind::Store)), Err(ArchiveError::MemberOpen)));
    assert!(matches!(w.finish(), Err(ArchiveError::MemberOpen)));
}

#[test]
fn another_file_is_not_an_archive() {
    let r = ArchiveReader::open(Cursor::new(b"SQLite format 3\0 and more".to_vec()), &pass("pw"));
    assert!(matches!(r, Err(ArchiveError::NotAnArchive(_))));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn any_flipped_byte_is_refused(at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (mut bytes, _) = SAMPLE.clone();
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let r = ArchiveReader::open(Cursor::new(&bytes), &pass("pw")).and_then(|r| r.verify_all());
        prop_assert!(r.is_err(), "flipping bit {} of byte {} was not noticed", bit, i);
    }
}

static SAMPLE: std::sync::LazyLock<(Vec<u8>, Vec<u8>)> = std::sync::LazyLock::new(sample);

#[test]
fn the_pipelined_reader_gives_back_the_same_and_refuses_damage() {
    let (bytes, big) = sample();
    let contents =
        ArchiveReader::open_pipelined(Cursor::new(bytes.clone()), &pass("pw")).unwrap().verify_all().unwrap();
    assert_eq!(contents.members[2].size, big.len() as u64);
    for cut in [bytes.len() - 1, bytes.len() / 2, 200] {
        let r =
            ArchiveReader::open_pipelined(Cursor::new(bytes[..cut].to_vec()), &pass("pw")).and_then(|r| r.verify_all());
        assert!(r.is_err(), "cut at {cut} accepted");
    }
    let mut flipped = bytes.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 4;
    let r = ArchiveReader::open_pipelined(Cursor::new(flipped), &pass("pw")).unwrap().verify_all();
    assert!(r.is_err(), "a flipped byte was not noticed");
}

#[test]
fn every_reading_has_the_archives_fingerprint_and_no_other_archive_shares_it() {
    let (bytes, _) = sample();
    let (_, envelope) = read_envelope(&mut Cursor::new(&bytes)).unwrap();
    let want = fingerprint(&envelope);
    assert_eq!(want, crate::model::spec::hex(&Sha256::digest(&envelope)));
    let first = ArchiveReader::open(Cursor::new(&bytes), &pass("pw")).unwrap();
    assert_eq!(first.fingerprint(), want);
    let piped = ArchiveReader::open_pipelined(Cursor::new(bytes.clone()), &pass("pw")).unwrap();
    assert_eq!(piped.fingerprint(), want);
    let (_, key) = piped.verify_keeping_key().unwrap();
    assert_eq!(ArchiveReader::reopen_verified(Cursor::new(bytes.clone()), &key).unwrap().fingerprint(), want);
    // The same contents under the same passphrase, written again: another
    // salt and nonce prefix, so another fingerprint.
    let (again, _) = sample();
    assert_ne!(ArchiveReader::open(Cursor::new(&again), &pass("pw")).unwrap().fingerprint(), want);
}

#[test]
fn a_verified_archive_reopens_with_its_key_without_hashing_but_only_itself() {
    let (bytes, big) = sample();
    let (verified, key) = ArchiveReader::open(Cursor::new(&bytes), &pass("pw")).unwrap().verify_keeping_key().unwrap();
    let mut got = Vec::new();
    let again = ArchiveReader::reopen_verified(Cursor::new(bytes.clone()), &key)
        .unwrap()
        .for_each_member(|_, data| {
            let mut buf = Vec::new();
            data.read_to_end(&mut buf)?;
            got.push(buf);
            Ok(())
        })
        .unwrap();
    assert_eq!(again, verified);
    assert_eq!(got[2], big);
    // Another archive under the same passphrase is not the one verified.
    let (other, _) = sample();
    let r = ArchiveReader::reopen_verified(Cursor::new(other), &key);
    assert!(matches!(r, Err(ArchiveError::Tampered(_))));
    // A flipped byte still fails its chunk's tag on the second reading.
    let mut flipped = bytes.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 1;
    // (Read without hashing, as the restore does: the tags alone catch it.)
    let r = ArchiveReader::reopen_verified(Cursor::new(flipped), &key).unwrap().for_each_member(|_, data| {
        std::io::copy(data, &mut std::io::sink())?;
        Ok(())
    });
    assert!(r.is_err(), "a flipped byte was not noticed on the second reading");
}

#[test]
fn each_cipher_round_trips_and_refuses_damage() {
    for cipher in [Cipher::Aes256Gcm, Cipher::XChaCha20Poly1305] {
        let (bytes, big) = sample_with(cipher);
        let (envelope, _) = read_envelope(&mut Cursor::new(&bytes)).unwrap();
        assert_eq!((envelope.format, envelope.cipher), (FORMAT, Some(cipher)));
        let contents = ArchiveReader::open_pipelined(Cursor::new(bytes.clone()), &pass("pw")).unwrap().verify_all();
        assert_eq!(contents.unwrap().members[2].size, big.len() as u64, "{cipher:?}");
        let mut flipped = bytes.clone();
        let at = flipped.len() - 40;
        flipped[at] ^= 1;
        let r = ArchiveReader::open(Cursor::new(flipped), &pass("pw")).unwrap().verify_all();
        assert!(matches!(r, Err(ArchiveError::Tampered(_))), "{cipher:?}: {r:?}");
        let r = ArchiveReader::open(Cursor::new(bytes[..bytes.len() - 1].to_vec()), &pass("pw")).unwrap().verify_all();
        assert!(r.is_err(), "{cipher:?}: a truncated archive was accepted");
    }
}

/// Rewrites the envelope's JSON (and its length) in front of the same frames.
fn with_envelope(bytes: &[u8], edit: impl Fn(String) -> String) -> Vec<u8> {
    let len = u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let json = edit(String::from_utf8(bytes[12..12 + len].to_vec()).unwrap());
    let mut out = bytes[..8].to_vec();
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(&bytes[12 + len..]);
    out
}

#[test]
fn the_cipher_the_envelope_names_is_bound_to_the_frames() {
    let (bytes, _) = sample_with(Cipher::Aes256Gcm);
    let swapped = with_envelope(&bytes, |j| j.replace("\"aes-256-gcm\"", "\"xchacha20-poly1305\""));
    // The passphrase still opens it (same salt and key check), but no frame does.
    let r = ArchiveReader::open(Cursor::new(swapped), &pass("pw")).unwrap().verify_all();
    assert!(matches!(r, Err(ArchiveError::Tampered(_))), "{r:?}");
    let unknown = with_envelope(&bytes, |j| j.replace("\"aes-256-gcm\"", "\"rot13\""));
    assert!(matches!(ArchiveReader::open(Cursor::new(unknown), &pass("pw")), Err(ArchiveError::Tampered(_))));
    let newer = with_envelope(&bytes, |j| j.replace("\"format\":2", "\"format\":3"));
    assert!(matches!(ArchiveReader::open(Cursor::new(newer), &pass("pw")), Err(ArchiveError::UnsupportedFormat(3))));
    // A format 2 envelope must name its cipher, and one of format 1 must not.
    let unnamed = with_envelope(&bytes, |j| j.replace("\"cipher\":\"aes-256-gcm\",", ""));
    assert!(matches!(ArchiveReader::open(Cursor::new(unnamed), &pass("pw")), Err(ArchiveError::Format(_))));
    let named = with_envelope(&bytes, |j| j.replace("\"format\":2", "\"format\":1"));
    assert!(matches!(ArchiveReader::open(Cursor::new(named), &pass("pw")), Err(ArchiveError::Format(_))));
}

/// The same cipher, the envelope made to say format 1: a well-formed
/// envelope that the frames' associated data (the envelope as written)
/// refuses.
#[test]
fn an_envelope_rewritten_to_format_1_is_refused_by_the_frames() {
    let (bytes, _) = sample_with(Cipher::XChaCha20Poly1305);
    let older = with_envelope(&bytes, |j| {
        j.replace("\"format\":2", "\"format\":1").replace("\"cipher\":\"xchacha20-poly1305\",", "")
    });
    let (envelope, _) = read_envelope(&mut Cursor::new(&older)).unwrap();
    assert_eq!((envelope.format, envelope.cipher), (1, None));
    let r = ArchiveReader::open(Cursor::new(older), &pass("pw")).unwrap().verify_all();
    assert!(matches!(r, Err(ArchiveError::Tampered(_))), "{r:?}");
}

/// Each member probes from its first block: text after a member of noise
/// is compressed at once, not stored while the probe backs off.
#[test]
fn a_member_after_noise_is_compressed_from_its_start() {
    let noise = super::super::compress::tests::noise(37 * 64 * 1024, 7);
    let text = "a line of a log file, repeated\n".repeat(32 * 1024);
    let mut w = ArchiveWriter::create(Vec::new(), &pass("pw"), header()).unwrap();
    w.append(MemberMeta::new("noise", MemberKind::Volume), &mut Cursor::new(&noise)).unwrap();
    w.append(MemberMeta::new("text", MemberKind::Volume), &mut Cursor::new(text.as_bytes())).unwrap();
    let (out, _) = w.finish().unwrap();
    assert!(out.len() < noise.len() + text.len() / 10, "{} bytes for {} + {}", out.len(), noise.len(), text.len());
}

/// An archive of format 1 (XChaCha20-Poly1305, no `cipher` in its
/// envelope), written by `tomo backup create` before format 2.
#[test]
fn an_archive_of_format_1_still_reads() {
    let bytes = include_bytes!("testdata/format1.tomo-backup").to_vec();
    let (envelope, _) = read_envelope(&mut Cursor::new(&bytes)).unwrap();
    assert_eq!((envelope.format, envelope.cipher()), (1, Cipher::XChaCha20Poly1305));
    let contents = ArchiveReader::open(Cursor::new(bytes.clone()), &pass("format-one-pass")).unwrap().verify_all();
    let contents = contents.unwrap();
    assert_eq!(contents.members.len(), 2);
    assert_eq!(contents.members[0].meta.kind, MemberKind::Store);
    assert!(matches!(
        ArchiveReader::open(Cursor::new(bytes), &pass("another")).map(|_| ()),
        Err(ArchiveError::WrongPassphrase)
    ));
}

/// A reading of a whole archive, checking everything.
type Reading = fn(&[u8]) -> Result<Contents, ArchiveError>;

/// Ends `m` as `MemberWriter::finish` does, but with `digest` and `size`
/// in its trailer and in the contents list: a writer that lies, every
/// frame sealed as usual (so only the member's own checksum can tell).
fn finish_lying(mut m: MemberWriter<'_, Vec<u8>>, digest: [u8; 32], size: u64) {
    m.flush_block().unwrap();
    let z = &mut m.archive.z;
    z.write_all(&0u32.to_be_bytes()).unwrap();
    z.write_all(&digest).unwrap();
    z.write_all(&size.to_be_bytes()).unwrap();
    let meta = m.meta.take().unwrap();
    m.archive.entries.push(Entry { meta, size, sha256: hex(&digest) });
    m.archive.open_member = false;
}

/// An archive whose member `vol` holds `data` and whose trailer says `digest` and `size`.
fn lying(data: &[u8], digest: [u8; 32], size: u64) -> Vec<u8> {
    let mut w = ArchiveWriter::create(Vec::new(), &pass("pw"), header()).unwrap();
    w.append(MemberMeta::new("store", MemberKind::Store), &mut Cursor::new(b"sqlite bytes".to_vec())).unwrap();
    let mut m = w.member(MemberMeta::new("vol", MemberKind::Volume)).unwrap();
    m.write_all(data).unwrap();
    finish_lying(m, digest, size);
    w.finish().unwrap().0
}

#[test]
fn a_member_whose_checksum_disagrees_with_its_sealed_data_is_refused() {
    let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    let mut other = data.clone();
    other[123_456] ^= 1;
    let truth: [u8; 32] = Sha256::digest(&data).into();
    let told: [u8; 32] = Sha256::digest(&other).into();
    let len = data.len() as u64;
    let readings: [Reading; 2] = [
        |b| ArchiveReader::open(Cursor::new(b.to_vec()), &pass("pw"))?.verify_all(),
        |b| ArchiveReader::open_pipelined(Cursor::new(b.to_vec()), &pass("pw"))?.verify_keeping_key().map(|(c, _)| c),
    ];
    for read in readings {
        // The helper writes a good archive when it tells the truth.
        assert_eq!(read(&lying(&data, truth, len)).unwrap().members[1].size, len);
        for (what, bytes) in [("digest", lying(&data, told, len)), ("size", lying(&data, truth, len + 1))] {
            match read(&bytes) {
                Err(ArchiveError::Tampered(why)) => assert!(why.contains("checksum"), "{what}: {why}"),
                other => panic!("a lying {what} was not refused: {other:?}"),
            }
        }
    }
}
