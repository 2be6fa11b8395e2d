//! Where a request comes from. The connection's peer, unless that peer is a
//! trusted proxy (`TRELLIS_TRUSTED_PROXIES`): then the client is the first
//! address, read from the right, of `Forwarded` (RFC 7239) or
//! `X-Forwarded-For` that is not itself a trusted proxy. A header from any
//! other peer is the client's own word and is ignored.
//!
//! Per-IP limits count IPv6 clients per /64 (what one host or one home is
//! usually given), so a client cannot multiply its allowance by rotating
//! through its own addresses.

use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use http::HeaderMap;

/// An address block: `10.0.0.0/8`, `2001:db8::/32`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| format!("`{s}` is not an IP address or CIDR block"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(Self { net: mask(net, prefix), prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.net.is_ipv4() && mask(ip, self.prefix) == self.net
    }
}

/// The address with every bit past `prefix` cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix.min(32))) };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix.min(128))) };
            IpAddr::V6((bits & m).into())
        }
    }
}

/// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`) is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The bucket per-IP limits count a client in: the address itself for IPv4,
/// its /64 for IPv6.
pub(crate) fn limit_bucket(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    }
}

/// The client's address, given the connection's peer and the request headers.
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops = forwarded_for(headers);
    // From the nearest hop outwards: the first address no trusted proxy
    // vouches for is the client. An unreadable hop ends the walk there (what
    // lies beyond it cannot be trusted either).
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) => {
                client = canonical(*ip);
                if !is_trusted(client) {
                    return client;
                }
            }
            None => return client,
        }
    }
    client
}

/// The addresses a request passed through, client first: `Forwarded`'s
/// `for=` values when that header is present, else `X-Forwarded-For`.
/// An entry that is not an address (`unknown`, an obfuscated name) is `None`.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> =
        headers.get_all(http::header::FORWARDED).iter().filter_map(|v| v.to_str().ok()).collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.trim().eq_ignore_ascii_case("for").then(|| parse_node(v.trim()))
                })
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| parse_node(s.trim()))
        .collect()
}

/// One node: `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"`, `2001:db8::1`.
fn parse_node(s: &str) -> Option<IpAddr> {
    let s = s.trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// Reads a comma-separated list of blocks (the setting's format).
pub fn parse_list(s: &str) -> Result<Vec<Cidr>, String> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(http::HeaderName::from_bytes(k.as_bytes()).expect("name"), v.parse().expect("value"));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn blocks_parse_and_match() {
        let c: Cidr = "10.0.0.0/8".parse().expect("a block");
        assert!(c.contains(ip("10.200.1.1")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.1.2.3")));
        let one: Cidr = "127.0.0.1".parse().expect("a block");
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6: Cidr = "2001:db8::/32".parse().expect("a block");
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
        assert_eq!(parse_list(" 10.0.0.0/8, ::1 ,").expect("blocks").len(), 2);
        assert!(parse_list("").expect("blocks").is_empty());
    }

    #[test]
    fn headers_count_only_from_trusted_peers() {
        let trusted = parse_list("10.0.0.0/8").expect("blocks");
        let h = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(client_ip(ip("198.51.100.1"), &h, &trusted), ip("198.51.100.1"));
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("203.0.113.7"));
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &[]), ip("10.0.0.5"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = parse_list("10.0.0.0/8").expect("blocks");
        // The client wrote a fake first entry; the proxies appended the rest.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.7, 10.0.0.9")]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("203.0.113.7"));
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("203.0.113.7"));
        let h = headers(&[("x-forwarded-for", "garbage, 10.0.0.9")]);
        assert_eq!(client_ip(ip("10.0.0.5"), &h, &trusted), ip("10.0.0.9"));
    }

    #[test]
    fn forwarded_is_preferred_and_parsed() {
        let trusted = parse_list("127.0.0.1").expect("blocks");
        let h = headers(&[
            ("forwarded", r#"for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711""#),
            ("x-forwarded-for", "198.51.100.9"),
        ]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "for=192.0.2.43:8080")]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("192.0.2.43"));
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted), ip("127.0.0.1"));
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        assert_eq!(limit_bucket(ip("2001:db8:1:2:aaaa::1")), limit_bucket(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(limit_bucket(ip("2001:db8:1:2::1")), limit_bucket(ip("2001:db8:1:3::1")));
        assert_eq!(limit_bucket(ip("192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(limit_bucket(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }
}
