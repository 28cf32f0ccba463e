//! The client side of SMTP, sans-I/O, for relaying to a smarthost: reply parsing (RFC 5321
//! §4.2, multi-line replies), the EHLO capabilities that matter to us, and the MAIL/RCPT
//! command lines with only the parameters the server advertised. The queue runner owns the
//! socket and the order of the dialogue.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use super::command::{Body, MailParams, RcptParams, Ret};

/// A complete reply: its code and the text of every line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The whole reply on one line, for logs and DSN diagnostics.
    pub fn text(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" "))
    }

    /// The RFC 3463 enhanced status code at the start of the last line, if any.
    pub fn enhanced(&self) -> Option<&str> {
        let word = self.lines.last()?.split(' ').next()?;
        let parts: Vec<&str> = word.split('.').collect();
        let numeric = parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        numeric.then_some(word)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("malformed reply line")]
    Malformed,
    #[error("reply lines disagree on the code")]
    Mixed,
}

/// Collects reply lines until the last one (`code SP text`).
#[derive(Default)]
pub struct ReplyParser {
    code: Option<u16>,
    lines: Vec<String>,
}

impl ReplyParser {
    /// Feeds one line without its CRLF; a complete reply comes out at its last line.
    pub fn line(&mut self, line: &[u8]) -> Result<Option<Reply>, ReplyError> {
        let text = String::from_utf8_lossy(line);
        let code = text
            .get(..3)
            .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|c| c.parse::<u16>().ok())
            .filter(|c| (200..600).contains(c))
            .ok_or(ReplyError::Malformed)?;
        if self.code.is_some_and(|c| c != code) {
            return Err(ReplyError::Mixed);
        }
        self.code = Some(code);
        self.lines.push(text.get(4..).unwrap_or("").to_owned());
        match text.as_bytes().get(3) {
            Some(b'-') => Ok(None),
            None | Some(b' ') => {
                self.code = None;
                Ok(Some(Reply {
                    code,
                    lines: std::mem::take(&mut self.lines),
                }))
            }
            Some(_) => Err(ReplyError::Malformed),
        }
    }
}

/// What the smarthost's EHLO reply offers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub starttls: bool,
    pub auth: Vec<String>,
    pub size: Option<u64>,
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
    pub dsn: bool,
}

impl Capabilities {
    pub fn from_ehlo(reply: &Reply) -> Capabilities {
        let mut caps = Capabilities::default();
        // The first line is the greeting of the server, not a keyword.
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let keyword = words.next().unwrap_or("").to_ascii_uppercase();
            match keyword.as_str() {
                "STARTTLS" => caps.starttls = true,
                "AUTH" => caps.auth = words.map(str::to_ascii_uppercase).collect(),
                "SIZE" => caps.size = words.next().and_then(|s| s.parse().ok()).filter(|&s| s > 0),
                "8BITMIME" => caps.eight_bit_mime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "DSN" => caps.dsn = true,
                _ => {}
            }
        }
        caps
    }
}

/// Why a message cannot go to this server as it is (a permanent failure, RFC 3463 X.6.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    #[error("554 5.3.4 message too big for the smarthost")]
    TooBig,
    #[error("554 5.6.3 the smarthost does not accept 8-bit mail (no 8BITMIME)")]
    EightBit,
    #[error("553 5.6.7 the smarthost does not accept internationalized addresses (no SMTPUTF8)")]
    Utf8,
}

/// `MAIL FROM:<…>` with SIZE, BODY, SMTPUTF8 and the DSN parameters the server takes.
pub fn mail_line(from: &str, size: u64, params: &MailParams, caps: &Capabilities) -> Result<String, Unsupported> {
    if caps.size.is_some_and(|max| size > max) {
        return Err(Unsupported::TooBig);
    }
    let mut line = format!("MAIL FROM:<{from}>");
    if caps.size.is_some() {
        line.push_str(&format!(" SIZE={size}"));
    }
    if params.body == Body::EightBitMime {
        // RFC 6152 §3: no downgrade here, so a server without 8BITMIME cannot take it.
        if !caps.eight_bit_mime {
            return Err(Unsupported::EightBit);
        }
        line.push_str(" BODY=8BITMIME");
    }
    if params.smtputf8 {
        if !caps.smtputf8 {
            return Err(Unsupported::Utf8);
        }
        line.push_str(" SMTPUTF8");
    }
    if caps.dsn {
        match params.ret {
            Some(Ret::Full) => line.push_str(" RET=FULL"),
            Some(Ret::Headers) => line.push_str(" RET=HDRS"),
            None => {}
        }
        if let Some(envid) = &params.envid {
            line.push_str(&format!(" ENVID={envid}"));
        }
    }
    Ok(line)
}

