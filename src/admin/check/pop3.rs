//! The POP3 client of `ringmail check` (RFC 1939, CAPA and STLS of RFC 2449 and RFC 2595):
//! one command at a time, multi-line answers read to their "." line and un-dot-stuffed.

use super::conn::Conn;
use super::{CheckError, Target};

pub(super) struct Pop3 {
    conn: Conn,
}

impl Pop3 {
    /// Connects and reads the greeting; `implicit_tls` for port 995.
    pub fn connect(target: &Target, port: u16, implicit_tls: bool) -> Result<Pop3, CheckError> {
        let conn = if implicit_tls {
            Conn::connect_tls(target, port)?
        } else {
            Conn::connect(target, port)?
        };
        let mut pop3 = Pop3 { conn };
        pop3.status("greeting")?;
        Ok(pop3)
    }

    /// STLS once CAPA offers it (RFC 2595 §4).
    pub fn stls(&mut self, target: &Target) -> Result<(), CheckError> {
        if !self.capa()?.iter().any(|c| c.eq_ignore_ascii_case("STLS")) {
            return Err(CheckError::NotOffered("STLS"));
        }
        self.command("STLS", "STLS")?;
        self.conn.start_tls(target)
    }

    /// USER and PASS (RFC 1939 §7).
    pub fn login(&mut self, user: &str, password: &str) -> Result<(), CheckError> {
        self.command("USER", &format!("USER {user}"))?;
        self.command("PASS", &format!("PASS {password}")).map(drop)
    }

    /// The IMPLEMENTATION the server names in CAPA (RFC 2449 §6.9).
    pub fn implementation(&mut self) -> Result<Option<String>, CheckError> {
        Ok(self.capa()?.into_iter().find_map(|line| {
            let (keyword, rest) = line.split_once(' ')?;
            keyword
                .eq_ignore_ascii_case("IMPLEMENTATION")
                .then(|| rest.trim().to_owned())
        }))
    }

    /// UIDL (RFC 1939 §7): message numbers and their unique ids.
    pub fn uidl(&mut self) -> Result<Vec<(u32, String)>, CheckError> {
        self.command("UIDL", "UIDL")?;
        Ok(self
            .lines()?
            .iter()
            .filter_map(|line| {
                let (number, uid) = line.split_once(' ')?;
                Some((number.parse().ok()?, uid.trim().to_owned()))
            })
            .collect())
    }

    /// The header of message `number` (TOP n 0, RFC 1939 §7).
    pub fn header(&mut self, number: u32) -> Result<String, CheckError> {
        self.command("TOP", &format!("TOP {number} 0"))?;
        Ok(self.lines()?.join("\r\n"))
    }

    pub fn dele(&mut self, number: u32) -> Result<(), CheckError> {
        self.command("DELE", &format!("DELE {number}")).map(drop)
    }

    /// QUIT; its +OK is the server's word that DELEs are done (RFC 1939 §6, UPDATE state).
    pub fn quit(&mut self) -> Result<(), CheckError> {
        self.command("QUIT", "QUIT").map(drop)
    }

    fn capa(&mut self) -> Result<Vec<String>, CheckError> {
        self.command("CAPA", "CAPA")?;
        self.lines()
    }

    fn command(&mut self, name: &'static str, line: &str) -> Result<String, CheckError> {
        self.conn.send(format!("{line}\r\n").as_bytes())?;
        self.status(name)
    }

    /// A `+OK` line's text, or the server's `-ERR` as a refusal.
    fn status(&mut self, name: &'static str) -> Result<String, CheckError> {
        let line = String::from_utf8_lossy(&self.conn.read_line()?).into_owned();
        if let Some(text) = line.strip_prefix("+OK") {
            return Ok(text.trim_start().to_owned());
        }
        if line.starts_with("-ERR") {
            return Err(CheckError::Refused {
                command: name,
                answer: line,
            });
        }
        Err(CheckError::Unexpected {
            command: name,
            answer: line,
        })
    }

    /// The lines of a multi-line answer, without the final "." and with byte-stuffing undone.
    fn lines(&mut self) -> Result<Vec<String>, CheckError> {
        let mut lines = Vec::new();
        loop {
            let line = self.conn.read_line()?;
            if line == b"." {
                return Ok(lines);
            }
            let line = line.strip_prefix(b".").unwrap_or(&line);
            lines.push(String::from_utf8_lossy(line).into_owned());
        }
    }
}
