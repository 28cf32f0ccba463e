//! Why an IMAP command failed, sorted by whose fault it is, and the one place that says it on
//! the wire (shared/STYLE.md §8). Handlers return or hand over a `Fault`; nothing else in the
//! core writes a tagged `NO` or `BAD`.
//!
//! - the client's: a command that is malformed or not valid now is `BAD`, and the session
//!   goes on (RFC 9051 §7.1.5);
//! - refused: a well-formed command the server declines is `NO` with a response code where
//!   one applies (RFC 9051 §7.1, RFC 5530);
//! - the store's: its refusals carry their codes (`[NONEXISTENT]`, `[OVERQUOTA]`...), its
//!   failures are ours;
//! - ours: `NO [SERVERBUG]`, logged, never with the details.

use std::borrow::Cow;
use std::fmt;

use crate::goodbye::Goodbye;
use crate::store::metadata::MetadataRefusal;
use crate::store::records::Uid;
use crate::store::StoreError;

/// A response code (RFC 9051 §7.1 and the extensions that add them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    AlreadyExists,
    AuthenticationFailed,
    /// RFC 9051 §7.1: the charsets SEARCH accepts.
    BadCharset,
    /// RFC 4469 §5: the URL CATENATE could not use.
    BadUrl(String),
    Cannot,
    /// RFC 4978 §3.
    CompressionActive,
    ContactAdmin,
    Limit,
    /// RFC 9738 §3: the limit, and the lowest UID that would have been processed.
    MessageLimit(u32, Option<Uid>),
    /// RFC 5464 §4.3.
    MetadataMaxSize(usize),
    MetadataTooMany,
    Nonexistent,
    OverQuota,
    PrivacyRequired,
    ReadOnly,
    ServerBug,
    TooBig,
    TryCreate,
    /// RFC 9586 §3.
    UidRequired,
    Unavailable,
    /// RFC 3516 §4.1.
    UnknownCte,
    /// RFC 6154 §5.
    UseAttr,
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Code::AlreadyExists => f.write_str("ALREADYEXISTS"),
            Code::AuthenticationFailed => f.write_str("AUTHENTICATIONFAILED"),
            Code::BadCharset => f.write_str("BADCHARSET (UTF-8 US-ASCII)"),
            Code::BadUrl(url) => write!(f, "BADURL {url}"),
            Code::Cannot => f.write_str("CANNOT"),
            Code::CompressionActive => f.write_str("COMPRESSIONACTIVE"),
            Code::ContactAdmin => f.write_str("CONTACTADMIN"),
            Code::Limit => f.write_str("LIMIT"),
            Code::MessageLimit(limit, Some(uid)) => write!(f, "MESSAGELIMIT {limit} {uid}"),
            Code::MessageLimit(limit, None) => write!(f, "MESSAGELIMIT {limit}"),
            Code::MetadataMaxSize(n) => write!(f, "METADATA MAXSIZE {n}"),
            Code::MetadataTooMany => f.write_str("METADATA TOOMANY"),
            Code::Nonexistent => f.write_str("NONEXISTENT"),
            Code::OverQuota => f.write_str("OVERQUOTA"),
            Code::PrivacyRequired => f.write_str("PRIVACYREQUIRED"),
            Code::ReadOnly => f.write_str("READ-ONLY"),
            Code::ServerBug => f.write_str("SERVERBUG"),
            Code::TooBig => f.write_str("TOOBIG"),
            Code::TryCreate => f.write_str("TRYCREATE"),
            Code::UidRequired => f.write_str("UIDREQUIRED"),
            Code::Unavailable => f.write_str("UNAVAILABLE"),
            Code::UnknownCte => f.write_str("UNKNOWN-CTE"),
            Code::UseAttr => f.write_str("USEATTR"),
        }
    }
}

type Text = Cow<'static, str>;

#[derive(Debug)]
pub enum Fault {
    /// The client's: `BAD`, with a code where one says more.
    Bad(Option<Code>, Text),
    /// Declined: `NO`, with a code where one applies.
    Refused(Option<Code>, Text),
    /// What the store answered.
    Store(StoreError),
    /// Ours: `NO [SERVERBUG]`; what went wrong goes to the log only.
    Internal(&'static str),
}

impl Fault {
    pub fn bad(text: impl Into<Text>) -> Fault {
        Fault::Bad(None, text.into())
    }

    pub fn bad_code(code: Code, text: impl Into<Text>) -> Fault {
        Fault::Bad(Some(code), text.into())
    }

    pub fn no(code: Code, text: impl Into<Text>) -> Fault {
        Fault::Refused(Some(code), text.into())
    }

    /// A refusal no response code describes.
    pub fn no_code(text: impl Into<Text>) -> Fault {
        Fault::Refused(None, text.into())
    }

    pub fn read_only() -> Fault {
        Fault::no(Code::ReadOnly, "mailbox is read-only")
    }

