//! Turns one complete command, as `reader` assembled it (literals inline, final line end
//! removed), into its tag and typed `Command` (RFC 9051 §9, with the RFC 3501 §9 forms of
//! IMAP4rev1 and the grammar of the extensions ringmail offers).
//!
//! Owns: the grammar, exactly: one SP between tokens, nothing after the last one, command and
//! keyword names in any case. Normalises only what the grammar says is the same: `INBOX` in any
//! case, the FETCH macros, `RETURN ()`. Never: decodes modified UTF-7 mailbox names (the
//! session knows whether UTF8=ACCEPT is on), checks that a command is allowed in the current
//! state, or looks anything up. Never panics on any input; nesting is bounded.
//!
//! Here: the tag, the command name looked up in the command table, and the lexer; each
//! command's own grammar is in its module under `command/` (its row's `parse`).

pub(crate) mod lexer;
pub(crate) use crate::imap::command::fetch::parse as fetch;

#[cfg(test)]
mod differential;
#[cfg(test)]
mod tests;

use crate::imap::types::Command;
pub(crate) use lexer::days_from_civil;
use lexer::{Cursor, Result, Syntax};

/// A command that is not valid IMAP: answered `TAG BAD <message>` (or `* BAD` without a tag);
/// the session goes on (RFC 9051 §7.1.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub tag: Option<String>,
    pub message: String,
}

/// tag = 1*<any ASTRING-CHAR except "+"> (RFC 9051 §9).
pub fn is_tag_char(b: u8) -> bool {
    lexer::is_astring_char(b) && b != b'+'
}

/// Bounds on one command's structure (`[limits]`): how deep SEARCH keys nest (the parser
/// recurses), how many ranges one sequence set lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    pub max_search_depth: usize,
    pub max_sequence_ranges: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_search_depth: 64,
            max_sequence_ranges: 20_000,
        }
    }
}

/// Parses one command as `reader::Read::Command` gives it: the tag and the typed command, or
/// the error to answer with `BAD`.
pub fn parse_command(raw: &[u8]) -> std::result::Result<(String, Command), ParseError> {
    parse(Cursor::new(raw))
}

/// A section-spec as it stands inside `BODY[...]` (RFC 9051 §9), e.g. the decoded `;SECTION=`
/// of an IMAP URL (RFC 5092 §11 `enc-section`); `None` when it is not one.
pub fn section_spec(text: &str) -> Option<crate::imap::types::Section> {
    let wrapped = format!("[{text}]");
    let mut c = Cursor::new(wrapped.as_bytes());
    let section = fetch::section(&mut c).ok()?;
    c.end().ok()?;
    Some(section)
}

/// `parse_command` for a command the caller gives away: an APPEND's message is moved out of
/// `raw` rather than copied, so a large upload is never in memory twice.
pub fn parse_command_owned(raw: Vec<u8>) -> std::result::Result<(String, Command), ParseError> {
    parse_command_owned_with(raw, ParseLimits::default())
}

/// `parse_command_owned` under `limits`.
pub fn parse_command_owned_with(
    mut raw: Vec<u8>,
    limits: ParseLimits,
) -> std::result::Result<(String, Command), ParseError> {
    let mut cursor = Cursor::new(&raw);
    cursor.locate_only = true;
    cursor.limits = limits;
    let (tag, mut command) = parse(cursor)?;
    // The usual case, one message: the buffer becomes the message, its bytes shifted down in
    // place.
    let take_whole = |raw: Vec<u8>, m: &mut crate::imap::types::AppendMessage| {
        if let Some((start, end)) = m.span.take() {
            let mut raw = raw;
            raw.truncate(end);
            raw.drain(..start);
            m.message = raw;
        }
    };
    if let Command::Replace { message, .. } = &mut command {
        take_whole(raw, message);
    } else if let Command::Append { messages, .. } = &mut command {
        if let [only] = messages.as_mut_slice() {
            take_whole(raw, only);
        } else {
            // MULTIAPPEND: from the last message back, so earlier spans stay valid.
            for m in messages.iter_mut().rev() {
                if let Some((start, end)) = m.span.take() {
                    raw.truncate(end);
                    m.message = raw.split_off(start);
                }
            }
        }
    }
    Ok((tag, command))
}

fn parse(mut c: Cursor<'_>) -> std::result::Result<(String, Command), ParseError> {
    let tag = c.tag();
    if tag.is_empty() {
        return Err(ParseError {
            tag: None,
            message: if c.at_end() { "empty command" } else { "invalid tag" }.to_owned(),
        });
    }
    if !matches!(c.peek(), None | Some(b' ')) {
        // Answering with the valid prefix would name a tag the client never sent.
        return Err(ParseError {
            tag: None,
            message: "invalid tag".to_owned(),
        });
    }
    // Tag characters are ASCII.
    let tag: String = tag.iter().map(|&b| char::from(b)).collect();
    let parsed = if c.at_end() {
        Err(Syntax("missing command"))
    } else {
        c.sp().and_then(|()| command(&mut c))
    };
    match parsed {
        Ok(command) => Ok((tag, command)),
        Err(Syntax(message)) => Err(ParseError {
            tag: Some(tag),
            message: message.to_owned(),
        }),
    }
}

fn command(c: &mut Cursor) -> Result<Command> {
    let name = c.word();
    if name.is_empty() {
        return Err(Syntax(if c.at_end() {
            "missing command"
        } else {
            "invalid command name"
        }));
    }
    match std::str::from_utf8(name).ok().and_then(crate::imap::command::spec) {
        Some(spec) => (spec.parse)(c),
        None => Err(Syntax("unknown command")),
    }
}

/// A command that is its name alone.
pub(crate) fn bare(c: &mut Cursor, command: Command) -> Result<Command> {
    c.end().map(|()| command)
}

pub(crate) fn one_mailbox(c: &mut Cursor) -> Result<String> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    c.end()?;
    Ok(mailbox)
}
