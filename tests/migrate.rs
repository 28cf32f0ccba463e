//! Leaving ringmail and coming back (issue 12, items 3 and 4): `ringmail export USER --to
//! maildir:PATH` writes a Maildir that Dovecot (Debian's, started by the test on its own
//! loopback port) serves with the same folders, UIDVALIDITY, UIDNEXT, UIDs, flags, keywords,
//! INTERNALDATEs and bytes; after Dovecot has written to it too, `ringmail import` reads it
//! into a new server that serves it as Dovecot did — all compared over IMAP with CPython's
//! imaplib.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, message, python, Server, PASSWORD};

/// Everything imaplib sees of a user's mail, in one canonical text: per folder (its name with
/// `/` as separator) UIDVALIDITY, UIDNEXT, subscription, then per message its UID, flags
/// (without \Recent), INTERNALDATE, size and a digest of its bytes.
const SNAPSHOT: &str = r#"
import imaplib, ssl, sys, hashlib, re, time
host, port, tls, user, password, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "tls", sys.argv[4], sys.argv[5], sys.argv[6]
m = imaplib.IMAP4_SSL(host, port, ssl_context=ssl.create_default_context(cafile=cafile)) if tls else imaplib.IMAP4(host, port)
m.login(user, password)
def names(kind):
    typ, data = m.list() if kind == "list" else m.lsub()
    out = []
    for line in data:
        if line is None:
            continue
        match = re.match(rb'\((.*?)\) (?:"(.)"|NIL) (.*)', line)
        flags, sep, name = match.groups()
        if b"\\Noselect" in flags or b"\\NonExistent" in flags:
            continue
        name = name.strip(b'"').decode()
        out.append((name, sep.decode() if sep else "/"))
    return out
subscribed = {n.replace(s, "/") for n, s in names("lsub")}
for name, sep in sorted(names("list")):
    shown = name.replace(sep, "/")
    typ, _ = m.select('"%s"' % name, readonly=True)
    assert typ == "OK", name
    validity = m.response("UIDVALIDITY")[1][0].decode()
    typ, status = m.status('"%s"' % name, "(UIDNEXT)")
    uidnext = re.search(rb"UIDNEXT (\d+)", status[0]).group(1).decode()
    print("folder", shown, "uidvalidity", validity, "uidnext", uidnext, "subscribed", shown in subscribed)
    typ, data = m.uid("FETCH", "1:*", "(FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
    for item in data:
        if not isinstance(item, tuple):
            continue
        head, body = item
        uid = re.search(rb"UID (\d+)", head).group(1).decode()
        flags = sorted(f.decode() for f in imaplib.ParseFlags(head) if f != b"\\Recent")
        date = int(time.mktime(imaplib.Internaldate2tuple(head)))
        size = re.search(rb"RFC822.SIZE (\d+)", head).group(1).decode()
        print(" ", uid, " ".join(flags), date, size, hashlib.sha256(body).hexdigest()[:16])
m.logout()
"#;

/// The maildrop's UIDL listing, through CPython's poplib.
fn uidls(port: u16, tls: bool, cafile: &Path) -> String {
    let script = r#"
import poplib, ssl, sys
port, tls, password, cafile = int(sys.argv[1]), sys.argv[2] == "tls", sys.argv[3], sys.argv[4]
p = poplib.POP3_SSL("127.0.0.1", port, context=ssl.create_default_context(cafile=cafile)) if tls else poplib.POP3("127.0.0.1", port)
p.user("alice")
p.pass_(password)
for line in p.uidl()[1]:
    print(line.decode())
p.quit()
"#;
    let tls = if tls { "tls" } else { "plain" };
    python(
        script,
        &[
            port.to_string(),
            tls.to_string(),
            PASSWORD.to_string(),
            cafile.display().to_string(),
        ],
    )
}

fn snapshot(port: u16, tls: bool, cafile: &Path) -> String {
    let args: Vec<String> = [
        "127.0.0.1".to_string(),
        port.to_string(),
        if tls { "tls" } else { "plain" }.to_string(),
        "alice".to_string(),
        PASSWORD.to_string(),
        cafile.display().to_string(),
    ]
    .into();
    python(SNAPSHOT, &args)
}

/// Debian's Dovecot serving `maildir` as user alice on `port`, from a directory of its own.
struct Dovecot {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dovecot_binary() -> PathBuf {
    ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("Dovecot is installed (scripts/test installs dovecot-imapd)")
}

/// Whose mail Dovecot reads: the test's own user, or Debian's `mail` (uid 8) when the test
/// runs as root, since Dovecot never touches mail as root.
fn mail_owner() -> (u32, u32) {
    let me = own_ids();
    if me.0 == 0 {
        (8, 8)
    } else {
        me
    }
}

/// This process's uid and gid, read from /proc (no libc call needed).
fn own_ids() -> (u32, u32) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u32 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (field("Uid:"), field("Gid:"))
}

fn user_name(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.get(2) == Some(&uid.to_string().as_str())).then(|| f[0].to_owned())
        })
        .expect("the uid has a name")
}

