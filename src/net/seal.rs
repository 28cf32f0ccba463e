//! A TLS record sealed from the pieces of its plaintext, where they lie.
//!
//! ring's AEAD seals in place only: a record's plaintext had to be copied into the output
//! first, so a download's bytes were read from the store's map, written into the record and
//! read again to be encrypted. AWS-LC's cipher interface (EVP) takes the plaintext in pieces
//! and writes the ciphertext elsewhere, so each byte is read once, from the map, by the
//! cipher (BENCHMARKS.md, "TLS records sealed from where their bytes lie"). Records are
//! still opened by ring, in place: what a client sends is already in our buffer, and the
//! tests' clients, which seal with ring, check every record sealed here.

use std::ffi::c_int;
use std::ptr::{self, NonNull};

use aws_lc_sys::{
    EVP_CIPHER_CTX_ctrl, EVP_CIPHER_CTX_free, EVP_CIPHER_CTX_new, EVP_EncryptFinal_ex, EVP_EncryptInit_ex,
    EVP_EncryptUpdate, EVP_aes_128_gcm, EVP_aes_256_gcm, EVP_chacha20_poly1305, EVP_CIPHER, EVP_CIPHER_CTX,
    EVP_CTRL_AEAD_GET_TAG,
};

pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

/// The AEADs TLS records are sealed with here (RFC 8446 §B.4; RFC 5288, 7905 for TLS 1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20Poly1305,
}

impl Cipher {
    pub fn key_len(self) -> usize {
        match self {
            Cipher::Aes128Gcm => 16,
            Cipher::Aes256Gcm | Cipher::Chacha20Poly1305 => 32,
        }
    }

    fn evp(self) -> *const EVP_CIPHER {
        // SAFETY: these return pointers to static cipher descriptions; no arguments, no state.
        unsafe {
            match self {
                Cipher::Aes128Gcm => EVP_aes_128_gcm(),
                Cipher::Aes256Gcm => EVP_aes_256_gcm(),
                Cipher::Chacha20Poly1305 => EVP_chacha20_poly1305(),
            }
        }
    }
}

/// A record could not be sealed: AWS-LC refused a step (out of memory, a length it cannot
/// take), or the plaintext given was not the length the record was said to have.
#[derive(Debug, thiserror::Error)]
#[error("the record could not be sealed")]
pub struct SealFailed;

fn check(ret: c_int) -> Result<(), SealFailed> {
    if ret == 1 {
        Ok(())
    } else {
        Err(SealFailed)
    }
}

/// One key, expanded (about 1 KiB, in AWS-LC's own allocation): seals one record after another.
pub struct Sealer {
    ctx: NonNull<EVP_CIPHER_CTX>,
}

// SAFETY: the context is owned by this value alone and AWS-LC keeps no reference to the thread
// that made it, so it may be used and freed on another thread.
unsafe impl Send for Sealer {}

impl Sealer {
    pub fn new(cipher: Cipher, key: &[u8]) -> Result<Sealer, SealFailed> {
        if key.len() != cipher.key_len() {
            return Err(SealFailed);
        }
        // SAFETY: no arguments; the result is checked for null.
        let ctx = NonNull::new(unsafe { EVP_CIPHER_CTX_new() }).ok_or(SealFailed)?;
        let sealer = Sealer { ctx };
        // SAFETY: `ctx` is a live context; `key` holds the cipher's key length (checked
        // above), which is all AWS-LC reads from it; no IV yet (each record sets its own).
        check(unsafe {
            EVP_EncryptInit_ex(
                sealer.ctx.as_ptr(),
                cipher.evp(),
                ptr::null_mut(),
                key.as_ptr(),
                ptr::null(),
            )
        })?;
        Ok(sealer)
    }

    /// Starts a record under `nonce`, authenticating `aad`; its plaintext then goes in
    /// through `Sealing::update`, in order, and `Sealing::finish` gives the tag.
    pub fn record(&mut self, nonce: &[u8; NONCE_LEN], aad: &[u8]) -> Result<Sealing<'_>, SealFailed> {
        let ctx = self.ctx.as_ptr();
        let aad_len = c_int::try_from(aad.len()).map_err(|_| SealFailed)?;
        let mut written: c_int = 0;
        // SAFETY: `ctx` is live and has its key; the nonce has the ciphers' default IV length
        // (12 bytes), which is what AWS-LC reads from it.
        check(unsafe { EVP_EncryptInit_ex(ctx, ptr::null(), ptr::null_mut(), ptr::null(), nonce.as_ptr()) })?;
        // SAFETY: `ctx` is live with a record started; a null output makes the input
        // additional data, `aad_len` bytes read from `aad`.
        check(unsafe { EVP_EncryptUpdate(ctx, ptr::null_mut(), &mut written, aad.as_ptr(), aad_len) })?;
        Ok(Sealing { sealer: self })
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        // SAFETY: the context was made by EVP_CIPHER_CTX_new and is freed once, here; AWS-LC
        // wipes the expanded key as it frees it.
        unsafe { EVP_CIPHER_CTX_free(self.ctx.as_ptr()) };
    }
}

