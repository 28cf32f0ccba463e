//! `ringmail serve`: opens the store, prepares TLS, starts one event loop per core with its own
//! listeners, and drains them on SIGINT/SIGTERM.
//!
//! Every protocol's session runs on the one driver (`driver`) over its client's `link`: the
//! driver moves bytes between the connection and the sans-I/O session (`crate::engine`),
//! upgrades to TLS and waits until the session's deadline; each protocol's module here only
//! carries out that protocol's actions (store reads and writes, logins, message streaming).

#![forbid(unsafe_code)]

pub mod control;
mod core;
pub(crate) mod driver;
mod exposition;
mod imap;
pub(crate) mod link;
pub(crate) mod lmtp;
pub(crate) mod login;
mod lot;
mod move_in;
mod move_upkeep;
pub(crate) mod pool;
mod pop3;
mod submission;
mod submit;

/// The store's read snapshot as the IMAP core reads it; public for the benches.
pub use self::core::SnapRead;
pub use self::pop3::load_maildrop;

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use futures_util::FutureExt;

use crate::auth::limits::{ConnectionLimits, ProtocolLimits};
use crate::auth::password;
use crate::auth::penalty::Penalties;
use crate::config::Config;
use crate::protolog::ProtoLog;
use crate::runtime::io::{self, TcpListener, UnixListener};
use crate::runtime::{self, Shutdown};
use crate::store::{NewUser, Store, StoreError, WriteOp};

/// How long open sessions get to finish once shutdown starts.
const DRAIN: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("cannot create the demo user: {0}")]
    Demo(String),
    #[error("another `ringmail {0}` is running on {1}")]
    Busy(&'static str, String),
}

/// The lock file of `ringmail serve` in its data_dir, and of `ringmail proxy` in its own.
pub(crate) const SERVE_LOCK: &str = "serve.lock";
pub(crate) const PROXY_LOCK: &str = "proxy.lock";

/// One server per data_dir: the maildrop locks and limits live in its memory.
pub(crate) fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, ServeError> {
    lock_in(dir, SERVE_LOCK)
}

/// Takes the lock file `name` in `dir` (held until the file is dropped), or says who has it.
pub(crate) fn lock_in(dir: &std::path::Path, name: &'static str) -> Result<std::fs::File, ServeError> {
    std::fs::create_dir_all(dir)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(name))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            let who = if name == PROXY_LOCK { "proxy" } else { "serve" };
            Err(ServeError::Busy(who, dir.display().to_string()))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// Writes this process's id into the lock file it holds, for `ringmail reload`.
pub(crate) fn record_pid(mut lock: &std::fs::File) -> Result<(), ServeError> {
    use std::io::Write;
    lock.set_len(0)?;
    writeln!(lock, "{}", std::process::id())?;
    Ok(())
}

/// Everything the sessions of every core share.
pub struct Shared {
    pub config: Config,
    pub store: Store,
    pub tls: Arc<rustls::ServerConfig>,
    pub pop3_limits: Arc<ConnectionLimits>,
    pub imap_limits: Arc<ConnectionLimits>,
    pub submission_limits: Arc<ConnectionLimits>,
    pub lmtp_limits: Arc<ConnectionLimits>,
    /// Wakes the outbound queue's runner after a submission queued something.
    pub queue: crate::queue::Waker,
    pub penalties: Penalties,
    pub login_pool: pool::Pool,
    /// The MIME parse of each message delivered, appended or submitted.
    pub ingest_pool: pool::Pool,
    pub maildrop_locks: pop3::MaildropLocks,
    pub protolog: Option<ProtoLog>,
    /// The directory that holds the accounts, when one does (DESIGN.md §7).
    pub directory: Option<Arc<dyn crate::directory::Directory>>,
    /// With a directory: where mailboxes on other back ends are delivered.
    pub routes: Option<Arc<crate::queue::cluster::Routes>>,
    /// Every live session, for `ringmail who` and `kick` and the metrics.
    pub sessions: Arc<crate::sessions::Registry>,
    next_session: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn session_id(&self) -> u64 {
        self.next_session.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Where the accounts are, when a directory holds them.
    pub fn accounts(&self) -> Option<crate::auth::login::Accounts<'_>> {
        self.directory.as_deref().map(|directory| crate::auth::login::Accounts {
            directory,
            home: self.config.backend_name(),
            held: &self.sessions,
        })
    }
}

