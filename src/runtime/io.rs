//! The io layer: the only code that names tokio-uring. Streams take and give back owned
//! buffers (io_uring needs the buffer to live until the kernel is done with it).
//!
//! tokio-uring has no cancel-on-drop: a dropped read still completes later and can swallow
//! bytes, so callers never time out a read and then read again on the same stream — a timeout
//! closes the connection. Teardown is `shutdown` and then drop, so any read in flight
//! completes at once and the descriptor is released.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

pub enum Stream {
    Tcp(tokio_uring::net::TcpStream),
    Unix(tokio_uring::net::UnixStream),
}

impl Stream {
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
        (res, spare.into_inner())
    }

    pub async fn write_all(&self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        match self {
            Stream::Tcp(s) => s.write_all(buf).await,
            Stream::Unix(s) => s.write_all(buf).await,
        }
    }

    /// Ends both directions; errors (the peer already gone) do not matter at teardown.
    pub fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Both),
        };
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
