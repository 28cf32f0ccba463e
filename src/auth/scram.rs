//! SCRAM-SHA-256, server side (RFC 5802 + RFC 7677): deriving stored
//! credentials from a password, and the state machine for one exchange
//! (parse client-first, build server-first, verify client-final, build
//! server-final).
//!
//! It never does I/O, reads clocks, looks up accounts or stores anything: the
//! caller fetches [`ScramCredentials`], moves the bytes and decides what an
//! error means on its wire. Client input never causes a panic.

use std::num::NonZeroU32;
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::{digest, hmac, pbkdf2};

/// RFC 7677 §4: the iteration count SHOULD be at least 4096. Unknown users are
/// also shown this count, so real accounts should use it too (see
/// [`ScramServer::server_first`]).
pub const DEFAULT_ITERATIONS: u32 = 4096;
/// Longest authcid/authzid accepted, in bytes after unescaping.
pub const MAX_NAME_LEN: usize = 255;
const SALT_LEN: usize = 16;
// Legitimate SCRAM messages are a few hundred bytes; the cap bounds the work a
// hostile client can make us do before any verification.
const MAX_MESSAGE_LEN: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// The client sent something that is not valid SCRAM for this exchange.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// Well-formed exchange, but the proof is wrong or the user is unknown.
    #[error("authentication failed")]
    AuthFailed,
    /// The password is rejected by SASLprep (RFC 4013 prohibited output, or empty).
    #[error("password rejected by SASLprep: {0}")]
    InvalidPassword(&'static str),
    /// A server-side parameter (stored credentials, server nonce) is unusable.
    #[error("invalid SCRAM parameter: {0}")]
    InvalidParameter(&'static str),
    /// A method was called in the wrong state (caller bug, or a replayed step).
    #[error("SCRAM step called out of order")]
    OutOfOrder,
}

/// What the server stores per account (RFC 5802 §3), a record of the store's.
pub use crate::store::records::ScramCredentials;

/// How SCRAM keys are made and written down; the store only keeps them.
pub trait ScramKeys: Sized {
    fn derive(password: &str, salt: &[u8], iterations: u32) -> Result<Self, ScramError>;
    fn generate(password: &str) -> Result<Self, ScramError>;
    fn to_rfc5803(&self) -> String;
    fn from_rfc5803(text: &str) -> Result<Self, ScramError>;
}

impl ScramKeys for ScramCredentials {
    /// Derives keys from a password with PBKDF2-HMAC-SHA256 (RFC 5802 §3,
    /// RFC 7677 §3) after the SASLprep subset described at [`saslprep`].
    fn derive(password: &str, salt: &[u8], iterations: u32) -> Result<Self, ScramError> {
        let iters = NonZeroU32::new(iterations).ok_or(ScramError::InvalidParameter("iteration count is zero"))?;
        if salt.is_empty() {
            return Err(ScramError::InvalidParameter("salt is empty"));
        }
        let salted = salted_password(&saslprep(password)?, salt, iters);
        Ok(Self {
            salt: salt.to_vec(),
            iterations,
            stored_key: sha256(&hmac_sha256(&salted, b"Client Key")),
            server_key: hmac_sha256(&salted, b"Server Key"),
        })
    }

    /// Random 16-byte salt and [`DEFAULT_ITERATIONS`] (RFC 7677 §4 minimum).
    fn generate(password: &str) -> Result<Self, ScramError> {
        let salt: [u8; SALT_LEN] = rand::random();
        Self::derive(password, &salt, DEFAULT_ITERATIONS)
    }

    /// The RFC 5803 form a directory stores: `SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey`
    /// (base64), as Dovecot and OpenLDAP's authPassword keep SCRAM secrets.
    fn to_rfc5803(&self) -> String {
        format!(
            "{RFC5803_SCHEME}${}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }

    fn from_rfc5803(text: &str) -> Result<Self, ScramError> {
        let bad = ScramError::InvalidParameter("not SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey");
        let rest = text
            .trim()
            .strip_prefix(RFC5803_SCHEME)
            .and_then(|r| r.strip_prefix('$'));
        let (info, value) = rest.and_then(|r| r.split_once('$')).ok_or(bad.clone())?;
        let (iterations, salt) = info.split_once(':').ok_or(bad.clone())?;
        let (stored, server) = value.split_once(':').ok_or(bad.clone())?;
        let key = |b64: &str| -> Option<[u8; 32]> { B64.decode(b64).ok()?.try_into().ok() };
        let credentials = ScramCredentials {
            iterations: iterations.parse().map_err(|_| bad.clone())?,
            salt: B64.decode(salt).map_err(|_| bad.clone())?,
            stored_key: key(stored).ok_or(bad.clone())?,
            server_key: key(server).ok_or(bad.clone())?,
        };
        if credentials.iterations == 0 || credentials.salt.is_empty() {
            return Err(bad);
        }
        Ok(credentials)
    }
}

/// The scheme name of RFC 5803's storage form.
const RFC5803_SCHEME: &str = "SCRAM-SHA-256";

/// A fresh server nonce part: 18 random bytes in base64, i.e. 24 printable
/// characters that never contain ',' (RFC 5802 §5.1 "nonce").
pub fn random_server_nonce() -> String {
    B64.encode(rand::random::<[u8; 18]>())
}

/// RFC 4013 SASLprep, the subset this server implements:
/// - maps non-ASCII spaces (RFC 3454 C.1.2) to U+0020 and removes the
///   "commonly mapped to nothing" characters (B.1);
/// - rejects every prohibited class of RFC 4013 §2.3 (C.1.2 is mapped away;
///   C.2.1, C.2.2, C.3, C.4, C.6, C.7, C.8, C.9; C.5 cannot occur in `str`)
///   and an empty result.
///
/// Not implemented: NFKC normalisation, the unassigned-code-point check and
/// the bidi rule (they need Unicode tables we do not carry). ASCII passwords are
/// unaffected; a password whose NFKC form differs from itself (full-width
/// letters, ligatures, decomposed accents) will not match a conforming client.
pub fn saslprep(input: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        let cp = u32::from(c);
        // C.1.2 is checked before B.1 because U+200B is listed in both and
        // RFC 4013 §2.1 lists the space mapping first.
        if matches!(cp, 0xA0 | 0x1680 | 0x2000..=0x200B | 0x202F | 0x205F | 0x3000) {
            out.push(' ');
        } else if is_mapped_to_nothing(cp) {
            continue;
        } else if is_prohibited(cp) {
            return Err(ScramError::InvalidPassword("prohibited character"));
        } else {
            out.push(c);
        }
    }
    if out.is_empty() {
        return Err(ScramError::InvalidPassword("empty after SASLprep"));
    }
    Ok(out)
}

// RFC 3454 B.1, "commonly mapped to nothing".
fn is_mapped_to_nothing(cp: u32) -> bool {
    matches!(cp, 0xAD | 0x34F | 0x1806 | 0x180B..=0x180D | 0x200B..=0x200D | 0x2060)
        || matches!(cp, 0xFE00..=0xFE0F | 0xFEFF)
}

// RFC 4013 §2.3 prohibited output, by RFC 3454 table.
fn is_prohibited(cp: u32) -> bool {
    matches!(cp,
        0x00..=0x1F | 0x7F // C.2.1
        | 0x80..=0x9F | 0x6DD | 0x70F | 0x180E | 0x200C | 0x200D | 0x2028 | 0x2029
        | 0x2060..=0x2063 | 0xFEFF | 0xFFF9..=0xFFFC | 0x1D173..=0x1D17A // C.2.2
        | 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD // C.3
        | 0xFDD0..=0xFDEF // C.4 (the plane-final pairs are below)
        | 0xFFFD // C.6 (FFF9-FFFC are in C.2.2)
        | 0x2FF0..=0x2FFB // C.7
        | 0x340 | 0x341 | 0x200E | 0x200F | 0x202A..=0x202E | 0x206A..=0x206F // C.8
        | 0xE0001 | 0xE0020..=0xE007F) // C.9
        || cp & 0xFFFE == 0xFFFE // C.4: U+xFFFE and U+xFFFF on every plane
}

fn salted_password(prepped: &str, salt: &[u8], iters: NonZeroU32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, iters, salt, prepped.as_bytes(), &mut out);
    out
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    to_array(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data).as_ref())
}

