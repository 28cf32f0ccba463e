//! Micro-benchmark of sealing a download's TLS records: 1 MiB of 16 KiB records, taken from
//! a source much larger than the caches (as a mailbox's bodies in the store's map are), sealed
//! with AES-128-GCM two ways:
//! - `copy, then seal in place`: what ring allows, the plaintext copied into the record and
//!   encrypted there (the record layer before `net::seal`);
//! - `sealed from where it lies`: `net::seal::Sealer`, the plaintext read once by the cipher.
//!
//! Run: `cargo bench --bench seal`. Figures are relative: compare runs on the same machine.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use ringmail::net::seal::{Cipher, Sealer, TAG_LEN};

const RECORD: usize = 16 * 1024;
const BATCH: usize = 1 << 20;
/// Far past the last-level cache, so each batch is read from memory.
const SOURCE: usize = 256 << 20;

fn nonce(seq: u64) -> [u8; 12] {
    let mut nonce = [0; 12];
    nonce[4..].copy_from_slice(&seq.to_be_bytes());
    nonce
}

fn seal(c: &mut Criterion) {
    let source: Vec<u8> = (0..SOURCE).map(|i| (i * 31 + 7) as u8).collect();
    let key = [7u8; 16];
    let header = [23, 3, 3, 0x40, 0x11];
    let mut out = vec![0u8; BATCH + BATCH / RECORD * TAG_LEN];
    let mut group = c.benchmark_group("seal");
    group.throughput(Throughput::Bytes(BATCH as u64));

    let ring_key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &key).unwrap());
    let (mut at, mut seq) = (0, 0u64);
    group.bench_function("copy, then seal in place (ring)", |b| {
        b.iter(|| {
            let batch = &source[at..at + BATCH];
            at = (at + BATCH) % SOURCE;
            for (plain, sealed) in batch.chunks(RECORD).zip(out.chunks_mut(RECORD + TAG_LEN)) {
                let (text, tag) = sealed.split_at_mut(RECORD);
                text.copy_from_slice(plain);
                seq += 1;
                let t = ring_key
                    .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce(seq)), Aad::from(header), text)
                    .unwrap();
                tag.copy_from_slice(t.as_ref());
            }
            black_box(&out);
        })
    });

    let mut sealer = Sealer::new(Cipher::Aes128Gcm, &key).unwrap();
    group.bench_function("sealed from where it lies (net::seal)", |b| {
        b.iter(|| {
            let batch = &source[at..at + BATCH];
            at = (at + BATCH) % SOURCE;
            for (plain, sealed) in batch.chunks(RECORD).zip(out.chunks_mut(RECORD + TAG_LEN)) {
                let (text, tag) = sealed.split_at_mut(RECORD);
                seq += 1;
                let mut record = sealer.record(&nonce(seq), &header).unwrap();
                record.update(plain, text).unwrap();
                record.finish(tag).unwrap();
            }
            black_box(&out);
        })
    });
    group.finish();
}

criterion_group!(benches, seal);
criterion_main!(benches);
