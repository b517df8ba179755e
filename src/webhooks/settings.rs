//! `[webhooks]` and `[[webhooks.endpoints]]`: read with serde, then checked and turned
//! into [`Endpoint`]s once, so that nothing later handles an unchecked URL or secret.

use std::collections::HashSet;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::{Host, Url};

use super::event::{EndpointFilter, EventType};
use super::network::NetworkPolicy;
use super::signature::SigningKey;

const MAX_ID_LEN: usize = 64;

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Attempts before a delivery is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubles with each failure, capped at six hours.
    pub retry_base_secs: u64,
    /// Limit of one attempt, from connecting to the end of the answer.
    pub timeout_secs: u64,
    /// Lets endpoints be on private, link-local and other non-public addresses
    /// ([`super::network`]). Loopback is allowed either way.
    pub allow_private_networks: bool,
    pub endpoints: Vec<EndpointSettings>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            retry_base_secs: 5,
            timeout_secs: 10,
            allow_private_networks: false,
            endpoints: Vec::new(),
        }
    }
}

/// One `[[webhooks.endpoints]]` table as written. `secret` is a `SecretString`, so no
/// `Debug` of the settings shows it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSettings {
    pub id: String,
    pub url: String,
    pub secret: SecretString,
    /// Event types to send; all when absent.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// Subscription types whose `subscription.*` events to send; all when absent.
    #[serde(default)]
    pub subscription_types: Option<Vec<String>>,
}

/// A checked endpoint, ready to deliver to.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub id: String,
    pub url: Url,
    pub key: SigningKey,
    pub filter: EndpointFilter,
}

/// A bad webhook setting, named as in the configuration file, e.g.
/// `webhooks.endpoints[crm].url: …`. Never quotes a secret.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct WebhookConfigError {
    pub setting: String,
    pub reason: String,
}

fn invalid(setting: impl Into<String>, reason: impl ToString) -> WebhookConfigError {
    WebhookConfigError {
        setting: setting.into(),
        reason: reason.to_string(),
    }
}

impl WebhookSettings {
    /// Checks every setting; `known_types` are the configured subscription type ids.
    pub fn validate(&self, known_types: &[&str]) -> Result<(), WebhookConfigError> {
        self.endpoints(known_types).map(drop)
    }

    /// Where deliveries may connect.
    pub fn network_policy(&self) -> NetworkPolicy {
        NetworkPolicy::new(self.allow_private_networks)
    }

    /// The checked endpoints, in the order written. The numbers (attempts, delays) are
    /// checked with every other setting's, in the configuration's table of bounds.
    pub fn endpoints(&self, known_types: &[&str]) -> Result<Vec<Endpoint>, WebhookConfigError> {
        let mut seen = HashSet::new();
        self.endpoints
            .iter()
            .enumerate()
            .map(|(index, endpoint)| {
                let checked = endpoint.check(index, known_types, self.network_policy())?;
                if !seen.insert(checked.id.clone()) {
                    return Err(invalid(
                        format!("webhooks.endpoints[{}].id", checked.id),
                        "is used by another endpoint",
                    ));
                }
                Ok(checked)
            })
            .collect()
    }
}

impl EndpointSettings {
    fn check(
        &self,
        index: usize,
        known_types: &[&str],
        policy: NetworkPolicy,
    ) -> Result<Endpoint, WebhookConfigError> {
        if !is_valid_id(&self.id) {
            return Err(invalid(
                format!("webhooks.endpoints[{index}].id"),
                format!("must be 1 to {MAX_ID_LEN} of a-z, 0-9, `-` and `_`"),
            ));
        }
        let setting = |name: &str| format!("webhooks.endpoints[{}].{name}", self.id);
        let url = parse_url(&self.url, policy).map_err(|reason| invalid(setting("url"), reason))?;
        let key = SigningKey::parse(self.secret.expose_secret())
            .map_err(|reason| invalid(setting("secret"), reason))?;
        let events = match &self.events {
            None => None,
            Some(names) if names.is_empty() => {
                return Err(invalid(
                    setting("events"),
                    "is empty: leave it out to send every event",
                ))
            }
            Some(names) => Some(
                names
                    .iter()
                    .map(|name| name.parse::<EventType>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|reason| invalid(setting("events"), reason))?,
            ),
        };
        if let Some(types) = &self.subscription_types {
            if types.is_empty() {
                return Err(invalid(
                    setting("subscription_types"),
                    "is empty: leave it out to send every type",
                ));
            }
            if let Some(unknown) = types.iter().find(|t| !known_types.contains(&t.as_str())) {
                return Err(invalid(
                    setting("subscription_types"),
                    format!("unknown subscription type `{unknown}`"),
                ));
            }
        }
        Ok(Endpoint {
            id: self.id.clone(),
            url,
            key,
            filter: EndpointFilter {
                events,
                subscription_types: self.subscription_types.clone(),
            },
        })
    }
}

fn is_valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// https anywhere; plain http only to this machine, where nobody can read the wire. An
/// address written in the URL must be one the network policy allows; a name is checked
/// at each connection, when it is resolved.
fn parse_url(raw: &str, policy: NetworkPolicy) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("is not a URL ({e})"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err("plain http is allowed only to a loopback host; use https".into()),
        other => return Err(format!("scheme `{other}` is not https")),
    }
    if let Some(address) = address_of(&url) {
        policy
            .check(address)
            .map_err(|refused| refused.to_string())?;
    }
    Ok(url)
}

