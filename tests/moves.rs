//! Mailbox moves between back ends (issue 12, item 2): a real slapd holds the accounts, two
//! back ends in two sites take moves on `[cluster] listen_move`, and a front end routes
//! clients by `mailHost`. `ringmail move USER --to BACKEND` runs on the source back end while
//! clients work through the front end; afterwards the clients see, through the same front
//! end, the same UIDVALIDITY, UIDs, flags, modseqs and POP3 UIDLs, now served by the target.

mod common;

use std::time::{Duration, Instant};

use common::proxy::{backend_on, backends_table, Facing, Proxy};
use common::slapd::{Account, Slapd};
use common::{free_port, lines_until, mail_state_at, message, Ports, Server, PASSWORD};

const BACKENDS: [(&str, &str); 2] = [("b1", "east"), ("b2", "west")];

struct Cluster {
    ldap: Slapd,
    backends: Vec<Server>,
    front: Proxy,
}

impl Cluster {
    /// `users` (name, back end) in the directory; both back ends take moves.
    fn start(users: &[(&str, &str)]) -> Cluster {
        let accounts: Vec<Account> = users
            .iter()
            .map(|(name, host)| Account {
                name,
                mail_host: host,
                extra: &[],
            })
            .collect();
        let ldap = Slapd::start(&accounts);
        let directory = ldap.directory_section(30);
        let ports: Vec<Ports> = BACKENDS.iter().map(|_| Ports::new()).collect();
        let moves: Vec<u16> = BACKENDS.iter().map(|_| free_port()).collect();
        let facings: Vec<Facing> = ports
            .iter()
            .map(|p| Facing {
                lmtp: p.lmtp,
                ..Facing::new()
            })
            .collect();
        let routes: Vec<(&str, &str, Facing)> = BACKENDS
            .iter()
            .zip(&facings)
            .map(|((name, site), facing)| (*name, *site, *facing))
            .collect();
        let mut table = backends_table(&routes);
        for ((name, _), port) in BACKENDS.iter().zip(&moves) {
            table = table.replace(
                &format!("name = \"{name}\","),
                &format!("name = \"{name}\", move = \"127.0.0.1:{port}\","),
            );
        }
        let backends = BACKENDS
            .iter()
            .zip(ports)
            .zip(&facings)
            .zip(&moves)
            .map(|((((name, site), ports), facing), port)| {
                let cluster = format!(
                    "site = \"{site}\"\ntrusted_networks = [\"127.0.0.1/32\"]\nlisten_move = [\"127.0.0.1:{port}\"]\n{table}"
                );
                backend_on(ports, *facing, name, &cluster, &directory)
            })
            .collect();
        Cluster {
            front: Proxy::start_in("east", &directory, &routes),
            backends,
            ldap,
        }
    }

    fn backend(&self, name: &str) -> &Server {
        &self.backends[BACKENDS.iter().position(|(n, _)| *n == name).unwrap()]
    }

    /// What a CONDSTORE/QRESYNC client sees of `user`'s mail through the front end.
    fn state(&self, user: &str) -> String {
        mail_state_at(self.front.imaps, self.front.cafile().as_ref(), user)
    }

    fn uidls(&self, user: &str) -> Vec<Vec<u8>> {
        let mut p = self.front.pop3s();
        p.cmd(&format!("USER {user}")).unwrap().expect_ok().unwrap();
        p.cmd(&format!("PASS {PASSWORD}")).unwrap().expect_ok().unwrap();
        let (status, lines) = p.multi("UIDL").unwrap();
        assert!(status.ok, "{status:?}");
        let _ = p.cmd("QUIT");
        lines
    }

    fn run_move(&self, from: &str, user: &str, to: &str) -> String {
        let out = self.backend(from).cli(&["move", user, "--to", to], b"");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{said}");
        said
    }
}

/// Mail with flags, keywords, an expunge and a second folder, made through the front end.
fn fill(cluster: &Cluster, user: &str, messages: usize) {
    for i in 0..messages {
        cluster.backend("b1").deliver(user, &message(&format!("m{i}")));
    }
    let mut c = cluster.front.imaps();
    assert!(c.login(user, PASSWORD).unwrap().ok());
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    c.cmd("STORE 1 +FLAGS (\\Seen Work)").unwrap().expect_ok().unwrap();
    c.cmd("STORE 2 +FLAGS (\\Deleted)").unwrap().expect_ok().unwrap();
    c.cmd("EXPUNGE").unwrap().expect_ok().unwrap();
    c.cmd("CREATE Projects").unwrap().expect_ok().unwrap();
    c.append("Projects", "\\Seen", &message("kept"))
        .unwrap()
        .expect_ok()
        .unwrap();
    c.cmd("LOGOUT").unwrap();
}

