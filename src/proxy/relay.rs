//! Relaying a logged-in session: bytes both ways, unparsed (IDLE, COMPRESS, literals and
//! pipelining pass through as they are), until either side closes.
//!
//! Each direction is a pump. Waiting, it has sent what it had and holds only a readiness
//! poll (`Conn::read_quiet`): no buffer, no read in flight, so an idle relayed session parks
//! little. Streaming, it writes one chunk while it reads the next, and a read that fills its
//! buffer doubles the next one, up to `MAX_READ`: a bulk download moves in few, large
//! operations with both sockets busy. Where both sides are plaintext, a stream that has
//! filled reads up to `SPLICE_AT` goes on inside the kernel (`net::splice`), never copied
//! through the process, until a burst comes back smaller than that. A relay quiet both ways
//! for `REST_AFTER` stops being a task: it rests as data in its core's `rest::Rests` until
//! either side has something to say.

use std::future::Future;
use std::io;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use super::rest::{Resting, Rests};
use crate::net::splice::Splicer;
use crate::net::Conn;
use crate::runtime::io::Waiting;

/// A read while the other side is probably just thinking.
const SMALL: usize = 256;
/// The largest read while bytes stream in.
const MAX_READ: usize = 256 * 1024;
/// Reads this large that fill mean a stream: between plaintext sockets it is spliced.
const SPLICE_AT: usize = 64 * 1024;
/// How long a relay quiet both ways stays a task before it rests: longer than a client in use
/// takes between an answer and its next command, so those do not rest (resting and rousing
/// cost a few system calls and a task), short against the minutes of an IDLE.
const REST_AFTER: Duration = Duration::from_secs(1);

/// Relays `r`'s session until one side ends or the server shuts down; `to_backend` and
/// `to_client` are bytes already read that belong to the other side. Both connections are
/// closed on return, unless the relay rests in `rests`; its slot counts the session against
/// the connection limits until they are.
///
/// Not an `async fn`, which would keep its arguments twice for the session's life: as
/// arguments and as the locals they are moved into (rust-lang/rust#62958).
#[allow(clippy::manual_async_fn)] // see above
pub fn relay(
    mut r: Resting,
    (to_backend, to_client): (Vec<u8>, Vec<u8>),
    rests: Rc<Rests>,
) -> impl Future<Output = ()> {
    async move {
        let mut first = Some((to_backend, to_client));
        loop {
            let (to_backend, to_client) = first.take().unwrap_or_default();
            // The two pumps' waits at their readiness polls.
            let waiting = Waiting::default();
            let kicked = r.listed.as_deref();
            let quiet = tokio::select! {
                // The pumps first: `quiet_for` reads the count as they leave it.
                biased;
                _ = pump(&r.client, &r.backend, to_backend, kicked, &waiting) => false,
                _ = pump(&r.backend, &r.client, to_client, kicked, &waiting) => false,
                () = rests.shutdown().wait() => false,
                () = quiet_for(&waiting, REST_AFTER), if rests.open() => true,
            };
            if !quiet {
                break;
            }
            // The pumps were dropped at their polls, which stay in flight until a socket is
            // readable unless taken back: a resting relay holds no operation.
            Box::pin(async {
                crate::runtime::io::cancel_all(r.client.raw_fd()).await;
                crate::runtime::io::cancel_all(r.backend.raw_fd()).await;
            })
            .await;
            match rests.lay(r) {
                Ok(()) => return,
                // The set would not take it: it goes on here.
                Err(back) => r = back,
            }
        }
        Box::pin(end(r)).await;
    }
}

/// A resting relay one of whose sockets is readable: a task of its own again.
pub(super) fn rouse(r: Resting, rests: Rc<Rests>) {
    crate::runtime::io::spawn(relay(r, Default::default(), rests));
}

/// Closes both sides. Boxed where awaited: inline, the closes' room would be part of the
/// relay's while it waits.
async fn end(r: Resting) {
    let Resting {
        client,
        backend,
        slot,
        listed,
    } = r;
    // Out of the live sessions before the client's descriptor closes (a kick shuts it).
    drop(listed);
    backend.close().await;
    client.close().await;
    drop(slot);
}

