//! Mailbox streams (docs/stream.md): a user's mailboxes written as one versioned, checksummed
//! stream by `dump` and taken in by `apply`, keeping UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, every
//! message's UID, flags, keywords, dates, modseq and POP3 UIDL, the expunge log, subscriptions
//! and METADATA. A stream is a *pass*: given where the receiving store stands (its `Mark`s),
//! it carries only what changed since, so a mailbox move copies a mailbox once and then
//! sends the changes, and an interrupted pass is simply sent again.
//!
//! Both ends stream: a message is the largest thing either holds.

pub mod format;
pub mod wire;

use std::io::{Read, Write};
use std::sync::Arc;

use base64::Engine;
use serde::{Deserialize, Serialize};

use format::{tag, Reader, Writer};
pub use format::{End, StreamError};

use crate::store::records::{flags, Mailbox, Uid, User};
use crate::store::restore::{MailboxState, RestoreStep, RestoredMessage, UserState};
use crate::store::{Snapshot, Store, StoreError, WriteOp};

#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("message {uid} of {mailbox:?}: {reason}")]
    Message { mailbox: String, uid: Uid, reason: String },
}

/// How far the receiving store has one mailbox (`Mailbox::copied`): the next pass for it
/// starts there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub name: String,
    pub uid_validity: u32,
    pub modseq: u64,
    pub uid_next: Uid,
}

/// The marks of `user`'s mailboxes in a store (none for a user it does not have).
pub fn marks(snapshot: &Snapshot<'_>, user: &str) -> Result<Vec<Mark>, StoreError> {
    let Some(user) = snapshot.user(user)? else {
        return Ok(Vec::new());
    };
    Ok(snapshot
        .mailboxes(user.id)?
        .into_iter()
        .filter_map(|m| {
            m.copied.map(|c| Mark {
                name: m.name,
                uid_validity: m.uid_validity,
                modseq: c.modseq,
                uid_next: c.uid_next,
            })
        })
        .collect())
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    version: u32,
    user: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct MailboxHead {
    mailbox: MailboxState,
    /// What this pass carries: the changes above this modseq (0: everything).
    since: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct MessageHead {
    uid: Uid,
    flags: Vec<String>,
    keywords: Vec<String>,
    internal_date: i64,
    save_date: i64,
    modseq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pop3_uidl: Option<String>,
    /// Present when the message's bytes follow in `D` frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    /// The SHA-256 of those bytes, checked before the message is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct UserFrame {
    mailboxes: Vec<String>,
    subscriptions: Vec<String>,
    metadata: Vec<MetadataEntry>,
    /// The storage quota; absent (a writer before it was carried): left as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quota: Option<QuotaFrame>,
}

#[derive(Debug, Serialize, Deserialize)]
struct QuotaFrame {
    /// In bytes; none: no limit.
    bytes: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct MetadataEntry {
    /// `None`: a server entry.
    mailbox: Option<String>,
    entry: String,
    /// Base64.
    value: String,
}

const FLAG_NAMES: [(u8, &str); 5] = [
    (flags::SEEN, "\\Seen"),
    (flags::ANSWERED, "\\Answered"),
    (flags::FLAGGED, "\\Flagged"),
    (flags::DELETED, "\\Deleted"),
    (flags::DRAFT, "\\Draft"),
];

fn flag_names(bits: u8) -> Vec<String> {
    FLAG_NAMES
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, name)| (*name).to_owned())
        .collect()
}

fn flag_bits(names: &[String]) -> Result<u8, String> {
    names.iter().try_fold(0u8, |bits, name| {
        FLAG_NAMES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(bit, _)| bits | bit)
            .ok_or_else(|| format!("unknown flag {name:?}"))
    })
}

/// What a pass carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Carried {
    pub mailboxes: u64,
    /// Messages whose bytes it carried.
    pub messages: u64,
    pub bytes: u64,
    /// Everything that changed: messages sent (with bytes or flags only) and UIDs expunged.
    pub changes: u64,
}

