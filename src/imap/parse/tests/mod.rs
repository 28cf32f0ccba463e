//! Table-driven tests of `parse_command`: one row per command form and per error, plus
//! bounds on nesting and a no-panic sweep.

mod extensions;
mod invalid;
mod valid;

use super::*;

/// Each row of a table of commands the parser must refuse, with the tag and message of its
/// `BAD`.
pub(super) fn assert_refused(rows: &[(&[u8], Option<&str>, &str)]) {
    for &(raw, tag, message) in rows {
        let shown = String::from_utf8_lossy(raw);
        let expected = ParseError {
            tag: tag.map(str::to_owned),
            message: message.to_owned(),
        };
        assert_eq!(parse_command(raw).map(|(_, c)| c), Err(expected), "{shown}");
    }
}

/// No input makes the parser panic: every prefix of every table row, and every row with each
/// byte flipped to a few troublesome values.
#[test]
fn no_panic_on_prefixes_and_mutations() {
    let mut corpus: Vec<Vec<u8>> = valid::valid().into_iter().map(|(raw, _)| raw.to_vec()).collect();
    corpus.extend(invalid::INVALID.iter().map(|(raw, _, _)| raw.to_vec()));
    corpus.extend(extensions::valid().into_iter().map(|(raw, _)| raw.to_vec()));
    corpus.extend(extensions::INVALID.iter().map(|(raw, _, _)| raw.to_vec()));
    corpus.extend(super::differential::corpus());
    for raw in &corpus {
        for end in 0..=raw.len() {
            let _ = parse_command(&raw[..end]);
        }
        for i in 0..raw.len() {
            for b in [0u8, b' ', b'(', b')', b'{', b'"', b'\\', b'*', b'9', 0xff] {
                let mut mutated = raw.clone();
                mutated[i] = b;
                let _ = parse_command(&mutated);
            }
        }
    }
}

/// The reader's output is what the parser takes: a pipelined stream, cut byte by byte, gives
/// the commands sent.
#[test]
fn reader_output_parses() {
    use crate::imap::reader::{CommandReader, Limits, Read};
    use crate::imap::types::Command;
    let stream: &[u8] = b"1 LOGIN {3}\r\nbob {2+}\r\npw\r\n\
        2 APPEND INBOX (\\Seen) ~{3}\r\n\0\r\n {1+}\n!\r\n\
        3 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS ({4+}\r\nDate)])\n";
    let mut reader = CommandReader::new(Limits::default());
    let mut commands = Vec::new();
    let mut continuations = 0;
    let mut pending = Vec::new();
    for byte in stream {
        pending.push(*byte);
        loop {
            let (consumed, read) = reader.feed(&pending);
            pending.drain(..consumed);
            match read {
                Read::NeedMore => break,
                Read::Continue => continuations += 1,
                Read::Command(raw) => commands.push(parse_command(&raw).expect("valid command")),
                Read::Error { kind, .. } => panic!("{kind}"),
            }
        }
    }
    assert_eq!(continuations, 2);
    let tags: Vec<&str> = commands.iter().map(|(tag, _)| tag.as_str()).collect();
    assert_eq!(tags, ["1", "2", "3"]);
    assert!(matches!(&commands[0].1, Command::Login { password, .. } if password == "pw"));
    assert!(matches!(&commands[1].1, Command::Append { messages, .. }
        if messages.len() == 2 && messages[0].binary && messages[0].message == b"\0\r\n"));
    assert!(matches!(&commands[2].1, Command::Fetch { uid: true, attrs, .. } if attrs.len() == 2));
}

/// An APPEND given away is moved out of the command buffer, never copied: a large upload is
/// in memory once (issue 3: APPEND literals streamed without holding the message twice).
#[test]
fn owned_append_moves_the_message() {
    let message = vec![b'x'; 100_000];
    let raw = [
        format!("a1 APPEND INBOX (\\Seen) {{{}}}\r\n", message.len()).as_bytes(),
        &message,
    ]
    .concat();
    let buffer = raw.as_ptr();
    let (tag, command) = super::parse_command_owned(raw).unwrap();
    assert_eq!(tag, "a1");
    let Command::Append { messages, .. } = command else {
        panic!("not an APPEND")
    };
    assert_eq!(messages[0].message, message);
    assert_eq!(
        messages[0].message.as_ptr(),
        buffer,
        "the command's own buffer, not a copy"
    );
    assert_eq!(messages[0].span, None);
    // MULTIAPPEND and every other command parse exactly as the borrowing parser does.
    for (raw, expected) in valid::valid() {
        let (_, owned) = super::parse_command_owned(raw.to_vec()).unwrap();
        assert_eq!(owned, expected, "{}", String::from_utf8_lossy(raw));
    }
}