    /// The tagged response for this fault: the one place a fault becomes protocol text.
    pub fn write(self, tag: &str, out: &mut Vec<u8>) {
        let (status, code, text) = match self {
            Fault::Bad(code, text) => ("BAD", code, text),
            Fault::Refused(code, text) => ("NO", code, text),
            Fault::Store(e) => {
                let (code, text) = store_refusal(e);
                ("NO", Some(code), text)
            }
            Fault::Internal(what) => {
                tracing::error!("imap: {what}");
                ("NO", Some(Code::ServerBug), "internal error, try again later".into())
            }
        };
        let text = match code {
            Some(code) => format!("[{code}] {text}"),
            None => text.into_owned(),
        };
        tagged(out, tag, status, &text);
    }
}

impl From<StoreError> for Fault {
    fn from(e: StoreError) -> Fault {
        Fault::Store(e)
    }
}

/// What the store's answer tells the client: its refusals by their codes; its failures are a
/// server bug to the client and a log line for the operator.
fn store_refusal(e: StoreError) -> (Code, Text) {
    match e {
        StoreError::NoSuchMailbox => (Code::Nonexistent, "no such mailbox".into()),
        StoreError::MailboxExists => (Code::AlreadyExists, "mailbox already exists".into()),
        StoreError::MailboxRefused(why) => (Code::Cannot, why.into()),
        StoreError::OverQuota => (Code::OverQuota, "quota exceeded".into()),
        // RFC 5464 §4.3.
        StoreError::Metadata(MetadataRefusal::MaxSize(n)) => (Code::MetadataMaxSize(n), "value too large".into()),
        StoreError::Metadata(MetadataRefusal::TooMany) => (Code::MetadataTooMany, "too many entries".into()),
        StoreError::NoSuchUser(_) => (Code::Nonexistent, "no such user".into()),
        other => {
            tracing::error!("store: {other}");
            (Code::ServerBug, "internal error, try again later".into())
        }
    }
}

/// `tag status text`: only `Fault::write` and `ok` write tagged responses.
fn tagged(out: &mut Vec<u8>, tag: &str, status: &str, text: &str) {
    out.extend_from_slice(tag.as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.as_bytes());
    out.push(b' ');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The untagged BYE with which the server ends a session unasked (RFC 9051 §7.1.5), CRLF
/// included.
pub fn goodbye(why: Goodbye<'_>) -> String {
    match why {
        Goodbye::Refused(hit) => format!("* BYE [UNAVAILABLE] {hit}\r\n"),
        Goodbye::ShuttingDown => "* BYE [UNAVAILABLE] server shutting down\r\n".into(),
        Goodbye::IdleTimeout => "* BYE autologout; idle for too long\r\n".into(),
        Goodbye::Replaced => "* BYE [LIMIT] a newer session of this user took this one's place\r\n".into(),
        Goodbye::Kicked => "* BYE disconnected by the administrator\r\n".into(),
    }
}

/// The tagged `OK` that completes a command.
pub fn ok(out: &mut Vec<u8>, tag: &str, text: &str) {
    tagged(out, tag, "OK", text);
}

/// IMAP as the drivers and front ends name it.
pub struct Imap;

impl crate::goodbye::Wire for Imap {
    const NAME: &'static str = "imap";
    fn goodbye(why: Goodbye<'_>) -> String {
        goodbye(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(fault: Fault) -> String {
        let mut out = Vec::new();
        fault.write("a1", &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_kind_of_fault_has_its_form_on_the_wire() {
        assert_eq!(written(Fault::bad("expected DONE")), "a1 BAD expected DONE\r\n");
        assert_eq!(
            written(Fault::bad_code(Code::TooBig, "literal too big")),
            "a1 BAD [TOOBIG] literal too big\r\n"
        );
        assert_eq!(
            written(Fault::read_only()),
            "a1 NO [READ-ONLY] mailbox is read-only\r\n"
        );
        assert_eq!(
            written(Fault::no(Code::MessageLimit(1000, Some(7)), "too many")),
            "a1 NO [MESSAGELIMIT 1000 7] too many\r\n"
        );
        assert_eq!(
            written(Fault::no_code("no message with that UID")),
            "a1 NO no message with that UID\r\n"
        );
        assert_eq!(
            written(Fault::Store(StoreError::OverQuota)),
            "a1 NO [OVERQUOTA] quota exceeded\r\n"
        );
        assert_eq!(
            written(Fault::Store(StoreError::Metadata(MetadataRefusal::MaxSize(9)))),
            "a1 NO [METADATA MAXSIZE 9] value too large\r\n"
        );
        assert_eq!(
            written(Fault::Store(StoreError::WriterGone)),
            "a1 NO [SERVERBUG] internal error, try again later\r\n"
        );
        assert_eq!(
            written(Fault::Internal("unexpected store answer")),
            "a1 NO [SERVERBUG] internal error, try again later\r\n"
        );
    }

    #[test]
    fn the_server_says_goodbye_with_bye() {
        assert_eq!(
            goodbye(Goodbye::Refused("too many connections")),
            "* BYE [UNAVAILABLE] too many connections\r\n"
        );
        assert_eq!(goodbye(Goodbye::IdleTimeout), "* BYE autologout; idle for too long\r\n");
        assert!(goodbye(Goodbye::Replaced).starts_with("* BYE [LIMIT] "));
    }
}
