//! `ringmail import USER --from imaps://[LOGIN@]HOST[:PORT]` (or `imap://`, with STARTTLS):
//! every folder of an account on any IMAP server, as imapsync copies it — each message with
//! its flags, keywords, INTERNALDATE and bytes — at the UIDs it had there, under the source
//! folder's UIDVALIDITY, so clients that knew the mailbox there keep their caches here.
//!
//! It reads with EXAMINE and `BODY.PEEK[]` (the source is never changed), folder by folder,
//! in batches of `BATCH` UIDs, each committed before the next is fetched; run again, it adds
//! only what is new (the store's `Import` skips UIDs it has). Like every import it runs on a
//! stopped server, and a folder here that holds mail under another UIDVALIDITY stops it.
//! POP3 UIDLs are the server's own (`UIDVALIDITY.UID`): IMAP does not tell the source's.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use super::check::imap::Imap;
use crate::config::Config;
use crate::store::records::{flags, Uid};
use crate::store::{ImportedMessage, NewMessage, Store, WriteOp, WriteOutcome, SEPARATOR};

/// UIDs asked for in one FETCH, and committed in one write.
const BATCH: u32 = 100;
/// An answer (a batch's FETCH) may take this long.
const TIMEOUT: Duration = Duration::from_secs(300);
pub const PASSWORD_ENV: &str = "RINGMAIL_IMPORT_PASSWORD";

/// An IMAP server to import from, as `--from` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    /// Implicit TLS (`imaps://`, port 993) or STARTTLS (`imap://`, port 143).
    pub implicit_tls: bool,
    pub host: String,
    pub port: u16,
    /// The login name there; none: the user's name here.
    pub login: Option<String>,
}

impl ImapUrl {
    pub fn parse(url: &str) -> Result<ImapUrl, String> {
        let (implicit_tls, rest) = if let Some(rest) = url.strip_prefix("imaps://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("imap://") {
            (false, rest)
        } else {
            return Err(format!("{url:?}: the form is imaps://[LOGIN@]HOST[:PORT]"));
        };
        let rest = rest.trim_end_matches('/');
        let (login, hostport) = match rest.rsplit_once('@') {
            Some((login, hostport)) => (Some(percent_decode(login)?), hostport),
            None => (None, rest),
        };
        let default = if implicit_tls { 993 } else { 143 };
        let port_of = |p: &str| p.parse::<u16>().map_err(|_| format!("{url:?}: bad port {p:?}"));
        let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: bad IPv6 address"))?;
            match after.strip_prefix(':') {
                Some(p) => (host, port_of(p)?),
                None if after.is_empty() => (host, default),
                None => return Err(format!("{url:?}: bad IPv6 address")),
            }
        } else {
            match hostport.split_once(':') {
                Some((host, p)) => (host, port_of(p)?),
                None => (hostport, default),
            }
        };
        if host.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        Ok(ImapUrl {
            implicit_tls,
            host: host.to_owned(),
            port,
            login,
        })
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("a bad %-escape in the login")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "a bad %-escape in the login")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the login is not UTF-8".to_owned())
}

/// How to prove who we are to the source.
pub struct SourceAuth {
    pub password_stdin: bool,
    pub ca: Option<std::path::PathBuf>,
    pub insecure: bool,
}

