//! The mail transaction of both flavours: MAIL, RCPT, DATA and BDAT, and the replies once the
//! caller has stored (LMTP) or accepted (submission) the message.

use super::{
    line, Action, Auth, DeliveryStatus, Envelope, Lookup, Recipient, RemoteRecipient, Session, State, SubmitOutcome,
    Txn,
};
use crate::imap::urlauth::Refusal as UrlRefusal;
use crate::smtp::chunk::{ChunkEnd, ChunkReader};
use crate::smtp::command::{MailParams, RcptParams};
use crate::smtp::data::{DataEnd, DataReader};
use crate::smtp::fault::{Client, Fault, Refusal, Temporary};
use crate::spool::{Spool, Spooled};

fn too_big() -> Fault {
    Fault::refused(Refusal::TooBig, "message size exceeds fixed maximum message size")
}

/// RFC 3463 X.3.1: the message could not be kept for now (its spool file); the client retries.
fn no_room() -> Fault {
    Fault::temporary(Temporary::NoRoom, "insufficient system storage, try again later")
}

impl Session {
    fn max_size(&self) -> usize {
        usize::try_from(self.settings.max_message_size).unwrap_or(usize::MAX)
    }

    /// Where the message of a new transaction is kept while it arrives.
    fn spool(&self, expected: Option<u64>) -> Spool {
        Spool::new(self.settings.spool.clone(), expected)
    }

    /// Why MAIL may not start a transaction now, as the reply to send.
    fn mail_refusal(&self, from: &str, params: &MailParams) -> Option<Fault> {
        if self.helo.is_none() {
            let verb = if self.is_lmtp() { "LHLO" } else { "EHLO" };
            return Some(Fault::client(Client::Sequence, format!("{verb} first")));
        }
        if !matches!(self.state, State::Ready) {
            return Some(Fault::client(Client::Sequence, "nested MAIL command"));
        }
        if self.is_lmtp() && !params.lmtp_compatible() {
            return Some(Fault::client(Client::UnknownParameter, "unsupported parameter"));
        }
        if let Some(policy) = self.submission() {
            let Auth::User(user) = &self.auth else {
                // RFC 4954 §6, RFC 3207 §4: 530 5.7.0 until the client has authenticated.
                return Some(if policy.login_type.allows_sasl(self.tls) {
                    Fault::refused(Refusal::AuthRequired, "authentication required")
                } else {
                    Fault::refused(Refusal::AuthRequired, "must issue a STARTTLS command first")
                });
            };
            // RFC 6409 §4.1: the envelope sender must be one the user is authorized to use.
            if !self.served.owned_by(from, user) {
                let from = super::printable(from);
                return Some(Fault::refused(
                    Refusal::SenderNotOwned,
                    format!("sender <{from}> is not an address of user {user}"),
                ));
            }
        }
        // RFC 1870 §6.3: refuse a declared size over the limit up front.
        if params.size.is_some_and(|s| s > self.settings.max_message_size) {
            return Some(too_big());
        }
        None
    }

    pub(super) fn mail(&mut self, from: String, params: MailParams, out: &mut Vec<u8>) {
        if let Some(refusal) = self.mail_refusal(&from, &params) {
            return refusal.write(out);
        }
        self.state = State::Txn(Txn {
            from,
            params,
            recipients: Vec::new(),
            remote: Vec::new(),
        });
        line(out, "250 2.1.0 sender OK");
    }

    pub(super) fn rcpt(&mut self, to: String, params: RcptParams, out: &mut Vec<u8>) -> Action {
        let mut txn = match std::mem::replace(&mut self.state, State::Ready) {
            State::Txn(txn) => txn,
            other => {
                self.state = other;
                Fault::client(Client::Sequence, "need MAIL before RCPT").write(out);
                return Action::Continue;
            }
        };
        let refusal = if self.is_lmtp() && !params.is_empty() {
            Some(Fault::client(Client::UnknownParameter, "unsupported parameter"))
        } else if txn.recipient_count() >= self.settings.max_recipients {
            // RFC 5321 §4.5.3.1.10: 452 asks the client to send the rest in another transaction.
            Some(Fault::temporary(Temporary::TooManyRecipients, "too many recipients"))
        } else {
            None
        };
        if let Some(refusal) = refusal {
            self.state = State::Txn(txn);
            refusal.write(out);
            return Action::Continue;
        }
        if let Some(mut recipient) = self.local_recipient(&to) {
            recipient.params = params;
            self.state = State::Checking(txn);
            return Action::CheckRecipient(recipient);
        }
        match self.submission().map(|p| p.relay) {
            None => Fault::refused(Refusal::NoSuchUser, "no such user here").write(out),
            // RFC 6409 §4.1 leaves relaying to policy: only through a configured smarthost.
            Some(false) => Fault::refused(Refusal::RelayDenied, "relaying not configured").write(out),
            Some(true) => {
                txn.remote.push(RemoteRecipient { address: to, params });
                line(out, "250 2.1.5 recipient OK");
            }
        }
        self.state = State::Txn(txn);
        Action::Continue
    }

