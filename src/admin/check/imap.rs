//! The IMAP client of `ringmail check` (RFC 9051, the IMAP4rev1 forms ringmail answers by
//! default): one command at a time, answers read to their tagged line, literals in untagged
//! data read by count. Only the commands a check sends.

use super::conn::Conn;
use super::{CheckError, Target};

pub(crate) struct Imap {
    conn: Conn,
    next_tag: u32,
}

/// The untagged data that came before a command's tagged OK, each response with its
/// literals inline after a CRLF.
pub(crate) struct Answer {
    pub untagged: Vec<Vec<u8>>,
}

impl Answer {
    /// The responses as text (lossy: for the parts of them that are text).
    fn lines(&self) -> Vec<String> {
        self.untagged
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }
}

impl Imap {
    /// Connects and reads the greeting; `implicit_tls` for port 993.
    pub fn connect(target: &Target, port: u16, implicit_tls: bool) -> Result<Imap, CheckError> {
        let conn = if implicit_tls {
            Conn::connect_tls(target, port)?
        } else {
            Conn::connect(target, port)?
        };
        let mut imap = Imap { conn, next_tag: 1 };
        let greeting = String::from_utf8_lossy(&imap.read_response()?).into_owned();
        if !greeting.starts_with("* OK") {
            return Err(refusal("greeting", &greeting));
        }
        Ok(imap)
    }

    pub fn is_broken(&self) -> bool {
        self.conn.is_broken()
    }

    /// STARTTLS once CAPABILITY offers it (RFC 9051 §6.2.1).
    pub fn starttls(&mut self, target: &Target) -> Result<(), CheckError> {
        let answer = self.command("CAPABILITY", "CAPABILITY")?;
        let offered = answer
            .lines()
            .iter()
            .filter(|l| l.starts_with("* CAPABILITY "))
            .any(|l| l.split_ascii_whitespace().any(|c| c.eq_ignore_ascii_case("STARTTLS")));
        if !offered {
            return Err(CheckError::NotOffered("STARTTLS"));
        }
        self.command("STARTTLS", "STARTTLS")?;
        self.conn.start_tls(target)
    }

    /// LOGIN (RFC 9051 §6.2.3), each argument a quoted string or, when it cannot be one, a
    /// synchronizing literal.
    pub fn login(&mut self, user: &str, password: &str) -> Result<(), CheckError> {
        let tag = self.tag();
        let mut pending = format!("{tag} LOGIN");
        for value in [user, password] {
            match quoted(value) {
                Some(q) => {
                    pending.push(' ');
                    pending.push_str(&q);
                }
                None => {
                    pending.push_str(&format!(" {{{}}}\r\n", value.len()));
                    self.conn.send(pending.as_bytes())?;
                    self.continuation(&tag)?;
                    pending = value.to_owned();
                }
            }
        }
        pending.push_str("\r\n");
        self.conn.send(pending.as_bytes())?;
        self.finish(&tag, "LOGIN").map(drop)
    }

    /// RFC 2971 ID: the host a logged-in session reached (ringmail's `x-host`: behind a front
    /// end, the back end), else the server's `name` and `version`, e.g. "ringmail 0.1".
    pub fn id(&mut self) -> Result<Option<String>, CheckError> {
        let answer = self.command("ID", "ID NIL")?.lines();
        let Some(line) = answer.iter().find(|l| l.starts_with("* ID ")) else {
            return Ok(None);
        };
        let fields = quoted_strings(&line["* ID ".len()..]);
        let value = |key: &str| {
            fields
                .chunks(2)
                .find(|pair| pair[0].eq_ignore_ascii_case(key))
                .and_then(|pair| pair.get(1).cloned())
        };
        if let Some(host) = value("x-host") {
            return Ok(Some(host));
        }
        let name = value("name");
        Ok(match (name, value("version")) {
            (Some(name), Some(version)) => Some(format!("{name} {version}")),
            (name, _) => name,
        })
    }

    pub fn select_inbox(&mut self) -> Result<(), CheckError> {
        self.command("SELECT", "SELECT INBOX").map(drop)
    }

    /// The UIDs of the messages whose Subject: holds `token` (RFC 9051 §6.4.4). A NOOP first
    /// lets the server announce what arrived since the last command.
    pub fn search_subject(&mut self, token: &str) -> Result<Vec<u32>, CheckError> {
        self.command("NOOP", "NOOP")?;
        let answer = self.command("UID SEARCH", &format!("UID SEARCH HEADER Subject {token}"))?;
        Ok(answer
            .lines()
            .iter()
            .filter_map(|l| l.strip_prefix("* SEARCH"))
            .flat_map(|numbers| numbers.split_ascii_whitespace().filter_map(|n| n.parse().ok()))
            .collect())
    }

    /// The Received: fields of message `uid`, as they came in the FETCH data.
    pub fn received_fields(&mut self, uid: u32) -> Result<String, CheckError> {
        let answer = self.command(
            "UID FETCH",
            &format!("UID FETCH {uid} (BODY.PEEK[HEADER.FIELDS (Received)])"),
        )?;
        Ok(answer.lines().join("\r\n"))
    }

