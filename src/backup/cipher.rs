//! The AEAD that seals an archive's chunks (`stream.rs`), computed with
//! ring: AES-256-GCM on a CPU with AES instructions, XChaCha20-Poly1305
//! elsewhere. Each is a sound STREAM instance (AES-GCM is the construction's
//! own first example), and each archive's key is its own (Argon2id under a
//! fresh salt). Here AES-256-GCM seals a GiB in 0.10 s of a core and ring's
//! ChaCha20-Poly1305 in 0.42 s (the portable `chacha20poly1305` crate: 1.05
//! s), which is a fifth of a backup's CPU; on a CPU without AES instructions
//! (a Raspberry Pi 4) ChaCha20 is the faster. The envelope names the cipher
//! (`Cipher`), so every tomo reads both; archives of format 1 are all
//! XChaCha20-Poly1305.
//!
//! Both use 12-byte nonces `head(7) || counter(4) || last(1)`:
//! - AES-256-GCM under the archive's key, `head` the first 7 bytes of the
//!   archive's nonce prefix.
//! - XChaCha20-Poly1305 under key `k` and nonce `n` (24 bytes) is by
//!   definition the IETF ChaCha20-Poly1305 (RFC 8439) under the subkey
//!   `HChaCha20(k, n[..16])` with the nonce `0000 || n[16..24]`. Every nonce
//!   of an archive starts with the same 16 bytes (its prefix), so the subkey
//!   is derived once per archive, and `head` is `0000 || prefix[16..19]`. A
//!   test pins the equality with the portable crate's `XChaCha20Poly1305`.

use chacha20poly1305::Key;
use ring::aead::{AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};
use serde::{Deserialize, Serialize};

use super::stream::PREFIX_LEN;

pub const TAG_LEN: usize = 16;

/// The AEAD of an archive, as its envelope names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cipher {
    /// Format 1's only cipher, and the one written without AES instructions.
    #[default]
    #[serde(rename = "xchacha20-poly1305")]
    XChaCha20Poly1305,
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
}

impl Cipher {
    /// The faster of the two on this CPU.
    pub fn for_this_machine() -> Cipher {
        if hardware_aes() { Cipher::Aes256Gcm } else { Cipher::XChaCha20Poly1305 }
    }
}

/// Whether the CPU has AES and carry-less multiplication instructions
/// (what makes AES-GCM fast and constant-time).
fn hardware_aes() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes") && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// The sealing and opening key of one archive (its cipher, key and nonce prefix).
pub struct ArchiveCipher {
    key: LessSafeKey,
    /// The nonce's bytes before the counter.
    head: [u8; 7],
}

impl ArchiveCipher {
    pub fn new(cipher: Cipher, key: &Key, prefix: &[u8; PREFIX_LEN]) -> ArchiveCipher {
        let mut head = [0u8; 7];
        // A 32-byte key is always accepted by both.
        let unbound = match cipher {
            Cipher::Aes256Gcm => {
                head.copy_from_slice(&prefix[..7]);
                UnboundKey::new(&AES_256_GCM, key.as_slice())
            }
            Cipher::XChaCha20Poly1305 => {
                let mut first = [0u8; 16];
                first.copy_from_slice(&prefix[..16]);
                let mut subkey = chacha20::hchacha::<chacha20::R20>(key, &first.into());
                let unbound = UnboundKey::new(&CHACHA20_POLY1305, subkey.as_slice());
                zeroize::Zeroize::zeroize(subkey.as_mut_slice());
                head[4..].copy_from_slice(&prefix[16..]);
                unbound
            }
        };
        let key = LessSafeKey::new(unbound.expect("both ciphers take a 32-byte key"));
        ArchiveCipher { key, head }
    }

    /// The nonce of chunk `counter`.
    fn nonce(&self, counter: u32, last: bool) -> Nonce {
        let mut n = [0u8; 12];
        n[..7].copy_from_slice(&self.head);
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
            let ours = ArchiveCipher::new(Cipher::XChaCha20Poly1305, &key, &prefix);
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
    fn a_changed_counter_flag_aad_byte_prefix_or_cipher_fails_to_open() {
        let key = Key::from([9u8; 32]);
        for (kind, other_kind) in
            [(Cipher::Aes256Gcm, Cipher::XChaCha20Poly1305), (Cipher::XChaCha20Poly1305, Cipher::Aes256Gcm)]
        {
            let cipher = ArchiveCipher::new(kind, &key, &[3u8; PREFIX_LEN]);
            let mut sealed = b"some plaintext".to_vec();
            let tag = cipher.seal(5, false, b"aad", &mut sealed).unwrap();
            sealed.extend_from_slice(&tag);
            assert_eq!(cipher.open(6, false, b"aad", &mut sealed.clone()), None);
            assert_eq!(cipher.open(5, true, b"aad", &mut sealed.clone()), None);
            assert_eq!(cipher.open(5, false, b"aae", &mut sealed.clone()), None);
            let mut flipped = sealed.clone();
            flipped[0] ^= 1;
            assert_eq!(cipher.open(5, false, b"aad", &mut flipped), None);
            let other = ArchiveCipher::new(kind, &key, &[4u8; PREFIX_LEN]);
            assert_eq!(other.open(5, false, b"aad", &mut sealed.clone()), None);
            let other = ArchiveCipher::new(other_kind, &key, &[3u8; PREFIX_LEN]);
            assert_eq!(other.open(5, false, b"aad", &mut sealed.clone()), None);
            assert_eq!(cipher.open(5, false, b"aad", &mut sealed), Some(14), "{kind:?}");
        }
    }

    /// AES-256-GCM is ring's under the archive's key with the nonce
    /// `prefix[..7] || counter || last`; the bytes of a fixed chunk are
    /// pinned, so that archives written before still read.
    #[test]
    fn aes_256_gcm_uses_the_archive_key_and_the_prefix_head_as_nonce() {
        let key = Key::from([0x42u8; 32]);
        let prefix: [u8; PREFIX_LEN] = std::array::from_fn(|i| i as u8);
        let ours = ArchiveCipher::new(Cipher::Aes256Gcm, &key, &prefix);
        let mut a = b"tomo archive chunk".to_vec();
        let tag = ours.seal(0x0102_0304, true, b"envelope", &mut a).unwrap();

        let direct = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.as_slice()).unwrap());
        let nonce = [0, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 1];
        let mut b = b"tomo archive chunk".to_vec();
        let tag_b = direct
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(b"envelope"), &mut b)
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(tag.as_slice(), tag_b.as_ref());
        a.extend_from_slice(&tag);
        assert_eq!(crate::model::spec::hex(&a), PINNED);
    }

    const PINNED: &str = "80a1b8702f745ff7a85dfdd1fe8aba2ddc1a889225f34ff42d4f317347e758463b23";

    #[test]
    fn the_envelope_names_the_cipher_and_format_1_means_xchacha() {
        assert_eq!(serde_json::to_string(&Cipher::Aes256Gcm).unwrap(), "\"aes-256-gcm\"");
        assert_eq!(serde_json::to_string(&Cipher::XChaCha20Poly1305).unwrap(), "\"xchacha20-poly1305\"");
        assert_eq!(Cipher::default(), Cipher::XChaCha20Poly1305);
        assert!(serde_json::from_str::<Cipher>("\"rot13\"").is_err());
    }
}
