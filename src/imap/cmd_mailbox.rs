//! Mailbox commands: SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST,
//! LSUB, NAMESPACE, STATUS and APPEND.
//!
//! Names are UTF-8 in the store and modified UTF-7 on the wire (RFC 3501 §5.1.3).

use std::sync::Arc;

use super::cmd_message::WritePending;
use super::session::{store_error, tagged, untagged, Action, Ctx, Pending, Selected, Session, State};
use super::types::{AppendMessage, Command, ListOptions, Qresync, SelectParams, StatusItem};
use super::view::{select_scan, MailRead};
use crate::mime::{IngestError, Structure};
use crate::store::records::{flags, MailboxId, SpecialUse, UserId};
use crate::store::{canonical_mailbox_name, Mailbox, NewMessage, StoreError, WriteOp, WriteOutcome, SEPARATOR};

/// An APPEND in progress: messages still to parse, and those parsed.
pub(crate) struct AppendPending {
    tag: String,
    mailbox: MailboxId,
    /// Messages not yet parsed, last first, with their flags split.
    waiting: Vec<(AppendMessage, u8, Vec<String>)>,
    /// The flags and date of the message being parsed now.
    current: (u8, Vec<String>, Option<i64>),
    /// It came as a literal8 (RFC 3516 §4.4).
    current_binary: bool,
    ready: Vec<NewMessage>,
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

fn special_use_attr(s: Option<SpecialUse>) -> Option<&'static str> {
    Some(match s? {
        SpecialUse::Drafts => "\\Drafts",
        SpecialUse::Sent => "\\Sent",
        SpecialUse::Trash => "\\Trash",
        SpecialUse::Junk => "\\Junk",
        SpecialUse::Archive => "\\Archive",
    })
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

/// RFC 3501 §6.3.8 wildcards: `*` matches anything, `%` anything but the separator.
pub(crate) fn matches_pattern(pattern: &[char], name: &[char]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some(('*', rest)) => (0..=name.len()).any(|i| matches_pattern(rest, &name[i..])),
        Some(('%', rest)) => {
            let stop = name.iter().position(|c| *c == SEPARATOR).unwrap_or(name.len());
            (0..=stop).any(|i| matches_pattern(rest, &name[i..]))
        }
        Some((p, rest)) => name.first() == Some(p) && matches_pattern(rest, &name[1..]),
    }
}

fn list_matches(reference: &str, pattern: &str, name: &str) -> bool {
    let full: Vec<char> = format!("{reference}{pattern}").chars().collect();
    let name_chars: Vec<char> = name.chars().collect();
    if matches_pattern(&full, &name_chars) {
        return true;
    }
    // INBOX matches case-insensitively (RFC 3501 §5.1).
    name == "INBOX" && {
        let upper: Vec<char> = format!("{reference}{pattern}").to_uppercase().chars().collect();
        matches_pattern(&upper, &name_chars)
    }
}

