//! Relaying a logged-in session: bytes both ways, unparsed (IDLE, COMPRESS, literals and
//! pipelining pass through as they are), until either side closes.
//!
//! A direction that waits reads into a small buffer, so an idle relayed session parks little;
//! one whose last read filled its buffer is streaming, and reads big (as `serve` does).

use crate::net::Conn;

/// A read while the other side is probably just thinking.
const SMALL: usize = 512;
/// A read while bytes stream in.
const BULK: usize = 16 * 1024;

/// The buffer for the next read: big only while the last one filled its buffer.
fn next_buffer(mut buf: Vec<u8>, bulk: bool) -> Vec<u8> {
    buf.clear();
    if !bulk {
        return Vec::with_capacity(SMALL);
    }
    buf.reserve(BULK);
    buf
}

/// Relays until one side ends; `to_backend` and `to_client` are bytes already read that
/// belong to the other side. Both connections are closed on return.
pub async fn relay(client: Conn, backend: Conn, to_backend: Vec<u8>, to_client: Vec<u8>) {
    let up = async {
        let (mut buf, mut bulk) = (to_backend, false);
        loop {
            if !buf.is_empty() {
                backend.write(&mut buf).await?;
            }
            buf = next_buffer(buf, bulk);
            let spare = buf.capacity();
            let n = client.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), std::io::Error>(());
            }
            bulk = n >= spare;
        }
    };
    let down = async {
        let (mut buf, mut bulk) = (to_client, false);
        loop {
            if !buf.is_empty() {
                client.write(&mut buf).await?;
            }
            buf = next_buffer(buf, bulk);
            let spare = buf.capacity();
            let n = backend.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), std::io::Error>(());
            }
            bulk = n >= spare;
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
    backend.close().await;
    client.close().await;
}
