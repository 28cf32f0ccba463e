//! A server connection's TLS records after the handshake, sealed and opened here.
//!
//! rustls makes the handshake; once it is over it hands over the traffic keys and sequence
//! numbers (its kernel API, made for kTLS), and TLS 1.3's traffic secrets come from
//! `schedule`, which also makes the keys of a key update: nothing of rustls is kept. The
//! records themselves are protected here: RFC 8446 §5 for TLS 1.3, RFC 5246
//! §6.2.3.3 with RFC 5288 (AES-GCM) and RFC 7905 (ChaCha20-Poly1305) for TLS 1.2. Two reasons:
//! - a parked session keeps its keys as 44 bytes a direction, not rustls's connection with
//!   both keys expanded (`rest` drops the expansions; the next record makes them again);
//! - a download is read once, from where its bytes lie, by the cipher that seals it into the
//!   record (`seal`); rustls copied pieces shorter than a record twice, and ring, which
//!   opens the records here, seals in place only.
//!
//! After the handshake a client may send application data, alerts and (TLS 1.3) KeyUpdate;
//! anything else ends the connection with the alert the RFCs name.

use std::borrow::Cow;
use std::io::{self, IoSlice};

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use rustls::crypto::tls13::Hkdf;
use rustls::{ConnectionTrafficSecrets, ExtractedSecrets, SupportedCipherSuite};

use super::handoff::{bad, take, take_slice};
use super::schedule::{Caught, TrafficSecret};
use super::seal::{Cipher, SealFailed, Sealer, Sealing, NONCE_LEN, TAG_LEN as TAG};
use super::tls::{Out, Stage};

const HEADER: usize = 5;
/// A record's plaintext at most (RFC 8446 §5.1, RFC 5246 §6.2.1).
const MAX_PLAIN: usize = 16 * 1024;
/// TLS 1.2 AES-GCM sends the nonce's last 8 bytes before the ciphertext (RFC 5288 §3).
const EXPLICIT_NONCE: usize = 8;
/// rustls's bound on records in a row that carry nothing (empty data, warning alerts).
const MAX_EMPTY_IN_A_ROW: u8 = 32;

const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;

const WARNING: u8 = 1;
const FATAL: u8 = 2;
const CLOSE_NOTIFY: u8 = 0;
const UNEXPECTED_MESSAGE: u8 = 10;
const BAD_RECORD_MAC: u8 = 20;
const RECORD_OVERFLOW: u8 = 22;
const INTERNAL_ERROR: u8 = 80;
const ILLEGAL_PARAMETER: u8 = 47;
const DECODE_ERROR: u8 = 50;
const USER_CANCELED: u8 = 90;

const KEY_UPDATE: u8 = 24;
/// A KeyUpdate message whole: type, 3-byte length (1), request_update.
const KEY_UPDATE_LEN: usize = 5;

/// ringmail hands over server connections only (a client would have to take the server's
/// session tickets too, which arrive after its handshake); the tests and the `tls_records`
/// fuzz target play a client with one.
pub struct Records {
    suite: SupportedCipherSuite,
    tls13: bool,
    tx: Direction,
    rx: Direction,
    /// Records one key may seal: TLS 1.3 then updates it, TLS 1.2 closes.
    limit: u64,
    /// The start of a KeyUpdate whose rest is in the next record (RFC 8446 §5.1 lets
    /// handshake messages be split over records).
    partial: [u8; KEY_UPDATE_LEN],
    partial_len: u8,
    /// The peer asked for a key update and has not had it yet.
    update_owed: bool,
    empty_in_a_row: u8,
}

/// One direction's key, and the number of the next record under it.
struct Direction {
    secret: Secret,
    /// TLS 1.3: the traffic secret the key came from, for the next one.
    traffic: Option<TrafficSecret>,
    seq: u64,
    /// The key expanded for opening (about 540 bytes) or sealing (about 1 KiB): made when a
    /// record needs it, dropped while the connection rests. A direction does only one.
    opener: Option<Box<LessSafeKey>>,
    sealer: Option<Sealer>,
}

