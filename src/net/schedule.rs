//! TLS 1.3's application traffic secrets, as `Records` needs them for key updates: caught
//! from rustls while it derives them, and moved on here (RFC 8446 §7.2, §7.3).
//!
//! rustls's kernel API hands over keys, not the secrets they come from, and keeps its whole
//! key schedule for the updates (about 560 bytes a connection, for something most sessions
//! never do). The secrets reach the application only through a `KeyLog` (made for
//! SSLKEYLOGFILE), told inside the `process` call that derives them, on the calling thread.
//! `Tls` clears what was caught before each drive of a connection and takes it after, with no
//! await between: so what it takes is that connection's.

use std::cell::RefCell;
use std::sync::Arc;

use rustls::crypto::tls13::{Hkdf, OkmBlock};
use rustls::KeyLog;

const CLIENT: &str = "CLIENT_TRAFFIC_SECRET_0";
const SERVER: &str = "SERVER_TRAFFIC_SECRET_0";

/// The longest hash a TLS 1.3 suite uses (SHA-384).
const MAX_HASH: usize = 48;

/// One direction's traffic secret (wiped when dropped; never copied).
pub(super) struct TrafficSecret {
    bytes: [u8; MAX_HASH],
    len: u8,
}

/// What a handshake's `KeyLog` calls told.
#[derive(Default)]
pub(super) struct Caught {
    pub client: Option<TrafficSecret>,
    pub server: Option<TrafficSecret>,
}

thread_local! {
    static CAUGHT: RefCell<Caught> = RefCell::default();
}

/// Has a TLS config tell its connections' traffic secrets to `Records`: set with
/// `enable_secret_extraction` (`tls::hand_over`), on the configs whose connections are handed
/// over and only on those.
pub(super) fn catcher() -> Arc<dyn KeyLog> {
    Arc::new(Catcher)
}

#[derive(Debug)]
struct Catcher;

impl KeyLog for Catcher {
    fn will_log(&self, label: &str) -> bool {
        label == CLIENT || label == SERVER
    }

    fn log(&self, label: &str, _client_random: &[u8], secret: &[u8]) {
        let Some(secret) = TrafficSecret::new(secret) else {
            return;
        };
        CAUGHT.with_borrow_mut(|caught| match label {
            CLIENT => caught.client = Some(secret),
            SERVER => caught.server = Some(secret),
            _ => {}
        });
    }
}

/// Drops whatever this thread caught (before a connection is driven).
pub(super) fn forget() {
    CAUGHT.with_borrow_mut(|caught| *caught = Caught::default());
}

/// What this thread caught since `forget`, if anything.
pub(super) fn take() -> Option<Box<Caught>> {
    let caught = CAUGHT.with_borrow_mut(std::mem::take);
    (caught.client.is_some() || caught.server.is_some()).then(|| Box::new(caught))
}

impl TrafficSecret {
    pub(super) fn new(bytes: &[u8]) -> Option<TrafficSecret> {
        let mut secret = TrafficSecret {
            bytes: [0; MAX_HASH],
            len: u8::try_from(bytes.len()).ok().filter(|&n| usize::from(n) <= MAX_HASH)?,
        };
        secret.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(secret)
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The next secret: HKDF-Expand-Label(secret, "traffic upd", "", Hash.length).
    pub(super) fn next(&self, hkdf: &dyn Hkdf) -> TrafficSecret {
        let mut next = TrafficSecret {
            bytes: [0; MAX_HASH],
            len: self.len,
        };
        let len = usize::from(self.len);
        self.expand_label(hkdf, b"traffic upd", &mut next.bytes[..len]);
        next
    }

    /// The record key and IV this secret gives (`key` as long as the cipher's key).
    pub(super) fn key_and_iv(&self, hkdf: &dyn Hkdf, key: &mut [u8], iv: &mut [u8]) {
        self.expand_label(hkdf, b"key", key);
        self.expand_label(hkdf, b"iv", iv);
    }

    /// HKDF-Expand-Label(secret, label, "", out.len()) (RFC 8446 §7.1).
    fn expand_label(&self, hkdf: &dyn Hkdf, label: &[u8], out: &mut [u8]) {
        let length = (out.len() as u16).to_be_bytes();
        let label_len = [(b"tls13 ".len() + label.len()) as u8];
        let info: [&[u8]; 5] = [&length, &label_len, b"tls13 ", label, &[0]];
        let expander = hkdf.expander_for_okm(&OkmBlock::new(self.as_bytes()));
        // Every length asked for here is at most the hash's, far under HKDF's 255 blocks.
        expander
            .expand_slice(&info, out)
            .expect("an HKDF output shorter than 255 blocks");
    }
}

impl Drop for TrafficSecret {
    fn drop(&mut self) {
        for b in self.bytes.iter_mut() {
            // SAFETY: `b` is a valid, aligned, exclusive reference to a byte.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}
