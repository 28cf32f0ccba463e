//! IMAP session state that an independent compliance suite and a state-checking stress client
//! found wrong (issue 9), over real sockets with two or three sessions where the rule is
//! about sessions: keywords announced before use, \Recent in exactly one session, CONDSTORE's
//! HIGHESTMODSEQ on enabling, LIST/LSUB of subscriptions, names that are not modified UTF-7.

mod common;

use common::{bob_with, has, message};
use loadtest::client::imap::{Imap, Response};

/// The keywords a FLAGS response names, in the order given.
fn flags_keywords(line: &str) -> Option<Vec<String>> {
    let rest = line.strip_prefix("* FLAGS (")?;
    let inner = rest.split(')').next()?;
    Some(
        inner
            .split_whitespace()
            .filter(|f| !f.starts_with('\\'))
            .map(str::to_owned)
            .collect(),
    )
}

/// Keywords a `* n FETCH (... FLAGS (...) ...)` line shows.
fn fetched_keywords(line: &str) -> Vec<String> {
    let Some(at) = line.find("FLAGS (") else {
        return Vec::new();
    };
    let inner = line[at + 7..].split(')').next().unwrap_or("");
    inner
        .split_whitespace()
        .filter(|f| !f.starts_with('\\'))
        .map(str::to_owned)
        .collect()
}

/// A client's model of the keywords it was told of: every FETCH must use only those.
#[derive(Default)]
struct Announced(Vec<String>);

impl Announced {
    fn check(&mut self, r: &Response) {
        for line in r.lines() {
            if let Some(kws) = flags_keywords(&line) {
                self.0 = kws;
            }
            for k in fetched_keywords(&line) {
                assert!(
                    self.0.iter().any(|a| a.eq_ignore_ascii_case(&k)),
                    "{k} used before any FLAGS named it: {:?}",
                    r.lines()
                );
            }
        }
    }
}

fn select(c: &mut Imap, announced: &mut Announced) -> Response {
    let r = c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    announced.check(&r);
    r
}

#[test]
fn keywords_are_announced_in_flags_before_any_fetch_shows_them() {
    let server = bob_with(2);
    let (mut a, mut b) = (server.imap_login("bob"), server.imap_login("bob"));
    let (mut seen_a, mut seen_b) = (Announced::default(), Announced::default());
    select(&mut a, &mut seen_a);
    select(&mut b, &mut seen_b);

    // This session's own STORE of a new keyword: FLAGS comes before the FETCH.
    let r = a.cmd("STORE 1 +FLAGS ($Label1)").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* FLAGS ("), "{:?}", r.lines());
    assert!(has(&r, "PERMANENTFLAGS"), "{:?}", r.lines());
    seen_a.check(&r);
    // .SILENT gets the announcement too.
    let r = a.cmd("STORE 2 +FLAGS.SILENT ($Label2)").unwrap().expect_ok().unwrap();
    seen_a.check(&r);
    assert!(seen_a.0.contains(&"$Label2".to_string()), "{:?}", r.lines());

    // The other session hears of both keywords before the flag changes that carry them.
    let r = b.cmd("NOOP").unwrap().expect_ok().unwrap();
    seen_b.check(&r);
    assert!(has(&r, "$Label1") && has(&r, "$Label2"), "{:?}", r.lines());
    let r = b.cmd("FETCH 1:* FLAGS").unwrap().expect_ok().unwrap();
    seen_b.check(&r);

    // An APPEND with a keyword nobody used yet, from another connection: the FETCH that
    // shows it to `a` is preceded by a FLAGS naming it.
    let mut c = server.imap_login("bob");
    c.append("INBOX", "$Fresh", &message("m3"))
        .unwrap()
        .expect_ok()
        .unwrap();
    let r = a.cmd("NOOP").unwrap().expect_ok().unwrap();
    seen_a.check(&r);
    let r = a.cmd("FETCH 3 (FLAGS)").unwrap().expect_ok().unwrap();
    seen_a.check(&r);
    assert!(seen_a.0.contains(&"$Fresh".to_string()), "{:?}", r.lines());
    // An existing keyword does not repeat FLAGS.
    let r = a.cmd("STORE 3 +FLAGS ($Label1)").unwrap().expect_ok().unwrap();
    assert!(!has(&r, "* FLAGS ("), "{:?}", r.lines());
}

fn recent_count(r: &Response) -> Option<u32> {
    r.lines()
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("* ")?.strip_suffix(" RECENT")?.parse().ok())
}