/// Writes a pass over `user`'s mailboxes in `snapshot` to `out`, for a receiver that stands
/// at `marks`; `progress` hears of every message whose bytes go.
pub fn dump<W: Write>(
    snapshot: &Snapshot<'_>,
    user: &User,
    marks: &[Mark],
    out: W,
    progress: &mut dyn FnMut(u64),
) -> Result<(W, Carried), PassError> {
    let mut w = Writer::new(out)?;
    w.json(
        tag::HEADER,
        &Header {
            version: format::VERSION,
            user: user.name.clone(),
        },
    )?;
    let mut carried = Carried::default();
    let mailboxes = snapshot.mailboxes(user.id)?;
    for mailbox in &mailboxes {
        dump_mailbox(snapshot, mailbox, marks, &mut w, &mut carried, progress)?;
    }
    let mut metadata = Vec::new();
    for (id, name) in std::iter::once((0, None)).chain(mailboxes.iter().map(|m| (m.id, Some(m.name.clone())))) {
        for (entry, value) in snapshot.metadata(user.id, id)? {
            metadata.push(MetadataEntry {
                mailbox: name.clone(),
                entry,
                value: base64::engine::general_purpose::STANDARD.encode(value),
            });
        }
    }
    w.json(
        tag::USER,
        &UserFrame {
            mailboxes: mailboxes.iter().map(|m| m.name.clone()).collect(),
            subscriptions: snapshot.subscriptions(user.id)?,
            metadata,
            quota: Some(QuotaFrame { bytes: user.quota }),
        },
    )?;
    let out = w.finish(End {
        sha256: String::new(),
        mailboxes: carried.mailboxes,
        messages: carried.messages,
        bytes: carried.bytes,
    })?;
    Ok((out, carried))
}

fn dump_mailbox<W: Write>(
    snapshot: &Snapshot<'_>,
    mailbox: &Mailbox,
    marks: &[Mark],
    w: &mut Writer<W>,
    carried: &mut Carried,
    progress: &mut dyn FnMut(u64),
) -> Result<(), PassError> {
    let mark = marks
        .iter()
        .find(|m| m.name == mailbox.name && m.uid_validity == mailbox.uid_validity);
    let (since, have_below) = mark.map_or((0, 0), |m| (m.modseq, m.uid_next));
    carried.mailboxes += 1;
    w.json(
        tag::MAILBOX,
        &MailboxHead {
            mailbox: MailboxState::of(mailbox),
            since,
        },
    )?;
    let uids: Vec<Uid> = if since == 0 {
        snapshot.message_uids(mailbox.id)?.collect::<Result<_, _>>()?
    } else {
        snapshot.changed_since(mailbox.id, since)?
    };
    let uidls = if uids.is_empty() {
        Default::default()
    } else {
        snapshot.pop3_uidls(mailbox.id)?
    };
    for uid in uids {
        let Some(record) = snapshot.message(mailbox.id, uid)? else {
            continue;
        };
        let with_body = uid >= have_below;
        let sha256 = if with_body {
            let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
            for chunk in snapshot.body(record.body_id, 0)? {
                hash.update(chunk?);
            }
            Some(format::hex(hash.finish().as_ref()))
        } else {
            None
        };
        w.json(
            tag::MESSAGE,
            &MessageHead {
                uid,
                flags: flag_names(record.flags),
                keywords: record.keywords.clone(),
                internal_date: record.internal_date,
                save_date: record.save_date,
                modseq: record.modseq,
                pop3_uidl: uidls.get(&uid).cloned(),
                size: with_body.then_some(record.size),
                sha256,
            },
        )?;
        carried.changes += 1;
        if with_body {
            for chunk in snapshot.body(record.body_id, 0)? {
                for piece in chunk?.chunks(format::CHUNK) {
                    w.frame(tag::DATA, piece)?;
                }
            }
            carried.messages += 1;
            carried.bytes += record.size;
            progress(1);
        }
    }
    // The log above what the receiver has (or all the log keeps), for its QRESYNC clients;
    // where the log forgot some of that, the UIDs left say what went.
    let from = since.max(mailbox.expunge_floor);
    let entries = snapshot.expunge_log_since(mailbox, from)?.unwrap_or_default();
    carried.changes += entries.iter().map(|(_, uids)| uids.len() as u64).sum::<u64>();
    w.json(tag::EXPUNGED, &entries)?;
    if since == 0 || since < mailbox.expunge_floor {
        let present: Vec<Uid> = snapshot.message_uids(mailbox.id)?.collect::<Result<_, _>>()?;
        w.json(tag::PRESENT, &ranges(&present))?;
    }
    w.checkpoint(tag::FINISH)?;
    Ok(())
}

/// Ascending UIDs as `[first, last]` runs.
fn ranges(uids: &[Uid]) -> Vec<[Uid; 2]> {
    let mut out: Vec<[Uid; 2]> = Vec::new();
    for &uid in uids {
        match out.last_mut() {
            Some(run) if run[1].checked_add(1) == Some(uid) => run[1] = uid,
            _ => out.push([uid, uid]),
        }
    }
    out
}

