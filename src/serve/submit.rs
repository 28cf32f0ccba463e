//! Accepting a submitted message: line endings normalised, the header edited (Received:,
//! Date:, Message-ID:, Bcc:, the From: check) and the one MIME parse — all on the blocking
//! pool — then local deliveries and the queue entry in one durable write, before the reply.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::Shared;
use crate::mime::{self, Structure};
use crate::queue::{self, ReportTo};
use crate::smtp::addr::Served;
use crate::smtp::command::Ret;
use crate::smtp::dsn::{DsnAction, ReportedRecipient};
use crate::smtp::rewrite::{self, RewriteError, Stamp};
use crate::smtp::{Envelope, Recipient, SubmitOutcome};
use crate::spool::{Spool, Spooled};
use crate::store::{self, Bounce, NewQueueEntry, QueuedRecipient, StoreError, WriteOp, WriteOutcome};

/// What the Received: field says about the connection.
pub struct Received {
    pub peer: IpAddr,
    pub tls: Option<String>,
    pub session: u64,
}

enum Prepared {
    Ready(Spooled, Arc<Structure>, Option<Bounce>),
    Refused(SubmitOutcome),
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub async fn accept(shared: &Shared, envelope: Envelope, received: Received) -> SubmitOutcome {
    let Some(user) = envelope.user.clone() else {
        return SubmitOutcome::Temporary;
    };
    let now = unix_now();
    let hostname = shared.config.server.hostname.clone();
    let served = Served::for_submission(&shared.config.server.domains, &hostname);
    let Envelope {
        from,
        params,
        recipients,
        remote,
        message,
        helo,
        ..
    } = envelope;
    let (sender, who) = (from.clone(), user.clone());
    let delivered = success_notices(&recipients);
    let envid = params.envid.clone();
    let limits = shared.config.mime_limits();
    let spool = shared.config.spool_dir();
    let prepared = shared
        .ingest_pool
        .run(move || {
            let id = format!("{:X}", received.session);
            let unique = format!("{now:x}.{:x}.{:08x}", received.session, rand::random::<u32>());
            let stamp = Stamp {
                hostname: &hostname,
                helo: &helo,
                peer: received.peer,
                user: &who,
                tls: received.tls.as_deref(),
                id: &id,
                now,
                unique: &unique,
                sender: &sender,
            };
            match prepare(&message, &stamp, &served, &limits, &spool) {
                Prepared::Ready(message, structure, _) => {
                    let to = ReportTo {
                        hostname: &hostname,
                        user: &who,
                        sender: &sender,
                        envid: envid.as_deref(),
                        arrival: now,
                        // RFC 3461 §4.3: RET is about failures; a success report has the header only.
                        ret: Ret::Headers,
                    };
                    let report = queue::report(&to, &delivered, &message, now);
                    Prepared::Ready(message, structure, report)
                }
                refused => refused,
            }
        })
        .await;
    let (message, structure, report) = match prepared {
        Some(Prepared::Ready(m, s, r)) => (m, s, r),
        Some(Prepared::Refused(outcome)) => return outcome,
        None => return SubmitOutcome::Temporary,
    };
    let queue = (!remote.is_empty()).then(|| NewQueueEntry {
        from,
        user,
        params,
        recipients: remote
            .into_iter()
            .map(|r| QueuedRecipient {
                address: r.address,
                params: r.params,
            })
            .collect(),
        now,
    });
    let queued = queue.is_some();
    let op = WriteOp::Submit {
        message,
        structure,
        local: recipients
            .iter()
            .map(|r| store::Recipient {
                user: r.user.clone(),
                mailbox: r.mailbox.clone(),
            })
            .collect(),
        queue,
        report,
    };
    match shared.store.write(op).await {
        Ok(WriteOutcome::Submitted(Ok(queue_id))) => {
            if queued {
                shared.queue.wake();
            }
            SubmitOutcome::Accepted { queue_id }
        }
        Ok(WriteOutcome::Submitted(Err(refused))) => match refused.error {
            StoreError::OverQuota => {
                let address = recipients.get(refused.index).map(|r| r.address.clone());
                SubmitOutcome::OverQuota(address.unwrap_or_default())
            }
            e => {
                tracing::error!("submission refused by the store: {e}");
                SubmitOutcome::Temporary
            }
        },
        other => {
            tracing::error!("submission failed: {other:?}");
            SubmitOutcome::Temporary
        }
    }
}

/// RFC 3461 §6.2: local recipients that asked to hear of their delivery.
fn success_notices(recipients: &[Recipient]) -> Vec<ReportedRecipient> {
    recipients
        .iter()
        .filter(|r| r.params.notify.is_some_and(|n| n.success))
        .map(|r| ReportedRecipient {
            address: r.address.clone(),
            action: DsnAction::Delivered,
            orcpt: r.params.orcpt.clone(),
            status: "2.0.0".into(),
            diagnostic: None,
            remote_mta: None,
        })
        .collect()
}

/// Blocking: the edits and the parse.
fn prepare(
    raw: &[u8],
    stamp: &Stamp<'_>,
    served: &Served,
    limits: &mime::Limits,
    spool: &Option<Arc<Path>>,
) -> Prepared {
    if raw.is_empty() {
        return Prepared::Refused(SubmitOutcome::BadMessage("message is empty"));
    }
    let canonical = mime::normalize_line_endings(raw);
    let message = match rewrite::submission_header(&canonical, stamp, served) {
        Ok((header, body)) => {
            // The edited header and the body, joined where a large message is kept.
            let mut joined = Spool::new(spool.clone(), Some((header.len() + canonical.len() - body) as u64));
            joined.push(&header);
            joined.push(&canonical[body..]);
            match joined.finish() {
                Ok(message) => message,
                Err(e) => {
                    tracing::warn!("{e}");
                    return Prepared::Refused(SubmitOutcome::Temporary);
                }
            }
        }
        Err(RewriteError::NotYours(address)) => return Prepared::Refused(SubmitOutcome::NotYours(address)),
        Err(RewriteError::NoSeparator) => {
            return Prepared::Refused(SubmitOutcome::BadMessage("message has no header/body separator"))
        }
    };
    match mime::analyze_with(&message, limits) {
        Ok(structure) => Prepared::Ready(message, Arc::new(structure), None),
        Err(e) => Prepared::Refused(SubmitOutcome::BadMessage(e.reason())),
    }
}