/// Runs the server until a signal arrives. `on_ready` is told once every listener is bound.
pub fn run(config: Config, on_ready: impl FnOnce(&Shared)) -> Result<(), ServeError> {
    crate::runtime::small_pages();
    let lock = lock_data_dir(&config.server.data_dir)?;
    record_pid(&lock)?;
    let store = Store::open(&config.server.data_dir)?;
    let (tls, identity) = crate::tls::server_config(&config)?;
    let protolog = if config.pop3.protocol_log
        || config.lmtp.protocol_log
        || config.imap.protocol_log
        || config.submission.protocol_log
    {
        Some(ProtoLog::start(
            config.server.data_dir.join(&config.log.protocol_log_dir),
        )?)
    } else {
        None
    };
    let (queue, wakeups) = crate::queue::waker();
    let directory: Option<Arc<dyn crate::directory::Directory>> = config
        .directory
        .is_configured()
        .then(|| Arc::from(crate::directory::open(&config.directory)));
    let limits = ProtocolLimits::from_config(&config, 1);
    if config.oauth.is_configured() {
        crate::auth::oauth::configure(config.oauth.settings(&config.server.domains));
    }
    crate::auth::cache::configure(
        std::time::Duration::from_secs(config.limits.credential_cache_ttl),
        config.limits.credential_cache_entries,
    );
    let shared = Arc::new(Shared {
        submission_limits: limits.submission,
        queue,
        imap_limits: limits.imap,
        pop3_limits: limits.pop3,
        lmtp_limits: limits.lmtp,
        penalties: Penalties::from_config(&config.limits),
        maildrop_locks: pop3::MaildropLocks::default(),
        login_pool: pool::Pool::start("ringmail-login", config.workers(), pool::GiveBack::EachJob)?,
        ingest_pool: pool::Pool::start(
            "ringmail-ingest",
            pool::INGEST_THREADS_PER_CORE * config.workers(),
            pool::GiveBack::WhenIdleFor(pool::INGEST_REST),
        )?,
        protolog,
        routes: directory
            .clone()
            .map(|directory| Arc::new(crate::queue::cluster::Routes::new(directory, &config))),
        directory,
        sessions: Arc::new(crate::sessions::Registry::new(config.workers())),
        next_session: 1.into(),
        tls,
        store,
        config,
    });
    ensure_ports_free(shared.config.listen_addresses().iter().map(|(_, a)| a))?;
    // Before any listener takes mail.
    let held = move_upkeep::restore_holds(&shared);
    let cores = {
        let shared = shared.clone();
        Cores::start(
            shared.config.workers(),
            "ringmail-core",
            move |index, shutdown, ready| worker(shared.clone(), index, shutdown, ready),
        )?
    };
    // Only now, with every listener ours: on start the runner tries every entry that is due,
    // so the queue survives restarts.
    let mut runner = crate::queue::RunnerSettings::from_config(&shared.config);
    runner.cluster = shared.routes.clone();
    if let Err(e) = crate::queue::spawn(shared.store.clone(), runner, wakeups) {
        cores.stop();
        return Err(e.into());
    }
    let doors = match SideDoors::open(&shared, held) {
        Ok(doors) => doors,
        Err(e) => {
            cores.stop();
            return Err(e);
        }
    };
    let signals = match runtime::catch_signals() {
        Ok(signals) => signals,
        Err(e) => {
            cores.stop();
            return Err(e.into());
        }
    };
    on_ready(&shared);
    cores.run_until_signal(signals, &identity)?;
    drop(doors);
    // The last \Recent claims, so a restart does not hand those messages out again.
    shared.store.write_blocking(crate::store::WriteOp::Flush)?;
    Ok(())
}

/// What a server answers beside mail, each on a thread of its own: the admin socket (`who`,
/// `kick`), the metrics endpoint, client autoconfiguration, incoming moves; and the removal of
/// copies kept after moves. Closed when dropped.
struct SideDoors {
    _control: control::Control,
    _metrics: Option<crate::http::Server>,
    _autoconfig: Option<crate::http::Server>,
    _moves: Option<move_in::Receiver>,
    _moves_upkeep: Option<move_upkeep::Upkeep>,
}

