//! A server's TLS records after the handshake, for the `tls_records` fuzz target: a real
//! handshake with rustls as the client, then a client that seals what it is told to — data,
//! KeyUpdates whole or in pieces, alerts, records of any type, raw bytes, flipped bits — and
//! the server reading it in reads of any size and answering.

use std::io::{self, IoSlice};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::record::Records;
use super::tls::{Out, Stage, Tls};

const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const KEY_UPDATE: u8 = 24;

/// What a run showed; the target asserts on it.
#[derive(Debug, Default)]
pub struct Seen {
    /// Only what a client may send was sent, whole.
    pub clean: bool,
    /// What the client sealed as data, in order.
    pub sent: Vec<u8>,
    /// What the server read.
    pub read: Vec<u8>,
    /// The server's first error.
    pub error: Option<String>,
    /// What the server sealed as data, and what the client opened of it.
    pub replied: Vec<u8>,
    pub opened: Vec<u8>,
}

/// Drives one connection (TLS 1.3 if `tls13`, else 1.2) by the operations in `ops`: each byte
/// picks one by its value modulo 8, and the bytes after it are its arguments —
/// 0 data (of 1 + 64 × arg bytes), 1 a KeyUpdate, 2 one split over two records (TLS 1.3; its
/// request_update is arg % 3, and 2 is not a valid one), 3 an alert, 4 a record of any type and
/// content, 5 raw bytes, 6 a flipped bit in what waits to be read, 7 (and the rest) the server
/// reads what waits in reads of 1 + 67 × arg bytes and replies 131 × arg bytes, first passed
/// on as a front end passes a session to its back end (`net::handoff`) if op / 8 is odd.
pub fn records(tls13: bool, ops: &[u8]) -> Seen {
    let (mut client, mut server) = connected(tls13);
    let mut seen = Seen {
        clean: true,
        ..Seen::default()
    };
    let mut wire: Vec<u8> = Vec::new();
    let mut s_out = Out::default();
    let mut ops = ops.iter().copied();
    while let Some(op) = ops.next() {
        let mut arg = || ops.next().unwrap_or(0);
        let mut c_out = Out::default();
        match op % 8 {
            0 => {
                let data = vec![b'a' + op / 8 % 26; 1 + usize::from(arg()) * 64];
                client.seal_any(APPLICATION_DATA, &data, &mut c_out);
                seen.sent.extend_from_slice(&data);
            }
            1 | 2 if tls13 => {
                let request = arg() % 3;
                let message = [KEY_UPDATE, 0, 0, 1, request];
                if op % 8 == 1 {
                    client.seal_any(HANDSHAKE, &message, &mut c_out);
                } else {
                    let at = 1 + usize::from(arg()) % 4;
                    client.seal_any(HANDSHAKE, &message[..at], &mut c_out);
                    client.seal_any(HANDSHAKE, &message[at..], &mut c_out);
                }
                if request < 2 {
                    client.next_key(true);
                } else {
                    seen.clean = false;
                }
            }
            3 => {
                let alert = [arg(), arg()];
                client.seal_any(21, &alert, &mut c_out);
                seen.clean = false;
            }
            4 => {
                let kind = arg();
                let len = usize::from(arg());
                let bytes: Vec<u8> = (0..len).map(|_| arg()).collect();
                client.seal_any(kind, &bytes, &mut c_out);
                seen.clean = false;
            }
            5 => {
                let len = usize::from(arg() % 16);
                wire.extend((0..len).map(|_| arg()));
                seen.clean = seen.clean && len == 0;
            }
            6 if !wire.is_empty() => {
                let at = usize::from(arg()) * 257 % wire.len();
                wire[at] ^= 1 << (arg() % 8);
                seen.clean = false;
            }
            _ => {
                if op / 8 % 2 == 1 {
                    server = passed_on(server);
                }
                let piece = 1 + usize::from(arg()) * 67;
                let reply = usize::from(arg()) * 131;
                deliver(&mut wire, piece, &mut server, &mut s_out, &mut seen);
                if seen.error.is_none() {
                    reply_and_open(&mut server, &mut client, reply, &mut s_out, &mut seen);
                }
            }
        }
        wire.extend_from_slice(&c_out.bytes[..c_out.used]);
    }
    deliver(&mut wire, 1 << 20, &mut server, &mut s_out, &mut seen);
    seen
}

/// `server` passed on through a frame, as its back end takes it; kept where it cannot be
/// passed now (a KeyUpdate half read, a failure).
fn passed_on(server: Tls) -> Tls {
    use super::handoff::{self, Frame};
    let Some(state) = server.pass_on(&[]) else {
        return server;
    };
    let frame = handoff::passed(&state).expect("a frame of a session's size");
    let suites = rustls::crypto::ring::default_provider().cipher_suites;
    match handoff::parse(&frame, &suites) {
        Ok(Some((Frame::Passed(tls), n))) if n == frame.len() => *tls,
        _ => panic!("a frame of ours not taken whole"),
    }
}

/// The server reads `wire` in reads of `piece` bytes.
fn deliver(wire: &mut Vec<u8>, piece: usize, server: &mut Tls, s_out: &mut Out, seen: &mut Seen) {
    for read in std::mem::take(wire).chunks(piece) {
        if seen.error.is_some() {
            return;
        }
        server.receive(read.to_vec());
        match server.advance(&mut seen.read, s_out) {
            Ok(Stage::Open | Stage::Handshaking) => {}
            Ok(Stage::PeerClosed) => seen.error = Some("closed".into()),
            Err(e) => seen.error = Some(e.to_string()),
        }
    }
}