/// Dovecot serving `maildir` over IMAP on `port` and POP3 on `pop3`.
/// With IMAPS on `imaps` too when given, with the certificate and key a ringmail server
/// generated in its data dir (for localhost).
fn start_dovecot(maildir: &Path, ports: (u16, u16), imaps: Option<(u16, &Path)>) -> Dovecot {
    let location = format!("maildir:{}", maildir.display());
    dovecot_serving(&location, maildir, ports, imaps, "")
}

/// Dovecot serving the mail at `location` (Dovecot's `mail_location` form), which lives under
/// `root`, with `extra` settings.
fn dovecot_serving(
    location: &str,
    maildir: &Path,
    (port, pop3): (u16, u16),
    imaps: Option<(u16, &Path)>,
    extra: &str,
) -> Dovecot {
    let dir = tempfile::tempdir().unwrap();
    let (uid, gid) = mail_owner();
    let me = own_ids();
    if me.0 == 0 {
        let status = Command::new("chown")
            .args(["-R", &format!("{uid}:{gid}")])
            .arg(maildir)
            .status()
            .unwrap();
        assert!(status.success());
    }
    // As root, the package's own unprivileged users; otherwise Dovecot runs as this user.
    let (internal, login) = if me.0 == 0 {
        ("dovecot".to_string(), "dovenull".to_string())
    } else {
        (user_name(me.0), user_name(me.0))
    };
    let d = dir.path().display().to_string();
    let users = format!(
        "alice:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{home}::userdb_mail={location}\n",
        home = maildir.display()
    );
    std::fs::write(dir.path().join("users"), users).unwrap();
    let (ssl, imaps_port) = match imaps {
        Some((p, tls)) => (
            format!(
                "ssl = yes\nssl_cert = <{}\nssl_key = <{}",
                tls.join("cert.pem").display(),
                tls.join("key.pem").display()
            ),
            p,
        ),
        None => ("ssl = no".to_owned(), 0),
    };
    let config = format!(
        "instance_name = ringmail-export-test\nbase_dir = {d}/run\nstate_dir = {d}/state\n\
         log_path = {d}/dovecot.log\nlisten = 127.0.0.1\nprotocols = imap pop3\n{ssl}\n\
         disable_plaintext_auth = no\nauth_mechanisms = plain login\n\
         default_internal_user = {internal}\ndefault_login_user = {login}\n\
         first_valid_uid = {uid}\nlast_valid_uid = {uid}\n\
         passdb {{\n  driver = passwd-file\n  args = {d}/users\n}}\n\
         userdb {{\n  driver = passwd-file\n  args = {d}/users\n}}\n\
         service imap-login {{\n  chroot =\n  inet_listener imap {{\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = {imaps_port}\n  }}\n}}\n\
         service pop3-login {{\n  chroot =\n  inet_listener pop3 {{\n    port = {pop3}\n  }}\n  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n\
         service anvil {{\n  chroot =\n}}\n{extra}"
    );
    std::fs::write(dir.path().join("dovecot.conf"), config).unwrap();
    let child = Command::new(dovecot_binary())
        .arg("-F")
        .arg("-c")
        .arg(dir.path().join("dovecot.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "Dovecot did not start: {}", log(dir.path()));
        std::thread::sleep(Duration::from_millis(50));
    }
    Dovecot { child, _dir: dir }
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default()
}

#[test]
fn an_exported_maildir_is_served_by_dovecot_with_the_same_uids_and_flags() {
    let server = Server::start();
    server.add_user("alice");
    for subject in ["one", "two", "three", "four"] {
        server.deliver("alice", &message(subject));
    }
    let mut c = server.imap_login("alice");
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    c.cmd("STORE 1 +FLAGS (\\Seen \\Answered Work)")
        .unwrap()
        .expect_ok()
        .unwrap();
    c.cmd("STORE 3 +FLAGS (\\Flagged $Label1 Work)")
        .unwrap()
        .expect_ok()
        .unwrap();
    c.cmd("STORE 2 +FLAGS (\\Deleted)").unwrap().expect_ok().unwrap();
    c.cmd("EXPUNGE").unwrap().expect_ok().unwrap();
    c.cmd("STORE 3 +FLAGS (\\Draft \\Deleted)")
        .unwrap()
        .expect_ok()
        .unwrap();
    c.cmd("CREATE Archive/2024").unwrap().expect_ok().unwrap();
    c.cmd("CREATE Entw&APw-rfe").unwrap().expect_ok().unwrap();
    c.cmd("SUBSCRIBE Archive/2024").unwrap().expect_ok().unwrap();
    c.append("Archive/2024", "\\Seen", &message("archived"))
        .unwrap()
        .expect_ok()
        .unwrap();
    c.cmd("COPY 1 Archive/2024").unwrap().expect_ok().unwrap();
    let cafile = server.data_dir().join("cert.pem");
    let ours = snapshot(server.ports.imaps, true, &cafile);
    assert!(ours.contains("folder Archive/2024"), "{ours}");
    assert!(ours.contains("$Label1 Work \\Flagged"), "{ours}");

    // Exported while the server runs.
    let target = tempfile::tempdir().unwrap();
    let maildir = target.path().join("alice");
    let out = server.cli(
        &["export", "alice", "--to", &format!("maildir:{}", maildir.display())],
        b"",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("exported 5 messages"), "{said}");
    assert!(!target.path().join("alice.partial").exists());
    // Into a directory that holds something, never.
    let again = server.cli(
        &["export", "alice", "--to", &format!("maildir:{}", maildir.display())],
        b"",
    );
    assert!(!again.status.success());

    let (port, pop3, imaps) = (free_port(), free_port(), free_port());
    let dovecot = start_dovecot(&maildir, (port, pop3), Some((imaps, &server.data_dir())));
    let theirs = snapshot(port, false, &cafile);
    // Folder names differ only in the separator, which the snapshot normalises.
    assert_eq!(theirs, ours);

    // Dovecot writes to the Maildir itself: new mail (its own file names and uidlist lines),
    // a keyword only it has used, a folder of its own.
    let changes = r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("alice", sys.argv[2])
msg = b"From: d@example.org\r\nSubject: from dovecot\r\n\r\nwritten by Dovecot\r\n"
assert m.append("INBOX", r"(\Seen $Dovecot)", '"01-Feb-2025 10:00:00 +0000"', msg)[0] == "OK"
assert m.create("Neu")[0] == "OK"
assert m.append("Neu", None, None, msg)[0] == "OK"
m.select("INBOX")
assert m.uid("STORE", "1", "+FLAGS", r"(\Flagged)")[0] == "OK"
m.logout()
"#;
    python(changes, &[port.to_string(), PASSWORD.to_string()]);
    let theirs = snapshot(port, false, &cafile);
    assert!(theirs.contains("$Dovecot") && theirs.contains("folder Neu"), "{theirs}");
    let their_uidls = uidls(pop3, false, &cafile);

    // The same account over IMAP, as imapsync would copy it, from Dovecot itself over TLS:
    // every folder with its UIDVALIDITY and UIDs, flags, keywords, dates, subscriptions.
    let mut over_imap = Server::start();
    over_imap.add_user("alice");
    over_imap.terminate();
    let from = format!("imaps://localhost:{imaps}");
    let ca = server.data_dir().join("cert.pem").display().to_string();
    let args = ["import", "alice", "--from", &from, "--password-stdin", "--ca", &ca];
    let out = over_imap.cli(&args, PASSWORD.as_bytes());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("imported 7 messages"), "{said}");
    let out = over_imap.cli(&args, PASSWORD.as_bytes());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("imported 0 messages") && said.contains("(7 there already)"),
        "{said}"
    );
    let out = over_imap.cli(&["fsck"], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    // A wrong password is one clear line.
    let out = over_imap.cli(&args, b"wrong\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot log in"));
    over_imap.restart();
    let over_imap_ca = over_imap.data_dir().join("cert.pem");
    assert_eq!(snapshot(over_imap.ports.imaps, true, &over_imap_ca), theirs);
    drop(dovecot);

    // Back into a new ringmail: the same folders, UIDs, flags, keywords, dates and bytes as
    // Dovecot served them.
    let mut fresh = Server::start();
    fresh.add_user("alice");
    let from = format!("maildir:{}", maildir.display());
    // Never beside a running server.
    let refused = fresh.cli(&["import", "alice", "--from", &from], b"");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("stop the server first"));
    fresh.terminate();
    let out = fresh.cli(&["import", "alice", "--from", &from], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    fresh.restart();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("imported 7 messages"), "{said}");
    let cafile = fresh.data_dir().join("cert.pem");
    assert_eq!(snapshot(fresh.ports.imaps, true, &cafile), theirs);
    // POP3 clients see the same UIDLs as Dovecot gave them: ringmail's own for the mail that
    // came from ringmail, Dovecot's for what Dovecot took in.
    let ours = uidls(fresh.ports.pop3s, true, &cafile);
    assert_eq!(ours, their_uidls);
    assert_eq!(ours.lines().count(), 4, "{ours}");
    // Run again, it adds nothing.
    fresh.terminate();
    let out = fresh.cli(&["import", "alice", "--from", &from], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("imported 0 messages") && said.contains("(7 there already)"),
        "{said}"
    );
    // The store the import wrote is consistent: counts, sizes, indexes, UIDNEXT.
    let out = fresh.cli(&["fsck"], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    fresh.restart();
    assert_eq!(snapshot(fresh.ports.imaps, true, &cafile), theirs);
}

