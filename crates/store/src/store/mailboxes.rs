//! Mailbox operations of the writer: CREATE (with superiors and SPECIAL-USE), DELETE (RFC 3501
//! §6.3.4: a parent keeps its name as \Noselect), RENAME (children follow; INBOX moves its
//! messages instead, §6.3.5) and subscriptions. The hierarchy separator is '/'.

use heed::RwTxn;

use super::feed::{Change, ChangeKind};
use super::messages;
use super::read::{canonical_mailbox_name, get_mailbox, get_mailbox_by_name};
use super::records::{keys, Mailbox, MailboxId, SpecialUse, Uid, UserId};
use super::txn::{next_counter, next_uid_validity, put_json};
use super::{StoreError, Tables};

pub const SEPARATOR: char = '/';

/// Whether `name` is below `parent` in the hierarchy: `parent`, the separator, and at least
/// one more character.
pub fn is_below(name: &str, parent: &str) -> bool {
    name.strip_prefix(parent)
        .and_then(|rest| rest.strip_prefix(SEPARATOR))
        .is_some_and(|rest| !rest.is_empty())
}

/// Rejects names no client could use well; returns the canonical form.
pub fn validate_name(name: &str) -> Result<&str, StoreError> {
    let name = name.strip_suffix(SEPARATOR).unwrap_or(name);
    let refuse = |why| Err(StoreError::MailboxRefused(why));
    if name.is_empty() || name.len() > 512 {
        return refuse("mailbox name is empty or too long");
    }
    if name.split(SEPARATOR).any(str::is_empty) {
        return refuse("mailbox name has an empty level");
    }
    // Harmless in the store, but a Maildir export or any tool that maps names to paths
    // must never be led out of a directory by one.
    if name.split(SEPARATOR).any(|level| level == "." || level == "..") {
        return refuse("mailbox name has a . or .. level");
    }
    if name.chars().any(|c| c.is_control() || c == '*' || c == '%') {
        return refuse("mailbox name has control or wildcard characters");
    }
    Ok(canonical_mailbox_name(name))
}

pub(crate) fn all_names(t: &Tables, txn: &RwTxn<'_>, user: UserId) -> Result<Vec<(String, MailboxId)>, StoreError> {
    let mut out = Vec::new();
    for item in t.mailbox_names.prefix_iter(txn, &keys::user_id(user))? {
        let (k, v) = item?;
        let name = String::from_utf8_lossy(&k[4..]).into_owned();
        let id = MailboxId::from_be_bytes(v.try_into().map_err(|_| StoreError::Corrupt("mailbox_names"))?);
        out.push((name, id));
    }
    Ok(out)
}

pub(crate) fn new_mailbox(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    user: UserId,
    name: &str,
    special_use: Option<SpecialUse>,
    changes: &mut Vec<Change>,
) -> Result<Mailbox, StoreError> {
    let id = next_counter(t, txn, "next_mailbox_id")?;
    let mailbox = Mailbox::new(id, user, name, next_uid_validity(t, txn)?, special_use);
    put_json(&t.mailboxes, txn, &keys::mailbox(mailbox.id), &mailbox)?;
    t.mailbox_names
        .put(txn, &keys::mailbox_name(user, name), &keys::mailbox(mailbox.id))?;
    changes.push(Change {
        user,
        mailbox: mailbox.id,
        highest_modseq: 1,
        kind: ChangeKind::MailboxCreated,
    });
    Ok(mailbox)
}

/// Creates every missing superior of `name` (RFC 3501 §6.3.3 SHOULD).
fn create_superiors(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    user: UserId,
    name: &str,
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let mut prefix = String::new();
    let levels: Vec<&str> = name.split(SEPARATOR).collect();
    for level in &levels[..levels.len() - 1] {
        if !prefix.is_empty() {
            prefix.push(SEPARATOR);
        }
        prefix.push_str(level);
        if get_mailbox_by_name(t, txn, user, &prefix)?.is_none() {
            new_mailbox(t, txn, user, &prefix, None, changes)?;
        }
    }
    Ok(())
}

pub(crate) fn create(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    user: UserId,
    name: &str,
    special_use: Option<SpecialUse>,
    changes: &mut Vec<Change>,
) -> Result<Mailbox, StoreError> {
    let name = validate_name(name)?;
    if let Some(existing) = get_mailbox_by_name(t, txn, user, name)? {
        if !existing.noselect {
            return Err(StoreError::MailboxExists);
        }
        // Creating a \Noselect name makes it a real mailbox again.
        let mut revived = existing;
        revived.noselect = false;
        revived.special_use = special_use;
        put_json(&t.mailboxes, txn, &keys::mailbox(revived.id), &revived)?;
        return Ok(revived);
    }
    create_superiors(t, txn, user, name, changes)?;
    new_mailbox(t, txn, user, name, special_use, changes)
}

fn message_uids(t: &Tables, txn: &RwTxn<'_>, mailbox: MailboxId) -> Result<Vec<Uid>, StoreError> {
    let mut uids = Vec::new();
    for item in t.messages.prefix_iter(txn, &keys::mailbox(mailbox))? {
        let (k, _) = item?;
        uids.push(keys::message_uid(k));
    }
    Ok(uids)
}

