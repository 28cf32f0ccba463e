//! The URLAUTH mailbox access keys (RFC 4467 §3): one secret per user and mailbox, keyed into
//! the HMAC that authorizes an IMAP URL of that mailbox (`imap::urlauth`).
//!
//! Keys are (user, mailbox id) → 32 octets from the operating system's random source, made on
//! the first GENURLAUTH for a mailbox, replaced by RESETKEY (which revokes every URL
//! authorized with the old one), and removed with their mailbox or their user. A mailbox
//! deleted and created again has a new id, so the URLs of the old one never verify. No
//! protocol ever shows a key.

use heed::RwTxn;

use super::records::{keys, MailboxId, UserId};
use super::{StoreError, Tables};

/// Octets in a mailbox access key: RFC 4467 §3 asks for at least 128 bits; HMAC-SHA256 is
/// keyed best with a full block of its output size.
pub const KEY_LEN: usize = 32;

/// One mailbox access key.
pub type AccessKey = [u8; KEY_LEN];

fn fresh() -> AccessKey {
    // rand's thread generator is a CSPRNG seeded from the operating system.
    rand::random()
}

pub(crate) fn get(
    t: &Tables,
    txn: &heed::RoTxn<'_, heed::WithoutTls>,
    user: UserId,
    mailbox: MailboxId,
) -> Result<Option<AccessKey>, StoreError> {
    match t.urlauth_keys.get(txn, &keys::user_mailbox(user, mailbox))? {
        None => Ok(None),
        Some(v) => Ok(Some(v.try_into().map_err(|_| StoreError::Corrupt("urlauth_keys"))?)),
    }
}

/// The keys of `mailboxes`, in order, each made first where it is missing (GENURLAUTH).
pub(crate) fn get_or_make(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    user: UserId,
    mailboxes: &[MailboxId],
) -> Result<Vec<AccessKey>, StoreError> {
    let mut out = Vec::with_capacity(mailboxes.len());
    for &mailbox in mailboxes {
        let access_key = match get(t, txn, user, mailbox)? {
            Some(existing) => existing,
            None => {
                let made = fresh();
                t.urlauth_keys.put(txn, &keys::user_mailbox(user, mailbox), &made)?;
                made
            }
        };
        out.push(access_key);
    }
    Ok(out)
}

/// RESETKEY (RFC 4467 §6.1): a new key for `mailbox`, or, without one, no key left for any of
/// `user`'s mailboxes (each gets a new one at its next GENURLAUTH).
pub(crate) fn reset(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    user: UserId,
    mailbox: Option<MailboxId>,
) -> Result<(), StoreError> {
    match mailbox {
        Some(mailbox) => t.urlauth_keys.put(txn, &keys::user_mailbox(user, mailbox), &fresh())?,
        None => super::txn::delete_prefix(&t.urlauth_keys, txn, &keys::user_id(user))?,
    }
    Ok(())
}

/// Removes the key of one mailbox (DELETE).
pub(crate) fn remove(t: &Tables, txn: &mut RwTxn<'_>, user: UserId, mailbox: MailboxId) -> Result<(), StoreError> {
    t.urlauth_keys.delete(txn, &keys::user_mailbox(user, mailbox))?;
    Ok(())
}
