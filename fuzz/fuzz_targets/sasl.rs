//! SASL (`auth::sasl`, `auth::scram`): the base64 line codec, PLAIN and LOGIN decoding, whole
//! exchanges of every mechanism driven by arbitrary response lines (OAUTHBEARER's and
//! XOAUTH2's token messages, and a refused token's error challenge, among them), SCRAM-SHA-256's
//! client-first and client-final parsing, SASLprep and the RFC 5803 form of stored keys.
//!
//! The first byte picks the part; the rest is split into lines at LF.
//!
//! Properties: nothing panics; a response line that decodes re-encodes to itself; an exchange
//! that has ended stays ended; what PLAIN and LOGIN hand over are the fields the client sent
//! (non-empty, at most 255 bytes, no NUL, UTF-8); for every client-first message the server
//! accepts, a correct client proof authenticates (with the server signature RFC 5802 gives) and
//! a wrong one fails; the load harness's SCRAM client and the server agree for every user name
//! and password; SASLprep is idempotent; RFC 5803 keys round-trip.

#![no_main]

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use ring::{digest, hmac, pbkdf2};
use ringmail::auth::sasl::{self, Mechanism, Response, SaslError, SaslExchange, SaslStep, MAX_FIELD_LEN};
use ringmail::auth::scram::{saslprep, ScramCredentials, ScramError, ScramKeys, ScramServer};
use ringmail_fuzz::{Choices, MemStore, PASSWORD};

const SERVER_NONCE: &str = "3rfcNHYJY1ZVvWVs7j";

fuzz_target!(|data: &[u8]| {
    let mut choices = Choices::new(data);
    let part = choices.byte();
    let rest = choices.rest();
    match part % 7 {
        0 => codec(rest),
        1 => exchange(part, rest),
        2 => plain(rest),
        3 => scram(rest),
        4 => prep(rest),
        5 => rfc5803(rest),
        _ => interop(rest),
    }
});

fn codec(line: &[u8]) {
    match sasl::decode_response(line) {
        Ok(Response::Cancel) => assert_eq!(line, b"*"),
        Ok(Response::Data(data)) if line != b"=" => {
            assert_eq!(
                sasl::encode_challenge(&data).as_bytes(),
                line,
                "base64 is not canonical"
            )
        }
        _ => {}
    }
    if let Some(m) = Mechanism::parse(line, true) {
        assert!(m.name().as_bytes().eq_ignore_ascii_case(line));
    }
}

/// A field handed to the caller: RFC 4616 §2's rules, which LOGIN borrows.
fn check_field(field: &str) {
    assert!(
        !field.is_empty() && field.len() <= MAX_FIELD_LEN && !field.contains('\0'),
        "{field:?}"
    );
}

fn is_over(step: &SaslStep) -> bool {
    !matches!(step, SaslStep::Challenge(_) | SaslStep::NeedCredentials { .. })
}

/// A whole exchange: the mechanism and initial response from the first line, then a response
/// per line; SCRAM's keys are bob's, or none.
fn exchange(part: u8, input: &[u8]) {
    let mut lines = input.split(|&b| b == b'\n');
    let mechanism = Mechanism::ALL[usize::from(part / 7) % Mechanism::ALL.len()];
    let known = part & 0x80 != 0;
    let first = lines.next().unwrap_or_default();
    let initial = (!first.is_empty()).then(|| String::from_utf8_lossy(first).into_owned());
    let Ok((mut exchange, mut step)) = sasl::begin(mechanism, initial.as_deref()) else {
        return;
    };
    assert_eq!(exchange.mechanism(), mechanism);
    let mut over = false;
    loop {
        if over {
            // Once over, always over.
            for line in lines.by_ref().take(2) {
                assert!(matches!(sasl::respond_line(&mut exchange, line), SaslStep::Failed(_)));
            }
            assert!(matches!(exchange.credentials(None), SaslStep::Failed(_)));
            return;
        }
        match &step {
            SaslStep::VerifyPassword {
                authzid,
                authcid,
                password,
            } => {
                assert!(mechanism.sends_password());
                check_field(authcid);
                check_field(password);
                if let Some(a) = authzid {
                    check_field(a);
                }
            }
            SaslStep::Authenticated { authcid, .. } => {
                assert_eq!(mechanism, Mechanism::ScramSha256);
                assert!(known, "SCRAM authenticated {authcid:?} without keys");
            }
            SaslStep::NeedCredentials { .. } => {
                step = exchange.credentials(known.then(MemStore::scram).as_ref());
                continue;
            }
            SaslStep::VerifyToken { authzid, token } => {
                assert!(mechanism.takes_token());
                let token_ok = token.bytes().all(|b| b.is_ascii_graphic());
                assert!(
                    !token.is_empty() && token.len() <= sasl::MAX_TOKEN_LEN && token_ok,
                    "{token:?}"
                );
                if let Some(a) = authzid {
                    check_field(a);
                }
                if !known {
                    // Refused: the error challenge, then whatever the client says fails it.
                    step = exchange.token_refused();
                    assert!(matches!(step, SaslStep::Challenge(_)), "{step:?}");
                    let Some(line) = lines.next() else { return };
                    let end = sasl::respond_line(&mut exchange, line);
                    assert!(matches!(end, SaslStep::Failed(_)), "{end:?}");
                    over = true;
                    continue;
                }
            }
            _ => {}
        }
        over = is_over(&step);
        if over {
            continue;
        }
        let Some(line) = lines.next() else { return };
        let undecodable = sasl::decode_response(line).is_err();
        step = sasl::respond_line(&mut exchange, line);
        if undecodable {
            // Bad base64 fails the exchange for good.
            assert!(matches!(step, SaslStep::Failed(SaslError::Malformed(_))), "{step:?}");
            let after = exchange.respond(sasl::Response::Data(b"x".to_vec()));
            assert!(matches!(after, SaslStep::Failed(_)), "{after:?}");
            return;
        }
    }
}

