//! LIST (RFC 9051 §6.3.9) with LIST-EXTENDED selection and return options (RFC 5258),
//! SPECIAL-USE (RFC 6154) and LIST-STATUS (RFC 5819); LSUB (RFC 3501 §6.3.9).
//!
//! Subscriptions are names, not mailboxes: a subscribed name may not exist (any more), and is
//! then listed by LIST (SUBSCRIBED) as `\NonExistent` (RFC 5258 §3.4) and by LSUB as
//! `\Noselect`.

pub(crate) mod parse;

use crate::imap::fault::ok;
use std::collections::{BTreeSet, HashMap};

use super::mailbox::{quote, SPECIAL_USE};
use super::status::status_line;
use crate::imap::command::{Spec, States};
use crate::imap::session::{store_error, untagged, Conn, Ctx, User};
use crate::imap::types::ListOptions;
use crate::store::mailboxes::is_below;
use crate::store::records::SpecialUse;
use crate::store::{Mailbox, SEPARATOR};

/// The command table's rows (`command::COMMANDS`).
pub(crate) const LIST: Spec = Spec {
    name: "LIST",
    extension: None,
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 9051 §6.3.9",
    parse: parse::list,
};

pub(crate) const LSUB: Spec = Spec {
    name: "LSUB",
    extension: None,
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 3501 §6.3.9",
    parse: parse::lsub,
};

fn special_use_attr(s: Option<SpecialUse>) -> Option<&'static str> {
    let s = s?;
    SPECIAL_USE.iter().find(|&&(_, u)| u == s).map(|&(attr, _)| attr)
}

/// RFC 3501 §6.3.8 wildcards: `*` matches anything, `%` anything but the separator.
///
/// Dynamic programming over (pattern, name) suffixes, so a pattern full of wildcards costs
/// pattern × name steps, never an exponential backtrack.
pub(crate) fn matches_pattern(pattern: &[char], name: &[char]) -> bool {
    // `next[j]`: pattern[i + 1..] matches name[j..]; `row[j]`: pattern[i..] matches name[j..].
    let mut next: Vec<bool> = (0..=name.len()).map(|j| j == name.len()).collect();
    let mut row = vec![false; name.len() + 1];
    for &p in pattern.iter().rev() {
        for j in (0..=name.len()).rev() {
            row[j] = match (p, name.get(j)) {
                ('*', Some(_)) => next[j] || row[j + 1],
                ('%', Some(&c)) => next[j] || (c != SEPARATOR && row[j + 1]),
                ('*' | '%', None) => next[j],
                (p, Some(&c)) => p == c && next[j + 1],
                (_, None) => false,
            };
        }
        std::mem::swap(&mut next, &mut row);
    }
    next[0]
}

fn list_matches(reference: &str, pattern: &str, name: &str) -> bool {
    let full: Vec<char> = format!("{reference}{pattern}").chars().collect();
    let name_chars: Vec<char> = name.chars().collect();
    if matches_pattern(&full, &name_chars) {
        return true;
    }
    // INBOX matches case-insensitively (RFC 3501 §5.1).
    name == "INBOX" && {
        let upper: Vec<char> = format!("{reference}{pattern}").to_uppercase().chars().collect();
        matches_pattern(&upper, &name_chars)
    }
}

/// Every superior level of `name`: `a/b/c` gives `a` and `a/b`.
fn superiors(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices(SEPARATOR).map(move |(i, _)| &name[..i])
}

