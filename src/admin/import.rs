//! `ringmail import USER --from maildir:PATH`: a Maildir (Dovecot's, or what `ringmail export`
//! wrote) into a user's mailboxes, keeping each folder's UIDVALIDITY and UIDNEXT and each
//! message's UID from `dovecot-uidlist`, its flags and keywords (`dovecot-keywords`) from its
//! file name, and its INTERNALDATE from the file's modification time, so clients that knew the
//! mail keep their caches.
//!
//! Folders are found in both of Dovecot's layouts: Maildir++ (`.A.B` under the root, INBOX
//! the root itself) and LAYOUT=fs (`A/B/` with `cur/` inside); names are modified UTF-7 on disk.
//! A message the uidlist does not know gets a UID after the known ones. POP3 clients keep
//! their UIDLs: the uidlist's `P` (what `ringmail export` writes), else Dovecot's default
//! (`%08Xu%08Xv`), kept beside the message (the store's `pop3_uidls`).
//!
//! Messages go in batches, each committed before the next is read, in UID order: an import
//! that is interrupted and run again skips what is in already (the store's `Import`), so it
//! adds only what is new. The account must exist (`ringmail user add`), and the server must be
//! stopped: the UIDs are the source's, not the next ones, and a running server's sessions and
//! deliveries assume UIDs only grow.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use crate::config::Config;
use crate::store::records::{flags, Uid};
use crate::store::{ImportedMessage, NewMessage, WriteOp, WriteOutcome, SEPARATOR};

/// A batch is committed once it holds this many messages or bytes.
pub(super) const BATCH_MESSAGES: usize = 200;
pub(super) const BATCH_BYTES: usize = 32 << 20;

/// One folder of the source: its name in the store and where it is (a Maildir's directory, an
/// mbox file).
pub(super) struct Folder {
    pub name: String,
    pub dir: PathBuf,
}

pub fn run(config: &Config, user: &str, source: &super::Location, auth: &super::imap_import::SourceAuth) -> Result<()> {
    let password = match source {
        super::Location::Imap(_) => Some(super::imap_import::password(auth.password_stdin)?),
        _ => None,
    };
    let (_lock, store) = stopped_store(config)?;
    into(config, &store, user, source, auth, password)
}

/// The store of this config's data_dir, with the lock that keeps a server from starting on it.
/// Messages go in at the UIDs they had, below mail that might arrive meanwhile: sessions and
/// deliveries, which see UIDs only grow, must not be running.
pub(super) fn stopped_store(config: &Config) -> Result<(std::fs::File, crate::store::Store)> {
    let lock = crate::serve::lock_data_dir(&config.server.data_dir)
        .context("stop the server first: an import writes mail at its old UIDs, which live sessions cannot follow")?;
    Ok((lock, super::open_stopped(config)?))
}

/// Imports `source` into `user`'s mailboxes in `store` (whose lock the caller holds);
/// `password` is the IMAP source's.
pub(super) fn into(
    config: &Config,
    store: &crate::store::Store,
    user: &str,
    source: &super::Location,
    auth: &super::imap_import::SourceAuth,
    password: Option<String>,
) -> Result<()> {
    match source {
        super::Location::Maildir(root) => maildir(config, store, user, root),
        super::Location::Mbox(root) => super::mbox::import(config, store, user, root),
        super::Location::Stream(path) => super::stream::import_into(config, store, user, path),
        super::Location::Imap(url) => {
            let password = password.context("no password for the IMAP source")?;
            super::imap_import::import_into(config, store, user, (url, auth), password)
        }
    }
}

