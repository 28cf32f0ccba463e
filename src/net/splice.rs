//! A front end's fast path for a stream of bytes between two plaintext sockets: socket → pipe →
//! socket inside the kernel (splice(2)), so the bytes of a bulk download are never copied into
//! the process.
//!
//! Only a stream takes it (the relay decides; see `proxy::relay`): a stream costs two `dup`s
//! and a pipe, which is more than a small read and write for an interactive command's answer,
//! and far less than copying megabytes. Each burst of the stream:
//! - waits, if the source has nothing queued (FIONREAD), with an io_uring poll: nothing runs
//!   or is held but the stream's descriptors while a peer is quiet;
//! - then, on the core, takes what is queued into the pipe and gives the pipe's bytes to the
//!   destination, both with non-blocking `splice` calls, again and again until the pipe is
//!   empty and nothing more is queued; when the destination has no room, an io_uring poll
//!   waits for it while the source's bytes wait in its socket.
//!
//! Both sockets are made non-blocking (O_NONBLOCK) for that: a splice to or from a socket
//! otherwise waits on the socket whatever its flags say, which the core must never do. Once
//! io_uring's own splice did the giving, but io_uring always runs a splice on a kernel worker:
//! a thread woken for every burst, and one held for as long as a slow client takes to read a
//! burst, for every such client at once. io_uring's reads and writes on these sockets are not
//! changed by the flag (they wait by polling either way; `runtime::io`'s tests check it).
//!
//! The polls refer to descriptors of their own (`dup`s), kept by each poll until the kernel is
//! done with it: if the relay ends while one is in flight, the connection's own descriptor may
//! be closed and its number reused, and the poll still names the right socket. Closing a
//! relayed connection shuts its socket down, which ends any poll on it.
//!
//! Pipes are pooled per core and taken only for a stream, so an idle relayed session holds
//! none.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;

/// Bytes a pipe should hold (F_SETPIPE_SZ; past the per-user limits it keeps what it has).
const PIPE_SIZE: usize = 1 << 20;
/// Bytes a burst moves before it lets the core's other tasks run.
const YIELD_EVERY: usize = 4 << 20;
/// Empty pipes kept per core for the next stream.
const POOL: usize = 16;

/// Bytes moved by splicing since the process started (all cores).
static SPLICED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Bytes the relays of this process have moved without copying them.
pub fn spliced_total() -> u64 {
    SPLICED.load(std::sync::atomic::Ordering::Relaxed)
}

thread_local! {
    static PIPES: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    size: usize,
}

impl Pipe {
    /// One from the pool, or a new one.
    fn take() -> io::Result<Pipe> {
        if let Some(pipe) = PIPES.with(|p| p.borrow_mut().pop()) {
            return Ok(pipe);
        }
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both are open descriptors that nothing else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: F_SETPIPE_SZ and F_GETPIPE_SZ on a pipe we own change and read its capacity
        // only. A refusal (past the per-user pipe limits) leaves the size the pipe has.
        let size = unsafe {
            libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE as libc::c_int);
            libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ)
        };
        let size = usize::try_from(size)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(io::Error::last_os_error)?;
        Ok(Pipe { read, write, size })
    }

    /// Back to the pool; only an empty pipe goes there.
    fn give_back(self) {
        PIPES.with(|p| {
            let mut pool = p.borrow_mut();
            if pool.len() < POOL {
                pool.push(self);
            }
        });
    }
}

/// What a stream's ops name, alive until the last of them completes.
struct Held {
    from: OwnedFd,
    to: OwnedFd,
    pipe: Pipe,
}

