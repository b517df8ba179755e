//! The client's IP address: the socket peer, or, when the peer is a configured trusted
//! proxy, the nearest untrusted address in `X-Forwarded-For`. Without trusted proxies the
//! header is ignored, since anyone can send it.

use std::net::IpAddr;

/// An address range such as `10.0.0.0/8`, `::1/128` or a single address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    pub fn parse(text: &str) -> Option<Self> {
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix.parse::<u8>().ok()?)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_matches(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_matches(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_matches(network: &[u8], ip: &[u8], prefix: u8) -> bool {
    let full_bytes = usize::from(prefix / 8);
    let rest_bits = prefix % 8;
    if network[..full_bytes] != ip[..full_bytes] {
        return false;
    }
    if rest_bits == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest_bits);
    network[full_bytes] & mask == ip[full_bytes] & mask
}

/// What a per-IP limit counts: an IPv4 client by its address, an IPv6 client by its /64,
/// because one IPv6 host usually holds a whole /64 and could otherwise step past the
/// limit with a fresh address for every request.
pub fn limit_network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            // An IPv4 client seen through a dual-stack socket is still one IPv4 address.
            Some(v4) => v4.to_string(),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                format!("{}/64", std::net::Ipv6Addr::from(octets))
            }
        },
    }
}

/// Walks `X-Forwarded-For` from the right, skipping trusted proxies: the first address
/// that is not one of ours is the client. Garbage in the header falls back to the peer.
pub fn resolve(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[IpRange],
) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: IpAddr| trusted.iter().any(|range| range.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let Some(header) = forwarded_for else {
        return Some(peer);
    };
    let mut client = peer;
    for hop in header.rsplit(',').take(32) {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_match_by_prefix() {
        let range = IpRange::parse("10.1.0.0/16").unwrap();
        assert!(range.contains(ip("10.1.200.3")));
        assert!(!range.contains(ip("10.2.0.1")));
        assert!(IpRange::parse("::1").unwrap().contains(ip("::1")));
        assert!(IpRange::parse("10.0.0.0/33").is_none());
        assert!(IpRange::parse("nonsense").is_none());
    }

    #[test]
    fn forwarded_for_is_used_only_behind_a_trusted_proxy() {
        let trusted = [IpRange::parse("127.0.0.1").unwrap()];
        assert_eq!(
            resolve(Some(ip("203.0.113.9")), Some("1.2.3.4"), &trusted),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            resolve(
                Some(ip("127.0.0.1")),
                Some("1.2.3.4, 198.51.100.7"),
                &trusted
            ),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            resolve(Some(ip("127.0.0.1")), Some("1.2.3.4, 127.0.0.1"), &trusted),
            Some(ip("1.2.3.4"))
        );
        assert_eq!(
            resolve(Some(ip("127.0.0.1")), Some("garbage"), &trusted),
            Some(ip("127.0.0.1"))
        );
        assert_eq!(
            resolve(Some(ip("127.0.0.1")), None, &[]),
            Some(ip("127.0.0.1"))
        );
    }

    #[test]
    fn limits_count_ipv4_by_address_and_ipv6_by_its_64() {
        assert_eq!(limit_network(ip("198.51.100.7")), "198.51.100.7");
        assert_ne!(
            limit_network(ip("198.51.100.7")),
            limit_network(ip("198.51.100.8"))
        );
        assert_eq!(
            limit_network(ip("2001:db8:1:2:aaaa::1")),
            limit_network(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_eq!(limit_network(ip("2001:db8:1:2::9")), "2001:db8:1:2::/64");
        assert_ne!(
            limit_network(ip("2001:db8:1:2::1")),
            limit_network(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            limit_network(ip("::ffff:198.51.100.7")),
            "198.51.100.7",
            "a mapped IPv4 client is counted as that IPv4 address"
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_headers_never_panic(header in ".{0,300}", range in ".{0,40}") {
            let trusted: Vec<IpRange> = IpRange::parse(&range).into_iter().chain(IpRange::parse("127.0.0.1")).collect();
            let _ = resolve(Some(ip("127.0.0.1")), Some(&header), &trusted);
        }
    }
}
