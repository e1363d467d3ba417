//! The compressed layer of an archive: one zstd stream, made of frames one
//! after the other, that any zstd decoder reads as the concatenation of
//! their contents.
//!
//! App data is often already compressed (media, archives, encrypted
//! files), and zstd spends as long failing to shrink such data as the rest
//! of a backup spends on it: about 0.7 s of a core per GiB here, for nothing.
//! So a block of member data is first probed: a sample of it is compressed,
//! and when that does not shrink it, the block is written as a zstd frame of
//! raw blocks (the format's stored form, written here because the zstd
//! library has no call for it) after ending the frame under way. Readers
//! need nothing new: it is a zstd stream like any other. After blocks in a
//! row that did not shrink, the next ones are stored without a probe, more
//! of them each time (up to `MAX_SKIP`): in a gigabyte of media the probes
//! cost a few milliseconds instead of 0.15 s, and compressible data after
//! it waits at most `MAX_SKIP` blocks (2 MiB) to be compressed again.
//!
//! **Invariants:** whatever mix of `write_all` and `store` calls, the output
//! decodes (by any zstd decoder) to the bytes given, in order; memory is the
//! compressor's context and buffers, whatever the size of the stream.

use std::io::{self, Write};

use zstd::stream::raw::Encoder as RawEncoder;
use zstd::stream::raw::Operation;
use zstd::stream::zio::Writer as ZioWriter;

/// zstd's fast end: a backup runs inside a maintenance window, and the
/// probe keeps it from compressing what will not shrink.
const LEVEL: i32 = 1;

/// The largest block of a raw frame (zstd's Block_Maximum_Size).
const RAW_BLOCK: usize = 128 * 1024;

/// The bytes of a block that the probe compresses: three slices of this
/// size, from its start, middle and end.
const PROBE_SLICE: usize = 2 * 1024;

/// A block is stored raw when its sample compresses to more than this
/// share of its size (in sixteenths): zstd would save under about 6%.
const WORTH_IT: usize = 15;

/// The most blocks stored unprobed after blocks that did not shrink.
const MAX_SKIP: u32 = 32;

/// Compresses what is written to it into `W`, storing blocks that don't shrink.
pub struct Compressor<W: Write> {
    z: Option<ZioWriter<W, RawEncoder<'static>>>,
    /// Bytes went into the zstd frame under way since it started.
    frame_open: bool,
    probe: zstd::bulk::Compressor<'static>,
    sample: Vec<u8>,
    probed: Vec<u8>,
    /// Blocks in a row whose probe said "store".
    misses: u32,
    /// Blocks still to store without a probe.
    skip: u32,
}

impl<W: Write> Compressor<W> {
    pub fn new(out: W) -> io::Result<Compressor<W>> {
        let z = ZioWriter::new(out, RawEncoder::new(LEVEL)?);
        Ok(Compressor {
            z: Some(z),
            frame_open: false,
            probe: zstd::bulk::Compressor::new(LEVEL)?,
            sample: Vec::with_capacity(3 * PROBE_SLICE),
            probed: Vec::with_capacity(zstd::zstd_safe::compress_bound(3 * PROBE_SLICE)),
            misses: 0,
            skip: 0,
        })
    }

