//! The io layer: the only code that names tokio-uring. Streams take and give back owned
//! buffers (io_uring needs the buffer to live until the kernel is done with it); `OutBuf` lets
//! a gathered write send message bytes straight from the store's map.
//!
//! tokio-uring has no cancel-on-drop: a dropped read still completes later and can swallow
//! bytes, so callers never time out a read and then read again on the same stream — a timeout
//! closes the connection. Teardown is `shutdown` and then drop, so any read in flight
//! completes at once and the descriptor is released.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::Path;

use crate::store::MappedBytes;

pub enum Stream {
    Tcp(tokio_uring::net::TcpStream),
    Unix(tokio_uring::net::UnixStream),
}

impl Stream {
    /// Connects to `addr` (a front end to its back end).
    pub async fn connect(addr: SocketAddr) -> io::Result<Stream> {
        let stream = tokio_uring::net::TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        Ok(Stream::Tcp(stream))
    }

    pub fn raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    /// The local address of a TCP stream (where the client connected to).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        let Stream::Tcp(stream) = self else {
            return None;
        };
        // SAFETY: the descriptor belongs to `stream`, which outlives this borrow.
        let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
        socket2::SockRef::from(&fd).local_addr().ok()?.as_socket()
    }

    /// Waits until the stream has something to read (or its end, or an error), holding no
    /// buffer meanwhile. Dropped, the poll completes when the socket is shut down (teardown).
    pub async fn readable(&self) -> io::Result<()> {
        poll_readable(self.raw_fd(), ()).await
    }

    /// Takes what the socket has queued, up to the spare capacity of `buf` (`room` bytes are
    /// made if it has none), without waiting: `None` when nothing is. `Some(0)` is end of
    /// stream. Made on the core, after `readable`: the bytes are there, so no op is needed.
    pub fn try_read(&self, buf: &mut Vec<u8>, room: usize) -> io::Result<Option<usize>> {
        if buf.len() == buf.capacity() {
            buf.reserve(room.max(1));
        }
        let spare = buf.spare_capacity_mut();
        // SAFETY: recv writes at most `spare.len()` bytes into the spare capacity `buf` owns,
        // and the length grows below by no more than it wrote.
        let n = unsafe {
            libc::recv(
                self.raw_fd(),
                spare.as_mut_ptr().cast(),
                spare.len(),
                libc::MSG_DONTWAIT,
            )
        };
        let Ok(n) = usize::try_from(n) else {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        };
        // SAFETY: recv initialised these `n` bytes of the spare capacity.
        unsafe { buf.set_len(buf.len() + n) };
        crate::metrics::received(n);
        Ok(Some(n))
    }

    /// Reads into the spare capacity of `buf`, after the bytes already there; `Ok(0)` is end
    /// of stream. (tokio-uring reads a plain `Vec` at offset 0, over what it holds: the read
    /// goes into a slice of the spare capacity instead.)
    pub async fn read(&self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        use tokio_uring::buf::BoundedBuf;
        if buf.len() == buf.capacity() {
            // A read into no room would report 0, which means end of stream.
            buf.reserve(512);
        }
        let len = buf.len();
        let spare = buf.slice(len..);
        let (res, spare) = match self {
            Stream::Tcp(s) => s.read(spare).await,
            Stream::Unix(s) => s.read(spare).await,
        };
        if let Ok(n) = res {
            crate::metrics::received(n);
        }
        (res, spare.into_inner())
    }

    pub async fn write_all(&self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let len = buf.len();
        self.write_all_prefix(buf, len).await
    }

    /// Sends `buf[..n]` and gives back `buf` whole.
    pub async fn write_all_prefix(&self, buf: Vec<u8>, n: usize) -> (io::Result<()>, Vec<u8>) {
        use tokio_uring::buf::BoundedBuf;
        let prefix = buf.slice(..n);
        let (res, prefix) = match self {
            Stream::Tcp(s) => s.write_all(prefix).await,
            Stream::Unix(s) => s.write_all(prefix).await,
        };
        if res.is_ok() {
            crate::metrics::sent(n);
        }
        (res, prefix.into_inner())
    }

    /// Sends every byte of `bufs`, in order, gathering up to `IOV_MAX` of them per submission;
    /// gives them all back. If this future is dropped, the buffers of the write in flight
    /// live on (with any read transaction they hold) until the kernel is done with them:
    /// closing the connection ends that write.
    pub async fn writev_all(&self, bufs: Vec<OutBuf>) -> (io::Result<()>, Vec<OutBuf>) {
        use tokio_uring::buf::{BoundedBuf, Slice};
        let mut done = Vec::with_capacity(bufs.len());
        let mut rest = std::collections::VecDeque::with_capacity(bufs.len());
        for buf in bufs {
            if buf.is_empty() {
                done.push(buf);
            } else {
                rest.push_back(buf.slice_full());
            }
        }
        while !rest.is_empty() {
            let batch: Vec<Slice<OutBuf>> = rest.drain(..rest.len().min(IOV_MAX)).collect();
            let (res, batch) = match self {
                Stream::Tcp(s) => s.writev(batch).await,
                Stream::Unix(s) => s.writev(batch).await,
            };
            let res = match res {
                Ok(0) => Err(io::ErrorKind::WriteZero.into()),
                other => other,
            };
            let mut written = match res {
                Ok(n) => {
                    crate::metrics::sent(n);
                    n
                }
                Err(e) => {
                    done.extend(batch.into_iter().chain(rest).map(Slice::into_inner));
                    return (Err(e), done);
                }
            };
            // A short write: what is left goes back to the front, in order.
            let mut left = Vec::new();
            for slice in batch {
                let n = slice.len();
                if written >= n {
                    written -= n;
                    done.push(slice.into_inner());
                } else if written > 0 {
                    left.push(slice.slice(written..));
                    written = 0;
                } else {
                    left.push(slice);
                }
            }
            for slice in left.into_iter().rev() {
                rest.push_front(slice);
            }
        }
        (Ok(()), done)
    }

    /// Ends both directions; errors (the peer already gone) do not matter at teardown.
    pub fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }
}

