//! NOTIFY (RFC 5465) over real sockets: one connection hears of new mail, expunges, flag
//! changes, mailbox names and subscriptions in mailboxes it has not selected, in IDLE and
//! between commands, woken by the store's change feed on whichever core made the change.

mod common;

use std::time::Duration;

use common::{bob_with, has, message};
use loadtest::client::imap::Imap;

/// Untagged lines that arrive within `wait`, until one contains `until`.
fn lines_until(c: &mut Imap, until: &str, wait: Duration) -> Vec<String> {
    common::lines_until(c, wait, |l| l.contains(until))
}

fn status_line(r: &loadtest::client::imap::Response, name: &str) -> Option<String> {
    r.lines()
        .into_iter()
        .find(|l| l.starts_with(&format!("* STATUS \"{name}\"")))
}

#[test]
fn notify_set_status_reports_the_mailboxes_it_covers() {
    let server = bob_with(1);
    let mut c = server.imap_login("bob");
    let caps = c.cmd("CAPABILITY").unwrap();
    assert!(has(&caps, " NOTIFY"), "{:?}", caps.lines());
    c.cmd("CREATE Work").unwrap().expect_ok().unwrap();
    c.append("Work", "", &message("w1")).unwrap().expect_ok().unwrap();

    let r = c
        .cmd("NOTIFY SET STATUS (mailboxes Work (MessageNew MessageExpunge))")
        .unwrap()
        .expect_ok()
        .unwrap();
    let status = status_line(&r, "Work").expect("initial STATUS");
    assert!(status.contains("MESSAGES 1 UIDNEXT 2 UIDVALIDITY "), "{status}");
    assert!(!status.contains("HIGHESTMODSEQ"), "{status}");
    assert!(status_line(&r, "INBOX").is_none(), "not covered: {:?}", r.lines());
    let r = c
        .cmd("NOTIFY SET STATUS (mailboxes Work (MessageNew MessageExpunge FlagChange))")
        .unwrap()
        .expect_ok()
        .unwrap();
    assert!(
        status_line(&r, "Work").unwrap().contains("HIGHESTMODSEQ"),
        "{:?}",
        r.lines()
    );
    let r = c
        .cmd("NOTIFY SET (mailboxes Work (MessageNew MessageExpunge))")
        .unwrap()
        .expect_ok()
        .unwrap();
    assert!(r.lines().is_empty(), "no STATUS without the indicator: {:?}", r.lines());

    // Rules of §5 and events this server does not offer.
    for bad in [
        "NOTIFY SET (selected (MessageNew))",
        "NOTIFY SET (personal (FlagChange))",
        "NOTIFY SET (selected (MailboxName))",
        "NOTIFY SET STATUS ()",
    ] {
        assert_eq!(c.cmd(bad).unwrap().status, "BAD", "{bad}");
    }
    let r = c.cmd("NOTIFY SET (personal (ServerMetadataChange))").unwrap();
    assert!(r.status == "NO" && r.text.contains("[BADEVENT ("), "{r:?}");
    assert!(c.cmd("NOTIFY NONE").unwrap().ok());
}

