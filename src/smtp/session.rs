//! The SMTP engine's session state machine, sans-I/O. LMTP (RFC 2033) today; submission will
//! be the same engine under another `Flavor`.
//!
//! The caller feeds command lines (or, after DATA, raw bytes through `data`), resolves
//! recipient lookups and deliveries, and reports back. Replies go into the caller's buffer.
//! A delivery is only acknowledged (`250`) by the caller's report that it is durable.

use super::command::{self, Body, Command};
use super::data::{DataEnd, DataReader};

pub struct Settings {
    pub hostname: String,
    pub max_message_size: u64,
    pub max_recipients: usize,
    /// Mail domains served here; empty accepts any domain part.
    pub domains: Vec<String>,
}

/// A local recipient: the user and the mailbox the message goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub address: String,
    pub user: String,
    pub mailbox: String,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Envelope {
    pub from: String,
    pub recipients: Vec<Recipient>,
    pub message: Vec<u8>,
}

/// What became of one recipient's copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Delivered,
    OverQuota,
    /// The message itself is unacceptable (RFC 3463 X.6.0).
    BadMessage(&'static str),
    Temporary,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Continue,
    /// Does this user exist here? Call `recipient_result`.
    CheckRecipient(Recipient),
    /// Store this message for its recipients, then call `delivery_result`.
    Deliver(Envelope),
    Close,
}

enum State {
    /// Before LHLO.
    Greeted,
    Ready,
    Mail {
        from: String,
    },
    /// Waiting for `recipient_result`.
    Checking {
        from: String,
        recipients: Vec<Recipient>,
    },
    Rcpt {
        from: String,
        recipients: Vec<Recipient>,
    },
    Data {
        from: String,
        recipients: Vec<Recipient>,
        reader: DataReader,
    },
    /// Waiting for `delivery_result`.
    Delivering,
}

pub struct Session {
    settings: Settings,
    state: State,
}