fn status_recent(c: &mut Imap) -> u32 {
    let r = c.cmd("STATUS INBOX (RECENT)").unwrap().expect_ok().unwrap();
    let line = r.lines().into_iter().find(|l| l.starts_with("* STATUS")).unwrap();
    let at = line.find("RECENT ").unwrap();
    line[at + 7..].trim_end_matches(')').parse().unwrap()
}

/// UIDs shown with \Recent by `FETCH 1:* (UID FLAGS)`.
fn recent_uids(c: &mut Imap) -> Vec<u32> {
    let r = c.cmd("FETCH 1:* (UID FLAGS)").unwrap().expect_ok().unwrap();
    r.lines()
        .iter()
        .filter(|l| l.contains("\\Recent"))
        .map(|l| {
            let at = l.find("UID ").unwrap();
            l[at + 4..].split([' ', ')']).next().unwrap().parse().unwrap()
        })
        .collect()
}

#[test]
fn recent_goes_to_exactly_one_session_across_sessions_and_restarts() {
    let mut server = bob_with(2);
    let (mut a, mut b) = (server.imap_login("bob"), server.imap_login("bob"));
    assert_eq!(recent_count(&select(&mut a, &mut Announced::default())), Some(2));
    assert_eq!(recent_count(&select(&mut b, &mut Announced::default())), Some(0));

    // New mail while both are selected: whoever is told first has it, the other not.
    server.deliver("bob", &message("m3"));
    server.deliver("bob", &message("m4"));
    let (ra, rb) = (a.cmd("NOOP").unwrap(), b.cmd("NOOP").unwrap());
    let (na, nb) = (recent_count(&ra).unwrap(), recent_count(&rb).unwrap());
    assert_eq!(na, 4, "a was told first: {:?}", ra.lines());
    assert_eq!(nb, 0, "b must not see a's \\Recent: {:?}", rb.lines());
    assert_eq!(recent_uids(&mut a), vec![1, 2, 3, 4]);
    assert!(recent_uids(&mut b).is_empty());

    // A third session: STATUS counts nothing recent once a holder has been told.
    let mut c = server.imap_login("bob");
    assert_eq!(status_recent(&mut c), 0);
    server.deliver("bob", &message("m5"));
    assert_eq!(status_recent(&mut c), 1, "not told to anyone yet");
    // b is told first this time.
    let rb = b.cmd("NOOP").unwrap();
    assert_eq!(recent_count(&rb), Some(1), "{:?}", rb.lines());
    assert_eq!(recent_uids(&mut b), vec![5]);
    let ra = a.cmd("NOOP").unwrap();
    assert_eq!(recent_count(&ra), Some(4), "{:?}", ra.lines());
    assert_eq!(status_recent(&mut c), 0);

    // EXAMINE shows what nobody has claimed and claims nothing.
    server.deliver("bob", &message("m6"));
    let r = c.cmd("EXAMINE INBOX").unwrap().expect_ok().unwrap();
    assert_eq!(recent_count(&r), Some(1), "{:?}", r.lines());
    let r = a.cmd("NOOP").unwrap();
    assert_eq!(recent_count(&r), Some(5), "EXAMINE took nothing: {:?}", r.lines());

    // After a clean restart nothing that was handed out is recent again…
    drop((a, b, c));
    server.terminate();
    server.spawn();
    let mut d = server.imap_login("bob");
    assert_eq!(status_recent(&mut d), 0);
    assert_eq!(recent_count(&select(&mut d, &mut Announced::default())), Some(0));
    // …nor after a crash, once the writer has had its half second to persist the claim.
    server.deliver("bob", &message("m7"));
    assert_eq!(recent_count(&d.cmd("NOOP").unwrap()), Some(1));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    server.restart();
    let mut e = server.imap_login("bob");
    assert_eq!(status_recent(&mut e), 0);
}