fn maildir(config: &Config, store: &crate::store::Store, user: &str, root: &Path) -> Result<()> {
    if !root.join("cur").is_dir() {
        bail!("{} is not a Maildir (no cur/)", root.display());
    }
    let account = account(config, store, user)?;
    let folders = folders(root)?;
    let mut scanned = Vec::new();
    for folder in &folders {
        let listing = scan(&folder.dir).with_context(|| format!("cannot read {}", folder.dir.display()))?;
        scanned.push(listing);
    }
    let total: u64 = scanned.iter().map(|s| s.messages.len() as u64).sum();
    let mut progress = super::progress::Progress::new("import", total);
    let (mut added, mut skipped) = (0, 0);
    let limits = config.mime_limits();
    for (folder, listing) in folders.iter().zip(scanned) {
        let mut batch: Vec<ImportedMessage> = Vec::new();
        let mut bytes = 0;
        let count = listing.messages.len();
        for (i, m) in listing.messages.into_iter().enumerate() {
            let raw = std::fs::read(&m.path).with_context(|| format!("cannot read {}", m.path.display()))?;
            let (message, structure) =
                crate::mime::ingest_with(raw, &limits).map_err(|e| anyhow::anyhow!("{}: {e}", m.path.display()))?;
            bytes += message.len();
            batch.push(ImportedMessage {
                uid: m.uid,
                message: NewMessage {
                    message,
                    structure: Arc::new(structure),
                    flags: m.flags,
                    keywords: m.keywords,
                    internal_date: Some(m.internal_date),
                },
                pop3_uidl: m.pop3_uidl,
            });
            let last = i + 1 == count;
            if batch.len() >= BATCH_MESSAGES || bytes >= BATCH_BYTES || last {
                let n = batch.len() as u64;
                let (a, s) = commit(store, account.id, folder, &listing.header, std::mem::take(&mut batch))?;
                (added, skipped) = (added + a, skipped + s);
                bytes = 0;
                progress.advance(n);
            }
        }
        if count == 0 {
            commit(store, account.id, folder, &listing.header, Vec::new())?;
        }
    }
    subscribe(store, account.id, subscriptions(&root.join("subscriptions"), '.')?)?;
    progress.finish();
    println!(
        "imported {added} messages into {} folders of {user} ({skipped} there already)",
        folders.len()
    );
    Ok(())
}

/// The store's account `user` to import into: made here if a directory holds the accounts and
/// puts this one's mailbox on this back end.
pub(super) fn account(config: &Config, store: &crate::store::Store, user: &str) -> Result<crate::store::User> {
    if let Some(found) = store.snapshot()?.user(user)? {
        return Ok(found);
    }
    if config.directory.is_configured() {
        let directory = crate::directory::open(&config.directory);
        let account = directory
            .lookup(user)?
            .with_context(|| format!("no account {user:?} in the directory"))?;
        if !account.mail_host.eq_ignore_ascii_case(config.backend_name()) {
            bail!("{user}'s mailbox is on {}, not on this back end", account.mail_host);
        }
        return Ok(crate::auth::login::provision(
            store,
            &account.name,
            account.access.admin,
        )?);
    }
    bail!("no user {user:?}: create it first with `ringmail user add`")
}

pub(super) fn subscribe(
    store: &crate::store::Store,
    user: crate::store::records::UserId,
    names: Vec<String>,
) -> Result<()> {
    for name in names {
        let op = WriteOp::Subscribe {
            user,
            name,
            subscribed: true,
        };
        store.write_blocking(op).context("cannot subscribe")?;
    }
    Ok(())
}

pub(super) fn commit(
    store: &crate::store::Store,
    user: crate::store::records::UserId,
    folder: &Folder,
    &(uid_validity, uid_next): &(Option<u32>, Uid),
    messages: Vec<ImportedMessage>,
) -> Result<(usize, usize)> {
    let op = WriteOp::Import {
        user,
        name: folder.name.clone(),
        uid_validity,
        uid_next,
        messages,
    };
    match store
        .write_blocking(op)
        .with_context(|| format!("cannot import into {:?}", folder.name))?
    {
        WriteOutcome::Imported { added, skipped } => Ok((added, skipped)),
        other => bail!("unexpected answer from the store: {other:?}"),
    }
}

/// Every folder under `root`, INBOX first, in either layout.
fn folders(root: &Path) -> Result<Vec<Folder>> {
    let mut out = vec![Folder {
        name: "INBOX".into(),
        dir: root.to_owned(),
    }];
    let mut entries: Vec<_> = std::fs::read_dir(root)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        if !is_folder(&entry)? {
            continue;
        }
        if let Some(plus) = name.strip_prefix('.') {
            // Maildir++: `.A.B` is A/B.
            out.push(Folder {
                name: store_name(plus.split('.'))?,
                dir,
            });
        } else if !["cur", "new", "tmp"].contains(&name.as_str()) {
            fs_layout(&dir, vec![name], &mut out)?;
        }
    }
    Ok(out)
}