#[test]
fn a_mailbox_moves_to_another_site_and_clients_see_the_same_mail() {
    let cluster = Cluster::start(&[("alice", "b1"), ("bob", "b1")]);
    fill(&cluster, "alice", 30);
    let before = cluster.state("alice");
    let uidls = cluster.uidls("alice");
    assert_eq!(uidls.len(), 29);

    // A client in IDLE through the front end, on b1.
    let mut idle = cluster.front.imaps();
    assert!(idle.login("alice", PASSWORD).unwrap().ok());
    idle.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    idle.t.send_raw(b"i1 IDLE\r\n").unwrap();
    assert!(idle.read_response_line().unwrap().starts_with(b"+ "));

    let said = cluster.run_move("b1", "alice", "b2");
    assert!(said.contains("copy pass 1: 30 messages"), "{said}");
    assert!(said.contains("moved to b2"), "{said}");

    // The IDLE session was closed with a goodbye; the client reconnects.
    let lines = lines_until(&mut idle, Duration::from_secs(10), |l| l.starts_with("* BYE"));
    assert!(lines.iter().any(|l| l.starts_with("* BYE")), "{lines:?}");

    assert_eq!(cluster.ldap.read("alice", "mailHost"), ["b2"]);
    assert_eq!(cluster.ldap.read("alice", "ringmailSite"), ["west"]);
    assert_eq!(cluster.ldap.read("alice", "ringmailMoveGeneration"), ["1"]);
    assert!(cluster.ldap.read("alice", "ringmailMoveState").is_empty());

    // Through the same front end: the same mail, now from b2 — and b2 serves it directly too.
    assert_eq!(cluster.state("alice"), before);
    assert_eq!(cluster.uidls("alice"), uidls);
    assert_eq!(cluster.backend("b2").mail_state("alice"), before);

    // New mail goes to b2 at the next UID; the copy left on b1 takes none.
    let (rcpt, data) = cluster
        .front
        .lmtp()
        .send("mx@example.org", &["alice@example.org"], &message("after the move"))
        .unwrap();
    assert!(rcpt.iter().chain(&data).all(|r| r.code == 250), "{rcpt:?} {data:?}");
    let after = cluster.state("alice");
    assert!(after.contains("UIDNEXT 32 MESSAGES 30"), "{after}");
    let (rcpt, _) = cluster
        .backend("b1")
        .lmtp()
        .send("mx@example.org", &["alice@example.org"], &message("stray"))
        .unwrap();
    // Deferred: whatever routed it here had a stale entry; its next try goes to b2.
    assert_eq!(rcpt[0].code, 450, "{rcpt:?}");
    let mut direct = cluster.backend("b1").imap_tls();
    let r = direct.login("alice", PASSWORD).unwrap();
    assert!(!r.ok(), "b1 opened the copy it keeps: {r:?}");

    // The source keeps its copy, and says so.
    let out = cluster.backend("b1").cli(&["move", "status"], b"");
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(status.contains("alice: moved to b2"), "{status}");
    // bob, who did not move, is untouched.
    assert_eq!(cluster.ldap.read("bob", "mailHost"), ["b1"]);

    // And back again: the generation guards each flip.
    cluster.run_move("b2", "alice", "b1");
    assert_eq!(cluster.ldap.read("alice", "mailHost"), ["b1"]);
    assert_eq!(cluster.ldap.read("alice", "ringmailMoveGeneration"), ["2"]);
    assert_eq!(cluster.state("alice"), after);
}

