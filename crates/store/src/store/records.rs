//! The records kept in LMDB and their byte encodings.
//!
//! Keys are big-endian so LMDB's byte order is numeric order: all messages of a mailbox are one
//! contiguous key range, sorted by UID. Hot records (messages) have a fixed binary layout; rare
//! ones (users, mailboxes) are JSON, which keeps them easy to extend.

use serde::{Deserialize, Serialize};

pub type UserId = u32;
pub type MailboxId = u64;
pub type BodyId = u64;
pub type Uid = u32;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub scram: ScramCredentials,
    pub admin: bool,
    pub pop: bool,
    pub imap: bool,
    /// SMTP submission switch; records written before it existed have it on.
    #[serde(default = "on")]
    pub smtp: bool,
    /// Storage quota in bytes (RFC 9208 STORAGE is in KiB; converted at the edge).
    pub quota: Option<u64>,
    /// The back end holding this mailbox, for proxies (DESIGN.md §7). None: this server.
    pub home: Option<String>,
    /// IMAP extensions hidden from and refused to this user (`user set --imap-disable`),
    /// as capability names in upper case.
    #[serde(default)]
    pub imap_disabled: Vec<String>,
}

fn on() -> bool {
    true
}

impl User {
    /// A new account as `user add` makes it: every protocol on, no quota, served here.
    pub fn new(id: UserId, name: String, password_hash: String, scram: ScramCredentials) -> User {
        User {
            id,
            name,
            password_hash,
            scram,
            admin: false,
            pop: true,
            imap: true,
            smtp: true,
            quota: None,
            home: None,
            imap_disabled: Vec::new(),
        }
    }
}

/// RFC 6154 special-use attributes of the folders every user starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpecialUse {
    Drafts,
    Sent,
    Trash,
    Junk,
    Archive,
}

pub const DEFAULT_MAILBOXES: [(&str, Option<SpecialUse>); 6] = [
    ("INBOX", None),
    ("Drafts", Some(SpecialUse::Drafts)),
    ("Sent", Some(SpecialUse::Sent)),
    ("Trash", Some(SpecialUse::Trash)),
    ("Junk", Some(SpecialUse::Junk)),
    ("Archive", Some(SpecialUse::Archive)),
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mailbox {
    pub id: MailboxId,
    pub user_id: UserId,
    pub name: String,
    pub uid_validity: u32,
    pub uid_next: Uid,
    pub highest_modseq: u64,
    pub special_use: Option<SpecialUse>,
    /// Only in records of stores from before subscriptions had their own table; moved there
    /// when the store opens, and false from then on.
    #[serde(default)]
    pub subscribed: bool,
    pub messages: u32,
    pub size: u64,
    /// RFC 3501 §2.3.2: UIDs from here on are \Recent for the next session that selects.
    #[serde(default)]
    pub first_recent_uid: Uid,
    /// Deleted while it had children: the name stays for the hierarchy, holding no mail.
    #[serde(default)]
    pub noselect: bool,
    /// Entries in the expunge log (`modseq`), which keeps a bounded number.
    #[serde(default)]
    pub expunge_log: u32,
    /// The log forgot the expunges at or below this modseq.
    #[serde(default)]
    pub expunge_floor: u64,
    /// Its messages by flag (`store::unseen`), so SELECT and STATUS need not read them.
    #[serde(default)]
    pub flag_counts: FlagCounts,
    /// Brought over from another store (`restore`): the source's state at the end of the last
    /// complete pass, where the next pass starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copied: Option<CopyMark>,
}

/// How far a mailbox brought from another store is complete (`restore`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyMark {
    /// The source's HIGHESTMODSEQ: every change at or below it is here.
    pub modseq: u64,
    /// The source's UIDNEXT: every message below it that the source still holds is here.
    pub uid_next: Uid,
}

/// How many of a mailbox's messages are unseen and \Deleted, and the keywords set on them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagCounts {
    pub unseen: u32,
    pub deleted: u32,
    /// Each keyword set on some message, with on how many: matched without regard to case
    /// (RFC 9051 §2.3.2), spelt as it was first set.
    pub keywords: Vec<(String, u32)>,
}