fn sha256(data: &[u8]) -> [u8; 32] {
    to_array(digest::digest(&digest::SHA256, data).as_ref())
}

// Only ever fed SHA-256 outputs, which are always 32 bytes.
fn to_array(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(bytes);
    out
}

// Per-process secret: keys the fake salts of unknown users and blinds the
// constant-time comparison. Random so salts cannot be predicted offline.
fn process_key() -> &'static hmac::Key {
    static KEY: OnceLock<hmac::Key> = OnceLock::new();
    KEY.get_or_init(|| hmac::Key::new(hmac::HMAC_SHA256, &rand::random::<[u8; 32]>()))
}

// ring's constant_time module is deprecated; hmac::verify is its supported
// constant-time comparison, so compare both values under a secret MAC key.
fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let tag = hmac::sign(process_key(), b);
    hmac::verify(process_key(), a, tag.as_ref()).is_ok()
}

struct Pending {
    /// client-first-message-bare "," server-first-message ","
    auth_prefix: String,
    nonce: String,
    stored_key: [u8; 32],
    server_key: [u8; 32],
    known_user: bool,
}

enum State {
    AwaitServerFirst,
    AwaitClientFinal(Box<Pending>),
    Done,
}

/// One server-side SCRAM-SHA-256 exchange. Single use: after
/// [`client_final`](Self::client_final) returns anything but `OutOfOrder`, every
/// further call returns `OutOfOrder`.
pub struct ScramServer {
    gs2_header: String,
    client_first_bare: String,
    client_nonce: String,
    authcid: String,
    authzid: Option<String>,
    state: State,
}

