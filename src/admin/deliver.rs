//! `ringmail deliver NAME`: an LMTP client of the running server's unix socket. It returns
//! only after the server's per-recipient reply, which the server sends once the message is
//! on disk; a 4xx reply exits with EX_TEMPFAIL (75) so an MTA calling it retries later.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// sysexits.h: temporary failure, the caller should retry.
pub const EX_TEMPFAIL: i32 = 75;

#[derive(Debug)]
pub struct Rejected {
    pub reply: String,
    pub temporary: bool,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "server refused the message: {}", self.reply)
    }
}

impl std::error::Error for Rejected {}

/// Delivers `message` to `user` (into `mailbox`, INBOX when None).
pub fn deliver(socket: &Path, user: &str, mailbox: Option<&str>, message: &[u8]) -> Result<()> {
    let stream = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach the server at {} (is `ringmail serve` running?)",
            socket.display()
        )
    })?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = std::io::BufWriter::new(stream);
    expect(&mut reader, "220")?;
    send(&mut writer, "LHLO localhost")?;
    expect(&mut reader, "250")?;
    send(&mut writer, "MAIL FROM:<>")?;
    expect(&mut reader, "250")?;
    let address = match mailbox {
        Some(m) if !m.eq_ignore_ascii_case("INBOX") => format!("{user}+{m}"),
        _ => user.to_owned(),
    };
    send(&mut writer, &format!("RCPT TO:<{address}>"))?;
    expect(&mut reader, "250")?;
    send(&mut writer, "DATA")?;
    expect(&mut reader, "354")?;
    write_stuffed(&mut writer, message)?;
    writer.flush()?;
    expect(&mut reader, "250")?;
    let _ = send(&mut writer, "QUIT");
    Ok(())
}

pub fn read_stdin() -> Result<Vec<u8>> {
    let mut message = Vec::new();
    std::io::stdin()
        .read_to_end(&mut message)
        .context("cannot read the message from stdin")?;
    if message.is_empty() {
        bail!("no message on stdin");
    }
    Ok(message)
}

fn send(w: &mut impl Write, line: &str) -> Result<()> {
    w.write_all(line.as_bytes())?;
    w.write_all(b"\r\n")?;
    w.flush()?;
    Ok(())
}

/// Reads one (possibly multi-line) reply and checks its code.
fn expect(r: &mut impl BufRead, code: &str) -> Result<()> {
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            bail!("the server closed the connection");
        }
        let line = line.trim_end();
        if line.len() > 3 && line.as_bytes()[3] == b'-' {
            continue;
        }
        if line.starts_with(code) {
            return Ok(());
        }
        return Err(Rejected {
            reply: line.to_owned(),
            temporary: line.starts_with('4'),
        }
        .into());
    }
}

/// RFC 5321 §4.5.2: a line starting with '.' gets another; the data ends with CRLF.CRLF.
fn write_stuffed(w: &mut impl Write, message: &[u8]) -> Result<()> {
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            w.write_all(b".")?;
        }
        w.write_all(line)?;
    }
    if !message.ends_with(b"\n") {
        w.write_all(b"\r\n")?;
    }
    w.write_all(b".\r\n")?;
    Ok(())
}
