//! Why an SMTP or LMTP command failed, sorted by whose fault it is, and the one place that
//! writes the reply (shared/STYLE.md §8): the reply code (RFC 5321 §4.2) and the enhanced
//! status code (RFC 3463, RFC 5248) come from the kind, never from a string.
//!
//! - the client's: a command that is unknown, malformed, out of order or carries what this
//!   server does not take (5.5.x); the session goes on;
//! - refused: a well-formed request declined for good, for security, addressing, mailbox,
//!   size or content (5.7.x, 5.1.x, 5.2.x, 5.3.x, 5.6.x);
//! - temporary: a failure of ours or of the store that may pass (4yz); the client retries.

use std::borrow::Cow;

use crate::goodbye::Goodbye;

type Text = Cow<'static, str>;

/// The client's faults (RFC 5321 §4.2.4; RFC 3463 §3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// 500 5.5.2: not a command, or a line too long for one.
    NotRecognized,
    /// 500 5.5.1: the other protocol's greeting (HELO over LMTP, LHLO over SMTP).
    WrongProtocol,
    /// 500 5.5.6: an authentication line over the limit (RFC 4954 §4).
    AuthLineTooLong,
    /// 501 5.5.2: arguments that cannot be read.
    Syntax,
    /// 501 5.5.4: parameters that cannot be read.
    ParameterSyntax,
    /// 501 5.0.0: the client cancelled an AUTH exchange (RFC 4954 §4).
    Cancelled,
    /// 503 5.5.1: out of order.
    Sequence,
    /// 503 5.5.0: BURL before a valid RCPT (RFC 4468 §3).
    BurlSequence,
    /// 504 5.5.4: an authentication mechanism not offered.
    UnknownMechanism,
    /// 555 5.5.4: a MAIL or RCPT parameter not offered (RFC 5321 §4.1.1.11).
    UnknownParameter,
}

/// Requests declined for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 530 5.7.0 (RFC 4954 §6, RFC 3207 §4).
    AuthRequired,
    /// 535 5.7.8.
    AuthFailed,
    /// 538 5.7.11 (RFC 4954 §6).
    EncryptionRequired,
    /// 550 5.1.1.
    NoSuchUser,
    /// 550 5.7.1.
    RelayDenied,
    /// 552 5.2.2.
    MailboxFull,
    /// 552 5.3.4 (RFC 1870 §6).
    TooBig,
    /// 553 5.7.1: a sender address the authenticated user does not own.
    SenderNotOwned,
    /// 554 5.5.1: DATA or BDAT with no recipient accepted.
    NoValidRecipients,
    /// 554 5.5.0: BURL with no recipient (RFC 4468 §3).
    NoRecipients,
    /// 554 5.6.0: the message cannot be taken as it is.
    BadMessage,
    /// 554 5.7.0: a BURL URL this user may not read (RFC 4468 §5).
    UrlAccess,
    /// 554 5.6.6: a BURL URL that names nothing usable.
    UrlUnusable,
}

/// Failures that may pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporary {
    /// 421 4.7.0: the server closes the connection (too many failed logins, a limit).
    Closing,
    /// 421 4.3.2: the server is going down, or too busy to take the connection.
    ShuttingDown,
    /// 421 4.4.2: the client was silent for too long.
    IdleTimeout,
    /// 451 4.3.0.
    Failure,
    /// 451 4.4.1: a system BURL depends on (the store behind a URL) did not answer.
    Unreachable,
    /// 450 4.2.1: the mailbox takes nothing for a moment (a mailbox move's final pass).
    MailboxBusy,
    /// 452 4.3.1: no room to take the message now.
    NoRoom,
    /// 452 4.5.3 (RFC 5321 §4.5.3.1.10).
    TooManyRecipients,
    /// 454 4.7.0: TLS or authentication cannot be done now.
    Security,
}

#[derive(Debug)]
pub enum Fault {
    Client(Client, Text),
    Refused(Refusal, Text),
    Temporary(Temporary, Text),
}

impl Fault {
    pub fn client(kind: Client, text: impl Into<Text>) -> Fault {
        Fault::Client(kind, text.into())
    }

    pub fn refused(kind: Refusal, text: impl Into<Text>) -> Fault {
        Fault::Refused(kind, text.into())
    }

    pub fn temporary(kind: Temporary, text: impl Into<Text>) -> Fault {
        Fault::Temporary(kind, text.into())
    }

