//! CREATE's grammar, with USE (RFC 6154 §3).

use crate::imap::parse::lexer::{Cursor, Result, Syntax};
use crate::imap::types::Command;

/// create = "CREATE" SP mailbox [create-params]; create-param = "USE" SP "(" [use-attr
/// *(SP use-attr)] ")" (RFC 6154 §6); use-attr = "\" atom, as sent.
pub(crate) fn create(c: &mut Cursor) -> Result<Command> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    let mut special_use = None;
    if c.more() {
        for uses in c.list1(|c| {
            if !c.word().eq_ignore_ascii_case(b"USE") {
                return Err(Syntax("unknown CREATE parameter"));
            }
            c.sp()?;
            c.list0(use_attr)
        })? {
            if special_use.replace(uses).is_some() {
                return Err(Syntax("USE given twice"));
            }
        }
    }
    c.end()?;
    Ok(Command::Create {
        mailbox,
        special_use: special_use.unwrap_or_default(),
    })
}

fn use_attr(c: &mut Cursor) -> Result<String> {
    if c.peek() != Some(b'\\') {
        return Err(Syntax("invalid special-use attribute"));
    }
    c.flag()
}

/// RFC 9051 §6.3.6: "RENAME" SP mailbox SP mailbox.
pub(crate) fn rename(c: &mut Cursor) -> Result<Command> {
    c.sp()?;
    let from = c.mailbox()?;
    c.sp()?;
    let to = c.mailbox()?;
    c.end()?;
    Ok(Command::Rename { from, to })
}
