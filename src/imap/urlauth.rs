//! URLAUTH (RFC 4467): IMAP URLs that carry their own authorization. What GENURLAUTH checks in
//! a rump URL, the INTERNAL mechanism's token, the access rules, and `fetch`: the one way such
//! a URL becomes data, shared by URLFETCH and by BURL in submission (RFC 4468), which reads the
//! store directly instead of connecting to IMAP.
//!
//! Owns: what the token covers — the rump URL exactly as sent, up to and including
//! `;URLAUTH=access` (§7) — and how it is made: HMAC-SHA256 keyed with the mailbox access key,
//! written as 64 lower-case hex digits (`enc-urlauth = 32*HEXDIG`); who may use a URL (§3);
//! when it expires. The URL grammar is `url`'s. Never: writes (the store's writer makes and
//! resets keys), reads a clock (`now` comes in), or says why a token did not verify: a missing
//! user, mailbox or key costs the same HMAC as a wrong token and gets the same answer, so
//! mailbox names cannot be probed (§9).
//!
//! ringmail has no anonymous access (DESIGN.md §6): `anonymous` URLs are neither made nor
//! honoured. No IMAP session is a submission agent, so `submit+` URLs are honoured by BURL
//! alone, for the submitter they name, and BURL honours nothing else.

use ring::hmac;

use super::format::hex_value;
use super::parse::{days_from_civil, section_spec};
use super::types::{Partial, Section, SectionText};
pub use super::url::Access;
use super::url::ImapUrl;
use super::view::{section_of, MailRead};
use crate::store::urlauth::{AccessKey, KEY_LEN};
use crate::store::{Mailbox, StoreError};

/// The one authorization mechanism (RFC 4467 §7; IANA registers no other).
pub const INTERNAL: &str = "INTERNAL";

/// Who asks for a URL's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester<'a> {
    /// An IMAP session logged in as this user (URLFETCH).
    Imap(&'a str),
    /// The submission server, for this authenticated submitter (BURL).
    Submission(&'a str),
}

impl Access {
    /// RFC 4467 §3, as ringmail applies it (see the module doc).
    pub fn admits(&self, who: Requester<'_>) -> bool {
        match (self, who) {
            (Access::User(user), Requester::Imap(me)) => user == me,
            (Access::AuthUser, Requester::Imap(_)) => true,
            (Access::Submit(user), Requester::Submission(me)) => user == me,
            _ => false,
        }
    }
}

/// An IMAP URL naming one message, or part of one, with `;URLAUTH=`: checked and taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUrl<'a> {
    /// What the token covers (RFC 4467 §7): the URL as sent, without `:mechanism:token`.
    pub rump: &'a str,
    /// The user whose mailbox, and whose key, the URL names (`enc-user`).
    pub owner: String,
    pub mailbox: String,
    pub uid_validity: Option<u32>,
    pub uid: u32,
    /// The whole message when the URL has no `;SECTION=`.
    pub section: Section,
    pub partial: Option<Partial>,
    /// `;EXPIRE=`, as unix seconds.
    pub expire: Option<i64>,
    pub access: Access,
    /// The mechanism and the token's octets; `None` in a rump URL (GENURLAUTH's input).
    pub verifier: Option<(String, Vec<u8>)>,
}

