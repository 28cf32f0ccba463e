//! NOTIFY (RFC 5465 §8):
//!
//! ```text
//! notify          = "NOTIFY" SP (notify-set / "NONE")
//! notify-set      = "SET" [SP "STATUS"] SP event-group *(SP event-group)
//! event-group     = "(" filter-mailboxes SP events ")"
//! filter-mailboxes = "selected" / "selected-delayed" / "inboxes" / "personal" / "subscribed"
//!                  / ("subtree" SP one-or-more-mailbox) / ("mailboxes" SP one-or-more-mailbox)
//! events          = ("(" event *(SP event) ")") / "NONE"
//! ```
//!
//! The §5 rules on which events go together are the session's to check (they are answered
//! `NO [BADEVENT]`-free `BAD` here only where the grammar itself is broken).

use crate::imap::parse::fetch;
use crate::imap::parse::lexer::{Cursor, Result, Syntax};
use crate::imap::types::{Command, NotifyEvent, NotifyFilter, NotifyGroup};

pub(crate) fn notify(c: &mut Cursor) -> Result<Command> {
    c.sp()?;
    let verb = c.word().to_ascii_uppercase();
    match verb.as_slice() {
        b"NONE" => {
            c.end()?;
            Ok(Command::Notify(None))
        }
        b"SET" => {
            c.sp()?;
            let status = c.next_word_is("STATUS");
            if status {
                c.word();
                c.sp()?;
            }
            let mut groups = vec![group(c)?];
            while c.more() {
                groups.push(group(c)?);
            }
            c.end()?;
            Ok(Command::Notify(Some((status, groups))))
        }
        _ => Err(Syntax("NOTIFY SET or NOTIFY NONE")),
    }
}

/// one-or-more-mailbox = mailbox / "(" mailbox *(SP mailbox) ")"
fn mailboxes(c: &mut Cursor) -> Result<Vec<String>> {
    if c.peek() == Some(b'(') {
        c.list1(Cursor::mailbox)
    } else {
        Ok(vec![c.mailbox()?])
    }
}

fn group(c: &mut Cursor) -> Result<NotifyGroup> {
    c.expect(b'(', "expected an event group")?;
    let filter = match c.word().to_ascii_uppercase().as_slice() {
        b"SELECTED" => NotifyFilter::Selected,
        b"SELECTED-DELAYED" => NotifyFilter::SelectedDelayed,
        b"INBOXES" => NotifyFilter::Inboxes,
        b"PERSONAL" => NotifyFilter::Personal,
        b"SUBSCRIBED" => NotifyFilter::Subscribed,
        b"SUBTREE" => {
            c.sp()?;
            NotifyFilter::Subtree(mailboxes(c)?)
        }
        b"MAILBOXES" => {
            c.sp()?;
            NotifyFilter::Mailboxes(mailboxes(c)?)
        }
        _ => return Err(Syntax("unknown NOTIFY mailbox filter")),
    };
    c.sp()?;
    let events = if c.peek() == Some(b'(') {
        c.list1(event)?
    } else if c.word().eq_ignore_ascii_case(b"NONE") {
        Vec::new()
    } else {
        return Err(Syntax("expected a list of events or NONE"));
    };
    c.expect(b')', "expected ) after the events")?;
    Ok(NotifyGroup { filter, events })
}

fn event(c: &mut Cursor) -> Result<NotifyEvent> {
    let name = c.word().to_ascii_uppercase();
    Ok(match name.as_slice() {
        b"MESSAGENEW" => {
            // MessageNew [SP "(" fetch-att *(SP fetch-att) ")"]
            let attrs = if c.peek() == Some(b' ') && c.peek_at(1) == Some(b'(') {
                c.sp()?;
                c.list1(fetch::fetch_att)?
            } else {
                Vec::new()
            };
            NotifyEvent::MessageNew(attrs)
        }
        b"MESSAGEEXPUNGE" => NotifyEvent::MessageExpunge,
        b"FLAGCHANGE" => NotifyEvent::FlagChange,
        b"ANNOTATIONCHANGE" => NotifyEvent::AnnotationChange,
        b"MAILBOXNAME" => NotifyEvent::MailboxName,
        b"SUBSCRIPTIONCHANGE" => NotifyEvent::SubscriptionChange,
        b"MAILBOXMETADATACHANGE" => NotifyEvent::MailboxMetadataChange,
        b"SERVERMETADATACHANGE" => NotifyEvent::ServerMetadataChange,
        _ => return Err(Syntax("unknown NOTIFY event")),
    })
}
