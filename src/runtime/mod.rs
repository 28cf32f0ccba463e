//! Threads: one event loop per core (`workers`), each with its own SO_REUSEPORT socket for
//! every listener, plus the signal handling that drains them at shutdown.
//!
//! A connection lives and dies on the core that accepted it; nothing here is shared between
//! cores except through `Arc`ed, lock-light registries.

pub mod epoll;
pub mod fs;
pub mod io;
pub mod nofile;
pub mod pages;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::future::Either;

/// Hands what this thread's allocator holds freed back to the system. mimalloc gives freed
/// pages back lazily, when the thread allocates again, so a core that falls quiet after a
/// burst (a reconnect storm, many sessions setting up at once, a bulk download) would keep
/// the burst's peak resident for good: at 15,000 parked sessions, about 0.45 KiB of RSS a
/// session (BENCHMARKS.md, issue 14).
pub fn give_back_memory() {
    // SAFETY: `mi_collect` takes no pointers and has no preconditions: it releases the calling
    // thread's free pages and the purges that are due. Under another global allocator (tests,
    // heaptrack builds) it finds nothing to release.
    unsafe { libmimalloc_sys::mi_collect(false) }
}

/// Turns transparent huge pages off for this process, for the server's life. mimalloc asks
/// for them on its arenas (`MADV_HUGEPAGE`), and the kernel then backs the first touch of
/// every 2 MiB with a zeroed huge page, compacting memory first when none is free: a new
/// thread's first parse took 4–8 ms instead of about 30 µs, and the first deliveries of a
/// fan-out run waited behind it (BENCHMARKS.md, "Without the disk, and huge pages off"). A
/// server of many small sessions gains nothing from 2 MiB pages worth that. An old kernel
/// without the call keeps its pages as they were.
pub fn small_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes integers only and changes only how this process's page
    // faults are backed; it touches no memory of ours.
    let refused = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } != 0;
    if refused {
        tracing::debug!("huge pages left as they were: {}", std::io::Error::last_os_error());
    }
}

/// How often a core hands what its thread freed back to the system.
const TIDY_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Hands what this core's thread freed back to the system every `TIDY_EVERY`, until shutdown
/// (`give_back_memory`): after a burst of logins or TLS handshakes the core keeps what its
/// sessions hold, not the burst's peak. Every event loop runs one, `serve`'s and the front
/// end's.
pub async fn tidy(shutdown: Shutdown) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(TIDY_EVERY) => give_back_memory(),
            () = shutdown.wait() => return,
        }
    }
}

/// A one-way flag that wakes whoever waits for it, from any thread: the server's shutdown, an
/// operator's kick of one session.
#[derive(Default)]
pub struct Signal {
    flag: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Signal {
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_triggered(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Completes once the signal has been triggered. Not an `async fn`: every session waiting
    /// for its client holds this future, so it is only a `Notified` (and the flag looked at).
    pub fn wait(&self) -> impl std::future::Future<Output = ()> + '_ {
        // Made before the flag is read: a `Notified` hears every `notify_waiters` from its
        // creation on, so a trigger in between still completes it.
        let notified = self.notify.notified();
        if self.is_triggered() {
            Either::Left(std::future::ready(()))
        } else {
            Either::Right(notified)
        }
    }
}

/// Tells every core to stop: set once, observed by accept loops and sessions.
#[derive(Clone, Default)]
pub struct Shutdown(Arc<Signal>);

impl Shutdown {
    pub fn trigger(&self) {
        self.0.trigger();
    }

    pub fn is_triggered(&self) -> bool {
        self.0.is_triggered()
    }

    /// Completes once shutdown has been triggered.
    pub fn wait(&self) -> impl std::future::Future<Output = ()> + '_ {
        self.0.wait()
    }
}

thread_local! {
    static CORE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The index of the core loop this thread runs (0 on any other thread).
pub fn core_index() -> usize {
    CORE.with(|c| c.get())
}

/// Marks this thread as core loop `index`.
pub(crate) fn set_core_index(index: usize) {
    CORE.with(|c| c.set(index));
}

/// SIGINT, SIGTERM and SIGHUP, caught from now on (before a server says it is ready, so a
/// stop that comes right after drains it instead of killing it).
pub fn catch_signals() -> std::io::Result<signal_hook::iterator::Signals> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
}

/// Blocks the calling thread until SIGINT or SIGTERM arrives, calling `on_hangup` for each
/// SIGHUP meanwhile.
pub fn wait_for_signal(
    mut signals: signal_hook::iterator::Signals,
    mut on_hangup: impl FnMut(),
) -> std::io::Result<i32> {
    use signal_hook::consts::{SIGHUP, SIGTERM};
    for signal in signals.forever() {
        if signal != SIGHUP {
            return Ok(signal);
        }
        on_hangup();
    }
    Ok(SIGTERM)
}

/// Sends SIGHUP to process `pid` (`ringmail reload`).
pub fn send_hangup(pid: i32) -> std::io::Result<()> {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
