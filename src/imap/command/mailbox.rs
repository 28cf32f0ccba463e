//! Mailbox commands: SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
//! NAMESPACE, STATUS and APPEND (LIST and LSUB are in `cmd_list`).
//!
//! Names are UTF-8 in the store and modified UTF-7 on the wire (RFC 3501 §5.1.3).

use crate::imap::fault::{ok, Code, Fault};
use std::sync::Arc;

use crate::imap::command::message::WritePending;
use crate::imap::session::{store_error, untagged, Action, Conn, Ctx, Selected, Session, State, Step, User};
use crate::imap::sync::RecentUids;
use crate::imap::types::{AppendMessage, Qresync, SelectParams, StatusItem};
use crate::imap::view::{select_scan, MailRead};
use crate::mime::{IngestError, Structure};
use crate::store::recent::RecentClaims;
use crate::store::records::{flags, MailboxId, SpecialUse, Uid};
use crate::store::{canonical_mailbox_name, Mailbox, NewMessage, StoreError, WriteOp, WriteOutcome, SEPARATOR};

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

/// System flags a client may set, by name.
pub(crate) fn system_flag(name: &str) -> Option<u8> {
    const NAMES: [(&str, u8); 5] = [
        ("\\Seen", flags::SEEN),
        ("\\Answered", flags::ANSWERED),
        ("\\Flagged", flags::FLAGGED),
        ("\\Deleted", flags::DELETED),
        ("\\Draft", flags::DRAFT),
    ];
    NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, b)| *b)
}

/// Splits flags into system bits and keywords; `\Recent` is ignored (it cannot be set,
/// RFC 3501 §2.3.2); other backslash names are errors.
pub(crate) fn split_flags(list: &[String]) -> Result<(u8, Vec<String>), String> {
    let mut bits = 0;
    let mut keywords: Vec<String> = Vec::new();
    for f in list {
        if let Some(b) = system_flag(f) {
            bits |= b;
        } else if f.eq_ignore_ascii_case("\\Recent") {
        } else if f.starts_with('\\') {
            return Err(format!("unknown system flag {f}"));
        } else if f.len() > 255 {
            return Err("keyword too long".into());
        } else if !keywords.iter().any(|k| k.eq_ignore_ascii_case(f)) {
            keywords.push(f.clone());
        }
    }
    Ok((bits, keywords))
}

/// An IMAP string for a mailbox name: quoted, or a literal if it cannot be quoted.
pub(crate) fn quote(name: &str, out: &mut Vec<u8>) {
    if name.bytes().any(|b| b == b'\r' || b == b'\n' || b >= 0x80) {
        out.extend_from_slice(format!("{{{}}}\r\n", name.len()).as_bytes());
        out.extend_from_slice(name.as_bytes());
        return;
    }
    out.push(b'"');
    for b in name.bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// `* STATUS name (...)` for one mailbox (RFC 9051 §7.4.1).
pub(crate) fn status_line(
    (store, claims): (&dyn MailRead, &RecentClaims),
    (mailbox, name): (&Mailbox, &str),
    items: &[StatusItem],
    append_limit: u64,
    out: &mut Vec<u8>,
) -> Result<(), StoreError> {
    let (mut unseen, mut deleted, mut recent) = (0u32, 0u32, 0u32);
    // What no session has been told of yet (RFC 3501 §6.3.10 with §2.3.2).
    let first_recent = claims.first_unclaimed(mailbox.id, mailbox.first_recent_uid);
    store.each_message(mailbox.id, &mut |uid, r| {
        unseen += u32::from(r.flags & flags::SEEN == 0);
        deleted += u32::from(r.flags & flags::DELETED != 0);
        recent += u32::from(uid >= first_recent);
    })?;
    let parts: Vec<String> = items
        .iter()
        .map(|i| match i {
            StatusItem::Messages => format!("MESSAGES {}", mailbox.messages),
            StatusItem::Recent => format!("RECENT {recent}"),
            StatusItem::UidNext => format!("UIDNEXT {}", mailbox.uid_next),
            StatusItem::UidValidity => format!("UIDVALIDITY {}", mailbox.uid_validity),
            StatusItem::Unseen => format!("UNSEEN {unseen}"),
            StatusItem::Deleted => format!("DELETED {deleted}"),
            StatusItem::Size => format!("SIZE {}", mailbox.size),
            StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", mailbox.highest_modseq),
            StatusItem::MailboxId => format!("MAILBOXID ({})", mailbox_id(mailbox.id)),
            StatusItem::AppendLimit => format!("APPENDLIMIT {append_limit}"),
        })
        .collect();
    let mut line = b"* STATUS ".to_vec();
    quote(name, &mut line);
    line.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
    out.extend_from_slice(&line);
    Ok(())
}

/// RFC 8474 §4 MAILBOXID: stable for the mailbox's life, kept across RENAME.
pub(crate) fn mailbox_id(id: MailboxId) -> String {
    format!("F{id:016x}")
}

/// RFC 6154 §2 attributes, as LIST shows them and CREATE's USE takes them.
pub(crate) const SPECIAL_USE: [(&str, SpecialUse); 5] = [
    ("\\Drafts", SpecialUse::Drafts),
    ("\\Sent", SpecialUse::Sent),
    ("\\Trash", SpecialUse::Trash),
    ("\\Junk", SpecialUse::Junk),
    ("\\Archive", SpecialUse::Archive),
];

fn parse_special_use(attr: &str) -> Option<SpecialUse> {
    SPECIAL_USE
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attr))
        .map(|&(_, u)| u)
}

