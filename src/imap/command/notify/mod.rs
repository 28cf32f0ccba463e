//! NOTIFY (RFC 5465): one connection hears of changes to every mailbox it asks about, without
//! selecting them. A phone keeps one connection watching INBOX and its folders.
//!
//! The session is woken by its core's per-user watch (the store's change feed), then compares
//! the mailboxes as they are now with what it last told its client (`Known`), which is a
//! mailbox record each, no message scan: counts, UIDNEXT and HIGHESTMODSEQ changed → STATUS
//! (MessageNew, MessageExpunge, FlagChange), a name appeared, vanished or changed → LIST
//! (MailboxName), the subscriptions changed → LIST (SubscriptionChange). The selected mailbox
//! is reported as any selected mailbox is (EXISTS, EXPUNGE, FETCH), plus the FETCH of each new
//! message that a `selected` group's MessageNew asks for.
//!
//! Not offered: AnnotationChange (no ANNOTATE), MailboxMetadataChange and
//! ServerMetadataChange; asking for them gets `NO [BADEVENT (...)]` (§5).

pub(crate) mod parse;

use crate::imap::fault::{ok, Fault};
use std::collections::HashMap;

use super::fetch::{fetch_one, FetchForm};
use super::mailbox::quote;
use crate::imap::command::{Spec, States};
use crate::imap::session::{store_error, Action, Conn, Ctx, Selected, Session, State, User};
use crate::imap::types::{FetchAttr, NotifyEvent, NotifyFilter, NotifyGroup};
use crate::imap::view::MailRead;
use crate::store::mailboxes::is_below;
use crate::store::records::{MailboxId, Uid, UserId};
use crate::store::{canonical_mailbox_name, Mailbox, SEPARATOR};

/// The command table's rows (`command::COMMANDS`).
pub(crate) const NOTIFY: Spec = Spec {
    name: "NOTIFY",
    extension: Some("NOTIFY"),
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 5465 §3",
    parse: parse::notify,
};

/// The events this server can report, for `[BADEVENT]`.
const SUPPORTED: &str = "(MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)";

/// A session's NOTIFY SET, and what its client has been told so far.
pub(crate) struct Notifier {
    groups: Vec<NotifyGroup>,
    known: HashMap<MailboxId, Known>,
    subscriptions: Vec<String>,
}

/// One mailbox as the client last heard of it.
struct Known {
    name: String,
    messages: u32,
    uid_next: Uid,
    highest_modseq: u64,
}

impl Known {
    /// `m` as the client hears of it now, under `name` (`m.name`, or an equal one kept).
    fn of(m: &Mailbox, name: String) -> Known {
        Known {
            name,
            messages: m.messages,
            uid_next: m.uid_next,
            highest_modseq: m.highest_modseq,
        }
    }
}

fn is_selected_filter(f: &NotifyFilter) -> bool {
    matches!(f, NotifyFilter::Selected | NotifyFilter::SelectedDelayed)
}

fn has(events: &[NotifyEvent], wanted: &NotifyEvent) -> bool {
    events
        .iter()
        .any(|e| std::mem::discriminant(e) == std::mem::discriminant(wanted))
}

/// RFC 5465 §5 and §6: which events go together and where. `Err((bad, text))`: `BAD` for a
/// request the RFC forbids, `NO [BADEVENT]` for events this server does not offer.
fn validate(groups: &[NotifyGroup]) -> Result<(), (bool, String)> {
    let bad = |text: &str| Err((true, text.to_owned()));
    for g in groups {
        let e = &g.events;
        if e.iter().any(|e| {
            matches!(
                e,
                NotifyEvent::AnnotationChange | NotifyEvent::MailboxMetadataChange | NotifyEvent::ServerMetadataChange
            )
        }) {
            return Err((false, format!("[BADEVENT {SUPPORTED}] event not supported")));
        }
        let new = has(e, &NotifyEvent::MessageNew(Vec::new()));
        let expunge = has(e, &NotifyEvent::MessageExpunge);
        if new != expunge {
            return bad("MessageNew and MessageExpunge go together");
        }
        if has(e, &NotifyEvent::FlagChange) && !new {
            return bad("FlagChange needs MessageNew and MessageExpunge");
        }
        let mailbox_events = has(e, &NotifyEvent::MailboxName) || has(e, &NotifyEvent::SubscriptionChange);
        if is_selected_filter(&g.filter) && mailbox_events {
            return bad("mailbox events are not for the selected mailbox");
        }
        for ev in e {
            let NotifyEvent::MessageNew(attrs) = ev else { continue };
            if !attrs.is_empty() && !is_selected_filter(&g.filter) {
                return bad("MessageNew FETCH attributes are for the selected mailbox only");
            }
            if attrs.iter().any(sets_seen) {
                return bad("MessageNew FETCH attributes must not set \\Seen (use BODY.PEEK)");
            }
        }
    }
    Ok(())
}

