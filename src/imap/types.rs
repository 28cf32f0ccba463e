//! The typed form of IMAP commands (RFC 3501, RFC 9051 and the extensions ringmail offers):
//! what the parser produces and the session executes. No protocol text and no I/O here.

/// One end of a sequence-set range: a number or `*` (the largest in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqBound {
    Num(u32),
    Star,
}

/// RFC 9051 §9 `sequence-set`, or `$` (RFC 5182 SEARCHRES: the saved search result).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceSet {
    Ranges(Vec<(SeqBound, SeqBound)>),
    Saved,
}

/// RFC 9051 §6.4.5 section-spec: part path plus the kind of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Nested part numbers, e.g. [1, 2] for `1.2`; empty for the whole message.
    pub part: Vec<u32>,
    pub text: SectionText,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    /// `BODY[]` or `BODY[1.2]`: the whole message or part.
    Full,
    Header,
    /// Field names as sent (compare case-insensitively).
    HeaderFields(Vec<String>),
    HeaderFieldsNot(Vec<String>),
    Text,
    Mime,
}

/// `<origin.count>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partial {
    pub origin: u32,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttr {
    Flags,
    InternalDate,
    Rfc822Size,
    Envelope,
    /// `BODY` without a section: the non-extensible BODYSTRUCTURE.
    Body,
    BodyStructure,
    Uid,
    /// `BODY[section]<partial>` and `BODY.PEEK[...]`.
    BodySection {
        peek: bool,
        section: Section,
        partial: Option<Partial>,
    },
    /// RFC 3501 `RFC822` (= BODY[]), `RFC822.HEADER` (= BODY.PEEK[HEADER]), `RFC822.TEXT` (= BODY[TEXT]).
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    /// RFC 3516 `BINARY[part]<partial>` and `BINARY.PEEK`.
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<Partial>,
    },
    BinarySize {
        part: Vec<u32>,
    },
    /// RFC 7162 CONDSTORE.
    ModSeq,
    /// RFC 8514.
    SaveDate,
    /// RFC 8474 OBJECTID.
    EmailId,
    ThreadId,
    /// RFC 8970; `lazy` is the LAZY modifier.
    Preview {
        lazy: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Replace,
    Add,
    Remove,
}

/// A flag as sent: system flags keep their backslash (`\Seen`), keywords are atoms.
pub type Flag = String;

/// RFC 9051 §6.4.4 search keys (with RFC 7162 MODSEQ and RFC 5032 WITHIN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Answered,
    Deleted,
    Draft,
    Flagged,
    Seen,
    Recent,
    New,
    Old,
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unseen,
    Keyword(String),
    Unkeyword(String),
    /// Dates are days since 1970-01-01 (the date part only, as IMAP compares them).
    Before(i64),
    On(i64),
    Since(i64),
    SentBefore(i64),
    SentOn(i64),
    SentSince(i64),
    Larger(u64),
    Smaller(u64),
    Header(String, String),
    Bcc(String),
    Cc(String),
    From(String),
    To(String),
    Subject(String),
    Body(String),
    Text(String),
    Uid(SequenceSet),
    Seq(SequenceSet),
    /// RFC 9738 §3.2: UIDs above this one (`UID n+1:*`).
    UidAfter(u32),
    /// RFC 9738 §3.2: UIDs below this one (`UID 1:n-1`).
    UidBefore(u32),
    Not(Box<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    /// A parenthesised list: all must match.
    And(Vec<SearchKey>),
    /// RFC 7162 §3.1.5: MODSEQ n (the optional entry name/type are parsed and ignored).
    ModSeq(u64),
    /// RFC 5032 WITHIN: seconds.
    Older(u64),
    Younger(u64),
    /// RFC 8514 §4: by the date the message was saved to this mailbox (days since epoch).
    SavedBefore(i64),
    SavedOn(i64),
    SavedSince(i64),
    /// RFC 8514 §4: true for every message when the mailbox keeps save dates.
    SaveDateSupported,
    /// RFC 8474 §6: by object id.
    EmailId(String),
    ThreadId(String),
}

impl SearchKey {
    /// Whether a sequence set of message numbers appears anywhere in the key (`$`, the saved
    /// result, is not one: RFC 5182 keeps it as UIDs).
    pub fn uses_sequence_numbers(&self) -> bool {
        match self {
            SearchKey::Seq(SequenceSet::Saved) => false,
            SearchKey::Seq(_) => true,
            SearchKey::Not(k) => k.uses_sequence_numbers(),
            SearchKey::Or(a, b) => a.uses_sequence_numbers() || b.uses_sequence_numbers(),
            SearchKey::And(keys) => keys.iter().any(SearchKey::uses_sequence_numbers),
            _ => false,
        }
    }
}

