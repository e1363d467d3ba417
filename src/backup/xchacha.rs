//! XChaCha20-Poly1305 for the nonces of one archive, computed with ring's
//! ChaCha20-Poly1305 (vectorised assembly, about twice as fast here as the
//! portable `chacha20poly1305` crate, whose XChaCha20-Poly1305 it equals).
//!
//! XChaCha20-Poly1305 under key `k` and nonce `n` (24 bytes) is by definition
//! the IETF ChaCha20-Poly1305 (RFC 8439) under the subkey
//! `HChaCha20(k, n[..16])` with the nonce `0000 || n[16..24]`. Every nonce of
//! an archive starts with the same 16 bytes (its prefix), so the subkey is
//! derived once per archive. A test pins the equality with the portable
//! crate's `XChaCha20Poly1305`, so archives written before read the same.

use chacha20poly1305::Key;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};

use super::stream::PREFIX_LEN;

pub const TAG_LEN: usize = 16;

/// The sealing and opening key of one archive (its key and nonce prefix).
pub struct ArchiveCipher {
    key: LessSafeKey,
    /// The nonce's bytes after the 16 that went into the subkey.
    prefix_tail: [u8; PREFIX_LEN - 16],
}

impl ArchiveCipher {
    pub fn new(key: &Key, prefix: &[u8; PREFIX_LEN]) -> ArchiveCipher {
        let mut head = [0u8; 16];
        head.copy_from_slice(&prefix[..16]);
        let mut subkey = chacha20::hchacha::<chacha20::R20>(key, &head.into());
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, subkey.as_slice());
        zeroize::Zeroize::zeroize(subkey.as_mut_slice());
        // A 32-byte key is always accepted by ChaCha20-Poly1305.
        let key = LessSafeKey::new(unbound.expect("ChaCha20-Poly1305 takes a 32-byte key"));
        let mut prefix_tail = [0u8; PREFIX_LEN - 16];
        prefix_tail.copy_from_slice(&prefix[16..]);
        ArchiveCipher { key, prefix_tail }
    }

    /// The IETF nonce of the archive's nonce `prefix || counter || last`.
    fn nonce(&self, counter: u32, last: bool) -> Nonce {
        let mut n = [0u8; 12];
        n[4..7].copy_from_slice(&self.prefix_tail);
        n[7..11].copy_from_slice(&counter.to_be_bytes());
        n[11] = u8::from(last);
        Nonce::assume_unique_for_key(n)
    }

    /// Encrypts `data` in place; its tag.
    pub fn seal(&self, counter: u32, last: bool, aad: &[u8], data: &mut [u8]) -> Option<[u8; TAG_LEN]> {
        let tag: Tag = self.key.seal_in_place_separate_tag(self.nonce(counter, last), Aad::from(aad), data).ok()?;
        tag.as_ref().try_into().ok()
    }

    /// Decrypts `sealed` (ciphertext then tag) in place; the plaintext's
    /// length, or `None` when the tag does not match.
    pub fn open(&self, counter: u32, last: bool, aad: &[u8], sealed: &mut [u8]) -> Option<usize> {
        self.key.open_in_place(self.nonce(counter, last), Aad::from(aad), sealed).ok().map(|plain| plain.len())
    }
}

#[cfg(test)]
mod tests {
    use chacha20poly1305::aead::{AeadInOut, KeyInit};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};
    use proptest::prelude::*;

    use super::*;

    fn portable_nonce(prefix: &[u8; PREFIX_LEN], counter: u32, last: bool) -> XNonce {
        let mut n = [0u8; 24];
        n[..PREFIX_LEN].copy_from_slice(prefix);
        n[PREFIX_LEN..23].copy_from_slice(&counter.to_be_bytes());
        n[23] = u8::from(last);
        XNonce::from(n)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Sealing equals the portable crate's XChaCha20-Poly1305 byte for
        /// byte, and each side opens what the other sealed.
        #[test]
        fn equals_the_portable_xchacha20_poly1305(
            key in any::<[u8; 32]>(),
            prefix in any::<[u8; PREFIX_LEN]>(),
            counter in any::<u32>(),
            last in any::<bool>(),
            aad in proptest::collection::vec(any::<u8>(), 0..64),
            data in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let key = Key::from(key);
            let ours = ArchiveCipher::new(&key, &prefix);
            let portable = XChaCha20Poly1305::new(&key);
            let nonce = portable_nonce(&prefix, counter, last);

            let mut a = data.clone();
            let tag = ours.seal(counter, last, &aad, &mut a).unwrap();
            let mut b = data.clone();
            let tag_b = portable.encrypt_inout_detached(&nonce, &aad, b.as_mut_slice().into()).unwrap();
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(tag.as_slice(), tag_b.as_slice());

            let mut sealed = a.clone();
            sealed.extend_from_slice(&tag);
            prop_assert_eq!(ours.open(counter, last, &aad, &mut sealed), Some(data.len()));
            prop_assert_eq!(&sealed[..data.len()], data.as_slice());
            prop_assert!(portable.decrypt_inout_detached(&nonce, &aad, b.as_mut_slice().into(), &tag_b).is_ok());
            prop_assert_eq!(&b, &data);
        }
    }

    #[test]
    fn a_changed_counter_flag_aad_or_byte_fails_to_open() {
        let key = Key::from([9u8; 32]);
        let cipher = ArchiveCipher::new(&key, &[3u8; PREFIX_LEN]);
        let mut sealed = b"some plaintext".to_vec();
        let tag = cipher.seal(5, false, b"aad", &mut sealed).unwrap();
        sealed.extend_from_slice(&tag);
        assert_eq!(cipher.open(6, false, b"aad", &mut sealed.clone()), None);
        assert_eq!(cipher.open(5, true, b"aad", &mut sealed.clone()), None);
        assert_eq!(cipher.open(5, false, b"aae", &mut sealed.clone()), None);
        let mut flipped = sealed.clone();
        flipped[0] ^= 1;
        assert_eq!(cipher.open(5, false, b"aad", &mut flipped), None);
        let other = ArchiveCipher::new(&key, &[4u8; PREFIX_LEN]);
        assert_eq!(other.open(5, false, b"aad", &mut sealed.clone()), None);
        assert_eq!(cipher.open(5, false, b"aad", &mut sealed), Some(14));
    }
}
