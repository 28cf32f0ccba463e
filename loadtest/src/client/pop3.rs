//! A POP3 client (RFC 1939, 2449, 2595, 5034) for tests and the harness.

use std::io;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rustls::ClientConfig;

use super::scram::ScramClient;
use super::Transport;

pub struct Pop3 {
    pub t: Transport,
    pub greeting: String,
}

/// A status line: `+OK ...` or `-ERR ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub ok: bool,
    pub text: String,
}

impl Status {
    fn parse(line: &[u8]) -> io::Result<Status> {
        let line = String::from_utf8_lossy(line).into_owned();
        if let Some(rest) = line.strip_prefix("+OK") {
            Ok(Status {
                ok: true,
                text: rest.trim_start().to_owned(),
            })
        } else if let Some(rest) = line.strip_prefix("-ERR") {
            Ok(Status {
                ok: false,
                text: rest.trim_start().to_owned(),
            })
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a status line: {line:?}"),
            ))
        }
    }

    pub fn expect_ok(self) -> io::Result<Status> {
        if self.ok {
            Ok(self)
        } else {
            Err(io::Error::other(format!("-ERR {}", self.text)))
        }
    }
}

impl Pop3 {
    pub fn new(mut t: Transport) -> io::Result<Pop3> {
        let greeting = Status::parse(&t.read_line()?)?.expect_ok()?.text;
        Ok(Pop3 { t, greeting })
    }

    pub fn status(&mut self) -> io::Result<Status> {
        Status::parse(&self.t.read_line()?)
    }

    pub fn cmd(&mut self, line: &str) -> io::Result<Status> {
        self.t.send_line(line)?;
        self.status()
    }

    /// The body of a multi-line response, each line un-stuffed, without the final ".".
    pub fn lines(&mut self) -> io::Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        loop {
            let line = self.t.read_line()?;
            if line == b"." {
                return Ok(out);
            }
            out.push(match line.strip_prefix(b".") {
                Some(rest) => rest.to_vec(),
                None => line,
            });
        }
    }

    /// A multi-line command: its status, and its lines when the status is +OK.
    pub fn multi(&mut self, line: &str) -> io::Result<(Status, Vec<Vec<u8>>)> {
        let status = self.cmd(line)?;
        let lines = if status.ok { self.lines()? } else { Vec::new() };
        Ok((status, lines))
    }

    /// RETR n as the message bytes (lines joined with CRLF).
    pub fn retr(&mut self, n: u32) -> io::Result<Vec<u8>> {
        let (status, lines) = self.multi(&format!("RETR {n}"))?;
        status.expect_ok()?;
        Ok(join(lines))
    }

    pub fn capa(&mut self) -> io::Result<Vec<String>> {
        let (status, lines) = self.multi("CAPA")?;
        status.expect_ok()?;
        Ok(lines
            .into_iter()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .collect())
    }

    pub fn stls(&mut self, config: Arc<ClientConfig>, name: &str) -> io::Result<()> {
        self.cmd("STLS")?.expect_ok()?;
        self.t.start_tls(config, name)
    }

    pub fn login(&mut self, user: &str, password: &str) -> io::Result<Status> {
        self.cmd(&format!("USER {user}"))?.expect_ok()?;
        self.cmd(&format!("PASS {password}"))
    }

    pub fn auth_plain(&mut self, user: &str, password: &str, initial: bool) -> io::Result<Status> {
        let blob = B64.encode(format!("\0{user}\0{password}"));
        if initial {
            return self.cmd(&format!("AUTH PLAIN {blob}"));
        }
        self.t.send_line("AUTH PLAIN")?;
        let line = self.t.read_line_string()?;
        if !line.starts_with('+') {
            return Status::parse(line.as_bytes());
        }
        self.cmd(&blob)
    }

    pub fn auth_login(&mut self, user: &str, password: &str) -> io::Result<Status> {
        self.t.send_line("AUTH LOGIN")?;
        for answer in [user, password] {
            let line = self.t.read_line_string()?;
            if !line.starts_with("+ ") {
                return Status::parse(line.as_bytes());
            }
            self.t.send_line(&B64.encode(answer))?;
        }
        self.status()
    }

    pub fn auth_scram(&mut self, user: &str, password: &str) -> io::Result<Status> {
        let mut scram = ScramClient::new(user, password);
        self.t
            .send_line(&format!("AUTH SCRAM-SHA-256 {}", B64.encode(scram.client_first())))?;
        let line = self.t.read_line_string()?;
        let Some(challenge) = line.strip_prefix("+ ") else {
            return Status::parse(line.as_bytes());
        };
        let server_first = B64.decode(challenge.trim()).map_err(io::Error::other)?;
        let client_final = scram.client_final(&server_first)?;
        self.t.send_line(&B64.encode(client_final))?;
        let line = self.t.read_line_string()?;
        let Some(challenge) = line.strip_prefix("+ ") else {
            return Status::parse(line.as_bytes());
        };
        let server_final = B64.decode(challenge.trim()).map_err(io::Error::other)?;
        scram.verify_server_final(&server_final)?;
        self.t.send_line("")?;
        self.status()
    }
}

pub fn join(lines: Vec<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(&l);
        out.extend_from_slice(b"\r\n");
    }
    out
}
