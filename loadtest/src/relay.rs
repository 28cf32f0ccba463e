//! The least a front end can do: a relay of blocking threads, two per connection, each
//! reading one side and writing what it read to the other. Measured beside `ringmail proxy`,
//! it shows what any relay adds on the machine (two more loopback hops, two more wake-ups per
//! round trip), so the proxy's own cost can be told apart from the machine's.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};

/// Bytes each direction reads at once.
const BUFFER: usize = 256 * 1024;

/// Listens on a free loopback port and relays every connection to `to` until the process
/// ends. Returns the address to connect to.
pub fn start(to: SocketAddr) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind((to.ip(), 0))?;
    let addr = listener.local_addr()?;
    std::thread::Builder::new().name("relay-accept".into()).spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            if let Err(e) = relay(client, to) {
                eprintln!("relay: {e}");
            }
        }
    })?;
    Ok(addr)
}

/// Connects to `to` and starts the two threads that copy between it and `client`.
fn relay(client: TcpStream, to: SocketAddr) -> io::Result<()> {
    let server = TcpStream::connect(to)?;
    for stream in [&client, &server] {
        stream.set_nodelay(true)?;
    }
    let (client2, server2) = (client.try_clone()?, server.try_clone()?);
    std::thread::Builder::new().spawn(move || copy(client, server))?;
    std::thread::Builder::new().spawn(move || copy(server2, client2))?;
    Ok(())
}

/// Copies until `from` ends or either side fails, then ends `to`'s direction too.
fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; BUFFER];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_cross_both_ways_and_ends_pass_on() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let relay = start(server.local_addr().unwrap()).unwrap();
        let mut client = TcpStream::connect(relay).unwrap();
        let (mut far, _) = server.accept().unwrap();
        client.write_all(b"a1 NOOP\r\n").unwrap();
        let mut got = [0u8; 9];
        far.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"a1 NOOP\r\n");
        far.write_all(b"a1 OK\r\n").unwrap();
        far.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        client.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"a1 OK\r\n");
    }
}