#[test]
fn one_idle_connection_hears_of_every_folder() {
    let server = bob_with(1);
    let mut watcher = server.imap_login("bob");
    watcher.cmd("CREATE Work").unwrap().expect_ok().unwrap();
    watcher.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    watcher
        .cmd(
            "NOTIFY SET (selected (MessageNew (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)]) MessageExpunge)) \
             (personal (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange))",
        )
        .unwrap()
        .expect_ok()
        .unwrap();
    let tag = watcher.tag();
    watcher.t.send_line(&format!("{tag} IDLE")).unwrap();
    assert!(watcher.t.read_line_string().unwrap().starts_with('+'));
    let wait = Duration::from_secs(5);

    // New mail in the selected mailbox: EXISTS, then the FETCH MessageNew asked for.
    server.deliver("bob", &message("fresh"));
    let lines = lines_until(&mut watcher, "Subject: fresh", wait);
    assert!(lines.iter().any(|l| l == "* 2 EXISTS"), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("FETCH (UID 2 BODY[HEADER.FIELDS (SUBJECT)]")),
        "{lines:?}"
    );

    // Another connection, maybe on another core, changes other folders.
    let mut other = server.imap_login("bob");
    other.append("Work", "", &message("w1")).unwrap().expect_ok().unwrap();
    let lines = lines_until(&mut watcher, "STATUS \"Work\"", wait);
    let status = lines
        .iter()
        .find(|l| l.starts_with("* STATUS \"Work\""))
        .expect("STATUS for Work");
    assert!(status.contains("MESSAGES 1 UIDNEXT 2"), "{status}");
    other.cmd("SELECT Work").unwrap().expect_ok().unwrap();
    other.cmd("STORE 1 +FLAGS (\\Flagged)").unwrap().expect_ok().unwrap();
    let lines = lines_until(&mut watcher, "STATUS \"Work\"", wait);
    assert!(
        lines.iter().any(|l| l.contains("HIGHESTMODSEQ")),
        "flag change: {lines:?}"
    );
    other.cmd("CREATE Projects").unwrap().expect_ok().unwrap();
    let lines = lines_until(&mut watcher, "\"Projects\"", wait);
    assert!(lines.contains(&"* LIST () \"/\" \"Projects\"".to_string()), "{lines:?}");
    other.cmd("RENAME Projects Archive2").unwrap().expect_ok().unwrap();
    let lines = lines_until(&mut watcher, "OLDNAME", wait);
    assert!(
        lines.contains(&"* LIST () \"/\" \"Archive2\" (\"OLDNAME\" (\"Projects\"))".to_string()),
        "{lines:?}"
    );
    other.cmd("SUBSCRIBE Archive2").unwrap().expect_ok().unwrap();
    let lines = lines_until(&mut watcher, "\\Subscribed", wait);
    assert!(
        lines.contains(&"* LIST (\\Subscribed) \"/\" \"Archive2\"".to_string()),
        "{lines:?}"
    );
    other.cmd("DELETE Archive2").unwrap().expect_ok().unwrap();
    let lines = lines_until(&mut watcher, "NonExistent", wait);
    assert!(
        lines.contains(&"* LIST (\\NonExistent) \"/\" \"Archive2\"".to_string()),
        "{lines:?}"
    );

    watcher.t.send_line("DONE").unwrap();
    assert!(watcher.finish(&tag).unwrap().ok());
}

#[test]
fn notifications_come_between_commands_too() {
    let server = bob_with(0);
    let mut watcher = server.imap_login("bob");
    watcher
        .cmd("NOTIFY SET (inboxes (MessageNew MessageExpunge))")
        .unwrap()
        .expect_ok()
        .unwrap();
    // No IDLE, nothing selected: the STATUS comes on its own.
    server.deliver("bob", &message("m1"));
    let lines = lines_until(&mut watcher, "STATUS \"INBOX\"", Duration::from_secs(5));
    assert!(lines.iter().any(|l| l.contains("MESSAGES 1 UIDNEXT 2")), "{lines:?}");
    // And the session still takes commands.
    assert!(watcher.cmd("NOOP").unwrap().ok());
    watcher.cmd("NOTIFY NONE").unwrap().expect_ok().unwrap();
    server.deliver("bob", &message("m2"));
    let lines = lines_until(&mut watcher, "STATUS", Duration::from_millis(700));
    assert!(lines.is_empty(), "NOTIFY NONE stops it: {lines:?}");
}

#[test]
fn imaplib_sets_notify() {
    let server = bob_with(1);
    let body = r#"
typ, data = m._simple_command("NOTIFY", "SET", "STATUS", "(inboxes (MessageNew MessageExpunge))")
assert typ == "OK", (typ, data)
typ, data = m._untagged_response(typ, data, "STATUS")
print(data[0].decode())
m.logout()
"#;
    let stdout = server.imaplib("bob", &["NOTIFY"], body);
    assert!(stdout.contains("\"INBOX\" (MESSAGES 1 UIDNEXT 2"), "{stdout}");
}

/// MessageNew's FETCH is written as a FETCH command's: a keyword the client has not heard of
/// is announced in FLAGS first (RFC 3501 §7.2.6).
#[test]
fn message_new_fetch_announces_new_keywords_first() {
    let server = bob_with(1);
    let mut watcher = server.imap_login("bob");
    watcher.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    watcher
        .cmd("NOTIFY SET (selected (MessageNew (UID FLAGS) MessageExpunge))")
        .unwrap()
        .expect_ok()
        .unwrap();
    let mut other = server.imap_login("bob");
    other
        .append("INBOX", "$Fresh", &message("m2"))
        .unwrap()
        .expect_ok()
        .unwrap();
    let lines = lines_until(&mut watcher, "FETCH (", Duration::from_secs(5));
    let fetch = lines.iter().position(|l| l.contains("FETCH (") && l.contains("$Fresh"));
    let flags = lines
        .iter()
        .position(|l| l.starts_with("* FLAGS (") && l.contains("$Fresh"));
    assert!(matches!((flags, fetch), (Some(f), Some(x)) if f < x), "{lines:?}");
}
