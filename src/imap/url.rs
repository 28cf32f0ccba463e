//! IMAP URLs (RFC 5092): how CATENATE (RFC 4469) names the messages and parts it copies, and
//! what URLAUTH (RFC 4467) signs.
//!
//! Owns: the syntax of absolute URLs (`imap://user;AUTH=*@host:port/INBOX;UIDVALIDITY=7/;UID=2`)
//! and of the relative references RFC 5092 §7 allows (`//host/...`, `/INBOX/;UID=2`,
//! `;UID=2/;SECTION=1.2`), %-decoding, and the URLAUTH pieces (`;EXPIRE=`, `;URLAUTH=`), parsed
//! and kept for whoever checks them. Never: looks anything up, decides whether the user may read
//! what a URL names, or parses the section-spec inside `;SECTION=` (the IMAP parser does, as for
//! FETCH).
//!
//! Keywords (`;UID=`, `;section=`) are matched in any case, as ABNF strings are; values are
//! checked against the URL character sets (`bchar`, `achar`) before they are decoded, so a raw
//! space or `;` where the grammar has none is an error, not a guess.

use std::fmt;

use super::format::hex_value;

/// Why a string is not an IMAP URL, or not one naming a message: the text after `[BADURL ...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlError(pub &'static str);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

type Result<T> = std::result::Result<T, UrlError>;

/// `iserver` (RFC 5092 §11): who and where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Server {
    /// `enc-user`, decoded; `None` means anonymous access (RFC 5092 §3.2).
    pub user: Option<String>,
    /// `;AUTH=` mechanism (`*` for any), decoded.
    pub auth: Option<String>,
    /// As sent (a name, an IPv4 address or a bracketed IPv6 one), lower case.
    pub host: String,
    pub port: Option<u16>,
}

/// `;PARTIAL=offset[.length]` (RFC 5092 §11 `partial-range`): octets from `offset`, `length`
/// of them or to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlPartial {
    pub offset: u32,
    pub length: Option<u32>,
}

impl UrlPartial {
    /// The window FETCH's `<origin.count>` means: `;PARTIAL=` without a length runs to the end
    /// (RFC 5092 §5).
    pub fn window(self) -> crate::imap::types::Partial {
        crate::imap::types::Partial {
            origin: self.offset,
            count: self.length.unwrap_or(u32::MAX),
        }
    }
}

/// Who a URL authorizes (RFC 4467 §3 `access`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// `submit+user`: a submission server sending for `user`.
    Submit(String),
    /// `user+user`: `user`, logged in.
    User(String),
    /// `authuser`: anyone logged in.
    AuthUser,
    /// `anonymous`: anyone at all.
    Anonymous,
}

impl Access {
    /// `submit+user`, `user+user`, `authuser`, `anonymous`, the keywords in any case; the user
    /// name as it stands in `text`.
    pub(crate) fn parse(text: &str) -> Option<Access> {
        let named = |prefix: &str| {
            let head = text.get(..prefix.len())?;
            let user = &text[prefix.len()..];
            (head.eq_ignore_ascii_case(prefix) && !user.is_empty()).then(|| user.to_owned())
        };
        if text.eq_ignore_ascii_case("authuser") {
            Some(Access::AuthUser)
        } else if text.eq_ignore_ascii_case("anonymous") {
            Some(Access::Anonymous)
        } else if let Some(user) = named("submit+") {
            Some(Access::Submit(user))
        } else {
            named("user+").map(Access::User)
        }
    }
}

/// RFC 4467 §3: `;URLAUTH=access[:mechanism:token]` (without the verifier it is a "rump" URL,
/// as GENURLAUTH takes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlAuth {
    /// Who the URL authorizes; a user name in it is %-decoded.
    pub access: Access,
    pub verifier: Option<(String, String)>,
}