/// The address a URL names by number, if it does.
pub(super) fn address_of(url: &Url) -> Option<std::net::IpAddr> {
    match url.host()? {
        Host::Ipv4(ip) => Some(ip.into()),
        Host::Ipv6(ip) => Some(ip.into()),
        Host::Domain(_) => None,
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const KNOWN: &[&str] = &["blog-updates", "offers"];

    fn endpoint(id: &str, url: &str) -> EndpointSettings {
        EndpointSettings {
            id: id.into(),
            url: url.into(),
            secret: SecretString::from(SECRET),
            events: None,
            subscription_types: None,
        }
    }

    fn with(endpoints: Vec<EndpointSettings>) -> WebhookSettings {
        WebhookSettings {
            endpoints,
            ..WebhookSettings::default()
        }
    }

    fn error(settings: WebhookSettings) -> String {
        settings.validate(KNOWN).unwrap_err().to_string()
    }

    #[test]
    fn reads_the_design_example_with_its_defaults() {
        let toml = r#"
            [[endpoints]]
            id = "crm"
            url = "https://crm.example.com/optin-events"
            secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
            events = ["subscription.opted_in", "subscription.unsubscribed"]
            subscription_types = ["blog-updates"]
        "#;
        let settings: WebhookSettings = config::Config::builder()
            .add_source(config::File::from_str(toml, config::FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap();
        assert_eq!(
            (
                settings.max_attempts,
                settings.retry_base_secs,
                settings.timeout_secs
            ),
            (10, 5, 10)
        );
        let endpoints = settings.endpoints(KNOWN).unwrap();
        assert_eq!(endpoints[0].id, "crm");
        assert_eq!(
            endpoints[0].filter.events,
            Some(vec![
                EventType::SubscriptionOptedIn,
                EventType::SubscriptionUnsubscribed
            ])
        );
        assert!(!format!("{settings:?}{endpoints:?}").contains("MfKQ9r8"));
    }

    #[test]
    fn https_and_loopback_http_are_accepted() {
        for url in [
            "https://crm.example.com/hook",
            "http://127.0.0.1:8080/hook",
            "http://127.8.9.10/hook",
            "http://[::1]:9000/hook",
            "http://localhost/hook",
            "http://LOCALHOST:1/hook",
        ] {
            assert!(
                with(vec![endpoint("crm", url)]).validate(KNOWN).is_ok(),
                "{url}"
            );
        }
    }

    #[test]
    fn other_urls_are_refused_naming_the_endpoint() {
        for url in [
            "http://crm.example.com/hook",
            "http://10.0.0.1/hook",
            "http://localhost.example.com/hook",
            "ftp://crm.example.com/",
            "not a url",
        ] {
            let shown = error(with(vec![endpoint("crm", url)]));
            assert!(
                shown.starts_with("webhooks.endpoints[crm].url: "),
                "{url}: {shown}"
            );
        }
    }

    #[test]
    fn ids_are_checked_and_unique() {
        for id in ["", "CRM", "crm.main", &"a".repeat(65)] {
            let shown = error(with(vec![endpoint(id, "https://x.example/")]));
            assert!(shown.starts_with("webhooks.endpoints[0].id: "), "{shown}");
        }
        assert!(with(vec![endpoint(&"a".repeat(64), "https://x.example/")])
            .validate(KNOWN)
            .is_ok());
        let shown = error(with(vec![
            endpoint("crm", "https://a.example/"),
            endpoint("crm", "https://b.example/"),
        ]));
        assert_eq!(
            shown,
            "webhooks.endpoints[crm].id: is used by another endpoint"
        );
    }

    #[test]
    fn a_bad_secret_is_named_but_not_quoted() {
        let mut bad = endpoint("crm", "https://x.example/");
        bad.secret = SecretString::from("whsec_c2hvcnQ=");
        let shown = error(with(vec![bad]));
        assert!(
            shown.starts_with("webhooks.endpoints[crm].secret: "),
            "{shown}"
        );
        assert!(!shown.contains("c2hvcnQ"), "{shown}");
    }

    #[test]
    fn filters_must_name_known_things() {
        let mut unknown_event = endpoint("crm", "https://x.example/");
        unknown_event.events = Some(vec!["subscription.optedin".into()]);
        assert!(error(with(vec![unknown_event])).starts_with("webhooks.endpoints[crm].events: "));
        let mut unknown_type = endpoint("crm", "https://x.example/");
        unknown_type.subscription_types = Some(vec!["news".into()]);
        assert_eq!(
            error(with(vec![unknown_type])),
            "webhooks.endpoints[crm].subscription_types: unknown subscription type `news`"
        );
        let mut empty = endpoint("crm", "https://x.example/");
        empty.events = Some(vec![]);
        assert!(error(with(vec![empty])).starts_with("webhooks.endpoints[crm].events: "));
    }

    #[test]
    fn private_link_local_and_unspecified_addresses_are_refused_unless_allowed() {
        for url in [
            "https://169.254.169.254/latest/meta-data/",
            "https://10.0.0.1/hook",
            "https://192.168.1.20:8443/hook",
            "https://[fd00:ec2::254]/hook",
            "https://[fe80::1]/hook",
            "https://0.0.0.0/hook",
            "https://[::]/hook",
            "https://[::ffff:10.0.0.1]/hook",
        ] {
            let shown = error(with(vec![endpoint("crm", url)]));
            assert!(
                shown.starts_with("webhooks.endpoints[crm].url: ")
                    && shown.contains("webhooks.allow_private_networks"),
                "{url}: {shown}"
            );
            let allowed = WebhookSettings {
                allow_private_networks: true,
                ..with(vec![endpoint("crm", url)])
            };
            assert!(allowed.validate(KNOWN).is_ok(), "{url} when allowed");
        }
    }
}