impl<'a> AuthUrl<'a> {
    /// RFC 4467 §3 `authimapurlfull` or `authimapurlrump`: an absolute `imap://` URL with a
    /// user, a mailbox and a UID, and `;URLAUTH=`. The error is the reason, for a client.
    pub fn parse(text: &'a str) -> Result<AuthUrl<'a>, &'static str> {
        let scheme = text.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("imap://"));
        if !scheme {
            return Err("not an imap:// URL");
        }
        let url = ImapUrl::parse(text).map_err(|e| e.0)?;
        let owner = url.server.as_ref().and_then(|s| s.user.clone());
        let owner = owner.ok_or("the URL names no user (imap://user@host/...)")?;
        if url.search.is_some() {
            return Err("the URL names a search, not a message");
        }
        let part = url.message_part().map_err(|e| e.0)?;
        let mailbox = part.mailbox.ok_or("the URL names no mailbox")?.to_owned();
        let urlauth = url.urlauth.as_ref().ok_or("not a URLAUTH URL (;URLAUTH= missing)")?;
        let section = match part.section {
            Some(spec) => section_spec(spec).ok_or("invalid ;SECTION=")?,
            None => Section {
                part: Vec::new(),
                text: SectionText::Full,
            },
        };
        let partial = part.partial.map(super::url::UrlPartial::window);
        let expire = match &url.expire {
            Some(text) => Some(rfc3339(text).ok_or("invalid ;EXPIRE= date-time")?),
            None => None,
        };
        let verifier = match &urlauth.verifier {
            Some((mechanism, token)) => Some((mechanism.clone(), unhex(token).ok_or("invalid URLAUTH token")?)),
            None => None,
        };
        Ok(AuthUrl {
            rump: rump(text),
            owner,
            mailbox,
            uid_validity: part.uid_validity,
            uid: part.uid,
            section,
            partial,
            expire,
            access: urlauth.access.clone(),
            verifier,
        })
    }

    fn expired(&self, now: i64) -> bool {
        self.expire.is_some_and(|t| now > t)
    }

    /// GENURLAUTH's checks of a rump URL for `user` (RFC 4467 §6.2); the mailbox is the
    /// caller's to find. The error is the reason, for a client.
    pub fn check_rump(&self, user: &str, now: i64) -> Result<(), &'static str> {
        if self.verifier.is_some() {
            return Err("the URL is authorized already: give it up to ;URLAUTH=access");
        }
        if self.owner != user {
            return Err("only the owner of a mailbox authorizes URLs of it");
        }
        if self.access == Access::Anonymous {
            // DESIGN.md §6.
            return Err("anonymous access is not offered");
        }
        if self.expired(now) {
            return Err("the URL would have expired already");
        }
        Ok(())
    }
}

/// The authorized URL (RFC 4467 §6.2): the rump, the mechanism and the token.
pub fn authorize(rump: &str, key: &AccessKey) -> String {
    format!("{rump}:{INTERNAL}:{}", token(key, rump))
}

/// The rump of a URL that `AuthUrl::parse` accepted: up to the `:` after `;URLAUTH=access`.
/// `;` appears raw in an IMAP URL only before a parameter, and `;URLAUTH=` is the last one.
fn rump(text: &str) -> &str {
    const MARK: &str = ";URLAUTH=";
    // ASCII case mapping keeps every byte where it was.
    let Some(at) = text.to_ascii_uppercase().rfind(MARK) else {
        return text;
    };
    let access = at + MARK.len();
    match text[access..].find(':') {
        Some(colon) => &text[..access + colon],
        None => text,
    }
}

/// The INTERNAL token of `rump` (RFC 4467 §7), in hex.
pub fn token(key: &AccessKey, rump: &str) -> String {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), rump.as_bytes());
    hex(tag.as_ref())
}

/// Whether `token` is `rump`'s under `key`, compared in constant time.
fn verifies(key: &AccessKey, rump: &str, token: &[u8]) -> bool {
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, key), rump.as_bytes(), token).is_ok()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Hex digits (any case) to octets; `None` for an odd count or a non-digit.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| Some(hex_value(pair[0])? << 4 | hex_value(pair[1])?))
        .collect()
}