/// Ready once both pumps have waited at their readiness polls for `after`, without a byte
/// either way. It registers no waker for the count: only the pumps change it, in the same
/// pass of the relay's select, just before it is polled. A pump may end its wait and begin
/// the next within one pass (a burst spliced on the core), so a quiet is told by the count of
/// ended waits, not by the count of waiting pumps alone.
///
/// One timer serves the relay's life as a task, moved on at most once per `after`: a timer
/// made and dropped at every pause between a command and its answer would cost the core more
/// than relaying them (and wake its loop, when it is the core's earliest).
async fn quiet_for(waiting: &Waiting, after: Duration) {
    // Boxed: the relay's future would otherwise hold its room all the time.
    let mut nap = Box::pin(tokio::time::sleep(after));
    // The count of ended waits when the quiet being timed began, and when that was.
    let mut quiet: Option<(u32, Instant)> = None;
    std::future::poll_fn(|cx| {
        if waiting.count() < 2 {
            quiet = None;
            return Poll::Pending;
        }
        let ended = waiting.ended();
        let since = match quiet {
            Some((e, since)) if e == ended => since,
            _ => quiet.insert((ended, Instant::now())).1,
        };
        let due = since + after;
        if nap.as_mut().poll(cx).is_ready() {
            if Instant::now() >= due {
                return Poll::Ready(());
            }
            nap.as_mut().reset(due);
            // Registers the waker for the new deadline.
            let _ = nap.as_mut().poll(cx);
        }
        Poll::Pending
    })
    .await
}

/// Copies `from` to `to`, after `first`, until `from` ends, either fails, or the operator
/// kicked the session (`kicked`: a client still sending after its socket's reading side was
/// shut is not relayed on). `waiting` counts it while it waits for `from` to speak.
async fn pump(
    from: &Conn,
    to: &Conn,
    first: Vec<u8>,
    kicked: Option<&crate::sessions::Session>,
    waiting: &Waiting,
) -> io::Result<()> {
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
            if !Box::pin(splice_stream(src, dst, waiting)).await? {
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
            from.read_quiet(&mut next, size.next, waiting).await?
        };
        if n == 0 || kicked.is_some_and(|s| s.is_kicked()) {
            return Ok(());
        }
        size.after(n);
        std::mem::swap(&mut pending, &mut next);
    }
}

