//! One connection cannot take a core (issue 11, 1): a client that pipelines a flood of
//! commands — here a few KiB of COMPRESS=DEFLATE that inflate to two million NOOPs — shares
//! its core with the other clients on it, and once it has gone the server stops working
//! for it.

mod common;

use std::time::{Duration, Instant};

use common::{cpu_seconds, peak_rss_grown_kib, peak_rss_kib, Extra, Server};
use flate2::{Compress, Compression, FlushCompress};
use loadtest::client::transport::Transport;

fn bomb() -> Vec<u8> {
    let flood = b"c NOOP\r\n".repeat(2_000_000);
    let mut deflate = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity(flood.len() / 100);
    deflate.compress_vec(&flood, &mut out, FlushCompress::Sync).unwrap();
    out
}

#[test]
fn a_compressed_command_flood_shares_its_core_and_stops_when_the_client_goes() {
    let server = Server::start_with(Extra {
        // One core: the flood and everyone else meet on it.
        server: "workers = 1",
        ..Extra::default()
    });
    server.add_user("bob");
    let pid = server.child.as_ref().unwrap().id();
    let bomb = bomb();
    assert!(bomb.len() < 100_000, "{}", bomb.len());

    let mut flooder = server.imap_login("bob");
    flooder.t.send_raw(b"z COMPRESS DEFLATE\r\n").unwrap();
    assert_eq!(flooder.t.read_line_string().unwrap(), "z OK DEFLATE active");
    let peak_before = peak_rss_kib(pid);
    flooder.t.send_raw(&bomb).unwrap();

    // Meanwhile, others on the same core are greeted (TLS handshake included) at once.
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..10 {
        let started = Instant::now();
        let mut other = Transport::connect_tls(server.addr(server.ports.imaps), server.tls(), "localhost").unwrap();
        other.set_read_timeout(Duration::from_secs(30)).unwrap();
        let greeting = other.read_line_string().unwrap();
        assert!(greeting.starts_with("* OK"), "{greeting}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "greeted after {:?} behind the flood",
            started.elapsed()
        );
    }

    // 16 MB of commands, 40 MB of answers: neither is ever in memory whole.
    let grown = peak_rss_grown_kib(pid, peak_before);
    assert!(grown < 16 * 1024, "peak memory grew {grown} KiB during the flood");

    // The flooder goes away without reading its answers: the server soon stops working.
    drop(flooder);
    std::thread::sleep(Duration::from_millis(1000));
    let before = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_seconds(pid) - before;
    assert!(
        used < 0.5,
        "the server used {used:.2} s of CPU in 2 s after the flooder left"
    );
}

/// A guard rather than a regression test: before the budget, a plaintext flood yielded once
/// per 64 KiB read, which kept others' waits short already.
#[test]
fn a_plaintext_command_flood_shares_its_core() {
    let server = Server::start_with(Extra {
        server: "workers = 1",
        ..Extra::default()
    });
    let mut flooder = Transport::connect(server.addr(server.ports.imap)).unwrap();
    flooder.read_line_string().unwrap();
    // Pre-login, never reading the answers: 4 MB of CAPABILITY.
    let flood = b"c CAPABILITY\r\n".repeat(300_000);
    let writer = std::thread::spawn(move || {
        let _ = flooder.send_raw(&flood);
        flooder
    });
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..10 {
        let started = Instant::now();
        let mut other = Transport::connect(server.addr(server.ports.pop3)).unwrap();
        other.set_read_timeout(Duration::from_secs(30)).unwrap();
        assert!(other.read_line_string().unwrap().starts_with("+OK"));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "greeted after {:?}",
            started.elapsed()
        );
    }
    drop(writer);
}
