//! Delivery's one MIME parse (`mime::ingest`, `mime::ingest_binary`) on arbitrary message
//! bytes, then everything the server serves from the stored structure: FETCH of ENVELOPE, BODY,
//! BODYSTRUCTURE, PREVIEW and every section of every part (BODY[n], n.MIME, n.HEADER, n.TEXT,
//! HEADER.FIELDS, partial), BINARY and BINARY.SIZE, rendered by `imap::command::fetch::render`.
//!
//! The first byte: bit 0 ingests as BINARY (RFC 3516 literal8); bits 1-3 turn on IMAP4rev2,
//! UTF8=ACCEPT and CONDSTORE for the rendering. The rest is the message.
//!
//! Properties: nothing panics; ingest is idempotent (the stored bytes are canonical and analyze
//! to the same structure); the stored structure round-trips through its serialized form and its
//! offsets lie inside the message; every section range lies inside the message; the FETCH
//! request the server's own grammar accepts renders to one well-framed, syntactically valid
//! response (RFC 9051 §9), whose items the load harness's IMAP parser reads, ENVELOPE with its
//! 10 fields.

#![no_main]

use libfuzzer_sys::fuzz_target;
use loadtest::response::{parse_untagged, Untagged};
use ringmail::imap::command::fetch::render::{needs_structure, render, FetchOptions, MessageMeta};
use ringmail::imap::types::{Command, FetchAttr};
use ringmail::mime::{Section, Structure};
use ringmail::store::MessageRecord;
use ringmail_fuzz::{check_fetch_or_status, imap_responses, Choices};

/// Parts whose sections are fetched, at most (a message may have thousands).
const MAX_PARTS: usize = 24;

fuzz_target!(|data: &[u8]| {
    let mut choices = Choices::new(data);
    let setup = choices.byte();
    let raw = choices.rest();
    let binary = setup & 1 != 0;
    let ingested = if binary {
        ringmail::mime::ingest_binary(raw.to_vec())
    } else {
        ringmail::mime::ingest(raw.to_vec())
    };
    let _ = ringmail::mime::addr_specs(raw);
    let Ok((message, structure)) = ingested else {
        return;
    };
    check_structure(&message, &structure, binary);
    let opts = FetchOptions {
        imap4rev2: setup & 2 != 0,
        utf8: setup & 4 != 0,
        condstore: setup & 8 != 0,
        read_only: true,
        uid_only: false,
    };
    fetch_all(&message, &structure, &opts);
});

fn check_structure(message: &[u8], s: &Structure, binary: bool) {
    assert_eq!(s.size, message.len() as u64);
    if !binary {
        assert!(
            matches!(
                ringmail::mime::normalize_line_endings(message),
                std::borrow::Cow::Borrowed(_)
            ),
            "the stored message is not canonical"
        );
        let again = ringmail::mime::analyze(message).expect("a stored message analyzes again");
        assert_eq!(&again, s, "analyze is not deterministic on the stored message");
    }
    let stored = Structure::from_bytes(&s.to_bytes()).expect("a computed structure loads back");
    assert_eq!(&stored, s);
    assert!(
        s.parts.first().is_some_and(|p| p.path.is_empty()),
        "parts[0] is not the whole message"
    );
    for p in &s.parts {
        for kind in [Section::Full, Section::Header, Section::Text, Section::Mime] {
            if let Some(r) = s.section(&p.path, kind) {
                assert!(
                    r.start <= r.end && r.end <= message.len(),
                    "{:?} {kind:?}: {r:?}",
                    p.path
                );
            }
        }
    }
}

/// The section-spec of a part path, e.g. `1.2`.
fn path(part: &[u32]) -> String {
    part.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
}

