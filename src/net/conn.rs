//! One client connection, plaintext or TLS, over owned buffers (or, for a front end, its
//! connection to a back end, where ringmail is the TLS client).
//!
//! rustls runs in its buffered mode: ciphertext read from the socket is fed to the
//! `Connection`, plaintext comes out of its reader; plaintext written goes into its writer
//! and the ciphertext it produces is sent from one buffer reused while output flows and given
//! back when the connection waits for input. Plaintext writes hand the caller's buffer to the
//! kernel and give it back; a `Gather` goes out as one gathered write, message bytes straight
//! from the store's map, so bulk downloads are not copied on the way out. Over TLS a `Gather`
//! is encrypted from its pieces, and its read transaction ends before the socket is awaited.
//!
//! Methods take `&self` so a read can wait while a write goes out (IMAP IDLE sends updates
//! while the client's DONE may arrive at any time). The TLS state is borrowed only between
//! awaits, never across one; writes are serialised so ciphertext records leave in order.

use std::cell::{Cell, RefCell};
use std::io::{self, IoSlice, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

use super::deflate::Deflate;
use super::gather::Gather;
use crate::runtime::io::Stream;

/// Ciphertext read size for bulk input; a TLS record is at most 16 KiB plus overhead.
pub const TLS_READ_BULK: usize = 17 * 1024;
/// Ciphertext read size while a connection waits (rustls takes records in pieces).
pub const TLS_READ_IDLE: usize = 512;
/// A read still waiting after this long gives back the ciphertext buffer. Not at once: a
/// pipelining client's next commands usually arrive within microseconds, and reallocating
/// (and faulting in) a buffer of a megabyte per batch costs as much as another copy.
const KEEP_BUFFERS_WHILE_READING: Duration = Duration::from_millis(50);

pub struct Conn {
    stream: Stream,
    tls: RefCell<Option<Box<Connection>>>,
    writing: tokio::sync::Mutex<()>,
    tls_read: Cell<usize>,
    /// Ciphertext on its way out, reused from write to write; given back when the connection
    /// waits for input, so an idle connection parks no big buffer.
    tls_out: Cell<Vec<u8>>,
    /// A read is waiting for the client.
    reading: Cell<bool>,
    /// COMPRESS=DEFLATE, inside TLS (RFC 4978 §4: compression happens before encryption).
    deflate: RefCell<Option<Box<Deflate>>>,
    /// The client's address (loopback for unix-socket clients).
    pub peer: IpAddr,
}

impl Conn {
    pub fn new(stream: Stream, peer: Option<IpAddr>) -> Conn {
        Conn {
            stream,
            tls: RefCell::new(None),
            writing: tokio::sync::Mutex::new(()),
            tls_read: Cell::new(TLS_READ_BULK),
            tls_out: Cell::new(Vec::new()),
            reading: Cell::new(false),
            deflate: RefCell::new(None),
            peer: peer.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        }
    }

    pub fn is_tls(&self) -> bool {
        self.tls.borrow().is_some()
    }

    /// The socket's descriptor, for `sessions` (a kick ends its reads).
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.stream.raw_fd()
    }

    /// The socket, when its bytes are the session's bytes as they are (no TLS, no DEFLATE), so
    /// they may be spliced (`net::splice`).
    pub fn plain_fd(&self) -> Option<std::os::fd::RawFd> {
        (!self.is_tls() && !self.is_compressed()).then(|| self.stream.raw_fd())
    }

    /// How much ciphertext one read asks for: small while idle, so a waiting connection
    /// parks no big buffer in the kernel.
    pub fn set_tls_read_size(&self, n: usize) {
        self.tls_read.set(n);
    }

    /// Runs the TLS handshake as the server (implicit TLS, or after STARTTLS/STLS).
    pub async fn start_tls(&self, config: Arc<ServerConfig>) -> io::Result<()> {
        let conn = ServerConnection::new(config).map_err(io::Error::other)?;
        self.run_handshake(conn.into()).await
    }

    /// Runs the TLS handshake as the client, checking that the server's certificate chains
    /// to `config`'s roots and names `name` (a front end to its back end).
    pub async fn start_tls_client(&self, config: Arc<ClientConfig>, name: ServerName<'static>) -> io::Result<()> {
        let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        self.run_handshake(conn.into()).await
    }

    async fn run_handshake(&self, mut conn: Connection) -> io::Result<()> {
        // Our callers bound each write themselves; rustls's own 64 KiB cap would only turn a
        // large write into a partial one.
        conn.set_buffer_limit(None);
        *self.tls.borrow_mut() = Some(Box::new(conn));
        let result = self.handshake().await;
        if result.is_err() {
            *self.tls.borrow_mut() = None;
        }
        result
    }

    async fn handshake(&self) -> io::Result<()> {
        loop {
            let (handshaking, wants_write) = {
                let tls = self.tls.borrow();
                let tls = tls.as_ref().expect("set by start_tls");
                (tls.is_handshaking(), tls.wants_write())
            };
            if wants_write {
                self.flush_tls().await?;
                continue;
            }
            if !handshaking {
                return Ok(());
            }
            if !self.read_tls(TLS_READ_BULK).await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Turns on COMPRESS=DEFLATE for everything after this point.
    /// `rate`: inflated bytes taken per second at most (0: no limit).
    pub fn start_deflate(&self, rate: u64) {
        *self.deflate.borrow_mut() = Some(Box::new(Deflate::with_rate(rate)));
    }

    pub fn is_compressed(&self) -> bool {
        self.deflate.borrow().is_some()
    }

    /// Inflates bytes that arrived compressed but were read before compression started; at
    /// most `INFLATE_PER_READ` bytes come out, and the next `read` gives the rest first.
    pub fn inflate_buffered(&self, raw: &[u8], dst: &mut Vec<u8>) -> io::Result<()> {
        match self.deflate.borrow_mut().as_mut() {
            Some(d) => d.inflate(raw, dst, super::deflate::INFLATE_PER_READ),
            None => {
                dst.extend_from_slice(raw);
                Ok(())
            }
        }
    }

    /// Appends the client's bytes to `dst`, decrypted and decompressed. Returns 0 at end of
    /// stream. If this future is dropped, the connection must be closed.
    pub async fn read(&self, dst: &mut Vec<u8>) -> io::Result<usize> {
        // A waiting connection (many parked in IDLE, or relayed) carries the room of its
        // read's future: plaintext takes the short way, the TLS and DEFLATE layers and the
        // timer that gives back buffers live on the heap while needed.
        if !self.is_tls() && !self.is_compressed() {
            return self.read_plain(dst).await;
        }
        if self.tls_out_capacity() == 0 {
            return Box::pin(self.read_inner(dst)).await;
        }
        Box::pin(self.read_giving_back(dst)).await
    }

    async fn read_plain(&self, dst: &mut Vec<u8>) -> io::Result<usize> {
        self.reading.set(true);
        let _reading = ReadingGuard(&self.reading);
        let (res, buf) = self.stream.read(std::mem::take(dst)).await;
        *dst = buf;
        res
    }

    /// `read`, giving back the ciphertext output buffer if the client keeps us waiting.
    async fn read_giving_back(&self, dst: &mut Vec<u8>) -> io::Result<usize> {
        let mut read = std::pin::pin!(self.read_inner(dst));
        tokio::select! {
            biased;
            n = &mut read => return n,
            () = tokio::time::sleep(KEEP_BUFFERS_WHILE_READING) => {}
        }
        // The client is thinking: the ciphertext buffer is not parked meanwhile.
        self.tls_out.take();
        read.await
    }

    fn tls_out_capacity(&self) -> usize {
        let out = self.tls_out.take();
        let capacity = out.capacity();
        self.tls_out.set(out);
        capacity
    }

    async fn read_inner(&self, dst: &mut Vec<u8>) -> io::Result<usize> {
        self.reading.set(true);
        let _reading = ReadingGuard(&self.reading);
        if !self.is_compressed() {
            return self.read_raw(dst).await;
        }
        let mut raw = Vec::with_capacity(dst.capacity().clamp(64, 16 * 1024));
        loop {
            let more = self.deflate.borrow().as_ref().is_some_and(|d| d.has_more());
            if !more && self.read_raw(&mut raw).await? == 0 {
                return Ok(0);
            }
            let before = dst.len();
            self.inflate_buffered(&raw, dst)?;
            raw.clear();
            if dst.len() > before {
                let n = dst.len() - before;
                let wait = self
                    .deflate
                    .borrow_mut()
                    .as_mut()
                    .and_then(|d| d.spend(n, std::time::Instant::now()));
                if let Some(wait) = wait {
                    tokio::time::sleep(wait).await;
                }
                return Ok(n);
            }
        }
    }

    /// `read` below the compression layer.
    async fn read_raw(&self, dst: &mut Vec<u8>) -> io::Result<usize> {
        if !self.is_tls() {
            let (res, buf) = self.stream.read(std::mem::take(dst)).await;
            *dst = buf;
            return res;
        }
        loop {
            let before = dst.len();
            let outcome = {
                let mut tls = self.tls.borrow_mut();
                let tls = tls.as_mut().expect("checked above");
                let r = tls.reader().read_to_end(dst);
                (r, tls.wants_write())
            };
            match outcome.0 {
                Ok(_) => return Ok(dst.len() - before),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if dst.len() > before {
                        return Ok(dst.len() - before);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(dst.len() - before),
                Err(e) => return Err(e),
            }
            if outcome.1 {
                self.flush_tls().await?;
            }
            if !self.read_tls(self.tls_read.get()).await? {
                return Ok(0);
            }
        }
    }

    /// Reads one batch of ciphertext into rustls. False at end of stream.
    async fn read_tls(&self, size: usize) -> io::Result<bool> {
        let (res, buf) = self.stream.read(Vec::with_capacity(size)).await;
        if res? == 0 {
            return Ok(false);
        }
        let failed = {
            let mut tls = self.tls.borrow_mut();
            let tls = tls.as_mut().ok_or(io::ErrorKind::NotConnected)?;
            let mut rest = &buf[..];
            let mut failed = None;
            while !rest.is_empty() && failed.is_none() {
                tls.read_tls(&mut rest)?;
                if let Err(e) = tls.process_new_packets() {
                    failed = Some(e);
                }
            }
            failed
        };
        if let Some(e) = failed {
            // Send the alert rustls prepared, then give up on this connection.
            let _ = self.flush_tls().await;
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        Ok(true)
    }

    /// Sends whatever ciphertext rustls has ready, in order with every other write.
    async fn flush_tls(&self) -> io::Result<()> {
        let _turn = self.writing.lock().await;
        let out = {
            let mut tls = self.tls.borrow_mut();
            let tls = tls.as_mut().ok_or(io::ErrorKind::NotConnected)?;
            self.take_ciphertext(tls)?
        };
        self.send_ciphertext(out).await
    }

    /// Everything rustls has ready to send, in the reused ciphertext buffer.
    fn take_ciphertext(&self, tls: &mut Connection) -> io::Result<Vec<u8>> {
        let mut out = self.tls_out.take();
        out.clear();
        while tls.wants_write() {
            tls.write_tls(&mut out)?;
        }
        Ok(out)
    }

    /// Sends ciphertext and keeps its buffer for the next write, unless a read is waiting
    /// for the client (then the buffer would only be parked).
    async fn send_ciphertext(&self, out: Vec<u8>) -> io::Result<()> {
        if out.is_empty() {
            self.tls_out.set(out);
            return Ok(());
        }
        let (res, out) = self.stream.write_all(out).await;
        if !self.reading.get() {
            self.tls_out.set(out);
        }
        res
    }

    /// Sends `data` and leaves it empty (capacity kept for reuse).
    pub async fn write(&self, data: &mut Vec<u8>) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let compressed = match self.deflate.borrow_mut().as_mut() {
            None => None,
            Some(d) => {
                let mut out = Vec::with_capacity(data.len() / 2 + 64);
                d.deflate(data, &mut out)?;
                data.clear();
                Some(out)
            }
        };
        match compressed {
            Some(mut out) => self.write_raw(&mut out).await,
            None => self.write_raw(data).await,
        }
    }

    /// `write` below the compression layer.
    async fn write_raw(&self, data: &mut Vec<u8>) -> io::Result<()> {
        let _turn = self.writing.lock().await;
        if !self.is_tls() {
            let (res, mut buf) = self.stream.write_all(std::mem::take(data)).await;
            buf.clear();
            *data = buf;
            return res;
        }
        let out = {
            let mut tls = self.tls.borrow_mut();
            let tls = tls.as_mut().expect("checked above");
            tls.writer().write_all(data)?;
            data.clear();
            self.take_ciphertext(tls)?
        };
        self.send_ciphertext(out).await
    }

    /// Sends the gathered pieces, in order with every other write, and leaves `gather` empty.
    /// Plaintext goes to the kernel as it is, message bytes straight from the store's map;
    /// TLS encrypts from the pieces themselves, and lets go of them (and the read
    /// transaction they hold) before waiting on the socket.
    pub async fn write_gather(&self, gather: &mut Gather) -> io::Result<()> {
        if gather.is_empty() {
            return Ok(());
        }
        let plaintext = gather.len();
        let pieces = gather.take();
        if self.is_compressed() {
            let mut data = Vec::with_capacity(pieces.iter().map(|p| p.len()).sum());
            for piece in &pieces {
                data.extend_from_slice(piece);
            }
            gather.recycle(pieces);
            return self.write(&mut data).await;
        }
        let _turn = self.writing.lock().await;
        if !self.is_tls() {
            let (res, sent) = self.stream.writev_all(pieces).await;
            gather.recycle(sent);
            return res;
        }
        let out = {
            let mut tls = self.tls.borrow_mut();
            let tls = tls.as_mut().expect("checked above");
            let mut slices: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
            let mut rest = &mut slices[..];
            // One call makes full-size records across piece boundaries.
            while !rest.is_empty() {
                match tls.writer().write_vectored(rest)? {
                    0 => return Err(io::ErrorKind::WriteZero.into()),
                    n => IoSlice::advance_slices(&mut rest, n),
                }
            }
            drop(slices);
            gather.recycle(pieces);
            // Room for it all at once: growing by doubling would copy it again.
            let mut out = self.tls_out.take();
            out.reserve(ciphertext_room(plaintext));
            self.tls_out.set(out);
            self.take_ciphertext(tls)?
        };
        self.send_ciphertext(out).await
    }

    /// "TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384", for Received: header fields.
    pub fn tls_description(&self) -> Option<String> {
        let tls = self.tls.borrow();
        let tls = tls.as_ref()?;
        let version = match tls.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
            _ => "TLS",
        };
        let suite = tls.negotiated_cipher_suite()?.suite();
        Some(format!("{version} with cipher {suite:?}"))
    }

    /// Says goodbye at the TLS level (close_notify) where there is one, then ends the stream.
    pub async fn close(self) {
        let has_tls = {
            let mut tls = self.tls.borrow_mut();
            if let Some(tls) = tls.as_mut() {
                tls.send_close_notify();
            }
            tls.is_some()
        };
        if has_tls {
            let _ = self.flush_tls().await;
        }
        self.stream.shutdown();
    }
}

/// Ciphertext for `plaintext` bytes: records of at most 16 KiB, each with at most 29 bytes of
/// header, explicit nonce and tag (TLS 1.2 AES-GCM; TLS 1.3 needs 22).
fn ciphertext_room(plaintext: usize) -> usize {
    plaintext + plaintext.div_ceil(16 * 1024) * 29 + 64
}

/// Marks the end of a read, however it ends (a dropped read future included).
struct ReadingGuard<'a>(&'a Cell<bool>);

impl Drop for ReadingGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}
