//! mbox, as Dovecot keeps it (`mail_location = mbox:PATH:INBOX=PATH/inbox`): `ringmail import
//! USER --from mbox:PATH` and `ringmail export USER --to mbox:PATH`.
//!
//! A folder is one file (`inbox` is INBOX; `A/B` is the file `B` in the directory `A`, each
//! level in modified UTF-7), its messages one after another, each opened by a `From ` line
//! (sender and date, asctime in UTC, which is its INTERNALDATE) and closed by an empty line.
//! Dovecot keeps what IMAP needs in header fields it hides from clients (as UW-IMAP did):
//!
//! - `X-IMAPbase: <uidvalidity> <last uid> [keywords]` in the first message, or `X-IMAP:` in a
//!   first "folder internal data" message that is not mail (kept for empty folders too);
//! - `X-UID`, `Status` (`R` is \Seen, `O` not recent), `X-Status` (`A`nswered, `F`lagged,
//!   `T` draft, `D`eleted), `X-Keywords`, and `Content-Length` (the body's length, which
//!   delimits the message, so `From ` lines in bodies need no escaping and none is done).
//!
//! Import reads each file twice, streaming: once for where every message lies and what those
//! fields say (`Content-Length` is trusted where it lands on the next `From ` line or the end,
//! as Dovecot does; elsewhere a `From ` line after an empty line starts a message), then for the
//! bytes, batch by batch, without those fields. UIDs come from `X-UID` where they rise and
//! the folder's base gave them out; the others get UIDs after them. POP3 UIDLs: those a
//! ringmail export's folder data gives, else a message's `X-UIDL` (qpopper's and UW's, which
//! Dovecot reuses with `pop3_reuse_xuidl`), else Dovecot's default. Export writes every folder
//! with a folder-data message (UIDVALIDITY, UIDNEXT and keywords survive even for an empty
//! folder; the UIDLs that are not ringmail's `uidvalidity.uid`, which Dovecot gives with
//! `pop3_uidl_format = %v.%u`, are listed in it), so an export imported again gives back every
//! message byte for byte — but for those fields when a message carried them itself, which an
//! mbox cannot keep apart from Dovecot's.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use super::import::{dovecot_uidl, is_keyword, is_uidl, Folder, BATCH_BYTES, BATCH_MESSAGES};
use crate::config::Config;
use crate::imap::format::header_fields;
use crate::store::records::{flags, Mailbox, MessageRecord, Uid, UserId};
use crate::store::{ImportedMessage, NewMessage, Snapshot, Store, SEPARATOR};

/// The fields Dovecot keeps its data in and hides: taken off every message imported, and off
/// every message exported before ringmail writes its own.
const HIDDEN: [&str; 7] = [
    "X-IMAPbase",
    "X-IMAP",
    "X-UID",
    "Status",
    "X-Status",
    "X-Keywords",
    "Content-Length",
];

/// The folder-data message's field saying that messages it does not list have ringmail's
/// UIDLs (`uidvalidity.uid`).
const UIDL_FORMAT: &str = "X-Ringmail-UIDL-Format";

/// How much of a line is kept to read a header field from.
const LINE_HEAD: usize = 8 << 10;

// ---- import ----

pub(super) fn import(config: &Config, store: &Store, user: &str, root: &Path) -> Result<()> {
    let account = super::import::account(config, store, user)?;
    let folders = folders(root)?;
    let mut scanned = Vec::with_capacity(folders.len());
    for folder in &folders {
        scanned.push(scan(&folder.dir).with_context(|| format!("{}", folder.dir.display()))?);
    }
    let total = scanned.iter().map(|s| s.messages.len() as u64).sum();
    let mut progress = super::progress::Progress::new("import", total);
    let (mut added, mut skipped) = (0, 0);
    for (folder, scan) in folders.iter().zip(scanned) {
        let (a, s) = import_folder(config, store, account.id, folder, scan, &mut progress)
            .with_context(|| format!("{}", folder.dir.display()))?;
        (added, skipped) = (added + a, skipped + s);
    }
    if root.is_dir() {
        let names = super::import::subscriptions(&root.join(".subscriptions"), '/')?;
        super::import::subscribe(store, account.id, names)?;
    }
    progress.finish();
    println!(
        "imported {added} messages into {} folders of {user} ({skipped} there already)",
        folders.len()
    );
    Ok(())
}

