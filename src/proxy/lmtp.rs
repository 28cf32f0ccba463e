//! LMTP on a front end, so an MTA needs one target for every mailbox: each recipient is
//! looked up in the directory, and the message goes to the LMTP listener of each back end
//! that holds some of its recipients (`cluster.backends[].lmtp`), whose per-recipient replies
//! (RFC 2033 §4.2) are passed on as they are. The session itself is `serve`'s LMTP driver.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backend::{write, BackendError, Lines};
use super::Front;
use crate::directory::Account;
use crate::net::Conn;
use crate::runtime::io::Stream;
use crate::runtime::Shutdown;
use crate::serve::link::Link;
use crate::serve::lmtp::{drive, Delivery};
use crate::smtp::client::{self, Capabilities, Reply};
use crate::smtp::{DeliveryStatus, Envelope, Lookup, Recipient};

/// How long a back end gets to greet and to answer each command but the end of DATA.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn serve(front: Arc<Front>, stream: Stream, peer: SocketAddr, shutdown: Shutdown) {
    let conn = Conn::new(stream, Some(peer.ip()));
    let hostname = &front.config.server.hostname;
    let refusal = |hit| crate::serve::lmtp::refusal(hostname, hit);
    let Some((conn, _slot)) = crate::serve::admit(conn, &front.lmtp_limits, None, refusal).await else {
        return;
    };
    let log = front
        .protolog
        .as_ref()
        .filter(|_| front.config.lmtp.protocol_log)
        .cloned();
    let mut link = Link::new(conn, front.session_id(), log.map(|l| (l, crate::serve::lmtp::NAME)));
    link.list(&front.sessions, crate::serve::lmtp::NAME);
    link.log('*', crate::serve::connected(link.conn.peer, None).as_bytes());
    drive(link, &front.config, &Routed(&front), shutdown).await;
}

/// Delivery through the back ends, by the directory.
struct Routed<'a>(&'a Arc<Front>);

impl Routed<'_> {
    async fn account(&self, name: &str) -> Result<Option<Account>, String> {
        let (front, name) = (self.0.clone(), name.to_owned());
        match self.0.login_pool.run(move || front.directory.lookup(&name)).await {
            Some(found) => found.map_err(|e| e.to_string()),
            None => Err("the lookup pool failed".into()),
        }
    }

    /// The LMTP address of the back end holding `account`'s mailbox.
    fn backend(&self, account: &Account) -> Option<SocketAddr> {
        let found = self.0.config.cluster.backend(&account.mail_host).and_then(|b| b.lmtp);
        if found.is_none() {
            tracing::error!(user = %account.name, mail_host = %account.mail_host, "no LMTP back end by that name in cluster.backends");
        }
        found
    }
}

impl Delivery for Routed<'_> {
    async fn resolve(&self, recipient: &mut Recipient) -> Result<Lookup, String> {
        match self.account(&recipient.user).await? {
            None => Ok(Lookup::Unknown),
            // In its move's final pass: the MTA tries again once the mailbox is in its place.
            Some(account) if account.moving.as_ref().is_some_and(|m| m.locked) => Ok(Lookup::Held),
            // An account whose back end is unknown is a fault here, not a bounce.
            Some(account) => self
                .backend(&account)
                .map(|_| Lookup::Here)
                .ok_or_else(|| "no back end".into()),
        }
    }

    async fn deliver(&self, envelope: Envelope) -> Vec<DeliveryStatus> {
        let mut statuses = vec![DeliveryStatus::Temporary; envelope.recipients.len()];
        // A recipient whose back end cannot be found now stays Temporary.
        let mut routes = Vec::with_capacity(envelope.recipients.len());
        for (i, r) in envelope.recipients.iter().enumerate() {
            match self.account(&r.user).await {
                Ok(Some(account)) => routes.extend(self.backend(&account).map(|addr| (i, addr))),
                Ok(None) => {}
                Err(e) => tracing::error!("lmtp: looking up {}: {e}", r.user),
            }
        }
        let groups = client::by_server(routes);
        let hostname = &self.0.config.server.hostname;
        let data_timeout = Duration::from_secs(self.0.config.lmtp.timeout);
        let breakers = &self.0.breakers;
        for (addr, members) in groups {
            // A back end known to be down is not waited for: the MTA tries again later.
            if !breakers.allow(addr, Instant::now()) {
                continue;
            }
            match forward(addr, hostname, &envelope, &members, data_timeout).await {
                Ok(replies) => {
                    breakers.succeeded(addr);
                    for (i, reply) in members.into_iter().zip(replies) {
                        statuses[i] = relayed(&reply);
                    }
                }
                Err(e) => {
                    if e.is_outage() {
                        breakers.failed(addr, Instant::now());
                    }
                    tracing::warn!("lmtp: {e}");
                }
            }
        }
        statuses
    }
}