impl ScramServer {
    /// Parses client-first-message (RFC 5802 §7) and returns the server plus the
    /// authcid (saslname unescaped: "=2C" -> ',', "=3D" -> '='). Accepts gs2
    /// flags "n" and "y"; rejects "p=" because SCRAM-SHA-256-PLUS is never
    /// advertised; exposes the optional authzid via [`authzid`](Self::authzid).
    pub fn start(client_first: &[u8]) -> Result<(ScramServer, String), ScramError> {
        let msg = as_message(client_first)?;
        let (flag, rest) = msg.split_once(',').ok_or(malformed("no gs2 header"))?;
        match flag {
            // RFC 5802 §6: "y" means the client could bind but thinks we can't,
            // which is true while -PLUS is not advertised, so it is accepted.
            "n" | "y" => {}
            _ if flag.starts_with("p=") => return Err(malformed("channel binding unsupported")),
            _ => return Err(malformed("invalid gs2 cbind flag")),
        }
        let (authz, bare) = rest.split_once(',').ok_or(malformed("truncated gs2 header"))?;
        let authzid = match authz {
            "" => None,
            a => Some(saslname(attr(Some(a), "a=", "invalid authzid")?)?),
        };
        let gs2_header = msg[..msg.len() - bare.len()].to_owned();
        let mut fields = bare.split(',');
        let user = fields.next();
        // RFC 5802 §5.1: "m" marks a mandatory extension; we support none.
        if user.is_some_and(|u| u.starts_with("m=")) {
            return Err(malformed("mandatory extension unsupported"));
        }
        let authcid = saslname(attr(user, "n=", "missing username")?)?;
        let nonce = attr(fields.next(), "r=", "missing nonce")?;
        check_nonce(nonce)?;
        check_extensions(fields)?;
        let server = ScramServer {
            gs2_header,
            client_first_bare: bare.to_owned(),
            client_nonce: nonce.to_owned(),
            authcid: authcid.clone(),
            authzid,
            state: State::AwaitServerFirst,
        };
        Ok((server, authcid))
    }

    pub fn authcid(&self) -> &str {
        &self.authcid
    }

    pub fn authzid(&self) -> Option<&str> {
        self.authzid.as_deref()
    }

