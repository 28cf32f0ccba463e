//! CATENATE (RFC 4469): an APPEND whose message is put together from TEXT literals and IMAP
//! URLs (RFC 5092) naming messages, or parts of them, in the user's own mailboxes.
//!
//! Owns: turning each CATENATE list into the message it makes: URLs resolved against the store
//! (one that starts at `;UID=` against the selected mailbox), their sections copied raw, as FETCH
//! BODY.PEEK[section] sends them (§5: a part whose content would need decoding is copied as
//! it is), the APPENDLIMIT check on the result, and the `[BADURL]` and `[TOOBIG]` refusals
//! (§5). The message then takes APPEND's path unchanged, so a CATENATE inside a MULTIAPPEND or
//! a REPLACE (RFC 8508 §4.4) is one message like the others, and nothing is stored unless
//! every one of them resolves. Never: reads another user's mail or names another server's (the
//! host of an absolute URL is not compared with ours: behind a proxy the client knows this
//! server by the proxy's name), or sets `\Seen` on a source message. A URL carrying
//! `;URLAUTH=` is taken as URLFETCH takes it (RFC 4469 §5, `urlauth::fetch`): it must verify
//! and admit this user.

use crate::imap::fault::{Code, Fault};
use crate::imap::session::{store_error, Conn, Selected, User};
use crate::imap::types::{AppendMessage, CatPart, Section, SectionText};
use crate::imap::url::{ImapUrl, UrlPartial};
use crate::imap::urlauth::Requester;
use crate::imap::view::{section_of, MailRead};
use crate::store::{canonical_mailbox_name, StoreError};

/// Why a CATENATE message could not be made.
enum Refusal {
    /// RFC 4469 §5: this URL cannot be resolved, and why.
    BadUrl(String, &'static str),
    /// RFC 4469 §5: the message would exceed APPENDLIMIT.
    TooBig,
    Store(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Refusal {
        Refusal::Store(e)
    }
}

/// Who puts a message together: the user, and the mailbox relative URLs start from.
type Base<'a> = (&'a User, Option<&'a Selected>);

impl Conn {
    /// Replaces every CATENATE message's parts with the message they make; `false` once the
    /// client has been told why that cannot be done.
    pub(crate) fn catenate(
        &self,
        base: Base<'_>,
        tag: &str,
        messages: &mut [AppendMessage],
        (store, now): (&dyn MailRead, i64),
        out: &mut Vec<u8>,
    ) -> bool {
        for message in messages {
            let Some(parts) = message.catenate.take() else {
                continue;
            };
            match self.assemble(base, &parts, (store, now)) {
                Ok(bytes) => message.message = bytes,
                Err(Refusal::BadUrl(url, why)) => {
                    Fault::no(Code::BadUrl(resp_text_url(&url)), why.to_string()).write(tag, out);
                    return false;
                }
                Err(Refusal::TooBig) => {
                    let limit = self.settings.append_limit;
                    Fault::no(Code::TooBig, format!("message larger than {limit} octets")).write(tag, out);
                    return false;
                }
                Err(Refusal::Store(e)) => {
                    store_error(out, tag, e);
                    return false;
                }
            }
        }
        true
    }

    /// The parts in order, checked against APPENDLIMIT after each one so no more than one
    /// source part's worth is ever held beyond the limit.
    fn assemble(
        &self,
        base: Base<'_>,
        parts: &[CatPart],
        (store, now): (&dyn MailRead, i64),
    ) -> Result<Vec<u8>, Refusal> {
        let mut message = Vec::new();
        for part in parts {
            match part {
                CatPart::Text(data) => message.extend_from_slice(data),
                CatPart::Url(url) => url_part(base, url, (store, now), &mut message)?,
            }
            if message.len() as u64 > self.settings.append_limit {
                return Err(Refusal::TooBig);
            }
        }
        Ok(message)
    }
}

/// Appends what `url` names to `out` (RFC 4469 §3: the URL must name a message or a part
/// of one the user can read).
fn url_part(
    (user, selected): Base<'_>,
    url: &str,
    (store, now): (&dyn MailRead, i64),
    out: &mut Vec<u8>,
) -> Result<(), Refusal> {
    let bad = |why: &'static str| Refusal::BadUrl(url.to_owned(), why);
    let parsed = ImapUrl::parse(url).map_err(|e| bad(e.0))?;
    let (user_id, user_name, selected) = (user.id, &*user.name, selected.map(|s| s.mailbox));
    if parsed.urlauth.is_some() {
        // RFC 4469 §5: an authorized URL is resolved as URLFETCH resolves it, so a URL
        // another user authorized for this one may be used.
        return match crate::imap::urlauth::fetch(store, url, Requester::Imap(user_name), now) {
            Ok(bytes) => {
                out.extend_from_slice(&bytes);
                Ok(())
            }
            Err(crate::imap::urlauth::Refusal::Store(e)) => Err(Refusal::Store(e)),
            Err(refusal) => Err(bad(refusal.reason())),
        };
    }
    if let Some(server) = &parsed.server {
        // RFC 5092 §3.2: no user is anonymous access, which is somebody else too.
        if server.user.as_deref() != Some(user_name) {
            return Err(bad("URL names another user"));
        }
    }
    let part = parsed.message_part().map_err(|e| bad(e.0))?;
    let mailbox = match part.mailbox {
        Some(name) => store.mailbox(user_id, canonical_mailbox_name(name))?,
        // RFC 4469 §5 with RFC 5092 §7.1: the selected mailbox is the base.
        None => match selected {
            Some(id) => store.mailbox_by_id(id)?,
            None => return Err(bad("relative URL without a selected mailbox")),
        },
    };
    let mailbox = mailbox.filter(|m| !m.noselect).ok_or_else(|| bad("no such mailbox"))?;
    let section = match part.section {
        Some(text) => crate::imap::parse::section_spec(text).ok_or_else(|| bad("invalid section"))?,
        None => Section {
            part: Vec::new(),
            text: SectionText::Full,
        },
    };
    let window = part.partial.map(UrlPartial::window);
    match section_of(store, &mailbox, (part.uid_validity, part.uid), (&section, window))? {
        Ok(bytes) => {
            out.extend_from_slice(&bytes);
            Ok(())
        }
        Err(missing) => Err(bad(missing.reason())),
    }
}

/// The URL as RFC 4469 §6 `url-resp-text` allows it inside `[BADURL ...]`: any TEXT-CHAR but
/// `]`; what is not one is %-escaped, so the client can still tell which URL it was.
fn resp_text_url(url: &str) -> String {
    let mut shown = String::with_capacity(url.len());
    for c in url.chars() {
        if c == ']' || c.is_control() {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                shown.push_str(&format!("%{b:02X}"));
            }
        } else {
            shown.push(c);
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_response_codes() {
        assert_eq!(resp_text_url("/INBOX/;UID=1"), "/INBOX/;UID=1");
        assert_eq!(resp_text_url("/a]b\r\n/;UID=1"), "/a%5Db%0D%0A/;UID=1");
        assert_eq!(resp_text_url("/Entwürfe/;UID=1"), "/Entwürfe/;UID=1");
    }
}
