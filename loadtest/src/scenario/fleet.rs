//! Many IMAP sessions in IDLE, spread over worker processes (this machine caps a process at
//! 20,000 open files): the ground `idle` and `fanout` stand on.
//!
//! The parent starts `loadtest session-worker` processes, each holding a share of the
//! sessions on one asynchronous thread. A worker opens its sessions (connect, TLS, LOGIN,
//! SELECT, IDLE) a few at a time, prints one `READY {json}` line with how that went, and
//! then watches every session for untagged EXISTS, noting the wall-clock time of each new
//! message; on `REPORT` from the parent it prints `ARRIVALS {json}`; on `STORM` it drops
//! every session at once and opens them all again at once, as phones do after a network
//! blip, and prints `STORMED {json}`; it exits when its stdin closes. Wall-clock
//! microseconds are the one clock all processes share.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::TcpStream;

use super::user_name;
use crate::Common;
use loadtest::client::imap::quote;
use loadtest::client::tls_config;
use loadtest::report::{self, HistogramData};

/// An IMAP server and its users, as `idle`, `fanout` and `login` reach them.
#[derive(Args, Debug, Clone)]
pub struct ImapTarget {
    #[command(flatten)]
    pub common: Common,
    /// Plaintext IMAP port (the server must allow LOGIN without TLS there).
    #[arg(long, default_value_t = 143)]
    pub imap_port: u16,
    /// Use implicit TLS on --imaps-port instead of plaintext.
    #[arg(long)]
    pub tls: bool,
    #[arg(long, default_value_t = 993)]
    pub imaps_port: u16,
    /// The server's certificate, trusted for --tls.
    #[arg(long)]
    pub cafile: Option<PathBuf>,
    /// Name the certificate is checked against.
    #[arg(long, default_value = "localhost")]
    pub tls_name: String,
    /// User pattern; `%d` becomes 0..user-count.
    #[arg(long, default_value = "user%d")]
    pub users: String,
    /// Users in all (default: one per session; `login`: 1).
    #[arg(long)]
    pub user_count: Option<u64>,
    #[arg(long)]
    pub password: String,
}

impl ImapTarget {
    pub fn addr(&self) -> SocketAddr {
        let port = if self.tls { self.imaps_port } else { self.imap_port };
        SocketAddr::new(self.common.host, port)
    }

    /// The TLS configuration trusting --cafile, if --tls.
    pub fn tls_config(&self) -> anyhow::Result<Option<Arc<rustls::ClientConfig>>> {
        match (&self.cafile, self.tls) {
            (_, false) => Ok(None),
            (None, true) => bail!("--tls needs --cafile (the server's certificate)"),
            (Some(cafile), true) => Ok(Some(
                tls_config(cafile).with_context(|| format!("reading {}", cafile.display()))?,
            )),
        }
    }

    /// The command-line flags that reproduce this target (for worker processes).
    fn flags(&self, user_count: u64) -> Vec<std::ffi::OsString> {
        let mut flags: Vec<std::ffi::OsString> = [
            ("--host", self.common.host.to_string()),
            ("--timeout", self.common.timeout.to_string()),
            ("--imap-port", self.imap_port.to_string()),
            ("--imaps-port", self.imaps_port.to_string()),
            ("--tls-name", self.tls_name.clone()),
            ("--users", self.users.clone()),
            ("--user-count", user_count.to_string()),
            ("--password", self.password.clone()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.into(), value.into()])
        .collect();
        if self.tls {
            flags.push("--tls".into());
        }
        if let Some(cafile) = &self.cafile {
            flags.push("--cafile".into());
            flags.push(cafile.into());
        }
        flags
    }
}

