//! OAuth bearer tokens (issue 15, item 4): OAUTHBEARER (RFC 7628) and XOAUTH2 over IMAP, POP3
//! and submission, against a running server whose `[oauth]` trusts a key this test makes;
//! expired, wrong-audience and wrong-signature tokens are refused after the error challenge,
//! and the issuer's keys are fetched over HTTP as well as read from a file.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use common::{Extra, Server};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

const ISSUER: &str = "https://id.example.com";

/// A P-256 signing key and its public half as a JWK Set under `kid`.
fn key_pair(kid: &str) -> (EncodingKey, String) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = pair.public_key_raw();
    let (x, y) = (
        URL_SAFE_NO_PAD.encode(&raw[1..33]),
        URL_SAFE_NO_PAD.encode(&raw[33..65]),
    );
    let jwks = format!(
        r#"{{"keys":[{{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"{kid}","x":"{x}","y":"{y}"}}]}}"#
    );
    (EncodingKey::from_ec_der(&pair.serialize_der()), jwks)
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A token for `email`, for `audience`, expiring `expires_in` seconds from now.
fn token(key: &EncodingKey, email: &str, audience: &str, expires_in: i64) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".into());
    let sub = email.split('@').next().unwrap();
    let claims =
        serde_json::json!({"iss": ISSUER, "aud": audience, "exp": now() + expires_in, "email": email, "sub": sub});
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

fn bearer(user: &str, token: &str) -> String {
    STANDARD.encode(format!("n,a={user},\x01auth=Bearer {token}\x01\x01"))
}

fn xoauth2(user: &str, token: &str) -> String {
    STANDARD.encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
}

/// A server with `[oauth]` `keys` (a `jwks_file` or `jwks_url` line), serving example.com.
fn server(keys: String) -> Server {
    let tail = format!("[oauth]\nissuer = \"{ISSUER}\"\naudience = [\"ringmail\"]\n{keys}\n");
    let server = Server::start_with(Extra {
        server: "domains = [\"example.com\"]",
        tail: Box::leak(tail.into_boxed_str()),
        ..Extra::default()
    });
    server.add_user("alice");
    server
}

fn file_server(jwks: &str) -> Server {
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join("jwks.json");
    std::fs::write(&path, jwks).unwrap();
    server(format!("jwks_file = \"{}\"", path.display()))
}

#[test]
fn a_good_token_logs_in_over_every_protocol() {
    let (key, jwks) = key_pair("k1");
    let server = file_server(&jwks);
    let good = token(&key, "alice@example.com", "ringmail", 600);

    // IMAP, with SASL-IR: both mechanisms offered, both taken.
    let mut c = server.imap_tls();
    let caps = c.cmd("CAPABILITY").unwrap().expect_ok().unwrap();
    assert!(caps.lines()[0].contains("AUTH=OAUTHBEARER AUTH=XOAUTH2"), "{caps:?}");
    let r = c.cmd(&format!(
        "AUTHENTICATE OAUTHBEARER {}",
        bearer("alice@example.com", &good)
    ));
    assert!(r.unwrap().ok());
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let mut c = server.imap_tls();
    assert!(c
        .cmd(&format!("AUTHENTICATE XOAUTH2 {}", xoauth2("alice", &good)))
        .unwrap()
        .ok());

    // POP3 without an initial response: the empty challenge, then the message.
    let mut p = server.pop3_tls();
    p.t.send_line("AUTH OAUTHBEARER").unwrap();
    assert_eq!(p.t.read_line_string().unwrap(), "+ ");
    p.t.send_line(&bearer("alice@example.com", &good)).unwrap();
    let line = p.t.read_line_string().unwrap();
    assert!(line.starts_with("+OK"), "{line}");

    // Submission.
    let mut s = server.smtp_tls();
    let reply = s
        .cmd(&format!("AUTH XOAUTH2 {}", xoauth2("alice@example.com", &good)))
        .unwrap();
    assert_eq!(reply.code, 235, "{reply:?}");

    // CPython's imaplib, an independent client of XOAUTH2.
    let script = format!(
        "import imaplib, ssl\nctx = ssl.create_default_context(cafile={cafile:?})\n\
         m = imaplib.IMAP4_SSL('localhost', {port}, ssl_context=ctx)\n\
         print(m.authenticate('XOAUTH2', lambda _: b'user=alice@example.com\\x01auth=Bearer {good}\\x01\\x01')[0])\n\
         print(m.select('INBOX')[0])\n",
        cafile = server.data_dir().join("cert.pem").display().to_string(),
        port = server.ports.imaps,
    );
    assert_eq!(common::python(&script, &[]).trim(), "OK\nOK");
}

