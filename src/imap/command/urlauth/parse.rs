//! RESETKEY, GENURLAUTH and URLFETCH (RFC 4467 §6, grammar in §9). The URLs are astrings here;
//! what is inside them is `imap::url`'s and `imap::urlauth`'s business.

use crate::imap::parse::lexer::{Cursor, Result, Syntax};
use crate::imap::types::Command;

/// mechanism = "INTERNAL" / 1*(ALPHA / DIGIT / "-" / "."), in upper case (IANA's registry of
/// them is case-insensitive).
fn mechanism(c: &mut Cursor) -> Result<String> {
    let name = c.word();
    if name.is_empty() {
        return Err(Syntax("expected a URLAUTH mechanism"));
    }
    Ok(String::from_utf8_lossy(name).to_ascii_uppercase())
}

/// resetkey = "RESETKEY" [SP mailbox *(SP mechanism)]
pub(crate) fn resetkey(c: &mut Cursor) -> Result<Command> {
    if c.at_end() {
        return Ok(Command::ResetKey {
            mailbox: None,
            mechanisms: Vec::new(),
        });
    }
    c.sp()?;
    let mailbox = c.mailbox()?;
    let mut mechanisms = Vec::new();
    while !c.at_end() {
        c.sp()?;
        mechanisms.push(mechanism(c)?);
    }
    Ok(Command::ResetKey {
        mailbox: Some(mailbox),
        mechanisms,
    })
}

/// genurlauth = "GENURLAUTH" 1*(SP url-rump SP mechanism)
pub(crate) fn genurlauth(c: &mut Cursor) -> Result<Command> {
    let mut pairs = Vec::new();
    loop {
        c.sp()?;
        let url = c.astring()?;
        c.sp()?;
        pairs.push((url, mechanism(c)?));
        if c.at_end() {
            return Ok(Command::GenUrlauth(pairs));
        }
    }
}

/// urlfetch = "URLFETCH" 1*(SP url-full)
pub(crate) fn urlfetch(c: &mut Cursor) -> Result<Command> {
    let mut urls = Vec::new();
    loop {
        c.sp()?;
        urls.push(c.astring()?);
        if c.at_end() {
            return Ok(Command::UrlFetch(urls));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::imap::parse::parse_command;
    use crate::imap::types::Command;

    #[test]
    fn urlauth_commands() {
        let url = "imap://bob@h/INBOX/;UID=1;URLAUTH=user+bob";
        let rows: Vec<(String, Command)> = vec![
            (
                "a RESETKEY".into(),
                Command::ResetKey {
                    mailbox: None,
                    mechanisms: vec![],
                },
            ),
            (
                "a resetkey inbox internal".into(),
                Command::ResetKey {
                    mailbox: Some("INBOX".into()),
                    mechanisms: vec!["INTERNAL".into()],
                },
            ),
            (
                "a RESETKEY Sent".into(),
                Command::ResetKey {
                    mailbox: Some("Sent".into()),
                    mechanisms: vec![],
                },
            ),
            (
                format!("a GENURLAUTH \"{url}\" internal \"{url}\" INTERNAL"),
                Command::GenUrlauth(vec![(url.into(), "INTERNAL".into()), (url.into(), "INTERNAL".into())]),
            ),
            (
                format!("a URLFETCH \"{url}:INTERNAL:00\" {{3}}\r\nx:y"),
                Command::UrlFetch(vec![format!("{url}:INTERNAL:00"), "x:y".into()]),
            ),
        ];
        for (line, want) in rows {
            assert_eq!(parse_command(line.as_bytes()).map(|(_, c)| c), Ok(want), "{line}");
        }
        for bad in [
            "a GENURLAUTH",
            "a GENURLAUTH \"imap://x\"",
            "a GENURLAUTH \"imap://x\" INTERNAL \"imap://y\"",
            "a URLFETCH",
            "a URLFETCH ",
            "a RESETKEY INBOX  INTERNAL",
            "a RESETKEY INBOX (INTERNAL)",
        ] {
            assert!(parse_command(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