/// Imports the account at `url` (logging in with `password`) into `user`'s mailboxes in
/// `store` (whose lock the caller holds).
pub fn import_into(
    config: &Config,
    store: &Store,
    user: &str,
    (url, auth): (&ImapUrl, &SourceAuth),
    password: String,
) -> Result<()> {
    let account = super::import::account(config, store, user)?;
    let tls = if auth.insecure {
        super::check::conn::insecure_config()?
    } else {
        crate::tls::client_config(auth.ca.as_deref(), "--ca")
            .ok_or_else(|| anyhow!("no CA certificates: pass --ca FILE"))?
    };
    let target = super::check::target_for(url.host.clone(), tls, TIMEOUT)?;
    let mut imap = Imap::connect(&target, url.port, url.implicit_tls)?;
    if !url.implicit_tls {
        imap.starttls(&target)?;
    }
    let login = url.login.as_deref().unwrap_or(user);
    imap.login(login, &password)
        .with_context(|| format!("cannot log in to {} as {login}", url.host))?;
    imap.allow_literals(config.lmtp.max_message_size.max(1 << 20) as usize);
    let folders = list(&mut imap)?;
    let mut progress = super::progress::Progress::new("import", 0);
    let (mut added, mut skipped) = (0, 0);
    for folder in &folders {
        let (a, s) = import_folder(&mut imap, store, account.id, folder, config, &mut progress)
            .with_context(|| format!("cannot import {:?}", folder.name))?;
        (added, skipped) = (added + a, skipped + s);
    }
    for name in subscriptions(&mut imap)? {
        let op = WriteOp::Subscribe {
            user: account.id,
            name,
            subscribed: true,
        };
        store.write_blocking(op).context("cannot subscribe")?;
    }
    let _ = imap.command("LOGOUT", "LOGOUT");
    progress.finish();
    println!(
        "imported {added} messages into {} folders of {user} from {} ({skipped} there already)",
        folders.len(),
        url.host
    );
    Ok(())
}

/// The IMAP source's password: the first line of stdin, or `PASSWORD_ENV`.
pub fn password(from_stdin: bool) -> Result<String> {
    let text = if from_stdin {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).context("cannot read the password")?;
        text
    } else {
        std::env::var(PASSWORD_ENV).map_err(|_| anyhow!("no password: pass --password-stdin or set {PASSWORD_ENV}"))?
    };
    let line = text.lines().next().unwrap_or("").to_owned();
    if line.is_empty() {
        bail!("the password is empty");
    }
    Ok(line)
}

/// A folder of the source: its name there (as sent back in EXAMINE) and here.
#[derive(Debug, PartialEq, Eq)]
struct Folder {
    wire: Vec<u8>,
    name: String,
}

/// Every selectable folder (LIST "" "*"), INBOX first.
fn list(imap: &mut Imap) -> Result<Vec<Folder>> {
    let answer = imap.command("LIST", "LIST \"\" \"*\"")?;
    let mut folders: Vec<Folder> = answer
        .untagged
        .iter()
        .filter_map(|line| folder(b"* LIST ", line))
        .collect();
    folders.sort_by(|a, b| (a.name != "INBOX", &a.name).cmp(&(b.name != "INBOX", &b.name)));
    folders.dedup_by(|a, b| a.name == b.name);
    Ok(folders)
}

/// The subscribed folders (LSUB "" "*"), by our names.
fn subscriptions(imap: &mut Imap) -> Result<Vec<String>> {
    let answer = imap.command("LSUB", "LSUB \"\" \"*\"")?;
    Ok(answer
        .untagged
        .iter()
        .filter_map(|line| folder(b"* LSUB ", line))
        .map(|f| f.name)
        .collect())
}