/// Whether `entry` is a folder: a directory (not a link to one, which could lead into another
/// user's mail or round in a loop) with a `cur/` directory in it.
fn is_folder(entry: &std::fs::DirEntry) -> Result<bool> {
    if !entry.file_type()?.is_dir() {
        return Ok(false);
    }
    Ok(std::fs::symlink_metadata(entry.path().join("cur")).is_ok_and(|m| m.is_dir()))
}

/// LAYOUT=fs: a directory with `cur/` is a folder, and its subdirectories may be too.
fn fs_layout(dir: &Path, levels: Vec<String>, out: &mut Vec<Folder>) -> Result<()> {
    out.push(Folder {
        name: store_name(levels.iter().map(String::as_str))?,
        dir: dir.to_owned(),
    });
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_folder(&entry)? && !["cur", "new", "tmp"].contains(&name.as_str()) {
            let mut deeper = levels.clone();
            deeper.push(name);
            fs_layout(&entry.path(), deeper, out)?;
        }
    }
    Ok(())
}

/// The subscribed folders of a Dovecot subscriptions file: version 2 (a `V\t2` header, an
/// empty line, levels separated by TAB) or the older form (one name per line, levels separated
/// by `separator`: '.' in Maildir++, '/' in mbox).
pub(super) fn subscriptions(file: &Path, separator: char) -> Result<Vec<String>> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut lines = text.lines().peekable();
    let separator = if lines.peek().is_some_and(|l| l.starts_with("V\t")) {
        lines.by_ref().take_while(|l| !l.is_empty()).for_each(drop);
        '\t'
    } else {
        separator
    };
    lines
        .filter(|l| !l.is_empty())
        .map(|l| match l {
            inbox if inbox.eq_ignore_ascii_case("INBOX") => Ok("INBOX".to_owned()),
            name => store_name(name.split(separator)),
        })
        .collect()
}

/// A folder's name in the store from its levels on disk (modified UTF-7).
pub(super) fn store_name<'a>(levels: impl Iterator<Item = &'a str>) -> Result<String> {
    let decoded: Vec<String> = levels
        .map(|l| crate::imap::mutf7::decode(l).map_err(|_| anyhow::anyhow!("{l:?} is not a modified UTF-7 name")))
        .collect::<Result<_>>()?;
    let name = decoded.join(&SEPARATOR.to_string());
    if name.eq_ignore_ascii_case("INBOX") {
        bail!("a folder besides the Maildir's root is named INBOX");
    }
    Ok(name)
}

/// `dovecot-uidlist`'s header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UidList {
    uid_validity: u32,
    uid_next: Uid,
}

/// One message file, with what its name and the uidlist say.
#[derive(Debug)]
struct Found {
    path: PathBuf,
    uid: Uid,
    /// The POP3 UIDL POP3 clients know it by there.
    pop3_uidl: Option<String>,
    flags: u8,
    keywords: Vec<String>,
    internal_date: i64,
}

struct Listing {
    /// UIDVALIDITY from the uidlist (none without one) and the UIDNEXT after every message.
    header: (Option<u32>, Uid),
    /// In UID order.
    messages: Vec<Found>,
}