/// Sessions held in IDLE over worker processes.
#[derive(Args, Debug, Clone)]
pub struct SessionArgs {
    #[command(flatten)]
    pub target: ImapTarget,
    /// Sessions to hold open in IDLE; session i logs in as user (i mod --user-count).
    #[arg(long, default_value_t = 1000)]
    pub sessions: u64,
    #[arg(long, default_value = "INBOX")]
    pub mailbox: String,
    /// Sessions per worker process (each session is one open file in the worker).
    #[arg(long, default_value_t = 5000)]
    pub sessions_per_worker: u64,
    /// Sessions a worker sets up at once.
    #[arg(long, default_value_t = 16)]
    pub connect_concurrency: usize,
    /// Sessions a worker opens again at once after a storm's drop (`storm`).
    #[arg(long, default_value_t = 1000)]
    pub storm_concurrency: usize,
    /// The server's process id: its memory (all its processes) is measured.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Sessions stop after SELECT and wait between commands instead of in IDLE (as clients
    /// that poll do); they hear of no new mail.
    #[arg(long)]
    pub no_idle: bool,
    /// A storm's drop sends nothing to the server (`storm`): the dropped sessions' sockets stay
    /// open and unread until the run ends, as when a mobile network blips, so the server still
    /// holds them when their replacements log in.
    #[arg(long)]
    pub silent_drop: bool,
    /// The local address a storm's reconnects come from (`storm`), as phones that come back
    /// with a new address after a blip: with `--silent-drop` on loopback, the old sessions'
    /// sockets still hold their ports of 127.0.0.1's ephemeral range.
    #[arg(long)]
    pub reconnect_from: Option<IpAddr>,
    /// With --tls, each session keeps its own TLS session (the server's ticket) and resumes it
    /// when it connects again after a storm's drop, as a phone does; without it every
    /// connection is a full handshake.
    #[arg(long)]
    pub resume_tls: bool,
}

impl SessionArgs {
    pub fn user_count(&self) -> u64 {
        self.target.user_count.unwrap_or(self.sessions).max(1)
    }

    /// The command line of a worker for sessions `first..first + count`.
    fn worker_command(&self, first: u64, count: u64) -> anyhow::Result<Command> {
        let exe = std::env::current_exe().context("finding the loadtest binary")?;
        let mut cmd = Command::new(exe);
        cmd.arg("session-worker")
            .args(self.target.flags(self.user_count()))
            .args(["--sessions", &self.sessions.to_string()])
            .args(["--mailbox", &self.mailbox])
            .args(["--connect-concurrency", &self.connect_concurrency.to_string()])
            .args(["--storm-concurrency", &self.storm_concurrency.to_string()])
            .args(["--first", &first.to_string(), "--count", &count.to_string()]);
        if self.no_idle {
            cmd.arg("--no-idle");
        }
        if self.silent_drop {
            cmd.arg("--silent-drop");
        }
        if let Some(from) = self.reconnect_from {
            cmd.args(["--reconnect-from", &from.to_string()]);
        }
        if self.resume_tls {
            cmd.arg("--resume-tls");
        }
        Ok(cmd)
    }
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    #[command(flatten)]
    sessions: SessionArgs,
    /// The first session index this worker holds.
    #[arg(long)]
    first: u64,
    /// How many sessions it holds.
    #[arg(long)]
    count: u64,
}

/// What a worker says once its sessions are set up.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Ready {
    pub opened: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    /// Connect + TLS + LOGIN + SELECT + IDLE per session, µs.
    pub setup: HistogramData,
}

/// Arrival times (wall-clock µs) of new messages per session index, for sessions that saw any.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Arrivals {
    pub by_session: Vec<(u64, Vec<u64>)>,
    /// Sessions the server closed (or that failed) after setup.
    pub closed: u64,
}

/// What a worker says after a storm: its sessions dropped at `dropped_at` and opened again.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Stormed {
    /// Wall-clock µs when the sessions were dropped.
    pub dropped_at: u64,
    /// Wall-clock µs when the last session was back in IDLE.
    pub last_back: u64,
    pub reopened: u64,
    /// Of those, sessions whose TLS handshake resumed their last TLS session.
    pub resumed: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    /// Connect to LOGIN's OK per session, µs.
    pub login: HistogramData,
    /// Connect to IDLE's continuation per session, µs.
    pub setup: HistogramData,
}