/// `* STATUS name (...)` for one mailbox (RFC 9051 §7.4.1).
fn status_line(
    store: &dyn MailRead,
    (mailbox, name): (&Mailbox, &str),
    items: &[StatusItem],
    append_limit: u64,
    out: &mut Vec<u8>,
) -> Result<(), StoreError> {
    let (mut unseen, mut deleted, mut recent) = (0u32, 0u32, 0u32);
    let first_recent = mailbox.first_recent_uid.max(1);
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

fn parse_special_use(attr: &str) -> Option<SpecialUse> {
    [
        ("\\Drafts", SpecialUse::Drafts),
        ("\\Sent", SpecialUse::Sent),
        ("\\Trash", SpecialUse::Trash),
        ("\\Junk", SpecialUse::Junk),
        ("\\Archive", SpecialUse::Archive),
    ]
    .into_iter()
    .find(|(name, _)| name.eq_ignore_ascii_case(attr))
    .map(|(_, u)| u)
}

impl Session {
    fn user_id(&self) -> UserId {
        match &self.state {
            State::Authenticated(u) | State::Selected(u, _) => u.id,
            _ => unreachable!("the command table admits mailbox commands after login only"),
        }
    }

    /// Decodes a client's mailbox name; a BAD response when it is not valid modified UTF-7.
    fn mailbox_name(&self, tag: &str, name: &str, out: &mut Vec<u8>) -> Option<String> {
        match self.decode_name(name) {
            Ok(n) => Some(canonical_mailbox_name(&n).to_owned()),
            Err(e) => {
                tagged(out, tag, "BAD", &e.to_string());
                None
            }
        }
    }

    /// The mailbox APPEND, COPY or MOVE put messages into; `None` once the client is told
    /// why (RFC 9051 §6.3.12: [TRYCREATE], so it may CREATE the mailbox and try again).
    pub(crate) fn target_mailbox(
        &self,
        tag: &str,
        name: &str,
        store: &dyn MailRead,
        out: &mut Vec<u8>,
    ) -> Option<Mailbox> {
        let name = self.mailbox_name(tag, name, out)?;
        match store.mailbox(self.user_id(), &name) {
            Ok(Some(m)) if !m.noselect => Some(m),
            Ok(_) => {
                tagged(out, tag, "NO", "[TRYCREATE] no such mailbox");
                None
            }
            Err(e) => {
                store_error(out, tag, &e);
                None
            }
        }
    }

    pub(crate) fn mailbox_command(
        &mut self,
        tag: String,
        command: Command,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        let user = self.user_id();
        let write = |this: &mut Session, tag: String, command: &'static str, op: WriteOp| {
            this.pending = Pending::Write(WritePending::Simple { tag, command });
            Action::Write(op)
        };
        match command {
            Command::Select { mailbox, params } => self.select(tag, &mailbox, false, params, ctx, out),
            Command::Examine { mailbox, params } => self.select(tag, &mailbox, true, params, ctx, out),
            Command::Create { mailbox, special_use } => {
                let Some(name) = self.mailbox_name(&tag, &mailbox, out) else {
                    return Action::Continue;
                };
                let special_use = match special_use.as_slice() {
                    [] => None,
                    [one] => match parse_special_use(one) {
                        Some(u) => Some(u),
                        None => {
                            tagged(out, &tag, "NO", &format!("[USEATTR] {one} is not supported"));
                            return Action::Continue;
                        }
                    },
                    _ => {
                        tagged(out, &tag, "NO", "[USEATTR] one special use per mailbox");
                        return Action::Continue;
                    }
                };
                let name = name.trim_end_matches(SEPARATOR).to_owned();
                if name == "INBOX" {
                    tagged(out, &tag, "NO", "[ALREADYEXISTS] INBOX always exists");
                    return Action::Continue;
                }
                write(
                    self,
                    tag,
                    "CREATE",
                    WriteOp::CreateMailbox {
                        user,
                        name,
                        special_use,
                    },
                )
            }
            Command::Delete { mailbox } => {
                let Some(name) = self.mailbox_name(&tag, &mailbox, out) else {
                    return Action::Continue;
                };
                write(self, tag, "DELETE", WriteOp::DeleteMailbox { user, name })
            }
            Command::Rename { from, to } => {
                let (Some(from), Some(to)) = (self.mailbox_name(&tag, &from, out), self.mailbox_name(&tag, &to, out))
                else {
                    return Action::Continue;
                };
                write(self, tag, "RENAME", WriteOp::RenameMailbox { user, from, to })
            }
            Command::Subscribe { mailbox } => {
                let Some(name) = self.mailbox_name(&tag, &mailbox, out) else {
                    return Action::Continue;
                };
                write(
                    self,
                    tag,
                    "SUBSCRIBE",
                    WriteOp::Subscribe {
                        user,
                        name,
                        subscribed: true,
                    },
                )
            }
            Command::Unsubscribe { mailbox } => {
                let Some(name) = self.mailbox_name(&tag, &mailbox, out) else {
                    return Action::Continue;
                };
                write(
                    self,
                    tag,
                    "UNSUBSCRIBE",
                    WriteOp::Subscribe {
                        user,
                        name,
                        subscribed: false,
                    },
                )
            }
            Command::List {
                reference,
                patterns,
                options,
            } => {
                self.list(&tag, &reference, &patterns, &options, false, ctx.store, out);
                Action::Continue
            }
            Command::Lsub { reference, pattern } => {
                let options = ListOptions::default();
                self.list(&tag, &reference, &[pattern], &options, true, ctx.store, out);
                Action::Continue
            }
            Command::Namespace => {
                untagged(out, "NAMESPACE ((\"\" \"/\")) NIL NIL");
                tagged(out, &tag, "OK", "NAMESPACE completed");
                Action::Continue
            }
            Command::Status { mailbox, items } => {
                self.status(&tag, &mailbox, &items, ctx.store, out);
                Action::Continue
            }
            Command::Append { mailbox, messages } => self.append(tag, &mailbox, messages, ctx.store, out),
            _ => unreachable!("dispatched by command family"),
        }
    }

    fn select(
        &mut self,
        tag: String,
        name: &str,
        read_only: bool,
        params: SelectParams,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        if params.qresync.is_some() && !self.enabled().qresync {
            // RFC 7162 §3.2.5: QRESYNC parameters need ENABLE QRESYNC first.
            tagged(out, &tag, "BAD", "QRESYNC is not enabled");
            return Action::Continue;
        }
        if params.condstore {
            self.enable_condstore();
        }
        // RFC 9051 §6.3.2: a SELECT, even a failing one, first leaves the current mailbox, and
        // says so with [CLOSED] (RFC 7162 §3.2.11) so the client knows where responses belong.
        if let State::Selected(..) = self.state {
            let State::Selected(user, _) = std::mem::replace(&mut self.state, State::Logout) else {
                unreachable!("matched above")
            };
            self.state = State::Authenticated(user);
            untagged(out, "OK [CLOSED] previous mailbox closed");
        }
        let Some(name) = self.mailbox_name(&tag, name, out) else {
            return Action::Continue;
        };
        let mailbox = match ctx.store.mailbox(self.user_id(), &name) {
            Ok(Some(m)) if !m.noselect => m,
            Ok(_) => {
                tagged(out, &tag, "NO", "[NONEXISTENT] no such mailbox");
                return Action::Continue;
            }
            Err(e) => {
                store_error(out, &tag, &e);
                return Action::Continue;
            }
        };
        if read_only {
            // EXAMINE leaves \Recent as it is (RFC 3501 §6.3.2).
            let first_recent = mailbox.first_recent_uid.max(1);
            return self.enter_selected(tag, mailbox, (true, first_recent), params.qresync, ctx, out);
        }
        self.pending = Pending::Write(WritePending::Select {
            tag,
            mailbox: Box::new(mailbox),
            qresync: params.qresync,
        });
        let Pending::Write(WritePending::Select { mailbox, .. }) = &self.pending else {
            unreachable!("just set")
        };
        Action::Write(WriteOp::TakeRecent { mailbox: mailbox.id })
    }

    /// The SELECT/EXAMINE responses (RFC 9051 §6.3.2, RFC 3501 §6.3.1).
    pub(crate) fn enter_selected(
        &mut self,
        tag: String,
        mailbox: Mailbox,
        (read_only, first_recent): (bool, u32),
        qresync: Option<Qresync>,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        // `mailbox` may have been read before a write this SELECT waited for (TakeRecent),
        // while this snapshot, which the view and the scan below read, may hold newer
        // messages: read it again here, so that EXISTS, UIDNEXT and HIGHESTMODSEQ agree.
        let mailbox = match ctx.store.mailbox_by_id(mailbox.id) {
            Ok(Some(m)) => m,
            Ok(None) => {
                tagged(out, &tag, "NO", "[NONEXISTENT] the mailbox was deleted");
                return Action::Continue;
            }
            Err(e) => {
                store_error(out, &tag, &e);
                return Action::Continue;
            }
        };
        // IMAP4rev2 has no \Recent: nothing is recent for such a session.
        let first_recent = if self.enabled().imap4rev2 {
            u32::MAX
        } else {
            first_recent
        };
        let view = match ctx.views.current(ctx.store, &mailbox) {
            Ok(v) => v,
            Err(e) => {
                store_error(out, &tag, &e);
                return Action::Continue;
            }
        };
        let (first_unseen, keywords) = match select_scan(ctx.store, mailbox.id, &view) {
            Ok(scan) => scan,
            Err(e) => {
                store_error(out, &tag, &e);
                return Action::Continue;
            }
        };
        let kw: String = keywords.iter().map(|k| format!(" {k}")).collect();
        untagged(
            out,
            &format!("FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft{kw})"),
        );
        let permanent = if read_only {
            String::new()
        } else {
            format!("\\Answered \\Flagged \\Deleted \\Seen \\Draft{kw} \\*")
        };
        untagged(out, &format!("OK [PERMANENTFLAGS ({permanent})] flags you can change"));
        untagged(out, &format!("{} EXISTS", view.len()));
        // RFC 9051 dropped RECENT and the UNSEEN response code.
        if !self.enabled().imap4rev2 {
            let recent = view.iter().filter(|u| *u >= first_recent).count();
            untagged(out, &format!("{recent} RECENT"));
            if let Some(n) = first_unseen {
                untagged(out, &format!("OK [UNSEEN {n}] first unseen message"));
            }
        }
        untagged(out, &format!("OK [UIDVALIDITY {}] UIDs valid", mailbox.uid_validity));
        untagged(out, &format!("OK [UIDNEXT {}] predicted next UID", mailbox.uid_next));
        untagged(out, &format!("OK [MAILBOXID ({})] object id", mailbox_id(mailbox.id)));
        if self.enabled().condstore {
            untagged(out, &format!("OK [HIGHESTMODSEQ {}] highest", mailbox.highest_modseq));
        }
        if let Some(q) = qresync.filter(|q| q.uid_validity == mailbox.uid_validity) {
            super::cmd_message::qresync_report(ctx.store, &mailbox, &view, &q, first_recent, out);
        }
        let (State::Authenticated(user) | State::Selected(user, _)) = std::mem::replace(&mut self.state, State::Logout)
        else {
            unreachable!("SELECT runs after login")
        };
        let command = if read_only { "EXAMINE" } else { "SELECT" };
        let access = if read_only { "READ-ONLY" } else { "READ-WRITE" };
        self.state = State::Selected(
            user,
            Selected {
                mailbox: mailbox.id,
                read_only,
                known_modseq: mailbox.highest_modseq.max(view.highest_modseq),
                view,
                first_recent,
                saved: Vec::new(),
            },
        );
        tagged(out, &tag, "OK", &format!("[{access}] {command} completed"));
        Action::Continue
    }

    /// LIST (RFC 9051 §6.3.9) with LIST-EXTENDED selection and return options (RFC 5258),
    /// SPECIAL-USE (RFC 6154) and LIST-STATUS (RFC 5819); LSUB (RFC 3501 §6.3.9).
    #[allow(clippy::too_many_arguments)] // one LIST command's parts
    fn list(
        &self,
        tag: &str,
        reference: &str,
        patterns: &[String],
        options: &ListOptions,
        lsub: bool,
        store: &dyn MailRead,
        out: &mut Vec<u8>,
    ) {
        let command = if lsub { "LSUB" } else { "LIST" };
        let decoded: Option<Vec<(String, String)>> = patterns
            .iter()
            .map(|p| Some((self.decode_name(reference).ok()?, self.decode_name(p).ok()?)))
            .collect();
        let Some(decoded) = decoded else {
            tagged(out, tag, "BAD", "invalid modified UTF-7 in reference or pattern");
            return;
        };
        if !lsub && decoded.iter().all(|(_, p)| p.is_empty()) {
            // RFC 9051 §6.3.9: an empty pattern asks for the separator and the root.
            untagged(out, "LIST (\\Noselect) \"/\" \"\"");
            tagged(out, tag, "OK", "LIST completed");
            return;
        }
        let mailboxes = match store.mailboxes(self.user_id()) {
            Ok(m) => m,
            Err(e) => return store_error(out, tag, &e),
        };
        let only_subscribed = lsub || options.subscribed;
        for m in &mailboxes {
            if !decoded.iter().any(|(r, p)| list_matches(r, p, &m.name)) {
                continue;
            }
            let child_prefix = format!("{}{SEPARATOR}", m.name);
            let subscribed_child = mailboxes
                .iter()
                .any(|c| c.subscribed && c.name.starts_with(&child_prefix));
            // RFC 5258 §3.5: RECURSIVEMATCH also lists parents of matching subscribed children.
            let via_child = options.recursive_match && subscribed_child;
            if only_subscribed && !m.subscribed && !via_child {
                continue;
            }
            if options.special_use && m.special_use.is_none() {
                continue;
            }
            let children = mailboxes.iter().any(|c| c.name.starts_with(&child_prefix));
            let mut attrs = vec![if children { "\\HasChildren" } else { "\\HasNoChildren" }];
            if m.noselect {
                attrs.push("\\Noselect");
            }
            if m.subscribed && (options.subscribed || options.return_subscribed) {
                attrs.push("\\Subscribed");
            }
            if let Some(a) = special_use_attr(m.special_use) {
                attrs.push(a);
            }
            let mut line = format!("* {command} ({}) \"/\" ", attrs.join(" ")).into_bytes();
            quote(&self.encode_name(&m.name), &mut line);
            if via_child && !lsub {
                line.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            out.extend_from_slice(&line);
            out.extend_from_slice(b"\r\n");
            if !options.return_status.is_empty() && !m.noselect {
                // RFC 5819 §2: STATUS follows its mailbox's LIST line.
                if let Err(e) = status_line(
                    store,
                    (m, &self.encode_name(&m.name)),
                    &options.return_status,
                    self.settings.append_limit,
                    out,
                ) {
                    return store_error(out, tag, &e);
                }
            }
        }
        tagged(out, tag, "OK", &format!("{command} completed"));
    }

    fn status(&self, tag: &str, name: &str, items: &[StatusItem], store: &dyn MailRead, out: &mut Vec<u8>) {
        let Ok(decoded) = self.decode_name(name) else {
            return tagged(out, tag, "BAD", "invalid modified UTF-7 mailbox name");
        };
        let mailbox = match store.mailbox(self.user_id(), canonical_mailbox_name(&decoded)) {
            Ok(Some(m)) if !m.noselect => m,
            Ok(_) => return tagged(out, tag, "NO", "[NONEXISTENT] no such mailbox"),
            Err(e) => return store_error(out, tag, &e),
        };
        match status_line(
            store,
            (&mailbox, &self.encode_name(&mailbox.name)),
            items,
            self.settings.append_limit,
            out,
        ) {
            Ok(()) => tagged(out, tag, "OK", "STATUS completed"),
            Err(e) => store_error(out, tag, &e),
        }
    }

    /// APPEND and MULTIAPPEND (RFC 3502): each message is parsed off the event loop, one after
    /// another, then all are stored in one transaction.
    fn append(
        &mut self,
        tag: String,
        name: &str,
        messages: Vec<AppendMessage>,
        store: &dyn MailRead,
        out: &mut Vec<u8>,
    ) -> Action {
        let Some(mailbox) = self.target_mailbox(&tag, name, store, out) else {
            return Action::Continue;
        };
        let mut waiting = Vec::with_capacity(messages.len());
        for message in messages.into_iter().rev() {
            match split_flags(&message.flags) {
                Ok((flags, keywords)) => waiting.push((message, flags, keywords)),
                Err(why) => {
                    tagged(out, &tag, "BAD", &why);
                    return Action::Continue;
                }
            }
        }
        let pending = AppendPending {
            tag,
            mailbox: mailbox.id,
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
                self.pending = Pending::Append(p);
                Action::Ingest(message.message)
            }
            None => {
                let op = WriteOp::Append {
                    mailbox: p.mailbox,
                    messages: std::mem::take(&mut p.ready),
                };
                self.pending = Pending::Append(p);
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
            // RFC 3516 §4.4: binary content the mailbox cannot store is refused so.
            Err(IngestError::Nul) if p.current_binary => {
                tagged(
                    out,
                    &p.tag,
                    "NO",
                    "[UNKNOWN-CTE] binary content with NUL octets is not stored",
                );
                return Action::Continue;
            }
            Err(e) => {
                tagged(out, &p.tag, "NO", &format!("[CANNOT] {e}"));
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

    pub(crate) fn finish_append(
        &mut self,
        p: AppendPending,
        result: Result<WriteOutcome, StoreError>,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        match result {
            Ok(WriteOutcome::Appended { uid_validity, uids }) => {
                self.sync(ctx, out, true);
                let mut set = Vec::new();
                super::search::sequence_set(&uids, &mut set);
                let set = String::from_utf8_lossy(&set);
                // RFC 4315 §3: APPENDUID.
                tagged(
                    out,
                    &p.tag,
                    "OK",
                    &format!("[APPENDUID {uid_validity} {set}] APPEND completed"),
                );
            }
            Ok(_) => tagged(out, &p.tag, "NO", "[SERVERBUG] unexpected store answer"),
            Err(e) => store_error(out, &p.tag, &e),
        }
        Action::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, name: &str) -> bool {
        list_matches("", pattern, name)
    }

    #[test]
    fn list_wildcards() {
        assert!(m("*", "Work/2026"));
        assert!(!m("%", "Work/2026"));
        assert!(m("%", "Work"));
        assert!(m("Work/%", "Work/2026"));
        assert!(m("inbox", "INBOX"));
        assert!(m("W*6", "Work/2026"));
        assert!(!m("Work", "Work/2026"));
        assert!(list_matches("Work/", "%", "Work/2026"));
    }

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
