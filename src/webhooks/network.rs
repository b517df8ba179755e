//! Which addresses a webhook may reach. An endpoint URL is configuration, but a receiver's
//! DNS is not ours: without this check a name that resolves to the cloud metadata
//! service (169.254.169.254) or to a host on the private network would receive signed
//! POSTs and be probed through the delivery log. The check runs when the settings are
//! read (an address in the URL) and again for every connection (what a name resolved
//! to), through [`GuardedResolver`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Where webhooks may go: loopback always (a receiver on the same host), public
/// addresses always, the ranges of [`REFUSED`] only when the operator says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkPolicy {
    /// `webhooks.allow_private_networks = false`, the default.
    PublicOnly,
    /// `webhooks.allow_private_networks = true`: receivers inside the network.
    AllowPrivate,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix))
}

const fn v6(first: u16, second: u16, prefix: u8) -> IpNet {
    IpNet::V6(Ipv6Net::new_assert(
        Ipv6Addr::new(first, second, 0, 0, 0, 0, 0, 0),
        prefix,
    ))
}

/// The ranges refused unless private networks are allowed, each with what it is. Besides
/// the private, link-local and unspecified ranges, it holds those that reach inside a
/// provider or a site rather than the Internet: shared address space (some clouds put
/// metadata services there, such as 100.100.100.200), multicast and broadcast, and the
/// reserved, benchmarking and documentation ranges, which no public receiver uses.
const REFUSED: &[(IpNet, &str)] = &[
    (v4(0, 0, 0, 0, 8), "\"this network\" (0.0.0.0/8)"),
    (v4(10, 0, 0, 0, 8), "a private network (10.0.0.0/8)"),
    (
        v4(100, 64, 0, 0, 10),
        "shared address space (100.64.0.0/10)",
    ),
    (
        v4(169, 254, 0, 0, 16),
        "link-local (169.254.0.0/16, cloud metadata)",
    ),
    (v4(172, 16, 0, 0, 12), "a private network (172.16.0.0/12)"),
    (
        v4(192, 0, 0, 0, 24),
        "IETF protocol assignments (192.0.0.0/24)",
    ),
    (v4(192, 0, 2, 0, 24), "documentation (192.0.2.0/24)"),
    (v4(192, 168, 0, 0, 16), "a private network (192.168.0.0/16)"),
    (v4(198, 18, 0, 0, 15), "benchmarking (198.18.0.0/15)"),
    (v4(198, 51, 100, 0, 24), "documentation (198.51.100.0/24)"),
    (v4(203, 0, 113, 0, 24), "documentation (203.0.113.0/24)"),
    (v4(224, 0, 0, 0, 4), "multicast (224.0.0.0/4)"),
    (v4(240, 0, 0, 0, 4), "reserved or broadcast (240.0.0.0/4)"),
    (v6(0, 0, 128), "unspecified (::)"),
    (v6(0xfc00, 0, 7), "a unique-local network (fc00::/7)"),
    (v6(0xfe80, 0, 10), "link-local (fe80::/10)"),
    (v6(0xfec0, 0, 10), "site-local (fec0::/10)"),
    (v6(0xff00, 0, 8), "multicast (ff00::/8)"),
    (v6(0x2001, 0x0db8, 32), "documentation (2001:db8::/32)"),
];

/// Why a webhook may not go to an address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{address} is {range}; set webhooks.allow_private_networks = true to deliver there")]
pub struct RefusedAddress {
    pub address: IpAddr,
    pub range: &'static str,
}

impl NetworkPolicy {
    pub fn new(allow_private_networks: bool) -> Self {
        if allow_private_networks {
            Self::AllowPrivate
        } else {
            Self::PublicOnly
        }
    }

    /// Whether a webhook may connect to `address`.
    pub fn check(self, address: IpAddr) -> Result<(), RefusedAddress> {
        // An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) reaches the IPv4 host.
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        if self == Self::AllowPrivate || address.is_loopback() {
            return Ok(());
        }
        match REFUSED.iter().find(|(range, _)| range.contains(&address)) {
            Some((_, range)) => Err(RefusedAddress { address, range }),
            None => Ok(()),
        }
    }
}

/// Resolves names through `inner` and keeps only the addresses the policy allows; a name
/// left with none fails to resolve, so the delivery fails before any connection.
pub struct GuardedResolver {
    inner: Arc<dyn Resolve>,
    policy: NetworkPolicy,
}

impl GuardedResolver {
    /// The system resolver (getaddrinfo, as reqwest's default), guarded.
    pub fn system(policy: NetworkPolicy) -> Self {
        Self::over(Arc::new(SystemResolver), policy)
    }

