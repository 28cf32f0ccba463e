//! SEARCH (RFC 9051 §6.4.4) with ESEARCH return options (RFC 4731, RFC 5182 SAVE, RFC 9394
//! PARTIAL, RFC 5267 CONTEXT and UPDATE), CONDSTORE's MODSEQ key (RFC 7162 §3.1.5) and WITHIN's
//! OLDER/YOUNGER (RFC 5032).

use crate::imap::parse::lexer::{Cursor, Result, Syntax};
use crate::imap::types::{Command, SearchKey, SearchReturn};

/// search = "SEARCH" [search-return-opts] SP search-program;
/// search-program = ["CHARSET" SP charset SP] search-key *(SP search-key).
/// Several top-level keys come back as one `SearchKey::And`.
pub(crate) fn search(c: &mut Cursor, uid: bool) -> Result<Command> {
    c.sp()?;
    let returns = return_options(c)?;
    let mut charset = None;
    if c.next_word_is("CHARSET") {
        c.word();
        c.sp()?;
        charset = Some(self::charset(c)?);
        c.sp()?;
    }
    let key = search_keys(c)?;
    Ok(Command::Search {
        uid,
        charset,
        returns,
        key,
    })
}

/// search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"
/// (RFC 4466 §2.6), with the SP after it; `None` when there is no RETURN. Shared by SEARCH and
/// ESORT's SORT (RFC 5267 §3).
pub(crate) fn return_options(c: &mut Cursor) -> Result<Option<Vec<SearchReturn>>> {
    if !c.next_word_is("RETURN") {
        return Ok(None);
    }
    c.word();
    c.sp()?;
    let options: Vec<SearchReturn> = c.list0(search_return)?.into_iter().flatten().collect();
    let partials = options.iter().filter(|o| matches!(o, SearchReturn::Partial(_))).count();
    if partials > 1 {
        return Err(Syntax("PARTIAL given twice"));
    }
    // RFC 9394 §3 (and RFC 5267 §4.4): PARTIAL asks for a page of what ALL would give; both at
    // once is an error.
    if partials == 1 && options.contains(&SearchReturn::All) {
        return Err(Syntax("PARTIAL and ALL cannot be combined"));
    }
    c.sp()?;
    // RFC 4731 §3.1: an empty list means ALL; so does one that held only the CONTEXT hint.
    Ok(Some(if options.is_empty() {
        vec![SearchReturn::All]
    } else {
        options
    }))
}

/// charset = atom / quoted (RFC 9051 §9), as sent.
pub(crate) fn charset(c: &mut Cursor) -> Result<String> {
    if c.peek() == Some(b'"') {
        c.string()
    } else {
        c.atom()
    }
}

/// `search-key *(SP search-key)` up to the end of the command; several keys come back as one
/// `SearchKey::And`. Shared by SEARCH and by SORT and THREAD (RFC 5256 §5 search-criteria).
pub(crate) fn search_keys(c: &mut Cursor) -> Result<SearchKey> {
    let mut keys = vec![search_key(c, 0)?];
    while c.more() {
        keys.push(search_key(c, 0)?);
    }
    c.end()?;
    Ok(if keys.len() == 1 {
        keys.swap_remove(0)
    } else {
        SearchKey::And(keys)
    })
}

/// search-return-opt = "MIN" / "MAX" / "ALL" / "COUNT" (RFC 4731) / "SAVE" (RFC 5182) /
/// "PARTIAL" SP partial-range (RFC 9394 §5) / "UPDATE" / "CONTEXT" (RFC 5267 §5). CONTEXT is
/// `None`: a hint that the criteria will be used again, which the server may ignore (§4.2).
fn search_return(c: &mut Cursor) -> Result<Option<SearchReturn>> {
    let name = c.word().to_ascii_uppercase();
    Ok(Some(match name.as_slice() {
        b"MIN" => SearchReturn::Min,
        b"MAX" => SearchReturn::Max,
        b"ALL" => SearchReturn::All,
        b"COUNT" => SearchReturn::Count,
        b"SAVE" => SearchReturn::Save,
        b"PARTIAL" => {
            c.sp()?;
            SearchReturn::Partial(c.partial_range()?)
        }
        b"UPDATE" => SearchReturn::Update,
        b"CONTEXT" => return Ok(None),
        _ => return Err(Syntax("unknown SEARCH return option")),
    }))
}