/// Most buffers one `writev` takes (Linux's UIO_MAXIOV).
const IOV_MAX: usize = 1024;

/// One piece of output for `Stream::writev_all`.
#[derive(Debug)]
pub enum OutBuf {
    /// Bytes the caller built: replies, stuffing.
    Owned(Vec<u8>),
    Static(&'static [u8]),
    /// Message bytes still in the store's map; they hold their read transaction.
    Mapped(MappedBytes),
}

impl std::ops::Deref for OutBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            OutBuf::Owned(v) => v,
            OutBuf::Static(s) => s,
            OutBuf::Mapped(m) => m,
        }
    }
}

// SAFETY: `stable_ptr` must stay valid and unmoved while the runtime owns the value, for
// `bytes_init` bytes. A `Vec`'s heap buffer does not move when the `Vec` does and is not
// reallocated while owned here (nothing can push to it); a `&'static [u8]` lives for ever; a
// `MappedBytes` points into the LMDB map, which is never unmapped, and holds the read
// transaction that keeps those pages in place and unchanged (store::zero_copy). Writes only
// read from the buffer, so `bytes_total` is the initialised length.
unsafe impl tokio_uring::buf::IoBuf for OutBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }

    fn bytes_init(&self) -> usize {
        self.len()
    }

    fn bytes_total(&self) -> usize {
        self.len()
    }
}

/// Ends the reading side of socket `fd`, from any thread: its pending and future reads see end
/// of stream, while writes still go out. The caller makes sure `fd` is still the socket it
/// means (`sessions` holds its table's lock, which the session's teardown takes before the
/// descriptor is closed).
pub fn shut_read(fd: RawFd) {
    // SAFETY: shutdown(2) takes plain integers and touches no memory of ours; on a descriptor
    // that is no socket it fails harmlessly.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RD);
    }
}

pub struct TcpListener(tokio_uring::net::TcpListener);

impl TcpListener {
    /// One SO_REUSEPORT socket per core: the kernel spreads connections across them.
    pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.bind(&addr.into())?;
        socket.listen(4096)?;
        Ok(TcpListener(tokio_uring::net::TcpListener::from_std(socket.into())))
    }

    pub async fn accept(&self) -> io::Result<(Stream, SocketAddr)> {
        let (stream, peer) = self.0.accept().await?;
        let _ = stream.set_nodelay(true);
        // SAFETY: the descriptor belongs to `stream`, which outlives this borrow.
        let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
        // Mobile NATs drop silent flows; keepalive probes keep long sessions reachable.
        let _ = socket2::SockRef::from(&fd).set_keepalive(true);
        Ok((Stream::Tcp(stream), peer))
    }
}

