//! The POP3 driver: moves bytes between a connection and `pop3::Session` and carries out its
//! actions — login (argon2 on the login pool, penalties, limits, the maildrop lock), message
//! streaming from the store, and the deletions of the UPDATE state.
//!
//! RETR and TOP gather their output (`net::Gather`): status lines and stuffing are copied, the
//! message bytes are sent from the store's map. Pipelined RETRs share one gathered write until
//! `GATHER_AT` bytes are queued or input runs out. One read transaction covers at most one
//! such write, and it ends when the write does (a stalled client closes the connection after
//! `link::WRITE_TIMEOUT`, which ends the write); none is held while waiting for input.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::link::{timed, Closed, Link, Terms};
use super::login::{self, Failure};
use super::{Shared, Via};
use crate::auth::limits::Slot;
use crate::auth::login::Credentials;
use crate::auth::policy::Protocol;
use crate::config::SortOrder;
use crate::net::{Frame, Framer, Gather};
use crate::pop3::fault::Pop3;
use crate::pop3::retr::Piece;
use crate::pop3::{Action, LoginFailure, Maildrop, Message, RetrEncoder, Session, Settings};
use crate::runtime::io::Stream;
use crate::runtime::Shutdown;
use crate::store::{MappedSnapshot, Snapshot, StoreError, WriteOp, WriteOutcome};

/// Reply text is sent once this much is buffered.
const FLUSH_AT: usize = 256 * 1024;
/// Message output is sent once this much is gathered; a read transaction covers no more.
const GATHER_AT: usize = 1024 * 1024;

/// RFC 1939 §8: one session at a time holds a maildrop's exclusive-access lock.
#[derive(Default)]
pub struct MaildropLocks(Mutex<HashSet<u32>>);

pub struct MaildropLock<'a> {
    locks: &'a MaildropLocks,
    user: u32,
}

impl MaildropLocks {
    fn try_lock(&self, user: u32) -> Option<MaildropLock<'_>> {
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        held.insert(user).then(|| MaildropLock { locks: self, user })
    }
}

impl Drop for MaildropLock<'_> {
    fn drop(&mut self) {
        let mut held = self.locks.0.lock().unwrap_or_else(|e| e.into_inner());
        held.remove(&self.user);
    }
}

struct Driver<'a> {
    link: Link<'a, Pop3>,
    /// Message output not yet sent; it goes out before the reply text in `link.out`.
    gather: Gather,
    /// The read transaction the bytes in `gather` come from.
    snapshot: Option<MappedSnapshot>,
    /// A write failed or timed out: nothing more is sent.
    broken: bool,
}

impl Driver<'_> {
    /// Sends everything queued: gathered message output, then reply text, in one write.
    async fn flush(&mut self) -> Result<(), Closed> {
        if self.broken {
            return Err(Closed);
        }
        if !self.link.out.is_empty() {
            self.link.log('>', &self.link.out);
        }
        // The gathered pieces hold the transaction from here on, until they are sent.
        self.snapshot = None;
        let sent = if self.gather.is_empty() {
            if self.link.out.is_empty() {
                return Ok(());
            }
            timed(self.link.conn.write(&mut self.link.out)).await
        } else {
            self.gather.text(&self.link.out);
            self.link.out.clear();
            timed(self.link.conn.write_gather(&mut self.gather)).await
        };
        if sent.is_err() {
            self.broken = true;
            self.gather.clear();
            return Err(Closed);
        }
        Ok(())
    }
}

pub async fn serve(shared: Arc<Shared>, stream: Stream, peer: Option<SocketAddr>, via: Via, shutdown: Shutdown) {
    let config = &shared.config.pop3;
    let terms = Terms {
        limits: &shared.pop3_limits,
        pre_auth: config.pre_auth_timeout(),
        auth: config.auth_timeout(),
        logged: config.protocol_log,
    };
    let Some((link, mut slot)) = Link::open(&shared, (stream, peer, via), terms).await else {
        return;
    };
    let mut driver = Driver {
        link,
        gather: Gather::default(),
        snapshot: None,
        broken: false,
    };
    let settings = Settings {
        login_type: config.login_type,
        stls: via == Via::Plain,
        banner: config.banner.clone(),
        max_login_failures: shared.config.limits.max_login_failures,
    };
    // A front end took care of the client's TLS; the link to it is a trusted network's.
    let mut session = Session::new(settings, driver.link.conn.is_tls() || driver.link.proxied);
    session.greeting(&mut driver.link.out);
    let mut framer = Framer::new(config.max_command_size);
    let _ = run(&mut driver, &mut session, &mut framer, &mut slot, &shutdown).await;
    let _ = driver.flush().await;
    driver.link.conn.close().await;
}

