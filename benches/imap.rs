//! Micro-benchmarks of IMAP's hot paths: command parsing, FETCH rendering (ENVELOPE,
//! BODYSTRUCTURE, BODY[]) from the stored structure, and SEARCH, SORT and THREAD over a
//! 100,000-message mailbox.
//!
//! Run: `cargo bench --bench imap`. Figures are relative: compare runs on the same machine.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringmail::imap::command::fetch::render::{self as fetch, FetchOptions, MessageBytes, MessageMeta};
use ringmail::imap::parse::parse_command;
use ringmail::imap::search::{Candidate, SearchContext, SearchData, Searcher};
use ringmail::imap::types::{FetchAttr, SearchKey, Section, SectionText};
use ringmail::mime::Structure;
use ringmail::store::records::flags;
use ringmail::store::MessageRecord;

fn message(subject: &str, body_lines: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Alice Example <alice@example.org>\r\nTo: Bob <bob@example.org>, carol@example.org\r\n\
         Subject: {subject}\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@example.org>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\n--b\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    .into_bytes();
    for i in 0..body_lines {
        m.extend_from_slice(
            format!("Line {i} of a realistic plain text body, about seventy characters.\r\n").as_bytes(),
        );
    }
    m.extend_from_slice(b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hello</p>\r\n--b--\r\n");
    m
}

fn parse(c: &mut Criterion) {
    let commands: [&[u8]; 5] = [
        b"a1 UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])",
        b"a2 UID STORE 1,3,5:9,200:300 +FLAGS.SILENT (\\Seen $Junk)",
        b"a3 SEARCH RETURN (MIN MAX COUNT) OR FROM alice SUBJECT report SINCE 1-Jan-2026 UNSEEN",
        b"a4 SELECT INBOX (CONDSTORE)",
        b"a5 NOOP",
    ];
    let mut g = c.benchmark_group("imap_parse");
    g.throughput(Throughput::Elements(commands.len() as u64));
    g.bench_function("five_commands", |b| {
        b.iter(|| {
            for cmd in commands {
                black_box(parse_command(black_box(cmd)).ok());
            }
        })
    });
    g.finish();
}

fn record(size: usize, i: u32) -> MessageRecord {
    MessageRecord {
        flags: if i.is_multiple_of(3) { flags::SEEN } else { 0 }
            | if i.is_multiple_of(50) { flags::FLAGGED } else { 0 },
        internal_date: 1_790_000_000 + i as i64 * 60,
        save_date: 1_790_000_000,
        size: size as u64,
        modseq: i as u64 + 1,
        body_id: i as u64,
        keywords: Vec::new(),
    }
}

fn render(c: &mut Criterion) {
    let (msg, structure) = ringmail::mime::ingest(message("quarterly report", 1300)).unwrap();
    let rec = record(msg.len(), 7);
    let meta = MessageMeta {
        seq: 7,
        uid: 7,
        record: &rec,
        structure: Some(&structure),
        recent: false,
        include_flags: false,
    };
    let opts = FetchOptions::default();
    let mut out = Vec::with_capacity(256 * 1024);
    let mut g = c.benchmark_group("fetch_render");
    let cases: [(&str, Vec<FetchAttr>); 3] = [
        (
            "envelope_flags",
            vec![
                FetchAttr::Uid,
                FetchAttr::Flags,
                FetchAttr::Envelope,
                FetchAttr::Rfc822Size,
            ],
        ),
        ("bodystructure", vec![FetchAttr::BodyStructure]),
        (
            "body_peek_100k",
            vec![FetchAttr::BodySection {
                peek: true,
                section: Section {
                    part: vec![],
                    text: SectionText::Full,
                },
                partial: None,
            }],
        ),
    ];
    for (name, attrs) in cases {
        if name == "body_peek_100k" {
            g.throughput(Throughput::Bytes(msg.len() as u64));
        } else {
            g.throughput(Throughput::Elements(1));
        }
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                fetch::render(&meta, &attrs, true, &opts, &msg, &mut out, None).unwrap();
                black_box(out.len())
            })
        });
    }
    g.finish();
}

/// Search data for one message of the synthetic mailbox: a few distinct messages shared.
struct Data<'a> {
    structure: &'a Structure,
    bytes: &'a Vec<u8>,
}