impl Conn {
    /// Decodes a client's mailbox name. One that is not valid modified UTF-7 is syntactically
    /// a fine astring, so it is answered as any name that does not exist: `NO` (as Dovecot
    /// does), never `BAD`.
    pub(crate) fn mailbox_name(user: &User, tag: &str, name: &str, out: &mut Vec<u8>) -> Option<String> {
        match user.decode_name(name) {
            Ok(n) => Some(canonical_mailbox_name(&n).to_owned()),
            Err(e) => {
                Fault::no(Code::Nonexistent, e.to_string()).write(tag, out);
                None
            }
        }
    }

    /// A name for a mailbox about to be made (CREATE, RENAME's target): `NO [CANNOT]` when it
    /// is not valid modified UTF-7.
    fn new_mailbox_name(user: &User, tag: &str, name: &str, out: &mut Vec<u8>) -> Option<String> {
        match user.decode_name(name) {
            Ok(n) => Some(canonical_mailbox_name(&n).to_owned()),
            Err(e) => {
                Fault::no(Code::Cannot, e.to_string()).write(tag, out);
                None
            }
        }
    }

    /// The mailbox APPEND, COPY or MOVE put messages into; `None` once the client is told
    /// why (RFC 9051 §6.3.12: [TRYCREATE], so it may CREATE the mailbox and try again).
    pub(crate) fn target_mailbox(
        user: &User,
        tag: &str,
        name: &str,
        store: &dyn MailRead,
        out: &mut Vec<u8>,
    ) -> Option<Mailbox> {
        let name = Self::mailbox_name(user, tag, name, out)?;
        match store.mailbox(user.id, &name) {
            Ok(Some(m)) if !m.noselect => Some(m),
            Ok(_) => {
                Fault::no(Code::TryCreate, "no such mailbox").write(tag, out);
                None
            }
            Err(e) => {
                store_error(out, tag, e);
                None
            }
        }
    }

    /// A write whose answer is only OK or a store error.
    fn simple_write(&mut self, tag: String, command: &'static str, op: WriteOp) -> Action {
        self.step = Step::Write(WritePending::Simple { tag, command });
        Action::Write(op)
    }

    pub(crate) fn create(
        &mut self,
        user: &User,
        tag: String,
        mailbox: &str,
        special_use: &[String],
        out: &mut Vec<u8>,
    ) -> Action {
        let Some(name) = Self::new_mailbox_name(user, &tag, mailbox, out) else {
            return Action::Continue;
        };
        let special_use = match special_use {
            [] => None,
            [one] => match parse_special_use(one) {
                Some(u) => Some(u),
                None => {
                    Fault::no(Code::UseAttr, format!("{one} is not supported")).write(&tag, out);
                    return Action::Continue;
                }
            },
            _ => {
                Fault::no(Code::UseAttr, "one special use per mailbox").write(&tag, out);
                return Action::Continue;
            }
        };
        let name = name.trim_end_matches(SEPARATOR).to_owned();
        if name == "INBOX" {
            Fault::no(Code::AlreadyExists, "INBOX always exists").write(&tag, out);
            return Action::Continue;
        }
        let user = user.id;
        self.simple_write(
            tag,
            "CREATE",
            WriteOp::CreateMailbox {
                user,
                name,
                special_use,
            },
        )
    }