    /// `<name@domain>` is user `name` (lowercased). `name+detail` is user `name` too, and the
    /// detail names the mailbox to deliver into (the caller falls back to INBOX when the user
    /// has no such mailbox), as Dovecot's `lmtp_save_to_detail_mailbox` does.
    fn local_recipient(&self, address: &str) -> Option<Recipient> {
        let (user, detail) = self.served.local_part(address)?;
        Some(Recipient {
            address: address.to_owned(),
            user: user.to_ascii_lowercase(),
            mailbox: if detail.is_empty() {
                "INBOX".into()
            } else {
                detail.to_owned()
            },
            params: RcptParams::default(),
        })
    }

    pub fn recipient_result(&mut self, recipient: Recipient, found: Lookup, out: &mut Vec<u8>) -> Action {
        let State::Checking(mut txn) = std::mem::replace(&mut self.state, State::Ready) else {
            return Action::Close;
        };
        match found {
            Lookup::Here => {
                txn.recipients.push(recipient);
                line(out, "250 2.1.5 recipient OK");
            }
            // A mailbox of this cluster on another back end: the queue takes it there. LMTP
            // takes only what this server holds; its front end routes the rest.
            Lookup::Elsewhere if !self.is_lmtp() => {
                txn.remote.push(RemoteRecipient {
                    address: recipient.address,
                    params: recipient.params,
                });
                line(out, "250 2.1.5 recipient OK");
            }
            Lookup::Held => {
                Fault::temporary(Temporary::MailboxBusy, "the mailbox is being moved: try again later").write(out)
            }
            Lookup::Elsewhere | Lookup::Unknown => Fault::refused(Refusal::NoSuchUser, "no such user here").write(out),
        }
        self.state = State::Txn(txn);
        Action::Continue
    }

    pub(super) fn data_start(&mut self, out: &mut Vec<u8>) {
        match std::mem::replace(&mut self.state, State::Ready) {
            State::Txn(txn) if txn.recipient_count() > 0 => {
                let reader = DataReader::new(self.max_size(), self.spool(txn.params.size));
                self.state = State::Data(txn, reader);
                line(out, "354 start mail input; end with <CRLF>.<CRLF>");
            }
            State::Txn(txn) => {
                self.state = State::Txn(txn);
                Fault::refused(Refusal::NoValidRecipients, "no valid recipients").write(out);
            }
            State::Chunks(txn, reader) => {
                // RFC 3030 §3: DATA may not be mixed with BDAT in one transaction.
                self.state = State::Chunks(txn, reader);
                Fault::client(Client::Sequence, "DATA after BDAT; RSET first").write(out);
            }
            other => {
                self.state = other;
                Fault::client(Client::Sequence, "need RCPT before DATA").write(out);
            }
        }
    }

    /// RFC 3030 §2: every BDAT chunk is read, even one that is refused.
    pub(super) fn bdat(&mut self, size: u64, last: bool, out: &mut Vec<u8>) -> Action {
        let (txn, mut reader) = match std::mem::replace(&mut self.state, State::Ready) {
            State::Chunks(txn, reader) => (txn, reader),
            State::Txn(txn) if txn.recipient_count() > 0 => {
                let reader = ChunkReader::new(self.max_size(), self.spool(txn.params.size));
                (txn, reader)
            }
            other => {
                let (refusal, after) = match other {
                    State::Txn(txn) => (
                        Fault::refused(Refusal::NoValidRecipients, "no valid recipients"),
                        Some(txn),
                    ),
                    _ => (Fault::client(Client::Sequence, "need MAIL and RCPT before BDAT"), None),
                };
                refusal.write(out);
                self.state = State::Discard { remaining: size, after };
                return self.after_discard();
            }
        };
        reader.start(size, last);
        self.state = State::Chunks(txn, reader);
        self.chunk_progress(out)
    }

