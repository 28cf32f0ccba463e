//! Opening a user's session on the back end that holds the mailbox: connect, say who the
//! client is (PROXY v2), wait for the greeting and log in as the front end on the user's
//! behalf (SASL PLAIN with the user as authorization identity, RFC 4616, in IMAP's
//! AUTHENTICATE, POP3's AUTH or SMTP's AUTH). What is protocol specific is only the greeting
//! and the login exchange.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

use super::proxy_v2;
use crate::auth::policy::Protocol;
use rustls::pki_types::ServerName;

use crate::net::Conn;
use crate::runtime::io::Stream;
use crate::smtp::client::{Reply, ReplyParser};

/// How long a back end gets to connect, greet and answer the login.
const BACKEND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("back end {0} unreachable: {1}")]
    Unreachable(SocketAddr, std::io::Error),
    #[error("back end {0} did not answer in time")]
    Timeout(SocketAddr),
    #[error("back end {0} closed the connection")]
    Closed(SocketAddr),
    #[error("back end {0} refused the login: {1}")]
    Refused(SocketAddr, String),
    #[error("back end {0} is down: not trying it again yet")]
    Down(SocketAddr),
    #[error("TLS to back end {0}: {1}")]
    Tls(SocketAddr, String),
}

impl BackendError {
    /// Whether this says the back end is not there, rather than that it answered.
    pub fn is_outage(&self) -> bool {
        !matches!(self, BackendError::Refused(..))
    }
}

/// A logged-in back-end connection.
pub struct Opened {
    pub conn: Conn,
    /// The back end's answer to the login: for IMAP its text after the tag (`OK ...`, passed
    /// on under the client's tag, with the back end's capabilities), for POP3 and SMTP the
    /// whole reply, passed on as it is.
    pub answer: String,
    /// Bytes the back end sent after its answer.
    pub rest: Vec<u8>,
    /// The back end waits for the client's TLS session (`LinkMode::PassTls`).
    pub pass_tls: bool,
}