struct Secret {
    cipher: Cipher,
    key: [u8; 32],
    iv: [u8; NONCE_LEN],
}

/// What ended the connection, and the alert the peer is told (none when the peer sent one).
struct Fault {
    alert: Option<u8>,
    why: Cow<'static, str>,
}

fn fault(alert: u8, why: &'static str) -> Fault {
    Fault {
        alert: Some(alert),
        why: why.into(),
    }
}

impl Records {
    /// Takes over from rustls: the keys and sequence numbers its kernel API extracted, the
    /// suite, and for TLS 1.3 the traffic secrets `schedule` caught (the server's and the
    /// client's; which one this side sends under, `server` says).
    pub fn new(
        secrets: ExtractedSecrets,
        suite: SupportedCipherSuite,
        caught: Option<Box<Caught>>,
        server: bool,
    ) -> io::Result<Records> {
        let unusable = |f: Fault| io::Error::other(f.why);
        let mut tx = Direction::new(secrets.tx).map_err(unusable)?;
        let mut rx = Direction::new(secrets.rx).map_err(unusable)?;
        if let SupportedCipherSuite::Tls13(_) = suite {
            let Caught { client, server: ours } = *caught.unwrap_or_default();
            let (sent, received) = if server { (ours, client) } else { (client, ours) };
            tx.traffic = sent;
            rx.traffic = received;
        }
        Records::with_keys(suite, tx, rx).map_err(unusable)
    }

    /// Records under `tx` and `rx`, between records, their TLS 1.3 traffic secrets checked
    /// against their keys.
    fn with_keys(suite: SupportedCipherSuite, tx: Direction, rx: Direction) -> Result<Records, Fault> {
        let (limit, hkdf) = match suite {
            SupportedCipherSuite::Tls13(s) => (s.common.confidentiality_limit, Some(s.hkdf_provider)),
            SupportedCipherSuite::Tls12(s) => (s.common.confidentiality_limit, None),
        };
        if let Some(hkdf) = hkdf {
            for direction in [&tx, &rx] {
                direction.check(hkdf)?;
            }
        }
        Ok(Records {
            tls13: hkdf.is_some(),
            tx,
            rx,
            suite,
            limit,
            partial: [0; KEY_UPDATE_LEN],
            partial_len: 0,
            update_owed: false,
            empty_in_a_row: 0,
        })
    }

    /// "TLSv1.3 with cipher TLS13_AES_128_GCM_SHA256".
    pub fn description(&self) -> String {
        let version = if self.tls13 { "TLSv1.3" } else { "TLSv1.2" };
        format!("{version} with cipher {:?}", self.suite.suite())
    }

    /// The connection waits: the expanded keys go (the secrets stay).
    pub fn rest(&mut self) {
        for direction in [&mut self.tx, &mut self.rx] {
            direction.opener = None;
            direction.sealer = None;
        }
    }

