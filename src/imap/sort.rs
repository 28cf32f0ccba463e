//! SORT (RFC 5256 §3) with the DISPLAYFROM and DISPLAYTO keys of SORT=DISPLAY (RFC 5957), and
//! the `* SORT` response (RFC 5256 §4).
//!
//! Owns what each sort key means for one message and the order of a set of messages. The
//! messages come in already matched by the search key (the session runs SEARCH's [`Searcher`]
//! first); this module never touches the store, a socket or a clock, and never panics. Every
//! key is taken from the [`MessageRecord`] and the [`Structure`] computed at delivery: sorting
//! reads no message bytes. Strings compare under i;unicode-casemap ([`casemap`]); ties on every
//! criterion fall to the sequence number (RFC 5256 §3: "the order in which they appear in the
//! mailbox").
//!
//! The address keys read the first address of the stored ENVELOPE ([`envelope`]), as the RFCs
//! define them on it, so messages stored by any version sort alike. The base subject
//! ([`base_subject`]) and the sent date ([`sent_date`]) are shared with THREAD.
//!
//! [`Searcher`]: super::search::Searcher

pub mod casemap;
pub mod envelope;
mod subject;

use std::cmp::Ordering;

pub use subject::{base_subject, BaseSubject};

use super::format;
use super::types::{SortCriterion, SortKey};
use crate::mime::Structure;
use crate::store::records::MessageRecord;

/// What ringmail offers of RFC 5256 and RFC 5957, for the CAPABILITY response once the session
/// runs SORT and THREAD (RFC 5256 §1, RFC 5957 §1).
pub const SORT_CAPABILITIES: &[&str] = &["SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES"];

/// One message that matched the search key, as SORT and THREAD see it. `structure` is `None`
/// when it cannot be read (a damaged store): the message then sorts as if it had no header
/// fields, by its INTERNALDATE for DATE.
#[derive(Debug, Clone, Copy)]
pub struct SortCandidate<'a> {
    pub seq: u32,
    pub uid: u32,
    pub record: &'a MessageRecord,
    pub structure: Option<&'a Structure>,
}

/// The sent date of RFC 5256 §2.2: the Date header in UTC ("adjusted by time zone"), or the
/// INTERNALDATE when the message has no Date header or it cannot be parsed.
pub fn sent_date(record: &MessageRecord, structure: Option<&Structure>) -> i64 {
    structure.and_then(|s| s.date).unwrap_or(record.internal_date)
}

/// The base subject under i;unicode-casemap, what SORT SUBJECT and THREAD compare; empty for a
/// message without a Subject.
pub(crate) fn subject_key(structure: Option<&Structure>) -> (String, bool) {
    let subject = structure.and_then(|s| s.subject.as_deref()).unwrap_or("");
    let base = base_subject(subject);
    (casemap::casemap(&base.text), base.is_reply_or_forward)
}

/// Orders the candidates by `criteria` and returns their UIDs (`uid`) or sequence numbers.
pub fn sort_messages(criteria: &[SortCriterion], uid: bool, candidates: &[SortCandidate<'_>]) -> Vec<u32> {
    let mut sorter = Sorter::new(criteria, uid);
    for c in candidates {
        sorter.push(c);
    }
    sorter.finish()
}

/// SORT one message at a time, for a caller that sees each message only briefly (inside the
/// store's iteration): [`push`](Sorter::push) keeps just the sort values, not the structure.
#[derive(Debug)]
pub struct Sorter<'c> {
    criteria: &'c [SortCriterion],
    uid: bool,
    entries: Vec<Sorted>,
}

/// One message in a sorted result: what its place depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sorted {
    pub seq: u32,
    pub uid: u32,
    pub values: SortValues,
}

/// The values of one message's sort keys, one per criterion, in order. A message's values never
/// change (no sort key reads its flags), so a kept result can place a newcomer among them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortValues(Vec<Value>);

/// A sort value: a time or size, or a casemapped string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Value {
    Number(i64),
    Text(String),
}

impl SortValues {
    /// The values of `c` under `criteria`.
    pub fn of(criteria: &[SortCriterion], c: &SortCandidate<'_>) -> SortValues {
        SortValues(criteria.iter().map(|criterion| value(criterion.key, c)).collect())
    }

    /// About how many bytes these values hold, for a caller that keeps many.
    pub fn footprint(&self) -> usize {
        let text = |v: &Value| match v {
            Value::Text(t) => t.capacity(),
            Value::Number(_) => 0,
        };
        std::mem::size_of::<Self>()
            + self
                .0
                .iter()
                .map(|v| std::mem::size_of::<Value>() + text(v))
                .sum::<usize>()
    }
}

