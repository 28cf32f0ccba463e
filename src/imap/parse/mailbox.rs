//! Commands about mailboxes: SELECT/EXAMINE with CONDSTORE and QRESYNC (RFC 7162 §3.1.8,
//! §3.2.5), CREATE with USE (RFC 6154 §3), LIST-EXTENDED (RFC 5258) with LIST-STATUS
//! (RFC 5819), LSUB, STATUS (RFC 9051 §6.3.11), APPEND with MULTIAPPEND (RFC 3502) and
//! literal8 (RFC 3516).

use super::lexer::{Cursor, Result, Syntax};
use crate::imap::types::{
    AppendMessage, CatPart, Command, ListOptions, Qresync, SelectParams, SeqBound, SequenceSet, StatusItem,
};

/// select = "SELECT" SP mailbox [select-params]; select-params = SP "(" select-param
/// *(SP select-param) ")" (RFC 4466); select-param = "CONDSTORE" / "QRESYNC" SP "("
/// uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")" (RFC 7162 §7).
pub(crate) fn select(c: &mut Cursor) -> Result<(String, SelectParams)> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    let mut params = SelectParams::default();
    if c.more() {
        let mut condstore_seen = false;
        for param in c.list1(select_param)? {
            match param {
                SelectParam::Condstore if condstore_seen => return Err(Syntax("CONDSTORE given twice")),
                SelectParam::Condstore => {
                    condstore_seen = true;
                    params.condstore = true;
                }
                SelectParam::Qresync(_) if params.qresync.is_some() => return Err(Syntax("QRESYNC given twice")),
                SelectParam::Qresync(q) => params.qresync = Some(q),
            }
        }
    }
    c.end()?;
    Ok((mailbox, params))
}

enum SelectParam {
    Condstore,
    Qresync(Qresync),
}

fn select_param(c: &mut Cursor) -> Result<SelectParam> {
    let name = c.word();
    if name.eq_ignore_ascii_case(b"CONDSTORE") {
        return Ok(SelectParam::Condstore);
    }
    if !name.eq_ignore_ascii_case(b"QRESYNC") {
        return Err(Syntax("unknown SELECT parameter"));
    }
    c.sp()?;
    c.expect(b'(', "expected QRESYNC parameters")?;
    let uid_validity = c.nz_number()?;
    c.sp()?;
    let mod_seq = c.mod_sequence_value()?;
    let mut known_uids = None;
    let mut seq_match = None;
    if c.more() && c.peek() != Some(b'(') {
        known_uids = Some(known_set(c)?);
        if !c.more() {
            c.expect(b')', "invalid QRESYNC parameters")?;
            return Ok(qresync(uid_validity, mod_seq, known_uids, seq_match));
        }
    }
    if c.eat(b'(') {
        let sequence_numbers = known_set(c)?;
        c.sp()?;
        let uids = known_set(c)?;
        c.expect(b')', "invalid QRESYNC sequence match data")?;
        seq_match = Some((sequence_numbers, uids));
    }
    c.expect(b')', "invalid QRESYNC parameters")?;
    Ok(qresync(uid_validity, mod_seq, known_uids, seq_match))
}

fn qresync(
    uid_validity: u32,
    mod_seq: u64,
    known_uids: Option<SequenceSet>,
    seq_match: Option<(SequenceSet, SequenceSet)>,
) -> SelectParam {
    SelectParam::Qresync(Qresync {
        uid_validity,
        mod_seq,
        known_uids,
        seq_match,
    })
}

/// known-uids, known-sequence-set, known-uid-set: sequence sets where "*" is not allowed
/// (RFC 7162 §7), and neither is `$`.
fn known_set(c: &mut Cursor) -> Result<SequenceSet> {
    match c.sequence_set()? {
        SequenceSet::Ranges(ranges) if !ranges.iter().any(|&(a, b)| a == SeqBound::Star || b == SeqBound::Star) => {
            Ok(SequenceSet::Ranges(ranges))
        }
        _ => Err(Syntax("invalid sequence set")),
    }
}

/// create = "CREATE" SP mailbox [create-params]; create-param = "USE" SP "(" [use-attr
/// *(SP use-attr)] ")" (RFC 6154 §6); use-attr = "\" atom, as sent.
pub(crate) fn create(c: &mut Cursor) -> Result<Command> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    let mut special_use = None;
    if c.more() {
        for uses in c.list1(|c| {
            if !c.word().eq_ignore_ascii_case(b"USE") {
                return Err(Syntax("unknown CREATE parameter"));
            }
            c.sp()?;
            c.list0(use_attr)
        })? {
            if special_use.replace(uses).is_some() {
                return Err(Syntax("USE given twice"));
            }
        }
    }
    c.end()?;
    Ok(Command::Create {
        mailbox,
        special_use: special_use.unwrap_or_default(),
    })
}

