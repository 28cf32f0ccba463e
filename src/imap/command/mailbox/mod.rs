//! CREATE (with RFC 6154 USE), DELETE, RENAME, SUBSCRIBE and UNSUBSCRIBE, and how mailbox
//! names are read from and written to clients (SELECT, STATUS, APPEND, LIST each have their
//! own module).
//!
//! Names are UTF-8 in the store and modified UTF-7 on the wire (RFC 3501 §5.1.3).

pub(crate) mod parse;

use super::message::WritePending;
use crate::imap::command::{Spec, States};
use crate::imap::fault::{Code, Fault};
use crate::imap::session::{store_error, Action, Conn, Step, User};
use crate::imap::types::Command;
use crate::imap::view::MailRead;
use crate::store::records::{MailboxId, SpecialUse};
use crate::store::{canonical_mailbox_name, Mailbox, WriteOp, SEPARATOR};

/// The command table's rows (`command::COMMANDS`).
pub(crate) const CREATE: Spec = Spec {
    name: "CREATE",
    extension: None,
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 9051 §6.3.4",
    parse: parse::create,
};

pub(crate) const DELETE: Spec = Spec {
    name: "DELETE",
    extension: None,
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 9051 §6.3.5",
    parse: |c| crate::imap::parse::one_mailbox(c).map(|mailbox| Command::Delete { mailbox }),
};

pub(crate) const RENAME: Spec = Spec {
    name: "RENAME",
    extension: None,
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 9051 §6.3.6",
    parse: parse::rename,
};

pub(crate) const SUBSCRIBE: Spec = Spec {
    name: "SUBSCRIBE",
    extension: None,
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 9051 §6.3.7",
    parse: |c| crate::imap::parse::one_mailbox(c).map(|mailbox| Command::Subscribe { mailbox }),
};

pub(crate) const UNSUBSCRIBE: Spec = Spec {
    name: "UNSUBSCRIBE",
    extension: None,
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 9051 §6.3.8",
    parse: |c| crate::imap::parse::one_mailbox(c).map(|mailbox| Command::Unsubscribe { mailbox }),
};

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
        self.step = Step::Write(Box::new(WritePending::Simple { tag, command }));
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
