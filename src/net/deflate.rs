//! COMPRESS=DEFLATE (RFC 4978): raw deflate streams in both directions, each write ending in a
//! sync flush so the peer can decode everything sent so far.

use std::io;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Most bytes one `inflate` call produces: a few KiB of deflate can hold megabytes of
/// commands, which would otherwise all land in memory (and in front of the session) at once.
pub const INFLATE_PER_READ: usize = 64 * 1024;

pub struct Deflate {
    inflate: Decompress,
    deflate: Compress,
    /// Compressed input not inflated yet, because the last call's output reached its cap.
    pending: Vec<u8>,
    /// The last call stopped at its cap: more output may come without new input.
    more: bool,
    /// Inflated bytes allowed per second (0: no limit), and this second's count.
    rate: u64,
    window: Option<(std::time::Instant, u64)>,
}

impl Default for Deflate {
    fn default() -> Self {
        Deflate {
            // RFC 4978 §3: raw deflate (RFC 1951), no zlib header.
            inflate: Decompress::new(false),
            deflate: Compress::new(Compression::fast(), false),
            pending: Vec::new(),
            more: false,
            rate: 0,
            window: None,
        }
    }
}

impl Deflate {
    /// A stream whose inflated input is held to `rate` bytes per second (0: no limit).
    pub fn with_rate(rate: u64) -> Deflate {
        Deflate {
            rate,
            ..Deflate::default()
        }
    }

    /// Counts `n` inflated bytes at `now`; how long to wait before taking more, when this
    /// second's allowance is spent. A client that sends more than the rate is slowed, not
    /// refused: its commands are simply taken later.
    pub fn spend(&mut self, n: usize, now: std::time::Instant) -> Option<std::time::Duration> {
        if self.rate == 0 {
            return None;
        }
        let second = std::time::Duration::from_secs(1);
        let (start, used) = match self.window {
            Some((start, used)) if now.duration_since(start) < second => (start, used + n as u64),
            _ => (now, n as u64),
        };
        self.window = Some((start, used));
        // Over the allowance: wait out as many seconds as the excess needs.
        (used > self.rate).then(|| {
            let seconds = used / self.rate;
            self.window = Some((start + second * seconds as u32, used - self.rate * seconds));
            (start + second * seconds as u32).saturating_duration_since(now)
        })
    }

    /// Whether inflating may give more without new input (the last call stopped at its cap).
    pub fn has_more(&self) -> bool {
        self.more
    }

    /// Inflates what is pending, then `input`, onto `out`: at most `cap` bytes; what would
    /// pass it stays pending for the next call. An error means the stream is corrupt.
    pub fn inflate(&mut self, input: &[u8], out: &mut Vec<u8>, cap: usize) -> io::Result<()> {
        let mut pending = std::mem::take(&mut self.pending);
        pending.extend_from_slice(input);
        let start = out.len();
        let mut used = 0;
        self.more = false;
        loop {
            let room = (cap - (out.len() - start)).min(((pending.len() - used).max(256)) * 4);
            if room == 0 {
                self.more = true;
                break;
            }
            let produced = out.len();
            out.resize(produced + room, 0);
            let before = (self.inflate.total_in(), self.inflate.total_out());
            let status = self
                .inflate
                .decompress(&pending[used..], &mut out[produced..], FlushDecompress::Sync)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
            let made = (self.inflate.total_out() - before.1) as usize;
            out.truncate(produced + made);
            used += (self.inflate.total_in() - before.0) as usize;
            if status? == Status::StreamEnd {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "deflate stream ended"));
            }
            // Output still pending inside the inflater shows as a full buffer.
            if used == pending.len() && made < room {
                break;
            }
            if made == 0 && self.inflate.total_in() == before.0 {
                if used == pending.len() {
                    break;
                }
                return Err(io::Error::new(io::ErrorKind::InvalidData, "deflate stream stuck"));
            }
        }
        pending.drain(..used);
        // Nothing is kept for a connection that has no input waiting.
        if !pending.is_empty() {
            self.pending = pending;
        }
        Ok(())
    }

    /// Deflates `input` onto `out` and sync-flushes, so `out` decodes to all of `input`.
    pub fn deflate(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let mut used = 0;
        loop {
            out.reserve((input.len() - used) / 2 + 64);
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(&input[used..], out, FlushCompress::Sync)
                .map_err(io::Error::other)?;
            used += (self.deflate.total_in() - before) as usize;
            // Done once all input is in and the flush did not fill the buffer.
            if used == input.len() && out.len() < out.capacity() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_pieces() {
        let (mut server, mut client) = (Deflate::default(), Deflate::default());
        let messages: Vec<Vec<u8>> = (0..50)
            .map(|i| {
                format!("* {i} FETCH (FLAGS (\\Seen) UID {i})\r\n")
                    .repeat(i + 1)
                    .into_bytes()
            })
            .collect();
        let mut wire = Vec::new();
        for m in &messages {
            let mut chunk = Vec::new();
            server.deflate(m, &mut chunk).unwrap();
            // Each chunk decodes on its own: the sync flush.
            let mut decoded = Vec::new();
            client.inflate(&chunk, &mut decoded, usize::MAX).unwrap();
            assert_eq!(&decoded, m);
            wire.extend_from_slice(&chunk);
        }
        let mut fresh = Deflate::default();
        let mut all = Vec::new();
        for piece in wire.chunks(7) {
            fresh.inflate(piece, &mut all, usize::MAX).unwrap();
        }
        assert_eq!(all, messages.concat());
    }

    #[test]
    fn garbage_is_an_error() {
        let mut d = Deflate::default();
        assert!(d.inflate(&[0xff; 64], &mut Vec::new(), usize::MAX).is_err());
    }

    #[test]
    fn the_rate_holds_inflated_bytes_per_second() {
        let mut d = Deflate::with_rate(1000);
        let t = std::time::Instant::now();
        assert_eq!(d.spend(600, t), None);
        let wait = d.spend(600, t).expect("1200 in the first second");
        assert_eq!(wait, std::time::Duration::from_secs(1));
        // In the next second, 200 carried over.
        let later = t + wait;
        assert_eq!(d.spend(700, later), None);
        assert!(d.spend(200, later).is_some());
        assert_eq!(Deflate::default().spend(usize::MAX, t), None, "no rate, no wait");
    }

    #[test]
    fn a_bomb_comes_out_a_capped_piece_at_a_time() {
        let flood = b"c NOOP\r\n".repeat(200_000);
        let mut chunk = Vec::new();
        Deflate::default().deflate(&flood, &mut chunk).unwrap();
        assert!(chunk.len() < 10_000, "{}", chunk.len());
        let mut d = Deflate::default();
        let mut all = Vec::new();
        let mut piece = Vec::new();
        d.inflate(&chunk, &mut piece, 4096).unwrap();
        let mut calls = 1;
        loop {
            assert!(piece.len() <= 4096);
            all.extend_from_slice(&piece);
            if !d.has_more() {
                break;
            }
            piece.clear();
            d.inflate(&[], &mut piece, 4096).unwrap();
            calls += 1;
        }
        assert_eq!(all, flood);
        assert!(calls >= flood.len() / 4096, "{calls}");
    }
}
