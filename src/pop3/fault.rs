//! Why a POP3 command failed, and the one place that says it on the wire (shared/STYLE.md
//! §8). POP3 has one negative answer, `-ERR`; what tells the client whose fault it was is the
//! response code (RFC 2449 §8, RFC 3206): none for a command that is malformed or not valid
//! now, `[AUTH]` for credentials or policy, `[IN-USE]` for a maildrop another session holds,
//! `[SYS/TEMP]` for a failure of ours that may pass. Nothing else in the core writes `-ERR`.

use std::borrow::Cow;
use std::fmt;

use crate::goodbye::Goodbye;

/// An extended response code (RFC 2449 §8, RFC 3206 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Auth,
    InUse,
    SysTemp,
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Code::Auth => "AUTH",
            Code::InUse => "IN-USE",
            Code::SysTemp => "SYS/TEMP",
        })
    }
}

#[derive(Debug)]
pub enum Fault {
    /// The client's: malformed, or not valid in this state.
    Client(Cow<'static, str>),
    /// Declined, with the code that says why.
    Refused(Code, Cow<'static, str>),
}

impl Fault {
    pub fn client(text: impl Into<Cow<'static, str>>) -> Fault {
        Fault::Client(text.into())
    }

    pub fn refused(code: Code, text: impl Into<Cow<'static, str>>) -> Fault {
        Fault::Refused(code, text.into())
    }

    /// The `-ERR` line for this fault, without its CRLF.
    pub fn line(&self) -> String {
        match self {
            Fault::Client(text) => format!("-ERR {text}"),
            Fault::Refused(code, text) => format!("-ERR [{code}] {text}"),
        }
    }

    pub fn write(self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.line().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// The `-ERR` line with which the server ends a session unasked, CRLF included. RFC 1939 §3:
/// an idle client meets the autologout timer.
pub fn goodbye(why: Goodbye<'_>) -> String {
    let fault = match why {
        Goodbye::Refused(hit) => Fault::refused(Code::SysTemp, hit.to_string()),
        Goodbye::ShuttingDown => Fault::refused(Code::SysTemp, "server shutting down"),
        Goodbye::IdleTimeout => Fault::client("autologout: idle for too long"),
        Goodbye::Replaced => Fault::refused(Code::InUse, "a newer session of this user took this one's place"),
        Goodbye::Kicked => Fault::refused(Code::SysTemp, "disconnected by the administrator"),
    };
    format!("{}\r\n", fault.line())
}

/// POP3 as the drivers and front ends name it.
pub struct Pop3;

impl crate::goodbye::Wire for Pop3 {
    const NAME: &'static str = "pop3";
    fn goodbye(why: Goodbye<'_>) -> String {
        goodbye(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_err_lines_with_their_codes() {
        let line = |f: Fault| {
            let mut out = Vec::new();
            f.write(&mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(line(Fault::client("no such message")), "-ERR no such message\r\n");
        assert_eq!(
            line(Fault::refused(Code::InUse, "maildrop is in use")),
            "-ERR [IN-USE] maildrop is in use\r\n"
        );
        assert_eq!(
            line(Fault::refused(Code::SysTemp, "later")),
            "-ERR [SYS/TEMP] later\r\n"
        );
    }
}
