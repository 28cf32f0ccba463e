//! `ringmail export USER --to stream:PATH` and `ringmail import USER --from stream:PATH`: a
//! user's mailboxes as one mailbox stream (docs/stream.md), exactly as the store holds them —
//! UIDVALIDITY, UIDs, modseqs, POP3 UIDLs, the expunge log, subscriptions, METADATA — the
//! format a mailbox move sends between back ends, here through a file.
//!
//! The export reads one snapshot (a server may run meanwhile) and writes `PATH.partial`,
//! synced and renamed at the end; `-` writes to standard output. The import needs the server
//! stopped, like the Maildir import; it refuses an account whose mailboxes hold mail that did
//! not come from a stream, and run again it sends nothing twice: the stream's changes apply to
//! what an earlier run brought.

use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::config::Config;
use crate::mailstream::{self, format::Reader};

pub fn export(config: &Config, user: &str, path: &Path) -> Result<()> {
    let store = super::open(config)?;
    let snapshot = store.snapshot()?;
    let Some(account) = snapshot.user(user)? else {
        bail!("no user {user:?}");
    };
    let total: u64 = snapshot
        .mailboxes(account.id)?
        .iter()
        .map(|m| u64::from(m.messages))
        .sum();
    let mut progress = super::progress::Progress::new("export", total);
    let carried = if path == Path::new("-") {
        let out = BufWriter::new(std::io::stdout().lock());
        let (mut out, carried) = mailstream::dump(&snapshot, &account, &[], out, &mut |n| progress.advance(n))?;
        out.flush()?;
        carried
    } else {
        let partial = path.with_extension("partial");
        let file = super::export::private_file(&partial, false)?;
        let (out, carried) = mailstream::dump(&snapshot, &account, &[], BufWriter::new(file), &mut |n| {
            progress.advance(n)
        })?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&partial, path)
            .with_context(|| format!("cannot rename {} to {}", partial.display(), path.display()))?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::File::open(parent)?.sync_all()?;
        }
        carried
    };
    progress.finish();
    eprintln!(
        "exported {} messages ({} bytes) in {} mailboxes of {user}",
        carried.messages, carried.bytes, carried.mailboxes
    );
    Ok(())
}

/// Imports the stream at `path` into `user`'s mailboxes in `store` (whose lock the caller holds).
pub fn import_into(config: &Config, store: &crate::store::Store, user: &str, path: &Path) -> Result<()> {
    let account = super::import::account(config, store, user)?;
    let snapshot = store.snapshot()?;
    for mailbox in snapshot.mailboxes(account.id)? {
        if mailbox.messages > 0 && mailbox.copied.is_none() {
            bail!(
                "{user}'s {:?} holds mail that did not come from a stream: import a stream into a new account",
                mailbox.name
            );
        }
    }
    drop(snapshot);
    let input: Box<dyn std::io::Read> = if path == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
    };
    let mut reader = Reader::new(BufReader::with_capacity(1 << 20, input))?;
    let from = mailstream::read_header(&mut reader)?;
    let mut progress = super::progress::Progress::new("import", 0);
    let (end, carried) = mailstream::apply(store, &account, &mut reader, &config.mime_limits(), &mut |n| {
        progress.advance(n)
    })
    .with_context(|| format!("cannot import {}", path.display()))?;
    progress.finish();
    println!(
        "imported {} messages ({} bytes) in {} mailboxes of {from} into {user}; stream checksum {}",
        carried.messages, carried.bytes, carried.mailboxes, end.sha256
    );
    Ok(())
}
