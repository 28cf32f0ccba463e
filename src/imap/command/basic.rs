//! The commands that are one line of the dispatch each, with no module of their own:
//! CAPABILITY, NOOP, LOGOUT (any state), NAMESPACE (one namespace, "" with "/"), CHECK (a
//! NOOP in Selected state), UNSELECT (leaves the mailbox without expunging) and the UID
//! prefix, whose forms are those of COPY, MOVE, FETCH, SEARCH, STORE, EXPUNGE, SORT, THREAD
//! and REPLACE.

use crate::imap::command::{Spec, States};
use crate::imap::parse;
use crate::imap::types::Command;

/// The command table's rows (`command::COMMANDS`).
pub(crate) const CAPABILITY: Spec = Spec {
    name: "CAPABILITY",
    states: States::Any,
    numbers: false,
    expunges: false,
    rfc: "RFC 9051 §6.1.1",
    parse: |c| parse::bare(c, Command::Capability),
};

pub(crate) const NOOP: Spec = Spec {
    name: "NOOP",
    states: States::Any,
    numbers: false,
    expunges: true,
    rfc: "RFC 9051 §6.1.2",
    parse: |c| parse::bare(c, Command::Noop),
};

pub(crate) const LOGOUT: Spec = Spec {
    name: "LOGOUT",
    states: States::Any,
    numbers: false,
    expunges: false,
    rfc: "RFC 9051 §6.1.3",
    parse: |c| parse::bare(c, Command::Logout),
};

pub(crate) const NAMESPACE: Spec = Spec {
    name: "NAMESPACE",
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 9051 §6.3.10",
    parse: |c| parse::bare(c, Command::Namespace),
};

pub(crate) const CHECK: Spec = Spec {
    name: "CHECK",
    states: States::Selected,
    numbers: false,
    expunges: true,
    rfc: "RFC 3501 §6.4.1",
    parse: |c| parse::bare(c, Command::Check),
};

pub(crate) const UNSELECT: Spec = Spec {
    name: "UNSELECT",
    states: States::Selected,
    numbers: false,
    expunges: false,
    rfc: "RFC 9051 §6.4.2",
    parse: |c| parse::bare(c, Command::Unselect),
};

pub(crate) const UID: Spec = Spec {
    name: "UID",
    states: States::Selected,
    numbers: false,
    expunges: true,
    rfc: "RFC 9051 §6.4.9",
    parse: parse::uid,
};