/// RFC 3339 §5.6 date-time as unix seconds: `2026-05-26T20:37:00Z`,
/// `2026-05-26T22:37:00.5+02:00` (`T` and `Z` in either case, fractions of a second dropped,
/// a leap second landing on the next minute).
fn rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if !separators.iter().all(|&(i, c)| b[i].eq_ignore_ascii_case(&c)) {
        return None;
    }
    // Bytes 0..19 are ASCII, so 19 is a character boundary.
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &fraction[digits..];
    }
    let offset = if rest.eq_ignore_ascii_case("Z") {
        0
    } else {
        let z = rest.as_bytes();
        let sign = match z.first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let digits = |r: std::ops::Range<usize>| {
            let d = z.get(r)?;
            d.iter()
                .all(u8::is_ascii_digit)
                .then(|| i64::from(d[0] - b'0') * 10 + i64::from(d[1] - b'0'))
        };
        let (h, m) = (digits(1..3)?, digits(4..6)?);
        if z.len() != 6 || z[3] != b':' || h > 23 || m > 59 {
            return None;
        }
        sign * (h * 3600 + m * 60)
    };
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)?;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Why a URL gives no data. URLFETCH answers NIL for each (RFC 4467 §6.3) but `Store`; BURL
/// answers each with its own reply (RFC 4468 §6).
#[derive(Debug)]
pub enum Refusal {
    /// Not a URLAUTH URL naming a message; the reason.
    Invalid(&'static str),
    /// Authorized by a mechanism other than INTERNAL.
    Mechanism,
    Expired,
    /// The access identifier does not admit the requester.
    Access,
    /// The token does not verify (or there is no such user, mailbox or key: the same answer).
    Token,
    /// Authorized, but the message, its UIDVALIDITY or the section is not there (any more).
    Gone,
    Store(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Refusal {
        Refusal::Store(e)
    }
}

impl Refusal {
    /// For BURL's reply and the log.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Invalid(why) => why,
            Refusal::Mechanism => "the URL's URLAUTH mechanism is not INTERNAL",
            Refusal::Expired => "the URL has expired",
            Refusal::Access => "the URL's access identifier does not allow this use",
            Refusal::Token => "the URL's authorization does not verify",
            Refusal::Gone => "no such message or part",
            Refusal::Store(_) => "the message store failed",
        }
    }
}

/// The data a URLAUTH URL names, for `who` at `now`: the bytes `BODY.PEEK[section]<partial>`
/// would send (RFC 4467 §6.3). Never sets \Seen.
pub fn fetch(store: &dyn MailRead, text: &str, who: Requester<'_>, now: i64) -> Result<Vec<u8>, Refusal> {
    let url = AuthUrl::parse(text).map_err(Refusal::Invalid)?;
    let Some((mechanism, token)) = &url.verifier else {
        return Err(Refusal::Invalid("the URL is not authorized (:INTERNAL:token missing)"));
    };
    if !mechanism.eq_ignore_ascii_case(INTERNAL) {
        return Err(Refusal::Mechanism);
    }
    if url.expired(now) {
        return Err(Refusal::Expired);
    }
    if !url.access.admits(who) {
        return Err(Refusal::Access);
    }
    let mailbox = match keyed_mailbox(store, &url)? {
        Some((mailbox, key)) if verifies(&key, url.rump, token) => mailbox,
        Some(_) => return Err(Refusal::Token),
        None => {
            // RFC 4467 §9: the same work as for a wrong token, with a key nobody has.
            let _ = verifies(&[0; KEY_LEN], url.rump, token);
            return Err(Refusal::Token);
        }
    };
    section_of(
        store,
        &mailbox,
        (url.uid_validity, url.uid),
        (&url.section, url.partial),
    )?
    .map_err(|_| Refusal::Gone)
}