    /// The reply code and enhanced status code.
    fn codes(&self) -> (u16, &'static str) {
        match self {
            Fault::Client(kind, _) => match kind {
                Client::NotRecognized => (500, "5.5.2"),
                Client::WrongProtocol => (500, "5.5.1"),
                Client::AuthLineTooLong => (500, "5.5.6"),
                Client::Syntax => (501, "5.5.2"),
                Client::ParameterSyntax => (501, "5.5.4"),
                Client::Cancelled => (501, "5.0.0"),
                Client::Sequence => (503, "5.5.1"),
                Client::BurlSequence => (503, "5.5.0"),
                Client::UnknownMechanism => (504, "5.5.4"),
                Client::UnknownParameter => (555, "5.5.4"),
            },
            Fault::Refused(kind, _) => match kind {
                Refusal::AuthRequired => (530, "5.7.0"),
                Refusal::AuthFailed => (535, "5.7.8"),
                Refusal::EncryptionRequired => (538, "5.7.11"),
                Refusal::NoSuchUser => (550, "5.1.1"),
                Refusal::RelayDenied => (550, "5.7.1"),
                Refusal::MailboxFull => (552, "5.2.2"),
                Refusal::TooBig => (552, "5.3.4"),
                Refusal::SenderNotOwned => (553, "5.7.1"),
                Refusal::NoValidRecipients => (554, "5.5.1"),
                Refusal::NoRecipients => (554, "5.5.0"),
                Refusal::BadMessage => (554, "5.6.0"),
                Refusal::UrlAccess => (554, "5.7.0"),
                Refusal::UrlUnusable => (554, "5.6.6"),
            },
            Fault::Temporary(kind, _) => match kind {
                Temporary::Closing => (421, "4.7.0"),
                Temporary::ShuttingDown => (421, "4.3.2"),
                Temporary::IdleTimeout => (421, "4.4.2"),
                Temporary::Failure => (451, "4.3.0"),
                Temporary::Unreachable => (451, "4.4.1"),
                Temporary::MailboxBusy => (450, "4.2.1"),
                Temporary::NoRoom => (452, "4.3.1"),
                Temporary::TooManyRecipients => (452, "4.5.3"),
                Temporary::Security => (454, "4.7.0"),
            },
        }
    }

    /// The reply as one line, without CRLF (LMTP collects one per recipient).
    pub fn reply(&self) -> String {
        let (code, status) = self.codes();
        let (Fault::Client(_, text) | Fault::Refused(_, text) | Fault::Temporary(_, text)) = self;
        format!("{code} {status} {text}")
    }

    /// Writes the reply: the one place a fault becomes protocol text.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.reply().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// The 421 with which the server ends a session unasked (RFC 5321 §3.8), CRLF included. An
/// LMTP client over a limit is an MTA: it is told the host and that it may retry.
pub fn goodbye(why: Goodbye<'_>, lmtp_host: Option<&str>) -> String {
    let fault = match (why, lmtp_host) {
        (Goodbye::Refused(hit), Some(host)) => {
            Fault::temporary(Temporary::ShuttingDown, format!("{host} {hit}, try again later"))
        }
        (Goodbye::Refused(hit), None) => Fault::temporary(Temporary::Closing, hit.to_string()),
        (Goodbye::ShuttingDown, _) => Fault::temporary(Temporary::ShuttingDown, "server shutting down"),
        (Goodbye::IdleTimeout, _) => Fault::temporary(Temporary::IdleTimeout, "idle for too long, closing connection"),
        (Goodbye::Kicked, _) => Fault::temporary(Temporary::Closing, "disconnected by the administrator"),
        (Goodbye::Replaced, _) => {
            Fault::temporary(Temporary::Closing, "a newer session of this user took this one's place")
        }
    };
    format!("{}\r\n", fault.reply())
}

/// Submission as the drivers and front ends name it.
pub struct Submission;

impl crate::goodbye::Wire for Submission {
    const NAME: &'static str = "submission";
    fn goodbye(why: Goodbye<'_>) -> String {
        goodbye(why, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_reply_and_enhanced_code() {
        let line = |f: Fault| f.reply();
        assert_eq!(
            line(Fault::client(Client::Sequence, "EHLO first")),
            "503 5.5.1 EHLO first"
        );
        assert_eq!(
            line(Fault::refused(Refusal::EncryptionRequired, "encryption required")),
            "538 5.7.11 encryption required"
        );
        assert_eq!(
            line(Fault::temporary(Temporary::NoRoom, "insufficient system storage")),
            "452 4.3.1 insufficient system storage"
        );
        // The class follows whose fault it is: 5yz for the client's and refusals, 4yz else.
        for kind in [Client::NotRecognized, Client::UnknownParameter, Client::Cancelled] {
            assert!(line(Fault::client(kind, "x")).starts_with("5"));
        }
        for kind in [Temporary::Closing, Temporary::Security, Temporary::Unreachable] {
            assert!(line(Fault::temporary(kind, "x")).starts_with("4"));
        }
    }

    #[test]
    fn the_server_says_goodbye_with_421() {
        let host = Some("mx.test");
        assert_eq!(
            goodbye(Goodbye::Refused("too many connections"), host),
            "421 4.3.2 mx.test too many connections, try again later\r\n"
        );
        assert_eq!(
            goodbye(Goodbye::Refused("too many connections"), None),
            "421 4.7.0 too many connections\r\n"
        );
        assert_eq!(
            goodbye(Goodbye::ShuttingDown, None),
            "421 4.3.2 server shutting down\r\n"
        );
        assert!(goodbye(Goodbye::IdleTimeout, host).starts_with("421 4.4.2 "));
    }
}