/// The folders under `root`: INBOX (the file `inbox`, or `root` itself if it is a file) first,
/// then every other file, by name; dot files and directories (Dovecot's `.imap` indexes,
/// `.subscriptions`) are not folders.
fn folders(root: &Path) -> Result<Vec<Folder>> {
    let meta = std::fs::metadata(root).with_context(|| format!("cannot read {}", root.display()))?;
    if meta.is_file() {
        return Ok(vec![Folder {
            name: "INBOX".into(),
            dir: root.to_owned(),
        }]);
    }
    let mut out = Vec::new();
    let inbox = root.join("inbox");
    // Not a link: it could lead into another user's mail.
    if std::fs::symlink_metadata(&inbox).is_ok_and(|m| m.is_file()) {
        out.push(Folder {
            name: "INBOX".into(),
            dir: inbox,
        });
    }
    walk(root, &mut Vec::new(), &mut out)?;
    Ok(out)
}

fn walk(dir: &Path, levels: &mut Vec<String>, out: &mut Vec<Folder>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Links are not followed: they could lead into another user's mail, or round in a loop.
        let kind = entry.file_type()?;
        if name.starts_with('.') || kind.is_symlink() || (levels.is_empty() && name == "inbox") || not_a_folder(&name) {
            continue;
        }
        levels.push(name);
        if kind.is_dir() {
            walk(&entry.path(), levels, out)?;
        } else if kind.is_file() {
            out.push(Folder {
                name: super::import::store_name(levels.iter().map(String::as_str))?,
                dir: entry.path(),
            });
        }
        levels.pop();
    }
    Ok(())
}

/// Files beside the folders that are not folders: dot-locks, Dovecot's own files.
fn not_a_folder(name: &str) -> bool {
    name.ends_with(".lock") || name.starts_with("dovecot-uidvalidity") || name.starts_with("dovecot.")
}

/// What the first pass learns of one message.
#[derive(Debug, Default)]
struct Meta {
    /// Where its `From ` line starts, and where the message after that line starts.
    from_line: u64,
    start: u64,
    /// The length of the empty line before the `From ` line (0: none).
    blank_before: u64,
    /// Where the body starts, after the header's empty line (none: the header never ended).
    body: Option<u64>,
    content_length: Option<u64>,
    date: Option<i64>,
    uid: Option<Uid>,
    flags: u8,
    keywords: Vec<String>,
    uidl: Option<String>,
    /// `X-IMAPbase` or `X-IMAP`: UIDVALIDITY and the last UID given.
    base: Option<(u32, Uid)>,
    /// `X-IMAP`: this is the folder-data message, not mail.
    folder_data: bool,
    uidl_format: Option<String>,
    /// Where it ends (filled in by `delimit`).
    end: u64,
}

struct Scan {
    messages: Vec<Meta>,
}

/// The first pass over one mbox file.
fn scan(path: &Path) -> Result<Scan> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut lines = Lines {
        reader: BufReader::with_capacity(256 << 10, file),
        offset: 0,
        head: Vec::new(),
        ended: false,
    };
    let mut metas: Vec<Meta> = Vec::new();
    let (mut in_header, mut blank_before, mut ends_with_newline) = (false, 0, false);
    while let Some((start, line_len)) = lines.next()? {
        let head = lines.head.as_slice();
        let blank = head == b"\n" || head == b"\r\n";
        // A `From ` line in a header (a message's own envelope line, as procmail keeps it)
        // is a header line.
        if head.starts_with(b"From ") && !in_header {
            if metas.is_empty() && start != 0 {
                bail!("not an mbox: it does not start with a \"From \" line");
            }
            metas.push(Meta {
                from_line: start,
                start: start + line_len,
                blank_before,
                date: from_line_date(head),
                ..Meta::default()
            });
            in_header = true;
        } else if metas.is_empty() {
            bail!("not an mbox: it does not start with a \"From \" line");
        } else if in_header {
            let meta = metas.last_mut().expect("a message is open");
            if blank {
                meta.body = Some(start + line_len);
                in_header = false;
            } else {
                read_field(meta, head);
            }
        }
        blank_before = if blank { line_len } else { 0 };
        ends_with_newline = lines.ended;
    }
    delimit(&mut metas, len, blank_before, ends_with_newline);
    Ok(Scan { messages: metas })
}

