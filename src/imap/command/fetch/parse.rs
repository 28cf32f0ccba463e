//! FETCH's grammar (RFC 9051 §6.4.5) with its attributes, the CONDSTORE/QRESYNC modifiers
//! (RFC 7162 §3.1.4, §3.2.6) and PARTIAL (RFC 9394 §4).

use crate::imap::parse::lexer::{Cursor, Result, Syntax};
use crate::imap::types::{Command, FetchAttr, Partial, PartialRange, Section, SectionText};

/// fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
/// "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]
pub(crate) fn fetch(c: &mut Cursor, uid: bool) -> Result<Command> {
    c.sp()?;
    let set = c.sequence_set()?;
    c.sp()?;
    let attrs = if c.peek() == Some(b'(') {
        c.list1(fetch_att)?
    } else {
        match macro_attrs(c) {
            Some(attrs) => attrs,
            None => vec![fetch_att(c)?],
        }
    };
    let mut changed_since = None;
    let mut vanished = false;
    let mut partial = None;
    if c.more() {
        for modifier in c.list1(fetch_modifier)? {
            match modifier {
                Modifier::ChangedSince(_) if changed_since.is_some() => return Err(Syntax("CHANGEDSINCE given twice")),
                Modifier::ChangedSince(n) => changed_since = Some(n),
                Modifier::Vanished if vanished => return Err(Syntax("VANISHED given twice")),
                Modifier::Vanished => vanished = true,
                Modifier::Partial(_) if partial.is_some() => return Err(Syntax("PARTIAL given twice")),
                Modifier::Partial(range) => partial = Some(range),
            }
        }
    }
    c.end()?;
    // RFC 7162 §3.2.6: VANISHED only in UID FETCH, and only with CHANGEDSINCE; else BAD.
    if vanished && !uid {
        return Err(Syntax("VANISHED is only allowed in UID FETCH"));
    }
    if vanished && changed_since.is_none() {
        return Err(Syntax("VANISHED requires CHANGEDSINCE"));
    }
    Ok(Command::Fetch {
        uid,
        set,
        attrs,
        changed_since,
        vanished,
        partial,
    })
}

/// The macros of RFC 9051 §6.4.5, expanded; only valid alone, never inside parentheses.
fn macro_attrs(c: &mut Cursor) -> Option<Vec<FetchAttr>> {
    use FetchAttr::*;
    let mut probe = *c;
    let name = probe.word();
    let attrs = if name.eq_ignore_ascii_case(b"ALL") {
        vec![Flags, InternalDate, Rfc822Size, Envelope]
    } else if name.eq_ignore_ascii_case(b"FAST") {
        vec![Flags, InternalDate, Rfc822Size]
    } else if name.eq_ignore_ascii_case(b"FULL") {
        vec![Flags, InternalDate, Rfc822Size, Envelope, Body]
    } else {
        return None;
    };
    *c = probe;
    Some(attrs)
}

enum Modifier {
    ChangedSince(u64),
    Vanished,
    Partial(PartialRange),
}

/// fetch-modifier = chgsince-fetch-mod / "VANISHED" (RFC 7162 §7) / "PARTIAL" SP
/// partial-range (RFC 9394 §5).
fn fetch_modifier(c: &mut Cursor) -> Result<Modifier> {
    let name = c.word();
    if name.eq_ignore_ascii_case(b"CHANGEDSINCE") {
        c.sp()?;
        Ok(Modifier::ChangedSince(c.mod_sequence_value()?))
    } else if name.eq_ignore_ascii_case(b"VANISHED") {
        Ok(Modifier::Vanished)
    } else if name.eq_ignore_ascii_case(b"PARTIAL") {
        c.sp()?;
        Ok(Modifier::Partial(c.partial_range()?))
    } else {
        Err(Syntax("unknown FETCH modifier"))
    }
}

/// fetch-att (RFC 9051 §9, RFC 3501 §9 for the RFC822 forms, RFC 7162, RFC 8514, RFC 8474,
/// RFC 8970).
pub(crate) fn fetch_att(c: &mut Cursor) -> Result<FetchAttr> {
    let name = c.word().to_ascii_uppercase();
    Ok(match name.as_slice() {
        b"ENVELOPE" => FetchAttr::Envelope,
        b"FLAGS" => FetchAttr::Flags,
        b"INTERNALDATE" => FetchAttr::InternalDate,
        b"RFC822.SIZE" => FetchAttr::Rfc822Size,
        b"RFC822" => FetchAttr::Rfc822,
        b"RFC822.HEADER" => FetchAttr::Rfc822Header,
        b"RFC822.TEXT" => FetchAttr::Rfc822Text,
        b"BODYSTRUCTURE" => FetchAttr::BodyStructure,
        b"UID" => FetchAttr::Uid,
        b"BODY" if c.peek() != Some(b'[') => FetchAttr::Body,
        b"BODY" | b"BODY.PEEK" => FetchAttr::BodySection {
            peek: name.len() > 4,
            section: section(c)?,
            partial: partial(c)?,
        },
        // RFC 3516 §4.2 / RFC 9051 §6.4.5: the section is required.
        b"BINARY" | b"BINARY.PEEK" => FetchAttr::Binary {
            peek: name.len() > 6,
            part: section_binary(c)?,
            partial: partial(c)?,
        },
        b"BINARY.SIZE" => FetchAttr::BinarySize {
            part: section_binary(c)?,
        },
        b"MODSEQ" => FetchAttr::ModSeq,
        b"SAVEDATE" => FetchAttr::SaveDate,
        b"EMAILID" => FetchAttr::EmailId,
        b"THREADID" => FetchAttr::ThreadId,
        b"PREVIEW" => FetchAttr::Preview {
            lazy: preview_modifiers(c)?,
        },
        b"" => return Err(Syntax("missing FETCH attribute")),
        _ => return Err(Syntax("unknown FETCH attribute")),
    })
}