fn use_attr(c: &mut Cursor) -> Result<String> {
    if c.peek() != Some(b'\\') {
        return Err(Syntax("invalid special-use attribute"));
    }
    c.flag()
}

/// list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]
/// (RFC 5258 §6). The reference is returned as sent (it is a prefix, not a mailbox to open).
pub(crate) fn list(c: &mut Cursor) -> Result<Command> {
    c.sp()?;
    let mut options = ListOptions::default();
    if c.peek() == Some(b'(') {
        for option in c.list0(|c| Ok(c.word().to_ascii_uppercase()))? {
            let flag = match option.as_slice() {
                b"SUBSCRIBED" => &mut options.subscribed,
                b"REMOTE" => &mut options.remote,
                b"RECURSIVEMATCH" => &mut options.recursive_match,
                // RFC 6154 §6.
                b"SPECIAL-USE" => &mut options.special_use,
                _ => return Err(Syntax("unknown LIST selection option")),
            };
            *flag = true;
        }
        // RFC 5258 §3.1: RECURSIVEMATCH needs another option it modifies; else BAD.
        if options.recursive_match && !options.subscribed && !options.special_use {
            return Err(Syntax("RECURSIVEMATCH needs a selection option to modify"));
        }
        c.sp()?;
    }
    let reference = c.astring()?;
    c.sp()?;
    // mbox-or-pat = list-mailbox / patterns; patterns = "(" list-mailbox *(SP list-mailbox) ")".
    let patterns = if c.peek() == Some(b'(') {
        c.list1(Cursor::list_mailbox)?
    } else {
        vec![c.list_mailbox()?]
    };
    if c.more() {
        if !c.word().eq_ignore_ascii_case(b"RETURN") {
            return Err(Syntax("expected RETURN"));
        }
        c.sp()?;
        for option in c.list0(return_option)? {
            match option {
                ReturnOption::Subscribed => options.return_subscribed = true,
                ReturnOption::Children => options.return_children = true,
                ReturnOption::SpecialUse => options.return_special_use = true,
                ReturnOption::Status(items) => options.return_status = items,
            }
        }
    }
    c.end()?;
    Ok(Command::List {
        reference,
        patterns,
        options,
    })
}

enum ReturnOption {
    Subscribed,
    Children,
    SpecialUse,
    Status(Vec<StatusItem>),
}

/// return-option = "SUBSCRIBED" / "CHILDREN" / "SPECIAL-USE" (RFC 6154) / "STATUS" SP "("
/// status-att *(SP status-att) ")" (RFC 5819).
fn return_option(c: &mut Cursor) -> Result<ReturnOption> {
    let name = c.word().to_ascii_uppercase();
    Ok(match name.as_slice() {
        b"SUBSCRIBED" => ReturnOption::Subscribed,
        b"CHILDREN" => ReturnOption::Children,
        b"SPECIAL-USE" => ReturnOption::SpecialUse,
        b"STATUS" => {
            c.sp()?;
            ReturnOption::Status(c.list1(status_att)?)
        }
        _ => return Err(Syntax("unknown LIST return option")),
    })
}

/// lsub = "LSUB" SP mailbox SP list-mailbox (RFC 3501 §6.3.9).
pub(crate) fn lsub(c: &mut Cursor) -> Result<Command> {
    c.sp()?;
    let reference = c.astring()?;
    c.sp()?;
    let pattern = c.list_mailbox()?;
    c.end()?;
    Ok(Command::Lsub { reference, pattern })
}

/// status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")".
pub(crate) fn status(c: &mut Cursor) -> Result<Command> {
    c.sp()?;
    let mailbox = c.mailbox()?;
    c.sp()?;
    let items = c.list1(status_att)?;
    c.end()?;
    Ok(Command::Status { mailbox, items })
}

/// status-att (RFC 9051 §9, RECENT from RFC 3501, HIGHESTMODSEQ from RFC 7162).
fn status_att(c: &mut Cursor) -> Result<StatusItem> {
    let name = c.word().to_ascii_uppercase();
    Ok(match name.as_slice() {
        b"MESSAGES" => StatusItem::Messages,
        b"RECENT" => StatusItem::Recent,
        b"UIDNEXT" => StatusItem::UidNext,
        b"UIDVALIDITY" => StatusItem::UidValidity,
        b"UNSEEN" => StatusItem::Unseen,
        b"DELETED" => StatusItem::Deleted,
        b"SIZE" => StatusItem::Size,
        b"HIGHESTMODSEQ" => StatusItem::HighestModSeq,
        b"MAILBOXID" => StatusItem::MailboxId,
        b"APPENDLIMIT" => StatusItem::AppendLimit,
        _ => return Err(Syntax("unknown STATUS item")),
    })
}

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