    /// Flags the messages \Deleted and expunges exactly them (RFC 4315 UID EXPUNGE), never
    /// another message the user had flagged; an error unless the server expunged them.
    pub fn delete(&mut self, uids: &[u32]) -> Result<(), CheckError> {
        let set = uids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        self.command("UID STORE", &format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"))?;
        let answer = self.command("UID EXPUNGE", &format!("UID EXPUNGE {set}"))?;
        let expunged = answer
            .lines()
            .iter()
            .filter(|l| l.ends_with(" EXPUNGE") || l.starts_with("* VANISHED"))
            .count();
        if expunged == 0 {
            return Err(CheckError::Unexpected {
                command: "UID EXPUNGE",
                answer: "no message expunged".into(),
            });
        }
        Ok(())
    }

    pub fn logout(&mut self) -> Result<(), CheckError> {
        self.command("LOGOUT", "LOGOUT").map(drop)
    }

    fn tag(&mut self) -> String {
        let tag = format!("c{}", self.next_tag);
        self.next_tag += 1;
        tag
    }

    /// Sends `tag SP text` and reads to the tagged answer.
    pub(crate) fn command(&mut self, name: &'static str, text: &str) -> Result<Answer, CheckError> {
        let tag = self.tag();
        self.conn.send(format!("{tag} {text}\r\n").as_bytes())?;
        self.finish(&tag, name)
    }

    /// Reads to the line tagged `tag`: Ok with the untagged data before it for OK; the
    /// server's words for NO, BAD, or a BYE before the end of anything but LOGOUT.
    fn finish(&mut self, tag: &str, name: &'static str) -> Result<Answer, CheckError> {
        let mut untagged = Vec::new();
        loop {
            let response = self.read_response()?;
            if let Some(status) = response.strip_prefix(tag.as_bytes()).and_then(|r| r.strip_prefix(b" ")) {
                if status.starts_with(b"OK") {
                    return Ok(Answer { untagged });
                }
                return Err(refusal(name, &String::from_utf8_lossy(status)));
            }
            if response.starts_with(b"* BYE") && name != "LOGOUT" {
                return Err(refusal(name, &String::from_utf8_lossy(&response)));
            }
            untagged.push(response);
        }
    }

    /// Waits for the `+` that lets a synchronizing literal go (RFC 9051 §7.5).
    fn continuation(&mut self, tag: &str) -> Result<(), CheckError> {
        loop {
            let response = self.read_response()?;
            if response.starts_with(b"+") {
                return Ok(());
            }
            if let Some(status) = response.strip_prefix(tag.as_bytes()).and_then(|r| r.strip_prefix(b" ")) {
                return Err(refusal("LOGIN", &String::from_utf8_lossy(status)));
            }
        }
    }

    /// One response line with the literals it announces (`{n}` at a line's end, RFC 9051
    /// §4.3) read by count and appended after a CRLF.
    fn read_response(&mut self) -> Result<Vec<u8>, CheckError> {
        let mut response = self.conn.read_line()?;
        while let Some(n) = literal_length(&response) {
            response.extend_from_slice(b"\r\n");
            let literal = self.conn.read_bytes(n)?;
            response.extend_from_slice(&literal);
            response.extend_from_slice(&self.conn.read_line()?);
        }
        Ok(response)
    }

    /// Takes literals of up to `max` bytes (messages, for an import) instead of `MAX_LINE`.
    pub(crate) fn allow_literals(&mut self, max: usize) {
        self.conn.allow_literals(max);
    }
}

fn refusal(command: &'static str, answer: &str) -> CheckError {
    CheckError::Refused {
        command,
        answer: answer.to_owned(),
    }
}

/// The `n` of a line ending in `{n}` (or `{n+}`, `~{n}`).
fn literal_length(line: &[u8]) -> Option<usize> {
    let open = line.strip_suffix(b"}")?;
    let start = open.iter().rposition(|&b| b == b'{')?;
    let digits = &open[start + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// `value` as a quoted string (RFC 9051 §9 `quoted`), or None when it needs a literal.
fn quoted(value: &str) -> Option<String> {
    if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    Some(format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"")))
}

/// The quoted strings of an ID parameter list, NIL as an empty string, in order.
fn quoted_strings(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = list.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut s = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => s.extend(chars.next()),
                        '"' => break,
                        c => s.push(c),
                    }
                }
                out.push(s);
            }
            'N' | 'n'
                if chars
                    .as_str()
                    .get(..2)
                    .is_some_and(|rest| rest.eq_ignore_ascii_case("IL")) =>
            {
                chars.nth(1);
                out.push(String::new());
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_announced_at_the_end_of_a_line() {
        let cases: [(&[u8], Option<usize>); 7] = [
            (b"* 1 FETCH (BODY[] {12}", Some(12)),
            (b"* 1 FETCH (BODY[] {12+}", Some(12)),
            (b"* 1 FETCH (BINARY[] ~{0}", Some(0)),
            (b"* OK {12} later", None),
            (b"* OK {}", None),
            (b"* OK {1a}", None),
            (b"}", None),
        ];
        for (line, n) in cases {
            assert_eq!(literal_length(line), n, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn login_arguments_are_quoted_or_literal() {
        assert_eq!(quoted("bob").as_deref(), Some("\"bob\""));
        assert_eq!(quoted("s3cret pass").as_deref(), Some("\"s3cret pass\""));
        assert_eq!(quoted(r#"a"b\c"#).as_deref(), Some(r#""a\"b\\c""#));
        assert_eq!(quoted("pässword"), None);
        assert_eq!(quoted("a\tb"), None);
    }

    #[test]
    fn id_lists_are_read_pairwise() {
        let fields = quoted_strings(r#"("name" "ringmail" "version" "0.1" "x" NIL "q" "a\"b")"#);
        assert_eq!(fields, ["name", "ringmail", "version", "0.1", "x", "", "q", "a\"b"]);
        assert!(quoted_strings("NIL").iter().all(String::is_empty));
    }
}