impl Stormed {
    /// Adds another worker's storm to this one.
    pub fn merge(&mut self, other: Stormed) {
        if self.dropped_at == 0 || (other.dropped_at != 0 && other.dropped_at < self.dropped_at) {
            self.dropped_at = other.dropped_at;
        }
        self.last_back = self.last_back.max(other.last_back);
        self.reopened += other.reopened;
        self.resumed += other.resumed;
        self.failed += other.failed;
        self.first_error = self.first_error.take().or(other.first_error);
        for (mine, theirs) in [(&mut self.login, other.login), (&mut self.setup, other.setup)] {
            let mut merged = report::latency_histogram();
            mine.merge_into(&mut merged);
            theirs.merge_into(&mut merged);
            *mine = HistogramData::encode(&merged);
        }
    }
}

/// Microseconds since the epoch: comparable between processes on one machine.
pub fn wall_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The parent's handle on the running workers.
pub struct Fleet {
    workers: Vec<Worker>,
    /// Sessions open, and what setting them up cost.
    pub ready: Ready,
    /// From starting the workers to the last READY.
    pub setup_elapsed: Duration,
}

struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Fleet {
    /// Starts the workers for every session and waits until each has set up its share.
    pub fn open(args: &SessionArgs) -> anyhow::Result<Fleet> {
        Fleet::open_range(args, 0..args.sessions)
    }

    /// The same for sessions `range` only.
    pub fn open_range(args: &SessionArgs, range: std::ops::Range<u64>) -> anyhow::Result<Fleet> {
        if args.sessions == 0 || args.sessions_per_worker == 0 {
            bail!("--sessions and --sessions-per-worker must be at least 1");
        }
        args.target.tls_config()?;
        let started = Instant::now();
        let mut workers = Vec::new();
        let mut first = range.start;
        while first < range.end {
            let count = args.sessions_per_worker.min(range.end - first);
            let mut child = args
                .worker_command(first, count)?
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .context("starting a session worker")?;
            let stdin = child.stdin.take();
            let stdout = BufReader::new(child.stdout.take().context("worker stdout")?);
            workers.push(Worker { child, stdin, stdout });
            first += count;
        }
        let mut fleet = Fleet {
            workers,
            ready: Ready::default(),
            setup_elapsed: Duration::ZERO,
        };
        let mut setup = report::latency_histogram();
        for worker in &mut fleet.workers {
            let ready: Ready = worker.receive("READY")?;
            fleet.ready.opened += ready.opened;
            fleet.ready.failed += ready.failed;
            if fleet.ready.first_error.is_none() {
                fleet.ready.first_error = ready.first_error;
            }
            ready.setup.merge_into(&mut setup);
        }
        fleet.setup_elapsed = started.elapsed();
        fleet.ready.setup = HistogramData::encode(&setup);
        Ok(fleet)
    }

    /// Every worker's arrivals so far, merged.
    pub fn arrivals(&mut self) -> anyhow::Result<Arrivals> {
        let mut all = Arrivals::default();
        for worker in &mut self.workers {
            let stdin = worker.stdin.as_mut().context("worker stdin closed")?;
            stdin
                .write_all(b"REPORT\n")
                .context("asking a worker for its arrivals")?;
            stdin.flush()?;
            let part: Arrivals = worker.receive("ARRIVALS")?;
            all.by_session.extend(part.by_session);
            all.closed += part.closed;
        }
        Ok(all)
    }

    /// Every worker drops its sessions and opens them again, all at the same moment; their
    /// reports merged.
    pub fn storm(&mut self) -> anyhow::Result<Stormed> {
        for worker in &mut self.workers {
            let stdin = worker.stdin.as_mut().context("worker stdin closed")?;
            stdin.write_all(b"STORM\n").context("starting a storm")?;
            stdin.flush()?;
        }
        let mut all = Stormed::default();
        for worker in &mut self.workers {
            all.merge(worker.receive("STORMED")?);
        }
        Ok(all)
    }

    /// Closes every session (the workers exit when their stdin closes).
    pub fn close(mut self) -> anyhow::Result<()> {
        for worker in &mut self.workers {
            worker.stdin.take();
        }
        for worker in &mut self.workers {
            worker.child.wait().context("waiting for a session worker")?;
        }
        Ok(())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // On an error path: do not leave thousands of sessions behind.
        for worker in &mut self.workers {
            if worker.stdin.take().is_some() {
                let _ = worker.child.kill();
                let _ = worker.child.wait();
            }
        }
    }
}

