//! The message store: one LMDB environment (heed) in `data_dir`.
//!
//! Owns the schema, the read API (`Snapshot`), the single writer thread that group-commits every
//! mutation (`writer`), and the change feed that tells every core what a commit changed (`feed`).
//!
//! Invariants: nothing writes except the writer thread (or, with no server running, the CLI's own
//! writer thread through the same code); a reply to a write is sent only after its transaction
//! is committed and fsynced; a `Snapshot` is never held across an await that waits on a client
//! (a long-lived reader makes LMDB's file grow without bound), nor is a `MappedSnapshot` or the
//! bytes taken from it (or from `Snapshot::mapped_body`) held for longer than a bounded write;
//! UIDs are never reused.

pub mod check;
pub mod dot_lines;
pub mod envelope;
pub mod feed;
pub mod mailboxes;
mod messages;
pub mod metadata;
pub mod modseq;
pub mod queue;
mod read;
pub mod recent;
pub mod records;
pub mod restore;
mod room;
mod stage;
mod txn;
pub mod unseen;
pub mod urlauth;
mod users;
mod writer;
mod zero_copy;

use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;

use heed::types::Bytes;
use heed::{Database, Env, EnvOpenOptions, WithoutTls};

pub use feed::{Change, ChangeKind};
pub use mailboxes::{validate_name, SEPARATOR};
pub use messages::FlagsChanged;
pub use queue::{Bounce, NewQueueEntry, QueueEntry, QueueId, QueueUpdate, QueuedRecipient, Refused};
pub use read::canonical_mailbox_name;
pub use read::{BodyChunks, Snapshot};
pub use records::{FlagCounts, FlagMode, Mailbox, MessageRecord, SpecialUse, User};
pub use writer::{
    observe_commits, Delivered, ImportedMessage, NewMessage, NewUser, Recipient, UserPatch, WriteOp, WriteOutcome,
};
pub use zero_copy::{MappedBytes, MappedChunks, MappedSnapshot};

/// Bodies are stored in chunks: contiguous multi-MB values fragment LMDB's freelist.
pub const CHUNK_SIZE: usize = 128 * 1024;

