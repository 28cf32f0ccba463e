//! A connection's input buffer, owned by the driver: the sessions take what they can of
//! `pending()` and say how much (`consume`). The buffer starts small and grows only while input
//! is arriving in bulk (a read filled it), so an idle connection parks next to nothing.

/// Capacity of an idle connection's input buffer.
const IDLE_CAPACITY: usize = 256;
/// Largest single read into the buffer.
const MAX_READ: usize = 64 * 1024;

#[derive(Default)]
pub struct Input {
    buf: Vec<u8>,
    /// Start of unconsumed input.
    start: usize,
}

impl Input {
    /// Input not yet taken.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.buf.len() - self.start, "consume past the input");
        self.start += n;
    }

    /// Drops everything buffered (STARTTLS: nothing sent in plaintext may survive the upgrade).
    pub fn discard(&mut self) {
        self.buf = Vec::new();
        self.start = 0;
    }

    /// Takes what is pending out (COMPRESS: it is inflated into a fresh buffer).
    pub fn take(&mut self) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.drain(..self.start);
        self.start = 0;
        buf
    }

    /// The last read filled the buffer: input is streaming in.
    pub fn streaming(&self) -> bool {
        !self.buf.is_empty() && self.buf.len() == self.buf.capacity() && self.buf.capacity() > IDLE_CAPACITY
    }

    /// The buffer to read into (append to its spare capacity), with consumed bytes dropped and
    /// room made.
    pub fn read_buffer(&mut self) -> &mut Vec<u8> {
        if self.start == self.buf.len() {
            // A read that filled the buffer means input is streaming: read more at once.
            let was_full = !self.buf.is_empty() && self.buf.len() == self.buf.capacity();
            self.buf.clear();
            self.start = 0;
            if self.buf.capacity() > MAX_READ {
                self.buf = Vec::new();
            } else if was_full {
                self.buf.reserve((self.buf.capacity() * 2).min(MAX_READ));
            }
        } else if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let spare = self.buf.capacity() - self.buf.len();
        if spare < IDLE_CAPACITY / 2 {
            let want = self.buf.capacity().clamp(IDLE_CAPACITY, MAX_READ);
            self.buf.reserve(want);
        }
        &mut self.buf
    }

    /// Returns all of an empty buffer's memory (a wait that reads into a buffer of its own).
    pub fn release(&mut self) {
        if self.start == self.buf.len() {
            self.discard();
        }
    }

    /// Returns an idle, empty buffer's memory but for a small one to read into.
    pub fn shrink_idle(&mut self) {
        if self.start == self.buf.len() && self.buf.capacity() > IDLE_CAPACITY {
            self.buf = Vec::new();
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consume_discard_and_take() {
        let mut i = Input::default();
        i.read_buffer().extend_from_slice(b"STLS\r\nUSER x\r\n");
        i.consume(6);
        assert_eq!(i.pending(), b"USER x\r\n");
        i.discard();
        assert_eq!(i.pending(), b"");
        i.read_buffer().extend_from_slice(b"abc");
        i.consume(2);
        assert_eq!(i.pending(), b"c");
        assert_eq!(i.take(), b"c");
        assert_eq!(i.pending(), b"");
    }

    #[test]
    fn grows_while_streaming_and_shrinks_when_idle() {
        let mut i = Input::default();
        for _ in 0..8 {
            let buf = i.read_buffer();
            let spare = buf.capacity() - buf.len();
            buf.extend(std::iter::repeat_n(b'x', spare));
            let n = i.pending().len();
            i.consume(n);
        }
        assert!(i.streaming());
        assert!(i.read_buffer().capacity() > 4096);
        i.shrink_idle();
        assert!(i.read_buffer().capacity() <= 1024);
        assert!(!i.streaming());
    }
}