/// The server seals `len` bytes; the client opens everything the server sent.
fn reply_and_open(server: &mut Tls, client: &mut Records, len: usize, s_out: &mut Out, seen: &mut Seen) {
    let reply: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    if let Err(e) = server.seal(&[IoSlice::new(&reply)], s_out) {
        seen.error = Some(e.to_string());
        return;
    }
    seen.replied.extend_from_slice(&reply);
    let mut at = 0;
    while at + 5 <= s_out.used {
        let len = usize::from(u16::from_be_bytes([s_out.bytes[at + 3], s_out.bytes[at + 4]]));
        let (kind, payload) = client.open_any(&mut s_out.bytes[at..at + 5 + len]);
        at += 5 + len;
        match kind {
            APPLICATION_DATA => seen.opened.extend_from_slice(&payload),
            HANDSHAKE if payload.first() == Some(&KEY_UPDATE) => client.next_key(false),
            // Session tickets were read by rustls before the hand-over.
            _ => panic!("the server sent a record of type {kind}: {payload:?}"),
        }
    }
    s_out.used = 0;
}

/// A client handed over to `Records` and a server whose records `Records` now seals, after
/// a real handshake with every session ticket read by the client's rustls.
fn connected(tls13: bool) -> (Records, Tls) {
    let (server_config, client_config) = configs(tls13);
    let name = ServerName::try_from("localhost").expect("a name");
    let mut client = Tls::client(client_config, name).expect("a client");
    let mut server = Tls::server(server_config).expect("a server");
    let (mut c_out, mut s_out) = (Out::default(), Out::default());
    while client.is_handshaking() || server.is_handshaking() {
        client.handshake_step(&mut c_out).expect("client step");
        pass(&mut c_out, &mut server, &mut s_out);
        server.handshake_step(&mut s_out).expect("server step");
        pass(&mut s_out, &mut client, &mut c_out);
    }
    (client.into_records().expect("a client's hand-over"), server)
}

fn pass(from: &mut Out, to: &mut Tls, to_out: &mut Out) {
    if from.used > 0 {
        to.receive(from.bytes[..from.used].to_vec());
        from.used = 0;
        to.advance(&mut Vec::new(), to_out).expect("a handshake record");
    }
}

fn configs(tls13: bool) -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    static CONFIGS: OnceLock<[(Arc<ServerConfig>, Arc<ClientConfig>); 2]> = OnceLock::new();
    let configs = CONFIGS.get_or_init(|| {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("a certificate");
        let cert = CertificateDer::from(certified.cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        [&rustls::version::TLS12, &rustls::version::TLS13].map(|version| {
            let mut server = ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[version])
                .expect("a version")
                .with_no_client_auth()
                .with_single_cert(vec![cert.clone()], key.clone_key())
                .expect("a certificate");
            super::tls::hand_over(&mut server);
            let mut roots = RootCertStore::empty();
            roots.add(cert.clone()).expect("a root");
            let mut client = ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[version])
                .expect("a version")
                .with_root_certificates(roots)
                .with_no_client_auth();
            super::tls::hand_over_client(&mut client);
            (Arc::new(server), Arc::new(client))
        })
    });
    configs[usize::from(tls13)].clone()
}

impl Tls {
    /// A client connection past its handshake, handed over as a server's would be.
    fn into_records(self) -> io::Result<Records> {
        self.client_records()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_run_reads_what_was_sent_and_a_broken_one_fails_without_a_panic() {
        // Data, a KeyUpdate asking for ours, one in pieces, reads of 1 and 68 bytes with
        // replies, more data.
        let clean = [0, 5, 1, 1, 7, 0, 3, 2, 1, 2, 0, 200, 7, 1, 40, 8, 9];
        for tls13 in [true, false] {
            let seen = records(tls13, &clean);
            assert!(seen.clean);
            assert_eq!(seen.error, None);
            assert_eq!(seen.read, seen.sent);
            assert_eq!(seen.opened, seen.replied);
            assert!(!seen.replied.is_empty());
        }
        // The same with the server passed on before each read (op 15 is 7 with op / 8 odd),
        // and with a KeyUpdate half read when it is (kept, then passed once it is whole).
        let passed = [0, 5, 15, 1, 7, 0, 3, 2, 15, 2, 0, 200, 15, 1, 40, 8, 9];
        let half = [0, 5, 4, 22, 2, 24, 0, 7, 0, 0, 15, 0, 0];
        for tls13 in [true, false] {
            let seen = records(tls13, &passed);
            assert!(seen.clean && seen.error.is_none(), "{:?}", seen.error);
            assert_eq!(seen.read, seen.sent);
            assert_eq!(seen.opened, seen.replied);
        }
        assert_eq!(records(true, &half).read, [b'a'; 321]);
        // A flipped bit; a record of an unknown type.
        for broken in [&[0, 5, 6, 3, 1, 7, 9, 1][..], &[4, 99, 3, 1, 2, 3, 7, 0, 0]] {
            let seen = records(true, broken);
            assert!(!seen.clean);
            assert!(seen.error.is_some(), "{broken:?}");
        }
    }
}