    /// Opens the whole records in `incoming` (their data into `plain`, what they ask for —
    /// a key update's answer — into `out`), drops them, and then seals `data` into `out`.
    /// A fault puts its alert into `out` and is an error.
    pub fn run(
        &mut self,
        incoming: &mut Vec<u8>,
        plain: &mut Vec<u8>,
        out: &mut Out,
        data: Option<&[IoSlice<'_>]>,
        peer_closed: &mut bool,
    ) -> io::Result<Stage> {
        let mut done = self.read(incoming, plain, peer_closed);
        if done.is_ok() && self.update_owed {
            done = self.update_tx(out);
        }
        if let (Ok(()), Some(data)) = (&done, data) {
            done = self.seal(data, out);
        }
        match done {
            Ok(()) if *peer_closed => Ok(Stage::PeerClosed),
            Ok(()) => Ok(Stage::Open),
            Err(fault) => {
                if let Some(alert) = fault.alert {
                    // The alert is the last word: if it cannot be sealed, the close says it.
                    let _ = self.seal_record(ALERT, &[FATAL, alert], out);
                }
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("TLS: {}", fault.why),
                ))
            }
        }
    }

    /// Puts close_notify into `out`.
    pub fn close_notify(&mut self, out: &mut Out) -> io::Result<()> {
        self.seal_record(ALERT, &[WARNING, CLOSE_NOTIFY], out)
            .map_err(|f| io::Error::other(f.why))
    }

    fn read(&mut self, incoming: &mut Vec<u8>, plain: &mut Vec<u8>, peer_closed: &mut bool) -> Result<(), Fault> {
        let mut at = 0;
        let result = loop {
            if *peer_closed {
                // Nothing after close_notify is read (RFC 8446 §6.1).
                at = incoming.len();
                break Ok(());
            }
            let rest = &mut incoming[at..];
            if rest.len() < HEADER {
                break Ok(());
            }
            // The header is judged before the body is waited for: bytes that are not TLS
            // fail at once.
            if !self.expected(rest[0]) {
                break Err(fault(UNEXPECTED_MESSAGE, "unexpected record type"));
            }
            let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
            if len > self.max_ciphertext() {
                break Err(fault(RECORD_OVERFLOW, "record too long"));
            }
            if rest.len() < HEADER + len {
                break Ok(());
            }
            let (header, body) = rest[..HEADER + len].split_at_mut(HEADER);
            at += HEADER + len;
            if let Err(f) = self.take_record(header, body, plain, peer_closed) {
                break Err(f);
            }
        };
        if at == incoming.len() {
            *incoming = Vec::new();
        } else {
            incoming.drain(..at);
        }
        result
    }

    /// A record type a peer may send now. TLS 1.3 hides the type inside; a change_cipher_spec
    /// after the handshake is never right in either (RFC 8446 §5).
    fn expected(&self, outer: u8) -> bool {
        match outer {
            APPLICATION_DATA => true,
            ALERT | HANDSHAKE => !self.tls13,
            _ => false,
        }
    }

    fn max_ciphertext(&self) -> usize {
        // RFC 8446 §5.2 and RFC 5246 §6.2.3.
        MAX_PLAIN + if self.tls13 { 256 } else { 2048 }
    }

    fn take_record(
        &mut self,
        header: &[u8],
        body: &mut [u8],
        plain: &mut Vec<u8>,
        peer_closed: &mut bool,
    ) -> Result<(), Fault> {
        let (kind, payload) = self.open(header, body)?;
        if self.partial_len > 0 && kind != HANDSHAKE {
            // Handshake messages are not interleaved with other records (RFC 8446 §5.1).
            return Err(fault(UNEXPECTED_MESSAGE, "a record inside a handshake message"));
        }
        match kind {
            APPLICATION_DATA if payload.is_empty() => self.empty_record(),
            APPLICATION_DATA => {
                self.empty_in_a_row = 0;
                plain.extend_from_slice(payload);
                Ok(())
            }
            ALERT => self.alert(payload, peer_closed),
            HANDSHAKE => self.handshake(payload),
            _ => Err(fault(UNEXPECTED_MESSAGE, "unexpected content type")),
        }
    }

    /// Decrypts a record in place: its content type and plaintext.
    fn open<'b>(&mut self, header: &[u8], body: &'b mut [u8]) -> Result<(u8, &'b [u8]), Fault> {
        let seq = self.rx.next_seq()?;
        let tls13 = self.tls13;
        let explicit = !tls13 && self.rx.secret.explicit_nonce();
        let mut nonce = self.rx.secret.nonce(seq);
        let sealed = if explicit {
            if body.len() < EXPLICIT_NONCE {
                return Err(fault(BAD_RECORD_MAC, "record too short"));
            }
            let (sent, sealed) = body.split_at_mut(EXPLICIT_NONCE);
            nonce[4..].copy_from_slice(sent);
            sealed
        } else {
            body
        };
        let Some(plain_len) = sealed.len().checked_sub(TAG) else {
            return Err(fault(BAD_RECORD_MAC, "record too short"));
        };
        let key = self.rx.opener();
        let nonce = Nonce::assume_unique_for_key(nonce);
        if tls13 {
            let inner = key
                .open_in_place(nonce, Aad::from(header), sealed)
                .map_err(|_| fault(BAD_RECORD_MAC, "record failed to decrypt"))?;
            if inner.len() > MAX_PLAIN + 1 {
                return Err(fault(RECORD_OVERFLOW, "record too long"));
            }
            // The content type is the last byte that is not padding (RFC 8446 §5.4).
            let end = inner
                .iter()
                .rposition(|&b| b != 0)
                .ok_or(fault(UNEXPECTED_MESSAGE, "record without a content type"))?;
            Ok((inner[end], &inner[..end]))
        } else {
            if plain_len > MAX_PLAIN {
                return Err(fault(RECORD_OVERFLOW, "record too long"));
            }
            let aad = tls12_aad(seq, header[0], plain_len);
            let inner = key
                .open_in_place(nonce, Aad::from(aad), sealed)
                .map_err(|_| fault(BAD_RECORD_MAC, "record failed to decrypt"))?;
            Ok((header[0], inner))
        }
    }

    fn empty_record(&mut self) -> Result<(), Fault> {
        self.empty_in_a_row += 1;
        if self.empty_in_a_row > MAX_EMPTY_IN_A_ROW {
            return Err(fault(UNEXPECTED_MESSAGE, "too many empty records"));
        }
        Ok(())
    }

    fn alert(&mut self, payload: &[u8], peer_closed: &mut bool) -> Result<(), Fault> {
        // One alert a record, whole (RFC 8446 §6).
        let &[level, description] = payload else {
            return Err(fault(DECODE_ERROR, "an alert of the wrong length"));
        };
        match description {
            CLOSE_NOTIFY => {
                *peer_closed = true;
                Ok(())
            }
            // TLS 1.3 reads every other alert but user_canceled as fatal (RFC 8446 §6.2).
            USER_CANCELED if self.tls13 => self.empty_record(),
            _ if !self.tls13 && level == WARNING => self.empty_record(),
            _ => Err(Fault {
                alert: None,
                why: format!("the peer sent alert {description}").into(),
            }),
        }
    }

    /// Handshake messages after the handshake: a TLS 1.3 client may send KeyUpdate and
    /// nothing else (no post-handshake authentication is asked for); TLS 1.2 renegotiation
    /// is not offered.
    fn handshake(&mut self, mut payload: &[u8]) -> Result<(), Fault> {
        if !self.tls13 {
            return Err(fault(UNEXPECTED_MESSAGE, "renegotiation is not supported"));
        }
        if payload.is_empty() {
            return Err(fault(UNEXPECTED_MESSAGE, "an empty handshake record"));
        }
        while !payload.is_empty() {
            let have = usize::from(self.partial_len);
            let n = (KEY_UPDATE_LEN - have).min(payload.len());
            self.partial[have..have + n].copy_from_slice(&payload[..n]);
            self.partial_len += n as u8;
            payload = &payload[n..];
            let got = &self.partial[..usize::from(self.partial_len)];
            if got[0] != KEY_UPDATE {
                return Err(fault(UNEXPECTED_MESSAGE, "a handshake message after the handshake"));
            }
            if got.len() >= 4 && got[1..4] != [0, 0, 1] {
                return Err(fault(DECODE_ERROR, "a KeyUpdate of the wrong length"));
            }
            if got.len() == KEY_UPDATE_LEN {
                let request = got[4];
                self.partial_len = 0;
                if !payload.is_empty() {
                    // New keys start at a record's start (RFC 8446 §5.1).
                    return Err(fault(UNEXPECTED_MESSAGE, "data after a KeyUpdate in its record"));
                }
                self.key_update(request)?;
            }
        }
        Ok(())
    }

    /// The peer's KeyUpdate (RFC 8446 §4.6.3): its records now come under the next key; if
    /// it asked, ours will too, after one KeyUpdate of our own (however many it asked for).
    fn key_update(&mut self, request: u8) -> Result<(), Fault> {
        match request {
            0 => {}
            1 => self.update_owed = true,
            _ => return Err(fault(ILLEGAL_PARAMETER, "a KeyUpdate asking for neither")),
        }
        self.advance_key(false)
    }

    /// Sends a KeyUpdate (update_not_requested) under the current key and moves to the next.
    fn update_tx(&mut self, out: &mut Out) -> Result<(), Fault> {
        self.update_owed = false;
        self.protect(
            HANDSHAKE,
            KEY_UPDATE_LEN,
            &mut Pieces::one(&[KEY_UPDATE, 0, 0, 1, 0]),
            out,
        )?;
        self.advance_key(true)
    }

    /// Moves one direction (sending if `tx`) to the next key of TLS 1.3's schedule.
    fn advance_key(&mut self, tx: bool) -> Result<(), Fault> {
        let SupportedCipherSuite::Tls13(suite) = self.suite else {
            return Err(fault(INTERNAL_ERROR, "no key update in TLS 1.2"));
        };
        let direction = if tx { &mut self.tx } else { &mut self.rx };
        *direction = direction.next(suite.hkdf_provider)?;
        Ok(())
    }

    /// `data` as application data in full-size records, each filled where it is sealed.
    fn seal(&mut self, data: &[IoSlice<'_>], out: &mut Out) -> Result<(), Fault> {
        let total: usize = data.iter().map(|d| d.len()).sum();
        out.reserve(super::tls::ciphertext_room(total));
        let mut pieces = Pieces::new(data);
        let mut left = total;
        while left > 0 {
            let n = left.min(MAX_PLAIN);
            self.seal_pieces(APPLICATION_DATA, n, &mut pieces, out)?;
            left -= n;
        }
        Ok(())
    }

    fn seal_record(&mut self, kind: u8, bytes: &[u8], out: &mut Out) -> Result<(), Fault> {
        self.seal_pieces(kind, bytes.len(), &mut Pieces::one(bytes), out)
    }

    /// `protect`, after updating a TLS 1.3 key that has sealed its share.
    fn seal_pieces(&mut self, kind: u8, len: usize, pieces: &mut Pieces<'_>, out: &mut Out) -> Result<(), Fault> {
        if self.tx.seq >= self.limit {
            if !self.tls13 {
                return Err(fault(INTERNAL_ERROR, "the key has sealed all it may"));
            }
            self.update_tx(out)?;
        }
        self.protect(kind, len, pieces, out)
    }

    /// One record of `len` bytes taken from `pieces`, sealed into `out`.
    fn protect(&mut self, kind: u8, len: usize, pieces: &mut Pieces<'_>, out: &mut Out) -> Result<(), Fault> {
        let seq = self.tx.next_seq()?;
        let explicit = if !self.tls13 && self.tx.secret.explicit_nonce() {
            EXPLICIT_NONCE
        } else {
            0
        };
        let inner = len + usize::from(self.tls13);
        let sealed_len = explicit + inner + TAG;
        let record = &mut out.room(HEADER + sealed_len)[..HEADER + sealed_len];
        let (header, body) = record.split_at_mut(HEADER);
        let outer = if self.tls13 { APPLICATION_DATA } else { kind };
        let [hi, lo] = (sealed_len as u16).to_be_bytes();
        header.copy_from_slice(&[outer, 3, 3, hi, lo]);
        let nonce = self.tx.secret.nonce(seq);
        let (sent, body) = body.split_at_mut(explicit);
        sent.copy_from_slice(&nonce[4..4 + explicit]);
        let (text, tag) = body.split_at_mut(inner);
        let aad = tls12_aad(seq, kind, len);
        let aad = if self.tls13 { &*header } else { &aad[..] };
        let sealed = (|| {
            let mut record = self.tx.sealer()?.record(&nonce, aad)?;
            pieces.seal(&mut record, &mut text[..len])?;
            if self.tls13 {
                record.update(&[kind], &mut text[len..])?;
            }
            record.finish(tag)
        })();
        sealed.map_err(|_| fault(INTERNAL_ERROR, "sealing failed"))?;
        out.used += HEADER + sealed_len;
        Ok(())
    }
}

