//! An IMAP client for tests and the harness: tagged commands, untagged responses with their
//! literals, STARTTLS.

use std::io;
use std::sync::Arc;

use rustls::ClientConfig;

use super::Transport;

pub struct Imap {
    pub t: Transport,
    pub greeting: String,
    next_tag: u32,
}

/// One command's outcome: the untagged lines (literals inlined as raw bytes) and the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub untagged: Vec<Vec<u8>>,
    /// "OK", "NO" or "BAD".
    pub status: String,
    /// The tagged line's text after the status.
    pub text: String,
}

impl Response {
    /// From `rest`, the tagged line after its tag: the status word, then the text.
    pub fn tagged(untagged: Vec<Vec<u8>>, rest: &[u8]) -> Response {
        let rest = String::from_utf8_lossy(rest);
        let (status, text) = rest.split_once(' ').unwrap_or((&rest, ""));
        Response {
            untagged,
            status: status.to_owned(),
            text: text.to_owned(),
        }
    }

    pub fn ok(&self) -> bool {
        self.status == "OK"
    }

    /// Untagged lines as text (lossy), for assertions.
    pub fn lines(&self) -> Vec<String> {
        self.untagged
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    pub fn expect_ok(self) -> io::Result<Response> {
        if self.ok() {
            Ok(self)
        } else {
            Err(io::Error::other(format!("{} {}", self.status, self.text)))
        }
    }
}

/// The size of a literal announced at the end of `line` (`{n}` or `~{n}`).
pub fn literal_len(line: &[u8]) -> Option<usize> {
    let open = line.iter().rposition(|&b| b == b'{')?;
    let inner = line.get(open + 1..line.len().checked_sub(1)?)?;
    if line.last() != Some(&b'}') {
        return None;
    }
    std::str::from_utf8(inner).ok()?.trim_end_matches('+').parse().ok()
}

impl Imap {
    pub fn new(mut t: Transport) -> io::Result<Imap> {
        let greeting = t.read_line_string()?;
        if !greeting.starts_with("* OK") {
            return Err(io::Error::other(format!("greeting: {greeting}")));
        }
        Ok(Imap {
            t,
            greeting,
            next_tag: 1,
        })
    }

    pub fn tag(&mut self) -> String {
        let tag = format!("a{}", self.next_tag);
        self.next_tag += 1;
        tag
    }

    /// Reads one response line with any literals it announces appended.
    pub fn read_response_line(&mut self) -> io::Result<Vec<u8>> {
        let mut line = self.t.read_line()?;
        while let Some(n) = literal_len(&line) {
            line.extend_from_slice(b"\r\n");
            line.extend_from_slice(&self.t.read_exact_bytes(n)?);
            line.extend_from_slice(&self.t.read_line()?);
        }
        Ok(line)
    }

    /// Reads responses until the one tagged `tag`.
    pub fn finish(&mut self, tag: &str) -> io::Result<Response> {
        let mut untagged = Vec::new();
        loop {
            let line = self.read_response_line()?;
            if let Some(rest) = line.strip_prefix(format!("{tag} ").as_bytes()) {
                return Ok(Response::tagged(untagged, rest));
            }
            untagged.push(line);
        }
    }

    /// Sends `TAG command` and reads to its completion.
    pub fn cmd(&mut self, command: &str) -> io::Result<Response> {
        let tag = self.tag();
        self.t.send_line(&format!("{tag} {command}"))?;
        self.finish(&tag)
    }

    pub fn login(&mut self, user: &str, password: &str) -> io::Result<Response> {
        self.cmd(&format!("LOGIN {} {}", quote(user), quote(password)))
    }

    pub fn starttls(&mut self, config: Arc<ClientConfig>, name: &str) -> io::Result<()> {
        self.cmd("STARTTLS")?.expect_ok()?;
        self.t.start_tls(config, name)
    }

    /// APPEND with a synchronizing literal.
    pub fn append(&mut self, mailbox: &str, flags: &str, message: &[u8]) -> io::Result<Response> {
        let tag = self.tag();
        self.t.send_line(&format!(
            "{tag} APPEND {} ({flags}) {{{}}}",
            quote(mailbox),
            message.len()
        ))?;
        let cont = self.t.read_line_string()?;
        if !cont.starts_with('+') {
            let (status, text) = cont
                .strip_prefix(&format!("{tag} "))
                .unwrap_or(&cont)
                .split_once(' ')
                .unwrap_or(("BAD", ""));
            return Ok(Response {
                untagged: Vec::new(),
                status: status.into(),
                text: text.into(),
            });
        }
        self.t.send_raw(message)?;
        self.t.send_raw(b"\r\n")?;
        self.finish(&tag)
    }

    /// APPEND with a non-synchronizing literal (RFC 7888 LITERAL+): the command, the message
    /// and the final CRLF in one write, with no wait for a continuation. Unlike `append`,
    /// `mailbox` is sent as given, so it must be an atom (or already quoted).
    pub fn append_nonsync(&mut self, mailbox: &str, flags: &str, message: &[u8]) -> io::Result<Response> {
        let tag = self.tag();
        let mut bytes = format!("{tag} APPEND {mailbox} ({flags}) {{{}+}}\r\n", message.len()).into_bytes();
        bytes.extend_from_slice(message);
        bytes.extend_from_slice(b"\r\n");
        self.t.send_raw(&bytes)?;
        self.finish(&tag)
    }
}

/// A quoted IMAP string.
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_lengths() {
        assert_eq!(literal_len(b"* 1 FETCH (BODY[] {42}"), Some(42));
        assert_eq!(literal_len(b"* 1 FETCH (BINARY[] ~{7}"), Some(7));
        assert_eq!(literal_len(b"a1 APPEND x {3+}"), Some(3));
        assert_eq!(literal_len(b"* OK {braces} inside"), None);
        assert_eq!(literal_len(b"}"), None);
    }

    #[test]
    fn tagged_lines_split_into_status_and_text() {
        let r = Response::tagged(Vec::new(), b"BAD [CLIENTBUG] IDLE not now");
        assert_eq!(
            (r.status.as_str(), r.text.as_str()),
            ("BAD", "[CLIENTBUG] IDLE not now")
        );
        let r = Response::tagged(Vec::new(), b"OK");
        assert_eq!((r.status.as_str(), r.text.as_str()), ("OK", ""));
    }
}
