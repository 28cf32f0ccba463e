//! Micro-benchmarks of reading the LMDB store as the sessions do: what SELECT and a POP3 login
//! read from a 1,000- and a 10,000-message INBOX (every message record, through a fresh read
//! snapshot), and one 100 KiB body read from the map without a copy (POP3 RETR) and with one
//! (IMAP FETCH BODY[]).
//!
//! Run: `cargo bench --bench store`. Figures are relative: compare runs on the same machine.

mod common;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringmail::config::SortOrder;
use ringmail::imap::view::{MailRead, UidView};
use ringmail::net::Gather;
use ringmail::pop3::retr::Piece;
use ringmail::pop3::{Message, RetrEncoder};
use ringmail::serve::SnapRead;
use ringmail::store::records::{flags, BodyId, UserId};
use ringmail::store::{NewMessage, NewUser, Recipient, Store, WriteOp, WriteOutcome};

/// Messages per APPEND when seeding: one durable commit each, so 10,000 take seconds.
const BATCH: usize = 1000;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    /// Users whose INBOX holds 1,000 and 10,000 messages.
    inboxes: [(usize, UserId); 2],
    /// A 100 KiB message with lines to byte-stuff, and its length.
    body: (BodyId, usize),
}

fn add_user(store: &Store, name: &str, password_hash: &ringmail::auth::password::Hashed) -> UserId {
    let outcome = store
        .write_blocking(WriteOp::AddUser(NewUser {
            name: name.into(),
            password_hash: password_hash.phc.clone(),
            scram: password_hash.scram.clone(),
            admin: false,
        }))
        .unwrap();
    let WriteOutcome::User(user) = outcome else {
        unreachable!("AddUser answers with the user")
    };
    user.id
}

/// A short message, as most of a mailbox is; every one is distinct.
fn small_message(i: usize) -> NewMessage {
    let raw = format!(
        "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: message {i}\r\n\
         Message-ID: <{i}@example.org>\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\n\
         A short body of one line.\r\n"
    );
    let (message, structure) = ringmail::mime::ingest(raw.into_bytes()).unwrap();
    NewMessage {
        message,
        structure: Arc::new(structure),
        // Two in three read, one in fifty flagged, one in twenty with a keyword.
        flags: if i.is_multiple_of(3) { 0 } else { flags::SEEN }
            | if i.is_multiple_of(50) { flags::FLAGGED } else { 0 },
        keywords: if i.is_multiple_of(20) {
            vec!["$Junk".into()]
        } else {
            Vec::new()
        },
        internal_date: None,
    }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let hashed = ringmail::auth::password::hash("pw").unwrap();
    let mut inboxes = [(1000, 0), (10_000, 0)];
    for (count, user) in &mut inboxes {
        *user = add_user(&store, &format!("user{count}"), &hashed);
        let inbox = store.snapshot().unwrap().mailbox(*user, "INBOX").unwrap().unwrap().id;
        for start in (0..*count).step_by(BATCH) {
            let messages = (start..*count).take(BATCH).map(small_message).collect();
            store
                .write_blocking(WriteOp::Append {
                    mailbox: inbox,
                    messages,
                })
                .unwrap();
        }
    }

    add_user(&store, "bob", &hashed);
    let (message, structure) = ringmail::mime::ingest(common::message(100 * 1024)).unwrap();
    let len = message.len();
    let WriteOutcome::Delivered(delivered) = store
        .write_blocking(WriteOp::Deliver {
            message: message.into(),
            structure: Arc::new(structure),
            recipients: vec![Recipient {
                user: "bob".into(),
                mailbox: "INBOX".into(),
            }],
        })
        .unwrap()
    else {
        unreachable!("a delivery answers with deliveries")
    };
    let delivered = *delivered[0].as_ref().unwrap();
    let record = store
        .snapshot()
        .unwrap()
        .message(delivered.mailbox, delivered.uid)
        .unwrap()
        .unwrap();
    assert_eq!(
        record.flags & flags::DOT_FREE,
        0,
        "the large message takes the stuffing path"
    );
    Fixture {
        _dir: dir,
        store,
        inboxes,
        body: (record.body_id, len),
    }
}

/// SELECT with no cached view: the view of the INBOX's UIDs, built from every record.
fn uid_view(store: &Store, user: UserId) -> u32 {
    let snapshot = store.snapshot().unwrap();
    let inbox = snapshot.mailbox(user, "INBOX").unwrap().unwrap();
    UidView::load(&SnapRead(&snapshot), &inbox).unwrap().len()
}

