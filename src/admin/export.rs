//! `ringmail export USER --to maildir:PATH`: a user's mail as a Maildir that Dovecot reads
//! back with the same UIDVALIDITY, UIDs, flags, keywords, dates and POP3 UIDLs, so an operator
//! can leave ringmail as easily as they came.
//!
//! The layout is Dovecot's default, Maildir++: INBOX at the top (`cur/`, `new/`, `tmp/`), every
//! other folder in `.Name.Sub` (each level's name in modified UTF-7), with:
//!
//! - `dovecot-uidlist` (version 3): the folder's UIDVALIDITY and UIDNEXT, and each message's
//!   UID beside its file name, with its size (`W`) and POP3 UIDL (`P`);
//! - `dovecot-keywords`: the keywords the file names' lowercase letters stand for;
//! - `subscriptions` at the top: the subscribed folders.
//!
//! A message is a file in `cur/` named `<date>.U<uidvalidity>_<uid>.ringmail,S=<size>,W=<size>:2,<flags>`
//! holding its bytes exactly as stored, with its INTERNALDATE as the file's modification time.
//!
//! Everything is written under `PATH.partial` from one read snapshot of the store (a server may
//! run meanwhile), made durable with one sync of the file system (not an fsync per file, which
//! cost a third of a millisecond each), and renamed to PATH at the end: an interrupted export
//! leaves no half a Maildir at PATH, and running it again starts over.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use crate::config::Config;
use crate::store::records::{flags, Mailbox, MessageRecord};
use crate::store::{Snapshot, SEPARATOR};

/// Keywords a Maildir file name can carry (`a` to `z`).
const MAX_KEYWORDS: usize = 26;

pub fn run(config: &Config, user: &str, target: &super::Location) -> Result<()> {
    let path = match target {
        super::Location::Maildir(path) => path,
        super::Location::Mbox(path) => return super::mbox::export(config, user, path),
        super::Location::Stream(path) => return super::stream::export(config, user, path),
        super::Location::Imap(_) => {
            bail!("export writes to maildir:PATH, mbox:PATH or stream:PATH, not to an IMAP server")
        }
    };
    let partial = start(path)?;
    let store = super::open(config)?;
    let snapshot = store.snapshot()?;
    let Some(account) = snapshot.user(user)? else {
        bail!("no user {user:?}");
    };
    let mailboxes: Vec<Mailbox> = snapshot
        .mailboxes(account.id)?
        .into_iter()
        .filter(|m| !m.noselect)
        .collect();
    let total: u64 = mailboxes.iter().map(|m| u64::from(m.messages)).sum();
    let mut progress = super::progress::Progress::new("export", total);
    for mailbox in &mailboxes {
        let dir = partial.join(folder_dir(&mailbox.name)?);
        write_mailbox(&snapshot, mailbox, &dir, &mut progress)
            .with_context(|| format!("cannot export {:?}", mailbox.name))?;
    }
    private_dirs(&partial)?;
    write_subscriptions(&partial, &snapshot.subscriptions(account.id)?)?;
    finish(&partial, path)?;
    progress.finish();
    println!(
        "exported {total} messages in {} folders of {user} to {}",
        mailboxes.len(),
        path.display()
    );
    Ok(())
}

/// The directory an export into `path` (new, or empty) writes before it takes `path`'s name;
/// what an interrupted run left there is removed.
pub(super) fn start(path: &Path) -> Result<PathBuf> {
    if path.exists() && std::fs::read_dir(path).map_or(true, |mut d| d.next().is_some()) {
        bail!(
            "{} exists and is not empty: export into a new directory",
            path.display()
        );
    }
    let partial = partial_path(path);
    if partial.exists() {
        std::fs::remove_dir_all(&partial).with_context(|| format!("cannot remove {}", partial.display()))?;
    }
    Ok(partial)
}

/// Makes everything under `partial` durable, then gives it `path`'s name.
pub(super) fn finish(partial: &Path, path: &Path) -> Result<()> {
    let root = std::fs::File::open(partial)?;
    crate::runtime::fs::sync_filesystem(&root).with_context(|| format!("cannot sync {}", partial.display()))?;
    std::fs::rename(partial, path)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), path.display()))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// A folder's directory under the Maildir root: INBOX is the root itself, `A/B` is `.A.B`.
fn folder_dir(name: &str) -> Result<PathBuf> {
    if name.eq_ignore_ascii_case("INBOX") {
        return Ok(PathBuf::new());
    }
    let mut dir = String::new();
    for level in name.split(SEPARATOR) {
        let encoded = crate::imap::mutf7::encode(level);
        if encoded.contains('.') || encoded.is_empty() || encoded.contains('/') {
            bail!("the folder {name:?} has a level Maildir++ cannot name ('.' separates its levels)");
        }
        dir.push('.');
        dir.push_str(&encoded);
    }
    Ok(PathBuf::from(dir))
}

/// The name a subscription has in Dovecot's Maildir++ (its separator is '.').
fn maildir_name(name: &str) -> String {
    name.split(SEPARATOR)
        .map(crate::imap::mutf7::encode)
        .collect::<Vec<_>>()
        .join(".")
}

