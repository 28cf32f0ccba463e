//! Read views of the store. A `Snapshot` is one LMDB read transaction: consistent, lock-free,
//! and borrowing straight from the memory map. Keep it short-lived: never across an await that
//! waits on a client.

use std::rc::Rc;

use heed::{RoTxn, WithoutTls};

use super::records::{keys, BodyId, Mailbox, MailboxId, MessageRecord, Uid, Usage, User, UserId};
use super::zero_copy::MappedChunks;
use super::{Inner, StoreError, Tables};
use crate::mime::Structure;

pub struct Snapshot<'s> {
    /// Counted: body bytes handed out by `mapped_body` hold it past the snapshot.
    pub(super) txn: Rc<RoTxn<'static, WithoutTls>>,
    pub(super) t: &'s Tables,
}

impl<'s> Snapshot<'s> {
    pub(crate) fn new(inner: &'s Inner) -> Result<Snapshot<'s>, StoreError> {
        Ok(Snapshot {
            txn: Rc::new(inner.env.read_txn()?),
            t: &inner.t,
        })
    }

    pub fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        get_user(self.t, &self.txn, name)
    }

    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        let mut out = Vec::new();
        for item in self.t.users.iter(&self.txn)? {
            let (_, v) = item?;
            out.push(serde_json::from_slice(v).map_err(|_| StoreError::Corrupt("users"))?);
        }
        Ok(out)
    }

    pub fn usage(&self, user: UserId) -> Result<Usage, StoreError> {
        get_usage(self.t, &self.txn, user)
    }

    pub fn mailbox(&self, user: UserId, name: &str) -> Result<Option<Mailbox>, StoreError> {
        get_mailbox_by_name(self.t, &self.txn, user, name)
    }

    pub fn mailbox_by_id(&self, id: MailboxId) -> Result<Option<Mailbox>, StoreError> {
        get_mailbox(self.t, &self.txn, id)
    }

    /// `user`'s METADATA entries of one mailbox (0: the server's), in name order.
    pub fn metadata(&self, user: UserId, mailbox: MailboxId) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        super::metadata::entries(self.t, &self.txn, user, mailbox)
    }

    /// The URLAUTH access key of `user`'s `mailbox`, if GENURLAUTH made one (RFC 4467 §3).
    pub fn urlauth_key(
        &self,
        user: UserId,
        mailbox: MailboxId,
    ) -> Result<Option<super::urlauth::AccessKey>, StoreError> {
        super::urlauth::get(self.t, &self.txn, user, mailbox)
    }

    /// The names `user` subscribed to, in byte order; they need not exist.
    pub fn subscriptions(&self, user: UserId) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for item in self.t.subscriptions.prefix_iter(&self.txn, &keys::user_id(user))? {
            let (k, _) = item?;
            out.push(String::from_utf8_lossy(&k[4..]).into_owned());
        }
        Ok(out)
    }

    pub fn mailboxes(&self, user: UserId) -> Result<Vec<Mailbox>, StoreError> {
        let mut out = Vec::new();
        for item in self.t.mailbox_names.prefix_iter(&self.txn, &keys::user_id(user))? {
            let (_, id) = item?;
            let id = MailboxId::from_be_bytes(id.try_into().map_err(|_| StoreError::Corrupt("mailbox_names"))?);
            if let Some(m) = get_mailbox(self.t, &self.txn, id)? {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Every message of a mailbox in UID order.
    pub fn messages(
        &self,
        mailbox: MailboxId,
    ) -> Result<impl Iterator<Item = Result<(Uid, MessageRecord), StoreError>> + '_, StoreError> {
        self.messages_from(mailbox, 0)
    }

    /// The messages of a mailbox from UID `from` up, in UID order: an LMDB range over that
    /// mailbox's keys only, so a scan resumed at `from` reads nothing below it.
    pub fn messages_from(
        &self,
        mailbox: MailboxId,
        from: Uid,
    ) -> Result<impl Iterator<Item = Result<(Uid, MessageRecord), StoreError>> + '_, StoreError> {
        // Message keys are the mailbox id then the UID, both big-endian: the mailbox's messages
        // from `from` are exactly the keys between these two.
        let (start, end) = (keys::message(mailbox, from), keys::message(mailbox, Uid::MAX));
        let iter = self.t.messages.range(&self.txn, &super::txn::inclusive(&start, &end))?;
        Ok(iter.map(|item| {
            let (k, v) = item?;
            let record = MessageRecord::decode(v).ok_or(StoreError::Corrupt("messages"))?;
            Ok((keys::message_uid(k), record))
        }))
    }

    /// The UIDs of a mailbox in order, from the keys alone: no record is decoded.
    pub fn message_uids(
        &self,
        mailbox: MailboxId,
    ) -> Result<impl Iterator<Item = Result<Uid, StoreError>> + '_, StoreError> {
        let (start, end) = (keys::message(mailbox, 0), keys::message(mailbox, Uid::MAX));
        let iter = self.t.messages.range(&self.txn, &super::txn::inclusive(&start, &end))?;
        Ok(iter.map(|item| Ok(keys::message_uid(item?.0))))
    }

    /// The POP3 UIDLs imported messages of `mailbox` keep from the server they came from.
    pub fn pop3_uidls(&self, mailbox: MailboxId) -> Result<std::collections::HashMap<Uid, String>, StoreError> {
        let (start, end) = (keys::message(mailbox, 0), keys::message(mailbox, Uid::MAX));
        let mut out = std::collections::HashMap::new();
        for item in self
            .t
            .pop3_uidls
            .range(&self.txn, &super::txn::inclusive(&start, &end))?
        {
            let (k, v) = item?;
            let uidl = String::from_utf8(v.to_vec()).map_err(|_| StoreError::Corrupt("pop3_uidls"))?;
            out.insert(keys::message_uid(k), uidl);
        }
        Ok(out)
    }

    pub fn message(&self, mailbox: MailboxId, uid: Uid) -> Result<Option<MessageRecord>, StoreError> {
        match self.t.messages.get(&self.txn, &keys::message(mailbox, uid))? {
            None => Ok(None),
            Some(v) => Ok(Some(MessageRecord::decode(v).ok_or(StoreError::Corrupt("messages"))?)),
        }
    }

    /// The body's chunks in order, starting at chunk `from`, borrowed from the map.
    pub fn body(&self, body: BodyId, from: u32) -> Result<BodyChunks<'_>, StoreError> {
        let start = keys::chunk(body, from);
        let end = keys::chunk(body + 1, 0);
        let range = (
            std::ops::Bound::Included(&start[..]),
            std::ops::Bound::Excluded(&end[..]),
        );
        Ok(BodyChunks {
            iter: self.t.bodies.range(&self.txn, &range)?,
        })
    }

    /// The body's chunks in order, each still in the map and valid after this snapshot is
    /// dropped (`MappedBytes` holds the transaction): for output that refers to them.
    pub fn mapped_body(&self, body: BodyId) -> Result<MappedChunks<'_>, StoreError> {
        MappedChunks::new(&self.txn, &self.t.bodies, body, 0)
    }

    /// UIDs expunged from `mailbox` at modseqs above `since` (RFC 7162 VANISHED (EARLIER)).
    pub fn expunged_since(&self, mailbox: &Mailbox, since: u64) -> Result<super::modseq::Expunged, StoreError> {
        super::modseq::expunged_since(self.t, &self.txn, mailbox, since)
    }

    /// The expunge log entries of `mailbox` above `since` with their modseqs; `None` when the
    /// log forgot some (a mailbox move copies the log).
    pub fn expunge_log_since(
        &self,
        mailbox: &Mailbox,
        since: u64,
    ) -> Result<Option<super::modseq::LogEntries>, StoreError> {
        super::modseq::log_since(self.t, &self.txn, mailbox, since)
    }

    /// UIDs of `mailbox` whose modseq is above `since`, ascending, from the modseq index:
    /// proportional to what changed, not to the mailbox.
    pub fn changed_since(&self, mailbox: MailboxId, since: u64) -> Result<Vec<Uid>, StoreError> {
        super::modseq::changed_since(self.t, &self.txn, mailbox, since)
    }

    /// Calls `f` with the UIDs of `mailbox`'s messages without \Seen, ascending, until it
    /// returns false (the unseen index: no message is read).
    pub fn each_unseen(&self, mailbox: MailboxId, f: &mut dyn FnMut(Uid) -> bool) -> Result<(), StoreError> {
        super::unseen::each(self.t, &self.txn, mailbox, f)
    }

    pub fn structure(&self, body: BodyId) -> Result<Option<Structure>, StoreError> {
        match self.t.structures.get(&self.txn, &body.to_be_bytes())? {
            None => Ok(None),
            Some(v) => Structure::from_bytes(v)
                .map(Some)
                .map_err(|_| StoreError::Corrupt("structures")),
        }
    }
}

