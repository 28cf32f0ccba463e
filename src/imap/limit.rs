//! RFC 9738 MESSAGELIMIT and SAVELIMIT: a bound on the messages one command works on.
//!
//! Under MESSAGELIMIT=n, FETCH, STORE, SEARCH, MOVE and UID EXPUNGE (and their UID forms) that
//! name more than n messages work on the n with the highest UIDs, from the highest down, and
//! say so in `[MESSAGELIMIT n lowest-uid]`, so a client goes on below that UID (with
//! UIDBEFORE). What cannot be done in part is refused whole with `NO [MESSAGELIMIT ...]`: COPY
//! and MULTIAPPEND (atomic, RFC 9051 §6.4.7, RFC 3502), SORT and THREAD (an order over part of
//! the messages would be wrong), and a PARTIAL FETCH wider than n (RFC 9394 pages are the
//! client's own cut). EXPUNGE, CLOSE and STATUS are never limited. Under SAVELIMIT=n only COPY
//! and APPEND are. A server advertises one of the two.

use super::fault::{ok, Code, Fault};
use super::session::untagged;
use super::view::UidView;
use crate::store::records::Uid;

/// The limit a session works under: the one its CAPABILITY told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageLimit {
    #[default]
    None,
    /// MESSAGELIMIT=n: every command that names messages.
    Message(u32),
    /// SAVELIMIT=n: COPY and APPEND only.
    Save(u32),
}

impl MessageLimit {
    /// The capability that announces this limit.
    pub fn capability(self) -> Option<String> {
        match self {
            MessageLimit::None => None,
            MessageLimit::Message(n) => Some(format!("MESSAGELIMIT={n}")),
            MessageLimit::Save(n) => Some(format!("SAVELIMIT={n}")),
        }
    }

    /// The bound on FETCH, STORE, SEARCH, MOVE, UID EXPUNGE, SORT and THREAD.
    pub fn processing(self) -> Option<u32> {
        match self {
            MessageLimit::Message(n) => Some(n),
            _ => None,
        }
    }

    /// The bound on COPY and APPEND.
    pub fn saving(self) -> Option<u32> {
        match self {
            MessageLimit::Message(n) | MessageLimit::Save(n) => Some(n),
            MessageLimit::None => None,
        }
    }
}

/// A command that was cut to the limit: `lowest` is the lowest UID it processed (or, for a
/// refused COPY, would have).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    pub limit: u32,
    pub lowest: Uid,
}

impl Cut {
    fn code(self) -> String {
        format!("[{}]", Code::MessageLimit(self.limit, Some(self.lowest)))
    }
}

/// Keeps the `limit` targets with the highest UIDs, highest first, when there are more
/// (RFC 9738 §3.1: a cut command processes from the highest UID down). `targets` ascend.
pub fn cut<T: Copy>(targets: &mut Vec<T>, limit: Option<u32>, uid_of: impl Fn(T) -> Uid) -> Option<Cut> {
    let limit = limit?;
    let keep = limit as usize;
    if targets.len() <= keep {
        return None;
    }
    targets.drain(..targets.len() - keep);
    targets.reverse();
    let lowest = targets.last().map(|t| uid_of(*t))?;
    Some(Cut { limit, lowest })
}

/// The cut of a command that cannot be done in part, when `targets` (ascending) are more than
/// `limit`: the lowest UID it would have processed.
pub fn over<T: Copy>(targets: &[T], limit: Option<u32>, uid_of: impl Fn(T) -> Uid) -> Option<Cut> {
    let limit = limit?;
    let keep = limit as usize;
    (targets.len() > keep).then(|| Cut {
        limit,
        lowest: uid_of(targets[targets.len() - keep]),
    })
}