/// One IMAP URL or relative reference, each part as present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImapUrl {
    /// `imap://` or `//` with the server; `None` for a path-only reference.
    pub server: Option<Server>,
    /// The mailbox is named from the root (after a server or a leading `/`); otherwise the
    /// reference is relative to a base URL.
    pub rooted: bool,
    /// `enc-mailbox`, decoded (UTF-8 per RFC 5092 §9).
    pub mailbox: Option<String>,
    pub uid_validity: Option<u32>,
    /// `?enc-search`, decoded: the URL names a message list.
    pub search: Option<String>,
    pub uid: Option<u32>,
    /// `;SECTION=`, decoded section-spec text (`1.2.MIME`, `HEADER.FIELDS (To)`).
    pub section: Option<String>,
    pub partial: Option<UrlPartial>,
    /// RFC 4467 `;EXPIRE=` date-time, as sent.
    pub expire: Option<String>,
    pub urlauth: Option<UrlAuth>,
}

/// What a URL names when it names one message (or part of one): the mailbox is `None` when it
/// is the base's (a reference that starts at `;UID=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePart<'a> {
    pub mailbox: Option<&'a str>,
    pub uid_validity: Option<u32>,
    pub uid: u32,
    pub section: Option<&'a str>,
    pub partial: Option<UrlPartial>,
}

impl ImapUrl {
    /// Parses an absolute IMAP URL or a relative reference (RFC 5092 §11 `imapurl` /
    /// `imapurl-rel`).
    pub fn parse(text: &str) -> Result<ImapUrl> {
        let mut url = ImapUrl::default();
        let lower = text.get(..7).map(str::to_ascii_lowercase);
        let path = if lower.as_deref() == Some("imap://") {
            url.server_and_path(&text[7..])?
        } else if let Some(rest) = text.strip_prefix("//") {
            url.server_and_path(rest)?
        } else if let Some(rest) = text.strip_prefix('/') {
            url.rooted = true;
            rest
        } else if has_scheme(text) {
            // RFC 3986 §4.2: a relative reference cannot start with `scheme:`.
            return Err(UrlError("not an IMAP URL"));
        } else {
            text
        };
        url.path(path)?;
        Ok(url)
    }

