//! Turns one complete command, as `reader` assembled it (literals inline, final line end
//! removed), into its tag and typed `Command` (RFC 9051 §9, with the RFC 3501 §9 forms of
//! IMAP4rev1 and the grammar of the extensions ringmail offers).
//!
//! Owns: the grammar, exactly: one SP between tokens, nothing after the last one, command and
//! keyword names in any case. Normalises only what the grammar says is the same: `INBOX` in any
//! case, the FETCH macros, `RETURN ()`. Never: decodes modified UTF-7 mailbox names (the
//! session knows whether UTF8=ACCEPT is on), checks that a command is allowed in the current
//! state, or looks anything up. Never panics on any input; nesting is bounded.

pub(crate) mod lexer;
pub(crate) use crate::imap::command::fetch::parse as fetch;
pub(crate) mod mailbox;
pub(crate) mod metadata;
pub(crate) mod notify;
pub(crate) mod search;
pub(crate) mod sort;
pub(crate) mod urlauth;

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

/// RFC 9051 §6.4.9: "UID" SP (copy / move / fetch / search / store / uid-expunge), and RFC 5256
/// §3 UID SORT and UID THREAD.
pub(crate) fn uid(c: &mut Cursor) -> Result<Command> {
    c.sp()?;
    let name = c.word().to_ascii_uppercase();
    match name.as_slice() {
        b"FETCH" => fetch::fetch(c, true),
        b"STORE" => fetch::store(c, true),
        b"SEARCH" => search::search(c, true),
        b"COPY" => copy_or_move(c, true, false),
        b"MOVE" => copy_or_move(c, true, true),
        b"REPLACE" => mailbox::replace(c, true),
        // RFC 5256 §3.
        b"SORT" => sort::sort(c, true),
        b"THREAD" => sort::thread(c, true),
        // RFC 4315 §2.1 uid-expunge.
        b"EXPUNGE" => {
            c.sp()?;
            let set = c.sequence_set()?;
            c.end()?;
            Ok(Command::UidExpunge(set))
        }
        b"" => Err(Syntax("missing UID command")),
        _ => Err(Syntax("unknown UID command")),
    }
}

/// RFC 9051 §6.2.2: "AUTHENTICATE" SP auth-type [SP initial-resp] (RFC 4959 SASL-IR).
/// The mechanism comes back in upper case (SASL names are, RFC 4422 §3.1).
pub(crate) fn authenticate(c: &mut Cursor) -> Result<Command> {
    c.sp()?;
    let mechanism = c.atom()?.to_ascii_uppercase();
    let initial = if c.more() {
        let response = c.atom().map_err(|_| Syntax("invalid initial response"))?;
        if !is_base64(response.as_bytes()) && response != "=" {
            return Err(Syntax("initial response is not base64"));
        }
        Some(response)
    } else {
        None
    };
    c.end()?;
    Ok(Command::Authenticate { mechanism, initial })
}

/// base64 = *(4base64-char) [base64-terminal] (RFC 9051 §9).
fn is_base64(text: &[u8]) -> bool {
    if text.is_empty() || !text.len().is_multiple_of(4) {
        return false;
    }
    let data = text
        .strip_suffix(b"==")
        .or_else(|| text.strip_suffix(b"="))
        .unwrap_or(text);
    data.iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// RFC 9051 §6.2.3: "LOGIN" SP userid SP password.
pub(crate) fn login(c: &mut Cursor) -> Result<Command> {
    c.sp()?;
    let user = c.astring()?;
    c.sp()?;
    let password = c.astring()?;
    c.end()?;
    Ok(Command::Login { user, password })
}

/// RFC 5161 §4: "ENABLE" 1*(SP capability). Capability names come back in upper case.
pub(crate) fn enable(c: &mut Cursor) -> Result<Command> {
    let mut capabilities = Vec::new();
    loop {
        c.sp()?;
        capabilities.push(c.atom()?.to_ascii_uppercase());
        if c.at_end() {
            return Ok(Command::Enable(capabilities));
        }
    }
}

/// RFC 2971 §4: "ID" SP id-params-list; id-params-list = "(" *(string SP nstring) ")" / nil.
pub(crate) fn id(c: &mut Cursor) -> Result<Command> {
    c.sp()?;
    let params = if c.peek() == Some(b'(') {
        Some(c.list0(|c| {
            let field = c.string()?;
            c.sp()?;
            let value = c.nstring()?;
            Ok((field, value))
        })?)
    } else if c.word().eq_ignore_ascii_case(b"NIL") {
        None
    } else {
        return Err(Syntax("expected a parameter list or NIL"));
    };
    c.end()?;
    Ok(Command::Id(params))
}

/// RFC 5267 §5: "CANCELUPDATE" 1*(SP quoted): the tags of the commands that asked for updates.
pub(crate) fn cancel_update(c: &mut Cursor) -> Result<Command> {
    let mut tags = Vec::new();
    loop {
        c.sp()?;
        if c.peek() != Some(b'"') {
            return Err(Syntax("expected a quoted tag"));
        }
        tags.push(c.string()?);
        if c.at_end() {
            return Ok(Command::CancelUpdate(tags));
        }
    }
}

pub(crate) fn one_mailbox(c: &mut Cursor) -> Result<String> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    c.end()?;
    Ok(mailbox)
}

/// RFC 9051 §6.3.6: "RENAME" SP mailbox SP mailbox.
pub(crate) fn rename(c: &mut Cursor) -> Result<Command> {
    c.sp()?;
    let from = c.mailbox()?;
    c.sp()?;
    let to = c.mailbox()?;
    c.end()?;
    Ok(Command::Rename { from, to })
}

/// RFC 9051 §6.4.7 COPY, §6.4.8 MOVE: sequence-set SP mailbox.
pub(crate) fn copy_or_move(c: &mut Cursor, uid: bool, is_move: bool) -> Result<Command> {
    c.sp()?;
    let set = c.sequence_set()?;
    c.sp()?;
    let mailbox = c.mailbox()?;
    c.end()?;
    Ok(if is_move {
        Command::Move { uid, set, mailbox }
    } else {
        Command::Copy { uid, set, mailbox }
    })
}
