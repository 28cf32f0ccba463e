//! A user's mailboxes brought over exactly as another ringmail store holds them (a mailbox
//! move, or `ringmail import --from stream:`): every message at its UID with its flags,
//! keywords, dates, modseq and POP3 UIDL, and each mailbox with the source's UIDVALIDITY,
//! UIDNEXT, HIGHESTMODSEQ and expunge log, so clients that knew the mailbox there find the same
//! one here (RFC 3501 UIDs, RFC 7162 modseqs and QRESYNC, RFC 1939 UIDLs).
//!
//! A mailbox comes in passes: `Begin`, any number of `Messages`, `Expunged` and `Present`
//! steps, then `Finish`, which records the pass as complete in the mailbox's `copied` mark.
//! The next pass sends only what changed on the source after that mark, and a pass that was
//! cut off is sent again whole: every step is idempotent (a message that is here already has
//! its flags set again, an expunge of what is gone does nothing). Nothing here takes a new
//! modseq or UID; the mailbox's HIGHESTMODSEQ and UIDNEXT only grow to cover what arrived.

use std::sync::Arc;

use heed::RwTxn;

use super::feed::{Change, ChangeKind};
use super::messages::{adjust_usage, stored};
use super::read::{get_mailbox, get_mailbox_by_name};
use super::records::{flags, keys, CopyMark, Mailbox, MailboxId, MessageRecord, SpecialUse, Uid, UserId};
use super::txn::{inclusive, now, put_json, release_body};
use super::writer::NewMessage;
use super::{mailboxes, metadata, modseq, unseen, StoreError, Tables};
use crate::mime::Structure;

/// A mailbox as the source holds it at the end of a pass.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MailboxState {
    pub name: String,
    pub uid_validity: u32,
    pub uid_next: Uid,
    pub highest_modseq: u64,
    #[serde(default)]
    pub special_use: Option<SpecialUse>,
    #[serde(default)]
    pub noselect: bool,
    pub first_recent_uid: Uid,
    /// The source's expunge log forgot what went at or below this modseq.
    pub expunge_floor: u64,
}

impl MailboxState {
    pub fn of(mailbox: &Mailbox) -> MailboxState {
        MailboxState {
            name: mailbox.name.clone(),
            uid_validity: mailbox.uid_validity,
            uid_next: mailbox.uid_next,
            highest_modseq: mailbox.highest_modseq,
            special_use: mailbox.special_use,
            noselect: mailbox.noselect,
            first_recent_uid: mailbox.first_recent_uid,
            expunge_floor: mailbox.expunge_floor,
        }
    }
}

/// One message as the source holds it.
#[derive(Debug)]
pub struct RestoredMessage {
    pub uid: Uid,
    /// The flags a client sets (`records::flags`, without the internal bits).
    pub flags: u8,
    pub keywords: Vec<String>,
    pub internal_date: i64,
    pub save_date: i64,
    pub modseq: u64,
    /// The UIDL POP3 gives it, when not ringmail's own `UIDVALIDITY.UID`.
    pub pop3_uidl: Option<String>,
    /// Its bytes; `None` when this store has it already and only its flags may have changed.
    pub body: Option<(Vec<u8>, Arc<Structure>)>,
}

#[derive(Debug)]
pub enum RestoreStep {
    /// The mailbox exists with the source's UIDVALIDITY: made if missing, emptied and made
    /// again if it has another (the source deleted and created it since the last pass).
    Begin,
    Messages(Vec<RestoredMessage>),
    /// Expunge log entries of the source: these UIDs left at this modseq.
    Expunged(Vec<(u64, Vec<Uid>)>),
    /// Only the UIDs in these `[first, last]` runs (ascending) are left: the source's log
    /// forgot what went since the last pass.
    Present(Vec<[Uid; 2]>),
    /// The pass is complete.
    Finish,
}

pub(crate) fn step(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    (user, state): (UserId, &MailboxState),
    step: RestoreStep,
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    if let RestoreStep::Begin = step {
        return begin(t, txn, user, state, changes);
    }
    let mut mailbox = get_mailbox_by_name(t, txn, user, &state.name)?
        .filter(|m| m.uid_validity == state.uid_validity)
        .ok_or(StoreError::MailboxRefused(
            "the mailbox of this pass is not here: begin the pass again",
        ))?;
    match step {
        RestoreStep::Begin => unreachable!("handled above"),
        RestoreStep::Messages(messages) => {
            for m in messages {
                put_message(t, txn, &mut mailbox, m, changes)?;
            }
        }
        RestoreStep::Expunged(entries) => {
            for (at, uids) in entries {
                remove(t, txn, &mut mailbox, &uids, changes)?;
                log(t, txn, &mut mailbox, at, &uids)?;
            }
        }
        RestoreStep::Present(mut keep) => {
            let mut gone = Vec::new();
            keep.sort_unstable();
            for item in t.messages.prefix_iter(txn, &keys::mailbox(mailbox.id))? {
                let uid = keys::message_uid(item?.0);
                let run = keep.partition_point(|r| r[1] < uid);
                if keep.get(run).is_none_or(|r| r[0] > uid) {
                    gone.push(uid);
                }
            }
            remove(t, txn, &mut mailbox, &gone, changes)?;
        }
        RestoreStep::Finish => finish(t, txn, &mut mailbox, state)?,
    }
    put_json(&t.mailboxes, txn, &keys::mailbox(mailbox.id), &mailbox)
}