impl Worker {
    /// Reads the worker's next `KEYWORD {json}` line.
    fn receive<T: for<'de> Deserialize<'de>>(&mut self, keyword: &str) -> anyhow::Result<T> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line).context("reading a worker")? == 0 {
            bail!("a session worker ended before {keyword} (see its error above)");
        }
        let json = line
            .strip_prefix(keyword)
            .and_then(|rest| rest.strip_prefix(' '))
            .with_context(|| format!("worker said {line:?}, expected {keyword}"))?;
        serde_json::from_str(json).with_context(|| format!("worker's {keyword}"))
    }
}

// ---- the worker process ----

trait Stream: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Stream for T {}

/// A session's reader; writes go through `get_mut()`. A small buffer: the harness holds
/// thousands of these, and IDLE lines are short.
type Session = AsyncBufReader<Box<dyn Stream>>;

/// The `session-worker` subcommand: runs until stdin closes.
pub fn worker(args: &WorkerArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the worker's runtime")?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, work(args))
}

struct Shared {
    args: SessionArgs,
    connector: Option<tokio_rustls::TlsConnector>,
    /// Each session's own connector and so its own cache of TLS sessions (`--resume-tls`).
    own_connectors: RefCell<HashMap<u64, tokio_rustls::TlsConnector>>,
    arrivals: RefCell<HashMap<u64, Vec<u64>>>,
    closed: RefCell<u64>,
    /// Bumped to make every watched session drop its connection (a storm).
    drop_all: tokio::sync::watch::Sender<u64>,
    /// Sessions being watched.
    live: std::cell::Cell<u64>,
    /// Sessions a storm dropped without a word (`--silent-drop`), kept open until the end.
    silenced: RefCell<Vec<Session>>,
}

async fn work(args: &WorkerArgs) -> anyhow::Result<()> {
    let s = &args.sessions;
    let connector = s.target.tls_config()?.map(tokio_rustls::TlsConnector::from);
    let shared = Rc::new(Shared {
        args: s.clone(),
        connector,
        own_connectors: RefCell::new(HashMap::new()),
        arrivals: RefCell::new(HashMap::new()),
        closed: RefCell::new(0),
        drop_all: tokio::sync::watch::Sender::new(0),
        live: std::cell::Cell::new(0),
        silenced: RefCell::new(Vec::new()),
    });
    let deadline = tokio::time::Instant::now() + s.target.common.timeout();
    let gate = Rc::new(tokio::sync::Semaphore::new(s.connect_concurrency.max(1)));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    for index in args.first..args.first + args.count {
        let (shared, gate, done_tx) = (shared.clone(), gate.clone(), done_tx.clone());
        tokio::task::spawn_local(async move {
            let permit = gate.acquire().await;
            let started = Instant::now();
            let opened = tokio::time::timeout_at(deadline, open(&shared, index, None)).await;
            drop(permit);
            match opened {
                Ok(Ok(opened)) => {
                    let _ = done_tx.send(Ok(started.elapsed()));
                    watch(&shared, index, opened.session, opened.exists).await;
                }
                Ok(Err(e)) => {
                    let _ = done_tx.send(Err(format!("session {index}: {e:#}")));
                }
                Err(_) => {
                    let _ = done_tx.send(Err(format!("session {index}: setup timed out (see --timeout)")));
                }
            }
        });
    }
    drop(done_tx);
    let mut ready = Ready::default();
    let mut setup = report::latency_histogram();
    for _ in 0..args.count {
        match done_rx.recv().await {
            Some(Ok(elapsed)) => {
                ready.opened += 1;
                report::record(&mut setup, elapsed);
            }
            Some(Err(e)) => {
                ready.failed += 1;
                ready.first_error.get_or_insert(e);
            }
            None => break,
        }
    }
    ready.setup = HistogramData::encode(&setup);
    say("READY", &ready)?;
    let mut stdin = AsyncBufReader::new(tokio::io::stdin());
    let mut line = String::new();
    loop {
        line.clear();
        if stdin.read_line(&mut line).await.context("reading commands")? == 0 {
            return Ok(());
        }
        if line.trim() == "STORM" {
            let stormed = storm(&shared, args.first..args.first + args.count).await;
            say("STORMED", &stormed)?;
        } else if line.trim() == "REPORT" {
            let arrivals = Arrivals {
                by_session: shared.arrivals.borrow().iter().map(|(i, t)| (*i, t.clone())).collect(),
                closed: *shared.closed.borrow(),
            };
            say("ARRIVALS", &arrivals)?;
        }
    }
}

