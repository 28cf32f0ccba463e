//! LMTP's part of the driver (`driver::Protocol`): looks `smtp::Session`'s recipients up and
//! delivers, answering each
//! recipient only once the message is durable. Where is a `Delivery`: this server's store
//! (ingest — line-ending normalisation and the one MIME parse — on the ingest pool, then
//! the writer thread), or on a front end the back ends that hold the mailboxes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::driver::{self, Driver, Protocol};
use super::link::{Closed, Link};
use super::Shared;
use crate::config::Config;
use crate::engine::{Engine, Timeouts};
use crate::goodbye::Goodbye;
use crate::mime;
use crate::net::Conn;
use crate::runtime::io::Stream;
use crate::runtime::Shutdown;
use crate::smtp::fault::{goodbye, Fault, Temporary};
use crate::smtp::{Action, DeliveryStatus, Envelope, Flavor, Lookup, Recipient, Session, Settings};
use crate::store::{self, StoreError, WriteOp, WriteOutcome};

/// RFC 5321 §4.5.3.1.4 allows 512; clients send longer ESMTP parameters in practice.
const MAX_COMMAND: usize = 2048;

/// Where an LMTP session's recipients are looked up and its messages go.
pub(crate) trait Delivery {
    /// Whether the recipient's mailbox is here to take mail (it may be pointed at INBOX), is
    /// held by a move (the MTA tries again), or is not; Err: a temporary failure, logged with
    /// its reason.
    async fn resolve(&self, recipient: &mut Recipient) -> Result<Lookup, String>;
    /// One status per recipient, in order, once the message is durable (or not).
    async fn deliver(&self, envelope: Envelope) -> Vec<DeliveryStatus>;
}

/// This server's store.
struct Local<'a>(&'a Arc<Shared>);

impl Delivery for Local<'_> {
    async fn resolve(&self, recipient: &mut Recipient) -> Result<Lookup, String> {
        locate(self.0, recipient).await.map_err(|e| e.to_string())
    }

    async fn deliver(&self, envelope: Envelope) -> Vec<DeliveryStatus> {
        deliver(self.0, envelope).await
    }
}

pub async fn serve(shared: Arc<Shared>, stream: Stream, peer: Option<SocketAddr>, shutdown: Shutdown) {
    let conn = Conn::new(stream, peer.map(|p| p.ip()));
    let hostname = &shared.config.server.hostname;
    let Some((conn, _slot)) = super::admit(conn, &shared.lmtp_limits, None, |hit| refusal(hostname, hit)).await else {
        return;
    };
    let log = shared
        .protolog
        .as_ref()
        .filter(|_| shared.config.lmtp.protocol_log)
        .cloned();
    let mut link = Link::new(conn, shared.session_id(), log.map(|l| (l, NAME)));
    link.list(&shared.sessions, NAME);
    link.log('*', super::connected(link.conn.peer, None).as_bytes());
    drive(link, &shared.config, &Local(&shared), shutdown).await;
}

/// LMTP's name in the protocol log.
pub(crate) const NAME: &str = "lmtp";

/// What an LMTP client over a connection limit is told before the connection closes
/// (RFC 5321 §3.8: 421 in place of the greeting); the MTA retries later.
pub(crate) fn refusal(hostname: &str, hit: crate::auth::limits::LimitHit) -> String {
    goodbye(Goodbye::Refused(&hit.to_string()), Some(hostname))
}

/// Runs one LMTP session on `link` as `config` sets it, delivering through `delivery`.
pub(crate) async fn drive(link: Link, config: &Config, delivery: &impl Delivery, shutdown: Shutdown) {
    let timeout = Duration::from_secs(config.lmtp.timeout);
    let mut session = Session::new(
        Settings {
            hostname: config.server.hostname.clone(),
            max_message_size: config.lmtp.max_message_size,
            max_recipients: config.lmtp.max_recipients,
            domains: config.server.domains.clone(),
            flavor: Flavor::Lmtp,
            spool: config.spool_dir(),
            max_line: MAX_COMMAND,
            timeouts: Timeouts {
                pre_auth: timeout,
                auth: timeout,
            },
        },
        false,
    );
    let d = Driver::new(link, shutdown, None);
    driver::drive(d, &mut Lmtp(delivery), &mut session).await;
}

/// LMTP's part of the driver.
struct Lmtp<'d, D>(&'d D);

impl<D: Delivery> Protocol<Session> for Lmtp<'_, D> {
    fn input(&mut self, session: &mut Session, input: &[u8], link: &mut Link) -> Result<(usize, Action), Closed> {
        Ok(session.input(input, &mut (), &mut link.out))
    }

    async fn act(&mut self, d: &mut Driver, session: &mut Session, action: Action) -> Result<Action, Closed> {
        let out = &mut d.link.out;
        Ok(match action {
            Action::CheckRecipient(mut recipient) => match self.0.resolve(&mut recipient).await {
                Ok(found) => session.recipient_result(recipient, found, out),
                Err(e) => {
                    tracing::error!(session = d.link.id, "recipient lookup: {e}");
                    Fault::temporary(Temporary::Failure, "temporary failure").write(out);
                    session.recipient_result(recipient, Lookup::Unknown, &mut Vec::new());
                    Action::Continue
                }
            },
            Action::Deliver(envelope) => {
                let recipients = envelope.recipients.clone();
                let statuses = self.0.deliver(envelope).await;
                for status in &statuses {
                    crate::metrics::lmtp_delivery(status.outcome());
                }
                session.delivery_result(&recipients, &statuses, out);
                Action::Continue
            }
            // Submission's actions, and the driver's own; an LMTP session asks for none here.
            Action::Submit(_)
            | Action::StartTls
            | Action::Login(_)
            | Action::LookupScram(_)
            | Action::ResolveUrl { .. }
            | Action::Continue
            | Action::Close => Action::Close,
        })
    }
}

