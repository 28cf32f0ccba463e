//! The command table and the CAPABILITY string, both derived from what is implemented.
//!
//! A capability is listed only when every command and response it implies works (RFC 9051 §7.2.2).

use crate::auth::sasl::Mechanism;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum States {
    /// Any state.
    Any,
    NotAuthenticated,
    /// Authenticated or Selected.
    Authenticated,
    Selected,
}

/// One row per command: where it is valid, and where it is specified.
pub struct Spec {
    pub name: &'static str,
    pub states: States,
    pub rfc: &'static str,
}

#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    Spec { name: "CAPABILITY", states: States::Any, rfc: "RFC 9051 §6.1.1" },
    Spec { name: "NOOP", states: States::Any, rfc: "RFC 9051 §6.1.2" },
    Spec { name: "LOGOUT", states: States::Any, rfc: "RFC 9051 §6.1.3" },
    Spec { name: "ID", states: States::Any, rfc: "RFC 2971" },
    Spec { name: "STARTTLS", states: States::NotAuthenticated, rfc: "RFC 9051 §6.2.1" },
    Spec { name: "AUTHENTICATE", states: States::NotAuthenticated, rfc: "RFC 9051 §6.2.2" },
    Spec { name: "LOGIN", states: States::NotAuthenticated, rfc: "RFC 9051 §6.2.3" },
    Spec { name: "UNAUTHENTICATE", states: States::Authenticated, rfc: "RFC 8437 §3" },
    Spec { name: "ENABLE", states: States::Authenticated, rfc: "RFC 5161" },
    Spec { name: "SELECT", states: States::Authenticated, rfc: "RFC 9051 §6.3.2" },
    Spec { name: "EXAMINE", states: States::Authenticated, rfc: "RFC 9051 §6.3.3" },
    Spec { name: "CREATE", states: States::Authenticated, rfc: "RFC 9051 §6.3.4" },
    Spec { name: "DELETE", states: States::Authenticated, rfc: "RFC 9051 §6.3.5" },
    Spec { name: "RENAME", states: States::Authenticated, rfc: "RFC 9051 §6.3.6" },
    Spec { name: "SUBSCRIBE", states: States::Authenticated, rfc: "RFC 9051 §6.3.7" },
    Spec { name: "UNSUBSCRIBE", states: States::Authenticated, rfc: "RFC 9051 §6.3.8" },
    Spec { name: "LIST", states: States::Authenticated, rfc: "RFC 9051 §6.3.9" },
    Spec { name: "LSUB", states: States::Authenticated, rfc: "RFC 3501 §6.3.9" },
    Spec { name: "NAMESPACE", states: States::Authenticated, rfc: "RFC 9051 §6.3.10" },
    Spec { name: "STATUS", states: States::Authenticated, rfc: "RFC 9051 §6.3.11" },
    Spec { name: "APPEND", states: States::Authenticated, rfc: "RFC 9051 §6.3.12" },
    Spec { name: "IDLE", states: States::Authenticated, rfc: "RFC 2177, RFC 9051 §6.3.13" },
    Spec { name: "GETQUOTA", states: States::Authenticated, rfc: "RFC 9208 §4.2" },
    Spec { name: "GETQUOTAROOT", states: States::Authenticated, rfc: "RFC 9208 §4.3" },
    Spec { name: "GETMETADATA", states: States::Authenticated, rfc: "RFC 5464 §4.2" },
    Spec { name: "NOTIFY", states: States::Authenticated, rfc: "RFC 5465 §3" },
    Spec { name: "SETMETADATA", states: States::Authenticated, rfc: "RFC 5464 §4.3" },
    Spec { name: "COMPRESS", states: States::Authenticated, rfc: "RFC 4978 §3" },
    Spec { name: "RESETKEY", states: States::Authenticated, rfc: "RFC 4467 §6.1" },
    Spec { name: "GENURLAUTH", states: States::Authenticated, rfc: "RFC 4467 §6.2" },
    Spec { name: "URLFETCH", states: States::Authenticated, rfc: "RFC 4467 §6.3" },
    Spec { name: "CHECK", states: States::Selected, rfc: "RFC 3501 §6.4.1" },
    Spec { name: "CLOSE", states: States::Selected, rfc: "RFC 9051 §6.4.1" },
    Spec { name: "UNSELECT", states: States::Selected, rfc: "RFC 9051 §6.4.2" },
    Spec { name: "EXPUNGE", states: States::Selected, rfc: "RFC 9051 §6.4.3" },
    Spec { name: "SEARCH", states: States::Selected, rfc: "RFC 9051 §6.4.4" },
    Spec { name: "FETCH", states: States::Selected, rfc: "RFC 9051 §6.4.5" },
    Spec { name: "STORE", states: States::Selected, rfc: "RFC 9051 §6.4.6" },
    Spec { name: "COPY", states: States::Selected, rfc: "RFC 9051 §6.4.7" },
    Spec { name: "MOVE", states: States::Selected, rfc: "RFC 9051 §6.4.8" },
    Spec { name: "REPLACE", states: States::Selected, rfc: "RFC 8508 §3" },
    Spec { name: "SORT", states: States::Selected, rfc: "RFC 5256 §3" },
    Spec { name: "THREAD", states: States::Selected, rfc: "RFC 5256 §3" },
    Spec { name: "CANCELUPDATE", states: States::Selected, rfc: "RFC 5267 §4.3.5" },
    Spec { name: "UID", states: States::Selected, rfc: "RFC 9051 §6.4.9" },
];

pub fn spec(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

/// Capabilities offered after login, besides IMAP4rev1.
const AUTHENTICATED: &[&str] = &[
    "LITERAL+",
    "SASL-IR",
    "ID",
    "ENABLE",
    "IDLE",
    "NAMESPACE",
    "UIDPLUS",
    "MOVE",
    "UNSELECT",
    "CHILDREN",
    "SPECIAL-USE",
    "QUOTA",
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
    "COMPRESS=DEFLATE",
    "OBJECTID",
    "SAVEDATE",
    "BINARY",
    "UTF8=ACCEPT",
    // RFC 8437 §2: no SASL mechanism offered here negotiates a security layer, so it is always
    // available after login.
    "UNAUTHENTICATE",
    "REPLACE",
    // RFC 5464: mailbox annotations and, under the name "", the server's.
    "METADATA",
    "METADATA-SERVER",
    // RFC 5465: one connection hears of changes to every mailbox it watches.
    "NOTIFY",
    "UIDONLY",
    "PARTIAL",
    // RFC 4467, mechanism INTERNAL; BURL in submission uses the same URLs (RFC 4468).
    "URLAUTH",
];

/// The CAPABILITY response body (without "* CAPABILITY").
pub fn capabilities(
    authenticated: bool,
    tls: bool,
    starttls_offered: bool,
    (sasl, plain_login): (bool, bool),
    (append_limit, message_limit): (u64, super::limit::MessageLimit),
) -> String {
    // IMAP4rev2 (RFC 9051) is offered beside IMAP4rev1; a client turns it on with ENABLE.
    let mut caps = vec!["IMAP4rev1", "IMAP4rev2"];
    if authenticated {
        caps.extend_from_slice(AUTHENTICATED);
        caps.extend_from_slice(super::sort::SORT_CAPABILITIES);
        caps.extend_from_slice(super::context::CONTEXT_CAPABILITIES);
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
        for m in Mechanism::ALL {
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
        || AUTHENTICATED
            .iter()
            .chain(super::sort::SORT_CAPABILITIES)
            .chain(super::context::CONTEXT_CAPABILITIES)
            .any(|c| c.eq_ignore_ascii_case(name))
}
