//! SMTP/LMTP command parsing (RFC 5321 §4.1, RFC 2033 §4.1, RFC 3030, RFC 3207, RFC 4468,
//! RFC 4954):
//! one line in, one typed command out, plus the command table that says which flavour offers
//! which command. Which parameters a flavour accepts is the session's business.

use super::params::{parse_mail_params, parse_rcpt_params};
pub use super::params::{Body, MailParams, Notify, RcptParams, Ret};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Lhlo(String),
    Helo(String),
    Ehlo(String),
    Mail {
        from: String,
        params: MailParams,
    },
    Rcpt {
        to: String,
        params: RcptParams,
    },
    Data,
    /// RFC 3030 §2: a chunk of `size` octets follows the command line.
    Bdat {
        size: u64,
        last: bool,
    },
    /// RFC 4468 §3: the data `url` names is the next chunk of the message.
    Burl {
        url: String,
        last: bool,
    },
    /// RFC 4954 §4: the mechanism and the optional initial response (base64 or "=").
    Auth {
        mechanism: String,
        initial: Option<String>,
    },
    StartTls,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Help,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("command not recognized")]
    Unknown,
    #[error("syntax error in parameters")]
    Syntax,
    #[error("unsupported parameter")]
    Parameter,
}

impl ParseError {
    /// The reply: each is the client's fault.
    pub fn fault(self) -> super::fault::Fault {
        use super::fault::{Client, Fault};
        let kind = match self {
            ParseError::Unknown => Client::NotRecognized,
            ParseError::Syntax => Client::ParameterSyntax,
            ParseError::Parameter => Client::UnknownParameter,
        };
        Fault::client(kind, self.to_string())
    }
}

/// Which engine flavours offer a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    Both,
    LmtpOnly,
    SubmissionOnly,
}

/// One row of the command table: HELP, dispatch and the flavour checks come from it.
pub struct Spec {
    pub name: &'static str,
    pub offered: Offered,
    pub rfc: &'static str,
}

#[rustfmt::skip]
pub const COMMANDS: &[Spec] = &[
    Spec { name: "LHLO", offered: Offered::LmtpOnly, rfc: "RFC 2033 §4.1" },
    Spec { name: "EHLO", offered: Offered::SubmissionOnly, rfc: "RFC 5321 §4.1.1.1" },
    Spec { name: "HELO", offered: Offered::SubmissionOnly, rfc: "RFC 5321 §4.1.1.1" },
    Spec { name: "STARTTLS", offered: Offered::SubmissionOnly, rfc: "RFC 3207 §4" },
    Spec { name: "AUTH", offered: Offered::SubmissionOnly, rfc: "RFC 4954 §4" },
    Spec { name: "MAIL", offered: Offered::Both, rfc: "RFC 5321 §4.1.1.2" },
    Spec { name: "RCPT", offered: Offered::Both, rfc: "RFC 5321 §4.1.1.3" },
    Spec { name: "DATA", offered: Offered::Both, rfc: "RFC 5321 §4.1.1.4" },
    Spec { name: "BDAT", offered: Offered::SubmissionOnly, rfc: "RFC 3030 §2" },
    Spec { name: "BURL", offered: Offered::SubmissionOnly, rfc: "RFC 4468 §3" },
    Spec { name: "RSET", offered: Offered::Both, rfc: "RFC 5321 §4.1.1.5" },
    Spec { name: "NOOP", offered: Offered::Both, rfc: "RFC 5321 §4.1.1.9" },
    Spec { name: "QUIT", offered: Offered::Both, rfc: "RFC 5321 §4.1.1.10" },
    Spec { name: "VRFY", offered: Offered::Both, rfc: "RFC 5321 §4.1.1.6" },
    Spec { name: "HELP", offered: Offered::Both, rfc: "RFC 5321 §4.1.1.8" },
];

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Lhlo(_) => "LHLO",
            Command::Helo(_) => "HELO",
            Command::Ehlo(_) => "EHLO",
            Command::Mail { .. } => "MAIL",
            Command::Rcpt { .. } => "RCPT",
            Command::Data => "DATA",
            Command::Bdat { .. } => "BDAT",
            Command::Burl { .. } => "BURL",
            Command::Auth { .. } => "AUTH",
            Command::StartTls => "STARTTLS",
            Command::Rset => "RSET",
            Command::Noop => "NOOP",
            Command::Quit => "QUIT",
            Command::Vrfy => "VRFY",
            Command::Help => "HELP",
        }
    }

    pub fn spec(&self) -> &'static Spec {
        let name = self.name();
        COMMANDS
            .iter()
            .find(|s| s.name == name)
            .expect("every command has a row in COMMANDS")
    }
}

/// The names HELP lists for a flavour, in table order.
pub fn help_names(lmtp: bool) -> Vec<&'static str> {
    COMMANDS
        .iter()
        .filter(|s| match s.offered {
            Offered::Both => true,
            Offered::LmtpOnly => lmtp,
            Offered::SubmissionOnly => !lmtp,
        })
        .map(|s| s.name)
        .collect()
}

pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::Syntax)?;
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    let needs_none = |c: Command| {
        if rest.is_empty() {
            Ok(c)
        } else {
            Err(ParseError::Syntax)
        }
    };
    let domain = || {
        if rest.is_empty() || rest.contains(' ') {
            Err(ParseError::Syntax)
        } else {
            Ok(rest.to_owned())
        }
    };
    match verb.to_ascii_uppercase().as_str() {
        "LHLO" => domain().map(Command::Lhlo),
        "HELO" => domain().map(Command::Helo),
        "EHLO" => domain().map(Command::Ehlo),
        "MAIL" => parse_mail(rest),
        "RCPT" => parse_rcpt(rest),
        "DATA" => needs_none(Command::Data),
        "BDAT" => parse_bdat(rest),
        "BURL" => parse_burl(rest),
        "AUTH" => parse_auth(rest),
        "STARTTLS" => needs_none(Command::StartTls),
        "RSET" => needs_none(Command::Rset),
        // RFC 5321 §4.1.1.9: NOOP may carry a string, which is ignored.
        "NOOP" => Ok(Command::Noop),
        "QUIT" => needs_none(Command::Quit),
        "VRFY" => Ok(Command::Vrfy),
        "HELP" => Ok(Command::Help),
        _ => Err(ParseError::Unknown),
    }
}

/// `FROM:<path> [params]`; the null path `<>` is allowed (bounces).
fn parse_mail(rest: &str) -> Result<Command, ParseError> {
    let (from, params) = path_after(rest, "FROM:")?;
    let params = parse_mail_params(params)?;
    Ok(Command::Mail { from, params })
}

fn parse_rcpt(rest: &str) -> Result<Command, ParseError> {
    let (to, params) = path_after(rest, "TO:")?;
    if to.is_empty() {
        return Err(ParseError::Syntax);
    }
    let params = parse_rcpt_params(params)?;
    Ok(Command::Rcpt { to, params })
}

/// What is left after BDAT's size or BURL's URL: nothing, or the end-marker `LAST` (RFC 3030
/// §2, RFC 4468 §3); true for LAST.
fn end_marker(mut words: std::str::Split<'_, char>) -> Result<bool, ParseError> {
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(ParseError::Syntax),
    };
    if words.next().is_some() {
        return Err(ParseError::Syntax);
    }
    Ok(last)
}

/// RFC 3030 §2: `BDAT SP chunk-size [SP end-marker]`.
fn parse_bdat(rest: &str) -> Result<Command, ParseError> {
    let mut words = rest.split(' ');
    let size = words.next().unwrap_or("");
    if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::Syntax);
    }
    let size = size.parse().map_err(|_| ParseError::Syntax)?;
    let last = end_marker(words)?;
    Ok(Command::Bdat { size, last })
}

/// RFC 4468 §3: `BURL SP absolute-URI [SP end-marker]`, end-marker = "LAST". The URL is
/// checked here only for the shape of an absolute URI (RFC 3986 §4.3: a scheme, then `:`);
/// what it names is the resolver's business.
fn parse_burl(rest: &str) -> Result<Command, ParseError> {
    let mut words = rest.split(' ');
    let url = words.next().unwrap_or("");
    let scheme = url.split_once(':').map_or("", |(s, _)| s);
    let scheme_ok = scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok || !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ParseError::Syntax);
    }
    let last = end_marker(words)?;
    Ok(Command::Burl {
        url: url.to_owned(),
        last,
    })
}

/// RFC 4954 §4: `AUTH mechanism [initial-response]`.
fn parse_auth(rest: &str) -> Result<Command, ParseError> {
    let mut words = rest.split(' ');
    let mechanism = words.next().unwrap_or("");
    if mechanism.is_empty() {
        return Err(ParseError::Syntax);
    }
    let initial = words.next().map(str::to_owned);
    if words.next().is_some() {
        return Err(ParseError::Syntax);
    }
    Ok(Command::Auth {
        mechanism: mechanism.to_owned(),
        initial,
    })
}

