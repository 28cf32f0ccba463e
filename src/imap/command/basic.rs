//! The commands that are one line of the dispatch each, with no module of their own:
//! CAPABILITY, NOOP, LOGOUT (any state), NAMESPACE (one namespace, "" with "/"), CHECK (a
//! NOOP in Selected state), UNSELECT (leaves the mailbox without expunging) and the UID
//! prefix, whose forms are those of COPY, MOVE, FETCH, SEARCH, STORE, EXPUNGE, SORT, THREAD
//! and REPLACE.

use crate::imap::command::{Spec, States};
use crate::imap::parse;
use crate::imap::parse::lexer::{Cursor, Result, Syntax};
use crate::imap::types::Command;

/// The command table's rows (`command::COMMANDS`).
pub(crate) const CAPABILITY: Spec = Spec {
    name: "CAPABILITY",
    extension: None,
    states: States::Any,
    numbers: false,
    expunges: false,
    rfc: "RFC 9051 §6.1.1",
    parse: |c| parse::bare(c, Command::Capability),
};

pub(crate) const NOOP: Spec = Spec {
    name: "NOOP",
    extension: None,
    states: States::Any,
    numbers: false,
    expunges: true,
    rfc: "RFC 9051 §6.1.2",
    parse: |c| parse::bare(c, Command::Noop),
};

pub(crate) const LOGOUT: Spec = Spec {
    name: "LOGOUT",
    extension: None,
    states: States::Any,
    numbers: false,
    expunges: false,
    rfc: "RFC 9051 §6.1.3",
    parse: |c| parse::bare(c, Command::Logout),
};

pub(crate) const NAMESPACE: Spec = Spec {
    name: "NAMESPACE",
    extension: Some("NAMESPACE"),
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 9051 §6.3.10",
    parse: |c| parse::bare(c, Command::Namespace),
};

pub(crate) const CHECK: Spec = Spec {
    name: "CHECK",
    extension: None,
    states: States::Selected,
    numbers: false,
    expunges: true,
    rfc: "RFC 3501 §6.4.1",
    parse: |c| parse::bare(c, Command::Check),
};

pub(crate) const UNSELECT: Spec = Spec {
    name: "UNSELECT",
    extension: Some("UNSELECT"),
    states: States::Selected,
    numbers: false,
    expunges: false,
    rfc: "RFC 9051 §6.4.2",
    parse: |c| parse::bare(c, Command::Unselect),
};

pub(crate) const UID: Spec = Spec {
    name: "UID",
    extension: None,
    states: States::Selected,
    numbers: false,
    expunges: true,
    rfc: "RFC 9051 §6.4.9",
    parse: parse_uid,
};

/// RFC 9051 §6.4.9: "UID" SP (copy / move / fetch / search / store / uid-expunge), and RFC 5256
/// §3 UID SORT and UID THREAD.
pub(crate) fn parse_uid(c: &mut Cursor) -> Result<Command> {
    c.sp()?;
    let name = c.word().to_ascii_uppercase();
    match name.as_slice() {
        b"FETCH" => super::fetch::parse::fetch(c, true),
        b"STORE" => super::store::parse(c, true),
        b"SEARCH" => super::search::parse::search(c, true),
        b"COPY" => super::copy::parse_copy_or_move(c, true, false),
        b"MOVE" => super::copy::parse_copy_or_move(c, true, true),
        b"REPLACE" => super::append::parse::replace(c, true),
        // RFC 5256 §3.
        b"SORT" => super::sort::parse::sort(c, true),
        b"THREAD" => super::sort::parse::thread(c, true),
        // RFC 4315 §2.1 uid-expunge.
        b"EXPUNGE" => {
            c.sp()?;
            let set = c.sequence_set()?;
            c.end()?;
            Ok(Command::UidExpunge(set))
        }
        b"" => Err(Syntax("missing UID command")),
        _ => Err(Syntax("unknown UID command")),
    }
}