    /// Builds server-first-message (RFC 5802 §7). `server_nonce` is the part
    /// appended to the client nonce: use [`random_server_nonce`]; it is a
    /// parameter so tests can replay fixed vectors. It must be printable ASCII
    /// without ','.
    ///
    /// `creds == None` means the user is unknown: the reply then carries a salt
    /// derived from the username under a per-process secret (stable within the
    /// process, like a real account's) and [`DEFAULT_ITERATIONS`], and the
    /// exchange fails with `AuthFailed` at the proof, never earlier.
    pub fn server_first(
        &mut self,
        creds: Option<&ScramCredentials>,
        server_nonce: &str,
    ) -> Result<Vec<u8>, ScramError> {
        if !matches!(self.state, State::AwaitServerFirst) {
            return Err(ScramError::OutOfOrder);
        }
        check_nonce(server_nonce)
            .map_err(|_| ScramError::InvalidParameter("server nonce must be printable, no ','"))?;
        let (salt, iterations, stored_key, server_key) = match creds {
            Some(c) if c.salt.is_empty() || c.iterations == 0 => {
                return Err(ScramError::InvalidParameter("unusable credentials"))
            }
            Some(c) => (c.salt.clone(), c.iterations, c.stored_key, c.server_key),
            None => {
                let label = format!("fake-salt\0{}", self.authcid);
                let salt = hmac::sign(process_key(), label.as_bytes()).as_ref()[..SALT_LEN].to_vec();
                (salt, DEFAULT_ITERATIONS, rand::random(), rand::random())
            }
        };
        let nonce = format!("{}{}", self.client_nonce, server_nonce);
        let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(&salt));
        self.state = State::AwaitClientFinal(Box::new(Pending {
            auth_prefix: format!("{},{server_first},", self.client_first_bare),
            nonce,
            stored_key,
            server_key,
            known_user: creds.is_some(),
        }));
        Ok(server_first.into_bytes())
    }

    /// Verifies client-final-message and returns server-final-message
    /// (`v=<ServerSignature>`). Malformed input and channel-binding or nonce
    /// mismatches give `Malformed`; a wrong proof or unknown user `AuthFailed`.
    pub fn client_final(&mut self, msg: &[u8]) -> Result<Vec<u8>, ScramError> {
        let pending = match std::mem::replace(&mut self.state, State::Done) {
            State::AwaitClientFinal(p) => p,
            other => {
                self.state = other;
                return Err(ScramError::OutOfOrder);
            }
        };
        let msg = as_message(msg)?;
        // RFC 5802 §7: the proof is last; values never contain ',' so the final
        // ",p=" splits off exactly client-final-message-without-proof.
        let (without_proof, proof) = msg.rsplit_once(",p=").ok_or(malformed("missing proof"))?;
        let mut fields = without_proof.split(',');
        let cb = attr(fields.next(), "c=", "missing channel binding")?;
        // RFC 5802 §6: without channel binding, c= is exactly base64(gs2-header).
        if B64.decode(cb).ok().as_deref() != Some(self.gs2_header.as_bytes()) {
            return Err(malformed("channel binding mismatch"));
        }
        let nonce = attr(fields.next(), "r=", "missing nonce")?;
        // RFC 5802 §5.1: the nonce must be the combined one we issued.
        if nonce != pending.nonce {
            return Err(malformed("nonce mismatch"));
        }
        check_extensions(fields)?;
        let proof: [u8; 32] = B64
            .decode(proof)
            .ok()
            .and_then(|p| p.try_into().ok())
            .ok_or(malformed("invalid proof encoding"))?;

        // RFC 5802 §3: ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage),
        // and the client knows the password iff H(ClientKey) == StoredKey.
        let auth_message = format!("{}{without_proof}", pending.auth_prefix);
        let signature = hmac_sha256(&pending.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(signature).map(|(p, s)| p ^ s).collect();
        let proof_ok = ct_eq(&sha256(&client_key), &pending.stored_key);
        if !(proof_ok & pending.known_user) {
            return Err(ScramError::AuthFailed);
        }
        let server_signature = hmac_sha256(&pending.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

fn malformed(why: &'static str) -> ScramError {
    ScramError::Malformed(why)
}

fn attr<'a>(field: Option<&'a str>, key: &str, why: &'static str) -> Result<&'a str, ScramError> {
    field.and_then(|f| f.strip_prefix(key)).ok_or(malformed(why))
}

fn as_message(bytes: &[u8]) -> Result<&str, ScramError> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(malformed("message too long"));
    }
    std::str::from_utf8(bytes).map_err(|_| malformed("message is not UTF-8"))
}

// RFC 5802 §7 saslname: 1*(value-safe-char / "=2C" / "=3D"); the caller's
// split on ',' already excludes commas.
fn saslname(raw: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        out.push(match tail.get(..3) {
            Some("=2C") => ',',
            Some("=3D") => '=',
            _ => return Err(malformed("invalid '=' escape in name")),
        });
        rest = &tail[3..];
    }
    out.push_str(rest);
    if out.is_empty() || out.len() > MAX_NAME_LEN || out.contains('\0') {
        return Err(malformed("name empty, too long or contains NUL"));
    }
    Ok(out)
}

// RFC 5802 §7: printable = %x21-2B / %x2D-7E.
fn check_nonce(nonce: &str) -> Result<(), ScramError> {
    let printable = |b: u8| (0x21..=0x7E).contains(&b) && b != b',';
    if nonce.is_empty() || !nonce.bytes().all(printable) {
        return Err(malformed("invalid nonce"));
    }
    Ok(())
}

