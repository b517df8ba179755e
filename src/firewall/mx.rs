//! Whether a domain can receive mail at all: its MX records (RFC 5321 §5.1), the null MX
//! of RFC 7505, and the A/AAAA fallback of a domain without MX. A DNS failure never
//! refuses anyone (it answers [`MailHost::Unknown`] and is counted); answers are cached
//! in memory for a while, the positive ones longest.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;

/// One query's wait for an answer: a signup must not hang on a slow resolver.
const QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// The whole check (MX, then A and AAAA at once) gives up after this and passes.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
/// How long each kind of answer is kept. A domain that receives mail rarely stops; one
/// that does not may be fixed soon; a failure is asked again shortly, but not on every
/// signup while the resolver is down.
const DELIVERABLE_TTL: Duration = Duration::hours(1);
const UNDELIVERABLE_TTL: Duration = Duration::minutes(10);
const UNKNOWN_TTL: Duration = Duration::seconds(30);
/// Domains kept at most; past it the entry closest to expiry goes first.
const CACHE_CAPACITY: usize = 10_000;

/// What DNS says about a domain as a mail destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailHost {
    /// An MX, or no MX but an A or AAAA record.
    Deliverable,
    Undeliverable(Undeliverable),
    /// DNS failed (SERVFAIL, a timeout, no resolver): the signup goes through.
    Unknown,
}

/// Why no mail can reach a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Undeliverable {
    /// The domain exists but has no MX, A or AAAA record.
    NoMailHost,
    /// The domain says it accepts no mail: a single MX with the exchange `.` (RFC 7505).
    NullMx,
    /// NXDOMAIN.
    NoSuchDomain,
}

impl Undeliverable {
    /// A stable name, for problem details and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Undeliverable::NoMailHost => "no_mail_host",
            Undeliverable::NullMx => "null_mx",
            Undeliverable::NoSuchDomain => "no_such_domain",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the system's resolver configuration cannot be read: {0}")]
pub struct ResolverConfigError(String);

/// Asks DNS, through the configured resolvers, and remembers the answers.
pub struct MxChecker {
    resolver: TokioResolver,
    cache: Mutex<HashMap<String, Cached>>,
}

#[derive(Clone, Copy)]
struct Cached {
    answer: MailHost,
    until: DateTime<Utc>,
}

impl std::fmt::Debug for MxChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MxChecker").finish_non_exhaustive()
    }
}

