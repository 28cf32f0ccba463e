//! SELECT and EXAMINE's grammar, with CONDSTORE and QRESYNC (RFC 7162 §3.1.8, §3.2.5).

use crate::imap::parse::lexer::{Cursor, Result, Syntax};
use crate::imap::types::{Qresync, SelectParams, SeqBound, SequenceSet};

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
