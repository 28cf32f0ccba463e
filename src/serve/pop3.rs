//! POP3's part of the driver (`driver::Protocol`): carries out `pop3::Session`'s actions — login (argon2 on the login pool, penalties, limits, the maildrop lock), message
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

use super::driver::{self, Driver, Protocol, Waited};
use super::link::{timed, Closed, Link, Terms};
use super::login::{self, Failure};
use super::{Shared, Via};
use crate::auth::limits::Slot;
use crate::auth::login::Credentials;
use crate::auth::policy::Protocol as Service;
use crate::config::SortOrder;
use crate::engine::Engine;
use crate::net::Gather;
use crate::pop3::fault::Pop3 as Wire;
use crate::pop3::retr::Piece;
use crate::pop3::{Action, LoginFailure, Maildrop, Message, RetrEncoder, Session, Settings};
use crate::runtime::io::Stream;
use crate::runtime::Shutdown;
use crate::store::{MappedSnapshot, Snapshot, Store, StoreError, WriteOp, WriteOutcome};

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

/// POP3's part of the driver.
struct Pop3<'a> {
    shared: &'a Arc<Shared>,
    slot: Slot,
    /// The maildrop lock, from login on.
    lock: Option<MaildropLock<'a>>,
    /// Message output not yet sent; it goes out before the reply text in `link.out`.
    gather: Gather,
    /// The read transaction the bytes in `gather` come from.
    snapshot: Option<MappedSnapshot>,
    /// A write failed or timed out: nothing more is sent.
    broken: bool,
}

pub async fn serve(shared: Arc<Shared>, stream: Stream, peer: Option<SocketAddr>, via: Via, shutdown: Shutdown) {
    let config = &shared.config.pop3;
    let terms = Terms {
        limits: &shared.pop3_limits,
        pre_auth: config.pre_auth_timeout(),
        logged: config.protocol_log,
    };
    let Some((link, slot)) = Link::open::<Wire>(&shared, (stream, peer, via), terms).await else {
        return;
    };
    let settings = Settings {
        login_type: config.login_type,
        stls: via == Via::Plain,
        banner: config.banner.clone(),
        max_login_failures: shared.config.limits.max_login_failures,
        max_line: config.max_command_size,
        timeouts: config.timeouts(),
        oauth: shared.config.oauth.is_configured(),
    };
    // A front end took care of the client's TLS; the link to it is a trusted network's.
    let mut session = Session::new(settings, link.conn.is_tls() || link.proxied);
    let mut pop3 = Pop3 {
        shared: &shared,
        slot,
        lock: None,
        gather: Gather::default(),
        snapshot: None,
        broken: false,
    };
    let d = Driver::new(link, shutdown, Some(shared.tls.clone()));
    driver::drive(d, &mut pop3, &mut session).await;
}

impl<'s> Protocol<Session> for Pop3<'s> {
    fn input(&mut self, session: &mut Session, input: &[u8], link: &mut Link) -> Result<(usize, Action), Closed> {
        let (used, action) = session.input(input, &mut (), &mut link.out);
        Ok((used, self.closing(action)))
    }

    async fn act(&mut self, d: &mut Driver, session: &mut Session, action: Action) -> Result<Action, Closed> {
        Ok(match action {
            Action::Login(credentials) => {
                let result = self.login(d, &credentials).await;
                let next = session.login_result(result, &mut d.link.out);
                login::after_login(self.shared, d, session).await?;
                next
            }
            Action::LookupScram(user) => {
                let keys = login::scram_keys(self.shared, &user).await;
                session.scram_credentials(keys, &mut d.link.out)
            }
            Action::Retrieve { body_id, top, dot_free } => {
                self.retrieve(d, body_id, top, dot_free).await?;
                if d.link.out.len() >= FLUSH_AT || self.gather.len() >= GATHER_AT {
                    self.flush(d).await?;
                }
                Action::Continue
            }
            Action::Commit { mailbox, uids } => {
                // What was pipelined before QUIT goes out first; no read transaction is held
                // across the commit.
                self.flush(d).await?;
                let result = self.shared.store.write(WriteOp::Expunge { mailbox, uids }).await;
                let result = match result {
                    Ok(WriteOutcome::Expunged(removed)) => Ok(removed.len()),
                    other => {
                        tracing::error!(session = d.link.id, "POP3 update failed: {other:?}");
                        Err(())
                    }
                };
                self.closing(session.commit_result(result, &mut d.link.out))
            }
            // The driver's own.
            Action::Continue | Action::StartTls | Action::Close => Action::Close,
        })
    }

