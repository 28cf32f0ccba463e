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

/// The records of one batch: the next `BATCH` bytes of the source, cycling through it.
struct Batches<'s> {
    source: &'s [u8],
    at: usize,
    seq: u64,
    out: Vec<u8>,
}

impl Batches<'_> {
    /// Seals the next batch with `seal(nonce, plaintext, ciphertext, tag)`, record by record.
    fn seal(&mut self, mut seal: impl FnMut([u8; 12], &[u8], &mut [u8], &mut [u8])) {
        let batch = &self.source[self.at..self.at + BATCH];
        self.at = (self.at + BATCH) % SOURCE;
        for (plain, sealed) in batch.chunks(RECORD).zip(self.out.chunks_mut(RECORD + TAG_LEN)) {
            let (text, tag) = sealed.split_at_mut(RECORD);
            self.seq += 1;
            seal(nonce(self.seq), plain, text, tag);
        }
        black_box(&self.out);
    }
}

fn seal(c: &mut Criterion) {
    let source: Vec<u8> = (0..SOURCE).map(|i| (i * 31 + 7) as u8).collect();
    let key = [7u8; 16];
    let header = [23, 3, 3, 0x40, 0x11];
    let mut batches = Batches {
        source: &source,
        at: 0,
        seq: 0,
        out: vec![0u8; BATCH + BATCH / RECORD * TAG_LEN],
    };
    let mut group = c.benchmark_group("seal");
    group.throughput(Throughput::Bytes(BATCH as u64));

    let ring_key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &key).unwrap());
    group.bench_function("copy, then seal in place (ring)", |b| {
        b.iter(|| {
            batches.seal(|nonce, plain, text, tag| {
                text.copy_from_slice(plain);
                let t = ring_key
                    .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(header), text)
                    .unwrap();
                tag.copy_from_slice(t.as_ref());
            })
        })
    });

    let mut sealer = Sealer::new(Cipher::Aes128Gcm, &key).unwrap();
    group.bench_function("sealed from where it lies (net::seal)", |b| {
        b.iter(|| {
            batches.seal(|nonce, plain, text, tag| {
                let mut record = sealer.record(&nonce, &header).unwrap();
                record.update(plain, text).unwrap();
                record.finish(tag).unwrap();
            })
        })
    });
    group.finish();
}

criterion_group!(benches, seal);
criterion_main!(benches);
