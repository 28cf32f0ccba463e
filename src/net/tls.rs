//! A connection's TLS state, sans I/O, over rustls's unbuffered API.
//!
//! rustls's buffered `Connection` keeps a receive buffer that never shrinks below 4 KiB once
//! it has read (`DeframerVecBuffer`), so every idle TLS session parked one. Here we own the
//! buffers: ciphertext received waits in `incoming` only while it is part of a record, and an
//! idle session holds no buffer at all, only rustls's keys and sequence numbers.
//!
//! Once a server connection's handshake is over, its records are sealed and opened by
//! `net::record` on the keys rustls hands over (when the config allows extracting them), so a
//! parked session keeps its keys and not rustls's connection.
//!
//! The caller reads ciphertext from the socket into `receive`, and sends whatever `Out` holds
//! after each call, in the order the calls were made (records carry sequence numbers).

use std::io::{self, IoSlice};
use std::sync::Arc;

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::pki_types::ServerName;
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, UnbufferedConnectionCommon, UnbufferedStatus, WriteTraffic,
};
use rustls::{ClientConfig, ServerConfig};

use super::record::Records;
use super::schedule::{self, Caught};

/// A TLS record's payload at most (RFC 8446 §5.1); full records are what rustls makes of a
/// buffer this long.
const RECORD: usize = 16 * 1024;

pub struct Tls {
    side: Side,
    /// Ciphertext received and not yet taken by rustls: between reads, at most the start of
    /// a record (or of a handshake message split over records), usually nothing.
    incoming: Vec<u8>,
    /// Plaintext decrypted while a write drove the connection, for the next read.
    plain: Vec<u8>,
    peer_closed: bool,
    /// A fatal error was met (and its alert made): nothing more goes either way.
    failed: bool,
    /// A server connection whose records `Records` takes over after the handshake.
    hand_over: bool,
    /// How the handshake ended, once it has: whether every record after it is still unread.
    ended_clean: Option<bool>,
    /// TLS 1.3's traffic secrets, from when rustls derives them until `Records` takes them.
    caught: Option<Box<Caught>>,
}

/// The whole `Tls` is boxed by its connection; rustls's connections are boxed again so that
/// a session past its handshake holds only `Records`.
enum Side {
    Server(Box<UnbufferedServerConnection>),
    Client(Box<UnbufferedClientConnection>),
    /// A server connection past its handshake.
    Records(Box<Records>),
    /// The handshake's connection went to a hand-over that failed.
    Spent,
}

/// Ciphertext on its way out: `bytes[..used]`. The room after it is kept initialised, so a
/// buffer reused from write to write is not zeroed again before rustls fills it.
#[derive(Default)]
pub struct Out {
    pub bytes: Vec<u8>,
    pub used: usize,
}

impl Out {
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// At least `n` bytes of room after what is used.
    pub(super) fn room(&mut self, n: usize) -> &mut [u8] {
        let want = self.used + n;
        if self.bytes.len() < want {
            self.bytes.resize(want, 0);
        }
        &mut self.bytes[self.used..]
    }

    pub fn reserve(&mut self, n: usize) {
        self.room(n);
    }
}

/// Where the connection stands after `advance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The handshake needs more from the peer.
    Handshaking,
    /// Application data flows (more from the peer is read when wanted).
    Open,
    /// The peer said close_notify: no more data comes.
    PeerClosed,
}

/// What to do once the connection may send application data.
enum Job<'a> {
    Nothing,
    Seal(&'a [IoSlice<'a>]),
    CloseNotify,
}

/// Has a server config's connections handed over to `Records` after their handshakes: rustls
/// extracts their keys, and tells `schedule` their TLS 1.3 traffic secrets, which key updates
/// need. One without (no hand-over) stays with rustls.
pub fn hand_over(config: &mut ServerConfig) {
    config.enable_secret_extraction = true;
    config.key_log = schedule::catcher();
}

/// `hand_over` for a client config: the tests and the `tls_records` fuzz target play a
/// client whose records `Records` takes.
pub(super) fn hand_over_client(config: &mut ClientConfig) {
    config.enable_secret_extraction = true;
    config.key_log = schedule::catcher();
}

impl Tls {
    pub fn server(config: Arc<ServerConfig>) -> io::Result<Tls> {
        let hand_over = config.enable_secret_extraction;
        let conn = UnbufferedServerConnection::new(config).map_err(io::Error::other)?;
        let mut tls = Tls::new(Side::Server(Box::new(conn)));
        tls.hand_over = hand_over;
        Ok(tls)
    }

    pub fn client(config: Arc<ClientConfig>, name: ServerName<'static>) -> io::Result<Tls> {
        let conn = UnbufferedClientConnection::new(config, name).map_err(io::Error::other)?;
        Ok(Tls::new(Side::Client(Box::new(conn))))
    }

    fn new(side: Side) -> Tls {
        Tls {
            side,
            incoming: Vec::new(),
            plain: Vec::new(),
            peer_closed: false,
            failed: false,
            hand_over: false,
            ended_clean: None,
            caught: None,
        }
    }

    /// A server connection past its handshake, as a back end takes it over from its front end
    /// (`net::handoff`): `records`, with `plain` (the client's bytes already decrypted, not
    /// yet read) and `incoming` (the start of its next record) read first.
    pub(super) fn passed(records: Records, plain: Vec<u8>, incoming: Vec<u8>) -> Tls {
        let mut tls = Tls::new(Side::Records(Box::new(records)));
        tls.hand_over = true;
        tls.ended_clean = Some(true);
        tls.plain = plain;
        tls.incoming = incoming;
        tls
    }

    /// Writes what a back end needs to take the session over (`net::handoff`): its records'
    /// state, then `before` (bytes decrypted earlier) followed by what is decrypted and
    /// unread, then the ciphertext of a record begun. `None` if it cannot be passed (not
    /// ours past a handshake, failed or closed, or a key update under way): it stays here.
    pub fn pass_on(&self, before: &[u8]) -> Option<Vec<u8>> {
        let Side::Records(records) = &self.side else {
            return None;
        };
        if self.failed || self.peer_closed {
            return None;
        }
        let mut state = Vec::with_capacity(256 + before.len() + self.plain.len() + self.incoming.len());
        if !records.export(&mut state) {
            return None;
        }
        let plain_len = before.len() + self.plain.len();
        state.extend_from_slice(&u32::try_from(plain_len).ok()?.to_be_bytes());
        state.extend_from_slice(before);
        state.extend_from_slice(&self.plain);
        state.extend_from_slice(&u32::try_from(self.incoming.len()).ok()?.to_be_bytes());
        state.extend_from_slice(&self.incoming);
        Some(state)
    }

