//! A line-oriented client connection, plaintext or TLS, upgradable in place (STARTTLS/STLS).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    /// Only while upgrading.
    Gone,
}

pub struct Transport {
    stream: Stream,
    buf: Vec<u8>,
}

/// A client configuration that trusts exactly the certificate in `ca_pem` (ringmail's
/// generated `cert.pem`): real verification, no "insecure" switch.
pub fn tls_config(ca_pem: &Path) -> io::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).map_err(io::Error::other)? {
        roots.add(cert.map_err(io::Error::other)?).map_err(io::Error::other)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl Transport {
    pub fn connect(addr: SocketAddr) -> io::Result<Transport> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        stream.set_nodelay(true)?;
        Ok(Transport {
            stream: Stream::Plain(stream),
            buf: Vec::new(),
        })
    }

    pub fn connect_tls(addr: SocketAddr, config: Arc<ClientConfig>, name: &str) -> io::Result<Transport> {
        let mut t = Transport::connect(addr)?;
        t.start_tls(config, name)?;
        Ok(t)
    }

    pub fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.tcp().set_read_timeout(Some(timeout))
    }

    pub fn tcp(&self) -> &TcpStream {
        match &self.stream {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
            Stream::Gone => unreachable!("upgrade in progress"),
        }
    }

    /// Upgrades to TLS and completes the handshake; buffered plaintext is dropped.
    pub fn start_tls(&mut self, config: Arc<ClientConfig>, name: &str) -> io::Result<()> {
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(io::Error::other("already TLS"));
        };
        let name = ServerName::try_from(name.to_owned()).map_err(io::Error::other)?;
        let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        let mut tls = StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        self.stream = Stream::Tls(Box::new(tls));
        self.buf.clear();
        Ok(())
    }

    /// TLS 1.3: moves to the next sending key and asks the server to do the same (a KeyUpdate,
    /// RFC 8446 §4.6.3), sent before the next write.
    pub fn update_keys(&mut self) -> io::Result<()> {
        match &mut self.stream {
            Stream::Tls(s) => s.conn.refresh_traffic_keys().map_err(io::Error::other),
            _ => Err(io::Error::other("not TLS")),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.stream {
            Stream::Plain(s) => s.write_all(bytes),
            Stream::Tls(s) => {
                s.write_all(bytes)?;
                s.flush()
            }
            Stream::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    pub fn send_line(&mut self, line: &str) -> io::Result<()> {
        let mut bytes = line.as_bytes().to_vec();
        bytes.extend_from_slice(b"\r\n");
        self.send_raw(&bytes)
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 64 * 1024];
        let n = match &mut self.stream {
            Stream::Plain(s) => s.read(&mut chunk)?,
            Stream::Tls(s) => match s.read(&mut chunk) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
                other => other?,
            },
            Stream::Gone => 0,
        };
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// One line without CRLF; `UnexpectedEof` if the server closed first.
    pub fn read_line(&mut self) -> io::Result<Vec<u8>> {
        let mut scanned = 0;
        loop {
            if let Some(i) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i;
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            scanned = self.buf.len();
            if self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    pub fn read_line_string(&mut self) -> io::Result<String> {
        self.read_line().map(|l| String::from_utf8_lossy(&l).into_owned())
    }

    /// Whatever bytes are buffered, or the next batch from the socket (empty at close).
    pub fn read_some(&mut self) -> io::Result<Vec<u8>> {
        if self.buf.is_empty() {
            self.fill()?;
        }
        Ok(std::mem::take(&mut self.buf))
    }

    /// Reads until the server closes; returns what arrived.
    pub fn read_to_close(&mut self) -> io::Result<Vec<u8>> {
        while self.fill()? > 0 {}
        Ok(std::mem::take(&mut self.buf))
    }

    /// Bulk reads for callers that frame the data themselves: hands out what is already
    /// buffered first, then reads straight into `out`, so a large buffer costs no extra copy.
    /// Returns 0 when the peer has closed.
    pub fn read_available(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if !self.buf.is_empty() {
            let n = self.buf.len().min(out.len());
            out[..n].copy_from_slice(&self.buf[..n]);
            self.buf.drain(..n);
            return Ok(n);
        }
        match &mut self.stream {
            Stream::Plain(s) => s.read(out),
            Stream::Tls(s) => match s.read(out) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
            Stream::Gone => Ok(0),
        }
    }

    /// Reads bytes until `n` are buffered or the peer closes.
    pub fn read_exact_bytes(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }
}