/// Sets where each message ends, dropping `From ` lines that turned out to be inside a body.
/// `trailing_blank` is the length of the file's last line if it is empty.
fn delimit(metas: &mut Vec<Meta>, len: u64, trailing_blank: u64, ends_with_newline: bool) {
    let mut kept = Vec::with_capacity(metas.len());
    let mut i = 0;
    let mut taken = std::mem::take(metas);
    while i < taken.len() {
        // The `From ` lines are in file order.
        let at = |offset: u64| {
            taken[i + 1..]
                .binary_search_by_key(&offset, |m| m.from_line)
                .ok()
                .map(|k| i + 1 + k)
        };
        let m = &taken[i];
        // Content-Length is right when the body it gives ends where a `From ` line (after the
        // one-byte separator) or the file does.
        let by_length = m.body.zip(m.content_length).and_then(|(body, n)| {
            let end = body.checked_add(n)?;
            let after = end.checked_add(1)?;
            if end == len || (after == len && ends_with_newline) {
                return Some((end, taken.len()));
            }
            if let Some(next) = at(after) {
                return Some((end, next));
            }
            // A file with CRLF lines has a two-byte separator.
            let crlf = end.checked_add(2)?;
            if crlf == len && trailing_blank == 2 {
                return Some((end, taken.len()));
            }
            at(crlf).filter(|&j| taken[j].blank_before == 2).map(|next| (end, next))
        });
        let (end, next) =
            by_length.unwrap_or_else(|| match (i + 1..taken.len()).find(|&j| taken[j].blank_before > 0) {
                Some(j) => (taken[j].from_line - taken[j].blank_before, j),
                None => (len - trailing_blank, taken.len()),
            });
        let mut meta = std::mem::take(&mut taken[i]);
        meta.end = end.max(meta.start);
        kept.push(meta);
        i = next;
    }
    *metas = kept;
}

/// Reads lines from a file, keeping the first `LINE_HEAD` bytes of the current one: a long
/// line (a body in one line) costs no memory.
struct Lines<R> {
    reader: R,
    offset: u64,
    head: Vec<u8>,
    /// Whether the line read last ended with LF (its head may be cut short).
    ended: bool,
}

impl<R: BufRead> Lines<R> {
    /// The next line's offset and length, its start in `head`.
    fn next(&mut self) -> std::io::Result<Option<(u64, u64)>> {
        self.head.clear();
        self.ended = false;
        let start = self.offset;
        loop {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let (take, done) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            let room = LINE_HEAD.saturating_sub(self.head.len());
            self.head.extend_from_slice(&buf[..take.min(room)]);
            self.reader.consume(take);
            self.offset += take as u64;
            if done {
                self.ended = true;
                break;
            }
        }
        Ok((self.offset > start).then_some((start, self.offset - start)))
    }
}

/// Takes what a header line of Dovecot's says into `meta`.
fn read_field(meta: &mut Meta, line: &[u8]) {
    let Some(colon) = memchr::memchr(b':', line) else {
        return;
    };
    let name = std::str::from_utf8(line[..colon].trim_ascii_end()).unwrap_or("");
    let value = std::str::from_utf8(&line[colon + 1..]).unwrap_or("").trim();
    let is = |n: &str| name.eq_ignore_ascii_case(n);
    if is("Content-Length") {
        meta.content_length = value.parse().ok();
    } else if is("X-UID") {
        meta.uid = value.parse().ok().filter(|u| *u > 0);
    } else if is("Status") {
        if value.contains('R') {
            meta.flags |= flags::SEEN;
        }
    } else if is("X-Status") {
        for c in value.chars() {
            meta.flags |= match c {
                'A' => flags::ANSWERED,
                'F' => flags::FLAGGED,
                'T' => flags::DRAFT,
                'D' => flags::DELETED,
                _ => 0,
            };
        }
    } else if is("X-Keywords") {
        for k in value.split_ascii_whitespace().filter(|k| is_keyword(k)) {
            if !meta.keywords.iter().any(|known| known == k) {
                meta.keywords.push(k.to_owned());
            }
        }
    } else if is("X-UIDL") {
        meta.uidl = is_uidl(value).then(|| value.to_owned());
    } else if is("X-IMAPbase") || is("X-IMAP") {
        let mut words = value.split_ascii_whitespace().map(str::parse::<u32>);
        if let (Some(Ok(validity @ 1..)), Some(Ok(last))) = (words.next(), words.next()) {
            meta.base = Some((validity, last));
            meta.folder_data = is("X-IMAP");
        }
    } else if is(UIDL_FORMAT) {
        meta.uidl_format = Some(value.to_owned());
    }
}

