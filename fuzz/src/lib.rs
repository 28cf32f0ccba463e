//! What the fuzz targets share: a reader of the fuzzer's bytes as choices, an in-memory mail
//! store for driving IMAP sessions past login, sample messages, and checks of the server's IMAP
//! output.

use std::cell::RefCell;
use std::sync::OnceLock;

use ringmail::auth::scram::{ScramCredentials, ScramKeys};
use ringmail::imap::view::{MailRead, MessageBytes};
use ringmail::mime::Structure;
use ringmail::store::modseq::Expunged;
use ringmail::store::records::{flags, BodyId, MailboxId, SpecialUse, Uid, Usage, UserId};
use ringmail::store::urlauth::AccessKey;
use ringmail::store::{
    FlagMode, FlagsChanged, Mailbox, MessageRecord, NewMessage, StoreError, User, WriteOp, WriteOutcome,
};

/// The fuzzer's bytes read front to back as choices; past the end every choice is zero.
pub struct Choices<'a> {
    data: &'a [u8],
}

impl<'a> Choices<'a> {
    pub fn new(data: &'a [u8]) -> Choices<'a> {
        Choices { data }
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// The next `n` bytes (fewer at the end).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// Small messages of the shapes a mailbox holds: plain text, multipart/alternative with
/// quoted-printable and base64, an attached message, RFC 2047 encoded-words, a group address,
/// binary content, a header without a body.
pub const MESSAGES: &[&str] = &[
    "From: Alice <alice@example.org>\r\n\
     To: bob@example.com\r\n\
     Subject: Lunch?\r\n\
     Date: Tue, 1 Apr 2025 12:00:00 +0200\r\n\
     Message-ID: <lunch-1@example.org>\r\n\
     \r\n\
     Shall we meet at noon?\r\n\
     .hidden dot line\r\n",
    "From: =?UTF-8?B?w4lsb8Ovc2U=?= <eloise@example.net>\r\n\
     To: bob@example.com, \"Carol, C.\" <carol@example.com>\r\n\
     Cc: team: dave@example.com, erin@example.com;\r\n\
     Subject: =?ISO-8859-1?Q?R=E9union?= =?UTF-8?Q?_d=C3=A9cal=C3=A9e?=\r\n\
     Date: Wed, 2 Apr 2025 09:30:00 -0500 (EST)\r\n\
     In-Reply-To: <lunch-1@example.org>\r\n\
     References: <lunch-0@example.org> <lunch-1@example.org>\r\n\
     MIME-Version: 1.0\r\n\
     Content-Type: multipart/alternative; boundary=\"b1\"\r\n\
     \r\n\
     preamble\r\n\
     --b1\r\n\
     Content-Type: text/plain; charset=iso-8859-1\r\n\
     Content-Transfer-Encoding: quoted-printable\r\n\
     \r\n\
     La r=E9union est d=E9plac=E9e =\r\n\
     =E0 demain.\r\n\
     --b1\r\n\
     Content-Type: text/html; charset=utf-8\r\n\
     Content-Transfer-Encoding: base64\r\n\
     Content-Language: fr\r\n\
     \r\n\
     PHA+TGEgcsOpdW5pb24gZXN0IGTDqXBsYWPDqWU8L3A+\r\n\
     --b1--\r\n\
     epilogue\r\n",
    "From: carol@example.com\r\n\
     To: bob@example.com\r\n\
     Subject: Fwd: the report\r\n\
     Date: Thu, 3 Apr 2025 18:00:00 +0000\r\n\
     MIME-Version: 1.0\r\n\
     Content-Type: multipart/mixed; boundary=outer\r\n\
     \r\n\
     --outer\r\n\
     Content-Type: text/plain\r\n\
     \r\n\
     See below.\r\n\
     --outer\r\n\
     Content-Type: message/rfc822\r\n\
     Content-Disposition: attachment; filename=\"report.eml\"\r\n\
     \r\n\
     From: dave@example.com\r\n\
     Subject: report\r\n\
     Content-Type: multipart/mixed; boundary=inner\r\n\
     \r\n\
     --inner\r\n\
     Content-Type: text/plain\r\n\
     \r\n\
     numbers\r\n\
     --inner\r\n\
     Content-Type: application/octet-stream\r\n\
     Content-Transfer-Encoding: base64\r\n\
     Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.bin\r\n\
     \r\n\
     AAECAwQFBgcICQ==\r\n\
     --inner--\r\n\
     --outer--\r\n",
    "Subject: no body\r\n\r\n",
    "From: \"Eve\" <eve@example.com>\r\n\
     To: undisclosed-recipients:;\r\n\
     Subject: binary\r\n\
     Content-Type: text/plain; charset=utf-8\r\n\
     Content-Transfer-Encoding: 8bit\r\n\
     \r\n\
     caf\u{e9} \u{2615}\r\n",
];

pub const INBOX: MailboxId = 5;
pub const USER: UserId = 1;
pub const PASSWORD: &str = "secret";

/// The sample messages ingested, once per process.
pub fn sample_bodies() -> &'static [(Vec<u8>, Structure)] {
    static BODIES: OnceLock<Vec<(Vec<u8>, Structure)>> = OnceLock::new();
    BODIES.get_or_init(|| {
        MESSAGES
            .iter()
            .map(|m| ringmail::mime::ingest(m.as_bytes().to_vec()).expect("the sample messages ingest"))
            .collect()
    })
}

/// One user, `bob` (password `secret`), with a few mailboxes; INBOX holds every sample message,
/// with gaps in its UIDs, flags and keywords. `apply` carries out the writes an IMAP session
/// asks for, as the real store would in the respects the session can see, so a session goes
/// on after STORE, EXPUNGE, COPY, MOVE, APPEND or CREATE against a store that agrees with what
/// it was told.
pub struct MemStore {
    state: RefCell<State>,
}

#[derive(Clone)]
struct State {
    mailboxes: Vec<Mailbox>,
    /// (mailbox, uid, record), in mailbox and UID order.
    messages: Vec<(MailboxId, Uid, MessageRecord)>,
    /// Bodies beyond the samples (APPEND, REPLACE), from body id `sample_bodies().len()`.
    appended: Vec<(Vec<u8>, Structure)>,
    /// (mailbox, uid, modseq) of every expunge.
    expunged: Vec<(MailboxId, Uid, u64)>,
    subscriptions: Vec<String>,
}

impl Default for MemStore {
    fn default() -> Self {
        MemStore::new()
    }
}

impl MemStore {
    pub fn new() -> MemStore {
        let bodies = sample_bodies();
        let mut messages = Vec::new();
        let inbox_uids: [Uid; 7] = [1, 2, 4, 7, 8, 9, 12];
        let flag_bits = [
            0,
            flags::SEEN,
            flags::SEEN | flags::FLAGGED,
            flags::DELETED,
            flags::ANSWERED | flags::SEEN,
            flags::DRAFT,
            0,
        ];
        for (i, &uid) in inbox_uids.iter().enumerate() {
            let body_id = (i % bodies.len()) as BodyId;
            let keywords = match i {
                1 => vec!["$Forwarded".to_string()],
                4 => vec!["Junk".to_string(), "$Important".to_string()],
                _ => Vec::new(),
            };
            messages.push((
                INBOX,
                uid,
                MessageRecord {
                    flags: flag_bits[i],
                    internal_date: 1_743_500_000 + i64::from(uid) * 86_400,
                    save_date: 1_743_600_000,
                    size: bodies[body_id as usize].0.len() as u64,
                    modseq: u64::from(uid) + 6,
                    body_id,
                    keywords,
                },
            ));
        }
        for (uid, body_id) in [(1, 2), (2, 0)] {
            messages.push((
                8,
                uid,
                MessageRecord {
                    flags: flags::SEEN,
                    internal_date: 1_700_000_000,
                    save_date: 1_700_000_000,
                    size: bodies[body_id].0.len() as u64,
                    modseq: 2,
                    body_id: body_id as BodyId,
                    keywords: Vec::new(),
                },
            ));
        }
        let mailbox = |id: MailboxId, name: &str, special_use, noselect| Mailbox {
            first_recent_uid: 9,
            noselect,
            ..Mailbox::new(id, USER, name, 1_700_000_000 + id as u32, special_use)
        };
        let mut state = State {
            mailboxes: vec![
                mailbox(INBOX, "INBOX", None, false),
                mailbox(6, "Sent", Some(SpecialUse::Sent), false),
                mailbox(7, "Archive", Some(SpecialUse::Archive), true),
                mailbox(8, "Archive/2024", None, false),
                mailbox(9, "Été", None, false),
            ],
            messages,
            appended: Vec::new(),
            // UIDs 3, 5 and 6 of INBOX went at modseqs 4 to 6.
            expunged: vec![(INBOX, 3, 4), (INBOX, 5, 5), (INBOX, 6, 6)],
            subscriptions: vec!["INBOX".into(), "Archive/2024".into(), "Gone".into()],
        };
        for m in &mut state.mailboxes {
            m.uid_next = if m.id == INBOX { 13 } else { 3 };
            m.highest_modseq = 20;
        }
        MemStore {
            state: RefCell::new(state),
        }
    }

    /// The SCRAM keys of `bob` (one PBKDF2 round: cheap to check).
    pub fn scram() -> ScramCredentials {
        static KEYS: OnceLock<ScramCredentials> = OnceLock::new();
        KEYS.get_or_init(|| ScramCredentials::derive(PASSWORD, b"fuzz salt", 1).expect("valid SCRAM parameters"))
            .clone()
    }

    /// Carries out one write of an IMAP session.
    pub fn apply(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        let mut s = self.state.borrow_mut();
        match op {
            WriteOp::StoreFlags {
                mailbox,
                uids,
                mode,
                flags: bits,
                keywords,
                unchanged_since,
            } => {
                let modseq = s.bump(mailbox)?;
                let (mut changed, mut modified) = (Vec::new(), Vec::new());
                for (_, uid, record) in s.messages.iter_mut().filter(|m| m.0 == mailbox && uids.contains(&m.1)) {
                    if unchanged_since.is_some_and(|u| record.modseq > u) {
                        modified.push(*uid);
                        continue;
                    }
                    let bits = bits & !flags::INTERNAL;
                    let internal = record.flags & flags::INTERNAL;
                    let has = |list: &[String], k: &str| list.iter().any(|x| x.eq_ignore_ascii_case(k));
                    match mode {
                        FlagMode::Replace => {
                            record.flags = bits | internal;
                            record.keywords = Vec::new();
                            for k in &keywords {
                                if !has(&record.keywords, k) {
                                    record.keywords.push(k.clone());
                                }
                            }
                        }
                        FlagMode::Add => {
                            record.flags |= bits;
                            for k in &keywords {
                                if !has(&record.keywords, k) {
                                    record.keywords.push(k.clone());
                                }
                            }
                        }
                        FlagMode::Remove => {
                            record.flags &= !bits;
                            record.keywords.retain(|k| !has(&keywords, k));
                        }
                    }
                    record.modseq = modseq;
                    changed.push(FlagsChanged {
                        uid: *uid,
                        flags: record.flags & !flags::INTERNAL,
                        keywords: record.keywords.clone(),
                        modseq,
                    });
                }
                Ok(WriteOutcome::Flags { changed, modified })
            }
            WriteOp::Expunge { mailbox, uids } => {
                let gone = s.expunge(mailbox, &uids)?;
                Ok(WriteOutcome::Expunged(gone))
            }
            WriteOp::Copy {
                from,
                uids,
                to,
                expunge_source,
            } => {
                s.mailbox_mut(from)?;
                let target = s.mailbox_mut(to)?;
                if target.noselect {
                    return Err(StoreError::NoSuchMailbox);
                }
                let uid_validity = target.uid_validity;
                let copies: Vec<(Uid, MessageRecord)> = s
                    .messages
                    .iter()
                    .filter(|m| m.0 == from && uids.contains(&m.1))
                    .map(|m| (m.1, m.2.clone()))
                    .collect();
                let mut pairs = Vec::new();
                for (uid, record) in copies {
                    let new = s.add(to, record)?;
                    pairs.push((uid, new));
                }
                if expunge_source {
                    let moved: Vec<Uid> = pairs.iter().map(|p| p.0).collect();
                    s.expunge(from, &moved)?;
                }
                Ok(WriteOutcome::Copied { uid_validity, pairs })
            }
            WriteOp::Append { mailbox, messages } => {
                let uid_validity = s.mailbox_mut(mailbox)?.uid_validity;
                let mut uids = Vec::new();
                for m in messages {
                    uids.push(s.add_new(mailbox, m)?);
                }
                Ok(WriteOutcome::Appended { uid_validity, uids })
            }
            WriteOp::Replace { from, uid, to, message } => {
                if !s.messages.iter().any(|m| m.0 == from && m.1 == uid) {
                    return Err(StoreError::MailboxRefused("the message is gone"));
                }
                let uid_validity = s.mailbox_mut(to)?.uid_validity;
                let new = s.add_new(to, message)?;
                s.expunge(from, &[uid])?;
                Ok(WriteOutcome::Appended {
                    uid_validity,
                    uids: vec![new],
                })
            }
            WriteOp::CreateMailbox {
                user,
                name,
                special_use,
            } => {
                if s.mailboxes.iter().any(|m| m.name == name) {
                    return Err(StoreError::MailboxExists);
                }
                let id = s.mailboxes.iter().map(|m| m.id).max().unwrap_or(0) + 1;
                let mailbox = Mailbox::new(id, user, &name, 1_800_000_000 + id as u32, special_use);
                s.mailboxes.push(mailbox.clone());
                Ok(WriteOutcome::Mailbox(mailbox))
            }
            WriteOp::DeleteMailbox { name, .. } => {
                if name == "INBOX" {
                    return Err(StoreError::MailboxRefused("INBOX cannot be deleted"));
                }
                let Some(i) = s.mailboxes.iter().position(|m| m.name == name) else {
                    return Err(StoreError::NoSuchMailbox);
                };
                let id = s.mailboxes.remove(i).id;
                s.messages.retain(|m| m.0 != id);
                Ok(WriteOutcome::Done)
            }
            WriteOp::RenameMailbox { from, to, .. } => {
                if s.mailboxes.iter().any(|m| m.name == to) {
                    return Err(StoreError::MailboxExists);
                }
                let Some(m) = s.mailboxes.iter_mut().find(|m| m.name == from) else {
                    return Err(StoreError::NoSuchMailbox);
                };
                if from == "INBOX" {
                    // RFC 9051 §6.3.6: INBOX's messages move to the new mailbox; INBOX stays.
                    return Err(StoreError::MailboxRefused("renaming INBOX is not modelled"));
                }
                m.name = to;
                m.uid_validity += 1;
                Ok(WriteOutcome::Done)
            }
            WriteOp::Subscribe { name, subscribed, .. } => {
                s.subscriptions.retain(|n| *n != name);
                if subscribed {
                    s.subscriptions.push(name);
                }
                Ok(WriteOutcome::Done)
            }
            WriteOp::UrlauthKeys { mailboxes, .. } => Ok(WriteOutcome::UrlauthKeys(
                mailboxes
                    .iter()
                    .map(|_| [0x5a; std::mem::size_of::<AccessKey>()])
                    .collect(),
            )),
            WriteOp::SetMetadata { .. } | WriteOp::ResetUrlauthKeys { .. } | WriteOp::Flush => Ok(WriteOutcome::Done),
            // Not an IMAP session's.
            _ => Err(StoreError::WriterGone),
        }
    }
}

impl State {
    fn mailbox_mut(&mut self, id: MailboxId) -> Result<&mut Mailbox, StoreError> {
        self.mailboxes
            .iter_mut()
            .find(|m| m.id == id)
            .ok_or(StoreError::NoSuchMailbox)
    }

    /// The next modseq of `mailbox`.
    fn bump(&mut self, mailbox: MailboxId) -> Result<u64, StoreError> {
        let m = self.mailbox_mut(mailbox)?;
        m.highest_modseq += 1;
        Ok(m.highest_modseq)
    }

    fn expunge(&mut self, mailbox: MailboxId, uids: &[Uid]) -> Result<Vec<Uid>, StoreError> {
        let modseq = self.bump(mailbox)?;
        let gone: Vec<Uid> = self
            .messages
            .iter()
            .filter(|m| m.0 == mailbox && uids.contains(&m.1))
            .map(|m| m.1)
            .collect();
        self.messages.retain(|m| !(m.0 == mailbox && gone.contains(&m.1)));
        self.expunged.extend(gone.iter().map(|&u| (mailbox, u, modseq)));
        Ok(gone)
    }

    /// Adds a message to `mailbox` under its next UID.
    fn add(&mut self, mailbox: MailboxId, mut record: MessageRecord) -> Result<Uid, StoreError> {
        let modseq = self.bump(mailbox)?;
        let m = self.mailbox_mut(mailbox)?;
        let uid = m.uid_next;
        m.uid_next += 1;
        record.modseq = modseq;
        self.messages.push((mailbox, uid, record));
        self.messages.sort_by_key(|m| (m.0, m.1));
        Ok(uid)
    }

    fn add_new(&mut self, mailbox: MailboxId, m: NewMessage) -> Result<Uid, StoreError> {
        let body_id = (sample_bodies().len() + self.appended.len()) as BodyId;
        let record = MessageRecord {
            flags: m.flags,
            internal_date: m.internal_date.unwrap_or(1_750_000_000),
            save_date: 1_750_000_000,
            size: m.message.len() as u64,
            modseq: 0,
            body_id,
            keywords: m.keywords,
        };
        self.appended.push((m.message, (*m.structure).clone()));
        self.add(mailbox, record)
    }

    fn body(&self, body: BodyId) -> Option<&(Vec<u8>, Structure)> {
        let samples = sample_bodies();
        match usize::try_from(body).ok()? {
            i if i < samples.len() => Some(&samples[i]),
            i => self.appended.get(i - samples.len()),
        }
    }

    /// A mailbox record with its counts as they are now.
    fn counted(&self, m: &Mailbox) -> Mailbox {
        let mut m = m.clone();
        let own = self.messages.iter().filter(|x| x.0 == m.id);
        m.messages = own.clone().count() as u32;
        m.size = own.map(|x| x.2.size).sum();
        m
    }
}

impl MailRead for MemStore {
    fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        Ok((name == "bob").then(|| User {
            id: USER,
            name: "bob".into(),
            password_hash: String::new(),
            scram: MemStore::scram(),
            admin: false,
            pop: true,
            imap: true,
            smtp: true,
            quota: Some(1 << 20),
            home: None,
            imap_disabled: Vec::new(),
        }))
    }
    fn mailboxes(&self, user: UserId) -> Result<Vec<Mailbox>, StoreError> {
        let s = self.state.borrow();
        Ok(s.mailboxes
            .iter()
            .filter(|m| m.user_id == user)
            .map(|m| s.counted(m))
            .collect())
    }
    fn metadata(&self, _: UserId, mailbox: MailboxId) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(match mailbox {
            0 => vec![("/shared/comment".into(), b"test server".to_vec())],
            INBOX => vec![
                ("/private/comment".into(), b"my inbox".to_vec()),
                ("/shared/vendor/ringmail/x".into(), vec![0xc3, 0xa9, b'\r', b'\n']),
            ],
            _ => Vec::new(),
        })
    }
    fn subscriptions(&self, _: UserId) -> Result<Vec<String>, StoreError> {
        Ok(self.state.borrow().subscriptions.clone())
    }
    fn mailbox(&self, user: UserId, name: &str) -> Result<Option<Mailbox>, StoreError> {
        let s = self.state.borrow();
        Ok(s.mailboxes
            .iter()
            .find(|m| m.user_id == user && m.name == name)
            .map(|m| s.counted(m)))
    }
    fn mailbox_by_id(&self, id: MailboxId) -> Result<Option<Mailbox>, StoreError> {
        let s = self.state.borrow();
        Ok(s.mailboxes.iter().find(|m| m.id == id).map(|m| s.counted(m)))
    }
    fn each_message(&self, mailbox: MailboxId, f: &mut dyn FnMut(Uid, &MessageRecord)) -> Result<(), StoreError> {
        let s = self.state.borrow();
        for (_, uid, record) in s.messages.iter().filter(|m| m.0 == mailbox) {
            f(*uid, record);
        }
        Ok(())
    }
    fn message(&self, mailbox: MailboxId, uid: Uid) -> Result<Option<MessageRecord>, StoreError> {
        let s = self.state.borrow();
        Ok(s.messages
            .iter()
            .find(|m| m.0 == mailbox && m.1 == uid)
            .map(|m| m.2.clone()))
    }
    fn structure(&self, body: BodyId) -> Result<Option<Structure>, StoreError> {
        Ok(self.state.borrow().body(body).map(|b| b.1.clone()))
    }
    fn body(&self, body: BodyId) -> Result<Box<dyn MessageBytes + '_>, StoreError> {
        let bytes = self.state.borrow().body(body).map(|b| b.0.clone()).unwrap_or_default();
        Ok(Box::new(bytes))
    }
    fn expunged_since(&self, mailbox: &Mailbox, modseq: u64) -> Result<Expunged, StoreError> {
        let s = self.state.borrow();
        let mut uids: Vec<Uid> = s
            .expunged
            .iter()
            .filter(|e| e.0 == mailbox.id && e.2 > modseq)
            .map(|e| e.1)
            .collect();
        uids.sort_unstable();
        Ok(Expunged::Known(uids))
    }
    fn usage(&self, _: UserId) -> Result<Usage, StoreError> {
        let s = self.state.borrow();
        Ok(Usage {
            bytes: s.messages.iter().map(|m| m.2.size).sum(),
            messages: s.messages.len() as u64,
        })
    }
    fn urlauth_key(&self, user: UserId, mailbox: MailboxId) -> Result<Option<AccessKey>, StoreError> {
        Ok((user == USER && mailbox == INBOX).then_some([0x5a; std::mem::size_of::<AccessKey>()]))
    }
}

