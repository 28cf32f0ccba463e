//! IMAP sequence sets and SEARCH programs: the parser's `sequence-set` (inside FETCH, STORE,
//! UID SEARCH), the server's own set writer (`imap::search::sequence_set`, used for APPENDUID,
//! COPYUID, MODIFIED and SEARCH results) and the load harness's reader of such sets; and the
//! SEARCH grammar with its evaluation against a message.
//!
//! The first byte picks the part.
//!
//! Properties: nothing panics; a parsed set, written back and parsed again, names the same
//! numbers; what the server writes for a list of numbers parses to exactly those numbers, with
//! the server's parser and the harness's; `parse_command` and `parse_command_owned` agree on
//! every command; a SEARCH that parses evaluates.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringmail::imap::command::fetch::render::MessageBytes;
use ringmail::imap::parse::{parse_command, parse_command_owned};
use ringmail::imap::search::{matches, Candidate, SearchContext, SearchData, Searcher};
use ringmail::imap::types::{Command, SearchKey, SeqBound, SequenceSet};
use ringmail::mime::Structure;
use ringmail::store::records::flags;
use ringmail::store::MessageRecord;
use ringmail_fuzz::{sample_bodies, Choices};

fuzz_target!(|data: &[u8]| {
    let mut choices = Choices::new(data);
    let part = choices.byte();
    match part % 4 {
        0 => parsed_set(&mut choices),
        1 => written_set(&mut choices),
        2 => search(choices.rest()),
        _ => both_parsers(choices.rest()),
    }
});

/// The set of a FETCH command, or why the command did not parse.
fn parse_set(text: &[u8]) -> Option<SequenceSet> {
    let command = [b"a FETCH ", text, b" FLAGS"].concat();
    match parse_command(&command) {
        Ok((_, Command::Fetch { set, .. })) => Some(set),
        Ok((_, other)) => panic!("{:?} parsed as {other:?}", String::from_utf8_lossy(&command)),
        Err(_) => None,
    }
}

