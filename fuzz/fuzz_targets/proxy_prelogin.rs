//! A front end's pre-login path (`ringmail proxy`): IMAP, POP3 and submission sessions up to
//! login as the front end's core drives them, reads of any size, every login refused in one
//! of the ways a directory or a back end refuses it.
//!
//! Properties: nothing panics or hangs; everything said is whole CRLF-ended lines (IMAP
//! literals aside, which a front end never sends before login); a session that closes says
//! so last.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringmail::config::Config;
use ringmail::proxy::fuzzing::{pre_login, Protocol};

fuzz_target!(|data: &[u8]| {
    let [select, piece, failures, input @ ..] = data else {
        return;
    };
    let protocol = match select % 3 {
        0 => Protocol::Imap,
        1 => Protocol::Pop3,
        _ => Protocol::Submission,
    };
    let mut config = Config::default();
    // Both login types: before TLS, LOGIN/USER/AUTH are refused or allowed.
    if select & 4 != 0 {
        let plain = ringmail::config::LoginType::PlainTextLogin;
        config.imap.login_type = plain;
        config.pop3.login_type = plain;
        config.submission.login_type = plain;
    }
    let piece = usize::from(*piece).max(1);
    let (out, closed) = pre_login(&config, protocol, input, piece, *failures);
    assert!(
        out.ends_with(b"\r\n"),
        "{protocol:?}: output not ended by CRLF: {:?}",
        String::from_utf8_lossy(&out)
    );
    for line in out.split_inclusive(|b| *b == b'\n') {
        assert!(
            line.ends_with(b"\r\n"),
            "{protocol:?}: a line without CR: {:?}",
            String::from_utf8_lossy(line)
        );
    }
    if closed {
        let last = out[..out.len() - 2].rsplit(|b| *b == b'\n').next().unwrap_or_default();
        let last = String::from_utf8_lossy(last);
        let told = match protocol {
            Protocol::Imap => last.starts_with("* BYE") || last.contains(" OK ") || last.contains(" NO "),
            Protocol::Pop3 => last.starts_with("+OK") || last.starts_with("-ERR"),
            Protocol::Submission => last.starts_with("221") || last.starts_with("421") || last.starts_with("5"),
        };
        assert!(told, "{protocol:?}: closed after {last:?}");
    }
});
