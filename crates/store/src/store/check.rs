//! `ringmail fsck`: the store's invariants, checked on a stopped server in one read
//! transaction, and the damage repaired through the writer.
//!
//! What must hold: every message has its body (chunks, structure, reference count) and every
//! body is referred to by as many messages as its count says; a mailbox's UIDNEXT is above
//! each of its UIDs, its HIGHESTMODSEQ at or above each modseq, and its message count and size
//! are those of its messages; a user's usage (quota) is the sum over their mailboxes; the
//! name indexes, the modseq and unseen indexes and the counts by flag agree with the records;
//! every queue entry has its bytes and no bytes are left without an entry. Repairs only ever
//! recount, raise a counter, build an index again, or remove what nothing can reach (and a
//! message whose body is gone, which no client could read anyway).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use heed::{RoTxn, RwTxn, WithoutTls};

use super::records::{flags, keys, BodyId, FlagCounts, Mailbox, MailboxId, MessageRecord, Uid, Usage, User, UserId};
use super::txn::{chunk_owners, delete_body, delete_chunks, inclusive, key_id, put_json};
use super::{StoreError, Tables};

/// What one check found, and how `--repair` deals with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub problem: String,
    fix: Fix,
}

#[derive(Debug, Clone, PartialEq)]
enum Fix {
    /// Reported only: needs a person (a record that does not decode, a user without a
    /// mailbox index entry...).
    Report,
    MailboxCounters {
        id: MailboxId,
        messages: u32,
        size: u64,
        uid_next: Uid,
        highest_modseq: u64,
    },
    Usage {
        user: UserId,
        usage: Usage,
    },
    BodyRefs {
        body: BodyId,
        refs: u32,
    },
    /// A body nothing refers to: its chunks, structure and count.
    DeleteBody(BodyId),
    /// A dot-line index that does not match its body: dropped, so POP3 scans the body.
    DeleteDotLines(BodyId),
    /// A message whose mailbox or body is gone, or that does not decode.
    DeleteMessage {
        key: [u8; 12],
    },
    /// Queued bytes without a queue entry.
    DeleteQueueBytes(u64),
    /// The modseq index, the unseen index or the counts by flag of a mailbox disagree with
    /// its records: built again from them.
    Reindex(MailboxId),
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem)
    }
}

/// What was looked at, and what was wrong.
#[derive(Debug, Default)]
pub struct Report {
    pub users: usize,
    pub mailboxes: usize,
    pub messages: usize,
    pub bodies: usize,
    pub queue_entries: usize,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// How many findings `--repair` can fix (the rest are reported only).
    pub fn repairable(&self) -> usize {
        self.findings.iter().filter(|f| f.fix != Fix::Report).count()
    }

    fn found(&mut self, problem: String, fix: Fix) {
        self.findings.push(Finding { problem, fix });
    }
}

/// Per mailbox, what its messages add up to.
#[derive(Default)]
struct Tally {
    messages: u32,
    size: u64,
    max_uid: Uid,
    max_modseq: u64,
    flags: FlagCounts,
}

/// Checks every invariant in one read transaction.
pub(crate) fn inspect(t: &Tables, txn: &RoTxn<'_, WithoutTls>) -> Result<Report, StoreError> {
    let mut report = Report::default();
    let users = inspect_users(t, txn, &mut report)?;
    let mailboxes = inspect_mailboxes(t, txn, &users, &mut report)?;
    let (tallies, refs) = inspect_messages(t, txn, &mailboxes, &mut report)?;
    check_mailbox_counters(&mailboxes, &tallies, &mut report);
    check_usage(t, txn, &users, &mailboxes, &tallies, &mut report)?;
    inspect_modseq_index(t, txn, &mut report)?;
    inspect_bodies(t, txn, &refs, &mut report)?;
    inspect_queue(t, txn, &mut report)?;
    Ok(report)
}