    /// `iserver` up to the first `/`; returns the path after that `/`.
    fn server_and_path<'t>(&mut self, text: &'t str) -> Result<&'t str> {
        let (authority, path) = match text.find('/') {
            Some(i) => (&text[..i], &text[i + 1..]),
            None => (text, ""),
        };
        self.server = Some(server(authority)?);
        self.rooted = true;
        Ok(path)
    }

    /// `icommand`, or a relative path: mailbox, then `;NAME=value` parameters, each after a `/`
    /// or not as the grammar places it.
    fn path(&mut self, path: &str) -> Result<()> {
        if path.is_empty() {
            return Ok(());
        }
        let (path, search) = match path.split_once('?') {
            Some((p, s)) => (p, Some(s)),
            None => (path, None),
        };
        let mut segments = path.split(';');
        let first = segments.next().unwrap_or_default();
        // The `/` before `;UID=` ends the mailbox segment.
        let (mailbox, mut slash) = match first.strip_suffix('/') {
            Some(m) => (m, true),
            None => (first, false),
        };
        if !mailbox.is_empty() {
            self.mailbox = Some(decode(mailbox, is_bchar, "invalid mailbox name")?);
        } else if self.rooted && !path.is_empty() {
            // enc-mailbox = 1*bchar: `/;UID=1` names no mailbox.
            return Err(UrlError("no mailbox name"));
        } else if slash {
            return Err(UrlError("empty mailbox name"));
        }
        let mut stage = Stage::Mailbox;
        for segment in segments {
            let (name, value) = segment.split_once('=').ok_or(UrlError("parameter without a value"))?;
            let next_slash = value.ends_with('/');
            let value = value.strip_suffix('/').unwrap_or(value);
            stage = self.parameter(stage, (slash, name), value)?;
            slash = next_slash;
        }
        if slash {
            return Err(UrlError("trailing /"));
        }
        if let Some(search) = search {
            if self.mailbox.is_none() || stage > Stage::UidValidity {
                return Err(UrlError("a search needs a mailbox and nothing after it"));
            }
            self.search = Some(decode(search, is_bchar, "invalid search")?);
        }
        if self.urlauth.is_none() && self.expire.is_some() {
            return Err(UrlError(";EXPIRE= without ;URLAUTH="));
        }
        Ok(())
    }

    /// One `;NAME=value`, which must come after what `stage` has seen (RFC 5092 §11 order:
    /// mailbox, UIDVALIDITY, UID, SECTION, PARTIAL, EXPIRE, URLAUTH).
    fn parameter(&mut self, stage: Stage, (slash, name): (bool, &str), value: &str) -> Result<Stage> {
        let this = Stage::of(name).ok_or(UrlError("unknown URL parameter"))?;
        if this <= stage {
            return Err(UrlError("URL parameters out of order"));
        }
        // `/` separates the message parts (after something); nothing precedes UIDVALIDITY,
        // EXPIRE or URLAUTH but what they qualify.
        let first = stage == Stage::Mailbox && self.mailbox.is_none();
        let wants_slash = matches!(this, Stage::Uid | Stage::Section | Stage::Partial) && !first;
        if slash != wants_slash {
            return Err(UrlError("misplaced /"));
        }
        match this {
            Stage::UidValidity if self.mailbox.is_none() => return Err(UrlError(";UIDVALIDITY= without a mailbox")),
            Stage::UidValidity => self.uid_validity = Some(nz_number(value)?),
            Stage::Uid => self.uid = Some(nz_number(value)?),
            // enc-section = 1*bchar.
            Stage::Section if value.is_empty() => return Err(UrlError("invalid section")),
            Stage::Section => self.section = Some(decode(value, is_bchar, "invalid section")?),
            Stage::Partial => self.partial = Some(partial(value)?),
            Stage::Expire if self.uid.is_none() => return Err(UrlError(";EXPIRE= without ;UID=")),
            Stage::Expire => self.expire = Some(date_time(value)?.to_owned()),
            Stage::UrlAuth if self.uid.is_none() => return Err(UrlError(";URLAUTH= without ;UID=")),
            Stage::UrlAuth => self.urlauth = Some(urlauth(value)?),
            Stage::Mailbox => unreachable!("Stage::of never names the mailbox"),
        }
        Ok(this)
    }

    /// The message or part this URL names. A reference without a mailbox (`;UID=5`) is
    /// relative to the base mailbox (`mailbox: None`); one that starts with a mailbox name but
    /// not at the root is refused: RFC 3986 merging would make it a sibling or a child of the
    /// base depending on how the base was written.
    pub fn message_part(&self) -> Result<MessagePart<'_>> {
        if self.server.is_none() && !self.rooted && self.mailbox.is_some() {
            return Err(UrlError(
                "relative mailbox paths are not resolved; start the URL with /",
            ));
        }
        if self.server.is_some() && self.mailbox.is_none() && self.uid.is_none() {
            return Err(UrlError("URL names a server, not a message"));
        }
        let uid = self.uid.ok_or(UrlError("URL names no message (;UID= missing)"))?;
        Ok(MessagePart {
            mailbox: self.mailbox.as_deref(),
            uid_validity: self.uid_validity,
            uid,
            section: self.section.as_deref(),
            partial: self.partial,
        })
    }
}

/// Where a parameter stands in the URL's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Mailbox,
    UidValidity,
    Uid,
    Section,
    Partial,
    Expire,
    UrlAuth,
}

impl Stage {
    fn of(name: &str) -> Option<Stage> {
        [
            ("UIDVALIDITY", Stage::UidValidity),
            ("UID", Stage::Uid),
            ("SECTION", Stage::Section),
            ("PARTIAL", Stage::Partial),
            ("EXPIRE", Stage::Expire),
            ("URLAUTH", Stage::UrlAuth),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, s)| s)
    }
}