async fn run<'s>(
    d: &mut Driver<'s>,
    session: &mut Session,
    framer: &mut Framer,
    slot: &mut Slot,
    shutdown: &Shutdown,
) -> Result<(), Closed> {
    let mut lock: Option<MaildropLock<'s>> = None;
    // An action that answered another action (a login result can mean Close).
    let mut follow_up = None;
    let mut budget = super::Budget::default();
    loop {
        let action = match follow_up.take() {
            Some(action) => action,
            None => match framer.next_line() {
                Frame::Line(line) => {
                    let shown = session.loggable(line).into_owned();
                    d.link.log('<', &shown);
                    session.on_line(line, &mut d.link.out)
                }
                Frame::TooLong => session.too_long(&mut d.link.out),
                Frame::NeedMore => {
                    d.flush().await?;
                    framer.shrink_idle();
                    read_more(d, session, framer, shutdown).await?;
                    continue;
                }
            },
        };
        match action {
            Action::Continue => {}
            Action::Login(credentials) => {
                let result = login(d, &credentials, slot, &mut lock).await;
                follow_up = Some(session.login_result(result, &mut d.link.out));
            }
            Action::LookupScram(user) => {
                let keys = login::scram_keys(d.link.shared, &user).await;
                follow_up = Some(session.scram_credentials(keys, &mut d.link.out));
            }
            Action::StartTls => {
                d.flush().await?;
                // RFC 2595 §4: nothing the client pipelined before the handshake survives.
                framer.discard();
                let handshake = d.link.conn.start_tls(d.link.shared.tls.clone());
                match tokio::time::timeout(d.link.shared.config.pop3.pre_auth_timeout(), handshake).await {
                    Ok(Ok(())) => session.tls_started(),
                    _ => return Err(Closed),
                }
            }
            Action::Retrieve { body_id, top, dot_free } => retrieve(d, body_id, top, dot_free).await?,
            Action::Commit { mailbox, uids } => {
                // What was pipelined before QUIT goes out first; no read transaction is held
                // across the commit.
                d.flush().await?;
                let result = d.link.shared.store.write(WriteOp::Expunge { mailbox, uids }).await;
                let result = match result {
                    Ok(WriteOutcome::Expunged(removed)) => Ok(removed.len()),
                    other => {
                        tracing::error!(session = d.link.id, "POP3 update failed: {other:?}");
                        Err(())
                    }
                };
                follow_up = Some(session.commit_result(result, &mut d.link.out));
            }
            Action::Close => return Ok(()),
        }
        if budget.spend(d.link.out.len()) {
            d.flush().await?;
            tokio::task::yield_now().await;
        } else if d.link.out.len() >= FLUSH_AT || d.gather.len() >= GATHER_AT {
            d.flush().await?;
        }
    }
}

/// Waits for more client bytes, the session's timeout, or shutdown — whichever comes first.
/// RFC 1939 §3: the autologout timer closes without entering UPDATE.
async fn read_more(
    d: &mut Driver<'_>,
    session: &Session,
    framer: &mut Framer,
    shutdown: &Shutdown,
) -> Result<(), Closed> {
    // Whole lines were all taken before reading: what is buffered is a line begun.
    let mid_line = !framer.pending().is_empty();
    // A RETR leaves big output buffers behind; a waiting session gives them back.
    if d.link.out.capacity() > 4096 {
        d.link.out = Vec::new();
    }
    d.gather.clear();
    let state = (session.is_authenticated(), mid_line);
    d.link.read(framer.read_buffer(), state, shutdown).await.map(|_| ())
}