fn begin(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    user: UserId,
    state: &MailboxState,
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let mut mailbox = match get_mailbox_by_name(t, txn, user, &state.name)? {
        Some(m) if m.uid_validity == state.uid_validity => m,
        Some(stale) => {
            // Another mailbox under the same name: what this store has of it is void.
            let uids: Vec<Uid> = t
                .messages
                .prefix_iter(txn, &keys::mailbox(stale.id))?
                .map(|item| item.map(|(k, _)| keys::message_uid(k)))
                .collect::<Result<_, _>>()?;
            let mut emptied = stale;
            remove(t, txn, &mut emptied, &uids, changes)?;
            modseq::forget_mailbox(t, txn, emptied.id)?;
            metadata::remove_all(t, txn, user, emptied.id)?;
            let mut fresh = Mailbox::new(emptied.id, user, &emptied.name, state.uid_validity, None);
            fresh.flag_counts = Default::default();
            fresh
        }
        None => {
            let mut made = mailboxes::create(t, txn, user, &state.name, state.special_use, changes)?;
            made.uid_validity = state.uid_validity;
            made
        }
    };
    mailbox.special_use = state.special_use;
    mailbox.noselect = state.noselect;
    put_json(&t.mailboxes, txn, &keys::mailbox(mailbox.id), &mailbox)
}

fn put_message(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    mailbox: &mut Mailbox,
    m: RestoredMessage,
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    if m.uid == 0 || m.modseq == 0 {
        return Err(StoreError::Corrupt("restored message without UID or modseq"));
    }
    let key = keys::message(mailbox.id, m.uid);
    let client_flags = m.flags & !flags::INTERNAL;
    if let Some(v) = t.messages.get(txn, &key)? {
        let before = MessageRecord::decode(v).ok_or(StoreError::Corrupt("messages"))?;
        let mut record = before.clone();
        record.flags = (before.flags & flags::INTERNAL) | client_flags;
        record.keywords = m.keywords;
        record.modseq = m.modseq;
        if record != before {
            modseq::unindex(t, txn, mailbox.id, m.uid, before.modseq)?;
            t.messages.put(txn, &key, &record.encode())?;
            modseq::index(t, txn, mailbox.id, m.uid, record.modseq)?;
            unseen::refile(t, txn, mailbox, m.uid, (&before, &record))?;
            mailbox.highest_modseq = mailbox.highest_modseq.max(record.modseq);
            changes.push(Change {
                user: mailbox.user_id,
                mailbox: mailbox.id,
                highest_modseq: mailbox.highest_modseq,
                kind: ChangeKind::Flags {
                    uid: m.uid,
                    modseq: record.modseq,
                },
            });
        }
    } else {
        let (message, structure) = m.body.ok_or(StoreError::MailboxRefused(
            "a message the last pass brought is missing here: move again from the start",
        ))?;
        let new = NewMessage {
            message,
            structure,
            flags: client_flags,
            keywords: m.keywords,
            internal_date: Some(m.internal_date),
        };
        let mut record = stored(t, txn, new, now())?;
        record.save_date = m.save_date;
        record.modseq = m.modseq;
        t.messages.put(txn, &key, &record.encode())?;
        modseq::index(t, txn, mailbox.id, m.uid, record.modseq)?;
        unseen::file(t, txn, mailbox, m.uid, &record)?;
        mailbox.messages += 1;
        mailbox.size += record.size;
        mailbox.uid_next = mailbox.uid_next.max(m.uid.saturating_add(1));
        mailbox.highest_modseq = mailbox.highest_modseq.max(record.modseq);
        adjust_usage(t, txn, mailbox.user_id, record.size as i64, 1)?;
        changes.push(Change {
            user: mailbox.user_id,
            mailbox: mailbox.id,
            highest_modseq: mailbox.highest_modseq,
            kind: ChangeKind::Added { uid: m.uid },
        });
    }
    let own = format!("{}.{}", mailbox.uid_validity, m.uid);
    match m.pop3_uidl.filter(|u| *u != own) {
        Some(uidl) => t.pop3_uidls.put(txn, &key, uidl.as_bytes())?,
        None => {
            t.pop3_uidls.delete(txn, &key)?;
        }
    }
    Ok(())
}

