//! SORT and THREAD (RFC 5256 §5 grammar), with RFC 5957's DISPLAYFROM and DISPLAYTO sort keys
//! and RFC 5267's RETURN options for SORT (ESORT, CONTEXT=SORT). The search criteria are
//! SEARCH's own keys; unlike SEARCH, the charset is mandatory.

use crate::imap::command::search::parse::{charset, return_options, search_keys};
use crate::imap::parse::lexer::{Cursor, Result, Syntax};
use crate::imap::types::{Command, SortCriterion, SortKey, ThreadAlgorithm};

/// sort = ["UID" SP] "SORT" SP sort-criteria SP search-criteria (RFC 5256 §5);
/// extended-sort = ["UID" SP] "SORT" search-return-opts SP sort-criteria SP search-criteria
/// (RFC 5267 §5).
pub(crate) fn sort(c: &mut Cursor, uid: bool) -> Result<Command> {
    c.sp()?;
    let returns = return_options(c)?;
    let criteria = sort_criteria(c)?;
    c.sp()?;
    let (charset, key) = search_criteria(c)?;
    Ok(Command::Sort {
        uid,
        returns,
        criteria,
        charset,
        key,
    })
}

/// thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria (RFC 5256 §5). thread-alg is
/// an atom; an algorithm ringmail does not offer is refused here, so the client gets BAD.
pub(crate) fn thread(c: &mut Cursor, uid: bool) -> Result<Command> {
    c.sp()?;
    let name = c.atom().map_err(|_| Syntax("expected a THREAD algorithm"))?;
    let algorithm = if name.eq_ignore_ascii_case("ORDEREDSUBJECT") {
        ThreadAlgorithm::OrderedSubject
    } else if name.eq_ignore_ascii_case("REFERENCES") {
        ThreadAlgorithm::References
    } else {
        return Err(Syntax("unknown THREAD algorithm"));
    };
    c.sp()?;
    let (charset, key) = search_criteria(c)?;
    Ok(Command::Thread {
        uid,
        algorithm,
        charset,
        key,
    })
}

/// sort-criteria = "(" sort-criterion *(SP sort-criterion) ")".
fn sort_criteria(c: &mut Cursor) -> Result<Vec<SortCriterion>> {
    if c.peek() != Some(b'(') {
        return Err(Syntax("expected a list of sort criteria"));
    }
    let mut probe = *c;
    probe.eat(b'(');
    if probe.peek() == Some(b')') {
        return Err(Syntax("empty list of sort criteria"));
    }
    c.list1(sort_criterion)
}

/// sort-criterion = ["REVERSE" SP] sort-key (RFC 5256 §5; RFC 5957 §5 adds the DISPLAY keys).
/// REVERSE applies to the one key after it, and only one REVERSE may precede it.
fn sort_criterion(c: &mut Cursor) -> Result<SortCriterion> {
    const LONE_REVERSE: Syntax = Syntax("REVERSE without a sort key");
    let mut name = c.word();
    let reverse = name.eq_ignore_ascii_case(b"REVERSE");
    if reverse {
        if !c.eat(b' ') {
            return Err(LONE_REVERSE);
        }
        name = c.word();
        if name.is_empty() || name.eq_ignore_ascii_case(b"REVERSE") {
            return Err(LONE_REVERSE);
        }
    }
    let key = match name.to_ascii_uppercase().as_slice() {
        b"ARRIVAL" => SortKey::Arrival,
        b"CC" => SortKey::Cc,
        b"DATE" => SortKey::Date,
        b"FROM" => SortKey::From,
        b"SIZE" => SortKey::Size,
        b"SUBJECT" => SortKey::Subject,
        b"TO" => SortKey::To,
        b"DISPLAYFROM" => SortKey::DisplayFrom,
        b"DISPLAYTO" => SortKey::DisplayTo,
        b"" => return Err(Syntax("expected a sort criterion")),
        _ => return Err(Syntax("unknown sort criterion")),
    };
    Ok(SortCriterion { reverse, key })
}

/// search-criteria = charset 1*(SP search-key). Without a charset the first key would be read
/// as one (`SORT (DATE) ALL`), leaving no key after it: both mistakes get one message.
fn search_criteria(c: &mut Cursor) -> Result<(String, crate::imap::types::SearchKey)> {
    let charset = charset(c).map_err(|_| Syntax("expected a charset"))?;
    if !c.more() {
        return Err(Syntax("missing charset or search key"));
    }
    Ok((charset, search_keys(c)?))
}