/// The ranges of a set with `*` as `star`, each low to high, sorted and merged.
fn normalize(set: &SequenceSet, star: u32) -> Vec<(u32, u32)> {
    let SequenceSet::Ranges(ranges) = set else {
        return Vec::new();
    };
    let value = |b: SeqBound| match b {
        SeqBound::Num(n) => n,
        SeqBound::Star => star,
    };
    let mut r: Vec<(u32, u32)> = ranges
        .iter()
        .map(|&(a, b)| (value(a).min(value(b)), value(a).max(value(b))))
        .collect();
    r.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::new();
    for (lo, hi) in r {
        match merged.last_mut() {
            Some(last) if u64::from(lo) <= u64::from(last.1) + 1 => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    merged
}

fn write_ranges(ranges: &[(u32, u32)]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}:{b}") })
        .collect();
    parts.join(",")
}

fn parsed_set(choices: &mut Choices<'_>) {
    let star = choices.u32().max(1);
    let text = choices.rest();
    let Some(set) = parse_set(text) else { return };
    match &set {
        SequenceSet::Saved => assert_eq!(text, b"$"),
        SequenceSet::Ranges(ranges) => {
            assert!(!ranges.is_empty());
            for &(a, b) in ranges {
                assert!(
                    a != SeqBound::Num(0) && b != SeqBound::Num(0),
                    "0 is not a sequence number"
                );
            }
            let normal = normalize(&set, star);
            let written = write_ranges(&normal);
            let again = parse_set(written.as_bytes()).unwrap_or_else(|| panic!("{written:?} does not parse"));
            assert_eq!(
                normalize(&again, star),
                normal,
                "{:?} written as {written:?}",
                String::from_utf8_lossy(text)
            );
            // The server's writer of explicit numbers, when there are few enough of them.
            let count: u64 = normal.iter().map(|&(a, b)| u64::from(b - a) + 1).sum();
            if count <= 4096 {
                let numbers: Vec<u32> = normal.iter().flat_map(|&(a, b)| a..=b).collect();
                check_writer(&numbers);
            }
        }
    }
}

/// What `search::sequence_set` writes for `numbers` (ascending, distinct, non-zero) names
/// exactly them.
fn check_writer(numbers: &[u32]) {
    let mut out = Vec::new();
    ringmail::imap::search::sequence_set(numbers, &mut out);
    if numbers.is_empty() {
        assert!(out.is_empty());
        return;
    }
    let set = parse_set(&out).unwrap_or_else(|| panic!("the server wrote {:?}", String::from_utf8_lossy(&out)));
    let expanded: Vec<u32> = normalize(&set, u32::MAX).iter().flat_map(|&(a, b)| a..=b).collect();
    assert_eq!(expanded, numbers, "written as {:?}", String::from_utf8_lossy(&out));
    assert_eq!(
        loadtest::response::uid_set(&out).as_deref(),
        Some(numbers),
        "the harness reads {:?} differently",
        String::from_utf8_lossy(&out)
    );
}

fn written_set(choices: &mut Choices<'_>) {
    let bytes = choices.rest();
    let mut numbers: Vec<u32> = bytes
        .chunks(2)
        .map(|c| u32::from(c[0]) | u32::from(*c.get(1).unwrap_or(&0)) << 8)
        .map(|n| n.wrapping_mul(bytes.len() as u32 | 1).max(1))
        .collect();
    // Unsorted input is still a correct set.
    let mut out = Vec::new();
    ringmail::imap::search::sequence_set(&numbers, &mut out);
    if let Some(set) = parse_set(&out) {
        let mut expanded: Vec<u32> = normalize(&set, u32::MAX).iter().flat_map(|&(a, b)| a..=b).collect();
        expanded.dedup();
        let mut want = numbers.clone();
        want.sort_unstable();
        want.dedup();
        assert_eq!(
            expanded,
            want,
            "{numbers:?} written as {:?}",
            String::from_utf8_lossy(&out)
        );
    } else {
        assert!(
            numbers.is_empty(),
            "{numbers:?} written as {:?}",
            String::from_utf8_lossy(&out)
        );
    }
    numbers.sort_unstable();
    numbers.dedup();
    check_writer(&numbers);
}

/// A SEARCH program: parsed, then evaluated against one message.
fn search(program: &[u8]) {
    let command = [b"a UID SEARCH ", program].concat();
    let key = match parse_command(&command) {
        Ok((_, Command::Search { key, .. })) => key,
        Ok((_, other)) => panic!("{:?} parsed as {other:?}", String::from_utf8_lossy(&command)),
        Err(_) => return,
    };
    let _ = ringmail::imap::search::uses_modseq(&key);
    let _ = key.uses_sequence_numbers();
    depth_is_bounded(&key, 0);
    let ctx = SearchContext {
        now: 1_750_000_000,
        max_uid: 12,
        max_seq: 5,
        saved: Some(vec![2, 4]),
    };
    for (i, (bytes, structure)) in sample_bodies().iter().enumerate() {
        let record = MessageRecord {
            flags: [
                0,
                flags::SEEN,
                flags::FLAGGED | flags::DELETED,
                flags::ANSWERED,
                flags::DRAFT,
            ][i % 5],
            internal_date: 1_743_500_000 + 86_400 * i as i64,
            save_date: 1_743_600_000,
            size: bytes.len() as u64,
            modseq: 3 + i as u64,
            body_id: i as u64,
            keywords: if i == 1 { vec!["$Forwarded".into()] } else { Vec::new() },
        };
        let candidate = Candidate {
            seq: i as u32 + 1,
            uid: 2 * i as u32 + 2,
            record: &record,
            recent: i == 4,
        };
        let mut data = Sample { bytes, structure };
        let matched = matches(&key, &candidate, &mut data, &ctx);
        // NOT inverts, and OR / a list of one change nothing.
        let not = SearchKey::Not(Box::new(key.clone()));
        assert_eq!(matches(&not, &candidate, &mut data, &ctx), !matched, "NOT of {key:?}");
        let or = SearchKey::Or(Box::new(key.clone()), Box::new(key.clone()));
        assert_eq!(matches(&or, &candidate, &mut data, &ctx), matched, "OR of {key:?}");
        let and = SearchKey::And(vec![key.clone()]);
        assert_eq!(matches(&and, &candidate, &mut data, &ctx), matched, "({key:?})");
        // A reused searcher answers as fresh ones do.
        let mut searcher = Searcher::new();
        assert_eq!(searcher.matches(&not, &candidate, &mut data, &ctx), !matched);
        assert_eq!(searcher.matches(&key, &candidate, &mut data, &ctx), matched);
    }
}

/// One sample message as SEARCH reads it.
struct Sample<'a> {
    bytes: &'a Vec<u8>,
    structure: &'a Structure,
}

impl SearchData for Sample<'_> {
    fn structure(&mut self) -> Option<&Structure> {
        Some(self.structure)
    }
    fn message(&mut self) -> Option<(&Structure, &dyn MessageBytes)> {
        Some((self.structure, self.bytes))
    }
}

/// The parser bounds nesting ("nesting is bounded"): a parsed key is not deeper than the
/// input could make it, and walking it does not overflow the stack.
fn depth_is_bounded(key: &SearchKey, depth: usize) {
    assert!(depth < 10_000, "a SEARCH key nested {depth} deep");
    match key {
        SearchKey::Not(inner) => depth_is_bounded(inner, depth + 1),
        SearchKey::Or(a, b) => {
            depth_is_bounded(a, depth + 1);
            depth_is_bounded(b, depth + 1);
        }
        SearchKey::And(keys) => keys.iter().for_each(|k| depth_is_bounded(k, depth + 1)),
        _ => {}
    }
}

/// The borrowing and the owning parser give the same command: the owning one moves APPEND's
/// and REPLACE's messages out of the buffer, and must move exactly the bytes the borrowing one
/// copies.
fn both_parsers(raw: &[u8]) {
    let borrowed = parse_command(raw);
    let owned = parse_command_owned(raw.to_vec());
    match (&borrowed, &owned) {
        (Ok(b), Ok(o)) => assert_eq!(b, o, "the parsers disagree on {:?}", String::from_utf8_lossy(raw)),
        (Err(e1), Err(e2)) => assert_eq!(e1, e2),
        _ => panic!(
            "the parsers disagree on {:?}: {borrowed:?} / {owned:?}",
            String::from_utf8_lossy(raw)
        ),
    }
}