    /// Any resolver, guarded: for tests, a resolver that answers what they choose.
    pub fn over(inner: Arc<dyn Resolve>, policy: NetworkPolicy) -> Self {
        Self { inner, policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let inner = self.inner.clone();
        let policy = self.policy;
        Box::pin(async move {
            let mut refusal = None;
            let allowed: Vec<SocketAddr> = inner
                .resolve(name)
                .await?
                .filter(|address| match policy.check(address.ip()) {
                    Ok(()) => true,
                    Err(refused) => {
                        refusal.get_or_insert(refused);
                        false
                    }
                })
                .collect();
            if let (true, Some(refused)) = (allowed.is_empty(), refusal) {
                return Err(format!(
                    "the endpoint's name resolves to no allowed address: {refused}"
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// getaddrinfo on Tokio's blocking pool, as reqwest's own default resolver does.
struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // The port is replaced by the URL's when connecting.
            let addresses = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(Box::new(addresses.collect::<Vec<_>>().into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn private_link_local_and_unspecified_addresses_are_refused() {
        for refused in [
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.100.100.200",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.10",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            let refusal = NetworkPolicy::PublicOnly.check(ip(refused));
            assert!(refusal.is_err(), "{refused} must be refused");
            assert!(
                refusal
                    .unwrap_err()
                    .to_string()
                    .contains("webhooks.allow_private_networks"),
                "the refusal says how to allow it"
            );
        }
    }

    #[test]
    fn public_and_loopback_addresses_are_allowed() {
        for allowed in [
            "93.184.215.14",
            "172.32.0.1",
            "100.128.0.1",
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "::ffff:127.0.0.1",
            "2606:4700::1111",
        ] {
            assert_eq!(
                NetworkPolicy::PublicOnly.check(ip(allowed)),
                Ok(()),
                "{allowed}"
            );
        }
    }

    #[test]
    fn allowing_private_networks_allows_every_address() {
        for address in ["10.0.0.1", "169.254.169.254", "fd00::1", "::"] {
            assert_eq!(
                NetworkPolicy::AllowPrivate.check(ip(address)),
                Ok(()),
                "{address}"
            );
        }
    }

    /// A resolver that answers fixed addresses for every name: stands in for a DNS whose
    /// answers the test chooses. The filter under test is [`GuardedResolver`].
    struct Answers(Vec<SocketAddr>);

    impl Resolve for Answers {
        fn resolve(&self, _: Name) -> Resolving {
            let answers = self.0.clone();
            Box::pin(async move { Ok(Box::new(answers.into_iter()) as Addrs) })
        }
    }

    fn guarded(answers: &[&str], policy: NetworkPolicy) -> GuardedResolver {
        let answers = answers.iter().map(|a| SocketAddr::new(ip(a), 0)).collect();
        GuardedResolver::over(Arc::new(Answers(answers)), policy)
    }

    async fn resolve(resolver: &GuardedResolver, name: &str) -> Result<Vec<IpAddr>, String> {
        match resolver.resolve(name.parse().unwrap()).await {
            Ok(addresses) => Ok(addresses.map(|a| a.ip()).collect()),
            Err(error) => Err(error.to_string()),
        }
    }

    #[tokio::test]
    async fn a_name_resolving_to_a_private_address_is_refused() {
        let refused = resolve(
            &guarded(&["10.0.0.1"], NetworkPolicy::PublicOnly),
            "hooks.example",
        )
        .await;
        let message = refused.unwrap_err();
        assert!(message.contains("10.0.0.1"), "{message}");
        assert!(message.contains("private network"), "{message}");
        let metadata = resolve(
            &guarded(&["169.254.169.254"], NetworkPolicy::PublicOnly),
            "hooks.example",
        )
        .await;
        assert!(metadata.unwrap_err().contains("link-local"));
    }

    #[tokio::test]
    async fn only_the_allowed_answers_of_a_mixed_name_are_used() {
        let mixed = guarded(&["10.0.0.1", "93.184.215.14"], NetworkPolicy::PublicOnly);
        assert_eq!(
            resolve(&mixed, "hooks.example").await,
            Ok(vec![ip("93.184.215.14")])
        );
    }

    #[tokio::test]
    async fn allowing_private_networks_lets_a_private_answer_through() {
        let allowed = guarded(&["10.0.0.1"], NetworkPolicy::AllowPrivate);
        assert_eq!(
            resolve(&allowed, "hooks.example").await,
            Ok(vec![ip("10.0.0.1")])
        );
    }

    #[tokio::test]
    async fn localhost_resolves_through_the_system_resolver_to_loopback() {
        let system = GuardedResolver::system(NetworkPolicy::PublicOnly);
        let addresses = resolve(&system, "localhost").await.unwrap();
        assert!(!addresses.is_empty());
        assert!(addresses.iter().all(IpAddr::is_loopback), "{addresses:?}");
    }
}