/// Takes `uids` (those present) out of `mailbox`, without a modseq of its own: the source's
/// log entry, or its floor, says when they went.
fn remove(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    mailbox: &mut Mailbox,
    uids: &[Uid],
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let mut removed = Vec::new();
    let mut freed = 0u64;
    for &uid in uids {
        let key = keys::message(mailbox.id, uid);
        let Some(v) = t.messages.get(txn, &key)? else {
            continue;
        };
        let record = MessageRecord::decode(v).ok_or(StoreError::Corrupt("messages"))?;
        t.messages.delete(txn, &key)?;
        t.pop3_uidls.delete(txn, &key)?;
        modseq::unindex(t, txn, mailbox.id, uid, record.modseq)?;
        unseen::unfile(t, txn, mailbox, uid, &record)?;
        release_body(t, txn, record.body_id)?;
        freed += record.size;
        removed.push(uid);
    }
    if removed.is_empty() {
        return Ok(());
    }
    mailbox.messages -= removed.len() as u32;
    mailbox.size = mailbox.size.saturating_sub(freed);
    adjust_usage(t, txn, mailbox.user_id, -(freed as i64), -(removed.len() as i64))?;
    changes.push(Change {
        user: mailbox.user_id,
        mailbox: mailbox.id,
        highest_modseq: mailbox.highest_modseq,
        kind: ChangeKind::Expunged { uids: removed },
    });
    Ok(())
}

/// The source's expunge log entry at modseq `at`, kept here for QRESYNC clients.
fn log(t: &Tables, txn: &mut RwTxn<'_>, mailbox: &mut Mailbox, at: u64, uids: &[Uid]) -> Result<(), StoreError> {
    let key = keys::expunged(mailbox.id, at);
    if t.expunged.get(txn, &key)?.is_none() {
        mailbox.expunge_log += 1;
    }
    let entry: Vec<u8> = uids.iter().flat_map(|u| u.to_be_bytes()).collect();
    t.expunged.put(txn, &key, &entry)?;
    mailbox.highest_modseq = mailbox.highest_modseq.max(at);
    Ok(())
}

fn finish(t: &Tables, txn: &mut RwTxn<'_>, mailbox: &mut Mailbox, state: &MailboxState) -> Result<(), StoreError> {
    mailbox.uid_next = mailbox.uid_next.max(state.uid_next);
    mailbox.highest_modseq = mailbox.highest_modseq.max(state.highest_modseq);
    mailbox.first_recent_uid = state.first_recent_uid;
    mailbox.special_use = state.special_use;
    mailbox.noselect = state.noselect;
    // The source's log forgot what lies at or below its floor: so does this one.
    if state.expunge_floor > mailbox.expunge_floor {
        mailbox.expunge_floor = state.expunge_floor;
        let (start, end) = (
            keys::expunged(mailbox.id, 0),
            keys::expunged(mailbox.id, state.expunge_floor),
        );
        t.expunged.delete_range(txn, &inclusive(&start, &end))?;
        mailbox.expunge_log = t.expunged.prefix_iter(txn, &keys::mailbox(mailbox.id))?.count() as u32;
    }
    mailbox.copied = Some(CopyMark {
        modseq: state.highest_modseq,
        uid_next: state.uid_next,
    });
    Ok(())
}

/// What a user has beside mailboxes, as the source holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserState {
    /// Every mailbox name the source has: the others here go.
    pub mailboxes: Vec<String>,
    pub subscriptions: Vec<String>,
    /// METADATA entries: the mailbox's name (`None`: the server's), the entry, its value.
    pub metadata: Vec<(Option<String>, String, Vec<u8>)>,
}

/// Makes `user`'s mailbox names, subscriptions and METADATA those of `state`.
pub(crate) fn user(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    user: UserId,
    state: &UserState,
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let mut extra: Vec<String> = mailboxes::all_names(t, txn, user)?
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| !state.mailboxes.contains(name))
        .collect();
    // Children first, so a parent that goes does not stay behind as \Noselect.
    extra.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for name in extra {
        if name != "INBOX" {
            mailboxes::delete(t, txn, user, &name, changes)?;
        }
    }
    let mut current = Vec::new();
    for item in t.subscriptions.prefix_iter(txn, &keys::user_id(user))? {
        current.push(String::from_utf8_lossy(&item?.0[4..]).into_owned());
    }
    for name in current.iter().filter(|n| !state.subscriptions.contains(n)) {
        mailboxes::subscribe(t, txn, user, (name, false), changes)?;
    }
    for name in state.subscriptions.iter().filter(|n| !current.contains(n)) {
        mailboxes::subscribe(t, txn, user, (name, true), changes)?;
    }
    let mut targets: Vec<MailboxId> = vec![0];
    for name in &state.mailboxes {
        if let Some(m) = get_mailbox_by_name(t, txn, user, name)? {
            targets.push(m.id);
        }
    }
    for id in targets {
        let name = if id == 0 {
            None
        } else {
            get_mailbox(t, txn, id)?.map(|m| m.name)
        };
        let wanted: Vec<(String, Option<Vec<u8>>)> = state
            .metadata
            .iter()
            .filter(|(m, _, _)| *m == name)
            .map(|(_, k, v)| (k.clone(), Some(v.clone())))
            .collect();
        let stale: Vec<(String, Option<Vec<u8>>)> = metadata::entries(t, txn, user, id)?
            .into_iter()
            .filter(|(k, _)| !wanted.iter().any(|(w, _)| w == k))
            .map(|(k, _)| (k, None))
            .collect();
        metadata::set(t, txn, user, id, &[stale, wanted].concat())?;
    }
    Ok(())
}