/// Splits `FROM:<a@b> P1 P2` into the address inside the brackets and the parameters.
fn path_after<'a>(rest: &'a str, prefix: &str) -> Result<(String, impl Iterator<Item = &'a str>), ParseError> {
    let head = rest.get(..prefix.len()).ok_or(ParseError::Syntax)?;
    if !head.eq_ignore_ascii_case(prefix) {
        return Err(ParseError::Syntax);
    }
    let rest = rest[prefix.len()..].trim_start();
    let rest = rest.strip_prefix('<').ok_or(ParseError::Syntax)?;
    let end = rest.find('>').ok_or(ParseError::Syntax)?;
    let mut path = &rest[..end];
    // RFC 5321 §4.1.2: a source route is accepted and ignored.
    if path.starts_with('@') {
        path = path.split_once(':').map_or("", |(_, p)| p);
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ParseError::Syntax);
    }
    Ok((path.to_owned(), rest[end + 1..].split_whitespace()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(from: &str, params: MailParams) -> Result<Command, ParseError> {
        Ok(Command::Mail {
            from: from.into(),
            params,
        })
    }

    fn rcpt(to: &str) -> Result<Command, ParseError> {
        Ok(Command::Rcpt {
            to: to.into(),
            params: RcptParams::default(),
        })
    }

    #[test]
    fn table() {
        let cases: &[(&str, Result<Command, ParseError>)] = &[
            ("LHLO mx.example", Ok(Command::Lhlo("mx.example".into()))),
            ("lhlo mx", Ok(Command::Lhlo("mx".into()))),
            ("LHLO", Err(ParseError::Syntax)),
            ("EHLO client.example", Ok(Command::Ehlo("client.example".into()))),
            ("MAIL FROM:<a@b.c>", mail("a@b.c", MailParams::default())),
            (
                "MAIL FROM:<> SIZE=100 BODY=8BITMIME",
                mail(
                    "",
                    MailParams {
                        size: Some(100),
                        body: Body::EightBitMime,
                        ..MailParams::default()
                    },
                ),
            ),
            ("MAIL FROM:<a@b> SIZE=x", Err(ParseError::Syntax)),
            ("MAIL FROM:<a@b> FOO=1", Err(ParseError::Parameter)),
            ("MAIL FROM:a@b", Err(ParseError::Syntax)),
            ("MAIL TO:<a@b>", Err(ParseError::Syntax)),
            ("RCPT TO:<bob@example.org>", rcpt("bob@example.org")),
            ("RCPT TO:<@relay:bob@example.org>", rcpt("bob@example.org")),
            ("RCPT TO:<>", Err(ParseError::Syntax)),
            ("RCPT TO:<a b@c>", Err(ParseError::Syntax)),
            ("RCPT TO:<a@b> FOO=1", Err(ParseError::Parameter)),
            ("DATA", Ok(Command::Data)),
            ("DATA x", Err(ParseError::Syntax)),
            ("NOOP hello", Ok(Command::Noop)),
            ("QUIT", Ok(Command::Quit)),
            ("VRFY bob", Ok(Command::Vrfy)),
            ("BDAT 10", Ok(Command::Bdat { size: 10, last: false })),
            ("bdat 0 last", Ok(Command::Bdat { size: 0, last: true })),
            ("BDAT", Err(ParseError::Syntax)),
            ("BDAT -1", Err(ParseError::Syntax)),
            ("BDAT 5 FIRST", Err(ParseError::Syntax)),
            ("BDAT 99999999999999999999999", Err(ParseError::Syntax)),
            (
                "BURL imap://bob@h/INBOX/;UID=1;URLAUTH=submit+bob:INTERNAL:00 last",
                Ok(Command::Burl {
                    url: "imap://bob@h/INBOX/;UID=1;URLAUTH=submit+bob:INTERNAL:00".into(),
                    last: true,
                }),
            ),
            (
                "BURL imap://h/x",
                Ok(Command::Burl {
                    url: "imap://h/x".into(),
                    last: false,
                }),
            ),
            ("BURL", Err(ParseError::Syntax)),
            ("BURL INBOX/;UID=1", Err(ParseError::Syntax)),
            ("BURL 1map://h/x", Err(ParseError::Syntax)),
            ("BURL imap://h/x FIRST", Err(ParseError::Syntax)),
            ("BURL imap://h/x LAST more", Err(ParseError::Syntax)),
            (
                "AUTH PLAIN AGJvYgBwdw==",
                Ok(Command::Auth {
                    mechanism: "PLAIN".into(),
                    initial: Some("AGJvYgBwdw==".into()),
                }),
            ),
            (
                "AUTH LOGIN",
                Ok(Command::Auth {
                    mechanism: "LOGIN".into(),
                    initial: None,
                }),
            ),
            ("AUTH", Err(ParseError::Syntax)),
            ("AUTH A B C", Err(ParseError::Syntax)),
            ("STARTTLS", Ok(Command::StartTls)),
            ("STARTTLS now", Err(ParseError::Syntax)),
            ("EXPN list", Err(ParseError::Unknown)),
            ("", Err(ParseError::Unknown)),
        ];
        for (line, expected) in cases {
            assert_eq!(&parse(line.as_bytes()), expected, "{line}");
        }
    }

    #[test]
    fn every_command_has_a_table_row() {
        let all = [
            "LHLO x",
            "HELO x",
            "EHLO x",
            "MAIL FROM:<>",
            "RCPT TO:<a>",
            "DATA",
            "BDAT 1",
            "BURL imap://h/x",
            "AUTH PLAIN",
            "STARTTLS",
            "RSET",
            "NOOP",
            "QUIT",
            "VRFY",
            "HELP",
        ];
        for line in all {
            let c = parse(line.as_bytes()).unwrap();
            assert_eq!(c.spec().name, c.name());
        }
        assert!(help_names(true).contains(&"LHLO") && !help_names(true).contains(&"EHLO"));
        assert!(help_names(false).contains(&"BDAT") && !help_names(false).contains(&"LHLO"));
    }
}