    pub(crate) fn delete(&mut self, user: &User, tag: String, mailbox: &str, out: &mut Vec<u8>) -> Action {
        let Some(name) = Self::mailbox_name(user, &tag, mailbox, out) else {
            return Action::Continue;
        };
        self.simple_write(tag, "DELETE", WriteOp::DeleteMailbox { user: user.id, name })
    }

    pub(crate) fn rename(&mut self, user: &User, tag: String, (from, to): (&str, &str), out: &mut Vec<u8>) -> Action {
        let Some(from) = Self::mailbox_name(user, &tag, from, out) else {
            return Action::Continue;
        };
        let Some(to) = Self::new_mailbox_name(user, &tag, to, out) else {
            return Action::Continue;
        };
        self.simple_write(
            tag,
            "RENAME",
            WriteOp::RenameMailbox {
                user: user.id,
                from,
                to,
            },
        )
    }

    /// SUBSCRIBE, or UNSUBSCRIBE when not `subscribed`.
    pub(crate) fn subscribe(
        &mut self,
        user: &User,
        tag: String,
        mailbox: &str,
        subscribed: bool,
        out: &mut Vec<u8>,
    ) -> Action {
        let Some(name) = Self::mailbox_name(user, &tag, mailbox, out) else {
            return Action::Continue;
        };
        let command = if subscribed { "SUBSCRIBE" } else { "UNSUBSCRIBE" };
        let op = WriteOp::Subscribe {
            user: user.id,
            name,
            subscribed,
        };
        self.simple_write(tag, command, op)
    }
}

impl Session {
    /// SELECT or EXAMINE (`read_only`). RFC 9051 §6.3.2: a SELECT, even a failing one, first
    /// leaves the current mailbox, and says so with [CLOSED] (RFC 7162 §3.2.11) so the client
    /// knows where responses belong.
    pub(crate) fn select(
        &mut self,
        tag: String,
        name: &str,
        read_only: bool,
        params: SelectParams,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        if let State::Selected(..) = self.state {
            self.state.unselect();
            untagged(out, "OK [CLOSED] previous mailbox closed");
        }
        let State::Authenticated(user) = &mut self.state else {
            return Action::Continue;
        };
        if params.qresync.is_some() && !user.enabled.qresync {
            // RFC 7162 §3.2.5: QRESYNC parameters need ENABLE QRESYNC first.
            Fault::bad("QRESYNC is not enabled").write(&tag, out);
            return Action::Continue;
        }
        if params.condstore {
            // SELECT reports HIGHESTMODSEQ itself once it is on.
            self.conn.enable_condstore(user, None, out);
        }
        let Some(name) = Conn::mailbox_name(user, &tag, name, out) else {
            return Action::Continue;
        };
        let mailbox = match ctx.store.mailbox(user.id, &name) {
            Ok(Some(m)) if !m.noselect => m,
            Ok(_) => {
                Fault::no(Code::Nonexistent, "no such mailbox").write(&tag, out);
                return Action::Continue;
            }
            Err(e) => {
                store_error(out, &tag, e);
                return Action::Continue;
            }
        };
        let Some(sel) = enter_selected(user, &tag, &mailbox, read_only, params.qresync, ctx, out) else {
            return Action::Continue;
        };
        if let State::Authenticated(user) = std::mem::replace(&mut self.state, State::Logout) {
            self.state = State::Selected(user, sel);
        }
        let command = if read_only { "EXAMINE" } else { "SELECT" };
        let access = if read_only { "READ-ONLY" } else { "READ-WRITE" };
        ok(out, &tag, &format!("[{access}] {command} completed"));
        Action::Continue
    }
}