/// TLS 1.2's additional data: sequence number, type, version, plaintext length.
fn tls12_aad(seq: u64, kind: u8, len: usize) -> [u8; 13] {
    let mut aad = [0; 13];
    aad[..8].copy_from_slice(&seq.to_be_bytes());
    aad[8] = kind;
    aad[9..11].copy_from_slice(&[3, 3]);
    aad[11..].copy_from_slice(&(len as u16).to_be_bytes());
    aad
}

impl Direction {
    fn new((seq, secrets): (u64, ConnectionTrafficSecrets)) -> Result<Direction, Fault> {
        let (cipher, key, iv) = match &secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (Cipher::Aes128Gcm, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (Cipher::Aes256Gcm, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (Cipher::Chacha20Poly1305, key, iv),
            _ => return Err(fault(INTERNAL_ERROR, "a cipher ringmail does not seal")),
        };
        let mut secret = Secret {
            cipher,
            key: [0; 32],
            iv: iv
                .as_ref()
                .try_into()
                .map_err(|_| fault(INTERNAL_ERROR, "an IV of the wrong length"))?,
        };
        let key = key.as_ref();
        if key.len() != cipher.key_len() {
            return Err(fault(INTERNAL_ERROR, "a key of the wrong length"));
        }
        secret.key[..key.len()].copy_from_slice(key);
        Ok(Direction {
            secret,
            traffic: None,
            seq,
            opener: None,
            sealer: None,
        })
    }

    /// The direction under the key after this one (RFC 8446 §7.2), from record 0; the key
    /// is expanded when a record needs it.
    fn next(&self, hkdf: &dyn Hkdf) -> Result<Direction, Fault> {
        let traffic = self
            .traffic
            .as_ref()
            .ok_or(fault(INTERNAL_ERROR, "no traffic secret for the next key"))?
            .next(hkdf);
        Ok(Direction {
            secret: Secret::from_traffic(self.secret.cipher, &traffic, hkdf),
            traffic: Some(traffic),
            seq: 0,
            opener: None,
            sealer: None,
        })
    }

    /// Whether the traffic secret is the one the key came from: what updates it must be.
    fn check(&self, hkdf: &dyn Hkdf) -> Result<(), Fault> {
        let traffic = self
            .traffic
            .as_ref()
            .ok_or(fault(INTERNAL_ERROR, "the handshake's traffic secrets were not caught"))?;
        let derived = Secret::from_traffic(self.secret.cipher, traffic, hkdf);
        if derived.key != self.secret.key || derived.iv != self.secret.iv {
            return Err(fault(INTERNAL_ERROR, "a traffic secret that is not the connection's"));
        }
        Ok(())
    }

    fn next_seq(&mut self) -> Result<u64, Fault> {
        let seq = self.seq;
        self.seq = seq
            .checked_add(1)
            .ok_or(fault(INTERNAL_ERROR, "sequence numbers used up"))?;
        Ok(seq)
    }

    fn opener(&mut self) -> &LessSafeKey {
        self.opener.get_or_insert_with(|| Box::new(self.secret.opener()))
    }

    fn sealer(&mut self) -> Result<&mut Sealer, SealFailed> {
        let sealer = match self.sealer.take() {
            Some(sealer) => sealer,
            None => Sealer::new(self.secret.cipher, self.secret.key())?,
        };
        Ok(self.sealer.insert(sealer))
    }
}

impl Secret {
    /// The key and IV a TLS 1.3 traffic secret gives (RFC 8446 §7.3).
    fn from_traffic(cipher: Cipher, traffic: &TrafficSecret, hkdf: &dyn Hkdf) -> Secret {
        let mut secret = Secret {
            cipher,
            key: [0; 32],
            iv: [0; NONCE_LEN],
        };
        traffic.key_and_iv(hkdf, &mut secret.key[..cipher.key_len()], &mut secret.iv);
        secret
    }

