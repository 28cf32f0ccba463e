//! An SMTP submission client (RFC 6409, RFC 5321): EHLO, STARTTLS, AUTH PLAIN / LOGIN /
//! SCRAM-SHA-256, MAIL/RCPT/DATA with dot-stuffing, and BDAT chunks (RFC 3030).

use std::io;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rustls::ClientConfig;

pub use super::lmtp::{stuff, Reply};
use super::scram::ScramClient;
use super::Transport;

pub struct Smtp {
    pub t: Transport,
    /// The EHLO keywords of the last EHLO (first line, the greeting, left out).
    pub caps: Vec<String>,
}

/// The replies of one transaction.
#[derive(Debug, Clone)]
pub struct Sent {
    pub mail: Reply,
    pub rcpt: Vec<Reply>,
    /// The reply after the data; None when DATA itself was refused.
    pub data: Option<Reply>,
}

impl Smtp {
    pub fn new(t: Transport) -> io::Result<Smtp> {
        let mut me = Smtp { t, caps: Vec::new() };
        let greeting = me.reply()?;
        if greeting.code != 220 {
            return Err(io::Error::other(format!("greeting {greeting:?}")));
        }
        Ok(me)
    }

    /// A complete reply: its code and every line's text.
    pub fn reply_lines(&mut self) -> io::Result<(u16, Vec<String>)> {
        let mut lines = Vec::new();
        loop {
            let line = self.t.read_line_string()?;
            let code = line.get(..3).and_then(|c| c.parse().ok());
            let Some(code) = code else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad reply {line:?}"),
                ));
            };
            lines.push(line.get(4..).unwrap_or("").to_owned());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok((code, lines));
            }
        }
    }

    pub fn reply(&mut self) -> io::Result<Reply> {
        let (code, mut lines) = self.reply_lines()?;
        Ok(Reply {
            code,
            text: lines.pop().unwrap_or_default(),
        })
    }

    pub fn cmd(&mut self, line: &str) -> io::Result<Reply> {
        self.t.send_line(line)?;
        self.reply()
    }

    /// EHLO; remembers and returns the keywords.
    pub fn ehlo(&mut self, name: &str) -> io::Result<Vec<String>> {
        self.t.send_line(&format!("EHLO {name}"))?;
        let (code, lines) = self.reply_lines()?;
        if code != 250 {
            return Err(io::Error::other(format!("EHLO {code} {lines:?}")));
        }
        self.caps = lines.into_iter().skip(1).collect();
        Ok(self.caps.clone())
    }

    /// STARTTLS, the handshake, and EHLO again (RFC 3207 §4.2).
    pub fn starttls(&mut self, config: Arc<ClientConfig>, name: &str) -> io::Result<()> {
        let reply = self.cmd("STARTTLS")?;
        if reply.code != 220 {
            return Err(io::Error::other(format!("STARTTLS {reply:?}")));
        }
        self.t.start_tls(config, name)?;
        self.ehlo("client.test").map(|_| ())
    }

    pub fn auth_plain(&mut self, user: &str, password: &str) -> io::Result<Reply> {
        self.cmd(&format!("AUTH PLAIN {}", B64.encode(format!("\0{user}\0{password}"))))
    }

    pub fn auth_login(&mut self, user: &str, password: &str) -> io::Result<Reply> {
        let reply = self.cmd("AUTH LOGIN")?;
        if reply.code != 334 {
            return Ok(reply);
        }
        let reply = self.cmd(&B64.encode(user))?;
        if reply.code != 334 {
            return Ok(reply);
        }
        self.cmd(&B64.encode(password))
    }

    /// RFC 7677 over RFC 4954: initial response, server-first, client-final, then the
    /// server-final is checked and acknowledged.
    pub fn auth_scram(&mut self, user: &str, password: &str) -> io::Result<Reply> {
        let mut scram = ScramClient::new(user, password);
        let reply = self.cmd(&format!("AUTH SCRAM-SHA-256 {}", B64.encode(scram.client_first())))?;
        if reply.code != 334 {
            return Ok(reply);
        }
        let server_first = B64.decode(&reply.text).map_err(io::Error::other)?;
        let reply = self.cmd(&B64.encode(scram.client_final(&server_first)?))?;
        if reply.code != 334 {
            return Ok(reply);
        }
        scram.verify_server_final(&B64.decode(&reply.text).map_err(io::Error::other)?)?;
        self.cmd("")
    }

    /// MAIL, each RCPT, DATA and the message.
    pub fn send(&mut self, from: &str, to: &[&str], message: &[u8]) -> io::Result<Sent> {
        let mail = self.cmd(&format!("MAIL FROM:<{from}>"))?;
        let mut rcpt = Vec::new();
        for r in to {
            rcpt.push(self.cmd(&format!("RCPT TO:<{r}>"))?);
        }
        let data = self.cmd("DATA")?;
        if data.code != 354 {
            return Ok(Sent { mail, rcpt, data: None });
        }
        self.t.send_raw(&stuff(message))?;
        let data = Some(self.reply()?);
        Ok(Sent { mail, rcpt, data })
    }

    /// The message as BDAT chunks, all pipelined; one reply per chunk.
    pub fn bdat(&mut self, chunks: &[&[u8]]) -> io::Result<Vec<Reply>> {
        let mut wire = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let last = if i + 1 == chunks.len() { " LAST" } else { "" };
            wire.extend_from_slice(format!("BDAT {}{last}\r\n", chunk.len()).as_bytes());
            wire.extend_from_slice(chunk);
        }
        self.t.send_raw(&wire)?;
        chunks.iter().map(|_| self.reply()).collect()
    }
}
