//! Micro-benchmarks of POP3's hot paths: command parsing, RETR rendering (in memory and from
//! the LMDB store through a read snapshot), and ingest (MIME parse, then a durable store write).
//!
//! Run: `cargo bench --bench pop3`. Figures are relative: compare runs on the same machine.

mod common;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ringmail::pop3::command;
use ringmail::pop3::RetrEncoder;
use ringmail::store::{NewUser, Recipient, Store, WriteOp, WriteOutcome};

fn store_with_bob() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let hashed = ringmail::auth::password::hash("pw").unwrap();
    store
        .write_blocking(WriteOp::AddUser(NewUser {
            name: "bob".into(),
            password_hash: hashed.phc,
            scram: hashed.scram,
            admin: false,
        }))
        .unwrap();
    (dir, store)
}

/// Ingest (MIME parse) and a durable write, as LMTP does it.
fn deliver(store: &Store, raw: Vec<u8>) -> WriteOutcome {
    let (body, structure) = ringmail::mime::ingest(raw).unwrap();
    store
        .write_blocking(WriteOp::Deliver {
            message: body.into(),
            structure: Arc::new(structure),
            recipients: vec![Recipient {
                user: "bob".into(),
                mailbox: "INBOX".into(),
            }],
        })
        .unwrap()
}

fn parse(c: &mut Criterion) {
    let lines: [&[u8]; 6] = [
        b"STAT",
        b"LIST 42",
        b"RETR 1234",
        b"UIDL",
        b"TOP 7 10",
        b"PASS correct horse battery",
    ];
    let mut g = c.benchmark_group("pop3_parse");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("six_commands", |b| {
        b.iter(|| {
            for l in lines {
                black_box(command::parse(black_box(l)).ok());
            }
        })
    });
    g.finish();
}

fn render(c: &mut Criterion) {
    let msg = common::message(100 * 1024);
    let mut g = c.benchmark_group("retr_render");
    g.throughput(Throughput::Bytes(msg.len() as u64));
    let mut out = Vec::with_capacity(msg.len() * 2);
    g.bench_function("memory_100k", |b| {
        b.iter(|| {
            out.clear();
            let mut enc = RetrEncoder::whole();
            enc.encode(black_box(&msg), &mut out);
            enc.finish(&mut out);
            black_box(out.len())
        })
    });
    let (_dir, store) = store_with_bob();
    let WriteOutcome::Delivered(d) = deliver(&store, msg.clone()) else {
        unreachable!("a delivery answers with deliveries")
    };
    let delivered = *d[0].as_ref().unwrap();
    let from_store = |out: &mut Vec<u8>| {
        out.clear();
        let snap = store.snapshot().unwrap();
        let record = snap.message(delivered.mailbox, delivered.uid).unwrap().unwrap();
        let mut enc = RetrEncoder::whole();
        for chunk in snap.body(record.body_id, 0).unwrap() {
            enc.encode(chunk.unwrap(), out);
        }
        enc.finish(out);
    };
    from_store(&mut out);
    assert!(out.len() > msg.len(), "the stored body renders in full");
    g.bench_function("store_100k", |b| {
        b.iter(|| {
            from_store(&mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

fn ingest(c: &mut Criterion) {
    let msg = common::message(100 * 1024);
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Bytes(msg.len() as u64));
    g.bench_function("mime_100k", |b| {
        b.iter_batched(
            || msg.clone(),
            |m| black_box(ringmail::mime::ingest(m).unwrap()),
            BatchSize::SmallInput,
        )
    });
    let (_dir, store) = store_with_bob();
    g.sample_size(30);
    g.bench_function("mime_and_durable_write_100k", |b| {
        b.iter_batched(|| msg.clone(), |m| deliver(&store, m), BatchSize::SmallInput)
    });
    g.finish();
}

criterion_group!(benches, parse, render, ingest);
criterion_main!(benches);
