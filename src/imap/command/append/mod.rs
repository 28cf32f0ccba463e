//! APPEND and MULTIAPPEND (RFC 9051 §6.3.12, RFC 3502), with CATENATE (RFC 4469,
//! `catenate`) and as REPLACE's first half (RFC 8508, `replace`): each message is parsed off
//! the event loop, one after another, then all are stored in one write and the answer names
//! their UIDs (APPENDUID, RFC 4315).

pub(crate) mod parse;

use std::sync::Arc;

use super::message::split_flags;
use crate::imap::command::{Spec, States};
use crate::imap::fault::{ok, Code, Fault};
use crate::imap::session::{store_error, Action, Conn, Ctx, Selected, Session, Step, User};
use crate::imap::types::AppendMessage;
use crate::mime::{IngestError, Structure};
use crate::store::records::{MailboxId, Uid};
use crate::store::{NewMessage, StoreError, WriteOp, WriteOutcome};

/// The command table's rows (`command::COMMANDS`).
pub(crate) const APPEND: Spec = Spec {
    name: "APPEND",
    extension: None,
    states: States::Authenticated,
    numbers: false,
    expunges: true,
    rfc: "RFC 9051 §6.3.12",
    parse: parse::append,
};

/// An APPEND (or REPLACE) in progress: messages still to parse, and those parsed.
pub(crate) struct AppendPending {
    tag: String,
    mailbox: MailboxId,
    /// REPLACE (RFC 8508): the message the new one takes the place of, and the command's name.
    replacing: Option<Replacing>,
    /// Messages not yet parsed, last first, with their flags split.
    waiting: Vec<(AppendMessage, u8, Vec<String>)>,
    /// The flags and date of the message being parsed now.
    current: (u8, Vec<String>, Option<i64>),
    /// It came as a literal8 (RFC 3516 §4.4).
    current_binary: bool,
    ready: Vec<NewMessage>,
}

/// What a REPLACE expunges once its message is stored.
pub(crate) struct Replacing {
    pub mailbox: MailboxId,
    pub uid: Uid,
    /// `REPLACE` or `UID REPLACE`, for the tagged OK.
    pub command: &'static str,
}

impl Conn {
    /// APPEND and MULTIAPPEND (RFC 3502): each message is parsed off the event loop, one after
    /// another, then all are stored in one transaction.
    #[allow(clippy::too_many_arguments)] // one APPEND command's parts, and who sends it
    pub(crate) fn append(
        &mut self,
        user: &User,
        sel: Option<&Selected>,
        tag: String,
        name: &str,
        mut messages: Vec<AppendMessage>,
        replacing: Option<Replacing>,
        ctx: &Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        let store = ctx.store;
        if let Some(limit) = self
            .message_limit(user)
            .saving()
            .filter(|&n| messages.len() > n as usize)
        {
            // RFC 9738 §3.1: MULTIAPPEND is atomic, so it is refused whole.
            let text = "too many messages in one APPEND, nothing was appended";
            crate::imap::limit::refuse(out, &tag, limit, None, text);
            return Action::Continue;
        }
        let Some(mailbox) = Self::target_mailbox(user, &tag, name, store, out) else {
            return Action::Continue;
        };
        // RFC 4469: CATENATE messages are put together first; any URL that does not resolve
        // fails the whole command before anything is parsed or stored.
        if !self.catenate((user, sel), &tag, &mut messages, (store, ctx.now), out) {
            return Action::Continue;
        }
        let mut waiting = Vec::with_capacity(messages.len());
        for message in messages.into_iter().rev() {
            match split_flags(&message.flags) {
                Ok((flags, keywords)) => waiting.push((message, flags, keywords)),
                Err(why) => {
                    Fault::bad(why).write(&tag, out);
                    return Action::Continue;
                }
            }
        }
        let pending = AppendPending {
            tag,
            mailbox: mailbox.id,
            replacing,
            waiting,
            current: (0, Vec::new(), None),
            current_binary: false,
            ready: Vec::new(),
        };
        self.next_append(pending)
    }

    /// Parses the next waiting message, or stores them all.
    fn next_append(&mut self, mut p: AppendPending) -> Action {
        match p.waiting.pop() {
            Some((message, flags, keywords)) => {
                p.current = (flags, keywords, message.date);
                p.current_binary = message.binary;
                self.step = Step::Append(Box::new(p));
                Action::Ingest {
                    message: message.message,
                    binary: message.binary,
                }
            }
            None => {
                let messages = std::mem::take(&mut p.ready);
                let op = match &p.replacing {
                    Some(r) => WriteOp::Replace {
                        from: r.mailbox,
                        uid: r.uid,
                        to: p.mailbox,
                        message: messages
                            .into_iter()
                            .next()
                            .expect("a REPLACE carries one message, and a failed parse ends it before this"),
                    },
                    None => WriteOp::Append {
                        mailbox: p.mailbox,
                        messages,
                    },
                };
                self.step = Step::Append(Box::new(p));
                Action::Write(op)
            }
        }
    }

    pub(crate) fn append_ingested(
        &mut self,
        mut p: AppendPending,
        result: Result<(Vec<u8>, Structure), IngestError>,
        out: &mut Vec<u8>,
    ) -> Action {
        let (message, structure) = match result {
            Ok(parsed) => parsed,
            // RFC 3516 §4.4: binary content with NUL is stored base64 (`ingest_binary`);
            // NUL where no transfer encoding can carry it (a header) is refused so.
            Err(IngestError::Nul) if p.current_binary => {
                let text = "NUL octets outside a part's content cannot be stored";
                Fault::no(Code::UnknownCte, text).write(&p.tag, out);
                return Action::Continue;
            }
            // RFC 5530: an implementation limit ([limits] max_header_fields, max_header_line).
            Err(e @ (IngestError::TooManyHeaderFields(_) | IngestError::HeaderLineTooLong(_))) => {
                Fault::no(Code::Limit, e.to_string()).write(&p.tag, out);
                return Action::Continue;
            }
            Err(e) => {
                Fault::no(Code::Cannot, e.to_string()).write(&p.tag, out);
                return Action::Continue;
            }
        };
        let (flags, keywords, internal_date) = std::mem::take(&mut p.current);
        p.ready.push(NewMessage {
            message,
            structure: Arc::new(structure),
            flags,
            keywords,
            internal_date,
        });
        self.next_append(p)
    }
}

impl Session {
    pub(crate) fn finish_append(
        &mut self,
        p: AppendPending,
        result: Result<WriteOutcome, StoreError>,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        if let Some(r) = &p.replacing {
            return self.finish_replace(&p.tag, r.command, result, ctx, out);
        }
        match result {
            Ok(WriteOutcome::Appended { uid_validity, uids }) => {
                self.sync(ctx, out);
                let mut set = Vec::new();
                crate::imap::search::sequence_set(&uids, &mut set);
                let set = String::from_utf8_lossy(&set);
                // RFC 4315 §3: APPENDUID.
                ok(
                    out,
                    &p.tag,
                    &format!("[APPENDUID {uid_validity} {set}] APPEND completed"),
                );
            }
            Ok(_) => Fault::Internal("unexpected store answer").write(&p.tag, out),
            Err(e) => store_error(out, &p.tag, e),
        }
        Action::Continue
    }
}