    /// Past a server's handshake, with records of our own (`Records`).
    pub fn is_records(&self) -> bool {
        matches!(self.side, Side::Records(_))
    }

    /// The connection waits for its peer: what can be made again is given back.
    pub fn rest(&mut self) {
        if let Side::Records(records) = &mut self.side {
            records.rest();
        }
    }

    /// Takes ciphertext read from the socket.
    pub fn receive(&mut self, ciphertext: Vec<u8>) {
        if self.incoming.is_empty() {
            self.incoming = ciphertext;
        } else {
            self.incoming.extend_from_slice(&ciphertext);
        }
    }

    /// Ciphertext or decrypted plaintext is waiting to be taken (`advance`).
    pub fn holds_input(&self) -> bool {
        !self.incoming.is_empty() || !self.plain.is_empty()
    }

    pub fn is_handshaking(&self) -> bool {
        match &self.side {
            Side::Server(c) => c.is_handshaking(),
            Side::Client(c) => c.is_handshaking(),
            Side::Records(_) | Side::Spent => false,
        }
    }

    /// Decrypts what has been received into `plain` and puts what rustls has to say
    /// (handshake messages, alerts) into `out`.
    pub fn advance(&mut self, plain: &mut Vec<u8>, out: &mut Out) -> io::Result<Stage> {
        if !self.plain.is_empty() {
            plain.extend_from_slice(&std::mem::take(&mut self.plain));
        }
        self.run(plain, out, Job::Nothing)
    }

    /// One step of the handshake: what rustls has to send goes into `out`; data the peer sent
    /// after it waits for the first read.
    pub fn handshake_step(&mut self, out: &mut Out) -> io::Result<Stage> {
        self.run_keeping_plain(out, Job::Nothing)
    }

    /// Encrypts `data` into `out` as full-size records, after anything rustls had to send.
    pub fn seal(&mut self, data: &[IoSlice<'_>], out: &mut Out) -> io::Result<()> {
        match self.run_keeping_plain(out, Job::Seal(data))? {
            Stage::Handshaking => Err(io::ErrorKind::NotConnected.into()),
            _ => Ok(()),
        }
    }

    /// `run`, keeping what it decrypts for the next read.
    fn run_keeping_plain(&mut self, out: &mut Out, job: Job<'_>) -> io::Result<Stage> {
        let mut plain = std::mem::take(&mut self.plain);
        let result = self.run(&mut plain, out, job);
        self.plain = plain;
        result
    }

    /// Puts close_notify into `out` (unsent data from the peer is dropped).
    pub fn close_notify(&mut self, out: &mut Out) -> io::Result<()> {
        let mut dropped = Vec::new();
        self.run(&mut dropped, out, Job::CloseNotify).map(|_| ())
    }

    /// "TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384", for Received: header fields.
    pub fn description(&self) -> Option<String> {
        let common: &rustls::CommonState = match &self.side {
            Side::Server(c) => c,
            Side::Client(c) => c,
            Side::Records(records) => return Some(records.description()),
            Side::Spent => return None,
        };
        let version = match common.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
            _ => "TLS",
        };
        let suite = common.negotiated_cipher_suite()?.suite();
        Some(format!("{version} with cipher {suite:?}"))
    }

    fn run(&mut self, plain: &mut Vec<u8>, out: &mut Out, job: Job<'_>) -> io::Result<Stage> {
        if self.failed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let mut state = Run {
            incoming: &mut self.incoming,
            plain,
            out,
            peer_closed: &mut self.peer_closed,
            hold_back: self.hand_over,
            ended_clean: &mut self.ended_clean,
            caught: &mut self.caught,
        };
        let mut result = match &mut self.side {
            Side::Server(c) => state.run(&mut ***c, job),
            Side::Client(c) => state.run(&mut ***c, job),
            Side::Records(records) => {
                let data = match job {
                    Job::Seal(data) => Some(data),
                    Job::Nothing => None,
                    Job::CloseNotify => {
                        let closed = records.close_notify(out);
                        return closed.map(|()| Stage::Open);
                    }
                };
                // `Records` says its own last word.
                return self.run_records(plain, out, data);
            }
            Side::Spent => Err(io::ErrorKind::BrokenPipe.into()),
        };
        if self.incoming.is_empty() {
            // Nothing of a record waits: an idle session keeps no buffer.
            self.incoming = Vec::new();
        }
        if result.is_err() {
            self.failed = true;
            match &mut self.side {
                Side::Server(c) => last_word(&mut ***c, &mut self.incoming, out),
                Side::Client(c) => last_word(&mut ***c, &mut self.incoming, out),
                Side::Records(_) | Side::Spent => {}
            }
        } else if matches!(result, Ok(Stage::Open)) && self.hand_over && self.ended_clean == Some(true) {
            // The handshake is over (and whatever the call had to do, done): the records
            // from here on are ours, starting with any that came with the client's Finished.
            result = self.take_over().and_then(|()| self.run_records(plain, out, None));
        } else if self.ended_clean == Some(false) {
            // The connection stays with rustls: its secrets are of no use here.
            self.caught = None;
        }
        result
    }

    /// A client connection past its handshake, handed over as a server's is (the tests and
    /// the fuzz target play a client with it; ringmail's own clients stay with rustls).
    pub(super) fn client_records(self) -> io::Result<Records> {
        match self.side {
            Side::Client(conn) => {
                let (secrets, kernel) = conn.dangerous_into_kernel_connection().map_err(not_handed)?;
                Records::new(secrets, kernel.negotiated_cipher_suite(), self.caught, false)
            }
            _ => Err(io::ErrorKind::InvalidInput.into()),
        }
    }

