//! What a server's metrics endpoint shows beside the process's counters (`crate::metrics`):
//! read at scrape time, on the endpoint's thread — the sessions by protocol and state, the
//! store's size and free pages, and the outbound queue's depth and oldest entry.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::Shared;
use crate::metrics::{encode_gauge, encode_sessions};

/// The protocols a `serve` process has sessions of.
const PROTOCOLS: [&str; 4] = ["imap", "pop3", "submission", "lmtp"];

#[derive(Clone)]
pub struct Exposition(pub Arc<Shared>);

impl std::fmt::Debug for Exposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exposition")
    }
}

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let shared = &self.0;
        encode_sessions(&mut encoder, &shared.sessions, &PROTOCOLS)?;
        let e = &mut encoder;
        encode_gauge(
            e,
            (
                "sessions_parked",
                "IMAP sessions held as data, not tasks: in IDLE, or quiet a second between commands",
            ),
            super::lot::parked_total(),
        )?;
        match shared.store.space() {
            Ok(space) => {
                let bytes = |pages: u64| (pages * space.page_size) as i64;
                encode_gauge(
                    e,
                    (
                        "store_file_bytes",
                        "Size of the store's data.mdb: its pages and the room written ahead of them",
                    ),
                    space.file_bytes as i64,
                )?;
                encode_gauge(
                    e,
                    ("store_map_bytes", "How large the store may grow"),
                    space.map_bytes as i64,
                )?;
                encode_gauge(
                    e,
                    ("store_used_bytes", "Pages written so far, in bytes"),
                    bytes(space.pages),
                )?;
                encode_gauge(
                    e,
                    (
                        "store_free_bytes",
                        "Of those, free pages reused before the file grows, in bytes",
                    ),
                    bytes(space.free_pages),
                )?;
            }
            Err(err) => tracing::warn!("metrics: store size: {err}"),
        }
        match shared.store.snapshot().and_then(|s| s.queue()) {
            Ok(queue) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                let oldest = queue
                    .iter()
                    .map(|q| q.created)
                    .min()
                    .map_or(0, |created| (now - created).max(0));
                encode_gauge(
                    e,
                    ("queue_messages", "Messages waiting in the outbound queue"),
                    queue.len() as i64,
                )?;
                encode_gauge(
                    e,
                    (
                        "queue_oldest_seconds",
                        "Age of the oldest queued message (0: the queue is empty)",
                    ),
                    oldest,
                )?;
            }
            Err(err) => tracing::warn!("metrics: queue: {err}"),
        }
        Ok(())
    }
}