fn inspect_users(
    t: &Tables,
    txn: &RoTxn<'_, WithoutTls>,
    report: &mut Report,
) -> Result<BTreeMap<UserId, User>, StoreError> {
    let mut users = BTreeMap::new();
    for item in t.users.iter(txn)? {
        let (name, value) = item?;
        let name = String::from_utf8_lossy(name).into_owned();
        let Ok(user) = serde_json::from_slice::<User>(value) else {
            report.found(format!("user {name}: the record does not decode"), Fix::Report);
            continue;
        };
        match t.user_ids.get(txn, &keys::user_id(user.id))? {
            Some(indexed) if indexed == name.as_bytes() => {}
            _ => report.found(format!("user {name}: id {} is not indexed to it", user.id), Fix::Report),
        }
        users.insert(user.id, user);
    }
    for item in t.user_ids.iter(txn)? {
        let (id, name) = item?;
        let id = id.try_into().map(u32::from_be_bytes).unwrap_or(0);
        if users.get(&id).is_none_or(|u| u.name.as_bytes() != name) {
            let name = String::from_utf8_lossy(name);
            report.found(
                format!("user id {id} names {name}, which has no such record"),
                Fix::Report,
            );
        }
    }
    report.users = users.len();
    Ok(users)
}

fn inspect_mailboxes(
    t: &Tables,
    txn: &RoTxn<'_, WithoutTls>,
    users: &BTreeMap<UserId, User>,
    report: &mut Report,
) -> Result<BTreeMap<MailboxId, Mailbox>, StoreError> {
    let mut mailboxes = BTreeMap::new();
    for item in t.mailboxes.iter(txn)? {
        let (key, value) = item?;
        let Ok(mailbox) = serde_json::from_slice::<Mailbox>(value) else {
            report.found(format!("mailbox record {key:02x?} does not decode"), Fix::Report);
            continue;
        };
        let label = format!(
            "mailbox {} ({:?} of user {})",
            mailbox.id, mailbox.name, mailbox.user_id
        );
        if !users.contains_key(&mailbox.user_id) {
            report.found(format!("{label}: its user does not exist"), Fix::Report);
        }
        let indexed = t
            .mailbox_names
            .get(txn, &keys::mailbox_name(mailbox.user_id, &mailbox.name))?;
        if indexed != Some(&keys::mailbox(mailbox.id)[..]) {
            report.found(format!("{label}: its name is not indexed to it"), Fix::Report);
        }
        mailboxes.insert(mailbox.id, mailbox);
    }
    for item in t.mailbox_names.iter(txn)? {
        let (key, id) = item?;
        let id = key_id(id);
        let named = mailboxes
            .get(&id)
            .is_some_and(|m| keys::mailbox_name(m.user_id, &m.name) == key);
        if !named {
            report.found(
                format!("mailbox name index entry {key:02x?} points at no such mailbox"),
                Fix::Report,
            );
        }
    }
    report.mailboxes = mailboxes.len();
    Ok(mailboxes)
}

/// What the messages add up to, per mailbox, and the references per body.
type Counted = (BTreeMap<MailboxId, Tally>, BTreeMap<BodyId, u32>);

/// Every message: its mailbox, its record, its body.
fn inspect_messages(
    t: &Tables,
    txn: &RoTxn<'_, WithoutTls>,
    mailboxes: &BTreeMap<MailboxId, Mailbox>,
    report: &mut Report,
) -> Result<Counted, StoreError> {
    let mut tallies: BTreeMap<MailboxId, Tally> = BTreeMap::new();
    let mut refs: BTreeMap<BodyId, u32> = BTreeMap::new();
    let mut lengths: BTreeMap<BodyId, Option<u64>> = BTreeMap::new();
    for item in t.messages.iter(txn)? {
        let (key, value) = item?;
        let Ok(key) = <[u8; 12]>::try_from(key) else {
            report.found(format!("message key {key:02x?} is malformed"), Fix::Report);
            continue;
        };
        report.messages += 1;
        let mailbox = u64::from_be_bytes(key[..8].try_into().expect("8 bytes"));
        let uid = keys::message_uid(&key);
        let label = format!("message {uid} of mailbox {mailbox}");
        if !mailboxes.contains_key(&mailbox) {
            report.found(
                format!("{label}: the mailbox does not exist"),
                Fix::DeleteMessage { key },
            );
            continue;
        }
        let Some(record) = MessageRecord::decode(value) else {
            report.found(
                format!("{label}: the record does not decode"),
                Fix::DeleteMessage { key },
            );
            continue;
        };
        let length = match lengths.get(&record.body_id) {
            Some(length) => *length,
            None => {
                let length = body_length(t, txn, record.body_id)?;
                lengths.insert(record.body_id, length);
                length
            }
        };
        match length {
            None => {
                report.found(
                    format!("{label}: its body {} is missing", record.body_id),
                    Fix::DeleteMessage { key },
                );
                continue;
            }
            Some(length) if length != record.size => report.found(
                format!("{label}: size {} but its body has {length} bytes", record.size),
                Fix::Report,
            ),
            Some(_) => {}
        }
        *refs.entry(record.body_id).or_default() += 1;
        let tally = tallies.entry(mailbox).or_default();
        tally.messages += 1;
        tally.size += record.size;
        tally.max_uid = tally.max_uid.max(uid);
        tally.max_modseq = tally.max_modseq.max(record.modseq);
        tally.flags.add(&record);
    }
    Ok((tallies, refs))
}

