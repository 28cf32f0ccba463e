//! The front ends of the line protocols (POP3, submission): their sessions take one CRLF line
//! at a time, so the framing, the protocol log line and the passing on of the back end's
//! login reply are the same for both; `LineSession` is what differs.

use std::borrow::Cow;

use super::front::{PreLogin, Step};
use crate::auth::policy::Protocol;
use crate::auth::scram::ScramCredentials;
use crate::goodbye::Wire;
use crate::serve::login::Failure;

/// A line protocol's session before login, as a front end drives it.
pub trait LineSession {
    const PROTOCOL: Protocol;
    type Wire: Wire;

    fn greeting(&self, out: &mut Vec<u8>);
    fn line(&mut self, line: &[u8], out: &mut Vec<u8>) -> Step;
    fn line_too_long(&mut self, out: &mut Vec<u8>) -> Step;
    /// A client line as the protocol log may show it (passwords redacted).
    fn shown<'a>(&self, line: &'a [u8]) -> Cow<'a, [u8]>;
    fn tls_started(&mut self);
    fn scram(&mut self, keys: Option<ScramCredentials>, out: &mut Vec<u8>) -> Step;
    fn failed(&mut self, failure: Failure, out: &mut Vec<u8>) -> Step;
}

pub struct LineFront<S> {
    session: S,
    max_line: usize,
    /// The rest of an over-long line is being dropped.
    discarding: bool,
    log: Option<String>,
}

impl<S> LineFront<S> {
    pub fn new(session: S, max_line: usize) -> LineFront<S> {
        LineFront {
            session,
            max_line,
            discarding: false,
            log: None,
        }
    }
}

impl<S: LineSession> PreLogin for LineFront<S> {
    const PROTOCOL: Protocol = S::PROTOCOL;
    type Wire = S::Wire;

    fn greeting(&self, out: &mut Vec<u8>) {
        self.session.greeting(out);
    }

    fn input(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, Step) {
        match memchr::memchr(b'\n', input) {
            Some(end) if std::mem::take(&mut self.discarding) || end + 1 > self.max_line => {
                (end + 1, self.session.line_too_long(out))
            }
            Some(end) => {
                let line = &input[..end];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                self.log = Some(String::from_utf8_lossy(&self.session.shown(line)).into_owned());
                (end + 1, self.session.line(line, out))
            }
            // Its end is all an over-long line still waits for; what came so far is dropped.
            None if input.len() > self.max_line => {
                self.discarding = true;
                (input.len(), Step::Read)
            }
            None => (0, Step::Read),
        }
    }

    fn tls_started(&mut self) {
        self.session.tls_started();
    }

    fn scram_credentials(&mut self, keys: Option<ScramCredentials>, out: &mut Vec<u8>) -> Step {
        self.session.scram(keys, out)
    }

    fn login_failed(&mut self, failure: Failure, out: &mut Vec<u8>) -> Step {
        self.session.failed(failure, out)
    }

    /// The back end's reply to the login (`+OK`, `235`) is the client's, as it is.
    fn logged_in(&mut self, answer: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(answer.as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    fn take_log(&mut self) -> Option<String> {
        self.log.take()
    }
}