// RFC 5802 §7: extensions = attr-val *("," attr-val); unknown optional
// extensions are ignored, but they must still be well-formed.
fn check_extensions<'a>(fields: impl Iterator<Item = &'a str>) -> Result<(), ScramError> {
    for f in fields {
        let b = f.as_bytes();
        if b.len() < 3 || !b[0].is_ascii_alphabetic() || b[1] != b'=' {
            return Err(malformed("invalid extension attribute"));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ScramError::{AuthFailed, Malformed, OutOfOrder};

    const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SNONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const NONCE: &str = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const PROOF: &str = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn creds(password: &str) -> ScramCredentials {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        ScramCredentials::derive(password, &salt, 4096).unwrap()
    }

    fn is_malformed<T>(r: &Result<T, ScramError>) -> bool {
        matches!(r, Err(Malformed(_)))
    }

    fn bad_param<T>(r: Result<T, ScramError>) -> bool {
        matches!(r, Err(ScramError::InvalidParameter(_)))
    }

    /// A minimal SCRAM client: client-final for `client_first` and the
    /// server-first the server sent. Shared with the sasl.rs tests.
    pub(crate) fn client_final(password: &str, client_first: &str, server_first: &str) -> String {
        let attr = |k: &str| server_first.split(',').find_map(|f| f.strip_prefix(k));
        let salt = B64.decode(attr("s=").unwrap()).unwrap();
        let iters = attr("i=").unwrap().parse().unwrap();
        let (gs2_end, _) = client_first.match_indices(',').nth(1).unwrap();
        let (gs2, bare) = (&client_first[..=gs2_end], &client_first[gs2_end + 1..]);
        let without_proof = format!("c={},r={}", B64.encode(gs2), attr("r=").unwrap());
        let prepped = saslprep(password).unwrap();
        let salted = salted_password(&prepped, &salt, NonZeroU32::new(iters).unwrap());
        let client_key = hmac_sha256(&salted, b"Client Key");
        let auth = format!("{bare},{server_first},{without_proof}");
        let sig = hmac_sha256(&sha256(&client_key), auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(sig).map(|(k, s)| k ^ s).collect();
        format!("{without_proof},p={}", B64.encode(proof))
    }

    // RFC 7677 §3 up to server-first, which must match the RFC byte for byte.
    fn vector_server(password: &str) -> ScramServer {
        let (mut server, authcid) = ScramServer::start(CLIENT_FIRST.as_bytes()).unwrap();
        assert_eq!(authcid, "user");
        let first = server.server_first(Some(&creds(password)), SNONCE).unwrap();
        let want = format!("{NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
        assert_eq!(String::from_utf8(first).unwrap(), want);
        server
    }

    #[test]
    fn rfc7677_vector() {
        let client_final = format!("c=biws,{NONCE},{PROOF}");
        let mut server = vector_server("pencil");
        let fin = server.client_final(client_final.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(fin).unwrap(), SERVER_FINAL);
        assert_eq!(server.client_final(client_final.as_bytes()), Err(OutOfOrder));
        let mut server = vector_server("pencil2");
        assert_eq!(server.client_final(client_final.as_bytes()), Err(AuthFailed));
    }

    #[test]
    fn unknown_user_gets_plausible_server_first_then_fails() {
        let first = |name: &str| {
            let msg = format!("n,,n={name},r=abc");
            let (mut server, _) = ScramServer::start(msg.as_bytes()).unwrap();
            let sf = String::from_utf8(server.server_first(None, "xyz").unwrap()).unwrap();
            (server, msg, sf)
        };
        let (mut server, cf, sf) = first("ghost");
        let salt = sf.split(',').find_map(|f| f.strip_prefix("s=")).unwrap();
        assert_eq!(B64.decode(salt).unwrap().len(), SALT_LEN);
        assert!(sf.starts_with("r=abcxyz,s=") && sf.ends_with(",i=4096"), "{sf}");
        assert_eq!(first("ghost").2, sf, "fake salt must be stable per name");
        assert_ne!(first("phantom").2, sf, "fake salt must vary by name");
        let reply = client_final("anything", &cf, &sf);
        assert_eq!(server.client_final(reply.as_bytes()), Err(AuthFailed));
    }

    #[test]
    fn round_trip_with_authzid_y_flag_and_escapes() {
        let stored = ScramCredentials::generate("s3cret\u{a0}pw").unwrap();
        assert_eq!((stored.salt.len(), stored.iterations), (SALT_LEN, 4096));
        let cf = "y,a=ad=3Dmin,n=us=2Cer,r=Zm9vYmFy,x=ignored";
        let (mut server, authcid) = ScramServer::start(cf.as_bytes()).unwrap();
        assert_eq!((&*authcid, server.authzid()), ("us,er", Some("ad=min")));
        let nonce = random_server_nonce();
        assert_eq!(nonce.len(), 24);
        let sf = server.server_first(Some(&stored), &nonce).unwrap();
        let reply = client_final("s3cret pw", cf, std::str::from_utf8(&sf).unwrap());
        assert!(server.client_final(reply.as_bytes()).unwrap().starts_with(b"v="));
    }

    #[test]
    fn malformed_client_first() {
        let long = format!("n,,n={},r=abc", "u".repeat(MAX_NAME_LEN + 1));
        let cases: &[&[u8]] = &[
            b"",
            b"n",
            b"n,",
            b"x,,n=user,r=abc",
            b"p=tls-unique,,n=user,r=abc",
            b"n,,m=ext,n=user,r=abc",
            b"n,b=admin,n=user,r=abc",
            b"n,a=,n=user,r=abc",
            b"n,,n=,r=abc",
            b"n,,n=us=2Xer,r=abc",
            b"n,,n=user=,r=abc",
            b"n,,n=a\0b,r=abc",
            b"n,,n=user",
            b"n,,n=user,r=",
            b"n,,n=user,r=a b",
            b"n,,r=abc,n=user",
            b"n,,n=user,r=abc,1=x",
            b"n,,n=user,r=abc,",
            b"n,,n=\xff,r=abc",
            long.as_bytes(),
        ];
        for case in cases {
            let r = ScramServer::start(case);
            assert!(is_malformed(&r), "{:?}", String::from_utf8_lossy(case));
        }
    }

    #[test]
    fn malformed_client_final() {
        let cases = [
            String::new(),
            format!("c=biws,{NONCE}"),
            format!("c=eSws,{NONCE},{PROOF}"), // "y,," but the client sent "n,,"
            format!("c=biws=,{NONCE},{PROOF}"),
            format!("{NONCE},c=biws,{PROOF}"),
            format!("c=biws,r=rOprNGfwEbeRWgbNEkqO,{PROOF}"),
            format!("c=biws,{NONCE},p=!!!"),
            format!("c=biws,{NONCE},p=AAAA"),
            format!("c=biws,{NONCE},{PROOF},x=1"),
            format!("c=biws,{NONCE},9=1,{PROOF}"),
        ];
        for case in cases {
            let r = vector_server("pencil").client_final(case.as_bytes());
            assert!(is_malformed(&r), "{case}");
        }
        let r = vector_server("pencil").client_final(format!("c=eSws,{NONCE},{PROOF}").as_bytes());
        assert_eq!(r, Err(Malformed("channel binding mismatch")));
    }

    #[test]
    fn out_of_order_and_bad_parameters() {
        let (mut server, _) = ScramServer::start(CLIENT_FIRST.as_bytes()).unwrap();
        assert_eq!(server.client_final(b"c=biws"), Err(OutOfOrder));
        for bad in ["", "a,b", "tab\t"] {
            assert!(bad_param(server.server_first(None, bad)), "{bad:?}");
        }
        let broken = ScramCredentials {
            iterations: 0,
            ..creds("pencil")
        };
        assert!(bad_param(server.server_first(Some(&broken), "x")));
        assert!(server.server_first(None, "x").is_ok());
        assert_eq!(server.server_first(None, "x"), Err(OutOfOrder));
        assert!(bad_param(ScramCredentials::derive("pw", b"", 4096)));
        assert!(bad_param(ScramCredentials::derive("pw", b"salt", 0)));
        assert!(ScramCredentials::derive("a\u{7}", b"salt", 1).is_err());
    }

    #[test]
    fn saslprep_subset() {
        let cases: &[(&str, Option<&str>)] = &[
            ("pencil", Some("pencil")),
            ("I\u{AD}X", Some("IX")),
            ("a\u{A0}b\u{3000}c", Some("a b c")),
            ("a\u{200B}b", Some("a b")),
            ("caf\u{E9}", Some("caf\u{E9}")),
            ("a\u{FEFF}", Some("a")),
            ("\u{AD}", None),
            ("", None),
            ("a\u{7}", None),
            ("a\u{85}", None),
            ("\u{E000}", None),
            ("\u{1FFFE}", None),
            ("\u{200E}x", None),
            ("\u{E0041}", None),
        ];
        for (input, want) in cases {
            assert_eq!(saslprep(input).ok().as_deref(), *want, "{input:?}");
        }
    }
}
