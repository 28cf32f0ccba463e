//! The store a front end's sessions see: none. Before login a protocol session reads nothing,
//! but its interface asks for a store; this one holds nothing.

use crate::imap::view::{MailRead, MessageBytes};
use crate::mime::Structure;
use crate::store::records::{BodyId, MailboxId, Uid, Usage, UserId};
use crate::store::urlauth::AccessKey;
use crate::store::{Mailbox, MessageRecord, StoreError, User};

pub struct NoStore;

impl MailRead for NoStore {
    fn user(&self, _: &str) -> Result<Option<User>, StoreError> {
        Ok(None)
    }
    fn mailboxes(&self, _: UserId) -> Result<Vec<Mailbox>, StoreError> {
        Ok(Vec::new())
    }
    fn metadata(&self, _: UserId, _: MailboxId) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(Vec::new())
    }
    fn subscriptions(&self, _: UserId) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
    fn mailbox(&self, _: UserId, _: &str) -> Result<Option<Mailbox>, StoreError> {
        Ok(None)
    }
    fn mailbox_by_id(&self, _: MailboxId) -> Result<Option<Mailbox>, StoreError> {
        Ok(None)
    }
    fn each_message(&self, _: MailboxId, _: &mut dyn FnMut(Uid, &MessageRecord)) -> Result<(), StoreError> {
        Ok(())
    }
    fn message(&self, _: MailboxId, _: Uid) -> Result<Option<MessageRecord>, StoreError> {
        Ok(None)
    }
    fn structure(&self, _: BodyId) -> Result<Option<Structure>, StoreError> {
        Ok(None)
    }
    fn body(&self, _: BodyId) -> Result<Box<dyn MessageBytes + '_>, StoreError> {
        Ok(Box::new(Vec::new()))
    }
    fn expunged_since(&self, _: &Mailbox, _: u64) -> Result<crate::store::modseq::Expunged, StoreError> {
        Ok(crate::store::modseq::Expunged::Known(Vec::new()))
    }
    fn usage(&self, _: UserId) -> Result<Usage, StoreError> {
        Ok(Usage::default())
    }
    fn urlauth_key(&self, _: UserId, _: MailboxId) -> Result<Option<AccessKey>, StoreError> {
        Ok(None)
    }
}
