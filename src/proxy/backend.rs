//! Opening a user's session on the back end that holds the mailbox: connect, say who the
//! client is (PROXY v2), wait for the greeting and log in as the front end on the user's
//! behalf (SASL PLAIN with the user as authorization identity, RFC 4616). What is protocol
//! specific is only the greeting and the login exchange.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;

use super::proxy_v2;
use crate::runtime::io::Stream;

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
}

/// A logged-in back-end connection.
pub struct Opened {
    pub stream: Stream,
    /// The back end's answer to the login, after the status (`OK ...`): passed on to the
    /// client, whose capabilities are the back end's.
    pub answer: String,
    /// Bytes the back end sent after its answer.
    pub rest: Vec<u8>,
}

/// Opens an IMAP session for `user` on the back end at `addr`.
pub async fn open_imap(
    addr: SocketAddr,
    (client, local): (SocketAddr, SocketAddr),
    user: &str,
    (proxy_user, secret): (&str, &str),
) -> Result<Opened, BackendError> {
    let work = async {
        let stream = Stream::connect(addr)
            .await
            .map_err(|e| BackendError::Unreachable(addr, e))?;
        let mut lines = Lines::default();
        write(&stream, proxy_v2::encode(client, local), addr).await?;
        let greeting = lines.next(&stream, addr).await?;
        if !greeting.starts_with(b"* OK") {
            return Err(BackendError::Refused(
                addr,
                String::from_utf8_lossy(&greeting).into_owned(),
            ));
        }
        let plain = base64::engine::general_purpose::STANDARD.encode(format!("{user}\0{proxy_user}\0{secret}"));
        write(&stream, format!("P1 AUTHENTICATE PLAIN {plain}\r\n").into_bytes(), addr).await?;
        loop {
            let line = lines.next(&stream, addr).await?;
            let Some(answer) = line.strip_prefix(b"P1 ") else {
                continue; // untagged data before the answer
            };
            let answer = String::from_utf8_lossy(answer).trim_end().to_owned();
            if !answer.starts_with("OK") {
                return Err(BackendError::Refused(addr, answer));
            }
            return Ok(Opened {
                stream,
                answer,
                rest: lines.buf,
            });
        }
    };
    tokio::time::timeout(BACKEND_TIMEOUT, work)
        .await
        .unwrap_or(Err(BackendError::Timeout(addr)))
}

async fn write(stream: &Stream, bytes: Vec<u8>, addr: SocketAddr) -> Result<(), BackendError> {
    let (r, _) = stream.write_all(bytes).await;
    r.map_err(|e| BackendError::Unreachable(addr, e))
}

/// CRLF lines from the back end, before the relay takes over.
#[derive(Default)]
struct Lines {
    buf: Vec<u8>,
}

impl Lines {
    /// Longest line accepted while logging in (a CAPABILITY line is long, not this long).
    const MAX: usize = 64 * 1024;

    async fn next(&mut self, stream: &Stream, addr: SocketAddr) -> Result<Vec<u8>, BackendError> {
        loop {
            if let Some(end) = memchr::memmem::find(&self.buf, b"\r\n") {
                let line = self.buf[..end].to_vec();
                self.buf.drain(..end + 2);
                return Ok(line);
            }
            if self.buf.len() > Self::MAX {
                return Err(BackendError::Refused(addr, "line too long".into()));
            }
            let (r, buf) = stream.read(std::mem::take(&mut self.buf)).await;
            self.buf = buf;
            match r {
                Ok(n) if n > 0 => {}
                Ok(_) => return Err(BackendError::Closed(addr)),
                Err(e) => return Err(BackendError::Unreachable(addr, e)),
            }
        }
    }
}