/// What SELECT reports besides the view (`imap::view::select_scan`): the first unseen message
/// (from the unseen index) and the keywords in use (from the mailbox's counts), for the
/// messages of a view built beforehand.
fn select_scan(store: &Store, user: UserId, view: &UidView) -> (Option<u32>, usize) {
    let snapshot = store.snapshot().unwrap();
    let inbox = snapshot.mailbox(user, "INBOX").unwrap().unwrap();
    let (first_unseen, keywords) = ringmail::imap::view::select_scan(&SnapRead(&snapshot), &inbox, view).unwrap();
    (first_unseen, keywords.len())
}

/// A POP3 login's maildrop listing (`serve::load_maildrop`).
fn pop3_maildrop(store: &Store, user: UserId) -> Vec<Message> {
    let snapshot = store.snapshot().unwrap();
    ringmail::serve::load_maildrop(&snapshot, user, SortOrder::Ascending)
        .unwrap()
        .messages
}

fn mailbox_read(c: &mut Criterion, f: &Fixture) {
    for (count, user) in f.inboxes {
        assert_eq!(uid_view(&f.store, user) as usize, count);
        assert_eq!(pop3_maildrop(&f.store, user).len(), count);
        let view = {
            let snapshot = f.store.snapshot().unwrap();
            let inbox = snapshot.mailbox(user, "INBOX").unwrap().unwrap();
            UidView::load(&SnapRead(&snapshot), &inbox).unwrap()
        };
        assert_eq!(select_scan(&f.store, user, &view), (Some(1), 1));
        let mut g = c.benchmark_group(format!("mailbox_read_{}k", count / 1000));
        g.throughput(Throughput::Elements(count as u64));
        if count >= 10_000 {
            g.sample_size(30);
        }
        g.bench_function("uid_view", |b| b.iter(|| uid_view(&f.store, user)));
        g.bench_function("select_scan", |b| b.iter(|| select_scan(&f.store, user, &view)));
        g.bench_function("pop3_maildrop", |b| b.iter(|| pop3_maildrop(&f.store, user)));
        g.finish();
    }
}

/// RETR's zero-copy path: the rendered message as pieces to send, runs left in the map.
fn mapped_retr(store: &Store, body: BodyId, gather: &mut Gather) -> usize {
    let snapshot = store.mapped_snapshot().unwrap();
    let mut encoder = RetrEncoder::whole();
    for chunk in snapshot.body(body, 0).unwrap() {
        let chunk = chunk.unwrap();
        encoder.encode_pieces(&chunk, |piece| match piece {
            Piece::Run(range) => gather.mapped(chunk.slice(range)),
            Piece::Dot => gather.literal(b"."),
        });
    }
    gather.literal(encoder.trailer());
    let len = gather.len();
    // Sending would happen here; the pieces, and the read transaction they hold, go with them.
    let sent = gather.take();
    gather.recycle(sent);
    len
}

fn body_read(c: &mut Criterion, f: &Fixture) {
    let (body, len) = f.body;
    let mut g = c.benchmark_group("body_read_100k");
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("mapped_chunks", |b| {
        b.iter(|| {
            let snapshot = f.store.mapped_snapshot().unwrap();
            let chunks = snapshot.body(body, 0).unwrap();
            chunks.map(|c| c.unwrap().len()).sum::<usize>()
        })
    });
    let mut gather = Gather::default();
    assert!(mapped_retr(&f.store, body, &mut gather) > len);
    g.bench_function("mapped_retr", |b| b.iter(|| mapped_retr(&f.store, body, &mut gather)));
    let mut out = Vec::with_capacity(len);
    let copy = |out: &mut Vec<u8>| {
        out.clear();
        let snapshot = f.store.snapshot().unwrap();
        let reader = SnapRead(&snapshot);
        let bytes = reader.body(body).unwrap();
        bytes.copy(0..bytes.len(), out);
        out.len()
    };
    // Checked before, not after: with a filter on the command line the bench may not run.
    assert_eq!(copy(&mut out), len);
    g.bench_function("snapshot_copy", |b| b.iter(|| black_box(copy(&mut out))));
    g.finish();
}

fn store_read(c: &mut Criterion) {
    let f = fixture();
    mailbox_read(c, &f);
    body_read(c, &f);
}

criterion_group!(benches, store_read);
criterion_main!(benches);