/// iserver = [iuserinfo "@"] host [":" port]; iuserinfo = enc-user [iauth] / [enc-user] iauth;
/// iauth = ";AUTH=" ( "*" / enc-auth-type ).
fn server(authority: &str) -> Result<Server> {
    let mut server = Server::default();
    let hostport = match authority.split_once('@') {
        Some((userinfo, hostport)) => {
            let (user, auth) = match userinfo.split_once(';') {
                Some((user, auth)) => {
                    let (key, mech) = auth.split_once('=').ok_or(UrlError("invalid ;AUTH="))?;
                    if !key.eq_ignore_ascii_case("AUTH") {
                        return Err(UrlError("invalid ;AUTH="));
                    }
                    let mech = if mech == "*" {
                        mech.to_owned()
                    } else {
                        decode(mech, is_achar, "invalid ;AUTH= mechanism")?
                    };
                    (user, Some(mech))
                }
                None => (userinfo, None),
            };
            if user.is_empty() && auth.is_none() {
                return Err(UrlError("empty user name"));
            }
            if !user.is_empty() {
                server.user = Some(decode(user, is_achar, "invalid user name")?);
            }
            server.auth = auth;
            hostport
        }
        None => authority,
    };
    const HOST: UrlError = UrlError("invalid host");
    let (host, port) = if hostport.starts_with('[') {
        // IP-literal (RFC 3986 §3.2.2), then nothing or ":port".
        let close = hostport.find(']').ok_or(HOST)?;
        let addr = &hostport[1..close];
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return Err(HOST);
        }
        let rest = &hostport[close + 1..];
        let port = match rest {
            "" => None,
            _ => Some(rest.strip_prefix(':').ok_or(HOST)?),
        };
        (&hostport[..=close], port)
    } else {
        let (host, port) = match hostport.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        };
        // reg-name = *( unreserved / pct-encoded / sub-delims ).
        let reg_name = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b);
        if host.is_empty() || !host.bytes().all(reg_name) {
            return Err(HOST);
        }
        (host, port)
    };
    server.host = host.to_ascii_lowercase();
    server.port = match port {
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse().map_err(|_| UrlError("invalid port"))?)
        }
        Some(_) => return Err(UrlError("invalid port")),
        None => None,
    };
    Ok(server)
}

/// Whether `text` starts with `scheme ":"`; scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / ".")
/// (RFC 3986 §3.1).
fn has_scheme(text: &str) -> bool {
    text.split_once(':').is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    })
}

/// nz-number: 1 to 4294967295, no leading zero.
fn nz_number(value: &str) -> Result<u32> {
    const INVALID: UrlError = UrlError("invalid number");
    if value.starts_with('0') || value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(INVALID);
    }
    value.parse().map_err(|_| INVALID)
}

/// partial-range = number ["." nz-number].
fn partial(value: &str) -> Result<UrlPartial> {
    const INVALID: UrlError = UrlError("invalid ;PARTIAL=");
    let (offset, length) = match value.split_once('.') {
        Some((o, l)) => (o, Some(nz_number(l).map_err(|_| INVALID)?)),
        None => (value, None),
    };
    if offset.is_empty() || !offset.bytes().all(|b| b.is_ascii_digit()) {
        return Err(INVALID);
    }
    let offset = offset.parse().map_err(|_| INVALID)?;
    Ok(UrlPartial { offset, length })
}

/// RFC 4467 §3 expire = ";EXPIRE=" date-time (RFC 3339): checked for its shape only.
fn date_time(value: &str) -> Result<&str> {
    let ok = value.len() >= 20
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-:.+".contains(&b))
        && value.as_bytes()[10].eq_ignore_ascii_case(&b'T');
    ok.then_some(value).ok_or(UrlError("invalid ;EXPIRE="))
}

