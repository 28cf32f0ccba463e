//! How `ringmail move` talks to the back end a mailbox moves to (`[cluster] listen_move`):
//! one request per connection, proven with the cluster's shared secret.
//!
//! ```text
//! S: RINGMAIL-MOVE 1 <nonce>                     nonce: 32 random bytes, hex
//! C: <VERB> <user> <source> <proof>              proof: HMAC-SHA256(proxy_secret, "VERB user source nonce"), hex
//! S: + <json> | - <reason>
//! ```
//!
//! `PASS`: the answer is the receiver's marks for the user (`[Mark]`); the client then sends a
//! mailbox stream, and the receiver answers `+ {"carried":…,"digests":[…]}` once it is applied,
//! or `- reason`. `ACTIVATE`: the mailbox is home here now (the directory says so); the answer
//! is `+ {}`. Lines end in CRLF; a line is at most `MAX_LINE` bytes.

use std::io::{BufRead, Read, Write};

use ring::hmac;
use serde::{Deserialize, Serialize};

use super::{Digest, Mark};

pub const GREETING: &str = "RINGMAIL-MOVE 1";
pub const MAX_LINE: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Pass,
    Activate,
}

impl Verb {
    pub fn name(self) -> &'static str {
        match self {
            Verb::Pass => "PASS",
            Verb::Activate => "ACTIVATE",
        }
    }

    fn parse(s: &str) -> Option<Verb> {
        match s {
            "PASS" => Some(Verb::Pass),
            "ACTIVATE" => Some(Verb::Activate),
            _ => None,
        }
    }
}

/// A request as the receiver reads it.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub verb: Verb,
    pub user: String,
    pub source: String,
    proof: String,
}

pub fn proof(secret: &str, verb: Verb, user: &str, source: &str, nonce: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let message = format!("{} {user} {source} {nonce}", verb.name());
    super::format::hex(hmac::sign(&key, message.as_bytes()).as_ref())
}

pub fn request_line(secret: &str, verb: Verb, user: &str, source: &str, nonce: &str) -> String {
    format!(
        "{} {user} {source} {}\r\n",
        verb.name(),
        proof(secret, verb, user, source, nonce)
    )
}

impl Request {
    pub fn parse(line: &str) -> Option<Request> {
        let mut words = line.split_ascii_whitespace();
        let request = Request {
            verb: Verb::parse(words.next()?)?,
            user: words.next()?.to_owned(),
            source: words.next()?.to_owned(),
            proof: words.next()?.to_owned(),
        };
        words.next().is_none().then_some(request)
    }

    /// Whether the request proves the secret for this nonce (compared in constant time).
    pub fn proves(&self, secret: &str, nonce: &str) -> bool {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        let message = format!("{} {} {} {nonce}", self.verb.name(), self.user, self.source);
        let Some(tag) = unhex(&self.proof) else {
            return false;
        };
        !secret.is_empty() && hmac::verify(&key, message.as_bytes(), &tag).is_ok()
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What the receiver answers once a pass is in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Applied {
    pub mailboxes: u64,
    pub messages: u64,
    pub bytes: u64,
    pub changes: u64,
    pub digests: Vec<Digest>,
}

/// The marks a receiver answers a `PASS` with.
pub type Marks = Vec<Mark>;

/// One line, without its CRLF; an error if the peer closed or sent more than `MAX_LINE`.
pub fn read_line(input: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = Vec::new();
    input.by_ref().take(MAX_LINE as u64).read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the peer closed the connection or sent an overlong line",
        ));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "a line not in UTF-8"))
}

/// An answer line: `+ json` or `- reason`.
pub fn answer(out: &mut impl Write, result: Result<String, String>) -> std::io::Result<()> {
    let line = match result {
        Ok(json) => format!("+ {json}\r\n"),
        Err(reason) => format!("- {}\r\n", reason.replace(['\r', '\n'], " ")),
    };
    out.write_all(line.as_bytes())?;
    out.flush()
}

/// The JSON of a `+` answer, or the reason of a `-`.
pub fn parse_answer(line: &str) -> Result<&str, String> {
    if let Some(json) = line.strip_prefix("+ ") {
        Ok(json)
    } else if let Some(reason) = line.strip_prefix("- ") {
        Err(reason.to_owned())
    } else {
        Err(format!("an answer that makes no sense: {line:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_proves_the_secret_for_its_nonce_only() {
        let line = request_line("s3cret", Verb::Pass, "alice", "b1", "abcd");
        let request = Request::parse(line.trim_end()).unwrap();
        assert_eq!((request.verb, request.user.as_str()), (Verb::Pass, "alice"));
        assert!(request.proves("s3cret", "abcd"));
        assert!(!request.proves("s3cret", "abce"));
        assert!(!request.proves("other", "abcd"));
        let forged = Request::parse(&line.trim_end().replace("alice", "bob")).unwrap();
        assert!(!forged.proves("s3cret", "abcd"));
        assert!(Request::parse("PASS alice b1").is_none());
        assert!(Request::parse("DROP alice b1 00").is_none());
        // No secret configured: nothing proves it.
        let open = Request::parse(request_line("", Verb::Pass, "a", "b", "n").trim_end()).unwrap();
        assert!(!open.proves("", "n"));
    }
}