    fn writer(&mut self) -> io::Result<&mut ZioWriter<W, RawEncoder<'static>>> {
        self.z.as_mut().ok_or_else(|| io::Error::other("the compressor failed before"))
    }

    /// Probes from the next block on, whatever came before (a new member).
    pub fn probe_again(&mut self) {
        self.misses = 0;
        self.skip = 0;
    }

    /// Whether zstd is likely to shrink `block`, judged on a sample of it,
    /// or, after blocks in a row that did not shrink, `false` unprobed.
    pub fn worth_compressing(&mut self, block: &[u8]) -> bool {
        if self.skip > 0 && !block.is_empty() {
            self.skip -= 1;
            return false;
        }
        let worth = self.probe(block);
        if worth {
            self.misses = 0;
            self.skip = 0;
        } else {
            self.misses = self.misses.saturating_add(1);
            self.skip = 1u32.checked_shl(self.misses - 1).unwrap_or(MAX_SKIP).min(MAX_SKIP);
        }
        worth
    }

    /// Whether zstd shrinks a sample of `block` by more than about 6%.
    fn probe(&mut self, block: &[u8]) -> bool {
        self.sample.clear();
        if block.len() <= 3 * PROBE_SLICE {
            self.sample.extend_from_slice(block);
        } else {
            let middle = block.len() / 2 - PROBE_SLICE / 2;
            for start in [0, middle, block.len() - PROBE_SLICE] {
                self.sample.extend_from_slice(&block[start..start + PROBE_SLICE]);
            }
        }
        if self.sample.is_empty() {
            return true;
        }
        self.probed.clear();
        match self.probe.compress_to_buffer(&self.sample, &mut self.probed) {
            Ok(n) => n * 16 <= self.sample.len() * WORTH_IT,
            Err(_) => true,
        }
    }

    /// Writes `parts`, one after the other, uncompressed: the frame under
    /// way is ended, and the parts go out as a frame of raw blocks.
    pub fn store(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        if self.frame_open {
            self.end_frame()?;
        }
        write_raw_frame(self.writer()?.writer_mut(), parts)
    }

    /// Ends the zstd frame under way; the next compressed bytes start another.
    fn end_frame(&mut self) -> io::Result<()> {
        let mut z = self.z.take().ok_or_else(|| io::Error::other("the compressor failed before"))?;
        z.finish()?;
        let (out, mut op) = z.into_inner();
        op.reinit()?;
        self.z = Some(ZioWriter::new(out, op));
        self.frame_open = false;
        Ok(())
    }

    /// Ends the stream; the output.
    pub fn finish(mut self) -> io::Result<W> {
        let mut z = self.z.take().ok_or_else(|| io::Error::other("the compressor failed before"))?;
        z.finish()?;
        Ok(z.into_inner().0)
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.writer()?.write(data)?;
        self.frame_open |= n > 0;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer()?.flush()
    }
}