/// RFC 4731 ESEARCH RETURN options, with RFC 9394 PARTIAL and RFC 5267 UPDATE (its CONTEXT
/// hint is read and dropped by the parser: it asks for nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchReturn {
    Min,
    Max,
    All,
    Count,
    Save,
    Partial(PartialRange),
    /// RFC 5267 §4.3: keep the result up to date with ADDTO and REMOVEFROM.
    Update,
}

/// RFC 9394 partial-range: the `first`-th to the `last`-th result (1-based, `first <= last`),
/// counted from the oldest (`1:100`) or, when `from_end`, from the newest (`-1:-100`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialRange {
    pub from_end: bool,
    pub first: u32,
    pub last: u32,
}

impl PartialRange {
    /// How many results the range can hold.
    pub fn width(&self) -> u64 {
        u64::from(self.last - self.first) + 1
    }

    /// The results in the range, still in ascending order (RFC 9394 §3).
    pub fn select<'a, T>(&self, results: &'a [T]) -> &'a [T] {
        let len = results.len();
        let (first, last) = (self.first as usize, self.last as usize);
        let (start, end) = if self.from_end {
            (len.saturating_sub(last), len.saturating_sub(first - 1))
        } else {
            ((first - 1).min(len), last.min(len))
        };
        &results[start..end]
    }
}

impl std::fmt::Display for PartialRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.from_end { "-" } else { "" };
        write!(f, "{sign}{}:{sign}{}", self.first, self.last)
    }
}

/// RFC 5256 §3 sort-key, with RFC 5957 §3 DISPLAYFROM and DISPLAYTO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// INTERNALDATE.
    Arrival,
    /// addr-mailbox of the first Cc address.
    Cc,
    /// The Date header, INTERNALDATE when it has none (RFC 5256 §2.2).
    Date,
    /// addr-mailbox of the first From address.
    From,
    /// RFC822.SIZE.
    Size,
    /// The base subject (RFC 5256 §2.1).
    Subject,
    /// addr-mailbox of the first To address.
    To,
    /// Display name of the first From address, else its addr-spec (RFC 5957 §3).
    DisplayFrom,
    /// Display name of the first To address, else its addr-spec (RFC 5957 §3).
    DisplayTo,
}

/// RFC 5256 §3 sort-criterion: `["REVERSE" SP] sort-key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortCriterion {
    pub reverse: bool,
    pub key: SortKey,
}

/// RFC 5256 §3 thread-alg: the algorithms ringmail implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    OrderedSubject,
    References,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    Size,
    HighestModSeq,
    /// RFC 8474 §4.
    MailboxId,
    /// RFC 7889 §3.
    AppendLimit,
}

/// RFC 5258 LIST-EXTENDED selection and return options, RFC 5819 LIST-STATUS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    pub subscribed: bool,
    pub remote: bool,
    pub recursive_match: bool,
    pub special_use: bool,
    pub return_subscribed: bool,
    pub return_children: bool,
    pub return_special_use: bool,
    pub return_status: Vec<StatusItem>,
}

/// RFC 7162 §3.2.5 SELECT (QRESYNC (uidvalidity modseq [known-uids [seq-match]])).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    pub uid_validity: u32,
    pub mod_seq: u64,
    pub known_uids: Option<SequenceSet>,
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectParams {
    pub condstore: bool,
    pub qresync: Option<Qresync>,
}

/// One message of an APPEND (MULTIAPPEND sends several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<Flag>,
    /// INTERNALDATE as unix seconds, if given.
    pub date: Option<i64>,
    pub message: Vec<u8>,
    /// Sent as `~{n}` (RFC 3516 literal8): may contain NUL.
    pub binary: bool,
    /// Where the message lies in the raw command when the parser was asked not to copy it
    /// (`parse_command_owned`); `message` is then filled by moving, not copying.
    pub span: Option<(usize, usize)>,
    /// RFC 4469 CATENATE: the parts the message is made of (`message` is empty until the
    /// session puts them together).
    pub catenate: Option<Vec<CatPart>>,
}