/// RFC 8970: "PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"], preview-mod = "LAZY".
/// A lone `PREVIEW` may be followed by the FETCH modifiers' list, so a list is taken as
/// preview modifiers only when it starts with one.
fn preview_modifiers(c: &mut Cursor) -> Result<bool> {
    let mut probe = *c;
    if !(probe.eat(b' ') && probe.eat(b'(') && probe.next_word_is("LAZY")) {
        return Ok(false);
    }
    c.sp()?;
    c.list1(|c| {
        if c.word().eq_ignore_ascii_case(b"LAZY") {
            Ok(())
        } else {
            Err(Syntax("unknown PREVIEW modifier"))
        }
    })?;
    Ok(true)
}

/// section = "[" [section-spec] "]"; section-spec = section-msgtext /
/// (section-part ["." section-text]) (RFC 9051 §9).
pub(crate) fn section(c: &mut Cursor) -> Result<Section> {
    c.expect(b'[', "expected a section")?;
    let mut part = Vec::new();
    let mut text_follows = true;
    if c.peek().is_some_and(|b| b.is_ascii_digit()) {
        part = section_part(c)?;
        text_follows = c.eat(b'.');
    }
    let text = if text_follows && c.peek() != Some(b']') {
        section_text(c, !part.is_empty())?
    } else if text_follows && !part.is_empty() {
        return Err(Syntax("invalid section"));
    } else {
        SectionText::Full
    };
    c.expect(b']', "invalid section")?;
    Ok(Section { part, text })
}

/// section-part = nz-number *("." nz-number); stops before a "." that leads to text.
fn section_part(c: &mut Cursor) -> Result<Vec<u32>> {
    let mut part = vec![c.nz_number().map_err(|_| Syntax("invalid section part"))?];
    loop {
        let mut probe = *c;
        if !(probe.eat(b'.') && probe.peek().is_some_and(|b| b.is_ascii_digit())) {
            return Ok(part);
        }
        *c = probe;
        part.push(c.nz_number().map_err(|_| Syntax("invalid section part"))?);
    }
}

/// section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT";
/// section-text = section-msgtext / "MIME" (after a part only).
fn section_text(c: &mut Cursor, after_part: bool) -> Result<SectionText> {
    let name = c.word().to_ascii_uppercase();
    Ok(match name.as_slice() {
        b"HEADER" => SectionText::Header,
        b"TEXT" => SectionText::Text,
        b"MIME" if after_part => SectionText::Mime,
        b"HEADER.FIELDS" => SectionText::HeaderFields(header_list(c)?),
        b"HEADER.FIELDS.NOT" => SectionText::HeaderFieldsNot(header_list(c)?),
        _ => return Err(Syntax("invalid section")),
    })
}

/// SP header-list; header-list = "(" header-fld-name *(SP header-fld-name) ")".
fn header_list(c: &mut Cursor) -> Result<Vec<String>> {
    c.sp()?;
    c.list1(Cursor::astring)
}

/// section-binary = "[" [section-part] "]" (RFC 3516 §7, RFC 9051 §9).
fn section_binary(c: &mut Cursor) -> Result<Vec<u32>> {
    c.expect(b'[', "expected a section")?;
    if c.eat(b']') {
        return Ok(Vec::new());
    }
    let part = section_part(c)?;
    c.expect(b']', "invalid section")?;
    Ok(part)
}

/// partial = "<" number64 "." nz-number64 ">" (RFC 9051 §9; RFC 3501 had 32-bit numbers).
/// Values past 32 bits are clamped: no message ringmail stores is that large, so the answer is
/// the same.
fn partial(c: &mut Cursor) -> Result<Option<Partial>> {
    if !c.eat(b'<') {
        return Ok(None);
    }
    const INVALID: Syntax = Syntax("invalid partial range");
    let origin = c.number64().map_err(|_| INVALID)?;
    c.expect(b'.', INVALID.0)?;
    let count = c.number64().map_err(|_| INVALID)?;
    c.expect(b'>', INVALID.0)?;
    if count == 0 {
        return Err(INVALID);
    }
    let clamp = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    Ok(Some(Partial {
        origin: clamp(origin),
        count: clamp(count),
    }))
}
