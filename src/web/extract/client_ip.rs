//! The client's IP address: the socket peer, or, when the peer is a configured trusted
//! proxy, the nearest untrusted address in `X-Forwarded-For`. Without trusted proxies the
//! header is ignored, since anyone can send it.

use std::net::IpAddr;

use ipnet::IpNet;

pub use crate::client_network::limit_network;

/// Walks `X-Forwarded-For` from the right, skipping trusted proxies: the first address
/// that is not one of ours is the client. Garbage in the header falls back to the peer.
pub fn resolve(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: IpAddr| trusted.iter().any(|range| range.contains(&ip));
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

    fn range(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_match_by_prefix() {
        assert!(range("10.1.0.0/16").contains(&ip("10.1.200.3")));
        assert!(!range("10.1.0.0/16").contains(&ip("10.2.0.1")));
        assert!(range("::1/128").contains(&ip("::1")));
        assert!(!range("::1/128").contains(&ip("127.0.0.1")));
    }

    #[test]
    fn forwarded_for_is_used_only_behind_a_trusted_proxy() {
        let trusted = [range("127.0.0.1/32")];
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

    proptest::proptest! {
        #[test]
        fn arbitrary_headers_never_panic(header in ".{0,300}", extra in ".{0,40}") {
            let trusted: Vec<IpNet> = extra.parse().into_iter().chain([range("127.0.0.1/32")]).collect();
            let _ = resolve(Some(ip("127.0.0.1")), Some(&header), &trusted);
        }
    }
}