/// The messages of one folder's directory.
fn scan(dir: &Path) -> Result<Listing> {
    let (header, uids) = match std::fs::read_to_string(dir.join("dovecot-uidlist")) {
        Ok(text) => parse_uidlist(&text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, HashMap::new()),
        Err(e) => return Err(e.into()),
    };
    let keywords = match std::fs::read_to_string(dir.join("dovecot-keywords")) {
        Ok(text) => parse_keywords(&text),
        Err(_) => HashMap::new(),
    };
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for sub in ["cur", "new"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries {
            let entry = entry?;
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with('.') || !entry.file_type()?.is_file() {
                continue;
            }
            let (base, info) = file.split_once(':').unwrap_or((&file, ""));
            let (flags, words) = parse_flags(info, &keywords);
            let modified = entry.metadata()?.modified()?;
            let internal_date = modified
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let found = Found {
                path: entry.path(),
                uid: 0,
                pop3_uidl: None,
                flags,
                keywords: words,
                internal_date,
            };
            match uids.get(base) {
                Some((uid, uidl)) => {
                    // Without its own, the UIDL Dovecot gives by default (pop3_uidl_format
                    // %08Xu%08Xv, which it writes in lower case).
                    let validity = header.map_or(0, |h| h.uid_validity);
                    let uidl = uidl.clone().unwrap_or_else(|| dovecot_uidl(*uid, validity));
                    known.push(Found {
                        uid: *uid,
                        pop3_uidl: Some(uidl),
                        ..found
                    })
                }
                None => unknown.push((file.clone(), found)),
            }
        }
    }
    known.sort_by_key(|f| f.uid);
    let mut next = header
        .map_or(1, |h| h.uid_next)
        .max(known.last().map_or(1, |f| f.uid + 1));
    // Mail the uidlist does not know (delivered after it was written): after the known, in
    // name order, which for Maildir is arrival order.
    unknown.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, found) in unknown {
        known.push(Found { uid: next, ..found });
        next += 1;
    }
    let header = (header.map(|h| h.uid_validity), next);
    Ok(Listing {
        header,
        messages: known,
    })
}

/// The UIDL Dovecot gives a message by default (`pop3_uidl_format = %08Xu%08Xv`, which it
/// writes in lower case).
pub(super) fn dovecot_uidl(uid: Uid, uid_validity: u32) -> String {
    format!("{uid:08x}{uid_validity:08x}")
}

/// Whether `uidl` is one POP3 can give (RFC 1939 §7: 1 to 70 characters from 0x21 to 0x7E).
pub(super) fn is_uidl(uidl: &str) -> bool {
    (1..=70).contains(&uidl.len()) && uidl.bytes().all(|b| b.is_ascii_graphic())
}

/// What the uidlist says of each file name: its UID, and its POP3 UIDL (`P` extension).
type Uids = HashMap<String, (Uid, Option<String>)>;