/// A folder larger than one batch (200 messages) comes in whole, UIDs and gaps kept, and an
/// import interrupted after some batches (here: a source that grew) adds only what is missing.
/// A Maildir that Dovecot wrote from the start — mail delivered by its LMTP into INBOX and, by
/// `+detail`, into folders, then flagged, tagged with keywords and partly expunged over IMAP —
/// imported as Dovecot serves it: the same folders, UIDVALIDITY, UIDNEXT, UIDs, flags,
/// keywords, dates and bytes, and the same POP3 UIDLs.
#[test]
fn a_maildir_dovecot_wrote_is_imported_as_dovecot_serves_it() {
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Maildir");
    std::fs::create_dir_all(&maildir).unwrap();
    let (port, pop3, lmtp) = (free_port(), free_port(), free_port());
    let extra = format!(
        "protocols = imap pop3 lmtp\nrecipient_delimiter = +\nlmtp_save_to_detail_mailbox = yes\n\
         service lmtp {{\n  inet_listener lmtp {{\n    address = 127.0.0.1\n    port = {lmtp}\n  }}\n}}\n\
         protocol lmtp {{\n  auth_username_format = %Ln\n}}\n"
    );
    let location = format!("maildir:{}", maildir.display());
    let dovecot = dovecot_serving(&location, &maildir, (port, pop3), None, &extra);
    let feed = r#"
import imaplib, smtplib, sys, time
port, lmtp, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
m = imaplib.IMAP4("127.0.0.1", port)
m.login("alice", password)
# Dovecot's Maildir++ separates levels with '.'.
for folder in ["Work", "Work.Sub", "Entw&APw-rfe"]:
    assert m.create(folder)[0] == "OK", folder
# A new ringmail account has INBOX subscribed; so has this one.
for folder in ["INBOX", "Work"]:
    assert m.subscribe(folder)[0] == "OK"
l = smtplib.LMTP("127.0.0.1", lmtp)
def deliver(rcpt, subject):
    msg = "From: d@example.org\r\nTo: alice@example.org\r\nSubject: %s\r\n\r\nbody of %s\r\n" % (subject, subject)
    assert not l.sendmail("d@example.org", [rcpt], msg), rcpt
for i in range(6):
    deliver("alice@example.org", "inbox %d" % i)
for i in range(3):
    deliver("alice+Work@example.org", "work %d" % i)
deliver("alice+Work.Sub@example.org", "deep")
l.quit()
m.select("INBOX")
assert m.store("1", "+FLAGS", r"(\Seen \Answered $Label1)")[0] == "OK"
assert m.store("3", "+FLAGS", r"(\Flagged Project-X)")[0] == "OK"
assert m.store("2,5", "+FLAGS", r"(\Deleted)")[0] == "OK"
assert m.expunge()[0] == "OK"
m.select("Work")
assert m.store("2", "+FLAGS", r"(\Draft $Label1)")[0] == "OK"
typ, data = m.select("Work.Sub")
assert data[0] == b"1", data
m.logout()
"#;
    python(feed, &[port.to_string(), lmtp.to_string(), PASSWORD.to_string()]);
    let mut server = Server::start();
    let cafile = server.data_dir().join("cert.pem");
    let theirs = snapshot(port, false, &cafile);
    assert!(
        theirs.contains("folder Work/Sub ") && theirs.contains("Project-X"),
        "{theirs}"
    );
    let their_uidls = uidls(pop3, false, &cafile);
    drop(dovecot);

    server.add_user("alice");
    server.terminate();
    let out = server.cli(
        &["import", "alice", "--from", &format!("maildir:{}", maildir.display())],
        b"",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    server.restart();
    // Dovecot's account has no Drafts, Sent, Junk, Trash or Archive; ringmail's new one does.
    let defaults = ["Archive", "Drafts", "Junk", "Sent", "Trash"];
    let ours: String = snapshot(server.ports.imaps, true, &cafile)
        .lines()
        .filter(|l| !defaults.iter().any(|d| l.starts_with(&format!("folder {d} "))))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(ours, theirs);
    assert_eq!(uidls(server.ports.pop3s, true, &cafile), their_uidls);
}

#[test]
fn a_folder_of_many_batches_is_imported_whole() {
    let root = tempfile::tempdir().unwrap();
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(root.path().join(sub)).unwrap();
    }
    let mut uidlist = String::from("3 V777 N1000 G00\n");
    let mut expected = Vec::new();
    for i in 0..450u32 {
        let uid = 2 * i + 3;
        let name = format!("17000{i:05}.M{i}.h");
        std::fs::write(
            root.path().join("cur").join(format!("{name}:2,S")),
            format!("Subject: m{i}\n\nbody {i}\n"),
        )
        .unwrap();
        uidlist.push_str(&format!("{uid} :{name}\n"));
        expected.push(uid);
    }
    std::fs::write(root.path().join("dovecot-uidlist"), &uidlist).unwrap();
    let mut server = Server::start();
    server.add_user("alice");
    server.terminate();
    let from = format!("maildir:{}", root.path().display());
    let out = server.cli(&["import", "alice", "--from", &from], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 450 messages"));
    // The source grows; the next run adds the new one only.
    std::fs::write(
        root.path().join("new").join("1800000000.M9.h"),
        "Subject: late\n\nlate\n",
    )
    .unwrap();
    let out = server.cli(&["import", "alice", "--from", &from], b"");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("imported 1 messages") && said.contains("(450 there already)"),
        "{said}"
    );
    let out = server.cli(&["fsck"], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    server.restart();
    let ours = snapshot(server.ports.imaps, true, &server.data_dir().join("cert.pem"));
    let uids: Vec<u32> = ours
        .lines()
        .skip_while(|l| !l.starts_with("folder INBOX "))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    expected.push(1000);
    assert_eq!(uids, expected);
    assert!(ours.contains("folder INBOX uidvalidity 777 uidnext 1001 "), "{ours}");
}

/// A Maildir in Dovecot's LAYOUT=fs (folders as nested directories), with a version 1
/// uidlist in one folder and none in another: UIDs from the uidlist, new ones after it, flags
/// and keywords from the file names.
#[test]
fn a_maildir_in_the_fs_layout_is_imported_with_its_uids() {
    let root = tempfile::tempdir().unwrap();
    let put = |dir: &str, file: &str, subject: &str, mtime: u64| {
        let cur = root.path().join(dir).join("cur");
        std::fs::create_dir_all(&cur).unwrap();
        std::fs::create_dir_all(root.path().join(dir).join("new")).unwrap();
        let path = cur.join(file);
        std::fs::write(&path, format!("From: a@example.org\nSubject: {subject}\n\nbody\n")).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(mtime))
            .unwrap();
    };
    put("", "1700000000.M1.h:2,S", "inbox one", 1_700_000_000);
    put("Work", "1700000001.M2.h:2,FSa", "work seven", 1_700_000_001);
    put("Work", "1700000002.M3.h:2,", "work nine", 1_700_000_002);
    put("Work/Sub", "1700000003.M4.h:2,R", "sub new", 1_700_000_003);
    std::fs::write(
        root.path().join("Work/dovecot-uidlist"),
        "1 4242 10\n7 1700000001.M2.h\n9 1700000002.M3.h\n",
    )
    .unwrap();
    std::fs::write(root.path().join("Work/dovecot-keywords"), "0 Urgent\n").unwrap();

    let mut server = Server::start();
    server.add_user("alice");
    server.terminate();
    let from = format!("maildir:{}", root.path().display());
    let out = server.cli(&["import", "alice", "--from", &from], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Run again: folders without a uidlist keep the UIDVALIDITY the first run gave them.
    // (A second later: a UIDVALIDITY made up from the clock would differ.)
    std::thread::sleep(Duration::from_millis(1100));
    let again = server.cli(&["import", "alice", "--from", &from], b"");
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(
        said.contains("imported 0 messages") && said.contains("(4 there already)"),
        "{said}"
    );
    server.restart();
    let ours = snapshot(server.ports.imaps, true, &server.data_dir().join("cert.pem"));
    let folder = |name: &str| {
        let start = ours
            .find(&format!("folder {name} "))
            .unwrap_or_else(|| panic!("no {name}: {ours}"));
        let rest = &ours[start..];
        let end = rest[1..].find("\nfolder ").map_or(rest.len(), |i| i + 1);
        rest[..end].to_owned()
    };
    let work = folder("Work");
    assert!(work.starts_with("folder Work uidvalidity 4242 uidnext 10 "), "{work}");
    assert!(work.contains("\n  7 Urgent \\Flagged \\Seen 1700000001 "), "{work}");
    assert!(work.contains("\n  9  1700000002 "), "{work}");
    let sub = folder("Work/Sub");
    assert!(
        sub.contains("uidnext 2 ") && sub.contains("\n  1 \\Answered 1700000003 "),
        "{sub}"
    );
    assert!(folder("INBOX").contains("\n  1 \\Seen 1700000000 "), "{ours}");
}

/// `ringmail export --to mbox:` is what Dovecot serves from an mbox directory — the same
/// folders, UIDVALIDITY, UIDNEXT (an empty folder's too), UIDs, flags, keywords, dates, bytes
/// and, with `pop3_uidl_format = %v.%u`, POP3 UIDLs — and `import --from mbox:` takes it back
/// after Dovecot has written to it, with what Dovecot wrote, byte for byte.
#[test]
fn an_mbox_export_is_served_by_dovecot_and_imported_back() {
    let server = Server::start();
    server.add_user("alice");
    for subject in ["one", "two", "three"] {
        server.deliver("alice", &message(subject));
    }
    // A body line Dovecot's Content-Length keeps from starting a message.
    server.deliver(
        "alice",
        b"Subject: tricky\r\n\r\nhello\r\n\r\nFrom someone Tue Nov 14 22:13:20 2023\r\n>From quoted\r\n",
    );
    let mut c = server.imap_login("alice");
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    c.cmd("STORE 1 +FLAGS (\\Seen \\Answered Work)")
        .unwrap()
        .expect_ok()
        .unwrap();
    c.cmd("STORE 3 +FLAGS (\\Flagged \\Draft $Label1)")
        .unwrap()
        .expect_ok()
        .unwrap();
    c.cmd("STORE 2 +FLAGS (\\Deleted)").unwrap().expect_ok().unwrap();
    c.cmd("EXPUNGE").unwrap().expect_ok().unwrap();
    c.cmd("CREATE Archive/2024").unwrap().expect_ok().unwrap();
    c.cmd("CREATE Entw&APw-rfe").unwrap().expect_ok().unwrap();
    c.cmd("SUBSCRIBE Archive/2024").unwrap().expect_ok().unwrap();
    c.append("Archive/2024", "\\Seen", &message("archived"))
        .unwrap()
        .expect_ok()
        .unwrap();
    c.cmd("COPY 1 Archive/2024").unwrap().expect_ok().unwrap();
    // An empty folder whose UIDNEXT has moved.
    c.append("Entw&APw-rfe", "", &message("gone"))
        .unwrap()
        .expect_ok()
        .unwrap();
    c.cmd("SELECT Entw&APw-rfe").unwrap().expect_ok().unwrap();
    c.cmd("STORE 1 +FLAGS (\\Deleted)").unwrap().expect_ok().unwrap();
    c.cmd("EXPUNGE").unwrap().expect_ok().unwrap();
    let cafile = server.data_dir().join("cert.pem");
    let ours = snapshot(server.ports.imaps, true, &cafile);
    assert!(
        ours.contains("folder Entw&APw-rfe uidvalidity") && ours.contains(" uidnext 2 "),
        "{ours}"
    );
    // Archive, a folder only for its subfolder here, is a directory in mbox: Dovecot lists it
    // \Noselect, which the snapshot leaves out (an account made here has it, empty).
    let without_archive = |s: String| -> String {
        s.lines()
            .filter(|l| !l.starts_with("folder Archive "))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    let ours = without_archive(ours);

    let target = tempfile::tempdir().unwrap();
    let root = target.path().join("alice");
    let to = format!("mbox:{}", root.display());
    let out = server.cli(&["export", "alice", "--to", &to], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("exported 5 messages"),
        "{out:?}"
    );
    // A folder holding mail and subfolders cannot be an mbox file: refused, by name.
    c.cmd("CREATE Archive/2024/Q1").unwrap().expect_ok().unwrap();
    let refused = server.cli(
        &[
            "export",
            "alice",
            "--to",
            &format!("mbox:{}/other", target.path().display()),
        ],
        b"",
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("\"Archive/2024\" holds mail and has subfolders"),
        "{refused:?}"
    );

    let (port, pop3) = (free_port(), free_port());
    let location = format!("mbox:{0}:INBOX={0}/inbox", root.display());
    let dovecot = dovecot_serving(&location, &root, (port, pop3), None, "pop3_uidl_format = %v.%u\n");
    assert_eq!(snapshot(port, false, &cafile), ours);
    assert_eq!(uidls(pop3, false, &cafile), uidls(server.ports.pop3s, true, &cafile));

    // Dovecot writes to the mbox itself: new mail, flags, a folder of its own.
    let changes = r#"
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
m.login("alice", sys.argv[2])
msg = b"From: d@example.org\r\nSubject: from dovecot\r\n\r\nwritten by Dovecot\r\nFrom the start\r\n"
assert m.append("INBOX", r"(\Seen $Dovecot)", '"01-Feb-2025 10:00:00 +0000"', msg)[0] == "OK"
assert m.create("Neu")[0] == "OK"
assert m.append("Neu", None, None, msg)[0] == "OK"
m.select("INBOX")
assert m.uid("STORE", "1", "+FLAGS", r"(\Flagged)")[0] == "OK"
m.logout()
"#;
    python(changes, &[port.to_string(), PASSWORD.to_string()]);
    let theirs = snapshot(port, false, &cafile);
    assert!(theirs.contains("$Dovecot") && theirs.contains("folder Neu"), "{theirs}");
    let their_uidls = uidls(pop3, false, &cafile);
    drop(dovecot);

    let mut fresh = Server::start();
    fresh.add_user("alice");
    fresh.terminate();
    let out = fresh.cli(&["import", "alice", "--from", &to], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = fresh.cli(&["import", "alice", "--from", &to], b"");
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(said.contains("imported 0 messages"), "{said}");
    fresh.restart();
    let fresh_ca = fresh.data_dir().join("cert.pem");
    assert_eq!(without_archive(snapshot(fresh.ports.imaps, true, &fresh_ca)), theirs);
    assert_eq!(uidls(fresh.ports.pop3s, true, &fresh_ca), their_uidls);
}

/// `ringmail import --accounts FILE --from maildir:…/%u/…`: every account of a passwd-like
/// file is created with its password (plain, or an argon2 hash kept as it is) and filled from
/// its own Maildir; one that fails is named and the others go on; run again, nothing twice.
#[test]
fn accounts_are_imported_in_bulk_from_a_passwd_file() {
    let root = tempfile::tempdir().unwrap();
    let maildir = |user: &str| {
        let dir = root.path().join(user).join("Maildir");
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        dir
    };
    let alice = maildir("alice");
    std::fs::write(alice.join("cur/1700000000.M1.h:2,S"), "Subject: for alice\n\nhi\n").unwrap();
    let bob = maildir("bob");
    std::fs::write(bob.join("cur/1700000001.M2.h:2,"), "Subject: for bob\n\nhi\n").unwrap();
    std::fs::write(bob.join("dovecot-uidlist"), "3 V55 N8 G00\n7 :1700000001.M2.h\n").unwrap();
    let hash = ringmail::auth::password::hash(PASSWORD).unwrap().phc;
    let accounts = root.path().join("passwd");
    std::fs::write(
        &accounts,
        format!("# from the old server\nalice:{{PLAIN}}{PASSWORD}::::\nbob:{{ARGON2ID}}{hash}\ncarol:{{PLAIN}}x\n"),
    )
    .unwrap();
    let mut server = Server::start();
    server.terminate();
    let from = format!("maildir:{}/%u/Maildir", root.path().display());
    let args = ["import", "--accounts", accounts.to_str().unwrap(), "--from", &from];
    // carol has no Maildir: she is named, alice and bob are imported.
    let out = server.cli(&args, b"");
    let (said, errors) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "{said}");
    assert!(errors.contains("1 of 3 accounts were not imported: carol"), "{errors}");
    assert!(
        said.contains("alice: account added") && said.contains("bob: account added"),
        "{said}"
    );
    maildir("carol");
    let out = server.cli(&args, b"");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        !said.contains("account added") && said.contains("(1 there already)"),
        "{said}"
    );
    assert!(said.contains("3 accounts imported"), "{said}");
    // A line in a scheme ringmail cannot check stops the run before anything is written.
    std::fs::write(&accounts, "dave:{PLAIN}x\nerin:{SHA512-CRYPT}$6$s$h\n").unwrap();
    let out = server.cli(&args, b"");
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"), "{out:?}");
    server.restart();
    let listed = server.cli(&["user", "list"], b"");
    assert!(!String::from_utf8_lossy(&listed.stdout).contains("dave"), "{listed:?}");
    let status = "print(m.status('INBOX', '(MESSAGES UIDNEXT UIDVALIDITY)')[1][0].decode())\n";
    let bob = server.imaplib("bob", &[], status);
    assert!(bob.contains("MESSAGES 1 UIDNEXT 8 UIDVALIDITY 55"), "{bob}");
    let alice = server.imaplib("alice", &[], status);
    assert!(alice.contains("MESSAGES 1 "), "{alice}");
}

/// `ringmail export --to stream:` then `ringmail import --from stream:` into another server:
/// everything a CONDSTORE/QRESYNC client and a POP3 client see is the same — UIDVALIDITY,
/// UIDNEXT, HIGHESTMODSEQ, every UID, flag, MODSEQ, date and byte, what VANISHED since modseq
/// 1 (the expunge log), subscriptions and UIDLs. Run again, the import brings nothing twice; a
/// damaged stream is refused.
#[test]
fn a_stream_carries_a_user_with_modseqs_expunges_and_uidls() {
    let source = Server::start();
    source.add_user("alice");
    for subject in ["one", "two", "three", "four", "five"] {
        source.deliver("alice", &message(subject));
    }
    let mut c = source.imap_login("alice");
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    c.cmd("STORE 1 +FLAGS (\\Seen Work)").unwrap().expect_ok().unwrap();
    c.cmd("STORE 2,4 +FLAGS (\\Deleted)").unwrap().expect_ok().unwrap();
    c.cmd("EXPUNGE").unwrap().expect_ok().unwrap();
    c.cmd("STORE 2 +FLAGS (\\Flagged)").unwrap().expect_ok().unwrap();
    c.cmd("CREATE Archive/2024").unwrap().expect_ok().unwrap();
    c.cmd("SUBSCRIBE Archive/2024").unwrap().expect_ok().unwrap();
    c.cmd("UNSUBSCRIBE Trash").unwrap();
    c.append("Archive/2024", "\\Seen $Label1", &message("archived"))
        .unwrap()
        .expect_ok()
        .unwrap();
    c.cmd("DELETE Drafts").unwrap().expect_ok().unwrap();
    drop(c);
    source.set_user("alice", &["--quota", "10240000"]);
    let before = source.mail_state("alice");
    assert!(before.contains("mailbox Archive/2024 "), "{before}");
    assert!(before.contains("vanished [b'(EARLIER) 2,4']"), "{before}");
    let cafile = source.data_dir().join("cert.pem");
    let uidls_before = uidls(source.ports.pop3s, true, &cafile);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alice.stream");
    let to = format!("stream:{}", file.display());
    let out = source.cli(&["export", "alice", "--to", &to], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mut target = Server::start();
    target.add_user("alice");
    target.terminate();
    let out = target.cli(&["import", "alice", "--from", &to], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 4 messages"));
    // Again: what is there already is recognised, nothing is stored twice.
    let out = target.cli(&["import", "alice", "--from", &to], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = target.cli(&["fsck"], b"");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    target.restart();
    assert_eq!(target.mail_state("alice"), before);
    let cafile = target.data_dir().join("cert.pem");
    assert_eq!(uidls(target.ports.pop3s, true, &cafile), uidls_before);
    // The quota came along (RFC 9208 STORAGE is in KiB).
    let quota = target.imaplib("alice", &[], "print(m.getquotaroot('INBOX'))\n");
    assert!(quota.contains("(STORAGE ") && quota.contains(" 10000)"), "{quota}");

    // A flipped byte anywhere in a message is caught before that message is stored.
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.windows(9).position(|w| w == b"Subject: ").unwrap();
    bytes[at + 10] ^= 0x20;
    let damaged = dir.path().join("damaged.stream");
    std::fs::write(&damaged, &bytes).unwrap();
    let mut fresh = Server::start();
    fresh.add_user("alice");
    fresh.terminate();
    let from = format!("stream:{}", damaged.display());
    let out = fresh.cli(&["import", "alice", "--from", &from], b"");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("checksum"), "{said}");
    // An account with mail of its own is not overwritten.
    target.add_user("bob");
    target.deliver("bob", &message("own"));
    target.terminate();
    let out = target.cli(&["import", "bob", "--from", &to], b"");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("did not come from a stream"));
}