fn sets_seen(a: &FetchAttr) -> bool {
    match a {
        FetchAttr::BodySection { peek, .. } | FetchAttr::Binary { peek, .. } => !peek,
        FetchAttr::Rfc822 | FetchAttr::Rfc822Text => true,
        _ => false,
    }
}

/// Whether `name` is `parent` or below it. A subscribed name may end in the separator
/// (SUBSCRIBE takes it as given): `parent/` is in `parent`'s subtree too.
fn in_subtree(name: &str, parent: &str) -> bool {
    name == parent || name.strip_suffix(SEPARATOR) == Some(parent) || is_below(name, parent)
}

impl Notifier {
    /// The events of the first group whose filter covers the (not selected) mailbox `name`.
    fn events_for(&self, name: &str, subscribed: bool) -> Option<&[NotifyEvent]> {
        self.groups
            .iter()
            .find(|g| match &g.filter {
                NotifyFilter::Selected | NotifyFilter::SelectedDelayed => false,
                NotifyFilter::Inboxes => name == "INBOX",
                NotifyFilter::Personal => true,
                NotifyFilter::Subscribed => subscribed,
                NotifyFilter::Subtree(roots) => roots.iter().any(|r| in_subtree(name, r)),
                NotifyFilter::Mailboxes(names) => names.iter().any(|n| n == name),
            })
            .map(|g| g.events.as_slice())
    }

    fn is_subscribed(&self, name: &str) -> bool {
        self.subscriptions.binary_search_by(|s| s.as_str().cmp(name)).is_ok()
    }

    /// SELECTED-DELAYED (RFC 5465 §5.2): expunges in the selected mailbox wait for a command
    /// that tells them itself (NOOP, CHECK, IDLE, ...), not the end of any UID command.
    pub(crate) fn delays_expunges(&self) -> bool {
        self.groups.iter().any(|g| g.filter == NotifyFilter::SelectedDelayed)
    }

    /// The FETCH attributes a `selected` group asks for with each new message.
    pub(crate) fn new_message_attrs(&self) -> Option<&[FetchAttr]> {
        self.groups
            .iter()
            .filter(|g| is_selected_filter(&g.filter))
            .flat_map(|g| &g.events)
            .find_map(|e| match e {
                NotifyEvent::MessageNew(attrs) if !attrs.is_empty() => Some(attrs.as_slice()),
                _ => None,
            })
    }
}

/// `* STATUS name (MESSAGES n UIDNEXT n UIDVALIDITY n [HIGHESTMODSEQ n])`, HIGHESTMODSEQ when
/// the client asked for FlagChange (RFC 5465 §5.2, §5.3).
fn status(m: &Mailbox, encoded: &str, flag_change: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(b"* STATUS ");
    quote(encoded, out);
    out.extend_from_slice(
        format!(
            " (MESSAGES {} UIDNEXT {} UIDVALIDITY {}",
            m.messages, m.uid_next, m.uid_validity
        )
        .as_bytes(),
    );
    if flag_change {
        out.extend_from_slice(format!(" HIGHESTMODSEQ {}", m.highest_modseq).as_bytes());
    }
    out.extend_from_slice(b")\r\n");
}

