//! A real OpenLDAP server (Debian's `slapd`) on a free loopback port, with its own database in a
//! temporary directory, loaded with ringmail's schema (`docs/ldap/`) and accounts. `scripts/test`
//! installs slapd and ldap-utils when they are missing; a test never skips for want of them.

use std::fmt::Write as _;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, PASSWORD};

pub const BASE: &str = "dc=example,dc=org";
pub const PEOPLE: &str = "ou=people,dc=example,dc=org";
/// The entry ringmail binds as; it may read accounts and write them.
pub const SERVICE_DN: &str = "cn=ringmail,dc=example,dc=org";
pub const SERVICE_PASSWORD: &str = "ringmail service pw";
const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
const ROOT_PASSWORD: &str = "root pw";

/// An account to load: its name, its back end, and extra `attribute: value` lines.
pub struct Account<'a> {
    pub name: &'a str,
    pub mail_host: &'a str,
    pub extra: &'a [&'a str],
}

pub struct Slapd {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A program from Debian's slapd or ldap-utils.
fn program(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let path = Path::new(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!("{name} is missing: run scripts/test, which installs Debian's slapd and ldap-utils");
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

impl Slapd {
    /// Starts slapd holding `accounts`, each with the password `PASSWORD`.
    pub fn start(accounts: &[Account]) -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        let conf = dir.path().join("slapd.conf");
        let schema = |name: &str| format!("include /etc/ldap/schema/{name}.schema\n");
        let text = format!(
            "{core}{cosine}{inet}{misc}include {ringmail}\n\
             pidfile {dir}/slapd.pid\n\
             modulepath /usr/lib/ldap\nmoduleload back_mdb\nmoduleload syncprov\n\
             database mdb\nmaxsize 67108864\nsuffix \"{BASE}\"\n\
             rootdn \"{ROOT_DN}\"\nrootpw \"{ROOT_PASSWORD}\"\ndirectory {db}\n\
             index objectClass,uid,entryCSN,entryUUID eq\n\
             overlay syncprov\n\
             access to attrs=userPassword,ringmailScramSHA256 by dn.exact=\"{SERVICE_DN}\" write by self write by anonymous auth by * none\n\
             access to * by dn.exact=\"{SERVICE_DN}\" write by users read by anonymous auth\n",
            core = schema("core"),
            cosine = schema("cosine"),
            inet = schema("inetorgperson"),
            misc = schema("misc"),
            ringmail = repo().join("docs/ldap/ringmail.schema").display(),
            dir = dir.path().display(),
            db = db.display(),
        );
        std::fs::write(&conf, text).unwrap();
        let ldif = dir.path().join("accounts.ldif");
        std::fs::write(&ldif, initial_ldif(accounts)).unwrap();
        let out = Command::new(program("slapadd"))
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(&ldif)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "slapadd: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let port = free_port();
        let child = Command::new(program("slapd"))
            .arg("-f")
            .arg(&conf)
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{port}/"))
            // -d keeps it in the foreground, where the test can stop it.
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let slapd = Slapd { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "slapd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        slapd
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// The `[directory]` section of a ringmail config using this server.
    pub fn directory_section(&self, cache_ttl: u64) -> String {
        format!(
            "[directory]\nldap_url = \"{url}\"\nldap_base = \"{PEOPLE}\"\n\
             ldap_bind_dn = \"{SERVICE_DN}\"\nldap_bind_password = \"{SERVICE_PASSWORD}\"\n\
             cache_ttl = {cache_ttl}\n",
            url = self.url(),
        )
    }

    /// Changes the directory with ldapmodify (an independent client), as its administrator.
    pub fn modify(&self, ldif: &str) {
        let mut child = Command::new(program("ldapmodify"))
            .args(["-x", "-H", &self.url(), "-D", ROOT_DN, "-w", ROOT_PASSWORD])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(ldif.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ldapmodify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// An account's attribute values as ldapsearch (an independent client) reads them.
    pub fn read(&self, name: &str, attribute: &str) -> Vec<String> {
        let out = Command::new(program("ldapsearch"))
            .args([
                "-x",
                "-LLL",
                "-H",
                &self.url(),
                "-D",
                ROOT_DN,
                "-w",
                ROOT_PASSWORD,
                "-b",
                PEOPLE,
            ])
            .arg(format!("(uid={name})"))
            .arg(attribute)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ldapsearch: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        use base64::Engine;
        let (plain, encoded) = (format!("{attribute}: "), format!("{attribute}:: "));
        let b64 = base64::engine::general_purpose::STANDARD;
        // LDIF gives values that are not plain text in base64, after a double colon.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| match l.strip_prefix(&encoded) {
                Some(v) => Some(String::from_utf8_lossy(&b64.decode(v).unwrap()).into_owned()),
                None => l.strip_prefix(&plain).map(str::to_owned),
            })
            .collect()
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The tree: base, people, the service entry, and the accounts, with `{SSHA}` passwords as
/// slappasswd makes them.
fn initial_ldif(accounts: &[Account]) -> String {
    let service = hash(SERVICE_PASSWORD);
    let user = hash(PASSWORD);
    let mut ldif = format!(
        "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
         dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n\
         cn: ringmail\nuserPassword: {service}\n\n"
    );
    for a in accounts {
        let _ = write!(
            ldif,
            "dn: uid={name},{PEOPLE}\nobjectClass: inetOrgPerson\nobjectClass: inetLocalMailRecipient\n\
             objectClass: ringmailAccount\nuid: {name}\ncn: {name}\nsn: {name}\n\
             mail: {name}@example.org\nmailHost: {host}\nuserPassword: {user}\n",
            name = a.name,
            host = a.mail_host,
        );
        for line in a.extra {
            let _ = writeln!(ldif, "{line}");
        }
        ldif.push('\n');
    }
    ldif
}

fn hash(password: &str) -> String {
    let out = Command::new(program("slappasswd"))
        .args(["-s", password])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
