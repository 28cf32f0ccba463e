//! GETMETADATA and SETMETADATA (RFC 5464 METADATA, with METADATA-SERVER): annotations on the
//! user's mailboxes and, under the mailbox name "", on the server. Clients keep push tokens,
//! colours and settings here. `/private/...` and `/shared/...` entries are both kept per user
//! (ringmail has no shared mailboxes), so they differ only in name.

pub(crate) mod parse;

use super::message::WritePending;
use crate::imap::command::{Spec, States};
use crate::imap::fault::ok;
use crate::imap::format;
use crate::imap::session::{store_error, Action, Conn, Ctx, Step, User};
use crate::imap::types::MetadataDepth;
use crate::store::records::MailboxId;
use crate::store::{StoreError, WriteOp};

/// The command table's rows (`command::COMMANDS`).
pub(crate) const GETMETADATA: Spec = Spec {
    name: "GETMETADATA",
    extension: None,
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 5464 §4.2",
    parse: parse::getmetadata,
};

pub(crate) const SETMETADATA: Spec = Spec {
    name: "SETMETADATA",
    extension: None,
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 5464 §4.3",
    parse: parse::setmetadata,
};

/// Whether `name` is one of `requested` or below it within `depth` (RFC 5464 §4.2.2).
fn wanted(name: &str, requested: &str, depth: MetadataDepth) -> bool {
    let (name, requested) = (name.to_ascii_lowercase(), requested.to_ascii_lowercase());
    if name == requested {
        return true;
    }
    let Some(rest) = name.strip_prefix(&requested).and_then(|r| r.strip_prefix('/')) else {
        return false;
    };
    match depth {
        MetadataDepth::Zero => false,
        MetadataDepth::One => !rest.contains('/'),
        MetadataDepth::Infinity => true,
    }
}

/// `/private` or `/shared` themselves: roots of the entry trees, never entries.
fn is_root(entry: &str) -> bool {
    entry.eq_ignore_ascii_case("/private") || entry.eq_ignore_ascii_case("/shared")
}

impl Conn {
    /// The mailbox a METADATA command names: "" is the server (id 0); `None` once answered.
    fn metadata_target(user: &User, tag: &str, name: &str, ctx: &Ctx<'_>, out: &mut Vec<u8>) -> Option<MailboxId> {
        if name.is_empty() {
            return Some(0);
        }
        let decoded = Conn::mailbox_name(user, tag, name, out)?;
        let found = ctx.store.mailbox(user.id, &decoded);
        match found.and_then(|m| m.ok_or(StoreError::NoSuchMailbox)) {
            Ok(m) => Some(m.id),
            Err(e) => {
                store_error(out, tag, e);
                None
            }
        }
    }

    /// GETMETADATA (RFC 5464 §4.2): the entries asked for that exist, and those below them
    /// within DEPTH; an entry asked for by name that does not exist comes back NIL. Values
    /// over MAXSIZE are left out and the largest of them is named in `[METADATA LONGENTRIES]`.
    pub(crate) fn get_metadata(
        &self,
        user: &User,
        tag: &str,
        (mailbox, entries): (&str, &[String]),
        (max_size, depth): (Option<u32>, MetadataDepth),
        ctx: &Ctx<'_>,
        out: &mut Vec<u8>,
    ) {
        let Some(id) = Self::metadata_target(user, tag, mailbox, ctx, out) else {
            return;
        };
        let stored = match ctx.store.metadata(user.id, id) {
            Ok(s) => s,
            Err(e) => return store_error(out, tag, e),
        };
        let mut items = Vec::new();
        let mut longest = 0usize;
        for requested in entries {
            let mut found = false;
            for (name, value) in stored.iter().filter(|(n, _)| wanted(n, requested, depth)) {
                found |= name.eq_ignore_ascii_case(requested);
                if max_size.is_some_and(|m| value.len() > m as usize) {
                    longest = longest.max(value.len());
                    continue;
                }
                if !items
                    .iter()
                    .any(|(n, _): &(&str, Option<&[u8]>)| n.eq_ignore_ascii_case(name))
                {
                    items.push((name.as_str(), Some(value.as_slice())));
                }
            }
            if !found && !is_root(requested) {
                items.push((requested.as_str(), None));
            }
        }
        if !items.is_empty() {
            out.extend_from_slice(b"* METADATA ");
            super::mailbox::quote(&user.encode_name(mailbox), out);
            out.extend_from_slice(b" (");
            for (i, (name, value)) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                format::astring(out, name.as_bytes());
                out.push(b' ');
                match value {
                    None => out.extend_from_slice(b"NIL"),
                    Some(v) if v.contains(&0) => {
                        format::literal_prefix(out, v.len(), true);
                        out.extend_from_slice(v);
                    }
                    Some(v) => format::string(out, v, false),
                }
            }
            out.extend_from_slice(b")\r\n");
        }
        if longest > 0 {
            ok(
                out,
                tag,
                &format!("[METADATA LONGENTRIES {longest}] GETMETADATA completed"),
            );
        } else {
            ok(out, tag, "GETMETADATA completed");
        }
    }

    /// SETMETADATA (RFC 5464 §4.3): all the entries or none; NIL removes one.
    pub(crate) fn set_metadata(
        &mut self,
        user: &User,
        tag: String,
        mailbox: &str,
        entries: Vec<(String, Option<Vec<u8>>)>,
        ctx: &Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        let Some(id) = Self::metadata_target(user, &tag, mailbox, ctx, out) else {
            return Action::Continue;
        };
        let user = user.id;
        self.step = Step::Write(Box::new(WritePending::Simple {
            tag,
            command: "SETMETADATA",
        }));
        Action::Write(WriteOp::SetMetadata {
            user,
            mailbox: id,
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_reaches_children_and_descendants() {
        use MetadataDepth::{Infinity, One, Zero};
        assert!(wanted("/private/comment", "/PRIVATE/Comment", Zero));
        assert!(!wanted("/private/a/b", "/private/a", Zero));
        assert!(wanted("/private/a/b", "/private/a", One));
        assert!(!wanted("/private/a/b/c", "/private/a", One));
        assert!(wanted("/private/a/b/c", "/private/a", Infinity));
        assert!(!wanted("/private/ab", "/private/a", Infinity));
        assert!(wanted("/shared/x", "/shared", One));
    }
}
