//! The submission driver (RFC 6409, RFC 8314): moves bytes between a connection and the SMTP
//! engine's submission flavour and carries out its actions — STARTTLS, AUTH through the same
//! login path as POP3/IMAP (argon2 on the login pool, penalties, limits), recipient
//! lookups, the URLs of BURL (from the store directly: `imap::urlauth::fetch`, the check
//! URLFETCH makes), and accepting a message (`submit::accept`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::core::SnapRead;
use super::link::{Closed, Link, Terms};
use super::login::{self, Failure};
use super::submit::{self, Received};
use super::{Shared, Via};
use crate::auth::limits::Slot;
use crate::auth::policy::Protocol;
use crate::imap::urlauth::{self, Refusal, Requester};
use crate::net::{Frame, Framer};
use crate::runtime::io::Stream;
use crate::runtime::Shutdown;
use crate::smtp::fault::Submission;
use crate::smtp::fault::{Fault, Temporary};
use crate::smtp::{Action, Flavor, LoginFailure, Lookup, Session, Settings, SubmissionPolicy};

type Driver<'a> = Link<'a, Submission>;

pub async fn serve(shared: Arc<Shared>, stream: Stream, peer: Option<SocketAddr>, via: Via, shutdown: Shutdown) {
    let config = &shared.config.submission;
    let terms = Terms {
        limits: &shared.submission_limits,
        pre_auth: config.pre_auth_timeout(),
        auth: config.auth_timeout(),
        logged: config.protocol_log,
    };
    let Some((mut d, mut slot)) = Driver::open(&shared, (stream, peer, via), terms).await else {
        return;
    };
    let settings = Settings {
        hostname: shared.config.server.hostname.clone(),
        max_message_size: config.max_message_size,
        max_recipients: config.max_recipients,
        domains: shared.config.server.domains.clone(),
        flavor: Flavor::Submission(SubmissionPolicy {
            login_type: config.login_type,
            starttls: via == Via::Plain,
            relay: config.relay.is_some(),
            max_login_failures: shared.config.limits.max_login_failures,
        }),
        spool: shared.config.spool_dir(),
    };
    // A front end took care of the client's TLS; the link to it is a trusted network's.
    let mut session = Session::new(settings, d.conn.is_tls() || d.proxied);
    session.greeting(&mut d.out);
    let mut framer = Framer::new(config.max_command_size);
    let _ = run(&mut d, &mut session, &mut framer, &mut slot, &shutdown).await;
    d.close().await;
}

async fn run(
    d: &mut Driver<'_>,
    session: &mut Session,
    framer: &mut Framer,
    slot: &mut Slot,
    shutdown: &Shutdown,
) -> Result<(), Closed> {
    // An action that answered another action (a login result can mean Close).
    let mut follow_up = None;
    let mut budget = super::Budget::default();
    loop {
        let action = match follow_up.take() {
            Some(action) => action,
            None if session.in_data() => {
                let (used, action) = session.data(framer.pending(), &mut d.out);
                framer.consume(used);
                if action == Action::Continue && session.in_data() {
                    read_more(d, session, framer, shutdown).await?;
                    continue;
                }
                action
            }
            None => match framer.next_line() {
                Frame::Line(line) => {
                    let shown = session.loggable(line).into_owned();
                    d.log('<', &shown);
                    session.on_line(line, &mut d.out)
                }
                Frame::TooLong => session.too_long(&mut d.out),
                Frame::NeedMore => {
                    read_more(d, session, framer, shutdown).await?;
                    continue;
                }
            },
        };
        follow_up = match action {
            Action::Continue => None,
            Action::StartTls => {
                d.flush().await?;
                // RFC 3207 §4.2: nothing the client pipelined before the handshake survives.
                framer.discard();
                let handshake = d.conn.start_tls(d.shared.tls.clone());
                match tokio::time::timeout(d.shared.config.submission.pre_auth_timeout(), handshake).await {
                    Ok(Ok(())) => session.tls_started(),
                    _ => return Err(Closed),
                }
                None
            }
            Action::Login(credentials) => {
                // Replies pipelined before this AUTH go out before any penalty delay.
                d.flush().await?;
                let result = login::login(
                    d.shared,
                    d.conn.peer,
                    &credentials,
                    Protocol::Submission,
                    slot,
                    (d.id, d.proxied),
                )
                .await
                .map(|user| user.name)
                .map_err(|f| match f {
                    Failure::BadCredentials => LoginFailure::BadCredentials,
                    Failure::Refused(why) => LoginFailure::Refused(why),
                    Failure::Limit(why) => LoginFailure::Limit(why),
                    Failure::Temporary => LoginFailure::Temporary,
                });
                Some(session.login_result(result, &mut d.out))
            }
            Action::LookupScram(user) => {
                let keys = login::scram_keys(d.shared, &user).await;
                Some(session.scram_credentials(keys, &mut d.out))
            }
            Action::CheckRecipient(mut recipient) => match super::lmtp::locate(d.shared, &mut recipient).await {
                Ok(found) => Some(session.recipient_result(recipient, found, &mut d.out)),
                Err(e) => {
                    tracing::error!(session = d.id, "recipient lookup: {e}");
                    Fault::temporary(Temporary::Failure, "temporary failure").write(&mut d.out);
                    session.recipient_result(recipient, Lookup::Unknown, &mut Vec::new());
                    None
                }
            },
            Action::ResolveUrl { url, user } => {
                let result = resolve_url(d, &url, &user);
                Some(session.url_result(result, &mut d.out))
            }
            Action::Submit(envelope) => {
                let received = Received {
                    peer: d.conn.peer,
                    tls: d.conn.tls_description(),
                    session: d.id,
                };
                let outcome = submit::accept(d.shared, envelope, received).await;
                Some(session.submit_result(outcome, &mut d.out))
            }
            // LMTP's action; a submission session never asks for it.
            Action::Deliver(_) | Action::Close => return Ok(()),
        };
        if budget.spend(d.out.len()) {
            d.flush().await?;
            tokio::task::yield_now().await;
        }
    }
}

/// BURL (RFC 4468): the URL read from this server's store, as `submit+user`, under the same
/// rules URLFETCH applies. The snapshot is gone before anything is awaited.
fn resolve_url(d: &Driver<'_>, url: &str, user: &str) -> Result<Vec<u8>, Refusal> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_secs() as i64);
    let result = d
        .shared
        .store
        .snapshot()
        .map_err(Refusal::Store)
        .and_then(|snapshot| urlauth::fetch(&SnapRead(&snapshot), url, Requester::Submission(user), now));
    if let Err(Refusal::Store(e)) = &result {
        tracing::error!(session = d.id, "BURL: {e}");
    }
    result
}

/// Flushes, then waits for more client bytes, the session's timeout, or shutdown. A client
/// gone mid-DATA had nothing of its message stored or queued; one that said nothing for too
/// long hears 421 (RFC 5321 §4.5.3.2).
async fn read_more(
    d: &mut Driver<'_>,
    session: &Session,
    framer: &mut Framer,
    shutdown: &Shutdown,
) -> Result<(), Closed> {
    d.flush().await?;
    framer.shrink_idle();
    // Whole lines were all taken before reading: what is buffered is a line begun.
    let mid_line = !framer.pending().is_empty() && !session.in_data();
    let state = (session.is_authenticated(), mid_line);
    d.read(framer.read_buffer(), state, shutdown).await.map(|_| ())
}
