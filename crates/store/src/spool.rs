//! A message as it is received: in memory while it is small, then in an unlinked file in the
//! data directory, so that a large DATA or BDAT holds a bounded amount of the process's memory
//! however big the message is (the kernel's page cache holds the rest, and may write it out).
//!
//! Line endings are made canonical on the way in (every bare CR or LF becomes CRLF, as
//! `mime::normalize_line_endings` does), so a received message is never rewritten into a
//! second copy before it is stored.
//!
//! The file is written with plain `write(2)` of [`BLOCK`] bytes at a time: a copy into the
//! page cache, never a wait for the disk (no fsync: only the store's commit makes a message
//! durable, and this file is gone when the process is). At the end it is mapped read-only, and
//! the MIME analysis and the store's writer read the message from the map.

use std::fs::File;
use std::io::Write;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

/// A message kept in memory up to this size; past it, the file.
pub const SPILL_AT: usize = 256 * 1024;
/// Bytes gathered in memory before each write to the file.
const BLOCK: usize = 256 * 1024;

/// A received message, complete and canonical: in memory, or mapped from its spool file.
pub enum Spooled {
    Memory(Vec<u8>),
    /// Mapped read-only; the unlinked file lives as long as the map.
    Mapped(memmap2::Mmap),
}

impl Deref for Spooled {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Spooled::Memory(bytes) => bytes,
            Spooled::Mapped(map) => map,
        }
    }
}

impl From<Vec<u8>> for Spooled {
    fn from(bytes: Vec<u8>) -> Spooled {
        Spooled::Memory(bytes)
    }
}

impl PartialEq for Spooled {
    fn eq(&self, other: &Spooled) -> bool {
        **self == **other
    }
}

impl Eq for Spooled {}

impl std::fmt::Debug for Spooled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = match self {
            Spooled::Memory(_) => "memory",
            Spooled::Mapped(_) => "file",
        };
        write!(f, "Spooled({} bytes in {place})", self.len())
    }
}

/// Why a message could not be kept: the spool file could not be made or written (a full
/// disk, no descriptors left). The sender should try again later.
#[derive(Debug, thiserror::Error)]
#[error("cannot spool the message: {0}")]
pub struct SpoolError(#[from] std::io::Error);

/// A message being received.
pub struct Spool {
    /// Where the file goes; `None` keeps everything in memory (tests, tools).
    dir: Option<Arc<Path>>,
    /// The message while it is small; after the spill, the bytes not yet written.
    memory: Vec<u8>,
    file: Option<File>,
    /// The last input ended with CR: whether it is bare depends on the next byte.
    pending_cr: bool,
    /// The first failure to spill: later bytes are dropped, `finish` reports it.
    failed: Option<std::io::Error>,
}

impl Spool {
    /// An empty spool; `expected` (a size the client announced) sizes the memory of a message
    /// that will stay there, so it is never copied on the way.
    pub fn new(dir: Option<Arc<Path>>, expected: Option<u64>) -> Spool {
        let capacity = expected
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n <= SPILL_AT)
            // A little room for line endings made canonical.
            .map_or(0, |n| n + n / 64 + 64);
        Spool {
            dir,
            memory: Vec::with_capacity(capacity),
            file: None,
            pending_cr: false,
            failed: None,
        }
    }

    /// Appends received bytes, canonicalising line endings across calls.
    pub fn push(&mut self, mut bytes: &[u8]) {
        if std::mem::take(&mut self.pending_cr) {
            self.put(b"\r\n");
            if bytes.first() == Some(&b'\n') {
                bytes = &bytes[1..];
            }
        }
        if let Some((b'\r', head)) = bytes.split_last() {
            self.pending_cr = true;
            bytes = head;
        }
        while let Some(i) = crate::mime::first_bare(bytes) {
            self.put(&bytes[..i]);
            self.put(b"\r\n");
            bytes = &bytes[i + 1..];
        }
        self.put(bytes);
    }

    /// The message, complete.
    pub fn finish(mut self) -> Result<Spooled, SpoolError> {
        if std::mem::take(&mut self.pending_cr) {
            self.put(b"\r\n");
        }
        if let Some(e) = self.failed.take() {
            return Err(e.into());
        }
        let Some(mut file) = self.file.take() else {
            return Ok(Spooled::Memory(self.memory));
        };
        file.write_all(&self.memory)?;
        // SAFETY: the file is unlinked (or was never linked) and only this spool held its
        // descriptor, so nothing else can change it while the map is alive: the map is
        // immutable and no byte of it can be truncated away.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Spooled::Mapped(map))
    }

    fn put(&mut self, bytes: &[u8]) {
        if self.file.is_none() && (self.dir.is_none() || self.memory.len() + bytes.len() <= SPILL_AT) {
            self.memory.extend_from_slice(bytes);
            return;
        }
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self.spill(bytes) {
            self.failed = Some(e);
            self.memory = Vec::new();
        }
    }

    fn spill(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let file = match &mut self.file {
            Some(file) => file,
            None => {
                let dir = self.dir.as_deref().unwrap_or(Path::new("."));
                self.file.insert(tempfile::tempfile_in(dir)?)
            }
        };
        if self.memory.len() + bytes.len() > BLOCK {
            file.write_all(&self.memory)?;
            self.memory.clear();
            if bytes.len() >= BLOCK {
                return file.write_all(bytes);
            }
        }
        if self.memory.capacity() < BLOCK {
            self.memory.reserve_exact(BLOCK - self.memory.len());
        }
        self.memory.extend_from_slice(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool_in(dir: &Path) -> Spool {
        Spool::new(Some(Arc::from(dir)), None)
    }

    #[test]
    fn line_endings_are_canonical_at_every_split() {
        let raw = b"a\rb\nc\r\nd\r\r\n\n\re\r";
        let canonical = crate::mime::normalize_line_endings(raw).into_owned();
        for cut in 0..=raw.len() {
            let mut s = Spool::new(None, None);
            s.push(&raw[..cut]);
            s.push(&raw[cut..]);
            assert_eq!(*s.finish().unwrap(), canonical[..], "cut {cut}");
        }
    }

    #[test]
    fn a_small_message_stays_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spool_in(dir.path());
        s.push(b"Subject: a\r\n\r\nb\r\n");
        let m = s.finish().unwrap();
        assert!(matches!(m, Spooled::Memory(_)));
        assert_eq!(*m, b"Subject: a\r\n\r\nb\r\n"[..]);
    }

    #[test]
    fn a_large_message_goes_to_a_file_that_leaves_no_name() {
        let dir = tempfile::tempdir().unwrap();
        let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\n";
        let mut s = spool_in(dir.path());
        let mut want = Vec::new();
        // Pieces of every size around the block, so both write paths are taken.
        for (n, size) in (0..200).zip([1, 7_000, BLOCK - 3, 70, BLOCK + 5, 3 * BLOCK].iter().cycle()) {
            let piece = line.repeat(size / line.len() + n % 3);
            s.push(&piece);
            want.extend_from_slice(&crate::mime::normalize_line_endings(&piece));
        }
        let m = s.finish().unwrap();
        assert!(matches!(m, Spooled::Mapped(_)));
        assert_eq!(m.len(), want.len());
        assert!(*m == want[..]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no file left behind");
    }

    #[test]
    fn a_spool_that_cannot_spill_says_so() {
        let mut s = Spool::new(Some(Arc::from(Path::new("/nonexistent/ringmail-spool"))), None);
        s.push(&vec![b'x'; SPILL_AT + 1]);
        assert!(s.finish().is_err());
    }
}