    /// Hands the server connection's records from rustls to `Records`.
    fn take_over(&mut self) -> io::Result<()> {
        let Side::Server(conn) = std::mem::replace(&mut self.side, Side::Spent) else {
            return Ok(());
        };
        let caught = self.caught.take();
        match conn
            .dangerous_into_kernel_connection()
            .map_err(not_handed)
            .and_then(|(secrets, kernel)| Records::new(secrets, kernel.negotiated_cipher_suite(), caught, true))
        {
            Ok(records) => {
                self.side = Side::Records(Box::new(records));
                Ok(())
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    /// `Records::run` on what has been received, then `data` sealed.
    fn run_records(&mut self, plain: &mut Vec<u8>, out: &mut Out, data: Option<&[IoSlice<'_>]>) -> io::Result<Stage> {
        let Side::Records(records) = &mut self.side else {
            return Err(io::ErrorKind::BrokenPipe.into());
        };
        let result = records.run(&mut self.incoming, plain, out, data, &mut self.peer_closed);
        self.failed = result.is_err();
        result
    }
}

fn not_handed(e: rustls::Error) -> io::Error {
    io::Error::other(format!("TLS: {e}"))
}

/// `process_tls_records` for either side (rustls defines it for each side's data type).
trait Process {
    type Data;
    fn handshaking(&self) -> bool;
    fn protocol(&self) -> Option<rustls::ProtocolVersion>;
    fn process<'c, 'i>(&'c mut self, incoming: &'i mut [u8]) -> UnbufferedStatus<'c, 'i, Self::Data>;
}

impl Process for UnbufferedConnectionCommon<ServerConnectionData> {
    type Data = ServerConnectionData;
    fn handshaking(&self) -> bool {
        self.is_handshaking()
    }
    fn protocol(&self) -> Option<rustls::ProtocolVersion> {
        self.protocol_version()
    }
    fn process<'c, 'i>(&'c mut self, incoming: &'i mut [u8]) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

impl Process for UnbufferedConnectionCommon<ClientConnectionData> {
    type Data = ClientConnectionData;
    fn handshaking(&self) -> bool {
        self.is_handshaking()
    }
    fn protocol(&self) -> Option<rustls::ProtocolVersion> {
        self.protocol_version()
    }
    fn process<'c, 'i>(&'c mut self, incoming: &'i mut [u8]) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

/// One drive of the state machine, borrowing the buffers it fills.
struct Run<'a> {
    incoming: &'a mut Vec<u8>,
    plain: &'a mut Vec<u8>,
    out: &'a mut Out,
    peer_closed: &'a mut bool,
    /// Once the handshake is over, rustls is given no more records: they are for `Records`.
    hold_back: bool,
    /// Set when the handshake ends: true if rustls has read no record after it that matters.
    ended_clean: &'a mut Option<bool>,
    /// Where TLS 1.3's traffic secrets go when rustls derives them.
    caught: &'a mut Option<Box<Caught>>,
}

impl Run<'_> {
    /// Drives `conn` until it needs more from the peer or has done `job`; what rustls has
    /// taken of `incoming` is dropped from its front once, at the end.
    fn run<C: Process>(&mut self, conn: &mut C, job: Job<'_>) -> io::Result<Stage> {
        let mut taken = 0;
        // What rustls tells the `KeyLog` during the steps is this connection's
        // (`schedule`): nothing else runs on this thread until they are over.
        schedule::forget();
        let result = self.steps(conn, job, &mut taken);
        if let Some(caught) = schedule::take() {
            *self.caught = Some(caught);
        }
        self.incoming.drain(..taken);
        result
    }

    /// `run`'s steps. rustls asks that what it took (its `discard`, counted in `taken`) leave
    /// the front of the buffer before its next call; passing it the rest of the buffer is the same, and
    /// spares moving the rest once per record (one small record per pipelined command).
    fn steps<C: Process>(&mut self, conn: &mut C, mut job: Job<'_>, taken: &mut usize) -> io::Result<Stage> {
        loop {
            let handshaking = conn.handshaking();
            let input = if self.hold_back && !handshaking {
                &mut [][..]
            } else {
                &mut self.incoming[*taken..]
            };
            let UnbufferedStatus { discard, state } = conn.process(input);
            let mut paused = false;
            // What rustls took goes even when it then failed (the records before the bad one).
            *taken += discard;
            let state = state.map_err(invalid)?;
            let stage = match state {
                ConnectionState::ReadTraffic(mut records) => {
                    while let Some(record) = records.next_record() {
                        let record = record.map_err(invalid)?;
                        *taken += record.discard;
                        self.plain.extend_from_slice(record.payload);
                    }
                    None
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    paused = true;
                    let mut room = 512;
                    loop {
                        match encode.encode(self.out.room(room)) {
                            Ok(n) => {
                                self.out.used += n;
                                break;
                            }
                            Err(EncodeError::InsufficientSize(e)) => room = e.required_size,
                            Err(e) => return Err(io::Error::other(e.to_string())),
                        }
                    }
                    None
                }
                // The caller sends `out` before it waits on the peer, in order with the
                // records put after these.
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    None
                }
                ConnectionState::BlockedHandshake => Some(Stage::Handshaking),
                ConnectionState::PeerClosed => {
                    *self.peer_closed = true;
                    None
                }
                ConnectionState::Closed => Some(Stage::PeerClosed),
                ConnectionState::WriteTraffic(mut write) => {
                    match std::mem::replace(&mut job, Job::Nothing) {
                        Job::Nothing => {}
                        Job::Seal(data) => seal(&mut write, data, self.out)?,
                        Job::CloseNotify => {
                            let n = write.queue_close_notify(self.out.room(64)).map_err(encrypt_error)?;
                            self.out.used += n;
                        }
                    }
                    Some(if *self.peer_closed {
                        Stage::PeerClosed
                    } else {
                        Stage::Open
                    })
                }
                // Early data is never accepted (`max_early_data_size` is 0), and later states
                // are for options ringmail does not use.
                _ => return Err(invalid("unexpected TLS state")),
            };
            if handshaking && !conn.handshaking() {
                // rustls reads on past the client's Finished within one call unless it pauses
                // to send what the Finished made (the server's session tickets in TLS 1.3, its
                // own Finished in a full TLS 1.2 handshake). TLS 1.2 has nothing after the
                // handshake that rustls could read and not hand over; a TLS 1.3 KeyUpdate
                // read by rustls would leave its answer behind. So a TLS 1.3 handshake that
                // ended without the pause stays with rustls.
                let tls12 = conn.protocol() == Some(rustls::ProtocolVersion::TLSv1_2);
                *self.ended_clean = Some(paused || tls12);
            }
            if let Some(stage) = stage {
                return Ok(stage);
            }
        }
    }
}

/// Puts the alert rustls queued with a fatal error into `out`. One call only: rustls hands
/// out what it queued before it looks at the input again, and looking again would meet the
/// same damaged record a second time (a second fatal alert, which rustls asserts against).
/// So if something was queued ahead of the alert (a key update answer), that goes and the
/// alert does not: the connection is closed either way.
fn last_word<C: Process>(conn: &mut C, incoming: &mut [u8], out: &mut Out) {
    if let Ok(ConnectionState::EncodeTlsData(mut encode)) = conn.process(incoming).state {
        if let Ok(n) = encode.encode(out.room(512)) {
            out.used += n;
        }
    }
}

/// Encrypts `data` as full-size records: small pieces are gathered into one record, long
/// ones encrypted where they lie.
fn seal<D>(write: &mut WriteTraffic<'_, D>, data: &[IoSlice<'_>], out: &mut Out) -> io::Result<()> {
    let mut staged: Vec<u8> = Vec::new();
    for piece in data {
        let mut piece: &[u8] = piece;
        if !staged.is_empty() {
            let take = (RECORD - staged.len()).min(piece.len());
            staged.extend_from_slice(&piece[..take]);
            piece = &piece[take..];
            if staged.len() < RECORD {
                continue;
            }
            encrypt(write, &staged, out)?;
            staged.clear();
        }
        let whole = piece.len() - piece.len() % RECORD;
        if whole > 0 {
            encrypt(write, &piece[..whole], out)?;
        }
        if whole < piece.len() {
            staged.reserve_exact(RECORD);
            staged.extend_from_slice(&piece[whole..]);
        }
    }
    if !staged.is_empty() {
        encrypt(write, &staged, out)?;
    }
    Ok(())
}

fn encrypt<D>(write: &mut WriteTraffic<'_, D>, data: &[u8], out: &mut Out) -> io::Result<()> {
    let n = write
        .encrypt(data, out.room(ciphertext_room(data.len())))
        .map_err(encrypt_error)?;
    out.used += n;
    Ok(())
}

/// Ciphertext for `plaintext` bytes: records of at most 16 KiB, each with at most 29 bytes of
/// header, explicit nonce and tag (TLS 1.2 AES-GCM; TLS 1.3 needs 22).
pub fn ciphertext_room(plaintext: usize) -> usize {
    plaintext + plaintext.div_ceil(RECORD) * 29 + 64
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn encrypt_error(e: EncryptError) -> io::Error {
    io::Error::other(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::crypto::ring::default_provider;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::version::{TLS12, TLS13};
    use rustls::{RootCertStore, SupportedProtocolVersion};

    fn pair(version: &'static SupportedProtocolVersion) -> (Tls, Tls) {
        pair_with(version, None, true, 2)
    }

    /// A client and a server speaking `version` with `suite` (or any), the server's records
    /// handed over to `Records` after the handshake or left with rustls, and sending
    /// `tickets` TLS 1.3 session tickets.
    fn pair_with(
        version: &'static SupportedProtocolVersion,
        suite: Option<rustls::CipherSuite>,
        hand_over: bool,
        tickets: usize,
    ) -> (Tls, Tls) {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = CertificateDer::from(certified.cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
        let mut provider = default_provider();
        if let Some(suite) = suite {
            provider.cipher_suites.retain(|s| s.suite() == suite);
        }
        let provider = Arc::new(provider);
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[version])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        if hand_over {
            super::hand_over(&mut server);
        }
        server.send_tls13_tickets = tickets;
        let mut roots = RootCertStore::empty();
        roots.add(cert).unwrap();
        let client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut client = client;
        super::hand_over_client(&mut client);
        let name = ServerName::try_from("localhost").unwrap();
        (
            Tls::client(Arc::new(client), name).unwrap(),
            Tls::server(Arc::new(server)).unwrap(),
        )
    }

    /// Every version and AEAD ringmail offers (the TLS 1.2 suites for the test's ECDSA key;
    /// the RSA ones seal the same way).
    fn every_suite() -> Vec<(&'static SupportedProtocolVersion, rustls::CipherSuite)> {
        default_provider()
            .cipher_suites
            .iter()
            .filter(|s| !format!("{:?}", s.suite()).contains("_RSA_"))
            .map(|s| (s.version(), s.suite()))
            .collect()
    }

    /// Gives `to` what `from` has to say, in pieces of `chunk` bytes; returns the plaintext
    /// `to` decrypted.
    fn deliver(from_out: &mut Out, to: &mut Tls, to_out: &mut Out, chunk: usize) -> Vec<u8> {
        let bytes = from_out.bytes[..from_out.used].to_vec();
        from_out.used = 0;
        let mut plain = Vec::new();
        for piece in bytes.chunks(chunk.max(1)) {
            to.receive(piece.to_vec());
            to.advance(&mut plain, to_out).unwrap();
        }
        plain
    }

    fn handshake(client: &mut Tls, server: &mut Tls, chunk: usize) -> (Out, Out) {
        let (mut c_out, mut s_out) = (Out::default(), Out::default());
        for _ in 0..10 {
            client.handshake_step(&mut c_out).unwrap();
            deliver(&mut c_out, server, &mut s_out, chunk);
            server.handshake_step(&mut s_out).unwrap();
            deliver(&mut s_out, client, &mut c_out, chunk);
            if !client.is_handshaking() && !server.is_handshaking() {
                return (c_out, s_out);
            }
        }
        panic!("no handshake");
    }

    /// The handshake up to the client's Finished, which is left in the client's `Out`.
    fn all_but_finished(client: &mut Tls, server: &mut Tls) -> (Out, Out) {
        let (mut c_out, mut s_out) = (Out::default(), Out::default());
        client.handshake_step(&mut c_out).unwrap();
        deliver(&mut c_out, server, &mut s_out, 1 << 20);
        server.handshake_step(&mut s_out).unwrap();
        deliver(&mut s_out, client, &mut c_out, 1 << 20);
        (c_out, s_out)
    }

    #[test]
    fn data_goes_both_ways_in_any_pieces_and_nothing_is_kept_between() {
        let mut cases: Vec<_> = every_suite().into_iter().map(|(v, s)| (v, Some(s), true)).collect();
        cases.extend([(&TLS13, None, false), (&TLS12, None, false)]);
        for (version, suite, hand_over) in cases {
            for chunk in [1, 7, 512, 17 * 1024] {
                let (mut client, mut server) = pair_with(version, suite, hand_over, 2);
                let (mut c_out, mut s_out) = handshake(&mut client, &mut server, chunk);
                // Pieces of every size, as a FETCH gathers them, across record boundaries.
                let pieces: Vec<Vec<u8>> = [3, RECORD - 1, 2, 40_000, 10, RECORD, 1]
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| vec![b'a' + i as u8; n])
                    .collect();
                let slices: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
                server.seal(&slices, &mut s_out).unwrap();
                let got = deliver(&mut s_out, &mut client, &mut c_out, chunk);
                assert_eq!(got, pieces.concat(), "{suite:?} in pieces of {chunk}");
                assert_eq!(matches!(server.side, Side::Records(_)), hand_over);
                client.seal(&[IoSlice::new(b"a1 IDLE\r\n")], &mut c_out).unwrap();
                let got = deliver(&mut c_out, &mut server, &mut s_out, chunk);
                assert_eq!(got, b"a1 IDLE\r\n");
                // Between records, neither side holds ciphertext.
                assert_eq!(server.incoming.capacity(), 0);
                assert_eq!(client.incoming.capacity(), 0);
            }
        }
    }

    #[test]
    fn small_pieces_make_full_records() {
        let (mut client, mut server) = pair(&TLS13);
        let (_, mut s_out) = handshake(&mut client, &mut server, 17 * 1024);
        s_out.used = 0;
        let pieces = vec![vec![b'x'; 100]; 3 * RECORD / 100 + 1];
        let slices: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
        server.seal(&slices, &mut s_out).unwrap();
        // Four records: three full ones and the rest (each header says its length).
        let mut records = Vec::new();
        let mut at = 0;
        while at < s_out.used {
            let len = u16::from_be_bytes([s_out.bytes[at + 3], s_out.bytes[at + 4]]) as usize;
            records.push(len);
            at += 5 + len;
        }
        assert_eq!(records.len(), 4, "{records:?}");
        assert!(records[..3].iter().all(|&n| n == RECORD + 17), "{records:?}");
    }

    #[test]
    fn data_sent_right_after_the_handshake_waits_for_the_first_read() {
        let (mut client, mut server) = pair(&TLS13);
        // The client's Finished and its first command arrive together.
        let (mut c_out, mut s_out) = all_but_finished(&mut client, &mut server);
        client.seal(&[IoSlice::new(b"a1 CAPABILITY\r\n")], &mut c_out).unwrap();
        let early = deliver(&mut c_out, &mut server, &mut s_out, 1 << 20);
        let mut plain = early;
        server.advance(&mut plain, &mut s_out).unwrap();
        assert!(!server.is_handshaking());
        assert_eq!(plain, b"a1 CAPABILITY\r\n");
    }

    /// The TLS 1.3 suites: SHA-256 and SHA-384 key schedules.
    fn tls13_suites() -> Vec<rustls::CipherSuite> {
        let suites = every_suite().into_iter().filter(|(v, _)| v.version == TLS13.version);
        suites.map(|(_, s)| s).collect()
    }

    /// A rustls client moves to its next sending key and asks its peer to (TLS 1.3): its
    /// KeyUpdate goes out before its next data.
    fn update_client_keys(client: &mut Tls) {
        let Side::Client(conn) = &mut client.side else {
            unreachable!()
        };
        match conn.process_tls_records(&mut []).state.unwrap() {
            ConnectionState::WriteTraffic(write) => write.refresh_traffic_keys().unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_key_update_asked_by_the_peer_is_answered() {
        // rustls, as the client, makes its next keys by its own schedule: ours must agree.
        for suite in tls13_suites() {
            let (mut client, mut server) = pair_with(&TLS13, Some(suite), true, 2);
            let (mut c_out, mut s_out) = handshake(&mut client, &mut server, 4096);
            for round in 0..2 {
                update_client_keys(&mut client);
                // The client's KeyUpdate (update requested) goes before its command, under
                // new keys.
                client.seal(&[IoSlice::new(b"a1 NOOP\r\n")], &mut c_out).unwrap();
                let got = deliver(&mut c_out, &mut server, &mut s_out, 4096);
                assert_eq!(got, b"a1 NOOP\r\n", "{suite:?}, round {round}");
                // The server's answer comes under its new keys too, and the client reads it.
                server.seal(&[IoSlice::new(b"a1 OK NOOP\r\n")], &mut s_out).unwrap();
                let got = deliver(&mut s_out, &mut client, &mut c_out, 4096);
                assert_eq!(got, b"a1 OK NOOP\r\n", "{suite:?}, round {round}");
            }
            client.seal(&[IoSlice::new(b"a2 LOGOUT\r\n")], &mut c_out).unwrap();
            assert_eq!(deliver(&mut c_out, &mut server, &mut s_out, 4096), b"a2 LOGOUT\r\n");
        }
    }

    #[test]
    fn a_hand_over_without_the_connections_traffic_secrets_fails() {
        // The secrets caught are checked against the keys rustls hands over: the client's
        // and the server's swapped, or none at all, end the connection at the hand-over
        // rather than at the first key update.
        for swap in [true, false] {
            let (mut client, mut server) = pair(&TLS13);
            let (mut c_out, mut s_out) = all_but_finished(&mut client, &mut server);
            let caught = server.caught.as_mut().expect("the server's traffic secrets");
            if swap {
                std::mem::swap(&mut caught.client, &mut caught.server);
            } else {
                server.caught = None;
            }
            client.handshake_step(&mut c_out).unwrap();
            server.receive(c_out.bytes[..c_out.used].to_vec());
            let err = server.advance(&mut Vec::new(), &mut s_out).unwrap_err();
            assert!(err.to_string().contains("traffic secret"), "{err}");
            assert!(server.seal(&[IoSlice::new(b"* OK\r\n")], &mut s_out).is_err());
        }
    }

    #[test]
    fn finished_commands_and_close_notify_in_one_read() {
        let (mut client, mut server) = pair(&TLS13);
        let (mut c_out, mut s_out) = all_but_finished(&mut client, &mut server);
        // Finished, three commands in records of their own, and close_notify: one read.
        for command in [&b"a1 NOOP\r\n"[..], b"a2 NOOP\r\n", b"a3 LOGOUT\r\n"] {
            client.seal(&[IoSlice::new(command)], &mut c_out).unwrap();
        }
        client.close_notify(&mut c_out).unwrap();
        server.receive(c_out.bytes[..c_out.used].to_vec());
        // The handshake is over although the peer has closed: what it sent is still read.
        assert_eq!(server.handshake_step(&mut s_out).unwrap(), Stage::PeerClosed);
        assert!(!server.is_handshaking());
        let mut plain = Vec::new();
        assert_eq!(server.advance(&mut plain, &mut s_out).unwrap(), Stage::PeerClosed);
        assert_eq!(plain, b"a1 NOOP\r\na2 NOOP\r\na3 LOGOUT\r\n");
        assert_eq!(server.incoming.capacity(), 0);
    }

    #[test]
    fn close_notify_reads_as_the_end() {
        let (mut client, mut server) = pair(&TLS13);
        let (mut c_out, mut s_out) = handshake(&mut client, &mut server, 4096);
        client.close_notify(&mut c_out).unwrap();
        let bytes = c_out.bytes[..c_out.used].to_vec();
        server.receive(bytes);
        let mut plain = Vec::new();
        assert_eq!(server.advance(&mut plain, &mut s_out).unwrap(), Stage::PeerClosed);
        assert!(plain.is_empty());
    }

    #[test]
    fn a_damaged_record_is_an_error_with_an_alert() {
        let (mut client, mut server) = pair(&TLS13);
        let (mut c_out, mut s_out) = handshake(&mut client, &mut server, 4096);
        s_out.used = 0;
        client.seal(&[IoSlice::new(b"a1 NOOP\r\n")], &mut c_out).unwrap();
        let mut bytes = c_out.bytes[..c_out.used].to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        server.receive(bytes);
        let err = server.advance(&mut Vec::new(), &mut s_out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(!s_out.is_empty(), "an alert for the peer");
        // Garbage that is not TLS at all, too.
        let (mut client, mut server) = pair(&TLS12);
        let (_, mut s_out) = handshake(&mut client, &mut server, 4096);
        server.receive(b"a1 LOGIN user pass\r\n".to_vec());
        assert!(server.advance(&mut Vec::new(), &mut s_out).is_err());
    }

    /// A server past its handshake, and its client handed over to `Records` so that it can
    /// send what rustls never would. The server's session tickets are read by the client's
    /// rustls before the hand-over.
    fn crafting(version: &'static SupportedProtocolVersion) -> (Records, Tls, Out) {
        let (mut client, mut server) = pair(version);
        let (_, mut s_out) = handshake(&mut client, &mut server, 1 << 20);
        s_out.used = 0;
        let records = client.client_records().unwrap();
        (records, server, s_out)
    }

    /// The records in `out`, each whole, and `out` emptied.
    fn records(out: &mut Out) -> Vec<Vec<u8>> {
        let mut all = Vec::new();
        let mut at = 0;
        while at < out.used {
            let len = u16::from_be_bytes([out.bytes[at + 3], out.bytes[at + 4]]) as usize;
            all.push(out.bytes[at..at + 5 + len].to_vec());
            at += 5 + len;
        }
        out.used = 0;
        all
    }

    /// Gives the server what the client sealed; the server's error, if any.
    fn to_server(c_out: &mut Out, server: &mut Tls, s_out: &mut Out, plain: &mut Vec<u8>) -> io::Result<Stage> {
        server.receive(c_out.bytes[..c_out.used].to_vec());
        c_out.used = 0;
        server.advance(plain, s_out)
    }

    /// The alert the server sent (the last record in `s_out`), read by the client.
    fn alert_sent(client: &mut Records, s_out: &mut Out) -> u8 {
        let mut last = records(s_out).pop().expect("an alert");
        let (kind, payload) = client.open_any(&mut last);
        assert_eq!(kind, 21, "an alert record");
        assert_eq!(payload[0], 2, "fatal");
        payload[1]
    }

    /// `bytes` in records of the given types, which the server must refuse with `alert`.
    fn refused(version: &'static SupportedProtocolVersion, sent: &[(u8, &[u8])], alert: u8) {
        let (mut client, mut server, mut s_out) = crafting(version);
        let mut c_out = Out::default();
        for (kind, bytes) in sent {
            client.seal_any(*kind, bytes, &mut c_out);
        }
        let err = to_server(&mut c_out, &mut server, &mut s_out, &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert_eq!(alert_sent(&mut client, &mut s_out), alert, "{sent:?}: {err}");
        // Nothing more goes either way.
        assert!(server.seal(&[IoSlice::new(b"* BYE\r\n")], &mut s_out).is_err());
    }

    #[test]
    fn what_a_client_may_not_send_after_the_handshake_is_refused_with_the_rfcs_alert() {
        let (unexpected, bad_mac, overflow, illegal, decode) = (10, 20, 22, 47, 50);
        let big = vec![b'x'; RECORD + 1];
        for version in [&TLS13, &TLS12] {
            refused(version, &[(23, &big)], overflow);
            refused(version, &[(21, &[1])], decode);
            // Empty records: a few are fine, a flood is not.
            refused(version, &[(23, &b""[..]); 33], unexpected);
        }
        // TLS 1.3: a handshake message other than KeyUpdate, a KeyUpdate that is malformed
        // or has data after it in its record, a record between its pieces, padding only.
        refused(&TLS13, &[(22, &[4, 0, 0, 1, 0])], unexpected);
        refused(&TLS13, &[(22, &[24, 0, 0, 2, 0, 0])], decode);
        refused(&TLS13, &[(22, &[24, 0, 0, 1, 2])], illegal);
        refused(&TLS13, &[(22, &[24, 0, 0, 1, 0, 23])], unexpected);
        refused(&TLS13, &[(22, &[24, 0]), (23, b"a1 NOOP\r\n")], unexpected);
        refused(&TLS13, &[(22, b"")], unexpected);
        refused(&TLS13, &[(0, b"")], unexpected);
        // TLS 1.2: renegotiation, and a change_cipher_spec.
        refused(&TLS12, &[(22, &[1, 0, 0, 0])], unexpected);
        refused(&TLS12, &[(20, &[1])], unexpected);

        // A record that does not decrypt, and one longer than any record may be.
        for version in [&TLS13, &TLS12] {
            let (mut client, mut server, mut s_out) = crafting(version);
            let mut c_out = Out::default();
            client.seal_any(23, b"a1 NOOP\r\n", &mut c_out);
            c_out.bytes[c_out.used - 1] ^= 1;
            assert!(to_server(&mut c_out, &mut server, &mut s_out, &mut Vec::new()).is_err());
            assert_eq!(alert_sent(&mut client, &mut s_out), bad_mac);

            let (mut client, mut server, mut s_out) = crafting(version);
            server.receive(vec![23, 3, 3, 0x48, 0x01]);
            assert!(server.advance(&mut Vec::new(), &mut s_out).is_err());
            assert_eq!(alert_sent(&mut client, &mut s_out), overflow);
        }
        // An unprotected change_cipher_spec after a TLS 1.3 handshake; an unprotected alert's
        // header alone, refused before its body comes.
        for header in [&[20, 3, 3, 0, 1, 1][..], &[21, 3, 3, 0, 2]] {
            let (mut client, mut server, mut s_out) = crafting(&TLS13);
            server.receive(header.to_vec());
            assert!(server.advance(&mut Vec::new(), &mut s_out).is_err());
            assert_eq!(alert_sent(&mut client, &mut s_out), unexpected);
        }
    }

    #[test]
    fn alerts_a_client_may_send_are_read_as_the_rfcs_say() {
        for version in [&TLS13, &TLS12] {
            // user_canceled (TLS 1.3) or a warning (TLS 1.2) is passed over; close_notify
            // ends the input, and what follows it is not read.
            let (mut client, mut server, mut s_out) = crafting(version);
            let mut c_out = Out::default();
            client.seal_any(23, b"a1 NOOP\r\n", &mut c_out);
            client.seal_any(21, &[1, 90], &mut c_out);
            client.seal_any(21, &[1, 0], &mut c_out);
            client.seal_any(23, b"a2 NOOP\r\n", &mut c_out);
            let mut plain = Vec::new();
            let stage = to_server(&mut c_out, &mut server, &mut s_out, &mut plain).unwrap();
            assert_eq!((stage, &plain[..]), (Stage::PeerClosed, &b"a1 NOOP\r\n"[..]));
            // A fatal alert ends the connection, with no alert of our own.
            let (mut client, mut server, mut s_out) = crafting(version);
            client.seal_any(21, &[2, 40], &mut c_out);
            let err = to_server(&mut c_out, &mut server, &mut s_out, &mut Vec::new()).unwrap_err();
            assert!(err.to_string().contains("alert 40"), "{err}");
            assert!(s_out.is_empty());
        }
    }

    #[test]
    fn a_key_update_in_pieces_is_taken_and_answered_once() {
        let (mut client, mut server, mut s_out) = crafting(&TLS13);
        let mut c_out = Out::default();
        // Two KeyUpdates asking for ours, the second split over two records.
        client.seal_any(22, &[24, 0, 0, 1, 1], &mut c_out);
        client.next_key(true);
        client.seal_any(22, &[24, 0], &mut c_out);
        client.seal_any(22, &[0, 1, 1], &mut c_out);
        client.next_key(true);
        client.seal_any(23, b"a1 NOOP\r\n", &mut c_out);
        let mut plain = Vec::new();
        to_server(&mut c_out, &mut server, &mut s_out, &mut plain).unwrap();
        assert_eq!(plain, b"a1 NOOP\r\n");
        server.seal(&[IoSlice::new(b"a1 OK\r\n")], &mut s_out).unwrap();
        // One KeyUpdate (not asking for one back) under the old key, then data under the next.
        let mut sent = records(&mut s_out).into_iter();
        let (kind, payload) = client.open_any(&mut sent.next().unwrap());
        assert_eq!((kind, &payload[..]), (22, &[24, 0, 0, 1, 0][..]));
        client.next_key(false);
        let (kind, payload) = client.open_any(&mut sent.next().unwrap());
        assert_eq!((kind, &payload[..]), (23, &b"a1 OK\r\n"[..]));
        assert!(sent.next().is_none());
    }

    #[test]
    fn a_key_update_that_came_with_the_finished_is_answered() {
        // The client's Finished, a KeyUpdate asking for ours and a command: one read. With
        // session tickets to send, rustls pauses after the Finished and `Records` takes the
        // KeyUpdate; without, rustls reads it, and the connection stays with rustls.
        for tickets in [2, 0] {
            let (mut client, mut server) = pair_with(&TLS13, None, true, tickets);
            let (mut c_out, mut s_out) = all_but_finished(&mut client, &mut server);
            let mut client = client.client_records().unwrap();
            client.seal_any(22, &[24, 0, 0, 1, 1], &mut c_out);
            client.next_key(true);
            client.seal_any(23, b"a1 NOOP\r\n", &mut c_out);
            server.receive(c_out.bytes[..c_out.used].to_vec());
            s_out.used = 0;
            let mut plain = Vec::new();
            server.handshake_step(&mut s_out).unwrap();
            server.advance(&mut plain, &mut s_out).unwrap();
            assert_eq!(plain, b"a1 NOOP\r\n");
            assert_eq!(matches!(server.side, Side::Records(_)), tickets > 0);
            server.seal(&[IoSlice::new(b"a1 OK\r\n")], &mut s_out).unwrap();
            // The session tickets, then our KeyUpdate, then the reply under the next key.
            let mut sent = records(&mut s_out).into_iter();
            let answer = loop {
                let (kind, payload) = client.open_any(&mut sent.next().expect("a KeyUpdate"));
                assert_eq!(kind, 22);
                if payload[0] == 24 {
                    break payload;
                }
                assert_eq!(payload[0], 4, "a session ticket");
            };
            assert_eq!(answer, [24, 0, 0, 1, 0]);
            client.next_key(false);
            let (kind, payload) = client.open_any(&mut sent.next().unwrap());
            assert_eq!((kind, &payload[..]), (23, &b"a1 OK\r\n"[..]), "{tickets} tickets");
        }
    }

    #[test]
    fn a_key_that_has_sealed_its_share_is_updated_or_the_connection_ends() {
        let data = vec![b'y'; 5 * RECORD];
        for suite in tls13_suites() {
            let (mut client, mut server) = pair_with(&TLS13, Some(suite), true, 2);
            let (mut c_out, mut s_out) = handshake(&mut client, &mut server, 1 << 20);
            let Side::Records(records) = &mut server.side else {
                unreachable!()
            };
            records.set_limit(2);
            server.seal(&[IoSlice::new(&data)], &mut s_out).unwrap();
            // rustls, as the client, follows our KeyUpdates.
            assert_eq!(deliver(&mut s_out, &mut client, &mut c_out, 1 << 20), data, "{suite:?}");
            client.seal(&[IoSlice::new(b"a1 NOOP\r\n")], &mut c_out).unwrap();
            assert_eq!(deliver(&mut c_out, &mut server, &mut s_out, 1 << 20), b"a1 NOOP\r\n");
        }

        let (mut client, mut server) = pair(&TLS12);
        let (_, mut s_out) = handshake(&mut client, &mut server, 1 << 20);
        let Side::Records(records) = &mut server.side else {
            unreachable!()
        };
        records.set_limit(2);
        assert!(server.seal(&[IoSlice::new(&data)], &mut s_out).is_err());
    }

    #[test]
    fn a_resting_connection_makes_its_keys_again() {
        for version in [&TLS13, &TLS12] {
            let (mut client, mut server) = pair(version);
            let (mut c_out, mut s_out) = handshake(&mut client, &mut server, 1 << 20);
            for round in 0..3 {
                server.rest();
                client.seal(&[IoSlice::new(b"a1 NOOP\r\n")], &mut c_out).unwrap();
                assert_eq!(deliver(&mut c_out, &mut server, &mut s_out, 1 << 20), b"a1 NOOP\r\n");
                server.rest();
                server.seal(&[IoSlice::new(b"a1 OK\r\n")], &mut s_out).unwrap();
                assert_eq!(
                    deliver(&mut s_out, &mut client, &mut c_out, 1 << 20),
                    b"a1 OK\r\n",
                    "{round}"
                );
            }
            assert!(server
                .description()
                .unwrap()
                .starts_with(if version == &TLS13 { "TLSv1.3" } else { "TLSv1.2" }));
        }
    }

    /// A front end's session passed on (`net::handoff`) to a back end: the new server reads
    /// what the front end had decrypted and not relayed, then the rest of a record the front
    /// end had begun to receive, and the session goes on both ways (TLS 1.3 key updates too),
    /// for every suite.
    #[test]
    fn a_session_passed_on_goes_on_at_the_back_end() {
        use super::super::handoff::{self, Frame};
        let suites = default_provider().cipher_suites;
        for (version, suite) in every_suite() {
            let (mut client, mut front) = pair_with(version, Some(suite), true, 2);
            let (mut c_out, mut f_out) = handshake(&mut client, &mut front, 4096);
            front.seal(&[IoSlice::new(b"a1 OK LOGIN\r\n")], &mut f_out).unwrap();
            assert_eq!(deliver(&mut f_out, &mut client, &mut c_out, 4096), b"a1 OK LOGIN\r\n");
            // The client pipelines two commands; the front end has the first and half the
            // second's record when it passes the session on.
            client
                .seal(&[IoSlice::new(b"a2 SELECT INBOX\r\n")], &mut c_out)
                .unwrap();
            let first = c_out.used;
            client.seal(&[IoSlice::new(b"a3 IDLE\r\n")], &mut c_out).unwrap();
            let wire = c_out.bytes[..c_out.used].to_vec();
            c_out.used = 0;
            let half = first + (wire.len() - first) / 2;
            front.receive(wire[..half].to_vec());
            let mut relayed = Vec::new();
            front.advance(&mut relayed, &mut f_out).unwrap();
            assert_eq!(relayed, b"a2 SELECT INBOX\r\n");
            let state = front.pass_on(b"a2 SELECT INBOX\r\n").expect("passed");
            let mut frame = handoff::passed(&state).unwrap();
            let framed = frame.len();
            frame.extend_from_slice(&wire[half..]);
            for cut in 0..framed {
                assert!(handoff::parse(&frame[..cut], &suites).unwrap().is_none(), "{cut}");
            }
            let (Frame::Passed(mut back), used) = handoff::parse(&frame, &suites).unwrap().unwrap() else {
                panic!("kept");
            };
            assert_eq!(used, framed);
            back.receive(frame[used..].to_vec());
            let mut plain = Vec::new();
            let mut b_out = Out::default();
            back.advance(&mut plain, &mut b_out).unwrap();
            assert_eq!(plain, b"a2 SELECT INBOX\r\na3 IDLE\r\n", "{suite:?}");
            back.seal(&[IoSlice::new(b"+ idling\r\n")], &mut b_out).unwrap();
            assert_eq!(deliver(&mut b_out, &mut client, &mut c_out, 4096), b"+ idling\r\n");
            if version == &TLS13 {
                update_client_keys(&mut client);
            }
            client.seal(&[IoSlice::new(b"DONE\r\n")], &mut c_out).unwrap();
            assert_eq!(deliver(&mut c_out, &mut back, &mut b_out, 4096), b"DONE\r\n");
            back.seal(&[IoSlice::new(b"a3 OK\r\n")], &mut b_out).unwrap();
            assert_eq!(
                deliver(&mut b_out, &mut client, &mut c_out, 4096),
                b"a3 OK\r\n",
                "{suite:?}"
            );
        }
    }

    /// A session is passed on only between whole records of a settled key, and only to a
    /// back end that offers its suite; a frame that is not one is refused.
    #[test]
    fn a_session_is_passed_only_when_the_back_end_can_go_on_with_it() {
        use super::super::handoff;
        let (mut client, mut front, mut f_out) = crafting(&TLS13);
        // Half a KeyUpdate read: the other half would come under the old key.
        let mut c_out = Out::default();
        client.seal_any(22, &[24, 0], &mut c_out);
        to_server(&mut c_out, &mut front, &mut f_out, &mut Vec::new()).unwrap();
        assert!(front.pass_on(b"").is_none());

        let (mut client, mut front) = pair(&TLS13);
        handshake(&mut client, &mut front, 4096);
        let frame = handoff::passed(&front.pass_on(b"").unwrap()).unwrap();
        let mut others = default_provider().cipher_suites;
        let ours = front.description().unwrap();
        others.retain(|s| !ours.ends_with(&format!("{:?}", s.suite())));
        assert!(handoff::parse(&frame, &others).is_err());
        assert!(handoff::parse(b"a1 NOOP\r\n", &others).is_err());
        // A key that is not its traffic secret's (the frame's head, the suite, the cipher,
        // then the sending key), or a count past the end.
        let all = default_provider().cipher_suites;
        assert!(handoff::parse(&frame, &all).unwrap().is_some());
        for at in [16, frame.len() - 1] {
            let mut damaged = frame.clone();
            damaged[at] ^= 1;
            assert!(handoff::parse(&damaged, &all).is_err(), "{at}");
        }
        let kept = handoff::kept();
        assert!(matches!(
            handoff::parse(&kept, &others).unwrap(),
            Some((handoff::Frame::Kept, n)) if n == kept.len()
        ));
    }
}