impl Held {
    fn new(from: RawFd, to: RawFd) -> io::Result<Held> {
        let dup = |fd: RawFd| {
            // SAFETY: `fd` is open for the duration of this call (the caller's connection
            // owns it); the duplicate is a new descriptor owned by the returned value.
            let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
            if new < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: fcntl just returned this new descriptor; nothing else owns it.
            Ok(unsafe { OwnedFd::from_raw_fd(new) })
        };
        let held = Held {
            from: dup(from)?,
            to: dup(to)?,
            pipe: Pipe::take()?,
        };
        // O_NONBLOCK is the open file's: the connections' own descriptors share it.
        socket2::SockRef::from(&held.from).set_nonblocking(true)?;
        socket2::SockRef::from(&held.to).set_nonblocking(true)?;
        Ok(held)
    }
}

/// Waits until `fd` has something to read (or its end, or an error).
async fn readable(held: &Rc<Held>) -> io::Result<()> {
    crate::runtime::io::poll_readable(held.from.as_raw_fd(), held.clone()).await
}

/// Splices one stream from a socket to another, burst by burst, with one pipe and one pair
/// of duplicate descriptors for as long as the stream lasts.
pub struct Splicer {
    held: Rc<Held>,
}

impl Splicer {
    /// For `from` → `to`, both plaintext sockets of live connections; `None` when there are
    /// no descriptors left for the pipe now: the caller copies instead. (io_uring splices
    /// since Linux 5.7, below what tokio-uring needs.)
    pub fn new(from: RawFd, to: RawFd) -> io::Result<Option<Splicer>> {
        match Held::new(from, to) {
            Ok(held) => Ok(Some(Splicer { held: Rc::new(held) })),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Waits for bytes, then moves them until the pipe is empty and the source has nothing
    /// more queued. Returns the bytes moved, 0 at the end of the source's stream. The wait for
    /// the first byte is counted in `waiting` (`runtime::io::counted`); dropped there, the
    /// stream's descriptors and pipe go with the poll, once it completes or is cancelled.
    pub async fn burst(&self, waiting: &crate::runtime::io::Waiting) -> io::Result<usize> {
        let held = &self.held;
        let (from, to) = (held.from.as_raw_fd(), held.to.as_raw_fd());
        let pipe = &held.pipe;
        if crate::runtime::io::queued(from)? == 0 {
            crate::runtime::io::counted(waiting, readable(held)).await?;
        }
        let (mut moved, mut in_pipe, mut source_done) = (0, 0, false);
        loop {
            if !source_done && in_pipe < pipe.size {
                match splice(from, pipe.write.as_raw_fd(), pipe.size - in_pipe)? {
                    // The end of the source, or nothing queued now.
                    Some(0) | None => source_done = true,
                    Some(n) => in_pipe += n,
                }
            }
            if in_pipe == 0 {
                SPLICED.fetch_add(moved as u64, std::sync::atomic::Ordering::Relaxed);
                return Ok(moved);
            }
            match splice(pipe.read.as_raw_fd(), to, in_pipe)? {
                Some(0) => return Err(io::ErrorKind::WriteZero.into()),
                Some(n) => {
                    in_pipe -= n;
                    let before = moved;
                    moved += n;
                    // Room in the pipe again: what came meanwhile is worth a look.
                    source_done = false;
                    if before / YIELD_EVERY != moved / YIELD_EVERY {
                        // A fast pair of peers would keep this loop going: the core's other
                        // sessions get their turn.
                        tokio::task::yield_now().await;
                    }
                }
                // The destination's buffer is full: what is queued waits in the source's.
                None => crate::runtime::io::poll_writable(to, held.clone()).await?,
            }
        }
    }

    /// The stream is over, every burst completed: the pipe, empty, serves another.
    pub fn finish(self) {
        if let Ok(held) = Rc::try_unwrap(self.held) {
            held.pipe.give_back();
        }
    }
}

/// Moves up to `len` bytes from `from` to `to` (one of them a pipe) without waiting: `None`
/// when either side would have to wait.
fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<Option<usize>> {
    // SAFETY: both descriptors are open (owned by the caller's `Held`); no memory is passed.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    match usize::try_from(n) {
        Ok(n) => Ok(Some(n)),
        Err(_) => {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            }
        }
    }
}