/// A batch of messages is written once it holds this many, or this many bytes.
const BATCH_MESSAGES: usize = 200;
const BATCH_BYTES: usize = 32 << 20;

/// What a stream's header names: whose mailboxes it holds.
pub fn read_header<R: Read>(reader: &mut Reader<R>) -> Result<String, PassError> {
    let frame = reader.next_frame()?.ok_or(StreamError::Truncated)?;
    if frame.tag != tag::HEADER {
        return Err(StreamError::bad(frame.tag, "the stream does not start with its header").into());
    }
    let header: Header = frame.json()?;
    if header.version != format::VERSION {
        return Err(StreamError::Version(header.version).into());
    }
    Ok(header.user)
}

/// Takes a pass (after its header) into `user`'s mailboxes in `store`, batch by batch;
/// `progress` hears of every message whose bytes arrive.
pub fn apply<R: Read>(
    store: &Store,
    user: &User,
    reader: &mut Reader<R>,
    limits: &crate::mime::Limits,
    progress: &mut dyn FnMut(u64),
) -> Result<(End, Carried), PassError> {
    let mut current: Option<MailboxState> = None;
    let mut batch: Vec<RestoredMessage> = Vec::new();
    let mut batch_bytes = 0;
    let mut carried = Carried::default();
    let write = |state: &MailboxState, step: RestoreStep| {
        store.write_blocking(WriteOp::Restore {
            user: user.id,
            mailbox: state.clone(),
            step,
        })
    };
    loop {
        let frame = reader.next_frame()?.ok_or(StreamError::Truncated)?;
        let open = |current: &Option<MailboxState>| {
            current
                .clone()
                .ok_or_else(|| StreamError::bad(frame.tag, "outside a mailbox"))
        };
        match frame.tag {
            tag::MAILBOX => {
                if current.is_some() {
                    return Err(StreamError::bad(frame.tag, "the mailbox before it did not finish").into());
                }
                let head: MailboxHead = frame.json()?;
                write(&head.mailbox, RestoreStep::Begin)?;
                carried.mailboxes += 1;
                current = Some(head.mailbox);
            }
            tag::MESSAGE => {
                let state = open(&current)?;
                let head: MessageHead = frame.json()?;
                let message = read_message(reader, &state, head, limits)?;
                if let Some((bytes, _)) = &message.body {
                    batch_bytes += bytes.len();
                    carried.messages += 1;
                    carried.bytes += bytes.len() as u64;
                    progress(1);
                }
                carried.changes += 1;
                batch.push(message);
                if batch.len() >= BATCH_MESSAGES || batch_bytes >= BATCH_BYTES {
                    write(&state, RestoreStep::Messages(std::mem::take(&mut batch)))?;
                    batch_bytes = 0;
                }
            }
            tag::EXPUNGED | tag::PRESENT | tag::FINISH => {
                let state = open(&current)?;
                if !batch.is_empty() {
                    write(&state, RestoreStep::Messages(std::mem::take(&mut batch)))?;
                    batch_bytes = 0;
                }
                let step = match frame.tag {
                    tag::EXPUNGED => {
                        let entries: Vec<(u64, Vec<Uid>)> = frame.json()?;
                        carried.changes += entries.iter().map(|(_, u)| u.len() as u64).sum::<u64>();
                        RestoreStep::Expunged(entries)
                    }
                    tag::PRESENT => RestoreStep::Present(frame.json::<Vec<[Uid; 2]>>()?),
                    _ => {
                        current = None;
                        RestoreStep::Finish
                    }
                };
                write(&state, step)?;
            }
            tag::USER => {
                if current.is_some() {
                    return Err(StreamError::bad(frame.tag, "a mailbox did not finish").into());
                }
                let u: UserFrame = frame.json()?;
                let mut metadata = Vec::with_capacity(u.metadata.len());
                for m in u.metadata {
                    let value = base64::engine::general_purpose::STANDARD
                        .decode(&m.value)
                        .map_err(|e| StreamError::bad(tag::USER, e))?;
                    metadata.push((m.mailbox, m.entry, value));
                }
                let state = UserState {
                    mailboxes: u.mailboxes,
                    subscriptions: u.subscriptions,
                    metadata,
                };
                // Applied once the end frame vouches for the whole stream.
                let end = reader.next_frame()?.ok_or(StreamError::Truncated)?;
                if end.tag != tag::END {
                    return Err(StreamError::bad(end.tag, "expected the end frame").into());
                }
                store.write_blocking(WriteOp::RestoreUser { user: user.id, state })?;
                if let Some(quota) = u.quota.filter(|q| q.bytes != user.quota) {
                    let patch = crate::store::UserPatch {
                        quota: Some(quota.bytes),
                        ..Default::default()
                    };
                    store.write_blocking(WriteOp::UpdateUser {
                        name: user.name.clone(),
                        patch,
                    })?;
                }
                return Ok((end.json()?, carried));
            }
            other => return Err(StreamError::bad(other, "unexpected frame").into()),
        }
    }
}

