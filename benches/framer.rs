//! Micro-benchmarks of reading commands off the wire: the line framing POP3, LMTP and
//! submission read through (`engine::Lines` over the driver's `net::Input`), the IMAP command
//! reader with its literals (`imap::reader`), and the LMTP/SMTP command parser
//! (`smtp::command`).
//!
//! Input arrives the way a connection delivers it: the input buffer is filled through the
//! spare capacity its `read_buffer` offers, and the IMAP reader is fed in fixed-size reads.
//!
//! Run: `cargo bench --bench framer`. Figures are relative: compare runs on the same machine.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringmail::engine::{Line, Lines};
use ringmail::imap::reader::{CommandReader, Limits, Read};
use ringmail::net::Input;
use ringmail::smtp::command;

/// LMTP's line limit (`serve::lmtp::MAX_COMMAND`); POP3's default is 512.
const MAX_LINE: usize = 2048;
/// A TLS record's worth of plaintext: how an APPEND's literal reaches the reader over TLS.
const TLS_RECORD: usize = 16 * 1024;
/// The driver's largest single read (`net::input`'s `MAX_READ`).
const READ_SIZE: usize = 64 * 1024;

/// `n` lines cycling through `lines`, each ended by CRLF.
fn pipeline(lines: &[&str], n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend_from_slice(lines[i % lines.len()].replace("{n}", &(i + 1).to_string()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Frames all of `input` as one burst on a fresh connection; returns the number of lines.
fn frame_all(input: &[u8]) -> usize {
    let (mut buffer, mut framing) = (Input::default(), Lines::new(MAX_LINE));
    let mut fed = 0;
    let mut lines = 0;
    loop {
        loop {
            let (used, line) = framing.next(buffer.pending());
            match line {
                Line::Whole(line) => {
                    black_box(line);
                    lines += 1;
                }
                Line::TooLong => unreachable!("no fixture line is over the limit"),
                Line::Partial => break,
            }
            buffer.consume(used);
        }
        if fed == input.len() {
            return lines;
        }
        // A read fills at most the spare capacity the buffer offers.
        let buf = buffer.read_buffer();
        let n = (buf.capacity() - buf.len()).min(input.len() - fed);
        buf.extend_from_slice(&input[fed..fed + n]);
        fed += n;
    }
}

fn framer(c: &mut Criterion) {
    let pop3 = pipeline(&["RETR {n}", "DELE {n}", "UIDL {n}", "LIST {n}", "TOP {n} 10"], 1000);
    let lmtp = pipeline(
        &[
            "MAIL FROM:<alice{n}@example.org> SIZE=4096 BODY=8BITMIME",
            "RCPT TO:<user{n}@example.org>",
            "RSET",
        ],
        1000,
    );
    let mut g = c.benchmark_group("framer");
    for (name, input) in [("pop3_1000_lines", &pop3), ("lmtp_1000_lines", &lmtp)] {
        assert_eq!(frame_all(input), 1000);
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function(name, |b| b.iter(|| frame_all(black_box(input))));
    }
    g.finish();
}

/// Feeds `input` to a fresh reader in reads of `read` bytes; returns the number of commands.
fn read_all(input: &[u8], read: usize) -> usize {
    let mut reader = CommandReader::new(Limits::default());
    let mut commands = 0;
    for chunk in input.chunks(read) {
        let mut pos = 0;
        loop {
            let (used, outcome) = reader.feed(&chunk[pos..]);
            pos += used;
            match outcome {
                // `NeedMore` has taken the whole chunk.
                Read::NeedMore => break,
                Read::Continue => {}
                Read::Command(command) => {
                    black_box(command);
                    commands += 1;
                }
                Read::Error { .. } => unreachable!("every fixture command is within the limits"),
            }
        }
    }
    commands
}

/// A ~100 KiB message as an APPEND sends it: 76-column lines.
fn append_command(size: usize) -> Vec<u8> {
    let mut message = b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: append\r\n\r\n".to_vec();
    while message.len() < size {
        message.extend_from_slice(b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod te\r\n");
    }
    let mut command = format!("A1 APPEND INBOX (\\Seen) {{{}}}\r\n", message.len()).into_bytes();
    command.extend_from_slice(&message);
    command.extend_from_slice(b"\r\n");
    command
}

fn imap_reader(c: &mut Criterion) {
    let append = append_command(100 * 1024);
    let short = pipeline(
        &[
            "a{n} UID FETCH {n} (FLAGS)",
            "a{n} UID STORE {n} +FLAGS.SILENT (\\Seen)",
            "a{n} NOOP",
            "a{n} STATUS {5+}\r\nINBOX (MESSAGES UIDNEXT)",
        ],
        1000,
    );
    let mut g = c.benchmark_group("imap_reader");
    let cases = [
        ("append_100k_literal", &append, TLS_RECORD, 1),
        ("pipeline_1000_commands", &short, READ_SIZE, 1000),
    ];
    for (name, input, read, commands) in cases {
        assert_eq!(read_all(input, read), commands);
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function(name, |b| b.iter(|| read_all(black_box(input), read)));
    }
    g.finish();
}

fn smtp_parse(c: &mut Criterion) {
    // One LMTP transaction to three recipients (RFC 2033 §4.2), then the next one's reset.
    let lines: [&[u8]; 8] = [
        b"LHLO client.example.org",
        b"MAIL FROM:<alice@example.org> SIZE=4096 BODY=8BITMIME",
        b"RCPT TO:<bob@example.org>",
        b"RCPT TO:<carol@example.org> NOTIFY=FAILURE",
        b"RCPT TO:<dave@example.org>",
        b"DATA",
        b"RSET",
        b"QUIT",
    ];
    for line in lines {
        assert!(command::parse(line).is_ok(), "{}", String::from_utf8_lossy(line));
    }
    let mut g = c.benchmark_group("smtp_parse");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("lmtp_transaction", |b| {
        b.iter(|| {
            for line in lines {
                black_box(command::parse(black_box(line)).ok());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, framer, imap_reader, smtp_parse);
criterion_main!(benches);