/// Splices bursts from `src` to `dst` while they come large (unless there are no descriptors
/// for it now); false at the end of `src`. Waiting for the next burst, it is counted in
/// `waiting`, as a quiet pump's read is.
async fn splice_stream(src: std::os::fd::RawFd, dst: std::os::fd::RawFd, waiting: &Waiting) -> io::Result<bool> {
    let Some(splicer) = Splicer::new(src, dst)? else {
        return Ok(true);
    };
    let more = loop {
        match splicer.burst(waiting).await? {
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

    /// A relayed session quiet for a while holds its `Resting` data in its core's lot; until
    /// then, and while it is in use, its task's future and its two pumps': keep all of them
    /// small (issue 10: at most 4 KiB per relayed idle session at the front end).
    #[test]
    fn a_waiting_relay_is_small() {
        crate::runtime::io::run_loop(async {
            let conn = || {
                let (ours, _theirs) = std::os::unix::net::UnixStream::pair().unwrap();
                Conn::new(Stream::Unix(tokio_uring::net::UnixStream::from_std(ours)), None)
            };
            let (a, b) = (conn(), conn());
            fn returned_size<A, B, C, F>(_: impl FnOnce(A, B, C) -> F) -> usize {
                std::mem::size_of::<F>()
            }
            // A resting relay is 168 bytes since a connection keeps its TLS and COMPRESS
            // fields in a box made when either starts (280 before).
            assert!(
                std::mem::size_of::<Resting>() <= 168,
                "{}",
                std::mem::size_of::<Resting>()
            );
            // 2,200 and 640 bytes while the relay kept its arguments twice and its closes and
            // a pump its splice's first write inline; 1,432 and 440 while a quiet pump held a
            // read in flight, and the join of its last write with that read; 1,000 and 280
            // before relays rested (the relay now keeps its parts as a `Resting`, to lay
            // down, and a pump counts itself waiting).
            assert!(returned_size(relay) <= 1600, "{}", returned_size(relay));
            let waiting = Waiting::default();
            let pump = pump(&a, &b, Vec::new(), None, &waiting);
            assert!(std::mem::size_of_val(&pump) <= 360, "{}", std::mem::size_of_val(&pump));
            let mut buf = Vec::new();
            let read = a.read_quiet(&mut buf, SMALL, &waiting);
            assert!(std::mem::size_of_val(&read) <= 200, "{}", std::mem::size_of_val(&read));
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
        relay_a_stream(Duration::ZERO);
    }

    /// A client slower than its back end: the relay waits for room to write, on the core.
    #[test]
    fn a_stream_to_a_slow_reader_is_spliced_and_arrives_whole() {
        relay_a_stream(Duration::from_millis(200));
    }

    /// An 8 MiB stream, a pause and a small answer through a pump, to a client that begins to
    /// read after `late`.
    fn relay_a_stream(late: Duration) {
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
            std::thread::sleep(late);
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
            pump(&backend, &client, b"* first\r\n".to_vec(), None, &Waiting::default())
                .await
                .unwrap();
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

#[cfg(test)]
mod resting {
    use std::net::{IpAddr, TcpListener};
    use std::sync::Arc;
    use std::time::Instant;

    use tokio_uring::net::TcpStream;

    use super::*;
    use crate::auth::limits::{ConnectionLimits, Descriptors, LimitSettings};
    use crate::runtime::io::Stream;
    use crate::runtime::Shutdown;

    /// Two ends of a loopback TCP connection, both on the loop: the relay's and a peer's.
    fn tcp_pair() -> (Conn, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        let ours = Conn::new(Stream::Tcp(TcpStream::from_std(ours)), None);
        (ours, TcpStream::from_std(peer))
    }

    async fn say(peer: &TcpStream, what: &[u8]) {
        let (r, _) = peer.write_all(what.to_vec()).await;
        r.unwrap();
    }

    /// The next `want.len()` bytes `peer` reads, which must be `want`.
    async fn hear(peer: &TcpStream, want: &[u8]) {
        let mut got = Vec::new();
        while got.len() < want.len() {
            let (r, buf) = peer.read(vec![0; want.len() - got.len()]).await;
            let n = r.unwrap();
            assert!(n > 0, "the stream ended after {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, want);
    }

    async fn ended(peer: &TcpStream) {
        let (r, _) = peer.read(vec![0; 16]).await;
        assert_eq!(r.unwrap(), 0, "the relay went on");
    }

    /// Waits (up to 3 s) until `rests` holds `n` relays; how long that took.
    async fn resting(rests: &Rests, n: usize, at: u32) -> Duration {
        let start = Instant::now();
        while rests.len() != n {
            assert!(
                start.elapsed() < Duration::from_secs(3),
                "{} relays rest, not {n} (line {at})",
                rests.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        start.elapsed()
    }

    struct Setup {
        rests: Rc<Rests>,
        client: TcpStream,
        backend: TcpStream,
        limits: Arc<ConnectionLimits>,
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    /// A relay between a client and a back end, with one place at its limits (taken by it) and
    /// `first` already read from the client.
    fn relayed(first: &[u8]) -> Setup {
        let settings = LimitSettings {
            protocol: "imap",
            max_connections: 1,
            max_connections_per_ip: 1,
            max_connections_per_user: 1,
        };
        let limits = ConnectionLimits::new(settings, &Descriptors::new(u32::MAX));
        let slot = limits.connect(IP).unwrap();
        let (ours_client, client) = tcp_pair();
        let (ours_backend, backend) = tcp_pair();
        let rests = Rests::new(Shutdown::default());
        crate::runtime::io::spawn(super::super::rest::watch_over(rests.clone()));
        let r = Resting {
            client: ours_client,
            backend: ours_backend,
            slot,
            listed: None,
        };
        crate::runtime::io::spawn(relay(r, (first.to_vec(), Vec::new()), rests.clone()));
        Setup {
            rests,
            client,
            backend,
            limits,
        }
    }

    #[test]
    fn a_quiet_relay_rests_and_either_side_rouses_it() {
        crate::runtime::io::run_loop(async {
            let s = relayed(b"a IDLE\r\n");
            hear(&s.backend, b"a IDLE\r\n").await;
            say(&s.backend, b"+ idling\r\n").await;
            hear(&s.client, b"+ idling\r\n").await;
            // Quiet both ways: a task for `REST_AFTER`, then data in the lot.
            assert_eq!(s.rests.len(), 0);
            let waited = resting(&s.rests, 1, line!()).await;
            assert!(
                waited >= REST_AFTER - Duration::from_millis(100),
                "rested after {waited:?}"
            );
            // The back end speaks: the relay is a task again until quiet again.
            say(&s.backend, b"* 1 EXISTS\r\n").await;
            hear(&s.client, b"* 1 EXISTS\r\n").await;
            assert_eq!(s.rests.len(), 0);
            resting(&s.rests, 1, line!()).await;
            // So does the client; a longer burst after it goes through whole.
            say(&s.client, b"DONE\r\n").await;
            hear(&s.backend, b"DONE\r\n").await;
            let burst: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
            say(&s.backend, &burst).await;
            hear(&s.client, &burst).await;
            resting(&s.rests, 1, line!()).await;
            // The back end goes: the client's connection ends, and with it its place.
            assert!(s.limits.connect(IP).is_err());
            drop(s.backend);
            ended(&s.client).await;
            resting(&s.rests, 0, line!()).await;
            let start = Instant::now();
            while s.limits.connect(IP).is_err() {
                assert!(start.elapsed() < Duration::from_secs(3), "the relay kept its place");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }

    #[test]
    fn shutdown_ends_a_resting_relay() {
        crate::runtime::io::run_loop(async {
            let s = relayed(b"a IDLE\r\n");
            hear(&s.backend, b"a IDLE\r\n").await;
            resting(&s.rests, 1, line!()).await;
            s.rests.shutdown().trigger();
            ended(&s.client).await;
            ended(&s.backend).await;
            resting(&s.rests, 0, line!()).await;
            assert!(!s.rests.open());
        });
    }
}
