//! The CAPABILITY string, derived from what is implemented: the command table's rows name
//! the extensions of their commands.
//!
//! A capability is listed only when every command and response it implies works (RFC 9051 §7.2.2).

use crate::auth::sasl::Mechanism;

/// Capabilities offered after login, besides IMAP4rev1 and those of the commands in the
/// command table (`Spec::extension`: ID, ENABLE, IDLE, NAMESPACE, UNSELECT, MOVE, QUOTA,
/// COMPRESS=DEFLATE, UNAUTHENTICATE (RFC 8437 §2: no SASL mechanism offered here negotiates a
/// security layer, so it is always available after login), REPLACE, NOTIFY,
/// URLAUTH (RFC 4467, mechanism INTERNAL; BURL in submission uses the same URLs), SORT).
const AUTHENTICATED: &[&str] = &[
    "LITERAL+",
    "SASL-IR",
    "UIDPLUS",
    "CHILDREN",
    "SPECIAL-USE",
    "QUOTA=RES-STORAGE",
    "CONDSTORE",
    "QRESYNC",
    "ESEARCH",
    "SEARCHRES",
    "WITHIN",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "CREATE-SPECIAL-USE",
    "STATUS=SIZE",
    "PREVIEW",
    "MULTIAPPEND",
    // RFC 4469: APPEND (and REPLACE) data put together from TEXT and URLs of the user's mail.
    "CATENATE",
    "OBJECTID",
    "SAVEDATE",
    "BINARY",
    "UTF8=ACCEPT",
    // RFC 5464: mailbox annotations and, under the name "", the server's.
    "METADATA",
    "METADATA-SERVER",
    "UIDONLY",
    "PARTIAL",
];

/// The CAPABILITY response body (without "* CAPABILITY").
pub fn capabilities(
    authenticated: bool,
    tls: bool,
    starttls_offered: bool,
    (sasl, plain_login, oauth): (bool, bool, bool),
    (append_limit, message_limit): (u64, super::limit::MessageLimit),
) -> String {
    // IMAP4rev2 (RFC 9051) is offered beside IMAP4rev1; a client turns it on with ENABLE.
    let mut caps = vec!["IMAP4rev1", "IMAP4rev2"];
    if authenticated {
        caps.extend(after_login());
        // RFC 7889 §3: one limit for every mailbox.
        let mut out = format!("{} APPENDLIMIT={append_limit}", caps.join(" "));
        if let Some(limit) = message_limit.capability() {
            out.push(' ');
            out.push_str(&limit);
        }
        return out;
    }
    // RFC 7888 §5: before login, non-synchronizing literals up to 4096 octets only (LITERAL-);
    // LITERAL+ after. One of the two at a time: both would contradict each other.
    caps.extend_from_slice(&["LITERAL-", "SASL-IR", "ID", "ENABLE", "IDLE"]);
    if starttls_offered && !tls {
        caps.push("STARTTLS");
    }
    if !plain_login {
        // RFC 9051 §6.2.3: LOGIN is refused here, say so up front.
        caps.push("LOGINDISABLED");
    }
    let mut out = caps.join(" ");
    if sasl {
        for m in Mechanism::offered(oauth) {
            out.push_str(" AUTH=");
            out.push_str(m.name());
        }
    }
    out
}

/// Whether `name` (upper case) is an extension offered after login that one user may be
/// denied (`ringmail user set --imap-disable`); IMAP4rev1 itself and the login mechanisms
/// are not.
pub fn can_disable(name: &str) -> bool {
    name == "IMAP4REV2"
        || name == "APPENDLIMIT"
        || name == "MESSAGELIMIT"
        || name == "SAVELIMIT"
        || after_login().any(|c| c.eq_ignore_ascii_case(name))
}

/// The extensions offered after login, each once: those of the responses and modifiers,
/// then those of the commands in the table, then SORT's and CONTEXT's.
fn after_login() -> impl Iterator<Item = &'static str> {
    let commands = super::command::COMMANDS.iter().filter_map(|s| s.extension);
    let all = AUTHENTICATED
        .iter()
        .copied()
        .chain(commands)
        .chain(super::sort::SORT_CAPABILITIES.iter().copied())
        .chain(super::context::CONTEXT_CAPABILITIES.iter().copied());
    let mut seen: Vec<&'static str> = Vec::new();
    all.filter(move |c| {
        let new = !seen.contains(c);
        if new {
            seen.push(c);
        }
        new
    })
}