/// Writes a zstd frame holding `parts` as raw blocks: magic, a header with
/// the single-segment flag and a 4-byte content size, then blocks of at
/// most `RAW_BLOCK` bytes, the last one flagged.
fn write_raw_frame(out: &mut impl Write, parts: &[&[u8]]) -> io::Result<()> {
    let size: usize = parts.iter().map(|p| p.len()).sum();
    let content = u32::try_from(size).map_err(|_| io::Error::other("a stored frame of over 4 GiB"))?;
    let mut head = [0u8; 9];
    head[..4].copy_from_slice(&0xFD2F_B528u32.to_le_bytes());
    // Frame_Content_Size_flag 2 (4 bytes), Single_Segment_flag set.
    head[4] = 0b1010_0000;
    head[5..].copy_from_slice(&content.to_le_bytes());
    out.write_all(&head)?;
    let mut parts = parts.iter().copied();
    let mut current: &[u8] = &[];
    let mut left = size;
    loop {
        let block = left.min(RAW_BLOCK);
        left -= block;
        // Block_Size << 3 | Block_Type raw (0) << 1 | Last_Block.
        let header = ((block as u32) << 3) | u32::from(left == 0);
        out.write_all(&header.to_le_bytes()[..3])?;
        let mut need = block;
        while need > 0 {
            if current.is_empty() {
                current = parts.next().ok_or_else(|| io::Error::other("the stored parts ended early"))?;
                continue;
            }
            let take = need.min(current.len());
            out.write_all(&current[..take])?;
            current = &current[take..];
            need -= take;
        }
        if left == 0 {
            return Ok(());
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Read;

    use proptest::prelude::*;

    use super::*;

    fn decode(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        zstd::stream::read::Decoder::new(bytes).unwrap().read_to_end(&mut out).unwrap();
        out
    }

    /// Bytes that zstd cannot shrink (xorshift), the same for a seed.
    pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[derive(Debug, Clone)]
    enum Step {
        Compressed(Vec<u8>),
        Stored(Vec<Vec<u8>>),
    }

    fn step() -> impl Strategy<Value = Step> {
        let bytes = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..3000),
            (0usize..300_000, any::<u64>()).prop_map(|(n, s)| noise(n, s)),
            (0usize..200_000).prop_map(|n| vec![b'a'; n]),
        ];
        prop_oneof![
            bytes.clone().prop_map(Step::Compressed),
            proptest::collection::vec(bytes, 0..3).prop_map(Step::Stored),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Any mix of compressed and stored writes decodes, with the zstd
        /// library's own decoder, to the bytes written, in order.
        #[test]
        fn any_mix_decodes_to_what_was_written(steps in proptest::collection::vec(step(), 0..8)) {
            let mut c = Compressor::new(Vec::new()).unwrap();
            let mut expected = Vec::new();
            for s in &steps {
                match s {
                    Step::Compressed(b) => {
                        c.write_all(b).unwrap();
                        expected.extend_from_slice(b);
                    }
                    Step::Stored(parts) => {
                        let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
                        c.store(&parts).unwrap();
                        parts.iter().for_each(|p| expected.extend_from_slice(p));
                    }
                }
            }
            let out = c.finish().unwrap();
            prop_assert_eq!(decode(&out), expected);
        }
    }

    #[test]
    fn the_probe_stores_noise_and_compresses_text_and_zeros() {
        let mut c = Compressor::new(Vec::new()).unwrap();
        assert!(!c.probe(&noise(64 * 1024, 7)));
        let text = "the quick brown fox jumps over the lazy dog, again and again; ".repeat(1100);
        assert!(c.probe(text.as_bytes()));
        assert!(c.probe(&vec![0u8; 64 * 1024]));
        assert!(c.probe(&[]));
        assert!(!c.probe(&noise(100, 3)));
    }

    /// After n blocks in a row that did not shrink, the next
    /// min(2^(n-1), MAX_SKIP) are stored unprobed; a block that shrinks, or
    /// a new member, starts over.
    #[test]
    fn probes_back_off_over_noise_and_resume_on_text_or_a_new_member() {
        let mut c = Compressor::new(Vec::new()).unwrap();
        let text = "a line of a log file, repeated\n".repeat(4096);
        let noise = noise(64 * 1024, 5);
        let mut probed = Vec::new();
        for i in 0..200 {
            let skipping = c.skip > 0;
            assert!(!c.worth_compressing(&noise));
            if !skipping {
                probed.push(i);
            }
        }
        assert_eq!(&probed[..7], &[0, 2, 5, 10, 19, 36, 69]);
        assert_eq!(probed.len(), 10, "{probed:?}");
        // Text right after noise waits for the skipped blocks, then shrinks.
        let waited = (0..=MAX_SKIP).take_while(|_| !c.worth_compressing(text.as_bytes())).count();
        assert!(waited as u32 <= MAX_SKIP, "{waited}");
        assert!(c.worth_compressing(text.as_bytes()));
        assert!(!c.worth_compressing(&noise));
        c.probe_again();
        assert!(c.worth_compressing(text.as_bytes()));
    }

    #[test]
    fn stored_noise_costs_a_few_bytes_a_block_and_text_still_shrinks() {
        let mut c = Compressor::new(Vec::new()).unwrap();
        let block = noise(64 * 1024, 11);
        for _ in 0..16 {
            c.store(&[&[0, 1, 0, 0], &block]).unwrap();
        }
        let text = "a line of a log file, repeated\n".repeat(4096);
        c.write_all(text.as_bytes()).unwrap();
        let out = c.finish().unwrap();
        let raw = 16 * (4 + block.len());
        assert!(out.len() < raw + 16 * 16 + text.len() / 10, "{} bytes", out.len());
        let decoded = decode(&out);
        assert_eq!(decoded.len(), raw + text.len());
        assert_eq!(&decoded[raw..], text.as_bytes());
    }
}