/// Whether any of `criteria` reads the structure: ARRIVAL and SIZE come from the record alone.
pub fn needs_structure(criteria: &[SortCriterion]) -> bool {
    criteria
        .iter()
        .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size))
}

/// The order of two messages under `criteria`, given their values and their places in the
/// mailbox (sequence numbers, or UIDs: both are in mailbox order), which break every tie
/// (RFC 5256 §3).
pub fn compare(
    criteria: &[SortCriterion],
    (a, a_place): (&SortValues, u32),
    (b, b_place): (&SortValues, u32),
) -> Ordering {
    criteria
        .iter()
        .zip(a.0.iter().zip(&b.0))
        .map(|(criterion, (x, y))| {
            // RFC 5256 §3: REVERSE reverses the one criterion after it.
            let order = x.cmp(y);
            if criterion.reverse {
                order.reverse()
            } else {
                order
            }
        })
        .find(|order| order.is_ne())
        .unwrap_or(Ordering::Equal)
        .then(a_place.cmp(&b_place))
}

impl<'c> Sorter<'c> {
    pub fn new(criteria: &'c [SortCriterion], uid: bool) -> Self {
        Sorter {
            criteria,
            uid,
            entries: Vec::new(),
        }
    }

    /// Whether any criterion reads the structure: ARRIVAL and SIZE come from the record alone,
    /// so a caller may then leave `SortCandidate::structure` unloaded (`None`).
    pub fn needs_structure(&self) -> bool {
        needs_structure(self.criteria)
    }

    pub fn push(&mut self, c: &SortCandidate<'_>) {
        self.entries.push(Sorted {
            seq: c.seq,
            uid: c.uid,
            values: SortValues::of(self.criteria, c),
        });
    }

    /// The numbers in sort order: UIDs or sequence numbers, as asked at [`new`](Sorter::new).
    pub fn finish(self) -> Vec<u32> {
        let uid = self.uid;
        self.finish_sorted()
            .into_iter()
            .map(|e| if uid { e.uid } else { e.seq })
            .collect()
    }

    /// The messages in sort order, with their values.
    pub fn finish_sorted(mut self) -> Vec<Sorted> {
        let criteria = self.criteria;
        self.entries
            .sort_by(|a, b| compare(criteria, (&a.values, a.seq), (&b.values, b.seq)));
        self.entries
    }
}

/// The value of one sort key for one message (RFC 5256 §3, RFC 5957 §4).
fn value(key: SortKey, c: &SortCandidate<'_>) -> Value {
    let first = |field| c.structure.and_then(|s| envelope::first_address(&s.envelope, field));
    // RFC 5256 §3: the addr-mailbox of the first address. That of a group's start marker is the
    // group name ("Cc: undisclosed-recipients:;" sorts as UNDISCLOSED-RECIPIENTS); no address
    // at all is the empty string.
    let mailbox = |field| {
        let mailbox = first(field).and_then(|a| a.mailbox.map(|m| casemap::casemap(&String::from_utf8_lossy(&m))));
        Value::Text(mailbox.unwrap_or_default())
    };
    // RFC 5957 §4: the DISPLAY value (§3) of the first address, empty when there is none.
    let display = |field| Value::Text(first(field).map_or_else(String::new, |a| casemap::casemap(&a.display())));
    match key {
        SortKey::Arrival => Value::Number(c.record.internal_date),
        // RFC 5256 §3 DATE is the §2.2 sent date, the INTERNALDATE standing in for a missing or
        // invalid Date.
        SortKey::Date => Value::Number(sent_date(c.record, c.structure)),
        SortKey::Size => Value::Number(i64::try_from(c.record.size).unwrap_or(i64::MAX)),
        SortKey::Subject => Value::Text(subject_key(c.structure).0),
        SortKey::From => mailbox(envelope::Field::From),
        SortKey::To => mailbox(envelope::Field::To),
        SortKey::Cc => mailbox(envelope::Field::Cc),
        SortKey::DisplayFrom => display(envelope::Field::From),
        SortKey::DisplayTo => display(envelope::Field::To),
    }
}

