//! A core's parking lot (issue 14): its IMAP sessions waiting in IDLE, kept as slots of its
//! pages (`pages`) instead of a task each. One task per core watches over all of them: an
//! epoll set of their sockets (itself awaited with one io_uring poll), the mailboxes and users
//! the core's change feed touched, one timer for the earliest keepalive or deadline, shutdown,
//! and a bell the connection limits ring when a newer login takes a sleeper's place. Whatever
//! happens to a sleeper, it leaves the lot for a task of its own (`imap::rouse`); a sleeper
//! costs its data and its key in a list or two (a few bytes), and the kernel one epoll
//! registration.

use std::cell::RefCell;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;

use tokio::sync::Notify;
use tokio::time::{Duration, Instant};

use super::core::Core;
use super::imap;
use super::Shared;
use crate::goodbye::Goodbye;
use crate::runtime::epoll::{tag, untag, Epoll};
use crate::runtime::pages::Pages;
use crate::runtime::Shutdown;
use crate::store::records::{MailboxId, UserId};

/// Sleepers in every core's lot (the metrics' `sessions_parked`).
static PARKED: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// How many sessions of this process are parked now.
pub(crate) fn parked_total() -> i64 {
    PARKED.load(std::sync::atomic::Ordering::Relaxed)
}

/// What a sleeper listens to besides its socket: its selected mailbox, and for a NOTIFY
/// session (RFC 5465) every mailbox of its user.
#[derive(Clone, Copy)]
pub(crate) struct Watch {
    pub mailbox: Option<MailboxId>,
    pub user: Option<UserId>,
}

/// When a sleeper is due: its keepalive, or its deadline if that is sooner. The deadline is
/// the client's, kept through the keepalives and changes the session is roused for.
#[derive(Clone, Copy)]
pub(crate) struct Due {
    pub keepalive: Instant,
    pub deadline: Instant,
}

/// Why a sleeper leaves the lot.
pub(crate) enum Rouse {
    /// Its socket is readable: the client spoke (or went).
    Ready,
    /// Its mailbox (or user) changed; its deadline stays.
    Changed { deadline: Instant },
    /// It has been quiet for a keepalive's time; its deadline stays.
    Keepalive { deadline: Instant },
    /// Its deadline, shutdown, or a newer login in its place: it says goodbye.
    Goodbye(Goodbye<'static>),
}

/// What lies in a lot: a parked session (`imap::Parked`), which knows its socket, what it
/// watches and whether its place was taken.
pub(crate) trait Sleep {
    fn fd(&self) -> RawFd;
    fn watch(&self) -> Watch;
    fn evicted(&self) -> bool;
}

/// What the lot keeps of a sleeper besides the session itself: when it is due, in the lot's
/// ticks. (Its socket and what it watches are the session's own, asked for again when it
/// leaves.)
struct Sleeper<S> {
    parked: S,
    keepalive: u32,
    deadline: u32,
}

impl<S> Sleeper<S> {
    fn due(&self) -> u32 {
        self.keepalive.min(self.deadline)
    }
}

/// Sleepers' keys by what they watch: a list per mailbox (or user). The lists are short, the
/// sleepers of one mailbox on one core, so a key is taken out of one by looking through it.
struct Lists<K>(HashMap<K, Vec<u32>>);

impl<K: Hash + Eq + Copy> Lists<K> {
    fn new() -> Lists<K> {
        Lists(HashMap::new())
    }

    fn add(&mut self, k: K, key: u32) {
        self.0.entry(k).or_default().push(key);
    }

    fn remove(&mut self, k: K, key: u32) {
        if let Entry::Occupied(mut list) = self.0.entry(k) {
            strike(list.get_mut(), key);
            if list.get().is_empty() {
                list.remove();
            }
        }
    }

    fn has(&self, k: K) -> bool {
        self.0.contains_key(&k)
    }

