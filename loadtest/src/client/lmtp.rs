//! An LMTP client (RFC 2033): one transaction, one reply per recipient.

use std::io;

use super::Transport;

pub struct Lmtp {
    pub t: Transport,
}

/// A complete reply: its code and the text of its last line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Lmtp {
    pub fn new(t: Transport) -> io::Result<Lmtp> {
        let mut me = Lmtp { t };
        let greeting = me.reply()?;
        if greeting.code != 220 {
            return Err(io::Error::other(format!("greeting {greeting:?}")));
        }
        Ok(me)
    }

    pub fn reply(&mut self) -> io::Result<Reply> {
        loop {
            let line = self.t.read_line_string()?;
            let code = line.get(..3).and_then(|c| c.parse().ok());
            let Some(code) = code else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad reply {line:?}"),
                ));
            };
            if line.as_bytes().get(3) == Some(&b'-') {
                continue;
            }
            return Ok(Reply {
                code,
                text: line.get(4..).unwrap_or("").to_owned(),
            });
        }
    }

    pub fn cmd(&mut self, line: &str) -> io::Result<Reply> {
        self.t.send_line(line)?;
        self.reply()
    }

    /// LHLO, MAIL, each RCPT, DATA; returns the RCPT replies and the per-recipient DATA replies.
    pub fn send(&mut self, from: &str, to: &[&str], message: &[u8]) -> io::Result<(Vec<Reply>, Vec<Reply>)> {
        let lhlo = self.cmd("LHLO client.test")?;
        if lhlo.code != 250 {
            return Err(io::Error::other(format!("LHLO {lhlo:?}")));
        }
        let mail = self.cmd(&format!("MAIL FROM:<{from}>"))?;
        if mail.code != 250 {
            return Err(io::Error::other(format!("MAIL {mail:?}")));
        }
        let mut rcpt = Vec::new();
        for r in to {
            rcpt.push(self.cmd(&format!("RCPT TO:<{r}>"))?);
        }
        let accepted = rcpt.iter().filter(|r| r.code == 250).count();
        let data = self.cmd("DATA")?;
        if data.code != 354 {
            return Ok((rcpt, vec![data]));
        }
        self.t.send_raw(&stuff(message))?;
        let mut replies = Vec::new();
        for _ in 0..accepted {
            replies.push(self.reply()?);
        }
        Ok((rcpt, replies))
    }
}

/// Dot-stuffs a message and appends the terminating ".".
pub fn stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 16);
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !message.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}
