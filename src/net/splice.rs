//! A front end's fast path for a stream of bytes between two plaintext sockets: socket → pipe →
//! socket inside the kernel (splice(2)), so the bytes of a bulk download are never copied into
//! the process.
//!
//! Only a stream takes it (the relay decides; see `proxy::relay`): a stream costs two `dup`s
//! and a pipe, which is more than a small read and write for an interactive command's answer,
//! and far less than copying megabytes. Each burst of the stream:
//! - waits, if the source has nothing queued (FIONREAD), with an io_uring poll: nothing runs
//!   or is held but the stream's descriptors while a peer is quiet;
//! - takes what is queued into the (non-blocking, empty) pipe with a plain `splice` call on
//!   the core: with bytes queued it returns at once, so the loop never blocks;
//! - gives the pipe's bytes to the destination with io_uring splices, which run on a kernel
//!   worker and may wait there for room in the destination's buffer.
//!
//! The io_uring ops refer to descriptors of their own (`dup`s), kept by each op until the
//! kernel is done with it: if the relay ends while a splice is in flight, the connection's own
//! descriptor may be closed and its number reused, and the op still names the right socket.
//! Closing a relayed connection shuts its socket down, which ends any op on it.
//!
//! Pipes are pooled per core and taken only for a stream, so an idle relayed session holds
//! none.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use io_uring::{cqueue, opcode, squeue, types};
use tokio_uring::{OneshotOutputTransform, UnsubmittedOneshot};

/// Bytes a pipe should hold (F_SETPIPE_SZ; past the per-user limits it keeps what it has).
const PIPE_SIZE: usize = 1 << 20;
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
        Ok(Held {
            from: dup(from)?,
            to: dup(to)?,
            pipe: Pipe::take()?,
        })
    }
}

/// The result of one op: its count, or the error the kernel gave.
struct Completion;

impl OneshotOutputTransform for Completion {
    type Output = io::Result<usize>;
    type StoredData = Rc<Held>;

    fn transform_oneshot_output(self, _held: Rc<Held>, cqe: cqueue::Entry) -> io::Result<usize> {
        let res = cqe.result();
        if res < 0 {
            Err(io::Error::from_raw_os_error(-res))
        } else {
            Ok(res as usize)
        }
    }
}

async fn submit(entry: squeue::Entry, held: &Rc<Held>) -> io::Result<usize> {
    UnsubmittedOneshot::new(held.clone(), Completion, entry).submit().await
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

    /// Waits for bytes, then moves what the source has queued (up to a pipeful). Returns the
    /// bytes moved, 0 at the end of the source's stream. The wait is counted in `waiting`
    /// (`runtime::io::counted`); dropped there, the stream's descriptors and pipe go with the
    /// poll, once it completes or is cancelled.
    pub async fn burst(&self, waiting: &Cell<u8>) -> io::Result<usize> {
        let held = &self.held;
        let pipe = &held.pipe;
        let from = held.from.as_raw_fd();
        if crate::runtime::io::queued(from)? == 0 {
            crate::runtime::io::counted(waiting, readable(held)).await?;
        }
        // Bytes are queued (or the stream has ended, or failed), the pipe is empty and does
        // not block: this splice returns at once, so it is made here, without a worker.
        // SAFETY: both descriptors are open (owned by `held`); no memory is passed.
        let n = unsafe {
            libc::splice(
                from,
                std::ptr::null_mut(),
                pipe.write.as_raw_fd(),
                std::ptr::null_mut(),
                pipe.size,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
            )
        };
        let n = match usize::try_from(n) {
            Ok(n) => n,
            Err(_) => return Err(io::Error::last_os_error()),
        };
        let mut left = n;
        while left > 0 {
            let give = opcode::Splice::new(
                types::Fd(pipe.read.as_raw_fd()),
                -1,
                types::Fd(held.to.as_raw_fd()),
                -1,
                left as u32,
            )
            .flags(libc::SPLICE_F_MOVE)
            .build();
            match submit(give, held).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                sent => left -= sent,
            }
        }
        SPLICED.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }

    /// The stream is over, every burst completed: the pipe, empty, serves another.
    pub fn finish(self) {
        if let Ok(held) = Rc::try_unwrap(self.held) {
            held.pipe.give_back();
        }
    }
}
