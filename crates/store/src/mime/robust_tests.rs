//! Robustness tests for `analyze`: rejection rules, the stored form, and that no input panics or
//! yields an offset outside the message (every prefix of every fixture, generated garbage,
//! hostile nesting depth and part counts, every charset decoder fed junk). Owns no production code.

use super::tests::{analyzed, check_invariants, check_offsets, fixtures, SECTIONS};
use super::*;

#[test]
fn rejections() {
    let cases: &[(&[u8], IngestError)] = &[
        (b"", IngestError::Empty),
        (b"Subject: x\r\n\r\nnul \0 here", IngestError::Nul),
        (b"Subject: x\r\n", IngestError::NoSeparator),
        (b"Subject: x", IngestError::NoSeparator),
        (b"Subject: x\n\nbody", IngestError::NoSeparator),
    ];
    for (input, want) in cases {
        assert_eq!(analyze(input).as_ref().err(), Some(want), "{input:?}");
    }
    // The same LF-only message is fine once normalized.
    let norm = normalize_line_endings(b"Subject: x\n\nbody\n");
    let s = analyze(&norm).unwrap();
    assert_eq!((s.header_len, s.body_lines, s.size), (14, 1, 20));
    assert!(analyze(b"\r\n").is_ok());
    assert!(analyze(b"Subject: x\r\n\r\n").is_ok());
}

#[test]
fn dot_lines() {
    assert!(analyze(b".Subject: x\r\n\r\n").unwrap().has_dot_line);
    assert!(analyze(b"Subject: x\r\n\r\nok\r\n.\r\n").unwrap().has_dot_line);
    assert!(!analyze(b"Subject: x.y\r\n\r\nok. fine\r\n").unwrap().has_dot_line);
}

#[test]
fn stored_form() {
    let s = analyzed(SECTIONS);
    let bytes = s.to_bytes();
    assert_eq!(Structure::from_bytes(&bytes).unwrap(), s);
    assert!(matches!(Structure::from_bytes(b"{"), Err(DecodeError::Format(_))));
    let mut bad = s.clone();
    bad.parts[3].body_end = 5000;
    assert!(matches!(
        Structure::from_bytes(&bad.to_bytes()),
        Err(DecodeError::Inconsistent)
    ));
    let mut bad = s;
    bad.parts.clear();
    assert!(matches!(
        Structure::from_bytes(&bad.to_bytes()),
        Err(DecodeError::Inconsistent)
    ));
}

#[test]
fn every_prefix_of_every_fixture() {
    for (name, msg) in fixtures() {
        let msg = msg.as_bytes();
        check_invariants(msg, &analyze(msg).unwrap_or_else(|e| panic!("{name}: {e}")));
        for len in 0..=msg.len() {
            if let Ok(s) = analyze(&msg[..len]) {
                check_offsets(&msg[..len], &s);
                if len % 16 == 0 {
                    check_invariants(&msg[..len], &s);
                }
            }
        }
    }
}

/// Deterministic xorshift, so failures reproduce.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0 as usize
    }

    fn pick<'a>(&mut self, from: &[&'a [u8]]) -> &'a [u8] {
        from[self.next() % from.len()]
    }
}

/// Messages assembled from MIME-shaped fragments and junk bytes, so that generated input reaches
/// the header, address, parameter, boundary and decoding code rather than being rejected early.
#[test]
fn garbage_never_panics() {
    let fragments: &[&[u8]] = &[
        b"\r\n",
        b"\r\n\r\n",
        b"\r\n--B",
        b"\r\n--B--",
        b"\r\n--C\r\n",
        b"Subject: =?utf-8?b?w7w=?= =?x?q?=FF?=",
        b"From: \"a\\\"b\" <x@y>, (c) g: ;",
        b"To: <@r:a@b>, \xc3\xbc@\xff, :;<>",
        b"Date: Mon, 32 Foo 99999 25:61:61 +9999",
        b"Message-ID: <a@b> <c",
        b"References: <",
        b"Content-Type: multipart/mixed; boundary=B",
        b"Content-Type: multipart/digest; boundary=\"C\"",
        b"Content-Type: message/rfc822",
        b"Content-Type: text/plain; charset=utf-16",
        b"Content-Type: text/html; charset=iso-2022-jp",
        b"Content-Type: text/plain; charset=utf-7",
        b"Content-Transfer-Encoding: base64",
        b"Content-Transfer-Encoding: quoted-printable",
        b"Content-Disposition: attachment; filename*0*=x",
        b"Content-Language: (",
        b" folded",
        b"=\r\n=ZZ=4",
        b"<style>&#x110000;&#99999999999;<!--",
        b"QUJD=\r\n!!",
        b"\x80\xc3\xff\xfe",
        b";=\"()<>@,.-\t:",
    ];
    let mut rng = Rng(0x9e37_79b9);
    for round in 0..3_000 {
        let mut msg = Vec::new();
        for _ in 0..(round % 40) {
            msg.extend_from_slice(rng.pick(fragments));
        }
        if let Ok(s) = analyze(&msg) {
            check_invariants(&msg, &s);
        }
    }
}

