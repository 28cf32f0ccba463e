//! One client connection, plaintext or TLS, over owned buffers (or, for a front end, its
//! connection to a back end, where ringmail is the TLS client).
//!
//! TLS runs over rustls's unbuffered API and, past a server's handshake, our own records
//! (`net::tls`, `net::record`): ciphertext read from the socket waits
//! only while it is part of a record, so a connection waiting for input holds no TLS buffer;
//! ciphertext going out is made in one buffer reused while output flows and given back when
//! the connection waits for input. Plaintext writes hand the caller's buffer to the
//! kernel and give it back; a `Gather` goes out as one gathered write, message bytes straight
//! from the store's map, so bulk downloads are not copied on the way out. Over TLS a `Gather`
//! is encrypted from its pieces, and its read transaction ends before the socket is awaited.
//!
//! Methods take `&self` so a read can wait while a write goes out (IMAP IDLE sends updates
//! while the client's DONE may arrive at any time). The TLS state is borrowed only between
//! awaits, never across one; TLS writes are serialised so ciphertext records leave in order
//! (a read may have to send too: a key update, an alert). A plaintext connection has one
//! writer at a time, since its reads never write, and carries no lock.
//!
//! The TLS and COMPRESS layers live in one box made when the first of them starts: a
//! plaintext connection, which is what most parked sessions hold, carries a word for them.

use std::cell::{Cell, OnceCell, RefCell};
use std::io::{self, IoSlice};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};

use super::deflate::Deflate;
use super::gather::Gather;
use super::tls::{ciphertext_room, Out, Stage, Tls};
use crate::runtime::io::Stream;

/// Ciphertext read size for bulk input; a TLS record is at most 16 KiB plus overhead.
pub const TLS_READ_BULK: usize = 17 * 1024;
/// Ciphertext read size while a connection waits (records are taken in pieces).
pub const TLS_READ_IDLE: usize = 512;
/// A read still waiting after this long gives back the ciphertext buffer. Not at once: a
/// pipelining client's next commands usually arrive within microseconds, and reallocating
/// (and faulting in) a buffer of a megabyte per batch costs as much as another copy.
const KEEP_BUFFERS_WHILE_READING: Duration = Duration::from_millis(50);

pub struct Conn {
    stream: Stream,
    /// TLS and COMPRESS=DEFLATE, once either has started.
    layers: OnceCell<Box<Layers>>,
    /// A read is waiting for the client.
    reading: Cell<bool>,
    /// The client's address (loopback for unix-socket clients).
    pub peer: IpAddr,
}

struct Layers {
    tls: RefCell<Option<Tls>>,
    /// Turns at writing, made with the TLS state.
    writing: OnceCell<tokio::sync::Mutex<()>>,
    tls_read: Cell<u32>,
    /// Ciphertext on its way out, reused from write to write; given back when the connection
    /// waits for input, so an idle connection parks no big buffer.
    tls_out: Cell<Vec<u8>>,
    /// COMPRESS=DEFLATE, inside TLS (RFC 4978 §4: compression happens before encryption).
    deflate: RefCell<Option<Box<Deflate>>>,
}

impl Default for Layers {
    fn default() -> Layers {
        Layers {
            tls: RefCell::new(None),
            writing: OnceCell::new(),
            tls_read: Cell::new(TLS_READ_BULK as u32),
            tls_out: Cell::new(Vec::new()),
            deflate: RefCell::new(None),
        }
    }
}

impl Conn {
    pub fn new(stream: Stream, peer: Option<IpAddr>) -> Conn {
        Conn {
            stream,
            layers: OnceCell::new(),
            reading: Cell::new(false),
            peer: peer.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        }
    }

    /// The layers, made when the first of them starts.
    fn layers(&self) -> &Layers {
        self.layers.get_or_init(Box::default)
    }