/// The Maildir flag letters of `record`, in ASCII order as the Maildir spec asks; its keywords
/// as letters of `keywords` (the folder's `dovecot-keywords`).
fn flag_letters(record: &MessageRecord, keywords: &[String]) -> String {
    let mut letters: Vec<char> = [
        (flags::DRAFT, 'D'),
        (flags::FLAGGED, 'F'),
        (flags::ANSWERED, 'R'),
        (flags::SEEN, 'S'),
        (flags::DELETED, 'T'),
    ]
    .into_iter()
    .filter(|(bit, _)| record.flags & bit != 0)
    .map(|(_, c)| c)
    .collect();
    for k in &record.keywords {
        if let Some(i) = keywords.iter().position(|known| known == k) {
            letters.push(char::from(b'a' + i as u8));
        }
    }
    letters.sort_unstable();
    letters.into_iter().collect()
}

fn write_mailbox(
    snapshot: &Snapshot<'_>,
    mailbox: &Mailbox,
    dir: &Path,
    progress: &mut super::progress::Progress,
) -> Result<()> {
    for sub in ["cur", "new", "tmp"] {
        private_dirs(&dir.join(sub))?;
    }
    // The folder's keywords, in the order they are first met.
    let mut keywords: Vec<String> = Vec::new();
    for item in snapshot.messages(mailbox.id)? {
        let (_, record) = item?;
        for k in &record.keywords {
            if !keywords.contains(k) {
                keywords.push(k.clone());
            }
        }
    }
    if keywords.len() > MAX_KEYWORDS {
        bail!(
            "it uses {} keywords; a Maildir file name holds at most {MAX_KEYWORDS}",
            keywords.len()
        );
    }
    let mut uidlist = format!("3 V{} N{} G{}\n", mailbox.uid_validity, mailbox.uid_next, guid());
    let imported_uidls = snapshot.pop3_uidls(mailbox.id)?;
    for item in snapshot.messages(mailbox.id)? {
        let (uid, record) = item?;
        let base = format!(
            "{}.U{}_{uid}.ringmail,S={size},W={size}",
            record.internal_date.max(0),
            mailbox.uid_validity,
            size = record.size
        );
        let file = dir
            .join("cur")
            .join(format!("{base}:2,{}", flag_letters(&record, &keywords)));
        let mut out = private_file(&file, true)?;
        for chunk in snapshot.body(record.body_id, 0)? {
            out.write_all(chunk?)?;
        }
        let date = UNIX_EPOCH + Duration::from_secs(record.internal_date.max(0) as u64);
        out.set_modified(date)?;
        // RFC 1939 UIDLs as ringmail's POP3 gives them (`pop3::Session::uidl`), kept.
        let uidl = imported_uidls
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| format!("{}.{uid}", mailbox.uid_validity));
        uidlist.push_str(&format!("{uid} W{} P{uidl} :{base}\n", record.size));
        progress.advance(1);
    }
    write_file(&dir.join("dovecot-uidlist"), uidlist.as_bytes())?;
    let listed: String = keywords.iter().enumerate().map(|(i, k)| format!("{i} {k}\n")).collect();
    write_file(&dir.join("dovecot-keywords"), listed.as_bytes())
}

fn write_subscriptions(root: &Path, names: &[String]) -> Result<()> {
    let text: String = names.iter().map(|n| format!("{}\n", maildir_name(n))).collect();
    write_file(&root.join("subscriptions"), text.as_bytes())
}

pub(super) fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = private_file(path, false)?;
    f.write_all(bytes)?;
    Ok(())
}

/// Directories only the exporting user may enter: it is someone's mail.
pub(super) fn private_dirs(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// A file only the exporting user may read (`new`: it must not exist yet).
pub(super) fn private_file(path: &Path, new: bool) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(0o600);
    if new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// A mailbox GUID for `dovecot-uidlist`: 128 random bits in hex.
fn guid() -> String {
    rand::random::<[u8; 16]>().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_become_maildir_plus_plus_directories() {
        assert_eq!(folder_dir("INBOX").unwrap(), PathBuf::new());
        assert_eq!(folder_dir("Archive/2024").unwrap(), PathBuf::from(".Archive.2024"));
        assert_eq!(folder_dir("Entwürfe").unwrap(), PathBuf::from(".Entw&APw-rfe"));
        assert!(folder_dir("v1.2").is_err());
        assert_eq!(maildir_name("Archive/2024"), "Archive.2024");
    }

    #[test]
    fn flags_are_letters_in_order() {
        let record = MessageRecord {
            flags: flags::SEEN | flags::FLAGGED | flags::DOT_FREE,
            internal_date: 0,
            save_date: 0,
            size: 0,
            modseq: 1,
            body_id: 0,
            keywords: vec!["$Label1".into(), "Work".into()],
        };
        let keywords = vec!["Work".to_string(), "$Label1".to_string()];
        assert_eq!(flag_letters(&record, &keywords), "FSab");
    }
}
