//! APPEND's grammar, with MULTIAPPEND (RFC 3502), literal8 (RFC 3516) and CATENATE
//! (RFC 4469), and REPLACE's (RFC 8508 §6), which takes one APPEND message.

use crate::imap::parse::lexer::{Cursor, Result, Syntax};
use crate::imap::types::{AppendMessage, CatPart, Command};

/// append = "APPEND" SP mailbox 1*append-message (RFC 3502); append-message = append-opts
/// SP append-data; append-opts = [SP flag-list] [SP date-time]; append-data = literal /
/// literal8 (RFC 3516 §7).
pub(crate) fn append(c: &mut Cursor) -> Result<Command> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    let mut messages = Vec::new();
    loop {
        messages.push(append_message(c)?);
        if c.at_end() {
            return Ok(Command::Append { mailbox, messages });
        }
    }
}

/// replace = "REPLACE" SP seq-number SP mailbox append-message; uid-replace = "UID" SP replace
/// (RFC 8508 §6). One message only: MULTIAPPEND does not extend it.
pub(crate) fn replace(c: &mut Cursor, uid: bool) -> Result<Command> {
    c.sp()?;
    let target = c.seq_number().map_err(|_| Syntax("expected a message number or UID"))?;
    c.sp()?;
    let mailbox = c.mailbox()?;
    let message = append_message(c)?;
    c.end()?;
    Ok(Command::Replace {
        uid,
        target,
        mailbox,
        message,
    })
}

/// SP append-message (RFC 3502, RFC 4466): the options and data of one message.
fn append_message(c: &mut Cursor) -> Result<AppendMessage> {
    c.sp()?;
    let mut flags = Vec::new();
    if c.peek() == Some(b'(') {
        flags = c.flag_list()?;
        c.sp()?;
    }
    let mut date = None;
    if c.peek() == Some(b'"') {
        date = Some(c.date_time()?);
        c.sp()?;
    }
    // RFC 4469 §6: append-data =/ "CATENATE" SP "(" cat-part *(SP cat-part) ")".
    if c.next_word_is("CATENATE") {
        c.word();
        c.sp()?;
        let mut binary = false;
        let parts = c.list1(|c| cat_part(c, &mut binary))?;
        return Ok(AppendMessage {
            flags,
            date,
            message: Vec::new(),
            binary,
            span: None,
            catenate: Some(parts),
        });
    }
    // RFC 6855 §4: append-data =/ "UTF8" SP "(" literal8 ")".
    let (message, binary) = if c.next_word_is("UTF8") {
        c.word();
        (utf8_literal(c)?, true)
    } else if matches!(c.peek(), Some(b'{' | b'~')) {
        c.literal_any()?
    } else {
        return Err(Syntax("expected the message as a literal"));
    };
    let (message, span) = if c.locate_only {
        let start = c.offset_of(message);
        (Vec::new(), Some((start, start + message.len())))
    } else {
        (message.to_vec(), None)
    };
    Ok(AppendMessage {
        flags,
        date,
        message,
        binary,
        span,
        catenate: None,
    })
}

/// cat-part = text-literal / url; text-literal = "TEXT" SP literal; url = "URL" SP astring
/// (RFC 4469 §6). TEXT may also be a literal8 (RFC 3516, as APPEND data may be) or RFC 6855 §4
/// utf8-literal (`cat-part =/ utf8-literal`); either makes the whole message binary. The data
/// is always copied: parts are put together later, and are usually small.
fn cat_part(c: &mut Cursor, binary: &mut bool) -> Result<CatPart> {
    let name = c.word().to_ascii_uppercase();
    match name.as_slice() {
        b"URL" => {
            c.sp()?;
            Ok(CatPart::Url(c.astring()?))
        }
        b"TEXT" => {
            c.sp()?;
            if !matches!(c.peek(), Some(b'{' | b'~')) {
                return Err(Syntax("expected the TEXT as a literal"));
            }
            let (data, literal8) = c.literal_any()?;
            *binary |= literal8;
            Ok(CatPart::Text(data.to_vec()))
        }
        b"UTF8" => {
            let data = utf8_literal(c)?;
            *binary = true;
            Ok(CatPart::Text(data.to_vec()))
        }
        _ => Err(Syntax("expected TEXT or URL")),
    }
}

/// RFC 6855 §4 utf8-literal after the word "UTF8": `SP "(" literal8 ")"`.
fn utf8_literal<'a>(c: &mut Cursor<'a>) -> Result<&'a [u8]> {
    c.sp()?;
    c.expect(b'(', "expected ( after UTF8")?;
    if c.peek() != Some(b'~') {
        return Err(Syntax("UTF8 data must be a literal8"));
    }
    let (data, _) = c.literal_any()?;
    c.expect(b')', "expected ) after the UTF8 literal")?;
    Ok(data)
}
