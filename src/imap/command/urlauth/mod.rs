//! RESETKEY, GENURLAUTH and URLFETCH (RFC 4467 §6): the session's side of URLAUTH. What a URL
//! must be, how its token is made and who may use it are `urlauth`'s; the keys are made and
//! reset by the store's writer, so GENURLAUTH of a mailbox without a key yet is a write.

pub(crate) mod parse;

use super::message::WritePending;
use crate::imap::command::{Spec, States};
use crate::imap::fault::{ok, Fault};
use crate::imap::format;
use crate::imap::session::{store_error, Action, Conn, Ctx, Step, User};
use crate::imap::urlauth::{self, AuthUrl, Refusal, Requester, INTERNAL};
use crate::store::records::MailboxId;
use crate::store::urlauth::AccessKey;
use crate::store::{StoreError, WriteOp, WriteOutcome};

/// The command table's rows (`command::COMMANDS`).
pub(crate) const RESETKEY: Spec = Spec {
    name: "RESETKEY",
    extension: Some("URLAUTH"),
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 4467 §6.1",
    parse: parse::resetkey,
};

pub(crate) const GENURLAUTH: Spec = Spec {
    name: "GENURLAUTH",
    extension: Some("URLAUTH"),
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 4467 §6.2",
    parse: parse::genurlauth,
};

pub(crate) const URLFETCH: Spec = Spec {
    name: "URLFETCH",
    extension: Some("URLAUTH"),
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 4467 §6.3",
    parse: parse::urlfetch,
};

/// A GENURLAUTH waiting for the writer to make the access keys its URLs need.
pub(crate) struct GenPending {
    tag: String,
    /// Each rump URL, in the client's order, with its mailbox.
    rumps: Vec<(String, MailboxId)>,
}

impl Conn {
    /// RFC 4467 §6.1: a new key for one mailbox (`OK [URLMECH INTERNAL]`, the mechanisms it
    /// can be used with), or none left for any; either revokes every URL authorized before.
    pub(crate) fn reset_key(
        &mut self,
        user: &User,
        tag: String,
        mailbox: Option<&str>,
        mechanisms: &[String],
        ctx: &Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        if let Some(other) = mechanisms.iter().find(|m| *m != INTERNAL) {
            Fault::no_code(format!("unsupported URLAUTH mechanism {other}")).write(&tag, out);
            return Action::Continue;
        }
        let mailbox = match mailbox {
            None => None,
            Some(name) => {
                let Some(name) = Conn::mailbox_name(user, &tag, name, out) else {
                    return Action::Continue;
                };
                let found = ctx.store.mailbox(user.id, &name);
                match found.and_then(|m| m.ok_or(StoreError::NoSuchMailbox)) {
                    Ok(m) => Some(m.id),
                    Err(e) => {
                        store_error(out, &tag, e);
                        return Action::Continue;
                    }
                }
            }
        };
        let command = if mailbox.is_some() {
            "[URLMECH INTERNAL] RESETKEY"
        } else {
            "RESETKEY"
        };
        self.step = Step::Write(Box::new(WritePending::Simple { tag, command }));
        Action::Write(WriteOp::ResetUrlauthKeys { user: user.id, mailbox })
    }