/// A record under way.
pub struct Sealing<'s> {
    sealer: &'s mut Sealer,
}

impl Sealing<'_> {
    /// Encrypts the next `plain` bytes of the record into `sealed`, of the same length.
    pub fn update(&mut self, plain: &[u8], sealed: &mut [u8]) -> Result<(), SealFailed> {
        if plain.len() != sealed.len() {
            return Err(SealFailed);
        }
        let len = c_int::try_from(plain.len()).map_err(|_| SealFailed)?;
        let mut written: c_int = 0;
        // SAFETY: the context is live with a record started; AWS-LC reads `len` bytes of
        // `plain` and, these ciphers being stream ciphers, writes exactly as many into
        // `sealed`, which has that length; the two do not overlap (one is borrowed shared,
        // the other exclusively).
        check(unsafe {
            EVP_EncryptUpdate(
                self.sealer.ctx.as_ptr(),
                sealed.as_mut_ptr(),
                &mut written,
                plain.as_ptr(),
                len,
            )
        })?;
        if written != len {
            return Err(SealFailed);
        }
        Ok(())
    }

    /// Ends the record: its tag into `tag`.
    pub fn finish(self, tag: &mut [u8]) -> Result<(), SealFailed> {
        if tag.len() != TAG_LEN {
            return Err(SealFailed);
        }
        let ctx = self.sealer.ctx.as_ptr();
        let mut written: c_int = 0;
        // SAFETY: the context is live with a record started. A stream cipher has nothing
        // left to write at the end (`written` stays 0, checked below); were it to write, the
        // output given is `tag`, `TAG_LEN` bytes, more than a block.
        check(unsafe { EVP_EncryptFinal_ex(ctx, tag.as_mut_ptr(), &mut written) })?;
        if written != 0 {
            return Err(SealFailed);
        }
        // SAFETY: the record is finished; AWS-LC writes the tag, `TAG_LEN` bytes, into `tag`,
        // which has that length.
        check(unsafe { EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN as c_int, tag.as_mut_ptr().cast()) })
    }
}

#[cfg(test)]
mod tests {
    use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};

    use super::{Cipher, Sealer, TAG_LEN};

    fn ring_seal(cipher: Cipher, key: &[u8], nonce: [u8; 12], aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let algorithm = match cipher {
            Cipher::Aes128Gcm => &aead::AES_128_GCM,
            Cipher::Aes256Gcm => &aead::AES_256_GCM,
            Cipher::Chacha20Poly1305 => &aead::CHACHA20_POLY1305,
        };
        let key = LessSafeKey::new(UnboundKey::new(algorithm, key).unwrap());
        let mut sealed = plain.to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut sealed)
            .unwrap();
        sealed
    }

    /// Records sealed from pieces, cut anywhere, are ring's records of the whole: for every
    /// cipher, one key sealing several records in turn, with empty pieces among them.
    #[test]
    fn pieces_seal_as_ring_seals_the_whole() {
        let plain: Vec<u8> = (0..40_000u32).map(|i| (i * 31 + 7) as u8).collect();
        let cuts: [&[usize]; 5] = [&[], &[0], &[1, 17, 18], &[16_384, 16_385], &[5, 5, 4_096, 39_999]];
        for cipher in [Cipher::Aes128Gcm, Cipher::Aes256Gcm, Cipher::Chacha20Poly1305] {
            let key: Vec<u8> = (0..cipher.key_len() as u8).collect();
            let mut sealer = Sealer::new(cipher, &key).unwrap();
            for (n, cut) in cuts.iter().enumerate() {
                for len in [0, 1, 15, 16, 17, 300, 16_385, 40_000] {
                    let nonce = [n as u8; 12];
                    let aad = [23, 3, 3, (len >> 8) as u8, len as u8];
                    let text = &plain[..len];
                    let mut sealed = vec![0; len + TAG_LEN];
                    let (body, tag) = sealed.split_at_mut(len);
                    let mut record = sealer.record(&nonce, &aad).unwrap();
                    let mut at = 0;
                    for &c in cut.iter().filter(|&&c| c <= len).chain([&len]) {
                        record.update(&text[at..c], &mut body[at..c]).unwrap();
                        at = c;
                    }
                    record.finish(tag).unwrap();
                    assert_eq!(
                        sealed,
                        ring_seal(cipher, &key, nonce, &aad, text),
                        "{cipher:?} {len} {cut:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn wrong_lengths_are_refused() {
        assert!(Sealer::new(Cipher::Aes128Gcm, &[0; 32]).is_err());
        let mut sealer = Sealer::new(Cipher::Aes128Gcm, &[0; 16]).unwrap();
        let mut record = sealer.record(&[0; 12], &[]).unwrap();
        assert!(record.update(&[1, 2, 3], &mut [0; 2]).is_err());
        let mut record = sealer.record(&[0; 12], &[]).unwrap();
        record.update(&[1, 2, 3], &mut [0; 3]).unwrap();
        assert!(record.finish(&mut [0; 8]).is_err());
    }
}