/// Where a recipient's mailbox is: here (pointing the recipient at INBOX when the named
/// mailbox does not exist), on another back end of the cluster (by the directory, with an LMTP
/// address in `cluster.backends`), or nowhere. Where a directory holds the accounts, an account
/// whose mailbox this back end holds exists here from its first mail on.
pub(super) async fn locate(shared: &Arc<Shared>, recipient: &mut Recipient) -> Result<Lookup, StoreError> {
    if shared.sessions.is_held(&recipient.user) {
        return Ok(Lookup::Held);
    }
    let stored = shared.store.snapshot()?.user(&recipient.user)?;
    // A mailbox moved away stays for a grace period, marked with its new home, and one a move
    // is filling is marked until it is done: they take nothing. With a directory, mail for
    // them is deferred, not refused: whoever sent it here had a stale route, and its next try
    // goes where the directory says now.
    let moved = stored.as_ref().is_some_and(|u| u.home.is_some());
    if moved && shared.directory.is_some() {
        return Ok(Lookup::Held);
    }
    let known = stored.is_some() && !moved;
    if !known && shared.directory.is_some() {
        match in_directory(shared, &recipient.user).await? {
            // The directory's spelling of the name is the store's.
            Found::Here(name) => recipient.user = name,
            Found::Elsewhere => return Ok(Lookup::Elsewhere),
            Found::Held => return Ok(Lookup::Held),
            Found::Unknown => return Ok(Lookup::Unknown),
        }
    }
    let snapshot = shared.store.snapshot()?;
    let Some(user) = snapshot.user(&recipient.user)?.filter(|u| u.home.is_none()) else {
        return Ok(Lookup::Unknown);
    };
    if snapshot.mailbox(user.id, &recipient.mailbox)?.is_none() {
        recipient.mailbox = "INBOX".into();
    }
    Ok(Lookup::Here)
}

/// Where the directory puts account `name`'s mailbox.
enum Found {
    /// Here; its mailbox now exists in the store, under the directory's spelling of the name.
    Here(String),
    /// On another back end with an LMTP address.
    Elsewhere,
    /// Being moved (the move's final pass).
    Held,
    Unknown,
}

/// Looks account `name` up in the directory (on the login pool: blocking), and creates its
/// mailbox if this back end holds it.
async fn in_directory(shared: &Arc<Shared>, name: &str) -> Result<Found, StoreError> {
    let (pool, shared, name) = (&shared.login_pool, shared.clone(), name.to_owned());
    let work = move || {
        let Some(accounts) = shared.accounts() else {
            return Ok(Found::Unknown);
        };
        let account = accounts
            .directory
            .lookup(&name)
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
        let Some(account) = account else {
            return Ok(Found::Unknown);
        };
        if account.moving.as_ref().is_some_and(|m| m.locked) {
            return Ok(Found::Held);
        }
        if account.mail_host.eq_ignore_ascii_case(accounts.home) {
            let user = crate::auth::login::provision(&shared.store, &account.name, account.access.admin)?;
            return Ok(Found::Here(user.name));
        }
        let routed = shared.routes.as_ref().and_then(|r| r.route_account(&account));
        Ok(if routed.is_some() {
            Found::Elsewhere
        } else {
            Found::Unknown
        })
    };
    pool.run(work)
        .await
        .unwrap_or_else(|| Err(StoreError::Io(std::io::Error::other("login pool failed"))))
}

async fn deliver(shared: &Shared, envelope: Envelope) -> Vec<DeliveryStatus> {
    let n = envelope.recipients.len();
    let Envelope {
        recipients, message, ..
    } = envelope;
    let limits = shared.config.mime_limits();
    let ingested = shared
        .ingest_pool
        .run(move || mime::ingest_spooled(message, &limits))
        .await;
    let (message, structure) = match ingested {
        Some(Ok(parsed)) => parsed,
        Some(Err(e)) => return vec![DeliveryStatus::BadMessage(e.reason()); n],
        None => return vec![DeliveryStatus::Temporary; n],
    };
    let op = WriteOp::Deliver {
        message,
        structure: Arc::new(structure),
        recipients: recipients
            .iter()
            .map(|r| store::Recipient {
                user: r.user.clone(),
                mailbox: r.mailbox.clone(),
            })
            .collect(),
    };
    match shared.store.write(op).await {
        Ok(WriteOutcome::Delivered(results)) => results
            .into_iter()
            .map(|r| match r {
                Ok(_) => DeliveryStatus::Delivered,
                Err(StoreError::OverQuota) => DeliveryStatus::OverQuota,
                Err(_) => DeliveryStatus::Temporary,
            })
            .collect(),
        other => {
            tracing::error!("delivery failed: {other:?}");
            vec![DeliveryStatus::Temporary; n]
        }
    }
}
