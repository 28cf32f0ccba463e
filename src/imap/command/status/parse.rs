//! STATUS's grammar (RFC 9051 §6.3.11).

use crate::imap::parse::lexer::{Cursor, Result, Syntax};
use crate::imap::types::{Command, StatusItem};

/// status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")".
pub(crate) fn status(c: &mut Cursor) -> Result<Command> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    c.sp()?;
    let items = c.list1(status_att)?;
    c.end()?;
    Ok(Command::Status { mailbox, items })
}

/// status-att (RFC 9051 §9, RECENT from RFC 3501, HIGHESTMODSEQ from RFC 7162).
pub(crate) fn status_att(c: &mut Cursor) -> Result<StatusItem> {
    let name = c.word().to_ascii_uppercase();
    Ok(match name.as_slice() {
        b"MESSAGES" => StatusItem::Messages,
        b"RECENT" => StatusItem::Recent,
        b"UIDNEXT" => StatusItem::UidNext,
        b"UIDVALIDITY" => StatusItem::UidValidity,
        b"UNSEEN" => StatusItem::Unseen,
        b"DELETED" => StatusItem::Deleted,
        b"SIZE" => StatusItem::Size,
        b"HIGHESTMODSEQ" => StatusItem::HighestModSeq,
        b"MAILBOXID" => StatusItem::MailboxId,
        b"APPENDLIMIT" => StatusItem::AppendLimit,
        _ => return Err(Syntax("unknown STATUS item")),
    })
}
