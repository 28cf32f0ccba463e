//! The receiving end of a mailbox move (`[cluster] listen_move`, DESIGN.md §7): another back
//! end's `ringmail move` sends a user's mailboxes here as mailbox streams, one pass per
//! connection (`mailstream::wire`).
//!
//! Only from `trusted_networks`, only with the cluster's secret, and only for an account the
//! directory is moving here (`ringmailMoveTarget` names this back end, `mailHost` another):
//! a mailbox that lives here never takes a pass. Until the move flips `mailHost`, the copy
//! here is marked as living elsewhere (the store user's `home`), so nothing delivers into it.
//! Each connection runs on a thread of its own (the store's writer does the writing), at
//! most `MAX_CONNECTIONS` at once.

use std::io::{BufReader, BufWriter};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{ServeError, Shared};
use crate::mailstream::wire::{self, Request, Verb};
use crate::mailstream::{self, format::Reader};
use crate::store::{User, UserPatch, WriteOp};

const MAX_CONNECTIONS: usize = 4;
/// A peer silent for this long mid-pass is dropped (the pass is sent again later).
const IO_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Receiver {
    stop: Arc<AtomicBool>,
    addrs: Vec<SocketAddr>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// Listens on `[cluster] listen_move`, if any.
    pub fn start(shared: &Arc<Shared>) -> Result<Option<Receiver>, ServeError> {
        let listen = &shared.config.cluster.listen_move;
        if listen.is_empty() {
            return Ok(None);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicUsize::new(0));
        let mut receiver = Receiver {
            stop: stop.clone(),
            addrs: Vec::new(),
            threads: Vec::new(),
        };
        for addr in listen {
            let listener = TcpListener::bind(addr).map_err(|source| ServeError::Listen {
                addr: addr.to_string(),
                source,
            })?;
            receiver.addrs.push(listener.local_addr()?);
            let (shared, stop, active) = (shared.clone(), stop.clone(), active.clone());
            let thread = std::thread::Builder::new()
                .name("ringmail-move-in".into())
                .spawn(move || accept_loop(&listener, &shared, &stop, &active))?;
            receiver.threads.push(thread);
        }
        Ok(Some(receiver))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for addr in &self.addrs {
            // Wakes the accept.
            let _ = TcpStream::connect_timeout(addr, Duration::from_secs(1));
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, stop: &AtomicBool, active: &Arc<AtomicUsize>) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let trusted = stream.peer_addr().is_ok_and(|p| shared.config.cluster.trusts(p.ip()));
        if !trusted {
            tracing::warn!(peer = ?stream.peer_addr().ok(), "move: a connection from outside trusted_networks, closed");
            continue;
        }
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            let _ = wire::answer(&mut &stream, Err("too many moves at once: try again later".into()));
            continue;
        }
        let (shared, mine) = (shared.clone(), active.clone());
        let spawned = std::thread::Builder::new().name("ringmail-move".into()).spawn(move || {
            if let Err(e) = serve_one(&shared, &stream) {
                tracing::warn!("move: {e}");
            }
            mine.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn serve_one(shared: &Shared, stream: &TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let nonce = crate::mailstream::format::hex(&rand::random::<[u8; 32]>());
    let mut out = BufWriter::new(stream);
    std::io::Write::write_all(&mut out, format!("{} {nonce}\r\n", wire::GREETING).as_bytes())?;
    std::io::Write::flush(&mut out)?;
    let mut input = BufReader::with_capacity(1 << 20, stream);
    let line = wire::read_line(&mut input)?;
    let Some(request) = Request::parse(&line) else {
        return wire::answer(&mut out, Err("bad request".into()));
    };
    if !request.proves(&shared.config.cluster.proxy_secret, &nonce) {
        tracing::warn!(peer = ?stream.peer_addr().ok(), user = %request.user, "move: a request without the cluster's secret");
        return wire::answer(&mut out, Err("not proven: the cluster's proxy_secret differs".into()));
    }
    let user = match account(shared, &request) {
        Ok(user) => user,
        Err(reason) => return wire::answer(&mut out, Err(reason)),
    };
    let result = match request.verb {
        Verb::Pass => {
            let marks = shared
                .store
                .snapshot()
                .and_then(|s| mailstream::marks(&s, &user.name))
                .map_err(|e| e.to_string())
                .and_then(|m| serde_json::to_string(&m).map_err(|e| e.to_string()));
            let marks = match marks {
                Ok(m) => m,
                Err(reason) => return wire::answer(&mut out, Err(reason)),
            };
            wire::answer(&mut out, Ok(marks))?;
            take_pass(shared, &user, &mut input)
        }
        Verb::Activate => {
            // Moved away once and back since: this server held the user when it left.
            shared.sessions.hold(&user.name, false);
            // Nor is the copy this back end kept when it left to be purged any more.
            let _ = std::fs::remove_file(crate::admin::moves::kept_record(
                &shared.config.server.data_dir,
                &user.name,
            ));
            set_home(shared, &user, None).map(|()| "{}".to_owned())
        }
    };
    if let Err(reason) = &result {
        tracing::warn!(user = %user.name, "move: {reason}");
    }
    wire::answer(&mut out, result)
}

/// The store's user for the request's account, if the directory is moving it here (`PASS`)
/// or has made it live here (`ACTIVATE`).
fn account(shared: &Shared, request: &Request) -> Result<User, String> {
    let directory = shared
        .directory
        .as_ref()
        .ok_or("this back end has no directory: mailboxes move between back ends of one directory")?;
    let account = directory
        .lookup_fresh(&request.user)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no account {:?} in the directory", request.user))?;
    let here = shared.config.backend_name();
    let lives_here = account.mail_host.eq_ignore_ascii_case(here);
    match request.verb {
        Verb::Pass if lives_here => return Err(format!("{}'s mailbox lives here already", account.name)),
        Verb::Pass
            if !account
                .moving
                .as_ref()
                .is_some_and(|m| m.target.eq_ignore_ascii_case(here)) =>
        {
            return Err(format!("the directory names no move of {} to {here}", account.name))
        }
        Verb::Activate if !lives_here => {
            return Err(format!(
                "the directory puts {}'s mailbox on {}",
                account.name, account.mail_host
            ))
        }
        _ => {}
    }
    let user =
        crate::auth::login::provision(&shared.store, &account.name, account.access.admin).map_err(|e| e.to_string())?;
    if request.verb == Verb::Pass && user.home.is_none() {
        // Not home here yet: deliveries go where the directory says.
        set_home(shared, &user, Some(account.mail_host.clone()))?;
    }
    Ok(user)
}

fn set_home(shared: &Shared, user: &User, home: Option<String>) -> Result<(), String> {
    let op = WriteOp::UpdateUser {
        name: user.name.clone(),
        patch: UserPatch {
            home: Some(home),
            ..UserPatch::default()
        },
    };
    shared.store.write_blocking(op).map(drop).map_err(|e| e.to_string())
}

fn take_pass(shared: &Shared, user: &User, input: &mut BufReader<&TcpStream>) -> Result<String, String> {
    let mut reader = Reader::new(input).map_err(|e| e.to_string())?;
    let named = mailstream::read_header(&mut reader).map_err(|e| e.to_string())?;
    if named != user.name {
        return Err(format!("the stream holds {named}'s mailboxes, not {}'s", user.name));
    }
    let (_, carried) = mailstream::apply(
        &shared.store,
        user,
        &mut reader,
        &shared.config.mime_limits(),
        &mut |_| {},
    )
    .map_err(|e| e.to_string())?;
    let digests = shared
        .store
        .snapshot()
        .and_then(|s| mailstream::digests(&s, &user.name))
        .map_err(|e| e.to_string())?;
    let applied = wire::Applied {
        mailboxes: carried.mailboxes,
        messages: carried.messages,
        bytes: carried.bytes,
        changes: carried.changes,
        digests,
    };
    serde_json::to_string(&applied).map_err(|e| e.to_string())
}