/// The SELECT/EXAMINE responses (RFC 9051 §6.3.2, RFC 3501 §6.3.1).
/// `None` once the client is told why not.
fn enter_selected(
    user: &User,
    tag: &str,
    mailbox: &Mailbox,
    read_only: bool,
    qresync: Option<Qresync>,
    ctx: &mut Ctx<'_>,
    out: &mut Vec<u8>,
) -> Option<Selected> {
    let view = match ctx.views.current(ctx.store, mailbox) {
        Ok(v) => v,
        Err(e) => {
            store_error(out, tag, e);
            return None;
        }
    };
    let (first_unseen, keywords) = match select_scan(ctx.store, mailbox.id, &view) {
        Ok(scan) => scan,
        Err(e) => {
            store_error(out, tag, e);
            return None;
        }
    };
    crate::imap::command::message::flags_responses(&keywords, read_only, out);
    let keywords = ctx.views.shared_keywords(mailbox.id, keywords);
    untagged(out, &format!("{} EXISTS", view.len()));
    // EXAMINE leaves \Recent as it is (RFC 3501 §6.3.2); SELECT takes what is new.
    let mut recent = RecentUids::default();
    recent.learn((read_only, user.enabled.imap4rev2), mailbox, &view, ctx.recent);
    // RFC 9051 dropped RECENT and the UNSEEN response code.
    if !user.enabled.imap4rev2 {
        untagged(out, &format!("{} RECENT", recent.count(&view)));
        // RFC 9586 §3: no message numbers under UIDONLY.
        if let Some(n) = first_unseen.filter(|_| !user.enabled.uid_only) {
            untagged(out, &format!("OK [UNSEEN {n}] first unseen message"));
        }
    }
    untagged(out, &format!("OK [UIDVALIDITY {}] UIDs valid", mailbox.uid_validity));
    untagged(out, &format!("OK [UIDNEXT {}] predicted next UID", mailbox.uid_next));
    untagged(out, &format!("OK [MAILBOXID ({})] object id", mailbox_id(mailbox.id)));
    if user.enabled.condstore {
        untagged(out, &format!("OK [HIGHESTMODSEQ {}] highest", mailbox.highest_modseq));
    }
    if !crate::imap::switches::hidden("URLAUTH", &user.disabled) {
        // RFC 4467 URLMECH: the mechanisms this mailbox's URLs can be authorized with, so a
        // client knows before GENURLAUTH (Cyrus sends it here too).
        untagged(out, "OK [URLMECH INTERNAL] URLAUTH mechanisms");
    }
    let known_modseq = mailbox.highest_modseq.max(view.highest_modseq);
    let mut sel = Selected {
        mailbox: mailbox.id,
        read_only,
        known_modseq,
        cursor: ctx.views.cursor(mailbox.id, known_modseq),
        view,
        recent,
        keywords,
        saved: Vec::new(),
        contexts: Default::default(),
    };
    if let Some(q) = qresync.filter(|q| q.uid_validity == mailbox.uid_validity) {
        let uid_only = user.enabled.uid_only;
        crate::imap::command::message::qresync_report(ctx.store, (mailbox, &mut sel), &q, uid_only, out);
    }
    Some(sel)
}

impl Conn {
    pub(crate) fn status(
        &self,
        user: &User,
        tag: &str,
        name: &str,
        items: &[StatusItem],
        ctx: &Ctx<'_>,
        out: &mut Vec<u8>,
    ) {
        let store = ctx.store;
        let Ok(decoded) = user.decode_name(name) else {
            return Fault::no(Code::Nonexistent, "not a valid modified UTF-7 name").write(tag, out);
        };
        let mailbox = match store.mailbox(user.id, canonical_mailbox_name(&decoded)) {
            Ok(Some(m)) if !m.noselect => m,
            Ok(_) => return Fault::no(Code::Nonexistent, "no such mailbox").write(tag, out),
            Err(e) => return store_error(out, tag, e),
        };
        match status_line(
            (store, ctx.recent),
            (&mailbox, &user.encode_name(&mailbox.name)),
            items,
            self.settings.append_limit,
            out,
        ) {
            Ok(()) => ok(out, tag, "STATUS completed"),
            Err(e) => store_error(out, tag, e),
        }
    }

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
                self.step = Step::Append(p);
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
                self.step = Step::Append(p);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_split() {
        let (bits, kw) = split_flags(&[
            "\\Seen".into(),
            "$Forwarded".into(),
            "\\recent".into(),
            "$forwarded".into(),
        ])
        .unwrap();
        assert_eq!((bits, kw), (flags::SEEN, vec!["$Forwarded".to_string()]));
        assert!(split_flags(&["\\Bogus".into()]).is_err());
    }
}
