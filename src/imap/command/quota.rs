//! QUOTA (RFC 9208): one quota root, "", per user, with the STORAGE resource when the account
//! has a quota (`ringmail user set --quota`). Limits are set by the administrator, so
//! SETQUOTA is not offered.

use crate::imap::command::{Spec, States};
use crate::imap::fault::{ok, Code, Fault};
use crate::imap::parse;
use crate::imap::session::{store_error, untagged, Conn, User};
use crate::imap::types::Command;
use crate::imap::view::MailRead;
use crate::store::{canonical_mailbox_name, StoreError};

/// The command table's rows (`command::COMMANDS`).
pub(crate) const GETQUOTA: Spec = Spec {
    name: "GETQUOTA",
    extension: Some("QUOTA"),
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 9208 §4.2",
    parse: |c| {
        c.sp()?;
        let root = c.astring()?;
        c.end()?;
        Ok(Command::GetQuota { root })
    },
};

pub(crate) const GETQUOTAROOT: Spec = Spec {
    name: "GETQUOTAROOT",
    extension: Some("QUOTA"),
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 9208 §4.3",
    parse: |c| parse::one_mailbox(c).map(|mailbox| Command::GetQuotaRoot { mailbox }),
};

impl Conn {
    /// GETQUOTA (root given) or GETQUOTAROOT (mailbox given).
    pub(crate) fn get_quota(
        &self,
        user: &User,
        tag: &str,
        root: Option<&str>,
        mailbox: Option<&str>,
        store: &dyn MailRead,
        out: &mut Vec<u8>,
    ) {
        if root.is_some_and(|r| !r.is_empty()) {
            return Fault::no(Code::Nonexistent, "no such quota root").write(tag, out);
        }
        if let Some(name) = mailbox {
            let Ok(decoded) = user.decode_name(name) else {
                return Fault::bad("invalid modified UTF-7 mailbox name").write(tag, out);
            };
            let mailbox = store.mailbox(user.id, canonical_mailbox_name(&decoded));
            if let Err(e) = mailbox.and_then(|m| m.ok_or(StoreError::NoSuchMailbox)) {
                return store_error(out, tag, e);
            }
            let mut line = b"* QUOTAROOT ".to_vec();
            super::mailbox::quote(&user.encode_name(&decoded), &mut line);
            line.extend_from_slice(b" \"\"\r\n");
            out.extend_from_slice(&line);
        }
        let (account, usage) = match (store.user(&user.name), store.usage(user.id)) {
            (Ok(Some(a)), Ok(u)) => (a, u),
            (Err(e), _) | (_, Err(e)) => return store_error(out, tag, e),
            (Ok(None), _) => return Fault::no(Code::Nonexistent, "account is gone").write(tag, out),
        };
        // RFC 9208 §5.1: STORAGE is counted in units of 1024 octets.
        let resources = match account.quota {
            Some(limit) => format!("STORAGE {} {}", usage.bytes.div_ceil(1024), limit / 1024),
            None => String::new(),
        };
        untagged(out, &format!("QUOTA \"\" ({resources})"));
        let command = if mailbox.is_some() { "GETQUOTAROOT" } else { "GETQUOTA" };
        ok(out, tag, &format!("{command} completed"));
    }
}
