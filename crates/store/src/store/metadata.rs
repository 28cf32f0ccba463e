//! Annotations on a user's mailboxes and on the server as that user sees it (IMAP METADATA,
//! RFC 5464): entries named `/private/...` or `/shared/...` holding octet strings. Clients keep
//! push tokens, colours and settings here.
//!
//! Keys are (user, mailbox id or 0 for server entries, entry name in lower case), so one
//! mailbox's entries, or the entries below one name, are a key range. Entry names compare
//! case-insensitively (RFC 5464 §3.2); the stored name is in the case it was last set in. A
//! mailbox's entries go with it (DELETE), and follow it across RENAME (the id stays).

use heed::RwTxn;

use super::records::{keys, MailboxId, UserId};
use super::{StoreError, Tables};

/// The largest value one entry may hold (RFC 5464 §4.3 `[METADATA MAXSIZE n]`).
pub const MAX_VALUE: usize = 64 * 1024;
/// Entries one mailbox (or the server) may hold for one user (`[METADATA TOOMANY]`).
pub const MAX_ENTRIES: usize = 256;

/// Why a SETMETADATA was refused; nothing of it was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataRefusal {
    #[error("a value is larger than {0} octets")]
    MaxSize(usize),
    #[error("too many entries")]
    TooMany,
}

/// One entry's key: its mailbox's prefix (`keys::user_mailbox`; mailbox 0: the server's),
/// then the name in lower case.
fn key(user: UserId, mailbox: MailboxId, entry: &str) -> Vec<u8> {
    let prefix = keys::user_mailbox(user, mailbox);
    let mut k = Vec::with_capacity(prefix.len() + entry.len());
    k.extend_from_slice(&prefix);
    k.extend_from_slice(entry.to_ascii_lowercase().as_bytes());
    k
}

/// A stored value: the entry's name as set, then its value.
fn encode(entry: &str, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(2 + entry.len() + value.len());
    v.extend_from_slice(&(entry.len() as u16).to_be_bytes());
    v.extend_from_slice(entry.as_bytes());
    v.extend_from_slice(value);
    v
}

fn decode(v: &[u8]) -> Option<(String, Vec<u8>)> {
    let n = u16::from_be_bytes(v.get(..2)?.try_into().ok()?) as usize;
    let name = std::str::from_utf8(v.get(2..2 + n)?).ok()?.to_owned();
    Some((name, v[2 + n..].to_vec()))
}

/// Every entry of one mailbox (0: the server), in name order, as (name, value).
pub(crate) fn entries(
    t: &Tables,
    txn: &heed::RoTxn<'_, heed::WithoutTls>,
    user: UserId,
    mailbox: MailboxId,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let mut out = Vec::new();
    for item in t.metadata.prefix_iter(txn, &keys::user_mailbox(user, mailbox))? {
        let (_, v) = item?;
        out.push(decode(v).ok_or(StoreError::Corrupt("metadata"))?);
    }
    Ok(out)
}

/// SETMETADATA: every entry set (`Some`) or removed (`None`), or none of them (RFC 5464
/// §4.3).
pub(crate) fn set(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    user: UserId,
    mailbox: MailboxId,
    changes: &[(String, Option<Vec<u8>>)],
) -> Result<(), StoreError> {
    if let Some(big) = changes.iter().filter_map(|(_, v)| v.as_ref()).map(Vec::len).max() {
        if big > MAX_VALUE {
            return Err(StoreError::Metadata(MetadataRefusal::MaxSize(MAX_VALUE)));
        }
    }
    for (entry, value) in changes {
        let k = key(user, mailbox, entry);
        match value {
            Some(v) => t.metadata.put(txn, &k, &encode(entry, v))?,
            None => {
                t.metadata.delete(txn, &k)?;
            }
        }
    }
    let count = t.metadata.prefix_iter(txn, &keys::user_mailbox(user, mailbox))?.count();
    if count > MAX_ENTRIES {
        // An error: the writer aborts this request's nested transaction, so nothing stays.
        return Err(StoreError::Metadata(MetadataRefusal::TooMany));
    }
    Ok(())
}

/// Removes every entry of a mailbox (0: the server's) of `user`.
pub(crate) fn remove_all(t: &Tables, txn: &mut RwTxn<'_>, user: UserId, mailbox: MailboxId) -> Result<(), StoreError> {
    super::txn::delete_prefix(&t.metadata, txn, &keys::user_mailbox(user, mailbox))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_the_name_as_set() {
        let v = encode("/private/Comment", b"\0bin\xff");
        assert_eq!(decode(&v), Some(("/private/Comment".into(), b"\0bin\xff".to_vec())));
        assert_eq!(decode(b"\0"), None);
        assert_eq!(key(1, 2, "/Private/X"), key(1, 2, "/private/x"));
    }
}