fn relayed(reply: &Reply) -> DeliveryStatus {
    DeliveryStatus::Relayed {
        code: reply.code,
        text: reply.lines.last().cloned().unwrap_or_default(),
    }
}

/// An LMTP client's side of one back-end connection.
struct Dialogue {
    stream: Conn,
    lines: Lines,
    addr: SocketAddr,
}

impl Dialogue {
    /// Sends `command` (if any) and reads the reply, within `STEP_TIMEOUT`.
    async fn step(&mut self, command: Option<&str>) -> Result<Reply, BackendError> {
        let work = async {
            if let Some(command) = command {
                write(&self.stream, format!("{command}\r\n").into_bytes(), self.addr).await?;
            }
            self.lines.reply(&self.stream, self.addr).await
        };
        tokio::time::timeout(STEP_TIMEOUT, work)
            .await
            .unwrap_or(Err(BackendError::Timeout(self.addr)))
    }

    async fn expect(&mut self, command: Option<&str>, code: u16) -> Result<Reply, BackendError> {
        let reply = self.step(command).await?;
        if reply.code != code {
            return Err(BackendError::Refused(self.addr, reply.text()));
        }
        Ok(reply)
    }
}

/// One LMTP transaction with the back end at `addr` for the recipients `members` of
/// `envelope`: one reply per member, in order.
async fn forward(
    addr: SocketAddr,
    hostname: &str,
    envelope: &Envelope,
    members: &[usize],
    data_timeout: Duration,
) -> Result<Vec<Reply>, BackendError> {
    let stream = tokio::time::timeout(STEP_TIMEOUT, Stream::connect(addr))
        .await
        .map_err(|_| BackendError::Timeout(addr))?
        .map_err(|e| BackendError::Unreachable(addr, e))?;
    let mut d = Dialogue {
        stream: Conn::new(stream, Some(addr.ip())),
        lines: Lines::default(),
        addr,
    };
    d.expect(None, 220).await?;
    let caps = Capabilities::from_ehlo(&d.expect(Some(&format!("LHLO {hostname}")), 250).await?);
    let every = |reply: Reply| vec![reply; members.len()];
    let size = envelope.message.len() as u64;
    let mail = match client::mail_line(&envelope.from, size, &envelope.params, &caps) {
        Ok(line) => line,
        Err(unsupported) => return Ok(every(unsupported_reply(unsupported))),
    };
    let reply = d.step(Some(&mail)).await?;
    if reply.code != 250 {
        return Ok(every(reply));
    }
    // A recipient refused here keeps that reply; the others get theirs after DATA.
    let mut replies: Vec<Option<Reply>> = Vec::with_capacity(members.len());
    for &i in members {
        let r = &envelope.recipients[i];
        let reply = d.step(Some(&client::rcpt_line(&r.address, &r.params, &caps))).await?;
        replies.push((!reply.is_positive()).then_some(reply));
    }
    let accepted = replies.iter().filter(|r| r.is_none()).count();
    if accepted > 0 {
        let reply = d.step(Some("DATA")).await?;
        if reply.code != 354 {
            return Ok(replies
                .into_iter()
                .map(|r| r.unwrap_or_else(|| reply.clone()))
                .collect());
        }
        let data = async {
            write(&d.stream, client::stuff(&envelope.message), addr).await?;
            // RFC 2033 §4.2: one reply per accepted recipient, in RCPT order.
            let mut after = Vec::with_capacity(accepted);
            for _ in 0..accepted {
                after.push(d.lines.reply(&d.stream, addr).await?);
            }
            Ok::<_, BackendError>(after)
        };
        let mut after = tokio::time::timeout(data_timeout, data)
            .await
            .unwrap_or(Err(BackendError::Timeout(addr)))?
            .into_iter();
        for slot in replies.iter_mut().filter(|r| r.is_none()) {
            *slot = after.next();
        }
    }
    let _ = write(&d.stream, b"QUIT\r\n".to_vec(), addr).await;
    d.stream.close().await;
    Ok(replies.into_iter().flatten().collect())
}

/// The reply for a message the back end cannot take as it is.
fn unsupported_reply(unsupported: client::Unsupported) -> Reply {
    let text = unsupported.to_string();
    let (code, text) = text.split_at(3);
    Reply {
        code: code.parse().unwrap_or(554),
        lines: vec![text.trim_start().to_owned()],
    }
}
