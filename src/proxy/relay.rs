//! Relaying a logged-in session: bytes both ways, unparsed (IDLE, COMPRESS, literals and
//! pipelining pass through as they are), until either side closes.
//!
//! Each direction is a pump. Waiting, it has sent what it had and holds only a readiness
//! poll (`Conn::read_quiet`): no buffer, no read in flight, so an idle relayed session parks
//! little. Streaming, it writes one chunk while it reads the next, and a read that fills its
//! buffer doubles the next one, up to `MAX_READ`: a bulk download moves in few, large
//! operations with both sockets busy. Where both sides are plaintext, a stream that has
//! filled reads up to `SPLICE_AT` goes on inside the kernel (`net::splice`), never copied
//! through the process, until a burst comes back smaller than that.

use std::future::Future;
use std::io;

use crate::auth::limits::Slot;
use crate::net::splice::Splicer;
use crate::net::Conn;
use crate::runtime::Shutdown;
use crate::sessions::Handle;

/// A read while the other side is probably just thinking.
const SMALL: usize = 256;
/// The largest read while bytes stream in.
const MAX_READ: usize = 256 * 1024;
/// Reads this large that fill mean a stream: between plaintext sockets it is spliced.
const SPLICE_AT: usize = 64 * 1024;

/// Relays until one side ends or the server shuts down; `to_backend` and `to_client` are
/// bytes already read that belong to the other side. Both connections are closed on return;
/// `slot` counts the session against the connection limits until then.
///
/// Not an `async fn`, which would keep its arguments twice for the session's life: as
/// arguments and as the locals they are moved into (rust-lang/rust#62958).
#[allow(clippy::manual_async_fn)] // see above
pub fn relay(
    client: Conn,
    backend: Conn,
    (to_backend, to_client): (Vec<u8>, Vec<u8>),
    (slot, listed, shutdown): (Slot, Option<Handle>, Shutdown),
) -> impl Future<Output = ()> {
    async move {
        let kicked = listed.as_deref();
        tokio::select! {
            _ = pump(&client, &backend, to_backend, kicked) => {}
            _ = pump(&backend, &client, to_client, kicked) => {}
            () = shutdown.wait() => {}
        }
        // Out of the live sessions before the client's descriptor closes (a kick shuts it).
        drop(listed);
        // Boxed: inline, the closes' room would be part of the relay's while it waits.
        Box::pin(async {
            backend.close().await;
            client.close().await;
        })
        .await;
        drop(slot);
    }
}

/// Copies `from` to `to`, after `first`, until `from` ends, either fails, or the operator
/// kicked the session (`kicked`: a client still sending after its socket's reading side was
/// shut is not relayed on).
async fn pump(from: &Conn, to: &Conn, first: Vec<u8>, kicked: Option<&crate::sessions::Session>) -> io::Result<()> {
    let mut pending = first;
    let mut next = Vec::new();
    let mut size = ReadSize::default();
    loop {
        let plain = || from.plain_fd().zip(to.plain_fd());
        if let Some((src, dst)) = (size.next >= SPLICE_AT).then(plain).flatten() {
            // What was read goes out first; the stream's buffers are not kept while the
            // kernel moves the rest.
            Box::pin(to.write(&mut pending)).await?;
            (pending, next) = (Vec::new(), Vec::new());
            if !Box::pin(splice_stream(src, dst)).await? {
                return Ok(());
            }
            size.next = SMALL;
        }
        // `pending` holds what the last read took (it filled, if `size.next` grew); it is
        // empty only before the first read and after a splice, when `size.next` is SMALL.
        let n = if size.next > SMALL {
            // Streaming: send this chunk while the next one is read.
            next = sized(next, size.next);
            let (_, n) = Box::pin(async { tokio::try_join!(to.write(&mut pending), from.read(&mut next)) }).await?;
            n
        } else {
            // The peer paused (its last read did not fill): what it sent goes out, and then
            // the wait for more holds no buffer and no read in flight, only a poll. Quiet is
            // what a relayed session mostly is (a client in IDLE or thinking).
            if !pending.is_empty() {
                Box::pin(to.write(&mut pending)).await?;
            }
            (pending, next) = (Vec::new(), Vec::new());
            from.read_quiet(&mut next, size.next).await?
        };
        if n == 0 || kicked.is_some_and(|s| s.is_kicked()) {
            return Ok(());
        }
        size.after(n);
        std::mem::swap(&mut pending, &mut next);
    }
}

/// Splices bursts from `src` to `dst` while they come large (unless there are no descriptors
/// for it now); false at the end of `src`.
async fn splice_stream(src: std::os::fd::RawFd, dst: std::os::fd::RawFd) -> io::Result<bool> {
    let Some(splicer) = Splicer::new(src, dst)? else {
        return Ok(true);
    };
    let more = loop {
        match splicer.burst().await? {
            0 => break false,
            n if n >= SPLICE_AT => {}
            _ => break true,
        }
    };
    // Only a completed burst ends a stream (an error or a dropped future leaves the pipe to
    // the ops still holding it).
    splicer.finish();
    Ok(more)
}