    /// RFC 4468 §3 BURL: the data the URL names is the next chunk, as with BDAT (and mixed
    /// with BDAT freely). The caller resolves it and answers with `url_result`.
    pub(super) fn burl(&mut self, url: String, last: bool, out: &mut Vec<u8>) -> Action {
        // MAIL needs a login in this flavour, so a transaction always has a user.
        let Auth::User(user) = &self.auth else {
            Fault::refused(Refusal::AuthRequired, "authentication required").write(out);
            return Action::Continue;
        };
        let user = user.clone();
        let (txn, reader) = match std::mem::replace(&mut self.state, State::Ready) {
            State::Chunks(txn, reader) => (txn, reader),
            State::Txn(txn) if txn.recipient_count() > 0 => {
                let reader = ChunkReader::new(self.max_size(), self.spool(txn.params.size));
                (txn, reader)
            }
            State::Txn(txn) => {
                self.state = State::Txn(txn);
                Fault::refused(Refusal::NoRecipients, "no recipients have been specified").write(out);
                return Action::Continue;
            }
            other => {
                self.state = other;
                Fault::client(Client::BurlSequence, "valid RCPT TO required before BURL").write(out);
                return Action::Continue;
            }
        };
        self.state = State::Resolving(txn, reader, last);
        Action::ResolveUrl { url, user }
    }

    /// The answer to `Action::ResolveUrl`. A URL that gives no data ends the transaction, as
    /// an oversized chunk does: the message it was part of cannot be sent whole.
    pub fn url_result(&mut self, result: Result<Vec<u8>, UrlRefusal>, out: &mut Vec<u8>) -> Action {
        let State::Resolving(txn, mut reader, last) = std::mem::replace(&mut self.state, State::Ready) else {
            return Action::Close;
        };
        let data = match result {
            Ok(data) => data,
            Err(refusal) => {
                burl_refusal(&refusal).write(out);
                return Action::Continue;
            }
        };
        match reader.append(&data, last) {
            ChunkEnd::More(n) => {
                self.state = State::Chunks(txn, reader);
                line(
                    out,
                    &format!("250 2.5.0 {n} octets received, waiting for more BURL or BDAT"),
                );
                Action::Continue
            }
            ChunkEnd::TooBig => {
                too_big().write(out);
                Action::Continue
            }
            ChunkEnd::Failed(e) => {
                tracing::warn!("{e}");
                no_room().write(out);
                Action::Continue
            }
            ChunkEnd::Complete(message) => self.finish(txn, message),
        }
    }

    /// Feeds message octets; returns how much of `input` was used and what to do next.
    pub fn data(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, Action) {
        match &mut self.state {
            State::Data(_, reader) => {
                let (used, end) = reader.feed(input);
                let action = match end {
                    Some(end) => self.data_end(end, out),
                    None => Action::Continue,
                };
                (used, action)
            }
            State::Chunks(_, reader) => {
                let used = reader.feed(input);
                (used, self.chunk_progress(out))
            }
            State::Discard { remaining, .. } => {
                let used = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
                *remaining -= used as u64;
                (used, self.after_discard())
            }
            _ => (0, Action::Continue),
        }
    }

    fn after_discard(&mut self) -> Action {
        if let State::Discard { remaining: 0, after } = &mut self.state {
            self.state = match after.take() {
                Some(txn) => State::Txn(txn),
                None => State::Ready,
            };
        }
        Action::Continue
    }

    fn chunk_progress(&mut self, out: &mut Vec<u8>) -> Action {
        let State::Chunks(_, reader) = &mut self.state else {
            return Action::Continue;
        };
        if !reader.chunk_done() {
            return Action::Continue;
        }
        match reader.end_of_chunk() {
            ChunkEnd::More(n) => {
                line(out, &format!("250 2.0.0 {n} octets received"));
                Action::Continue
            }
            ChunkEnd::TooBig => {
                self.state = State::Ready;
                too_big().write(out);
                Action::Continue
            }
            ChunkEnd::Failed(e) => {
                tracing::warn!("{e}");
                self.state = State::Ready;
                no_room().write(out);
                Action::Continue
            }
            ChunkEnd::Complete(message) => {
                let State::Chunks(txn, _) = std::mem::replace(&mut self.state, State::Ready) else {
                    unreachable!("matched above")
                };
                self.finish(txn, message)
            }
        }
    }

    fn data_end(&mut self, end: DataEnd, out: &mut Vec<u8>) -> Action {
        let State::Data(txn, _) = std::mem::replace(&mut self.state, State::Ready) else {
            return Action::Continue;
        };
        match end {
            DataEnd::TooBig => self.refuse(&txn, &too_big(), out),
            DataEnd::Failed(e) => {
                tracing::warn!("{e}");
                self.refuse(&txn, &no_room(), out)
            }
            DataEnd::Complete(message) => self.finish(txn, message),
        }
    }