/// A message's head and, when it has them, its bytes from the `D` frames after it.
fn read_message<R: Read>(
    reader: &mut Reader<R>,
    state: &MailboxState,
    head: MessageHead,
    limits: &crate::mime::Limits,
) -> Result<RestoredMessage, PassError> {
    let fail = |reason: String| PassError::Message {
        mailbox: state.name.clone(),
        uid: head.uid,
        reason,
    };
    let flags = flag_bits(&head.flags).map_err(fail)?;
    let body = match head.size {
        None => None,
        Some(size) => {
            let size = usize::try_from(size).map_err(|e| fail(e.to_string()))?;
            let mut bytes = Vec::with_capacity(size.min(64 << 20));
            while bytes.len() < size {
                let frame = reader.next_frame()?.ok_or(StreamError::Truncated)?;
                if frame.tag != tag::DATA || bytes.len() + frame.payload.len() > size {
                    return Err(fail("its bytes do not add up to its size".into()));
                }
                bytes.extend_from_slice(&frame.payload);
            }
            let sum = format::hex(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref());
            if head.sha256.as_deref() != Some(sum.as_str()) {
                return Err(StreamError::Checksum.into());
            }
            let (bytes, structure) = crate::mime::ingest_with(bytes, limits).map_err(|e| fail(e.to_string()))?;
            if bytes.len() != size {
                return Err(fail(
                    "its line endings are not CRLF: it was not written by ringmail".into(),
                ));
            }
            Some((bytes, Arc::new(structure)))
        }
    };
    Ok(RestoredMessage {
        uid: head.uid,
        flags,
        keywords: head.keywords,
        internal_date: head.internal_date,
        save_date: head.save_date,
        modseq: head.modseq,
        pop3_uidl: head.pop3_uidl,
        body,
    })
}

/// A mailbox summed up for comparing two stores after a move: its identity, counters, and a
/// SHA-256 over every message's UID, flags, keywords, modseq, size and POP3 UIDL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub name: String,
    pub uid_validity: u32,
    pub uid_next: Uid,
    pub highest_modseq: u64,
    pub messages: u32,
    pub sha256: String,
}

