//! Which handler runs each command, and with which part of the session's state.
//!
//! Each command has a module here: its row of the command table, its grammar, its handler,
//! the completion of its store write and its responses (FETCH's encoding is `fetch::render`).
//!
//! `Session::run` has one arm per command. Its first line takes the state the command needs,
//! as types: nothing before login, the `User` after it, the `User` and the `Selected` mailbox
//! in Selected state. A session in another state gets the command back as `Refused`, answered
//! `BAD` by `dispatch`. The command table (`COMMANDS`, each row in its command's module) says
//! the same in its `states` column, and a test holds the two together. Commands that move the
//! session to another state (LOGIN's answer, SELECT, CLOSE, UNAUTHENTICATE, LOGOUT) are the
//! session's own methods; every other handler is a method of `Conn`, which cannot change the
//! state.

pub(crate) mod append;
pub(crate) mod auth;
pub(crate) mod basic;
pub(crate) mod catenate;
pub(crate) mod compress;
pub(crate) mod copy;
pub(crate) mod expunge;
pub mod fetch;
pub(crate) mod id;
pub(crate) mod idle;
pub(crate) mod list;
pub(crate) mod mailbox;
pub(crate) mod message;
pub(crate) mod metadata;
pub(crate) mod notify;
pub(crate) mod quota;
pub(crate) mod replace;
pub(crate) mod search;
pub(crate) mod select;
pub(crate) mod sort;
pub(crate) mod status;
pub(crate) mod store;
pub(crate) mod urlauth;

use crate::imap::fault::ok;
use crate::imap::parse::lexer::{self, Cursor};
use crate::imap::session::{command_name, untagged, Action, Ctx, Refused, Session, State};
use crate::imap::types::Command;

/// The user and the selected mailbox, or the command back.
macro_rules! selected {
    ($session:ident, $tag:ident, $name:ident) => {
        match &mut $session.state {
            State::Selected(user, sel) => (user, sel),
            _ => return Err(Refused { tag: $tag, name: $name }),
        }
    };
}

/// The user (and the selection, if any), or the command back.
macro_rules! logged_in {
    ($session:ident, $tag:ident, $name:ident) => {
        match $session.state.logged_in() {
            Some(parts) => parts,
            None => return Err(Refused { tag: $tag, name: $name }),
        }
    };
}

/// Nothing: the command runs before login only.
macro_rules! before_login {
    ($session:ident, $tag:ident, $name:ident) => {
        if !matches!($session.state, State::NotAuthenticated) {
            return Err(Refused { tag: $tag, name: $name });
        }
    };
}

/// Where a command is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum States {
    /// Any state.
    Any,
    NotAuthenticated,
    /// Authenticated or Selected.
    Authenticated,
    Selected,
}