    /// Sends everything queued: gathered message output, then reply text, in one write.
    async fn flush(&mut self, d: &mut Driver) -> Result<(), Closed> {
        if self.broken {
            return Err(Closed);
        }
        let link = &mut d.link;
        if !link.out.is_empty() {
            link.log('>', &link.out);
        }
        // The gathered pieces hold the transaction from here on, until they are sent.
        self.snapshot = None;
        let sent = if self.gather.is_empty() {
            if link.out.is_empty() {
                return Ok(());
            }
            timed(link.conn.write(&mut link.out)).await
        } else {
            self.gather.text(&link.out);
            link.out.clear();
            timed(link.conn.write_gather(&mut self.gather)).await
        };
        if sent.is_err() {
            self.broken = true;
            self.gather.clear();
            return Err(Closed);
        }
        Ok(())
    }

    async fn wait(&mut self, d: &mut Driver, session: &mut Session) -> Result<Waited, Closed> {
        // A RETR leaves big buffers behind; a waiting session gives them back.
        self.gather.clear();
        d.read(session).await.map(|()| Waited::Input)
    }
}

impl<'s> Pop3<'s> {
    /// Lets go of the maildrop when the session ends (QUIT, after its UPDATE), before the
    /// goodbye is sent: a client that reads it and logs in again at once finds the maildrop
    /// free, not [IN-USE] until this connection's teardown.
    fn closing(&mut self, action: Action) -> Action {
        if matches!(action, Action::Close) {
            // QUIT's answer is about to go out: a client that logs in again the moment it
            // reads it finds the maildrop and its place at the per-user limit free.
            self.lock = None;
            self.slot.logout();
        }
        action
    }

    async fn login(&mut self, d: &mut Driver, credentials: &Credentials) -> Result<Maildrop, LoginFailure> {
        let shared = self.shared;
        // Replies pipelined before this login go out before any penalty delay.
        self.flush(d).await.map_err(|_| LoginFailure::Temporary)?;
        let user = login::login(shared, &d.link, credentials, Service::Pop3, &mut self.slot)
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
        self.lock = Some(held);
        Ok(maildrop)
    }

    /// Queues a body from the store behind its status line: the runs between stuffing dots
    /// are sent from the map. Pipelined RETRs gather into one write; one is sent whenever
    /// `GATHER_AT` bytes are queued, and the next ones come from a fresh read transaction.
    async fn retrieve(&mut self, d: &mut Driver, body_id: u64, top: Option<u32>, dot_free: bool) -> Result<(), Closed> {
        let mut encoder = match top {
            Some(lines) => RetrEncoder::top(lines),
            None if dot_free => RetrEncoder::verbatim(),
            None => match snapshot(&mut self.snapshot, &self.shared.store)?
                .dot_lines(body_id)
                .map_err(|_| Closed)?
            {
                Some(dots) => RetrEncoder::indexed(dots),
                // Stored before bodies were indexed, or with too many such lines.
                None => RetrEncoder::whole(),
            },
        };
        // The status line goes out with the start of the body, logged here since the body
        // is not.
        d.link.log('>', &d.link.out);
        self.gather.text(&d.link.out);
        d.link.out.clear();
        let mut next_chunk = 0;
        loop {
            let finished = {
                let mut chunks = snapshot(&mut self.snapshot, &self.shared.store)?
                    .body(body_id, next_chunk)
                    .map_err(|_| Closed)?;
                loop {
                    if encoder.is_done() {
                        break true;
                    }
                    if self.gather.len() >= GATHER_AT {
                        break false;
                    }
                    match chunks.next() {
                        None => break true,
                        Some(Ok(chunk)) => {
                            let gather = &mut self.gather;
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
                self.gather.literal(encoder.trailer());
                return Ok(());
            }
            self.flush(d).await?;
        }
    }
}

/// The read transaction message bytes are gathered under, begun if there is none.
fn snapshot<'a>(snapshot: &'a mut Option<MappedSnapshot>, store: &Store) -> Result<&'a MappedSnapshot, Closed> {
    match snapshot {
        Some(snapshot) => Ok(snapshot),
        empty => Ok(empty.insert(store.mapped_snapshot().map_err(|_| Closed)?)),
    }
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
        imported_uidls: snapshot.pop3_uidls(inbox.id)?,
    })
}