/// `* LIST (attributes) delimiter name` (or LSUB's) → the folder, unless it cannot be selected.
fn folder(kind: &[u8], line: &[u8]) -> Option<Folder> {
    let mut tokens = Tokens::new(line.strip_prefix(kind)?);
    let Value::List(attributes) = tokens.value()? else {
        return None;
    };
    let unselectable = attributes.iter().any(|a| {
        matches!(a, Value::Atom(a) if a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent"))
    });
    let delimiter = match tokens.value()? {
        Value::Str(d) => d.first().copied(),
        _ => None,
    };
    let wire = match tokens.value()? {
        Value::Str(bytes) => bytes,
        Value::Atom(atom) => atom.into_bytes(),
        _ => return None,
    };
    if unselectable {
        return None;
    }
    let text = String::from_utf8(wire.clone()).ok()?;
    let levels: Vec<String> = match delimiter {
        Some(d) => text.split(char::from(d)).map(str::to_owned).collect(),
        None => vec![text],
    };
    let decoded: Option<Vec<String>> = levels.iter().map(|l| crate::imap::mutf7::decode(l).ok()).collect();
    let mut name = decoded?.join(&SEPARATOR.to_string());
    if name.eq_ignore_ascii_case("INBOX") {
        name = "INBOX".into();
    }
    Some(Folder { wire, name })
}

fn import_folder(
    imap: &mut Imap,
    store: &Store,
    user: crate::store::records::UserId,
    folder: &Folder,
    config: &Config,
    progress: &mut super::progress::Progress,
) -> Result<(usize, usize)> {
    let answer = imap.command("EXAMINE", &format!("EXAMINE {}", quoted(&folder.wire)))?;
    let code = |name: &str| -> Option<u32> {
        answer.untagged.iter().find_map(|l| {
            let text = String::from_utf8_lossy(l);
            let at = text.find(&format!("[{name} "))? + name.len() + 2;
            text[at..].split(']').next()?.trim().parse().ok()
        })
    };
    let uid_validity = code("UIDVALIDITY").ok_or_else(|| anyhow!("the server gave no UIDVALIDITY"))?;
    let exists = answer
        .untagged
        .iter()
        .find_map(|l| {
            String::from_utf8_lossy(l)
                .strip_suffix(" EXISTS")?
                .strip_prefix("* ")?
                .parse::<u32>()
                .ok()
        })
        .unwrap_or(0);
    let uid_next = code("UIDNEXT").unwrap_or(1);
    let uids: Vec<Uid> = if exists == 0 {
        Vec::new()
    } else {
        let found = imap.command("UID SEARCH", "UID SEARCH ALL")?;
        let mut uids: Vec<Uid> = found
            .untagged
            .iter()
            .filter_map(|l| l.strip_prefix(b"* SEARCH"))
            .flat_map(|n| {
                String::from_utf8_lossy(n)
                    .split_ascii_whitespace()
                    .filter_map(|u| u.parse().ok())
                    .collect::<Vec<Uid>>()
            })
            .collect();
        uids.sort_unstable();
        uids
    };
    let limits = config.mime_limits();
    let (mut added, mut skipped) = (0, 0);
    // The source's UIDNEXT (or one above its last UID) is reserved with the first batch.
    let uid_next = uid_next.max(uids.last().map_or(1, |u| u + 1));
    for chunk in uids
        .chunks(BATCH as usize)
        .map(<[Uid]>::to_vec)
        .chain(uids.is_empty().then(Vec::new))
    {
        let messages = if chunk.is_empty() {
            Vec::new()
        } else {
            let set = chunk.iter().map(Uid::to_string).collect::<Vec<_>>().join(",");
            let fetched = imap.command(
                "UID FETCH",
                &format!("UID FETCH {set} (UID FLAGS INTERNALDATE BODY.PEEK[])"),
            )?;
            let mut messages = Vec::with_capacity(chunk.len());
            for response in &fetched.untagged {
                let Some(m) = fetch_response(response).map_err(|e| anyhow!("{e}"))? else {
                    continue;
                };
                let (bytes, structure) =
                    crate::mime::ingest_with(m.body, &limits).map_err(|e| anyhow!("message {}: {e}", m.uid))?;
                messages.push(ImportedMessage {
                    uid: m.uid,
                    message: NewMessage {
                        message: bytes,
                        structure: Arc::new(structure),
                        flags: m.flags,
                        keywords: m.keywords,
                        internal_date: m.internal_date,
                    },
                    pop3_uidl: None,
                });
            }
            messages
        };
        let n = messages.len() as u64;
        let op = WriteOp::Import {
            user,
            name: folder.name.clone(),
            uid_validity: Some(uid_validity),
            uid_next,
            messages,
        };
        match store.write_blocking(op)? {
            WriteOutcome::Imported { added: a, skipped: s } => (added, skipped) = (added + a, skipped + s),
            other => bail!("unexpected answer from the store: {other:?}"),
        }
        progress.advance(n);
    }
    Ok((added, skipped))
}

/// A folder name as LIST gave it, as a quoted string (RFC 9051 §4.3).
fn quoted(name: &[u8]) -> String {
    let escaped = String::from_utf8_lossy(name).replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

/// One message of a FETCH response.
#[derive(Debug, PartialEq, Eq)]
struct Fetched {
    uid: Uid,
    flags: u8,
    keywords: Vec<String>,
    internal_date: Option<i64>,
    body: Vec<u8>,
}

/// `* n FETCH (UID u FLAGS (...) INTERNALDATE "..." BODY[] {n}\r\n...)`; `None` for other
/// untagged data (an EXISTS or FETCH FLAGS the server sends meanwhile).
fn fetch_response(line: &[u8]) -> Result<Option<Fetched>, String> {
    let Some(rest) = line.strip_prefix(b"* ") else {
        return Ok(None);
    };
    let mut tokens = Tokens::new(rest);
    let (Some(Value::Atom(_)), Some(Value::Atom(kind))) = (tokens.value(), tokens.value()) else {
        return Ok(None);
    };
    if !kind.eq_ignore_ascii_case("FETCH") {
        return Ok(None);
    }
    let Some(Value::List(items)) = tokens.value() else {
        return Err("a FETCH response without its list".into());
    };
    let (mut uid, mut flag_bits, mut keywords, mut date, mut body) = (None, 0u8, Vec::new(), None, None);
    let mut items = items.into_iter();
    while let (Some(Value::Atom(key)), Some(value)) = (items.next(), items.next()) {
        match (key.to_ascii_uppercase().as_str(), value) {
            ("UID", Value::Atom(n)) => uid = n.parse().ok(),
            ("FLAGS", Value::List(list)) => {
                for flag in list {
                    let Value::Atom(flag) = flag else { continue };
                    match flag.to_ascii_lowercase().as_str() {
                        "\\seen" => flag_bits |= flags::SEEN,
                        "\\answered" => flag_bits |= flags::ANSWERED,
                        "\\flagged" => flag_bits |= flags::FLAGGED,
                        "\\deleted" => flag_bits |= flags::DELETED,
                        "\\draft" => flag_bits |= flags::DRAFT,
                        other if other.starts_with('\\') => {}
                        _ => keywords.push(flag),
                    }
                }
            }
            ("INTERNALDATE", Value::Str(text)) => {
                let quoted = [b"\"".as_slice(), &text, b"\""].concat();
                date = crate::imap::parse::lexer::Cursor::new(&quoted).date_time().ok();
            }
            ("BODY[]", Value::Str(bytes)) => body = Some(bytes),
            _ => {}
        }
    }
    let uid = uid.ok_or("a FETCH response without UID")?;
    let body = body.ok_or_else(|| format!("message {uid}: no BODY[] in the FETCH response"))?;
    Ok(Some(Fetched {
        uid,
        flags: flag_bits,
        keywords,
        internal_date: date,
        body,
    }))
}

/// The parts of a response: atoms, strings (quoted or literal), lists, NIL.
#[derive(Debug, PartialEq, Eq)]
enum Value {
    Atom(String),
    Str(Vec<u8>),
    List(Vec<Value>),
    Nil,
}

struct Tokens<'a> {
    input: &'a [u8],
    at: usize,
}

impl<'a> Tokens<'a> {
    fn new(input: &'a [u8]) -> Tokens<'a> {
        Tokens { input, at: 0 }
    }

    fn skip_spaces(&mut self) {
        while self.input.get(self.at) == Some(&b' ') {
            self.at += 1;
        }
    }

    fn value(&mut self) -> Option<Value> {
        self.skip_spaces();
        match *self.input.get(self.at)? {
            b'(' => {
                self.at += 1;
                let mut list = Vec::new();
                loop {
                    self.skip_spaces();
                    match self.input.get(self.at)? {
                        b')' => {
                            self.at += 1;
                            return Some(Value::List(list));
                        }
                        _ => list.push(self.value()?),
                    }
                }
            }
            b'"' => {
                self.at += 1;
                let mut s = Vec::new();
                loop {
                    let b = *self.input.get(self.at)?;
                    self.at += 1;
                    match b {
                        b'\\' => {
                            s.push(*self.input.get(self.at)?);
                            self.at += 1;
                        }
                        b'"' => return Some(Value::Str(s)),
                        b => s.push(b),
                    }
                }
            }
            b'{' | b'~' => {
                let start = self.at + usize::from(self.input[self.at] == b'~') + 1;
                let close = start + self.input[start..].iter().position(|&b| b == b'}')?;
                let digits = std::str::from_utf8(&self.input[start..close]).ok()?;
                let n: usize = digits.trim_end_matches('+').parse().ok()?;
                let from = close + 1 + 2; // "}\r\n"
                let literal = self.input.get(from..from + n)?.to_vec();
                self.at = from + n;
                Some(Value::Str(literal))
            }
            _ => {
                let start = self.at;
                let mut depth = 0usize;
                while let Some(&b) = self.input.get(self.at) {
                    match b {
                        b'[' => depth += 1,
                        b']' => depth = depth.saturating_sub(1),
                        b' ' | b')' | b'(' if depth == 0 => break,
                        _ => {}
                    }
                    self.at += 1;
                }
                let atom = String::from_utf8_lossy(&self.input[start..self.at]).into_owned();
                if atom.is_empty() {
                    return None;
                }
                Some(if atom.eq_ignore_ascii_case("NIL") {
                    Value::Nil
                } else {
                    Value::Atom(atom)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_host_port_and_login() {
        let u = ImapUrl::parse("imaps://bob%40example.org@mail.example.org:1993").unwrap();
        assert_eq!(
            u,
            ImapUrl {
                implicit_tls: true,
                host: "mail.example.org".into(),
                port: 1993,
                login: Some("bob@example.org".into())
            }
        );
        let u = ImapUrl::parse("imap://[::1]").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.implicit_tls), ("::1", 143, false));
        assert_eq!(ImapUrl::parse("imaps://h").unwrap().port, 993);
        assert!(ImapUrl::parse("pop3://h").is_err());
        assert!(ImapUrl::parse("imaps://").is_err());
        assert!(ImapUrl::parse("imaps://h:x").is_err());
    }

    #[test]
    fn fetch_responses_give_their_message() {
        let line = b"* 3 FETCH (UID 17 FLAGS (\\Seen \\Recent $Label1 Work) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" BODY[] {12}\r\nSubject: x\r\n)";
        let m = fetch_response(line).unwrap().unwrap();
        assert_eq!(m.uid, 17);
        assert_eq!(m.flags, flags::SEEN);
        assert_eq!(m.keywords, ["$Label1", "Work"]);
        assert_eq!(m.internal_date, Some(837_596_665));
        assert_eq!(m.body, b"Subject: x\r\n");
        assert_eq!(fetch_response(b"* 4 EXISTS").unwrap(), None);
        assert!(fetch_response(b"* 3 FETCH (FLAGS (\\Seen))").is_err());
    }

    #[test]
    fn list_responses_give_selectable_folders_with_our_names() {
        let folder = |line: &[u8]| folder(b"* LIST ", line);
        let f = folder(b"* LIST (\\HasNoChildren) \".\" \"Archive.Entw&APw-rfe\"").unwrap();
        assert_eq!(f.name, "Archive/Entwürfe");
        assert_eq!(f.wire, b"Archive.Entw&APw-rfe");
        assert_eq!(folder(b"* LIST () \"/\" inbox").unwrap().name, "INBOX");
        assert!(folder(b"* LIST (\\Noselect) \"/\" \"A\"").is_none());
        let literal = folder(b"* LIST () \"/\" {5}\r\nA b c").unwrap();
        assert_eq!(literal.name, "A b c");
    }
}