#[test]
fn decoders_survive_junk() {
    let charsets: &[&[u8]] = &[
        b"utf-8",
        b"utf-16",
        b"utf-16le",
        b"utf-16be",
        b"utf-7",
        b"iso-8859-1",
        b"windows-1252",
        b"koi8-r",
        b"shift_jis",
        b"euc-jp",
        b"iso-2022-jp",
        b"gb2312",
        b"gbk",
        b"big5",
        b"euc-kr",
        b"bogus",
    ];
    let encodings: &[&[u8]] = &[b"7bit", b"base64", b"quoted-printable"];
    let mut rng = Rng(0x0bad_cafe);
    for round in 0..600 {
        let mut msg = Vec::new();
        msg.extend_from_slice(b"Content-Type: text/");
        msg.extend_from_slice(if round % 3 == 0 { b"html" } else { b"plain" });
        msg.extend_from_slice(b"; charset=");
        msg.extend_from_slice(rng.pick(charsets));
        msg.extend_from_slice(b"\r\nContent-Transfer-Encoding: ");
        msg.extend_from_slice(rng.pick(encodings));
        msg.extend_from_slice(b"\r\n\r\n");
        for _ in 0..(round % 97) {
            let b = (rng.next() % 255 + 1) as u8;
            msg.push(b);
        }
        let s = analyze(&msg).unwrap();
        assert!(s.preview.chars().count() <= meta::PREVIEW_CHARS);
        check_invariants(&msg, &s);
    }
}

#[test]
fn deep_nesting_is_bounded() {
    let depth = 5_000;
    let mut msg = String::new();
    for i in 0..depth {
        msg.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
        ));
    }
    msg.push_str("\r\ncore\r\n");
    let s = analyze(msg.as_bytes()).unwrap();
    assert!(s.parts.iter().all(|p| p.path.len() <= structure::MAX_DEPTH + 1));
    check_invariants(msg.as_bytes(), &s);

    let mut msg = String::new();
    for _ in 0..depth {
        msg.push_str("Content-Type: message/rfc822\r\n\r\n");
    }
    msg.push_str("\r\ncore\r\n");
    let s = analyze(msg.as_bytes()).unwrap();
    assert!(s.parts.iter().all(|p| p.path.len() <= structure::MAX_DEPTH + 1));
    check_invariants(msg.as_bytes(), &s);
}

#[test]
fn part_flood_is_capped() {
    let mut msg = String::from("Content-Type: multipart/mixed; boundary=f\r\n\r\n");
    for _ in 0..(structure::MAX_PARTS + 500) {
        msg.push_str("--f\r\n\r\nx\r\n");
    }
    msg.push_str("--f--\r\n");
    let s = analyze(msg.as_bytes()).unwrap();
    assert!(s.parts.len() <= structure::MAX_PARTS + 1);
    check_invariants(msg.as_bytes(), &s);
}

#[test]
fn configured_limits_apply_to_every_entity() {
    let limits = Limits {
        max_depth: 2,
        max_parts: 3,
        max_header_fields: 4,
        max_header_line: 60,
    };
    // Parts and depth: kept, but not split out past the limits.
    let mut msg = String::from("Content-Type: multipart/mixed; boundary=f\r\n\r\n");
    for _ in 0..10 {
        msg.push_str("--f\r\n\r\nx\r\n");
    }
    msg.push_str("--f--\r\n");
    let s = analyze_with(msg.as_bytes(), &limits).unwrap();
    assert!(s.parts.len() <= 4, "{}", s.parts.len());
    // Header fields, counted in a nested part's header too; folded lines are one field.
    let folded = "A: 1\r\n 2\r\n\t3\r\nB: 1\r\nC: 1\r\nD: 1\r\n\r\nbody\r\n";
    assert!(analyze_with(folded.as_bytes(), &limits).is_ok());
    let many = "A: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n\r\nbody\r\n";
    assert!(matches!(
        analyze_with(many.as_bytes(), &limits),
        Err(IngestError::TooManyHeaderFields(4))
    ));
    let nested = "Content-Type: multipart/mixed; boundary=f\r\n\r\n--f\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n\r\nx\r\n--f--\r\n";
    assert!(matches!(
        analyze_with(nested.as_bytes(), &limits),
        Err(IngestError::TooManyHeaderFields(4))
    ));
    // Header lines; a long body line is not a header line.
    let long = format!("Subject: {}\r\n\r\nbody\r\n", "x".repeat(60));
    assert!(matches!(
        analyze_with(long.as_bytes(), &limits),
        Err(IngestError::HeaderLineTooLong(60))
    ));
    let long_body = format!("Subject: s\r\n\r\n{}\r\n", "x".repeat(1000));
    assert!(analyze_with(long_body.as_bytes(), &limits).is_ok());
}
