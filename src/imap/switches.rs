//! Per-user IMAP extension switches (`ringmail user set NAME --imap-disable CAP[,CAP]`): a
//! client that misuses an extension (a cloud client that ENABLEs UIDONLY and then sends
//! sequence numbers) is made workable for that one account, without a server-wide change.
//!
//! A disabled extension is left out of CAPABILITY (`name` itself and every `name=...`), is not
//! turned on by ENABLE, and its commands and the FETCH/STORE/SELECT/APPEND modifiers it adds
//! are refused with `BAD` as if the server had never offered it. Search keys and return
//! options of a hidden extension (ESEARCH, ESORT, SEARCHRES, WITHIN, SAVEDATE, OBJECTID,
//! PARTIAL) are still understood: a client that was not told of them has no reason to send
//! them. UPDATE (CONTEXT=SEARCH, CONTEXT=SORT) is the exception: it leaves state behind, as a
//! modifier does, so it is refused.

use super::types::{Command, FetchAttr, SearchReturn, ThreadAlgorithm};

/// Whether `capability` (as CAPABILITY lists it) is one of `disabled` or a value of one
/// (`SORT=DISPLAY` under `SORT`, `APPENDLIMIT=n` under `APPENDLIMIT`).
pub fn hidden(capability: &str, disabled: &[String]) -> bool {
    disabled.iter().any(|d| {
        capability.eq_ignore_ascii_case(d)
            || capability
                .split_once('=')
                .is_some_and(|(name, _)| name.eq_ignore_ascii_case(d))
    })
}