    /// The TLS state, borrowed; `None` on plaintext.
    fn tls(&self) -> Option<std::cell::Ref<'_, Tls>> {
        let tls = self.layers.get()?.tls.borrow();
        std::cell::Ref::filter_map(tls, Option::as_ref).ok()
    }

    /// The DEFLATE state, borrowed mutably; `None` when uncompressed.
    fn deflate(&self) -> Option<std::cell::RefMut<'_, Deflate>> {
        let deflate = self.layers.get()?.deflate.borrow_mut();
        std::cell::RefMut::filter_map(deflate, |d| d.as_deref_mut()).ok()
    }

    /// DEFLATE output is still to come from input already inflated in part. Borrows the state
    /// only to look, as the read paths did before the layers were boxed.
    fn deflate_has_more(&self) -> bool {
        self.layers
            .get()
            .is_some_and(|l| l.deflate.borrow().as_ref().is_some_and(|d| d.has_more()))
    }

    /// Takes the reused ciphertext buffer (empty on plaintext).
    fn take_tls_out(&self) -> Vec<u8> {
        self.layers.get().map(|l| l.tls_out.take()).unwrap_or_default()
    }

    pub fn is_tls(&self) -> bool {
        self.tls().is_some()
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

    /// How much ciphertext one read asks for: `TLS_READ_IDLE` while the session is probably
    /// waiting (then a TLS read first waits for the socket's readiness holding no buffer),
    /// `TLS_READ_BULK` while input streams in.
    pub fn set_tls_read_size(&self, n: usize) {
        // Set before every read, so a plaintext connection, which has no use for it, need not
        // keep it for a TLS layer to come.
        if let Some(layers) = self.layers.get() {
            layers.tls_read.set(u32::try_from(n).unwrap_or(u32::MAX));
        }
    }

    /// Input already taken from the socket and not yet read out: a TLS record or its start,
    /// plaintext decrypted while a write drove the connection, DEFLATE output still to come.
    /// A connection that holds none has nothing to give until its socket is readable.
    pub fn holds_input(&self) -> bool {
        let tls = self.tls().is_some_and(|t| t.holds_input());
        tls || self.deflate_has_more()
    }

    /// The connection goes quiet (its session parks): the ciphertext buffer kept for the next
    /// write is given back, and the TLS keys' expansions (made again for the next record).
    pub fn rest(&self) {
        let Some(layers) = self.layers.get() else {
            return;
        };
        layers.tls_out.take();
        if let Ok(mut tls) = layers.tls.try_borrow_mut() {
            if let Some(tls) = tls.as_mut() {
                tls.rest();
            }
        }
    }

    /// Runs the TLS handshake as the server (implicit TLS, or after STARTTLS/STLS).
    pub async fn start_tls(&self, config: Arc<ServerConfig>) -> io::Result<()> {
        self.run_handshake(Tls::server(config)?).await
    }

    /// Runs the TLS handshake as the client, checking that the server's certificate chains
    /// to `config`'s roots and names `name` (a front end to its back end).
    pub async fn start_tls_client(&self, config: Arc<ClientConfig>, name: ServerName<'static>) -> io::Result<()> {
        self.run_handshake(Tls::client(config, name)?).await
    }

    async fn run_handshake(&self, tls: Tls) -> io::Result<()> {
        let layers = self.layers();
        *layers.tls.borrow_mut() = Some(tls);
        layers.writing.get_or_init(Default::default);
        let result = self.handshake().await;
        if result.is_err() {
            *layers.tls.borrow_mut() = None;
        }
        result
    }

    async fn handshake(&self) -> io::Result<()> {
        loop {
            let (step, out) = self.with_tls(self.reused_out(), |tls, out| {
                let stage = tls.handshake_step(out)?;
                Ok((stage, tls.is_handshaking()))
            })?;
            self.send_tls(out, &step).await?;
            // Done first: a client's Finished, its first command and its close_notify may
            // come in one read, and the command is still to be read.
            match step? {
                (_, false) => return Ok(()),
                (Stage::PeerClosed, true) => return Err(io::ErrorKind::UnexpectedEof.into()),
                (_, true) => {}
            }
            if !self.read_tls(TLS_READ_BULK).await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Runs `f` on the TLS state with `out` (empty) for its ciphertext; gives back what `f`
    /// returned and `out`, whose ciphertext (an alert, if `f` failed) is to be sent.
    fn with_tls<T>(
        &self,
        mut out: Out,
        f: impl FnOnce(&mut Tls, &mut Out) -> io::Result<T>,
    ) -> io::Result<(io::Result<T>, Out)> {
        let mut tls = self.layers.get().ok_or(io::ErrorKind::NotConnected)?.tls.borrow_mut();
        let tls = tls.as_mut().ok_or(io::ErrorKind::NotConnected)?;
        let result = f(tls, &mut out);
        Ok((result, out))
    }

    /// A TLS session a back end could take over (`net::handoff`): ours past its handshake.
    pub fn may_pass_tls(&self) -> bool {
        !self.is_compressed() && self.tls().is_some_and(|t| t.is_records())
    }

    /// Passes the client's TLS session on (`net::handoff`): the frame for the back end, which
    /// takes it over, with `pipelined` (decrypted, not yet relayed) read first; from here on
    /// this connection carries the client's records as they are. `Err(pipelined)` when it
    /// cannot be passed now: it stays here.
    pub fn pass_tls(&mut self, pipelined: Vec<u8>) -> Result<Vec<u8>, Vec<u8>> {
        if self.is_compressed() {
            return Err(pipelined);
        }
        let frame = self.tls().and_then(|t| t.pass_on(&pipelined)).and_then(|mut state| {
            let frame = super::handoff::passed(&state);
            super::handoff::wipe(&mut state);
            frame
        });
        match frame {
            Some(frame) => {
                // No TLS layer, no close_notify of ours at the end: the session is the back end's.
                self.layers = OnceCell::new();
                Ok(frame)
            }
            None => Err(pipelined),
        }
    }

    /// Takes over a client's TLS session its front end passed on (`net::handoff`).
    pub fn take_passed(&self, tls: Tls) {
        let layers = self.layers();
        *layers.tls.borrow_mut() = Some(tls);
        layers.writing.get_or_init(Default::default);
    }

    /// Turns on COMPRESS=DEFLATE for everything after this point.
    /// `rate`: inflated bytes taken per second at most (0: no limit).
    pub fn start_deflate(&self, rate: u64) {
        *self.layers().deflate.borrow_mut() = Some(Box::new(Deflate::with_rate(rate)));
    }

    pub fn is_compressed(&self) -> bool {
        self.layers.get().is_some_and(|l| l.deflate.borrow().is_some())
    }

    /// Inflates bytes that arrived compressed but were read before compression started; at
    /// most `INFLATE_PER_READ` bytes come out, and the next `read` gives the rest first.
    pub fn inflate_buffered(&self, raw: &[u8], dst: &mut Vec<u8>) -> io::Result<()> {
        match self.deflate() {
            Some(mut d) => d.inflate(raw, dst, super::deflate::INFLATE_PER_READ),
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

    /// `read` for a peer that is probably quiet (a relayed session between commands): the
    /// wait holds no buffer and no read in flight, only a readiness poll; then what is
    /// queued is taken, up to `room` bytes on a plaintext connection. `waiting` counts this
    /// read while it is at that poll and nowhere else: dropped there, it has taken nothing.
    pub async fn read_quiet(
        &self,
        dst: &mut Vec<u8>,
        room: usize,
        waiting: &crate::runtime::io::Waiting,
    ) -> io::Result<usize> {
        self.reading.set(true);
        let _reading = ReadingGuard(&self.reading);
        let readable = || crate::runtime::io::counted(waiting, self.stream.readable());
        if self.is_tls() || self.is_compressed() {
            if !self.holds_input() {
                // Quiet: no ciphertext buffer and no expanded keys are kept meanwhile.
                self.rest();
                readable().await?;
            }
            return Box::pin(self.read_inner(dst)).await;
        }
        loop {
            readable().await?;
            if let Some(n) = self.stream.try_read(dst, room)? {
                return Ok(n);
            }
        }
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
        self.take_tls_out();
        read.await
    }

    /// The ciphertext buffer reused while output flows (its bytes are all initialised).
    fn reused_out(&self) -> Out {
        Out {
            bytes: self.take_tls_out(),
            used: 0,
        }
    }

    fn tls_out_capacity(&self) -> usize {
        let Some(layers) = self.layers.get() else {
            return 0;
        };
        let out = layers.tls_out.take();
        let capacity = out.capacity();
        layers.tls_out.set(out);
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
            let more = self.deflate_has_more();
            if !more && self.read_raw(&mut raw).await? == 0 {
                return Ok(0);
            }
            let before = dst.len();
            self.inflate_buffered(&raw, dst)?;
            raw.clear();
            if dst.len() > before {
                let n = dst.len() - before;
                let wait = self.deflate().and_then(|mut d| d.spend(n, std::time::Instant::now()));
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
            // Rarely anything to send: the reused buffer stays where it is.
            let (stage, out) = self.with_tls(Out::default(), |tls, out| tls.advance(dst, out))?;
            // What rustls had to say (a key update, an alert) goes out before anything more.
            self.send_tls(out, &stage).await?;
            let stage = stage?;
            if dst.len() > before {
                return Ok(dst.len() - before);
            }
            if stage == Stage::PeerClosed {
                return Ok(0);
            }
            let size = self.layers.get().map_or(TLS_READ_BULK, |l| l.tls_read.get() as usize);
            if size == TLS_READ_IDLE {
                self.wait_readable(dst).await?;
            }
            if !self.read_tls(size).await? {
                return Ok(0);
            }
        }
    }

    /// Waits for the socket's readiness, giving back `dst`'s room meanwhile if it holds
    /// nothing, and making it again before the read.
    async fn wait_readable(&self, dst: &mut Vec<u8>) -> io::Result<()> {
        if !dst.is_empty() {
            return self.stream.readable().await;
        }
        let room = dst.capacity();
        *dst = Vec::new();
        self.stream.readable().await?;
        dst.reserve_exact(room);
        Ok(())
    }

    /// Reads one batch of ciphertext. False at end of stream.
    async fn read_tls(&self, size: usize) -> io::Result<bool> {
        let (res, buf) = self.stream.read(Vec::with_capacity(size)).await;
        if res? == 0 {
            return Ok(false);
        }
        let mut tls = self.layers.get().ok_or(io::ErrorKind::NotConnected)?.tls.borrow_mut();
        tls.as_mut().ok_or(io::ErrorKind::NotConnected)?.receive(buf);
        Ok(true)
    }

    /// Sends ciphertext made outside a write (handshake, alerts), in order with every write.
    /// A send that fails matters only if what made it succeeded (an alert is a last word).
    async fn send_tls<T>(&self, out: Out, made: &io::Result<T>) -> io::Result<()> {
        if out.is_empty() {
            self.keep_out(out);
            return Ok(());
        }
        let _turn = self.turn().await;
        let sent = self.send_ciphertext(out).await;
        if made.is_ok() {
            sent
        } else {
            Ok(())
        }
    }

    /// Waits for its turn to write, over TLS.
    async fn turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.layers.get().and_then(|l| l.writing.get()) {
            Some(lock) => Some(lock.lock().await),
            None => None,
        }
    }

    /// Sends ciphertext and keeps its buffer for the next write, unless a read is waiting
    /// for the client (then the buffer would only be parked).
    async fn send_ciphertext(&self, out: Out) -> io::Result<()> {
        if out.is_empty() {
            self.keep_out(out);
            return Ok(());
        }
        let (res, bytes) = self.stream.write_all_prefix(out.bytes, out.used).await;
        self.keep_out(Out { bytes, used: 0 });
        res
    }

    fn keep_out(&self, out: Out) {
        if !self.reading.get() && out.bytes.capacity() > 0 {
            if let Some(layers) = self.layers.get() {
                layers.tls_out.set(out.bytes);
            }
        }
    }

    /// Sends `data` and leaves it empty (capacity kept for reuse).
    pub async fn write(&self, data: &mut Vec<u8>) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let compressed = match self.deflate() {
            None => None,
            Some(mut d) => {
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
        let _turn = self.turn().await;
        if !self.is_tls() {
            let (res, mut buf) = self.stream.write_all(std::mem::take(data)).await;
            buf.clear();
            *data = buf;
            return res;
        }
        let (sealed, out) = self.with_tls(self.reused_out(), |tls, out| tls.seal(&[IoSlice::new(data)], out))?;
        // A seal that failed left its alert in `out`: it goes out too.
        let sent = self.send_ciphertext(out).await;
        sealed?;
        data.clear();
        sent
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
        let _turn = self.turn().await;
        if !self.is_tls() {
            let (res, sent) = self.stream.writev_all(pieces).await;
            gather.recycle(sent);
            return res;
        }
        // Room for it all at once: growing by doubling would copy it again.
        let mut out = self.reused_out();
        out.reserve(ciphertext_room(plaintext));
        let (sealed, out) = self.with_tls(out, |tls, out| {
            let slices: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
            tls.seal(&slices, out)
        })?;
        gather.recycle(pieces);
        let sent = self.send_ciphertext(out).await;
        sealed?;
        sent
    }

    /// "TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384", for Received: header fields.
    pub fn tls_description(&self) -> Option<String> {
        self.tls()?.description()
    }

    /// Says goodbye at the TLS level (close_notify) where there is one, then ends the stream.
    pub async fn close(self) {
        if self.is_tls() {
            if let Ok((said, out)) = self.with_tls(Out::default(), |tls, out| tls.close_notify(out)) {
                let _ = self.send_tls(out, &said).await;
            }
        }
        self.stream.shutdown();
    }
}

/// Marks the end of a read, however it ends (a dropped read future included).
struct ReadingGuard<'a>(&'a Cell<bool>);

impl Drop for ReadingGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every parked plaintext session holds one.
    #[test]
    fn a_plaintext_connection_carries_a_word_for_its_layers() {
        let size = std::mem::size_of::<Conn>();
        // 104 bytes while the TLS and COMPRESS fields were the connection's own.
        assert!(size <= 48, "a connection grew to {size} bytes");
    }
}
