//! A server's TLS records after the handshake (`net::tls` handing them to `net::record`): a
//! real handshake with rustls as the client, then client records of every kind — data,
//! KeyUpdates whole or in pieces, alerts, records of any type and content — raw bytes and
//! flipped bits, read by the server in reads of any size, with replies between.
//!
//! The first byte picks TLS 1.3 (odd) or 1.2; the rest are operations and their arguments
//! (`ringmail::net::fuzzing::records`).
//!
//! Properties: nothing panics; everything the server seals opens under the keys the client
//! follows (its KeyUpdates included) and is what it sealed; when the client sent only what a
//! client may, whole, the server read exactly the data sent, in order, and did not fail.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringmail::net::fuzzing::records;

fuzz_target!(|data: &[u8]| {
    let Some((&version, ops)) = data.split_first() else {
        return;
    };
    let seen = records(version % 2 == 1, ops);
    assert_eq!(seen.opened, seen.replied, "what the server sealed opens as sealed");
    if seen.clean {
        assert_eq!(seen.error, None, "a clean run fails");
        assert!(seen.read == seen.sent, "the server read other data than was sent");
    }
});