/// A `From ` line's date (asctime, `Www Mmm dd hh:mm:ss yyyy`, in UTC; a zone before the year
/// is skipped) as seconds since the epoch.
fn from_line_date(line: &[u8]) -> Option<i64> {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let text = std::str::from_utf8(line).ok()?;
    let words: Vec<&str> = text.split_ascii_whitespace().skip(1).collect();
    let at = words.iter().position(|w| DAYS.contains(w))?;
    let rest = &words[at + 1..];
    let month = MONTHS.iter().position(|m| rest.first() == Some(m))? as u32 + 1;
    let day: u32 = rest.get(1)?.parse().ok()?;
    let mut time = rest.get(2)?.split(':').map(str::parse::<i64>);
    let (h, m) = (time.next()?.ok()?, time.next()?.ok()?);
    let s = time.next().and_then(Result::ok).unwrap_or(0);
    let year: i64 = rest[3..]
        .iter()
        .find_map(|w| w.parse().ok().filter(|y| (1900..=9999).contains(y)))?;
    let days = crate::imap::parse::lexer::days_from_civil(year, month, day)?;
    ((0..24).contains(&h) && (0..60).contains(&m) && (0..61).contains(&s))
        .then(|| days * 86_400 + h * 3600 + m * 60 + s)
}

/// The folder's data: from its folder-data message or its first message's `X-IMAPbase`.
struct FolderData {
    base: Option<(u32, Uid)>,
    ringmail_uidls: bool,
    /// UIDLs the folder-data message lists, by UID.
    uidls: HashMap<Uid, String>,
}

fn folder_data(file: &mut std::fs::File, messages: &mut Vec<Meta>) -> Result<FolderData> {
    let Some(first) = messages.first() else {
        return Ok(FolderData {
            base: None,
            ringmail_uidls: false,
            uidls: HashMap::new(),
        });
    };
    let mut data = FolderData {
        base: first.base,
        ringmail_uidls: false,
        uidls: HashMap::new(),
    };
    if first.folder_data {
        let first = messages.remove(0);
        data.ringmail_uidls = first.uidl_format.as_deref() == Some("%v.%u");
        let body = first.body.unwrap_or(first.end).min(first.end);
        let text = read_span(file, body, first.end)?;
        for line in String::from_utf8_lossy(&text).lines() {
            let mut words = line.split_ascii_whitespace();
            if let (Some("uidl"), Some(Ok(uid)), Some(uidl), None) = (
                words.next(),
                words.next().map(str::parse::<Uid>),
                words.next(),
                words.next(),
            ) {
                if is_uidl(uidl) {
                    data.uidls.insert(uid, uidl.to_owned());
                }
            }
        }
    }
    Ok(data)
}

fn read_span(file: &mut std::fs::File, start: u64, end: u64) -> Result<Vec<u8>> {
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::with_capacity((end - start) as usize);
    file.take(end - start).read_to_end(&mut bytes)?;
    if (bytes.len() as u64) < end - start {
        bail!("the file shrank while it was read");
    }
    Ok(bytes)
}

/// UIDs for `messages`: `X-UID` where it rises and the folder's base (`X-IMAPbase`) gave it
/// out (without a base an `X-UID` is a stray header, as Dovecot takes it), then after the
/// folder's last given UID, in file order. Returns them in UID order, and the UIDNEXT.
fn number(messages: Vec<Meta>, base: Option<(u32, Uid)>) -> Result<(Vec<(Uid, Meta)>, Uid)> {
    let given = base.map_or(0, |b| b.1);
    let mut last = 0;
    let mut numbered = Vec::with_capacity(messages.len());
    let mut pending = Vec::new();
    for m in messages {
        match m.uid {
            Some(uid) if uid > last && uid <= given => {
                last = uid;
                numbered.push((uid, m));
            }
            _ => pending.push(m),
        }
    }
    let mut next = u64::from(given) + 1;
    for m in pending {
        let uid = Uid::try_from(next).ok().filter(|u| *u < Uid::MAX);
        let uid = uid.with_context(|| format!("the folder's UIDs run out (its last given UID is {given})"))?;
        numbered.push((uid, m));
        next += 1;
    }
    let uid_next = Uid::try_from(next).unwrap_or(Uid::MAX);
    Ok((numbered, uid_next))
}