    /// RFC 4467 §6.2: every rump URL authorized, or none. A URL that is not one is `BAD`; one
    /// this user may not authorize (another's mailbox, `anonymous`, expired, a mechanism other
    /// than INTERNAL, no such mailbox) is `NO`.
    pub(crate) fn gen_urlauth(
        &mut self,
        user: &User,
        tag: String,
        pairs: &[(String, String)],
        ctx: &Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        let (name, user) = (&*user.name, user.id);
        let mut rumps = Vec::with_capacity(pairs.len());
        for (text, mechanism) in pairs {
            let url = match AuthUrl::parse(text) {
                Ok(url) => url,
                Err(why) => {
                    Fault::bad(format!("invalid URL: {why}")).write(&tag, out);
                    return Action::Continue;
                }
            };
            let refusal = if mechanism != INTERNAL {
                Some("unsupported URLAUTH mechanism (INTERNAL is offered)")
            } else {
                url.check_rump(name, ctx.now).err()
            };
            if let Some(why) = refusal {
                Fault::no_code(why).write(&tag, out);
                return Action::Continue;
            }
            let found = ctx.store.mailbox(user, &url.mailbox);
            match found.and_then(|m| m.ok_or(StoreError::NoSuchMailbox)) {
                Ok(m) => rumps.push((url.rump.to_owned(), m.id)),
                Err(e) => {
                    store_error(out, &tag, e);
                    return Action::Continue;
                }
            }
        }
        let mut keys = Vec::with_capacity(rumps.len());
        for (_, mailbox) in &rumps {
            match ctx.store.urlauth_key(user, *mailbox) {
                Ok(Some(key)) => keys.push(key),
                Ok(None) => break,
                Err(e) => {
                    store_error(out, &tag, e);
                    return Action::Continue;
                }
            }
        }
        if keys.len() == rumps.len() {
            authorized(&tag, &rumps, &keys, out);
            return Action::Continue;
        }
        let mailboxes = rumps.iter().map(|(_, m)| *m).collect();
        self.step = Step::GenUrlauth(Box::new(GenPending { tag, rumps }));
        Action::Write(WriteOp::UrlauthKeys { user, mailboxes })
    }

    /// The writer made (or found) the keys a GENURLAUTH needs.
    pub(crate) fn finish_gen_urlauth(
        &mut self,
        pending: GenPending,
        result: Result<WriteOutcome, StoreError>,
        out: &mut Vec<u8>,
    ) -> Action {
        match result {
            Ok(WriteOutcome::UrlauthKeys(keys)) if keys.len() == pending.rumps.len() => {
                authorized(&pending.tag, &pending.rumps, &keys, out);
            }
            Ok(other) => {
                tracing::error!("GENURLAUTH: the writer answered {other:?}");
                store_error(out, &pending.tag, StoreError::Corrupt("urlauth_keys"));
            }
            Err(e) => store_error(out, &pending.tag, e),
        }
        Action::Continue
    }

    /// RFC 4467 §6.3: each URL with its data, or NIL when it gives none — whatever the reason,
    /// so a client learns nothing about mailboxes it may not read. Only a store failure fails
    /// the command.
    pub(crate) fn url_fetch(&self, user: &User, tag: &str, urls: &[String], ctx: &Ctx<'_>, out: &mut Vec<u8>) {
        let who = Requester::Imap(&user.name);
        // A store failure takes back the untagged line written so far.
        let start = out.len();
        out.extend_from_slice(b"* URLFETCH");
        for url in urls {
            out.push(b' ');
            format::string(out, url.as_bytes(), false);
            out.push(b' ');
            match urlauth::fetch(ctx.store, url, who, ctx.now) {
                Ok(data) if data.is_empty() => out.extend_from_slice(b"\"\""),
                Ok(data) => {
                    format::literal_prefix(out, data.len(), false);
                    out.extend_from_slice(&data);
                }
                Err(Refusal::Store(e)) => {
                    out.truncate(start);
                    return store_error(out, tag, e);
                }
                Err(refusal) => {
                    // Not the URL: its token is a credential.
                    tracing::debug!("URLFETCH: {}", refusal.reason());
                    out.extend_from_slice(b"NIL");
                }
            }
        }
        out.extend_from_slice(b"\r\n");
        ok(out, tag, "URLFETCH completed");
    }
}

/// `* GENURLAUTH url...` and the tagged OK: each rump with the mechanism and its token.
fn authorized(tag: &str, rumps: &[(String, MailboxId)], keys: &[AccessKey], out: &mut Vec<u8>) {
    out.extend_from_slice(b"* GENURLAUTH");
    for ((rump, _), key) in rumps.iter().zip(keys) {
        out.push(b' ');
        format::string(out, urlauth::authorize(rump, key).as_bytes(), false);
    }
    out.extend_from_slice(b"\r\n");
    ok(out, tag, "GENURLAUTH completed");
}