    /// The keys listed under `k`, no longer listed.
    fn take(&mut self, k: K) -> Vec<u32> {
        self.0.remove(&k).unwrap_or_default()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn strike(list: &mut Vec<u32>, key: u32) {
    if let Some(i) = list.iter().position(|&k| k == key) {
        list.swap_remove(i);
    }
}

/// How finely the lot tells time: a sleeper is roused at the first tick at or after it is
/// due, so up to this much late and never early.
const TICK: Duration = Duration::from_millis(100);

/// Sleepers' keys by the tick they are due at (counted from the lot's making). A tick's list
/// holds the sleepers that parked due within one `TICK`, so a key is taken out by looking
/// through it.
struct Calendar {
    epoch: Instant,
    ticks: BTreeMap<u32, Vec<u32>>,
}

impl Calendar {
    fn new() -> Calendar {
        Calendar {
            epoch: Instant::now(),
            ticks: BTreeMap::new(),
        }
    }

    fn tick(&self, at: Instant) -> u32 {
        let since = at.saturating_duration_since(self.epoch).as_nanos();
        u32::try_from(since.div_ceil(TICK.as_nanos())).unwrap_or(u32::MAX)
    }

    fn when(&self, tick: u32) -> Instant {
        self.epoch + TICK * tick
    }

    fn add(&mut self, tick: u32, key: u32) {
        self.ticks.entry(tick).or_default().push(key);
    }

    fn remove(&mut self, tick: u32, key: u32) {
        if let std::collections::btree_map::Entry::Occupied(mut list) = self.ticks.entry(tick) {
            strike(list.get_mut(), key);
            if list.get().is_empty() {
                list.remove();
            }
        }
    }

    /// The first tick anyone is due at.
    fn first(&self) -> Option<u32> {
        self.ticks.first_key_value().map(|(&tick, _)| tick)
    }

    fn earliest(&self) -> Option<Instant> {
        self.first().map(|tick| self.when(tick))
    }

    /// The keys due by `now` (filed at a tick that has come), no longer filed.
    fn take_due(&mut self, now: Instant) -> Vec<u32> {
        let come = now.saturating_duration_since(self.epoch).as_nanos() / TICK.as_nanos();
        let later = match u32::try_from(come) {
            Ok(come) if come < u32::MAX => self.ticks.split_off(&(come + 1)),
            _ => BTreeMap::new(),
        };
        std::mem::replace(&mut self.ticks, later)
            .into_values()
            .flatten()
            .collect()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.ticks.is_empty()
    }
}

struct Beds<S> {
    sleepers: Pages<Sleeper<S>>,
    by_mailbox: Lists<MailboxId>,
    by_user: Lists<UserId>,
    by_due: Calendar,
    /// Touched since the lot's task last looked, with sleepers on them.
    mailboxes: HashSet<MailboxId>,
    users: HashSet<UserId>,
    /// The task is gone (shutdown, or its epoll set failed): nothing parks any more.
    closed: bool,
}

pub(crate) struct Lot<S> {
    beds: RefCell<Beds<S>>,
    /// Wakes the task: a watched mailbox changed, or a sleeper is due earlier than the timer.
    kick: Notify,
    /// Rung from any core's thread when a sleeper's place at the per-user limit is taken.
    bell: Arc<Notify>,
    epoll: Option<Rc<Epoll>>,
}

impl<S: Sleep> Lot<S> {
    /// A lot without an epoll set (none could be made) takes no sleepers: sessions then wait
    /// in IDLE in their own tasks.
    pub fn new() -> Lot<S> {
        let epoll = match Epoll::new() {
            Ok(e) => Some(Rc::new(e)),
            Err(e) => {
                tracing::warn!("no epoll set for parked sessions, IDLE waits in session tasks: {e}");
                None
            }
        };
        let beds = Beds {
            sleepers: Pages::new(),
            by_mailbox: Lists::new(),
            by_user: Lists::new(),
            by_due: Calendar::new(),
            mailboxes: HashSet::new(),
            users: HashSet::new(),
            closed: false,
        };
        Lot {
            beds: RefCell::new(beds),
            kick: Notify::new(),
            bell: Arc::new(Notify::new()),
            epoll,
        }
    }

    /// What the connection limits ring when they take a sleeper's place.
    pub fn bell(&self) -> Arc<Notify> {
        self.bell.clone()
    }

    /// Takes `parked` in until its socket is readable, what it watches changes, or it is
    /// `due`; gives it back when the lot takes no sleepers (shut down, or no epoll set).
    #[allow(clippy::result_large_err)] // the session itself is what is given back
    pub fn park(&self, parked: S, due: Due) -> Result<(), S> {
        let Some(epoll) = &self.epoll else {
            return Err(parked);
        };
        let mut beds = self.beds.borrow_mut();
        if beds.closed {
            return Err(parked);
        }
        let fd = parked.fd();
        let key = beds.sleepers.vacant_key();
        if epoll.add(fd, tag(key, fd)).is_err() {
            return Err(parked);
        }
        let watch = parked.watch();
        let (keepalive, deadline) = (beds.by_due.tick(due.keepalive), beds.by_due.tick(due.deadline));
        let sleeper = Sleeper {
            parked,
            keepalive,
            deadline,
        };
        let tick = sleeper.due();
        beds.sleepers.insert(sleeper);
        PARKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(m) = watch.mailbox {
            beds.by_mailbox.add(m, key);
        }
        if let Some(u) = watch.user {
            beds.by_user.add(u, key);
        }
        let earliest = beds.by_due.first().is_none_or(|first| tick < first);
        beds.by_due.add(tick, key);
        if earliest {
            self.kick.notify_one();
        }
        Ok(())
    }

    /// The core's change feed touched `mailbox` of `user`: their sleepers are roused.
    pub fn touched(&self, mailbox: MailboxId, user: UserId) {
        let mut beds = self.beds.borrow_mut();
        let beds = &mut *beds;
        let mut any = false;
        if beds.by_mailbox.has(mailbox) {
            any |= beds.mailboxes.insert(mailbox);
        }
        if beds.by_user.has(user) {
            any |= beds.users.insert(user);
        }
        if any {
            self.kick.notify_one();
        }
    }

    /// Takes sleeper `key` out of every index.
    fn take(beds: &mut Beds<S>, epoll: &Epoll, key: u32) -> Option<(S, Due)> {
        let s = beds.sleepers.try_remove(key)?;
        PARKED.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        epoll.remove(s.parked.fd());
        let watch = s.parked.watch();
        if let Some(m) = watch.mailbox {
            beds.by_mailbox.remove(m, key);
        }
        if let Some(u) = watch.user {
            beds.by_user.remove(u, key);
        }
        beds.by_due.remove(s.due(), key);
        let due = Due {
            keepalive: beds.by_due.when(s.keepalive),
            deadline: beds.by_due.when(s.deadline),
        };
        Some((s.parked, due))
    }

    /// The sleepers to rouse now, and why: those whose socket the epoll set reports ready,
    /// whose mailbox or user changed, whose place was taken (`evicted`), and who are due.
    fn wakeful(&self, epoll: &Epoll, ready: &[u64], evicted: bool, now: Instant) -> Vec<(S, Rouse)> {
        let mut beds = self.beds.borrow_mut();
        let beds = &mut *beds;
        let mut out = Vec::new();
        for &t in ready {
            let (key, fd) = untag(t);
            if beds.sleepers.get(key).is_some_and(|s| s.parked.fd() == fd) {
                out.extend(Self::take(beds, epoll, key).map(|(p, _)| (p, Rouse::Ready)));
            }
        }
        if evicted {
            let gone: Vec<u32> = beds
                .sleepers
                .iter()
                .filter(|(_, s)| s.parked.evicted())
                .map(|(k, _)| k)
                .collect();
            for key in gone {
                let p = Self::take(beds, epoll, key);
                out.extend(p.map(|(p, _)| (p, Rouse::Goodbye(Goodbye::Replaced))));
            }
        }
        // A whole list is taken at once, so no key is looked for in it one by one.
        let mut changed = Vec::new();
        for m in std::mem::take(&mut beds.mailboxes) {
            changed.extend(beds.by_mailbox.take(m));
        }
        for u in std::mem::take(&mut beds.users) {
            changed.extend(beds.by_user.take(u));
        }
        for key in changed {
            let taken = Self::take(beds, epoll, key);
            out.extend(taken.map(|(p, due)| (p, Rouse::Changed { deadline: due.deadline })));
        }
        for key in beds.by_due.take_due(now) {
            let Some((p, due)) = Self::take(beds, epoll, key) else {
                continue;
            };
            let why = if due.deadline <= now {
                Rouse::Goodbye(Goodbye::IdleTimeout)
            } else {
                Rouse::Keepalive { deadline: due.deadline }
            };
            out.push((p, why));
        }
        out
    }

    /// Every sleeper, for a last goodbye; the lot takes none after this.
    fn close(&self, epoll: &Epoll) -> Vec<S> {
        let mut beds = self.beds.borrow_mut();
        beds.closed = true;
        let keys: Vec<u32> = beds.sleepers.iter().map(|(k, _)| k).collect();
        keys.into_iter()
            .filter_map(|k| Self::take(&mut beds, epoll, k).map(|(p, _)| p))
            .collect()
    }

    fn earliest(&self) -> Option<Instant> {
        self.beds.borrow().by_due.earliest()
    }
}

/// Watches over core `core`'s lot until shutdown, rousing sleepers as their time comes.
pub(crate) async fn watch_over(core: Rc<Core>, shared: Arc<Shared>, shutdown: Shutdown) {
    let lot = &core.lot;
    let Some(epoll) = lot.epoll.clone() else {
        return;
    };
    let poll = |e: &Rc<Epoll>| Box::pin(crate::runtime::io::poll_readable(e.raw_fd(), e.clone()));
    let mut ready = poll(&epoll);
    let far = || Instant::now() + Duration::from_secs(86_400);
    let mut timer = std::pin::pin!(tokio::time::sleep_until(far()));
    let mut events = Vec::new();
    loop {
        let at = lot.earliest().unwrap_or_else(far);
        if timer.deadline() != at {
            timer.as_mut().reset(at);
        }
        let mut evicted = false;
        let polled = tokio::select! {
            r = &mut ready => Some(r),
            () = lot.kick.notified() => None,
            () = lot.bell.notified() => {
                evicted = true;
                None
            }
            () = &mut timer => None,
            () = shutdown.wait() => break,
        };
        events.clear();
        if let Some(r) = polled {
            ready = poll(&epoll);
            if r.and_then(|()| epoll.ready(&mut events)).is_err() {
                // The set cannot say who is ready: every sleeper goes back to reading in its
                // own task, and no more park here.
                tracing::warn!("the parked sessions' epoll set failed; IDLE waits in session tasks");
                for p in lot.close(&epoll) {
                    imap::rouse(&shared, &core, p, Rouse::Ready);
                }
                return;
            }
        }
        for (p, why) in lot.wakeful(&epoll, &events, evicted, Instant::now()) {
            imap::rouse(&shared, &core, p, why);
        }
    }
    for p in lot.close(&epoll) {
        imap::rouse(&shared, &core, p, Rouse::Goodbye(Goodbye::ShuttingDown));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// A sleeper is its session's data and a few words of the lot's: no future, no buffer.
    #[test]
    fn a_sleeper_is_its_data() {
        let sleeper = std::mem::size_of::<Sleeper<imap::Parked>>();
        let data = std::mem::size_of::<imap::Parked>();
        // 856 bytes (824 of the session's, 32 of its keepalive and deadline) when the lot
        // was made; 640 once what a parked session holds empty took a word or none (thin
        // vectors, boxed rarities, no write lock on plaintext) and the times became ticks; 592
        // once it held its link instead of its driver (whose input, shutdown and STARTTLS
        // settings are empty or the core's while it waits); 528 once the command reader kept
        // a command's progress boxed, and none between commands; 472 once a connection's TLS
        // and COMPRESS fields moved into a box made when either starts.
        assert!(
            sleeper - data <= 8,
            "a sleeper's bookkeeping grew to {} bytes",
            sleeper - data
        );
        assert!(sleeper <= 472, "a sleeper grew to {sleeper} bytes");
        let slot = crate::runtime::pages::slot_size::<Sleeper<imap::Parked>>();
        assert_eq!(slot, sleeper, "a free slot's key takes room of its own");
    }

    /// A sleeper on a real socket; its client's end is `peer`.
    struct Fake {
        name: &'static str,
        ours: UnixStream,
        watch: Watch,
        evicted: Arc<AtomicBool>,
    }

    impl Sleep for Fake {
        fn fd(&self) -> RawFd {
            self.ours.as_raw_fd()
        }
        fn watch(&self) -> Watch {
            self.watch
        }
        fn evicted(&self) -> bool {
            self.evicted.load(Ordering::Relaxed)
        }
    }

    fn fake(name: &'static str, mailbox: Option<MailboxId>, user: Option<UserId>) -> (Fake, UnixStream) {
        let (ours, peer) = UnixStream::pair().unwrap();
        let watch = Watch { mailbox, user };
        let evicted = Arc::default();
        (
            Fake {
                name,
                ours,
                watch,
                evicted,
            },
            peer,
        )
    }

    fn later(secs: u64) -> Due {
        let now = Instant::now();
        Due {
            keepalive: now + Duration::from_secs(secs),
            deadline: now + Duration::from_secs(secs + 1000),
        }
    }

    /// Who leaves, and why, at `now` (after the epoll set's ready list, and evictions if the
    /// bell rang).
    fn wake(lot: &Lot<Fake>, evicted: bool, now: Instant) -> Vec<(&'static str, Rouse)> {
        let epoll = lot.epoll.clone().unwrap();
        let mut ready = Vec::new();
        epoll.ready(&mut ready).unwrap();
        let mut woke: Vec<_> = lot
            .wakeful(&epoll, &ready, evicted, now)
            .into_iter()
            .map(|(s, why)| (s.name, why))
            .collect();
        woke.sort_by_key(|(name, _)| *name);
        woke
    }

    fn empty(lot: &Lot<Fake>) -> bool {
        let beds = lot.beds.borrow();
        beds.sleepers.iter().next().is_none()
            && beds.by_mailbox.is_empty()
            && beds.by_user.is_empty()
            && beds.by_due.is_empty()
    }

    /// A change rouses the sleepers on its mailbox and, for NOTIFY sessions, on its user; a
    /// client's bytes rouse their sleeper; nobody else leaves, and nothing is left behind.
    #[test]
    fn sleepers_leave_for_what_concerns_them() {
        let lot = Lot::new();
        let (a, _a) = fake("a", Some(1), None);
        let (b, mut b_peer) = fake("b", Some(2), None);
        let (c, _c) = fake("c", Some(3), Some(7));
        let (d, _d) = fake("d", Some(1), None);
        for s in [a, b, c, d] {
            assert!(lot.park(s, later(60)).is_ok());
        }
        assert!(wake(&lot, false, Instant::now()).is_empty());

        lot.touched(1, 9);
        lot.touched(1, 9);
        let woke = wake(&lot, false, Instant::now());
        let names: Vec<_> = woke.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["a", "d"]);
        assert!(woke.iter().all(|(_, why)| matches!(why, Rouse::Changed { .. })));

        // A change to a mailbox of user 7 that c has not selected still reaches it.
        lot.touched(5, 7);
        let woke = wake(&lot, false, Instant::now());
        assert!(matches!(woke.as_slice(), [("c", Rouse::Changed { .. })]));

        // Nobody on mailbox 1 any more: nothing is recorded for it.
        lot.touched(1, 9);
        assert!(lot.beds.borrow().mailboxes.is_empty());

        b_peer.write_all(b"DONE\r\n").unwrap();
        let woke = wake(&lot, false, Instant::now());
        assert!(matches!(woke.as_slice(), [("b", Rouse::Ready)]));
        assert!(empty(&lot));
    }

    /// A sleeper due hears its keepalive, keeping its deadline, or at its deadline says
    /// goodbye; one whose place was taken says goodbye when the bell rings.
    #[test]
    fn sleepers_leave_when_due_or_taken_over() {
        let lot = Lot::new();
        let now = Instant::now();
        let (a, _a) = fake("a", Some(1), None);
        let (b, _b) = fake("b", Some(1), None);
        let (c, _c) = fake("c", Some(1), None);
        let a_due = Due {
            keepalive: now + Duration::from_secs(1),
            deadline: now + Duration::from_secs(10),
        };
        let b_due = Due {
            keepalive: now + Duration::from_secs(5),
            deadline: now + Duration::from_secs(2),
        };
        let taken = c.evicted.clone();
        lot.park(a, a_due).ok().unwrap();
        lot.park(b, b_due).ok().unwrap();
        lot.park(c, later(60)).ok().unwrap();
        let earliest = lot.earliest().unwrap();
        assert!(earliest >= a_due.keepalive && earliest <= a_due.keepalive + TICK);

        let woke = wake(&lot, false, now + Duration::from_millis(1500));
        let [("a", Rouse::Keepalive { deadline })] = woke.as_slice() else {
            panic!("only a's keepalive is due");
        };
        // Kept, rounded up to the lot's tick.
        assert!(*deadline >= a_due.deadline && *deadline <= a_due.deadline + TICK);
        let woke = wake(&lot, false, now + Duration::from_secs(3));
        assert!(matches!(woke.as_slice(), [("b", Rouse::Goodbye(Goodbye::IdleTimeout))]));

        // The bell rings for every lot; only the sleeper taken over leaves.
        let (e, _e) = fake("e", Some(1), None);
        lot.park(e, later(60)).ok().unwrap();
        assert!(wake(&lot, true, now + Duration::from_secs(3)).is_empty());
        taken.store(true, Ordering::Relaxed);
        let woke = wake(&lot, true, now + Duration::from_secs(3));
        assert!(matches!(woke.as_slice(), [("c", Rouse::Goodbye(Goodbye::Replaced))]));
    }

    /// At shutdown every sleeper is handed back, and the lot takes no more.
    #[test]
    fn a_closed_lot_hands_back_and_takes_none() {
        let lot = Lot::new();
        let (a, _a) = fake("a", Some(1), None);
        let (b, _b) = fake("b", None, Some(2));
        lot.park(a, later(60)).ok().unwrap();
        lot.park(b, later(60)).ok().unwrap();
        let epoll = lot.epoll.clone().unwrap();
        let mut back: Vec<_> = lot.close(&epoll).into_iter().map(|s| s.name).collect();
        back.sort();
        assert_eq!(back, ["a", "b"]);
        assert!(empty(&lot));
        let (c, _c) = fake("c", Some(1), None);
        assert!(lot.park(c, later(60)).is_err());
    }
}