/// Nesting of parentheses, NOT and OR is bounded (`ParseLimits::max_search_depth`) so that no
/// input can exhaust the stack; real clients nest a handful of levels.
fn search_key(c: &mut Cursor, depth: usize) -> Result<SearchKey> {
    use SearchKey::*;
    if depth >= c.limits.max_search_depth {
        return Err(Syntax("search keys nested too deeply ([limits] max_search_depth)"));
    }
    match c.peek() {
        Some(b'(') => return c.list1(|c| search_key(c, depth + 1)).map(And),
        Some(b'*' | b'$' | b'0'..=b'9') => return c.sequence_set().map(Seq),
        _ => {}
    }
    let name = c.word().to_ascii_uppercase();
    if let Some(key) = flag_key(&name) {
        return Ok(key);
    }
    let string = |c: &mut Cursor| -> Result<String> {
        c.sp()?;
        // Strings may be in the CHARSET given; ringmail takes UTF-8 (and so US-ASCII) only
        // (RFC 9051 §6.4.4), so other bytes are a syntax error here.
        c.astring()
    };
    let date = |c: &mut Cursor| -> Result<i64> {
        c.sp()?;
        c.date()
    };
    Ok(match name.as_slice() {
        // flag-keyword = atom (RFC 9051 §9).
        b"KEYWORD" => {
            c.sp()?;
            Keyword(c.atom()?)
        }
        b"UNKEYWORD" => {
            c.sp()?;
            Unkeyword(c.atom()?)
        }
        b"BEFORE" => Before(date(c)?),
        b"ON" => On(date(c)?),
        b"SINCE" => Since(date(c)?),
        b"SENTBEFORE" => SentBefore(date(c)?),
        b"SENTON" => SentOn(date(c)?),
        b"SENTSINCE" => SentSince(date(c)?),
        b"SAVEDBEFORE" => SavedBefore(date(c)?),
        b"SAVEDON" => SavedOn(date(c)?),
        b"SAVEDSINCE" => SavedSince(date(c)?),
        b"SAVEDATESUPPORTED" => SaveDateSupported,
        b"EMAILID" => {
            c.sp()?;
            EmailId(c.atom()?)
        }
        b"THREADID" => {
            c.sp()?;
            ThreadId(c.atom()?)
        }
        b"LARGER" => {
            c.sp()?;
            Larger(c.number64()?)
        }
        b"SMALLER" => {
            c.sp()?;
            Smaller(c.number64()?)
        }
        b"HEADER" => {
            let field = string(c)?;
            Header(field, string(c)?)
        }
        b"BCC" => Bcc(string(c)?),
        b"CC" => Cc(string(c)?),
        b"FROM" => From(string(c)?),
        b"TO" => To(string(c)?),
        b"SUBJECT" => Subject(string(c)?),
        b"BODY" => Body(string(c)?),
        b"TEXT" => Text(string(c)?),
        b"UID" => {
            c.sp()?;
            Uid(c.sequence_set()?)
        }
        // RFC 9738 §3.2: "UIDAFTER" SP uniqueid / "UIDBEFORE" SP uniqueid.
        b"UIDAFTER" => {
            c.sp()?;
            UidAfter(c.nz_number()?)
        }
        b"UIDBEFORE" => {
            c.sp()?;
            UidBefore(c.nz_number()?)
        }
        b"NOT" => {
            c.sp()?;
            Not(Box::new(search_key(c, depth + 1)?))
        }
        b"OR" => {
            c.sp()?;
            let left = search_key(c, depth + 1)?;
            c.sp()?;
            Or(Box::new(left), Box::new(search_key(c, depth + 1)?))
        }
        b"MODSEQ" => ModSeq(modseq(c)?),
        // RFC 5032: "OLDER" SP nz-number / "YOUNGER" SP nz-number.
        b"OLDER" => {
            c.sp()?;
            Older(u64::from(c.nz_number()?))
        }
        b"YOUNGER" => {
            c.sp()?;
            Younger(u64::from(c.nz_number()?))
        }
        b"" if c.at_end() => return Err(Syntax("missing search key")),
        b"" => return Err(Syntax("invalid search key")),
        _ => return Err(Syntax("unknown search key")),
    })
}

/// The keys without arguments.
fn flag_key(name: &[u8]) -> Option<SearchKey> {
    use SearchKey::*;
    Some(match name {
        b"ALL" => All,
        b"ANSWERED" => Answered,
        b"DELETED" => Deleted,
        b"DRAFT" => Draft,
        b"FLAGGED" => Flagged,
        b"SEEN" => Seen,
        b"RECENT" => Recent,
        b"NEW" => New,
        b"OLD" => Old,
        b"UNANSWERED" => Unanswered,
        b"UNDELETED" => Undeleted,
        b"UNDRAFT" => Undraft,
        b"UNFLAGGED" => Unflagged,
        b"UNSEEN" => Unseen,
        _ => return None,
    })
}

/// search-modsequence = "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer;
/// search-modseq-ext = SP entry-name SP entry-type-req (RFC 7162 §7). The entry is checked and
/// dropped: ringmail keeps one mod-sequence per message.
fn modseq(c: &mut Cursor) -> Result<u64> {
    c.sp()?;
    if c.peek() == Some(b'"') {
        // entry-name = DQUOTE "/flags/" attr-flag DQUOTE.
        let entry = c.string()?;
        let flag = entry
            .strip_prefix("/flags/")
            .ok_or(Syntax("invalid MODSEQ entry name"))?;
        let mut flag_cursor = Cursor::new(flag.as_bytes());
        flag_cursor.flag().and_then(|_| flag_cursor.end())?;
        c.sp()?;
        let kind = c.word();
        if !["priv", "shared", "all"]
            .iter()
            .any(|k| kind.eq_ignore_ascii_case(k.as_bytes()))
        {
            return Err(Syntax("invalid MODSEQ entry type"));
        }
        c.sp()?;
    }
    c.number64()
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
