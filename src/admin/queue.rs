//! `ringmail queue list|flush|delete ID`: the outbound queue, straight on the store (like the
//! account commands, with or without a running server). A running server's runner looks at
//! the queue every few seconds, so a flush or a delete takes effect there without a signal.

use anyhow::{bail, Result};

use crate::config::Config;
use crate::smtp::date;
use crate::store::{QueueEntry, WriteOp, WriteOutcome};

/// Queue ids are shown and taken as 16 hex digits, as in the `250 … queued as` reply.
pub fn parse_id(text: &str) -> Result<u64> {
    u64::from_str_radix(text.trim(), 16)
        .map_err(|_| anyhow::anyhow!("invalid queue id {text:?}: use the hex id `queue list` shows"))
}

pub fn list(config: &Config) -> Result<()> {
    let store = super::open(config)?;
    let entries = store.snapshot()?.queue()?;
    if entries.is_empty() {
        println!("queue is empty");
    }
    for entry in &entries {
        print_entry(entry);
    }
    Ok(())
}

fn print_entry(e: &QueueEntry) {
    let recipients: Vec<&str> = e.recipients.iter().map(|r| r.address.as_str()).collect();
    println!(
        "{:016X}\tfrom=<{}>\tto={}\tsize={}\tattempts={}\tnext={}\tqueued={}\terror={}",
        e.id,
        e.from,
        recipients.join(","),
        e.size,
        e.attempts,
        date::rfc5322(e.next_attempt),
        date::rfc5322(e.created),
        e.last_error.as_deref().unwrap_or("-"),
    );
}

pub fn flush(config: &Config) -> Result<()> {
    let store = super::open(config)?;
    let WriteOutcome::Queue(n) = store.write_blocking(WriteOp::QueueFlush)? else {
        bail!("unexpected answer from the store");
    };
    println!("{n} queued messages are due now");
    Ok(())
}

pub fn delete(config: &Config, id: &str) -> Result<()> {
    let id = parse_id(id)?;
    let store = super::open(config)?;
    match store.write_blocking(WriteOp::QueueDelete { id })? {
        WriteOutcome::Queue(1) => {
            println!("queued message {id:016X} deleted");
            Ok(())
        }
        _ => bail!("no queued message {id:016X}"),
    }
}