/// `RCPT TO:<…>` with NOTIFY and ORCPT when the server takes DSN (RFC 3461 §5.2).
pub fn rcpt_line(to: &str, params: &RcptParams, caps: &Capabilities) -> String {
    let mut line = format!("RCPT TO:<{to}>");
    if caps.dsn {
        if let Some(n) = params.notify {
            let words: Vec<&str> = [(n.success, "SUCCESS"), (n.failure, "FAILURE"), (n.delay, "DELAY")]
                .into_iter()
                .filter_map(|(on, w)| on.then_some(w))
                .collect();
            let value = if words.is_empty() {
                "NEVER".into()
            } else {
                words.join(",")
            };
            line.push_str(&format!(" NOTIFY={value}"));
        }
        if let Some(orcpt) = &params.orcpt {
            line.push_str(&format!(" ORCPT={orcpt}"));
        }
    }
    line
}

/// RFC 4616 PLAIN initial response for `AUTH PLAIN`.
pub fn auth_plain(user: &str, password: &str) -> String {
    B64.encode(format!("\0{user}\0{password}"))
}

/// Recipients (by index) grouped by the server that takes them, servers and recipients in
/// the order they came: one transaction per server.
pub fn by_server(
    routes: impl IntoIterator<Item = (usize, std::net::SocketAddr)>,
) -> Vec<(std::net::SocketAddr, Vec<usize>)> {
    let mut groups: Vec<(std::net::SocketAddr, Vec<usize>)> = Vec::new();
    for (i, addr) in routes {
        match groups.iter_mut().find(|(a, _)| *a == addr) {
            Some((_, members)) => members.push(i),
            None => groups.push((addr, vec![i])),
        }
    }
    groups
}

/// RFC 5321 §4.5.2: dot-stuffed, ending with CRLF.CRLF.
pub fn stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 8);
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !message.is_empty() && !message.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_group_by_server_in_order() {
        let (a, b): (std::net::SocketAddr, std::net::SocketAddr) =
            ("127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap());
        let groups = by_server([(0, b), (1, a), (3, b), (4, a)]);
        assert_eq!(groups, [(b, vec![0, 3]), (a, vec![1, 4])]);
        assert!(by_server([]).is_empty());
    }
    use crate::smtp::command::Notify;

    fn parse(lines: &[&str]) -> Result<Option<Reply>, ReplyError> {
        let mut p = ReplyParser::default();
        let mut last = Ok(None);
        for l in lines {
            last = p.line(l.as_bytes());
        }
        last
    }

    #[test]
    fn replies() {
        let r = parse(&["250-smart.test hi", "250-SIZE 1000", "250-AUTH plain LOGIN", "250 DSN"])
            .unwrap()
            .unwrap();
        let caps = Capabilities::from_ehlo(&r);
        assert_eq!(caps.size, Some(1000));
        assert_eq!(caps.auth, ["PLAIN", "LOGIN"]);
        assert!(caps.dsn && !caps.starttls && !caps.eight_bit_mime);
        let r = parse(&["451 4.3.0 try later"]).unwrap().unwrap();
        assert_eq!((r.code, r.enhanced(), r.is_permanent()), (451, Some("4.3.0"), false));
        assert_eq!(parse(&["250"]).unwrap().unwrap().lines, [""]);
        assert_eq!(parse(&["250-a", "251 b"]), Err(ReplyError::Mixed));
        assert_eq!(parse(&["hello"]), Err(ReplyError::Malformed));
        assert_eq!(parse(&["250-a"]), Ok(None));
    }

    #[test]
    fn command_lines_follow_the_capabilities() {
        let params = MailParams {
            body: Body::EightBitMime,
            ret: Some(Ret::Headers),
            envid: Some("abc".into()),
            ..MailParams::default()
        };
        let mut caps = Capabilities {
            size: Some(100),
            eight_bit_mime: true,
            dsn: true,
            ..Capabilities::default()
        };
        assert_eq!(
            mail_line("a@b", 10, &params, &caps),
            Ok("MAIL FROM:<a@b> SIZE=10 BODY=8BITMIME RET=HDRS ENVID=abc".into())
        );
        assert_eq!(mail_line("a@b", 101, &params, &caps), Err(Unsupported::TooBig));
        caps.eight_bit_mime = false;
        assert_eq!(mail_line("a@b", 10, &params, &caps), Err(Unsupported::EightBit));
        let rcpt = RcptParams {
            notify: Some(Notify {
                success: false,
                failure: true,
                delay: true,
            }),
            orcpt: Some("rfc822;x".into()),
        };
        assert_eq!(
            rcpt_line("x@y", &rcpt, &caps),
            "RCPT TO:<x@y> NOTIFY=FAILURE,DELAY ORCPT=rfc822;x"
        );
        assert_eq!(rcpt_line("x@y", &rcpt, &Capabilities::default()), "RCPT TO:<x@y>");
        assert_eq!(stuff(b"a\r\n.b\r\nc"), b"a\r\n..b\r\nc\r\n.\r\n");
        assert_eq!(auth_plain("u", "p"), "AHUAcA==");
    }
}