/// How much the next read asks for. Only a read that filled its buffer makes the next one
/// big, so the read that waits for a quiet peer is a small one: a read in flight cannot be
/// taken back, and a big buffer would stay parked with it for as long as the peer is quiet.
struct ReadSize {
    next: usize,
    /// The largest size reached since the session began, which the next burst goes back to
    /// as soon as a small read finds bytes streaming again.
    peak: usize,
}

impl Default for ReadSize {
    fn default() -> Self {
        ReadSize {
            next: SMALL,
            peak: SMALL,
        }
    }
}

impl ReadSize {
    fn after(&mut self, n: usize) {
        let asked = self.next;
        self.next = if n < asked {
            SMALL
        } else if asked == SMALL {
            self.peak.max(2 * SMALL)
        } else {
            (asked * 2).min(MAX_READ)
        };
        self.peak = self.peak.max(self.next);
    }
}

/// `buf`, emptied, with room for `size` bytes and not much more.
fn sized(mut buf: Vec<u8>, size: usize) -> Vec<u8> {
    buf.clear();
    if buf.capacity() < size || buf.capacity() > 2 * size {
        return Vec::with_capacity(size);
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_grow_while_they_fill_and_wait_small() {
        let mut size = ReadSize::default();
        let mut asked = Vec::new();
        // Streaming: every read fills its buffer.
        for _ in 0..12 {
            asked.push(size.next);
            size.after(size.next);
        }
        assert_eq!(asked[..4], [SMALL, 2 * SMALL, 4 * SMALL, 8 * SMALL]);
        assert_eq!(*asked.last().unwrap(), MAX_READ);
        // A short read: the next one, which may wait long, is small.
        size.after(1000);
        assert_eq!(size.next, SMALL);
        // Bytes again: back to the peak at once.
        size.after(SMALL);
        assert_eq!(size.next, MAX_READ);
        assert_eq!(sized(Vec::with_capacity(MAX_READ), SMALL).capacity(), SMALL);
    }
}

#[cfg(test)]
mod size {
    use super::*;
    use crate::runtime::io::Stream;

    /// What a waiting relayed session holds is mostly its future and its two pumps': keep them small
    /// (issue 10: at most 4 KiB per relayed idle session at the front end).
    #[test]
    fn a_waiting_relay_is_small() {
        crate::runtime::io::run_loop(async {
            let conn = || {
                let (ours, _theirs) = std::os::unix::net::UnixStream::pair().unwrap();
                Conn::new(Stream::Unix(tokio_uring::net::UnixStream::from_std(ours)), None)
            };
            let (a, b) = (conn(), conn());
            fn returned_size<A, B, C, D, F>(_: impl FnOnce(A, B, C, D) -> F) -> usize {
                std::mem::size_of::<F>()
            }
            // 2,200 and 640 bytes while the relay kept its arguments twice and its closes and
            // a pump its splice's first write inline; 1,432 and 440 while a quiet pump held a
            // read in flight, and the join of its last write with that read.
            assert!(returned_size(relay) <= 1000, "{}", returned_size(relay));
            let pump = pump(&a, &b, Vec::new(), None);
            assert!(std::mem::size_of_val(&pump) <= 280, "{}", std::mem::size_of_val(&pump));
            let mut buf = Vec::new();
            let read = a.read_quiet(&mut buf, SMALL);
            assert!(std::mem::size_of_val(&read) <= 160, "{}", std::mem::size_of_val(&read));
        });
    }
}

#[cfg(test)]
mod splicing {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    use super::*;
    use crate::runtime::io::Stream;

    /// Two ends of a loopback TCP connection: the first for the relay, the second for a peer.
    fn tcp_pair() -> (tokio_uring::net::TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        (tokio_uring::net::TcpStream::from_std(ours), peer)
    }

    #[test]
    fn a_stream_between_plaintext_sockets_is_spliced_and_arrives_whole() {
        let (client, mut client_peer) = tcp_pair();
        let (backend, mut backend_peer) = tcp_pair();
        let stream: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
        let sent = stream.clone();
        // A bulk download, a pause, then an interactive answer, then the end.
        let writer = std::thread::spawn(move || {
            backend_peer.write_all(&sent).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(50));
            backend_peer.write_all(b"* OK after the stream\r\n").unwrap();
        });
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            client_peer.read_to_end(&mut got).unwrap();
            got
        });
        let before = crate::net::splice::spliced_total();
        crate::runtime::io::run_loop(async {
            let (client, backend) = (
                Conn::new(Stream::Tcp(client), None),
                Conn::new(Stream::Tcp(backend), None),
            );
            pump(&backend, &client, b"* first\r\n".to_vec(), None).await.unwrap();
            client.close().await;
            backend.close().await;
        });
        writer.join().unwrap();
        let got = reader.join().unwrap();
        let mut want = b"* first\r\n".to_vec();
        want.extend_from_slice(&stream);
        want.extend_from_slice(b"* OK after the stream\r\n");
        assert!(got == want, "{} bytes arrived of {}", got.len(), want.len());
        // All but the start of the stream, which showed it was one, went through the kernel.
        let spliced = crate::net::splice::spliced_total() - before;
        assert!(spliced > 7 << 20, "{spliced} bytes spliced");
    }
}