/// The modseq and unseen indexes both ways: every record under its modseq (and, unseen, in
/// the unseen index), and every index entry at a record that agrees. Point lookups, so it
/// holds nothing per message in memory.
fn inspect_modseq_index(t: &Tables, txn: &RoTxn<'_, WithoutTls>, report: &mut Report) -> Result<(), StoreError> {
    let mut broken = BTreeSet::new();
    for item in t.messages.iter(txn)? {
        let (key, value) = item?;
        let (mailbox, uid) = (key_id(key), keys::message_uid(key));
        let Some(record) = MessageRecord::decode(value) else {
            continue;
        };
        let unseen = record.flags & flags::SEEN == 0;
        if unseen != t.unseen.get(txn, key)?.is_some() && broken.insert(mailbox) {
            let wrong = if unseen {
                "unseen but not in the unseen index"
            } else {
                "seen but in the unseen index"
            };
            report.found(
                format!("message {uid} of mailbox {mailbox}: {wrong}"),
                Fix::Reindex(mailbox),
            );
        }
        if t.modseqs
            .get(txn, &keys::modseq(mailbox, record.modseq, uid))?
            .is_none()
            && broken.insert(mailbox)
        {
            report.found(
                format!(
                    "message {uid} of mailbox {mailbox}: modseq {} is not indexed",
                    record.modseq
                ),
                Fix::Reindex(mailbox),
            );
        }
    }
    for item in t.unseen.iter(txn)? {
        let (key, _) = item?;
        let (mailbox, uid) = (key_id(key), keys::message_uid(key));
        let record = t.messages.get(txn, key)?.and_then(MessageRecord::decode);
        if record.is_none_or(|r| r.flags & flags::SEEN != 0) && broken.insert(mailbox) {
            report.found(
                format!("mailbox {mailbox}: the unseen index has UID {uid}, which is not an unseen message"),
                Fix::Reindex(mailbox),
            );
        }
    }
    for item in t.modseqs.iter(txn)? {
        let (key, _) = item?;
        let mailbox = key_id(key);
        let Some((modseq, uid)) = keys::modseq_entry(key) else {
            report.found(format!("modseq index key {key:02x?} is malformed"), Fix::Report);
            continue;
        };
        let record = t
            .messages
            .get(txn, &keys::message(mailbox, uid))?
            .and_then(MessageRecord::decode);
        if record.is_none_or(|r| r.modseq != modseq) && broken.insert(mailbox) {
            report.found(
                format!("mailbox {mailbox}: the modseq index has UID {uid} at modseq {modseq}, its record does not"),
                Fix::Reindex(mailbox),
            );
        }
    }
    Ok(())
}

/// The bytes of a stored body, or None when any part of it (count, structure, first chunk)
/// is missing.
fn body_length(t: &Tables, txn: &RoTxn<'_, WithoutTls>, body: BodyId) -> Result<Option<u64>, StoreError> {
    let key = body.to_be_bytes();
    if t.body_refs.get(txn, &key)?.is_none() || t.structures.get(txn, &key)?.is_none() {
        return Ok(None);
    }
    let (start, end) = (keys::chunk(body, 0), keys::chunk(body, u32::MAX));
    let mut length = 0u64;
    for (expected, item) in (0u32..).zip(t.bodies.range(txn, &inclusive(&start, &end))?) {
        let (k, v) = item?;
        // Chunks are numbered from 0 without gaps.
        if k[8..12] != expected.to_be_bytes() {
            return Ok(None);
        }
        length += v.len() as u64;
    }
    // An empty message is stored as no chunk at all.
    Ok(Some(length))
}

