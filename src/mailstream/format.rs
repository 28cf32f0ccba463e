//! The frames of a mailbox stream (docs/stream.md): a magic line, then frames of a tag byte,
//! a 32-bit big-endian length and a payload. Checkpoints — each mailbox's `F` and the last
//! frame, `Z` — carry the SHA-256 of every byte before them, so what a receiver has applied
//! is vouched for mailbox by mailbox. Both ends hash as they go, so a stream of any size is
//! checked without being held.

use std::io::{Read, Write};

use ring::digest;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// The first bytes of a stream; the version is in the `H` frame.
pub const MAGIC: &[u8] = b"RINGMAIL-MAILBOX-STREAM\n";
pub const VERSION: u32 = 1;

/// A body travels in `D` frames of at most this many bytes.
pub const CHUNK: usize = 1 << 20;
/// No frame is larger (a `P` frame of a mailbox with millions of scattered UIDs fits).
const MAX_FRAME: usize = 64 << 20;

pub mod tag {
    pub const HEADER: u8 = b'H';
    pub const MAILBOX: u8 = b'B';
    pub const MESSAGE: u8 = b'M';
    pub const DATA: u8 = b'D';
    pub const EXPUNGED: u8 = b'X';
    pub const PRESENT: u8 = b'P';
    pub const FINISH: u8 = b'F';
    pub const USER: u8 = b'U';
    pub const END: u8 = b'Z';
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a mailbox stream (bad magic)")]
    Magic,
    #[error("stream version {0} is not supported (this ringmail reads {VERSION})")]
    Version(u32),
    #[error("the stream ends before its end frame")]
    Truncated,
    #[error("a frame of {0} bytes is larger than any stream holds")]
    TooLarge(usize),
    #[error("the stream's checksum does not match: it was damaged")]
    Checksum,
    #[error("bad {tag:?} frame: {reason}")]
    Bad { tag: char, reason: String },
}

impl StreamError {
    pub fn bad(tag: u8, reason: impl std::fmt::Display) -> StreamError {
        StreamError::Bad {
            tag: char::from(tag),
            reason: reason.to_string(),
        }
    }
}

/// What the `Z` frame says of the stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    pub sha256: String,
    pub mailboxes: u64,
    /// Messages whose bytes the stream carries.
    pub messages: u64,
    pub bytes: u64,
}

pub struct Writer<W: Write> {
    out: W,
    hash: digest::Context,
}

impl<W: Write> Writer<W> {
    pub fn new(mut out: W) -> Result<Writer<W>, StreamError> {
        let mut hash = digest::Context::new(&digest::SHA256);
        out.write_all(MAGIC)?;
        hash.update(MAGIC);
        Ok(Writer { out, hash })
    }

    pub fn frame(&mut self, tag: u8, payload: &[u8]) -> Result<(), StreamError> {
        if payload.len() > MAX_FRAME {
            return Err(StreamError::TooLarge(payload.len()));
        }
        let mut head = [0u8; 5];
        head[0] = tag;
        head[1..].copy_from_slice(&(payload.len() as u32).to_be_bytes());
        self.out.write_all(&head)?;
        self.out.write_all(payload)?;
        self.hash.update(&head);
        self.hash.update(payload);
        Ok(())
    }

    pub fn json<T: Serialize>(&mut self, tag: u8, value: &T) -> Result<(), StreamError> {
        let payload = serde_json::to_vec(value).map_err(|e| StreamError::bad(tag, e))?;
        self.frame(tag, &payload)
    }

    /// A checkpoint frame (`F`): the hash of everything so far.
    pub fn checkpoint(&mut self, tag: u8) -> Result<(), StreamError> {
        let sum = Checkpoint {
            sha256: hex(self.hash.clone().finish().as_ref()),
        };
        self.json(tag, &sum)
    }