/// RFC 4469 §6 cat-part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatPart {
    /// `TEXT` literal (or literal8, or RFC 6855 `UTF8 (literal8)`), as sent.
    Text(Vec<u8>),
    /// `URL` astring: an IMAP URL (RFC 5092), absolute or relative.
    Url(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Capability,
    Noop,
    Logout,
    StartTls,
    /// Mechanism name and optional SASL-IR initial response (still base64).
    Authenticate {
        mechanism: String,
        initial: Option<String>,
    },
    Login {
        user: String,
        password: String,
    },
    /// RFC 8437: back to Not Authenticated on the same connection.
    Unauthenticate,
    Enable(Vec<String>),
    /// RFC 2971: field/value pairs, or NIL.
    Id(Option<Vec<(String, Option<String>)>>),
    Select {
        mailbox: String,
        params: SelectParams,
    },
    Examine {
        mailbox: String,
        params: SelectParams,
    },
    Create {
        mailbox: String,
        special_use: Vec<String>,
    },
    Delete {
        mailbox: String,
    },
    Rename {
        from: String,
        to: String,
    },
    Subscribe {
        mailbox: String,
    },
    Unsubscribe {
        mailbox: String,
    },
    List {
        reference: String,
        patterns: Vec<String>,
        options: ListOptions,
    },
    Lsub {
        reference: String,
        pattern: String,
    },
    Namespace,
    Status {
        mailbox: String,
        items: Vec<StatusItem>,
    },
    Append {
        mailbox: String,
        messages: Vec<AppendMessage>,
    },
    Check,
    Close,
    Unselect,
    Expunge,
    UidExpunge(SequenceSet),
    Search {
        uid: bool,
        charset: Option<String>,
        returns: Option<Vec<SearchReturn>>,
        key: SearchKey,
    },
    /// RFC 5256 §3 SORT: the charset is mandatory there, and checked by the session. With
    /// RETURN options (RFC 5267 §3 ESORT) it is answered with ESEARCH.
    Sort {
        uid: bool,
        returns: Option<Vec<SearchReturn>>,
        criteria: Vec<SortCriterion>,
        charset: String,
        key: SearchKey,
    },
    /// RFC 5256 §3 THREAD.
    Thread {
        uid: bool,
        algorithm: ThreadAlgorithm,
        charset: String,
        key: SearchKey,
    },
    Fetch {
        uid: bool,
        set: SequenceSet,
        attrs: Vec<FetchAttr>,
        changed_since: Option<u64>,
        vanished: bool,
        /// RFC 9394 §4: only this range of the messages the set (and CHANGEDSINCE) selects.
        partial: Option<PartialRange>,
    },
    Store {
        uid: bool,
        set: SequenceSet,
        mode: StoreMode,
        silent: bool,
        flags: Vec<Flag>,
        unchanged_since: Option<u64>,
    },
    Copy {
        uid: bool,
        set: SequenceSet,
        mailbox: String,
    },
    Move {
        uid: bool,
        set: SequenceSet,
        mailbox: String,
    },
    /// RFC 8508: APPEND `message` to `mailbox` and expunge the message `target` names, at once.
    Replace {
        uid: bool,
        target: SeqBound,
        mailbox: String,
        message: AppendMessage,
    },
    Idle,
    GetQuota {
        root: String,
    },
    GetQuotaRoot {
        mailbox: String,
    },
    /// RFC 4978.
    Compress {
        mechanism: String,
    },
    /// RFC 4467 §6.1: a new access key for `mailbox` (with the mechanisms named), or none left
    /// for any mailbox.
    ResetKey {
        mailbox: Option<String>,
        mechanisms: Vec<String>,
    },
    /// RFC 4467 §6.2: (rump URL, mechanism) pairs, the mechanism in upper case.
    GenUrlauth(Vec<(String, String)>),
    /// RFC 4467 §6.3: URLAUTH URLs to fetch.
    UrlFetch(Vec<String>),
    /// RFC 5464 §4.2; mailbox "" is the server.
    GetMetadata {
        mailbox: String,
        entries: Vec<String>,
        max_size: Option<u32>,
        depth: MetadataDepth,
    },
    /// RFC 5464 §4.3: a value of `None` (NIL) removes the entry.
    SetMetadata {
        mailbox: String,
        entries: Vec<(String, Option<Vec<u8>>)>,
    },
    /// RFC 5465: `None` is NOTIFY NONE; otherwise the STATUS indicator and the event groups.
    Notify(Option<(bool, Vec<NotifyGroup>)>),
    /// RFC 5267 §4.3.5: the tags of the searching commands whose updates should stop.
    CancelUpdate(Vec<String>),
}

/// One `(filter events)` group of NOTIFY SET (RFC 5465 §6); no events is `NONE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyGroup {
    pub filter: NotifyFilter,
    pub events: Vec<NotifyEvent>,
}