/// Prints `KEYWORD {json}` for the parent.
fn say(keyword: &str, value: &impl Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{keyword} {}", serde_json::to_string(value)?)?;
    out.flush().context("writing to the parent")
}

/// Drops every watched session at once, then opens `sessions` again, `storm_concurrency`
/// at a time, each going back to being watched.
async fn storm(shared: &Rc<Shared>, sessions: std::ops::Range<u64>) -> Stormed {
    let mut stormed = Stormed {
        dropped_at: wall_micros(),
        ..Stormed::default()
    };
    shared.drop_all.send_modify(|generation| *generation += 1);
    // Every session's task lets its connection go before the first one comes back.
    while shared.live.get() > 0 {
        tokio::task::yield_now().await;
    }
    let deadline = tokio::time::Instant::now() + shared.args.target.common.timeout();
    let gate = Rc::new(tokio::sync::Semaphore::new(shared.args.storm_concurrency.max(1)));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let count = sessions.end - sessions.start;
    for index in sessions {
        let (shared, gate, done_tx) = (shared.clone(), gate.clone(), done_tx.clone());
        tokio::task::spawn_local(async move {
            let permit = gate.acquire().await;
            let started = Instant::now();
            let from = shared.args.reconnect_from;
            let opened = tokio::time::timeout_at(deadline, open(&shared, index, from)).await;
            drop(permit);
            match opened {
                Ok(Ok(opened)) => {
                    let back = (opened.login, started.elapsed(), wall_micros(), opened.resumed);
                    let _ = done_tx.send(Ok(back));
                    watch(&shared, index, opened.session, opened.exists).await;
                }
                Ok(Err(e)) => drop(done_tx.send(Err(format!("session {index}: {e:#}")))),
                Err(_) => drop(done_tx.send(Err(format!("session {index}: not back before --timeout")))),
            }
        });
    }
    drop(done_tx);
    let (mut login, mut setup) = (report::latency_histogram(), report::latency_histogram());
    for _ in 0..count {
        match done_rx.recv().await {
            Some(Ok((logged_in, in_idle, at, resumed))) => {
                stormed.reopened += 1;
                stormed.resumed += u64::from(resumed);
                stormed.last_back = stormed.last_back.max(at);
                report::record(&mut login, logged_in);
                report::record(&mut setup, in_idle);
            }
            Some(Err(e)) => {
                stormed.failed += 1;
                stormed.first_error.get_or_insert(e);
            }
            None => break,
        }
    }
    stormed.login = HistogramData::encode(&login);
    stormed.setup = HistogramData::encode(&setup);
    stormed
}