/// A unix-socket listener. tokio-uring's own sets SO_REUSEPORT, which unix sockets refuse, so
/// a small thread of its own accepts (blocking) and hands each stream to this core's loop.
pub struct UnixListener {
    streams: tokio::sync::mpsc::UnboundedReceiver<std::os::unix::net::UnixStream>,
}

impl UnixListener {
    /// Binds `path`, replacing a stale socket file left by a previous run.
    pub fn bind(path: &Path) -> io::Result<UnixListener> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = std::os::unix::net::UnixListener::bind(path)?;
        let (tx, streams) = tokio::sync::mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("ringmail-unix-accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    match stream {
                        Ok(s) => {
                            if tx.send(s).is_err() {
                                return;
                            }
                        }
                        // EMFILE and friends: back off instead of spinning.
                        Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
                    }
                }
            })?;
        Ok(UnixListener { streams })
    }

    pub async fn accept(&mut self) -> io::Result<Stream> {
        let stream = self.streams.recv().await.ok_or(io::ErrorKind::BrokenPipe)?;
        Ok(Stream::Unix(tokio_uring::net::UnixStream::from_std(stream)))
    }
}

/// Runs `future` to completion on this thread's own io_uring event loop.
pub fn run_loop<F: Future>(future: F) -> F::Output {
    tokio_uring::start(future)
}

/// Spawns a task on the current thread's event loop.
pub fn spawn<F: Future + 'static>(future: F) {
    tokio_uring::spawn(future);
}

/// Waits until `fd` has something to read (or its end, or an error) with an io_uring poll;
/// `keep` lives until the poll completes (what keeps `fd` itself open, if the caller needs
/// that: the kernel holds the socket but not the descriptor's number).
pub fn poll_readable<D: Unpin + 'static>(fd: RawFd, keep: D) -> impl Future<Output = io::Result<()>> {
    poll(fd, libc::POLLIN, keep)
}

/// Waits until socket `fd` has room to write (or an error), as `poll_readable` waits to read.
pub fn poll_writable<D: Unpin + 'static>(fd: RawFd, keep: D) -> impl Future<Output = io::Result<()>> {
    poll(fd, libc::POLLOUT, keep)
}

async fn poll<D: Unpin + 'static>(fd: RawFd, events: libc::c_short, keep: D) -> io::Result<()> {
    use io_uring::{opcode, types};
    let poll = opcode::PollAdd::new(types::Fd(fd), events as u32).build();
    tokio_uring::UnsubmittedOneshot::new(keep, Polled(std::marker::PhantomData), poll)
        .submit()
        .await
}

/// Takes back every operation still in flight on `fd` (IORING_ASYNC_CANCEL_FD, Linux 5.19):
/// what dropped futures left behind, such as readiness polls, which would otherwise stay with
/// the kernel and the ring until the socket next became readable. Best effort: with nothing
/// in flight, or on a kernel without it, nothing is taken back.
pub async fn cancel_all(fd: RawFd) {
    use io_uring::{opcode, types};
    let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::fd(types::Fd(fd)).all()).build();
    let taken = tokio_uring::UnsubmittedOneshot::new((), Polled(std::marker::PhantomData), cancel)
        .submit()
        .await;
    drop(taken);
}

/// Bytes waiting to be read on socket `fd` (FIONREAD).
pub fn queued(fd: RawFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int, into `n`.
    if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(n).unwrap_or(0))
}

/// The readiness waits of a task's parts (a relay's two pumps): how many wait now, and how
/// many waits have ended, so that the task can tell one long quiet from two short ones.
#[derive(Default)]
pub struct Waiting {
    now: Cell<u8>,
    ended: Cell<u32>,
}

impl Waiting {
    /// How many wait now.
    pub fn count(&self) -> u8 {
        self.now.get()
    }

    /// How many waits have ended (wrapping): unchanged while nothing has stirred.
    pub fn ended(&self) -> u32 {
        self.ended.get()
    }
}

/// Awaits `wait`, a readiness poll, counted in `waiting` until it ends or is dropped: a relay
/// rests once both its pumps have been counted for a while (`proxy::relay`), and then drops
/// them there, where they have taken nothing.
pub async fn counted<T>(waiting: &Waiting, wait: impl Future<Output = T>) -> T {
    waiting.now.set(waiting.now.get() + 1);
    let _uncount = Uncount(waiting);
    wait.await
}

struct Uncount<'a>(&'a Waiting);

impl Drop for Uncount<'_> {
    fn drop(&mut self) {
        self.0.now.set(self.0.now.get() - 1);
        self.0.ended.set(self.0.ended.get().wrapping_add(1));
    }
}

