//! The submission client of `ringmail check` (RFC 6409 over RFC 5321, STARTTLS of RFC 3207,
//! AUTH PLAIN of RFC 4954 and RFC 4616): one command at a time, replies read whole with the
//! reply parser the outbound queue uses.

use super::conn::Conn;
use super::{CheckError, Target};
use crate::smtp::client::{auth_plain, stuff, Capabilities, Reply, ReplyParser};

pub(super) struct Smtp {
    conn: Conn,
    /// The host name the greeting gave: the server the client reached (a front end, if any).
    pub greeting_host: String,
}

impl Smtp {
    /// Connects and reads the 220 greeting; `implicit_tls` for port 465 (RFC 8314 §3.3).
    pub fn connect(target: &Target, port: u16, implicit_tls: bool) -> Result<Smtp, CheckError> {
        let conn = if implicit_tls {
            Conn::connect_tls(target, port)?
        } else {
            Conn::connect(target, port)?
        };
        let mut smtp = Smtp {
            conn,
            greeting_host: String::new(),
        };
        let greeting = smtp.expect("greeting", 220)?;
        smtp.greeting_host = first_word(&greeting);
        Ok(smtp)
    }

    /// EHLO with our address as a literal (RFC 5321 §4.1.4); the reply.
    pub fn ehlo(&mut self) -> Result<Reply, CheckError> {
        let name = match self.conn.local_addr() {
            Some(std::net::SocketAddr::V4(a)) => format!("[{}]", a.ip()),
            Some(std::net::SocketAddr::V6(a)) => format!("[IPv6:{}]", a.ip()),
            None => "[127.0.0.1]".into(),
        };
        self.command("EHLO", &format!("EHLO {name}"), 250)
    }

    /// EHLO, STARTTLS once offered, EHLO again over TLS (RFC 3207 §4.2: forget what came
    /// before).
    pub fn starttls(&mut self, target: &Target) -> Result<(), CheckError> {
        if !Capabilities::from_ehlo(&self.ehlo()?).starttls {
            return Err(CheckError::NotOffered("STARTTLS"));
        }
        self.command("STARTTLS", "STARTTLS", 220)?;
        self.conn.start_tls(target)?;
        self.ehlo().map(drop)
    }

    /// AUTH PLAIN with an initial response, then an EHLO whose greeting line names the
    /// server that holds the session now: behind a front end, the back end it relays to (an
    /// EHLO resets the transaction, not the authentication).
    pub fn auth_plain(&mut self, user: &str, password: &str) -> Result<String, CheckError> {
        let initial = auth_plain(user, password);
        self.command("AUTH", &format!("AUTH PLAIN {initial}"), 235)?;
        Ok(first_word(&self.ehlo()?))
    }

    /// One message from `from` to `to`, through DATA.
    pub fn send(&mut self, from: &str, to: &str, message: &[u8]) -> Result<(), CheckError> {
        self.command("MAIL", &format!("MAIL FROM:<{from}>"), 250)?;
        self.command("RCPT", &format!("RCPT TO:<{to}>"), 250)?;
        self.command("DATA", "DATA", 354)?;
        self.conn.send(&stuff(message))?;
        self.expect("DATA", 250).map(drop)
    }

    pub fn quit(&mut self) -> Result<(), CheckError> {
        self.command("QUIT", "QUIT", 221).map(drop)
    }

    fn command(&mut self, name: &'static str, line: &str, code: u16) -> Result<Reply, CheckError> {
        self.conn.send(format!("{line}\r\n").as_bytes())?;
        self.expect(name, code)
    }

    /// The next reply, which must have `code`; any other is the server's refusal.
    fn expect(&mut self, name: &'static str, code: u16) -> Result<Reply, CheckError> {
        let mut parser = ReplyParser::default();
        let reply = loop {
            let line = self.conn.read_line()?;
            match parser.line(&line) {
                Ok(Some(reply)) => break reply,
                Ok(None) => {}
                Err(_) => {
                    return Err(CheckError::Unexpected {
                        command: name,
                        answer: String::from_utf8_lossy(&line).into_owned(),
                    })
                }
            }
        };
        if reply.code != code {
            return Err(CheckError::Refused {
                command: name,
                answer: reply.text(),
            });
        }
        Ok(reply)
    }
}

/// The first word of a reply: the server's name in a greeting and an EHLO reply.
fn first_word(reply: &Reply) -> String {
    let line = reply.lines.first().map(String::as_str).unwrap_or("");
    line.split_ascii_whitespace().next().unwrap_or("").to_owned()
}