fn import_folder(
    config: &Config,
    store: &Store,
    user: UserId,
    folder: &Folder,
    scan: Scan,
    progress: &mut super::progress::Progress,
) -> Result<(usize, usize)> {
    let mut file = std::fs::File::open(&folder.dir)?;
    let mut messages = scan.messages;
    let data = folder_data(&mut file, &mut messages)?;
    let fallback_date = file
        .metadata()?
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (numbered, uid_next) = number(messages, data.base)?;
    // Each X-UIDL once: POP3 clients skip a UIDL they have seen as already downloaded.
    let mut seen_uidls = std::collections::HashSet::new();
    let header = (data.base.map(|b| b.0), uid_next);
    let limits = config.mime_limits();
    let (mut added, mut skipped) = (0, 0);
    let mut batch = Vec::new();
    let mut bytes = 0;
    let count = numbered.len();
    for (i, (uid, meta)) in numbered.into_iter().enumerate() {
        let raw = strip_hidden(&read_span(&mut file, meta.start, meta.end)?);
        let (message, structure) =
            crate::mime::ingest_with(raw, &limits).map_err(|e| anyhow::anyhow!("UID {uid}: {e}"))?;
        bytes += message.len();
        // A ringmail export's folder data says every UIDL; elsewhere a message's X-UIDL
        // (qpopper's, UW's) is what its POP3 clients know, else Dovecot's default.
        let pop3_uidl = if data.ringmail_uidls {
            data.uidls.get(&uid).cloned()
        } else {
            meta.uidl
                .filter(|u| seen_uidls.insert(u.clone()))
                .or_else(|| data.base.map(|(validity, _)| dovecot_uidl(uid, validity)))
        };
        batch.push(ImportedMessage {
            uid,
            message: NewMessage {
                message,
                structure: Arc::new(structure),
                flags: meta.flags,
                keywords: meta.keywords,
                internal_date: Some(meta.date.unwrap_or(fallback_date)),
            },
            pop3_uidl,
        });
        if batch.len() >= BATCH_MESSAGES || bytes >= BATCH_BYTES || i + 1 == count {
            let n = batch.len() as u64;
            let (a, s) = super::import::commit(store, user, folder, &header, std::mem::take(&mut batch))?;
            (added, skipped, bytes) = (added + a, skipped + s, 0);
            progress.advance(n);
        }
    }
    if count == 0 {
        super::import::commit(store, user, folder, &header, Vec::new())?;
    }
    Ok((added, skipped))
}

/// The message without Dovecot's fields (in its header only).
fn strip_hidden(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut pos = 0;
    for field in header_fields(raw) {
        if is_hidden(&raw[field.name.0..field.name.1]) {
            out.extend_from_slice(&raw[pos..field.start]);
            pos = field.end;
        }
    }
    out.extend_from_slice(&raw[pos..]);
    out
}

fn is_hidden(name: &[u8]) -> bool {
    !name.is_empty() && HIDDEN.iter().any(|h| h.as_bytes().eq_ignore_ascii_case(name))
}

// ---- export ----

pub(super) fn export(config: &Config, user: &str, path: &Path) -> Result<()> {
    let partial = super::export::start(path)?;
    let store = super::open(config)?;
    let snapshot = store.snapshot()?;
    let Some(account) = snapshot.user(user)? else {
        bail!("no user {user:?}");
    };
    let mailboxes = snapshot.mailboxes(account.id)?;
    // A folder is a file, so a folder with subfolders is only a directory: it may not hold mail.
    let mut files = Vec::new();
    for mailbox in mailboxes.iter().filter(|m| !m.noselect) {
        let prefix = format!("{}{SEPARATOR}", mailbox.name);
        if mailboxes.iter().any(|m| m.name.starts_with(&prefix)) {
            if mailbox.messages > 0 {
                bail!(
                    "the folder {:?} holds mail and has subfolders, which mbox cannot keep (a folder is a file)",
                    mailbox.name
                );
            }
            continue;
        }
        files.push((mailbox, file_name(&mailbox.name)?));
    }
    super::export::private_dirs(&partial)?;
    let total = files.iter().map(|(m, _)| u64::from(m.messages)).sum();
    let mut progress = super::progress::Progress::new("export", total);
    for (mailbox, name) in &files {
        let file = partial.join(name);
        if let Some(parent) = file.parent() {
            super::export::private_dirs(parent)?;
        }
        write_folder(&snapshot, mailbox, &file, &mut progress)
            .with_context(|| format!("cannot export {:?}", mailbox.name))?;
    }
    let subscribed: String = snapshot
        .subscriptions(account.id)?
        .iter()
        .map(|n| format!("{}\n", mutf7_path(n)))
        .collect();
    super::export::write_file(&partial.join(".subscriptions"), subscribed.as_bytes())?;
    super::export::finish(&partial, path)?;
    progress.finish();
    println!(
        "exported {total} messages in {} folders of {user} to {}",
        files.len(),
        path.display()
    );
    Ok(())
}

