//! The POP3 command table and parser: one line in, one typed command out.
//!
//! RFC 1939 §3: keywords are case-insensitive, arguments are separated by single spaces.
//! RFC 2449 §4 bounds keywords to 4 and arguments to 40 octets; PASS takes the rest of the line
//! instead, since passwords may contain spaces (RFC 1939 §7 allows servers to do so).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Authorization,
    Transaction,
}

/// One row of the command table: where a command is valid and where it is specified.
pub struct Spec {
    pub name: &'static str,
    pub phases: &'static [Phase],
    pub rfc: &'static str,
}

use Phase::{Authorization as A, Transaction as T};

pub const COMMANDS: &[Spec] = &[
    Spec {
        name: "USER",
        phases: &[A],
        rfc: "RFC 1939 §7",
    },
    Spec {
        name: "PASS",
        phases: &[A],
        rfc: "RFC 1939 §7",
    },
    Spec {
        name: "AUTH",
        phases: &[A],
        rfc: "RFC 5034 §4",
    },
    Spec {
        name: "STLS",
        phases: &[A],
        rfc: "RFC 2595 §4",
    },
    Spec {
        name: "CAPA",
        phases: &[A, T],
        rfc: "RFC 2449 §5",
    },
    Spec {
        name: "QUIT",
        phases: &[A, T],
        rfc: "RFC 1939 §5, §6",
    },
    Spec {
        name: "STAT",
        phases: &[T],
        rfc: "RFC 1939 §5",
    },
    Spec {
        name: "LIST",
        phases: &[T],
        rfc: "RFC 1939 §5",
    },
    Spec {
        name: "RETR",
        phases: &[T],
        rfc: "RFC 1939 §5",
    },
    Spec {
        name: "DELE",
        phases: &[T],
        rfc: "RFC 1939 §5",
    },
    Spec {
        name: "NOOP",
        phases: &[T],
        rfc: "RFC 1939 §5",
    },
    Spec {
        name: "RSET",
        phases: &[T],
        rfc: "RFC 1939 §5",
    },
    Spec {
        name: "TOP",
        phases: &[T],
        rfc: "RFC 1939 §7",
    },
    Spec {
        name: "UIDL",
        phases: &[T],
        rfc: "RFC 1939 §7",
    },
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(String),
    Pass(String),
    /// Mechanism name and optional initial response (still base64).
    Auth(Option<(String, Option<String>)>),
    Stls,
    Capa,
    Quit,
    Stat,
    List(Option<u32>),
    Retr(u32),
    Dele(u32),
    Noop,
    Rset,
    Top(u32, u32),
    Uidl(Option<u32>),
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Auth(_) => "AUTH",
            Command::Stls => "STLS",
            Command::Capa => "CAPA",
            Command::Quit => "QUIT",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Retr(_) => "RETR",
            Command::Dele(_) => "DELE",
            Command::Noop => "NOOP",
            Command::Rset => "RSET",
            Command::Top(..) => "TOP",
            Command::Uidl(_) => "UIDL",
        }
    }

    pub fn spec(&self) -> &'static Spec {
        let name = self.name();
        COMMANDS
            .iter()
            .find(|s| s.name == name)
            .expect("every command has a table row")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unknown command")]
    Unknown,
    #[error("syntax error in arguments")]
    Syntax,
    #[error("invalid message number")]
    BadNumber,
}

const MAX_ARG: usize = 40;

pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::Syntax)?;
    let (keyword, rest) = match line.split_once(' ') {
        Some((k, r)) => (k, Some(r)),
        None => (line, None),
    };
    if keyword.len() > 4 {
        return Err(ParseError::Unknown);
    }
    let keyword = keyword.to_ascii_uppercase();
    if keyword == "PASS" {
        return match rest {
            Some(p) if !p.is_empty() => Ok(Command::Pass(p.to_owned())),
            _ => Err(ParseError::Syntax),
        };
    }
    let args: Vec<&str> = match rest {
        None => Vec::new(),
        Some(r) => r.split(' ').collect(),
    };
    if args.iter().any(|a| a.is_empty()) {
        return Err(ParseError::Syntax);
    }
    // AUTH initial responses are base64 and may exceed RFC 2449's 40 octets (RFC 5034 §4).
    if keyword != "AUTH" && args.iter().any(|a| a.len() > MAX_ARG) {
        return Err(ParseError::Syntax);
    }
    let none = |c: Command| {
        if args.is_empty() {
            Ok(c)
        } else {
            Err(ParseError::Syntax)
        }
    };
    let number = |s: &str| -> Result<u32, ParseError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::BadNumber);
        }
        s.parse().map_err(|_| ParseError::BadNumber)
    };
    let optional_number = || match args.as_slice() {
        [] => Ok(None),
        [n] => number(n).map(Some),
        _ => Err(ParseError::Syntax),
    };
    let one_number = || match args.as_slice() {
        [n] => number(n),
        _ => Err(ParseError::Syntax),
    };
    match keyword.as_str() {
        "USER" => match args.as_slice() {
            [name] => Ok(Command::User((*name).to_owned())),
            _ => Err(ParseError::Syntax),
        },
        "AUTH" => match args.as_slice() {
            [] => Ok(Command::Auth(None)),
            [mech] => Ok(Command::Auth(Some(((*mech).to_owned(), None)))),
            [mech, initial] => Ok(Command::Auth(Some(((*mech).to_owned(), Some((*initial).to_owned()))))),
            _ => Err(ParseError::Syntax),
        },
        "STLS" => none(Command::Stls),
        "CAPA" => none(Command::Capa),
        "QUIT" => none(Command::Quit),
        "STAT" => none(Command::Stat),
        "NOOP" => none(Command::Noop),
        "RSET" => none(Command::Rset),
        "LIST" => optional_number().map(Command::List),
        "UIDL" => optional_number().map(Command::Uidl),
        "RETR" => one_number().map(Command::Retr),
        "DELE" => one_number().map(Command::Dele),
        "TOP" => match args.as_slice() {
            [n, lines] => Ok(Command::Top(number(n)?, number(lines).map_err(|_| ParseError::Syntax)?)),
            _ => Err(ParseError::Syntax),
        },
        _ => Err(ParseError::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&[u8], Result<Command, ParseError>)] = &[
            (b"USER bob", Ok(Command::User("bob".into()))),
            (b"user bob", Ok(Command::User("bob".into()))),
            (b"PASS with spaces in it", Ok(Command::Pass("with spaces in it".into()))),
            (b"PASS", Err(ParseError::Syntax)),
            (b"STAT", Ok(Command::Stat)),
            (b"STAT 1", Err(ParseError::Syntax)),
            (b"LIST", Ok(Command::List(None))),
            (b"LIST 3", Ok(Command::List(Some(3)))),
            (b"LIST x", Err(ParseError::BadNumber)),
            (b"LIST -1", Err(ParseError::BadNumber)),
            (b"LIST 99999999999", Err(ParseError::BadNumber)),
            (b"RETR 1", Ok(Command::Retr(1))),
            (b"RETR", Err(ParseError::Syntax)),
            (b"RETR  1", Err(ParseError::Syntax)),
            (b"DELE 2", Ok(Command::Dele(2))),
            (b"TOP 1 10", Ok(Command::Top(1, 10))),
            (b"TOP 1", Err(ParseError::Syntax)),
            (b"UIDL", Ok(Command::Uidl(None))),
            (b"UIDL 7", Ok(Command::Uidl(Some(7)))),
            (b"AUTH", Ok(Command::Auth(None))),
            (b"AUTH PLAIN", Ok(Command::Auth(Some(("PLAIN".into(), None))))),
            (
                b"AUTH PLAIN AGJvYgBzZWNyZXQ=",
                Ok(Command::Auth(Some(("PLAIN".into(), Some("AGJvYgBzZWNyZXQ=".into()))))),
            ),
            (b"STLS", Ok(Command::Stls)),
            (b"CAPA", Ok(Command::Capa)),
            (b"QUIT", Ok(Command::Quit)),
            (b"NOOP", Ok(Command::Noop)),
            (b"RSET", Ok(Command::Rset)),
            (b"XYZZY", Err(ParseError::Unknown)),
            (b"", Err(ParseError::Unknown)),
            (b"\xff\xfe", Err(ParseError::Syntax)),
        ];
        for (line, expected) in cases {
            assert_eq!(&parse(line), expected, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn every_command_has_one_row() {
        for spec in COMMANDS {
            assert_eq!(COMMANDS.iter().filter(|s| s.name == spec.name).count(), 1);
        }
        assert_eq!(Command::Top(1, 1).spec().phases, &[Phase::Transaction]);
    }
}
