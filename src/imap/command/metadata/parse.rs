//! GETMETADATA and SETMETADATA (RFC 5464 §4.2, §4.3, grammar in §5).

use crate::imap::parse::lexer::{Cursor, Result, Syntax};
use crate::imap::types::{Command, MetadataDepth};

/// entry = astring: a slash-separated name under `/private` or `/shared` (RFC 5464 §3.2),
/// without wildcards, empty levels, a trailing slash or control characters. `whole_tree`
/// allows `/private` and `/shared` themselves, which only GETMETADATA with DEPTH can use.
fn entry(c: &mut Cursor, whole_tree: bool) -> Result<String> {
    let name = c.astring()?;
    let lower = name.to_ascii_lowercase();
    let under = |root: &str| lower.strip_prefix(root).is_some_and(|rest| rest.starts_with('/'));
    let root = lower == "/private" || lower == "/shared";
    let valid_chars = name
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'*' && b != b'%');
    if !valid_chars || name.contains("//") || name.ends_with('/') {
        return Err(Syntax("invalid metadata entry name"));
    }
    if !(under("/private") || under("/shared") || (whole_tree && root)) {
        return Err(Syntax("a metadata entry name begins with /private/ or /shared/"));
    }
    Ok(name)
}

/// value = nstring / literal8: `None` is NIL, which removes the entry.
fn value(c: &mut Cursor) -> Result<Option<Vec<u8>>> {
    match c.peek() {
        Some(b'~') => Ok(Some(c.literal_any()?.0.to_vec())),
        Some(b'"' | b'{') => c.string_bytes().map(Some),
        _ if c.word().eq_ignore_ascii_case(b"NIL") => Ok(None),
        _ => Err(Syntax("expected a metadata value, a string or NIL")),
    }
}

/// setmetadata = "SETMETADATA" SP mailbox SP entry-values
pub(crate) fn setmetadata(c: &mut Cursor) -> Result<Command> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    c.sp()?;
    let entries = c.list1(|c| {
        let name = entry(c, false)?;
        c.sp()?;
        Ok((name, value(c)?))
    })?;
    c.end()?;
    Ok(Command::SetMetadata { mailbox, entries })
}

/// getmetadata = "GETMETADATA" [SP getmetadata-options] SP mailbox SP entries
pub(crate) fn getmetadata(c: &mut Cursor) -> Result<Command> {
    c.sp()?;
    let (mut max_size, mut depth) = (None, MetadataDepth::Zero);
    if c.peek() == Some(b'(') {
        c.list1(|c| {
            let option = c.word().to_ascii_uppercase();
            c.sp()?;
            match option.as_slice() {
                b"MAXSIZE" => max_size = Some(c.number()?),
                b"DEPTH" => {
                    depth = match c.word().to_ascii_uppercase().as_slice() {
                        b"0" => MetadataDepth::Zero,
                        b"1" => MetadataDepth::One,
                        b"INFINITY" => MetadataDepth::Infinity,
                        _ => return Err(Syntax("DEPTH is 0, 1 or infinity")),
                    }
                }
                _ => return Err(Syntax("unknown GETMETADATA option")),
            }
            Ok(())
        })?;
        c.sp()?;
    }
    let mailbox = c.mailbox()?;
    c.sp()?;
    let entries = if c.peek() == Some(b'(') {
        c.list1(|c| entry(c, true))?
    } else {
        vec![entry(c, true)?]
    };
    c.end()?;
    Ok(Command::GetMetadata {
        mailbox,
        entries,
        max_size,
        depth,
    })
}

#[cfg(test)]
mod tests {
    use crate::imap::parse::parse_command;
    use crate::imap::types::{Command, MetadataDepth};

    #[test]
    fn getmetadata_and_setmetadata() {
        let (_, c) = parse_command(b"a GETMETADATA (DEPTH infinity MAXSIZE 10) \"\" (/private/a /shared)").unwrap();
        assert_eq!(
            c,
            Command::GetMetadata {
                mailbox: String::new(),
                entries: vec!["/private/a".into(), "/shared".into()],
                max_size: Some(10),
                depth: MetadataDepth::Infinity,
            }
        );
        let (_, c) =
            parse_command(b"a SETMETADATA inbox (/private/x NIL /shared/y ~{2}\r\n\0z /shared/q \"v\")").unwrap();
        assert_eq!(
            c,
            Command::SetMetadata {
                mailbox: "INBOX".into(),
                entries: vec![
                    ("/private/x".into(), None),
                    ("/shared/y".into(), Some(b"\0z".to_vec())),
                    ("/shared/q".into(), Some(b"v".to_vec())),
                ],
            }
        );
        for bad in [
            &b"a GETMETADATA INBOX /other"[..],
            b"a GETMETADATA (DEPTH 2) INBOX /private/a",
            b"a GETMETADATA (FOO 1) INBOX /private/a",
            b"a SETMETADATA INBOX (/private \"v\")",
            b"a SETMETADATA INBOX (/private/a/ \"v\")",
            b"a SETMETADATA INBOX (/private//a \"v\")",
            b"a SETMETADATA INBOX (/private/a%b \"v\")",
            b"a SETMETADATA INBOX ()",
            b"a SETMETADATA INBOX (/private/a)",
        ] {
            assert!(parse_command(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