impl SideDoors {
    fn open(shared: &Arc<Shared>, held: bool) -> Result<SideDoors, ServeError> {
        crate::store::observe_commits(crate::metrics::commit);
        let dir = &shared.config.server.data_dir;
        Ok(SideDoors {
            _control: control::Control::start(dir, control::ADMIN_SOCKET, shared.sessions.clone())?,
            _metrics: crate::metrics::start(&shared.config, exposition::Exposition(shared.clone()))?,
            _autoconfig: crate::autoconfig::start(&shared.config, &shared.tls)?,
            _moves: move_in::Receiver::start(shared)?,
            _moves_upkeep: move_upkeep::Upkeep::start(shared, held)?,
        })
    }
}

/// A worker reports on this once its listeners are bound (or could not be).
pub(crate) type Ready = mpsc::Sender<Result<(), ServeError>>;

/// One event loop per core, each on its own thread, and the shutdown that ends them.
pub(crate) struct Cores {
    shutdown: Shutdown,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Cores {
    /// Starts `count` threads named `name-N`, each running `worker(N, shutdown, ready)` as its
    /// loop, and returns once every one has reported ready; the first failure stops them all.
    pub(crate) fn start<F, W>(count: usize, name: &str, worker: W) -> Result<Cores, ServeError>
    where
        F: Future<Output = ()> + 'static,
        W: Fn(usize, Shutdown, Ready) -> F + Clone + Send + 'static,
    {
        let shutdown = Shutdown::default();
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut cores = Cores {
            shutdown: shutdown.clone(),
            threads: Vec::new(),
        };
        for index in 0..count {
            let (worker, shutdown, ready) = (worker.clone(), shutdown.clone(), ready_tx.clone());
            let thread = std::thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || {
                    runtime::set_core_index(index);
                    io::run_loop(worker(index, shutdown, ready))
                });
            match thread {
                Ok(t) => cores.threads.push(t),
                Err(e) => {
                    cores.stop();
                    return Err(e.into());
                }
            }
        }
        drop(ready_tx);
        if let Some(e) = ready_rx.iter().find_map(Result::err) {
            cores.stop();
            return Err(e);
        }
        Ok(cores)
    }

    /// Waits for SIGINT or SIGTERM, then stops the loops; each SIGHUP meanwhile reloads the
    /// certificate and key of `identity`.
    pub(crate) fn run_until_signal(
        self,
        signals: signal_hook::iterator::Signals,
        identity: &crate::tls::Identity,
    ) -> Result<(), ServeError> {
        let signal = runtime::wait_for_signal(signals, || crate::tls::reload_logged(identity))?;
        tracing::info!("signal {signal}: shutting down");
        self.stop();
        Ok(())
    }

    /// Tells every loop to shut down and waits for them.
    pub(crate) fn stop(self) {
        self.shutdown.trigger();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Creates user `demo` with a random password when the store has no user at all.
pub fn ensure_demo_user(store: &Store) -> Result<Option<String>, ServeError> {
    if !store.snapshot()?.users()?.is_empty() {
        return Ok(None);
    }
    let password = password::generate();
    let hashed = password::hash(&password).map_err(|e| ServeError::Demo(e.to_string()))?;
    store.write_blocking(WriteOp::AddUser(NewUser {
        name: "demo".into(),
        password_hash: hashed.phc,
        scram: hashed.scram,
        admin: false,
    }))?;
    Ok(Some(password))
}

/// A connection let in (with its place in the limits), or `None` if it was closed.
type Admission<'a> =
    std::pin::Pin<Box<dyn Future<Output = Option<(crate::net::Conn, crate::auth::limits::Slot)>> + 'a>>;

/// `Admission`, with the front end a proxied client came through.
type Accepted<'a> =
    std::pin::Pin<Box<dyn Future<Output = Option<(crate::net::Conn, crate::auth::limits::Slot, Option<Front>)>> + 'a>>;

/// The front end a proxied client came through, and what its PROXY header said.
#[derive(Clone, Copy)]
pub(crate) struct Front {
    pub addr: std::net::IpAddr,
    /// The client's TLS session follows its login (`net::handoff`).
    pub pass_tls: bool,
}

/// A client of a `serve` listener as its driver takes it (boxed, like `admit`): on a
/// proxy-facing listener the front end's PROXY header first, then admission and implicit TLS.
/// Gives the connection, its slot, and for a proxied one the front end's address.
pub(crate) fn accept_client<'a>(
    shared: &'a Shared,
    mut conn: crate::net::Conn,
    via: Via,
    (limits, pre_auth): (&'a Arc<ConnectionLimits>, Duration),
    refusal: impl FnOnce(crate::auth::limits::LimitHit) -> String + 'a,
) -> Accepted<'a> {
    Box::pin(async move {
        let mut front = None;
        if via == Via::Proxy {
            let addr = conn.peer;
            let pass_tls;
            (conn, pass_tls) = accept_proxied(conn, shared).await?;
            front = Some(Front { addr, pass_tls });
        }
        let tls = (via == Via::ImplicitTls).then_some((&shared.tls, pre_auth));
        let (conn, slot) = admit(conn, limits, tls, refusal).await?;
        Some((conn, slot, front))
    })
}

/// How long telling a refused client why may take, TLS handshake included.
const REFUSAL_BUDGET: Duration = Duration::from_secs(5);
/// TLS handshakes for refused clients under way at once, over the whole process.
const TLS_REFUSALS: usize = 32;

/// One of the `TLS_REFUSALS` places.
struct TlsRefusal;

static TLS_REFUSING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl TlsRefusal {
    /// A place for a TLS refusal, if one is free.
    fn start() -> Option<TlsRefusal> {
        use std::sync::atomic::Ordering;
        TLS_REFUSING
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < TLS_REFUSALS).then_some(n + 1)
            })
            .ok()
            .map(|_| TlsRefusal)
    }
}