/// A poll's outcome: ready, or the error the kernel gave.
struct Polled<D>(std::marker::PhantomData<D>);

impl<D: Unpin + 'static> tokio_uring::OneshotOutputTransform for Polled<D> {
    type Output = io::Result<()>;
    type StoredData = D;

    fn transform_oneshot_output(self, _: D, cqe: io_uring::cqueue::Entry) -> io::Result<()> {
        match cqe.result() {
            res if res < 0 => Err(io::Error::from_raw_os_error(-res)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// Short writes resume mid-piece and more pieces than one `writev` takes go out in order.
    #[test]
    fn writev_all_sends_every_piece_in_order() {
        let (ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        // A small send buffer makes the kernel take each gathered write in several parts.
        socket2::SockRef::from(&ours).set_send_buffer_size(4096).unwrap();
        let mut pieces = Vec::new();
        let mut expected = Vec::new();
        for i in 0..3000u32 {
            let piece = if i % 3 == 0 {
                OutBuf::Static(b"-static-")
            } else {
                OutBuf::Owned(i.to_string().repeat(i as usize % 50 + 1).into_bytes())
            };
            expected.extend_from_slice(&piece);
            pieces.push(piece);
        }
        pieces.insert(7, OutBuf::Owned(Vec::new()));
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0; 1000];
            loop {
                match theirs.read(&mut buf).unwrap() {
                    0 => return got,
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
        });
        let (res, back) = run_loop(async move {
            let stream = Stream::Unix(tokio_uring::net::UnixStream::from_std(ours));
            let (res, back) = stream.writev_all(pieces).await;
            stream.shutdown();
            (res, back)
        });
        res.unwrap();
        assert_eq!(back.len(), 3001, "every piece comes back");
        assert_eq!(reader.join().unwrap(), expected);
    }

    /// `try_read` never waits: nothing queued is `None`, bytes are appended up to the room
    /// asked for, the end of the stream is `Some(0)`.
    #[test]
    fn try_read_takes_what_is_queued_and_never_waits() {
        use std::io::Write;
        let (ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        run_loop(async move {
            let stream = Stream::Unix(tokio_uring::net::UnixStream::from_std(ours));
            let mut buf = b"kept".to_vec();
            buf.shrink_to_fit();
            assert!(stream.try_read(&mut buf, 4).unwrap().is_none());
            theirs.write_all(b"0123456789").unwrap();
            stream.readable().await.unwrap();
            let n = stream.try_read(&mut buf, 4).unwrap().unwrap();
            assert!(n >= 4 && buf.starts_with(b"kept0123"), "{n} {buf:?}");
            while buf.len() < 14 {
                stream.try_read(&mut buf, 4).unwrap().unwrap();
            }
            assert_eq!(buf, b"kept0123456789");
            drop(theirs);
            stream.readable().await.unwrap();
            assert_eq!(stream.try_read(&mut buf, 4).unwrap(), Some(0));
        });
    }
}

#[cfg(test)]
mod nonblocking {
    use std::io::{Read, Write};
    use std::time::Duration;

    use super::*;

    /// The splicer makes relayed sockets non-blocking (`net::splice`), and the relay still
    /// reads and writes them with io_uring: those ops must wait for the socket as they do on a
    /// blocking one, not fail with EAGAIN.
    #[test]
    fn io_uring_reads_and_writes_wait_on_non_blocking_sockets() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        const LEN: usize = 8 << 20;
        let peer = std::thread::spawn(move || {
            // The read below is in flight, and finds nothing, until this arrives.
            std::thread::sleep(Duration::from_millis(100));
            peer.write_all(b"late").unwrap();
            // More than the socket buffers hold: the write below has to wait for this.
            std::thread::sleep(Duration::from_millis(100));
            let mut got = 0;
            let mut buf = vec![0; 1 << 20];
            while got < LEN {
                match peer.read(&mut buf).unwrap() {
                    0 => break,
                    n => got += n,
                }
            }
            got
        });
        run_loop(async move {
            let ours = Stream::Tcp(tokio_uring::net::TcpStream::from_std(ours));
            let (n, buf) = ours.read(Vec::with_capacity(16)).await;
            assert_eq!((n.unwrap(), &buf[..]), (4, &b"late"[..]));
            let (written, _) = ours.write_all(vec![7; LEN]).await;
            written.unwrap();
        });
        assert_eq!(peer.join().unwrap(), LEN);
    }
}