/// Splits IMAP server output into responses, each with its literals inline and without its
/// final CRLF; panics when the output does not frame (a line without CRLF, a literal whose
/// octets are not all there).
pub fn imap_responses(mut out: &[u8]) -> Vec<&[u8]> {
    let all = out;
    let mut responses = Vec::new();
    while !out.is_empty() {
        let mut pos = 0;
        loop {
            let Some(lf) = memchr(b'\n', &out[pos..]) else {
                panic!(
                    "response without a line end: {:?}",
                    String::from_utf8_lossy(&out[..out.len().min(300)])
                );
            };
            let end = pos + lf;
            assert!(
                end > 0 && out[end - 1] == b'\r',
                "a bare LF in server output: {:?}",
                String::from_utf8_lossy(all)
            );
            let line = &out[pos..end - 1];
            match literal_len(line) {
                Some(n) => {
                    let data_end = end + 1 + n;
                    assert!(data_end <= out.len(), "a literal of {n} octets runs past the output");
                    pos = data_end;
                }
                None => {
                    responses.push(&out[..end - 1]);
                    out = &out[end + 1..];
                    break;
                }
            }
        }
    }
    responses
}

/// The length of the literal a line ends with (`{n}`, `{n+}` or `~{n}`).
fn literal_len(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}")?;
    let body = body.strip_suffix(b"+").unwrap_or(body);
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = &body[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

/// Checks the syntax of an untagged FETCH or STATUS response (RFC 9051 §9 `message-data`,
/// `mailbox-data`), with its literals inline and without its CRLF: strings quoted or literal,
/// lists balanced, one SP between items (or none between the parts of a multipart body),
/// item names with their sections. Returns what is wrong.
pub fn check_fetch_or_status(response: &[u8]) -> Result<(), String> {
    let mut r = Syntax { s: response, pos: 0 };
    r.expect(b"* ")?;
    if r.peek().is_some_and(|b| b.is_ascii_digit()) {
        r.number()?;
        r.expect(b" ")?;
        let word = r.atom()?;
        if word != b"FETCH" && word != b"UIDFETCH" {
            return Err(format!("not a FETCH: {}", String::from_utf8_lossy(word)));
        }
        r.expect(b" (")?;
        let mut first = true;
        while r.peek() != Some(b')') {
            if !first {
                r.expect(b" ")?;
            }
            first = false;
            r.item_name()?;
            r.expect(b" ")?;
            r.value(0)?;
        }
        r.expect(b")")?;
    } else {
        r.expect(b"STATUS ")?;
        r.value(0)?;
        r.expect(b" ")?;
        r.value(0)?;
    }
    if r.pos != response.len() {
        return Err(format!("text after the response at {}", r.pos));
    }
    Ok(())
}

struct Syntax<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Syntax<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        let at = &self.s[self.pos.min(self.s.len())..];
        Err(format!(
            "{what} at {}: {:?}",
            self.pos,
            String::from_utf8_lossy(&at[..at.len().min(80)])
        ))
    }

    fn expect(&mut self, text: &[u8]) -> Result<(), String> {
        if self.s[self.pos..].starts_with(text) {
            self.pos += text.len();
            Ok(())
        } else {
            self.err(&format!("expected {:?}", String::from_utf8_lossy(text)))
        }
    }

    fn number(&mut self) -> Result<u64, String> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        match std::str::from_utf8(&self.s[start..self.pos])
            .ok()
            .and_then(|d| d.parse().ok())
        {
            Some(n) => Ok(n),
            None => self.err("expected a number"),
        }
    }

    /// ATOM-CHAR (RFC 9051 §9), plus a leading backslash for flags and `]` in resp-text codes.
    fn atom(&mut self) -> Result<&'a [u8], String> {
        let start = self.pos;
        if self.peek() == Some(b'\\') {
            self.pos += 1;
        }
        while self
            .peek()
            .is_some_and(|b| b > b' ' && b < 0x7f && !b"(){%*\"\\]".contains(&b))
        {
            self.pos += 1;
        }
        if self.pos == start {
            return self.err("expected an atom");
        }
        Ok(&self.s[start..self.pos])
    }

    /// A FETCH item name: `BODY[1.HEADER.FIELDS (A B)]<0>`, `BINARY.SIZE[1]`, `UID`.
    fn item_name(&mut self) -> Result<(), String> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            self.pos += 1;
        }
        if self.pos == start {
            return self.err("expected a FETCH item name");
        }
        if self.peek() == Some(b'[') {
            self.pos += 1;
            while self.peek().is_some_and(|b| b != b']') {
                match self.peek() {
                    Some(b'"' | b'{') => {
                        self.string()?;
                    }
                    Some(b'\r' | b'\n') => return self.err("a line end in a section"),
                    _ => self.pos += 1,
                }
            }
            self.expect(b"]")?;
            if self.peek() == Some(b'<') {
                self.pos += 1;
                self.number()?;
                self.expect(b">")?;
            }
        }
        Ok(())
    }

    fn string(&mut self) -> Result<(), String> {
        match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                loop {
                    match self.peek() {
                        None | Some(b'\r' | b'\n') => return self.err("an unterminated quoted string"),
                        Some(b'"') => {
                            self.pos += 1;
                            return Ok(());
                        }
                        Some(b'\\') => match self.s.get(self.pos + 1) {
                            Some(b'\\' | b'"') => self.pos += 2,
                            _ => return self.err("a bad escape in a quoted string"),
                        },
                        Some(0) => return self.err("NUL in a quoted string"),
                        Some(_) => self.pos += 1,
                    }
                }
            }
            Some(b'{' | b'~') => {
                if self.peek() == Some(b'~') {
                    self.pos += 1;
                }
                self.expect(b"{")?;
                let n = self.number()? as usize;
                self.expect(b"}\r\n")?;
                if self.pos + n > self.s.len() {
                    return self.err("a literal shorter than announced");
                }
                self.pos += n;
                Ok(())
            }
            _ => self.err("expected a string"),
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), String> {
        if depth > 1000 {
            return self.err("nested too deep");
        }
        match self.peek() {
            Some(b'(') => {
                self.pos += 1;
                let mut first = true;
                while self.peek() != Some(b')') {
                    // body-type-mpart: `(part)(part) "MIXED"`, the parts unseparated.
                    let adjacent = self.pos > 0 && self.s[self.pos - 1] == b')' && self.peek() == Some(b'(');
                    if !first && !adjacent {
                        self.expect(b" ")?;
                    }
                    first = false;
                    self.value(depth + 1)?;
                }
                self.pos += 1;
                Ok(())
            }
            Some(b'"' | b'{') => self.string(),
            Some(b'~') if self.s.get(self.pos + 1) == Some(&b'{') => self.string(),
            Some(_) => self.atom().map(drop),
            None => self.err("expected a value"),
        }
    }
}