impl Drop for TlsRefusal {
    fn drop(&mut self) {
        TLS_REFUSING.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Admits a new client connection: takes its place in the protocol's connection limits
/// (a refused client is told `refusal(why)`, over TLS on an implicit-TLS listener), then runs
/// the implicit-TLS handshake under the pre-auth timeout. `None`: it was closed.
/// The future is boxed: inline, the handshake's ~2.3 KiB would be part of the session's
/// state for its whole life, the largest part of an idle session's memory.
pub(crate) fn admit<'a>(
    conn: crate::net::Conn,
    limits: &'a Arc<ConnectionLimits>,
    implicit_tls: Option<(&'a Arc<rustls::ServerConfig>, Duration)>,
    refusal: impl FnOnce(crate::auth::limits::LimitHit) -> String + 'a,
) -> Admission<'a> {
    Box::pin(async move {
        let slot = match limits.connect(conn.peer) {
            Ok(slot) => slot,
            Err(hit) => {
                crate::metrics::refused(limits.protocol(), hit.name());
                // A TLS client is told too, after a handshake: dropped without a word, clients
                // report a certificate or network problem and users call the help desk. The
                // handshakes of refusals are few at a time, so a flood against a full server
                // cannot turn them into work: past that, the connection is just closed.
                let refusing = implicit_tls.and_then(|_| TlsRefusal::start());
                if implicit_tls.is_none() || refusing.is_some() {
                    let told = async {
                        if let Some((tls, _)) = implicit_tls {
                            conn.start_tls(tls.clone()).await?;
                        }
                        conn.write(&mut refusal(hit).into_bytes()).await
                    };
                    let _ = tokio::time::timeout(REFUSAL_BUDGET, told).await;
                }
                drop(refusing);
                conn.close().await;
                return None;
            }
        };
        if let Some((tls, limit)) = implicit_tls {
            if !matches!(
                tokio::time::timeout(limit, conn.start_tls(tls.clone())).await,
                Ok(Ok(()))
            ) {
                conn.close().await;
                return None;
            }
        }
        Some((conn, slot))
    })
}

/// The work a connection may do per wake before the other connections of its core get
/// theirs: a client pipelining millions of commands (or a COMPRESS stream that inflates to
/// them) shares the core instead of holding it.
#[derive(Default)]
pub(crate) struct Budget {
    steps: u32,
}

/// Commands answered per wake.
const STEPS_PER_WAKE: u32 = 64;
/// Output gathered per wake.
const OUTPUT_PER_WAKE: usize = 64 * 1024;

impl Budget {
    /// Counts one command with `output` bytes waiting to go out; true when this wake's share
    /// is spent. The driver then sends its output, so no more input is taken than the client
    /// takes answers (and a client that has gone is noticed by the failing write), and yields.
    pub(crate) fn spend(&mut self, output: usize) -> bool {
        self.steps += 1;
        if self.steps >= STEPS_PER_WAKE || output >= OUTPUT_PER_WAKE {
            self.steps = 0;
            return true;
        }
        false
    }
}

/// The protocol log's first line of a session: where the client is (and the front end it
/// came through).
pub(crate) fn connected(peer: std::net::IpAddr, front: Option<std::net::IpAddr>) -> String {
    match front {
        Some(front) => format!("connected from {peer} through front end {front}"),
        None => format!("connected from {peer}"),
    }
}

/// Opens a connection on a proxy-facing listener (DESIGN.md §7): it must come from a trusted
/// network and start with a PROXY v2 header, whose client address then stands for the
/// connection's in limits, penalties and logs. The header is read to its exact length, so
/// nothing of what follows it is taken. `None`: it was refused and closed. With the
/// connection, whether the client's TLS session follows its login.
async fn accept_proxied(mut conn: crate::net::Conn, shared: &Shared) -> Option<(crate::net::Conn, bool)> {
    use crate::proxy::proxy_v2;
    if !shared.config.cluster.trusts(conn.peer) {
        tracing::warn!(peer = %conn.peer, "proxy-facing listener: untrusted address refused");
        conn.close().await;
        return None;
    }
    let mut input = Vec::with_capacity(proxy_v2::MAX_HEADER);
    let limit = Duration::from_secs(shared.config.imap.pre_auth_timeout);
    let deadline = tokio::time::Instant::now() + limit;
    let header = loop {
        match proxy_v2::parse(&input) {
            Ok(Some(header)) => break header,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(peer = %conn.peer, "proxy-facing listener: {e}");
                conn.close().await;
                return None;
            }
        }
        // Exactly the header's bytes: what follows may be a TLS handshake for `start_tls`.
        let mut more = Vec::with_capacity(proxy_v2::needed(&input).saturating_sub(input.len()).max(1));
        match tokio::time::timeout_at(deadline, conn.read(&mut more)).await {
            Ok(Ok(n)) if n > 0 => input.extend_from_slice(&more),
            _ => {
                conn.close().await;
                return None;
            }
        }
    };
    if let Some(client) = header.client {
        conn.peer = client.ip();
    }
    if shared.config.cluster.proxy_tls {
        if header.pass_tls {
            // A session passed on over a link of its own TLS would be TLS inside TLS.
            tracing::warn!(peer = %conn.peer, "proxy-facing listener: a TLS session passed over TLS refused");
            conn.close().await;
            return None;
        }
        // The front end starts TLS right after the header, before any greeting.
        let handshake = conn.start_tls(shared.tls.clone());
        if !matches!(tokio::time::timeout_at(deadline, handshake).await, Ok(Ok(()))) {
            tracing::warn!(peer = %conn.peer, "proxy-facing listener: TLS handshake failed");
            conn.close().await;
            return None;
        }
    }
    Some((conn, header.pass_tls))
}