// `fetch::render` reads the body through `MessageBytes`, which `Vec<u8>` implements.
#[allow(clippy::ptr_arg)]
fn fetch_all(message: &Vec<u8>, s: &Structure, opts: &FetchOptions) {
    let mut items = String::from(
        "UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE PREVIEW BODY.PEEK[] BODY.PEEK[HEADER] \
         BODY.PEEK[TEXT]<2.40> BODY.PEEK[HEADER.FIELDS (From Subject Content-Type)] BINARY.SIZE[] MODSEQ",
    );
    for p in s.parts.iter().skip(1).take(MAX_PARTS) {
        let n = path(&p.path);
        items.push_str(&format!(
            " BODY.PEEK[{n}] BODY.PEEK[{n}.MIME] BODY.PEEK[{n}.HEADER] BODY.PEEK[{n}.TEXT]<0.7> \
             BODY.PEEK[{n}.HEADER.FIELDS.NOT (Received)] BINARY.PEEK[{n}] BINARY.SIZE[{n}]"
        ));
    }
    let request = format!("a UID FETCH 1 ({items})");
    let attrs = match ringmail::imap::parse::parse_command(request.as_bytes()) {
        Ok((_, Command::Fetch { attrs, .. })) => attrs,
        other => panic!("the server's grammar refuses {request:?}: {other:?}"),
    };
    let record = MessageRecord {
        flags: 0,
        internal_date: 1_750_000_000,
        save_date: 1_750_000_000,
        size: message.len() as u64,
        modseq: 9,
        body_id: 3,
        keywords: vec!["$Forwarded".into()],
    };
    let meta = MessageMeta {
        seq: 1,
        uid: 1,
        record: &record,
        structure: Some(s),
        recent: false,
        include_flags: false,
    };
    let mut out = Vec::new();
    let mut attrs = attrs;
    if render(&meta, &attrs, true, opts, message, &mut out, None).is_err() {
        // BINARY of a part in an encoding the server cannot decode: NO [UNKNOWN-CTE]. The rest
        // is still served.
        assert!(out.is_empty(), "a refused FETCH wrote output");
        attrs.retain(|a| !matches!(a, FetchAttr::Binary { .. } | FetchAttr::BinarySize { .. }));
        render(&meta, &attrs, true, opts, message, &mut out, None).expect("FETCH without BINARY renders");
    }
    // Items that need no structure render the same without one (FETCH then reads none).
    if !needs_structure(&attrs) {
        let mut lean = Vec::new();
        let without = MessageMeta {
            structure: None,
            ..meta
        };
        render(&without, &attrs, true, opts, message, &mut lean, None).expect("the items rendered once");
        assert_eq!(lean, out, "{request:?} rendered otherwise without the structure");
    }
    let responses = imap_responses(&out);
    assert_eq!(
        responses.len(),
        1,
        "one FETCH response: {:?}",
        String::from_utf8_lossy(&out)
    );
    if let Err(e) = check_fetch_or_status(responses[0]) {
        panic!("the FETCH response is not valid IMAP: {e}");
    }

    // The load harness's parser reads the items it knows; it does not read multipart bodies
    // (`(part)(part) "MIXED"`), so BODY and BODYSTRUCTURE are left out for it. Its FETCH
    // parsing is what the `mixed` scenario checks servers with.
    let known: Vec<FetchAttr> = attrs
        .into_iter()
        .filter(|a| {
            !matches!(
                a,
                FetchAttr::Body | FetchAttr::BodyStructure | FetchAttr::Binary { .. } | FetchAttr::BinarySize { .. }
            )
        })
        .collect();
    let mut out = Vec::new();
    render(&meta, &known, true, opts, message, &mut out, None).expect("FETCH without BINARY renders");
    let responses = imap_responses(&out);
    match parse_untagged(responses[0]) {
        Ok(Untagged::Fetch(fetch)) => {
            assert_eq!(fetch.uid, Some(1));
            assert!(fetch.envelope.is_some(), "no ENVELOPE");
        }
        // Known limitation of the harness's parser (reported with the fuzz targets): it wants
        // a space between list items, but an address list (RFC 9051 §9 `env-to` and the rest)
        // is `1*address`, the addresses unseparated, as ringmail and Dovecot send them.
        Err(e) if e.what == "space between list items" && responses[0].windows(2).any(|w| w == b")(") => {}
        other => panic!("the harness does not read the FETCH response: {other:?}"),
    }
}