    fn key(&self) -> &[u8] {
        &self.key[..self.cipher.key_len()]
    }

    fn opener(&self) -> LessSafeKey {
        let algorithm = match self.cipher {
            Cipher::Aes128Gcm => &aead::AES_128_GCM,
            Cipher::Aes256Gcm => &aead::AES_256_GCM,
            Cipher::Chacha20Poly1305 => &aead::CHACHA20_POLY1305,
        };
        // The length was checked when the secret was made, the only way this fails.
        LessSafeKey::new(UnboundKey::new(algorithm, self.key()).expect("a key of the cipher's length"))
    }

    /// The record's nonce: the IV with the sequence number in its last 8 bytes XORed in
    /// (RFC 8446 §5.3; TLS 1.2 AES-GCM sends the same last 8 bytes as its explicit nonce).
    fn nonce(&self, seq: u64) -> [u8; NONCE_LEN] {
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
            *n ^= s;
        }
        nonce
    }

    fn explicit_nonce(&self) -> bool {
        self.cipher != Cipher::Chacha20Poly1305
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Volatile, so the wipe is not optimised away as a dead store.
        for b in self.key.iter_mut().chain(self.iv.iter_mut()) {
            // SAFETY: `b` is a valid, aligned, exclusive reference to a byte.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

/// The bytes of a write, taken from the front record by record.
struct Pieces<'a> {
    /// What is left of the piece being taken.
    current: &'a [u8],
    rest: &'a [IoSlice<'a>],
}

impl<'a> Pieces<'a> {
    fn new(data: &'a [IoSlice<'a>]) -> Pieces<'a> {
        Pieces {
            current: &[],
            rest: data,
        }
    }

    fn one(bytes: &'a [u8]) -> Pieces<'a> {
        Pieces {
            current: bytes,
            rest: &[],
        }
    }

    /// Seals the next `dst.len()` bytes into `dst`, taken where they lie.
    fn seal(&mut self, record: &mut Sealing<'_>, mut dst: &mut [u8]) -> Result<(), SealFailed> {
        while !dst.is_empty() {
            if self.current.is_empty() {
                let Some((first, rest)) = self.rest.split_first() else {
                    return Err(SealFailed);
                };
                self.current = first;
                self.rest = rest;
                continue;
            }
            let n = self.current.len().min(dst.len());
            let (now, later) = dst.split_at_mut(n);
            record.update(&self.current[..n], now)?;
            dst = later;
            self.current = &self.current[n..];
        }
        Ok(())
    }
}