/// SO_REUSEPORT lets any process of the same user bind a port that is in use and silently
/// share its connections. So first bind each address the ordinary way: if something listens
/// there (another server, or the sockets of a crashed one the kernel has not torn down yet),
/// wait a little, then refuse to start. (Two listeners of one configuration on one address
/// are refused when it is validated.)
pub(crate) fn ensure_ports_free<'a>(addrs: impl IntoIterator<Item = &'a SocketAddr>) -> Result<(), ServeError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    for addr in addrs {
        loop {
            match std::net::TcpListener::bind(addr) {
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(source) => {
                    return Err(ServeError::Listen {
                        addr: addr.to_string(),
                        source,
                    })
                }
            }
        }
    }
    Ok(())
}

/// How a client reaches a listener.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Plain,
    ImplicitTls,
    /// From a front end (`ringmail proxy`): trusted networks, PROXY v2 first.
    Proxy,
}

enum Listener {
    Imap { listener: TcpListener, via: Via },
    Pop3 { listener: TcpListener, via: Via },
    Submission { listener: TcpListener, via: Via },
    LmtpTcp(TcpListener),
    LmtpUnix(UnixListener),
}

fn bind_all(shared: &Shared, index: usize) -> Result<Vec<Listener>, ServeError> {
    let tcp = |addr: &SocketAddr| {
        TcpListener::bind(*addr).map_err(|source| ServeError::Listen {
            addr: addr.to_string(),
            source,
        })
    };
    let c = &shared.config;
    let mut out = Vec::new();
    for (addrs, via) in [
        (&c.imap.listen, Via::Plain),
        (&c.imap.listen_tls, Via::ImplicitTls),
        (&c.imap.listen_proxy, Via::Proxy),
    ] {
        for addr in addrs {
            out.push(Listener::Imap {
                listener: tcp(addr)?,
                via,
            });
        }
    }
    for (addrs, via) in [
        (&c.pop3.listen, Via::Plain),
        (&c.pop3.listen_tls, Via::ImplicitTls),
        (&c.pop3.listen_proxy, Via::Proxy),
    ] {
        for addr in addrs {
            out.push(Listener::Pop3 {
                listener: tcp(addr)?,
                via,
            });
        }
    }
    for (addrs, via) in [
        (&c.submission.listen, Via::Plain),
        (&c.submission.listen_tls, Via::ImplicitTls),
        (&c.submission.listen_proxy, Via::Proxy),
    ] {
        for addr in addrs {
            out.push(Listener::Submission {
                listener: tcp(addr)?,
                via,
            });
        }
    }
    for addr in &c.lmtp.listen {
        out.push(Listener::LmtpTcp(tcp(addr)?));
    }
    // A unix socket cannot be shared by SO_REUSEPORT: the first core serves it.
    if index == 0 {
        let path = c.lmtp_socket_path();
        let unix = UnixListener::bind(&path).map_err(|source| ServeError::Listen {
            addr: path.display().to_string(),
            source,
        })?;
        out.push(Listener::LmtpUnix(unix));
    }
    Ok(out)
}