pub(crate) fn delete(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    user: UserId,
    name: &str,
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let name = canonical_mailbox_name(name);
    if name == "INBOX" {
        return Err(StoreError::MailboxRefused("INBOX cannot be deleted"));
    }
    let mut mailbox = get_mailbox_by_name(t, txn, user, name)?.ok_or(StoreError::NoSuchMailbox)?;
    let child_prefix = format!("{name}{SEPARATOR}");
    let has_children = all_names(t, txn, user)?
        .iter()
        .any(|(n, _)| n.starts_with(&child_prefix));
    if has_children && mailbox.noselect {
        return Err(StoreError::MailboxRefused(
            "mailbox has children and is already \\Noselect",
        ));
    }
    let uids = message_uids(t, txn, mailbox.id)?;
    messages::expunge(t, txn, mailbox.id, &uids, changes)?;
    // RFC 5464 §3.1: a mailbox's annotations go with it.
    super::metadata::remove_all(t, txn, user, mailbox.id)?;
    // RFC 4467 §3: so are the URLs authorized for it.
    super::urlauth::remove(t, txn, user, mailbox.id)?;
    if has_children {
        mailbox = get_mailbox(t, txn, mailbox.id)?.ok_or(StoreError::NoSuchMailbox)?;
        mailbox.noselect = true;
        put_json(&t.mailboxes, txn, &keys::mailbox(mailbox.id), &mailbox)?;
    } else {
        t.mailboxes.delete(txn, &keys::mailbox(mailbox.id))?;
        t.mailbox_names.delete(txn, &keys::mailbox_name(user, name))?;
        super::modseq::forget_mailbox(t, txn, mailbox.id)?;
    }
    changes.push(Change {
        user,
        mailbox: mailbox.id,
        highest_modseq: mailbox.highest_modseq,
        kind: ChangeKind::MailboxDeleted,
    });
    Ok(())
}

pub(crate) fn rename(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    user: UserId,
    (from, to): (&str, &str),
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let from = canonical_mailbox_name(from);
    let to = validate_name(to)?;
    let source = get_mailbox_by_name(t, txn, user, from)?.ok_or(StoreError::NoSuchMailbox)?;
    if get_mailbox_by_name(t, txn, user, to)?.is_some() {
        return Err(StoreError::MailboxExists);
    }
    // `to` is valid, so it does not end with the separator.
    if is_below(to, from) {
        return Err(StoreError::MailboxRefused("cannot rename a mailbox into itself"));
    }
    create_superiors(t, txn, user, to, changes)?;
    if from == "INBOX" {
        // RFC 3501 §6.3.5: the messages move to the new mailbox, INBOX stays, empty.
        let target = new_mailbox(t, txn, user, to, None, changes)?;
        let uids = message_uids(t, txn, source.id)?;
        messages::copy(t, txn, (source.id, &uids), target.id, true, changes)?;
        return Ok(());
    }
    let child_prefix = format!("{from}{SEPARATOR}");
    for (name, id) in all_names(t, txn, user)? {
        let new_name = if name == from {
            to.to_owned()
        } else if let Some(rest) = name.strip_prefix(&child_prefix) {
            format!("{to}{SEPARATOR}{rest}")
        } else {
            continue;
        };
        let mut mailbox = get_mailbox(t, txn, id)?.ok_or(StoreError::Corrupt("mailboxes"))?;
        t.mailbox_names.delete(txn, &keys::mailbox_name(user, &name))?;
        t.mailbox_names
            .put(txn, &keys::mailbox_name(user, &new_name), &keys::mailbox(id))?;
        mailbox.name = new_name;
        put_json(&t.mailboxes, txn, &keys::mailbox(id), &mailbox)?;
        changes.push(Change {
            user,
            mailbox: id,
            highest_modseq: mailbox.highest_modseq,
            kind: ChangeKind::MailboxRenamed,
        });
    }
    Ok(())
}

/// SUBSCRIBE and UNSUBSCRIBE. A name is subscribed whether or not a mailbox has it, and
/// stays subscribed when its mailbox is deleted (RFC 3501 §6.3.6); unsubscribing a name that
/// is not subscribed fails.
pub(crate) fn subscribe(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    user: UserId,
    (name, on): (&str, bool),
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let key = keys::mailbox_name(user, canonical_mailbox_name(name));
    if on {
        validate_name(name)?;
        t.subscriptions.put(txn, &key, &[])?;
    } else if !t.subscriptions.delete(txn, &key)? {
        return Err(StoreError::NoSuchMailbox);
    }
    changes.push(Change {
        user,
        mailbox: 0,
        highest_modseq: 0,
        kind: ChangeKind::Subscription,
    });
    Ok(())
}

/// Stores written before subscriptions had their own table kept them as a flag on the
/// mailbox record: move them over (once; the flag is cleared).
pub(crate) fn migrate_subscriptions(t: &Tables, txn: &mut RwTxn<'_>) -> Result<(), StoreError> {
    let mut flagged = Vec::new();
    for item in t.mailboxes.iter(txn)? {
        let (_, v) = item?;
        let mailbox: Mailbox = serde_json::from_slice(v).map_err(|_| StoreError::Corrupt("mailboxes"))?;
        if mailbox.subscribed {
            flagged.push(mailbox);
        }
    }
    for mut mailbox in flagged {
        t.subscriptions
            .put(txn, &keys::mailbox_name(mailbox.user_id, &mailbox.name), &[])?;
        mailbox.subscribed = false;
        put_json(&t.mailboxes, txn, &keys::mailbox(mailbox.id), &mailbox)?;
    }
    Ok(())
}