/// A session set up and in IDLE (or, `--no-idle`, between commands).
struct Opened {
    session: Session,
    /// Its mailbox's message count.
    exists: u64,
    /// From connecting to LOGIN's OK.
    login: Duration,
    /// Its TLS handshake resumed an earlier TLS session.
    resumed: bool,
}

/// The TLS connector session `index` connects with, if --tls: the worker's own, or with
/// `--resume-tls` one of the session's own, which remembers its last TLS session.
fn connector(shared: &Shared, index: u64) -> Option<tokio_rustls::TlsConnector> {
    let shared_one = shared.connector.as_ref()?;
    if !shared.args.resume_tls {
        return Some(shared_one.clone());
    }
    let mut own = shared.own_connectors.borrow_mut();
    let connector = own.entry(index).or_insert_with(|| {
        let mut config = rustls::ClientConfig::clone(shared_one.config());
        // One server name; rustls keeps that name's newest tickets.
        config.resumption = rustls::client::Resumption::in_memory_sessions(1);
        tokio_rustls::TlsConnector::from(Arc::new(config))
    });
    Some(connector.clone())
}

/// Connect (from `from`, if given), TLS, greeting, LOGIN, SELECT, IDLE (unless `--no-idle`).
async fn open(shared: &Shared, index: u64, from: Option<IpAddr>) -> anyhow::Result<Opened> {
    let args = &shared.args;
    let target = &args.target;
    let started = Instant::now();
    let tcp = connect(target.addr(), from).await.context("connecting")?;
    tcp.set_nodelay(true)?;
    let mut resumed = false;
    let stream: Box<dyn Stream> = match connector(shared, index) {
        Some(connector) => {
            let name = rustls::pki_types::ServerName::try_from(target.tls_name.clone())?;
            let tls = connector.connect(name, tcp).await.context("TLS handshake")?;
            resumed = tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
            Box::new(tls)
        }
        None => Box::new(tcp),
    };
    let mut session = AsyncBufReader::with_capacity(1024, stream);
    let mut line = Vec::new();
    read_line(&mut session, &mut line).await.context("greeting")?;
    if !line.starts_with(b"* OK") {
        bail!("greeting {:?}", String::from_utf8_lossy(&line));
    }
    let user = user_name(&target.users, index % args.user_count());
    command(
        &mut session,
        "a1",
        &format!("LOGIN {} {}", quote(&user), quote(&target.password)),
    )
    .await?;
    let login = started.elapsed();
    let untagged = command(&mut session, "a2", &format!("SELECT {}", quote(&args.mailbox))).await?;
    let exists = untagged.iter().find_map(|l| parse_exists(l)).unwrap_or(0);
    if args.no_idle {
        return Ok(Opened {
            session,
            exists,
            login,
            resumed,
        });
    }
    session.get_mut().write_all(b"a3 IDLE\r\n").await?;
    loop {
        read_line(&mut session, &mut line).await.context("IDLE")?;
        if line.starts_with(b"+") {
            return Ok(Opened {
                session,
                exists,
                login,
                resumed,
            });
        }
        if line.starts_with(b"a3 ") {
            bail!("IDLE refused: {}", String::from_utf8_lossy(&line));
        }
    }
}

