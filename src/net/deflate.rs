//! COMPRESS=DEFLATE (RFC 4978): raw deflate streams in both directions, each write ending in a
//! sync flush so the peer can decode everything sent so far.

use std::io;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

pub struct Deflate {
    inflate: Decompress,
    deflate: Compress,
}

impl Default for Deflate {
    fn default() -> Self {
        Deflate {
            // RFC 4978 §3: raw deflate (RFC 1951), no zlib header.
            inflate: Decompress::new(false),
            deflate: Compress::new(Compression::fast(), false),
        }
    }
}

impl Deflate {
    /// Inflates all of `input` onto `out`. An error means the stream is corrupt.
    pub fn inflate(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let mut used = 0;
        loop {
            out.reserve((input.len() - used).max(256) * 4);
            let before = self.inflate.total_in();
            let produced = out.len();
            let status = self
                .inflate
                .decompress_vec(&input[used..], out, FlushDecompress::Sync)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            used += (self.inflate.total_in() - before) as usize;
            if status == Status::StreamEnd {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "deflate stream ended"));
            }
            // Output still pending inside the inflater shows as a full buffer.
            if used == input.len() && out.len() < out.capacity() {
                return Ok(());
            }
            if self.inflate.total_in() == before && out.len() == produced {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "deflate stream stuck"));
            }
        }
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
            client.inflate(&chunk, &mut decoded).unwrap();
            assert_eq!(&decoded, m);
            wire.extend_from_slice(&chunk);
        }
        let mut fresh = Deflate::default();
        let mut all = Vec::new();
        for piece in wire.chunks(7) {
            fresh.inflate(piece, &mut all).unwrap();
        }
        assert_eq!(all, messages.concat());
    }

    #[test]
    fn garbage_is_an_error() {
        let mut d = Deflate::default();
        assert!(d.inflate(&[0xff; 64], &mut Vec::new()).is_err());
    }
}