fn line(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

impl Session {
    pub fn new(settings: Settings) -> Session {
        Session {
            settings,
            state: State::Greeted,
        }
    }

    pub fn greeting(&self, out: &mut Vec<u8>) {
        line(out, &format!("220 {} LMTP ringmail ready", self.settings.hostname));
    }

    /// True while message data (not command lines) is expected.
    pub fn in_data(&self) -> bool {
        matches!(self.state, State::Data { .. })
    }

    pub fn too_long(&mut self, out: &mut Vec<u8>) -> Action {
        line(out, "500 5.5.2 line too long");
        Action::Continue
    }

    pub fn on_line(&mut self, input: &[u8], out: &mut Vec<u8>) -> Action {
        let command = match command::parse(input) {
            Ok(c) => c,
            Err(e) => {
                line(out, &e.to_string());
                return Action::Continue;
            }
        };
        match command {
            Command::Lhlo(_) => self.lhlo(out),
            Command::Helo(_) | Command::Ehlo(_) => line(out, "500 5.5.1 this is LMTP: use LHLO"),
            Command::Mail { from, size, body } => self.mail(from, size, body, out),
            Command::Rcpt { to } => return self.rcpt(to, out),
            Command::Data => self.data_start(out),
            Command::Rset => {
                if !matches!(self.state, State::Greeted) {
                    self.state = State::Ready;
                }
                line(out, "250 2.0.0 OK");
            }
            Command::Noop => line(out, "250 2.0.0 OK"),
            Command::Vrfy => line(out, "252 2.5.0 cannot VRFY user, but will accept message"),
            Command::Help => line(out, "214 2.0.0 LHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP"),
            Command::Quit => {
                line(out, &format!("221 2.0.0 {} closing connection", self.settings.hostname));
                return Action::Close;
            }
        }
        Action::Continue
    }

    fn lhlo(&mut self, out: &mut Vec<u8>) {
        self.state = State::Ready;
        line(out, &format!("250-{}", self.settings.hostname));
        line(out, "250-PIPELINING");
        line(out, "250-ENHANCEDSTATUSCODES");
        line(out, "250-8BITMIME");
        line(out, &format!("250 SIZE {}", self.settings.max_message_size));
    }

    fn mail(&mut self, from: String, size: Option<u64>, _body: Body, out: &mut Vec<u8>) {
        match self.state {
            State::Greeted => return line(out, "503 5.5.1 LHLO first"),
            State::Ready => {}
            _ => return line(out, "503 5.5.1 nested MAIL command"),
        }
        // RFC 1870 §6.3: refuse a declared size over the limit up front.
        if size.is_some_and(|s| s > self.settings.max_message_size) {
            return line(out, "552 5.3.4 message size exceeds fixed maximum message size");
        }
        self.state = State::Mail { from };
        line(out, "250 2.1.0 sender OK");
    }

    fn rcpt(&mut self, to: String, out: &mut Vec<u8>) -> Action {
        let (from, recipients) = match std::mem::replace(&mut self.state, State::Ready) {
            State::Mail { from } => (from, Vec::new()),
            State::Rcpt { from, recipients } => (from, recipients),
            other => {
                self.state = other;
                line(out, "503 5.5.1 need MAIL before RCPT");
                return Action::Continue;
            }
        };
        if recipients.len() >= self.settings.max_recipients {
            self.state = State::Rcpt { from, recipients };
            line(out, "452 4.5.3 too many recipients");
            return Action::Continue;
        }
        let Some(recipient) = self.local_recipient(&to) else {
            self.restore_after_refusal(from, recipients);
            line(out, "550 5.1.1 no such user here");
            return Action::Continue;
        };
        self.state = State::Checking { from, recipients };
        Action::CheckRecipient(recipient)
    }

    fn restore_after_refusal(&mut self, from: String, recipients: Vec<Recipient>) {
        self.state = if recipients.is_empty() {
            State::Mail { from }
        } else {
            State::Rcpt { from, recipients }
        };
    }

    /// `<name@domain>` is user `name` (lowercased). `name+detail` is user `name` too, and the
    /// detail names the mailbox to deliver into (the caller falls back to INBOX when the user
    /// has no such mailbox), as Dovecot's `lmtp_save_to_detail_mailbox` does.
    fn local_recipient(&self, address: &str) -> Option<Recipient> {
        let (local, domain) = match address.rsplit_once('@') {
            Some((l, d)) => (l, Some(d)),
            None => (address, None),
        };
        if let Some(domain) = domain {
            if !self.settings.domains.is_empty()
                && !self.settings.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
            {
                return None;
            }
        }
        let (user, detail) = local.split_once('+').unwrap_or((local, ""));
        if user.is_empty() {
            return None;
        }
        Some(Recipient {
            address: address.to_owned(),
            user: user.to_ascii_lowercase(),
            mailbox: if detail.is_empty() {
                "INBOX".into()
            } else {
                detail.to_owned()
            },
        })
    }

    pub fn recipient_result(&mut self, recipient: Recipient, exists: bool, out: &mut Vec<u8>) -> Action {
        let State::Checking { from, mut recipients } = std::mem::replace(&mut self.state, State::Ready) else {
            return Action::Close;
        };
        if exists {
            recipients.push(recipient);
            self.state = State::Rcpt { from, recipients };
            line(out, "250 2.1.5 recipient OK");
        } else {
            self.restore_after_refusal(from, recipients);
            line(out, "550 5.1.1 no such user here");
        }
        Action::Continue
    }

    fn data_start(&mut self, out: &mut Vec<u8>) {
        match std::mem::replace(&mut self.state, State::Ready) {
            State::Rcpt { from, recipients } => {
                let max = usize::try_from(self.settings.max_message_size).unwrap_or(usize::MAX);
                self.state = State::Data {
                    from,
                    recipients,
                    reader: DataReader::new(max),
                };
                line(out, "354 start mail input; end with <CRLF>.<CRLF>");
            }
            State::Mail { from } => {
                self.state = State::Mail { from };
                line(out, "554 5.5.1 no valid recipients");
            }
            other => {
                self.state = other;
                line(out, "503 5.5.1 need RCPT before DATA");
            }
        }
    }

    /// Feeds message data; returns how much of `input` was used and what to do next.
    pub fn data(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, Action) {
        let State::Data { reader, .. } = &mut self.state else {
            return (0, Action::Continue);
        };
        let (used, end) = reader.feed(input);
        let Some(end) = end else {
            return (used, Action::Continue);
        };
        let State::Data { from, recipients, .. } = std::mem::replace(&mut self.state, State::Ready) else {
            unreachable!("matched above")
        };
        match end {
            DataEnd::TooBig => {
                // RFC 2033 §4.2: one reply per recipient, even when all are the same.
                for _ in &recipients {
                    line(out, "552 5.3.4 message size exceeds fixed maximum message size");
                }
                (used, Action::Continue)
            }
            DataEnd::Complete(message) => {
                self.state = State::Delivering;
                (
                    used,
                    Action::Deliver(Envelope {
                        from,
                        recipients,
                        message,
                    }),
                )
            }
        }
    }

    /// One status per recipient of the last `Deliver`, in order.
    pub fn delivery_result(
        &mut self,
        recipients: &[Recipient],
        statuses: &[DeliveryStatus],
        out: &mut Vec<u8>,
    ) -> Action {
        self.state = State::Ready;
        for (r, status) in recipients.iter().zip(statuses) {
            let text = match status {
                DeliveryStatus::Delivered => format!("250 2.0.0 <{}> delivered", r.address),
                DeliveryStatus::OverQuota => format!("552 5.2.2 <{}> mailbox full", r.address),
                DeliveryStatus::BadMessage(why) => format!("554 5.6.0 {why}"),
                DeliveryStatus::Temporary => format!("451 4.3.0 <{}> temporary failure, try again later", r.address),
            };
            line(out, &text);
        }
        Action::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session::new(Settings {
            hostname: "mx.test".into(),
            max_message_size: 100,
            max_recipients: 2,
            domains: vec![],
        })
    }

    fn say(s: &mut Session, line: &str) -> (Action, String) {
        let mut out = Vec::new();
        let action = s.on_line(line.as_bytes(), &mut out);
        (action, String::from_utf8(out).unwrap())
    }

    fn accept(s: &mut Session, to: &str) {
        let Action::CheckRecipient(r) = say(s, &format!("RCPT TO:<{to}>")).0 else {
            panic!("expected a lookup")
        };
        let mut out = Vec::new();
        s.recipient_result(r, true, &mut out);
        assert!(out.starts_with(b"250"));
    }

    #[test]
    fn transaction_script() {
        let mut s = session();
        assert!(say(&mut s, "MAIL FROM:<a@b>").1.starts_with("503"), "LHLO first");
        assert!(say(&mut s, "LHLO x").1.ends_with("250 SIZE 100\r\n"));
        assert!(say(&mut s, "DATA").1.starts_with("503"));
        assert!(say(&mut s, "MAIL FROM:<a@b> SIZE=101").1.starts_with("552"));
        assert!(say(&mut s, "MAIL FROM:<a@b>").1.starts_with("250"));
        assert!(say(&mut s, "DATA").1.starts_with("554"), "no recipients yet");
        accept(&mut s, "bob+Work@x");
        accept(&mut s, "carol@x");
        assert!(say(&mut s, "RCPT TO:<dave@x>").1.starts_with("452"));
        assert!(say(&mut s, "DATA").1.starts_with("354"));
        assert!(s.in_data());
        let mut out = Vec::new();
        let (used, action) = s.data(b"A: b\r\n\r\n..x\r\n.\r\nQUIT\r\n", &mut out);
        assert_eq!(used, 16);
        let Action::Deliver(env) = action else {
            panic!("expected a delivery")
        };
        assert_eq!(env.message, b"A: b\r\n\r\n.x\r\n");
        assert_eq!(env.recipients[0].user, "bob");
        assert_eq!(env.recipients[0].mailbox, "Work");
        assert_eq!(env.recipients[1].mailbox, "INBOX");
        let statuses = [DeliveryStatus::Delivered, DeliveryStatus::OverQuota];
        s.delivery_result(&env.recipients, &statuses, &mut out);
        let replies = String::from_utf8(out).unwrap();
        assert_eq!(
            replies,
            "250 2.0.0 <bob+Work@x> delivered\r\n552 5.2.2 <carol@x> mailbox full\r\n"
        );
        assert!(
            say(&mut s, "MAIL FROM:<>").1.starts_with("250"),
            "ready for the next one"
        );
    }

    #[test]
    fn unknown_and_foreign_recipients() {
        let mut s = Session::new(Settings {
            hostname: "mx.test".into(),
            max_message_size: 100,
            max_recipients: 5,
            domains: vec!["example.org".into()],
        });
        say(&mut s, "LHLO x");
        say(&mut s, "MAIL FROM:<>");
        assert!(say(&mut s, "RCPT TO:<bob@other.net>").1.starts_with("550 5.1.1"));
        let Action::CheckRecipient(r) = say(&mut s, "RCPT TO:<bob@EXAMPLE.org>").0 else {
            panic!()
        };
        let mut out = Vec::new();
        s.recipient_result(r, false, &mut out);
        assert!(out.starts_with(b"550 5.1.1"));
        assert!(say(&mut s, "DATA").1.starts_with("554"));
    }

    #[test]
    fn oversized_data_gets_one_reply_per_recipient() {
        let mut s = session();
        say(&mut s, "LHLO x");
        say(&mut s, "MAIL FROM:<>");
        accept(&mut s, "a@x");
        accept(&mut s, "b@x");
        say(&mut s, "DATA");
        let mut out = Vec::new();
        let big = [b"A: b\r\n\r\n".as_slice(), &[b'x'; 200], b"\r\n.\r\n"].concat();
        let (used, action) = s.data(&big, &mut out);
        assert_eq!((used, action), (big.len(), Action::Continue));
        assert_eq!(String::from_utf8(out).unwrap().matches("552 5.3.4").count(), 2);
        assert!(!s.in_data());
    }
}
