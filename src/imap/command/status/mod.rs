//! STATUS (RFC 9051 §6.3.11): one mailbox's counts without selecting it; its line is LIST's
//! RETURN (STATUS) line too (RFC 5819).

pub(crate) mod parse;

use super::mailbox::{mailbox_id, quote};
use crate::imap::command::{Spec, States};
use crate::imap::fault::{ok, Code, Fault};
use crate::imap::session::{store_error, Conn, Ctx, User};
use crate::imap::types::StatusItem;
use crate::imap::view::MailRead;
use crate::store::recent::RecentClaims;
use crate::store::{canonical_mailbox_name, Mailbox, StoreError};

/// The command table's rows (`command::COMMANDS`).
pub(crate) const STATUS: Spec = Spec {
    name: "STATUS",
    extension: None,
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 9051 §6.3.11",
    parse: parse::status,
};

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
}

/// `* STATUS name (...)` for one mailbox (RFC 9051 §7.4.1).
pub(crate) fn status_line(
    (store, claims): (&dyn MailRead, &RecentClaims),
    (mailbox, name): (&Mailbox, &str),
    items: &[StatusItem],
    append_limit: u64,
    out: &mut Vec<u8>,
) -> Result<(), StoreError> {
    // Neither reads a message but the \Recent ones: the counts are the mailbox's own.
    let counts = store.flag_counts(mailbox)?;
    let (unseen, deleted) = (counts.unseen, counts.deleted);
    let mut recent = 0u32;
    if items.contains(&StatusItem::Recent) {
        // What no session has been told of yet (RFC 3501 §6.3.10 with §2.3.2).
        let first_recent = claims.first_unclaimed(mailbox.id, mailbox.first_recent_uid);
        store.each_message_from(mailbox.id, first_recent, &mut |_, _| {
            recent += 1;
            true
        })?;
    }
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