    /// Writes the end frame and gives the writer back, flushed.
    pub fn finish(mut self, mut end: End) -> Result<W, StreamError> {
        end.sha256 = hex(self.hash.clone().finish().as_ref());
        let payload = serde_json::to_vec(&end).map_err(|e| StreamError::bad(tag::END, e))?;
        self.frame(tag::END, &payload)?;
        self.out.flush()?;
        Ok(self.out)
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    sha256: String,
}

/// One frame as read.
#[derive(Debug)]
pub struct Frame {
    pub tag: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, StreamError> {
        serde_json::from_slice(&self.payload).map_err(|e| StreamError::bad(self.tag, e))
    }
}

pub struct Reader<R: Read> {
    input: R,
    hash: digest::Context,
    ended: bool,
}

impl<R: Read> Reader<R> {
    pub fn new(mut input: R) -> Result<Reader<R>, StreamError> {
        let mut magic = [0u8; MAGIC.len()];
        input.read_exact(&mut magic).map_err(|_| StreamError::Magic)?;
        if magic != MAGIC {
            return Err(StreamError::Magic);
        }
        let mut hash = digest::Context::new(&digest::SHA256);
        hash.update(MAGIC);
        Ok(Reader {
            input,
            hash,
            ended: false,
        })
    }

    /// The next frame; the end frame is checked against what came before it and given too.
    /// `None` after it.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, StreamError> {
        if self.ended {
            return Ok(None);
        }
        let mut head = [0u8; 5];
        self.input.read_exact(&mut head).map_err(eof_is_truncation)?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if len > MAX_FRAME {
            return Err(StreamError::TooLarge(len));
        }
        let mut payload = vec![0u8; len];
        self.input.read_exact(&mut payload).map_err(eof_is_truncation)?;
        let frame = Frame { tag: head[0], payload };
        if matches!(frame.tag, tag::END | tag::FINISH) {
            let sum: Checkpoint = frame.json()?;
            if sum.sha256 != hex(self.hash.clone().finish().as_ref()) {
                return Err(StreamError::Checksum);
            }
        }
        if frame.tag == tag::END {
            self.ended = true;
        } else {
            self.hash.update(&head);
            self.hash.update(&frame.payload);
        }
        Ok(Some(frame))
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.input
    }
}

fn eof_is_truncation(e: std::io::Error) -> StreamError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        StreamError::Truncated
    } else {
        StreamError::Io(e)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = Writer::new(Vec::new()).unwrap();
        w.frame(tag::DATA, b"hello").unwrap();
        w.checkpoint(tag::FINISH).unwrap();
        w.finish(End::default()).unwrap()
    }

    #[test]
    fn frames_come_back_and_the_end_is_checked() {
        let bytes = sample();
        let mut r = Reader::new(&bytes[..]).unwrap();
        assert_eq!(r.next_frame().unwrap().unwrap().payload, b"hello");
        assert_eq!(r.next_frame().unwrap().unwrap().tag, tag::FINISH);
        assert_eq!(r.next_frame().unwrap().unwrap().tag, tag::END);
        assert!(r.next_frame().unwrap().is_none());
    }

    #[test]
    fn damage_and_truncation_are_caught() {
        let bytes = sample();
        let mut damaged = bytes.clone();
        let at = MAGIC.len() + 5 + 1;
        damaged[at] ^= 1;
        let mut r = Reader::new(&damaged[..]).unwrap();
        let err = std::iter::from_fn(|| Some(r.next_frame()))
            .find_map(Result::err)
            .unwrap();
        assert!(matches!(err, StreamError::Checksum), "{err}");
        for cut in [MAGIC.len() + 3, bytes.len() - 1] {
            let mut r = Reader::new(&bytes[..cut]).unwrap();
            let err = std::iter::from_fn(|| Some(r.next_frame()))
                .find_map(Result::err)
                .unwrap();
            assert!(matches!(err, StreamError::Truncated), "{err}");
        }
        assert!(matches!(Reader::new(&b"RINGMAIL-OTHER"[..]), Err(StreamError::Magic)));
    }
}
