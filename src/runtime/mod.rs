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

/// Blocks the calling thread until SIGINT or SIGTERM arrives.
pub fn wait_for_signal() -> std::io::Result<i32> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    Ok(signals.forever().next().unwrap_or(SIGTERM))
}
