//! The client network that per-client limits count: the web layer computes it for a
//! request, and the service again from an IP address recorded as evidence (a confirmed
//! signup gives its count back to the network it came from).

use std::net::IpAddr;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
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
}
