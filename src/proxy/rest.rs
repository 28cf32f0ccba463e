//! A core's resting relays: relayed sessions quiet both ways for a while (a client in IDLE, or
//! away), kept as data in pages (`runtime::pages`) instead of a task each, as `serve`'s lot
//! keeps its parked IMAP sessions. One task per core waits on an epoll set of their sockets (itself
//! awaited with one io_uring poll) and on shutdown; when either socket of a resting relay is
//! readable (bytes, its end, or an operator's kick, which shuts the client's socket), the
//! relay leaves for a task of its own again (`relay::relay`). A resting relay costs its two
//! connections, its place at the limits and its registry entry, and the kernel two epoll
//! registrations.

use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::auth::limits::Slot;
use crate::net::Conn;
use crate::runtime::epoll::{tag, untag, Epoll};
use crate::runtime::pages::Pages;
use crate::runtime::Shutdown;
use crate::sessions::Handle;

/// Relays resting on all cores (the metrics' `relays_resting`).
static RESTING: AtomicI64 = AtomicI64::new(0);

/// How many relayed sessions of this process rest now.
pub fn resting_total() -> i64 {
    RESTING.load(Ordering::Relaxed)
}

/// A relayed session's parts: what `relay::relay` relays, and what rests here when it is quiet.
pub(super) struct Resting {
    pub client: Conn,
    pub backend: Conn,
    pub slot: Slot,
    pub listed: Option<Handle>,
}

impl Resting {
    fn fds(&self) -> [RawFd; 2] {
        [self.client.raw_fd(), self.backend.raw_fd()]
    }
}

/// One core's resting relays, and the core's shutdown, which its relays and accept loops
/// also wait on.
pub(crate) struct Rests {
    relays: RefCell<Pages<Resting>>,
    /// None when no set could be made: relays then wait in their own tasks.
    epoll: Option<Rc<Epoll>>,
    /// The watcher is gone (shutdown, or its set failed): nothing rests here any more.
    closed: Cell<bool>,
    shutdown: Shutdown,
}

impl Rests {
    pub fn new(shutdown: Shutdown) -> Rc<Rests> {
        let epoll = match Epoll::new() {
            Ok(e) => Some(Rc::new(e)),
            Err(e) => {
                tracing::warn!("no epoll set for resting relays, quiet ones wait in their tasks: {e}");
                None
            }
        };
        Rc::new(Rests {
            relays: RefCell::new(Pages::new()),
            epoll,
            closed: Cell::new(false),
            shutdown,
        })
    }

    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Whether a quiet relay may rest here: there is a set, and a watcher over it (a relay laid
    /// down once it is gone would never be roused).
    pub fn open(&self) -> bool {
        self.epoll.is_some() && !self.closed.get() && !self.shutdown.is_triggered()
    }

    /// Takes `resting` in until one of its sockets is readable; gives it back if it cannot.
    #[allow(clippy::result_large_err)] // the relay itself is what is given back
    pub(super) fn lay(&self, resting: Resting) -> Result<(), Resting> {
        let Some(epoll) = self.epoll.as_ref().filter(|_| self.open()) else {
            return Err(resting);
        };
        let mut relays = self.relays.borrow_mut();
        let key = relays.vacant_key();
        let [client, backend] = resting.fds();
        if epoll.add(client, tag(key, client)).is_err() {
            return Err(resting);
        }
        if epoll.add(backend, tag(key, backend)).is_err() {
            epoll.remove(client);
            return Err(resting);
        }
        relays.insert(resting);
        RESTING.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The relays a socket of which the set reports ready, out of the set and the pages.
    fn roused(&self, epoll: &Epoll, ready: &[u64]) -> Vec<Resting> {
        let mut relays = self.relays.borrow_mut();
        let mut out = Vec::new();
        for &t in ready {
            let (key, fd) = untag(t);
            // Both sockets may be reported: the second finds the relay gone (or another one,
            // with other descriptors, in its slot).
            if relays.get(key).is_some_and(|r| r.fds().contains(&fd)) {
                out.extend(relays.try_remove(key).map(|r| Self::unregistered(epoll, r)));
            }
        }
        out
    }

    fn unregistered(epoll: &Epoll, r: Resting) -> Resting {
        for fd in r.fds() {
            epoll.remove(fd);
        }
        RESTING.fetch_sub(1, Ordering::Relaxed);
        r
    }

    /// Every resting relay, out of the set; none rests here after this.
    fn close(&self, epoll: &Epoll) -> Vec<Resting> {
        self.closed.set(true);
        let mut relays = self.relays.borrow_mut();
        let keys: Vec<u32> = relays.iter().map(|(k, _)| k).collect();
        keys.into_iter()
            .filter_map(|k| relays.try_remove(k))
            .map(|r| Self::unregistered(epoll, r))
            .collect()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.relays.borrow().iter().count()
    }
}

/// Watches over a core's resting relays until shutdown, and then ends those still resting.
pub(crate) async fn watch_over(rests: Rc<Rests>) {
    let Some(epoll) = rests.epoll.clone() else {
        return;
    };
    let poll = |e: &Rc<Epoll>| Box::pin(crate::runtime::io::poll_readable(e.raw_fd(), e.clone()));
    let mut ready = poll(&epoll);
    let mut events = Vec::new();
    loop {
        tokio::select! {
            r = &mut ready => {
                ready = poll(&epoll);
                events.clear();
                if r.and_then(|()| epoll.ready(&mut events)).is_err() {
                    // The set cannot say who is ready: every relay goes back to a task of its
                    // own, and none rests here any more.
                    tracing::warn!("the resting relays' epoll set failed; quiet relays wait in their tasks");
                    for r in rests.close(&epoll) {
                        super::relay::rouse(r, rests.clone());
                    }
                    return;
                }
                for r in rests.roused(&epoll, &events) {
                    super::relay::rouse(r, rests.clone());
                }
            }
            () = rests.shutdown.wait() => break,
        }
    }
    // Roused into a shut-down core, each relay ends at once, closing both sides.
    for r in rests.close(&epoll) {
        super::relay::rouse(r, rests.clone());
    }
}
