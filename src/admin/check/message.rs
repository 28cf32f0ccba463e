//! The test message of `ringmail check`: what it says, how to know it again in a mailbox (the
//! random token in its Subject:), and which server took it in (the `by` clause of the
//! Received: field the submission server put on top, RFC 5321 §4.4).

use crate::smtp::date;

pub(super) struct TestMessage {
    /// 16 random hex digits: an IMAP atom for SEARCH, unique in any mailbox.
    pub token: String,
    /// The whole message, CRLF line ends, not yet dot-stuffed.
    pub bytes: Vec<u8>,
}

impl TestMessage {
    /// A message from `address` to itself, dated `now` (Unix seconds).
    pub fn new(address: &str, now: i64) -> TestMessage {
        let token = format!("{:016x}", rand::random::<u64>());
        let domain = address.rsplit_once('@').map_or("localhost", |(_, d)| d);
        let text = format!(
            "From: <{address}>\r\n\
             To: <{address}>\r\n\
             Subject: ringmail check {token}\r\n\
             Date: {date}\r\n\
             Message-ID: <check.{token}@{domain}>\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=us-ascii\r\n\
             \r\n\
             A test message of `ringmail check`, deleted again once it is found.\r\n",
            date = date::rfc5322(now),
        );
        TestMessage {
            token,
            bytes: text.into_bytes(),
        }
    }
}

/// Whether the Subject: of `header` (CRLF or LF lines) carries `token`.
pub(super) fn has_token(header: &str, token: &str) -> bool {
    field(header, "Subject").is_some_and(|subject| subject.contains(token))
}

/// The host in the `by` clause of the topmost Received: field of `header`.
pub(super) fn received_by(header: &str) -> Option<String> {
    let received = field(header, "Received")?;
    let mut words = received.split_ascii_whitespace();
    words.find(|w| w.eq_ignore_ascii_case("by"))?;
    let host = words.next()?.trim_end_matches(';');
    (!host.is_empty()).then(|| host.to_owned())
}

/// The value of the first field `name` in `header`, unfolded (RFC 5322 §2.2.3).
fn field(header: &str, name: &str) -> Option<String> {
    let mut lines = header.lines().skip_while(|line| !is_field(line, name));
    let first = lines.next()?;
    let mut value = first[name.len() + 1..].to_owned();
    for folded in lines.take_while(|l| l.starts_with([' ', '\t'])) {
        value.push(' ');
        value.push_str(folded.trim());
    }
    Some(value)
}

fn is_field(line: &str, name: &str) -> bool {
    line.len() > name.len()
        && line.as_bytes()[name.len()] == b':'
        && line.as_bytes()[..name.len()].eq_ignore_ascii_case(name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Received: from [127.0.0.1] ([127.0.0.1])\r\n\tby b1.test (ringmail) with ESMTPSA id 1f\r\n\
                          \t(authenticated as bob);\r\n\tMon, 1 Jan 2024 00:00:00 +0000\r\n\
                          Received: from elsewhere by older.test;\r\n\
                          subject: ringmail check\r\n 00ff00ff00ff00ff\r\n\r\n";

    #[test]
    fn the_topmost_received_field_names_the_server() {
        assert_eq!(received_by(HEADER).as_deref(), Some("b1.test"));
        assert_eq!(
            received_by("Received: from x by y.test;\r\n").as_deref(),
            Some("y.test")
        );
        assert_eq!(received_by("Received: from x\r\n"), None);
        assert_eq!(received_by("X-Received: by z\r\n"), None);
        assert_eq!(received_by(""), None);
    }

    #[test]
    fn the_token_is_found_in_a_folded_subject_only() {
        assert!(has_token(HEADER, "00ff00ff00ff00ff"));
        assert!(!has_token(HEADER, "0123456789abcdef"));
        assert!(!has_token("Message-ID: <check.aa@x>\r\n", "aa"));
    }

    #[test]
    fn the_message_carries_its_token() {
        let m = TestMessage::new("bob@localhost", 0);
        let text = String::from_utf8(m.bytes).unwrap();
        assert_eq!(m.token.len(), 16);
        assert!(has_token(&text, &m.token), "{text}");
        assert!(text.contains(&format!("Message-ID: <check.{}@localhost>\r\n", m.token)));
        assert!(text.ends_with("found.\r\n"));
    }
}