/// RFC 4467 §3: access [":" uauth-mechanism ":" enc-urlauth]; enc-urlauth = 32*HEXDIG.
fn urlauth(value: &str) -> Result<UrlAuth> {
    const INVALID: UrlError = UrlError("invalid ;URLAUTH=");
    let mut pieces = value.split(':');
    // The keywords are matched as sent: `user%2Bbob` is no `user+` access.
    let access = match Access::parse(pieces.next().unwrap_or_default()).ok_or(INVALID)? {
        Access::Submit(user) => Access::Submit(decode(&user, is_achar, INVALID.0)?),
        Access::User(user) => Access::User(decode(&user, is_achar, INVALID.0)?),
        keyword => keyword,
    };
    let verifier = match (pieces.next(), pieces.next(), pieces.next()) {
        (None, _, _) => None,
        (Some(mech), Some(token), None)
            if !mech.is_empty()
                && mech
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                && token.len() >= 32
                && token.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Some((mech.to_owned(), token.to_owned()))
        }
        _ => return Err(INVALID),
    };
    Ok(UrlAuth { access, verifier })
}

/// achar = uchar / "&" / "="; uchar = unreserved / escaped / sub-delims-sh (RFC 5092 §11).
/// `%` is let through here: `decode` checks the escape.
fn is_achar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$'()*+,&=%".contains(&b)
}

/// bchar = achar / ":" / "@" / "/".
fn is_bchar(b: u8) -> bool {
    is_achar(b) || b == b':' || b == b'@' || b == b'/'
}