#[test]
fn a_condstore_enabling_command_reports_highestmodseq_once() {
    let server = bob_with(3);
    let mut c = server.imap_login("bob");
    let r = c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    assert!(!has(&r, "HIGHESTMODSEQ"), "not enabled yet: {:?}", r.lines());
    let r = c.cmd("FETCH 1 (MODSEQ)").unwrap().expect_ok().unwrap();
    assert!(
        has(&r, "* OK [HIGHESTMODSEQ ") && r.text.contains("[HIGHESTMODSEQ "),
        "{:?} {}",
        r.lines(),
        r.text
    );
    let r = c.cmd("FETCH 1 (MODSEQ)").unwrap().expect_ok().unwrap();
    assert!(
        !has(&r, "HIGHESTMODSEQ") && !r.text.contains("HIGHESTMODSEQ"),
        "only the first"
    );

    // SEARCH with a MODSEQ criterion enables it as well.
    let mut c = server.imap_login("bob");
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let r = c.cmd("SEARCH MODSEQ 1").unwrap().expect_ok().unwrap();
    assert!(r.text.contains("[HIGHESTMODSEQ "), "{}", r.text);
}

/// The MODSEQ a `* ESEARCH` line reports.
fn esearch_modseq(r: &Response) -> Option<u64> {
    let line = r.lines().into_iter().find(|l| l.starts_with("* ESEARCH"))?;
    let at = line.find("MODSEQ ")?;
    line[at + 7..].split(' ').next()?.parse().ok()
}

fn store_modseq(c: &mut Imap, seq: u32) -> u64 {
    let r = c
        .cmd(&format!("STORE {seq} +FLAGS (\\Seen)"))
        .unwrap()
        .expect_ok()
        .unwrap();
    let line = r.lines().into_iter().find(|l| l.contains("MODSEQ (")).unwrap();
    let at = line.find("MODSEQ (").unwrap();
    line[at + 8..].split(')').next().unwrap().parse().unwrap()
}

#[test]
fn esearch_min_and_max_report_the_modseq_of_the_messages_returned() {
    let server = bob_with(4);
    let mut c = server.imap_login("bob");
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    c.cmd("FETCH 1 (MODSEQ)").unwrap().expect_ok().unwrap();
    // Stored out of order, so the highest modseq is not the last message's.
    let m1 = store_modseq(&mut c, 1);
    let m3 = store_modseq(&mut c, 3);
    let m2 = store_modseq(&mut c, 2);
    store_modseq(&mut c, 4);
    let search = |c: &mut Imap, ret: &str, set: &str| {
        let r = c
            .cmd(&format!("SEARCH RETURN ({ret}) {set} MODSEQ \"/flags/\\\\seen\" all 1"))
            .unwrap()
            .expect_ok()
            .unwrap();
        esearch_modseq(&r)
    };
    assert_eq!(search(&mut c, "MIN", "1:3"), Some(m1));
    assert_eq!(search(&mut c, "MAX", "1:3"), Some(m3));
    assert_eq!(search(&mut c, "", "1:3"), Some(m2), "ALL: the highest of all");
    assert_eq!(search(&mut c, "MIN MAX", "2:3"), Some(m2));
    assert_eq!(search(&mut c, "COUNT", "1:3"), Some(m2));
}