/// Writes `* SORT 2 3 1` (RFC 5256 §4 sort-data), or `* SORT` when nothing matched.
pub fn render_sort(out: &mut Vec<u8>, numbers: &[u32]) {
    out.extend_from_slice(b"* SORT");
    for &n in numbers {
        out.push(b' ');
        format::number(out, n);
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::flags;

    /// A message as the tests describe it: header lines, INTERNALDATE and size.
    struct Fixture {
        record: MessageRecord,
        structure: Option<Structure>,
    }

    fn fixture(header: &str, internal_date: i64, size: u64) -> Fixture {
        let message = format!("{header}\r\n\r\nbody\r\n");
        Fixture {
            record: MessageRecord {
                flags: flags::SEEN,
                internal_date,
                save_date: internal_date,
                size,
                modseq: 1,
                body_id: 1,
                keywords: Vec::new(),
            },
            structure: Some(crate::mime::analyze(message.as_bytes()).expect("fixtures are valid")),
        }
    }

    /// Five messages, sequence numbers 1–5, UIDs 10, 20, ..., 50.
    fn mailbox() -> Vec<Fixture> {
        let mut damaged = fixture("Subject: unreadable", 50, 10);
        damaged.structure = None;
        vec![
            fixture(
                "Date: Tue, 1 Apr 2025 10:00:00 +0000\r\nSubject: Re: [list] Banana\r\n\
                 From: Zed <zed@example.org>\r\nTo: \"Émile\" <b@example.org>\r\nCc: c@example.org",
                400,
                300,
            ),
            fixture(
                "Date: Tue, 1 Apr 2025 11:00:00 +0200\r\nSubject: apple\r\n\
                 From: anna@example.org\r\nTo: Fred <A@example.org>",
                300,
                100,
            ),
            // No Date: INTERNALDATE (100) stands in, the earliest of all.
            fixture(
                "Subject: =?utf-8?q?=C3=89clair?=\r\nFrom: \"Bob\" <Bob@example.org>\r\nTo: eve@example.org",
                100,
                200,
            ),
            fixture(
                "Date: Tue, 1 Apr 2025 09:30:00 +0000\r\nSubject: Fwd: banana\r\nFrom: zed@example.org\r\n\
                 Cc: B@example.org",
                200,
                200,
            ),
            damaged,
        ]
    }

    fn candidates(mailbox: &[Fixture]) -> Vec<SortCandidate<'_>> {
        mailbox
            .iter()
            .enumerate()
            .map(|(i, f)| SortCandidate {
                seq: i as u32 + 1,
                uid: (i as u32 + 1) * 10,
                record: &f.record,
                structure: f.structure.as_ref(),
            })
            .collect()
    }

    fn criteria_list(spec: &[(bool, SortKey)]) -> Vec<SortCriterion> {
        spec.iter()
            .map(|&(reverse, key)| SortCriterion { reverse, key })
            .collect()
    }

    #[test]
    fn every_key() {
        use SortKey as K;
        let mailbox = mailbox();
        // Candidates in mailbox order and reversed: the result must not depend on it.
        let forward = candidates(&mailbox);
        let backward: Vec<_> = forward.iter().rev().copied().collect();
        // Rows: criteria, sequence numbers in order.
        type Case<'a> = (&'a [(bool, K)], [u32; 5]);
        let cases: &[Case<'_>] = &[
            (&[(false, K::Arrival)], [5, 3, 4, 2, 1]),
            (&[(true, K::Arrival)], [1, 2, 4, 3, 5]),
            // 2 was sent at 09:00 UTC, 4 at 09:30, 1 at 10:00; 5 and 3 have no Date, so their
            // INTERNALDATEs (50, 100) count.
            (&[(false, K::Date)], [5, 3, 2, 4, 1]),
            (&[(false, K::Size)], [5, 2, 3, 4, 1]),
            // Equal sizes (3, 4) keep mailbox order, reversed or not.
            (&[(true, K::Size)], [1, 3, 4, 2, 5]),
            // "", APPLE, BANANA (1), BANANA (4), E\u{301}CLAIR.
            (&[(false, K::Subject)], [5, 2, 1, 4, 3]),
            (&[(false, K::Subject), (true, K::Date)], [5, 2, 1, 4, 3]),
            (&[(false, K::Subject), (false, K::Date)], [5, 2, 4, 1, 3]),
            // addr-mailbox: "", anna, Bob, zed, zed.
            (&[(false, K::From)], [5, 2, 3, 1, 4]),
            (&[(false, K::From), (true, K::Arrival)], [5, 2, 3, 1, 4]),
            (&[(false, K::From), (false, K::Arrival)], [5, 2, 3, 4, 1]),
            // "", "", A, b, eve.
            (&[(false, K::To)], [4, 5, 2, 1, 3]),
            // "", "", "", B, c.
            (&[(false, K::Cc)], [2, 3, 5, 4, 1]),
            (&[(true, K::Cc)], [1, 4, 2, 3, 5]),
            // Display names: "", anna@example.org, Bob, Zed, zed@example.org.
            (&[(false, K::DisplayFrom)], [5, 2, 3, 1, 4]),
            // "", "", EVE@EXAMPLE.ORG, E\u{301}MILE, FRED: the mark compares as the character
            // after E, and U+0301 is above every ASCII letter.
            (&[(false, K::DisplayTo)], [4, 5, 3, 1, 2]),
            (&[(true, K::DisplayTo)], [2, 1, 3, 4, 5]),
            (&[], [1, 2, 3, 4, 5]),
        ];
        for (spec, want) in cases {
            let criteria = criteria_list(spec);
            for input in [&forward, &backward] {
                assert_eq!(sort_messages(&criteria, false, input), want, "{spec:?}");
            }
            let uids: Vec<u32> = want.iter().map(|seq| seq * 10).collect();
            assert_eq!(sort_messages(&criteria, true, &forward), uids, "{spec:?} (UID)");
        }
    }

    /// Regression (compliance suite, CC and DISPLAYTO out of order): the address keys are those
    /// of the first ENVELOPE address, a group's start marker included (RFC 5256 §3, RFC 5957
    /// §3), read at SORT time, so messages stored by any version sort alike.
    #[test]
    fn address_keys_follow_the_envelope() {
        use SortKey as K;
        let headers = [
            "From: \"Zoe\" <alpha@x>\r\nTo: undisclosed-recipients:;\r\nCc: Team: zz@x;",
            "From: beta@x\r\nTo: =?utf-8?q?=C3=89mile?= <zed@x>\r\nCc: \"Aaron\" <mike@x>, aaa@x",
            "From: Team: gamma@x;\r\nTo: \"\" <mary@x>",
            "From: \"Adam\" <delta@x>\r\nTo: adam@x (Bob)\r\nCc: undisclosed-recipients:;",
            "From: epsilon\r\nTo: carl@x\r\nCc: Bob <bob@x>",
        ];
        let mailbox: Vec<Fixture> = headers.iter().map(|h| fixture(h, 1, 1)).collect();
        let candidates = candidates(&mailbox);
        type Case<'a> = (&'a [(bool, K)], [u32; 5]);
        let cases: &[Case<'_>] = &[
            // ALPHA, BETA, TEAM (the group), DELTA, EPSILON.
            (&[(false, K::From)], [1, 2, 4, 5, 3]),
            // UNDISCLOSED-RECIPIENTS, ZED, MARY, ADAM, CARL.
            (&[(false, K::To)], [4, 5, 3, 1, 2]),
            // TEAM, MIKE (the first Cc, not its name), "" (no Cc), UNDISCLOSED-RECIPIENTS, BOB.
            (&[(false, K::Cc)], [3, 5, 2, 1, 4]),
            (&[(true, K::Cc)], [4, 1, 2, 5, 3]),
            // ZOE, BETA@X, TEAM, ADAM, EPSILON (no host: the mailbox alone).
            (&[(false, K::DisplayFrom)], [4, 2, 5, 3, 1]),
            // UNDISCLOSED-RECIPIENTS, E\u{301}MILE (decoded), MARY@X (empty name), BOB (the
            // comment name), CARL@X.
            (&[(false, K::DisplayTo)], [4, 5, 2, 3, 1]),
            (&[(true, K::DisplayTo)], [1, 3, 2, 5, 4]),
        ];
        for (spec, want) in cases {
            assert_eq!(
                sort_messages(&criteria_list(spec), false, &candidates),
                want,
                "{spec:?}"
            );
        }
    }

    #[test]
    fn sent_date_falls_back_to_internal_date() {
        let mailbox = mailbox();
        let dates: Vec<i64> = mailbox
            .iter()
            .map(|f| sent_date(&f.record, f.structure.as_ref()))
            .collect();
        assert_eq!(dates, [1_743_501_600, 1_743_498_000, 100, 1_743_499_800, 50]);
        // An unparseable Date is no date.
        let bad = fixture("Date: yesterday", 7, 1);
        assert_eq!(sent_date(&bad.record, bad.structure.as_ref()), 7);
    }

    #[test]
    fn responses() {
        let cases: &[(&[u32], &str)] = &[
            (&[], "* SORT\r\n"),
            (&[7], "* SORT 7\r\n"),
            (&[2, 3, 1], "* SORT 2 3 1\r\n"),
            (&[4_294_967_295, 1], "* SORT 4294967295 1\r\n"),
        ];
        for (numbers, want) in cases {
            let mut out = Vec::new();
            render_sort(&mut out, numbers);
            assert_eq!(String::from_utf8(out).unwrap(), *want);
        }
    }

    #[test]
    fn incremental_equals_batch() {
        let mailbox = mailbox();
        let criteria = criteria_list(&[(true, SortKey::Subject), (false, SortKey::Size)]);
        let mut sorter = Sorter::new(&criteria, true);
        for c in candidates(&mailbox).iter().rev() {
            sorter.push(c);
        }
        assert!(sorter.needs_structure());
        assert_eq!(sorter.finish(), sort_messages(&criteria, true, &candidates(&mailbox)));
        let by_record = criteria_list(&[(false, SortKey::Size), (true, SortKey::Arrival)]);
        assert!(!Sorter::new(&by_record, false).needs_structure());
    }
}