pub fn digests(snapshot: &Snapshot<'_>, user: &str) -> Result<Vec<Digest>, StoreError> {
    let Some(user) = snapshot.user(user)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for mailbox in snapshot.mailboxes(user.id)? {
        let uidls = snapshot.pop3_uidls(mailbox.id)?;
        let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
        for item in snapshot.messages(mailbox.id)? {
            let (uid, record) = item?;
            let uidl = uidls.get(&uid).map_or("", String::as_str);
            let line = format!(
                "{uid} {} {:?} {} {} {uidl}\n",
                record.flags & !flags::INTERNAL,
                record.keywords,
                record.modseq,
                record.size
            );
            hash.update(line.as_bytes());
        }
        out.push(Digest {
            name: mailbox.name.clone(),
            uid_validity: mailbox.uid_validity,
            uid_next: mailbox.uid_next,
            highest_modseq: mailbox.highest_modseq,
            messages: mailbox.messages,
            sha256: format::hex(hash.finish().as_ref()),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::{FlagMode, ScramCredentials};
    use crate::store::{NewMessage, NewUser, WriteOutcome};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    fn user(store: &Store, name: &str) -> User {
        let op = WriteOp::AddUser(NewUser {
            name: name.into(),
            password_hash: "x".into(),
            scram: ScramCredentials {
                salt: vec![0; 16],
                iterations: 4096,
                stored_key: [0; 32],
                server_key: [0; 32],
            },
            admin: false,
        });
        match store.write_blocking(op).unwrap() {
            WriteOutcome::User(u) => u,
            other => panic!("{other:?}"),
        }
    }

    fn mailbox(store: &Store, user: &User, name: &str) -> Mailbox {
        store.snapshot().unwrap().mailbox(user.id, name).unwrap().unwrap()
    }

    fn append(store: &Store, mailbox: &Mailbox, subjects: &[&str]) {
        let messages = subjects
            .iter()
            .map(|s| {
                let (message, structure) =
                    crate::mime::ingest(format!("Subject: {s}\r\n\r\n{s}\r\n").into_bytes()).unwrap();
                NewMessage {
                    message,
                    structure: Arc::new(structure),
                    flags: 0,
                    keywords: Vec::new(),
                    internal_date: Some(1_700_000_000),
                }
            })
            .collect();
        store
            .write_blocking(WriteOp::Append {
                mailbox: mailbox.id,
                messages,
            })
            .unwrap();
    }

    /// One pass from `from` to `to`, from where `to` stands.
    fn pass(from: &Store, to: &Store, name: &str) -> Carried {
        let snapshot = from.snapshot().unwrap();
        let source = snapshot.user(name).unwrap().unwrap();
        let marks = marks(&to.snapshot().unwrap(), name).unwrap();
        let (bytes, sent) = dump(&snapshot, &source, &marks, Vec::new(), &mut |_| {}).unwrap();
        let target = to.snapshot().unwrap().user(name).unwrap().unwrap();
        let mut reader = Reader::new(&bytes[..]).unwrap();
        assert_eq!(read_header(&mut reader).unwrap(), name);
        let (_, got) = apply(to, &target, &mut reader, &crate::mime::Limits::default(), &mut |_| {}).unwrap();
        assert_eq!(sent, got);
        sent
    }

    fn same(a: &Store, b: &Store, name: &str) {
        let (a, b) = (a.snapshot().unwrap(), b.snapshot().unwrap());
        assert_eq!(digests(&a, name).unwrap(), digests(&b, name).unwrap());
        let (ua, ub) = (a.user(name).unwrap().unwrap(), b.user(name).unwrap().unwrap());
        assert_eq!(a.subscriptions(ua.id).unwrap(), b.subscriptions(ub.id).unwrap());
    }

    /// A first pass copies everything; later passes carry only what changed (a flag, an
    /// expunge, a new message, a new and a deleted mailbox), and the stores agree after each.
    #[test]
    fn later_passes_carry_only_the_changes() {
        let ((_a, source), (_b, target)) = (store(), store());
        let alice = user(&source, "alice");
        user(&target, "alice");
        let inbox = mailbox(&source, &alice, "INBOX");
        let subjects: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
        append(
            &source,
            &inbox,
            &subjects.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let first = pass(&source, &target, "alice");
        assert_eq!(first.messages, 50);
        same(&source, &target, "alice");
        assert_eq!(pass(&source, &target, "alice").changes, 0);

        source
            .write_blocking(WriteOp::StoreFlags {
                mailbox: inbox.id,
                uids: vec![3],
                mode: FlagMode::Add,
                flags: flags::SEEN,
                keywords: vec!["Work".into()],
                unchanged_since: None,
            })
            .unwrap();
        source
            .write_blocking(WriteOp::Expunge {
                mailbox: inbox.id,
                uids: vec![7, 8],
            })
            .unwrap();
        append(&source, &inbox, &["late"]);
        source
            .write_blocking(WriteOp::CreateMailbox {
                user: alice.id,
                name: "Projects".into(),
                special_use: None,
            })
            .unwrap();
        source
            .write_blocking(WriteOp::DeleteMailbox {
                user: alice.id,
                name: "Junk".into(),
            })
            .unwrap();
        let second = pass(&source, &target, "alice");
        assert_eq!((second.messages, second.changes), (1, 4), "{second:?}");
        same(&source, &target, "alice");
        let t = target.snapshot().unwrap();
        let talice = t.user("alice").unwrap().unwrap();
        assert!(t.mailbox(talice.id, "Junk").unwrap().is_none());
        let tinbox = t.mailbox(talice.id, "INBOX").unwrap().unwrap();
        assert!(
            matches!(t.expunged_since(&tinbox, 1).unwrap(), crate::store::modseq::Expunged::Known(u) if u == vec![7, 8])
        );
    }

    #[test]
    fn uid_runs_round_trip() {
        let uids = vec![1, 2, 3, 7, 9, 10];
        assert_eq!(ranges(&uids), vec![[1, 3], [7, 7], [9, 10]]);
        assert!(ranges(&[]).is_empty());
    }

    #[test]
    fn flags_have_their_imap_names() {
        let bits = flags::SEEN | flags::DRAFT;
        assert_eq!(flag_bits(&flag_names(bits)).unwrap(), bits);
        assert!(flag_bits(&["\\Recent".into()]).is_err());
    }
}