impl Conn {
    #[allow(clippy::too_many_arguments)] // one LIST command's parts
    pub(crate) fn list(
        &self,
        user: &User,
        tag: &str,
        (reference, patterns): (&str, &[String]),
        options: &ListOptions,
        lsub: bool,
        ctx: &Ctx<'_>,
        out: &mut Vec<u8>,
    ) {
        let store = ctx.store;
        let command = if lsub { "LSUB" } else { "LIST" };
        let done = |out: &mut Vec<u8>| ok(out, tag, &format!("{command} completed"));
        // A pattern that is not modified UTF-7 matches no mailbox name: it is dropped.
        let Ok(reference) = user.decode_name(reference) else {
            return done(out);
        };
        let decoded: Vec<String> = patterns.iter().filter_map(|p| user.decode_name(p).ok()).collect();
        if decoded.is_empty() {
            return done(out);
        }
        if !lsub && decoded.iter().all(String::is_empty) {
            // RFC 9051 §6.3.9: an empty pattern asks for the separator and the root.
            untagged(out, "LIST (\\Noselect) \"/\" \"\"");
            return done(out);
        }
        let mailboxes = match store.mailboxes(user.id) {
            Ok(m) => m,
            Err(e) => return store_error(out, tag, e),
        };
        let by_subscription = lsub || options.subscribed;
        let subscriptions = if by_subscription || options.return_subscribed {
            match store.subscriptions(user.id) {
                Ok(s) => s,
                Err(e) => return store_error(out, tag, e),
            }
        } else {
            Vec::new()
        };
        let matches = |name: &str| decoded.iter().any(|p| list_matches(&reference, p, name));
        let by_name: HashMap<&str, &Mailbox> = mailboxes.iter().map(|m| (m.name.as_str(), m)).collect();
        // What may be listed: the subscribed names and their superiors (for RECURSIVEMATCH's
        // parents and LSUB's `%`), or the mailboxes.
        let candidates: BTreeSet<&str> = if by_subscription {
            subscriptions
                .iter()
                .flat_map(|s| superiors(s).chain([s.as_str()]))
                .collect()
        } else {
            mailboxes.iter().map(|m| m.name.as_str()).collect()
        };
        // RFC 5258 §3.5 (CHILDINFO) and RFC 3501 §6.3.9 (LSUB with `%`): the subscribed names
        // the patterns do not list themselves, for which a superior is listed.
        let unlisted: Vec<&str> = if lsub || options.recursive_match {
            subscriptions
                .iter()
                .map(String::as_str)
                .filter(|s| !matches(s))
                .collect()
        } else {
            Vec::new()
        };
        for name in candidates.into_iter().filter(|n| matches(n)) {
            let mailbox = by_name.get(name).copied();
            let subscribed = subscriptions.binary_search_by(|s| s.as_str().cmp(name)).is_ok();
            // A name is listed for a subscribed descendant the patterns leave out.
            let hidden_child = unlisted.iter().any(|s| is_below(s, name));
            if by_subscription && !subscribed && !hidden_child {
                continue;
            }
            if options.special_use && mailbox.and_then(|m| m.special_use).is_none() {
                continue;
            }
            let mut attrs: Vec<&str> = Vec::new();
            if lsub {
                if !subscribed || mailbox.is_none_or(|m| m.noselect) {
                    attrs.push("\\Noselect");
                }
            } else {
                let children = mailboxes.iter().any(|c| is_below(&c.name, name));
                match mailbox {
                    Some(m) => {
                        attrs.push(if children { "\\HasChildren" } else { "\\HasNoChildren" });
                        if m.noselect {
                            attrs.push("\\Noselect");
                        }
                    }
                    None => {
                        attrs.push("\\NonExistent");
                        if children {
                            attrs.push("\\HasChildren");
                        }
                    }
                }
                if subscribed && (options.subscribed || options.return_subscribed) {
                    attrs.push("\\Subscribed");
                }
                if let Some(a) = special_use_attr(mailbox.and_then(|m| m.special_use)) {
                    attrs.push(a);
                }
            }
            let mut line = format!("* {command} ({}) \"/\" ", attrs.join(" ")).into_bytes();
            quote(&user.encode_name(name), &mut line);
            if hidden_child && !lsub {
                line.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            out.extend_from_slice(&line);
            out.extend_from_slice(b"\r\n");
            let Some(m) = mailbox.filter(|m| !m.noselect && !options.return_status.is_empty()) else {
                continue;
            };
            // RFC 5819 §2: STATUS follows its mailbox's LIST line.
            if let Err(e) = status_line(
                (store, ctx.recent),
                (m, &user.encode_name(name)),
                &options.return_status,
                self.settings.append_limit,
                out,
            ) {
                return store_error(out, tag, e);
            }
        }
        done(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, name: &str) -> bool {
        list_matches("", pattern, name)
    }

    #[test]
    fn list_wildcards() {
        assert!(m("*", "Work/2026"));
        assert!(!m("%", "Work/2026"));
        assert!(m("%", "Work"));
        assert!(m("Work/%", "Work/2026"));
        assert!(m("inbox", "INBOX"));
        assert!(m("W*6", "Work/2026"));
        assert!(!m("Work", "Work/2026"));
        assert!(list_matches("Work/", "%", "Work/2026"));
        assert!(m("%/%", "a/b") && !m("%/%", "a/b/c") && m("*/%", "a/b/c"));
        assert!(m("", "") && !m("", "a") && m("*", "") && m("%", ""));
        assert!(m("*test8", "t/eight/test8") && !m("*test8", "t/test9"));
    }

    #[test]
    fn wildcard_storms_are_not_exponential() {
        let pattern: Vec<char> = "*a".repeat(40).chars().chain(['b']).collect();
        let name: Vec<char> = "a".repeat(500).chars().collect();
        assert!(!matches_pattern(&pattern, &name));
    }

    #[test]
    fn hierarchy_helpers() {
        assert!(is_below("a/b", "a") && is_below("a/b/c", "a"));
        assert!(!is_below("ab", "a") && !is_below("a", "a") && !is_below("a/", "a"));
        assert_eq!(superiors("a/b/c").collect::<Vec<_>>(), vec!["a", "a/b"]);
        assert_eq!(superiors("a").count(), 0);
    }

    #[test]
    fn every_special_use_has_its_attribute() {
        for (_, special_use) in crate::store::records::DEFAULT_MAILBOXES {
            let Some(u) = special_use else { continue };
            let attr = special_use_attr(Some(u)).unwrap();
            assert_eq!(
                SPECIAL_USE.iter().find(|(a, _)| a.eq_ignore_ascii_case(attr)),
                Some(&(attr, u))
            );
        }
    }
}