async fn login<'s>(
    d: &mut Driver<'s>,
    credentials: &Credentials,
    slot: &mut Slot,
    lock: &mut Option<MaildropLock<'s>>,
) -> Result<Maildrop, LoginFailure> {
    let shared = d.link.shared;
    // Replies pipelined before this login go out before any penalty delay.
    d.flush().await.map_err(|_| LoginFailure::Temporary)?;
    let user = login::login(
        shared,
        d.link.conn.peer,
        credentials,
        Protocol::Pop3,
        slot,
        (d.link.id, d.link.proxied),
    )
    .await
    .map_err(|f| match f {
        Failure::BadCredentials => LoginFailure::BadCredentials,
        Failure::Refused(why) => LoginFailure::Refused(why),
        Failure::Limit(why) => LoginFailure::Limit(why),
        Failure::Temporary => LoginFailure::Temporary,
    })?;
    let held = shared.maildrop_locks.try_lock(user.id).ok_or(LoginFailure::InUse)?;
    let order = shared.config.pop3.message_retrieval_sort_order;
    let maildrop = shared
        .store
        .snapshot()
        .and_then(|s| load_maildrop(&s, user.id, order))
        .map_err(|e| {
            tracing::error!(session = d.link.id, "maildrop: {e}");
            LoginFailure::Temporary
        })?;
    *lock = Some(held);
    Ok(maildrop)
}

/// The maildrop a POP3 login locks: INBOX's messages in `order`, read from `snapshot`.
pub fn load_maildrop(snapshot: &Snapshot<'_>, user: u32, order: SortOrder) -> Result<Maildrop, StoreError> {
    let inbox = snapshot.mailbox(user, "INBOX")?.ok_or(StoreError::NoSuchMailbox)?;
    let mut messages = snapshot
        .messages(inbox.id)?
        .map(|m| {
            m.map(|(uid, record)| Message {
                uid,
                size: record.size,
                body_id: record.body_id,
                dot_free: record.flags & crate::store::records::flags::DOT_FREE != 0,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if order == SortOrder::Descending {
        messages.reverse();
    }
    Ok(Maildrop {
        mailbox: inbox.id,
        uid_validity: inbox.uid_validity,
        messages,
    })
}

/// Queues a body from the store behind its status line: the runs between stuffing dots are
/// sent from the map. Pipelined RETRs gather into one write; one is sent whenever
/// `GATHER_AT` bytes are queued, and the next ones come from a fresh read transaction.
async fn retrieve(d: &mut Driver<'_>, body_id: u64, top: Option<u32>, dot_free: bool) -> Result<(), Closed> {
    let mut encoder = match top {
        Some(lines) => RetrEncoder::top(lines),
        None if dot_free => RetrEncoder::verbatim(),
        None => RetrEncoder::whole(),
    };
    // The status line goes out with the start of the body, logged here since the body is not.
    if d.link.shared.config.pop3.protocol_log {
        d.link.log('>', &d.link.out.clone());
    }
    d.gather.text(&d.link.out);
    d.link.out.clear();
    let mut next_chunk = 0;
    loop {
        let finished = {
            let snapshot = match &mut d.snapshot {
                Some(snapshot) => snapshot,
                empty => empty.insert(d.link.shared.store.mapped_snapshot().map_err(|_| Closed)?),
            };
            let mut chunks = snapshot.body(body_id, next_chunk).map_err(|_| Closed)?;
            loop {
                if encoder.is_done() {
                    break true;
                }
                if d.gather.len() >= GATHER_AT {
                    break false;
                }
                match chunks.next() {
                    None => break true,
                    Some(Ok(chunk)) => {
                        let gather = &mut d.gather;
                        encoder.encode_pieces(&chunk, |piece| match piece {
                            Piece::Run(range) => gather.mapped(chunk.slice(range)),
                            Piece::Dot => gather.literal(b"."),
                        });
                        next_chunk += 1;
                    }
                    Some(Err(_)) => return Err(Closed),
                }
            }
        };
        if finished {
            d.gather.literal(encoder.trailer());
            return Ok(());
        }
        d.flush().await?;
    }
}