/// The file a folder is written to: `inbox` for INBOX, else its levels in modified UTF-7.
fn file_name(name: &str) -> Result<PathBuf> {
    if name.eq_ignore_ascii_case("INBOX") {
        return Ok(PathBuf::from("inbox"));
    }
    for level in name.split(SEPARATOR) {
        if level.is_empty() || level.starts_with('.') {
            bail!("the folder {name:?} has a level an mbox directory cannot name (empty, or starting with '.')");
        }
    }
    if name
        .split(SEPARATOR)
        .next()
        .is_some_and(|top| top.eq_ignore_ascii_case("inbox"))
    {
        bail!("the folder {name:?} would be inside the INBOX file");
    }
    Ok(PathBuf::from(mutf7_path(name)))
}

fn mutf7_path(name: &str) -> String {
    name.split(SEPARATOR)
        .map(crate::imap::mutf7::encode)
        .collect::<Vec<_>>()
        .join("/")
}

fn write_folder(
    snapshot: &Snapshot<'_>,
    mailbox: &Mailbox,
    file: &Path,
    progress: &mut super::progress::Progress,
) -> Result<()> {
    let mut keywords: Vec<String> = Vec::new();
    for item in snapshot.messages(mailbox.id)? {
        let (_, record) = item?;
        for k in record.keywords {
            if !keywords.contains(&k) {
                keywords.push(k);
            }
        }
    }
    let mut out = BufWriter::with_capacity(256 << 10, super::export::private_file(file, true)?);
    let uidls = snapshot.pop3_uidls(mailbox.id)?;
    let mut odd: Vec<(Uid, String)> = uidls
        .into_iter()
        .filter(|(uid, uidl)| *uidl != format!("{}.{uid}", mailbox.uid_validity))
        .collect();
    odd.sort_unstable();
    write_folder_data(&mut out, mailbox, &keywords, &odd)?;
    let mut raw = Vec::new();
    for item in snapshot.messages(mailbox.id)? {
        let (uid, record) = item?;
        raw.clear();
        for chunk in snapshot.body(record.body_id, 0)? {
            raw.extend_from_slice(chunk?);
        }
        write_message(&mut out, uid, &record, &raw)?;
        progress.advance(1);
    }
    out.flush()?;
    Ok(())
}

/// The first message of every folder written: not mail, but the folder's UIDVALIDITY, last
/// UID, keywords and UIDL exceptions, which Dovecot reads and hides.
fn write_folder_data(
    out: &mut impl Write,
    mailbox: &Mailbox,
    keywords: &[String],
    uidls: &[(Uid, String)],
) -> Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut text = format!(
        "From MAILER-DAEMON  {}\nFrom: Mail System Internal Data <MAILER-DAEMON@localhost>\n\
         Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\n\
         X-IMAP: {} {:010}{}\n{UIDL_FORMAT}: %v.%u\nStatus: RO\n\n\
         This message holds the folder's own data (its UIDs, keywords and POP3 UIDLs) for the\n\
         mail programs that read this folder; it is not mail.\n",
        asctime(now),
        mailbox.uid_validity,
        mailbox.uid_next.saturating_sub(1),
        keywords.iter().map(|k| format!(" {k}")).collect::<String>(),
    );
    for (uid, uidl) in uidls {
        text.push_str(&format!("uidl {uid} {uidl}\n"));
    }
    text.push('\n');
    out.write_all(text.as_bytes())?;
    Ok(())
}

