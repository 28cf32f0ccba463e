//! The load harness's readers of server output (`loadtest`): the IMAP response parser
//! (`response::parse_untagged`, `response::response_code`, `response::uid_set`), the literal
//! marker reader of its IMAP client, and the POP3 multi-line scanner, which ringmail's
//! integration tests and the `mixed` scenario's model checks rely on.
//!
//! The first byte picks the part.
//!
//! Properties: nothing panics, however deep or long the input; what `uid_set` reads, ringmail's
//! set writer writes back to a set it reads the same; the multi-line scanner reads back exactly
//! what ringmail's RETR encoder wrote, however the bytes are split, and stops at its end.

#![no_main]

use libfuzzer_sys::fuzz_target;
use loadtest::client::imap::literal_len;
use loadtest::multiline::MultilineScanner;
use loadtest::response::{parse_untagged, response_code, uid_set, Untagged};
use ringmail::pop3::RetrEncoder;
use ringmail_fuzz::Choices;

fuzz_target!(|data: &[u8]| {
    let mut choices = Choices::new(data);
    let part = choices.byte();
    match part % 4 {
        0 => responses(choices.rest()),
        1 => sets(choices.rest()),
        2 => multiline(part, &mut choices),
        _ => {
            let line = choices.rest();
            if let Some(n) = literal_len(line) {
                assert!(line.ends_with(b"}"), "a literal marker without its brace");
                let _ = n;
            }
        }
    }
});

fn responses(input: &[u8]) {
    let with_star = [b"* ", input].concat();
    for line in [input, &with_star[..]] {
        if let Ok(Untagged::Fetch(fetch)) = parse_untagged(line) {
            // A FETCH starts with its number.
            let digits: Vec<u8> = line[2..].iter().copied().take_while(u8::is_ascii_digit).collect();
            let number: Option<u32> = std::str::from_utf8(&digits).ok().and_then(|d| d.parse().ok());
            assert_eq!(number, Some(fetch.seq));
        }
    }
    let _ = response_code(input);
}

fn sets(text: &[u8]) {
    let Some(uids) = uid_set(text) else { return };
    assert!(
        uids.windows(2).all(|w| w[0] < w[1]),
        "uid_set is not ascending and distinct"
    );
    let mut written = Vec::new();
    ringmail::imap::search::sequence_set(&uids, &mut written);
    if uids.is_empty() {
        return;
    }
    assert_eq!(
        uid_set(&written).as_deref(),
        Some(&uids[..]),
        "{:?} written back as {:?}",
        String::from_utf8_lossy(text),
        String::from_utf8_lossy(&written)
    );
}

/// RETR as ringmail renders it, read back with the harness's scanner in pieces.
fn multiline(part: u8, choices: &mut Choices<'_>) {
    let mut sizes: Vec<usize> = choices.take(3).iter().map(|&b| usize::from(b) + 1).collect();
    if sizes.is_empty() {
        sizes.push(usize::MAX);
    }
    let message = choices.rest();
    let mut wire = Vec::new();
    let mut encoder = if part & 0x80 != 0 {
        RetrEncoder::top(u32::from(part & 0x7f) / 4)
    } else {
        RetrEncoder::whole()
    };
    encoder.encode(message, &mut wire);
    encoder.finish(&mut wire);
    let rendered = wire.len();
    wire.extend_from_slice(b"+OK next\r\n");

    let mut scanner = MultilineScanner::new();
    let mut payload = Vec::new();
    let mut offset = 0;
    let mut i = 0;
    let used = loop {
        assert!(offset < wire.len(), "the scanner missed the terminating line");
        let n = sizes[i % sizes.len()].min(wire.len() - offset);
        i += 1;
        if let Some(used) = scanner.feed(&wire[offset..offset + n], &mut |p| payload.extend_from_slice(p)) {
            break offset + used;
        }
        offset += n;
    };
    assert_eq!(
        used, rendered,
        "the scanner stopped somewhere other than the terminating line"
    );
    if part & 0x80 == 0 {
        let mut expected = message.to_vec();
        if !message.is_empty() && !message.ends_with(b"\n") {
            expected.extend_from_slice(b"\r\n");
        }
        assert_eq!(payload, expected, "RETR reads back differently");
    } else {
        assert!(
            [message, b"\r\n"].concat().starts_with(&payload),
            "TOP reads back as no prefix of the message"
        );
    }
}