/// RFC 5465 §6.1 filter-mailboxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyFilter {
    Selected,
    SelectedDelayed,
    Inboxes,
    Personal,
    Subscribed,
    Subtree(Vec<String>),
    Mailboxes(Vec<String>),
}

/// RFC 5465 §5 events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyEvent {
    /// With the FETCH attributes to send for each new message of the selected mailbox.
    MessageNew(Vec<FetchAttr>),
    MessageExpunge,
    FlagChange,
    AnnotationChange,
    MailboxName,
    SubscriptionChange,
    MailboxMetadataChange,
    ServerMetadataChange,
}

/// GETMETADATA's DEPTH option (RFC 5464 §4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataDepth {
    Zero,
    One,
    Infinity,
}

impl Command {
    /// The command's name without `UID` (what RFC 9051 §9 calls the command).
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Capability => "CAPABILITY",
            Command::Noop => "NOOP",
            Command::Logout => "LOGOUT",
            Command::StartTls => "STARTTLS",
            Command::Authenticate { .. } => "AUTHENTICATE",
            Command::Login { .. } => "LOGIN",
            Command::Unauthenticate => "UNAUTHENTICATE",
            Command::Enable(_) => "ENABLE",
            Command::Id(_) => "ID",
            Command::Select { .. } => "SELECT",
            Command::Examine { .. } => "EXAMINE",
            Command::Create { .. } => "CREATE",
            Command::Delete { .. } => "DELETE",
            Command::Rename { .. } => "RENAME",
            Command::Subscribe { .. } => "SUBSCRIBE",
            Command::Unsubscribe { .. } => "UNSUBSCRIBE",
            Command::List { .. } => "LIST",
            Command::Lsub { .. } => "LSUB",
            Command::Namespace => "NAMESPACE",
            Command::Status { .. } => "STATUS",
            Command::Append { .. } => "APPEND",
            Command::Check => "CHECK",
            Command::Close => "CLOSE",
            Command::Unselect => "UNSELECT",
            Command::Expunge | Command::UidExpunge(_) => "EXPUNGE",
            Command::Search { .. } => "SEARCH",
            Command::Sort { .. } => "SORT",
            Command::Thread { .. } => "THREAD",
            Command::Fetch { .. } => "FETCH",
            Command::Store { .. } => "STORE",
            Command::Copy { .. } => "COPY",
            Command::Move { .. } => "MOVE",
            Command::Replace { .. } => "REPLACE",
            Command::Idle => "IDLE",
            Command::GetQuota { .. } => "GETQUOTA",
            Command::GetQuotaRoot { .. } => "GETQUOTAROOT",
            Command::Compress { .. } => "COMPRESS",
            Command::ResetKey { .. } => "RESETKEY",
            Command::GenUrlauth(_) => "GENURLAUTH",
            Command::UrlFetch(_) => "URLFETCH",
            Command::GetMetadata { .. } => "GETMETADATA",
            Command::SetMetadata { .. } => "SETMETADATA",
            Command::Notify(_) => "NOTIFY",
            Command::CancelUpdate(_) => "CANCELUPDATE",
        }
    }

    /// Whether the command names messages by sequence number: a non-UID message command, a
    /// search program with a sequence set, or QRESYNC's sequence match data. RFC 9586 §3 refuses
    /// these once UIDONLY is on.
    pub fn uses_sequence_numbers(&self) -> bool {
        match self {
            Command::Fetch { uid, .. }
            | Command::Store { uid, .. }
            | Command::Copy { uid, .. }
            | Command::Move { uid, .. }
            | Command::Replace { uid, .. } => !uid,
            Command::Search { uid, key, .. } | Command::Sort { uid, key, .. } | Command::Thread { uid, key, .. } => {
                !uid || key.uses_sequence_numbers()
            }
            Command::Select { params, .. } | Command::Examine { params, .. } => {
                params.qresync.as_ref().is_some_and(|q| q.seq_match.is_some())
            }
            _ => false,
        }
    }

    /// Sent as `UID FETCH`, `UID STORE`, ... (RFC 9051 §6.4.9).
    pub fn is_uid(&self) -> bool {
        matches!(
            self,
            Command::UidExpunge(_)
                | Command::Search { uid: true, .. }
                | Command::Sort { uid: true, .. }
                | Command::Thread { uid: true, .. }
                | Command::Fetch { uid: true, .. }
                | Command::Store { uid: true, .. }
                | Command::Copy { uid: true, .. }
                | Command::Move { uid: true, .. }
                | Command::Replace { uid: true, .. }
        )
    }
}
