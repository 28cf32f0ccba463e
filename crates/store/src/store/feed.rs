//! The change feed: after each commit the writer publishes what changed, in typed form, to
//! every subscriber (one per core). A core then wakes only the sessions that have the mailbox
//! selected. The feed never carries protocol text.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::records::{MailboxId, Uid, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    Added {
        uid: Uid,
    },
    Expunged {
        uids: Vec<Uid>,
    },
    Flags {
        uid: Uid,
        modseq: u64,
    },
    MailboxCreated,
    MailboxDeleted,
    /// The mailbox (and any below it) has a new name.
    MailboxRenamed,
    /// A name was subscribed or unsubscribed (`mailbox` is 0: a name need not exist).
    Subscription,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Whose mailbox: NOTIFY sessions watch all of a user's mailboxes.
    pub user: UserId,
    pub mailbox: MailboxId,
    /// The mailbox's HIGHESTMODSEQ after this change.
    pub highest_modseq: u64,
    pub kind: ChangeKind,
}

#[derive(Default)]
pub(crate) struct Feed {
    subscribers: Mutex<Vec<UnboundedSender<Arc<[Change]>>>>,
}

impl Feed {
    pub(crate) fn subscribe(&self) -> UnboundedReceiver<Arc<[Change]>> {
        let (tx, rx) = unbounded_channel();
        self.lock().push(tx);
        rx
    }

    /// Sends one commit's changes to every live subscriber and forgets the dead ones.
    pub(crate) fn publish(&self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let changes: Arc<[Change]> = changes.into();
        self.lock().retain(|s| s.send(changes.clone()).is_ok());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<UnboundedSender<Arc<[Change]>>>> {
        // A panic while holding this lock cannot leave the Vec inconsistent.
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }
}
