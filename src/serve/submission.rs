//! Submission's part of the driver (RFC 6409, RFC 8314; `driver::Protocol`): carries out the
//! actions of the SMTP engine's submission flavour — STARTTLS, AUTH through the same
//! login path as POP3/IMAP (argon2 on the login pool, penalties, limits), recipient
//! lookups, the URLs of BURL (from the store directly: `imap::urlauth::fetch`, the check
//! URLFETCH makes), and accepting a message (`submit::accept`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::core::SnapRead;
use super::driver::{self, Driver, Protocol};
use super::link::{Closed, Link, Terms};
use super::login::{self, Failure};
use super::submit::{self, Received};
use super::{Shared, Via};
use crate::auth::limits::Slot;
use crate::auth::policy::Protocol as Service;
use crate::engine::Engine;
use crate::imap::urlauth::{self, Refusal, Requester};
use crate::runtime::io::Stream;
use crate::runtime::Shutdown;
use crate::smtp::fault::Submission as Wire;
use crate::smtp::fault::{Fault, Temporary};
use crate::smtp::{Action, Flavor, LoginFailure, Lookup, Session, Settings, SubmissionPolicy};

/// Submission's part of the driver.
struct Submit<'a> {
    shared: &'a Arc<Shared>,
    slot: Slot,
}

pub async fn serve(shared: Arc<Shared>, stream: Stream, peer: Option<SocketAddr>, via: Via, shutdown: Shutdown) {
    let config = &shared.config.submission;
    let terms = Terms {
        limits: &shared.submission_limits,
        pre_auth: config.pre_auth_timeout(),
        logged: config.protocol_log,
    };
    let Some((link, slot)) = Link::open::<Wire>(&shared, (stream, peer, via), terms).await else {
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
            oauth: shared.config.oauth.is_configured(),
        }),
        spool: shared.config.spool_dir(),
        max_line: config.max_command_size,
        timeouts: config.timeouts(),
    };
    // A front end took care of the client's TLS; the link to it is a trusted network's.
    let mut session = Session::new(settings, link.conn.is_tls() || link.proxied);
    let d = Driver::new(link, shutdown, Some(shared.tls.clone()));
    driver::drive(d, &mut Submit { shared: &shared, slot }, &mut session).await;
}

impl Protocol<Session> for Submit<'_> {
    fn input(&mut self, session: &mut Session, input: &[u8], link: &mut Link) -> Result<(usize, Action), Closed> {
        let (used, action) = session.input(input, &mut (), &mut link.out);
        if matches!(action, Action::Close) {
            // QUIT's answer is about to go out: its place at the per-user limit is free first.
            self.slot.logout();
        }
        Ok((used, action))
    }

    async fn act(&mut self, d: &mut Driver, session: &mut Session, action: Action) -> Result<Action, Closed> {
        let out = &mut d.link.out;
        Ok(match action {
            Action::Login(credentials) => {
                // Replies pipelined before this AUTH go out before any penalty delay.
                d.link.flush().await?;
                let result = login::login(self.shared, &d.link, &credentials, Service::Submission, &mut self.slot)
                    .await
                    .map(|user| user.name)
                    .map_err(|f| match f {
                        Failure::BadCredentials => LoginFailure::BadCredentials,
                        Failure::Refused(why) => LoginFailure::Refused(why),
                        Failure::Limit(why) => LoginFailure::Limit(why),
                        Failure::Temporary => LoginFailure::Temporary,
                    });
                let next = session.login_result(result, &mut d.link.out);
                login::after_login(self.shared, d, session).await?;
                next
            }
            Action::LookupScram(user) => {
                let keys = login::scram_keys(self.shared, &user).await;
                session.scram_credentials(keys, out)
            }
            Action::CheckRecipient(mut recipient) => match super::lmtp::locate(self.shared, &mut recipient).await {
                Ok(found) => session.recipient_result(recipient, found, out),
                Err(e) => {
                    tracing::error!(session = d.link.id, "recipient lookup: {e}");
                    Fault::temporary(Temporary::Failure, "temporary failure").write(out);
                    session.recipient_result(recipient, Lookup::Unknown, &mut Vec::new());
                    Action::Continue
                }
            },
            Action::ResolveUrl { url, user } => {
                let result = resolve_url(self.shared, d.link.id, &url, &user);
                session.url_result(result, out)
            }
            Action::Submit(envelope) => {
                let received = Received {
                    peer: d.link.conn.peer,
                    tls: d.link.conn.tls_description(),
                    session: d.link.id,
                };
                let outcome = submit::accept(self.shared, envelope, received).await;
                crate::metrics::submission(outcome.name());
                session.submit_result(outcome, &mut d.link.out)
            }
            // LMTP's action, and the driver's own; a submission session asks for none here.
            Action::Deliver(_) | Action::Continue | Action::StartTls | Action::Close => Action::Close,
        })
    }
}

/// BURL (RFC 4468): the URL read from this server's store, as `submit+user`, under the same
/// rules URLFETCH applies. The snapshot is gone before anything is awaited.
fn resolve_url(shared: &Shared, session: u64, url: &str, user: &str) -> Result<Vec<u8>, Refusal> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| t.as_secs() as i64);
    let result = shared
        .store
        .snapshot()
        .map_err(Refusal::Store)
        .and_then(|snapshot| urlauth::fetch(&SnapRead(&snapshot), url, Requester::Submission(user), now));
    if let Err(Refusal::Store(e)) = &result {
        tracing::error!(session, "BURL: {e}");
    }
    result
}
