//! Where a webhook may post: never to this machine, its private networks or
//! the cloud metadata service (SSRF). A URL is checked when a webhook is made
//! or changed, and every address is checked again when a delivery connects:
//! the client resolves names through [`GuardedResolver`], which drops
//! forbidden addresses, so the address checked is the address connected to
//! (no gap for DNS rebinding between a check and the connection).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::Url;

/// Whether `ip` is an address a webhook may not reach: loopback, private
/// (RFC 1918, fc00::/7), link-local (169.254/16 with the metadata service,
/// fe80::/10), unspecified, broadcast, shared (CGNAT 100.64/10), multicast,
/// reserved, and IPv4 addresses embedded in IPv6 (mapped, compatible, NAT64,
/// 6to4) that are any of these.
pub(crate) fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0 // "this network"
        || (a == 100 && (b & 0xc0) == 64) // shared address space, CGNAT
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b & 0xfe) == 18) // benchmarking
        || a >= 240 // reserved
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    if let Some(v4) = embedded_v4(ip) {
        return forbidden_v4(v4);
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00 // unique local
        || (seg[0] & 0xffc0) == 0xfe80 // link-local
        || (seg[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
}

/// The IPv4 address an IPv6 one carries: mapped (`::ffff:a.b.c.d`),
/// compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) or 6to4 (`2002::/16`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = ip.segments();
    let o = ip.octets();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if seg[..6] == [0, 0, 0, 0, 0, 0] && !(seg[6] == 0 && seg[7] <= 1) {
        return Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    if seg[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

/// Why a URL is refused, for the caller (a field message) or the delivery's
/// record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UrlRefused {
    #[error("must be a valid URL")]
    Malformed,
    #[error("must use https")]
    NotHttps,
    #[error("must not point to a private, loopback, link-local or otherwise reserved address")]
    Private,
    #[error("its host name does not resolve")]
    Unresolved,
}

/// A delivery's connection was refused because every address of the host
/// is forbidden. Returned by [`GuardedResolver`]; found again in the
/// client's error chain to record the failure as such.
#[derive(Debug, thiserror::Error)]
#[error("the host resolves only to addresses webhooks may not reach")]
pub(crate) struct Blocked;

/// Resolves names for the delivery client, keeping only addresses a webhook
/// may reach (all of them when private addresses are allowed).
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuardedResolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs.into_iter().filter(|a| allow_private || !forbidden(a.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(Blocked) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The URL, parsed, if a webhook may post to it: http or https (https only,
/// unless private addresses are allowed), and a host that neither is nor
/// resolves to a forbidden address. Checked when a webhook is made or
/// changed; `resolve` is false at delivery time, where the resolver checks.
pub(crate) async fn check_url(raw: &str, allow_private: bool, resolve: bool) -> Result<Url, UrlRefused> {
    let url = Url::parse(raw).map_err(|_| UrlRefused::Malformed)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlRefused::Malformed);
    }
    let host = url.host().ok_or(UrlRefused::Malformed)?;
    let literal = match host {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    };
    if !allow_private {
        match literal {
            Some(ip) if forbidden(ip) => return Err(UrlRefused::Private),
            Some(_) => {}
            None if resolve => {
                let host = url.host_str().unwrap_or_default().to_owned();
                let port = url.port_or_known_default().unwrap_or(443);
                let found = tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host((host, port)))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .map(|addrs| addrs.map(|a| a.ip()).collect::<Vec<_>>())
                    .unwrap_or_default();
                if found.is_empty() {
                    return Err(UrlRefused::Unresolved);
                }
                if found.into_iter().any(forbidden) {
                    return Err(UrlRefused::Private);
                }
            }
            None => {}
        }
        if url.scheme() != "https" {
            return Err(UrlRefused::NotHttps);
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn private_loopback_link_local_and_reserved_addresses_are_forbidden() {
        for s in [
            "127.0.0.1",
            "127.1.2.3",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "255.255.255.255",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
        ] {
            assert!(forbidden(ip(s)), "{s} must be forbidden");
        }
        for s in ["203.0.113.10", "1.1.1.1", "100.128.0.1", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!forbidden(ip(s)), "{s} must be allowed");
        }
    }

    #[tokio::test]
    async fn urls_naming_this_machine_are_refused_unless_allowed() {
        assert_eq!(check_url("https://127.0.0.1/x", false, true).await, Err(UrlRefused::Private));
        assert_eq!(check_url("https://[::ffff:7f00:1]/x", false, true).await, Err(UrlRefused::Private));
        assert_eq!(check_url("https://169.254.169.254/latest", false, true).await, Err(UrlRefused::Private));
        assert_eq!(check_url("https://localhost:9/", false, true).await, Err(UrlRefused::Private));
        assert_eq!(check_url("http://203.0.113.10/", false, true).await, Err(UrlRefused::NotHttps));
        assert!(check_url("https://203.0.113.10/", false, true).await.is_ok());
        assert!(check_url("http://localhost:9/", true, true).await.is_ok());
        assert_eq!(check_url("ftp://example.com/", true, true).await, Err(UrlRefused::Malformed));
    }

    #[tokio::test]
    async fn the_resolver_drops_forbidden_addresses() {
        use reqwest::dns::Resolve;
        let guarded = GuardedResolver { allow_private: false };
        let name: reqwest::dns::Name = "localhost".parse().expect("a name");
        let err = guarded.resolve(name).await.err().expect("localhost is refused");
        assert!(err.downcast_ref::<Blocked>().is_some(), "{err}");
        let open = GuardedResolver { allow_private: true };
        let name: reqwest::dns::Name = "localhost".parse().expect("a name");
        let addrs: Vec<SocketAddr> = open.resolve(name).await.expect("allowed").collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }
}