impl SearchData for Data<'_> {
    fn structure(&mut self) -> Option<&Structure> {
        Some(self.structure)
    }
    fn message(&mut self) -> Option<(&Structure, &dyn MessageBytes)> {
        Some((self.structure, self.bytes))
    }
}

fn search(c: &mut Criterion) {
    const N: u32 = 100_000;
    let samples: Vec<(Vec<u8>, Structure)> = ["weekly status", "invoice 2026", "Re: lunch?", "build failed"]
        .iter()
        .map(|s| ringmail::mime::ingest(message(s, 20)).unwrap())
        .collect();
    let records: Vec<MessageRecord> = (1..=N).map(|i| record(4096, i)).collect();
    let ctx = SearchContext {
        now: 1_800_000_000,
        max_uid: N,
        max_seq: N,
        saved: None,
    };
    let keys: [(&str, SearchKey); 4] = [
        ("unseen", SearchKey::Unseen),
        (
            "flagged_since",
            SearchKey::And(vec![SearchKey::Flagged, SearchKey::Since(20_700)]),
        ),
        ("subject", SearchKey::Subject("invoice".into())),
        ("body", SearchKey::Body("failed".into())),
    ];
    let mut g = c.benchmark_group("search_100k");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    for (name, key) in keys {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut searcher = Searcher::default();
                let mut hits = 0u32;
                for (i, r) in records.iter().enumerate() {
                    let (bytes, structure) = &samples[i % samples.len()];
                    let candidate = Candidate {
                        seq: i as u32 + 1,
                        uid: i as u32 + 1,
                        record: r,
                        recent: false,
                    };
                    let mut data = Data { structure, bytes };
                    hits += u32::from(searcher.matches(&key, &candidate, &mut data, &ctx));
                }
                black_box(hits)
            })
        });
    }
    g.finish();
}

fn candidate<'a>(samples: &'a [Structure], i: usize, r: &'a MessageRecord) -> ringmail::imap::sort::SortCandidate<'a> {
    ringmail::imap::sort::SortCandidate {
        seq: i as u32 + 1,
        uid: i as u32 + 1,
        record: r,
        structure: Some(&samples[i % samples.len()]),
    }
}

/// SORT and THREAD over 100,000 messages with a few hundred distinct subjects and threads.
fn sort_and_thread(c: &mut Criterion) {
    use ringmail::imap::sort::Sorter;
    use ringmail::imap::thread::Threader;
    use ringmail::imap::types::{SortCriterion, SortKey, ThreadAlgorithm};
    const N: u32 = 100_000;
    let samples: Vec<Structure> = (0..400)
        .map(|i| {
            let subject = if i % 3 == 0 {
                format!("Re: topic {}", i / 3)
            } else {
                format!("topic {i}")
            };
            ringmail::mime::ingest(message(&subject, 2)).unwrap().1
        })
        .collect();
    let records: Vec<MessageRecord> = (1..=N).map(|i| record(4096, i)).collect();
    let mut g = c.benchmark_group("sort_100k");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    let criteria = [
        (
            "subject",
            vec![SortCriterion {
                reverse: false,
                key: SortKey::Subject,
            }],
        ),
        (
            "reverse_date",
            vec![SortCriterion {
                reverse: true,
                key: SortKey::Date,
            }],
        ),
        (
            "from_then_size",
            vec![
                SortCriterion {
                    reverse: false,
                    key: SortKey::From,
                },
                SortCriterion {
                    reverse: false,
                    key: SortKey::Size,
                },
            ],
        ),
    ];
    for (name, criteria) in &criteria {
        g.bench_function(*name, |b| {
            b.iter(|| {
                let mut sorter = Sorter::new(criteria, true);
                for (i, r) in records.iter().enumerate() {
                    sorter.push(&candidate(&samples, i, r));
                }
                black_box(sorter.finish().len())
            })
        });
    }
    for (name, algorithm) in [
        ("thread_references", ThreadAlgorithm::References),
        ("thread_orderedsubject", ThreadAlgorithm::OrderedSubject),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut threader = Threader::new(algorithm, true);
                for (i, r) in records.iter().enumerate() {
                    threader.push(&candidate(&samples, i, r));
                }
                black_box(threader.finish().len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, parse, render, search, sort_and_thread);
criterion_main!(benches);