fn write_message(out: &mut impl Write, uid: Uid, record: &MessageRecord, raw: &[u8]) -> Result<()> {
    // Lines end in LF, as Dovecot writes them (it miscounts mixed ones when it rewrites a
    // header); import makes them CRLF again, as every message is stored.
    let raw = lf(raw);
    // The header up to its empty line (all of the message if it has none), without fields
    // that Dovecot would read as its own.
    let mut header_end = 0;
    let mut header = Vec::new();
    for field in header_fields(&raw) {
        if !is_hidden(&raw[field.name.0..field.name.1]) {
            header.extend_from_slice(&raw[field.start..field.end]);
        }
        header_end = field.end;
    }
    if !header.is_empty() && !header.ends_with(b"\n") {
        header.push(b'\n');
    }
    // The body, after the empty line; none if the message has no empty line.
    let body = raw[header_end..].strip_prefix(b"\n").unwrap_or(&[]);
    let mut fields = format!(
        "X-UID: {uid}\nStatus: {}O\n",
        if record.flags & flags::SEEN != 0 { "R" } else { "" }
    );
    let status: String = [
        (flags::ANSWERED, 'A'),
        (flags::FLAGGED, 'F'),
        (flags::DRAFT, 'T'),
        (flags::DELETED, 'D'),
    ]
    .into_iter()
    .filter(|(bit, _)| record.flags & bit != 0)
    .map(|(_, c)| c)
    .collect();
    if !status.is_empty() {
        fields.push_str(&format!("X-Status: {status}\n"));
    }
    if !record.keywords.is_empty() {
        fields.push_str(&format!("X-Keywords: {}\n", record.keywords.join(" ")));
    }
    fields.push_str(&format!("Content-Length: {}\n\n", body.len()));
    out.write_all(format!("From MAILER-DAEMON  {}\n", asctime(record.internal_date)).as_bytes())?;
    out.write_all(&header)?;
    out.write_all(fields.as_bytes())?;
    out.write_all(body)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// `bytes` with every CRLF made LF.
fn lf(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let finder = memchr::memmem::Finder::new(b"\r\n");
    if finder.find(bytes).is_none() {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut pos = 0;
    for at in finder.find_iter(bytes) {
        out.extend_from_slice(&bytes[pos..at]);
        out.push(b'\n');
        pos = at + 2;
    }
    out.extend_from_slice(&bytes[pos..]);
    std::borrow::Cow::Owned(out)
}

/// `Www Mmm dd hh:mm:ss yyyy` in UTC, as `From ` lines carry dates.
fn asctime(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86_400);
    let time = secs.rem_euclid(86_400);
    let (year, month, day) = crate::imap::format::civil_from_days(days);
    format!(
        "{} {} {day:>2} {:02}:{:02}:{:02} {year}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month as usize).clamp(1, 12) - 1],
        time / 3600,
        time / 60 % 60,
        time % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanned(text: &[u8]) -> Vec<(Vec<u8>, Meta)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("box");
        std::fs::write(&path, text).unwrap();
        let mut file = std::fs::File::open(&path).unwrap();
        scan(&path)
            .unwrap()
            .messages
            .into_iter()
            .map(|m| (strip_hidden(&read_span(&mut file, m.start, m.end).unwrap()), m))
            .collect()
    }

    #[test]
    fn content_length_delimits_and_from_lines_in_bodies_stay() {
        let text = b"From a  Tue Nov 14 22:13:20 2023\nFrom a@b Tue Nov 14 22:13:20 2023\nSubject: one\nX-UID: 3\nContent-Length: 22\n\n\
                     From inside\n\nFrom x y\n\n\
                     From b  Tue Nov 14 22:13:21 2023\nSubject: two\n\nno newline\n";
        let got = scanned(text);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].0,
            b"From a@b Tue Nov 14 22:13:20 2023\nSubject: one\n\nFrom inside\n\nFrom x y\n"
        );
        assert_eq!(got[0].1.uid, Some(3));
        assert_eq!(got[0].1.date, Some(1_700_000_000));
        assert_eq!(got[1].0, b"Subject: two\n\nno newline\n");
    }

    #[test]
    fn without_content_length_a_from_line_after_an_empty_line_starts_a_message() {
        let text = b"From a Tue Nov 14 22:13:20 2023\nSubject: one\nContent-Length: 999\n\nbody\n\n\
                     From b Wed Nov 15 00:00:00 +0100 2023\nSubject: two\n\ntext\nFrom here\n";
        let got = scanned(text);
        assert_eq!(got.len(), 2, "a wrong Content-Length is not followed");
        assert_eq!(got[0].0, b"Subject: one\n\nbody\n");
        assert_eq!(got[1].0, b"Subject: two\n\ntext\nFrom here\n");
        assert_eq!(got[1].1.date, Some(1_700_006_400));
    }

    #[test]
    fn crlf_files_are_delimited_by_content_length_too() {
        let text = b"From a Tue Nov 14 22:13:20 2023\r\nSubject: x\r\nContent-Length: 13\r\n\r\nFrom inside\r\n\r\n\
                     From b Tue Nov 14 22:13:21 2023\r\nSubject: y\r\nContent-Length: 3\r\n\r\nz\r\n\r\n";
        let got = scanned(text);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, b"Subject: x\r\n\r\nFrom inside\r\n");
        assert_eq!(got[1].0, b"Subject: y\r\n\r\nz\r\n");
    }

    #[test]
    fn dovecots_fields_are_read_and_hidden() {
        let text = b"From a  Tue Nov 14 22:13:20 2023\nSubject: one\nX-IMAPbase: 4242 0000000011 Urgent\n\
                     X-UID: 7\nStatus: RO\nX-Status: AFT\nX-Keywords: Urgent  bad)word \nX-UIDL: abc\n\
                     Content-Length: 5\n\nbody\n\n";
        let got = scanned(text);
        let m = &got[0].1;
        assert_eq!(got[0].0, b"Subject: one\nX-UIDL: abc\n\nbody\n");
        assert_eq!(m.base, Some((4242, 11)));
        assert_eq!(m.flags, flags::SEEN | flags::ANSWERED | flags::FLAGGED | flags::DRAFT);
        assert_eq!(m.keywords, ["Urgent"]);
        assert_eq!(m.uidl.as_deref(), Some("abc"));
    }

    #[test]
    fn not_an_mbox_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("box");
        std::fs::write(&path, b"Subject: x\n\nbody\n").unwrap();
        assert!(scan(&path).is_err());
        std::fs::write(&path, b"").unwrap();
        assert!(scan(&path).unwrap().messages.is_empty());
    }

    #[test]
    fn written_messages_read_back_exactly() {
        let record = |flags| MessageRecord {
            flags,
            internal_date: 1_700_000_000,
            save_date: 0,
            size: 0,
            modseq: 1,
            body_id: 0,
            keywords: vec!["Urgent".into()],
        };
        let messages: [&[u8]; 6] = [
            b"From: a@example.org\r\nSubject: crlf\r\n\r\nbody\r\nFrom inside\r\n",
            b"Subject: no final newline\n\nlast",
            b"Subject: empty body\r\n\r\n",
            b"Subject: x\n\n\n\nFrom \n\n",
            b"Subject: with status\nStatus: RO\n\nbody\n",
            b"Subject: no body\r\n",
        ];
        let mut out = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            write_message(&mut out, i as u32 + 1, &record(flags::SEEN), m).unwrap();
        }
        let got = scanned(&out);
        assert_eq!(got.len(), messages.len());
        for (i, (bytes, meta)) in got.iter().enumerate() {
            // Lines come back in LF (import makes them CRLF, as it stores every message); a
            // message without a body gains its empty line; Dovecot's fields are not kept.
            let expected: &[u8] = match i {
                4 => b"Subject: with status\n\nbody\n",
                5 => b"Subject: no body\n\n",
                _ => messages[i],
            };
            assert_eq!(bytes, &lf(expected).into_owned(), "{}", String::from_utf8_lossy(&out));
            assert_eq!(meta.uid, Some(i as u32 + 1));
            assert_eq!(meta.flags, flags::SEEN);
            assert_eq!(meta.keywords, ["Urgent"]);
            assert_eq!(meta.date, Some(1_700_000_000));
        }
    }

    #[test]
    fn uids_rise_and_the_others_come_after() {
        let meta = |uid| Meta { uid, ..Meta::default() };
        let uids = |numbered: &[(Uid, Meta)]| numbered.iter().map(|(u, _)| *u).collect::<Vec<Uid>>();
        let (numbered, next) = number(
            vec![meta(Some(3)), meta(None), meta(Some(9)), meta(Some(5)), meta(Some(12))],
            Some((7, 11)),
        )
        .unwrap();
        assert_eq!(uids(&numbered), [3, 9, 12, 13, 14]);
        assert_eq!(next, 15);
        // Without the folder's base, X-UIDs are stray headers.
        let (numbered, next) = number(vec![meta(Some(4_294_967_295)), meta(None)], None).unwrap();
        assert_eq!((uids(&numbered), next), (vec![1, 2], 3));
        // UIDs that would run out are an error, not a UID given twice.
        assert!(number(vec![meta(None), meta(None)], Some((7, Uid::MAX - 2))).is_err());
    }

    #[test]
    fn folders_are_the_files_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        for file in [
            "inbox",
            "Work",
            "Deep/Sub",
            "Entw&APw-rfe",
            ".subscriptions",
            ".imap/INBOX/dovecot.index.log",
        ] {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"").unwrap();
        }
        let names: Vec<String> = folders(dir.path()).unwrap().into_iter().map(|f| f.name).collect();
        assert_eq!(names, ["INBOX", "Deep/Sub", "Entwürfe", "Work"]);
        let one = folders(&dir.path().join("Work")).unwrap();
        assert_eq!((one.len(), one[0].name.as_str()), (1, "INBOX"));
        assert_eq!(file_name("Archive/2024").unwrap(), PathBuf::from("Archive/2024"));
        assert_eq!(file_name("INBOX").unwrap(), PathBuf::from("inbox"));
        assert!(file_name(".hidden").is_err() && file_name("inbox/sub").is_err());
    }

    #[test]
    fn dates_are_asctime_in_utc() {
        assert_eq!(asctime(1_700_000_000), "Tue Nov 14 22:13:20 2023");
        assert_eq!(asctime(1_033_566_572), "Wed Oct  2 13:49:32 2002");
        assert_eq!(
            from_line_date(b"From x  Wed Oct  2 13:49:32 2002\n"),
            Some(1_033_566_572)
        );
    }
}