/// %-decodes `text`, whose raw octets must all be in `allowed`; the result must be UTF-8.
fn decode(text: &str, allowed: impl Fn(u8) -> bool, error: &'static str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !allowed(b) {
            return Err(UrlError(error));
        }
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(UrlError(error))?;
            let value = hex_value(hex[0]).zip(hex_value(hex[1]));
            let (high, low) = value.ok_or(UrlError(error))?;
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlError(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(user: Option<&str>, host: &str, port: Option<u16>) -> Option<Server> {
        Some(Server {
            user: user.map(str::to_owned),
            auth: None,
            host: host.to_owned(),
            port,
        })
    }

    fn message(mailbox: &str, uid: u32) -> ImapUrl {
        ImapUrl {
            rooted: true,
            mailbox: Some(mailbox.to_owned()),
            uid: Some(uid),
            ..ImapUrl::default()
        }
    }

    fn with(url: ImapUrl, f: impl FnOnce(&mut ImapUrl)) -> ImapUrl {
        let mut url = url;
        f(&mut url);
        url
    }

    #[test]
    fn valid_urls() {
        let s = |t: &str| Some(t.to_owned());
        let rows: Vec<(&str, ImapUrl)> = vec![
            // RFC 5092 §8 examples.
            (
                "imap://psicorp.example.org/~peter/%E6%97%A5%E6%9C%AC%E8%AA%9E/%E5%8F%B0%E5%8C%97",
                ImapUrl {
                    server: server(None, "psicorp.example.org", None),
                    rooted: true,
                    mailbox: s("~peter/日本語/台北"),
                    ..ImapUrl::default()
                },
            ),
            (
                "imap://michael@example.org:143/users.*",
                ImapUrl {
                    server: server(Some("michael"), "example.org", Some(143)),
                    rooted: true,
                    mailbox: s("users.*"),
                    ..ImapUrl::default()
                },
            ),
            (
                "imap://minbari.example.org/gray-council;UIDVALIDITY=385759045/;UID=20/;PARTIAL=0.1024",
                with(message("gray-council", 20), |u| {
                    u.server = server(None, "minbari.example.org", None);
                    u.uid_validity = Some(385_759_045);
                    u.partial = Some(UrlPartial {
                        offset: 0,
                        length: Some(1024),
                    });
                }),
            ),
            (
                "imap://;AUTH=*@minbari.example.org/gray%20council?SUBJECT%20shadows",
                ImapUrl {
                    server: Some(Server {
                        user: None,
                        auth: s("*"),
                        host: "minbari.example.org".into(),
                        port: None,
                    }),
                    rooted: true,
                    mailbox: s("gray council"),
                    search: s("SUBJECT shadows"),
                    ..ImapUrl::default()
                },
            ),
            (
                "IMAP://bob;auth=SCRAM-SHA-256@[::1]:10143/INBOX/;uid=7/;section=1.2.MIME",
                with(message("INBOX", 7), |u| {
                    u.server = Some(Server {
                        user: s("bob"),
                        auth: s("SCRAM-SHA-256"),
                        host: "[::1]".into(),
                        port: Some(10143),
                    });
                    u.section = s("1.2.MIME");
                }),
            ),
            // Relative references (RFC 5092 §7.1), as CATENATE clients send them.
            ("/INBOX/;UID=3", message("INBOX", 3)),
            (
                "/a/b;uidvalidity=9/;uid=3/;section=HEADER.FIELDS%20(Subject%20From)/;partial=10",
                with(message("a/b", 3), |u| {
                    u.uid_validity = Some(9);
                    u.section = s("HEADER.FIELDS (Subject From)");
                    u.partial = Some(UrlPartial {
                        offset: 10,
                        length: None,
                    });
                }),
            ),
            (
                "//bob@host/Sent/;UID=1",
                with(message("Sent", 1), |u| u.server = server(Some("bob"), "host", None)),
            ),
            (
                ";UID=5/;SECTION=TEXT",
                ImapUrl {
                    uid: Some(5),
                    section: s("TEXT"),
                    ..ImapUrl::default()
                },
            ),
            (
                ";section=1",
                ImapUrl {
                    section: s("1"),
                    ..ImapUrl::default()
                },
            ),
            (
                "Drafts/;UID=2",
                ImapUrl {
                    mailbox: s("Drafts"),
                    uid: Some(2),
                    ..ImapUrl::default()
                },
            ),
            ("", ImapUrl::default()),
            (
                "imap://host",
                ImapUrl {
                    server: server(None, "host", None),
                    rooted: true,
                    ..ImapUrl::default()
                },
            ),
            // RFC 4467 §3: kept for URLAUTH, as sent.
            (
                "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred:internal:91354a473744909de610943775f92038",
                with(message("INBOX", 20), |u| {
                    u.server = server(Some("joe"), "example.com", None);
                    u.section = s("1.2");
                    u.urlauth = Some(UrlAuth {
                        access: Access::Submit("fred".into()),
                        verifier: Some(("internal".into(), "91354a473744909de610943775f92038".into())),
                    });
                }),
            ),
            (
                "imap://joe@example.com/INBOX/;uid=20;expire=2024-02-29T12:00:00Z;urlauth=anonymous",
                with(message("INBOX", 20), |u| {
                    u.server = server(Some("joe"), "example.com", None);
                    u.expire = s("2024-02-29T12:00:00Z");
                    u.urlauth = Some(UrlAuth {
                        access: Access::Anonymous,
                        verifier: None,
                    });
                }),
            ),
        ];
        for (text, expected) in rows {
            assert_eq!(ImapUrl::parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn invalid_urls() {
        let rows: &[(&str, &str)] = &[
            ("http://example.org/", "not an IMAP URL"),
            ("mailto:bob@example.org", "not an IMAP URL"),
            ("/INBOX/;UID=0", "invalid number"),
            ("/INBOX/;UID=01", "invalid number"),
            ("/INBOX/;UID=4294967296", "invalid number"),
            ("/INBOX/;UID=", "invalid number"),
            ("/INBOX;UID=3", "misplaced /"),
            ("/INBOX/;UIDVALIDITY=3/;UID=3", "misplaced /"),
            ("/INBOX/;UID=3;SECTION=1", "misplaced /"),
            ("/INBOX/;SECTION=1/;UID=3", "URL parameters out of order"),
            ("/INBOX/;UID=3/;UID=4", "URL parameters out of order"),
            ("/INBOX/;FOO=3", "unknown URL parameter"),
            ("/INBOX/;UID", "parameter without a value"),
            ("/INBOX/;UID=3/", "trailing /"),
            ("/;UID=3", "no mailbox name"),
            ("/IN BOX/;UID=3", "invalid mailbox name"),
            ("/INBOX%2/;UID=3", "invalid mailbox name"),
            // pct-encoded = "%" HEXDIG HEXDIG: no sign.
            ("/INBOX%+5/;UID=3", "invalid mailbox name"),
            ("/INBOX/;UID=2;URLAUTH=user%2Bbob", "invalid ;URLAUTH="),
            ("/%FF/;UID=3", "invalid mailbox name"),
            ("/INBOX/;UID=3/;SECTION=HEADER.FIELDS (To)", "invalid section"),
            ("/INBOX/;UID=3/;SECTION=", "invalid section"),
            ("/INBOX/;UID=3/;PARTIAL=1.0", "invalid ;PARTIAL="),
            ("/INBOX/;UID=3/;PARTIAL=x", "invalid ;PARTIAL="),
            ("/INBOX/;UID=3?ALL", "a search needs a mailbox and nothing after it"),
            ("imap:///INBOX", "invalid host"),
            ("imap://a b/INBOX", "invalid host"),
            ("imap://host:x/INBOX", "invalid port"),
            ("imap://host:99999/INBOX", "invalid port"),
            ("imap://@host/INBOX", "empty user name"),
            ("imap://bob;X=1@host/INBOX", "invalid ;AUTH="),
            ("imap://[::1/INBOX", "invalid host"),
            ("imap://[::1]x/INBOX", "invalid host"),
            ("/INBOX;UIDVALIDITY=1/;UID=2;URLAUTH=root", "invalid ;URLAUTH="),
            ("/INBOX/;UID=2;URLAUTH=anonymous:internal:12", "invalid ;URLAUTH="),
            ("/INBOX/;UID=2;EXPIRE=tomorrow;URLAUTH=anonymous", "invalid ;EXPIRE="),
            (
                "/INBOX/;UID=2;EXPIRE=2024-02-29T12:00:00Z",
                ";EXPIRE= without ;URLAUTH=",
            ),
            ("/INBOX;URLAUTH=anonymous", ";URLAUTH= without ;UID="),
        ];
        for &(text, why) in rows {
            assert_eq!(ImapUrl::parse(text), Err(UrlError(why)), "{text}");
        }
    }

    #[test]
    fn message_parts() {
        let part = |text: &str| {
            ImapUrl::parse(text)
                .unwrap()
                .message_part()
                .map(|p| (p.mailbox.map(str::to_owned), p.uid, p.section.map(str::to_owned)))
        };
        let s = |t: &str| Some(t.to_owned());
        assert_eq!(part("/INBOX/;UID=3/;SECTION=1"), Ok((s("INBOX"), 3, s("1"))));
        assert_eq!(part("imap://bob@h/Sent;UIDVALIDITY=4/;UID=9"), Ok((s("Sent"), 9, None)));
        // Relative to the base mailbox.
        assert_eq!(part(";UID=2/;SECTION=HEADER"), Ok((None, 2, s("HEADER"))));
        let refused = |text: &str| ImapUrl::parse(text).unwrap().message_part().err().map(|e| e.0);
        assert_eq!(refused("/INBOX"), Some("URL names no message (;UID= missing)"));
        assert_eq!(refused("/INBOX?ALL"), Some("URL names no message (;UID= missing)"));
        assert_eq!(refused(";SECTION=1"), Some("URL names no message (;UID= missing)"));
        assert_eq!(refused("imap://h"), Some("URL names a server, not a message"));
        assert_eq!(
            refused("Drafts/;UID=2"),
            Some("relative mailbox paths are not resolved; start the URL with /")
        );
    }
}
