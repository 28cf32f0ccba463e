//! A client's TLS session passed on from a front end to the back end it is relayed to
//! (DESIGN.md §7), sans I/O.
//!
//! Relaying a TLS client, a front end would open every record the client sends and seal every
//! byte the back end answers: a download crosses the front end's cores twice, in AES-GCM. So
//! once the client has logged in, the front end passes its session to the back end: the
//! suite, each direction's key, IV, sequence number and (TLS 1.3) traffic secret, the
//! client's bytes it has decrypted and not yet relayed, and the start of a record it has not
//! opened yet. From then on the back end seals and opens the client's records (`Records`, as
//! for its own clients, key updates included) and the front end relays them as they are, by
//! splicing where they stream.
//!
//! The state goes in one frame on the link, in the clear: links that pass sessions carry the
//! mail in the clear too, inside `trusted_networks`. The PROXY header says a frame will follow
//! the login (`proxy_v2`); the back end reads it right after sending its answer to the login,
//! before anything else. A front end that cannot pass the session (a key update under way,
//! say) sends the frame that says so, and keeps it.

use std::io;

use rustls::SupportedCipherSuite;

use super::record::Records;
use super::tls::Tls;

/// What every frame starts with: no line of the protocols on the link starts so.
const MAGIC: [u8; 8] = *b"\0RMTLS1\n";
/// The magic, the kind, the body's length.
const HEAD: usize = MAGIC.len() + 1 + 4;
/// The longest frame passed: the state is about 200 bytes; the rest is what the client
/// pipelined behind its login. Longer than this, the front end keeps the session.
pub const MAX: usize = 1024 * 1024;

/// The front end keeps the client's TLS: the link goes on as it was.
const KEPT: u8 = 0;
/// The client's TLS session follows.
const PASSED: u8 = 1;

/// What a frame said.
pub enum Frame {
    Kept,
    /// The client's session, for `Conn::take_passed`.
    Passed(Box<Tls>),
}

/// The frame that says the front end keeps the client's TLS.
pub fn kept() -> Vec<u8> {
    frame(KEPT, &[])
}

/// The frame that passes `state` (`Tls::pass_on`).
pub(super) fn passed(state: &[u8]) -> Option<Vec<u8>> {
    (HEAD + state.len() <= MAX).then(|| frame(PASSED, state))
}

fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEAD + body.len());
    out.extend_from_slice(&MAGIC);
    out.push(kind);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Parses the frame at the start of `input`: `Ok(None)` while more is needed, else what it
/// said and the bytes it took (what follows is the client's, as the client sent it). A
/// passed session must be under one of `suites`, the back end's own.
pub fn parse(input: &[u8], suites: &[SupportedCipherSuite]) -> io::Result<Option<(Frame, usize)>> {
    let have = input.len().min(MAGIC.len());
    if input[..have] != MAGIC[..have] {
        return Err(bad("not a passed session"));
    }
    if input.len() < HEAD {
        return Ok(None);
    }
    let len = u32::from_be_bytes(input[MAGIC.len() + 1..HEAD].try_into().expect("4 bytes")) as usize;
    if HEAD + len > MAX {
        return Err(bad("too long"));
    }
    let Some(mut body) = input.get(HEAD..HEAD + len) else {
        return Ok(None);
    };
    let frame = match input[MAGIC.len()] {
        KEPT if len == 0 => Frame::Kept,
        PASSED => {
            let records = Records::import(&mut body, suites)?;
            let plain = counted(&mut body)?;
            let incoming = counted(&mut body)?;
            if !body.is_empty() {
                return Err(bad("bytes after the state"));
            }
            Frame::Passed(Box::new(Tls::passed(records, plain, incoming)))
        }
        _ => return Err(bad("an unknown kind")),
    };
    Ok(Some((frame, HEAD + len)))
}

/// Zeroes all of `buf`'s room (a frame, or state, holds keys) and empties it.
pub fn wipe(buf: &mut Vec<u8>) {
    buf.clear();
    for b in buf.spare_capacity_mut() {
        // SAFETY: `b` is a valid, aligned, exclusive reference to a byte of `buf`'s room;
        // volatile, so the wipe is not dropped as a dead store before the buffer is freed.
        unsafe { std::ptr::write_volatile(b.as_mut_ptr(), 0) };
    }
}

/// A length-prefixed run of bytes from the front of `body`.
fn counted(body: &mut &[u8]) -> io::Result<Vec<u8>> {
    let len = u32::from_be_bytes(take(body)?) as usize;
    Ok(take_slice(body, len)?.to_vec())
}

/// The next `n` bytes of `input`, taken.
pub(super) fn take_slice<'a>(input: &mut &'a [u8], n: usize) -> io::Result<&'a [u8]> {
    let (head, rest) = input.split_at_checked(n).ok_or_else(|| bad("cut short"))?;
    *input = rest;
    Ok(head)
}

/// The next `N` bytes of `input`, taken.
pub(super) fn take<const N: usize>(input: &mut &[u8]) -> io::Result<[u8; N]> {
    Ok(take_slice(input, N)?.try_into().expect("N bytes"))
}

pub(super) fn bad(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("passed TLS session: {why}"))
}