/// The CAPABILITY list without what `disabled` hides.
pub fn filter(capabilities: &str, disabled: &[String]) -> String {
    if disabled.is_empty() {
        return capabilities.to_owned();
    }
    capabilities
        .split(' ')
        .filter(|c| !hidden(c, disabled))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The extension `command` needs, when it is one the user has disabled.
pub fn refused(command: &Command, disabled: &[String]) -> Option<String> {
    if disabled.is_empty() {
        return None;
    }
    let off = |cap: &str| hidden(cap, disabled);
    let first = |caps: &[&str]| caps.iter().find(|c| off(c)).map(|c| (*c).to_owned());
    // The extension that offers the command, from its row of the command table.
    let row = crate::imap::command::spec(command.verb()).and_then(|s| s.extension);
    if let Some(cap) = row.filter(|cap| off(cap)) {
        return Some(cap.to_owned());
    }
    // What the command asks for beyond its own extension.
    match command {
        Command::UidExpunge(_) => first(&["UIDPLUS"]),
        Command::Replace { message, .. } => {
            let catenate = message.catenate.is_some() && off("CATENATE");
            catenate.then(|| "CATENATE".to_owned())
        }
        // RFC 5267: UPDATE makes state, as a modifier would; the other RETURN options are
        // understood.
        Command::Sort { returns, .. } => {
            let update = returns.as_ref().is_some_and(|r| r.contains(&SearchReturn::Update));
            (update && off("CONTEXT=SORT")).then(|| "CONTEXT=SORT".to_owned())
        }
        Command::Search { returns, .. } => {
            let update = returns.as_ref().is_some_and(|r| r.contains(&SearchReturn::Update));
            (update && off("CONTEXT=SEARCH")).then(|| "CONTEXT=SEARCH".to_owned())
        }
        Command::CancelUpdate(_) => (off("CONTEXT=SEARCH") && off("CONTEXT=SORT")).then(|| "CONTEXT=SEARCH".to_owned()),
        Command::Thread { algorithm, .. } => {
            let cap = match algorithm {
                ThreadAlgorithm::OrderedSubject => "THREAD=ORDEREDSUBJECT",
                ThreadAlgorithm::References => "THREAD=REFERENCES",
            };
            off(cap).then(|| cap.to_owned())
        }
        Command::GetMetadata { mailbox, .. } | Command::SetMetadata { mailbox, .. } => {
            // Server entries are METADATA-SERVER's; mailbox entries need METADATA.
            let server = mailbox.is_empty() && !off("METADATA-SERVER");
            (off("METADATA") && !server).then(|| "METADATA".to_owned())
        }
        // CONDSTORE needs CONDSTORE only; QRESYNC needs both (RFC 7162 §3.2.3).
        Command::Select { params, .. } | Command::Examine { params, .. } => match params.qresync {
            Some(_) => first(&["CONDSTORE", "QRESYNC"]),
            None if params.condstore => first(&["CONDSTORE"]),
            None => None,
        },
        Command::Store { unchanged_since, .. } => unchanged_since.and_then(|_| first(&["CONDSTORE"])),
        Command::Fetch {
            attrs, changed_since, ..
        } => {
            let condstore = changed_since.is_some() || attrs.contains(&FetchAttr::ModSeq);
            let binary = attrs
                .iter()
                .any(|a| matches!(a, FetchAttr::Binary { .. } | FetchAttr::BinarySize { .. }));
            let preview = attrs.iter().any(|a| matches!(a, FetchAttr::Preview { .. }));
            let save_date = attrs.contains(&FetchAttr::SaveDate);
            let object_id = attrs.contains(&FetchAttr::EmailId) || attrs.contains(&FetchAttr::ThreadId);
            [
                (condstore, "CONDSTORE"),
                (binary, "BINARY"),
                (preview, "PREVIEW"),
                (save_date, "SAVEDATE"),
                (object_id, "OBJECTID"),
            ]
            .into_iter()
            .find(|(used, cap)| *used && off(cap))
            .map(|(_, cap)| cap.to_owned())
        }
        Command::Append { messages, .. } => {
            let binary = messages.iter().any(|m| m.binary) && off("BINARY");
            let multi = messages.len() > 1 && off("MULTIAPPEND");
            let catenate = messages.iter().any(|m| m.catenate.is_some()) && off("CATENATE");
            binary
                .then(|| "BINARY".to_owned())
                .or_else(|| multi.then(|| "MULTIAPPEND".to_owned()))
                .or_else(|| catenate.then(|| "CATENATE".to_owned()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::parse::parse_command;

    fn off(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn capabilities_and_their_values_are_hidden() {
        let caps = "IMAP4rev1 IDLE SORT SORT=DISPLAY THREAD=REFERENCES APPENDLIMIT=10 UIDONLY";
        assert_eq!(
            filter(caps, &off(&["SORT", "UIDONLY", "APPENDLIMIT"])),
            "IMAP4rev1 IDLE THREAD=REFERENCES"
        );
        assert_eq!(filter(caps, &[]), caps);
    }

    #[test]
    fn commands_of_disabled_extensions_are_refused() {
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            ("a IDLE", &["IDLE"], Some("IDLE")),
            ("a IDLE", &["MOVE"], None),
            ("a MOVE 1 Trash", &["MOVE"], Some("MOVE")),
            ("a FETCH 1 (MODSEQ)", &["CONDSTORE"], Some("CONDSTORE")),
            ("a FETCH 1 (FLAGS) (CHANGEDSINCE 4)", &["CONDSTORE"], Some("CONDSTORE")),
            ("a FETCH 1 (FLAGS)", &["CONDSTORE"], None),
            ("a FETCH 1 BINARY[1]", &["BINARY"], Some("BINARY")),
            ("a SELECT INBOX (CONDSTORE)", &["CONDSTORE"], Some("CONDSTORE")),
            // Found by the imap_command fuzz target: refused as QRESYNC's.
            ("a SELECT INBOX (CONDSTORE)", &["QRESYNC"], None),
            ("a EXAMINE INBOX (QRESYNC (1 2))", &["QRESYNC"], Some("QRESYNC")),
            ("a SELECT INBOX (QRESYNC (1 2))", &["CONDSTORE"], Some("CONDSTORE")),
            (
                "a THREAD REFERENCES UTF-8 ALL",
                &["THREAD=REFERENCES"],
                Some("THREAD=REFERENCES"),
            ),
            ("a THREAD ORDEREDSUBJECT UTF-8 ALL", &["THREAD=REFERENCES"], None),
            ("a GETMETADATA \"\" /private/x", &["METADATA"], None),
            ("a GETMETADATA INBOX /private/x", &["METADATA"], Some("METADATA")),
            ("a UID EXPUNGE 1", &["UIDPLUS"], Some("UIDPLUS")),
            (
                "a APPEND x CATENATE (URL \"/x/;UID=1\")",
                &["CATENATE"],
                Some("CATENATE"),
            ),
            ("a APPEND x {0}\r\n", &["CATENATE"], None),
            (
                "a SEARCH RETURN (UPDATE) SEEN",
                &["CONTEXT=SEARCH"],
                Some("CONTEXT=SEARCH"),
            ),
            ("a SEARCH RETURN (UPDATE) SEEN", &["CONTEXT=SORT"], None),
            ("a SEARCH RETURN (COUNT) SEEN", &["CONTEXT"], None),
            (
                "a SORT RETURN (UPDATE) (DATE) UTF-8 ALL",
                &["CONTEXT"],
                Some("CONTEXT=SORT"),
            ),
            ("a SORT RETURN (COUNT) (DATE) UTF-8 ALL", &["ESORT"], None),
            ("a CANCELUPDATE \"x\"", &["CONTEXT=SORT"], None),
            ("a CANCELUPDATE \"x\"", &["CONTEXT"], Some("CONTEXT=SEARCH")),
            (
                "a REPLACE 1 x CATENATE (URL \";UID=1\")",
                &["CATENATE"],
                Some("CATENATE"),
            ),
        ];
        for (line, disabled, want) in cases {
            let (_, command) = parse_command(line.as_bytes()).unwrap();
            assert_eq!(refused(&command, &off(disabled)).as_deref(), *want, "{line}");
        }
    }
}