/// A session's records passed on whole from a front end to the back end it relays to
/// (`net::handoff`): the suite, and each direction's key, IV, sequence number and (TLS 1.3)
/// traffic secret. Only between records: not while a KeyUpdate is half read or one is owed.
impl Records {
    /// Appends the state to `out`; false (and nothing appended) if it cannot be passed now.
    pub(super) fn export(&self, out: &mut Vec<u8>) -> bool {
        if self.partial_len != 0 || self.update_owed {
            return false;
        }
        out.extend_from_slice(&u16::from(self.suite.suite()).to_be_bytes());
        for direction in [&self.tx, &self.rx] {
            direction.export(out);
        }
        true
    }

    /// The state `export` wrote, from the front of `input`, under one of `suites` (the
    /// back end's own: a suite it does not offer is refused).
    pub(super) fn import(input: &mut &[u8], suites: &[SupportedCipherSuite]) -> io::Result<Records> {
        let id = rustls::CipherSuite::from(u16::from_be_bytes(take(input)?));
        let suite = *suites
            .iter()
            .find(|s| s.suite() == id)
            .ok_or_else(|| bad("a cipher suite this server does not offer"))?;
        let tx = Direction::import(input)?;
        let rx = Direction::import(input)?;
        let tls12 = matches!(suite, SupportedCipherSuite::Tls12(_));
        if tls12 && (tx.traffic.is_some() || rx.traffic.is_some()) {
            return Err(bad("a traffic secret in TLS 1.2"));
        }
        if tx.secret.cipher != rx.secret.cipher {
            return Err(bad("two ciphers"));
        }
        Records::with_keys(suite, tx, rx).map_err(|f| bad(&f.why))
    }
}

