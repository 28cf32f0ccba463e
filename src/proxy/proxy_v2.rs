//! The PROXY protocol, version 2 (HAProxy's proxy-protocol.txt §2.2): the binary header a
//! front end sends first on each connection to a back end, so the back end's limits,
//! penalties and logs see the client's address instead of the proxy's. Only TCP over IPv4 and
//! IPv6 and the LOCAL command are used; a back end accepts the header only on its
//! proxy-facing listeners, from trusted networks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The twelve bytes every v2 header starts with.
pub const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Signature, version/command, family, length.
const FIXED: usize = 16;
/// Longest header a back end reads (the IPv6 addresses and some TLVs).
pub const MAX_HEADER: usize = FIXED + 216;

/// The header for a connection from `client` to `server`.
pub fn encode(client: SocketAddr, server: SocketAddr) -> Vec<u8> {
    let mut out = SIGNATURE.to_vec();
    out.push(0x21); // version 2, PROXY
    match (client, server) {
        (SocketAddr::V4(c), SocketAddr::V4(s)) => {
            out.push(0x11); // TCP over IPv4
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&c.ip().octets());
            out.extend_from_slice(&s.ip().octets());
            out.extend_from_slice(&c.port().to_be_bytes());
            out.extend_from_slice(&s.port().to_be_bytes());
        }
        _ => {
            let v6 = |a: SocketAddr| match a.ip() {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            out.push(0x21); // TCP over IPv6
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&v6(client).octets());
            out.extend_from_slice(&v6(server).octets());
            out.extend_from_slice(&client.port().to_be_bytes());
            out.extend_from_slice(&server.port().to_be_bytes());
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("not a PROXY protocol v2 header")]
    Signature,
    #[error("unsupported PROXY protocol version or command")]
    Version,
    #[error("PROXY protocol header too long")]
    TooLong,
    #[error("malformed PROXY protocol addresses")]
    Addresses,
}

/// What a complete header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The client's address; `None` for LOCAL (the proxy speaking for itself, e.g. a health
    /// check) or an address family other than TCP.
    pub client: Option<SocketAddr>,
    /// Bytes the header took; what follows is the protocol's.
    pub len: usize,
}

/// How long the header that `input` starts is, as far as `input` tells: reading no more than
/// this leaves what follows the header (a TLS handshake) unread.
pub fn needed(input: &[u8]) -> usize {
    match input.get(14..16) {
        Some(len) => (FIXED + usize::from(u16::from_be_bytes([len[0], len[1]]))).min(MAX_HEADER),
        None => FIXED,
    }
}

/// Parses the header at the start of `input`: `Ok(None)` while more bytes are needed.
pub fn parse(input: &[u8]) -> Result<Option<Header>, HeaderError> {
    let have = input.len().min(SIGNATURE.len());
    if input[..have] != SIGNATURE[..have] {
        return Err(HeaderError::Signature);
    }
    if input.len() < FIXED {
        return Ok(None);
    }
    let (version, command) = (input[12] >> 4, input[12] & 0x0f);
    if version != 2 || command > 1 {
        return Err(HeaderError::Version);
    }
    let body = usize::from(u16::from_be_bytes([input[14], input[15]]));
    if FIXED + body > MAX_HEADER {
        return Err(HeaderError::TooLong);
    }
    if input.len() < FIXED + body {
        return Ok(None);
    }
    let len = FIXED + body;
    if command == 0 {
        return Ok(Some(Header { client: None, len }));
    }
    let a = &input[FIXED..len];
    let client = match input[13] {
        0x11 if a.len() >= 12 => {
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            Some(SocketAddr::new(ip.into(), u16::from_be_bytes([a[8], a[9]])))
        }
        0x21 if a.len() >= 36 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&a[..16]);
            let ip = Ipv6Addr::from(octets);
            let ip = ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4);
            Some(SocketAddr::new(ip, u16::from_be_bytes([a[32], a[33]])))
        }
        0x11 | 0x21 => return Err(HeaderError::Addresses),
        // UNSPEC, UDP, unix: no client address to take.
        _ => None,
    };
    Ok(Some(Header { client, len }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_for_both_families() {
        for (client, server) in [
            ("192.0.2.7:51000", "127.0.0.1:1993"),
            ("[2001:db8::1]:443", "[::1]:1993"),
            ("192.0.2.7:1", "[::1]:1993"),
        ] {
            let (client, server): (SocketAddr, SocketAddr) = (client.parse().unwrap(), server.parse().unwrap());
            let mut bytes = encode(client, server);
            bytes.extend_from_slice(b"a LOGIN");
            let header = parse(&bytes).unwrap().unwrap();
            assert_eq!(header.client, Some(client));
            assert_eq!(&bytes[header.len..], b"a LOGIN");
        }
    }

    #[test]
    fn partial_headers_ask_for_more_and_others_are_refused() {
        let full = encode("192.0.2.7:5".parse().unwrap(), "127.0.0.1:1".parse().unwrap());
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut]), Ok(None), "{cut}");
        }
        assert_eq!(parse(b"a LOGIN bob secret\r\n"), Err(HeaderError::Signature));
        assert_eq!(parse(b"PROXY TCP4 1.2.3.4"), Err(HeaderError::Signature));
        let mut v1 = full.clone();
        v1[12] = 0x11;
        assert_eq!(parse(&v1), Err(HeaderError::Version));
        let mut long = full.clone();
        long[14..16].copy_from_slice(&1000u16.to_be_bytes());
        assert_eq!(parse(&long), Err(HeaderError::TooLong));
        let mut local = full;
        local[12] = 0x20;
        assert_eq!(parse(&local).unwrap().unwrap().client, None);
    }
}