#[test]
fn list_subscribed_shows_subscriptions_whose_mailbox_is_gone() {
    let server = bob_with(0);
    let mut c = server.imap_login("bob");
    for name in [
        "t/one",
        "t/two/one",
        "t/six",
        "t/seven/seven",
        "t/eight/eight",
        "t/eight/nine",
    ] {
        c.cmd(&format!("CREATE {name}")).unwrap().expect_ok().unwrap();
        c.cmd(&format!("SUBSCRIBE {name}")).unwrap().expect_ok().unwrap();
    }
    c.cmd("DELETE t/six").unwrap().expect_ok().unwrap();
    // A name that never existed may be subscribed too (RFC 3501 §6.3.6).
    c.cmd("SUBSCRIBE t/never").unwrap().expect_ok().unwrap();

    let r = c.cmd("LIST (SUBSCRIBED) \"\" t/*").unwrap().expect_ok().unwrap();
    let line = |name: &str| r.lines().into_iter().find(|l| l.ends_with(&format!("\"{name}\"")));
    let six = line("t/six").expect("a deleted mailbox stays subscribed");
    assert!(six.contains("\\Subscribed") && six.contains("\\NonExistent"), "{six}");
    assert!(!six.contains("\\Noselect"), "{six}");
    assert!(line("t/never").unwrap().contains("\\NonExistent"));
    assert!(!line("t/one").unwrap().contains("\\NonExistent"));
    assert!(line("t/two").is_none(), "not subscribed: {:?}", r.lines());

    // RECURSIVEMATCH: a parent is listed with CHILDINFO only for subscribed descendants
    // that the pattern does not list themselves.
    let r = c
        .cmd("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" t/two% RETURN (CHILDREN)")
        .unwrap()
        .expect_ok()
        .unwrap();
    assert_eq!(r.lines().len(), 1, "{:?}", r.lines());
    assert!(
        r.lines()[0].contains("\"t/two\" (\"CHILDINFO\" (\"SUBSCRIBED\"))"),
        "{:?}",
        r.lines()
    );
    let r = c
        .cmd("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" *seven")
        .unwrap()
        .expect_ok()
        .unwrap();
    assert_eq!(r.lines().len(), 1, "only t/seven/seven itself: {:?}", r.lines());
    assert!(r.lines()[0].ends_with("\"t/seven/seven\""), "{:?}", r.lines());
    let r = c
        .cmd("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" *eight")
        .unwrap()
        .expect_ok()
        .unwrap();
    let eight = r.lines().into_iter().find(|l| l.contains("\"t/eight\"")).unwrap();
    assert!(
        eight.contains("CHILDINFO") && !eight.contains("\\Subscribed"),
        "{eight}"
    );
    assert!(has(&r, "\"t/eight/eight\""));
    for bad in [
        "LIST (RECURSIVEMATCH) \"\" \"\"",
        "LIST (IMAPTEST) \"\" \"\"",
        "LIST \"\" \"\" RETURN (IMAPTEST)",
    ] {
        assert_eq!(c.cmd(bad).unwrap().status, "BAD", "{bad}");
    }
}

#[test]
fn lsub_percent_lists_an_unsubscribed_parent_as_noselect() {
    let server = bob_with(0);
    let mut c = server.imap_login("bob");
    for name in ["u/test", "u/test2/test", "u/test3/test3"] {
        c.cmd(&format!("CREATE {name}")).unwrap().expect_ok().unwrap();
        c.cmd(&format!("SUBSCRIBE {name}")).unwrap().expect_ok().unwrap();
    }
    let mut other = server.imap_login("bob");
    let r = other.cmd("LSUB \"\" u/%").unwrap().expect_ok().unwrap();
    let lines = r.lines();
    assert!(lines.contains(&"* LSUB () \"/\" \"u/test\"".to_string()), "{lines:?}");
    assert!(
        lines.contains(&"* LSUB (\\Noselect) \"/\" \"u/test2\"".to_string()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"* LSUB (\\Noselect) \"/\" \"u/test3\"".to_string()),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 3, "{lines:?}");
    let r = other.cmd("LSUB \"\" *test").unwrap().expect_ok().unwrap();
    assert_eq!(r.lines().len(), 2, "{:?}", r.lines());
    c.cmd("UNSUBSCRIBE u/test3/test3").unwrap().expect_ok().unwrap();
    let r = other.cmd("LSUB \"\" u/%").unwrap().expect_ok().unwrap();
    assert!(!has(&r, "u/test3"), "{:?}", r.lines());
}

#[test]
fn names_that_are_not_modified_utf7_are_names_that_do_not_exist() {
    let server = bob_with(1);
    let mut c = server.imap_login("bob");
    for command in [
        "SELECT \"&'\"",
        "EXAMINE \"a&Jjo\"",
        "STATUS \"&'\" (MESSAGES)",
        "DELETE \"&'\"",
    ] {
        let r = c.cmd(command).unwrap();
        assert_eq!(r.status, "NO", "{command}: {r:?}");
    }
    let r = c.cmd("LIST \"\" \"&'\"").unwrap().expect_ok().unwrap();
    assert!(r.lines().is_empty(), "{:?}", r.lines());
    let r = c.cmd("CREATE \"&'\"").unwrap();
    assert_eq!(r.status, "NO", "{r:?}");
    // A valid name still works.
    c.cmd("CREATE \"&AOk-t&AOk-\"").unwrap().expect_ok().unwrap();
    c.cmd("SELECT \"&AOk-t&AOk-\"").unwrap().expect_ok().unwrap();
}

/// APPENDs `message` as a literal8 (RFC 3516 §4.4).
fn append_binary(c: &mut Imap, message: &[u8]) -> Response {
    let tag = c.tag();
    c.t.send_line(&format!("{tag} APPEND INBOX ~{{{}}}", message.len()))
        .unwrap();
    let cont = c.t.read_line_string().unwrap();
    assert!(cont.starts_with('+'), "{cont}");
    c.t.send_raw(message).unwrap();
    c.t.send_raw(b"\r\n").unwrap();
    c.finish(&tag).unwrap()
}

/// The literal's bytes in a one-item FETCH response line (`... {n}\r\n<bytes>)`).
fn literal_of(line: &[u8]) -> Vec<u8> {
    let start = line.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    line[start..line.len() - 1].to_vec()
}

#[test]
fn binary_appended_with_nul_comes_back_byte_exact() {
    let server = bob_with(0);
    let mut c = server.imap_login("bob");
    let body: Vec<u8> = (0..=255u8).chain([0, 0, b'\r', b'\n', b'\n', 0]).collect();
    let single = [
        b"From: a@example.org\r\nSubject: bin\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n".as_slice(),
        &body,
    ]
    .concat();
    let r = append_binary(&mut c, &single);
    assert!(r.ok(), "{r:?}");
    let multi = [
        b"From: a@example.org\r\nSubject: two\r\nContent-Type: multipart/mixed; boundary=xx\r\n\r\n--xx\r\nContent-Type: text/plain\r\n\r\nhello\r\n--xx\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: binary\r\n\r\n".as_slice(),
        &body,
        b"\r\n--xx--\r\n",
    ]
    .concat();
    assert!(append_binary(&mut c, &multi).ok());
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();

    let fetch = |c: &mut Imap, command: &str| -> Vec<u8> {
        let r = c.cmd(command).unwrap().expect_ok().unwrap();
        literal_of(&r.untagged[0])
    };
    // BINARY[] gives back what was appended, octet for octet; BINARY[n] the part's content.
    assert_eq!(fetch(&mut c, "FETCH 1 BINARY.PEEK[]"), single);
    assert_eq!(fetch(&mut c, "FETCH 1 BINARY.PEEK[1]"), body);
    assert_eq!(fetch(&mut c, "FETCH 2 BINARY.PEEK[]"), multi);
    assert_eq!(fetch(&mut c, "FETCH 2 BINARY.PEEK[2]"), body);
    assert_eq!(fetch(&mut c, "FETCH 2 BINARY.PEEK[1]"), b"hello");
    let r = c.cmd("FETCH 1 BINARY.SIZE[1]").unwrap().expect_ok().unwrap();
    assert!(has(&r, &format!("BINARY.SIZE[1] {}", body.len())), "{:?}", r.lines());
    // BODY[] is the stored 7-bit view: no NUL, the part labelled base64.
    let stored = fetch(&mut c, "FETCH 1 BODY.PEEK[]");
    assert!(!stored.contains(&0));
    let text = String::from_utf8(stored).unwrap();
    assert!(
        text.contains("Content-Transfer-Encoding: base64\r\n\r\nAAECAwQF"),
        "{text}"
    );
    let r = c.cmd("FETCH 2 BODYSTRUCTURE").unwrap().expect_ok().unwrap();
    assert!(has(&r, "\"BASE64\""), "{:?}", r.lines());

    // NUL outside any part's content cannot be stored.
    let r = append_binary(&mut c, b"X-Bad: \0\r\n\r\nbody\r\n");
    assert_eq!(r.status, "NO", "{r:?}");
}
