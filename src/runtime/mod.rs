//! Threads: one event loop per core (`workers`), each with its own SO_REUSEPORT socket for
//! every listener, plus the signal handling that drains them at shutdown.
//!
//! A connection lives and dies on the core that accepted it; nothing here is shared between
//! cores except through `Arc`ed, lock-light registries.

pub mod io;
pub mod nofile;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Tells every core to stop: set once, observed by accept loops and sessions.
#[derive(Clone, Default)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    notify: Arc<tokio::sync::Notify>,
}

impl Shutdown {
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_triggered(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Completes once shutdown has been triggered.
    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_triggered() {
                return;
            }
            notified.await;
        }
    }
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
