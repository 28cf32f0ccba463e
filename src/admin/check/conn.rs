//! One connection of `ringmail check`: TCP, then TLS (implicit, or after STARTTLS/STLS),
//! answer lines and counted bytes in, whole commands out.
//!
//! Invariants: every read waits at most until the deadline the last `send` (or the connect,
//! or the handshake) set, `timeout` after it; after any failure the connection is broken and
//! every later call fails at once with `CheckError::Broken`, so a step after a timeout never
//! waits a second time on the same dead peer.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

use super::{CheckError, Target};

/// The longest answer line, and the largest literal, a check takes: far above anything it
/// asks for, low enough that a broken server cannot make it hoard memory.
pub(super) const MAX_LINE: usize = 1 << 20;

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    /// Only while the TLS handshake runs, and after it failed.
    Gone,
}

pub(super) struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    timeout: Duration,
    deadline: Instant,
    broken: bool,
    /// The largest literal `read_bytes` takes.
    max_literal: usize,
}

impl Conn {
    /// A plaintext connection to `port` on the first of the target's addresses that takes it.
    pub fn connect(target: &Target, port: u16) -> Result<Conn, CheckError> {
        let mut last = CheckError::Closed;
        for ip in &target.addresses {
            let addr = SocketAddr::new(*ip, port);
            match open(addr, target.timeout) {
                Ok(tcp) => {
                    return Ok(Conn {
                        stream: Stream::Plain(tcp),
                        buf: Vec::new(),
                        timeout: target.timeout,
                        deadline: Instant::now() + target.timeout,
                        broken: false,
                        max_literal: MAX_LINE,
                    })
                }
                Err(source) => last = CheckError::Connect { addr, source },
            }
        }
        Err(last)
    }

    /// A connection to `port` with TLS from the first byte (ports 993, 995, 465).
    pub fn connect_tls(target: &Target, port: u16) -> Result<Conn, CheckError> {
        let mut conn = Conn::connect(target, port)?;
        conn.start_tls(target)?;
        Ok(conn)
    }

    /// The TLS handshake, verifying the server as `target.server_name`. Plaintext that came
    /// with the answer to STARTTLS would be read as if it came over TLS (the injection of
    /// CVE-2011-0411 and of "NO STARTTLS", USENIX Security 2021): refused, never carried over.
    pub fn start_tls(&mut self, target: &Target) -> Result<(), CheckError> {
        if self.broken {
            return Err(CheckError::Broken);
        }
        if !self.buf.is_empty() {
            self.broken = true;
            return Err(CheckError::Unexpected {
                command: "STARTTLS",
                answer: "plaintext after the answer".into(),
            });
        }
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            self.broken = true;
            return Err(CheckError::Tls("TLS is on already".into()));
        };
        let session = ClientConnection::new(target.tls.clone(), target.server_name.clone()).map_err(|e| {
            self.broken = true;
            CheckError::Tls(e.to_string())
        })?;
        let mut tls = StreamOwned::new(session, tcp);
        self.deadline = Instant::now() + self.timeout;
        while tls.conn.is_handshaking() {
            let left = self.left()?;
            let step = tls
                .sock
                .set_read_timeout(Some(left))
                .and_then(|()| tls.conn.complete_io(&mut tls.sock));
            if let Err(e) = step {
                return Err(self.fail(e));
            }
        }
        self.stream = Stream::Tls(Box::new(tls));
        Ok(())
    }

    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Our end of the connection, for an EHLO address literal.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.stream {
            Stream::Plain(s) => s.local_addr().ok(),
            Stream::Tls(s) => s.sock.local_addr().ok(),
            Stream::Gone => None,
        }
    }

    /// Sends `bytes`; the answer to them is due within the timeout from now.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), CheckError> {
        if self.broken {
            return Err(CheckError::Broken);
        }
        self.deadline = Instant::now() + self.timeout;
        let written = match &mut self.stream {
            Stream::Plain(s) => s.write_all(bytes),
            Stream::Tls(s) => s.write_all(bytes).and_then(|()| s.flush()),
            Stream::Gone => Err(io::ErrorKind::NotConnected.into()),
        };
        written.map_err(|e| self.fail(e))
    }

    /// One answer line without its CRLF.
    pub fn read_line(&mut self) -> Result<Vec<u8>, CheckError> {
        if self.broken {
            return Err(CheckError::Broken);
        }
        let mut scanned = 0;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[scanned..]) {
                let mut line: Vec<u8> = self.buf.drain(..=scanned + i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            scanned = self.buf.len();
            if scanned > MAX_LINE {
                self.broken = true;
                return Err(CheckError::TooLong(MAX_LINE));
            }
            self.fill()?;
        }
    }

    pub fn allow_literals(&mut self, max: usize) {
        self.max_literal = max;
    }

    /// Exactly `n` bytes (an IMAP literal).
    pub fn read_bytes(&mut self, n: usize) -> Result<Vec<u8>, CheckError> {
        if self.broken {
            return Err(CheckError::Broken);
        }
        if n > self.max_literal {
            self.broken = true;
            return Err(CheckError::TooLong(self.max_literal));
        }
        while self.buf.len() < n {
            self.fill()?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn fill(&mut self) -> Result<(), CheckError> {
        let left = self.left()?;
        let mut chunk = [0u8; 16 * 1024];
        let read = match &mut self.stream {
            Stream::Plain(s) => s.set_read_timeout(Some(left)).and_then(|()| s.read(&mut chunk)),
            Stream::Tls(s) => s.sock.set_read_timeout(Some(left)).and_then(|()| s.read(&mut chunk)),
            Stream::Gone => Ok(0),
        };
        match read {
            Ok(0) => {
                self.broken = true;
                Err(CheckError::Closed)
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// The time left before the deadline, or the timeout error once it has passed.
    fn left(&mut self) -> Result<Duration, CheckError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            self.broken = true;
            return Err(CheckError::Timeout(self.timeout.as_secs()));
        }
        Ok(left)
    }

    fn fail(&mut self, e: io::Error) -> CheckError {
        self.broken = true;
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => CheckError::Timeout(self.timeout.as_secs()),
            io::ErrorKind::UnexpectedEof => CheckError::Closed,
            _ => match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                Some(tls) => CheckError::Tls(tls.to_string()),
                None => CheckError::Io(e),
            },
        }
    }
}

fn open(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let tcp = TcpStream::connect_timeout(&addr, timeout)?;
    tcp.set_write_timeout(Some(timeout))?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// `--insecure`: TLS that takes any certificate for any name. The handshake signatures are
/// still checked, so the session is encrypted to whoever holds the certificate's key; only
/// who that is goes unverified.
pub(crate) fn insecure_config() -> anyhow::Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AnyCertificate(provider.clone()));
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