/// The cut of a SEARCH over `view` when more than `limit` messages are in its scope
/// (`in_scope(seq, uid)`): it then looks only at UIDs from `lowest` up (RFC 9738 §3.1: what a
/// SEARCH counts is the messages it searches, not those that match).
pub fn search_scope(view: &UidView, limit: Option<u32>, in_scope: impl Fn(u32, Uid) -> bool) -> Option<Cut> {
    let limit = limit?;
    let len = view.len();
    let (mut counted, mut lowest) = (0u32, 0);
    for (i, uid) in view.iter().rev().enumerate() {
        let seq = len - i as u32;
        if !in_scope(seq, uid) {
            continue;
        }
        if counted == limit {
            return Some(Cut { limit, lowest });
        }
        counted += 1;
        lowest = uid;
    }
    None
}

/// The tagged OK of a command that may have been cut: the MESSAGELIMIT code goes in it, or,
/// where `code` (another response code, with its trailing space) already does, in an untagged
/// NO before it (RFC 9738 §3.1).
pub fn tagged_ok(out: &mut Vec<u8>, tag: &str, cut: Option<Cut>, code: &str, text: &str) {
    match cut {
        None => ok(out, tag, &format!("{code}{text}")),
        Some(c) if code.is_empty() => ok(out, tag, &format!("{} {text}", c.code())),
        Some(c) => {
            let why = format!(
                "{} only the {} messages with the highest UIDs were processed",
                c.code(),
                c.limit
            );
            untagged(out, &format!("NO {why}"));
            ok(out, tag, &format!("{code}{text}"));
        }
    }
}

/// `NO [MESSAGELIMIT n uid]` (or `[MESSAGELIMIT n]` without one) for a command refused whole.
pub fn refuse(out: &mut Vec<u8>, tag: &str, limit: u32, lowest: Option<Uid>, text: &str) {
    Fault::no(Code::MessageLimit(limit, lowest), text.to_string()).write(tag, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_keeps_the_highest_uids_highest_first() {
        let mut targets: Vec<(u32, Uid)> = (1..=5).map(|s| (s, s * 10)).collect();
        let cut = cut(&mut targets, Some(2), |t| t.1);
        assert_eq!(targets, vec![(5, 50), (4, 40)]);
        assert_eq!(cut, Some(Cut { limit: 2, lowest: 40 }));
    }

    #[test]
    fn nothing_is_cut_at_or_under_the_limit_or_without_one() {
        let mut targets: Vec<Uid> = vec![1, 2, 3];
        assert_eq!(cut(&mut targets, Some(3), |u| u), None);
        assert_eq!(cut(&mut targets, None, |u| u), None);
        assert_eq!(targets, vec![1, 2, 3]);
        assert_eq!(over(&targets, Some(3), |u| u), None);
        assert_eq!(over(&targets, Some(2), |u| u), Some(Cut { limit: 2, lowest: 2 }));
    }

    #[test]
    fn a_search_counts_only_what_is_in_its_scope() {
        let view = UidView::new(vec![2, 4, 6, 8, 10], 1);
        // Every message in scope: the two highest.
        assert_eq!(
            search_scope(&view, Some(2), |_, _| true),
            Some(Cut { limit: 2, lowest: 8 })
        );
        // Only UIDs below 8 (UIDBEFORE 8): 6 and 4.
        assert_eq!(
            search_scope(&view, Some(2), |_, u| u < 8),
            Some(Cut { limit: 2, lowest: 4 })
        );
        // Two in scope: no cut.
        assert_eq!(search_scope(&view, Some(2), |s, _| s <= 2), None);
    }

    #[test]
    fn the_code_moves_to_an_untagged_no_when_the_ok_has_one() {
        let cut = Some(Cut { limit: 2, lowest: 8 });
        let mut out = Vec::new();
        tagged_ok(&mut out, "a", cut, "", "FETCH completed");
        assert_eq!(out, b"a OK [MESSAGELIMIT 2 8] FETCH completed\r\n");
        out.clear();
        tagged_ok(&mut out, "a", cut, "[HIGHESTMODSEQ 9] ", "FETCH completed");
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("* NO [MESSAGELIMIT 2 8] "), "{text}");
        assert!(text.ends_with("a OK [HIGHESTMODSEQ 9] FETCH completed\r\n"), "{text}");
    }
}
