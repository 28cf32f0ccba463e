//! One client connection, plaintext or TLS, over owned buffers.
//!
//! rustls runs in its buffered mode: ciphertext read from the socket is fed to the
//! `ServerConnection`, plaintext comes out of its reader; plaintext written goes into its writer
//! and the ciphertext it produces is sent. Plaintext writes hand the caller's buffer to the
//! kernel and give it back, so bulk downloads are not copied on the way out.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection};

use crate::runtime::io::Stream;

/// Ciphertext read size while TLS is on; a TLS record is at most 16 KiB plus overhead.
const TLS_READ: usize = 17 * 1024;

pub struct Conn {
    stream: Stream,
    tls: Option<Box<ServerConnection>>,
    /// The client's address (loopback for unix-socket clients).
    pub peer: IpAddr,
}

impl Conn {
    pub fn new(stream: Stream, peer: Option<IpAddr>) -> Conn {
        Conn {
            stream,
            tls: None,
            peer: peer.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        }
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Runs the TLS handshake as the server (implicit TLS, or after STARTTLS/STLS).
    pub async fn start_tls(&mut self, config: Arc<ServerConfig>) -> io::Result<()> {
        let mut tls = Box::new(ServerConnection::new(config).map_err(io::Error::other)?);
        while tls.is_handshaking() {
            if tls.wants_write() {
                flush_tls(&self.stream, &mut tls).await?;
                continue;
            }
            if !read_tls(&self.stream, &mut tls).await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        if tls.wants_write() {
            flush_tls(&self.stream, &mut tls).await?;
        }
        self.tls = Some(tls);
        Ok(())
    }

    /// Appends plaintext from the client to `dst` (into its spare capacity when plaintext).
    /// Returns 0 at end of stream. If this future is dropped, the connection must be closed.
    pub async fn read(&mut self, dst: &mut Vec<u8>) -> io::Result<usize> {
        match &mut self.tls {
            None => {
                let (res, buf) = self.stream.read(std::mem::take(dst)).await;
                *dst = buf;
                res
            }
            Some(tls) => read_plaintext(&self.stream, tls, dst).await,
        }
    }

    /// Sends `data` and leaves it empty (capacity kept for reuse).
    pub async fn write(&mut self, data: &mut Vec<u8>) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        match &mut self.tls {
            None => {
                let (res, mut buf) = self.stream.write_all(std::mem::take(data)).await;
                buf.clear();
                *data = buf;
                res
            }
            Some(tls) => {
                tls.writer().write_all(data)?;
                data.clear();
                flush_tls(&self.stream, tls).await
            }
        }
    }

    /// Says goodbye at the TLS level (close_notify) where there is one, then ends the stream.
    pub async fn close(mut self) {
        if let Some(tls) = &mut self.tls {
            tls.send_close_notify();
            let _ = flush_tls(&self.stream, tls).await;
        }
        self.stream.shutdown();
    }
}

async fn read_plaintext(stream: &Stream, tls: &mut ServerConnection, dst: &mut Vec<u8>) -> io::Result<usize> {
    loop {
        let before = dst.len();
        match tls.reader().read_to_end(dst) {
            Ok(_) => return Ok(dst.len() - before),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if dst.len() > before {
                    return Ok(dst.len() - before);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(dst.len() - before),
            Err(e) => return Err(e),
        }
        if tls.wants_write() {
            flush_tls(stream, tls).await?;
        }
        if !read_tls(stream, tls).await? {
            return Ok(0);
        }
    }
}

/// Reads one batch of ciphertext into rustls. False at end of stream.
async fn read_tls(stream: &Stream, tls: &mut ServerConnection) -> io::Result<bool> {
    let (res, buf) = stream.read(Vec::with_capacity(TLS_READ)).await;
    if res? == 0 {
        return Ok(false);
    }
    let mut rest = &buf[..];
    while !rest.is_empty() {
        tls.read_tls(&mut rest)?;
        if let Err(e) = tls.process_new_packets() {
            // Send the alert rustls prepared, then give up on this connection.
            let _ = flush_tls(stream, tls).await;
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
    }
    Ok(true)
}

async fn flush_tls(stream: &Stream, tls: &mut ServerConnection) -> io::Result<()> {
    let mut out = Vec::new();
    while tls.wants_write() {
        tls.write_tls(&mut out)?;
    }
    if !out.is_empty() {
        stream.write_all(out).await.0?;
    }
    Ok(())
}