impl MxChecker {
    /// Resolves through `servers` (UDP, then TCP for long answers), or through the
    /// system's resolvers (`/etc/resolv.conf`) when there are none.
    pub fn new(servers: &[SocketAddr]) -> Result<Self, ResolverConfigError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = if servers.is_empty() {
            TokioResolver::builder(provider).map_err(|e| ResolverConfigError(e.to_string()))?
        } else {
            let name_servers = servers
                .iter()
                .map(|server| {
                    let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                        .into_iter()
                        .map(|mut connection| {
                            connection.port = server.port();
                            connection
                        })
                        .collect();
                    NameServerConfig::new(server.ip(), true, connections)
                })
                .collect();
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(name_servers),
                provider,
            )
        };
        let options = builder.options_mut();
        options.timeout = QUERY_TIMEOUT;
        options.attempts = 1;
        // This module keeps its own cache, of verdicts, on the service's clock.
        options.cache_size = 0;
        // Mail domains come from strangers: never from /etc/hosts, never via search lists.
        options.use_hosts_file = ResolveHosts::Never;
        options.ndots = 0;
        let resolver = builder
            .build()
            .map_err(|e| ResolverConfigError(e.to_string()))?;
        Ok(Self {
            resolver,
            cache: Mutex::default(),
        })
    }

    /// Whether `domain` (IDNA ASCII, as in a parsed address) receives mail, as seen at
    /// `now` for the cache.
    pub async fn check(&self, domain: &str, now: DateTime<Utc>) -> MailHost {
        if let Some(answer) = self.cached(domain, now) {
            return answer;
        }
        let answer = match tokio::time::timeout(CHECK_TIMEOUT, self.look_up(domain)).await {
            Ok(answer) => answer,
            Err(_) => failed("timeout"),
        };
        self.remember(domain, answer, now);
        answer
    }

    async fn look_up(&self, domain: &str) -> MailHost {
        // Fully qualified: one query, never one per search domain.
        let name = format!("{}.", domain.trim_end_matches('.'));
        match self.resolver.mx_lookup(name.as_str()).await {
            Ok(lookup) => {
                let exchanges: Vec<_> = lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::MX(mx) => Some(&mx.exchange),
                        _ => None,
                    })
                    .collect();
                if exchanges.is_empty() {
                    self.address_fallback(&name).await
                } else if exchanges.iter().all(|exchange| exchange.is_root()) {
                    MailHost::Undeliverable(Undeliverable::NullMx)
                } else {
                    MailHost::Deliverable
                }
            }
            Err(error) if error.is_nx_domain() => {
                MailHost::Undeliverable(Undeliverable::NoSuchDomain)
            }
            Err(error) if error.is_no_records_found() => self.address_fallback(&name).await,
            Err(error) => failed(kind_of(&error)),
        }
    }

    /// No MX: the domain itself is the mail host if it has an address (RFC 5321 §5.1).
    async fn address_fallback(&self, name: &str) -> MailHost {
        let (v4, v6) = tokio::join!(
            self.resolver.ipv4_lookup(name),
            self.resolver.ipv6_lookup(name)
        );
        let has_address = |answer: &Result<hickory_resolver::lookup::Lookup, NetError>| {
            answer.as_ref().is_ok_and(|lookup| {
                lookup
                    .answers()
                    .iter()
                    .any(|record| matches!(record.data, RData::A(_) | RData::AAAA(_)))
            })
        };
        if has_address(&v4) || has_address(&v6) {
            return MailHost::Deliverable;
        }
        let errors = [v4.err(), v6.err()];
        if errors.iter().flatten().any(NetError::is_nx_domain) {
            return MailHost::Undeliverable(Undeliverable::NoSuchDomain);
        }
        // Anything but "no such record" is a failure to find out.
        match errors
            .iter()
            .flatten()
            .find(|error| !error.is_no_records_found())
        {
            Some(error) => failed(kind_of(error)),
            None => MailHost::Undeliverable(Undeliverable::NoMailHost),
        }
    }

    fn cached(&self, domain: &str, now: DateTime<Utc>) -> Option<MailHost> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(domain)
            .filter(|cached| cached.until > now)
            .map(|cached| cached.answer)
    }

    fn remember(&self, domain: &str, answer: MailHost, now: DateTime<Utc>) {
        let ttl = match answer {
            MailHost::Deliverable => DELIVERABLE_TTL,
            MailHost::Undeliverable(_) => UNDELIVERABLE_TTL,
            MailHost::Unknown => UNKNOWN_TTL,
        };
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= CACHE_CAPACITY && !cache.contains_key(domain) {
            cache.retain(|_, cached| cached.until > now);
            if cache.len() >= CACHE_CAPACITY {
                let soonest = cache
                    .iter()
                    .min_by_key(|(_, cached)| cached.until)
                    .map(|(domain, _)| domain.clone());
                if let Some(soonest) = soonest {
                    cache.remove(&soonest);
                }
            }
        }
        cache.insert(
            domain.to_string(),
            Cached {
                answer,
                until: now + ttl,
            },
        );
    }
}

/// A DNS failure: counted, logged without the domain's owner, and let through.
fn failed(kind: &'static str) -> MailHost {
    metrics::counter!("optin_dns_check_failures_total", "kind" => kind).increment(1);
    tracing::debug!(kind, "a DNS check failed; the signup goes through");
    MailHost::Unknown
}

/// A short, fixed label for the metric (never the domain).
fn kind_of(error: &NetError) -> &'static str {
    match error {
        NetError::Timeout => "timeout",
        NetError::Dns(_) => "dns_error",
        NetError::Io(_) | NetError::NoConnections => "unreachable",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resolver that nothing listens on; the cache must answer without it.
    fn unreachable_checker() -> MxChecker {
        MxChecker::new(&["127.0.0.1:9".parse().unwrap()]).unwrap()
    }

    #[test]
    fn answers_are_kept_for_their_kind_of_answer() {
        let checker = unreachable_checker();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        checker.remember("ok.example", MailHost::Deliverable, now);
        let nx = MailHost::Undeliverable(Undeliverable::NoSuchDomain);
        checker.remember("nx.example", nx, now);
        checker.remember("down.example", MailHost::Unknown, now);

        let at = |secs| now + Duration::seconds(secs);
        assert_eq!(
            checker.cached("ok.example", at(3599)),
            Some(MailHost::Deliverable)
        );
        assert_eq!(checker.cached("ok.example", at(3600)), None);
        assert_eq!(checker.cached("nx.example", at(599)), Some(nx));
        assert_eq!(checker.cached("nx.example", at(600)), None);
        assert_eq!(
            checker.cached("down.example", at(29)),
            Some(MailHost::Unknown)
        );
        assert_eq!(checker.cached("down.example", at(30)), None);
        assert_eq!(checker.cached("other.example", now), None);
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let checker = unreachable_checker();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        for n in 0..CACHE_CAPACITY + 50 {
            let at = now + Duration::milliseconds(n as i64);
            checker.remember(&format!("d{n}.example"), MailHost::Deliverable, at);
        }
        let cache = checker.cache.lock().unwrap();
        assert_eq!(cache.len(), CACHE_CAPACITY);
        assert!(!cache.contains_key("d0.example"), "the oldest went first");
        assert!(cache.contains_key(&format!("d{}.example", CACHE_CAPACITY + 49)));
    }
}