/// TLS to a back end: the client configuration with the CAs its certificate must chain to,
/// and the name it must carry.
pub type BackendTls = (Arc<rustls::ClientConfig>, ServerName<'static>);

/// How a link to a back end is made.
#[derive(Clone, Copy)]
pub enum LinkMode<'a> {
    /// In the clear.
    Clear,
    /// In the clear, and the client's TLS session is passed to the back end after its login
    /// (`net::handoff`, announced in the PROXY header).
    PassTls,
    /// Over TLS, to a certificate that chains to the configured CAs and carries the name.
    Tls(&'a BackendTls),
}

/// Connects to the back end at `addr`, says who the client is (PROXY v2, always in the
/// clear: it comes before any TLS, as HAProxy sends it) and, over `LinkMode::Tls`, starts TLS.
pub async fn connect(
    addr: SocketAddr,
    (client, local): (SocketAddr, SocketAddr),
    mode: LinkMode<'_>,
) -> Result<Conn, BackendError> {
    let stream = Stream::connect(addr)
        .await
        .map_err(|e| BackendError::Unreachable(addr, e))?;
    let conn = Conn::new(stream, Some(addr.ip()));
    let pass_tls = matches!(mode, LinkMode::PassTls);
    write(&conn, proxy_v2::encode(client, local, pass_tls), addr).await?;
    if let LinkMode::Tls((config, name)) = mode {
        conn.start_tls_client(config.clone(), name.clone())
            .await
            .map_err(|e| BackendError::Tls(addr, e.to_string()))?;
    }
    Ok(conn)
}

/// Opens a session of `protocol` for `user` on the back end at `addr`: PROXY v2 with the
/// client's address, TLS where configured, then the front end's own login on the user's behalf.
pub async fn open(
    protocol: Protocol,
    addr: SocketAddr,
    ends: (SocketAddr, SocketAddr),
    mode: LinkMode<'_>,
    user: &str,
    (proxy_user, secret): (&str, &str),
    hostname: &str,
) -> Result<Opened, BackendError> {
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("{user}\0{proxy_user}\0{secret}"));
    let work = async {
        let stream = connect(addr, ends, mode).await?;
        let mut lines = Lines::default();
        let refused = |reply: &[u8]| BackendError::Refused(addr, String::from_utf8_lossy(reply).trim_end().to_owned());
        let answer = match protocol {
            Protocol::Imap => {
                let greeting = lines.next(&stream, addr).await?;
                if !greeting.starts_with(b"* OK") {
                    return Err(refused(&greeting));
                }
                write(&stream, format!("P1 AUTHENTICATE PLAIN {plain}\r\n").into_bytes(), addr).await?;
                // Untagged data may come before the answer.
                let answer = loop {
                    let line = lines.next(&stream, addr).await?;
                    if let Some(answer) = line.strip_prefix(b"P1 ") {
                        break answer.to_vec();
                    }
                };
                if !answer.starts_with(b"OK") {
                    return Err(refused(&answer));
                }
                answer
            }
            Protocol::Pop3 => {
                let greeting = lines.next(&stream, addr).await?;
                if !greeting.starts_with(b"+OK") {
                    return Err(refused(&greeting));
                }
                // RFC 5034 §4: AUTH with an initial response.
                write(&stream, format!("AUTH PLAIN {plain}\r\n").into_bytes(), addr).await?;
                let answer = lines.next(&stream, addr).await?;
                if !answer.starts_with(b"+OK") {
                    return Err(refused(&answer));
                }
                answer
            }
            Protocol::Submission => {
                let refused = |reply: Reply| BackendError::Refused(addr, reply.text());
                let greeting = lines.reply(&stream, addr).await?;
                if greeting.code != 220 {
                    return Err(refused(greeting));
                }
                write(&stream, format!("EHLO {hostname}\r\n").into_bytes(), addr).await?;
                let ehlo = lines.reply(&stream, addr).await?;
                if ehlo.code != 250 {
                    return Err(refused(ehlo));
                }
                write(&stream, format!("AUTH PLAIN {plain}\r\n").into_bytes(), addr).await?;
                let answer = lines.reply(&stream, addr).await?;
                if answer.code != 235 {
                    return Err(refused(answer));
                }
                answer.text().into_bytes()
            }
        };
        Ok(Opened {
            conn: stream,
            answer: String::from_utf8_lossy(&answer).trim_end().to_owned(),
            rest: lines.buf,
            pass_tls: matches!(mode, LinkMode::PassTls),
        })
    };
    tokio::time::timeout(BACKEND_TIMEOUT, work)
        .await
        .unwrap_or(Err(BackendError::Timeout(addr)))
}

pub async fn write(conn: &Conn, mut bytes: Vec<u8>, addr: SocketAddr) -> Result<(), BackendError> {
    conn.write(&mut bytes)
        .await
        .map_err(|e| BackendError::Unreachable(addr, e))
}

/// CRLF lines from the back end, before the relay takes over.
#[derive(Default)]
pub struct Lines {
    buf: Vec<u8>,
}

impl Lines {
    /// A whole SMTP or LMTP reply (RFC 5321 §4.2.1: `250-` lines go on, `250 ` ends it).
    pub async fn reply(&mut self, stream: &Conn, addr: SocketAddr) -> Result<Reply, BackendError> {
        let mut parser = ReplyParser::default();
        loop {
            let line = self.next(stream, addr).await?;
            match parser.line(&line) {
                Ok(Some(reply)) => return Ok(reply),
                Ok(None) => {}
                Err(e) => {
                    return Err(BackendError::Refused(
                        addr,
                        format!("{e}: {}", String::from_utf8_lossy(&line)),
                    ))
                }
            }
        }
    }

    /// Longest line accepted while logging in (a CAPABILITY line is long, not this long).
    const MAX: usize = 64 * 1024;

    pub async fn next(&mut self, stream: &Conn, addr: SocketAddr) -> Result<Vec<u8>, BackendError> {
        loop {
            if let Some(end) = memchr::memmem::find(&self.buf, b"\r\n") {
                let line = self.buf[..end].to_vec();
                self.buf.drain(..end + 2);
                return Ok(line);
            }
            if self.buf.len() > Self::MAX {
                return Err(BackendError::Refused(addr, "line too long".into()));
            }
            match stream.read(&mut self.buf).await {
                Ok(n) if n > 0 => {}
                Ok(_) => return Err(BackendError::Closed(addr)),
                Err(e) => return Err(BackendError::Unreachable(addr, e)),
            }
        }
    }
}