/// Version 3 (`3 V<validity> N<next> ...`, then `<uid> [ext ...] :<name>`) or version 1
/// (`1 <validity> <next>`, then `<uid> <name>`).
fn parse_uidlist(text: &str) -> Result<(Option<UidList>, Uids)> {
    let mut lines = text.lines();
    let Some(first) = lines.next() else {
        return Ok((None, HashMap::new()));
    };
    let mut words = first.split_ascii_whitespace();
    let header = match words.next() {
        Some("3") => {
            let (mut validity, mut next) = (None, None);
            for w in words {
                if let Some(v) = w.strip_prefix('V') {
                    validity = v.parse().ok();
                } else if let Some(n) = w.strip_prefix('N') {
                    next = n.parse().ok();
                }
            }
            validity.zip(next)
        }
        Some("1") => {
            let v: Vec<&str> = words.collect();
            v.first()
                .and_then(|a| a.parse().ok())
                .zip(v.get(1).and_then(|b| b.parse().ok()))
        }
        _ => bail!("dovecot-uidlist: unknown version in {first:?}"),
    };
    let Some((uid_validity, uid_next)) = header else {
        bail!("dovecot-uidlist: no UIDVALIDITY and UIDNEXT in {first:?}");
    };
    let mut uids = HashMap::new();
    for line in lines {
        let Some((uid, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(uid) = uid.parse::<Uid>() else { continue };
        // Version 3 puts the name after " :", extensions before it; version 1 has it alone.
        let (extensions, name) = match rest.rsplit_once(" :") {
            Some((ext, name)) => (ext, name),
            None => ("", rest.strip_prefix(':').unwrap_or(rest)),
        };
        let uidl = extensions
            .split_ascii_whitespace()
            .find_map(|e| e.strip_prefix('P'))
            .filter(|u| is_uidl(u))
            .map(str::to_owned);
        uids.insert(name.trim().to_owned(), (uid, uidl));
    }
    Ok((Some(UidList { uid_validity, uid_next }), uids))
}

/// `dovecot-keywords`: `<index> <keyword>` per line.
/// Only keywords that are IMAP atoms (RFC 9051 §9: no specials, no '\\' of a system flag),
/// of at most 255 bytes as the store keeps them, are taken: anything else would reach clients
/// in FLAGS and FETCH as it is.
fn parse_keywords(text: &str) -> HashMap<usize, String> {
    text.lines()
        .filter_map(|l| {
            let (i, k) = l.split_once(' ')?;
            is_keyword(k).then(|| Some((i.parse().ok()?, k.to_owned())))?
        })
        .collect()
}

/// Whether `k` can be a keyword here: an IMAP atom of at most 255 bytes, not a system flag.
pub(super) fn is_keyword(k: &str) -> bool {
    (1..=255).contains(&k.len()) && k.bytes().all(crate::imap::parse::lexer::is_atom_char)
}

/// The flags and keywords of a file name's info part (`2,FRS...`, lowercase letters being
/// keywords by their index in `dovecot-keywords`).
fn parse_flags(info: &str, keywords: &HashMap<usize, String>) -> (u8, Vec<String>) {
    let Some(letters) = info.strip_prefix("2,") else {
        return (0, Vec::new());
    };
    let mut bits = 0;
    let mut words = Vec::new();
    for c in letters.chars() {
        match c {
            'D' => bits |= flags::DRAFT,
            'F' => bits |= flags::FLAGGED,
            'R' => bits |= flags::ANSWERED,
            'S' => bits |= flags::SEEN,
            'T' => bits |= flags::DELETED,
            'a'..='z' => {
                if let Some(k) = keywords.get(&usize::from(c as u8 - b'a')) {
                    words.push(k.clone());
                }
            }
            _ => {}
        }
    }
    (bits, words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uidlists_of_both_versions_parse() {
        let (header, uids) =
            parse_uidlist("3 V1700000000 N12 G0123456789abcdef\n1 W100 Pabc :1700.M1.host\n7 :1701.M2.host,S=5\n")
                .unwrap();
        assert_eq!(
            header,
            Some(UidList {
                uid_validity: 1_700_000_000,
                uid_next: 12
            })
        );
        assert_eq!(uids.get("1700.M1.host"), Some(&(1, Some("abc".into()))));
        assert_eq!(uids.get("1701.M2.host,S=5"), Some(&(7, None)));
        let (header, uids) = parse_uidlist("1 42 5\n3 1700.M3.host\n").unwrap();
        assert_eq!(
            header,
            Some(UidList {
                uid_validity: 42,
                uid_next: 5
            })
        );
        assert_eq!(uids.get("1700.M3.host"), Some(&(3, None)));
        assert!(parse_uidlist("9 V1 N2\n").is_err());
    }

    #[test]
    fn file_names_give_flags_and_keywords() {
        let keywords = HashMap::from([(0, "Work".to_string()), (1, "$Label1".to_string())]);
        let (bits, words) = parse_flags("2,FSab", &keywords);
        assert_eq!(bits, flags::FLAGGED | flags::SEEN);
        assert_eq!(words, ["Work", "$Label1"]);
        assert_eq!(parse_flags("", &keywords), (0, Vec::new()));
    }

    #[test]
    fn subscriptions_of_both_forms_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("subscriptions");
        std::fs::write(&file, "V\t2\n\nArchive\t2024\nINBOX\n").unwrap();
        assert_eq!(subscriptions(&file, '.').unwrap(), ["Archive/2024", "INBOX"]);
        std::fs::write(&file, "Archive.2024\nSent\n").unwrap();
        assert_eq!(subscriptions(&file, '.').unwrap(), ["Archive/2024", "Sent"]);
        std::fs::write(&file, "Archive/2024\n").unwrap();
        assert_eq!(subscriptions(&file, '/').unwrap(), ["Archive/2024"]);
    }

    #[test]
    fn only_atoms_are_keywords() {
        let k = parse_keywords("0 Work\n1 bad word\n2 \\Seen\n3 a)b\n4 $Label1\n");
        assert_eq!(k.len(), 2, "{k:?}");
        assert_eq!((k[&0].as_str(), k[&4].as_str()), ("Work", "$Label1"));
        assert!(parse_keywords(&format!("0 {}\n", "k".repeat(256))).is_empty());
    }

    #[test]
    fn folder_names_come_from_either_layout() {
        assert_eq!(store_name("Archive.2024".split('.')).unwrap(), "Archive/2024");
        assert_eq!(store_name(["Entw&APw-rfe"].into_iter()).unwrap(), "Entwürfe");
        assert!(store_name(["inbox"].into_iter()).is_err());
    }
}