/// Connects to `to`, from the local address `from` if given.
async fn connect(to: SocketAddr, from: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(from) = from else {
        return TcpStream::connect(to).await;
    };
    let socket = if from.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    bind_address_no_port(&socket)?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// The port is chosen at connect, for the whole address pair, not at bind from the ports
/// free on every destination: binding thousands of sockets to port 0 of one address
/// otherwise searches the ephemeral range anew for each.
fn bind_address_no_port(socket: &tokio::net::TcpSocket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: the descriptor is the socket's own and open; the value is a c_int that lives
    // across the call, and its size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&raw const on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `tag command` and reads to its tagged reply, which must be OK; returns the untagged lines.
async fn command(session: &mut Session, tag: &str, command: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    session
        .get_mut()
        .write_all(format!("{tag} {command}\r\n").as_bytes())
        .await?;
    let verb = command.split(' ').next().unwrap_or(command);
    let mut untagged = Vec::new();
    let mut line = Vec::new();
    loop {
        read_line(session, &mut line)
            .await
            .with_context(|| format!("{verb} reply"))?;
        if let Some(rest) = line.strip_prefix(format!("{tag} ").as_bytes()) {
            if !rest.starts_with(b"OK") {
                bail!("{verb} refused: {}", String::from_utf8_lossy(rest));
            }
            return Ok(untagged);
        }
        untagged.push(line.clone());
    }
}

/// One line without its CRLF; an error at end of stream.
async fn read_line(session: &mut Session, line: &mut Vec<u8>) -> anyhow::Result<()> {
    line.clear();
    if session.read_until(b'\n', line).await? == 0 {
        bail!("server closed the connection");
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(())
}

/// Follows the session in IDLE, noting when new messages arrive, until the server closes it
/// or a storm drops it (closing it, or with `--silent-drop` leaving it open and unread).
async fn watch(shared: &Shared, index: u64, mut session: Session, exists: u64) {
    shared.live.set(shared.live.get() + 1);
    let mut storm = shared.drop_all.subscribe();
    let closed = tokio::select! {
        () = follow(shared, index, &mut session, exists) => true,
        _ = storm.changed() => false,
    };
    shared.live.set(shared.live.get() - 1);
    if closed {
        *shared.closed.borrow_mut() += 1;
    } else if shared.args.silent_drop {
        shared.silenced.borrow_mut().push(session);
    }
}

/// Reads the session's IDLE updates until the server closes it, noting new messages.
async fn follow(shared: &Shared, index: u64, session: &mut Session, mut exists: u64) {
    let mut line = Vec::new();
    while read_line(session, &mut line).await.is_ok() {
        if let Some(n) = parse_exists(&line) {
            if n > exists {
                let now = wall_micros();
                let mut arrivals = shared.arrivals.borrow_mut();
                arrivals.entry(index).or_default().extend((exists..n).map(|_| now));
            }
            exists = n;
        } else if parse_number_before(&line, b" EXPUNGE").is_some() {
            exists = exists.saturating_sub(1);
        }
    }
}

/// `n` of an untagged `* n EXISTS`.
pub fn parse_exists(line: &[u8]) -> Option<u64> {
    parse_number_before(line, b" EXISTS")
}

/// `n` of `* n <suffix>`, case-insensitively on the suffix.
fn parse_number_before(line: &[u8], suffix: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"* ")?;
    let digits = rest.len().checked_sub(suffix.len())?;
    if !rest[digits..].eq_ignore_ascii_case(suffix) {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A storm's reconnects come from the address they are given, many from one address.
    #[tokio::test(flavor = "current_thread")]
    async fn connections_come_from_the_address_asked_for() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let to = listener.local_addr().unwrap();
        let from: IpAddr = "127.0.0.2".parse().unwrap();
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(connect(to, Some(from)).await.unwrap());
            let (_, peer) = listener.accept().await.unwrap();
            assert_eq!(peer.ip(), from);
        }
        let plain = connect(to, None).await.unwrap();
        assert_eq!(plain.local_addr().unwrap().ip(), to.ip());
    }

    #[test]
    fn exists_lines() {
        assert_eq!(parse_exists(b"* 1000 EXISTS"), Some(1000));
        assert_eq!(parse_exists(b"* 3 exists"), Some(3));
        assert_eq!(parse_exists(b"* 3 RECENT"), None);
        assert_eq!(parse_exists(b"* OK [UIDNEXT 5] EXISTS"), None);
        assert_eq!(parse_exists(b"a2 OK EXISTS"), None);
        assert_eq!(parse_number_before(b"* 7 EXPUNGE", b" EXPUNGE"), Some(7));
    }
}