/// Reads a command's arguments, after its name.
pub(crate) type Parser = fn(&mut Cursor<'_>) -> lexer::Result<Command>;

/// One row per command, kept in the command's module: where it is valid, how it stands to
/// message numbers, where it is specified, and its grammar.
pub struct Spec {
    pub name: &'static str,
    /// The capability that offers the command (RFC 9051 §7.2.2), advertised after login
    /// because the row exists, and refused to an account that has it switched off
    /// (`switches`); `None` for IMAP4rev1/rev2's own commands and those offered under several
    /// names (THREAD=..., CONTEXT=..., METADATA and METADATA-SERVER, AUTH=..., STARTTLS).
    pub extension: Option<&'static str>,
    pub states: States,
    /// Its non-UID form may name messages by sequence number (RFC 9051 §5.5: a client does
    /// not pipeline it behind a command that may expunge; RFC 9586 refuses it after UIDONLY).
    pub numbers: bool,
    /// The server may send EXPUNGE (or VANISHED) while it runs, renumbering messages. Never
    /// during FETCH, STORE or SEARCH (RFC 9051 §7.5.1), nor SORT and THREAD, which answer
    /// with numbers too.
    pub expunges: bool,
    pub rfc: &'static str,
    pub(crate) parse: Parser,
}

/// The commands ringmail offers: the parser reads a command by its row's grammar, the dispatch
/// runs it in the states its row names (a test holds them together), and CAPABILITY lists the
/// extensions the rows name.
pub const COMMANDS: &[Spec] = &[
    basic::CAPABILITY,
    basic::NOOP,
    basic::LOGOUT,
    id::ID,
    auth::STARTTLS,
    auth::AUTHENTICATE,
    auth::LOGIN,
    auth::UNAUTHENTICATE,
    auth::ENABLE,
    select::SELECT,
    select::EXAMINE,
    mailbox::CREATE,
    mailbox::DELETE,
    mailbox::RENAME,
    mailbox::SUBSCRIBE,
    mailbox::UNSUBSCRIBE,
    list::LIST,
    list::LSUB,
    basic::NAMESPACE,
    status::STATUS,
    append::APPEND,
    idle::IDLE,
    quota::GETQUOTA,
    quota::GETQUOTAROOT,
    metadata::GETMETADATA,
    notify::NOTIFY,
    metadata::SETMETADATA,
    compress::COMPRESS,
    urlauth::RESETKEY,
    urlauth::GENURLAUTH,
    urlauth::URLFETCH,
    basic::CHECK,
    expunge::CLOSE,
    basic::UNSELECT,
    expunge::EXPUNGE,
    search::SEARCH,
    fetch::FETCH,
    store::STORE,
    copy::COPY,
    copy::MOVE,
    replace::REPLACE,
    sort::SORT,
    sort::THREAD,
    search::CANCELUPDATE,
    basic::UID,
];

/// The row of the command called `name` (in any case).
pub fn spec(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

impl Session {
    pub(crate) fn run(
        &mut self,
        tag: String,
        command: Command,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Action, Refused> {
        let name = command_name(&command);
        let conn = &mut self.conn;
        Ok(match command {
            // Any state (RFC 9051 §6.1).
            Command::Capability => {
                untagged(out, &format!("CAPABILITY {}", self.capability_string()));
                ok(out, &tag, "CAPABILITY completed");
                Action::Continue
            }
            Command::Noop => {
                self.sync(ctx, out);
                ok(out, &tag, "NOOP completed");
                Action::Continue
            }
            Command::Logout => {
                untagged(out, "BYE ringmail logging out");
                ok(out, &tag, "LOGOUT completed");
                self.state = State::Logout;
                Action::Close
            }
            Command::Id(_) => {
                conn.id(&tag, self.state.user().is_some(), out);
                Action::Continue
            }

            // Not Authenticated (RFC 9051 §6.2).
            Command::StartTls => {
                before_login!(self, tag, name);
                conn.starttls(&tag, out)
            }
            Command::Login { user, password } => {
                before_login!(self, tag, name);
                conn.login(tag, user, password, out)
            }
            Command::Authenticate { mechanism, initial } => {
                before_login!(self, tag, name);
                conn.authenticate(tag, &mechanism, initial, out)
            }

            // Authenticated, or Selected (RFC 9051 §6.3 and extensions).
            Command::Unauthenticate => {
                logged_in!(self, tag, name);
                // RFC 8437 §3.
                self.forget_user();
                ok(out, &tag, "UNAUTHENTICATE completed");
                Action::Unauthenticated
            }
            Command::Enable(caps) => {
                let (user, _) = logged_in!(self, tag, name);
                auth::enable(user, &caps, out);
                ok(out, &tag, "ENABLE completed");
                Action::Continue
            }
            Command::Select { mailbox, params } => {
                logged_in!(self, tag, name);
                self.select(tag, &mailbox, false, params, ctx, out)
            }
            Command::Examine { mailbox, params } => {
                logged_in!(self, tag, name);
                self.select(tag, &mailbox, true, params, ctx, out)
            }
            Command::Create { mailbox, special_use } => {
                let (user, _) = logged_in!(self, tag, name);
                conn.create(user, tag, &mailbox, &special_use, out)
            }
            Command::Delete { mailbox } => {
                let (user, _) = logged_in!(self, tag, name);
                conn.delete(user, tag, &mailbox, out)
            }
            Command::Rename { from, to } => {
                let (user, _) = logged_in!(self, tag, name);
                conn.rename(user, tag, (&from, &to), out)
            }
            Command::Subscribe { mailbox } => {
                let (user, _) = logged_in!(self, tag, name);
                conn.subscribe(user, tag, &mailbox, true, out)
            }
            Command::Unsubscribe { mailbox } => {
                let (user, _) = logged_in!(self, tag, name);
                conn.subscribe(user, tag, &mailbox, false, out)
            }
            Command::List {
                reference,
                patterns,
                options,
            } => {
                let (user, _) = logged_in!(self, tag, name);
                conn.list(user, &tag, (&reference, &patterns), &options, false, ctx, out);
                Action::Continue
            }
            Command::Lsub { reference, pattern } => {
                let (user, _) = logged_in!(self, tag, name);
                let options = crate::imap::types::ListOptions::default();
                conn.list(user, &tag, (&reference, &[pattern]), &options, true, ctx, out);
                Action::Continue
            }
            Command::Namespace => {
                logged_in!(self, tag, name);
                untagged(out, "NAMESPACE ((\"\" \"/\")) NIL NIL");
                ok(out, &tag, "NAMESPACE completed");
                Action::Continue
            }
            Command::Status { mailbox, items } => {
                let (user, _) = logged_in!(self, tag, name);
                conn.status(user, &tag, &mailbox, &items, ctx, out);
                Action::Continue
            }
            Command::Append { mailbox, messages } => {
                let (user, sel) = logged_in!(self, tag, name);
                conn.append(user, sel.as_deref(), tag, &mailbox, messages, None, ctx, out)
            }
            Command::Idle => {
                logged_in!(self, tag, name);
                self.idle_start(tag, ctx, out)
            }
            Command::GetQuota { root } => {
                let (user, _) = logged_in!(self, tag, name);
                conn.get_quota(user, &tag, Some(&root), None, ctx.store, out);
                Action::Continue
            }
            Command::GetQuotaRoot { mailbox } => {
                let (user, _) = logged_in!(self, tag, name);
                conn.get_quota(user, &tag, None, Some(&mailbox), ctx.store, out);
                Action::Continue
            }
            Command::GetMetadata {
                mailbox,
                entries,
                max_size,
                depth,
            } => {
                let (user, _) = logged_in!(self, tag, name);
                conn.get_metadata(user, &tag, (&mailbox, &entries), (max_size, depth), ctx, out);
                Action::Continue
            }
            Command::SetMetadata { mailbox, entries } => {
                let (user, _) = logged_in!(self, tag, name);
                conn.set_metadata(user, tag, &mailbox, entries, ctx, out)
            }
            Command::Notify(request) => {
                let (user, sel) = logged_in!(self, tag, name);
                conn.notify_command(user, sel.as_deref(), &tag, request, ctx, out)
            }
            Command::Compress { mechanism } => {
                logged_in!(self, tag, name);
                conn.compress(&tag, &mechanism, out)
            }
            Command::ResetKey { mailbox, mechanisms } => {
                let (user, _) = logged_in!(self, tag, name);
                conn.reset_key(user, tag, mailbox.as_deref(), &mechanisms, ctx, out)
            }
            Command::GenUrlauth(urls) => {
                let (user, _) = logged_in!(self, tag, name);
                conn.gen_urlauth(user, tag, &urls, ctx, out)
            }
            Command::UrlFetch(urls) => {
                let (user, _) = logged_in!(self, tag, name);
                conn.url_fetch(user, &tag, &urls, ctx, out);
                Action::Continue
            }

            // Selected (RFC 9051 §6.4 and extensions).
            Command::Check => {
                selected!(self, tag, name);
                self.sync(ctx, out);
                ok(out, &tag, "CHECK completed");
                Action::Continue
            }
            Command::Close => {
                let (_, sel) = selected!(self, tag, name);
                match conn.close(sel, tag, ctx, out) {
                    Some(write) => write,
                    None => {
                        self.state.unselect();
                        Action::Continue
                    }
                }
            }
            Command::Unselect => {
                selected!(self, tag, name);
                self.state.unselect();
                ok(out, &tag, "UNSELECT completed");
                Action::Continue
            }
            Command::Expunge => {
                let (user, sel) = selected!(self, tag, name);
                conn.expunge(user, sel, tag, None, "EXPUNGE", ctx, out)
            }
            Command::UidExpunge(set) => {
                let (user, sel) = selected!(self, tag, name);
                conn.expunge(user, sel, tag, Some(set), "UID EXPUNGE", ctx, out)
            }
            Command::Fetch {
                uid,
                set,
                attrs,
                changed_since,
                vanished,
                partial,
            } => {
                let (user, sel) = selected!(self, tag, name);
                let modifiers = fetch::FetchModifiers {
                    changed_since,
                    vanished,
                    partial,
                };
                conn.fetch_start(user, sel, (tag, uid), &set, attrs, modifiers, ctx, out)
            }
            Command::Store {
                uid,
                set,
                mode,
                silent,
                flags,
                unchanged_since,
            } => {
                let (user, sel) = selected!(self, tag, name);
                conn.store(
                    user,
                    sel,
                    (tag, uid),
                    &set,
                    (mode, silent, &flags),
                    unchanged_since,
                    out,
                )
            }
            Command::Search {
                uid,
                charset,
                returns,
                key,
            } => {
                let (user, sel) = selected!(self, tag, name);
                conn.search_start(user, sel, (tag, uid), charset.as_deref(), returns, key, ctx, out)
            }
            Command::Sort {
                uid,
                returns,
                criteria,
                charset,
                key,
            } => {
                let (user, sel) = selected!(self, tag, name);
                let order = sort::Order::Sort(criteria, returns);
                conn.sort_start(user, sel, (tag, uid), (&charset, key), order, ctx, out)
            }
            Command::Thread {
                uid,
                algorithm,
                charset,
                key,
            } => {
                let (user, sel) = selected!(self, tag, name);
                let order = sort::Order::Thread(algorithm);
                conn.sort_start(user, sel, (tag, uid), (&charset, key), order, ctx, out)
            }
            Command::CancelUpdate(tags) => {
                let (_, sel) = selected!(self, tag, name);
                sel.cancel_update(&tag, &tags, out);
                Action::Continue
            }
            Command::Copy { uid, set, mailbox } => {
                let (user, sel) = selected!(self, tag, name);
                conn.copy(user, sel, (tag, uid), &set, &mailbox, false, ctx, out)
            }
            Command::Move { uid, set, mailbox } => {
                let (user, sel) = selected!(self, tag, name);
                conn.copy(user, sel, (tag, uid), &set, &mailbox, true, ctx, out)
            }
            Command::Replace {
                uid,
                target,
                mailbox,
                message,
            } => {
                let (user, sel) = selected!(self, tag, name);
                conn.replace(user, sel, (tag, uid), target, (&mailbox, message), ctx, out)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::imap::command::{States, COMMANDS};
    use crate::imap::limit::MessageLimit;
    use crate::imap::session::Session;
    use crate::imap::testing::{body, fresh, logged_in, run, selected_session, MemStore};

    /// A valid command for every row of the command table.
    const SAMPLES: &[(&str, &str)] = &[
        ("CAPABILITY", "CAPABILITY"),
        ("NOOP", "NOOP"),
        ("LOGOUT", "LOGOUT"),
        ("ID", "ID NIL"),
        ("STARTTLS", "STARTTLS"),
        ("AUTHENTICATE", "AUTHENTICATE PLAIN AGJvYgBwdw=="),
        ("LOGIN", "LOGIN bob pw"),
        ("UNAUTHENTICATE", "UNAUTHENTICATE"),
        ("ENABLE", "ENABLE CONDSTORE"),
        ("SELECT", "SELECT INBOX"),
        ("EXAMINE", "EXAMINE INBOX"),
        ("CREATE", "CREATE x"),
        ("DELETE", "DELETE x"),
        ("RENAME", "RENAME x y"),
        ("SUBSCRIBE", "SUBSCRIBE x"),
        ("UNSUBSCRIBE", "UNSUBSCRIBE x"),
        ("LIST", "LIST \"\" *"),
        ("LSUB", "LSUB \"\" *"),
        ("NAMESPACE", "NAMESPACE"),
        ("STATUS", "STATUS INBOX (MESSAGES)"),
        ("APPEND", "APPEND INBOX {5+}\r\nhello"),
        ("IDLE", "IDLE"),
        ("GETQUOTA", "GETQUOTA \"\""),
        ("GETQUOTAROOT", "GETQUOTAROOT INBOX"),
        ("GETMETADATA", "GETMETADATA INBOX /shared/comment"),
        ("NOTIFY", "NOTIFY NONE"),
        ("SETMETADATA", "SETMETADATA INBOX (/shared/comment NIL)"),
        ("COMPRESS", "COMPRESS DEFLATE"),
        ("RESETKEY", "RESETKEY"),
        (
            "GENURLAUTH",
            "GENURLAUTH \"imap://bob@h/INBOX;uid=1;urlauth=user+bob\" INTERNAL",
        ),
        ("URLFETCH", "URLFETCH \"imap://bob@h/INBOX;uid=1\""),
        ("CHECK", "CHECK"),
        ("CLOSE", "CLOSE"),
        ("UNSELECT", "UNSELECT"),
        ("EXPUNGE", "EXPUNGE"),
        ("SEARCH", "SEARCH ALL"),
        ("FETCH", "FETCH 1 FLAGS"),
        ("STORE", "STORE 1 +FLAGS (\\Seen)"),
        ("COPY", "COPY 1 INBOX"),
        ("MOVE", "MOVE 1 INBOX"),
        ("REPLACE", "REPLACE 1 INBOX {5+}\r\nhello"),
        ("SORT", "SORT (DATE) UTF-8 ALL"),
        ("THREAD", "THREAD REFERENCES UTF-8 ALL"),
        ("CANCELUPDATE", "CANCELUPDATE \"x\""),
        ("UID", "UID FETCH 1 FLAGS"),
    ];

    /// The dispatch runs each command in exactly the states the table's row names, and
    /// refuses it with the reason in every other.
    #[test]
    fn dispatch_admits_each_command_in_the_states_of_its_table_row() {
        let store = MemStore::new(2, &[body("one", 100), body("two", 100)]);
        type Open = fn(&MemStore) -> Session;
        let sessions: [(&str, Open); 3] = [
            ("not authenticated", |_| fresh(MessageLimit::None)),
            ("authenticated", |s| {
                logged_in(s, MessageLimit::None, &mut crate::imap::view::Unshared)
            }),
            ("selected", |s| selected_session(s, MessageLimit::None)),
        ];
        for spec in COMMANDS {
            let Some((_, line)) = SAMPLES.iter().find(|(name, _)| *name == spec.name) else {
                panic!("no sample of {} to try", spec.name);
            };
            for (i, (state, open)) in sessions.iter().enumerate() {
                let mut session = open(&store);
                let (out, _) = run(&mut session, &store, 0, &format!("t {line}\r\n"));
                let refused = out.contains(&format!("t BAD {}: ", spec.name));
                let admitted = match spec.states {
                    States::Any => true,
                    States::NotAuthenticated => i == 0,
                    States::Authenticated => i > 0,
                    States::Selected => i == 2,
                };
                assert_eq!(refused, !admitted, "{} in the {state} state: {out}", spec.name);
            }
        }
    }

    /// A command whose row says it names no message by number never parses to one that does.
    #[test]
    fn rows_say_which_commands_use_message_numbers() {
        for (name, line) in SAMPLES {
            let spec = crate::imap::command::spec(name).expect("a row");
            let (_, command) = crate::imap::parse::parse_command(format!("t {line}").as_bytes()).expect(line);
            if command.uses_sequence_numbers() {
                assert!(spec.numbers, "{name}'s row says it uses no message numbers: {line}");
            }
        }
    }

    /// RFC 9051 §7.5.1: EXPUNGE (or VANISHED) comes only during the commands whose row says
    /// they may renumber messages; never during FETCH, STORE, SEARCH, SORT or THREAD.
    #[test]
    fn only_commands_whose_row_allows_it_tell_of_expunges() {
        let mut told = Vec::new();
        for (name, line) in SAMPLES {
            let spec = crate::imap::command::spec(name).expect("a row");
            let mut store = MemStore::new(3, &[body("one", 100), body("two", 100), body("three", 100)]);
            let mut session = selected_session(&store, MessageLimit::None);
            store.expunge(&[3]);
            let (out, _) = run(&mut session, &store, 0, &format!("t {line}\r\n"));
            let expunged = out.contains("* 3 EXPUNGE") || out.contains("VANISHED");
            assert!(!expunged || spec.expunges, "{name} told of an expunge: {out}");
            if expunged {
                told.push(*name);
            }
        }
        // The test sees expunges where the rows expect them.
        assert!(["NOOP", "CHECK", "IDLE"].iter().all(|n| told.contains(n)), "{told:?}");
    }

    /// CAPABILITY after login names each command's extension, and an account with that
    /// extension switched off is refused the command.
    #[test]
    fn each_command_extension_is_advertised_and_can_be_switched_off() {
        let caps = crate::imap::capability::capabilities(
            true,
            true,
            false,
            (true, true, false),
            (1 << 20, MessageLimit::None),
        );
        let caps: Vec<&str> = caps.split(' ').collect();
        for (name, line) in SAMPLES {
            let spec = crate::imap::command::spec(name).expect("a row");
            let Some(extension) = spec.extension else { continue };
            assert!(
                caps.contains(&extension),
                "{extension} of {name} is not advertised: {caps:?}"
            );
            let (_, command) = crate::imap::parse::parse_command(format!("t {line}").as_bytes()).expect(line);
            let refused = crate::imap::switches::refused(&command, &[extension.to_owned()]);
            assert_eq!(refused.as_deref(), Some(extension), "{name} with {extension} off");
        }
        let mut unique = caps.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), caps.len(), "a capability is named twice: {caps:?}");
    }
}