impl FlagCounts {
    /// Counts `record` in.
    pub fn add(&mut self, record: &MessageRecord) {
        self.unseen += u32::from(record.flags & flags::SEEN == 0);
        self.deleted += u32::from(record.flags & flags::DELETED != 0);
        for keyword in &record.keywords {
            match self.keywords.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(keyword)) {
                Some((_, n)) => *n += 1,
                None => self.keywords.push((keyword.clone(), 1)),
            }
        }
    }

    /// Counts `record` out; a keyword on no message any more is gone.
    pub fn remove(&mut self, record: &MessageRecord) {
        self.unseen = self.unseen.saturating_sub(u32::from(record.flags & flags::SEEN == 0));
        self.deleted = self
            .deleted
            .saturating_sub(u32::from(record.flags & flags::DELETED != 0));
        for keyword in &record.keywords {
            if let Some(i) = self.keywords.iter().position(|(k, _)| k.eq_ignore_ascii_case(keyword)) {
                self.keywords[i].1 -= 1;
                if self.keywords[i].1 == 0 {
                    self.keywords.remove(i);
                }
            }
        }
    }

    /// The keywords in use.
    pub fn keywords(&self) -> Vec<String> {
        self.keywords.iter().map(|(k, _)| k.clone()).collect()
    }

    /// The same counts, whatever the order and spelling of the keywords.
    pub fn agrees(&self, other: &FlagCounts) -> bool {
        let folded = |c: &FlagCounts| {
            let mut k: Vec<(String, u32)> = c.keywords.iter().map(|(k, n)| (k.to_ascii_lowercase(), *n)).collect();
            k.sort();
            (c.unseen, c.deleted, k)
        };
        folded(self) == folded(other)
    }
}

impl Mailbox {
    /// A mailbox as CREATE makes it: empty, its first UID and modseq still to come.
    pub fn new(
        id: MailboxId,
        user_id: UserId,
        name: &str,
        uid_validity: u32,
        special_use: Option<SpecialUse>,
    ) -> Mailbox {
        Mailbox {
            id,
            user_id,
            name: name.to_owned(),
            uid_validity,
            uid_next: 1,
            highest_modseq: 1,
            special_use,
            subscribed: false,
            messages: 0,
            size: 0,
            first_recent_uid: 1,
            noselect: false,
            expunge_log: 0,
            expunge_floor: 0,
            flag_counts: FlagCounts::default(),
            copied: None,
        }
    }
}

/// How a STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagMode {
    Replace,
    Add,
    Remove,
}

/// System flags as bits; keywords are stored by name beside them.
pub mod flags {
    pub const SEEN: u8 = 1;
    pub const ANSWERED: u8 = 2;
    pub const FLAGGED: u8 = 4;
    pub const DELETED: u8 = 8;
    pub const DRAFT: u8 = 16;
    /// Internal, never shown to clients: no line of the message starts with '.', so POP3
    /// sends it without byte-stuffing or scanning (RFC 1939 §3).
    pub const DOT_FREE: u8 = 0x80;
    /// The bits that are the message's own properties rather than flags a client sets.
    pub const INTERNAL: u8 = DOT_FREE;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub flags: u8,
    pub internal_date: i64,
    pub save_date: i64,
    pub size: u64,
    pub modseq: u64,
    pub body_id: BodyId,
    pub keywords: Vec<String>,
}

const MESSAGE_FIXED: usize = 1 + 8 + 8 + 8 + 8 + 8 + 2;

impl MessageRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MESSAGE_FIXED + 16 * self.keywords.len());
        out.push(self.flags);
        out.extend_from_slice(&self.internal_date.to_be_bytes());
        out.extend_from_slice(&self.save_date.to_be_bytes());
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.modseq.to_be_bytes());
        out.extend_from_slice(&self.body_id.to_be_bytes());
        let count = u16::try_from(self.keywords.len()).expect("keywords are capped far below 65k");
        out.extend_from_slice(&count.to_be_bytes());
        for k in &self.keywords {
            let len = u8::try_from(k.len()).expect("keywords are capped at 255 bytes on input");
            out.push(len);
            out.extend_from_slice(k.as_bytes());
        }
        out
    }

    pub fn decode(b: &[u8]) -> Option<MessageRecord> {
        if b.len() < MESSAGE_FIXED {
            return None;
        }
        let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let count = u16::from_be_bytes([b[41], b[42]]) as usize;
        let mut keywords = Vec::with_capacity(count);
        let mut rest = &b[MESSAGE_FIXED..];
        for _ in 0..count {
            let (&len, tail) = rest.split_first()?;
            let word = tail.get(..len as usize)?;
            keywords.push(String::from_utf8(word.to_vec()).ok()?);
            rest = &tail[len as usize..];
        }
        Some(MessageRecord {
            flags: b[0],
            internal_date: u64_at(1) as i64,
            save_date: u64_at(9) as i64,
            size: u64_at(17),
            modseq: u64_at(25),
            body_id: u64_at(33),
            keywords,
        })
    }
}

/// Per-user usage, kept beside the user for quota checks without a scan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub messages: u64,
}

impl Usage {
    pub fn encode(&self) -> [u8; 16] {
        let mut out = [0; 16];
        out[..8].copy_from_slice(&self.bytes.to_be_bytes());
        out[8..].copy_from_slice(&self.messages.to_be_bytes());
        out
    }
    pub fn decode(b: &[u8]) -> Usage {
        let get = |r: std::ops::Range<usize>| b.get(r).and_then(|s| s.try_into().ok()).map_or(0, u64::from_be_bytes);
        Usage {
            bytes: get(0..8),
            messages: get(8..16),
        }
    }
}