pub struct BodyChunks<'t> {
    iter: heed::RoRange<'t, heed::types::Bytes, heed::types::Bytes>,
}

impl<'t> Iterator for BodyChunks<'t> {
    type Item = Result<&'t [u8], StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.iter.next().map(|r| r.map(|(_, v)| v).map_err(StoreError::from))
    }
}

pub(crate) fn get_user(t: &Tables, txn: &RoTxn<'_, WithoutTls>, name: &str) -> Result<Option<User>, StoreError> {
    match t.users.get(txn, name.as_bytes())? {
        None => Ok(None),
        Some(v) => Ok(Some(
            serde_json::from_slice(v).map_err(|_| StoreError::Corrupt("users"))?,
        )),
    }
}

pub(crate) fn get_user_name(t: &Tables, txn: &RoTxn<'_, WithoutTls>, id: UserId) -> Result<Option<String>, StoreError> {
    Ok(t.user_ids
        .get(txn, &keys::user_id(id))?
        .map(|v| String::from_utf8_lossy(v).into_owned()))
}

pub(crate) fn get_usage(t: &Tables, txn: &RoTxn<'_, WithoutTls>, user: UserId) -> Result<Usage, StoreError> {
    Ok(t.usage
        .get(txn, &keys::user_id(user))?
        .map(Usage::decode)
        .unwrap_or_default())
}

pub(crate) fn get_mailbox(
    t: &Tables,
    txn: &RoTxn<'_, WithoutTls>,
    id: MailboxId,
) -> Result<Option<Mailbox>, StoreError> {
    match t.mailboxes.get(txn, &keys::mailbox(id))? {
        None => Ok(None),
        Some(v) => Ok(Some(
            serde_json::from_slice(v).map_err(|_| StoreError::Corrupt("mailboxes"))?,
        )),
    }
}

pub(crate) fn get_mailbox_by_name(
    t: &Tables,
    txn: &RoTxn<'_, WithoutTls>,
    user: UserId,
    name: &str,
) -> Result<Option<Mailbox>, StoreError> {
    let name = canonical_mailbox_name(name);
    match t.mailbox_names.get(txn, &keys::mailbox_name(user, name))? {
        None => Ok(None),
        Some(id) => {
            let id = MailboxId::from_be_bytes(id.try_into().map_err(|_| StoreError::Corrupt("mailbox_names"))?);
            get_mailbox(t, txn, id)
        }
    }
}

/// RFC 3501 §5.1: INBOX is case-insensitive; every other name is compared as is.
pub fn canonical_mailbox_name(name: &str) -> &str {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX"
    } else {
        name
    }
}
