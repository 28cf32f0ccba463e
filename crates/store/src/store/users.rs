//! Account operations of the writer: users with their default folders, changes, deletion.

use heed::RwTxn;

use super::feed::Change;
use super::read::get_user;
use super::records::{keys, MailboxId, MessageRecord, Uid, Usage, User, UserId, DEFAULT_MAILBOXES};
use super::txn::{delete_prefix, inclusive, next_counter, put_json, release_body};
use super::writer::{NewUser, UserPatch};
use super::{StoreError, Tables};

pub(crate) fn add_user(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    new: NewUser,
    changes: &mut Vec<Change>,
) -> Result<User, StoreError> {
    if get_user(t, txn, &new.name)?.is_some() {
        return Err(StoreError::UserExists(new.name));
    }
    let id = UserId::try_from(next_counter(t, txn, "next_user_id")?).map_err(|_| StoreError::Corrupt("meta"))?;
    let user = User {
        admin: new.admin,
        ..User::new(id, new.name, new.password_hash, new.scram)
    };
    put_json(&t.users, txn, user.name.as_bytes(), &user)?;
    t.user_ids.put(txn, &keys::user_id(id), user.name.as_bytes())?;
    t.usage.put(txn, &keys::user_id(id), &Usage::default().encode())?;
    for (name, special_use) in DEFAULT_MAILBOXES {
        super::mailboxes::new_mailbox(t, txn, id, name, special_use, changes)?;
        t.subscriptions.put(txn, &keys::mailbox_name(id, name), &[])?;
    }
    Ok(user)
}

pub(crate) fn update_user(t: &Tables, txn: &mut RwTxn<'_>, name: &str, patch: UserPatch) -> Result<User, StoreError> {
    let mut user = get_user(t, txn, name)?.ok_or_else(|| StoreError::NoSuchUser(name.into()))?;
    if let Some((hash, scram)) = patch.password {
        user.password_hash = hash;
        user.scram = scram;
    }
    if let Some(v) = patch.admin {
        user.admin = v;
    }
    if let Some(v) = patch.pop {
        user.pop = v;
    }
    if let Some(v) = patch.smtp {
        user.smtp = v;
    }
    if let Some(v) = patch.imap {
        user.imap = v;
    }
    if let Some(v) = patch.quota {
        user.quota = v;
    }
    if let Some(v) = patch.home {
        user.home = v;
    }
    if let Some(v) = patch.imap_disabled {
        user.imap_disabled = v;
    }
    put_json(&t.users, txn, name.as_bytes(), &user)?;
    Ok(user)
}

pub(crate) fn delete_user(t: &Tables, txn: &mut RwTxn<'_>, name: &str) -> Result<(), StoreError> {
    let user = get_user(t, txn, name)?.ok_or_else(|| StoreError::NoSuchUser(name.into()))?;
    let mut mailbox_ids = Vec::new();
    for item in t.mailbox_names.prefix_iter(txn, &keys::user_id(user.id))? {
        let (_, id) = item?;
        mailbox_ids.push(MailboxId::from_be_bytes(
            id.try_into().map_err(|_| StoreError::Corrupt("mailbox_names"))?,
        ));
    }
    for id in mailbox_ids {
        let mut bodies = Vec::new();
        for item in t.messages.prefix_iter(txn, &keys::mailbox(id))? {
            let (_, v) = item?;
            bodies.push(MessageRecord::decode(v).ok_or(StoreError::Corrupt("messages"))?.body_id);
        }
        for body in bodies {
            release_body(t, txn, body)?;
        }
        let start = keys::message(id, 0);
        let end = keys::message(id, Uid::MAX);
        t.messages.delete_range(txn, &inclusive(&start, &end))?;
        super::modseq::forget_mailbox(t, txn, id)?;
        t.mailboxes.delete(txn, &keys::mailbox(id))?;
    }
    let prefix = keys::user_id(user.id);
    for table in [&t.mailbox_names, &t.subscriptions, &t.metadata, &t.urlauth_keys] {
        delete_prefix(table, txn, &prefix)?;
    }
    t.usage.delete(txn, &prefix)?;
    t.user_ids.delete(txn, &prefix)?;
    t.users.delete(txn, name.as_bytes())?;
    Ok(())
}