/// PLAIN of the three NUL-separated fields of the input: exactly those come back, or the
/// message is refused for a reason the fields show.
fn plain(message: &[u8]) {
    let initial = B64.encode(message);
    let Ok((_, step)) = sasl::begin(Mechanism::Plain, Some(&initial)) else {
        panic!("valid base64 refused");
    };
    let parts: Vec<&[u8]> = message.split(|&b| b == 0).collect();
    let valid = |f: &[u8]| !f.is_empty() && f.len() <= MAX_FIELD_LEN && std::str::from_utf8(f).is_ok();
    let acceptable = parts.len() == 3 && valid(parts[1]) && valid(parts[2]) && (parts[0].is_empty() || valid(parts[0]));
    match step {
        SaslStep::VerifyPassword {
            authzid,
            authcid,
            password,
        } => {
            assert!(acceptable, "{message:?}");
            assert_eq!(
                authzid.as_deref().map(str::as_bytes),
                (!parts[0].is_empty()).then_some(parts[0])
            );
            assert_eq!(authcid.as_bytes(), parts[1]);
            assert_eq!(password.as_bytes(), parts[2]);
        }
        SaslStep::Failed(SaslError::Malformed(_)) => assert!(!acceptable, "{message:?} refused"),
        other => panic!("PLAIN answered {other:?}"),
    }
    // LOGIN: the same bytes as username, then as password.
    let (mut login, _) = SaslExchange::start(Mechanism::Login, None);
    let step = login.respond(Response::Data(message.to_vec()));
    if valid(message) && !message.contains(&0) {
        assert!(matches!(step, SaslStep::Challenge(_)), "{step:?}");
        match login.respond(Response::Data(message.to_vec())) {
            SaslStep::VerifyPassword { authcid, password, .. } => {
                assert_eq!(authcid.as_bytes(), message);
                assert_eq!(password.as_bytes(), message);
            }
            other => panic!("LOGIN answered {other:?}"),
        }
    } else {
        assert!(matches!(step, SaslStep::Failed(_)), "{step:?}");
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    tag.as_ref().try_into().expect("32 bytes")
}

/// RFC 5802 §3 from the client's side: the proof for `auth_message`, and the server signature
/// to expect.
fn client_proof(password: &str, salt: &[u8], iterations: u32, auth_message: &str) -> ([u8; 32], [u8; 32]) {
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(iterations).expect("nonzero"),
        salt,
        password.as_bytes(),
        &mut salted,
    );
    let client_key = hmac_sha256(&salted, b"Client Key");
    let stored_key: [u8; 32] = digest::digest(&digest::SHA256, &client_key)
        .as_ref()
        .try_into()
        .expect("32 bytes");
    let signature = hmac_sha256(&stored_key, auth_message.as_bytes());
    let mut proof = client_key;
    proof.iter_mut().zip(signature).for_each(|(p, s)| *p ^= s);
    let server_key = hmac_sha256(&salted, b"Server Key");
    (proof, hmac_sha256(&server_key, auth_message.as_bytes()))
}