const CIPHERS: [Cipher; 3] = [Cipher::Aes128Gcm, Cipher::Aes256Gcm, Cipher::Chacha20Poly1305];

impl Direction {
    fn export(&self, out: &mut Vec<u8>) {
        let cipher = CIPHERS.iter().position(|c| *c == self.secret.cipher).unwrap_or(0);
        out.push(cipher as u8);
        out.extend_from_slice(self.secret.key());
        out.extend_from_slice(&self.secret.iv);
        out.extend_from_slice(&self.seq.to_be_bytes());
        let traffic = self.traffic.as_ref().map_or(&[][..], |t| t.as_bytes());
        out.push(traffic.len() as u8);
        out.extend_from_slice(traffic);
    }

    fn import(input: &mut &[u8]) -> io::Result<Direction> {
        let [cipher] = take(input)?;
        let cipher = *CIPHERS
            .get(usize::from(cipher))
            .ok_or_else(|| bad("an unknown cipher"))?;
        let mut secret = Secret {
            cipher,
            key: [0; 32],
            iv: [0; NONCE_LEN],
        };
        let key_len = cipher.key_len();
        secret.key[..key_len].copy_from_slice(take_slice(input, key_len)?);
        secret.iv = take(input)?;
        let seq = u64::from_be_bytes(take(input)?);
        let [traffic_len] = take(input)?;
        let traffic = match traffic_len {
            0 => None,
            n => Some(
                TrafficSecret::new(take_slice(input, usize::from(n))?)
                    .ok_or_else(|| bad("a traffic secret too long"))?,
            ),
        };
        Ok(Direction {
            secret,
            traffic,
            seq,
            opener: None,
            sealer: None,
        })
    }
}