#[test]
fn a_move_is_refused_where_it_cannot_be_right() {
    let cluster = Cluster::start(&[("alice", "b1")]);
    cluster.backend("b1").deliver("alice", &message("one"));
    let run = |from: &str, args: &[&str]| {
        let out = cluster.backend(from).cli(args, b"");
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // Only the back end that holds the mailbox moves it.
    assert!(run("b2", &["move", "alice", "--to", "b1"]).contains("run the move there"));
    assert!(run("b1", &["move", "alice", "--to", "b9"]).contains("no back end \"b9\""));
    assert!(run("b1", &["move", "alice", "--to", "b1"]).contains("is this back end"));
    // A receiver takes a pass only for a move the directory names to it.
    let b2 = cluster.backend("b2");
    let out = b2.cli(&["move", "status"], b"");
    assert!(String::from_utf8_lossy(&out.stdout).contains("no move under way"));
    // A move under way to one back end blocks another to a different one.
    cluster.ldap.modify(&format!(
        "dn: uid=alice,{}\nchangetype: modify\nreplace: ringmailMoveState\nringmailMoveState: copying\n-\nreplace: ringmailMoveTarget\nringmailMoveTarget: b3\n",
        common::slapd::PEOPLE
    ));
    assert!(run("b1", &["move", "alice", "--to", "b2"]).contains("a move of alice to b3 is under way"));
    let out = cluster.backend("b1").cli(&["move", "alice", "--abort"], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(cluster.ldap.read("alice", "ringmailMoveState").is_empty());
    let started = Instant::now();
    cluster.run_move("b1", "alice", "b2");
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// The copy kept on the source after a move goes once its `--keep-source` days are over: the
/// running source removes it by itself (at start, then hourly); one whose days are not over
/// stays, and `move status` says which.
#[test]
fn a_kept_copy_goes_when_its_days_are_over() {
    let mut cluster = Cluster::start(&[("alice", "b1"), ("bob", "b1")]);
    for user in ["alice", "bob"] {
        cluster.backend("b1").deliver(user, &message("one"));
    }
    let b1 = cluster.backend("b1");
    for (user, days) in [("alice", "0"), ("bob", "7")] {
        let out = b1.cli(&["move", user, "--to", "b2", "--keep-source", days], b"");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let moved = b1.data_dir().join("moved");
    let kept = |user: &str| moved.join(format!("{user}.json"));
    assert!(kept("alice").exists());
    assert!(b1.cli(&["export", "alice", "--to", "stream:-"], b"").status.success());

    // The next start looks at the kept copies at once.
    cluster.backends[0].restart();
    let b1 = cluster.backend("b1");
    let deadline = Instant::now() + Duration::from_secs(20);
    while kept("alice").exists() {
        assert!(Instant::now() < deadline, "alice's copy is still kept");
        std::thread::sleep(Duration::from_millis(100));
    }
    let copy_here = |user: &str| b1.cli(&["export", user, "--to", "stream:-"], b"").status.success();
    assert!(!copy_here("alice"), "alice's mail is still in b1's store");
    assert!(kept("bob").exists() && copy_here("bob"));
    let status = String::from_utf8_lossy(&b1.cli(&["move", "status"], b"").stdout).into_owned();
    assert!(
        status.contains("bob: moved to b2") && !status.contains("alice"),
        "{status}"
    );
    // alice lives on b2, untouched.
    assert!(
        cluster.state("alice").contains("MESSAGES 1"),
        "{}",
        cluster.state("alice")
    );
}

/// A client that APPENDs through the front end for as long as `stop` is false, reconnecting
/// whenever its session ends or is refused; gives every (UIDVALIDITY, UID, subject) the server
/// acknowledged (RFC 4315 APPENDUID).
fn appender(
    front_port: u16,
    cafile: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<(u32, u32, String)> {
    use loadtest::client::{tls_config, Transport};
    let mut acked = Vec::new();
    let mut n = 0;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let tls = tls_config(std::path::Path::new(&cafile)).unwrap();
        let addr = format!("127.0.0.1:{front_port}").parse().unwrap();
        let Ok(t) = Transport::connect_tls(addr, tls, "localhost") else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let Ok(mut c) = loadtest::client::imap::Imap::new(t) else {
            continue;
        };
        if !c.login("alice", PASSWORD).is_ok_and(|r| r.ok()) {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let subject = format!("load {n}");
            n += 1;
            let Ok(r) = c.append("INBOX", "", &message(&subject)) else {
                break;
            };
            if !r.ok() {
                break;
            }
            // [APPENDUID uidvalidity uid]
            let words: Vec<&str> = r.text.trim_start_matches('[').split([' ', ']']).collect();
            assert_eq!(words[0], "APPENDUID", "{}", r.text);
            acked.push((words[1].parse().unwrap(), words[2].parse().unwrap(), subject));
        }
    }
    acked
}

/// A move while a client keeps APPENDing through the front end: every message the server
/// acknowledged is there afterwards, at the UID it was given, under the same UIDVALIDITY, and
/// no UID was given twice.
#[test]
fn a_move_under_load_loses_no_acknowledged_message() {
    let cluster = Cluster::start(&[("alice", "b1")]);
    fill(&cluster, "alice", 100);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let (port, cafile, stop) = (cluster.front.imaps, cluster.front.cafile(), stop.clone());
        std::thread::spawn(move || appender(port, cafile, stop))
    };
    std::thread::sleep(Duration::from_millis(500));
    cluster.run_move("b1", "alice", "b2");
    // Some more on the new back end.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let acked = client.join().unwrap();
    assert!(acked.len() > 10, "only {} APPENDs went through", acked.len());
    eprintln!("{} APPENDs acknowledged during and after the move", acked.len());
    let mut uids: Vec<u32> = acked.iter().map(|a| a.1).collect();
    uids.sort_unstable();
    uids.dedup();
    assert_eq!(uids.len(), acked.len(), "a UID was given twice");

    let listing = common::imaplib_at(
        cluster.front.imaps,
        cluster.front.cafile().as_ref(),
        "alice",
        &[],
        "m.select('INBOX', readonly=True)\n\
         print('uidvalidity', m.response('UIDVALIDITY')[1][0].decode())\n\
         typ, data = m.uid('FETCH', '1:*', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')\n\
         for item in data:\n    if isinstance(item, tuple):\n        import re\n        uid = re.search(rb'UID (\\d+)', item[0]).group(1).decode()\n        print(uid, item[1].decode().strip())\n",
    );
    let validity: u32 = listing
        .lines()
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    for (v, uid, subject) in &acked {
        assert_eq!(*v, validity, "UIDVALIDITY changed");
        let line = format!("{uid} Subject: {subject}");
        assert!(
            listing.lines().any(|l| l == line),
            "acknowledged {line:?} is missing:\n{listing}"
        );
    }
    assert_eq!(cluster.ldap.read("alice", "mailHost"), ["b2"]);
}

/// A move cut off at each stage (the process ends as a crash would) finishes when run again,
/// with the same mail on the target as on the source.
#[test]
fn a_move_cut_off_at_any_stage_finishes_when_run_again() {
    let cluster = Cluster::start(&[("alice", "b1")]);
    fill(&cluster, "alice", 20);
    let before = cluster.state("alice");
    for (stage, from, to) in [
        ("copied", "b1", "b2"),
        ("locked", "b2", "b1"),
        ("verified", "b1", "b2"),
        ("flipped", "b2", "b1"),
    ] {
        let server = cluster.backend(from);
        let crashed = std::process::Command::new(common::bin())
            .arg("--config")
            .arg(&server.config)
            .args(["move", "alice", "--to", to])
            .env("RINGMAIL_MOVE_CRASH_AT", stage)
            .output()
            .unwrap();
        assert_eq!(
            crashed.status.code(),
            Some(70),
            "{}",
            String::from_utf8_lossy(&crashed.stderr)
        );
        cluster.run_move(from, "alice", to);
        assert_eq!(cluster.ldap.read("alice", "mailHost"), [to], "after a crash at {stage}");
        assert!(cluster.ldap.read("alice", "ringmailMoveState").is_empty());
        assert_eq!(cluster.state("alice"), before, "after a crash at {stage}");
    }
}

/// A crash of either server in the middle of a move: the target killed after it took a copy
/// pass, the source killed while the user is locked on it. Run again, the move finishes from
/// where the target's marks say, and the mail is as it was.
#[test]
fn a_move_survives_a_crash_of_either_server() {
    let mut cluster = Cluster::start(&[("alice", "b1")]);
    fill(&cluster, "alice", 20);
    let before = cluster.state("alice");
    let crash_move = |cluster: &Cluster, from: &str, to: &str, stage: &str| {
        let out = std::process::Command::new(common::bin())
            .arg("--config")
            .arg(&cluster.backend(from).config)
            .args(["move", "alice", "--to", to])
            .env("RINGMAIL_MOVE_CRASH_AT", stage)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(70), "{}", String::from_utf8_lossy(&out.stderr));
    };
    crash_move(&cluster, "b1", "b2", "copied");
    cluster.backends[1].restart();
    let said = cluster.run_move("b1", "alice", "b2");
    assert!(said.contains("moved to b2"), "{said}");
    assert_eq!(cluster.ldap.read("alice", "mailHost"), ["b2"]);
    assert_eq!(cluster.state("alice"), before);

    crash_move(&cluster, "b2", "b1", "locked");
    assert_eq!(cluster.ldap.read("alice", "ringmailMoveState"), ["locked"]);
    cluster.backends[1].restart();
    // Restarted, the source still keeps the locked user out: a delivery is deferred.
    let (rcpt, _) = cluster
        .backend("b2")
        .lmtp()
        .send("mx@example.org", &["alice@example.org"], &message("during the lock"))
        .unwrap();
    assert_eq!(rcpt[0].code / 100, 4, "{rcpt:?}");
    // And so is one through the front end: deferred, never bounced.
    let (rcpt, _) = cluster
        .front
        .lmtp()
        .send("mx@example.org", &["alice@example.org"], &message("during the lock"))
        .unwrap();
    assert_eq!(rcpt[0].code / 100, 4, "{rcpt:?}");
    cluster.run_move("b2", "alice", "b1");
    assert_eq!(cluster.ldap.read("alice", "mailHost"), ["b1"]);
    assert!(cluster.ldap.read("alice", "ringmailMoveState").is_empty());
    assert_eq!(cluster.state("alice"), before);
}
