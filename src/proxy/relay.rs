//! Relaying a logged-in session: bytes both ways, unparsed (IDLE, COMPRESS, literals and
//! pipelining pass through as they are), until either side closes.

use crate::net::Conn;
use crate::runtime::io::Stream;

/// One read's worth of relayed bytes.
const CHUNK: usize = 16 * 1024;

/// Relays until one side ends; `to_backend` and `to_client` are bytes already read that
/// belong to the other side. Both connections are closed on return.
pub async fn relay(client: Conn, backend: Stream, to_backend: Vec<u8>, to_client: Vec<u8>) {
    let up = async {
        let mut buf = to_backend;
        loop {
            if !buf.is_empty() {
                let (r, sent) = backend.write_all(std::mem::take(&mut buf)).await;
                r?;
                buf = sent;
                buf.clear();
            }
            if client.read(&mut buf).await? == 0 {
                return Ok::<(), std::io::Error>(());
            }
        }
    };
    let down = async {
        let mut buf = to_client;
        loop {
            if !buf.is_empty() {
                client.write(&mut buf).await?;
            }
            if buf.capacity() < CHUNK {
                buf.reserve(CHUNK);
            }
            let (r, read) = backend.read(buf).await;
            buf = read;
            if r? == 0 {
                return Ok::<(), std::io::Error>(());
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
    backend.shutdown();
    client.close().await;
}