    /// The reply to a message refused whole; RFC 2033 §4.2: over LMTP one per recipient, even
    /// when all are the same.
    fn refuse(&self, txn: &Txn, fault: &Fault, out: &mut Vec<u8>) -> Action {
        let replies = if self.is_lmtp() { txn.recipients.len() } else { 1 };
        for _ in 0..replies {
            fault.write(out);
        }
        Action::Continue
    }

    fn finish(&mut self, txn: Txn, message: Spooled) -> Action {
        self.state = State::Delivering;
        let envelope = Envelope {
            from: txn.from,
            params: txn.params,
            recipients: txn.recipients,
            remote: txn.remote,
            message,
            helo: self.helo.clone().unwrap_or_default(),
            user: match &self.auth {
                Auth::User(u) => Some(u.clone()),
                _ => None,
            },
        };
        if self.is_lmtp() {
            Action::Deliver(envelope)
        } else {
            Action::Submit(envelope)
        }
    }

    /// LMTP: one status per recipient of the last `Deliver`, in order.
    pub fn delivery_result(
        &mut self,
        recipients: &[Recipient],
        statuses: &[DeliveryStatus],
        out: &mut Vec<u8>,
    ) -> Action {
        self.state = State::Ready;
        for (r, status) in recipients.iter().zip(statuses) {
            let fault = match status {
                DeliveryStatus::Delivered => {
                    line(out, &format!("250 2.0.0 <{}> delivered", r.address));
                    continue;
                }
                DeliveryStatus::Relayed { code, text } => {
                    // A back end's own reply, passed on as it came (the front end's LMTP).
                    line(out, &format!("{code} {text}"));
                    continue;
                }
                DeliveryStatus::OverQuota => {
                    Fault::refused(Refusal::MailboxFull, format!("<{}> mailbox full", r.address))
                }
                DeliveryStatus::BadMessage(why) => Fault::refused(Refusal::BadMessage, why.to_string()),
                DeliveryStatus::Temporary => {
                    let text = format!("<{}> temporary failure, try again later", r.address);
                    Fault::temporary(Temporary::Failure, text)
                }
            };
            fault.write(out);
        }
        Action::Continue
    }

    /// Submission: the one reply to the last `Submit`.
    pub fn submit_result(&mut self, outcome: SubmitOutcome, out: &mut Vec<u8>) -> Action {
        self.state = State::Ready;
        let fault = match outcome {
            SubmitOutcome::Accepted { queue_id: Some(id) } => {
                line(out, &format!("250 2.0.0 OK queued as {id:016X}"));
                return Action::Continue;
            }
            SubmitOutcome::Accepted { queue_id: None } => {
                line(out, "250 2.0.0 OK delivered");
                return Action::Continue;
            }
            SubmitOutcome::BadMessage(why) => Fault::refused(Refusal::BadMessage, why),
            SubmitOutcome::NotYours(address) => {
                let user = match &self.auth {
                    Auth::User(u) => u.as_str(),
                    _ => "",
                };
                let address = super::printable(&address);
                let text = format!("From: address <{address}> is not an address of user {user}");
                Fault::refused(Refusal::SenderNotOwned, text)
            }
            SubmitOutcome::OverQuota(address) => {
                let text = format!("<{}> mailbox full", super::printable(&address));
                Fault::refused(Refusal::MailboxFull, text)
            }
            SubmitOutcome::Temporary => Fault::temporary(Temporary::Failure, "temporary failure, try again later"),
        };
        fault.write(out);
        Action::Continue
    }
}

/// RFC 4468 §6: the reply to a BURL whose URL gives no data. A URL that is not for this
/// submitter's submission, or whose authorization does not verify, is a policy refusal
/// (5.7.0); anything else about the URL is "content not available" (5.6.6). The caller logs
/// store failures with its session id.
fn burl_refusal(refusal: &UrlRefusal) -> Fault {
    let why = refusal.reason();
    match refusal {
        UrlRefusal::Access | UrlRefusal::Token => Fault::refused(Refusal::UrlAccess, why.to_string()),
        UrlRefusal::Store(_) => Fault::temporary(Temporary::Unreachable, "IMAP URL resolution failed, try again later"),
        _ => Fault::refused(Refusal::UrlUnusable, format!("IMAP URL resolution failed: {why}")),
    }
}