/// `* LIST (attributes) "/" name [extended]`, for MailboxName and SubscriptionChange (§5.4, §5.5).
fn list(attributes: &str, encoded: &str, extended: Option<&str>, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("* LIST ({attributes}) \"/\" ").as_bytes());
    quote(encoded, out);
    if let Some(x) = extended {
        out.push(b' ');
        out.extend_from_slice(x.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

impl Session {
    /// The user whose mailboxes a NOTIFY session watches: the driver waits on that user's
    /// changes, in IDLE and between commands.
    pub fn notify_user(&self) -> Option<UserId> {
        match &self.state {
            State::Authenticated(u) | State::Selected(u, _) if self.conn.notify.is_some() => Some(u.id),
            _ => None,
        }
    }
}

impl Conn {
    /// NOTIFY SET / NOTIFY NONE (RFC 5465 §3).
    pub(crate) fn notify_command(
        &mut self,
        user: &User,
        sel: Option<&Selected>,
        tag: &str,
        request: Option<(bool, Vec<NotifyGroup>)>,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        let Some((with_status, groups)) = request else {
            self.notify = None;
            ok(out, tag, "NOTIFY completed");
            return Action::Continue;
        };
        if let Err((bad, text)) = validate(&groups) {
            if bad { Fault::bad(text) } else { Fault::no_code(text) }.write(tag, out);
            return Action::Continue;
        }
        // Mailbox names as stored; a name that is not modified UTF-7 matches nothing.
        let decode = |names: &[String]| -> Vec<String> {
            names
                .iter()
                .filter_map(|n| user.decode_name(n).ok())
                .map(|n| canonical_mailbox_name(&n).to_owned())
                .collect()
        };
        let groups = groups
            .into_iter()
            .map(|g| NotifyGroup {
                filter: match g.filter {
                    NotifyFilter::Subtree(names) => NotifyFilter::Subtree(decode(&names)),
                    NotifyFilter::Mailboxes(names) => NotifyFilter::Mailboxes(decode(&names)),
                    other => other,
                },
                events: g.events,
            })
            .collect();
        let (mailboxes, subscriptions) = match (ctx.store.mailboxes(user.id), ctx.store.subscriptions(user.id)) {
            (Ok(m), Ok(s)) => (m, s),
            (Err(e), _) | (_, Err(e)) => {
                store_error(out, tag, e);
                return Action::Continue;
            }
        };
        let notifier = Notifier {
            groups,
            known: mailboxes.iter().map(|m| (m.id, Known::of(m, m.name.clone()))).collect(),
            subscriptions,
        };
        if with_status {
            // §3: STATUS now for every mailbox the message events cover, but the selected one.
            let selected = sel.map(|s| s.mailbox);
            for m in mailboxes.iter().filter(|m| !m.noselect && Some(m.id) != selected) {
                let Some(events) = notifier.events_for(&m.name, notifier.is_subscribed(&m.name)) else {
                    continue;
                };
                if has(events, &NotifyEvent::MessageNew(Vec::new())) {
                    status(
                        m,
                        &user.encode_name(&m.name),
                        has(events, &NotifyEvent::FlagChange),
                        out,
                    );
                }
            }
        }
        self.notify = Some(Box::new(notifier));
        ok(out, tag, "NOTIFY completed");
        Action::Continue
    }

    /// Tells the client what changed in the mailboxes its NOTIFY covers since it last heard.
    /// `selected`: the mailbox the session has selected, whose changes `sync` tells.
    pub(crate) fn notify_sync(
        &mut self,
        user: &User,
        selected: Option<MailboxId>,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) {
        let Some(mut notifier) = self.notify.take() else {
            return;
        };
        let (mailboxes, subscriptions) = match (ctx.store.mailboxes(user.id), ctx.store.subscriptions(user.id)) {
            (Ok(m), Ok(s)) => (m, s),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!("notify: {e}");
                self.notify = Some(notifier);
                return;
            }
        };
        let old_subscriptions = std::mem::replace(&mut notifier.subscriptions, subscriptions);
        let mut gone: HashMap<MailboxId, Known> = std::mem::take(&mut notifier.known);
        for m in &mailboxes {
            let before = gone.remove(&m.id);
            if let Some(events) = notifier.events_for(&m.name, notifier.is_subscribed(&m.name)) {
                notify_mailbox(user, m, before.as_ref(), (events, selected), out);
            }
            let name = match before {
                Some(before) if before.name == m.name => before.name,
                _ => m.name.clone(),
            };
            notifier.known.insert(m.id, Known::of(m, name));
        }
        for (_, before) in gone {
            let subscribed = old_subscriptions.binary_search(&before.name).is_ok();
            if notifier
                .events_for(&before.name, subscribed)
                .is_some_and(|e| has(e, &NotifyEvent::MailboxName))
            {
                list("\\NonExistent", &user.encode_name(&before.name), None, out);
            }
        }
        for name in notifier
            .subscriptions
            .iter()
            .filter(|s| old_subscriptions.binary_search(s).is_err())
        {
            if notifier
                .events_for(name, true)
                .is_some_and(|e| has(e, &NotifyEvent::SubscriptionChange))
            {
                list("\\Subscribed", &user.encode_name(name), None, out);
            }
        }
        for name in old_subscriptions.iter().filter(|s| !notifier.is_subscribed(s)) {
            if notifier
                .events_for(name, false)
                .or_else(|| notifier.events_for(name, true))
                .is_some_and(|e| has(e, &NotifyEvent::SubscriptionChange))
            {
                list("", &user.encode_name(name), None, out);
            }
        }
        self.notify = Some(notifier);
    }
}

/// What `events` ask to hear of one mailbox the client knew as `before` (`None`: it is
/// new): its new name, and, but for the selected mailbox, its counts and flags. The name
/// is encoded only for a response that shows it.
fn notify_mailbox(
    user: &User,
    m: &Mailbox,
    before: Option<&Known>,
    (events, selected): (&[NotifyEvent], Option<MailboxId>),
    out: &mut Vec<u8>,
) {
    let encoded = std::cell::OnceCell::new();
    let encoded = || encoded.get_or_init(|| user.encode_name(&m.name)).as_str();
    let Some(before) = before else {
        if has(events, &NotifyEvent::MailboxName) {
            list("", encoded(), None, out);
        }
        return;
    };
    if before.name != m.name && has(events, &NotifyEvent::MailboxName) {
        let mut old = Vec::new();
        quote(&user.encode_name(&before.name), &mut old);
        let extended = format!("(\"OLDNAME\" ({}))", String::from_utf8_lossy(&old));
        list("", encoded(), Some(&extended), out);
    }
    if Some(m.id) == selected || m.noselect {
        return;
    }
    let messages = before.messages != m.messages || before.uid_next != m.uid_next;
    let flag_change = has(events, &NotifyEvent::FlagChange);
    let flags = flag_change && before.highest_modseq != m.highest_modseq;
    if (messages && has(events, &NotifyEvent::MessageNew(Vec::new()))) || flags {
        status(m, encoded(), flag_change, out);
    }
}

/// RFC 5465 §5.2: the FETCH a `selected` group's MessageNew asks for, for each new message,
/// written as a FETCH command's would be (keywords announced, UIDFETCH under UIDONLY). A
/// message that cannot be shown so is left out: nobody asked for it by command.
pub(crate) fn fetch_new(
    store: &dyn MailRead,
    sel: &mut Selected,
    form: &FetchForm<'_>,
    new: &[Uid],
    out: &mut Vec<u8>,
) {
    for &uid in new {
        let Some(seq) = sel.view.seq_of(uid) else {
            continue;
        };
        let _ = fetch_one(store, sel, (seq, uid), (form, &|_| false), (out, None));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::parse::parse_command;
    use crate::imap::types::Command;

    fn groups(line: &str) -> Vec<NotifyGroup> {
        match parse_command(line.as_bytes()) {
            Ok((_, Command::Notify(Some((_, g))))) => g,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn event_rules() {
        let ok = [
            "a NOTIFY SET (selected (MessageNew MessageExpunge FlagChange))",
            "a NOTIFY SET STATUS (personal (MessageNew MessageExpunge MailboxName SubscriptionChange))",
            "a NOTIFY SET (selected (MessageNew (UID BODY.PEEK[HEADER]) MessageExpunge)) (inboxes NONE)",
            "a NOTIFY SET (subtree (Lists Work) (MessageNew MessageExpunge))",
        ];
        for line in ok {
            assert_eq!(validate(&groups(line)), Ok(()), "{line}");
        }
        let bad = [
            "a NOTIFY SET (selected (MessageNew))",
            "a NOTIFY SET (personal (MessageExpunge))",
            "a NOTIFY SET (personal (FlagChange))",
            "a NOTIFY SET (selected (MailboxName))",
            "a NOTIFY SET (personal (MessageNew (UID) MessageExpunge))",
            "a NOTIFY SET (selected (MessageNew (BODY[]) MessageExpunge))",
        ];
        for line in bad {
            assert!(matches!(validate(&groups(line)), Err((true, _))), "{line}");
        }
        let unsupported = validate(&groups("a NOTIFY SET (personal (ServerMetadataChange))"));
        assert!(matches!(unsupported, Err((false, t)) if t.contains("BADEVENT")));
        for line in [
            "a NOTIFY SET STATUS ()",
            "a NOTIFY SET (personal messageNew)",
            "a NOTIFY BOGUS",
        ] {
            assert!(parse_command(line.as_bytes()).is_err(), "{line}");
        }
    }

    #[test]
    fn filters_cover_mailboxes() {
        let n = Notifier {
            groups: groups("a NOTIFY SET (inboxes (MessageNew MessageExpunge)) (subtree Lists (MailboxName))"),
            known: HashMap::new(),
            subscriptions: Vec::new(),
        };
        assert!(n.events_for("INBOX", false).is_some());
        assert!(n.events_for("Lists", false).is_some() && n.events_for("Lists/rust", false).is_some());
        assert!(n.events_for("Listserv", false).is_none() && n.events_for("Sent", false).is_none());
        assert!(in_subtree("a/b", "a") && !in_subtree("ab", "a"));
    }
}