/// The URL's mailbox and its access key, when the owner, the mailbox and a key all exist.
fn keyed_mailbox(store: &dyn MailRead, url: &AuthUrl<'_>) -> Result<Option<(Mailbox, AccessKey)>, StoreError> {
    let Some(owner) = store.user(&url.owner)? else {
        return Ok(None);
    };
    let Some(mailbox) = store.mailbox(owner.id, &url.mailbox)? else {
        return Ok(None);
    };
    Ok(store.urlauth_key(owner.id, mailbox.id)?.map(|key| (mailbox, key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::scram::ScramCredentials;
    use crate::auth::scram::ScramKeys;
    use crate::imap::view::MessageBytes;
    use crate::mime::Structure;
    use crate::store::records::{BodyId, MailboxId, Uid, Usage, UserId};
    use crate::store::{MessageRecord, User};

    const KEY: AccessKey = [7; KEY_LEN];

    /// A store with one user, bob (id 1): INBOX (id 5, UIDVALIDITY 9) holding UID 3 and keyed
    /// with `KEY`, and Trash (id 6) without a key.
    struct BobsStore {
        message: Vec<u8>,
        structure: Structure,
    }

    impl BobsStore {
        fn new() -> BobsStore {
            let raw = b"Subject: s\r\n\r\nHello Bob.\r\n".to_vec();
            let (message, structure) = crate::mime::ingest(raw).unwrap();
            BobsStore { message, structure }
        }
    }

    impl MailRead for BobsStore {
        fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
            Ok((name == "bob").then(|| {
                let scram = ScramCredentials::derive("pw", b"salt", 4096).unwrap();
                User::new(1, "bob".into(), String::new(), scram)
            }))
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
        fn mailbox(&self, user: UserId, name: &str) -> Result<Option<Mailbox>, StoreError> {
            let id = match (user, name) {
                (1, "INBOX") => 5,
                (1, "Trash") => 6,
                _ => return Ok(None),
            };
            Ok(Some(Mailbox {
                uid_next: 4,
                messages: 1,
                size: self.message.len() as u64,
                first_recent_uid: 4,
                ..Mailbox::new(id, 1, name, 9, None)
            }))
        }
        fn mailbox_by_id(&self, _: MailboxId) -> Result<Option<Mailbox>, StoreError> {
            Ok(None)
        }
        fn each_message(&self, _: MailboxId, _: &mut dyn FnMut(Uid, &MessageRecord)) -> Result<(), StoreError> {
            Ok(())
        }
        fn message(&self, mailbox: MailboxId, uid: Uid) -> Result<Option<MessageRecord>, StoreError> {
            Ok((mailbox == 5 && uid == 3).then(|| MessageRecord {
                flags: 0,
                internal_date: 0,
                save_date: 0,
                size: self.message.len() as u64,
                modseq: 1,
                body_id: 1,
                keywords: Vec::new(),
            }))
        }
        fn structure(&self, _: BodyId) -> Result<Option<Structure>, StoreError> {
            Ok(Some(self.structure.clone()))
        }
        fn body(&self, _: BodyId) -> Result<Box<dyn MessageBytes + '_>, StoreError> {
            Ok(Box::new(self.message.clone()))
        }
        fn expunged_since(&self, _: &Mailbox, _: u64) -> Result<crate::store::modseq::Expunged, StoreError> {
            Ok(crate::store::modseq::Expunged::Known(Vec::new()))
        }
        fn usage(&self, _: UserId) -> Result<Usage, StoreError> {
            Ok(Usage::default())
        }
        fn urlauth_key(&self, user: UserId, mailbox: MailboxId) -> Result<Option<AccessKey>, StoreError> {
            Ok((user == 1 && mailbox == 5).then_some(KEY))
        }
    }

    #[test]
    fn fetch_verifies_then_reads() {
        use Requester::{Imap, Submission};
        let store = BobsStore::new();
        let signed = |rump: &str| authorize(rump, &KEY);
        let inbox = "imap://bob@h/INBOX/;UID=3";
        let whole = signed(&format!("{inbox};URLAUTH=user+bob"));
        let tampered = format!(
            "{}{}",
            &whole[..whole.len() - 1],
            if whole.ends_with('0') { '1' } else { '0' }
        );
        let expiring = signed(&format!("{inbox};EXPIRE=1970-01-01T00:01:40Z;URLAUTH=authuser"));
        let ok = |data: &[u8]| Ok(data.to_vec());
        let refused = |r: Refusal| Err(r.reason());
        // (URL, who asks, now, the data or the refusal's reason)
        type Row<'a> = (String, Requester<'a>, i64, Result<Vec<u8>, &'static str>);
        let rows: Vec<Row> = vec![
            (whole.clone(), Imap("bob"), 0, ok(&store.message)),
            (whole.clone(), Imap("alice"), 0, refused(Refusal::Access)),
            (whole.clone(), Submission("bob"), 0, refused(Refusal::Access)),
            (
                signed(&format!("{inbox};URLAUTH=submit+bob")),
                Submission("bob"),
                0,
                ok(&store.message),
            ),
            (
                signed(&format!("{inbox};URLAUTH=submit+bob")),
                Submission("eve"),
                0,
                refused(Refusal::Access),
            ),
            (
                signed(&format!("{inbox};URLAUTH=anonymous")),
                Imap("bob"),
                0,
                refused(Refusal::Access),
            ),
            (
                signed(&format!("{inbox}/;SECTION=TEXT/;PARTIAL=6.3;URLAUTH=authuser")),
                Imap("alice"),
                0,
                ok(b"Bob"),
            ),
            (tampered, Imap("bob"), 0, refused(Refusal::Token)),
            (
                whole.replacen("UID=3", "UID=4", 1),
                Imap("bob"),
                0,
                refused(Refusal::Token),
            ),
            // No key, no mailbox, no user: the same answer as a wrong token.
            (
                signed("imap://bob@h/Trash/;UID=3;URLAUTH=user+bob"),
                Imap("bob"),
                0,
                refused(Refusal::Token),
            ),
            (
                signed("imap://bob@h/Nope/;UID=3;URLAUTH=user+bob"),
                Imap("bob"),
                0,
                refused(Refusal::Token),
            ),
            (
                signed("imap://eve@h/INBOX/;UID=3;URLAUTH=user+bob"),
                Imap("bob"),
                0,
                refused(Refusal::Token),
            ),
            // Verified, but nothing there.
            (
                signed("imap://bob@h/INBOX/;UID=4;URLAUTH=user+bob"),
                Imap("bob"),
                0,
                refused(Refusal::Gone),
            ),
            (
                signed("imap://bob@h/INBOX;UIDVALIDITY=8/;UID=3;URLAUTH=user+bob"),
                Imap("bob"),
                0,
                refused(Refusal::Gone),
            ),
            (
                signed("imap://bob@h/INBOX;UIDVALIDITY=9/;UID=3/;SECTION=2;URLAUTH=user+bob"),
                Imap("bob"),
                0,
                refused(Refusal::Gone),
            ),
            // `;EXPIRE=` against the caller's clock.
            (expiring.clone(), Imap("bob"), 100, ok(&store.message)),
            (expiring, Imap("bob"), 101, refused(Refusal::Expired)),
            (
                whole.replace(":INTERNAL:", ":OTHER:"),
                Imap("bob"),
                0,
                refused(Refusal::Mechanism),
            ),
            (
                format!("{inbox};URLAUTH=user+bob"),
                Imap("bob"),
                0,
                refused(Refusal::Invalid("the URL is not authorized (:INTERNAL:token missing)")),
            ),
        ];
        for (url, who, now, want) in rows {
            let got = fetch(&store, &url, who, now).map_err(|r| r.reason());
            assert_eq!(got, want, "{url} {who:?} at {now}");
        }
    }

    #[test]
    fn token_is_hmac_sha256_of_the_rump_in_hex() {
        // RFC 4231 test case 2 ("Jefe"), to pin the construction to HMAC-SHA256 of the text.
        // HMAC pads a key shorter than its block with zeros, so "Jefe" padded to KEY_LEN is
        // the same key.
        let mut jefe = [0; KEY_LEN];
        jefe[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            token(&jefe, "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let rump = "imap://bob@example.org/INBOX/;UID=1;URLAUTH=user+bob";
        let t = token(&KEY, rump);
        assert_eq!(t.len(), 64, "enc-urlauth = 32*HEXDIG");
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(t, token(&KEY, rump), "deterministic");
        assert_ne!(t, token(&[8; KEY_LEN], rump), "keyed");
        assert_ne!(t, token(&KEY, &rump.replace("UID=1", "UID=2")), "covers the rump");
        assert!(verifies(&KEY, rump, &unhex(&t).unwrap()));
        assert!(verifies(&KEY, rump, &unhex(&t.to_ascii_uppercase()).unwrap()));
        assert!(!verifies(&KEY, rump, &unhex(&t[..62]).unwrap()));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("+5"), None, "HEXDIG only");
    }

    #[test]
    fn the_rump_is_everything_before_the_mechanism() {
        let rows = [
            (
                "imap://bob@h/INBOX/;UID=1;URLAUTH=user+bob:INTERNAL:00ff00ff00ff00ff00ff00ff00ff00ff",
                "imap://bob@h/INBOX/;UID=1;URLAUTH=user+bob",
            ),
            (
                "imap://bob@h:143/a:b/;UID=1;EXPIRE=2030-01-01T00:00:00Z;urlauth=authuser:internal:0123456789abcdef0123456789ABCDEF",
                "imap://bob@h:143/a:b/;UID=1;EXPIRE=2030-01-01T00:00:00Z;urlauth=authuser",
            ),
            (
                "imap://bob@h/INBOX/;UID=1;URLAUTH=submit+bob",
                "imap://bob@h/INBOX/;UID=1;URLAUTH=submit+bob",
            ),
        ];
        for (url, want) in rows {
            assert_eq!(AuthUrl::parse(url).unwrap().rump, want, "{url}");
        }
    }

    #[test]
    fn urls_taken_apart() {
        let url = AuthUrl::parse(
            "imap://bob;AUTH=*@mail.example.org:993/Sent%20Items;UIDVALIDITY=9/;UID=20/;SECTION=1.2\
             /;PARTIAL=10.5;EXPIRE=2030-01-02T03:04:05+01:00;URLAUTH=submit+bob:internal:\
             0a0B0a0B0a0B0a0B0a0B0a0B0a0B0a0B",
        )
        .unwrap();
        assert_eq!(url.owner, "bob");
        assert_eq!(url.mailbox, "Sent Items");
        assert_eq!((url.uid_validity, url.uid), (Some(9), 20));
        assert_eq!(url.section.part, vec![1, 2]);
        assert_eq!(url.partial, Some(Partial { origin: 10, count: 5 }));
        assert_eq!(url.expire, Some(1_893_549_845), "02:04:05 UTC");
        assert_eq!(url.access, Access::Submit("bob".into()));
        assert_eq!(url.verifier, Some(("internal".into(), [10, 11].repeat(8))));
        let whole = AuthUrl::parse("imap://bob@h/INBOX/;UID=3;URLAUTH=AUTHUSER").unwrap();
        assert_eq!(whole.section.text, SectionText::Full);
        assert_eq!((whole.partial, whole.expire, whole.verifier), (None, None, None));
        assert_eq!(whole.access, Access::AuthUser);
    }

    #[test]
    fn invalid_urls() {
        let rows = [
            ("//bob@h/INBOX/;UID=1;URLAUTH=user+bob", "not an imap:// URL"),
            (
                "imap://h/INBOX/;UID=1;URLAUTH=user+bob",
                "the URL names no user (imap://user@host/...)",
            ),
            ("imap://bob@h/INBOX/;UID=1", "not a URLAUTH URL (;URLAUTH= missing)"),
            ("imap://bob@h/INBOX;URLAUTH=user+bob", ";URLAUTH= without ;UID="),
            (
                "imap://bob@h/INBOX/;UID=1/;SECTION=9X;URLAUTH=user+bob",
                "invalid ;SECTION=",
            ),
            (
                "imap://bob@h/INBOX/;UID=1;EXPIRE=2030-13-01T00:00:00Z;URLAUTH=user+bob",
                "invalid ;EXPIRE= date-time",
            ),
            (
                "imap://bob@h/INBOX/;UID=1;URLAUTH=user+bob:INTERNAL:0123456789abcdef0123456789abcdef0",
                "invalid URLAUTH token",
            ),
            ("imap://bob@h/INBOX/;UID=1;URLAUTH=root", "invalid ;URLAUTH="),
        ];
        for (url, why) in rows {
            assert_eq!(AuthUrl::parse(url).err(), Some(why), "{url}");
        }
    }

    #[test]
    fn expire_dates() {
        let rows = [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("1970-01-01t00:00:00z", Some(0)),
            ("2000-02-29T12:00:00.123Z", Some(951_825_600)),
            ("2000-02-29T14:30:00+02:30", Some(951_825_600)),
            ("2000-02-29T09:00:00-03:00", Some(951_825_600)),
            ("2016-12-31T23:59:60Z", Some(1_483_228_800)),
            ("2001-02-29T00:00:00Z", None),
            ("2000-01-01T24:00:00Z", None),
            ("2000-01-01T00:00:00", None),
            ("2000-01-01T00:00:00.Z", None),
            ("2000-01-01T00:00:00+0100", None),
            ("2000-01-01 00:00:00Z", None),
        ];
        for (text, want) in rows {
            assert_eq!(rfc3339(text), want, "{text}");
        }
    }

    #[test]
    fn who_each_access_admits() {
        use Requester::{Imap, Submission};
        let rows = [
            (Access::User("bob".into()), Imap("bob"), true),
            (Access::User("bob".into()), Imap("alice"), false),
            (Access::User("bob".into()), Submission("bob"), false),
            (Access::AuthUser, Imap("alice"), true),
            (Access::AuthUser, Submission("bob"), false),
            (Access::Submit("bob".into()), Submission("bob"), true),
            (Access::Submit("bob".into()), Submission("alice"), false),
            (Access::Submit("bob".into()), Imap("bob"), false),
            (Access::Anonymous, Imap("bob"), false),
            (Access::Anonymous, Submission("bob"), false),
        ];
        for (access, who, admitted) in rows {
            assert_eq!(access.admits(who), admitted, "{access:?} {who:?}");
        }
        assert_eq!(Access::parse("Submit+bob"), Some(Access::Submit("bob".into())));
        assert_eq!(Access::parse("user+"), None);
    }

    #[test]
    fn genurlauth_rules() {
        let rump = |access: &str| format!("imap://bob@h/INBOX/;UID=1;EXPIRE=2030-01-01T00:00:00Z;URLAUTH={access}");
        let check = |url: &str, user: &str, now: i64| AuthUrl::parse(url).unwrap().check_rump(user, now);
        assert_eq!(check(&rump("submit+bob"), "bob", 0), Ok(()));
        assert_eq!(check(&rump("user+alice"), "bob", 0), Ok(()));
        assert!(check(&rump("user+bob"), "alice", 0).is_err(), "not the owner");
        assert!(check(&rump("anonymous"), "bob", 0).is_err(), "no anonymous access");
        assert!(check(&rump("authuser"), "bob", 2_000_000_000).is_err(), "expired");
        let full = format!("{}:INTERNAL:{}", rump("authuser"), "00".repeat(32));
        assert!(check(&full, "bob", 0).is_err(), "already authorized");
        let text = rump("user+bob");
        let url = AuthUrl::parse(&text).unwrap();
        let authorized = authorize(url.rump, &KEY);
        let again = AuthUrl::parse(&authorized).unwrap();
        assert_eq!(again.rump, rump("user+bob"));
        let (mechanism, token) = again.verifier.unwrap();
        assert_eq!(mechanism, INTERNAL);
        assert!(verifies(&KEY, again.rump, &token));
    }
}
