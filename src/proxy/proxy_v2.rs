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

/// A TLV of the range kept for applications (0xE0–0xEF), empty: after its login, the
/// client's TLS session is passed to the back end (`net::handoff`).
const PASS_TLS: u8 = 0xE0;
/// A TLV's type and length.
const TLV_HEAD: usize = 3;

/// The header for a connection from `client` to `server`; `pass_tls`: the client's TLS
/// session follows its login.
pub fn encode(client: SocketAddr, server: SocketAddr, pass_tls: bool) -> Vec<u8> {
    let mut out = SIGNATURE.to_vec();
    out.push(0x21); // version 2, PROXY
    let tlvs = if pass_tls { TLV_HEAD as u16 } else { 0 };
    match (client, server) {
        (SocketAddr::V4(c), SocketAddr::V4(s)) => {
            out.push(0x11); // TCP over IPv4
            out.extend_from_slice(&(12 + tlvs).to_be_bytes());
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
            out.extend_from_slice(&(36 + tlvs).to_be_bytes());
            out.extend_from_slice(&v6(client).octets());
            out.extend_from_slice(&v6(server).octets());
            out.extend_from_slice(&client.port().to_be_bytes());
            out.extend_from_slice(&server.port().to_be_bytes());
        }
    }
    if pass_tls {
        out.extend_from_slice(&[PASS_TLS, 0, 0]);
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
    #[error("malformed PROXY protocol TLV")]
    Tlv,
}

/// What a complete header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The client's address; `None` for LOCAL (the proxy speaking for itself, e.g. a health
    /// check) or an address family other than TCP.
    pub client: Option<SocketAddr>,
    /// Bytes the header took; what follows is the protocol's.
    pub len: usize,
    /// The client's TLS session follows its login (`net::handoff`).
    pub pass_tls: bool,
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
        return Ok(Some(Header {
            client: None,
            len,
            pass_tls: false,
        }));
    }
    let a = &input[FIXED..len];
    let (client, addresses) = match input[13] {
        0x11 if a.len() >= 12 => {
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            (Some(SocketAddr::new(ip.into(), u16::from_be_bytes([a[8], a[9]]))), 12)
        }
        0x21 if a.len() >= 36 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&a[..16]);
            let ip = Ipv6Addr::from(octets);
            let ip = ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4);
            (Some(SocketAddr::new(ip, u16::from_be_bytes([a[32], a[33]]))), 36)
        }
        0x11 | 0x21 => return Err(HeaderError::Addresses),
        // UNSPEC, UDP, unix: no client address to take (nor TLVs of ours).
        _ => {
            return Ok(Some(Header {
                client: None,
                len,
                pass_tls: false,
            }))
        }
    };
    let pass_tls = tlvs(&a[addresses..])?.any(|(kind, _)| kind == PASS_TLS);
    Ok(Some(Header { client, len, pass_tls }))
}

/// The TLVs after the addresses (type, value); others than ours are skipped, as the
/// specification asks.
fn tlvs(mut rest: &[u8]) -> Result<impl Iterator<Item = (u8, &[u8])>, HeaderError> {
    let mut found = Vec::new();
    while !rest.is_empty() {
        if rest.len() < TLV_HEAD {
            return Err(HeaderError::Tlv);
        }
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        let value = rest.get(TLV_HEAD..TLV_HEAD + len).ok_or(HeaderError::Tlv)?;
        found.push((rest[0], value));
        rest = &rest[TLV_HEAD + len..];
    }
    Ok(found.into_iter())
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
            for pass_tls in [false, true] {
                let mut bytes = encode(client, server, pass_tls);
                bytes.extend_from_slice(b"a LOGIN");
                let header = parse(&bytes).unwrap().unwrap();
                assert_eq!(header.client, Some(client));
                assert_eq!(header.pass_tls, pass_tls);
                assert_eq!(&bytes[header.len..], b"a LOGIN");
            }
        }
    }

    #[test]
    fn partial_headers_ask_for_more_and_others_are_refused() {
        let full = encode("192.0.2.7:5".parse().unwrap(), "127.0.0.1:1".parse().unwrap(), true);
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
        // Others' TLVs are skipped; a TLV cut short is refused.
        let mut other = full.clone();
        other[FIXED + 12] = 0x04;
        assert!(!parse(&other).unwrap().unwrap().pass_tls);
        let mut cut = full.clone();
        cut[FIXED + 14] = 9;
        assert_eq!(parse(&cut), Err(HeaderError::Tlv));
        let mut local = full;
        local[12] = 0x20;
        assert_eq!(parse(&local).unwrap().unwrap().client, None);
    }
}