fn check_mailbox_counters(
    mailboxes: &BTreeMap<MailboxId, Mailbox>,
    tallies: &BTreeMap<MailboxId, Tally>,
    report: &mut Report,
) {
    let empty = Tally::default();
    for mailbox in mailboxes.values() {
        let tally = tallies.get(&mailbox.id).unwrap_or(&empty);
        let uid_next = mailbox.uid_next.max(tally.max_uid.saturating_add(1));
        let highest_modseq = mailbox.highest_modseq.max(tally.max_modseq);
        let right = Fix::MailboxCounters {
            id: mailbox.id,
            messages: tally.messages,
            size: tally.size,
            uid_next,
            highest_modseq,
        };
        let mut wrong = Vec::new();
        if mailbox.messages != tally.messages || mailbox.size != tally.size {
            wrong.push(format!(
                "counts {} messages of {} bytes, holds {} of {}",
                mailbox.messages, mailbox.size, tally.messages, tally.size
            ));
        }
        if uid_next != mailbox.uid_next {
            wrong.push(format!(
                "UIDNEXT {} is not above UID {}",
                mailbox.uid_next, tally.max_uid
            ));
        }
        if highest_modseq != mailbox.highest_modseq {
            wrong.push(format!(
                "HIGHESTMODSEQ {} is below modseq {}",
                mailbox.highest_modseq, tally.max_modseq
            ));
        }
        if mailbox.noselect && tally.messages > 0 {
            wrong.push("is \\Noselect but holds messages".into());
        }
        if !mailbox.flag_counts.agrees(&tally.flags) {
            report.found(
                format!(
                    "mailbox {}: counts {:?} by flag, holds {:?}",
                    mailbox.id, mailbox.flag_counts, tally.flags
                ),
                Fix::Reindex(mailbox.id),
            );
        }
        if !wrong.is_empty() {
            let label = format!(
                "mailbox {} ({:?} of user {})",
                mailbox.id, mailbox.name, mailbox.user_id
            );
            report.found(format!("{label}: {}", wrong.join("; ")), right);
        }
    }
}

fn check_usage(
    t: &Tables,
    txn: &RoTxn<'_, WithoutTls>,
    users: &BTreeMap<UserId, User>,
    mailboxes: &BTreeMap<MailboxId, Mailbox>,
    tallies: &BTreeMap<MailboxId, Tally>,
    report: &mut Report,
) -> Result<(), StoreError> {
    let mut sums: BTreeMap<UserId, Usage> = users.keys().map(|id| (*id, Usage::default())).collect();
    for (id, tally) in tallies {
        if let Some(sum) = mailboxes.get(id).and_then(|m| sums.get_mut(&m.user_id)) {
            sum.bytes += tally.size;
            sum.messages += u64::from(tally.messages);
        }
    }
    for (user, sum) in sums {
        let stored = t.usage.get(txn, &keys::user_id(user))?.map(Usage::decode);
        if stored != Some(sum) {
            let name = users.get(&user).map_or("?", |u| u.name.as_str());
            let had = stored.map_or("none".into(), |u| {
                format!("{} messages of {} bytes", u.messages, u.bytes)
            });
            report.found(
                format!(
                    "user {name}: usage is {had}, the mailboxes hold {} of {}",
                    sum.messages, sum.bytes
                ),
                Fix::Usage { user, usage: sum },
            );
        }
    }
    Ok(())
}

/// Every body's reference count against the messages that refer to it; bodies (chunks or
/// structures) that nothing refers to.
fn inspect_bodies(
    t: &Tables,
    txn: &RoTxn<'_, WithoutTls>,
    refs: &BTreeMap<BodyId, u32>,
    report: &mut Report,
) -> Result<(), StoreError> {
    let mut seen = BTreeSet::new();
    for item in t.body_refs.iter(txn)? {
        let (key, value) = item?;
        let body = key_id(key);
        let count = value.try_into().map(u32::from_be_bytes).unwrap_or(0);
        seen.insert(body);
        match refs.get(&body).copied().unwrap_or(0) {
            0 => report.found(format!("body {body}: no message refers to it"), Fix::DeleteBody(body)),
            actual if actual != count => report.found(
                format!("body {body}: counted {count} references, has {actual}"),
                Fix::BodyRefs { body, refs: actual },
            ),
            _ => {}
        }
    }
    report.bodies = seen.len();
    // Chunks, structures and indexes of bodies without a count at all.
    let mut orphans = chunk_owners(&t.bodies, txn)?;
    for item in t.structures.iter(txn)? {
        orphans.insert(key_id(item?.0));
    }
    for item in t.dot_lines.iter(txn)? {
        let (key, value) = item?;
        let body = key_id(key);
        orphans.insert(body);
        if seen.contains(&body) && !dot_lines_match(t, txn, body, value)? {
            report.found(
                format!("body {body}: its index of lines starting with '.' does not match its bytes"),
                Fix::DeleteDotLines(body),
            );
        }
    }
    orphans.retain(|body| !seen.contains(body));
    for body in orphans {
        report.found(
            format!("body {body}: stored without a reference count"),
            Fix::DeleteBody(body),
        );
    }
    Ok(())
}