/// The first line is a client-first message, the second a client-final one.
fn scram(input: &[u8]) {
    let (first, last) = match input.iter().position(|&b| b == b'\n') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &b""[..]),
    };
    let Ok((mut server, authcid)) = ScramServer::start(first) else {
        return;
    };
    assert_eq!(server.authcid(), authcid);
    check_field(&authcid);
    let first = std::str::from_utf8(first).expect("accepted client-first is UTF-8");
    let creds = MemStore::scram();

    // The fuzzer's client-final against keys that exist.
    let (mut fuzzed, _) = ScramServer::start(first.as_bytes()).expect("accepted once, accepted again");
    fuzzed.server_first(Some(&creds), SERVER_NONCE).expect("server-first");
    match fuzzed.client_final(last) {
        Ok(_) => {
            // Only the right proof passes; it could not have been guessed.
            let text = std::str::from_utf8(last).expect("UTF-8");
            assert!(text.contains(",p="), "{text:?}");
        }
        Err(ScramError::Malformed(_) | ScramError::AuthFailed) => {}
        Err(e) => panic!("client-final answered {e:?}"),
    }
    assert!(
        matches!(fuzzed.client_final(last), Err(ScramError::OutOfOrder)),
        "a second client-final"
    );

    // A correct client, with the keys the server holds.
    let server_first = server.server_first(Some(&creds), SERVER_NONCE).expect("server-first");
    let server_first = String::from_utf8(server_first).expect("server-first is UTF-8");
    let field = |k: &str| {
        server_first
            .split(',')
            .find_map(|f| f.strip_prefix(k))
            .expect("server-first field")
    };
    let nonce = field("r=");
    assert!(nonce.ends_with(SERVER_NONCE));
    let salt = B64.decode(field("s=")).expect("salt in base64");
    let iterations: u32 = field("i=").parse().expect("iteration count");
    assert_eq!((salt.as_slice(), iterations), (creds.salt.as_slice(), creds.iterations));
    // gs2-header: up to the second comma; client-first-message-bare: the rest.
    let gs2_end = first.match_indices(',').nth(1).expect("gs2 header").0 + 1;
    let (gs2, bare) = first.split_at(gs2_end);
    let without_proof = format!("c={},r={nonce}", B64.encode(gs2));
    let auth_message = format!("{bare},{server_first},{without_proof}");
    let (proof, server_signature) = client_proof(PASSWORD, &salt, iterations, &auth_message);
    let good = format!("{without_proof},p={}", B64.encode(proof));
    match server.client_final(good.as_bytes()) {
        Ok(server_final) => assert_eq!(server_final, format!("v={}", B64.encode(server_signature)).into_bytes()),
        Err(e) => panic!("a correct proof for {first:?} was refused: {e:?}"),
    }

    // The same proof one bit off fails.
    let (mut server, _) = ScramServer::start(first.as_bytes()).expect("accepted again");
    server.server_first(Some(&creds), SERVER_NONCE).expect("server-first");
    let mut bad = proof;
    bad[usize::from(last.first().copied().unwrap_or(0)) % 32] ^= 1 << (last.len() % 8);
    let bad = format!("{without_proof},p={}", B64.encode(bad));
    assert!(matches!(
        server.client_final(bad.as_bytes()),
        Err(ScramError::AuthFailed)
    ));

    // An unknown user fails at the proof, never before.
    let (mut server, _) = ScramServer::start(first.as_bytes()).expect("accepted again");
    let server_first = server.server_first(None, SERVER_NONCE).expect("plausible server-first");
    assert!(server_first.starts_with(format!("r={nonce},s=").as_bytes()));
    assert!(matches!(
        server.client_final(good.as_bytes()),
        Err(ScramError::AuthFailed | ScramError::Malformed(_))
    ));
}

fn prep(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    if let Ok(prepped) = saslprep(&text) {
        assert!(!prepped.is_empty());
        assert_eq!(
            saslprep(&prepped).as_deref(),
            Ok(prepped.as_str()),
            "SASLprep is not idempotent"
        );
    }
}

fn rfc5803(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    if let Ok(creds) = ScramCredentials::from_rfc5803(&text) {
        let again = ScramCredentials::from_rfc5803(&creds.to_rfc5803()).expect("our own form parses");
        assert_eq!(again, creds);
    }
}

/// The load harness's SCRAM client against the server: the user name and password of the
/// input (split at the first NUL) authenticate, and the client accepts the server's signature.
fn interop(input: &[u8]) {
    let (user, password) = match input.iter().position(|&b| b == 0) {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &b"secret"[..]),
    };
    let (Ok(user), Ok(password)) = (std::str::from_utf8(user), std::str::from_utf8(password)) else {
        return;
    };
    // SASLprep leaves printable ASCII alone, so both sides derive from the same bytes.
    let printable = |s: &str| !s.is_empty() && s.bytes().all(|b| (0x20..0x7f).contains(&b));
    if !printable(password) || user.is_empty() || user.len() > MAX_FIELD_LEN || user.contains('\0') {
        return;
    }
    let creds = ScramCredentials::derive(password, b"interop salt", 1).expect("valid parameters");
    let mut client = loadtest::client::scram::ScramClient::new(user, password);
    let (mut server, authcid) = match ScramServer::start(client.client_first().as_bytes()) {
        Ok(started) => started,
        Err(e) => panic!("the server refuses the client-first of {user:?}: {e:?}"),
    };
    assert_eq!(authcid, user);
    let server_first = server.server_first(Some(&creds), SERVER_NONCE).expect("server-first");
    let client_final = client
        .client_final(&server_first)
        .expect("the client takes server-first");
    let server_final = match server.client_final(client_final.as_bytes()) {
        Ok(v) => v,
        Err(e) => panic!("the server refuses the proof of {user:?}: {e:?}"),
    };
    client
        .verify_server_final(&server_final)
        .expect("the client accepts the server's signature");
}