/// For the tests and the `tls_records` fuzz target, which play a client with these.
impl Records {
    /// Seals any record, right or wrong, as a peer might.
    pub(super) fn seal_any(&mut self, kind: u8, bytes: &[u8], out: &mut Out) {
        if let Err(f) = self.protect(kind, bytes.len(), &mut Pieces::one(bytes), out) {
            panic!("{}", f.why);
        }
    }

    /// Opens one record, whatever it holds: its content type and plaintext.
    pub(super) fn open_any(&mut self, record: &mut [u8]) -> (u8, Vec<u8>) {
        let (header, body) = record.split_at_mut(HEADER);
        match self.open(header, body) {
            Ok((kind, payload)) => (kind, payload.to_vec()),
            Err(f) => panic!("{}", f.why),
        }
    }

    /// Moves to the next key in one direction without a KeyUpdate.
    pub(super) fn next_key(&mut self, tx: bool) {
        if let Err(f) = self.advance_key(tx) {
            panic!("{}", f.why);
        }
    }

    #[cfg(test)]
    pub(super) fn set_limit(&mut self, limit: u64) {
        self.limit = limit;
    }
}

#[cfg(test)]
mod tests {
    /// What every TLS session past its handshake holds (boxed): its keys, sequence numbers
    /// and traffic secrets; rustls's kernel connection, kept for key updates, was 560 bytes
    /// more.
    #[test]
    fn records_are_small() {
        assert!(std::mem::size_of::<super::Records>() <= 300);
    }
}