/// What the server keeps to check a SCRAM-SHA-256 login (RFC 5802 §3): the salt, the
/// iteration count and the two keys derived from the password, never the password itself.
/// `auth::scram` derives them and runs the exchange.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScramCredentials {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

#[cfg(test)]
impl ScramCredentials {
    /// Keys no password derives: the store's own tests never check a login.
    pub fn placeholder() -> ScramCredentials {
        ScramCredentials {
            salt: b"salt".to_vec(),
            iterations: 1,
            stored_key: [0; 32],
            server_key: [0; 32],
        }
    }
}

pub mod keys {
    use super::*;

    pub fn user_id(id: UserId) -> [u8; 4] {
        id.to_be_bytes()
    }

    pub fn mailbox(id: MailboxId) -> [u8; 8] {
        id.to_be_bytes()
    }

    /// (user, mailbox id): the prefix of one mailbox's URLAUTH key and metadata entries.
    pub fn user_mailbox(user: UserId, mailbox: MailboxId) -> [u8; 12] {
        let mut k = [0; 12];
        k[..4].copy_from_slice(&user.to_be_bytes());
        k[4..].copy_from_slice(&mailbox.to_be_bytes());
        k
    }

    /// (user, name) → mailbox id index. Names are compared byte for byte; INBOX is
    /// canonicalised to upper case before it gets here.
    pub fn mailbox_name(user: UserId, name: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(4 + name.len());
        k.extend_from_slice(&user.to_be_bytes());
        k.extend_from_slice(name.as_bytes());
        k
    }

    pub fn message(mailbox: MailboxId, uid: Uid) -> [u8; 12] {
        let mut k = [0; 12];
        k[..8].copy_from_slice(&mailbox.to_be_bytes());
        k[8..].copy_from_slice(&uid.to_be_bytes());
        k
    }

    pub fn message_uid(key: &[u8]) -> Uid {
        u32::from_be_bytes(key[8..12].try_into().expect("message keys are 12 bytes"))
    }

    pub fn expunged(mailbox: MailboxId, modseq: u64) -> [u8; 16] {
        let mut k = [0; 16];
        k[..8].copy_from_slice(&mailbox.to_be_bytes());
        k[8..].copy_from_slice(&modseq.to_be_bytes());
        k
    }

    pub fn expunged_modseq(key: &[u8]) -> Option<u64> {
        Some(u64::from_be_bytes(key.get(8..16)?.try_into().ok()?))
    }

    /// (mailbox, modseq, UID): the modseq index, so a mailbox's changes since a modseq are
    /// one range.
    pub fn modseq(mailbox: MailboxId, modseq: u64, uid: Uid) -> [u8; 20] {
        let mut k = [0; 20];
        k[..8].copy_from_slice(&mailbox.to_be_bytes());
        k[8..16].copy_from_slice(&modseq.to_be_bytes());
        k[16..].copy_from_slice(&uid.to_be_bytes());
        k
    }

    /// The modseq and UID of a modseq index key.
    pub fn modseq_entry(key: &[u8]) -> Option<(u64, Uid)> {
        let modseq = u64::from_be_bytes(key.get(8..16)?.try_into().ok()?);
        Some((modseq, u32::from_be_bytes(key.get(16..20)?.try_into().ok()?)))
    }

    pub fn chunk(body: BodyId, n: u32) -> [u8; 12] {
        let mut k = [0; 12];
        k[..8].copy_from_slice(&body.to_be_bytes());
        k[8..].copy_from_slice(&n.to_be_bytes());
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_record_round_trips() {
        let r = MessageRecord {
            flags: flags::SEEN | flags::DRAFT,
            internal_date: -5,
            save_date: 1_700_000_000,
            size: 123_456,
            modseq: 9,
            body_id: 77,
            keywords: vec!["$Forwarded".into(), "work".into()],
        };
        assert_eq!(MessageRecord::decode(&r.encode()), Some(r));
    }

    #[test]
    fn truncated_records_do_not_decode() {
        let r = MessageRecord {
            flags: 0,
            internal_date: 0,
            save_date: 0,
            size: 1,
            modseq: 1,
            body_id: 1,
            keywords: vec!["x".into()],
        };
        let bytes = r.encode();
        for cut in 0..bytes.len() {
            assert_eq!(MessageRecord::decode(&bytes[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn message_keys_sort_by_mailbox_then_uid() {
        assert!(keys::message(1, 300) < keys::message(2, 1));
        assert!(keys::message(1, 2) < keys::message(1, 256));
        assert_eq!(keys::message_uid(&keys::message(5, 42)), 42);
    }
}