/// Whether a body's stored dot-line index is what its bytes give.
fn dot_lines_match(t: &Tables, txn: &RoTxn<'_, WithoutTls>, body: BodyId, value: &[u8]) -> Result<bool, StoreError> {
    let Some(stored) = super::dot_lines::decode(value) else {
        return Ok(false);
    };
    let (start, end) = (keys::chunk(body, 0), keys::chunk(body, u32::MAX));
    let mut scan = super::dot_lines::Scan::default();
    let (mut next, mut matches) = (0, true);
    for item in t.bodies.range(txn, &inclusive(&start, &end))? {
        scan.feed(item?.1, |offset| {
            matches &= stored.get(next) == Some(&offset);
            next += 1;
        });
    }
    Ok(matches && next == stored.len())
}

fn inspect_queue(t: &Tables, txn: &RoTxn<'_, WithoutTls>, report: &mut Report) -> Result<(), StoreError> {
    let mut entries = BTreeSet::new();
    for item in t.queue.iter(txn)? {
        let (key, value) = item?;
        let id = key_id(key);
        entries.insert(id);
        report.queue_entries += 1;
        let Ok(entry) = serde_json::from_slice::<super::QueueEntry>(value) else {
            report.found(format!("queue entry {id}: the record does not decode"), Fix::Report);
            continue;
        };
        let (start, end) = (keys::chunk(id, 0), keys::chunk(id, u32::MAX));
        let mut length = 0u64;
        for chunk in t.queue_bodies.range(txn, &inclusive(&start, &end))? {
            length += chunk?.1.len() as u64;
        }
        if length != entry.size {
            report.found(
                format!("queue entry {id}: size {} but {length} bytes are queued", entry.size),
                Fix::Report,
            );
        }
    }
    for id in chunk_owners(&t.queue_bodies, txn)?.difference(&entries) {
        report.found(format!("queued bytes {id}: no queue entry"), Fix::DeleteQueueBytes(*id));
    }
    Ok(())
}

/// Carries out the repairs of `report`; returns how many were made.
pub(crate) fn repair(t: &Tables, txn: &mut RwTxn<'_>, report: &Report) -> Result<usize, StoreError> {
    let mut done = 0;
    // Mailboxes whose index is built again once their records are right.
    let mut reindex = BTreeSet::new();
    // Messages first: the counts fixed after them must not count what they remove.
    let mut order: Vec<&Fix> = report.findings.iter().map(|f| &f.fix).collect();
    order.sort_by_key(|fix| !matches!(fix, Fix::DeleteMessage { .. }));
    for fix in order {
        match fix {
            Fix::Report => continue,
            Fix::DeleteMessage { key } => {
                t.messages.delete(txn, key)?;
                reindex.insert(key_id(key));
            }
            Fix::Reindex(mailbox) => {
                reindex.insert(*mailbox);
            }
            Fix::MailboxCounters {
                id,
                messages,
                size,
                uid_next,
                highest_modseq,
            } => {
                let Some(mut mailbox) = super::read::get_mailbox(t, txn, *id)? else {
                    continue;
                };
                mailbox.messages = *messages;
                mailbox.size = *size;
                mailbox.uid_next = *uid_next;
                // A repair is a change: clients that synced see a higher modseq.
                mailbox.highest_modseq = (*highest_modseq).max(mailbox.highest_modseq) + 1;
                put_json(&t.mailboxes, txn, &keys::mailbox(*id), &mailbox)?;
            }
            Fix::Usage { user, usage } => t.usage.put(txn, &keys::user_id(*user), &usage.encode())?,
            Fix::BodyRefs { body, refs } => t.body_refs.put(txn, &body.to_be_bytes(), &refs.to_be_bytes())?,
            Fix::DeleteBody(body) => delete_body(t, txn, *body)?,
            Fix::DeleteDotLines(body) => {
                t.dot_lines.delete(txn, &body.to_be_bytes())?;
            }
            Fix::DeleteQueueBytes(id) => delete_chunks(&t.queue_bodies, txn, *id)?,
        }
        done += 1;
    }
    for mailbox in reindex {
        super::modseq::reindex(t, txn, mailbox)?;
        super::unseen::recount(t, txn, mailbox)?;
    }
    Ok(done)
}