/// A sparse upper bound on the data file; LMDB only uses what it writes.
const MAP_SIZE: usize = 1 << 40;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Lmdb(#[from] heed::Error),
    #[error("storage: {0}")]
    Io(#[from] std::io::Error),
    #[error("no such user: {0}")]
    NoSuchUser(String),
    #[error("user already exists: {0}")]
    UserExists(String),
    #[error("no such mailbox")]
    NoSuchMailbox,
    #[error("mailbox already exists")]
    MailboxExists,
    #[error("{0}")]
    MailboxRefused(&'static str),
    #[error("over quota")]
    OverQuota,
    #[error("corrupt record in {0}")]
    Corrupt(&'static str),
    #[error("the store's writer has stopped")]
    WriterGone,
    #[error("metadata refused: {0}")]
    Metadata(metadata::MetadataRefusal),
}

pub(crate) type Table = Database<'static, Bytes, Bytes>;

/// The tables, all bytes → bytes with the encodings of `records`.
pub(crate) struct Tables {
    meta: Table,
    users: Table,
    user_ids: Table,
    usage: Table,
    mailboxes: Table,
    mailbox_names: Table,
    messages: Table,
    bodies: Table,
    body_refs: Table,
    structures: Table,
    /// (mailbox, modseq) → UIDs expunged at that modseq, for QRESYNC's VANISHED.
    expunged: Table,
    /// (mailbox, modseq, UID) → nothing: every message under its modseq (`modseq`).
    modseqs: Table,
    /// (mailbox, UID) → nothing: every message without \Seen (`unseen`).
    unseen: Table,
    /// Outbound queue: id → entry (JSON).
    queue: Table,
    /// (queue id, chunk no) → the queued message's bytes.
    queue_bodies: Table,
    /// (user, mailbox name) → nothing: the names a user subscribed to, which need not exist
    /// (RFC 3501 §6.3.6).
    subscriptions: Table,
    /// (user, mailbox id or 0, entry name in lower case) → name as set, value (RFC 5464).
    metadata: Table,
    /// (user, mailbox id) → the mailbox access key of URLAUTH (RFC 4467 §3).
    urlauth_keys: Table,
    /// (mailbox, UID) → the POP3 UIDL a message had on the server it was imported from, when
    /// that is not the one ringmail would give it (`UIDVALIDITY.UID`), so POP3 clients do not
    /// download it again.
    pop3_uidls: Table,
    /// body → where its lines start with '.', for POP3's byte-stuffing (`dot_lines`).
    dot_lines: Table,
    /// LMDB's page size in this environment: how values are cut into chunks (`txn::pieces`).
    page_size: usize,
}

const TABLE_NAMES: [&str; 20] = [
    "meta",
    "users",
    "user_ids",
    "usage",
    "mailboxes",
    "mailbox_names",
    "messages",
    "bodies",
    "body_refs",
    "structures",
    "expunged",
    "modseqs",
    "unseen",
    "queue",
    "queue_bodies",
    "subscriptions",
    "metadata",
    "urlauth_keys",
    "pop3_uidls",
    "dot_lines",
];

pub(crate) struct Inner {
    env: &'static Env<WithoutTls>,
    t: Tables,
    /// The same tables, for what concerns them all (`space`).
    every: [Table; 20],
    commits: std::sync::atomic::AtomicU64,
    /// \Recent claims of every core's sessions, persisted by the writer.
    recent: Arc<recent::RecentClaims>,
}

/// The store's room on disk (`Store::space`).
#[derive(Debug, Clone, Copy)]
pub struct Space {
    /// The size of data.mdb.
    pub file_bytes: u64,
    /// How far it may grow.
    pub map_bytes: u64,
    pub page_size: u64,
    /// Pages written so far (the high-water mark).
    pub pages: u64,
    /// Of those, pages no table uses: free for the next writes.
    pub free_pages: u64,
}

/// A handle on the store; cheap to clone and shared by every core.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
    writer: mpsc::Sender<writer::Job>,
    feed: Arc<feed::Feed>,
}

/// Brings a store written by an older version up to date, each step once per store (the
/// steps read every record of a kind, too slow for every start).
fn migrate(t: &Tables, txn: &mut heed::RwTxn<'_>) -> Result<(), StoreError> {
    const SUBSCRIPTIONS_MIGRATED: &[u8] = b"subscriptions_migrated";
    if t.meta.get(txn, SUBSCRIPTIONS_MIGRATED)?.is_none() {
        mailboxes::migrate_subscriptions(t, txn)?;
        t.meta.put(txn, SUBSCRIPTIONS_MIGRATED, &[])?;
    }
    const MODSEQS_INDEXED: &[u8] = b"modseqs_indexed";
    if t.meta.get(txn, MODSEQS_INDEXED)?.is_none() {
        modseq::migrate(t, txn)?;
        t.meta.put(txn, MODSEQS_INDEXED, &[])?;
    }
    const FLAGS_COUNTED: &[u8] = b"flags_counted";
    if t.meta.get(txn, FLAGS_COUNTED)?.is_none() {
        unseen::migrate(t, txn)?;
        t.meta.put(txn, FLAGS_COUNTED, &[])?;
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the environment in `dir` and starts its writer thread, as
    /// the one process using it: large bodies a crash left half-written are swept.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(dir, true)
    }

    /// The same beside a running server (a command while it serves): nothing is swept, since
    /// the server's staged bodies are being written now, not left by a crash.
    pub fn open_beside_server(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(dir, false)
    }

    fn open_with(dir: &Path, sweep: bool) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir)?;
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options
            .map_size(MAP_SIZE)
            .max_dbs(TABLE_NAMES.len() as u32)
            .max_readers(4096);
        // SAFETY: heed requires that the environment is not opened twice in one process and
        // that the file is not modified by other means; each process opens data_dir once
        // (`Store::open` is called once per process) and only LMDB touches data.mdb.
        let env = unsafe { options.open(dir)? };
        // The environment lives as long as the process: databases borrow it for 'static, and
        // LMDB forbids reopening an environment in the same process anyway.
        let env: &'static Env<WithoutTls> = Box::leak(Box::new(env));
        let wtxn = env.write_txn()?;
        let tables: [Table; 20] = env
            .create_databases_and_commit(wtxn, |opener, wtxn| {
                let mut out = Vec::with_capacity(TABLE_NAMES.len());
                for name in TABLE_NAMES {
                    out.push(opener.create_database::<Bytes, Bytes>(wtxn, Some(name))?);
                }
                let tables: [Table; 20] = out.try_into().unwrap_or_else(|_| unreachable!("one table per name"));
                Ok::<_, heed::Error>(heed::CommitOrAbort::<_, ()>::Commit(tables))
            })?
            .unwrap_commit();
        let every = tables;
        let [meta, users, user_ids, usage, mailboxes, mailbox_names, messages, bodies, body_refs, structures, expunged, modseqs, unseen, queue, queue_bodies, subscriptions, metadata, urlauth_keys, pop3_uidls, dot_lines] =
            tables;
        let inner = Arc::new(Inner {
            env,
            t: Tables {
                meta,
                users,
                user_ids,
                usage,
                mailboxes,
                mailbox_names,
                messages,
                bodies,
                body_refs,
                structures,
                expunged,
                modseqs,
                unseen,
                queue,
                queue_bodies,
                subscriptions,
                metadata,
                urlauth_keys,
                pop3_uidls,
                dot_lines,
                page_size: env.unnamed_database_stat().page_size as usize,
            },
            every,
            commits: 0.into(),
            recent: Arc::default(),
        });
        let mut wtxn = env.write_txn()?;
        migrate(&inner.t, &mut wtxn)?;
        let swept = if sweep { stage::sweep(&inner.t, &mut wtxn)? } else { 0 };
        wtxn.commit()?;
        if swept > 0 {
            tracing::info!("removed {swept} partly written large bodies left by an unclean stop");
        }
        let feed = Arc::new(feed::Feed::default());
        let writer = writer::spawn(inner.clone(), feed.clone())?;
        Ok(Store { inner, writer, feed })
    }

    /// A consistent read view. Drop it before awaiting anything that waits on a client.
    pub fn snapshot(&self) -> Result<Snapshot<'_>, StoreError> {
        Snapshot::new(&self.inner)
    }

    /// Writes a compacted copy of the whole store, as of one read transaction, to the new
    /// file `to` (LMDB's copy: consistent while writers go on) and makes it durable; returns
    /// its size. The file is an environment's data file: a server whose data_dir holds it as
    /// `data.mdb` runs on it. On failure nothing is left at `to`.
    pub fn backup(&self, to: &Path) -> Result<u64, StoreError> {
        let mut file = std::fs::File::create_new(to)?;
        let copied = self
            .inner
            .env
            .copy_to_file(&mut file, heed::CompactionOption::Enabled)
            .map_err(StoreError::from)
            .and_then(|()| Ok(file.sync_all()?))
            .and_then(|()| Ok(file.metadata()?.len()));
        if copied.is_err() {
            let _ = std::fs::remove_file(to);
        }
        copied
    }

    /// Checks the store's invariants in one read transaction (`ringmail fsck`).
    pub fn check(&self) -> Result<check::Report, StoreError> {
        let txn = self.inner.env.read_txn()?;
        check::inspect(&self.inner.t, &txn)
    }

    /// A read view whose body bytes can outlive it, for sending straight from the map. Each
    /// `MappedBytes` taken from it holds its transaction: bound how much one covers.
    pub fn mapped_snapshot(&self) -> Result<MappedSnapshot, StoreError> {
        MappedSnapshot::new(&self.inner)
    }

    /// Queues a mutation; the answer arrives once it is durable.
    pub async fn write(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        self.submit(op)?.await.map_err(|_| StoreError::WriterGone)?
    }

    /// `write` for callers outside any async runtime (the admin CLI).
    pub fn write_blocking(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        self.submit(op)?.blocking_recv().map_err(|_| StoreError::WriterGone)?
    }

    fn submit(&self, op: WriteOp) -> Result<writer::Reply, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer
            .send(writer::Job { op, reply: tx })
            .map_err(|_| StoreError::WriterGone)?;
        Ok(rx)
    }

    /// How much room the store takes and how much of it is free for reuse.
    pub fn space(&self) -> Result<Space, StoreError> {
        let env = self.inner.env;
        let info = env.info();
        let rtxn = env.read_txn()?;
        let pages = |s: heed::DatabaseStat| s.branch_pages + s.leaf_pages + s.overflow_pages;
        // Two meta pages, the main database (which names the others), then every table.
        let mut in_use = 2 + pages(env.unnamed_database_stat());
        for table in &self.inner.every {
            in_use += pages(table.stat(&rtxn)?);
        }
        let page_size = env.unnamed_database_stat().page_size as u64;
        let used = info.last_page_number as u64 + 1;
        Ok(Space {
            file_bytes: env.real_disk_size()?,
            map_bytes: info.map_size as u64,
            page_size,
            pages: used,
            // The rest is LMDB's free list (and its own pages): reused before the file grows.
            free_pages: used.saturating_sub(in_use as u64),
        })
    }

    /// Transactions committed by this process's writer: with group commit, fewer than writes.
    pub fn commits(&self) -> u64 {
        self.inner.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Where sessions claim new messages as \Recent (RFC 3501 §2.3.2).
    pub fn recent(&self) -> &recent::RecentClaims {
        &self.inner.recent
    }

    /// Every change committed from now on, in commit order.
    pub fn subscribe(&self) -> tokio::sync::mpsc::UnboundedReceiver<Arc<[Change]>> {
        self.feed.subscribe()
    }
}

#[cfg(test)]
mod tests;