/// Counts this core's open sessions so shutdown can wait for them.
#[derive(Clone, Default)]
struct Sessions {
    open: Rc<Cell<usize>>,
}

pub(crate) struct SessionGuard(Sessions);

impl Sessions {
    fn enter(&self) -> SessionGuard {
        self.open.set(self.open.get() + 1);
        SessionGuard(self.clone())
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get() - 1);
    }
}

async fn worker(shared: Arc<Shared>, index: usize, shutdown: Shutdown, ready: Ready) {
    let listeners = match bind_all(&shared, index) {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    drop(ready);
    let sessions = Sessions::default();
    let core = core::Core::start(&shared, &shutdown);
    for listener in listeners {
        io::spawn(accept_loop(
            listener,
            shared.clone(),
            core.clone(),
            shutdown.clone(),
            sessions.clone(),
        ));
    }
    shutdown.wait().await;
    let drained = async {
        while sessions.open.get() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let _ = tokio::time::timeout(DRAIN, drained).await;
}

async fn accept_loop(
    mut listener: Listener,
    shared: Arc<Shared>,
    core: Rc<core::Core>,
    shutdown: Shutdown,
    sessions: Sessions,
) {
    let mut failures = crate::runtime::nofile::AcceptFailures::default();
    loop {
        let accepted = tokio::select! {
            r = accept(&mut listener) => r,
            () = shutdown.wait() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                failures.failed(e).await;
                continue;
            }
        };
        let guard = sessions.enter();
        let (shared, shutdown) = (shared.clone(), shutdown.clone());
        match &listener {
            Listener::Imap { via, .. } => {
                // Not `spawn_session`: a session parked in IDLE outlives this task (`imap`).
                io::spawn(imap::serve(shared, core.clone(), stream, peer, *via, shutdown, guard))
            }
            Listener::Pop3 { via, .. } => spawn_session(pop3::serve(shared, stream, peer, *via, shutdown), guard),
            Listener::Submission { via, .. } => {
                spawn_session(submission::serve(shared, stream, peer, *via, shutdown), guard)
            }
            Listener::LmtpTcp(_) | Listener::LmtpUnix(_) => {
                spawn_session(lmtp::serve(shared, stream, peer, shutdown), guard)
            }
        }
    }
}

/// Runs a session on this core, counted open (`guard`) until it ends. Mapped rather than
/// awaited in an `async` block, which would keep the session's future twice: in the block
/// and as what it awaits.
fn spawn_session(session: impl Future<Output = ()> + 'static, guard: SessionGuard) {
    io::spawn(session.map(move |()| drop(guard)));
}

async fn accept(listener: &mut Listener) -> std::io::Result<(io::Stream, Option<SocketAddr>)> {
    match listener {
        Listener::Imap { listener, .. }
        | Listener::Pop3 { listener, .. }
        | Listener::Submission { listener, .. }
        | Listener::LmtpTcp(listener) => {
            let (s, peer) = listener.accept().await?;
            Ok((s, Some(peer)))
        }
        Listener::LmtpUnix(l) => Ok((l.accept().await?, None)),
    }
}
