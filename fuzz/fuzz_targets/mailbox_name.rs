//! Modified UTF-7 mailbox names (RFC 3501 §5.1.3, `imap::mutf7`) and the store's name checks.
//!
//! Properties:
//! - `decode` and `encode` never panic;
//! - `encode` yields printable US-ASCII only, and `decode(encode(s)) == s` for every UTF-8 `s`;
//! - whatever `decode` accepts re-encodes to a form that decodes to the same name;
//! - `validate_name` never panics, and a name it accepts is accepted again unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringmail::imap::mutf7;

fuzz_target!(|data: &[u8]| {
    // Any bytes as a UTF-8 name (lossily), for the encoder.
    let utf8 = String::from_utf8_lossy(data);
    let encoded = mutf7::encode(&utf8);
    assert!(
        encoded.bytes().all(|b| (0x20..=0x7e).contains(&b)),
        "encode({utf8:?}) = {encoded:?} is not printable US-ASCII"
    );
    assert_eq!(
        mutf7::decode(&encoded).as_deref(),
        Ok(&*utf8),
        "decode(encode({utf8:?})) via {encoded:?}"
    );

    // The bytes as a client's modified UTF-7 name, for the decoder.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(decoded) = mutf7::decode(text) {
            let again = mutf7::encode(&decoded);
            assert_eq!(
                mutf7::decode(&again).as_deref(),
                Ok(decoded.as_str()),
                "{text:?} decodes to {decoded:?}, which encodes to {again:?}"
            );
            if !text.contains("-&") {
                // One encoded run per stretch of non-ASCII characters: the canonical form the
                // encoder writes, so the decoder accepted exactly what the encoder would send.
                assert_eq!(
                    again, text,
                    "{text:?} decodes to {decoded:?} but encodes back differently"
                );
            }
        }
        if let Ok(valid) = ringmail::store::validate_name(text) {
            let valid = valid.to_owned();
            assert_eq!(
                ringmail::store::validate_name(&valid).ok(),
                Some(valid.as_str()),
                "validate_name({text:?}) = {valid:?} is not accepted unchanged"
            );
        }
    }
});