#[test]
fn bad_tokens_are_refused_after_the_error_challenge() {
    let (key, jwks) = key_pair("k1");
    let server = file_server(&jwks);
    let (forger, _) = key_pair("k1");
    let bad = [
        token(&key, "alice@example.com", "ringmail", -600),
        token(&key, "alice@example.com", "someone-else", 600),
        token(&forger, "alice@example.com", "ringmail", 600),
        token(&key, "alice@other.org", "ringmail", 600),
    ];
    for t in &bad {
        let mut c = server.imap_tls();
        let tag = c.tag();
        c.t.send_line(&format!("{tag} AUTHENTICATE OAUTHBEARER {}", bearer("alice", t)))
            .unwrap();
        // RFC 7628 §3.2.2: a JSON error challenge; the client answers %x01.
        let challenge = c.t.read_line_string().unwrap();
        let json = STANDARD
            .decode(challenge.strip_prefix("+ ").expect(&challenge))
            .unwrap();
        let error: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(error["status"], "invalid_token");
        c.t.send_line(&STANDARD.encode([1u8])).unwrap();
        let r = c.finish(&tag).unwrap();
        assert!(
            r.status == "NO" && r.text.starts_with("[AUTHENTICATIONFAILED]"),
            "{r:?}"
        );
    }
    // A good token for someone else than the user named is refused too.
    let good = token(&key, "alice@example.com", "ringmail", 600);
    let mut s = server.smtp_tls();
    let reply = s.cmd(&format!("AUTH XOAUTH2 {}", xoauth2("bob", &good))).unwrap();
    assert_eq!(reply.code, 334, "{reply:?}");
    let reply = s.cmd("").unwrap();
    assert!(reply.code == 535 && reply.text.starts_with("5.7.8"), "{reply:?}");
    let mut p = server.pop3_tls();
    p.t.send_line(&format!("AUTH XOAUTH2 {}", xoauth2("alice", &bad[0])))
        .unwrap();
    assert!(p.t.read_line_string().unwrap().starts_with("+ "));
    p.t.send_line("").unwrap();
    let line = p.t.read_line_string().unwrap();
    assert!(line.starts_with("-ERR [AUTH]"), "{line}");
}

#[test]
fn the_issuers_keys_are_fetched_from_its_url() {
    let (key, jwks) = key_pair("k1");
    // The issuer's key endpoint, on loopback: answers every GET with the key set.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{jwks}",
                jwks.len()
            );
            let _ = stream.write_all(answer.as_bytes());
            let _ = stream.read(&mut [0; 1]);
        }
    });
    let server = server(format!("jwks_url = \"http://127.0.0.1:{port}/jwks.json\""));
    let good = token(&key, "alice@example.com", "ringmail", 600);
    let mut c = server.imap_tls();
    let r = c.cmd(&format!(
        "AUTHENTICATE OAUTHBEARER {}",
        bearer("alice@example.com", &good)
    ));
    assert!(r.unwrap().ok());
}

#[test]
fn without_oauth_the_token_mechanisms_are_not_offered() {
    let server = Server::start();
    server.add_user("alice");
    let mut c = server.imap_tls();
    let caps = c.cmd("CAPABILITY").unwrap().expect_ok().unwrap();
    assert!(!caps.lines()[0].contains("OAUTHBEARER"), "{caps:?}");
    let r = c
        .cmd(&format!("AUTHENTICATE OAUTHBEARER {}", bearer("alice", "x")))
        .unwrap();
    assert_eq!(r.status, "NO");
}

/// Through a front end: the proxy checks the token against the directory's account and
/// relays the session to the back end that holds the mailbox.
#[test]
fn a_token_logs_in_through_the_front_end() {
    use common::proxy::{backend, password_hash, Facing, Proxy};
    let (key, jwks) = key_pair("k1");
    let dir = tempfile::tempdir().unwrap();
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, &jwks).unwrap();
    let facing = Facing::new();
    let server = backend(facing);
    server.add_user("alice");
    server.deliver("alice", &common::message("hello"));
    let directory = format!(
        "[directory]\nusers = [{{ name = \"alice\", password_hash = \"{}\", mail_host = \"b1\" }}]\n\
         [oauth]\nissuer = \"{ISSUER}\"\naudience = [\"ringmail\"]\njwks_file = \"{}\"\nuser_claim = \"sub\"\n",
        password_hash(common::PASSWORD),
        jwks_path.display()
    );
    let proxy = Proxy::start_with(&directory, &[("b1", facing)]);
    let good = token(&key, "alice@example.com", "ringmail", 600);
    // The front end serves no listed domain: users are named by `sub`, not by an address.
    let mut c = proxy.imaps();
    let r = c.cmd(&format!("AUTHENTICATE OAUTHBEARER {}", bearer("alice", &good)));
    assert!(r.unwrap().ok());
    let r = c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    assert!(r.lines().iter().any(|l| l == "* 1 EXISTS"), "{r:?}");
    let mut c = proxy.imaps();
    let expired = token(&key, "alice@example.com", "ringmail", -600);
    let tag = c.tag();
    c.t.send_line(&format!("{tag} AUTHENTICATE XOAUTH2 {}", xoauth2("alice", &expired)))
        .unwrap();
    assert!(c.t.read_line_string().unwrap().starts_with("+ "));
    c.t.send_line("").unwrap();
    assert_eq!(c.finish(&tag).unwrap().status, "NO");
}
