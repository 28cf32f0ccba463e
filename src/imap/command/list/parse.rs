//! LIST's grammar, LIST-EXTENDED (RFC 5258) with LIST-STATUS (RFC 5819), and LSUB's.

use crate::imap::parse::lexer::{Cursor, Result, Syntax};
use crate::imap::types::{Command, ListOptions, StatusItem};

/// list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]
/// (RFC 5258 §6). The reference is returned as sent (it is a prefix, not a mailbox to open).
pub(crate) fn list(c: &mut Cursor) -> Result<Command> {
    c.sp()?;
    let mut options = ListOptions::default();
    if c.peek() == Some(b'(') {
        for option in c.list0(|c| Ok(c.word().to_ascii_uppercase()))? {
            let flag = match option.as_slice() {
                b"SUBSCRIBED" => &mut options.subscribed,
                b"REMOTE" => &mut options.remote,
                b"RECURSIVEMATCH" => &mut options.recursive_match,
                // RFC 6154 §6.
                b"SPECIAL-USE" => &mut options.special_use,
                _ => return Err(Syntax("unknown LIST selection option")),
            };
            *flag = true;
        }
        // RFC 5258 §3.1: RECURSIVEMATCH needs another option it modifies; else BAD.
        if options.recursive_match && !options.subscribed && !options.special_use {
            return Err(Syntax("RECURSIVEMATCH needs a selection option to modify"));
        }
        c.sp()?;
    }
    let reference = c.astring()?;
    c.sp()?;
    // mbox-or-pat = list-mailbox / patterns; patterns = "(" list-mailbox *(SP list-mailbox) ")".
    let patterns = if c.peek() == Some(b'(') {
        c.list1(Cursor::list_mailbox)?
    } else {
        vec![c.list_mailbox()?]
    };
    if c.more() {
        if !c.word().eq_ignore_ascii_case(b"RETURN") {
            return Err(Syntax("expected RETURN"));
        }
        c.sp()?;
        for option in c.list0(return_option)? {
            match option {
                ReturnOption::Subscribed => options.return_subscribed = true,
                ReturnOption::Children => options.return_children = true,
                ReturnOption::SpecialUse => options.return_special_use = true,
                ReturnOption::Status(items) => options.return_status = items,
            }
        }
    }
    c.end()?;
    Ok(Command::List {
        reference,
        patterns,
        options,
    })
}

enum ReturnOption {
    Subscribed,
    Children,
    SpecialUse,
    Status(Vec<StatusItem>),
}

/// return-option = "SUBSCRIBED" / "CHILDREN" / "SPECIAL-USE" (RFC 6154) / "STATUS" SP "("
/// status-att *(SP status-att) ")" (RFC 5819).
fn return_option(c: &mut Cursor) -> Result<ReturnOption> {
    let name = c.word().to_ascii_uppercase();
    Ok(match name.as_slice() {
        b"SUBSCRIBED" => ReturnOption::Subscribed,
        b"CHILDREN" => ReturnOption::Children,
        b"SPECIAL-USE" => ReturnOption::SpecialUse,
        b"STATUS" => {
            c.sp()?;
            ReturnOption::Status(c.list1(crate::imap::command::status::parse::status_att)?)
        }
        _ => return Err(Syntax("unknown LIST return option")),
    })
}

/// lsub = "LSUB" SP mailbox SP list-mailbox (RFC 3501 §6.3.9).
pub(crate) fn lsub(c: &mut Cursor) -> Result<Command> {
    c.sp()?;
    let reference = c.astring()?;
    c.sp()?;
    let pattern = c.list_mailbox()?;
    c.end()?;
    Ok(Command::Lsub { reference, pattern })
}
